//! Test harness for the tests that run against the real control plane (`make cluster-up`).
//!
//! Every test gets its own namespace, the CRD installed server-side, and — when it needs one — its
//! own in-process controller watching only that namespace, so tests run in parallel without seeing
//! each other's objects. Waiting is done by watching for a condition with a deadline, never by
//! sleeping (what cannot be watched is polled against a deadline, [`poll`]); when a wait fails
//! the relevant objects and events are dumped so the failure reads on its own. Operator
//! processes of their own, for leader election, are in [`operator`]; the real plugin binary in
//! [`plugin`].
#![allow(dead_code)]

pub mod operator;
pub mod plugin;

use std::{fmt::Debug, future::Future, path::PathBuf, time::Duration};

use futures::StreamExt;
use k8s_openapi::{
    NamespaceResourceScope,
    api::core::v1::{Event, Namespace},
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{
        reflector,
        wait::{Condition, await_condition, conditions},
        watcher,
    },
};
use serde::{Serialize, de::DeserializeOwned};

/// Default deadline for a condition the control plane should reach quickly.
pub const WAIT: Duration = Duration::from_secs(60);

/// Path of the kubeconfig written by `make cluster-up`, or `$KUBECONFIG`.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os("KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cluster/kubeconfig"),
    }
}

/// A client for the test control plane; panics with the way out when there is none.
pub async fn client() -> Client {
    let path = kubeconfig_path();
    let kubeconfig = Kubeconfig::read_from(&path).unwrap_or_else(|err| {
        panic!(
            "no kubeconfig at {} ({err}); start the control plane with `make cluster-up` or run `make test`",
            path.display()
        )
    });
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is usable");
    Client::try_from(config).expect("client from kubeconfig")
}

/// Install (server-side apply) the CRD generated from the Rust types and wait until it is served.
pub async fn install_crd(client: &Client) {
    let crd = modelpilot::api::crd().expect("CRD renders");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.name_any();
    api.patch(
        &name,
        &PatchParams::apply("modelpilot-tests").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply CRD");
    tokio::time::timeout(
        WAIT,
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    .expect("CRD established in time")
    .expect("watch CRD");
}

/// A namespace owned by one test, deleted by [`TestNamespace::delete`].
#[derive(Clone)]
pub struct TestNamespace {
    pub client: Client,
    pub name: String,
}

impl TestNamespace {
    /// Create `<prefix>-<random>` and install the CRD.
    pub async fn create(prefix: &str) -> Self {
        let client = client().await;
        install_crd(&client).await;
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"modelpilot.io/test": "true"}}
        }))
        .expect("namespace object");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create test namespace");
        Self { client, name }
    }

    /// A namespaced API in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }

    /// Delete the namespace (and everything in it), without waiting.
    pub async fn delete(self) {
        let _ = Api::<Namespace>::all(self.client.clone())
            .delete(&self.name, &DeleteParams::background())
            .await;
    }

    /// Print the events of this namespace, newest last (for failure reports).
    pub async fn dump_events(&self) {
        let events = self.api::<Event>().list(&ListParams::default()).await;
        eprintln!("---- events in {} ----", self.name);
        match events {
            Ok(list) => {
                let mut items = list.items;
                items.sort_by_key(|e| e.last_timestamp.clone().map(|t| t.0));
                for e in items {
                    eprintln!(
                        "{} {}/{} {}: {}",
                        e.type_.unwrap_or_default(),
                        e.involved_object.kind.unwrap_or_default(),
                        e.involved_object.name.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        e.message.unwrap_or_default()
                    );
                }
            }
            Err(err) => eprintln!("(could not list events: {err})"),
        }
    }
}

/// Print an object as YAML under a heading (for failure reports).
pub async fn dump<K>(api: &Api<K>, name: &str)
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug,
{
    match api.get_opt(name).await {
        Ok(Some(obj)) => eprintln!(
            "---- {} {name} ----\n{}",
            std::any::type_name::<K>(),
            serde_yaml::to_string(&obj).unwrap_or_default()
        ),
        Ok(None) => eprintln!("---- {} {name}: not found ----", std::any::type_name::<K>()),
        Err(err) => eprintln!("---- {} {name}: {err} ----", std::any::type_name::<K>()),
    }
}

/// Watch `name` until `cond` holds, or fail after `timeout` with the object dumped.
///
/// The watch runs in a task of its own: decoding a pod template (k8s-openapi's `Container` has
/// very large debug-build frames) deep inside a test's nested futures can overflow the test
/// thread's stack.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    timeout: Duration,
    cond: impl Condition<K> + Send + Sync + 'static,
) -> K
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
{
    let (api2, name2) = (api.clone(), name.to_owned());
    let mut watch = tokio::spawn(async move { await_condition(api2, &name2, cond).await });
    let outcome = match tokio::time::timeout(timeout, &mut watch).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(join)) => panic!("watching {name}: {join}"),
        Err(elapsed) => {
            watch.abort();
            Err(elapsed)
        }
    };
    match outcome {
        Ok(Ok(Some(obj))) => obj,
        Ok(Ok(None)) => {
            panic!(
                "{} {name} was deleted while waiting",
                std::any::type_name::<K>()
            )
        }
        Ok(Err(err)) => panic!("watching {name}: {err}"),
        Err(_) => {
            dump(api, name).await;
            panic!(
                "timed out after {timeout:?} waiting on {} {name}",
                std::any::type_name::<K>()
            )
        }
    }
}

/// Watch `name` until it is gone (or replaced by an object with another uid), failing after
/// `timeout` with the object dumped.
pub async fn wait_gone<K>(api: &Api<K>, name: &str, uid: &str, timeout: Duration)
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    let gone = tokio::time::timeout(
        timeout,
        await_condition(api.clone(), name, conditions::is_deleted(uid)),
    )
    .await;
    match gone {
        Ok(Ok(_)) => {}
        Ok(Err(err)) => panic!("watching {name}: {err}"),
        Err(_) => {
            dump(api, name).await;
            panic!(
                "timed out after {timeout:?} waiting for {} {name} to be deleted",
                std::any::type_name::<K>()
            )
        }
    }
}

/// Polls `check` every `every` until it returns `Some`, failing after `timeout`: for what cannot
/// be watched (an HTTP endpoint such as a process's `/metrics` or a Service through kube-proxy,
/// a Prometheus query, a call that is itself the attempt), so the pause between probes is the
/// only sleep the tests have.
pub async fn poll<T, F, Fut>(timeout: Duration, every: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// Run `check` against the outcome, dumping namespace events first when it panics.
pub async fn with_events<F, T>(ns: &TestNamespace, fut: F) -> T
where
    F: Future<Output = T>,
{
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(value) => value,
        Err(panic) => {
            ns.dump_events().await;
            std::panic::resume_unwind(panic)
        }
    }
}

/// A controller running in this test process, watching only one namespace.
pub struct RunningController {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl RunningController {
    /// Start `modelpilot::controller::run` for `ns` (leader election off: one per namespace).
    /// With `RUST_LOG` set, the controller's logs go to the test's output.
    pub fn start(ns: &TestNamespace) -> Self {
        if std::env::var_os("RUST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_test_writer()
                .try_init();
        }
        let stop = tokio_util::sync::CancellationToken::new();
        let config = modelpilot::controller::RunConfig {
            namespace: Some(ns.name.clone()),
            defaults: modelpilot::validate::Defaults {
                server_image: "modelpilot/modelpilot:test".into(),
            },
            metrics: modelpilot::telemetry::metrics::ControllerMetrics::new(),
            identity: format!("test-{}", ns.name),
            pod_not_ready_deadline: modelpilot::controller::pods::DEFAULT_NOT_READY_DEADLINE,
        };
        let task = tokio::spawn(modelpilot::controller::run(
            ns.client.clone(),
            config,
            stop.clone(),
        ));
        Self { stop, task }
    }

    /// Stop it and wait for running reconciles to finish.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(WAIT, self.task).await;
    }
}

/// Load a ModelDeployment manifest from `examples/`.
pub fn example(name: &str) -> modelpilot::api::ModelDeployment {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Puts a ModelDeployment's pods on the kwok-simulated nodes (toleration for their taint and a
/// node selector), for tests of the controller's own logic that need pods to turn Ready without
/// a reachable model. Tests of real serving leave this out: by default pods land on the real
/// node run by the node agent.
pub fn simulated(mut mdep: modelpilot::api::ModelDeployment) -> modelpilot::api::ModelDeployment {
    let mut template = mdep.spec.template.take().unwrap_or_default();
    let spec = template.spec.get_or_insert_with(Default::default);
    spec.node_selector
        .get_or_insert_with(Default::default)
        .insert("type".into(), "kwok".into());
    spec.tolerations.get_or_insert_with(Vec::new).push(
        serde_json::from_value(serde_json::json!({
            "key": "kwok.x-k8s.io/node", "operator": "Equal", "value": "fake", "effect": "NoSchedule"
        }))
        .expect("toleration"),
    );
    mdep.spec.template = Some(template);
    mdep
}

/// A condition on a ModelDeployment's status condition `type_` having `status`.
pub fn has_condition(
    type_: &'static str,
    status: &'static str,
) -> impl Condition<modelpilot::api::ModelDeployment> {
    move |obj: Option<&modelpilot::api::ModelDeployment>| {
        obj.and_then(|o| o.status.as_ref())
            .map(|s| {
                s.conditions
                    .iter()
                    .any(|c| c.type_ == type_ && c.status == status)
            })
            .unwrap_or(false)
    }
}

/// Run `body` in a fresh namespace with its own in-process controller. If it panics the
/// namespace's events are dumped; either way the controller stops and the namespace (with
/// every pod and process in it) is deleted before the test ends.
pub async fn with_controller<F, Fut>(prefix: &str, body: F)
where
    F: FnOnce(TestNamespace) -> Fut,
    Fut: Future<Output = ()>,
{
    let ns = TestNamespace::create(prefix).await;
    let controller = RunningController::start(&ns);
    let result = catch(body(ns.clone())).await;
    if result.is_err() {
        ns.dump_events().await;
    }
    controller.stop().await;
    ns.delete().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

/// Run `body` in a fresh namespace (no controller), cleaned up as [`with_controller`] does.
pub async fn in_namespace<F, Fut>(prefix: &str, body: F)
where
    F: FnOnce(TestNamespace) -> Fut,
    Fut: Future<Output = ()>,
{
    let ns = TestNamespace::create(prefix).await;
    let result = catch(body(ns.clone())).await;
    if result.is_err() {
        ns.dump_events().await;
    }
    ns.delete().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

async fn catch<Fut: Future<Output = ()>>(fut: Fut) -> std::thread::Result<()> {
    use futures::FutureExt;
    std::panic::AssertUnwindSafe(fut).catch_unwind().await
}

/// Watches the objects `config` selects until `pred` holds over the whole list; panics with
/// each object described after `timeout`.
pub async fn wait_list<K>(
    api: &Api<K>,
    config: watcher::Config,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[K]) -> bool,
    describe: impl Fn(&K) -> String,
) -> Vec<K>
where
    K: kube::Resource
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (reader, writer) = reflector::store::<K>();
    let stream = reflector(writer, watcher(api.clone(), config));
    let mut stream = stream.boxed();
    let mut synced = false;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if synced {
            let pods: Vec<K> = reader.state().iter().map(|p| (**p).clone()).collect();
            if pred(&pods) {
                return pods;
            }
        }
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(Ok(watcher::Event::InitDone))) => synced = true,
            Ok(Some(_)) => {}
            Ok(None) => panic!("watch ended while waiting for {what}"),
            Err(_) => {
                let items: Vec<String> = reader.state().iter().map(|p| describe(p)).collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; objects:\n{}",
                    items.join("\n")
                );
            }
        }
    }
}
