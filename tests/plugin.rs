//! `kubectl modelpilot` against the real API server: the real binary (as `modelpilot plugin …`,
//! and as `kubectl-modelpilot` started by kubectl itself) writes its request annotation, and the
//! test plays the operator, acknowledging in `status.rollout.lastRequest`, to check exit codes and
//! output; `status` and `history` print a status the test patches in. No pods: only the object.

mod common;

use std::{path::PathBuf, process::Output};

use common::{
    TestNamespace, WAIT, example, in_namespace, kubeconfig_path,
    plugin::{assert_stderr, assert_stdout, command as plugin, report, text},
    wait_for,
};
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
    config::Kubeconfig,
};
use modelpilot::{
    api::ModelDeployment,
    plugin::request::{Request, recorded},
};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

const NAME: &str = "iris";

/// Run to completion (bounded), returning the output.
async fn output(mut command: Command) -> Output {
    let child = command.spawn().expect("start the plugin");
    finish(child).await
}

async fn finish(child: Child) -> Output {
    tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("plugin finished in time")
        .expect("plugin output")
}

async fn create(ns: &TestNamespace) -> Api<ModelDeployment> {
    let api: Api<ModelDeployment> = ns.api();
    api.create(&PostParams::default(), &example("minimal.yaml"))
        .await
        .expect("create the ModelDeployment");
    api
}

/// Wait until a request other than `previous` is on the annotation, and return it.
async fn request_after(api: &Api<ModelDeployment>, previous: Option<&str>) -> Request {
    let previous = previous.map(str::to_string);
    let obj = wait_for(api, NAME, WAIT, move |o: Option<&ModelDeployment>| {
        o.and_then(recorded)
            .is_some_and(|r| Some(&r.id) != previous.as_ref())
    })
    .await;
    recorded(&obj).expect("request annotation parses")
}

/// Play the operator: acknowledge `request` with `result` and `message`.
async fn acknowledge(api: &Api<ModelDeployment>, request: &Request, result: &str, message: &str) {
    let ack = json!({"id": request.id, "action": request.action, "result": result,
                     "message": message, "at": Timestamp::now().to_string()});
    patch_status(api, json!({"rollout": {"lastRequest": ack}})).await;
}

async fn patch_status(api: &Api<ModelDeployment>, status: Value) {
    api.patch_status(
        NAME,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .expect("patch status");
}

#[tokio::test]
async fn promote_writes_a_request_and_reports_done() {
    in_namespace("mp-plugin", |ns| async move {
        let api = create(&ns).await;
        let child = plugin(&ns, &["promote", NAME, "--wait", "60"])
            .spawn()
            .expect("start");
        let request = request_after(&api, None).await;
        assert_eq!(request.action.as_str(), "promote");
        assert_eq!(request.revision, None);
        assert!(
            request.id.len() > 16 && request.id.contains('-'),
            "id {}",
            request.id
        );
        acknowledge(&api, &request, "Done", "moved to step 2/4").await;
        let out = finish(child).await;
        assert_stdout(&out, 0, "promote iris: Done: moved to step 2/4");
    })
    .await;
}

/// kubectl finds `kubectl-modelpilot` on the PATH and runs it; a refusal exits 1.
#[tokio::test]
async fn kubectl_runs_the_plugin_and_a_refusal_exits_1() {
    in_namespace("mp-plugin", |ns| async move {
        let api = create(&ns).await;
        let bin = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::symlink(
            env!("CARGO_BIN_EXE_modelpilot"),
            bin.path().join("kubectl-modelpilot"),
        )
        .expect("symlink");
        let kubectl = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cluster/bin/kubectl");
        let path = format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(kubectl)
            .args(["modelpilot", "abort", NAME, "-n", &ns.name, "--wait", "60"])
            .env("KUBECONFIG", kubeconfig_path())
            .env("PATH", path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start kubectl");
        let request = request_after(&api, None).await;
        assert_eq!(request.action.as_str(), "abort");
        acknowledge(&api, &request, "Refused", "no rollout to abort").await;
        let out = finish(child).await;
        assert_stdout(&out, 1, "abort iris: Refused: no rollout to abort");

        // Usage errors name the command as kubectl users type it.
        let mut usage = Command::new(bin.path().join("kubectl-modelpilot"));
        usage.arg("promote").stderr(std::process::Stdio::piped());
        let out = output(usage).await;
        assert!(
            text(&out.stderr).contains("kubectl modelpilot promote"),
            "{}",
            report(&out)
        );
    })
    .await;
}

#[tokio::test]
async fn no_answer_in_time_exits_2_and_leaves_the_request() {
    in_namespace("mp-plugin", |ns| async move {
        let api = create(&ns).await;
        let out = output(plugin(&ns, &["pause", NAME, "--wait", "2"])).await;
        assert_stderr(&out, 2, "still recorded");
        let left = recorded(&api.get(NAME).await.expect("get")).expect("request still there");
        assert_eq!(left.action.as_str(), "pause");
    })
    .await;
}

#[tokio::test]
async fn every_verb_records_its_action() {
    in_namespace("mp-plugin", |ns| async move {
        let api = create(&ns).await;
        let verbs: [(&[&str], &str); 5] = [
            (&["promote", NAME, "--full"], "promote-full"),
            (&["retry", NAME], "retry"),
            (&["pause", NAME], "pause"),
            (&["resume", NAME], "resume"),
            (&["abort", NAME], "abort"),
        ];
        let mut previous: Option<String> = None;
        for (args, action) in verbs {
            let mut args = args.to_vec();
            args.push("--no-wait");
            let out = output(plugin(&ns, &args)).await;
            assert_eq!(out.status.code(), Some(0), "{args:?}: {}", report(&out));
            let request = recorded(&api.get(NAME).await.expect("get")).expect("request");
            assert_eq!(request.action.as_str(), action, "{args:?}");
            assert_ne!(Some(&request.id), previous.as_ref(), "ids are unique");
            assert!(text(&out.stdout).contains(&request.id), "{}", report(&out));
            previous = Some(request.id);
        }
    })
    .await;
}

/// A status as an operator would write it mid-rollout, with a history.
fn rollout_status() -> Value {
    json!({
        "phase": "Ready",
        "readyReplicas": 1,
        "stable": {"name": "aaaaaaaaaa", "uri": "s3://models/iris/1/model.onnx", "version": "v1",
                   "sha256": "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d1a2b"},
        "rollout": {
            "phase": "Paused",
            "canary": {"name": "cccccccccc", "uri": "s3://models/iris/2/model.onnx", "version": "v2"},
            "currentStep": 1,
            "stepStartedAt": "2025-01-01T11:59:15Z",
            "desiredWeight": 20,
            "appliedWeight": 10,
            "pause": {"reason": "Inconclusive", "message": "too few samples",
                      "since": "2025-01-01T11:59:15Z"},
            "metrics": [{"name": "error-rate", "scope": "background", "taken": 3, "successful": 2,
                         "failed": 0, "inconclusive": 1,
                         "measurements": [{"at": "2025-01-01T11:59:50Z", "canary": 0.0125,
                                           "stable": 0.5, "samples": 160, "verdict": "Successful"}]}],
            "lastRequest": {"id": "r-1", "action": "pause", "result": "Done",
                            "message": "paused at step 2", "at": "2025-01-01T11:58:00Z"}
        },
        "history": [
            {"revision": {"name": "0000000000", "uri": "s3://models/iris/0/model.onnx", "version": "v0"},
             "outcome": "Promoted", "at": "2024-12-30T09:00:00Z", "reason": "StepsComplete"},
            {"revision": {"name": "bbbbbbbbbb", "uri": "s3://models/iris/x/model.onnx"},
             "outcome": "RolledBack", "at": "2024-12-31T10:00:00Z", "reason": "AnalysisFailed",
             "message": "error-rate 0.2 > 0.01"},
            {"revision": {"name": "aaaaaaaaaa", "uri": "s3://models/iris/1/model.onnx", "version": "v1"},
             "outcome": "Promoted", "at": "2025-01-01T08:00:00Z", "reason": "StepsComplete"}
        ],
        "monitoring": {
            "revision": "aaaaaaaaaa", "lastEvaluation": "2025-01-01T11:59:00Z", "evaluations": 7,
            "drift": {"drift": true, "recent": [true, true], "persistent": true,
                      "driftedFeatures": ["petal_length"],
                      "features": [{"name": "petal_length", "method": "KS", "statistic": 0.3,
                                    "pValue": 0.0001, "threshold": 0.0125, "samples": 400,
                                    "drift": true}]}
        },
        "retraining": {"lastId": 1, "history": [{
            "id": 1, "phase": "AwaitingApproval", "outputUri": "s3://out/iris/1/",
            "from": {"name": "aaaaaaaaaa", "uri": "s3://models/iris/1/model.onnx"},
            "trigger": {"reason": "Drift", "at": "2025-01-01T11:59:00Z",
                        "windowStart": "2025-01-01T11:57:00Z", "windowEnd": "2025-01-01T11:59:00Z",
                        "features": ["petal_length"], "detail": "drift in 2 of the last 2 windows"}
        }]}
    })
}

#[tokio::test]
async fn status_and_history_print_the_status() {
    in_namespace("mp-plugin", |ns| async move {
        let api = create(&ns).await;
        patch_status(&api, rollout_status()).await;

        let out = output(plugin(&ns, &["status", NAME])).await;
        assert_eq!(out.status.code(), Some(0), "{}", report(&out));
        let status = text(&out.stdout);
        for want in [
            "Phase:        Paused (ModelDeployment Ready, 1/1 ready)",
            "Stable:       v1 (revision aaaaaaaaaa) s3://models/iris/1/model.onnx sha256:1a2b3c4d5e6f",
            "Canary:       v2 (revision cccccccccc) s3://models/iris/2/model.onnx",
            "Weight:       desired 20%, applied 10%",
            "Paused:       Inconclusive: too few samples; since 2025-01-01T11:59:15Z (",
            "error-rate (background): 3 taken, 2 successful, 0 failed, 1 inconclusive",
            "2025-01-01T11:59:50Z (",
            "canary 0.0125  stable 0.5  samples 160  Successful",
            "Last request: pause Done: paused at step 2; at 2025-01-01T11:58:00Z (",
            "), id r-1",
            "Monitoring:   revision aaaaaaaaaa, 7 evaluation(s), last 2025-01-01T11:59:00Z (",
            "  drift:      drifted: petal_length (400 samples); 2 of the last 2 windows drifted, persistent (Drifted)",
            "Retraining:   #1 AwaitingApproval: Drift (petal_length) at 2025-01-01T11:59:00Z (",
            "waiting for `kubectl modelpilot approve iris`",
        ] {
            assert!(status.contains(want), "missing {want:?} in\n{status}");
        }

        let out = output(plugin(&ns, &["history", NAME])).await;
        assert_eq!(out.status.code(), Some(0), "{}", report(&out));
        let history = text(&out.stdout);
        let rows: Vec<&str> = history.lines().collect();
        assert!(rows[0].starts_with("INDEX"), "{history}");
        assert!(rows[1].starts_with("0*") && rows[1].contains("aaaaaaaaaa"), "{history}");
        assert!(rows[2].starts_with("- ") && rows[2].contains("RolledBack"), "{history}");
        assert!(rows[3].starts_with("1 ") && rows[3].contains("v0"), "{history}");
        assert!(history.contains("error-rate 0.2 > 0.01"), "{history}");
        let retraining = history
            .split("\nRetraining:\n")
            .nth(1)
            .unwrap_or_default();
        let retraining: Vec<&str> = retraining.lines().collect();
        assert!(retraining[0].starts_with("ID  TRIGGER"), "{history}");
        assert!(
            retraining[1].starts_with("1   Drift (petal_length)")
                && retraining[1].contains("AwaitingApproval")
                && retraining[1].ends_with("waiting for `kubectl modelpilot approve iris`"),
            "{history}"
        );

        // rollback by stable index and by name; an index past the history is refused locally.
        let out = output(plugin(&ns, &["rollback", NAME, "--to-revision", "1", "--no-wait"])).await;
        assert_eq!(out.status.code(), Some(0), "{}", report(&out));
        let request = recorded(&api.get(NAME).await.expect("get")).expect("request");
        assert_eq!(
            (request.action.as_str(), request.revision.as_deref()),
            ("rollback", Some("0000000000"))
        );
        let out = output(plugin(
            &ns,
            &["rollback", NAME, "--to-revision", "bbbbbbbbbb", "--no-wait"],
        ))
        .await;
        assert_eq!(out.status.code(), Some(0), "{}", report(&out));
        let request = recorded(&api.get(NAME).await.expect("get")).expect("request");
        assert_eq!(request.revision.as_deref(), Some("bbbbbbbbbb"));
        let out = output(plugin(&ns, &["rollback", NAME, "--to-revision", "7"])).await;
        assert_stderr(&out, 1, "no stable revision at index 7");
    })
    .await;
}

/// Without `-n` the namespace is the kubeconfig context's; a missing object is a plain error.
#[tokio::test]
async fn namespace_from_the_context_and_a_missing_object() {
    in_namespace("mp-plugin", |ns| async move {
        create(&ns).await;
        let mut config = Kubeconfig::read_from(kubeconfig_path()).expect("kubeconfig");
        let current = config.current_context.clone().expect("current context");
        for named in &mut config.contexts {
            if named.name == current
                && let Some(context) = named.context.as_mut()
            {
                context.namespace = Some(ns.name.clone());
            }
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("kubeconfig");
        std::fs::write(&path, serde_yaml::to_string(&config).expect("yaml")).expect("write");

        let bare = |args: &[&str]| {
            let mut command = Command::new(env!("CARGO_BIN_EXE_modelpilot"));
            command
                .arg("plugin")
                .args(args)
                .env_remove("KUBECONFIG")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            command
        };
        let path_arg = path.to_string_lossy().into_owned();
        let out = output(bare(&["status", NAME, "--kubeconfig", &path_arg])).await;
        assert_stdout(&out, 0, &format!("Name:         {}/{NAME}", ns.name));

        let mut via_env = bare(&["history", "nope"]);
        via_env.env("KUBECONFIG", &path);
        let out = output(via_env).await;
        let missing = format!(
            "ModelDeployment \"nope\" not found in namespace \"{}\"",
            ns.name
        );
        assert_stderr(&out, 1, &missing);
    })
    .await;
}

#[tokio::test]
async fn status_watch_prints_each_change_until_interrupted() {
    in_namespace("mp-plugin", |ns| async move {
        let api = create(&ns).await;
        let mut child = plugin(&ns, &["status", NAME, "--watch"])
            .spawn()
            .expect("start");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut seen = Vec::new();
        let mut read_until = async |want: &str| {
            let found = tokio::time::timeout(WAIT, async {
                while let Some(line) = lines.next_line().await.expect("read stdout") {
                    seen.push(line.clone());
                    if line.contains(want) {
                        return true;
                    }
                }
                false
            })
            .await;
            assert_eq!(
                found,
                Ok(true),
                "no {want:?} in output:\n{}",
                seen.join("\n")
            );
        };
        read_until("Phase:        Stable").await;
        read_until("Canary:       none").await;
        patch_status(
            &api,
            json!({"rollout": {"phase": "Progressing", "currentStep": 0, "desiredWeight": 20}}),
        )
        .await;
        read_until("Phase:        Progressing").await;
        read_until("Weight:       desired 20%").await;

        // Ctrl-C ends the watch cleanly.
        let pid = child.id().expect("pid").to_string();
        let kill = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("kill");
        assert!(kill.success());
        let status = tokio::time::timeout(WAIT, child.wait())
            .await
            .expect("exited in time")
            .expect("wait");
        assert_eq!(status.code(), Some(0));
    })
    .await;
}
