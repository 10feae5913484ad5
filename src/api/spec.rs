//! The desired state a user writes: which model, how to serve it, with which pod template.
//!
//! Validation lives on the fields as OpenAPI bounds and CEL rules so the API server rejects a bad
//! manifest at `kubectl apply` with a message naming the field; the controller re-checks the same
//! rules (see `validate`) before building anything, for objects that predate a rule.

use k8s_openapi::api::core::v1::{PodTemplateSpec, ResourceRequirements};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::{
    autoscaling::AutoscalingSpec, monitoring::MonitoringSpec, retraining::RetrainingSpec,
    rollout::RolloutSpec, status::ModelDeploymentStatus,
};

/// A model served by ONNX Runtime inference pods, reconciled by the modelpilot operator.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "modelpilot.io",
    doc = "A trained ONNX model served, scaled and watched by modelpilot.",
    version = "v1alpha1",
    kind = "ModelDeployment",
    namespaced,
    shortname = "mdep",
    category = "modelpilot",
    status = "ModelDeploymentStatus",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Model", type_ = "string", json_path = ".spec.model.name"),
    printcolumn(name = "Stable", type_ = "string", json_path = ".status.stable.version"),
    printcolumn(name = "Canary", type_ = "string", json_path = ".status.rollout.canary.version"),
    printcolumn(name = "Weight", type_ = "integer", json_path = ".status.rollout.appliedWeight"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Desired", type_ = "integer", json_path = ".spec.replicas"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    validation = Rule::new(
        "!has(self.spec.monitoring) || (!has(self.spec.monitoring.drift) && !has(self.spec.monitoring.prediction)) || has(self.spec.model.profile)"
    )
    .message("monitoring.drift and monitoring.prediction need model.profile (the baseline to compare with)"),
    validation = Rule::new("!has(self.spec.retraining) || has(self.spec.monitoring)")
    .message("retraining needs monitoring (its findings start a retraining)"),
    validation = Rule::new(
        "self.metadata.name.size() <= 50 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')"
    )
    .message(
        "metadata.name must start with a lowercase letter, contain only lowercase letters, digits \
         and '-', and be at most 50 characters (it names the Deployment and Service)"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ModelDeploymentSpec {
    /// The ONNX model to serve.
    pub model: ModelSpec,

    /// How the ONNX Runtime server runs. Every field has a default.
    #[serde(default)]
    pub server: ServerSpec,

    /// Optional pod template holding your own containers (pre/post-processing, a gateway, …). The
    /// modelpilot server is injected beside them as a native sidecar (an init container with
    /// `restartPolicy: Always`). Without a template the server runs alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(
        "!has(self.spec) || !has(self.spec.initContainers) || self.spec.initContainers.all(c, c.name != 'modelpilot-server')"
    ).message("template.spec.initContainers: the name 'modelpilot-server' is reserved for the injected server"))]
    #[x_kube(validation = Rule::new(
        "!has(self.spec) || self.spec.containers.all(c, c.name != 'modelpilot-server')"
    ).message("template.spec.containers: the name 'modelpilot-server' is reserved for the injected server"))]
    #[x_kube(validation = Rule::new(
        "!has(self.spec) || !has(self.spec.restartPolicy) || self.spec.restartPolicy == 'Always'"
    ).message("template.spec.restartPolicy must be Always (inference pods are long-running)"))]
    pub template: Option<PodTemplateSpec>,

    /// Number of inference pods. Served by the scale subresource, so `kubectl scale` works.
    /// With `autoscaling.mode: Builtin` the operator decides the count and this field is not
    /// read; with `mode: HPA` the HorizontalPodAutoscaler writes it.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: i32,

    /// How a new revision (a change to the model, the server or the template) replaces the
    /// stable one: canary steps, traffic split and analysis. Without it a new revision takes all
    /// traffic once its pods are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutSpec>,

    /// Scale the inference pods on inference load (requests in flight, requests/s, queue time),
    /// each revision on its own, or through a HorizontalPodAutoscaler. Without it the count is
    /// `replicas`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,

    /// Watch the stable revision for input drift, prediction shift and accuracy decay on label
    /// feedback, every `intervalSeconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,

    /// Run a training Job when monitoring finds persistent drift or decay, once per trigger,
    /// and roll out the model it produces through the canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retraining: Option<RetrainingSpec>,
}

fn default_replicas() -> i32 {
    1
}

/// Where the model comes from and how it is named.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// Name the model is served under (`/v2/models/<name>`).
    #[x_kube(validation = Rule::new(
        "self.size() <= 63 && self.matches('^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$')"
    ).message(
        "model.name must be 1-63 lowercase letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    ))]
    pub name: String,

    /// Location of the ONNX file: `file:///abs/path` (inside the image or a volume of the
    /// template), `pvc://<claim>/<path>` (the claim is mounted read-only), `https://host/path` or
    /// `s3://<bucket>/<key>`.
    #[x_kube(validation = Rule::new(
        "self.size() <= 2048 && self.matches('^(file|pvc|https|s3)://.+')"
    ).message(
        "model.uri must start with file://, pvc://, https:// or s3:// (at most 2048 characters)"
    ))]
    #[x_kube(validation = Rule::new("!self.startsWith('file://') || self.matches('^file:///.+$')")
        .message("model.uri: a file:// URI needs an absolute path, e.g. file:///models/model.onnx"))]
    #[x_kube(validation = Rule::new(
        "!self.startsWith('pvc://') || self.matches('^pvc://[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?/[^/].*$')"
    ).message("model.uri: a pvc:// URI must be pvc://<claim-name>/<path inside the volume>"))]
    #[x_kube(validation = Rule::new("!self.startsWith('https://') || self.matches('^https://[^/]+/?.*$')")
        .message("model.uri: an https:// URI needs a host, e.g. https://models.example.com/model.onnx"))]
    #[x_kube(validation = Rule::new(
        "!self.startsWith('s3://') || self.matches('^s3://[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]/[^/].*$')"
    ).message("model.uri: an s3:// URI must be s3://<bucket>/<key>"))]
    pub uri: String,

    /// Optional SHA-256 of the model file (64 hex characters). The server refuses a file whose
    /// digest differs, so the pod never becomes ready with the wrong model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[a-fA-F0-9]{64}$')")
        .message("model.sha256 must be exactly 64 hexadecimal characters"))]
    pub sha256: Option<String>,

    /// Version label of the model (shown in `kubectl get mdep`, put on the pods).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(
        "self.size() <= 63 && self.matches('^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$')"
    ).message(
        "model.version must be 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit"
    ))]
    pub version: Option<String>,

    /// Optional Secret in the same namespace whose keys become environment variables of the
    /// server (e.g. `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_ENDPOINT_URL` for `s3://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(
        "self.size() <= 253 && self.matches('^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$')"
    ).message("model.credentialsSecret must be the name of a Secret (lowercase DNS name)"))]
    pub credentials_secret: Option<String>,

    /// Baseline profile of the training data (`modelpilot profile`), same URI schemes as
    /// `uri`: the servers bin live inputs like it and monitoring compares with it. Part of the
    /// revision, so a retrained model brings its own baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new(
        "self.size() <= 2048 && self.matches('^(file|pvc|https|s3)://.+')"
    ).message(
        "model.profile must start with file://, pvc://, https:// or s3:// (at most 2048 characters)"
    ))]
    pub profile: Option<String>,
}

/// ONNX Runtime graph optimisation level.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum GraphOptimizationLevel {
    /// No graph optimisation.
    Disable,
    /// Constant folding and redundant-node elimination.
    Basic,
    /// Basic plus node fusions.
    Extended,
    /// Everything, including layout optimisations.
    #[default]
    All,
}

impl GraphOptimizationLevel {
    /// The value of the server's `--graph-optimization-level` flag.
    pub fn as_flag(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Basic => "basic",
            Self::Extended => "extended",
            Self::All => "all",
        }
    }
}

/// How the injected ONNX Runtime server runs.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServerSpec {
    /// Server image (runs `modelpilot serve`). Defaults to the operator's `--server-image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.size() > 0 && !self.contains(' ')")
        .message("server.image must be a non-empty image reference without spaces"))]
    pub image: Option<String>,

    /// CPU threads the server gives ONNX Runtime, split across its concurrent sessions (1-64).
    /// Defaults to the CPUs the container sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub threads: Option<i32>,

    /// ONNX Runtime graph optimisation level (`disable`, `basic`, `extended`, `all`).
    #[serde(default)]
    pub graph_optimization_level: GraphOptimizationLevel,

    /// HTTP port of the Open Inference Protocol and `/metrics` (the Service exposes it as `http`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1024, max = 65535))]
    pub port: Option<i32>,

    /// CPU/memory requests and limits of the server container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Dynamic batching: concurrent requests merged along the batch dimension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batching: Option<ServerBatching>,
}

/// Dynamic batching settings of the server.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerBatching {
    /// Largest merged batch (rows along dimension 0).
    #[serde(default = "default_max_batch_size")]
    #[schemars(range(min = 1, max = 4096))]
    pub max_batch_size: i32,

    /// Longest a request waits for others to join its batch, in milliseconds. The default, 0,
    /// adds no latency: a batch is whatever queued while every session was busy.
    #[serde(default = "default_max_queue_delay_ms")]
    #[schemars(range(min = 0, max = 1000))]
    pub max_queue_delay_ms: i32,
}

fn default_max_batch_size() -> i32 {
    32
}

fn default_max_queue_delay_ms() -> i32 {
    0
}
