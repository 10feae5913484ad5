//! Canary rollouts judged on real pods under real load, one way of being wrong per test: a
//! slower model (median latency past a bound relative to the stable revision), a less accurate
//! one (label feedback from the load generator), a canary with too little traffic to judge
//! (paused, never rolled back), and a model whose inputs do not match the stable one's (refused
//! before any pod of it exists). Each runs in its own namespace with its own in-process
//! controller and short intervals, and checks what a person would look at: status, events,
//! printed columns.
//!
//! Needs `make cluster-up` (as root) and the Python test env (`eval "$(hack/pyenv.sh)"`).

mod canary_support;
mod common;
mod real_support;
mod serve_support;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use canary_support::*;
use common::{TestNamespace, wait_list, with_controller};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::{
    Api, ResourceExt,
    runtime::{WatchStreamExt, watcher},
};
use modelpilot::api::{
    MeasurementVerdict, MetricStatus, ModelDeployment, ModelDeploymentStatus, Outcome,
    RolloutPhase, RolloutStatus,
};
use real_support::{is_ready, wait_pods};
use serde_json::json;

/// The server image the in-process controller defaults to (`common::RunningController`).
const SERVER_IMAGE: &str = "modelpilot/modelpilot:test";
const NAME_LABEL: &str = "modelpilot.io/name";
const REVISION_LABEL: &str = "modelpilot.io/revision";
const SIGNATURE_LABEL: &str = "modelpilot.io/signature-of";

/// [`with_controller`], timed: the whole test (namespace, pods, rollout, clean-up) in the
/// output. The load generator is built on first use: `cargo build -p modelpilot-loadgen` first
/// keeps that out of the figure.
async fn timed<F, Fut>(prefix: &str, body: F)
where
    F: FnOnce(TestNamespace) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let begun = Instant::now();
    with_controller(prefix, body).await;
    eprintln!("{prefix}: whole test {:?}", begun.elapsed());
}

/// Iris rows through the Service with each true label posted back to the pod that answered.
fn labelled_load(ns: &TestNamespace, name: &str, rate: f64) -> Load {
    Load::service(&ns.name, name, MODEL_NAME)
        .concurrency(4)
        .rate(rate)
        .duration(Duration::from_secs(120))
        .csv(&eval_csv(), true)
        .start()
}

/// The candidate `version` is no longer moving on its own: paused (at a pause step, or for
/// want of data), aborted, or promoted. The tests wait for this, then say which it should be,
/// so a wrong outcome fails at once instead of at a timeout.
fn decided(version: &'static str) -> impl Fn(&ModelDeploymentStatus) -> bool {
    move |s| {
        let candidate = s
            .rollout
            .as_ref()
            .and_then(|r| r.canary.as_ref())
            .and_then(|c| c.version.as_deref());
        let stopped = matches!(
            rollout_phase(s),
            RolloutPhase::Paused | RolloutPhase::Aborted
        );
        (stopped && candidate == Some(version))
            || s.history
                .iter()
                .any(|h| h.revision.version.as_deref() == Some(version))
    }
}

fn rollout_of(md: &ModelDeployment) -> (ModelDeploymentStatus, RolloutStatus) {
    let status = md.status.clone().unwrap_or_default();
    let rollout = status.rollout.clone().unwrap_or_default();
    (status, rollout)
}

fn metric<'a>(rollout: &'a RolloutStatus, name: &str) -> &'a MetricStatus {
    rollout
        .metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name} in {:#?}", rollout.metrics))
}

/// Rolled back by the analysis: phase Aborted, the last history entry says so, v1 still
/// stable.
fn assert_rolled_back(status: &ModelDeploymentStatus, rollout: &RolloutStatus) {
    assert_eq!(rollout.phase, RolloutPhase::Aborted, "{rollout:#?}");
    assert_eq!(
        rollout.abort.as_ref().map(|a| a.reason.as_str()),
        Some("AnalysisFailed"),
        "{rollout:#?}"
    );
    let last = status.history.last().expect("a history entry");
    assert_eq!(
        (
            last.outcome,
            last.reason.as_str(),
            last.revision.version.as_deref()
        ),
        (Outcome::RolledBack, "AnalysisFailed", Some("v2")),
        "{:#?}",
        status.history
    );
    assert_eq!(
        status.stable.as_ref().and_then(|s| s.version.as_deref()),
        Some("v1")
    );
}

/// Waits until no pod of `revision` of `name` is left.
async fn wait_no_pods(ns: &TestNamespace, name: &str, revision: &str) {
    wait_pods(
        &ns.api(),
        &format!("{NAME_LABEL}={name},{REVISION_LABEL}={revision}"),
        START,
        &format!("no pods of revision {revision}"),
        |ps| ps.is_empty(),
    )
    .await;
}

/// iris_slow.onnx answers like iris.onnx but spends 5-10 ms computing each row where iris.onnx
/// needs well under one. The bound is on the median: on this 2-core machine shared with builds
/// and other tests, a p99 of ~90 requests is one request's scheduling luck. Measured with
/// `maxRatioToStable: 1.5`, intervals of 4 s, 40 requests/s, two tests at once: a good
/// candidate (iris_v2.onnx) broke the p99 bound in 3 of 8 measurements (up to 3.2 × stable)
/// and the p90 bound in 2 of 8, while its median stayed within 1.4 × stable; iris_slow's median
/// was 9.7-10.2 × stable in 8 of 8. A bound of 3 × stable sits between the two.
#[tokio::test]
async fn a_slower_model_is_rolled_back_on_its_median_latency() {
    let models = Models::upload().await;
    timed("mp-judged-slow", |ns| async move {
        let rollout = json!({
            "steps": [
                {"setWeight": 50},
                {"analysis": {"metrics": [
                    {"name": "median", "intervalSeconds": 3, "count": 3, "minSample": 30,
                     "latency": {"quantile": 0.5, "bound": {"maxRatioToStable": 3.0}}}
                ]}},
                {"pause": {}}
            ]
        });
        let mdeps = stable_v1(&ns, &models, "slow", 1, rollout).await;
        // About 20 requests a second to each revision: 60 per measurement.
        let traffic = labelled_load(&ns, "slow", 40.0);
        let slow = models.get("iris_slow.onnx");
        let started = Instant::now();
        set_model(&mdeps, "slow", &slow.uri, &slow.sha256, "v2").await;
        // What `kubectl get mdep` prints while the canary takes its share: Stable v1, Canary
        // v2, Weight 50.
        wait_rollout(&mdeps, "slow", START, |s| {
            let r = s.rollout.clone().unwrap_or_default();
            s.stable.as_ref().and_then(|r| r.version.as_deref()) == Some("v1")
                && r.canary.and_then(|c| c.version).as_deref() == Some("v2")
                && r.applied_weight == 50
        })
        .await;
        let done = wait_rollout(&mdeps, "slow", START, decided("v2")).await;
        eprintln!("slow: set_model → decided in {:?}", started.elapsed());
        let report = traffic.interrupt().await;
        let (status, rollout) = rollout_of(&done);
        assert_rolled_back(&status, &rollout);
        let median = metric(&rollout, "median");
        let failed = median
            .measurements
            .iter()
            .find(|m| m.verdict == MeasurementVerdict::Failed)
            .unwrap_or_else(|| panic!("a failed measurement in {median:#?}"));
        let (canary, stable) = (
            failed.canary.expect("canary median"),
            failed.stable.expect("stable median"),
        );
        assert!(canary > 3.0 * stable, "{failed:#?}");
        assert!(failed.samples >= 30, "{failed:#?}");
        assert!(failed.message.contains("above 3 × stable"), "{failed:#?}");
        // Both revisions answered; none failed (slow is not broken). The load generator's
        // own latencies are not compared: they are dominated by connection setup on a loaded
        // machine, which is why the analysis reads the servers' histograms.
        let canary_rev = rollout.canary.clone().unwrap_or_default().name;
        let answered = |rev: &str| report.by_revision.get(rev).map_or(0, |s| s.requests);
        assert!(answered(&canary_rev) > 0, "{report:#?}");
        assert_eq!(report.overall.errors, 0, "{report:#?}");
        // Traffic back on stable: the canary's pods go.
        wait_no_pods(&ns, "slow", &canary_rev).await;
        eprintln!(
            "slow: set_model → canary pods gone in {:?}",
            started.elapsed()
        );
        // The event a person sees in `kubectl describe mdep slow`: one, though the rollback
        // was published a few reconciles ago (so a second one would be in by now).
        let events = wait_list(
            &ns.api::<Event>(),
            watcher::Config::default().fields("involvedObject.name=slow"),
            common::WAIT,
            "a RolledBack event on ModelDeployment slow",
            |es: &[Event]| es.iter().any(|e| e.reason.as_deref() == Some("RolledBack")),
            |e| format!("{:?}: {:?}", e.reason, e.message),
        )
        .await;
        let rolled_back: Vec<&Event> = events
            .iter()
            .filter(|e| e.reason.as_deref() == Some("RolledBack"))
            .collect();
        let [rolled_back] = rolled_back[..] else {
            panic!("one RolledBack event: {rolled_back:#?}");
        };
        assert_eq!(rolled_back.type_.as_deref(), Some("Warning"));
        assert_eq!(
            rolled_back.involved_object.kind.as_deref(),
            Some("ModelDeployment")
        );
        let message = rolled_back.message.clone().unwrap_or_default();
        assert!(
            message.contains(&canary_rev) && message.contains("latency q0.5"),
            "{message}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_less_accurate_model_is_rolled_back_on_label_feedback() {
    let models = Models::upload().await;
    timed("mp-judged-acc", |ns| async move {
        let min_sample = 30;
        let rollout = json!({
            "steps": [
                {"setWeight": 50},
                {"analysis": {"metrics": [
                    {"name": "accuracy", "intervalSeconds": 3, "count": 3, "minSample": min_sample,
                     "accuracy": {"score": "accuracy", "bound": {"maxDecreaseFromStable": 0.02}}}
                ]}},
                {"pause": {}}
            ]
        });
        let mdeps = stable_v1(&ns, &models, "acc", 1, rollout).await;
        let traffic = labelled_load(&ns, "acc", 40.0);
        let inaccurate = models.get("iris_inaccurate.onnx");
        let started = Instant::now();
        set_model(&mdeps, "acc", &inaccurate.uri, &inaccurate.sha256, "v2").await;
        let done = wait_rollout(&mdeps, "acc", START, decided("v2")).await;
        eprintln!("accuracy: set_model → decided in {:?}", started.elapsed());
        let report = traffic.interrupt().await;
        let (status, rollout) = rollout_of(&done);
        assert_rolled_back(&status, &rollout);
        let accuracy = metric(&rollout, "accuracy");
        let failed = accuracy
            .measurements
            .iter()
            .find(|m| m.verdict == MeasurementVerdict::Failed)
            .unwrap_or_else(|| panic!("a failed measurement in {accuracy:#?}"));
        // iris_inaccurate gets about a third right (classes 1 and 2 swapped), iris all.
        let (canary, stable) = (
            failed.canary.expect("canary accuracy"),
            failed.stable.expect("stable accuracy"),
        );
        assert!(canary < 0.6, "{failed:#?}");
        assert!(stable > 0.95, "{failed:#?}");
        assert!(failed.samples >= min_sample, "{failed:#?}");
        assert!(
            failed.message.contains("below stable − 0.02"),
            "{failed:#?}"
        );
        // The labels did go to the pods of both revisions.
        let canary_rev = rollout.canary.clone().unwrap_or_default().name;
        let stable_rev = status.stable.clone().unwrap_or_default().name;
        for rev in [&canary_rev, &stable_rev] {
            let accepted = report
                .by_revision
                .get(rev)
                .and_then(|s| s.feedback.as_ref())
                .map_or(0, |f| f.accepted_rows);
            assert!(accepted >= min_sample as u64, "{rev}: {report:#?}");
        }
        wait_no_pods(&ns, "acc", &canary_rev).await;
        eprintln!(
            "accuracy: set_model → canary pods gone in {:?}",
            started.elapsed()
        );
    })
    .await;
}

/// The columns `kubectl get mdep <name>` prints, as the API server renders them (a `Table`).
async fn printed_columns(ns: &TestNamespace, name: &str) -> BTreeMap<String, serde_json::Value> {
    let request = http::Request::get(format!(
        "/apis/modelpilot.io/v1alpha1/namespaces/{}/modeldeployments/{name}",
        ns.name
    ))
    .header("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
    .body(Vec::new())
    .expect("a Table request");
    let table: serde_json::Value = ns.client.request(request).await.expect("the Table");
    let names = table["columnDefinitions"]
        .as_array()
        .expect("columnDefinitions")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_owned());
    let cells = table["rows"][0]["cells"]
        .as_array()
        .expect("one row")
        .clone();
    names.zip(cells).collect()
}

#[tokio::test]
async fn too_little_traffic_pauses_instead_of_rolling_back() {
    let models = Models::upload().await;
    timed("mp-judged-quiet", |ns| async move {
        let min_sample = 50;
        let rollout = json!({
            "steps": [
                {"setWeight": 50},
                {"analysis": {"metrics": [
                    {"name": "errors", "intervalSeconds": 3, "count": 3, "minSample": min_sample,
                     "inconclusiveLimit": 1, "errorRate": {"max": 0.01}}
                ]}},
                {"pause": {}}
            ]
        });
        let mdeps = stable_v1(&ns, &models, "quiet", 1, rollout).await;
        let pods: Api<Pod> = ns.api();
        let before = pods
            .list(&kube::api::ListParams::default().labels(&format!("{NAME_LABEL}=quiet")))
            .await
            .expect("list pods");
        let stable_pods: BTreeSet<String> = before.iter().map(|p| p.name_any()).collect();
        let stable_before = mdeps
            .get("quiet")
            .await
            .expect("get")
            .status
            .unwrap_or_default();
        // One request a second: about 1.5 per revision and measurement, far below minSample.
        let traffic = Load::service(&ns.name, "quiet", MODEL_NAME)
            .rate(1.0)
            .duration(Duration::from_secs(120))
            .start();
        let v2 = models.get("iris_v2.onnx");
        let started = Instant::now();
        set_model(&mdeps, "quiet", &v2.uri, &v2.sha256, "v2").await;
        let done = wait_rollout(&mdeps, "quiet", START, decided("v2")).await;
        eprintln!("quiet: set_model → decided in {:?}", started.elapsed());
        let (status, rollout) = rollout_of(&done);
        assert_eq!(rollout.phase, RolloutPhase::Paused, "{rollout:#?}");
        let pause = rollout.pause.clone().expect("pause status");
        assert_eq!(pause.reason, "Inconclusive", "{pause:#?}");
        assert!(pause.message.contains("inconclusiveLimit 1"), "{pause:#?}");
        assert!(rollout.abort.is_none(), "{rollout:#?}");
        assert!(
            status
                .history
                .iter()
                .all(|h| h.outcome != Outcome::RolledBack),
            "{:#?}",
            status.history
        );
        // Two inconclusive measurements (one past the limit), none conclusive, each for want
        // of samples.
        let errors = metric(&rollout, "errors");
        assert_eq!(
            (errors.inconclusive, errors.successful, errors.failed),
            (2, 0, 0),
            "{errors:#?}"
        );
        // (A scrape that timed out on a loaded machine is an Error, retried: not a verdict.)
        let verdicts = errors
            .measurements
            .iter()
            .filter(|m| m.verdict != MeasurementVerdict::Error);
        for m in verdicts {
            assert_eq!(m.verdict, MeasurementVerdict::Inconclusive, "{m:#?}");
            assert!(m.samples < min_sample, "{m:#?}");
        }
        // The stable revision is untouched: same revision and model (its signature, read for
        // the check, is the one thing added), same pods, still ready.
        let model = |s: &ModelDeploymentStatus| {
            s.stable
                .clone()
                .map(|r| (r.name, r.uri, r.sha256, r.version))
        };
        assert_eq!(model(&status), model(&stable_before));
        let stable_rev = status.stable.clone().unwrap_or_default().name;
        let now_stable = wait_pods(
            &pods,
            &format!("{NAME_LABEL}=quiet,{REVISION_LABEL}={stable_rev}"),
            START,
            "the stable pods",
            |ps| ps.iter().all(is_ready),
        )
        .await;
        let now_stable: BTreeSet<String> = now_stable.iter().map(|p| p.name_any()).collect();
        assert_eq!(now_stable, stable_pods);
        // The canary keeps its pods, ready for a person to resume or abort.
        let canary_rev = rollout.canary.clone().unwrap_or_default().name;
        let canary_pods = pods
            .list(
                &kube::api::ListParams::default()
                    .labels(&format!("{NAME_LABEL}=quiet,{REVISION_LABEL}={canary_rev}")),
            )
            .await
            .expect("list canary pods");
        assert_eq!(canary_pods.items.len(), 1, "one canary pod");
        assert!(canary_pods.items.iter().all(is_ready));
        // `kubectl get mdep quiet`: Stable v1, Canary v2, Weight 50.
        let columns = printed_columns(&ns, "quiet").await;
        assert_eq!(columns["Stable"], json!("v1"), "{columns:?}");
        assert_eq!(columns["Canary"], json!("v2"), "{columns:?}");
        assert_eq!(columns["Weight"], json!(50), "{columns:?}");
        let report = traffic.interrupt().await;
        assert_eq!(report.overall.errors, 0, "{report:#?}");
        // Still paused once the load is over: nothing moved on its own.
        let later = mdeps.get("quiet").await.expect("get");
        let (_, later) = rollout_of(&later);
        assert_eq!(
            (later.phase, later.pause.map(|p| p.reason)),
            (RolloutPhase::Paused, Some("Inconclusive".into()))
        );
    })
    .await;
}

/// Every pod `selector` selects from now until [`PodLog::stop`], by name with its labels.
struct PodLog {
    seen: Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodLog {
    /// Starts watching; returns once the initial list is in.
    async fn start(api: Api<Pod>, selector: &str) -> PodLog {
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let (synced_tx, synced) = tokio::sync::oneshot::channel();
        let log = seen.clone();
        let config = watcher::Config::default().labels(selector);
        let task = tokio::spawn(async move {
            let mut synced_tx = Some(synced_tx);
            let mut events = watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => {
                        let labels = p.labels().clone();
                        log.lock().expect("pod log").insert(p.name_any(), labels);
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(tx) = synced_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(_) | Err(_) => {}
                }
            }
        });
        tokio::time::timeout(common::WAIT, synced)
            .await
            .expect("pod watch synced in time")
            .expect("pod watch running");
        PodLog { seen, task }
    }

    fn stop(self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.task.abort();
        self.seen.lock().expect("pod log").clone()
    }
}

#[tokio::test]
async fn an_incompatible_signature_is_refused_before_any_traffic() {
    let models = Models::upload().await;
    timed("mp-judged-wide", |ns| async move {
        let rollout = json!({"steps": [{"setWeight": 50}, {"pause": {}}]});
        let mdeps = stable_v1(&ns, &models, "wide", 1, rollout).await;
        let wide = models.get("iris_wide.onnx");
        // The candidate's revision, computed as the controller will from the changed spec, so
        // its pods can be watched for before they could exist.
        let mut changed = mdeps.get("wide").await.expect("get");
        changed.spec.model.uri = wide.uri.clone();
        changed.spec.model.sha256 = Some(wide.sha256.clone());
        changed.spec.model.version = Some("v2".into());
        let defaults = modelpilot::validate::Defaults {
            server_image: SERVER_IMAGE.into(),
        };
        let candidate = modelpilot::validate::validate(&changed, &defaults)
            .expect("a valid spec")
            .revision;
        let log = PodLog::start(ns.api(), &format!("{REVISION_LABEL}={candidate}")).await;
        let traffic = labelled_load(&ns, "wide", 20.0);
        let started = Instant::now();
        set_model(&mdeps, "wide", &wide.uri, &wide.sha256, "v2").await;
        let done = wait_rollout(&mdeps, "wide", START, decided("v2")).await;
        eprintln!("wide: set_model → decided in {:?}", started.elapsed());
        let report = traffic.interrupt().await;
        // Watched until the aborted check's Job is pruned too, so a serving pod created late
        // (by a reconcile after the abort) would be seen as well.
        wait_pods(
            &ns.api(),
            &format!("{REVISION_LABEL}={candidate}"),
            START,
            "no pods of the refused revision (the signature Job pruned)",
            |ps| ps.is_empty(),
        )
        .await;
        let seen = log.stop();
        let (status, rollout) = rollout_of(&done);
        assert_eq!(rollout.phase, RolloutPhase::Aborted, "{rollout:#?}");
        let abort = rollout.abort.clone().expect("abort status");
        assert_eq!(abort.reason, "SignatureMismatch", "{abort:#?}");
        // iris.onnx takes float_input [-1,4], iris_wide.onnx [-1,5].
        assert!(
            abort.message.contains("float_input")
                && abort.message.contains("[-1,4]")
                && abort.message.contains("[-1,5]"),
            "{abort:#?}"
        );
        assert_eq!(
            rollout.canary.as_ref().map(|c| c.name.as_str()),
            Some(candidate.as_str())
        );
        let last = status.history.last().expect("a history entry");
        assert_eq!(
            (last.outcome, last.reason.as_str()),
            (Outcome::RolledBack, "SignatureMismatch")
        );
        assert_eq!(
            status.stable.as_ref().and_then(|s| s.version.as_deref()),
            Some("v1")
        );
        // The only pods of the candidate's revision were the signature check's, which the
        // Service does not select; no serving pod of it ever existed.
        assert!(!seen.is_empty(), "the signature check ran in a pod");
        for (pod, labels) in &seen {
            assert!(
                labels.contains_key(SIGNATURE_LABEL) && !labels.contains_key(NAME_LABEL),
                "a serving pod of the candidate: {pod} {labels:?}"
            );
        }
        // Every answer during the check came from the stable revision.
        let stable_rev = status.stable.clone().unwrap_or_default().name;
        let revisions: Vec<&String> = report.by_revision.keys().collect();
        assert_eq!(revisions, vec![&stable_rev], "{report:#?}");
        assert!(report.overall.requests > 0, "{report:#?}");
        assert_eq!(report.overall.errors, 0, "{report:#?}");
    })
    .await;
}
