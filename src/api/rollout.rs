//! `spec.rollout`: how a new revision replaces the stable one — the canary steps, how traffic is
//! split, and the analysis that judges the canary against the stable revision.
//!
//! Every rule the controller relies on is a CEL rule here, so a bad rollout section is refused at
//! `kubectl apply` with a message naming the field; `crate::validate` re-checks them for objects
//! written before a rule existed.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// How a new revision is rolled out. Without this section a new revision takes all traffic as
/// soon as its pods are ready (no canary, no analysis, no drop in ready capacity).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "self.traffic.mode != 'GatewayAPI' || has(self.traffic.httpRoute)"
).message("rollout.traffic.httpRoute is required when traffic.mode is GatewayAPI"))]
pub struct RolloutSpec {
    /// The canary steps, run in order; after the last one the candidate is promoted.
    /// Empty: promote as soon as the candidate is ready (still after the signature check).
    #[serde(default)]
    #[schemars(length(max = 32))]
    pub steps: Vec<RolloutStep>,

    /// How traffic is shifted to the canary.
    #[serde(default)]
    pub traffic: TrafficSpec,

    /// Metrics measured through every step (from the first step until promotion); a failure
    /// aborts the rollout like an inline analysis does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub analysis: Vec<AnalysisMetric>,

    /// Pods (a number or a percentage of `replicas`) the ready capacity may fall below
    /// `replicas` while traffic shifts with replica ratio. Default 0: never below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(
        "type(self) == int ? self >= 0 : self.matches('^[0-9]{1,3}%$') && int(self.replace('%', '')) <= 100"
    ).message("rollout.maxUnavailable must be a non-negative number of pods or a percentage like 25%"))]
    pub max_unavailable: Option<IntOrString>,

    /// Seconds the old stable revision keeps its pods after a promotion (so connections drain and
    /// a fast rollback stays possible). Default 30.
    #[serde(default = "default_scale_down_delay")]
    #[schemars(range(min = 0, max = 86400))]
    pub scale_down_delay_seconds: i32,

    /// Accept a candidate whose inputs or outputs (names, datatypes, shapes) differ from the
    /// stable model's. Default false: such a candidate is refused before it takes any traffic.
    #[serde(default)]
    pub allow_signature_change: bool,

    /// Consecutive metric-source errors (unreachable pods or Prometheus) after which the rollout
    /// pauses with reason `MetricSourceErrors`. Default 4.
    #[serde(default = "default_error_limit")]
    #[schemars(range(min = 1, max = 100))]
    pub consecutive_error_limit: i32,

    /// Prometheus server of metrics with `source: Prometheus` and of custom queries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusSpec>,

    /// Entries kept in `status.history`. Default 10.
    #[serde(default = "default_history_limit")]
    #[schemars(range(min = 1, max = 50))]
    pub history_limit: i32,
}

impl Default for RolloutSpec {
    /// The same defaults as an empty `rollout: {}` section.
    fn default() -> Self {
        Self {
            steps: Vec::new(),
            traffic: TrafficSpec::default(),
            analysis: Vec::new(),
            max_unavailable: None,
            scale_down_delay_seconds: default_scale_down_delay(),
            allow_signature_change: false,
            consecutive_error_limit: default_error_limit(),
            prometheus: None,
            history_limit: default_history_limit(),
        }
    }
}

fn default_scale_down_delay() -> i32 {
    30
}
fn default_error_limit() -> i32 {
    4
}
fn default_history_limit() -> i32 {
    10
}

/// One canary step: exactly one of `setWeight`, `pause` and `analysis`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "[has(self.setWeight), has(self.pause), has(self.analysis)].filter(x, x).size() == 1"
).message("each rollout step sets exactly one of setWeight, pause or analysis"))]
pub struct RolloutStep {
    /// Percentage of traffic (0-100) the canary receives from this step on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub set_weight: Option<i32>,

    /// Wait: for `durationSeconds`, or until promoted (`kubectl modelpilot promote`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause: Option<PauseStep>,

    /// Measure these metrics; the step ends when each has taken its `count` conclusive measurements
    /// without failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<StepAnalysis>,
}

/// A pause step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct PauseStep {
    /// Seconds to wait; absent: wait until promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 604800))]
    pub duration_seconds: Option<i32>,
}

/// An inline analysis step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct StepAnalysis {
    /// The metrics judged in this step (names unique: a list keyed by `name`).
    #[schemars(length(min = 1, max = 16))]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    #[x_kube(validation = Rule::new("self.all(m, !has(m.count) || m.count >= 1)")
        .message("an analysis step's metrics need count >= 1 (a step with count 0 would never end)"))]
    pub metrics: Vec<AnalysisMetric>,
}

/// How traffic reaches the canary.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum TrafficMode {
    /// The canary's share of pods follows the weight behind the one Service (no dependency).
    #[default]
    ReplicaRatio,
    /// The operator sets the `backendRefs` weights of your `HTTPRoute` between a stable and a
    /// canary Service it owns (`<name>-stable`, `<name>-canary`).
    #[serde(rename = "GatewayAPI")]
    GatewayApi,
}

/// `spec.rollout.traffic`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSpec {
    /// `ReplicaRatio` (default) or `GatewayAPI`.
    #[serde(default)]
    pub mode: TrafficMode,

    /// Name of an `HTTPRoute` (gateway.networking.k8s.io/v1) in the same namespace whose rules
    /// the operator points at its stable and canary Services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new(
        "self.size() <= 253 && self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')"
    ).message("rollout.traffic.httpRoute must be the name of an HTTPRoute (lowercase DNS name)"))]
    pub http_route: Option<String>,
}

/// Where a metric is measured.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum MetricSource {
    /// Scrape each revision's ready pods (`/metrics`), difference counters between scrapes.
    #[default]
    Direct,
    /// Ask the Prometheus query API (`rollout.prometheus.url`).
    Prometheus,
}

/// `spec.rollout.prometheus`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrometheusSpec {
    /// Base URL of the Prometheus HTTP API, e.g. `http://prometheus.monitoring:9090`.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.matches('^https?://[^/]+')")
        .message("rollout.prometheus.url must be an http:// or https:// URL"))]
    pub url: String,
    /// Seconds one query may take. Default 5.
    #[serde(default = "default_query_timeout")]
    #[schemars(range(min = 1, max = 60))]
    pub timeout_seconds: i32,
}

fn default_query_timeout() -> i32 {
    5
}

/// One analysis metric: what is measured (exactly one of the kinds), how often, and how it is
/// judged.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "[has(self.errorRate), has(self.latency), has(self.accuracy), has(self.predictionShift), has(self.inputDrift), has(self.query)].filter(x, x).size() == 1"
).message("each analysis metric sets exactly one of errorRate, latency, accuracy, predictionShift, inputDrift or query"))]
#[x_kube(validation = Rule::new("!has(self.query) || !has(self.source) || self.source == 'Prometheus'")
    .message("a query metric is always measured by Prometheus (source must be Prometheus or unset)"))]
pub struct AnalysisMetric {
    /// Name of the metric in status and events (unique in its step).
    #[schemars(length(min = 1, max = 63))]
    #[x_kube(validation = Rule::new("self.size() <= 63 && self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')")
        .message("analysis metric name must be 1-63 lowercase letters, digits or '-'"))]
    pub name: String,

    /// Seconds between measurements; each measures the interval before it (the first comes one
    /// interval after the analysis starts). Default 10.
    #[serde(default = "default_interval")]
    #[schemars(range(min = 1, max = 3600))]
    pub interval_seconds: i32,

    /// Conclusive (Successful or Failed) measurements to take; an inline analysis step ends
    /// after this many without failing. Default 3. 0: keep measuring until the rollout ends
    /// (background analysis).
    #[serde(default = "default_count")]
    #[schemars(range(min = 0, max = 1000))]
    pub count: i32,

    /// Failed measurements tolerated; one more aborts the rollout. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 1000))]
    pub failure_limit: i32,

    /// Inconclusive measurements (too few samples) tolerated; one more pauses the rollout with
    /// reason `Inconclusive`. Default 2.
    #[serde(default = "default_inconclusive_limit")]
    #[schemars(range(min = 0, max = 1000))]
    pub inconclusive_limit: i32,

    /// Fewest samples (requests, or labels for accuracy) per revision for a verdict; below it a
    /// measurement is Inconclusive, never Failed. Default 20.
    #[serde(default = "default_min_sample")]
    #[schemars(range(min = 1, max = 1000000))]
    pub min_sample: i64,

    /// Seconds after the analysis starts before the first measurement. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub initial_delay_seconds: i32,

    /// Where the built-in metric is measured: `Direct` (default) or `Prometheus`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<MetricSource>,

    /// Fraction of inference requests answered with a 5xx status (0.01 = 1 %).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<Bound>,

    /// A latency quantile of inference requests, in seconds, from the histogram buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<LatencyMetric>,

    /// A score from label feedback (`/v2/models/<m>/feedback`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<ScoreMetric>,

    /// Jensen–Shannon distance (0-1) between the canary's and the stable's prediction
    /// distributions over the window (judge with `max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(
        "!has(self.maxRatioToStable) && !has(self.maxIncreaseOverStable) && !has(self.maxDecreaseFromStable)"
    ).message("predictionShift already compares the canary with the stable revision: bound it with max (or min)"))]
    pub prediction_shift: Option<Bound>,

    /// Largest per-feature PSI of the canary's inputs against the baseline profile over the
    /// window (the server needs a baseline profile, `MODELPILOT_BASELINE_PROFILE`; judge with `max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_drift: Option<Bound>,

    /// A custom PromQL query (business metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<QueryMetric>,
}

fn default_interval() -> i32 {
    10
}
fn default_count() -> i32 {
    3
}
fn default_inconclusive_limit() -> i32 {
    2
}
fn default_min_sample() -> i64 {
    20
}

/// A bound on a measured value: absolute (`max`, `min`) and/or relative to the stable revision
/// measured over the same window. Every bound given must hold.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "has(self.max) || has(self.min) || has(self.maxRatioToStable) || has(self.maxIncreaseOverStable) || has(self.maxDecreaseFromStable)"
).message("a bound needs at least one of max, min, maxRatioToStable, maxIncreaseOverStable or maxDecreaseFromStable"))]
pub struct Bound {
    /// The canary's value must be at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The canary's value must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// canary ≤ this × stable (e.g. 1.2 for "p99 at most 20 % slower").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0").message("maxRatioToStable must be positive"))]
    pub max_ratio_to_stable: Option<f64>,
    /// canary ≤ stable + this (e.g. 0.005 for "error rate at most half a point higher").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0.0").message("maxIncreaseOverStable must not be negative"))]
    pub max_increase_over_stable: Option<f64>,
    /// canary ≥ stable − this (e.g. 0.02 for "accuracy at most two points lower").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0.0").message("maxDecreaseFromStable must not be negative"))]
    pub max_decrease_from_stable: Option<f64>,
}

/// `latency`: a quantile of the end-to-end request duration.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LatencyMetric {
    /// The quantile, e.g. 0.99. Default 0.99.
    #[serde(default = "default_quantile")]
    #[x_kube(validation = Rule::new("self > 0.0 && self < 1.0").message("latency.quantile must be between 0 and 1 (exclusive)"))]
    pub quantile: f64,
    /// The bound, in seconds.
    pub bound: Bound,
}

fn default_quantile() -> f64 {
    0.99
}

/// Which score of label feedback.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Score {
    /// Correct predictions / labelled predictions.
    #[default]
    Accuracy,
    /// Macro-averaged F1 over the classes seen.
    F1,
    /// Macro-averaged recall over the classes seen.
    Recall,
}

/// `accuracy`: a score of the canary's predictions against the labels sent back.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScoreMetric {
    /// `accuracy` (default), `f1` or `recall`.
    #[serde(default)]
    pub score: Score,
    /// The bound (a fraction, 0-1).
    pub bound: Bound,
}

/// `query`: a PromQL expression returning one number, judged by a success or a failure bound.
/// `$revision` and `$namespace` in the query are replaced by the measured revision and the
/// namespace; with a relative bound the same query is also run for the stable revision.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.success) != has(self.failure)")
    .message("a query metric sets exactly one of success or failure"))]
pub struct QueryMetric {
    /// The PromQL expression.
    #[schemars(length(min = 1, max = 4096))]
    #[x_kube(validation = Rule::new("self.size() > 0 && self.size() <= 4096").message("query.promql must be 1-4096 characters"))]
    pub promql: String,
    /// The measurement succeeds when the value is within this bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success: Option<Bound>,
    /// The measurement fails when the value is within this bound (absolute bounds only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Bound>,
}
