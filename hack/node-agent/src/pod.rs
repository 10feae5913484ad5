//! One pod under the agent, from binding to removal: its sandbox (network namespace and IP),
//! volumes, init containers in order, native sidecars started first and kept running, the main
//! containers, and a status writer that reports every change to `pods/status`. On deletion the
//! main containers get SIGTERM and the grace period, then the sidecars, then the sandbox goes and
//! the pod object is removed as the kubelet removes it (grace 0, UID precondition).

use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Pod, PodStatus};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, Preconditions},
};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use crate::{
    cni::{self, Network, Sandbox},
    container::{self, Kind, Outcome},
    env::PodFacts,
    images::ImageTable,
    status::{self, ContainerRt, PodRt},
    volumes::{self, Prepared},
};

/// What every pod shares: the agent's client, image table, network and settings.
pub struct AgentCtx {
    pub client: Client,
    pub images: ImageTable,
    pub exe: PathBuf,
    pub net: Network,
    pub host_ip: String,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

/// Which container of the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Init(usize),
    Main(usize),
}

/// A pod's shared state: the runtime record behind the status, and what its tasks need.
pub struct PodCtx {
    pub agent: Arc<AgentCtx>,
    pub pod: Pod,
    pub key: String,
    pub dir: PathBuf,
    rt: Mutex<PodRt>,
    changed: watch::Sender<u64>,
    sandbox: Mutex<Sandbox>,
    /// Held (inside blocking tasks) while the sandbox is set up or torn down.
    net_lock: Mutex<()>,
    volumes: Mutex<Prepared>,
    grace_secs: AtomicU64,
    handles: Mutex<Vec<(bool, JoinHandle<()>)>>,
    stop_main: CancellationToken,
    stop_init: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PodCtx {
    pub fn new(agent: Arc<AgentCtx>, pod: Pod, state_dir: &std::path::Path) -> Self {
        let ns = pod.namespace().unwrap_or_default();
        let name = pod.name_any();
        let uid = pod.uid().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let prev: Vec<_> = pod
            .status
            .iter()
            .flat_map(|s| {
                s.init_container_statuses
                    .iter()
                    .flatten()
                    .chain(s.container_statuses.iter().flatten())
            })
            .cloned()
            .collect();
        // An agent restart re-runs the pod's containers; their restart counts go on.
        let seed = |c: &k8s_openapi::api::core::v1::Container| {
            let mut rt = ContainerRt::new(&c.name, c.image.as_deref().unwrap_or_default());
            if let Some(p) = prev.iter().find(|p| p.name == c.name) {
                let ran = p
                    .state
                    .as_ref()
                    .is_some_and(|s| s.running.is_some() || s.terminated.is_some());
                rt.restart_count = p.restart_count + i32::from(ran);
            }
            rt
        };
        let rt = PodRt {
            host_ip: agent.host_ip.clone(),
            start_time: Some(Timestamp::now()),
            init: spec.init_containers.iter().flatten().map(seed).collect(),
            main: spec.containers.iter().map(seed).collect(),
            initialized: spec.init_containers.as_ref().is_none_or(Vec::is_empty),
            ..Default::default()
        };
        let grace = spec.termination_grace_period_seconds.unwrap_or(30).max(0);
        Self {
            dir: state_dir.join("pods").join(format!("{ns}_{name}_{uid}")),
            key: format!("{ns}/{name}"),
            sandbox: Mutex::new(Sandbox::for_pod(&uid)),
            agent,
            pod,
            rt: Mutex::new(rt),
            changed: watch::channel(0).0,
            net_lock: Mutex::new(()),
            volumes: Mutex::new(Prepared::new()),
            grace_secs: AtomicU64::new(u64::try_from(grace).unwrap_or(30)),
            handles: Mutex::new(Vec::new()),
            stop_main: CancellationToken::new(),
            stop_init: CancellationToken::new(),
        }
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Changes one container's record and wakes the status writer.
    pub fn update(&self, slot: Slot, f: impl FnOnce(&mut ContainerRt)) {
        {
            let mut rt = lock(&self.rt);
            let c = match slot {
                Slot::Init(i) => rt.init.get_mut(i),
                Slot::Main(i) => rt.main.get_mut(i),
            };
            if let Some(c) = c {
                f(c);
            }
        }
        self.notify();
    }

    fn update_pod(&self, f: impl FnOnce(&mut PodRt)) {
        f(&mut lock(&self.rt));
        self.notify();
    }

    fn snapshot(&self) -> PodRt {
        lock(&self.rt).clone()
    }

    pub fn restart_count(&self, slot: Slot) -> i32 {
        let rt = lock(&self.rt);
        match slot {
            Slot::Init(i) => rt.init.get(i),
            Slot::Main(i) => rt.main.get(i),
        }
        .map_or(0, |c| c.restart_count)
    }

    pub fn facts(&self) -> PodFacts {
        let rt = lock(&self.rt);
        PodFacts {
            pod_ip: rt.pod_ip.clone().unwrap_or_default(),
            host_ip: rt.host_ip.clone(),
        }
    }

    pub fn volumes(&self) -> Prepared {
        lock(&self.volumes).clone()
    }

    pub fn sandbox_path(&self) -> PathBuf {
        lock(&self.sandbox).netns_path()
    }

    /// The grace period of the current stop (the deletion's, or the agent's shutdown).
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.grace_secs.load(Ordering::Acquire))
    }

    /// The pod's own grace period (a liveness restart uses it).
    pub fn pod_grace(&self) -> Duration {
        let secs = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        Duration::from_secs(u64::try_from(secs).unwrap_or(30))
    }

    fn api(&self) -> Api<Pod> {
        Api::namespaced(
            self.agent.client.clone(),
            &self.pod.namespace().unwrap_or_default(),
        )
    }

    fn spawn_container(self: &Arc<Self>, slot: Slot, kind: Kind) -> oneshot::Receiver<Outcome> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let container = match slot {
            Slot::Init(i) => spec.init_containers.unwrap_or_default().get(i).cloned(),
            Slot::Main(i) => spec.containers.get(i).cloned(),
        }
        .unwrap_or_default();
        let stop = if kind == Kind::Main {
            self.stop_main.clone()
        } else {
            self.stop_init.clone()
        };
        let (tx, rx) = oneshot::channel();
        let ctx = Arc::clone(self);
        let handle = tokio::spawn(async move {
            let outcome = container::run(ctx, slot, container, kind, stop).await;
            let _ = tx.send(outcome);
        });
        lock(&self.handles).push((kind == Kind::Main, handle));
        rx
    }

    async fn net_setup(self: &Arc<Self>) -> anyhow::Result<std::net::Ipv4Addr> {
        let ctx = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _guard = lock(&ctx.net_lock);
            let mut sandbox = lock(&ctx.sandbox).clone();
            let ip = cni::setup(&ctx.agent.net, &ctx.dir, &mut sandbox)?;
            *lock(&ctx.sandbox) = sandbox;
            Ok(ip)
        })
        .await?
    }

    async fn net_teardown(self: &Arc<Self>) {
        let ctx = Arc::clone(self);
        let result = tokio::task::spawn_blocking(move || {
            let _guard = lock(&ctx.net_lock);
            let sandbox = lock(&ctx.sandbox).clone();
            cni::teardown(&ctx.agent.net, &sandbox)
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(pod = %self.key, "sandbox teardown: {err:#}"),
            Err(err) => tracing::warn!(pod = %self.key, "sandbox teardown task: {err}"),
        }
    }
}

/// Runs the pod until it is deleted (`updates` shows a deletion timestamp, or the object is
/// gone) or the agent shuts down.
pub async fn run(
    ctx: Arc<PodCtx>,
    mut updates: watch::Receiver<Option<Pod>>,
    shutdown: CancellationToken,
) {
    let writer = tokio::spawn(status_writer(Arc::clone(&ctx)));
    let life = tokio::spawn(lifecycle(Arc::clone(&ctx)));
    let (grace, delete_object) = tokio::select! {
        d = deletion(&mut updates) => d,
        () = shutdown.cancelled() => (Some(2), false),
    };
    tracing::info!(pod = %ctx.key, grace = ?grace, "stopping");
    life.abort();
    let grace = grace.unwrap_or(2).max(0);
    ctx.grace_secs
        .store(u64::try_from(grace).unwrap_or(0), Ordering::Release);
    stop_all(&ctx).await;
    ctx.net_teardown().await;
    writer.abort();
    if delete_object {
        // The containers' final states (exit codes, messages) are reported before the object
        // goes, as the kubelet reports them.
        final_status(&ctx).await;
    }
    if let Err(err) = std::fs::remove_dir_all(&ctx.dir)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(pod = %ctx.key, "removing {}: {err}", ctx.dir.display());
    }
    if delete_object {
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: ctx.pod.uid(),
                resource_version: None,
            }),
            ..Default::default()
        };
        match ctx.api().delete(&ctx.pod.name_any(), &params).await {
            Ok(_) => tracing::info!(pod = %ctx.key, "removed"),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(err) => tracing::warn!(pod = %ctx.key, "removing the pod object: {err}"),
        }
    }
}

/// Main containers first (SIGTERM, grace, SIGKILL), then init containers and sidecars.
async fn stop_all(ctx: &Arc<PodCtx>) {
    ctx.stop_main.cancel();
    let handles = std::mem::take(&mut *lock(&ctx.handles));
    let (main, init): (Vec<_>, Vec<_>) = handles.into_iter().partition(|(is_main, _)| *is_main);
    for (_, h) in main {
        let _ = h.await;
    }
    ctx.stop_init.cancel();
    for (_, h) in init {
        let _ = h.await;
    }
}

/// Resolves with the grace period and whether the object still exists to be removed.
async fn deletion(updates: &mut watch::Receiver<Option<Pod>>) -> (Option<i64>, bool) {
    loop {
        {
            let current = updates.borrow_and_update();
            match current.as_ref() {
                None => return (Some(2), false),
                Some(p) if p.metadata.deletion_timestamp.is_some() => {
                    let grace = p.metadata.deletion_grace_period_seconds.or_else(|| {
                        p.spec
                            .as_ref()
                            .and_then(|s| s.termination_grace_period_seconds)
                    });
                    return (grace.or(Some(30)), true);
                }
                Some(_) => {}
            }
        }
        if updates.changed().await.is_err() {
            return (Some(2), false);
        }
    }
}

async fn lifecycle(ctx: Arc<PodCtx>) {
    let mut delay = Duration::from_millis(500);
    loop {
        match ctx.net_setup().await {
            Ok(ip) => {
                ctx.update_pod(|rt| {
                    rt.pod_ip = Some(ip.to_string());
                    rt.sandbox_ready = true;
                });
                tracing::info!(pod = %ctx.key, %ip, "sandbox ready");
                break;
            }
            Err(err) => {
                tracing::warn!(pod = %ctx.key, "sandbox: {err:#}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    loop {
        match volumes::prepare(&ctx.agent.client, &ctx.pod, &ctx.dir, &ctx.facts()).await {
            Ok(prepared) => {
                *lock(&ctx.volumes) = prepared;
                break;
            }
            Err(message) => {
                tracing::warn!(pod = %ctx.key, "{message}");
                ctx.update_pod(|rt| {
                    for c in rt.init.iter_mut().chain(rt.main.iter_mut()) {
                        c.state = status::State::Waiting {
                            reason: "CreateContainerConfigError".into(),
                            message: Some(message.clone()),
                        };
                    }
                });
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
    let spec = ctx.pod.spec.clone().unwrap_or_default();
    let mut changes = ctx.changed.subscribe();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        if c.restart_policy.as_deref() == Some("Always") {
            let _done = ctx.spawn_container(Slot::Init(i), Kind::Sidecar);
            // The next container starts once the sidecar has started (its startup probe passed).
            while !ctx.snapshot().init.get(i).is_some_and(|c| c.started) {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        } else {
            match ctx.spawn_container(Slot::Init(i), Kind::Init).await {
                Ok(Outcome::Succeeded) => {}
                Ok(Outcome::Failed) => {
                    ctx.update_pod(|rt| rt.init_failed = true);
                    finish(&ctx).await;
                    return;
                }
                Ok(Outcome::Stopped) | Err(_) => return,
            }
        }
    }
    ctx.update_pod(|rt| rt.initialized = true);
    let mains: Vec<_> = (0..spec.containers.len())
        .map(|i| ctx.spawn_container(Slot::Main(i), Kind::Main))
        .collect();
    let outcomes = futures::future::join_all(mains).await;
    if outcomes
        .iter()
        .all(|o| matches!(o, Ok(Outcome::Succeeded | Outcome::Failed)))
    {
        finish(&ctx).await;
    }
}

/// The pod reached Succeeded or Failed: stop the sidecars, then fix the phase (by the main
/// containers' exits) and release the sandbox.
async fn finish(ctx: &Arc<PodCtx>) {
    let spec = ctx.pod.spec.clone().unwrap_or_default();
    ctx.grace_secs.store(
        u64::try_from(spec.termination_grace_period_seconds.unwrap_or(30)).unwrap_or(30),
        Ordering::Release,
    );
    ctx.stop_init.cancel();
    let handles = std::mem::take(&mut *lock(&ctx.handles));
    for (_, h) in handles {
        let _ = h.await;
    }
    // With the sidecars stopped, the phase is the main containers' verdict.
    let phase = status::phase(&spec, &ctx.snapshot());
    let phase = if phase == "Succeeded" {
        phase
    } else {
        "Failed".to_string()
    };
    ctx.update_pod(|rt| rt.terminal = Some(phase.clone()));
    tracing::info!(pod = %ctx.key, %phase, "pod finished");
    ctx.net_teardown().await;
}

/// Reports `status` on the pod object (`pods/status`, a merge patch of the agent's fields).
async fn report(ctx: &PodCtx, status: &PodStatus) -> Result<(), kube::Error> {
    let patch = serde_json::json!({ "status": status });
    ctx.api()
        .patch_status(
            &ctx.pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(drop)
}

async fn final_status(ctx: &Arc<PodCtx>) {
    let spec = ctx.pod.spec.clone().unwrap_or_default();
    let status = status::pod_status(&spec, &ctx.snapshot(), None, Timestamp::now());
    if let Err(err) = report(ctx, &status).await {
        tracing::debug!(pod = %ctx.key, "final status: {err}");
    }
}

async fn status_writer(ctx: Arc<PodCtx>) {
    let spec = ctx.pod.spec.clone().unwrap_or_default();
    let mut changes = ctx.changed.subscribe();
    let mut last: Option<PodStatus> = None;
    loop {
        let status = status::pod_status(&spec, &ctx.snapshot(), last.as_ref(), Timestamp::now());
        if last.as_ref() != Some(&status) {
            match report(&ctx, &status).await {
                Ok(()) => last = Some(status),
                Err(kube::Error::Api(e)) if e.code == 404 => return,
                Err(err) => {
                    tracing::warn!(pod = %ctx.key, "status update: {err}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        if changes.changed().await.is_err() {
            return;
        }
        // Coalesce a burst of changes into one update.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
