//! Our autoscaler in the simulation: `modelpilot::autoscale::recommend` every tick with the
//! spec's defaults, fed the way the controller feeds it: the need is the mean demand over
//! each window (what the servers' request-seconds counters give exactly) over the target, and
//! the rise need the lowest tick's mean over the rise window (twice the panic window).

use std::time::Duration;

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use modelpilot::autoscale::recommend::{Config, Input, State, recommend};

use super::{Autoscaler, Params, plant::Plant};

/// Seconds between two decisions (`tickSeconds`).
pub const TICK: u32 = 2;
const STABLE: u32 = 60;
const PANIC: u32 = 6;

pub struct Ours {
    cfg: Config,
    state: State,
    target: f64,
    /// Decisions happen when `(t + phase) % TICK == 0`.
    phase: u32,
}

impl Ours {
    pub fn new(params: &Params, phase: u32) -> Ours {
        Ours {
            cfg: Config {
                min: params.min,
                max: params.max,
                stable_window: Duration::from_secs(STABLE.into()),
                panic_window: Duration::from_secs(PANIC.into()),
                panic_threshold: 2.0,
                scale_down_delay: Duration::ZERO,
                max_scale_up_rate: 1000.0,
                max_scale_down_rate: 2.0,
                down_tolerance: modelpilot::autoscale::recommend::DOWN_TOLERANCE,
            },
            state: State::default(),
            target: params.target,
            phase,
        }
    }
}

/// Mean of the last `window` seconds; before the trace, its first value (a steady past).
fn mean(seen: &[f64], window: u32) -> f64 {
    let first = seen.first().copied().unwrap_or(0.0);
    let sum: f64 = (0..window as usize)
        .map(|k| seen.len().checked_sub(k + 1).map_or(first, |i| seen[i]))
        .sum();
    sum / f64::from(window)
}

/// The lowest per-tick mean within the last `window` seconds, as the controller's samples give it
/// (one sample per tick, the mean demand since the previous one).
fn lowest_tick(seen: &[f64], window: u32, tick: u32) -> f64 {
    (0..window / tick)
        .map(|k| {
            let end = seen.len().saturating_sub((k * tick) as usize);
            mean(&seen[..end], tick)
        })
        .fold(f64::INFINITY, f64::min)
}

impl Autoscaler for Ours {
    fn decide(&mut self, t: u32, seen: &[f64], plant: &Plant) -> Option<i32> {
        if !(t + self.phase).is_multiple_of(TICK) {
            return None;
        }
        let input = Input {
            now: Time(Timestamp::from_second(1_700_000_000 + i64::from(t)).ok()?),
            current: plant.current(),
            ready: plant.ready(t),
            stable_need: Some(mean(seen, STABLE) / self.target),
            panic_need: Some(mean(seen, PANIC) / self.target),
            rise_need: Some(lowest_tick(seen, 2 * PANIC, TICK) / self.target),
            stable_covered: true,
        };
        let (decision, state) = recommend(&self.cfg, &self.state, &input);
        self.state = state;
        Some(decision.desired)
    }
}
