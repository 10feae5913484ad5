//! Support for `tests/real_canary_verbs.rs`: the real plugin binary run as `modelpilot plugin …`
//! against the test cluster, a [`Recorder`] that keeps every distinct state a watch saw (so a test
//! can check the order a rollout went through, not only where it ended), and predicates over the
//! rollout status.
//!
//! A test file using it declares `mod common; mod real_support; mod serve_support; mod
//! canary_support; mod verbs_support;`.
#![allow(dead_code)]

use std::{
    fmt::Debug,
    future::Future,
    process::Output,
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt, future::ready};
use k8s_openapi::api::core::v1::Service;
use kube::{
    Api, ResourceExt,
    api::DynamicObject,
    runtime::{
        WatchStreamExt,
        watcher::{self, watch_object},
    },
};
use modelpilot::api::{
    ModelDeployment, ModelDeploymentStatus, Outcome, RolloutPhase, RolloutStatus,
};
use tokio::sync::watch;

use crate::{
    canary_support::{Models, START, set_model, wait_rollout},
    common::{TestNamespace, WAIT, plugin::command, with_controller},
};

/// Runs one verb story: the test models served, then `body` in a namespace of its own with its
/// own controller; prints how long the story took under `test`'s name once it passed.
pub async fn verb_story<F, Fut>(prefix: &str, test: &str, body: F)
where
    F: FnOnce(TestNamespace, Models) -> Fut,
    Fut: Future<Output = ()>,
{
    let models = Models::upload().await;
    with_controller(prefix, |ns| async move {
        let clock = Instant::now();
        body(ns, models).await;
        eprintln!("{test}: passed in {:?}", clock.elapsed());
    })
    .await;
}

/// Points `name` at `iris_v2.onnx` as version `v2`: the candidate of every verb story.
pub async fn roll_out_v2(api: &Api<ModelDeployment>, models: &Models, name: &str) {
    let v2 = models.get("iris_v2.onnx");
    set_model(api, name, &v2.uri, &v2.sha256, "v2").await;
}

/// Waits until `name` is paused at the open-ended pause step `step`; returns the status.
pub async fn wait_paused_at(
    api: &Api<ModelDeployment>,
    name: &str,
    step: i32,
) -> ModelDeploymentStatus {
    let md = wait_rollout(api, name, START, move |s| paused_at(s, step)).await;
    md.status.unwrap_or_default()
}

/// Waits until v2 is promoted and stable; returns the status.
pub async fn wait_v2_promoted(api: &Api<ModelDeployment>, name: &str) -> ModelDeploymentStatus {
    let md = wait_rollout(api, name, START, |s| settled(s, Outcome::Promoted, "v2")).await;
    md.status.unwrap_or_default()
}

pub use crate::common::plugin::{assert_stdout, report, text};

/// Runs `modelpilot plugin <args> -n <ns> --wait 60` against the test cluster to completion.
pub async fn plugin(ns: &TestNamespace, args: &[&str]) -> Output {
    let child = command(ns, args)
        .args(["--wait", "60"])
        .spawn()
        .expect("start the plugin");
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(90), child.wait_with_output())
        .await
        .expect("the plugin finished in time")
        .expect("plugin output");
    eprintln!(
        "plugin {} → {} in {:?}",
        args.join(" "),
        report(&out),
        started.elapsed()
    );
    out
}

/// [`plugin`] for `status`/`history` (no `--wait`).
pub async fn plugin_view(ns: &TestNamespace, args: &[&str]) -> Output {
    let out = command(ns, args).output();
    tokio::time::timeout(Duration::from_secs(60), out)
        .await
        .expect("the plugin finished in time")
        .expect("plugin output")
}

/// What a watch delivered: the watch is listening (its first list is done), or a state.
pub enum Seen<T> {
    Synced,
    State(T),
}

/// Every distinct state a watch saw, in order (consecutive repeats kept once), collected by a
/// task of its own until dropped.
pub struct Recorder<T> {
    rx: watch::Receiver<(bool, Vec<T>)>,
    task: tokio::task::JoinHandle<()>,
}

impl<T: Clone + PartialEq + Debug + Send + Sync + 'static> Recorder<T> {
    pub fn start(stream: impl Stream<Item = Seen<T>> + Send + 'static) -> Self {
        let (tx, rx) = watch::channel((false, Vec::new()));
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                tx.send_modify(|(synced, seen)| {
                    *synced = true;
                    if let Seen::State(state) = item
                        && seen.last() != Some(&state)
                    {
                        seen.push(state);
                    }
                });
            }
        });
        Self { rx, task }
    }

    /// Waits until the watch has listed what exists, so nothing after this call is missed.
    pub async fn synced(self) -> Self {
        let mut rx = self.rx.clone();
        tokio::time::timeout(WAIT, rx.wait_for(|(synced, _)| *synced))
            .await
            .expect("the watch listed the object in time")
            .expect("the recorder is running");
        self
    }

    /// The states seen so far.
    pub fn seen(&self) -> Vec<T> {
        self.rx.borrow().1.clone()
    }

    /// The states seen once the watch has delivered `state` (the watch may lag behind a read the
    /// test made itself).
    pub async fn seen_through(&self, state: &T) -> Vec<T> {
        let mut rx = self.rx.clone();
        tokio::time::timeout(WAIT, rx.wait_for(|(_, seen)| seen.contains(state)))
            .await
            .unwrap_or_else(|_| panic!("the watch never delivered {state:?}: {:?}", self.seen()))
            .expect("the recorder is running");
        self.seen()
    }
}

impl<T> Drop for Recorder<T> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The moments `recorder` saw, up to and including the object's state now (printed).
pub async fn moments_now(
    recorder: &Recorder<Moment>,
    api: &Api<ModelDeployment>,
    name: &str,
) -> Vec<Moment> {
    let now = api.get(name).await.expect("get the ModelDeployment");
    let seen = match moment(&now) {
        Some(m) => recorder.seen_through(&m).await,
        None => recorder.seen(),
    };
    eprintln!("rollout states seen: {seen:?}");
    seen
}

/// Records `f` of object `name` on every change (a state `f` maps to `None` is skipped), from
/// the moment the returned recorder is synced.
pub async fn record<K, T>(
    api: &Api<K>,
    name: &str,
    f: impl Fn(&K) -> Option<T> + Send + 'static,
) -> Recorder<T>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Debug + Send + 'static,
    T: Clone + PartialEq + Debug + Send + Sync + 'static,
{
    let states = watch_object(api.clone(), name)
        .default_backoff()
        .filter_map(move |obj| {
            ready(obj.ok().map(|obj| match obj.as_ref().and_then(&f) {
                Some(state) => Seen::State(state),
                None => Seen::Synced,
            }))
        });
    Recorder::start(states).synced().await
}

/// Records the name of every object `selector` selects, from the moment the returned recorder
/// is synced.
pub async fn record_names<K>(api: &Api<K>, selector: &str) -> Recorder<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + Debug + Send + 'static,
{
    let names = watcher::watcher(api.clone(), watcher::Config::default().labels(selector))
        .default_backoff()
        .filter_map(|event| {
            ready(match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    Some(Seen::State(o.name_any()))
                }
                Ok(watcher::Event::InitDone) => Some(Seen::Synced),
                _ => None,
            })
        });
    Recorder::start(names).synced().await
}

/// One moment of a rollout as the status tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Moment {
    pub phase: RolloutPhase,
    pub step: i32,
    pub desired: i32,
    pub applied: i32,
    pub canary: Option<String>,
}

pub fn moment(md: &ModelDeployment) -> Option<Moment> {
    let r = md.status.as_ref()?.rollout.clone().unwrap_or_default();
    Some(Moment {
        phase: r.phase,
        step: r.current_step,
        desired: r.desired_weight,
        applied: r.applied_weight,
        canary: r.canary.map(|c| c.name),
    })
}

/// The phases of `moments`, consecutive repeats once.
pub fn phases(moments: &[Moment]) -> Vec<RolloutPhase> {
    let mut out: Vec<RolloutPhase> = Vec::new();
    for m in moments {
        if out.last() != Some(&m.phase) {
            out.push(m.phase);
        }
    }
    out
}

/// Whether `want` appears in `seen` in this order (other states may come between).
pub fn in_order<T: PartialEq>(seen: &[T], want: &[T]) -> bool {
    let mut rest = seen.iter();
    want.iter().all(|w| rest.any(|s| s == w))
}

pub fn rollout_of(s: &ModelDeploymentStatus) -> RolloutStatus {
    s.rollout.clone().unwrap_or_default()
}

/// Paused at the open-ended pause step `step`.
pub fn paused_at(s: &ModelDeploymentStatus, step: i32) -> bool {
    let r = rollout_of(s);
    r.phase == RolloutPhase::Paused
        && r.current_step == step
        && r.pause.is_some_and(|p| p.reason == "PauseStep")
}

/// The last history entry is `outcome` for the model `version`, and `version` is stable.
pub fn settled(s: &ModelDeploymentStatus, outcome: Outcome, version: &str) -> bool {
    s.history
        .last()
        .is_some_and(|h| h.outcome == outcome && h.revision.version.as_deref() == Some(version))
        && rollout_of(s).phase != RolloutPhase::Promoting
}

pub fn stable_version(s: &ModelDeploymentStatus) -> Option<&str> {
    s.stable.as_ref()?.version.as_deref()
}

pub fn stable_name(s: &ModelDeploymentStatus) -> String {
    s.stable.clone().unwrap_or_default().name
}

pub fn canary_name(s: &ModelDeploymentStatus) -> String {
    rollout_of(s).canary.unwrap_or_default().name
}

/// Waits until no pod of revision `rev` of `name` is left.
pub async fn wait_no_pods(ns: &TestNamespace, name: &str, rev: &str) {
    crate::real_support::wait_pods(
        &ns.api(),
        &format!("modelpilot.io/name={name},modelpilot.io/revision={rev}"),
        START,
        &format!("no pods of revision {rev}"),
        |ps| ps.is_empty(),
    )
    .await;
}

/// The `(stable, canary)` weights of the route's rule to `name`'s track Services, once the
/// operator has written them.
pub fn route_weights(route: &DynamicObject, name: &str) -> Option<(i64, i64)> {
    let value = serde_json::to_value(route).ok()?;
    let refs = value.pointer("/spec/rules/0/backendRefs")?.as_array()?;
    let weight = |service: String| {
        refs.iter()
            .find(|r| r["name"] == service.as_str())
            .map(|r| r["weight"].as_i64().unwrap_or(1))
    };
    Some((
        weight(format!("{name}-stable"))?,
        weight(format!("{name}-canary"))?,
    ))
}

/// The revision a Service selects.
pub async fn selected_revision(ns: &TestNamespace, service: &str) -> Option<String> {
    let svc = ns.api::<Service>().get(service).await.expect("get Service");
    svc.spec?.selector?.get("modelpilot.io/revision").cloned()
}
