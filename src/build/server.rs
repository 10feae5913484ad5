//! The injected ONNX Runtime server container, its volumes, and its command line.
//!
//! Kept apart from the Deployment builder because it is the contract between the operator and
//! `modelpilot serve`: the flags written here are parsed by the server (a unit test parses them
//! with the server's own CLI definition, so the two cannot drift apart).

use k8s_openapi::{
    api::core::v1::{
        Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
        EnvVarSource, HTTPGetAction, ObjectFieldSelector, PersistentVolumeClaimVolumeSource, Probe,
        SeccompProfile, SecretEnvSource, SecurityContext, Volume, VolumeMount,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::labels;
use crate::validate::{ModelSource, ValidSpec};

/// Name of the injected container (reserved: the CRD rejects user containers with this name).
pub const CONTAINER_NAME: &str = "modelpilot-server";
/// Name of the container port (and the Service's target port).
pub const PORT_NAME: &str = "http";
/// Where the downloaded model is cached (an emptyDir).
pub const CACHE_DIR: &str = "/var/cache/modelpilot";
/// Where a `pvc://` claim is mounted.
pub const PVC_MOUNT: &str = "/mnt/models";
/// UID/GID the server runs as (non-root).
pub const RUN_AS: i64 = 65532;

/// How long a terminating server keeps accepting while the endpoints catch up (well inside the
/// pod's default 30 s grace period).
pub const DRAIN_DELAY_MS: u64 = 3000;

/// The server's readiness endpoint: true once the model is downloaded, verified, loaded and
/// warmed up, false again while it drains.
pub const READY_PATH: &str = "/v2/health/ready";
/// The server's liveness endpoint: answered from the moment it listens.
pub const LIVE_PATH: &str = "/v2/health/live";

/// How often a starting server is asked whether it is ready: the smallest period Kubernetes
/// accepts, so new capacity is seen within a second of its model being ready, at the cost of
/// one cheap request a second per starting pod (none once it has started).
pub const STARTUP_PERIOD_SECS: i32 = 1;

/// How long a server may take from start to ready (download, verification, load, warm-up)
/// before the kubelet restarts it. Longer than the server's own connect and download timeouts
/// (10 s and 10 min by default) plus a large model's load, so a download that cannot finish ends
/// with the server's own message in the termination log, not with a probe's.
pub const STARTUP_BUDGET_SECS: i32 = 20 * 60;

/// How often a started server's readiness is checked (3 failures in a row take it out of the
/// Service); liveness every 10 s, 3 failures restart it.
pub const READINESS_PERIOD_SECS: i32 = 5;
pub const LIVENESS_PERIOD_SECS: i32 = 10;

/// Where the server writes its fatal start-up error (the Kubernetes default, set explicitly
/// because the server's `--termination-message-path` default must match it).
pub const TERMINATION_MESSAGE_PATH: &str = "/dev/termination-log";

const CACHE_VOLUME: &str = "modelpilot-model-cache";
const TMP_VOLUME: &str = "modelpilot-tmp";
const PVC_VOLUME: &str = "modelpilot-model-store";

/// The URI the server is given: a `pvc://` URI becomes a `file://` path under the mount.
pub fn server_model_uri(spec: &ValidSpec) -> String {
    match &spec.source {
        ModelSource::Pvc { path, .. } => format!("file://{PVC_MOUNT}/{path}"),
        _ => spec.model_uri.clone(),
    }
}

/// The profile URI the server is given: on the model's claim, a `pvc://` URI becomes a path
/// under the same mount (another claim is not mounted, and the server says so at start-up).
fn server_profile_uri(spec: &ValidSpec, profile: &str) -> String {
    if let ModelSource::Pvc { claim, .. } = &spec.source
        && let Some(path) = profile
            .strip_prefix("pvc://")
            .and_then(|rest| rest.strip_prefix(claim.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
    {
        return format!("file://{PVC_MOUNT}/{path}");
    }
    profile.to_owned()
}

/// The `modelpilot serve …` arguments for this spec.
pub fn args(spec: &ValidSpec) -> Vec<String> {
    let mut args = vec![
        "serve".to_owned(),
        "--model-uri".into(),
        server_model_uri(spec),
        "--model-name".into(),
        spec.model_name.clone(),
        "--http-port".into(),
        spec.port.to_string(),
        "--cache-dir".into(),
        CACHE_DIR.into(),
        "--graph-optimization-level".into(),
        spec.graph_optimization_level.as_flag().into(),
        "--drain-delay-ms".into(),
        DRAIN_DELAY_MS.to_string(),
    ];
    if let Some(version) = &spec.version {
        args.extend(["--model-version".into(), version.clone()]);
    }
    if let Some(sha) = &spec.sha256 {
        args.extend(["--sha256".into(), sha.clone()]);
    }
    if let Some(threads) = spec.threads {
        args.extend(["--threads".into(), threads.to_string()]);
    }
    if let Some(profile) = &spec.profile {
        args.extend([
            "--baseline-profile".into(),
            server_profile_uri(spec, profile),
        ]);
    }
    if let Some(m) = &spec.monitoring {
        let window = m.interval_seconds.to_string();
        args.extend(["--drift-window-seconds".into(), window]);
    }
    if let Some(b) = &spec.batching {
        args.extend([
            "--batching".into(),
            "--max-batch-size".into(),
            b.max_batch_size.to_string(),
            "--max-queue-delay-ms".into(),
            b.max_queue_delay_ms.to_string(),
        ]);
    }
    args
}

/// The server's environment from the downward API: its pod name and namespace, and the
/// revision label, which the server echoes in its `x-modelpilot-pod`/`x-modelpilot-revision`
/// response headers (the names match `modelpilot serve`'s `--pod-name`/`--revision` flags).
pub fn env() -> Vec<EnvVar> {
    let field = |name: &str, path: String| EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: Some("v1".into()),
                field_path: path,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    vec![
        field("POD_NAME", "metadata.name".into()),
        field("POD_NAMESPACE", "metadata.namespace".into()),
        field(
            "MODELPILOT_REVISION",
            format!("metadata.labels['{}']", labels::REVISION),
        ),
    ]
}

fn http_probe(path: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.into()),
            port: IntOrString::String(PORT_NAME.into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

/// The server container. Its startup probe asks the readiness endpoint every second, and the
/// kubelet runs the readiness probe as soon as a container has started, so a new pod turns
/// Ready within about a second of its model being downloaded, verified, loaded and warmed up
/// (docs/performance.md, "Autoscaling: time for new capacity to serve"); readiness and liveness
/// then run at their calmer periods. A start-up failure ends up in the container's termination
/// message, which the operator reports on the ModelDeployment.
pub fn container(spec: &ValidSpec) -> Container {
    let mut mounts = vec![
        VolumeMount {
            name: CACHE_VOLUME.into(),
            mount_path: CACHE_DIR.into(),
            ..Default::default()
        },
        VolumeMount {
            name: TMP_VOLUME.into(),
            mount_path: "/tmp".into(),
            ..Default::default()
        },
    ];
    if matches!(spec.source, ModelSource::Pvc { .. }) {
        mounts.push(VolumeMount {
            name: PVC_VOLUME.into(),
            mount_path: PVC_MOUNT.into(),
            read_only: Some(true),
            ..Default::default()
        });
    }
    Container {
        name: CONTAINER_NAME.into(),
        image: Some(spec.image.clone()),
        args: Some(args(spec)),
        ports: Some(vec![ContainerPort {
            name: Some(PORT_NAME.into()),
            container_port: spec.port,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]),
        env: Some(env()),
        env_from: spec.credentials_secret.as_ref().map(|name| {
            vec![EnvFromSource {
                secret_ref: Some(SecretEnvSource {
                    name: name.clone(),
                    optional: Some(false),
                }),
                ..Default::default()
            }]
        }),
        resources: spec.resources.clone(),
        readiness_probe: Some(http_probe(READY_PATH, READINESS_PERIOD_SECS, 3)),
        liveness_probe: Some(http_probe(LIVE_PATH, LIVENESS_PERIOD_SECS, 3)),
        startup_probe: Some(http_probe(
            READY_PATH,
            STARTUP_PERIOD_SECS,
            STARTUP_BUDGET_SECS / STARTUP_PERIOD_SECS,
        )),
        // The server writes why it could not start there; the log tail stands in otherwise.
        termination_message_path: Some(TERMINATION_MESSAGE_PATH.into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        security_context: Some(SecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(RUN_AS),
            run_as_group: Some(RUN_AS),
            read_only_root_filesystem: Some(true),
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Default::default()
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        volume_mounts: Some(mounts),
        ..Default::default()
    }
}

/// The volumes the server container mounts.
pub fn volumes(spec: &ValidSpec) -> Vec<Volume> {
    let empty = |name: &str| Volume {
        name: name.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    };
    let mut volumes = vec![empty(CACHE_VOLUME), empty(TMP_VOLUME)];
    if let ModelSource::Pvc { claim, .. } = &spec.source {
        volumes.push(Volume {
            name: PVC_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: Some(true),
            }),
            ..Default::default()
        });
    }
    volumes
}
