//! End-to-end tests on real pods: the local cluster's real node (the node agent) runs each
//! inference server as a `modelpilot serve` process in its own network namespace, kube-proxy
//! routes the Service's ClusterIP to it, Prometheus scrapes it. What the canary, autoscaling and
//! retraining work will stand on: readiness that means "model fetched, verified and loaded",
//! failures surfaced on the ModelDeployment, restarts, scaling with graceful drain, Jobs.
//!
//! Needs `make cluster-up` as root (the agent makes network namespaces) and the test Python env
//! (`eval "$(hack/pyenv.sh)"`, for the generated iris model); `make test` provides both.

mod common;
mod real_support;
mod serve_support;

use std::{collections::BTreeSet, time::Duration};

use common::{
    TestNamespace, WAIT, example, has_condition, in_namespace, poll, wait_for, wait_list,
    with_controller,
};
use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{Pod, Secret, Service},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, LogParams, Patch, PatchParams, PostParams},
    runtime::{wait::Condition, watcher},
};
use modelpilot::api::ModelDeployment;
use real_support::*;

/// Start-up on real pods includes the model download and load: allow for a loaded machine.
const START: Duration = Duration::from_secs(120);

fn iris() -> Vec<u8> {
    std::fs::read(serve_support::models().join("iris.onnx")).expect("iris.onnx")
}

fn sample() -> (Vec<[f32; 4]>, Vec<i64>) {
    let text =
        std::fs::read_to_string(serve_support::models().join("iris.sample.json")).expect("sample");
    let v: serde_json::Value = serde_json::from_str(&text).expect("sample json");
    let rows = v["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|r| {
            let f = |i: usize| r[i].as_f64().unwrap_or_default() as f32;
            [f(0), f(1), f(2), f(3)]
        })
        .collect();
    let labels = v["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(serde_json::Value::as_i64)
        .collect();
    (rows, labels)
}

/// The minimal example pointed at `source`, with `replicas` and an optional digest.
async fn deploy(
    ns: &TestNamespace,
    name: &str,
    source: &ModelSource,
    replicas: i32,
    sha256: Option<String>,
) {
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(format!("{name}-s3")),
            ..Default::default()
        },
        string_data: Some(source.secret_data()),
        ..Default::default()
    };
    ns.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create secret");
    let mut md = example("minimal.yaml");
    md.metadata.name = Some(name.into());
    md.spec.model.uri = source.uri("iris.onnx");
    md.spec.model.credentials_secret = Some(format!("{name}-s3"));
    md.spec.model.sha256 = sha256;
    md.spec.replicas = replicas;
    ns.api::<ModelDeployment>()
        .create(&PostParams::default(), &md)
        .await
        .expect("create ModelDeployment");
}

fn selector(name: &str) -> String {
    format!("modelpilot.io/name={name}")
}

fn live(ps: &[Pod]) -> Vec<&Pod> {
    ps.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn all_ready(n: usize) -> impl Fn(&[Pod]) -> bool {
    move |ps| {
        let live = live(ps);
        live.len() == n && live.iter().all(|p| is_ready(p))
    }
}

/// Waits until the Service's EndpointSlices list exactly `ips` as ready endpoints.
async fn wait_endpoints(ns: &TestNamespace, service: &str, ips: &BTreeSet<String>) {
    let api: Api<EndpointSlice> = ns.api();
    let want = ips.clone();
    wait_list(
        &api,
        watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}")),
        WAIT,
        &format!("EndpointSlices of {service} = {want:?}"),
        |slices| {
            let ready: BTreeSet<String> = slices
                .iter()
                .flat_map(|s| s.endpoints.iter().flatten())
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false))
                .flat_map(|e| e.addresses.iter().cloned())
                .collect();
            ready == want
        },
        |s| format!("{:?}", s.endpoints),
    )
    .await;
}

fn ips(ps: &[Pod]) -> BTreeSet<String> {
    live(ps)
        .iter()
        .filter_map(|p| p.status.as_ref()?.pod_ip.clone())
        .collect()
}

fn serves(pid: i32) -> bool {
    cmdline(pid)
        .is_some_and(|c| c.contains(" serve ") && c.contains("--model-uri s3://models/iris.onnx"))
}

#[tokio::test]
async fn minimal_example_runs_real_servers_behind_its_cluster_ip() {
    let source = ModelSource::start(vec![("iris.onnx".into(), iris())], true).await;
    with_controller("mp-real", |ns| async move {
        let (rows, labels) = sample();
        let mdeps: Api<ModelDeployment> = ns.api();
        let pods: Api<Pod> = ns.api();
        deploy(&ns, "iris", &source, 2, None).await;

        // Both servers run and are downloading; neither is Ready while the download stalls.
        let running = wait_pods(
            &pods,
            &selector("iris"),
            START,
            "two running servers",
            |ps| live(ps).len() == 2 && live(ps).iter().all(|p| pid(p).is_some()),
        )
        .await;
        source.wait_downloads(2, START).await;
        for p in &running {
            let pid = pid(p).expect("pid");
            assert!(serves(pid), "pod {} runs {:?}", p.name_any(), cmdline(pid));
            let now = pods.get(&p.name_any()).await.expect("pod");
            assert!(
                !is_ready(&now),
                "{} Ready while its model downloads",
                describe(&now)
            );
        }
        let md = mdeps.get("iris").await.expect("mdep");
        assert!(
            !has_condition("Ready", "True").matches_object(Some(&md)),
            "ModelDeployment Ready before any model loaded"
        );

        // Released: the models load, the pods and the ModelDeployment turn Ready.
        source.release();
        let ready = wait_pods(
            &pods,
            &selector("iris"),
            START,
            "two ready servers",
            all_ready(2),
        )
        .await;
        wait_for(&mdeps, "iris", START, has_condition("Ready", "True")).await;
        wait_endpoints(&ns, "iris", &ips(&ready)).await;

        // The ClusterIP (kube-proxy) reaches every replica, each answering correctly.
        let url = service_url(&ns.api::<Service>(), "iris").await;
        // A new connection per request: kube-proxy spreads connections, not requests.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(0)
            .build()
            .expect("client");
        let names: BTreeSet<String> = live(&ready).iter().map(|p| p.name_any()).collect();
        // kube-proxy programs the Service's rules shortly after its EndpointSlices change; its
        // rules cannot be watched, so the first answer is polled for.
        poll(
            WAIT,
            Duration::from_millis(200),
            "kube-proxy rules for the ClusterIP",
            || {
                let (client, url, rows) = (client.clone(), url.clone(), rows.clone());
                async move { infer(&client, &url, "iris", &rows).await.ok() }
            },
        )
        .await;
        // Then every replica answers (kube-proxy picks an endpoint per connection at random,
        // and may still be adding the second one: bounded in count and time, the pause only
        // paces the requests).
        let mut seen = BTreeSet::new();
        let deadline = tokio::time::Instant::now() + WAIT;
        for _ in 0..2000 {
            let answer = infer(&client, &url, "iris", &rows)
                .await
                .expect("request to the ClusterIP");
            assert_eq!(answer.status, 200, "{answer:?}");
            assert_eq!(answer.labels, labels, "predictions");
            seen.insert(answer.pod.expect("x-modelpilot-pod header"));
            if seen == names || tokio::time::Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(seen, names, "every replica answers through {url}");

        // kubectl logs reaches the agent's log endpoint through the API server.
        let first = live(&ready)[0].name_any();
        let logs = pods
            .logs(
                &first,
                &LogParams {
                    container: Some("modelpilot-server".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("pod logs");
        assert!(logs.contains("model ready"), "logs of {first}:\n{logs}");

        // Prometheus scraped both pods: one request-counter series per pod.
        let prom =
            prometheus_url().expect("Prometheus runs with the cluster (.cluster/run/ports.env)");
        let query = format!(
            "count by (pod) (modelpilot_inference_requests_total{{namespace=\"{}\"}})",
            ns.name
        );
        let series = poll(
            Duration::from_secs(60),
            Duration::from_secs(1),
            "Prometheus series per pod",
            || {
                let (client, prom, query, names) =
                    (client.clone(), prom.clone(), query.clone(), names.clone());
                async move {
                    let resp = client
                        .get(format!("{prom}/api/v1/query"))
                        .query(&[("query", query)])
                        .send()
                        .await
                        .ok()?;
                    let v: serde_json::Value =
                        serde_json::from_slice(&resp.bytes().await.ok()?).ok()?;
                    let pods: BTreeSet<String> = v["data"]["result"]
                        .as_array()?
                        .iter()
                        .filter_map(|r| r["metric"]["pod"].as_str().map(String::from))
                        .collect();
                    (pods == names).then_some(pods)
                }
            },
        )
        .await;
        assert_eq!(series.len(), 2);

        // Deleting the ModelDeployment ends its processes and removes their namespaces.
        let pids: Vec<i32> = live(&ready).iter().filter_map(|p| pid(p)).collect();
        let netns: Vec<String> = live(&ready)
            .iter()
            .map(|p| {
                let hex: String = p
                    .uid()
                    .unwrap_or_default()
                    .chars()
                    .filter(char::is_ascii_hexdigit)
                    .take(12)
                    .collect();
                format!("/var/run/netns/mp-{hex}")
            })
            .collect();
        mdeps
            .delete("iris", &DeleteParams::foreground())
            .await
            .expect("delete mdep");
        wait_pods(&pods, &selector("iris"), WAIT, "no pods", |ps| {
            ps.is_empty()
        })
        .await;
        for pid in pids {
            assert!(!serves(pid), "server process {pid} outlived its pod");
        }
        for path in netns {
            assert!(
                !std::path::Path::new(&path).exists(),
                "{path} outlived its pod"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_model_whose_digest_does_not_match_degrades_with_the_servers_message() {
    let source = ModelSource::start(vec![("iris.onnx".into(), iris())], false).await;
    with_controller("mp-digest", |ns| async move {
        let mdeps: Api<ModelDeployment> = ns.api();
        let pods: Api<Pod> = ns.api();
        deploy(&ns, "bad", &source, 1, Some("0".repeat(64))).await;
        let degraded = wait_for(&mdeps, "bad", START, |md: Option<&ModelDeployment>| {
            md.and_then(|m| m.status.as_ref()).is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Degraded"
                        && c.status == "True"
                        && c.message.contains("checksum mismatch")
                })
            })
        })
        .await;
        let status = degraded.status.unwrap_or_default();
        let cond = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .expect("Degraded");
        assert!(
            ["ModelLoadFailed", "CrashLoopBackOff"].contains(&cond.reason.as_str()),
            "reason {}",
            cond.reason
        );
        assert!(
            !status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        );
        let ps = pods
            .list(&kube::api::ListParams::default().labels(&selector("bad")))
            .await
            .expect("pods");
        for p in &ps.items {
            assert!(!is_ready(p), "{}", describe(p));
            let cs = &p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default()[0];
            let term = cs
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.clone())
                .or_else(|| cs.state.as_ref().and_then(|s| s.terminated.clone()))
                .expect("a terminated server");
            assert_ne!(term.exit_code, 0);
            assert!(
                term.message
                    .unwrap_or_default()
                    .contains("checksum mismatch")
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_killed_server_is_restarted_and_ready_again() {
    let source = ModelSource::start(vec![("iris.onnx".into(), iris())], false).await;
    with_controller("mp-restart", |ns| async move {
        let mdeps: Api<ModelDeployment> = ns.api();
        let pods: Api<Pod> = ns.api();
        deploy(&ns, "crash", &source, 1, None).await;
        let ready = wait_pods(
            &pods,
            &selector("crash"),
            START,
            "a ready server",
            all_ready(1),
        )
        .await;
        wait_for(&mdeps, "crash", START, has_condition("Ready", "True")).await;
        let old = pid(&ready[0]).expect("pid");
        let killed = std::process::Command::new("kill")
            .args(["-KILL", &old.to_string()])
            .status()
            .expect("kill");
        assert!(killed.success());
        let back = wait_pods(
            &pods,
            &selector("crash"),
            START,
            "restarted and ready",
            |ps| {
                ps.len() == 1
                    && is_ready(&ps[0])
                    && ps[0]
                        .status
                        .as_ref()
                        .and_then(|s| s.container_statuses.as_ref())
                        .is_some_and(|cs| cs[0].restart_count == 1)
            },
        )
        .await;
        let new = pid(&back[0]).expect("pid");
        assert_ne!(new, old);
        assert!(serves(new));
        let cs = &back[0]
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .unwrap_or_default()[0];
        let last = cs
            .last_state
            .as_ref()
            .and_then(|s| s.terminated.clone())
            .expect("last state");
        assert_eq!((last.exit_code, last.signal), (137, Some(9)));
        wait_for(&mdeps, "crash", START, has_condition("Ready", "True")).await;
    })
    .await;
}

#[tokio::test]
async fn scaling_one_five_one_starts_and_drains_real_servers() {
    let source = ModelSource::start(vec![("iris.onnx".into(), iris())], false).await;
    with_controller("mp-scale", |ns| async move {
        let mdeps: Api<ModelDeployment> = ns.api();
        let pods: Api<Pod> = ns.api();
        deploy(&ns, "scale", &source, 1, None).await;
        wait_pods(
            &pods,
            &selector("scale"),
            START,
            "one ready server",
            all_ready(1),
        )
        .await;
        let scale = |n: i32| serde_json::json!({"spec": {"replicas": n}});
        mdeps
            .patch_scale("scale", &PatchParams::default(), &Patch::Merge(scale(5)))
            .await
            .expect("scale to 5");
        let five = wait_pods(
            &pods,
            &selector("scale"),
            START,
            "five ready servers",
            all_ready(5),
        )
        .await;
        let pids: BTreeSet<i32> = live(&five).iter().filter_map(|p| pid(p)).collect();
        assert_eq!(pids.len(), 5);
        assert!(
            pids.iter().all(|p| serves(*p)),
            "five live modelpilot serve processes"
        );
        wait_endpoints(&ns, "scale", &ips(&five)).await;

        // Watch deletions: each removed pod's last status is what its server did on SIGTERM.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let watch = watcher(
            pods.clone(),
            watcher::Config::default().labels(&selector("scale")),
        );
        let collector = tokio::spawn(async move {
            use futures::StreamExt;
            let mut events = watch.boxed();
            while let Some(Ok(e)) = events.next().await {
                if let watcher::Event::Delete(p) = e {
                    let _ = tx.send(p);
                }
            }
        });
        mdeps
            .patch_scale("scale", &PatchParams::default(), &Patch::Merge(scale(1)))
            .await
            .expect("scale to 1");
        let one = wait_pods(&pods, &selector("scale"), START, "one server left", |ps| {
            ps.len() == 1 && is_ready(&ps[0])
        })
        .await;
        wait_endpoints(&ns, "scale", &ips(&one)).await;
        let mut removed = Vec::new();
        while removed.len() < 4 {
            let p = tokio::time::timeout(WAIT, rx.recv())
                .await
                .expect("deletions")
                .expect("watch open");
            removed.push(p);
        }
        collector.abort();
        for p in &removed {
            let cs = &p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default()[0];
            let term = cs
                .state
                .as_ref()
                .and_then(|s| s.terminated.clone())
                .unwrap_or_else(|| panic!("{} not terminated: {cs:?}", p.name_any()));
            assert_eq!(
                (term.exit_code, term.reason.as_deref()),
                (0, Some("Completed")),
                "{} drained and exited 0",
                p.name_any()
            );
        }
        let left = pid(&one[0]).expect("pid");
        for pid in pids.iter().filter(|p| **p != left) {
            assert!(!serves(*pid), "removed server {pid} still runs");
        }
    })
    .await;
}

fn job(name: &str, script: &str, backoff_limit: i32) -> Job {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "train", "image": "python:3.11", "command": ["python", "-c", script]}]
            }}
        }
    }))
    .expect("job")
}

fn job_condition(kind: &'static str) -> impl kube::runtime::wait::Condition<Job> {
    move |j: Option<&Job>| {
        j.and_then(|j| j.status.as_ref()?.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == kind && c.status == "True"))
    }
}

fn terminations(ps: &[Pod]) -> Vec<(i32, String)> {
    ps.iter()
        .filter_map(|p| {
            let cs = p
                .status
                .as_ref()?
                .container_statuses
                .as_ref()?
                .first()?
                .clone();
            let t = cs.state?.terminated?;
            Some((t.exit_code, t.message.unwrap_or_default()))
        })
        .collect()
}

#[tokio::test]
async fn jobs_complete_or_fail_by_their_pods_exit_codes() {
    in_namespace("mp-jobs", |ns| async move {
        let jobs: Api<Job> = ns.api();
        let pods: Api<Pod> = ns.api();
        let ok = "open('/dev/termination-log', 'w').write('trained: accuracy=0.97'); print('done')";
        let bad =
            "import sys; open('/dev/termination-log', 'w').write('bad training data'); sys.exit(1)";
        jobs.create(&PostParams::default(), &job("good", ok, 0))
            .await
            .expect("create job");
        jobs.create(&PostParams::default(), &job("bad", bad, 1))
            .await
            .expect("create job");

        wait_for(&jobs, "good", START, job_condition("Complete")).await;
        let good = pods
            .list(&kube::api::ListParams::default().labels("job-name=good"))
            .await
            .expect("pods");
        assert_eq!(
            terminations(&good.items),
            vec![(0, "trained: accuracy=0.97".to_string())]
        );

        // backoffLimit 1: the pod is retried once, then the Job fails.
        let failed = wait_for(
            &jobs,
            "bad",
            Duration::from_secs(180),
            job_condition("Failed"),
        )
        .await;
        assert_eq!(failed.status.and_then(|s| s.failed), Some(2));
        let bad = wait_pods(&pods, "job-name=bad", WAIT, "two failed pods", |ps| {
            ps.len() == 2
                && ps
                    .iter()
                    .all(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed"))
        })
        .await;
        assert_eq!(
            terminations(&bad),
            vec![(1, "bad training data".to_string()); 2]
        );
    })
    .await;
}
