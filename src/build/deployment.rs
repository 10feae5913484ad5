//! The Deployment running one revision's inference pods, named `<name>-<revision>`.
//!
//! Each revision has its own Deployment so that a canary and the stable revision run side by
//! side, each scaled on its own, and a promotion only moves traffic and replica counts: the
//! promoted pods are the ones that were judged, never restarted.
//!
//! Without a user template the server is the pod's only container. With one, the user's pod is
//! kept as written and the server joins it as a native sidecar: an init container with
//! `restartPolicy: Always`, placed after the user's own init containers (which may prepare a
//! `file://` model in a shared volume), so it starts before and stops after the user's containers.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment},
        core::v1::{PodSecurityContext, PodSpec, PodTemplateSpec, SeccompProfile},
    },
    apimachinery::pkg::{
        apis::meta::v1::{LabelSelector, ObjectMeta},
        util::intstr::IntOrString,
    },
};

use super::{child_metadata, labels, server};
use crate::validate::ValidSpec;

/// Name of a revision's Deployment.
pub fn name(owner: &str, revision: &str) -> String {
    format!("{owner}-{revision}")
}

/// Build the Deployment of the spec's revision, playing `track` with `replicas` pods.
pub fn build(spec: &ValidSpec, track: labels::Track, replicas: i32) -> Deployment {
    let mut metadata = child_metadata(spec);
    metadata.name = Some(name(&spec.owner.name, &spec.revision));
    let object_labels = metadata.labels.get_or_insert_with(Default::default);
    object_labels.insert(labels::REVISION.into(), spec.revision.clone());
    object_labels.insert(labels::TRACK.into(), track.as_str().into());
    Deployment {
        metadata,
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(labels::revision_selector(spec)),
                ..Default::default()
            },
            // A pod template never changes under a revision; this only matters for a restart.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".into())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            revision_history_limit: Some(5),
            progress_deadline_seconds: Some(600),
            template: pod_template(spec),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The pod template: the user's template (or an empty one) with the server injected.
pub fn pod_template(spec: &ValidSpec) -> PodTemplateSpec {
    let user = spec.template.clone().unwrap_or_default();
    let user_meta = user.metadata.unwrap_or_default();
    // The user's own annotations win: a pod may already be scraped another way.
    let mut annotations = scrape_annotations(spec);
    annotations.extend(user_meta.annotations.unwrap_or_default());

    let mut pod = user.spec.unwrap_or_default();
    let sidecar = spec.template.is_some() && !pod.containers.is_empty();
    let mut container = server::container(spec);
    if sidecar {
        container.restart_policy = Some("Always".into());
        pod.init_containers
            .get_or_insert_with(Vec::new)
            .push(container);
    } else {
        pod.containers.push(container);
    }
    pod.volumes
        .get_or_insert_with(Vec::new)
        .extend(server::volumes(spec));
    if pod.security_context.is_none() {
        pod.security_context = Some(default_pod_security());
    }
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels::pod(spec)),
            annotations: Some(annotations),
            ..Default::default()
        }),
        spec: Some(pod),
    }
}

/// Where Prometheus finds the server's metrics (the `prometheus.io/*` convention that
/// `kubernetes_sd_configs` relabelling rules key on).
fn scrape_annotations(spec: &ValidSpec) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
        ("prometheus.io/port".to_owned(), spec.port.to_string()),
        ("prometheus.io/path".to_owned(), "/metrics".to_owned()),
    ])
}

/// Non-root pod defaults, with the emptyDir volumes writable by the server's group.
fn default_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        fs_group: Some(server::RUN_AS),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The pod spec of a built Deployment (empty when absent), for callers that inspect it.
pub fn pod_spec(deployment: &Deployment) -> PodSpec {
    deployment.spec.template.spec.clone().unwrap_or_default()
}

#[cfg(test)]
#[path = "deployment_tests.rs"]
mod tests;
