//! The Job that reads a candidate revision's signature (its model's inputs and outputs) before
//! the candidate takes any traffic, and the reading of that Job's result.
//!
//! The Job runs `modelpilot signature` in the candidate's own server container — same image,
//! environment, credentials, mounts, resources and security context as the inference pods — in
//! a pod that keeps the user's init containers (they may prepare a `file://` model), volumes,
//! service account and scheduling. So the model is read exactly as the inference pods will read
//! it. The command writes the signature JSON (or its one-line error) into its termination
//! message, which [`outcome`] takes from the finished pod.
//!
//! Its pods carry no `modelpilot.io/name` label: the Service selects inference pods by it, and a
//! Job pod must never receive a request.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec},
        core::v1::{
            ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodTemplateSpec,
        },
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

use super::{deployment, labels, owner_reference, server};
use crate::{serve::signature::Signature, validate::ValidSpec};

/// Seconds the Job may run, download included, before it fails as `DeadlineExceeded`.
pub const ACTIVE_DEADLINE_SECONDS: i64 = 300;
/// Retries after a failed pod: one, for a transient download error.
pub const BACKOFF_LIMIT: i32 = 1;
/// The longest name a Job may have (it becomes a label value on its pods).
pub const MAX_NAME_LEN: usize = 63;

/// Name of the signature Job of `revision`: `<owner>-sig-<revision>`, the owner's name cut
/// (and stripped of a trailing `-`) when the whole would exceed [`MAX_NAME_LEN`].
///
/// ```
/// use modelpilot::build::signature_job::name;
/// assert_eq!(name("iris", "0a1b2c3d4e"), "iris-sig-0a1b2c3d4e");
/// let long = "a".repeat(50);
/// assert_eq!(name(&long, "0a1b2c3d4e"), format!("{}-sig-0a1b2c3d4e", "a".repeat(48)));
/// ```
pub fn name(owner: &str, revision: &str) -> String {
    let suffix = format!("-sig-{revision}");
    let room = MAX_NAME_LEN.saturating_sub(suffix.len());
    let prefix: String = owner.chars().take(room).collect();
    format!("{}{suffix}", prefix.trim_end_matches('-'))
}

/// Labels of the Job and its pods. Not `modelpilot.io/name`: the Service selects by it.
pub fn labels(spec: &ValidSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "modelpilot".to_owned(),
        ),
        (labels::SIGNATURE_OF.to_owned(), spec.owner.name.clone()),
        (labels::REVISION.to_owned(), spec.revision.clone()),
    ])
}

/// The `modelpilot signature …` arguments for this spec: the model flags the server gets.
pub fn args(spec: &ValidSpec) -> Vec<String> {
    let mut args = vec![
        "signature".to_owned(),
        "--model-uri".into(),
        server::server_model_uri(spec),
        "--cache-dir".into(),
        server::CACHE_DIR.into(),
        "--graph-optimization-level".into(),
        spec.graph_optimization_level.as_flag().into(),
    ];
    if let Some(sha) = &spec.sha256 {
        args.extend(["--sha256".into(), sha.clone()]);
    }
    args.extend([
        "--termination-message-path".into(),
        server::TERMINATION_MESSAGE_PATH.into(),
    ]);
    args
}

/// Build the signature Job of the spec's revision.
pub fn build(spec: &ValidSpec) -> Job {
    let labels = labels(spec);
    Job {
        metadata: ObjectMeta {
            name: Some(name(&spec.owner.name, &spec.revision)),
            namespace: Some(spec.owner.namespace.clone()),
            labels: Some(labels.clone()),
            owner_references: Some(vec![owner_reference(spec)]),
            ..Default::default()
        },
        spec: Some(JobSpec {
            backoff_limit: Some(BACKOFF_LIMIT),
            active_deadline_seconds: Some(ACTIVE_DEADLINE_SECONDS),
            template: pod_template(spec, labels),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The inference pod of the Deployment, turned into a run-once pod: the server container with
/// the `signature` command and no ports or probes as its only container, the user's init
/// containers without the native sidecars (the server among them), everything else kept.
fn pod_template(spec: &ValidSpec, job_labels: BTreeMap<String, String>) -> PodTemplateSpec {
    let mut pod = deployment::pod_template(spec).spec.unwrap_or_default();
    let mut container = server::container(spec);
    container.args = Some(args(spec));
    container.ports = None;
    container.readiness_probe = None;
    container.liveness_probe = None;
    container.startup_probe = None;
    container.restart_policy = None;
    container.termination_message_path = Some(server::TERMINATION_MESSAGE_PATH.into());
    container.termination_message_policy = Some("FallbackToLogsOnError".into());
    pod.containers = vec![container];
    let init: Vec<_> = pod
        .init_containers
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.restart_policy.as_deref() != Some("Always"))
        .collect();
    pod.init_containers = (!init.is_empty()).then_some(init);
    pod.restart_policy = Some("Never".into());

    // The user's labels (an identity webhook or a network policy may key on them) and
    // annotations, but none of ours: no Service or Deployment may select this pod.
    let user_meta = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.clone())
        .unwrap_or_default();
    let mut pod_labels: BTreeMap<String, String> = user_meta
        .labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("modelpilot.io/"))
        .collect();
    pod_labels.extend(job_labels);
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(pod_labels),
            annotations: user_meta.annotations,
            ..Default::default()
        }),
        spec: Some(pod),
    }
}

/// Where a signature Job stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignatureOutcome {
    /// Still running (or retrying).
    Pending,
    /// The signature JSON, as `modelpilot signature` wrote it (see [`Signature::parse`]).
    Ready(String),
    /// The signature could not be read; why, in one line.
    Failed(String),
}

/// The outcome of a signature Job, from the Job and its pods (pods of another Job of the same
/// name, an earlier one, are ignored when the Job's uid is known).
///
/// * `Ready`: a pod succeeded and its server container's termination message is a signature.
/// * `Failed`: the Job failed (the newest failed pod's message, else the Job's own reason), or
///   it completed without a readable signature.
/// * `Pending` otherwise: a failed pod alone is not the end while the Job may retry.
///
/// ```
/// use k8s_openapi::api::{batch::v1::Job, core::v1::Pod};
/// use modelpilot::build::signature_job::{SignatureOutcome, outcome};
///
/// let job: Job = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "iris-sig-0a1b2c3d4e"},
///     "status": {"conditions": [
///         {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
///          "message": "Job has reached the specified backoff limit"}]}
/// })).unwrap();
/// let pod: Pod = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "iris-sig-0a1b2c3d4e-x7k2p"},
///     "status": {"phase": "Failed", "containerStatuses": [{
///         "name": "modelpilot-server", "ready": false, "restartCount": 0, "image": "", "imageID": "",
///         "state": {"terminated": {"exitCode": 1,
///             "message": "checksum mismatch for s3://m/iris.onnx: expected sha256 00…, got 3f…"}}}]}
/// })).unwrap();
/// assert_eq!(
///     outcome(&job, &[pod]),
///     SignatureOutcome::Failed(
///         "checksum mismatch for s3://m/iris.onnx: expected sha256 00…, got 3f…".into()
///     )
/// );
/// ```
pub fn outcome(job: &Job, pods: &[Pod]) -> SignatureOutcome {
    let uid = job.metadata.uid.as_deref();
    let mut ours: Vec<&Pod> = pods.iter().filter(|p| belongs_to(p, uid)).collect();
    // Newest first (then by name, so the choice is stable).
    ours.sort_by(|a, b| {
        let key = |p: &Pod| {
            (
                p.metadata.creation_timestamp.clone().map(|t| t.0),
                p.metadata.name.clone(),
            )
        };
        key(b).cmp(&key(a))
    });

    if let Some(result) = ours.iter().find_map(|p| succeeded_message(p)) {
        return match Signature::parse(&result) {
            Ok(_) => SignatureOutcome::Ready(result.trim().to_owned()),
            Err(err) => SignatureOutcome::Failed(format!(
                "the signature job's result is not a signature ({err}): {}",
                result.chars().take(200).collect::<String>()
            )),
        };
    }
    if let Some((reason, message)) = condition(job, "Failed") {
        let job_reason = match (reason.is_empty(), message.is_empty()) {
            (false, false) => format!("{reason}: {message}"),
            (false, true) => reason.clone(),
            (true, false) => message,
            (true, true) => "the signature job failed".to_owned(),
        };
        let detail = ours
            .iter()
            .filter(|p| phase(p) == Some("Failed"))
            .chain(&ours)
            .find_map(|p| failure(p));
        // A command that ran to its error says it best, unless the deadline stopped it; a pod
        // that never ran gets the Job's reason and whatever kept it waiting.
        return SignatureOutcome::Failed(match detail {
            Some(Failure::Ran(message)) if reason != "DeadlineExceeded" => message,
            Some(Failure::Ran(detail) | Failure::Stuck(detail)) => {
                format!("{job_reason} ({detail})")
            }
            None => job_reason,
        });
    }
    if condition(job, "Complete").is_some() {
        return SignatureOutcome::Failed(
            "the signature job completed but no pod of it holds the signature (its pods are gone)"
                .to_owned(),
        );
    }
    SignatureOutcome::Pending
}

/// Whether a pod is one of this Job's (by owner uid when both are known).
fn belongs_to(pod: &Pod, job_uid: Option<&str>) -> bool {
    let Some(uid) = job_uid else { return true };
    match &pod.metadata.owner_references {
        Some(owners) if !owners.is_empty() => owners.iter().any(|o| o.uid == uid),
        _ => true,
    }
}

/// `(reason, message)` of the Job's condition `kind` when it is true.
fn condition(job: &Job, kind: &str) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

fn phase(pod: &Pod) -> Option<&str> {
    pod.status.as_ref()?.phase.as_deref()
}

fn terminated(status: &ContainerStatus) -> Option<&ContainerStateTerminated> {
    fn of(state: Option<&ContainerState>) -> Option<&ContainerStateTerminated> {
        state?.terminated.as_ref()
    }
    of(status.state.as_ref()).or_else(|| of(status.last_state.as_ref()))
}

fn server_status(pod: &Pod) -> Option<&ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == server::CONTAINER_NAME)
}

/// The termination message of a pod whose server container exited 0 (empty counts as none).
fn succeeded_message(pod: &Pod) -> Option<String> {
    if phase(pod) != Some("Succeeded") {
        return None;
    }
    let t = terminated(server_status(pod)?)?;
    let message = t.message.as_deref().unwrap_or_default().trim();
    (t.exit_code == 0 && !message.is_empty()).then(|| message.to_owned())
}

/// Why a pod did not produce the signature.
enum Failure {
    /// A container ran and failed: its own message.
    Ran(String),
    /// Nothing ran to an error: why the pod waited or was stopped.
    Stuck(String),
}

fn failure(pod: &Pod) -> Option<Failure> {
    let status = pod.status.as_ref()?;
    if let Some(t) = server_status(pod)
        .and_then(terminated)
        .filter(|t| t.exit_code != 0)
    {
        let message = t.message.as_deref().unwrap_or_default().trim();
        return Some(Failure::Ran(if message.is_empty() {
            let reason = t.reason.as_deref().unwrap_or("Error");
            format!(
                "the signature command exited with code {} ({reason})",
                t.exit_code
            )
        } else {
            message.to_owned()
        }));
    }
    let init = status.init_container_statuses.iter().flatten();
    for c in init {
        if let Some(t) = terminated(c).filter(|t| t.exit_code != 0) {
            let message = t.message.as_deref().unwrap_or_default().trim();
            let mut text = format!("init container {} exited with code {}", c.name, t.exit_code);
            if !message.is_empty() {
                text.push_str(": ");
                text.push_str(message);
            }
            return Some(Failure::Ran(text));
        }
    }
    let waiting = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            let reason = w.reason.as_deref().filter(|r| *r != "PodInitializing")?;
            Some(match w.message.as_deref() {
                Some(m) if !m.is_empty() => format!("{}: {reason}: {m}", c.name),
                _ => format!("{}: {reason}", c.name),
            })
        });
    if let Some(waiting) = waiting {
        return Some(Failure::Stuck(waiting));
    }
    match (status.reason.as_deref(), status.message.as_deref()) {
        (Some(r), Some(m)) => Some(Failure::Stuck(format!("{r}: {m}"))),
        (Some(r), None) => Some(Failure::Stuck(r.to_owned())),
        (None, Some(m)) => Some(Failure::Stuck(m.to_owned())),
        (None, None) => None,
    }
}

#[cfg(test)]
#[path = "signature_job_tests.rs"]
mod tests;
