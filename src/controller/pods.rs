//! Pod health, the pure half: from the pods of the current revision to the one problem worth
//! showing on the ModelDeployment (`Degraded=True` with its reason and message).
//!
//! The Deployment's own status only counts ready pods; it cannot say *why* a pod is not ready.
//! The pods can: the server writes its fatal start-up error (bad digest, unloadable model,
//! unreachable source) to its termination message, the kubelet reports image pulls that fail
//! and containers that crash-loop. This module reads those so that `kubectl get mdep` says
//! "checksum mismatch" instead of "0/1 replicas ready" for ten minutes. The client half (listing
//! the pods, watching them) lives in `reconcile.rs` and `mod.rs`.

use std::time::Duration;

use k8s_openapi::{
    api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod},
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::Timestamp,
};
use kube::{ResourceExt, runtime::reflector::ObjectRef};

use crate::{
    api::ModelDeployment,
    build::{labels, server::CONTAINER_NAME},
};

/// How long a pod may stay not ready before that alone is a problem.
pub const DEFAULT_NOT_READY_DEADLINE: Duration = Duration::from_secs(600);

/// The server exited on a fatal start-up error; the message is its own.
pub const MODEL_LOAD_FAILED: &str = "ModelLoadFailed";
/// A container keeps crashing and the kubelet backs off restarting it.
pub const CRASH_LOOP_BACK_OFF: &str = "CrashLoopBackOff";
/// An image cannot be pulled (or its name is invalid).
pub const IMAGE_PULL_FAILED: &str = "ImagePullFailed";
/// A container cannot be created or started (a missing Secret or ConfigMap, for instance).
pub const CONTAINER_CREATE_FAILED: &str = "ContainerCreateFailed";
/// The pod failed as a whole (evicted, for instance).
pub const POD_FAILED: &str = "PodFailed";
/// A pod has not been ready for longer than the deadline.
pub const PODS_NOT_READY: &str = "PodsNotReady";

/// One problem of the current revision's pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodProblem {
    pub reason: &'static str,
    pub message: String,
}

/// The problem to report for the current revision's pods, if any.
///
/// Terminating pods are ignored. Each remaining pod yields at most one problem, checked in this
/// order, which is also the order of precedence between pods (ties go to the pod whose name
/// sorts first, so the reported pod does not flap between reconciles):
///
/// 1. `ModelLoadFailed`: the server container is not ready and its current or last state is
///    a termination with an exit code of 1–127 (the server's own exit, not a kill) and a
///    termination message; the message is the server's error, verbatim.
/// 2. `CrashLoopBackOff`: a container waits in `CrashLoopBackOff`.
/// 3. `ImagePullFailed`: a container waits in `ErrImagePull`, `ImagePullBackOff` or
///    `InvalidImageName`.
/// 4. `ContainerCreateFailed`: a container waits in `CreateContainerConfigError`,
///    `CreateContainerError` or `RunContainerError`.
/// 5. `PodFailed`: the pod's phase is `Failed`.
/// 6. `PodsNotReady`: the pod has not been ready for longer than `not_ready_deadline`, counted
///    from its `Ready=False` transition (or its creation); within the deadline it is not a
///    problem, just a pod starting up.
///
/// ```
/// use std::time::Duration;
/// use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
/// use modelpilot::controller::pods::pod_health;
///
/// let pod: Pod = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "iris-7d9f-x2", "creationTimestamp": "2025-01-01T00:00:00Z"},
///     "status": {"phase": "Running", "containerStatuses": [{
///         "name": "modelpilot-server", "ready": false, "restartCount": 2,
///         "image": "modelpilot/modelpilot:0.1.0", "imageID": "",
///         "state": {"waiting": {"reason": "CrashLoopBackOff"}},
///         "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
///             "message": "model s3://models/iris.onnx: checksum mismatch"}}}]}
/// })).unwrap();
/// let now = Time("2025-01-01T00:01:00Z".parse::<Timestamp>().unwrap());
/// let problem = pod_health(&[pod], &now, Duration::from_secs(600)).unwrap();
/// assert_eq!(problem.reason, "ModelLoadFailed");
/// assert_eq!(problem.message, "model s3://models/iris.onnx: checksum mismatch");
/// ```
pub fn pod_health(pods: &[Pod], now: &Time, not_ready_deadline: Duration) -> Option<PodProblem> {
    let mut found: Vec<(usize, String, PodProblem)> = pods
        .iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none())
        .filter_map(|pod| {
            let (rank, problem) = problem_of(pod, now, not_ready_deadline)?;
            Some((rank, pod.name_any(), problem))
        })
        .collect();
    found.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    found.into_iter().next().map(|(_, _, problem)| problem)
}

/// How long until a pod that is not ready now reaches the deadline (the next time
/// [`pod_health`] may change without any pod changing), if one is on its way there.
///
/// ```
/// use std::time::Duration;
/// use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
/// use modelpilot::controller::pods::recheck_in;
///
/// let pod: Pod = serde_json::from_value(serde_json::json!({
///     "metadata": {"name": "p", "creationTimestamp": "2025-01-01T00:00:00Z"},
///     "status": {"phase": "Pending"}
/// })).unwrap();
/// let now = Time("2025-01-01T00:01:40Z".parse::<Timestamp>().unwrap());
/// assert_eq!(recheck_in(&[pod], &now, Duration::from_secs(600)), Some(Duration::from_secs(500)));
/// ```
pub fn recheck_in(pods: &[Pod], now: &Time, not_ready_deadline: Duration) -> Option<Duration> {
    pods.iter()
        .filter(|pod| pod.metadata.deletion_timestamp.is_none() && !is_ready(pod))
        .filter_map(|pod| {
            let since = not_ready_since(pod)?;
            let left = deadline_secs(not_ready_deadline)
                .saturating_sub(now.0.as_second().saturating_sub(since));
            (left > 0).then(|| Duration::from_secs(left.unsigned_abs()))
        })
        .min()
}

/// The ModelDeployment a pod belongs to, from the labels the builder puts on every pod.
pub fn owner_of(pod: &Pod) -> Option<ObjectRef<ModelDeployment>> {
    let name = pod.labels().get(labels::NAME)?;
    let namespace = pod.namespace()?;
    Some(ObjectRef::new(name).within(&namespace))
}

fn problem_of(pod: &Pod, now: &Time, deadline: Duration) -> Option<(usize, PodProblem)> {
    let pod_name = pod.name_any();
    let status = pod.status.as_ref()?;
    let containers: Vec<&ContainerStatus> = status
        .init_container_statuses
        .iter()
        .chain(status.container_statuses.iter())
        .flatten()
        .collect();
    let problem = |rank: usize, reason: &'static str, message: String| {
        Some((rank, PodProblem { reason, message }))
    };
    if let Some(message) = containers.iter().find_map(|c| load_failure(c)) {
        return problem(0, MODEL_LOAD_FAILED, message);
    }
    if let Some(c) = waiting_in(&containers, &["CrashLoopBackOff"]) {
        return problem(1, CRASH_LOOP_BACK_OFF, crash_message(&pod_name, c));
    }
    let pulls = ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];
    if let Some(c) = waiting_in(&containers, &pulls) {
        return problem(2, IMAGE_PULL_FAILED, waiting_message(&pod_name, c));
    }
    let creates = [
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    ];
    if let Some(c) = waiting_in(&containers, &creates) {
        return problem(3, CONTAINER_CREATE_FAILED, waiting_message(&pod_name, c));
    }
    if status.phase.as_deref() == Some("Failed") {
        let why = join_nonempty(&[status.reason.as_deref(), status.message.as_deref()]);
        return problem(4, POD_FAILED, format!("pod {pod_name} failed: {why}"));
    }
    if !is_ready(pod) && status.phase.as_deref() != Some("Succeeded") {
        let since = not_ready_since(pod)?;
        if now.0.as_second().saturating_sub(since) > deadline_secs(deadline) {
            let ready = condition(pod, "Ready");
            let why = join_nonempty(&[
                ready.and_then(|c| c.reason.as_deref()),
                ready.and_then(|c| c.message.as_deref()),
            ]);
            // The start, not the elapsed time: the message stays the same between reconciles.
            let since =
                Timestamp::from_second(since).map_or_else(|_| since.to_string(), |t| t.to_string());
            let message = format!(
                "pod {pod_name} not ready since {since} (deadline {}s): {why}",
                deadline.as_secs()
            );
            return problem(5, PODS_NOT_READY, message);
        }
    }
    None
}

/// The server's own start-up error, when its container failed and is not ready again.
fn load_failure(c: &ContainerStatus) -> Option<String> {
    if c.name != CONTAINER_NAME || c.ready {
        return None;
    }
    let terminated = terminated(c, false).or_else(|| terminated(c, true))?;
    let own_exit = (1..128).contains(&terminated.exit_code);
    let message = terminated.message.as_deref().map(str::trim).unwrap_or("");
    (own_exit && !message.is_empty()).then(|| message.to_owned())
}

fn terminated(c: &ContainerStatus, last: bool) -> Option<&ContainerStateTerminated> {
    let state = if last { &c.last_state } else { &c.state };
    state.as_ref()?.terminated.as_ref()
}

fn waiting_in<'a>(
    containers: &[&'a ContainerStatus],
    reasons: &[&str],
) -> Option<&'a ContainerStatus> {
    containers.iter().copied().find(|c| {
        let reason = c
            .state
            .as_ref()
            .and_then(|s| s.waiting.as_ref())
            .and_then(|w| w.reason.as_deref());
        reason.is_some_and(|r| reasons.contains(&r))
    })
}

fn crash_message(pod: &str, c: &ContainerStatus) -> String {
    let mut message = format!(
        "container {} of pod {pod} keeps crashing ({} restarts)",
        c.name, c.restart_count
    );
    if let Some(t) = terminated(c, true) {
        message.push_str(&format!("; last exit code {}", t.exit_code));
        let why = join_nonempty(&[t.reason.as_deref(), t.message.as_deref().map(str::trim)]);
        if !why.is_empty() {
            message.push_str(&format!(": {why}"));
        }
    }
    message
}

fn waiting_message(pod: &str, c: &ContainerStatus) -> String {
    let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    let why = join_nonempty(&[
        waiting.and_then(|w| w.reason.as_deref()),
        waiting.and_then(|w| w.message.as_deref()),
    ]);
    format!("container {} of pod {pod}: {why}", c.name)
}

fn join_nonempty(parts: &[Option<&str>]) -> String {
    parts
        .iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(": ")
}

fn condition<'a>(
    pod: &'a Pod,
    type_: &str,
) -> Option<&'a k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready").is_some_and(|c| c.status == "True")
}

/// Seconds since the epoch at which the pod last stopped being ready (its `Ready=False`
/// transition, or its creation when it never reported one).
fn not_ready_since(pod: &Pod) -> Option<i64> {
    let created = pod
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second());
    let transition = condition(pod, "Ready")
        .filter(|c| c.status != "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0.as_second());
    match (created, transition) {
        (Some(c), Some(t)) => Some(c.max(t)),
        (c, t) => c.or(t),
    }
}

fn deadline_secs(deadline: Duration) -> i64 {
    i64::try_from(deadline.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "pods_tests.rs"]
mod tests;
