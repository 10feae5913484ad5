//! Status stage, the pure half: from what was observed (the applied Deployment, the validated
//! spec, a permanent error) to the `ModelDeploymentStatus` to write, and the transitions worth an
//! event. The client half lives in `reconcile.rs`.
//!
//! Rules, in order:
//! - `Ready` is true when at least the desired number of pods are ready (a rolling update never
//!   takes capacity away, so a model rollout keeps the service Ready), or when scaled to zero;
//!   it is false while the current revision's pods have a problem (see `pods.rs`).
//! - `Progressing` is true while pods of older revisions remain or new ones are not ready yet.
//! - `Degraded` is true for an invalid spec, a child the API server refused, a replica failure
//!   (quota, admission), a problem of the current revision's pods (a model that does not load,
//!   a crash loop, an image that cannot be pulled, pods not ready past a deadline) or a
//!   rollout past its progress deadline, in that order of precedence.
//! - `phase` is derived: Degraded, else Progressing, else Ready, else Pending.
//! - A condition's `lastTransitionTime` only moves when its `status` flips.

use k8s_openapi::{
    api::apps::v1::Deployment,
    apimachinery::pkg::apis::meta::v1::{Condition, Time},
    jiff::Timestamp,
};

use super::{error::Error, pods::PodProblem};
use crate::{
    api::{
        ConditionStatus, ModelDeploymentStatus, MonitoringSpec, MonitoringStatus, Phase,
        RevisionStatus, condition_types as ct,
    },
    build::labels,
};
use crate::{
    api::{RolloutPhase, RolloutSpec, RolloutStatus},
    rollout::plan::Plan,
    validate::ValidSpec,
};

/// What one reconcile saw.
pub struct Observation<'a> {
    /// `metadata.generation` of the ModelDeployment.
    pub generation: Option<i64>,
    /// The validated spec, when validation passed.
    pub spec: Option<&'a ValidSpec>,
    /// The Deployment as the API server returned it (after apply, or read when apply was skipped).
    pub deployment: Option<&'a Deployment>,
    /// A permanent error of this reconcile.
    pub error: Option<&'a Error>,
    /// The problem of the current revision's pods, if any.
    pub pods: Option<&'a PodProblem>,
    /// The rollout plan of this reconcile (stable revision, rollout state, history).
    pub plan: Option<&'a Plan>,
}

/// One condition before it gets its transition time.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub type_: &'static str,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

fn verdict(type_: &'static str, status: bool, reason: &str, message: String) -> Verdict {
    Verdict {
        type_,
        status: status.into(),
        reason: reason.into(),
        message,
    }
}

/// Replica counts and health read off a Deployment.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DeploymentView {
    pub desired: i32,
    pub replicas: i32,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    /// The Deployment controller has seen the latest spec.
    pub observed: bool,
    /// `Progressing=False` with `ProgressDeadlineExceeded`, with its message.
    pub stalled: Option<String>,
    /// `ReplicaFailure=True`, with its message.
    pub replica_failure: Option<String>,
    /// The problem of the current revision's pods (observed on the pods, not the Deployment).
    pub pods: Option<PodProblem>,
}

impl DeploymentView {
    /// Read the fields that matter from a Deployment.
    pub fn of(d: &Deployment) -> Self {
        let status = d.status.clone().unwrap_or_default();
        let conditions = status.conditions.unwrap_or_default();
        let find = |t: &str, s: &str| {
            conditions
                .iter()
                .find(|c| c.type_.as_deref() == Some(t) && c.status.as_deref() == Some(s))
                .map(|c| {
                    (
                        c.reason.clone().unwrap_or_default(),
                        c.message.clone().unwrap_or_default(),
                    )
                })
        };
        Self {
            desired: d.spec.replicas.unwrap_or(1),
            replicas: status.replicas.unwrap_or(0),
            ready: status.ready_replicas.unwrap_or(0),
            updated: status.updated_replicas.unwrap_or(0),
            available: status.available_replicas.unwrap_or(0),
            observed: status.observed_generation >= d.metadata.generation,
            stalled: find("Progressing", "False")
                .filter(|(reason, _)| reason == "ProgressDeadlineExceeded")
                .map(|(_, m)| m),
            replica_failure: find("ReplicaFailure", "True").map(|(_, m)| m),
            pods: None,
        }
    }

    /// All pods run the latest template and are ready; no older pods remain.
    pub fn rolled_out(&self) -> bool {
        self.observed
            && self.updated >= self.desired
            && self.replicas == self.updated
            && self.available >= self.desired
    }
}

/// Decide the three conditions.
///
/// ```
/// use modelpilot::controller::status::{DeploymentView, conditions_for};
/// let rolling = DeploymentView { desired: 2, replicas: 3, ready: 2, updated: 1, available: 2,
///                                observed: true, ..Default::default() };
/// let [ready, progressing, degraded] = conditions_for(Some(&rolling), None);
/// assert_eq!((ready.reason.as_str(), progressing.reason.as_str(), degraded.reason.as_str()),
///            ("MinimumReplicasReady", "RollingOut", "AsExpected"));
/// ```
pub fn conditions_for(view: Option<&DeploymentView>, error: Option<&Error>) -> [Verdict; 3] {
    let ready = match view {
        None => verdict(
            ct::READY,
            false,
            "NoDeployment",
            "the Deployment does not exist yet".into(),
        ),
        Some(v) if v.desired == 0 => verdict(
            ct::READY,
            true,
            "ScaledToZero",
            "0 replicas requested".into(),
        ),
        Some(DeploymentView {
            pods: Some(problem),
            ready,
            desired,
            ..
        }) => verdict(
            ct::READY,
            false,
            problem.reason,
            format!(
                "{ready}/{desired} replicas ready; pods of the current revision fail ({})",
                problem.reason
            ),
        ),
        Some(v) if v.ready >= v.desired && v.rolled_out() => verdict(
            ct::READY,
            true,
            "AllReplicasReady",
            format!("{}/{} replicas ready", v.ready, v.desired),
        ),
        Some(v) if v.ready >= v.desired => verdict(
            ct::READY,
            true,
            "MinimumReplicasReady",
            format!(
                "{}/{} replicas ready while a rollout proceeds",
                v.ready, v.desired
            ),
        ),
        Some(v) => verdict(
            ct::READY,
            false,
            "ReplicasNotReady",
            format!(
                "{}/{} replicas ready (model downloading, verifying or loading)",
                v.ready, v.desired
            ),
        ),
    };
    let progressing = match view {
        None => verdict(
            ct::PROGRESSING,
            true,
            "Creating",
            "creating the Deployment".into(),
        ),
        Some(v) if v.stalled.is_some() => verdict(
            ct::PROGRESSING,
            false,
            "ProgressDeadlineExceeded",
            v.stalled.clone().unwrap_or_default(),
        ),
        Some(v) if v.rolled_out() => verdict(
            ct::PROGRESSING,
            false,
            "RolloutComplete",
            format!("all {} replicas run the current revision", v.desired),
        ),
        Some(v) => verdict(
            ct::PROGRESSING,
            true,
            "RollingOut",
            format!(
                "{}/{} replicas updated, {} ready, {} total",
                v.updated, v.desired, v.ready, v.replicas
            ),
        ),
    };
    let degraded = match (error, view) {
        (Some(e), _) => verdict(ct::DEGRADED, true, e.reason(), e.to_string()),
        (None, Some(v)) if v.replica_failure.is_some() => verdict(
            ct::DEGRADED,
            true,
            "ReplicaFailure",
            v.replica_failure.clone().unwrap_or_default(),
        ),
        (
            None,
            Some(DeploymentView {
                pods: Some(problem),
                ..
            }),
        ) => verdict(ct::DEGRADED, true, problem.reason, problem.message.clone()),
        (None, Some(v)) if v.stalled.is_some() => verdict(
            ct::DEGRADED,
            true,
            "RolloutStalled",
            v.stalled.clone().unwrap_or_default(),
        ),
        _ => verdict(
            ct::DEGRADED,
            false,
            "AsExpected",
            "no problems observed".into(),
        ),
    };
    [ready, progressing, degraded]
}

/// Merge verdicts into the old conditions: `lastTransitionTime` only moves on a status flip.
pub fn merge_conditions(
    old: &[Condition],
    verdicts: &[Verdict],
    generation: Option<i64>,
    now: &Time,
) -> Vec<Condition> {
    verdicts
        .iter()
        .map(|v| {
            let since = old
                .iter()
                .find(|c| c.type_ == v.type_ && c.status == v.status.as_str())
                .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
            Condition {
                type_: v.type_.into(),
                status: v.status.as_str().into(),
                reason: v.reason.clone(),
                message: v.message.clone(),
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

/// The phase summarising a set of conditions.
pub fn derive_phase(conditions: &[Condition]) -> Phase {
    let is_true = |t: &str| {
        conditions
            .iter()
            .any(|c| c.type_ == t && c.status == "True")
    };
    if is_true(ct::DEGRADED) {
        Phase::Degraded
    } else if is_true(ct::PROGRESSING) {
        Phase::Progressing
    } else if is_true(ct::READY) {
        Phase::Ready
    } else {
        Phase::Pending
    }
}

/// The current time at the second precision the API server stores.
pub fn now() -> Time {
    let secs = Timestamp::now().as_second();
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// The status to write for an observation.
pub fn desired_status(
    old: &ModelDeploymentStatus,
    obs: &Observation<'_>,
    now: &Time,
) -> ModelDeploymentStatus {
    let view = obs.deployment.map(|d| DeploymentView {
        pods: obs.pods.cloned(),
        ..DeploymentView::of(d)
    });
    let mut verdicts = conditions_for(view.as_ref(), obs.error);
    let rollout = obs.plan.map(|p| &p.rollout).or(old.rollout.as_ref());
    if let Some(r) = rollout {
        rollout_conditions(&mut verdicts, r, obs.spec.and_then(|s| s.rollout.as_ref()));
    }
    let mut verdicts = verdicts.to_vec();
    let monitoring = obs
        .plan
        .map_or(old.monitoring.as_ref(), |p| p.monitoring.as_ref());
    if let Some(spec) = obs.spec.and_then(|s| s.monitoring.as_ref()) {
        verdicts.extend(monitoring_conditions(spec, monitoring));
    } else if obs.spec.is_none() {
        // Without a valid spec, keep what monitoring last said.
        let kept = [ct::DRIFTED, ct::ACCURACY_DEGRADED];
        verdicts.extend(
            old.conditions
                .iter()
                .filter(|c| kept.contains(&c.type_.as_str()))
                .map(|c| Verdict {
                    type_: if c.type_ == ct::DRIFTED {
                        ct::DRIFTED
                    } else {
                        ct::ACCURACY_DEGRADED
                    },
                    status: match c.status.as_str() {
                        "True" => ConditionStatus::True,
                        "False" => ConditionStatus::False,
                        _ => ConditionStatus::Unknown,
                    },
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                }),
        );
    }
    let conditions = merge_conditions(&old.conditions, &verdicts, obs.generation, now);
    let view = view.unwrap_or_default();
    ModelDeploymentStatus {
        observed_generation: obs.generation,
        phase: derive_phase(&conditions),
        conditions,
        replicas: view.replicas,
        ready_replicas: view.ready,
        updated_replicas: view.updated,
        selector: obs
            .spec
            .map(|s| labels::selector_string(&labels::service_selector(s)))
            .or_else(|| old.selector.clone()),
        revision: obs.spec.map(revision_of).or_else(|| old.revision.clone()),
        stable: obs
            .plan
            .map(|p| p.stable.clone())
            .or_else(|| old.stable.clone()),
        rollout: obs
            .plan
            .map(|p| p.rollout.clone())
            .or_else(|| old.rollout.clone()),
        history: obs
            .plan
            .map_or_else(|| old.history.clone(), |p| p.history.clone()),
        autoscaling: obs
            .plan
            .map_or_else(|| old.autoscaling.clone(), |p| p.autoscaling.clone()),
        monitoring: obs
            .plan
            .map_or_else(|| old.monitoring.clone(), |p| p.monitoring.clone()),
        retraining: obs
            .plan
            .map_or_else(|| old.retraining.clone(), |p| p.retraining.clone()),
    }
}

/// Let a rollout speak in `Progressing` and `Degraded`: a running canary is progress (with its
/// step and weight), a rolled-back candidate is a degradation until the spec changes or a retry.
///
/// ```
/// use modelpilot::{api::{RolloutPhase, RolloutStatus}, controller::status::{conditions_for, rollout_conditions}};
/// let mut verdicts = conditions_for(None, None);
/// let r = RolloutStatus { phase: RolloutPhase::Progressing, current_step: 1, desired_weight: 20,
///                         applied_weight: 20, ..Default::default() };
/// rollout_conditions(&mut verdicts, &r, None);
/// assert_eq!(verdicts[1].reason, "Canary");
/// ```
pub fn rollout_conditions(
    verdicts: &mut [Verdict; 3],
    r: &RolloutStatus,
    spec: Option<&RolloutSpec>,
) {
    let steps = spec.map_or(0, |s| s.steps.len());
    let canary = r
        .canary
        .as_ref()
        .map(|c| c.version.clone().unwrap_or_else(|| c.name.clone()))
        .unwrap_or_default();
    let at = format!(
        "canary {canary}: step {}/{steps}, weight {}% (applied {}%)",
        r.current_step, r.desired_weight, r.applied_weight
    );
    let progressing =
        |reason: &str, message: String| verdict(ct::PROGRESSING, true, reason, message);
    match r.phase {
        RolloutPhase::Stable => {}
        RolloutPhase::Checking => {
            verdicts[1] = progressing(
                "CheckingSignature",
                format!("canary {canary}: reading the model's signature"),
            );
        }
        RolloutPhase::Progressing => verdicts[1] = progressing("Canary", at),
        RolloutPhase::Paused => {
            let why = r
                .pause
                .as_ref()
                .map(|p| format!("{}: {}", p.reason, p.message))
                .unwrap_or_default();
            verdicts[1] = progressing("RolloutPaused", format!("{at}; paused ({why})"));
        }
        RolloutPhase::Promoting => {
            verdicts[1] = progressing(
                "Promoting",
                format!("canary {canary}: scaling to full before promotion"),
            )
        }
        RolloutPhase::Aborted => {
            let (reason, message) = r.abort.as_ref().map_or_else(
                || ("Aborted".to_owned(), String::new()),
                |a| (a.reason.clone(), a.message.clone()),
            );
            verdicts[1] = verdict(
                ct::PROGRESSING,
                false,
                "RolledBack",
                format!("canary {canary} rolled back ({reason})"),
            );
            if verdicts[2].status == ConditionStatus::False {
                verdicts[2] = verdict(
                    ct::DEGRADED,
                    true,
                    "RolledBack",
                    format!("canary {canary} rolled back ({reason}): {message}"),
                );
            }
        }
    }
}

/// `Drifted` (inputs or predictions) and `AccuracyDegraded` from the last evaluation: `Unknown`
/// until a verdict exists, then whether the finding persists.
///
/// ```
/// use modelpilot::{api::{MonitoringSpec, MonitoringStatus, DistributionStatus},
///                  controller::status::monitoring_conditions};
/// let spec: MonitoringSpec = serde_json::from_value(serde_json::json!({"drift": {}})).unwrap();
/// let st = MonitoringStatus { drift: Some(DistributionStatus { drift: Some(true), persistent: true,
///     recent: vec![true, true], drifted_features: vec!["petal_width".into()], ..Default::default() }),
///     ..Default::default() };
/// let v = monitoring_conditions(&spec, Some(&st));
/// assert_eq!((v[0].type_, v[0].reason.as_str()), ("Drifted", "InputDrift"));
/// assert!(v[0].message.contains("petal_width"));
/// ```
pub fn monitoring_conditions(spec: &MonitoringSpec, st: Option<&MonitoringStatus>) -> Vec<Verdict> {
    let unknown = |type_: &'static str, message: &str| Verdict {
        type_,
        status: ConditionStatus::Unknown,
        reason: "NotEvaluated".into(),
        message: message.into(),
    };
    let mut out = Vec::new();
    if spec.drift.is_some() || spec.prediction.is_some() {
        let input = st.and_then(|s| s.drift.as_ref());
        let prediction = st.and_then(|s| s.prediction.as_ref());
        let judged = input.is_some_and(|d| !d.recent.is_empty())
            || prediction.is_some_and(|d| !d.recent.is_empty());
        out.push(match (input, prediction) {
            (Some(d), _) if d.persistent => verdict(
                ct::DRIFTED,
                true,
                "InputDrift",
                format!(
                    "drift in {} of the last {} windows: {}",
                    d.recent.iter().filter(|v| **v).count(),
                    d.recent.len(),
                    d.drifted_features.join(", ")
                ),
            ),
            (_, Some(p)) if p.persistent => verdict(
                ct::DRIFTED,
                true,
                "PredictionShift",
                "the prediction distribution differs from the baseline".into(),
            ),
            _ if judged => verdict(
                ct::DRIFTED,
                false,
                "InDistribution",
                "live inputs match the baseline profile".into(),
            ),
            _ => unknown(ct::DRIFTED, "no window with enough samples yet"),
        });
    }
    if spec.accuracy.is_some() {
        let a = st.and_then(|s| s.accuracy.as_ref());
        out.push(match a {
            Some(a) if a.persistent => verdict(
                ct::ACCURACY_DEGRADED,
                true,
                "BelowBound",
                format!(
                    "{} {} on {} labels (at promotion {})",
                    a.metric,
                    fmt(a.value),
                    a.labels,
                    fmt(a.at_promotion)
                ),
            ),
            Some(a) if !a.recent.is_empty() => verdict(
                ct::ACCURACY_DEGRADED,
                false,
                "WithinBounds",
                format!("{} {} on {} labels", a.metric, fmt(a.value), a.labels),
            ),
            _ => unknown(ct::ACCURACY_DEGRADED, "not enough labelled feedback yet"),
        });
    }
    out
}

fn fmt(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |v| format!("{v:.3}"))
}

fn revision_of(spec: &ValidSpec) -> RevisionStatus {
    RevisionStatus {
        name: spec.revision.clone(),
        uri: spec.model_uri.clone(),
        sha256: spec.sha256.clone(),
        version: spec.version.clone(),
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
