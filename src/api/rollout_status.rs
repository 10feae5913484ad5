//! `status.rollout` and `status.history`: everything the controller needs to continue a rollout
//! after a restart (current step, when it started, the verdict counts, the pause and abort
//! reasons, the last acknowledged request), and the record of past promotions and rollbacks.
//!
//! Timers are always measured from the timestamps stored here, never from process memory.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

/// The rollout state machine's position.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum RolloutPhase {
    /// No candidate: the stable revision serves everything.
    #[default]
    Stable,
    /// The candidate's signature is being read and compared with the stable model's.
    Checking,
    /// Working through the steps.
    Progressing,
    /// Waiting: a pause step, an explicit pause, an inconclusive analysis or metric-source errors
    /// (`pause.reason` says which).
    Paused,
    /// The candidate becomes stable (scaled to full, then traffic moved).
    Promoting,
    /// The candidate was rolled back (analysis failed, refused, or aborted by request); the
    /// stable revision serves everything until the spec changes or `retry` is requested.
    Aborted,
}

/// A revision as the rollout sees it.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RolloutRevision {
    /// Hash of everything that defines the pods (the `modelpilot.io/revision` label; names the
    /// revision's Deployment `<name>-<revision>`).
    pub name: String,
    /// Model URI.
    pub uri: String,
    /// Pinned SHA-256, when the spec gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Model version label, when the spec gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The model's signature as read from the model file (see `modelpilot signature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Baseline profile URI, when the spec gave one (a rollback restores it with the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// Why the rollout waits.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PauseStatus {
    /// `PauseStep`, `Requested`, `Inconclusive` or `MetricSourceErrors`.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// When the pause began.
    pub since: Time,
}

/// Why the candidate was rolled back.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AbortStatus {
    /// `AnalysisFailed`, `SignatureMismatch`, `SignatureCheckFailed`, `CanaryUnhealthy` or
    /// `Requested`.
    pub reason: String,
    /// Human-readable detail.
    pub message: String,
    /// When the rollout was aborted.
    pub at: Time,
}

/// The verdict of one measurement.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeasurementVerdict {
    /// The bound held.
    Successful,
    /// The bound was broken.
    Failed,
    /// Too few samples to judge (never counts as a failure).
    Inconclusive,
    /// The source could not be read (retried).
    Error,
}

/// One measurement of a metric.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// When it was taken.
    pub at: Time,
    /// The canary's value (absent when it could not be computed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<f64>,
    /// The stable revision's value over the same window, when the bound is relative.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<f64>,
    /// Samples behind the canary's value (requests or labels).
    #[serde(default)]
    pub samples: i64,
    /// The verdict.
    pub verdict: MeasurementVerdict,
    /// Why, in words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The running tally of one analysis metric.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    /// The metric's name.
    pub name: String,
    /// `step` (an inline analysis of the current step) or `background`.
    pub scope: String,
    /// Measurements taken (Successful + Failed + Inconclusive).
    #[serde(default)]
    pub taken: i32,
    /// Successful measurements.
    #[serde(default)]
    pub successful: i32,
    /// Failed measurements.
    #[serde(default)]
    pub failed: i32,
    /// Inconclusive measurements.
    #[serde(default)]
    pub inconclusive: i32,
    /// Source errors in a row (reset by any measurement).
    #[serde(default)]
    pub consecutive_errors: i32,
    /// The most recent measurements, newest last (at most 5).
    #[serde(default)]
    pub measurements: Vec<Measurement>,
}

/// An explicit request (`kubectl modelpilot <verb>`), acknowledged once carried out.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestAck {
    /// The request's id (from the `modelpilot.io/request` annotation).
    pub id: String,
    /// The verb: promote, promote-full, abort, retry, pause, resume, rollback.
    pub action: String,
    /// `Done` or `Refused`.
    pub result: String,
    /// What was done, or why not.
    pub message: String,
    /// When it was handled.
    pub at: Time,
}

/// Old stable revisions kept up after a promotion, until `after`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDown {
    /// The revision.
    pub revision: String,
    /// When its pods may go.
    pub after: Time,
}

/// `status.rollout`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// Where the state machine is.
    #[serde(default)]
    pub phase: RolloutPhase,
    /// The candidate being rolled out (or the one last aborted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<RolloutRevision>,
    /// Index of the current step (equal to the number of steps once all are done).
    #[serde(default)]
    pub current_step: i32,
    /// Hash of `spec.rollout.steps` when the rollout started (a change restarts the steps).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub steps_hash: String,
    /// When the current step started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_started_at: Option<Time>,
    /// When the analysis through every step started (background metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// The weight the steps ask for.
    #[serde(default)]
    pub desired_weight: i32,
    /// The weight the traffic really has (ready replica share, or the route's weights).
    #[serde(default)]
    pub applied_weight: i32,
    /// Set while paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStatus>,
    /// Set once aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortStatus>,
    /// Analysis metrics of the current step and the background analysis.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricStatus>,
    /// The last explicit request carried out (or refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<RequestAck>,
    /// A revision that may skip the analysis (set by `rollback`): when it becomes the candidate,
    /// it is promoted as soon as it is ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_track: Option<String>,
    /// A `rollback` being carried out: `spec.model` is set to this revision's model (after this
    /// status is written, again until the spec matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<RolloutRevision>,
    /// Old stable revisions waiting for their scale-down delay.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scale_downs: Vec<ScaleDown>,
}

/// How a rollout ended.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The candidate became stable.
    Promoted,
    /// The candidate was rolled back by the analysis, a refusal, or a request.
    RolledBack,
    /// A newer spec replaced the candidate before it finished.
    Superseded,
}

/// One entry of `status.history`, newest last.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// The candidate revision.
    pub revision: RolloutRevision,
    /// What happened to it.
    pub outcome: Outcome,
    /// When.
    pub at: Time,
    /// Short reason (`AnalysisFailed`, `Requested`, `StepsComplete`, …).
    pub reason: String,
    /// Detail.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}
