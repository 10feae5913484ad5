//! The plan stage: `plan(spec, status, observed) -> Plan`, pure.
//!
//! It decides, from the validated spec, the status the last reconcile wrote and what this one
//! observed, which revisions run with how many pods, what weight the canary gets, what the rollout
//! status becomes, which events to publish and when to look again. The reconcile only carries the
//! plan out (apply, prune, status), so every decision here is table-tested without a cluster, and
//! a restarted operator that plans from the same status makes the same decisions.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{
    replicas,
    requests::{self, Request},
    steps::{self, Taken},
};
use crate::{
    api::{
        AutoscalingStatus, HistoryEntry, ModelDeploymentStatus, MonitoringStatus, Outcome,
        RequestAck, RetrainingStatus, RolloutPhase, RolloutRevision, RolloutStatus, ScaleDown,
        TrafficMode,
    },
    autoscale::tick::Counts,
    validate::ValidSpec,
};

/// How often a settled object is looked at when nothing changes.
pub const RESYNC: Duration = Duration::from_secs(300);
/// How soon to look again while waiting for pods, a Job or the route.
pub const WAITING: Duration = Duration::from_secs(2);

/// One revision's Deployment as observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackView {
    /// `spec.replicas` of its Deployment.
    pub replicas: i32,
    /// Ready pods.
    pub ready: i32,
}

/// The candidate's signature check.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum SignatureCheck {
    /// No result yet (the Job runs, or does not exist yet).
    #[default]
    Pending,
    /// The signature JSON read from the model.
    Ready(String),
    /// The check could not read the model.
    Failed(String),
}

/// What the reconcile observed.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub now: Option<Time>,
    /// Per revision: its Deployment.
    pub tracks: BTreeMap<String, TrackView>,
    /// The spec revision's signature check.
    pub signature: SignatureCheck,
    /// The stable model's signature, read from a ready stable pod (when status lacks it).
    pub stable_signature: Option<String>,
    /// Measurements taken this reconcile.
    pub measurements: Vec<Taken>,
    /// A request not acknowledged yet (or a malformed one: (id, reason)).
    pub request: Option<Result<Request, (String, String)>>,
    /// The canary weight the HTTPRoute has now (Gateway API mode).
    pub route_weight: Option<i32>,
    /// Why the candidate's pods cannot serve (a model that fails to load, a crash loop, …).
    pub canary_problem: Option<String>,
    /// How two signatures differ (`Err` lists the differences); given by the reconcile.
    pub signature_diff: Option<Result<(), Vec<String>>>,
    /// The built-in autoscaler's counts per track (with `autoscaling.mode: Builtin`); `None`:
    /// the count is `spec.replicas`.
    pub autoscaled: Option<Counts>,
    /// The retraining stage's answer to a pending `approve` or `retrain` request.
    pub approval: Option<Result<String, String>>,
}

/// An event to publish.
#[derive(Clone, Debug, PartialEq)]
pub struct Transition {
    pub reason: &'static str,
    pub message: String,
    pub warning: bool,
}

/// What to do now.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub stable: RolloutRevision,
    pub rollout: RolloutStatus,
    pub history: Vec<HistoryEntry>,
    /// Pods per revision; revisions not listed have no Deployment (pruned).
    pub replicas: BTreeMap<String, i32>,
    /// The revision playing canary, if any pods of it should exist.
    pub canary: Option<String>,
    /// The canary's share of traffic to set on the route (Gateway API mode).
    pub route_weight: i32,
    /// The spec revision's signature Job should exist.
    pub check_signature: bool,
    /// Set the spec's model to this revision's once the status is written (a rollback).
    pub rollback_to: Option<RolloutRevision>,
    pub transitions: Vec<Transition>,
    pub requeue: Duration,
    /// The autoscaler's status to write (set by the reconcile from its tick, not planned here).
    pub autoscaling: Option<AutoscalingStatus>,
    /// Monitoring's last evaluation to write (set by the reconcile's monitoring stage).
    pub monitoring: Option<MonitoringStatus>,
    /// The retraining state to write (set by the reconcile's retraining stage).
    pub retraining: Option<RetrainingStatus>,
}

/// An event to publish, normal.
pub fn note(reason: &'static str, message: String) -> Transition {
    Transition {
        reason,
        message,
        warning: false,
    }
}

/// An event to publish, a warning.
pub fn warn(reason: &'static str, message: String) -> Transition {
    Transition {
        reason,
        message,
        warning: true,
    }
}

/// The spec's revision as the rollout records it.
pub fn revision_of(spec: &ValidSpec) -> RolloutRevision {
    RolloutRevision {
        name: spec.revision.clone(),
        uri: spec.model_uri.clone(),
        sha256: spec.sha256.clone(),
        version: spec.version.clone(),
        signature: None,
        profile: spec.profile.clone(),
    }
}

fn label(r: &RolloutRevision) -> String {
    match &r.version {
        Some(v) => format!("{} (version {v})", r.name),
        None => r.name.clone(),
    }
}

fn active(phase: RolloutPhase) -> bool {
    matches!(
        phase,
        RolloutPhase::Checking
            | RolloutPhase::Progressing
            | RolloutPhase::Paused
            | RolloutPhase::Promoting
    )
}

fn push_history(
    history: &mut Vec<HistoryEntry>,
    limit: i32,
    revision: &RolloutRevision,
    outcome: Outcome,
    reason: &str,
    message: String,
    now: &Time,
) {
    history.push(HistoryEntry {
        revision: revision.clone(),
        outcome,
        at: now.clone(),
        reason: reason.into(),
        message,
    });
    let keep = usize::try_from(limit.max(1)).unwrap_or(1);
    if history.len() > keep {
        let extra = history.len() - keep;
        history.drain(..extra);
    }
}

/// Decide what to do. See the module doc; the rules, in order:
/// 1. No stable revision yet (a new object): the spec's revision is stable at once.
/// 2. The spec is back on the stable revision: any candidate is dropped at once, no analysis.
/// 3. A spec revision that is neither stable nor the candidate becomes the candidate (a running
///    candidate is superseded); a revision named by a rollback skips the check and the steps.
/// 4. An unacknowledged request is carried out (or refused) and acknowledged.
/// 5. The phase advances: signature check → steps (with analysis) → promotion.
/// 6. Replica counts and the route weight follow the phase and weight.
pub fn plan(spec: &ValidSpec, status: &ModelDeploymentStatus, obs: &Observed) -> Plan {
    let now = obs
        .now
        .clone()
        .unwrap_or_else(crate::controller::status::now);
    let rollout_spec = spec.rollout.clone().unwrap_or_default();
    let desired = revision_of(spec);
    let mut st = status.rollout.clone().unwrap_or_default();
    let mut history = status.history.clone();
    let mut transitions = Vec::new();
    let limit = rollout_spec.history_limit;

    // 1. The first revision is stable at once.
    let mut stable = match status.stable.clone() {
        Some(s) => s,
        None => {
            transitions.push(note(
                "Serving",
                format!("revision {} is stable", label(&desired)),
            ));
            // In the history too, so a later rollback can return to it.
            push_history(
                &mut history,
                limit,
                &desired,
                Outcome::Promoted,
                "Initial",
                "the first revision".into(),
                &now,
            );
            desired.clone()
        }
    };
    if stable.signature.is_none() {
        stable.signature.clone_from(&obs.stable_signature);
    }

    if desired.name == stable.name {
        // 2. Back on the stable revision (or never left it).
        if let Some(c) = st.canary.take()
            && active(st.phase)
        {
            push_history(
                &mut history,
                limit,
                &c,
                Outcome::Superseded,
                "SpecReverted",
                "the spec returned to the stable revision".into(),
                &now,
            );
            transitions.push(note(
                "RolloutCancelled",
                format!(
                    "spec returned to stable revision {}; candidate {} dropped",
                    label(&stable),
                    label(&c)
                ),
            ));
        }
        st = RolloutStatus {
            phase: RolloutPhase::Stable,
            last_request: st.last_request.take(),
            scale_downs: std::mem::take(&mut st.scale_downs),
            rollback_to: st.rollback_to.take(),
            fast_track: None,
            ..Default::default()
        };
    } else if st.canary.as_ref().map(|c| c.name.as_str()) != Some(desired.name.as_str()) {
        // 3. A new candidate.
        if let Some(old) = st.canary.take()
            && active(st.phase)
        {
            push_history(
                &mut history,
                limit,
                &old,
                Outcome::Superseded,
                "NewRevision",
                format!("replaced by revision {}", desired.name),
                &now,
            );
            transitions.push(note(
                "Superseded",
                format!("candidate {} replaced by {}", label(&old), label(&desired)),
            ));
        }
        // Without a rollout section a new revision replaces the stable one as soon as it is
        // ready, as a plain Deployment update would (no check, no steps).
        let fast =
            st.fast_track.as_deref() == Some(desired.name.as_str()) || spec.rollout.is_none();
        st = RolloutStatus {
            phase: if fast {
                RolloutPhase::Promoting
            } else {
                RolloutPhase::Checking
            },
            canary: Some(desired.clone()),
            steps_hash: steps::steps_hash(&rollout_spec),
            last_request: st.last_request.take(),
            scale_downs: std::mem::take(&mut st.scale_downs),
            rollback_to: st.rollback_to.take(),
            fast_track: st.fast_track.take().filter(|_| fast),
            ..Default::default()
        };
        transitions.push(note(
            "RolloutStarted",
            if spec.rollout.is_none() {
                format!(
                    "replacing revision {} with {} (no rollout steps)",
                    label(&stable),
                    label(&desired)
                )
            } else if fast {
                format!(
                    "rolling back to revision {} without analysis",
                    label(&desired)
                )
            } else {
                format!(
                    "candidate revision {} (stable {})",
                    label(&desired),
                    label(&stable)
                )
            },
        ));
    } else if active(st.phase)
        && st.phase != RolloutPhase::Checking
        && st.steps_hash != steps::steps_hash(&rollout_spec)
    {
        // The steps were edited mid-rollout: start them again.
        st.steps_hash = steps::steps_hash(&rollout_spec);
        st.phase = RolloutPhase::Progressing;
        st.current_step = 0;
        st.step_started_at = Some(now.clone());
        st.started_at = Some(now.clone());
        st.pause = None;
        st.metrics.clear();
        transitions.push(note(
            "StepsChanged",
            "rollout steps changed: starting from step 0".into(),
        ));
    }

    // 4. A request.
    match &obs.request {
        Some(Ok(request)) => {
            let (ack, effects) = match (&obs.approval, request.action) {
                (Some(answer), requests::Action::Approve | requests::Action::Retrain) => (
                    requests::acknowledge(request, answer.clone(), &now),
                    Default::default(),
                ),
                _ => requests::apply(request, &mut st, Some(&stable), &history, &now),
            };
            transitions.push(if ack.result == "Done" {
                note("RequestDone", format!("{}: {}", ack.action, ack.message))
            } else {
                warn("RequestRefused", format!("{}: {}", ack.action, ack.message))
            });
            if request.action == requests::Action::Abort
                && ack.result == "Done"
                && let Some(c) = &st.canary
            {
                push_history(
                    &mut history,
                    limit,
                    c,
                    Outcome::RolledBack,
                    "Requested",
                    "aborted by request".into(),
                    &now,
                );
                transitions.push(warn(
                    "RolledBack",
                    format!("revision {} rolled back: aborted by request", label(c)),
                ));
            }
            if effects.rollback_to.is_some() {
                st.rollback_to = effects.rollback_to;
            }
            st.last_request = Some(ack);
        }
        Some(Err((id, reason))) => {
            st.last_request = Some(RequestAck {
                id: id.clone(),
                action: "unknown".into(),
                result: "Refused".into(),
                message: reason.clone(),
                at: now.clone(),
            });
            transitions.push(warn("RequestRefused", reason.clone()));
        }
        None => {}
    }

    // A rollback is carried out (by writing spec.model after this status) until the spec names
    // the target's model.
    if st.rollback_to.as_ref().is_some_and(|t| {
        (&t.uri, &t.sha256, &t.version) == (&desired.uri, &desired.sha256, &desired.version)
    }) {
        st.rollback_to = None;
    }
    let rollback_to = st.rollback_to.clone();

    // 5. Advance.
    let gateway = rollout_spec.traffic.mode == TrafficMode::GatewayApi;
    let n = pods_wanted(spec, obs.autoscaled, gateway);
    let canary_own = obs.autoscaled.and_then(|c| c.canary);
    let mut requeue = RESYNC;
    let mut wait = |d: Duration| requeue = requeue.min(d);
    let canary_rev = st.canary.as_ref().map(|c| c.name.clone());
    let view = |rev: &Option<String>| -> TrackView {
        rev.as_ref()
            .and_then(|r| obs.tracks.get(r))
            .copied()
            .unwrap_or_default()
    };
    let stable_view = obs.tracks.get(&stable.name).copied().unwrap_or_default();
    let canary_view = view(&canary_rev);

    if st.phase == RolloutPhase::Checking {
        match &obs.signature {
            SignatureCheck::Pending => wait(WAITING),
            SignatureCheck::Failed(msg) => {
                fail(
                    &mut st,
                    &mut history,
                    &mut transitions,
                    limit,
                    "SignatureCheckFailed",
                    format!("could not read the candidate's signature: {msg}"),
                    &now,
                );
            }
            SignatureCheck::Ready(sig) => {
                if let Some(c) = st.canary.as_mut() {
                    c.signature = Some(sig.clone());
                }
                match (&obs.signature_diff, rollout_spec.allow_signature_change) {
                    (Some(Err(diffs)), false) => {
                        fail(
                            &mut st,
                            &mut history,
                            &mut transitions,
                            limit,
                            "SignatureMismatch",
                            format!(
                                "the candidate's signature differs from the stable model's: {}",
                                diffs.join("; ")
                            ),
                            &now,
                        );
                    }
                    (None, _) if stable.signature.is_none() && stable_view.ready > 0 => {
                        wait(WAITING)
                    }
                    (diff, _) => {
                        st.phase = RolloutPhase::Progressing;
                        st.current_step = 0;
                        st.step_started_at = Some(now.clone());
                        st.started_at = Some(now.clone());
                        let message = match diff {
                            Some(Ok(())) => {
                                "the candidate's inputs and outputs match the stable model's".into()
                            }
                            Some(Err(diffs)) => format!(
                                "signature change allowed (allowSignatureChange): {}",
                                diffs.join("; ")
                            ),
                            None => "the stable model's signature is unknown (no ready stable \
                                     pod to read it from): not compared"
                                .into(),
                        };
                        transitions.push(note("SignatureChecked", message));
                    }
                }
            }
        }
    }

    if steps::measuring(&st) {
        let pause_before = st.pause.clone();
        let notes = steps::fold(&rollout_spec, &mut st, &obs.measurements, &now);
        if st.phase == RolloutPhase::Aborted {
            if let Some(c) = &st.canary {
                let message = notes.first().cloned().unwrap_or_default();
                push_history(
                    &mut history,
                    limit,
                    c,
                    Outcome::RolledBack,
                    "AnalysisFailed",
                    message.clone(),
                    &now,
                );
                transitions.push(warn(
                    "RolledBack",
                    format!("revision {} rolled back: {message}", label(c)),
                ));
            }
        } else if st.phase == RolloutPhase::Paused
            && st.pause != pause_before
            && let Some(p) = &st.pause
        {
            transitions.push(warn(
                "RolloutPaused",
                format!("{}: {}", p.reason, p.message),
            ));
        }
    }

    if active(st.phase)
        && let (Some(problem), Some(_)) = (&obs.canary_problem, &st.canary)
    {
        fail(
            &mut st,
            &mut history,
            &mut transitions,
            limit,
            "CanaryUnhealthy",
            format!("the candidate's pods cannot serve: {problem}"),
            &now,
        );
    }

    let max_unavailable = replicas::max_unavailable(n, rollout_spec.max_unavailable.as_ref());
    if st.phase == RolloutPhase::Progressing {
        let traffic = Reached {
            gateway,
            n,
            canary_own,
            max_unavailable,
            stable: stable_view,
            canary: canary_view,
            route: obs.route_weight,
        };
        let advanced = steps::advance(&rollout_spec, &mut st, &traffic, &now);
        for (i, what) in advanced.completed {
            transitions.push(note("StepCompleted", format!("step {i} ({what}) complete")));
        }
        if let Some(d) = advanced.recheck {
            wait(d);
        }
        if st.phase == RolloutPhase::Paused
            && let Some(p) = &st.pause
        {
            transitions.push(note("RolloutPaused", p.message.clone()));
        }
    }

    let mut replicas_out = BTreeMap::new();
    let mut route_weight = 0;
    let mut canary_out = None;
    if st.phase == RolloutPhase::Promoting {
        st.desired_weight = 100;
        if canary_view.ready >= n && canary_view.replicas >= n {
            if let Some(c) = st.canary.take() {
                push_history(
                    &mut history,
                    limit,
                    &c,
                    Outcome::Promoted,
                    "Promoted",
                    format!("replaced revision {}", stable.name),
                    &now,
                );
                transitions.push(note(
                    "Promoted",
                    format!("revision {} is stable (was {})", label(&c), label(&stable)),
                ));
                // A plain replacement (no rollout section) keeps nothing around.
                let delay = if spec.rollout.is_some() {
                    i64::from(rollout_spec.scale_down_delay_seconds)
                } else {
                    0
                };
                st.scale_downs.retain(|s| s.revision != c.name);
                st.scale_downs.push(ScaleDown {
                    revision: stable.name.clone(),
                    after: add_secs(&now, delay),
                });
                stable = c;
                st = RolloutStatus {
                    phase: RolloutPhase::Stable,
                    last_request: st.last_request.take(),
                    scale_downs: std::mem::take(&mut st.scale_downs),
                    rollback_to: st.rollback_to.take(),
                    ..Default::default()
                };
            }
        } else {
            wait(WAITING);
        }
    }

    // 6. Pods and weights.
    let stable_name = stable.name.clone();
    match (st.phase, st.canary.as_ref()) {
        (RolloutPhase::Progressing | RolloutPhase::Paused | RolloutPhase::Promoting, Some(c)) => {
            let weight = if st.phase == RolloutPhase::Promoting {
                100
            } else {
                st.desired_weight
            };
            let (s, k) = if gateway {
                if st.phase == RolloutPhase::Promoting {
                    (n, n)
                } else {
                    gateway_pair(n, weight, canary_own)
                }
            } else {
                replicas::step_counts(
                    n,
                    weight,
                    max_unavailable,
                    stable_view.ready,
                    canary_view.ready,
                    stable_view.replicas,
                    canary_view.replicas,
                )
            };
            replicas_out.insert(stable_name.clone(), s);
            replicas_out.insert(c.name.clone(), k);
            canary_out = Some(c.name.clone());
            // Behind a route the last step's weight holds until the canary has all its pods; the
            // switch of the stable Service to the candidate is the promotion itself.
            route_weight = steps::weight_at(&rollout_spec, st.current_step);
            st.applied_weight = if gateway {
                obs.route_weight.unwrap_or(0)
            } else {
                replicas::applied_weight(stable_view.ready, canary_view.ready)
            };
        }
        _ => {
            replicas_out.insert(stable_name.clone(), n);
            st.desired_weight = 0;
            st.applied_weight = 0;
            if st.phase == RolloutPhase::Checking {
                wait(WAITING);
            }
        }
    }
    // Old stable revisions keep their pods until their delay is over.
    st.scale_downs.retain(|sd| {
        if sd.revision == stable_name || Some(&sd.revision) == canary_out.as_ref() {
            return false;
        }
        let left = steps::remaining(&sd.after, 0, &now);
        if left > Duration::ZERO {
            let current = obs.tracks.get(&sd.revision).map_or(0, |t| t.replicas);
            replicas_out.entry(sd.revision.clone()).or_insert(current);
            requeue = requeue.min(left + Duration::from_millis(500));
            true
        } else {
            false
        }
    });
    let check_signature = st.phase == RolloutPhase::Checking;
    for (_, due) in steps::due_metrics(&rollout_spec, &st, &now) {
        requeue = requeue.min(due.max(Duration::from_millis(200)));
    }
    if active(st.phase) {
        requeue = requeue.min(Duration::from_secs(10));
    }
    Plan {
        stable,
        rollout: st,
        history,
        replicas: replicas_out,
        canary: canary_out,
        route_weight,
        check_signature,
        rollback_to,
        transitions,
        requeue,
        autoscaling: None,
        monitoring: None,
        retraining: None,
    }
}

/// Roll the candidate back with a reason, recording it.
fn fail(
    st: &mut RolloutStatus,
    history: &mut Vec<HistoryEntry>,
    transitions: &mut Vec<Transition>,
    limit: i32,
    reason: &'static str,
    message: String,
    now: &Time,
) {
    requests::abort(st, reason, &message, now);
    if let Some(c) = &st.canary {
        push_history(
            history,
            limit,
            c,
            Outcome::RolledBack,
            reason,
            message.clone(),
            now,
        );
        transitions.push(warn(
            "RolledBack",
            format!("revision {} rolled back: {message}", label(c)),
        ));
    }
}

/// `t` plus `secs` seconds.
pub fn add_secs(t: &Time, secs: i64) -> Time {
    let ms =
        t.0.as_millisecond()
            .saturating_add(secs.saturating_mul(1000));
    Time(k8s_openapi::jiff::Timestamp::from_millisecond(ms).unwrap_or(t.0))
}

/// The pods the stable track (and with replica-ratio traffic, both tracks together) should
/// run: `spec.replicas`, or with the built-in autoscaler its counts — behind a route the stable
/// revision's own, with replica-ratio traffic the sum of both revisions' (each from its own
/// load), within `minReplicas..=maxReplicas`.
fn pods_wanted(spec: &ValidSpec, autoscaled: Option<Counts>, gateway: bool) -> i32 {
    match (&spec.autoscaling, autoscaled) {
        (Some(a), Some(c)) => {
            let total = if gateway {
                c.stable
            } else {
                c.stable.saturating_add(c.canary.unwrap_or(0))
            };
            total.clamp(a.min_replicas, a.max_replicas.max(a.min_replicas))
        }
        _ => spec.replicas,
    }
}

/// `(stable, canary)` behind a route: the weight's share of `n` for the canary, or once the
/// autoscaler has a count of its own for it, that count (at least one pod while it takes
/// traffic).
fn gateway_pair(n: i32, weight: i32, canary_own: Option<i32>) -> (i32, i32) {
    let (stable, share) = replicas::gateway_counts(n, weight);
    match canary_own {
        Some(own) if weight > 0 && own > 0 => (stable, own),
        _ => (stable, share),
    }
}

/// Traffic reached per mode, from the observed tracks.
struct Reached {
    gateway: bool,
    n: i32,
    canary_own: Option<i32>,
    max_unavailable: i32,
    stable: TrackView,
    canary: TrackView,
    route: Option<i32>,
}

impl steps::Traffic for Reached {
    fn reached(&self, weight: i32) -> bool {
        if self.gateway {
            let (_, canary) = gateway_pair(self.n, weight, self.canary_own);
            self.canary.ready >= canary && self.route == Some(weight)
        } else {
            let (stable, canary) = replicas::split(self.n, weight);
            let _ = self.max_unavailable;
            self.canary.ready >= canary
                && self.canary.replicas == canary
                && self.stable.replicas <= stable
                && self.stable.ready >= stable.min(self.stable.replicas)
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
