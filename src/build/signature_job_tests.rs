//! Table tests of the signature Job builder and of reading its outcome.

use clap::Parser;
use k8s_openapi::api::core::v1::{Container, PodSpec};
use serde_json::json;

use super::*;
use crate::build::{
    deployment,
    fixtures::{manifest, valid},
    server::CONTAINER_NAME,
};

fn pod_spec(job: &Job) -> PodSpec {
    job.spec
        .as_ref()
        .and_then(|s| s.template.spec.clone())
        .expect("job has a pod spec")
}

fn pod_labels(job: &Job) -> BTreeMap<String, String> {
    job.spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

fn only_container(job: &Job) -> Container {
    let pod = pod_spec(job);
    assert_eq!(pod.containers.len(), 1, "{:?}", pod.containers);
    pod.containers[0].clone()
}

/// The server container of the Deployment built from the same spec.
fn deployment_server(spec: &ValidSpec) -> Container {
    let pod = deployment::pod_template(spec).spec.unwrap_or_default();
    pod.containers
        .into_iter()
        .chain(pod.init_containers.unwrap_or_default())
        .find(|c| c.name == CONTAINER_NAME)
        .expect("server in the deployment")
}

#[test]
fn job_is_named_labelled_owned_and_bounded() {
    let spec = valid(manifest());
    let job = build(&spec);
    assert_eq!(
        job.metadata.name,
        Some(format!("iris-sig-{}", spec.revision))
    );
    assert_eq!(job.metadata.namespace.as_deref(), Some("ml"));
    let owners = job.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners, vec![owner_reference(&spec)]);
    let want = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "modelpilot".to_owned(),
        ),
        ("modelpilot.io/signature-of".to_owned(), "iris".to_owned()),
        ("modelpilot.io/revision".to_owned(), spec.revision.clone()),
    ]);
    assert_eq!(job.metadata.labels.clone(), Some(want.clone()));
    assert_eq!(pod_labels(&job), want);
    let js = job.spec.clone().expect("spec");
    assert_eq!(js.backoff_limit, Some(1));
    assert_eq!(js.active_deadline_seconds, Some(300));
    assert_eq!(pod_spec(&job).restart_policy.as_deref(), Some("Never"));
}

#[test]
fn names_fit_in_a_label_value() {
    // (owner, revision, name)
    let cases = [
        ("iris", "0a1b2c3d4e", "iris-sig-0a1b2c3d4e".to_owned()),
        (
            &"m".repeat(48) as &str,
            "0a1b2c3d4e",
            format!("{}-sig-0a1b2c3d4e", "m".repeat(48)),
        ),
        (
            &"m".repeat(50),
            "0a1b2c3d4e",
            format!("{}-sig-0a1b2c3d4e", "m".repeat(48)),
        ),
        (
            // The cut lands on a dash: no double dash.
            &format!("{}-tail", "m".repeat(47)),
            "0a1b2c3d4e",
            format!("{}-sig-0a1b2c3d4e", "m".repeat(47)),
        ),
    ];
    for (owner, revision, want) in cases {
        let got = name(owner, revision);
        assert!(got.len() <= MAX_NAME_LEN, "{got}");
        assert_eq!(got, want, "{owner}");
    }
}

#[test]
fn the_container_is_the_servers_with_the_signature_command() {
    let mut m = manifest();
    m["spec"]["model"]["sha256"] = "ab".repeat(32).into();
    m["spec"]["model"]["credentialsSecret"] = "s3-creds".into();
    m["spec"]["server"] = json!({"port": 9000, "graphOptimizationLevel": "basic",
        "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}});
    let spec = valid(m);
    let job = build(&spec);
    let got = only_container(&job);
    let server = deployment_server(&spec);
    // What the Deployment's server has, the Job's has too.
    assert_eq!(got.name, CONTAINER_NAME);
    assert_eq!(got.image, server.image);
    assert_eq!(got.env, server.env);
    assert_eq!(got.env_from, server.env_from);
    assert!(got.env_from.is_some(), "credentials are passed");
    assert_eq!(got.resources, server.resources);
    assert_eq!(got.security_context, server.security_context);
    assert_eq!(got.volume_mounts, server.volume_mounts);
    // What it does not have: a port, probes, a restart policy of its own.
    assert_eq!(got.ports, None);
    assert_eq!(
        (
            &got.readiness_probe,
            &got.liveness_probe,
            &got.startup_probe
        ),
        (&None, &None, &None)
    );
    assert_eq!(got.restart_policy, None);
    assert_eq!(
        got.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    assert_eq!(
        got.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    let sha = "ab".repeat(32);
    assert_eq!(
        got.args.unwrap_or_default(),
        vec![
            "signature",
            "--model-uri",
            "s3://models/iris/v1.onnx",
            "--cache-dir",
            "/var/cache/modelpilot",
            "--graph-optimization-level",
            "basic",
            "--sha256",
            &sha,
            "--termination-message-path",
            "/dev/termination-log",
        ]
    );
    // The server's volumes (the download cache, /tmp) come with it, and the default pod
    // security context that makes them writable.
    let pod = pod_spec(&job);
    let deployment_pod = deployment::pod_template(&spec).spec.unwrap_or_default();
    assert_eq!(pod.volumes, deployment_pod.volumes);
    assert_eq!(pod.security_context, deployment_pod.security_context);
    assert_eq!(pod.init_containers, None);
}

#[test]
fn a_user_template_keeps_its_init_containers_volumes_and_pod_settings() {
    let mut m = manifest();
    m["spec"]["model"]["uri"] = "file:///models/iris.onnx".into();
    m["spec"]["template"] = json!({
        "metadata": {
            "labels": {"team": "risk", "modelpilot.io/name": "spoofed",
                       "modelpilot.io/revision": "spoofed"},
            "annotations": {"iam.example.com/role": "reader"}
        },
        "spec": {
            "serviceAccountName": "model-reader",
            "nodeSelector": {"pool": "inference"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "initContainers": [
                {"name": "fetch", "image": "fetch:1",
                 "volumeMounts": [{"name": "models", "mountPath": "/models"}]},
                {"name": "log-shipper", "image": "ship:1", "restartPolicy": "Always"}
            ],
            "containers": [{"name": "app", "image": "app:1"}],
            "volumes": [{"name": "models", "emptyDir": {}}]
        }
    });
    let spec = valid(m);
    let job = build(&spec);
    let pod = pod_spec(&job);
    let names = |cs: &[Container]| cs.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    // The preparing init container stays; native sidecars (and the server as one) do not,
    // nor the user's main containers.
    assert_eq!(
        names(&pod.init_containers.clone().unwrap_or_default()),
        ["fetch"]
    );
    assert_eq!(names(&pod.containers), [CONTAINER_NAME]);
    let volumes: Vec<_> = pod
        .volumes
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert!(volumes.contains(&"models".to_owned()), "{volumes:?}");
    assert!(
        volumes.contains(&"modelpilot-model-cache".to_owned()),
        "{volumes:?}"
    );
    assert_eq!(pod.service_account_name.as_deref(), Some("model-reader"));
    assert_eq!(
        pod.node_selector.clone().unwrap_or_default()["pool"],
        "inference"
    );
    assert_eq!(pod.tolerations.clone().unwrap_or_default().len(), 1);
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    // The user's labels and annotations, ours replacing any modelpilot.io/* label.
    let labels = pod_labels(&job);
    assert_eq!(labels["team"], "risk");
    assert!(!labels.contains_key("modelpilot.io/name"), "{labels:?}");
    assert_eq!(labels["modelpilot.io/revision"], spec.revision);
    let annotations = job
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.clone())
        .unwrap_or_default();
    assert_eq!(
        annotations,
        BTreeMap::from([("iam.example.com/role".to_owned(), "reader".to_owned())]),
        "no scrape annotations: nothing serves /metrics"
    );
}

#[test]
fn a_pvc_model_is_read_from_the_mounted_claim() {
    let mut m = manifest();
    m["spec"]["model"]["uri"] = "pvc://store/iris/v2.onnx".into();
    let spec = valid(m);
    let job = build(&spec);
    let c = only_container(&job);
    let args = c.args.clone().unwrap_or_default();
    let at = args.iter().position(|a| a == "--model-uri").expect("flag");
    assert_eq!(args[at + 1], "file:///mnt/models/iris/v2.onnx");
    assert!(!args.contains(&"--sha256".to_owned()), "{args:?}");
    let claims: Vec<_> = pod_spec(&job)
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.persistent_volume_claim.map(|p| p.claim_name))
        .collect();
    assert_eq!(claims, ["store"]);
    assert_eq!(c.volume_mounts, deployment_server(&spec).volume_mounts);
}

/// The command line the Job runs must be one `modelpilot signature` accepts, and mean what
/// the builder meant.
#[test]
fn args_parse_with_the_signature_commands_own_cli() {
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(clap::Subcommand)]
    enum Cmd {
        Signature(crate::serve::signature::SignatureArgs),
    }
    let mut m = manifest();
    m["spec"]["model"]["sha256"] = "AB".repeat(32).into();
    m["spec"]["server"] = json!({"graphOptimizationLevel": "extended"});
    let spec = valid(m);
    let argv = std::iter::once("modelpilot".to_owned()).chain(args(&spec));
    let parsed = match Cli::try_parse_from(argv) {
        Ok(Cli {
            cmd: Cmd::Signature(a),
        }) => a,
        Err(err) => panic!("signature rejects the operator's flags: {err}"),
    };
    assert_eq!(parsed.model_uri, "s3://models/iris/v1.onnx");
    assert_eq!(parsed.sha256, Some("ab".repeat(32)));
    assert_eq!(
        parsed.download.cache_dir.as_deref(),
        Some(std::path::Path::new("/var/cache/modelpilot"))
    );
    assert_eq!(
        parsed.graph_optimization_level,
        crate::serve::config::OptimizationLevel::Extended
    );
    assert_eq!(
        parsed.termination_message_path,
        std::path::PathBuf::from("/dev/termination-log")
    );
}

fn job(status: serde_json::Value) -> Job {
    serde_json::from_value(json!({
        "metadata": {"name": "iris-sig-0a1b2c3d4e", "uid": "job-2"},
        "status": status
    }))
    .expect("job parses")
}

fn failed_job(reason: &str, message: &str) -> Job {
    job(json!({"conditions": [
        {"type": "FailureTarget", "status": "True", "reason": reason, "message": message},
        {"type": "Failed", "status": "True", "reason": reason, "message": message}]}))
}

/// A pod of the Job (owner uid `job-2` unless `owner` says otherwise).
fn pod(name: &str, created: &str, owner: &str, status: serde_json::Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "creationTimestamp": created,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job",
                                 "name": "iris-sig-0a1b2c3d4e", "uid": owner}]},
        "status": status
    }))
    .expect("pod parses")
}

fn server_state(phase: &str, state: serde_json::Value) -> serde_json::Value {
    json!({"phase": phase, "containerStatuses": [{
        "name": "modelpilot-server", "ready": false, "restartCount": 0,
        "image": "modelpilot/modelpilot:test", "imageID": "", "state": state}]})
}

fn exited(code: i32, message: &str) -> serde_json::Value {
    json!({"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                          "message": message}})
}

const SIGNATURE: &str =
    r#"{"inputs":[{"name":"x","datatype":"FP32","shape":[-1,4]}],"outputs":[]}"#;

#[test]
fn outcome_table() {
    let t0 = "2025-01-01T00:00:00Z";
    let t1 = "2025-01-01T00:00:30Z";
    let running = job(json!({"active": 1}));
    let complete = job(json!({"succeeded": 1, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True"},
        {"type": "Complete", "status": "True"}]}));
    let backoff = failed_job(
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
    );
    let deadline = failed_job(
        "DeadlineExceeded",
        "Job was active longer than specified deadline",
    );
    let ok_pod = pod(
        "p-ok",
        t0,
        "job-2",
        server_state("Succeeded", exited(0, SIGNATURE)),
    );
    let bad_digest = "checksum mismatch for s3://m/i.onnx: expected sha256 00, got 3f";
    let failed_pod = |name: &str, at: &str, message: &str| {
        pod(
            name,
            at,
            "job-2",
            server_state("Failed", exited(1, message)),
        )
    };
    let pulling = pod(
        "p-pull",
        t0,
        "job-2",
        server_state(
            "Pending",
            json!({"waiting": {"reason": "ImagePullBackOff",
                               "message": "Back-off pulling image \"x\""}}),
        ),
    );
    let init_failed = pod(
        "p-init",
        t0,
        "job-2",
        json!({"phase": "Failed",
            "initContainerStatuses": [{"name": "fetch", "ready": false, "restartCount": 0,
                "image": "fetch:1", "imageID": "",
                "state": {"terminated": {"exitCode": 2, "message": "no such object"}}}],
            "containerStatuses": [{"name": "modelpilot-server", "ready": false,
                "restartCount": 0, "image": "i", "imageID": "",
                "state": {"waiting": {"reason": "PodInitializing"}}}]}),
    );
    let killed_silently = failed_pod("p-silent", t0, "");
    let evicted = pod(
        "p-evicted",
        t0,
        "job-2",
        json!({"phase": "Failed", "reason": "Evicted",
               "message": "The node was low on resource: memory."}),
    );
    let earlier_job_pod = pod(
        "p-old",
        t0,
        "job-1",
        server_state("Succeeded", exited(0, SIGNATURE)),
    );

    use SignatureOutcome::{Failed, Pending, Ready};
    // (case, job, pods, outcome)
    let cases: Vec<(&str, Job, Vec<Pod>, SignatureOutcome)> = vec![
        ("just created", job(json!({})), vec![], Pending),
        ("running", running.clone(), vec![pulling.clone()], Pending),
        (
            "a failed pod while the job retries",
            running.clone(),
            vec![failed_pod("p1", t0, bad_digest)],
            Pending,
        ),
        (
            "succeeded",
            complete.clone(),
            vec![ok_pod.clone()],
            Ready(SIGNATURE.into()),
        ),
        (
            "the succeeded pod is read before the job says complete",
            running.clone(),
            vec![ok_pod.clone()],
            Ready(SIGNATURE.into()),
        ),
        (
            "a retry succeeded after a failure",
            complete.clone(),
            vec![failed_pod("p1", t0, "timeout"), ok_pod.clone()],
            Ready(SIGNATURE.into()),
        ),
        (
            "a pod of an earlier job of the same name is not ours",
            running.clone(),
            vec![earlier_job_pod],
            Pending,
        ),
        (
            "failed: the server's own message",
            backoff.clone(),
            vec![failed_pod("p1", t0, bad_digest)],
            Failed(bad_digest.into()),
        ),
        (
            "failed twice: the newest pod's message",
            backoff.clone(),
            vec![
                failed_pod("p2", t1, "second error"),
                failed_pod("p1", t0, "first error"),
            ],
            Failed("second error".into()),
        ),
        (
            "failed without a message: the exit code",
            backoff.clone(),
            vec![killed_silently],
            Failed("the signature command exited with code 1 (Error)".into()),
        ),
        (
            "an init container failed",
            backoff.clone(),
            vec![init_failed],
            Failed("init container fetch exited with code 2: no such object".into()),
        ),
        (
            "evicted",
            backoff.clone(),
            vec![evicted],
            Failed(
                "BackoffLimitExceeded: Job has reached the specified backoff limit \
                 (Evicted: The node was low on resource: memory.)"
                    .into(),
            ),
        ),
        (
            "deadline while the image could not be pulled",
            deadline.clone(),
            vec![pulling],
            Failed(
                "DeadlineExceeded: Job was active longer than specified deadline \
                 (modelpilot-server: ImagePullBackOff: Back-off pulling image \"x\")"
                    .into(),
            ),
        ),
        (
            "deadline stopped a running download: the deadline first",
            deadline.clone(),
            vec![failed_pod("p1", t0, "terminated")],
            Failed(
                "DeadlineExceeded: Job was active longer than specified deadline (terminated)"
                    .into(),
            ),
        ),
        (
            "deadline, pods gone",
            deadline,
            vec![],
            Failed("DeadlineExceeded: Job was active longer than specified deadline".into()),
        ),
        (
            "complete but the pods are gone",
            complete.clone(),
            vec![],
            Failed(
                "the signature job completed but no pod of it holds the signature (its pods are gone)"
                    .into(),
            ),
        ),
        (
            "succeeded with something that is not a signature",
            complete,
            vec![pod("p", t0, "job-2", server_state("Succeeded", exited(0, "hello")))],
            Failed(
                "the signature job's result is not a signature \
                 (expected value at line 1 column 1): hello"
                    .into(),
            ),
        ),
    ];
    for (case, job, pods, want) in cases {
        assert_eq!(outcome(&job, &pods), want, "{case}");
    }
}
