//! The built-in autoscaler end to end, on real pods under real load: the load generator drives
//! requests in flight through the Services, the operator scrapes the pods every tick and scales
//! each revision on its own load. A load step must scale up within the panic window (plus pod
//! start-up for the new pods to answer), removed load must scale back down after the stable
//! window without flapping, the bounds must hold, and during a canary each revision must follow
//! its own load (an overloaded canary scales up while a calm stable does not; an aborted canary
//! is never scaled back up).
//!
//! The model is `iris_slow.onnx` (a few ms of compute per request), so requests in flight at the
//! servers track the load generator's concurrency. Needs `make cluster-up` (as root) and the
//! Python test env (`eval "$(hack/pyenv.sh)"`).

mod canary_support;
mod common;
mod real_support;
mod serve_support;

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use canary_support::*;
use common::{TestNamespace, with_controller};
use futures::StreamExt;
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Event};
use kube::{
    Api,
    api::{DynamicObject, ListParams, Patch, PatchParams, PostParams},
    runtime::{WatchStreamExt, watcher},
};
use modelpilot::api::{ModelDeployment, ModelDeploymentStatus, RevisionScale, RolloutPhase};
use serde_json::{Value, json};

/// One status as the watch saw it: per track (desired, panic), and when.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    stable: Option<(i32, bool)>,
    canary: Option<(i32, bool)>,
}

fn entry<'a>(s: &'a ModelDeploymentStatus, track: &str) -> Option<&'a RevisionScale> {
    s.autoscaling
        .as_ref()?
        .revisions
        .iter()
        .find(|r| r.track == track)
}

fn desired(s: &ModelDeploymentStatus, track: &str) -> Option<i32> {
    entry(s, track).map(|r| r.desired)
}

/// Every autoscaling decision the watch delivers, with the time it arrived.
struct Decisions {
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Decisions {
    fn start(api: &Api<ModelDeployment>, name: &str) -> Decisions {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let stream = watcher(api.clone(), config).applied_objects();
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(Ok(md)) = stream.next().await {
                let status = md.status.unwrap_or_default();
                let pair = |track| entry(&status, track).map(|r| (r.desired, r.panic));
                let item = Seen {
                    at: Instant::now(),
                    stable: pair("stable"),
                    canary: pair("canary"),
                };
                sink.lock().unwrap().push(item);
            }
        });
        Decisions { seen, task }
    }

    fn since(&self, t: Instant) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen.iter().filter(|s| s.at >= t).cloned().collect()
    }
}

impl Drop for Decisions {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The distinct counts in order (consecutive repeats once).
fn counts(seen: &[Seen], pick: fn(&Seen) -> Option<(i32, bool)>) -> Vec<i32> {
    let mut out: Vec<i32> = Vec::new();
    for c in seen.iter().filter_map(pick).map(|(d, _)| d) {
        if out.last() != Some(&c) {
            out.push(c);
        }
    }
    out
}

/// How often the sequence turns from going up to going down or back.
fn direction_changes(counts: &[i32]) -> usize {
    let steps: Vec<i32> = counts.windows(2).map(|w| (w[1] - w[0]).signum()).collect();
    steps.windows(2).filter(|w| w[0] != w[1]).count()
}

/// Closed-loop load of `concurrency` workers through Service `service`, bounded in time.
fn load(ns: &TestNamespace, service: &str, concurrency: usize, secs: u64) -> Load {
    Load::service(&ns.name, service, MODEL_NAME)
        .concurrency(concurrency)
        .duration(Duration::from_secs(secs))
        .start()
}

/// Creates `name` serving the slow model as v1 with `autoscaling` (and `rollout`), waits until
/// it is Ready and answers through its Service.
async fn serve_v1(
    ns: &TestNamespace,
    models: &Models,
    name: &str,
    autoscaling: Value,
    rollout: Option<Value>,
) -> Api<ModelDeployment> {
    models.create_secret(ns).await;
    let slow = models.get("iris_slow.onnx");
    let mut md = mdep(name, &slow.uri, &slow.sha256, "v1");
    md.spec.autoscaling = Some(serde_json::from_value(autoscaling).expect("autoscaling section"));
    md.spec.rollout = rollout.map(|r| serde_json::from_value(r).expect("rollout section"));
    let mdeps: Api<ModelDeployment> = ns.api();
    mdeps
        .create(&PostParams::default(), &md)
        .await
        .expect("create ModelDeployment");
    wait_rollout(&mdeps, name, START, |s| {
        s.ready_replicas >= 1
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
    .await;
    wait_serving(ns, name).await;
    mdeps
}

async fn events_with_reason(ns: &TestNamespace, reason: &str) -> Vec<String> {
    let events: Api<Event> = ns.api();
    let list = events
        .list(&ListParams::default())
        .await
        .expect("list events");
    list.items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter_map(|e| e.message)
        .collect()
}

#[tokio::test]
async fn a_load_step_scales_up_in_the_panic_window_and_back_down_without_flapping() {
    let models = Models::upload().await;
    common::in_namespace("mp-scale-step", |ns| async move {
        let name = "step";
        let controller = common::RunningController::start(&ns);
        // Stable window 20 s, panic window 4 s, a decision every 2 s, at most 5 pods.
        let autoscaling = json!({
            "minReplicas": 1, "maxReplicas": 5, "metric": "Concurrency", "target": 4,
            "stableWindowSeconds": 20, "panicWindowPercent": 20, "tickSeconds": 2
        });
        let mdeps = serve_v1(&ns, &models, name, autoscaling, None).await;
        let decisions = Decisions::start(&mdeps, name);

        // Calm: 2 requests in flight need one pod.
        let calm = load(&ns, name, 2, 120);
        let measured = wait_rollout(&mdeps, name, START, |s| {
            entry(s, "stable").is_some_and(|r| r.observed.is_some_and(|o| o > 0.2))
        })
        .await;
        assert_eq!(desired(&measured.status.unwrap_or_default(), "stable"), Some(1));

        // The step: 32 workers. Panic must scale to the bound within the panic window.
        let step = Instant::now();
        let busy = load(&ns, name, 32, 45);
        let decided = wait_rollout(&mdeps, name, Duration::from_secs(30), |s| {
            desired(s, "stable") == Some(5)
        })
        .await;
        let decision = step.elapsed();
        let st = decided.status.unwrap_or_default();
        assert!(entry(&st, "stable").is_some_and(|r| r.panic), "{:#?}", st.autoscaling);
        wait_rollout(&mdeps, name, START, |s| s.ready_replicas >= 5).await;
        let ready = step.elapsed();
        println!("load step 2 -> 32 in flight: decided 5 pods after {decision:?}, all 5 ready after {ready:?}");
        // Panic window 4 s + two ticks (2 s each) + scrape and reconcile slack.
        assert!(decision <= Duration::from_secs(10), "decision took {decision:?}");

        // The operator restarts under load: the new one starts with no load history, continues
        // from the state in status (panic mode, its start) and does not drop a pod.
        let before = status_now(&mdeps, name).await;
        let panic_since = entry(&before, "stable").and_then(|r| r.state.panic_since.clone());
        controller.stop().await;
        let controller = common::RunningController::start(&ns);
        let last = before.autoscaling.clone();
        let after = wait_rollout(&mdeps, name, Duration::from_secs(30), move |s| {
            s.autoscaling != last
        })
        .await
        .status
        .unwrap_or_default();
        let resumed = entry(&after, "stable").expect("an entry after the restart");
        assert_eq!(resumed.desired, 5, "{:#?}", after.autoscaling);
        // Still panicking, the panic's start never earlier than before (a tick that crosses the
        // threshold again moves it forward).
        if resumed.panic {
            assert!(
                resumed.state.panic_since.as_ref().map(|t| t.0) >= panic_since.as_ref().map(|t| t.0),
                "the panic carried on: {:?} then {:?}",
                panic_since,
                resumed.state.panic_since
            );
        }

        // Load removed: back to one pod after the stable window, going only down.
        let busy_report = busy.finish().await;
        let removed = Instant::now();
        calm.interrupt().await;
        wait_rollout(&mdeps, name, Duration::from_secs(90), |s| {
            desired(s, "stable") == Some(1)
        })
        .await;
        let down = removed.elapsed();
        println!("load removed: back to 1 pod after {down:?}");
        assert!(down <= Duration::from_secs(20 + 30), "scale-down took {down:?}");

        let all = counts(&decisions.since(step), |s| s.stable);
        println!("stable counts after the step: {all:?}");
        assert!(all.iter().all(|c| (1..=5).contains(c)), "bounds: {all:?}");
        assert_eq!(all.iter().max(), Some(&5), "{all:?}");
        assert!(direction_changes(&all) <= 1, "flapping: {all:?}");
        let during_load: Vec<i32> = counts(
            &decisions
                .since(step)
                .into_iter()
                .filter(|s| s.at < removed)
                .collect::<Vec<_>>(),
            |s| s.stable,
        );
        assert!(
            during_load.windows(2).all(|w| w[1] >= w[0]),
            "no scale-down under load: {during_load:?}"
        );
        assert!(busy_report.overall.errors == 0, "{busy_report:#?}");
        let ups = events_with_reason(&ns, "ScaledUp").await;
        assert!(ups.iter().any(|m| m.contains("panic mode")), "{ups:?}");
        assert!(!events_with_reason(&ns, "ScaledDown").await.is_empty());
        controller.stop().await;
    })
    .await;
}

#[tokio::test]
async fn during_a_canary_each_revision_follows_its_own_load() {
    let models = Models::upload().await;
    with_controller("mp-scale-canary", |ns| async move {
        let name = "tracks";
        let routes: Api<DynamicObject> = Api::namespaced_with(
            ns.client.clone(),
            &ns.name,
            &modelpilot::build::route::api_resource(),
        );
        let route: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "public"},
            "spec": {
                "parentRefs": [{"name": "public-gateway"}],
                "rules": [{"backendRefs": [{"name": name, "port": 80}]}]
            }
        }))
        .expect("route object");
        routes
            .create(&PostParams::default(), &route)
            .await
            .expect("create the HTTPRoute");
        let autoscaling = json!({
            "minReplicas": 1, "maxReplicas": 4, "target": 4,
            "stableWindowSeconds": 20, "panicWindowPercent": 20
        });
        let rollout = json!({
            "steps": [{"setWeight": 50}, {"pause": {}}],
            "traffic": {"mode": "GatewayAPI", "httpRoute": "public"},
            "scaleDownDelaySeconds": 2
        });
        let mdeps = serve_v1(&ns, &models, name, autoscaling, Some(rollout)).await;
        // The same slow model as v2: a new revision of identical cost.
        let slow = models.get("iris_slow.onnx");
        set_model(&mdeps, name, &slow.uri, &slow.sha256, "v2").await;
        let paused = wait_rollout(&mdeps, name, START, |s| {
            s.rollout
                .as_ref()
                .is_some_and(|r| r.phase == RolloutPhase::Paused && r.current_step == 1)
        })
        .await;
        let canary_rev = paused
            .status
            .as_ref()
            .and_then(|s| s.rollout.as_ref())
            .and_then(|r| r.canary.as_ref())
            .map(|c| c.name.clone())
            .expect("a canary");
        let deployments: Api<Deployment> = ns.api();
        let canary_deployment = format!("{name}-{canary_rev}");
        wait_serving(&ns, &format!("{name}-canary")).await;

        // The route would send each Service its share; here the canary gets the flood.
        let decisions = Decisions::start(&mdeps, name);
        let start = Instant::now();
        let flood = load(&ns, &format!("{name}-canary"), 32, 40);
        let calm = load(&ns, &format!("{name}-stable"), 2, 60);
        wait_rollout(&mdeps, name, Duration::from_secs(30), |s| {
            desired(s, "canary") == Some(4)
        })
        .await;
        wait_for_replicas(&deployments, &canary_deployment, 4).await;
        let seen = decisions.since(start);
        let stable = counts(&seen, |s| s.stable);
        let canary = counts(&seen, |s| s.canary);
        println!("stable {stable:?} canary {canary:?}");
        assert_eq!(stable, vec![1], "the calm stable kept its one pod");
        assert_eq!(canary.last(), Some(&4), "{canary:?}");

        // Abort: the canary goes to zero and stays there under its load.
        let abort = json!({"metadata": {"annotations": {
            "modelpilot.io/request": r#"{"id":"abort-1","action":"abort"}"#
        }}});
        mdeps
            .patch(name, &PatchParams::default(), &Patch::Merge(&abort))
            .await
            .expect("request an abort");
        wait_rollout(&mdeps, name, Duration::from_secs(60), |s| {
            s.rollout
                .as_ref()
                .is_some_and(|r| r.phase == RolloutPhase::Aborted)
                && entry(s, "canary").is_none()
        })
        .await;
        let aborted = Instant::now();
        // That nothing scales it back up cannot be awaited: watch it for three ticks (6 s)
        // while its Service still gets the flood.
        while aborted.elapsed() < Duration::from_secs(6) {
            let canary_now = deployments.get_opt(&canary_deployment).await.expect("get");
            let pods = canary_now.and_then(|d| d.spec.replicas).unwrap_or(0);
            assert_eq!(pods, 0, "the aborted canary has no pods");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let after: Vec<Seen> = decisions.since(aborted);
        assert!(after.iter().all(|s| s.canary.is_none()), "{after:?}");
        flood.interrupt().await;
        calm.interrupt().await;
    })
    .await;
}

async fn wait_for_replicas(api: &Api<Deployment>, name: &str, n: i32) {
    common::wait_for(api, name, START, move |d: Option<&Deployment>| {
        d.and_then(|d| d.spec.replicas) == Some(n)
    })
    .await;
}
