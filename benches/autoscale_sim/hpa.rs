//! The HorizontalPodAutoscaler's default policy on a per-pod metric (in-flight requests per pod
//! through a metrics adapter), simulated.
//!
//! Modelled, as the HPA controller computes it:
//! * a sync every 15 s (`--horizontal-pod-autoscaler-sync-period`);
//! * the replica calculation of a `Pods` metric: per-pod metric = demand / ready pods at the
//!   sync, ratio = metric / target, no change when |ratio − 1| ≤ 0.1 (the tolerance), else
//!   ceil(ratio × ready pods). Pods still starting serve no metrics ("missing"): on a scale-up
//!   they count as 0, on a scale-down as the target, and a result that would turn the
//!   direction round (or land inside the tolerance) keeps the count;
//! * the default behaviour: scale-up stabilisation 0 s; scale-down stabilisation 300 s (the
//!   highest recommendation of the last 300 s); scale-up at most max(4 pods, 100 %) per 15 s —
//!   with syncs exactly 15 s apart only the current sync falls in a policy period, so the
//!   limit is max(current + 4, 2 × current); scale-down at most 100 % per 15 s (no limit);
//! * `minReplicas` and `maxReplicas`.
//!
//! Not modelled, each of which would slow the HPA further, so the comparison flatters it: the
//! metrics pipeline's latency (a Prometheus scrape interval, the adapter's rate window, the
//! HPA reading a value up to a scrape old), jitter in the sync period, and pods that are
//! Pending rather than Running (grouped as "unready", with much the same effect as missing).

use super::{Autoscaler, Params, plant::Plant};

/// Seconds between two syncs.
pub const SYNC: u32 = 15;
const TOLERANCE: f64 = 0.1;
const DOWN_STABILISATION: u32 = 300;
const UP_PODS: i32 = 4;

pub struct Hpa {
    target: f64,
    min: i32,
    max: i32,
    /// Syncs happen when `(t + phase) % SYNC == 0`.
    phase: u32,
    /// (second, recommendation) of the syncs within the stabilisation window.
    recommendations: Vec<(u32, i32)>,
}

impl Hpa {
    pub fn new(params: &Params, phase: u32) -> Hpa {
        Hpa {
            target: params.target,
            min: params.min,
            max: params.max,
            phase,
            recommendations: Vec::new(),
        }
    }
}

/// ceil, forgiving float noise (32 / 4 / 8 × 8 must stay 8).
fn ceil(x: f64) -> i32 {
    (x - 1e-9).ceil() as i32
}

/// The replica calculation: `ready` pods report `demand / ready` each, `missing` are starting.
fn calculate(demand: f64, ready: i32, missing: i32, current: i32, target: f64) -> i32 {
    if ready == 0 {
        // No metrics at all: the HPA reports an error and leaves the count.
        return current;
    }
    let ratio = demand / f64::from(ready) / target;
    if missing == 0 {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return current;
        }
        return ceil(ratio * f64::from(ready));
    }
    let mut sum = ratio * f64::from(ready);
    if ratio < 1.0 {
        sum += f64::from(missing);
    }
    let pods = ready + missing;
    let new = sum / f64::from(pods);
    let turns = (ratio < 1.0 && new > 1.0) || (ratio > 1.0 && new < 1.0);
    if (1.0 - new).abs() <= TOLERANCE || turns {
        return current;
    }
    let replicas = ceil(new * f64::from(pods));
    if (new < 1.0 && replicas > current) || (new > 1.0 && replicas < current) {
        return current;
    }
    replicas
}

impl Autoscaler for Hpa {
    fn decide(&mut self, t: u32, seen: &[f64], plant: &Plant) -> Option<i32> {
        if !(t + self.phase).is_multiple_of(SYNC) {
            return None;
        }
        let demand = seen.last().copied().unwrap_or(0.0);
        let current = plant.current();
        let ready = plant.ready(t);
        let proposal = calculate(demand, ready, current - ready, current, self.target);

        // Stabilisation: down to the highest recommendation of the last 300 s at most.
        self.recommendations
            .retain(|&(at, _)| t - at < DOWN_STABILISATION);
        self.recommendations.push((t, proposal));
        let highest = self
            .recommendations
            .iter()
            .map(|&(_, r)| r)
            .max()
            .unwrap_or(proposal);
        let mut desired = current;
        if desired < proposal {
            desired = proposal;
        }
        if desired > highest {
            desired = highest;
        }

        // Rate: up by max(4 pods, 100 %) per period; bounds.
        let up_limit = (current + UP_PODS).max(2 * current);
        Some(desired.min(up_limit).clamp(self.min, self.max))
    }
}
