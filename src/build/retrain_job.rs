//! The user's retraining Job for one trigger, and the reading of how it ended.
//!
//! The user's pod template runs as is, with what the operator knows handed to every container
//! as `MODELPILOT_*` variables (the trigger, the model it starts from, its baseline profile,
//! where to write) and the model's credentials Secret, so the Job reaches the same store the
//! servers read. The name comes from the trigger's number, so creating it twice finds the first.
//! The Job reports its model in its first container's termination message (see
//! [`crate::retrain::result`]), which [`state`] takes from the finished pod.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec},
        core::v1::{EnvFromSource, EnvVar, Pod, PodTemplateSpec, SecretEnvSource},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

use super::owner_reference;
use crate::{
    api::{RetrainRecord, RetrainingSpec},
    retrain::{
        decide::{JobState, job_name},
        result::{
            ENV_DEPLOYMENT, ENV_MODEL_SHA256, ENV_MODEL_URI, ENV_MODEL_VERSION, ENV_OUTPUT_URI,
            ENV_PROFILE_URI, ENV_TRIGGER,
        },
    },
    validate::ValidSpec,
};

/// Label naming the ModelDeployment a retraining Job belongs to.
pub const RETRAIN_OF: &str = "modelpilot.io/retrain-of";
/// Label holding the trigger number.
pub const TRIGGER_ID: &str = "modelpilot.io/retrain-id";

/// Labels of the Job and its pods (never `modelpilot.io/name`: no Service may select them).
pub fn labels(spec: &ValidSpec, id: i64) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "modelpilot".to_owned(),
        ),
        (RETRAIN_OF.to_owned(), spec.owner.name.clone()),
        (TRIGGER_ID.to_owned(), id.to_string()),
    ])
}

/// The `MODELPILOT_*` environment of trigger `r`.
///
/// ```
/// # use modelpilot::build::retrain_job::environment;
/// # let r: modelpilot::api::RetrainRecord = serde_json::from_value(serde_json::json!({
/// #   "id": 3, "phase": "Running", "outputUri": "s3://m/retrain/iris/3/",
/// #   "trigger": {"reason": "Drift", "at": "2026-11-27T10:01:00Z", "windowStart": "2026-11-27T10:00:00Z",
/// #               "windowEnd": "2026-11-27T10:01:00Z", "features": ["petal_width"]},
/// #   "from": {"name": "aaaaaaaaaa", "uri": "s3://m/iris/1.onnx", "version": "v1"}})).unwrap();
/// let env = environment(&r, "default/iris");
/// let get = |n: &str| env.iter().find(|e| e.name == n).and_then(|e| e.value.clone());
/// assert_eq!(get("MODELPILOT_OUTPUT_URI").as_deref(), Some("s3://m/retrain/iris/3/"));
/// assert_eq!(get("MODELPILOT_MODEL_VERSION").as_deref(), Some("v1"));
/// let trigger: serde_json::Value = serde_json::from_str(&get("MODELPILOT_TRIGGER").unwrap()).unwrap();
/// assert_eq!(trigger["features"][0], "petal_width");
/// assert_eq!(trigger["window"]["end"], "2026-11-27T10:01:00Z");
/// ```
pub fn environment(r: &RetrainRecord, deployment: &str) -> Vec<EnvVar> {
    let trigger = serde_json::json!({
        "id": r.id,
        "reason": r.trigger.reason.as_str(),
        "window": {"start": r.trigger.window_start, "end": r.trigger.window_end},
        "features": r.trigger.features,
        "detail": r.trigger.detail,
    });
    let var = |name: &str, value: &str| EnvVar {
        name: name.to_owned(),
        value: Some(value.to_owned()),
        value_from: None,
    };
    let mut env = vec![
        var(ENV_TRIGGER, &trigger.to_string()),
        var(ENV_MODEL_URI, &r.from.uri),
        var(ENV_OUTPUT_URI, &r.output_uri),
        var(ENV_DEPLOYMENT, deployment),
    ];
    for (name, value) in [
        (ENV_MODEL_SHA256, &r.from.sha256),
        (ENV_MODEL_VERSION, &r.from.version),
        (ENV_PROFILE_URI, &r.from.profile),
    ] {
        // Always set (empty when the spec has none), so a script can read it unguarded.
        env.push(var(name, value.as_deref().unwrap_or_default()));
    }
    env
}

/// The Job of trigger `r`.
pub fn build(spec: &ValidSpec, retraining: &RetrainingSpec, r: &RetrainRecord) -> Job {
    let labels = labels(spec, r.id);
    let deployment = format!("{}/{}", spec.owner.namespace, spec.owner.name);
    let env = environment(r, &deployment);
    let user = retraining.template.clone();
    let mut pod = user.spec.unwrap_or_default();
    pod.restart_policy = Some("Never".into());
    for c in &mut pod.containers {
        let mut vars: Vec<EnvVar> = c
            .env
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| !e.name.starts_with("MODELPILOT_"))
            .collect();
        vars.extend(env.iter().cloned());
        c.env = Some(vars);
        if let Some(secret) = &spec.credentials_secret {
            c.env_from.get_or_insert_with(Vec::new).push(EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: secret.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            });
        }
        c.termination_message_policy
            .get_or_insert_with(|| "FallbackToLogsOnError".into());
    }
    let mut meta = user.metadata.unwrap_or_default();
    let mut pod_labels: BTreeMap<String, String> = meta
        .labels
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("modelpilot.io/"))
        .collect();
    pod_labels.extend(labels.clone());
    meta.labels = Some(pod_labels);
    Job {
        metadata: ObjectMeta {
            name: Some(job_name(&spec.owner.name, r.id)),
            namespace: Some(spec.owner.namespace.clone()),
            labels: Some(labels),
            owner_references: Some(vec![owner_reference(spec)]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(retraining.backoff_limit),
            active_deadline_seconds: Some(retraining.deadline_seconds),
            template: PodTemplateSpec {
                metadata: Some(meta),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// How the Job stands, from the Job and its pods: `Succeeded` carries the first container's
/// termination message of the newest succeeded pod; `Failed` the Job's reason and what its
/// newest failed pod said (the termination message, or the log tail with
/// `FallbackToLogsOnError`).
///
/// ```
/// use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
/// use modelpilot::{build::retrain_job::state, retrain::decide::JobState};
/// let job: Job = serde_json::from_value(serde_json::json!({"metadata": {"name": "iris-retrain-1"},
///     "status": {"conditions": [{"type": "Complete", "status": "True"}]}})).unwrap();
/// let pod: Pod = serde_json::from_value(serde_json::json!({"metadata": {"name": "iris-retrain-1-x"},
///     "status": {"phase": "Succeeded", "containerStatuses": [{"name": "train", "ready": false,
///       "restartCount": 0, "image": "", "imageID": "",
///       "state": {"terminated": {"exitCode": 0, "message": "{\"modelUri\": \"s3://m/a.onnx\"}"}}}]}})).unwrap();
/// assert_eq!(state(Some(&job), &[pod]),
///            JobState::Succeeded { message: "{\"modelUri\": \"s3://m/a.onnx\"}".into() });
/// assert_eq!(state(None, &[]), JobState::Missing);
/// ```
pub fn state(job: Option<&Job>, pods: &[Pod]) -> JobState {
    let Some(job) = job else {
        return JobState::Missing;
    };
    let uid = job.metadata.uid.as_deref();
    let trainer = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|p| p.containers.first())
        .map(|c| c.name.as_str());
    let mut ours: Vec<&Pod> = pods.iter().filter(|p| owned_by(p, uid)).collect();
    ours.sort_by_key(|p| std::cmp::Reverse(p.metadata.creation_timestamp.clone().map(|t| t.0)));
    let message_of = |phase: &str| {
        ours.iter()
            .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase))
            .find_map(|p| trainer_message(p, trainer))
            .unwrap_or_default()
    };
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let holds = |kind: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == kind && c.status == "True")
    };
    if holds("Complete").is_some() {
        return JobState::Succeeded {
            message: message_of("Succeeded"),
        };
    }
    if let Some(c) = holds("Failed") {
        let mut message = message_of("Failed");
        if message.is_empty() {
            message = c.message.clone().unwrap_or_default();
        }
        return JobState::Failed {
            reason: c.reason.clone().unwrap_or_else(|| "Failed".into()),
            message: message.trim().to_owned(),
        };
    }
    JobState::Active
}

fn owned_by(pod: &Pod, uid: Option<&str>) -> bool {
    match (uid, &pod.metadata.owner_references) {
        (Some(uid), Some(owners)) if !owners.is_empty() => owners.iter().any(|o| o.uid == uid),
        _ => true,
    }
}

/// The termination message of the trainer (the template's first container; any container when
/// the Job's spec is not known).
fn trainer_message(pod: &Pod, trainer: Option<&str>) -> Option<String> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    let first = statuses
        .iter()
        .find(|c| trainer.is_none_or(|t| c.name == t))?;
    let terminated = first
        .state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .or_else(|| first.last_state.as_ref()?.terminated.as_ref())?;
    terminated.message.clone().filter(|m| !m.trim().is_empty())
}

/// The label selector of this ModelDeployment's retraining Jobs and their pods.
pub fn selector(spec: &ValidSpec) -> String {
    format!("{RETRAIN_OF}={}", spec.owner.name)
}
