//! What a run is scored on, second by second.

/// Pods a demand needs at the target: ceil(demand / target), float noise forgiven.
pub fn needed(demand: f64, target: f64) -> i32 {
    (demand / target - 1e-9).ceil().max(0.0) as i32
}

/// One run's record.
pub struct Run {
    /// Ready pods during each second.
    pub ready: Vec<i32>,
    /// Each change of the Deployment's replicas, in order (+ up, − down).
    pub steps: Vec<i32>,
}

/// One run's scores.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Score {
    /// Mean seconds from a rise in needed pods to that many ready; `None` without a rise.
    pub reaction: Option<f64>,
    /// Σ max(0, demand − ready × target) per second.
    pub under: f64,
    /// Σ max(0, ready − needed) per second.
    pub over: f64,
    /// Sign changes between consecutive scaling steps.
    pub direction_changes: f64,
}

/// Scores a run of `demand`; needed pods are capped at `max` (more can never be ready).
pub fn score(demand: &[f64], run: &Run, target: f64, max: i32) -> Score {
    let need: Vec<i32> = demand.iter().map(|&d| needed(d, target)).collect();
    let mut reactions = Vec::new();
    for t in 1..demand.len() {
        let want = need[t].min(max);
        if want > need[t - 1].min(max) {
            // A rise never met counts until the end of the trace.
            let met = (t..demand.len())
                .find(|&s| run.ready[s] >= want)
                .unwrap_or(demand.len());
            reactions.push((met - t) as f64);
        }
    }
    let reaction =
        (!reactions.is_empty()).then(|| reactions.iter().sum::<f64>() / reactions.len() as f64);
    let mut under = 0.0;
    let mut over = 0.0;
    for (t, &d) in demand.iter().enumerate() {
        let ready = run.ready[t];
        under += (d - f64::from(ready) * target).max(0.0);
        over += f64::from((ready - need[t]).max(0));
    }
    let direction_changes = run
        .steps
        .windows(2)
        .filter(|w| w[0].signum() != w[1].signum())
        .count() as f64;
    Score {
        reaction,
        under,
        over,
        direction_changes,
    }
}

/// The mean of several runs' scores (a reaction only where every run has one).
pub fn mean(scores: &[Score]) -> Score {
    let n = scores.len().max(1) as f64;
    let reactions: Option<Vec<f64>> = scores.iter().map(|s| s.reaction).collect();
    Score {
        reaction: reactions.map(|r| r.iter().sum::<f64>() / n),
        under: scores.iter().map(|s| s.under).sum::<f64>() / n,
        over: scores.iter().map(|s| s.over).sum::<f64>() / n,
        direction_changes: scores.iter().map(|s| s.direction_changes).sum::<f64>() / n,
    }
}
