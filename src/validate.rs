//! Stage 2 of the reconcile pipeline: turn the raw `ModelDeployment` into a [`ValidSpec`].
//!
//! The CRD's CEL rules already reject bad manifests at `kubectl apply`, but objects written before a
//! rule existed (or through a looser CRD) still reach us. So the controller re-checks what the
//! builders rely on and resolves defaults here; the builders then take a [`ValidSpec`] and never
//! see the raw resource.

use k8s_openapi::api::core::v1::{PodTemplateSpec, ResourceRequirements};
use kube::{Resource, ResourceExt};
use sha2::{Digest, Sha256};

use crate::api::{
    AutoscalingMode, AutoscalingSpec, GraphOptimizationLevel, ModelDeployment, MonitoringSpec,
    Persistence, RetrainingSpec, RolloutSpec, ServerBatching, TrafficMode,
};

/// Why a spec cannot be reconciled; shown in the `Degraded` condition and an event.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// `model.uri` uses a scheme the server cannot fetch, or is malformed.
    #[error("model.uri {uri:?}: {reason}")]
    ModelUri { uri: String, reason: &'static str },
    /// `model.sha256` is not 64 hex characters.
    #[error("model.sha256 must be exactly 64 hexadecimal characters")]
    Sha256,
    /// `replicas` outside 0..=1000.
    #[error("replicas must be between 0 and 1000, got {0}")]
    Replicas(i32),
    /// `rollout` breaks a rule the CRD states (for objects written before the rule).
    #[error("rollout: {0}")]
    Rollout(String),
    /// `autoscaling` breaks a rule the CRD states.
    #[error("monitoring: {0}")]
    Monitoring(String),
    #[error("retraining: {0}")]
    Retraining(String),
    #[error("autoscaling: {0}")]
    Autoscaling(String),
    /// The object lacks name, namespace or uid (never true for objects read from the API).
    #[error("object is missing metadata.{0}")]
    Metadata(&'static str),
}

/// Where the server reads the model from, resolved from `model.uri`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelSource {
    /// An absolute path inside the server container (`file:///…`).
    File { path: String },
    /// A path inside a PersistentVolumeClaim that is mounted read-only.
    Pvc { claim: String, path: String },
    /// An `https://` URL.
    Https { url: String },
    /// An `s3://bucket/key` object.
    S3 { uri: String },
}

impl ModelSource {
    /// Parse `model.uri`.
    ///
    /// ```
    /// use modelpilot::validate::ModelSource;
    /// assert_eq!(
    ///     ModelSource::parse("pvc://models/iris/v3.onnx").unwrap(),
    ///     ModelSource::Pvc { claim: "models".into(), path: "iris/v3.onnx".into() }
    /// );
    /// assert!(ModelSource::parse("http://insecure/model.onnx").is_err());
    /// ```
    pub fn parse(uri: &str) -> Result<Self, SpecError> {
        let err = |reason| SpecError::ModelUri {
            uri: uri.to_owned(),
            reason,
        };
        if uri.len() > 2048 {
            return Err(err("longer than 2048 characters"));
        }
        if let Some(path) = uri.strip_prefix("file://") {
            if !path.starts_with('/') || path.len() < 2 {
                return Err(err("a file:// URI needs an absolute path"));
            }
            return Ok(Self::File { path: path.into() });
        }
        if let Some(rest) = uri.strip_prefix("pvc://") {
            let (claim, path) = rest
                .split_once('/')
                .ok_or_else(|| err("must be pvc://<claim>/<path>"))?;
            if !is_dns_label(claim) || path.is_empty() || path.starts_with('/') {
                return Err(err("must be pvc://<claim>/<path>"));
            }
            return Ok(Self::Pvc {
                claim: claim.into(),
                path: path.into(),
            });
        }
        if let Some(rest) = uri.strip_prefix("https://") {
            if rest.is_empty() || rest.starts_with('/') {
                return Err(err("an https:// URI needs a host"));
            }
            return Ok(Self::Https { url: uri.into() });
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => {
                    return Ok(Self::S3 { uri: uri.into() });
                }
                _ => return Err(err("must be s3://<bucket>/<key>")),
            }
        }
        Err(err("scheme must be file://, pvc://, https:// or s3://"))
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Settings of the operator that fill in what a spec leaves out.
#[derive(Clone, Debug)]
pub struct Defaults {
    /// Image running `modelpilot serve` when `server.image` is unset.
    pub server_image: String,
}

/// The owner of the children: enough to write an owner reference and events.
#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub generation: Option<i64>,
}

/// A spec that passed validation, with defaults resolved: the only input of the builders.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSpec {
    pub owner: Owner,
    pub model_name: String,
    pub model_uri: String,
    pub source: ModelSource,
    pub sha256: Option<String>,
    pub version: Option<String>,
    pub credentials_secret: Option<String>,
    pub image: String,
    pub threads: Option<i32>,
    pub graph_optimization_level: GraphOptimizationLevel,
    pub port: i32,
    pub resources: Option<ResourceRequirements>,
    pub batching: Option<ServerBatching>,
    pub template: Option<PodTemplateSpec>,
    pub replicas: i32,
    /// How a new revision replaces the stable one (not part of the revision).
    pub rollout: Option<RolloutSpec>,
    /// How the replicas follow load (not part of the revision).
    pub autoscaling: Option<AutoscalingSpec>,
    /// Baseline profile URI (part of the revision when set).
    pub profile: Option<String>,
    /// What the operator watches (its interval is the servers' window, part of the revision).
    pub monitoring: Option<MonitoringSpec>,
    /// The retraining Job (not part of the revision).
    pub retraining: Option<RetrainingSpec>,
    /// The `modelpilot.io/request` annotation, verbatim.
    pub request: Option<String>,
    /// Hash of everything that defines the pods (not the replica count).
    pub revision: String,
}

/// Default HTTP port of the server.
pub const DEFAULT_PORT: i32 = 8080;

/// Check a `ModelDeployment` and resolve its defaults.
pub fn validate(mdep: &ModelDeployment, defaults: &Defaults) -> Result<ValidSpec, SpecError> {
    let meta = mdep.meta();
    let owner = Owner {
        name: meta.name.clone().ok_or(SpecError::Metadata("name"))?,
        namespace: mdep.namespace().ok_or(SpecError::Metadata("namespace"))?,
        uid: meta.uid.clone().ok_or(SpecError::Metadata("uid"))?,
        generation: meta.generation,
    };
    let spec = &mdep.spec;
    let source = ModelSource::parse(&spec.model.uri)?;
    let sha256 = match &spec.model.sha256 {
        Some(h) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Some(h.to_ascii_lowercase())
        }
        Some(_) => return Err(SpecError::Sha256),
        None => None,
    };
    if !(0..=1000).contains(&spec.replicas) {
        return Err(SpecError::Replicas(spec.replicas));
    }
    let mut valid = ValidSpec {
        owner,
        model_name: spec.model.name.clone(),
        model_uri: spec.model.uri.clone(),
        source,
        sha256,
        version: spec.model.version.clone(),
        credentials_secret: spec.model.credentials_secret.clone(),
        image: spec
            .server
            .image
            .clone()
            .unwrap_or_else(|| defaults.server_image.clone()),
        threads: spec.server.threads,
        graph_optimization_level: spec.server.graph_optimization_level,
        port: spec.server.port.unwrap_or(DEFAULT_PORT),
        resources: spec.server.resources.clone(),
        batching: spec.server.batching.clone(),
        template: spec.template.clone(),
        replicas: spec.replicas,
        rollout: spec.rollout.clone(),
        autoscaling: spec.autoscaling.clone(),
        profile: spec.model.profile.clone(),
        monitoring: spec.monitoring.clone(),
        retraining: spec.retraining.clone(),
        request: mdep.annotations().get("modelpilot.io/request").cloned(),
        revision: String::new(),
    };
    if let Some(rollout) = &valid.rollout {
        check_rollout(rollout)?;
    }
    if let Some(autoscaling) = &valid.autoscaling {
        check_autoscaling(autoscaling)?;
    }
    if let Some(monitoring) = &valid.monitoring {
        check_monitoring(monitoring, valid.profile.is_some())?;
    }
    if let Some(retraining) = &valid.retraining {
        check_retraining(retraining, valid.monitoring.is_some())?;
    }
    valid.revision = revision_hash(&valid);
    Ok(valid)
}

/// The rollout rules the builders and the planner rely on.
fn check_rollout(r: &RolloutSpec) -> Result<(), SpecError> {
    let err = |m: String| Err(SpecError::Rollout(m));
    for (i, step) in r.steps.iter().enumerate() {
        let kinds = [
            step.set_weight.is_some(),
            step.pause.is_some(),
            step.analysis.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return err(format!(
                "steps[{i}] must set exactly one of setWeight, pause or analysis"
            ));
        }
        if let Some(a) = &step.analysis
            && a.metrics.iter().any(|m| m.count < 1)
        {
            return err(format!(
                "steps[{i}].analysis: every metric needs count >= 1"
            ));
        }
        if step.set_weight.is_some_and(|w| !(0..=100).contains(&w)) {
            return err(format!("steps[{i}].setWeight must be between 0 and 100"));
        }
    }
    if r.traffic.mode == TrafficMode::GatewayApi && r.traffic.http_route.is_none() {
        return err("traffic.httpRoute is required when traffic.mode is GatewayAPI".into());
    }
    Ok(())
}

/// The autoscaling rules the recommender relies on.
fn check_autoscaling(a: &AutoscalingSpec) -> Result<(), SpecError> {
    let err = |m: &str| Err(SpecError::Autoscaling(m.to_string()));
    if !(1..=1000).contains(&a.min_replicas) || !(1..=1000).contains(&a.max_replicas) {
        return err("minReplicas and maxReplicas must be 1-1000");
    }
    if a.min_replicas > a.max_replicas {
        return err("minReplicas must not exceed maxReplicas");
    }
    if a.target.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
        return err("target must be greater than 0");
    }
    if !(a.panic_threshold > 1.0 && a.panic_threshold <= 100.0) {
        return err("panicThreshold must be above 1.0 and at most 100");
    }
    if !(a.max_scale_up_rate > 1.0 && a.max_scale_down_rate > 1.0) {
        return err("maxScaleUpRate and maxScaleDownRate must be above 1.0");
    }
    if !(6..=3600).contains(&a.stable_window_seconds)
        || !(1..=100).contains(&a.panic_window_percent)
        || !(1..=60).contains(&a.tick_seconds)
        || !(0..=3600).contains(&a.scale_down_delay_seconds)
    {
        return err("a window, tick or delay is out of its range");
    }
    if a.stable_window_seconds * a.panic_window_percent < a.tick_seconds * 100 {
        return err("the panic window must be at least tickSeconds long");
    }
    match (a.mode, &a.hpa) {
        (AutoscalingMode::Hpa, Some(h)) if !h.metrics.is_empty() => Ok(()),
        (AutoscalingMode::Hpa, _) => err("hpa.metrics is required when mode is HPA"),
        (AutoscalingMode::Builtin, Some(_)) => err("hpa is only used with mode: HPA"),
        (AutoscalingMode::Builtin, None) => Ok(()),
    }
}

/// The monitoring rules the evaluation relies on.
fn check_monitoring(m: &MonitoringSpec, has_profile: bool) -> Result<(), SpecError> {
    let err = |m: &str| Err(SpecError::Monitoring(m.to_string()));
    if !(10..=86400).contains(&m.interval_seconds) {
        return err("intervalSeconds must be 10-86400");
    }
    if m.drift.is_none() && m.accuracy.is_none() && m.prediction.is_none() {
        return err("needs at least one of drift, accuracy or prediction");
    }
    if (m.drift.is_some() || m.prediction.is_some()) && !has_profile {
        return err("drift and prediction need model.profile");
    }
    let persistence_ok =
        |p: &Persistence| (1..=20).contains(&p.windows) && (1..=p.windows).contains(&p.required);
    for d in m.drift.iter().chain(m.prediction.iter()) {
        if !(d.p_value > 0.0 && d.p_value <= 0.5)
            || d.min_samples < 1
            || !persistence_ok(&d.persistence)
        {
            return err(
                "pValue must be in (0, 0.5], minSamples at least 1, persistence 1 <= required <= windows <= 20",
            );
        }
    }
    if let Some(a) = &m.accuracy {
        if a.floor.is_none() && a.max_drop.is_none() {
            return err("accuracy needs floor, maxDrop or both");
        }
        if a.min_labels < 1 || !persistence_ok(&a.persistence) {
            return err(
                "accuracy: minLabels at least 1, persistence 1 <= required <= windows <= 20",
            );
        }
    }
    Ok(())
}

/// The retraining rules the trigger logic relies on.
fn check_retraining(r: &RetrainingSpec, has_monitoring: bool) -> Result<(), SpecError> {
    let err = |m: &str| Err(SpecError::Retraining(m.to_string()));
    if !has_monitoring {
        return err("needs monitoring (its findings start a retraining)");
    }
    if r.template
        .spec
        .as_ref()
        .is_none_or(|s| s.containers.is_empty())
    {
        return err("template.spec.containers must name at least one container");
    }
    if r.max_per_day < 1 || r.cooldown_seconds < 0 || r.deadline_seconds < 10 {
        return err(
            "maxPerDay at least 1, cooldownSeconds at least 0, deadlineSeconds at least 10",
        );
    }
    Ok(())
}

/// A short, stable hash of what defines the pods: a change here means a new revision.
///
/// The replica count is left out on purpose: scaling is not a new revision.
fn revision_hash(v: &ValidSpec) -> String {
    let mut defining = serde_json::json!({
        "model": [&v.model_name, &v.model_uri, &v.sha256, &v.version, &v.credentials_secret],
        "server": [&v.image, &v.threads, v.graph_optimization_level.as_flag(), v.port,
                   &v.resources, &v.batching],
        "template": &v.template,
    });
    // Only when set, so a spec without them keeps the revision it always had.
    if let Some(profile) = &v.profile {
        defining["profile"] = serde_json::json!(profile);
    }
    if let Some(m) = &v.monitoring {
        defining["window"] = serde_json::json!(m.interval_seconds);
    }
    let digest = Sha256::digest(defining.to_string().as_bytes());
    hex::encode(&digest[..5])
}
