//! `spec.retraining` and `status.retraining`: the user's training Job, run once per trigger.
//!
//! When monitoring finds persistent drift or degraded accuracy, the operator records a trigger
//! in status first and only then creates the Job, under a name derived from the trigger's
//! number, so a restarted or second operator finds the same Job instead of starting another.
//! The Job reports the model it produced in its termination message; the operator points
//! `spec.model` at it and the candidate goes through the canary like any other revision. Every
//! step of that story is one entry of `status.retraining.history`.

use k8s_openapi::{api::core::v1::PodTemplateSpec, apimachinery::pkg::apis::meta::v1::Time};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::rollout_status::RolloutRevision;
use crate::retrain::result::JobResult;

/// What can start a retraining.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TriggerReason {
    /// Input drift persisted (`monitoring.drift`).
    Drift,
    /// Accuracy on label feedback stayed degraded (`monitoring.accuracy`).
    AccuracyDegraded,
    /// The prediction distribution shifted (`monitoring.prediction`).
    PredictionShift,
    /// Requested with `kubectl modelpilot retrain` (not a `triggers` entry: always allowed).
    Manual,
}

impl TriggerReason {
    /// The name used in the Job's environment, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Drift => "Drift",
            Self::AccuracyDegraded => "AccuracyDegraded",
            Self::PredictionShift => "PredictionShift",
            Self::Manual => "Manual",
        }
    }
}

fn default_triggers() -> Vec<TriggerReason> {
    vec![TriggerReason::Drift, TriggerReason::AccuracyDegraded]
}

/// The retraining Job and the limits on running it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetrainingSpec {
    /// Pod template of the training Job. The operator adds the `MODELPILOT_*` environment
    /// (trigger, current model, output location, baseline profile) to every container and sets
    /// `restartPolicy: Never`; the Job reports its result in its termination message.
    pub template: PodTemplateSpec,

    /// Findings that start a retraining (default `[Drift, AccuracyDegraded]`).
    #[serde(default = "default_triggers")]
    pub triggers: Vec<TriggerReason>,

    /// Where Jobs write their output: the operator hands each trigger `<outputUri>/<name>/<n>/`.
    #[x_kube(validation = Rule::new(
        "self.size() <= 1024 && self.matches('^(file|pvc|https|s3)://.+')"
    ).message("retraining.outputUri must start with file://, pvc://, https:// or s3://"))]
    pub output_uri: String,

    /// Seconds after a retraining ends (whatever its outcome) before another may start
    /// (default 3600).
    #[serde(default = "default_cooldown")]
    #[schemars(range(min = 0, max = 2592000))]
    pub cooldown_seconds: i64,

    /// Most retrainings started in any 24 hours (default 3).
    #[serde(default = "default_max_per_day")]
    #[schemars(range(min = 1, max = 100))]
    pub max_per_day: i32,

    /// Wait for `kubectl modelpilot approve NAME` before creating each Job (default false).
    #[serde(default)]
    pub approval: bool,

    /// Seconds a Job may run before it is stopped and recorded as timed out (default 3600).
    #[serde(default = "default_deadline")]
    #[schemars(range(min = 10, max = 604800))]
    pub deadline_seconds: i64,

    /// Pod retries of the Job before it counts as failed (default 0).
    #[serde(default)]
    #[schemars(range(min = 0, max = 10))]
    pub backoff_limit: i32,
}

fn default_cooldown() -> i64 {
    3600
}
fn default_max_per_day() -> i32 {
    3
}
fn default_deadline() -> i64 {
    3600
}

/// Where one retraining stands.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum RetrainPhase {
    /// Triggered; waiting for `kubectl modelpilot approve`.
    AwaitingApproval,
    /// Triggered (and approved); the Job is created or running.
    #[default]
    Running,
    /// The Job's model is the candidate revision of a rollout.
    Candidate,
    /// The candidate was promoted: it is the stable revision now.
    Promoted,
    /// The candidate was rolled back by the canary.
    RolledBack,
    /// The Job failed, or its result was refused.
    Failed,
    /// The Job ran past `deadlineSeconds`.
    TimedOut,
    /// The spec moved to another model before the candidate was judged.
    Superseded,
}

impl RetrainPhase {
    /// Whether the retraining is over.
    pub fn finished(self) -> bool {
        !matches!(
            self,
            Self::AwaitingApproval | Self::Running | Self::Candidate
        )
    }
}

/// The window and features a trigger was based on.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// Why.
    pub reason: TriggerReason,
    /// When the trigger was recorded (the daily budget and the cooldown count from here).
    pub at: Time,
    /// Start of the evaluation windows that found it (the recent windows of the finding).
    pub window_start: Time,
    /// End of the last of them (the evaluation that made the finding persist).
    pub window_end: Time,
    /// Features that drifted (empty for accuracy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// A one-line summary (statistics or accuracy against its bound).
    #[serde(default)]
    pub detail: String,
}

/// One trigger → Job → candidate → outcome.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetrainRecord {
    /// Trigger number, from 1; names the Job `<name>-retrain-<id>`.
    pub id: i64,
    /// What fired.
    pub trigger: Trigger,
    /// The stable revision when it fired (the model the Job starts from).
    pub from: RolloutRevision,
    /// Where it stands.
    pub phase: RetrainPhase,
    /// The Job's name once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// Where the Job was told to write.
    pub output_uri: String,
    /// When the Job was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// What the Job reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<JobResult>,
    /// The candidate revision built from the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
    /// When it finished (promoted, rolled back, failed, timed out, superseded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// Why it ended as it did.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The retraining history, newest last (20 entries at most).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RetrainingStatus {
    /// The last trigger number given (the next is one more).
    #[serde(default)]
    pub last_id: i64,
    /// Each trigger and what became of it.
    #[serde(default)]
    pub history: Vec<RetrainRecord>,
}
