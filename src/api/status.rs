//! The observed state the operator writes back: typed, with `observedGeneration` and conditions
//! whose `lastTransitionTime` only moves when a condition's status flips.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::{
    autoscaling::AutoscalingStatus,
    monitoring::MonitoringStatus,
    retraining::RetrainingStatus,
    rollout_status::{HistoryEntry, RolloutRevision, RolloutStatus},
};

/// Condition types the operator maintains.
pub mod condition_types {
    /// All desired pods run the current revision and are ready (model loaded and warmed up).
    pub const READY: &str = "Ready";
    /// A new revision is rolling out or replicas are being added.
    pub const PROGRESSING: &str = "Progressing";
    /// Something needs attention: an invalid spec, an apply error, a stalled rollout.
    pub const DEGRADED: &str = "Degraded";
    /// Live inputs (or predictions) of the stable revision persistently differ from its
    /// baseline profile.
    pub const DRIFTED: &str = "Drifted";
    /// Accuracy on label feedback persistently below its floor or dropped since promotion.
    pub const ACCURACY_DEGRADED: &str = "AccuracyDegraded";
}

/// `status` of a condition, as Kubernetes spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// Not known yet.
    Unknown,
}

impl ConditionStatus {
    /// The string stored in `status.conditions[].status`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value { Self::True } else { Self::False }
    }
}

/// A one-word summary derived from the conditions (see `controller::status::derive_phase`).
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum Phase {
    /// Accepted, nothing observed yet.
    #[default]
    Pending,
    /// Pods of the current revision are starting or replacing older ones.
    Progressing,
    /// Serving the current revision on every desired replica.
    Ready,
    /// Needs attention; the `Degraded` condition says why.
    Degraded,
}

/// The model revision the pods run: what defines them, hashed into `name`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RevisionStatus {
    /// Hash of everything that defines the pods (the `modelpilot.io/revision` label).
    pub name: String,
    /// Model URI of this revision.
    pub uri: String,
    /// Pinned SHA-256, when the spec gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Model version label, when the spec gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Observed state of a ModelDeployment.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ModelDeploymentStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Summary of the conditions.
    #[serde(default)]
    pub phase: Phase,

    /// `Ready`, `Progressing`, `Degraded`, keyed by `type`.
    #[serde(default)]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Pods that exist (from the Deployment).
    #[serde(default)]
    pub replicas: i32,

    /// Pods that are ready (model downloaded, verified, loaded).
    #[serde(default)]
    pub ready_replicas: i32,

    /// Pods running the current revision.
    #[serde(default)]
    pub updated_replicas: i32,

    /// Label selector of the pods, for the scale subresource (`kubectl scale`, autoscalers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// The revision the spec asks for (the candidate while a rollout runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<RevisionStatus>,

    /// The revision serving the stable track (all traffic outside a rollout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<RolloutRevision>,

    /// The rollout of a candidate revision (state survives operator restarts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,

    /// Past rollouts, newest last (bounded by `spec.rollout.historyLimit`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,

    /// The autoscaler's inputs and decisions (with `spec.autoscaling`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingStatus>,

    /// The last monitoring evaluation of the stable revision (with `spec.monitoring`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringStatus>,

    /// Retraining triggers and what became of them (with `spec.retraining`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining: Option<RetrainingStatus>,
}
