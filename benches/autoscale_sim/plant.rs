//! The simulated Deployment: pods created by a decision serve `startup` seconds later; pods
//! removed stop at once, those not yet serving first (as a ReplicaSet picks them).

/// A revision's pods.
pub struct Plant {
    startup: u32,
    /// The second each pod starts serving.
    pods: Vec<u32>,
}

impl Plant {
    /// `ready` pods, all serving.
    pub fn new(ready: i32, startup: u32) -> Plant {
        Plant {
            startup,
            pods: vec![0; usize::try_from(ready).unwrap_or(0)],
        }
    }

    /// Pods the Deployment asks for.
    pub fn current(&self) -> i32 {
        count(self.pods.len())
    }

    /// Pods serving during second `t`.
    pub fn ready(&self, t: u32) -> i32 {
        count(self.pods.iter().filter(|&&at| at <= t).count())
    }

    /// A decision at second `t`.
    pub fn scale(&mut self, t: u32, desired: i32) {
        let desired = usize::try_from(desired).unwrap_or(0);
        if desired > self.pods.len() {
            self.pods.resize(desired, t + self.startup);
        } else {
            self.pods.sort_unstable();
            self.pods.truncate(desired);
        }
    }
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}
