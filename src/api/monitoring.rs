//! `spec.monitoring` and `status.monitoring`: is the stable model still seeing the data it was
//! trained on, and is it still right?
//!
//! The servers count their live inputs, predictions and labelled feedback over a sliding window
//! (`intervalSeconds`); every interval the operator sums those windows across the stable
//! revision's pods and compares them with the revision's baseline profile (`model.profile`) and
//! with the accuracy it had when it was promoted. A finding must persist (`required` of the last
//! `windows` evaluations) before `Drifted` or `AccuracyDegraded` turns true, and only then can a
//! retraining start. Every rule the controller relies on is a CEL rule here.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// The statistic a distribution is judged with (`Auto`, `KS`, `ChiSquare`, `PSI`,
/// `JensenShannon`), and the multiple-testing correction (`Bonferroni`, `None`): the drift
/// module's own types, so the spec, `modelpilot drift` and the evaluation name them alike.
pub use crate::drift::evaluate::{Correction, Method as DriftMethod};

/// How many of the recent evaluations must agree before a finding counts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.required <= self.windows")
    .message("persistence.required must not exceed persistence.windows"))]
pub struct Persistence {
    /// The last N evaluations looked at (default 3).
    #[serde(default = "default_windows")]
    #[schemars(range(min = 1, max = 20))]
    pub windows: i32,
    /// How many of them must find drift (default 2).
    #[serde(default = "default_required")]
    #[schemars(range(min = 1, max = 20))]
    pub required: i32,
}

impl Default for Persistence {
    fn default() -> Self {
        Self {
            windows: default_windows(),
            required: default_required(),
        }
    }
}

fn default_windows() -> i32 {
    3
}
fn default_required() -> i32 {
    2
}

/// Input drift against the baseline profile (or prediction shift against its `prediction`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.threshold) || self.method == 'PSI' || self.method == 'JensenShannon'"
).message("threshold is only used with method PSI or JensenShannon (the tests use pValue)"))]
pub struct DriftMonitor {
    /// `Auto` (default: KS for numeric features, chi-square for categorical), `KS`,
    /// `ChiSquare`, `PSI` or `JensenShannon`.
    #[serde(default)]
    pub method: DriftMethod,
    /// Significance level of the tests (default 0.05).
    #[serde(default = "default_p_value")]
    #[schemars(range(min = 0.000001, max = 0.5))]
    pub p_value: f64,
    /// Score above which PSI or Jensen–Shannon calls drift (defaults 0.2 and 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 10.0))]
    pub threshold: Option<f64>,
    /// `Bonferroni` (default) or `None`.
    #[serde(default)]
    pub correction: Correction,
    /// Fewest live values a feature needs in a window for a verdict (default 100).
    #[serde(default = "default_min_samples")]
    #[schemars(range(min = 1, max = 100000000))]
    pub min_samples: i64,
    /// How many windows must find drift (default 2 of the last 3).
    #[serde(default)]
    pub persistence: Persistence,
}

fn default_p_value() -> f64 {
    0.05
}
fn default_min_samples() -> i64 {
    100
}

/// The score label feedback is judged by.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum AccuracyMetric {
    /// Share of labelled rows predicted right.
    #[default]
    Accuracy,
    /// F1 (binary for the profile's `positive_label`, else the macro average).
    F1,
    /// Recall (binary or macro, like F1).
    Recall,
    /// Precision (binary or macro, like F1).
    Precision,
}

impl AccuracyMetric {
    /// The name used in status, events and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accuracy => "accuracy",
            Self::F1 => "f1",
            Self::Recall => "recall",
            Self::Precision => "precision",
        }
    }
}

/// Accuracy on label feedback: an absolute floor, a drop from the value at promotion, or both.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.floor) || has(self.maxDrop)")
    .message("monitoring.accuracy needs floor, maxDrop or both (what counts as degraded)"))]
pub struct AccuracyMonitor {
    /// `Accuracy` (default), `F1`, `Recall` or `Precision`.
    #[serde(default)]
    pub metric: AccuracyMetric,
    /// Degraded below this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub floor: Option<f64>,
    /// Degraded when the value is this much below the first value measured after promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub max_drop: Option<f64>,
    /// Fewest labelled rows in a window for a verdict (default 50).
    #[serde(default = "default_min_labels")]
    #[schemars(range(min = 1, max = 100000000))]
    pub min_labels: i64,
    /// How many windows must find it degraded (default 2 of the last 3).
    #[serde(default)]
    pub persistence: Persistence,
}

fn default_min_labels() -> i64 {
    50
}

/// What the operator watches on the stable revision.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.drift) || has(self.accuracy) || has(self.prediction)")
    .message("monitoring needs at least one of drift, accuracy or prediction"))]
pub struct MonitoringSpec {
    /// Seconds of traffic one evaluation covers; also the servers' sliding window (default 60).
    #[serde(default = "default_interval")]
    #[schemars(range(min = 10, max = 86400))]
    pub interval_seconds: i32,
    /// Input drift per feature against `model.profile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DriftMonitor>,
    /// Accuracy from label feedback (`POST /v2/models/<name>/feedback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<AccuracyMonitor>,
    /// Shift of the prediction distribution against the profile's `prediction`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<DriftMonitor>,
}

fn default_interval() -> i32 {
    60
}

/// One feature's result in the last evaluation.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FeatureEvaluation {
    /// Feature name from the profile (`prediction` for the prediction shift).
    pub name: String,
    /// `KS`, `ChiSquare`, `PSI` or `JensenShannon`.
    pub method: String,
    /// The test statistic or score.
    pub statistic: f64,
    /// The p-value, for the tests that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// What the p-value (after correction) or the score was compared with.
    pub threshold: f64,
    /// Live values counted in the window (summed over the pods).
    pub samples: i64,
    /// The verdict; absent below `minSamples`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<bool>,
}

/// The last distribution check (inputs or predictions) and its recent verdicts.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct DistributionStatus {
    /// The verdict of the last window; absent when no feature had enough samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<bool>,
    /// Verdicts of the recent windows, oldest first (`persistence.windows` at most).
    #[serde(default)]
    pub recent: Vec<bool>,
    /// Whether the finding persists (`required` of the recent windows).
    #[serde(default)]
    pub persistent: bool,
    /// Features that drifted in the last window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drifted_features: Vec<String>,
    /// Per-feature results of the last window.
    #[serde(default)]
    pub features: Vec<FeatureEvaluation>,
}

/// The last accuracy check.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AccuracyStatus {
    /// `accuracy`, `f1`, `recall` or `precision`.
    pub metric: String,
    /// The value over the last window; absent below `minLabels`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// Labelled rows in the last window.
    pub labels: i64,
    /// The first value measured on this revision after its promotion (`maxDrop` compares with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_promotion: Option<f64>,
    /// Verdicts of the recent windows (true = degraded), oldest first.
    #[serde(default)]
    pub recent: Vec<bool>,
    /// Whether the degradation persists.
    #[serde(default)]
    pub persistent: bool,
}

/// What monitoring saw on the stable revision.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringStatus {
    /// The revision evaluated (the stable one); everything below resets when it changes.
    pub revision: String,
    /// When the last evaluation ran (the next one is due `intervalSeconds` later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation: Option<Time>,
    /// Evaluations run on this revision.
    #[serde(default)]
    pub evaluations: i64,
    /// Input drift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<DistributionStatus>,
    /// Prediction shift.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<DistributionStatus>,
    /// Accuracy on label feedback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<AccuracyStatus>,
    /// Why the last evaluation could not run (pods unreachable, no profile, …), if it could not.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}
