//! The step machine of a running rollout: which metrics are live, folding their measurements into
//! verdict counts, and moving through `setWeight`, `pause` and `analysis` steps.
//!
//! Pure: it reads the rollout spec, the status and what was observed, and changes only the
//! rollout status it is given. Every timer is measured from timestamps in that status.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::{Digest, Sha256};

use super::requests;
use crate::api::{
    AnalysisMetric, MetricStatus, PauseStatus, RolloutPhase, RolloutSpec, RolloutStatus,
    RolloutStep,
};

/// Scope of the current step's inline analysis.
pub const STEP_SCOPE: &str = "step";
/// Scope of the background analysis.
pub const BACKGROUND_SCOPE: &str = "background";

/// A metric that is live now, with the time its analysis started.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveMetric<'a> {
    pub scope: &'static str,
    pub metric: &'a AnalysisMetric,
    pub started_at: Time,
}

/// A measurement taken by the reconcile, to be folded in.
#[derive(Clone, Debug, PartialEq)]
pub struct Taken {
    pub scope: String,
    pub name: String,
    pub measurement: crate::api::Measurement,
}

/// Hash of the steps, so an edit of the steps during a rollout restarts them.
pub fn steps_hash(spec: &RolloutSpec) -> String {
    let body = serde_json::to_string(&spec.steps).unwrap_or_default();
    hex::encode(&Sha256::digest(body.as_bytes())[..5])
}

/// The metrics measured now: the background analysis while progressing, plus the current step's
/// inline analysis.
pub fn live_metrics<'a>(spec: &'a RolloutSpec, st: &RolloutStatus) -> Vec<LiveMetric<'a>> {
    if !measuring(st) {
        return Vec::new();
    }
    let mut live = Vec::new();
    if let Some(started) = &st.started_at {
        live.extend(spec.analysis.iter().map(|metric| LiveMetric {
            scope: BACKGROUND_SCOPE,
            metric,
            started_at: started.clone(),
        }));
    }
    if let (Some(step), Some(started)) = (current_step(spec, st), &st.step_started_at)
        && let Some(analysis) = &step.analysis
    {
        live.extend(analysis.metrics.iter().map(|metric| LiveMetric {
            scope: STEP_SCOPE,
            metric,
            started_at: started.clone(),
        }));
    }
    live
}

/// The live metrics with the time until each is due (zero: measure now); metrics that took all
/// their `count` conclusive measurements are left out.
///
/// ```
/// use std::time::Duration;
/// use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
/// use modelpilot::{api::*, rollout::steps::due_metrics};
/// let t = |s| Time(Timestamp::from_second(s).unwrap());
/// let spec: RolloutSpec = serde_json::from_value(serde_json::json!({
///     "steps": [{"analysis": {"metrics": [{"name": "e", "intervalSeconds": 10, "errorRate": {"max": 0.01}}]}}],
///     "analysis": [{"name": "bg", "intervalSeconds": 5, "errorRate": {"max": 0.01}}]})).unwrap();
/// let st = RolloutStatus { phase: RolloutPhase::Progressing, started_at: Some(t(0)),
///     step_started_at: Some(t(2)), ..Default::default() };
/// let due: Vec<_> = due_metrics(&spec, &st, &t(5)).into_iter()
///     .map(|(l, d)| (l.metric.name.as_str(), d)).collect();
/// assert_eq!(due, vec![("bg", Duration::ZERO), ("e", Duration::from_secs(7))]);
/// ```
pub fn due_metrics<'a>(
    spec: &'a RolloutSpec,
    st: &RolloutStatus,
    now: &Time,
) -> Vec<(LiveMetric<'a>, Duration)> {
    live_metrics(spec, st)
        .into_iter()
        .filter_map(|live| {
            let tally = st
                .metrics
                .iter()
                .find(|m| m.scope == live.scope && m.name == live.metric.name);
            let due = crate::analysis::verdict::due(live.metric, tally, &live.started_at, now)?;
            Some((live, due))
        })
        .collect()
}

/// Whether analysis runs now: while progressing, and at an open-ended pause step (the background
/// analysis keeps judging a canary that waits for a person). Any other pause stops it.
pub fn measuring(st: &RolloutStatus) -> bool {
    match st.phase {
        RolloutPhase::Progressing => true,
        RolloutPhase::Paused => st.pause.as_ref().is_some_and(|p| p.reason == PAUSE_STEP),
        _ => false,
    }
}

/// `pause.reason` of an open-ended pause step.
pub const PAUSE_STEP: &str = "PauseStep";

fn current_step<'a>(spec: &'a RolloutSpec, st: &RolloutStatus) -> Option<&'a RolloutStep> {
    usize::try_from(st.current_step)
        .ok()
        .and_then(|i| spec.steps.get(i))
}

/// The weight the steps ask for at step `index`: the last `setWeight` at or before it.
///
/// ```
/// use modelpilot::{api::{RolloutSpec, RolloutStep}, rollout::steps::weight_at};
/// let w = |n| RolloutStep { set_weight: Some(n), ..Default::default() };
/// let pause = RolloutStep { pause: Some(Default::default()), ..Default::default() };
/// let spec = RolloutSpec { steps: vec![w(10), pause, w(50)], ..Default::default() };
/// assert_eq!((weight_at(&spec, 0), weight_at(&spec, 1), weight_at(&spec, 2)), (10, 10, 50));
/// ```
pub fn weight_at(spec: &RolloutSpec, index: i32) -> i32 {
    let upto = usize::try_from(index.saturating_add(1)).unwrap_or(0);
    spec.steps
        .iter()
        .take(upto)
        .filter_map(|s| s.set_weight)
        .next_back()
        .unwrap_or(0)
}

/// Fold the measurements into the metric tallies; returns the first verdict that stops the rollout.
pub fn fold(
    spec: &RolloutSpec,
    st: &mut RolloutStatus,
    taken: &[Taken],
    now: &Time,
) -> Vec<String> {
    let mut notes = Vec::new();
    let live: Vec<(String, String, AnalysisMetric)> = live_metrics(spec, st)
        .into_iter()
        .map(|l| (l.scope.to_owned(), l.metric.name.clone(), l.metric.clone()))
        .collect();
    for t in taken {
        let Some((_, _, metric)) = live.iter().find(|(s, n, _)| *s == t.scope && *n == t.name)
        else {
            continue; // measured for a step that has ended meanwhile
        };
        let index = match st
            .metrics
            .iter()
            .position(|m| m.scope == t.scope && m.name == t.name)
        {
            Some(i) => i,
            None => {
                st.metrics.push(MetricStatus {
                    name: t.name.clone(),
                    scope: t.scope.clone(),
                    ..Default::default()
                });
                st.metrics.len() - 1
            }
        };
        let (updated, progress) = crate::analysis::verdict::tally(
            metric,
            &st.metrics[index],
            t.measurement.clone(),
            spec.consecutive_error_limit,
        );
        st.metrics[index] = updated;
        match progress {
            crate::analysis::verdict::Progress::Abort { message } => {
                let message = format!("{} ({}): {message}", t.name, t.scope);
                requests::abort(st, "AnalysisFailed", &message, now);
                notes.push(message);
                return notes;
            }
            crate::analysis::verdict::Progress::Pause { reason, message } => {
                st.phase = RolloutPhase::Paused;
                st.pause = Some(PauseStatus {
                    reason: reason.to_string(),
                    message: format!("{} ({}): {message}", t.name, t.scope),
                    since: now.clone(),
                });
                return notes;
            }
            _ => {}
        }
    }
    notes
}

/// Whether the traffic has reached a weight (supplied by the planner, which knows the mode).
pub trait Traffic {
    /// The canary has the pods and the route has the weights that `weight` asks for.
    fn reached(&self, weight: i32) -> bool;
}

/// What advancing did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Advance {
    /// Steps completed in this pass (index, description).
    pub completed: Vec<(i32, String)>,
    /// Look again within this long.
    pub recheck: Option<Duration>,
}

/// Move through the steps as far as they are complete now. Ends in `Promoting` after the last
/// step, `Paused` at an open-ended pause step, or waiting at the first incomplete step.
///
/// Worked example: steps `[setWeight 20, pause 30 s, setWeight 100]` at step 0 with the canary's
/// pods ready for 20 % → step 0 completes, step 1 starts now (`stepStartedAt`), and the plan looks
/// again in 30 s; 30 s later step 1 completes, and once the traffic reaches 100 % the rollout is
/// `Promoting`.
pub fn advance(
    spec: &RolloutSpec,
    st: &mut RolloutStatus,
    traffic: &dyn Traffic,
    now: &Time,
) -> Advance {
    let mut out = Advance::default();
    // Bounded: each pass either completes a step or stops.
    for _ in 0..=spec.steps.len() {
        if st.phase != RolloutPhase::Progressing {
            return out;
        }
        let Some(step) = current_step(spec, st) else {
            st.phase = RolloutPhase::Promoting;
            return out;
        };
        st.desired_weight = weight_at(spec, st.current_step);
        let started = st.step_started_at.clone().unwrap_or_else(|| now.clone());
        let done = if let Some(w) = step.set_weight {
            let reached = traffic.reached(w);
            if !reached {
                out.recheck = Some(Duration::from_secs(2));
            }
            reached
        } else if let Some(pause) = &step.pause {
            match pause.duration_seconds {
                Some(secs) => {
                    let left = remaining(&started, i64::from(secs), now);
                    if left > Duration::ZERO {
                        out.recheck = Some(left);
                    }
                    left == Duration::ZERO
                }
                None => {
                    st.phase = RolloutPhase::Paused;
                    st.pause = Some(PauseStatus {
                        reason: PAUSE_STEP.into(),
                        message: format!(
                            "step {}: paused until promoted (`kubectl modelpilot promote`)",
                            st.current_step
                        ),
                        since: now.clone(),
                    });
                    false
                }
            }
        } else if let Some(analysis) = &step.analysis {
            analysis.metrics.iter().all(|m| {
                st.metrics.iter().any(|s| {
                    s.scope == STEP_SCOPE
                        && s.name == m.name
                        && m.count > 0
                        && crate::analysis::verdict::conclusive(s) >= m.count
                })
            })
        } else {
            true
        };
        if !done {
            return out;
        }
        out.completed.push((st.current_step, describe(step)));
        st.current_step += 1;
        st.step_started_at = Some(now.clone());
        st.metrics.retain(|m| m.scope != STEP_SCOPE);
    }
    out
}

/// Time left of `secs` seconds since `since`.
pub fn remaining(since: &Time, secs: i64, now: &Time) -> Duration {
    let elapsed = now.0.as_millisecond() - since.0.as_millisecond();
    let left = secs.saturating_mul(1000).saturating_sub(elapsed);
    Duration::from_millis(u64::try_from(left).unwrap_or(0))
}

/// A step in words, for events and the plugin.
pub fn describe(step: &RolloutStep) -> String {
    if let Some(w) = step.set_weight {
        format!("setWeight {w}")
    } else if let Some(p) = &step.pause {
        match p.duration_seconds {
            Some(s) => format!("pause {s}s"),
            None => "pause until promoted".into(),
        }
    } else if let Some(a) = &step.analysis {
        let names: Vec<_> = a.metrics.iter().map(|m| m.name.as_str()).collect();
        format!("analysis {}", names.join(", "))
    } else {
        "empty step".into()
    }
}

#[cfg(test)]
#[path = "steps_tests.rs"]
mod tests;
