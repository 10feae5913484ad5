//! `spec.autoscaling` and `status.autoscaling`: inference replicas scaled on inference load.
//!
//! A model server saturates on requests in flight long before its CPU average moves, so the
//! built-in autoscaler reads each revision's own server metrics (requests in flight, requests
//! per second, queue time) and recommends a count per revision; `mode: HPA` instead hands the
//! replica count to a HorizontalPodAutoscaler (a metrics adapter, KEDA) through the scale
//! subresource. Every rule the controller relies on is a CEL rule here, so a bad section is
//! refused at `kubectl apply` with a message naming the field.

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerBehavior, MetricSpec};
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use crate::autoscale::recommend::State;

/// Who owns the replica count.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum AutoscalingMode {
    /// The operator scales each revision on its own servers' metrics, every `tickSeconds`.
    #[default]
    Builtin,
    /// The operator creates a HorizontalPodAutoscaler on the ModelDeployment's scale
    /// subresource and follows `spec.replicas` as the HPA sets it.
    #[serde(rename = "HPA")]
    Hpa,
}

/// The load signal of the built-in autoscaler.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum ScaleMetric {
    /// Mean requests in flight per pod (queued or running). `target`: requests per pod.
    #[default]
    Concurrency,
    /// Inference requests per second per pod. `target`: requests/s per pod.
    #[serde(rename = "RPS")]
    Rps,
    /// Mean seconds a request waits for a batch slot or session. `target`: seconds; the count
    /// scales in proportion to `observed / target`.
    QueueTime,
}

impl ScaleMetric {
    /// The target when the spec gives none.
    pub fn default_target(self) -> f64 {
        match self {
            Self::Concurrency => 8.0,
            Self::Rps => 100.0,
            Self::QueueTime => 0.05,
        }
    }
}

/// How the inference replicas follow load.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas")
    .message("autoscaling.minReplicas must not exceed autoscaling.maxReplicas"))]
#[x_kube(validation = Rule::new(
    "self.mode != 'HPA' || (has(self.hpa) && size(self.hpa.metrics) > 0)"
).message("autoscaling.hpa.metrics is required when autoscaling.mode is HPA (the HPA needs at least one metric)"))]
#[x_kube(validation = Rule::new("self.mode == 'HPA' || !has(self.hpa)")
    .message("autoscaling.hpa is only used with mode: HPA"))]
#[x_kube(validation = Rule::new(
    "self.stableWindowSeconds * self.panicWindowPercent >= self.tickSeconds * 100"
).message("autoscaling: the panic window (stableWindowSeconds × panicWindowPercent / 100) must be at least tickSeconds long"))]
pub struct AutoscalingSpec {
    /// `Builtin` (default) or `HPA`.
    #[serde(default)]
    pub mode: AutoscalingMode,

    /// Fewest pods of the stable revision, at least 1 (with no pod there is no load to measure,
    /// and no activator holds requests while one starts). Default 1.
    #[serde(default = "default_min")]
    #[schemars(range(min = 1, max = 1000))]
    pub min_replicas: i32,

    /// Most pods of a revision (and, with replica-ratio traffic, of both revisions together).
    #[schemars(range(min = 1, max = 1000))]
    pub max_replicas: i32,

    /// `Concurrency` (default), `RPS` or `QueueTime`.
    #[serde(default)]
    pub metric: ScaleMetric,

    /// The per-pod value to hold the metric at. Default: 8 in flight, 100 requests/s, 0.05 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self > 0.0")
        .message("autoscaling.target must be greater than 0"))]
    pub target: Option<f64>,

    /// Seconds of load averaged for ordinary decisions. Default 60.
    #[serde(default = "default_stable_window")]
    #[schemars(range(min = 6, max = 3600))]
    pub stable_window_seconds: i32,

    /// The panic window as a percentage of the stable window. Default 10 (6 s of 60 s).
    #[serde(default = "default_panic_percent")]
    #[schemars(range(min = 1, max = 100))]
    pub panic_window_percent: i32,

    /// Panic when the load over the panic window needs this many times the ready pods. While
    /// panicking the count only goes up. Default 2.0.
    #[serde(default = "default_panic_threshold")]
    #[x_kube(validation = Rule::new("self > 1.0 && self <= 100.0")
        .message("autoscaling.panicThreshold must be above 1.0 and at most 100"))]
    pub panic_threshold: f64,

    /// A scale-down goes only as low as the highest recommendation of the last this many
    /// seconds. Default 0.
    #[serde(default)]
    #[schemars(range(min = 0, max = 3600))]
    pub scale_down_delay_seconds: i32,

    /// Largest step up per decision, as a factor of the ready pods (2.0: at most double).
    /// Default 1000.
    #[serde(default = "default_up_rate")]
    #[x_kube(validation = Rule::new("self > 1.0")
        .message("autoscaling.maxScaleUpRate must be above 1.0"))]
    pub max_scale_up_rate: f64,

    /// Largest step down per decision, as a factor of the ready pods (2.0: at most halve).
    /// Default 2.
    #[serde(default = "default_down_rate")]
    #[x_kube(validation = Rule::new("self > 1.0")
        .message("autoscaling.maxScaleDownRate must be above 1.0"))]
    pub max_scale_down_rate: f64,

    /// Seconds between two decisions (and two scrapes of every ready pod). Default 2.
    #[serde(default = "default_tick")]
    #[schemars(range(min = 1, max = 60))]
    pub tick_seconds: i32,

    /// The HorizontalPodAutoscaler's metrics and behaviour (`mode: HPA` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<HpaSpec>,
}

/// `spec.autoscaling.hpa`: copied into the HorizontalPodAutoscaler the operator owns.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct HpaSpec {
    /// `autoscaling/v2` metric specs, e.g. a Pods metric served by a metrics adapter or KEDA.
    #[schemars(length(max = 16))]
    pub metrics: Vec<MetricSpec>,
    /// `autoscaling/v2` scaling behaviour; the HPA's defaults when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

fn default_min() -> i32 {
    1
}
fn default_stable_window() -> i32 {
    60
}
fn default_panic_percent() -> i32 {
    10
}
fn default_panic_threshold() -> f64 {
    2.0
}
fn default_up_rate() -> f64 {
    1000.0
}
fn default_down_rate() -> f64 {
    2.0
}
fn default_tick() -> i32 {
    2
}

impl AutoscalingSpec {
    /// The target in force (the metric's default when the spec gives none).
    pub fn target(&self) -> f64 {
        self.target.unwrap_or_else(|| self.metric.default_target())
    }
}

/// `status.autoscaling`: the inputs and the decision of the last tick, per revision.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingStatus {
    /// The mode in force.
    pub mode: AutoscalingMode,
    /// The HorizontalPodAutoscaler the operator owns (`mode: HPA`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hpa: Option<String>,
    /// One entry per revision that runs pods (stable, canary).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<RevisionScale>,
}

/// One revision's autoscaling state (what a restarted leader continues from).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct RevisionScale {
    /// The revision (`modelpilot.io/revision`).
    pub revision: String,
    /// `stable` or `canary`.
    pub track: String,
    /// The metric per ready pod over the stable window (what `target` is compared with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// The metric per ready pod over the panic window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_panic: Option<f64>,
    /// Ready pods measured at the last tick.
    pub ready_pods: i32,
    /// Pods the stable-window load needs.
    pub recommendation: i32,
    /// The count decided (after panic, delay, rates and bounds).
    pub desired: i32,
    /// Panic mode is on.
    pub panic: bool,
    /// Why `desired` is what it is.
    pub reason: String,
    /// The recommender's memory: panic start, scale-down delay, and when the count last changed
    /// (`lastScale`).
    #[serde(default)]
    pub state: State,
}
