//! One autoscaler tick for one ModelDeployment, pure: from each serving revision's load and
//! the state the last tick left in status, the count each revision should run, the status to
//! write and the events to publish.
//!
//! Each revision is decided on its own load, never averaged with another: the stable and the
//! canary each carry their own recommender state (keyed by revision, so a promoted canary keeps
//! its state as the new stable). How the counts become pods depends on the traffic mode and is
//! the plan's business (`rollout::plan`): with replica-ratio traffic the two recommendations
//! add up to a total that is split by the canary's weight; behind a Gateway API route each
//! revision runs its own count.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{
    collect::RevisionLoad,
    recommend::{self, Config, Input},
};
use crate::{
    api::{AutoscalingMode, AutoscalingSpec, AutoscalingStatus, RevisionScale},
    rollout::plan::Transition,
};

/// The role a revision plays (the same as the Deployment's track label).
pub use crate::build::labels::Track;

/// One serving revision at this tick.
#[derive(Clone, Debug, PartialEq)]
pub struct TrackInput<'a> {
    pub revision: &'a str,
    pub track: Track,
    /// Its Deployment's replicas now.
    pub current: i32,
    /// Its ready pods.
    pub ready: i32,
    /// Its load; `None` when no pod could be measured this tick.
    pub load: Option<&'a RevisionLoad>,
}

/// The counts the autoscaler wants, per track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub stable: i32,
    pub canary: Option<i32>,
}

/// The outcome of a tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided {
    pub counts: Counts,
    pub status: AutoscalingStatus,
    pub transitions: Vec<Transition>,
}

/// The recommender's configuration for a track. The canary may go down to one pod whatever
/// `minReplicas` says: it takes only a share of the traffic.
pub fn config(spec: &AutoscalingSpec, track: Track) -> Config {
    let stable = f64::from(spec.stable_window_seconds.max(1));
    let panic = stable * f64::from(spec.panic_window_percent.clamp(1, 100)) / 100.0;
    Config {
        min: match track {
            Track::Stable => spec.min_replicas,
            Track::Canary => 1,
        },
        max: spec.max_replicas.max(spec.min_replicas),
        stable_window: std::time::Duration::from_secs_f64(stable),
        panic_window: std::time::Duration::from_secs_f64(panic),
        panic_threshold: spec.panic_threshold,
        scale_down_delay: std::time::Duration::from_secs(
            u64::try_from(spec.scale_down_delay_seconds.max(0)).unwrap_or(0),
        ),
        max_scale_up_rate: spec.max_scale_up_rate,
        max_scale_down_rate: spec.max_scale_down_rate,
        down_tolerance: super::recommend::DOWN_TOLERANCE,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Decides every track from its load.
///
/// ```
/// use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
/// use modelpilot::{
///     api::AutoscalingSpec,
///     autoscale::{collect::RevisionLoad, load::Average, tick::{Track, TrackInput, decide}},
/// };
/// let spec: AutoscalingSpec =
///     serde_json::from_str(r#"{"maxReplicas": 10, "target": 4}"#).unwrap();
/// let busy = |concurrency| Average { concurrency, samples: 30, ..Default::default() };
/// // 2 pods, 40 requests in flight over the last 6 s (20 over the minute): panic, 10 pods.
/// let load = RevisionLoad {
///     stable: Some(busy(20.0)), panic: Some(busy(40.0)), covered: true, ..Default::default()
/// };
/// let stable = TrackInput {
///     revision: "abc", track: Track::Stable, current: 2, ready: 2, load: Some(&load),
/// };
/// let now = Time(Timestamp::from_second(1_000).unwrap());
/// let decided = decide(&spec, None, &[stable], &now);
/// assert_eq!(decided.counts.stable, 10);
/// assert!(decided.status.revisions[0].panic);
/// assert_eq!(decided.transitions[0].reason, "ScaledUp");
/// ```
pub fn decide(
    spec: &AutoscalingSpec,
    prev: Option<&AutoscalingStatus>,
    tracks: &[TrackInput<'_>],
    now: &Time,
) -> Decided {
    let target = spec.target();
    let mut counts = Counts::default();
    let mut revisions = Vec::new();
    let mut transitions = Vec::new();
    for t in tracks {
        let last = prev.and_then(|p| p.revisions.iter().find(|r| r.revision == t.revision));
        let before = last.map(|r| r.state.clone()).unwrap_or_default();
        // What the last tick decided: an event only when the decision changes (with replica
        // ratio traffic the weight's rounding may keep the Deployment a pod off it).
        let last_desired = last.map_or(t.current, |r| r.desired);
        let load = t.load;
        let avg = |w: Option<&crate::autoscale::load::Average>| {
            w.map(|a| a.need(spec.metric, target, t.ready))
        };
        let input = Input {
            now: now.clone(),
            current: t.current,
            ready: t.ready,
            stable_need: avg(load.and_then(|l| l.stable.as_ref())),
            panic_need: avg(load.and_then(|l| l.panic.as_ref())),
            rise_need: load
                .and_then(|l| l.rise.as_ref())
                .map(|a| a.floor_need(spec.metric, target, t.ready)),
            stable_covered: load.is_some_and(|l| l.covered),
        };
        let (decision, state) = recommend::recommend(&config(spec, t.track), &before, &input);
        let per_pod = |w: Option<&crate::autoscale::load::Average>| {
            w.map(|a| round2(a.per_pod(spec.metric, t.ready)))
        };
        let entry = RevisionScale {
            revision: t.revision.to_string(),
            track: t.track.as_str().to_string(),
            observed: per_pod(load.and_then(|l| l.stable.as_ref())),
            observed_panic: per_pod(load.and_then(|l| l.panic.as_ref())),
            ready_pods: t.ready,
            recommendation: decision.stable_pods,
            desired: decision.desired,
            panic: decision.panic,
            reason: decision.reason.to_string(),
            state,
        };
        // A revision just created has nothing to scale from: its first count is no event.
        let created = last.is_none() && t.current == 0;
        if decision.desired != last_desired && !created {
            transitions.push(scaled(spec, t, last_desired, &entry));
        }
        match t.track {
            Track::Stable => counts.stable = decision.desired,
            Track::Canary => counts.canary = Some(decision.desired),
        }
        revisions.push(entry);
    }
    Decided {
        counts,
        status: AutoscalingStatus {
            mode: AutoscalingMode::Builtin,
            hpa: None,
            revisions,
        },
        transitions,
    }
}

/// The counts the last tick decided, for a reconcile between ticks: a revision without an
/// entry keeps what it runs.
///
/// ```
/// use modelpilot::{
///     api::{AutoscalingStatus, RevisionScale},
///     autoscale::tick::{Track, TrackInput, carried},
/// };
/// let prev = AutoscalingStatus {
///     revisions: vec![RevisionScale { revision: "a".into(), desired: 5, ..Default::default() }],
///     ..Default::default()
/// };
/// let track = |revision, track| TrackInput { revision, track, current: 2, ready: 2, load: None };
/// let counts = carried(Some(&prev), &[track("a", Track::Stable), track("b", Track::Canary)]);
/// assert_eq!((counts.stable, counts.canary), (5, Some(2)));
/// ```
pub fn carried(prev: Option<&AutoscalingStatus>, tracks: &[TrackInput<'_>]) -> Counts {
    let mut counts = Counts::default();
    for t in tracks {
        let desired = prev
            .and_then(|p| p.revisions.iter().find(|r| r.revision == t.revision))
            .map_or(t.current, |r| r.desired);
        match t.track {
            Track::Stable => counts.stable = desired,
            Track::Canary => counts.canary = Some(desired),
        }
    }
    counts
}

fn scaled(
    spec: &AutoscalingSpec,
    t: &TrackInput<'_>,
    from: i32,
    entry: &RevisionScale,
) -> Transition {
    let up = entry.desired > from;
    let unit = match spec.metric {
        crate::api::ScaleMetric::Concurrency => "requests in flight per pod",
        crate::api::ScaleMetric::Rps => "requests/s per pod",
        crate::api::ScaleMetric::QueueTime => "s queue time",
    };
    let shown = |v: Option<f64>| v.map_or_else(|| "no data".to_string(), |v| format!("{v}"));
    Transition {
        reason: if up { "ScaledUp" } else { "ScaledDown" },
        message: format!(
            "{} revision {} from {} to {} pods ({}): {} {unit} over the stable window, {} over the panic window, target {}{}",
            t.track.as_str(),
            t.revision,
            from,
            entry.desired,
            entry.reason,
            shown(entry.observed),
            shown(entry.observed_panic),
            spec.target(),
            if entry.panic { "; panic mode" } else { "" },
        ),
        warning: false,
    }
}

#[cfg(test)]
#[path = "tick_tests.rs"]
mod tests;
