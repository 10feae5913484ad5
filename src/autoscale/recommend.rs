//! The recommender: how many pods a revision should run, from the load its own servers report.
//!
//! It is the part of autoscaling that must be right under every load shape, so it is a pure
//! function of (configuration, the state the last tick left, this tick's load and pods) →
//! (decision, next state), tested with tables over time. The windows are averaged elsewhere
//! (`load.rs`); the state is small and goes to status, so a restarted leader continues an
//! ongoing panic or delayed scale-down where the last one stopped.
//!
//! Modelled on Knative's pod autoscaler (KPA). The rules, in the order they apply:
//!
//! 1. **No data, no change.** Without a finite stable-window need the count stays what the
//!    Deployment asks for (then the bounds of rule 8 apply). A missing panic-window need falls
//!    back to the stable one.
//! 2. **Need → pods.** `ceil(need)`, with a tolerance of 1e-6 so float noise (4.0000001) does
//!    not cost a pod. Ready pods count as at least 1 in every ratio below. Going *down*, the
//!    count is `ceil(need × 1.1)` (`down_tolerance`: [`DOWN_TOLERANCE`] in the operator, like
//!    the HPA's 10 % tolerance): from 6
//!    pods a need of 4.9 stays at 6, it takes 4.5 to go to 5, so a need that wanders around a
//!    pod boundary does not flap.
//! 3. **Rates.** A decision stays within `[floor(ready / maxScaleDownRate),
//!    ceil(ready × maxScaleUpRate)]`.
//! 4. **Sustained rise, no scale-down while rising.** Outside panic mode the count is the larger
//!    of the stable window's pods and the pods that the *lowest* tick of the rise window (twice
//!    the panic window, 12 s by default) needs: a load that has held above the current capacity
//!    through all of it (a ramp, a diurnal morning) is met seconds after it arrives rather than
//!    half a stable window later, while a burst or noise on a plateau (some ticks low) leaves
//!    it to the stable window. And no scale-down while the panic window's load is above the
//!    stable window's: the stable mean still lags behind a rise, the load is not falling.
//! 5. **Panic.** When the panic window needs at least `panicThreshold` × the ready pods, panic
//!    mode starts (or, already on, is extended to now). It ends once a whole stable window has
//!    passed without that happening again. While it lasts the count follows the larger of the
//!    two windows' pods but never goes down — not below the highest count of this panic, nor
//!    below what the Deployment asked for when it began (pods still starting are not killed).
//! 6. **Scale-down delay.** A decision goes only as low as the highest recommendation of the
//!    last `scaleDownDelay` (rules 3–5's results; at most [`MAX_RECENT`] remembered, see
//!    [`State::recent`]).
//! 7. **Window not covered.** Until the data spans the whole stable window (just after a start
//!    or an operator restart) the count may go up but not down.
//! 8. **Bounds.** Last, the count is clamped to `[min, max]`.
//!
//! [`Reason`] names the last rule that changed the count.

use std::{fmt, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

/// Most recommendations the scale-down delay remembers.
pub const MAX_RECENT: usize = 8;

/// Tolerance on pod counts and the panic ratio: 4.0000001 pods' worth of load is 4 pods.
const EPSILON: f64 = 1e-6;

/// The operator's [`Config::down_tolerance`]: a scale-down goes to the pods that the stable need
/// plus this share would take (rule 2), so a need hovering at a pod boundary (5.02, 4.98, 5.01 …)
/// does not move the count up and down.
pub const DOWN_TOLERANCE: f64 = 0.1;

/// How a revision scales: the spec's `autoscaling` section as the recommender reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Fewest pods.
    pub min: i32,
    /// Most pods; the caller guarantees `max >= min`.
    pub max: i32,
    /// Load averaged for ordinary decisions; panic mode lasts this long after its last trigger.
    pub stable_window: Duration,
    /// Load averaged to detect a surge (read by whoever averages the input's `panic_need`).
    pub panic_window: Duration,
    /// Panic when the panic window needs at least this many times the ready pods (2.0 = 200 %).
    pub panic_threshold: f64,
    /// A scale-down goes only as low as the highest recommendation within this long. Zero: off.
    pub scale_down_delay: Duration,
    /// A decision asks for at most `ceil(ready × this)` pods.
    pub max_scale_up_rate: f64,
    /// A decision asks for at least `floor(ready / this)` pods.
    pub max_scale_down_rate: f64,
    /// A scale-down goes to `ceil(need × (1 + this))` (rule 2); the operator uses
    /// [`DOWN_TOLERANCE`].
    pub down_tolerance: f64,
}

/// One tick of one revision.
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub now: Time,
    /// Replicas the revision's Deployment asks for now.
    pub current: i32,
    /// Its ready pods.
    pub ready: i32,
    /// Pods' worth of load over the stable window (total metric / per-pod target), unrounded;
    /// `None`: no data.
    pub stable_need: Option<f64>,
    /// The same over the panic window.
    pub panic_need: Option<f64>,
    /// Pods' worth of the lowest tick within the rise window (twice the panic window): the load
    /// that held through all of it (rule 4). `None`: not known (the rule does not apply).
    pub rise_need: Option<f64>,
    /// The data spans the whole stable window (false just after a start or an operator restart).
    pub stable_covered: bool,
}

/// What the recommender remembers between ticks. Stored in the object's status (bounded: three
/// scalars and at most [`MAX_RECENT`] entries), so a restarted leader continues from it.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// Set while in panic mode: when it began, moved forward by every later tick that crossed
    /// the threshold again. Panic mode ends a stable window after this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub panic_since: Option<Time>,
    /// The highest count of the current panic (0 outside panic mode).
    #[serde(default)]
    pub max_panic_pods: i32,
    /// Recommendations of the last `scaleDownDelay`, for the delay: a falling staircase, oldest
    /// (and highest) first, since a recommendation at least as high and more recent makes an
    /// older one irrelevant. Beyond [`MAX_RECENT`] steps the two closest merge into the higher
    /// count at the later time (the pair that adds the fewest pod-seconds), so a scale-down may
    /// wait longer than the delay, never less.
    /// Empty when the delay is off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub recent: Vec<Recommendation>,
    /// When the decided count last differed from the Deployment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale: Option<Time>,
}

/// A past recommendation, remembered for the scale-down delay.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub at: Time,
    pub pods: i32,
}

/// Why the decided count is what it is: the last rule that changed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The stable window's need.
    Stable,
    /// A load held above the stable window's need through the whole panic window.
    SustainedRise,
    /// No scale-down while the panic window's load is above the stable window's.
    HeldWhileRising,
    /// Panic mode: the larger of the two windows' needs.
    Panic,
    /// Panic mode holds a higher count than the load now asks for.
    HeldInPanic,
    /// The step was cut to `maxScaleUpRate` or `maxScaleDownRate`.
    RateLimited,
    /// A higher recommendation within `scaleDownDelay` holds the count up.
    DelayedScaleDown,
    /// No load data: the count stays.
    NoData,
    /// The stable window is not covered yet: no scale-down.
    HeldUntilWindowCovered,
    /// Raised to `min`.
    ClampedMin,
    /// Lowered to `max`.
    ClampedMax,
}

impl Reason {
    /// As written in status and events.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Stable => "Stable",
            Reason::SustainedRise => "SustainedRise",
            Reason::HeldWhileRising => "HeldWhileRising",
            Reason::Panic => "Panic",
            Reason::HeldInPanic => "HeldInPanic",
            Reason::RateLimited => "RateLimited",
            Reason::DelayedScaleDown => "DelayedScaleDown",
            Reason::NoData => "NoData",
            Reason::HeldUntilWindowCovered => "HeldUntilWindowCovered",
            Reason::ClampedMin => "ClampedMin",
            Reason::ClampedMax => "ClampedMax",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One tick's decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The count to run.
    pub desired: i32,
    /// Pods the stable window's load needs (before rates, panic, delay and bounds; the current
    /// count without data).
    pub stable_pods: i32,
    /// Pods the panic window's load needs (likewise).
    pub panic_pods: i32,
    /// Panic mode is on after this tick.
    pub panic: bool,
    pub reason: Reason,
}

/// Decides one tick: the count to run and the state to remember.
///
/// Target 10 requests in flight per pod, 4 pods; the load steps from 40 to 320 in flight. Six
/// seconds later the panic window (6 s) sees 320 in flight, 32 pods' worth: eight times the
/// ready pods, so panic mode starts and asks for 32 pods at once (the stable window, 60 s,
/// averages only 68 in flight, 6.8 pods' worth):
///
/// ```
/// use std::time::Duration;
///
/// use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
/// use modelpilot::autoscale::recommend::{Config, Input, Reason, State, recommend};
///
/// let cfg = Config {
///     min: 1,
///     max: 50,
///     stable_window: Duration::from_secs(60),
///     panic_window: Duration::from_secs(6),
///     panic_threshold: 2.0,
///     scale_down_delay: Duration::ZERO,
///     max_scale_up_rate: 1000.0,
///     max_scale_down_rate: 2.0,
///     down_tolerance: 0.1,
/// };
/// let at = |s| Time(Timestamp::from_second(s).unwrap());
/// let tick = Input {
///     now: at(1_000),
///     current: 4,
///     ready: 4,
///     stable_need: Some(6.8),
///     panic_need: Some(32.0),
///     rise_need: None,
///     stable_covered: true,
/// };
/// let (d, state) = recommend(&cfg, &State::default(), &tick);
/// assert_eq!((d.desired, d.stable_pods, d.panic, d.reason), (32, 7, true, Reason::Panic));
///
/// // The burst is over two seconds later; panic mode keeps the 32 pods (28 still starting).
/// let tick = Input {
///     now: at(1_002),
///     current: 32,
///     stable_need: Some(7.0),
///     panic_need: Some(3.0),
///     rise_need: None,
///     ..tick
/// };
/// let (d, state) = recommend(&cfg, &state, &tick);
/// assert_eq!((d.desired, d.panic, d.reason), (32, true, Reason::HeldInPanic));
///
/// // A stable window after the last trigger panic mode ends. The stable window needs 12 pods;
/// // a decision at most halves the ready pods, so 16 now.
/// let tick = Input {
///     now: at(1_060),
///     ready: 32,
///     stable_need: Some(12.0),
///     panic_need: Some(11.0),
///     rise_need: None,
///     ..tick
/// };
/// let (d, state) = recommend(&cfg, &state, &tick);
/// assert_eq!((d.desired, d.panic, d.reason), (16, false, Reason::RateLimited));
/// assert_eq!(state.last_scale, Some(at(1_060)));
/// ```
///
/// With `scaleDownDelay: 30s` a fall in load is followed only 30 s after the last tick that
/// recommended the higher count:
///
/// ```
/// # use std::time::Duration;
/// # use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
/// # use modelpilot::autoscale::recommend::{Config, Input, Reason, State, recommend};
/// # let at = |s| Time(Timestamp::from_second(s).unwrap());
/// let cfg = Config {
///     min: 1,
///     max: 50,
///     stable_window: Duration::from_secs(60),
///     panic_window: Duration::from_secs(6),
///     panic_threshold: 2.0,
///     scale_down_delay: Duration::from_secs(30),
///     max_scale_up_rate: 1000.0,
///     max_scale_down_rate: 2.0,
///     down_tolerance: 0.1,
/// };
/// let tick = |s, need| Input {
///     now: at(s),
///     current: 32,
///     ready: 32,
///     stable_need: Some(need),
///     panic_need: Some(need),
///     rise_need: None,
///     stable_covered: true,
/// };
/// let (_, state) = recommend(&cfg, &State::default(), &tick(1_000, 32.0));
/// let (d, state) = recommend(&cfg, &state, &tick(1_002, 12.0));
/// assert_eq!((d.desired, d.reason), (32, Reason::DelayedScaleDown));
/// let (d, _) = recommend(&cfg, &state, &tick(1_030, 12.0));
/// assert_eq!((d.desired, d.reason), (16, Reason::RateLimited));
/// ```
pub fn recommend(cfg: &Config, state: &State, input: &Input) -> (Decision, State) {
    let finite = |need: Option<f64>| need.filter(|n| n.is_finite());
    let Some(stable_need) = finite(input.stable_need) else {
        let held = Step {
            desired: input.current,
            reason: Reason::NoData,
        };
        return finish(
            cfg,
            state.clone(),
            input,
            held,
            (input.current, input.current),
        );
    };
    let panic_need = finite(input.panic_need).unwrap_or(stable_need);
    let ready = f64::from(input.ready.max(1));
    let stable_pods = pods(stable_need);
    // Below the current count, the count that keeps a tolerance's headroom (never above it).
    let stable_down = pods(stable_need * (1.0 + cfg.down_tolerance.max(0.0))).min(input.current);
    let panic_pods = pods(panic_need);
    let up = saturate((ready * cfg.max_scale_up_rate).ceil());
    let down = saturate((ready / cfg.max_scale_down_rate).floor());
    let bounded = |want: i32| {
        let got = want.max(down).min(up);
        let reason = if got == want {
            Reason::Stable
        } else {
            Reason::RateLimited
        };
        (got, reason)
    };

    let mut next = state.clone();
    let now = &input.now;
    if panic_need / ready >= cfg.panic_threshold - EPSILON {
        if next.panic_since.is_none() {
            next.max_panic_pods = input.current;
        }
        next.panic_since = Some(now.clone());
    } else if let Some(since) = &next.panic_since
        && elapsed(since, now) >= cfg.stable_window
    {
        next.panic_since = None;
        next.max_panic_pods = 0;
    }

    let mut step = if next.panic_since.is_some() {
        let (got, reason) = bounded(stable_pods.max(panic_pods));
        if got >= next.max_panic_pods {
            next.max_panic_pods = got;
            let reason = match reason {
                Reason::Stable => Reason::Panic,
                other => other,
            };
            Step {
                desired: got,
                reason,
            }
        } else {
            Step {
                desired: next.max_panic_pods,
                reason: Reason::HeldInPanic,
            }
        }
    } else {
        let rise_pods = finite(input.rise_need).map_or(0, pods);
        let stable_want = if stable_pods < input.current {
            stable_down.max(stable_pods)
        } else {
            stable_pods
        };
        let (desired, reason) = bounded(stable_want.max(rise_pods));
        if desired < input.current && panic_need > stable_need + EPSILON {
            // The recent load is above the window's mean: not falling, so no scale-down.
            Step {
                desired: input.current,
                reason: Reason::HeldWhileRising,
            }
        } else {
            let reason = if rise_pods > stable_pods && reason == Reason::Stable {
                Reason::SustainedRise
            } else {
                reason
            };
            Step { desired, reason }
        }
    };

    if cfg.scale_down_delay.is_zero() {
        next.recent.clear();
    } else {
        next.recent = remember(&next.recent, now, step.desired, cfg.scale_down_delay);
        let highest = next
            .recent
            .iter()
            .map(|r| r.pods)
            .max()
            .unwrap_or(step.desired);
        if highest > step.desired {
            step = Step {
                desired: highest,
                reason: Reason::DelayedScaleDown,
            };
        }
    }
    finish(cfg, next, input, step, (stable_pods, panic_pods))
}

/// A count and the rule that set it, on its way through the rules.
struct Step {
    desired: i32,
    reason: Reason,
}

/// Rules 6 and 7, and the bookkeeping every tick does.
fn finish(
    cfg: &Config,
    mut next: State,
    input: &Input,
    mut step: Step,
    needs: (i32, i32),
) -> (Decision, State) {
    if !input.stable_covered && step.desired < input.current {
        step = Step {
            desired: input.current,
            reason: Reason::HeldUntilWindowCovered,
        };
    }
    if step.desired < cfg.min {
        step = Step {
            desired: cfg.min,
            reason: Reason::ClampedMin,
        };
    } else if step.desired > cfg.max {
        step = Step {
            desired: cfg.max,
            reason: Reason::ClampedMax,
        };
    }
    if step.desired != input.current {
        next.last_scale = Some(input.now.clone());
    }
    let decision = Decision {
        desired: step.desired,
        stable_pods: needs.0,
        panic_pods: needs.1,
        panic: next.panic_since.is_some(),
        reason: step.reason,
    };
    (decision, next)
}

/// The recent recommendations after recording `pods` at `now`: expired and dominated entries
/// dropped, the closest neighbours merged while there are more than [`MAX_RECENT`].
fn remember(
    recent: &[Recommendation],
    now: &Time,
    pods: i32,
    delay: Duration,
) -> Vec<Recommendation> {
    let mut kept: Vec<Recommendation> = recent
        .iter()
        .filter(|r| elapsed(&r.at, now) < delay && r.pods > pods)
        .cloned()
        .collect();
    kept.push(Recommendation {
        at: now.clone(),
        pods,
    });
    while kept.len() > MAX_RECENT {
        // An adjacent pair becomes one entry: the higher count, remembered until the later of
        // the two expires. The pair chosen adds the fewest pod-seconds of delay.
        let cost = |i: usize| {
            let (a, b) = (&kept[i], &kept[i + 1]);
            let seconds = elapsed(&a.at, &b.at).as_secs();
            u64::from((a.pods - b.pods).unsigned_abs()).saturating_mul(seconds)
        };
        let Some(i) = (0..kept.len() - 1).min_by_key(|&i| cost(i)) else {
            break;
        };
        let later = kept.remove(i + 1);
        kept[i].pods = kept[i].pods.max(later.pods);
        kept[i].at = later.at;
    }
    kept
}

/// Pods for a need: rounded up, float noise forgiven.
fn pods(need: f64) -> i32 {
    saturate((need - EPSILON).ceil().max(0.0))
}

/// A float count as pods (saturating; NaN is 0).
fn saturate(count: f64) -> i32 {
    count as i32
}

/// Time from `from` to `to`; zero when `to` is earlier (clocks of two leaders).
fn elapsed(from: &Time, to: &Time) -> Duration {
    Duration::try_from(to.0.duration_since(from.0)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
#[path = "recommend_tests.rs"]
mod tests;
