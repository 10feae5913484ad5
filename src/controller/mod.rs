//! The operator process: flags, the kube-runtime `Controller` wiring, leader election, the
//! health/metrics endpoint, and graceful shutdown.
//!
//! The reconcile itself is a pipeline spread over the sibling modules: `validate` (pure),
//! `crate::build` (pure), `reconcile` (apply and status I/O), `status` (pure status decisions),
//! `pods` (pure pod health), `events`, and `error` (what a failure means for retrying).

pub mod apply;
pub mod context;
pub mod error;
pub mod events;
mod health;
pub mod leader;
pub mod monitor;
pub mod observe;
pub mod pods;
pub mod reconcile;
pub mod retrain;
pub mod scale;
pub mod status;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context as _;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::{
    apps::v1::Deployment,
    autoscaling::v2::HorizontalPodAutoscaler,
    batch::v1::Job,
    core::v1::{Pod, Service},
};
use kube::{
    Api, Client,
    api::ListParams,
    runtime::{
        Controller,
        events::{Recorder, Reporter},
        watcher,
    },
};
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use self::{
    context::Context,
    leader::{LeaderElector, LeaseConfig},
};
use crate::{
    api::ModelDeployment,
    telemetry::{LogFormat, init_logging, metrics::ControllerMetrics},
    validate::Defaults,
};

/// Image of the inference server when a spec does not name one.
pub const DEFAULT_SERVER_IMAGE: &str = concat!("modelpilot/modelpilot:", env!("CARGO_PKG_VERSION"));

/// Flags of `modelpilot controller`.
#[derive(clap::Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Image that runs `modelpilot serve` in inference pods, unless a spec sets server.image.
    #[arg(long, env = "MODELPILOT_SERVER_IMAGE", default_value = DEFAULT_SERVER_IMAGE)]
    pub server_image: String,
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "MODELPILOT_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "MODELPILOT_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Elect a leader through a Lease so several replicas can run (`--leader-elect=false` to skip).
    #[arg(long, env = "MODELPILOT_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Namespace of the leader Lease (the operator's own namespace in a cluster).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "MODELPILOT_LEASE_NAME",
        default_value = "modelpilot-controller"
    )]
    pub lease_name: String,
    /// Identity in the Lease (the pod name in a cluster; hostname and a random suffix otherwise).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// Lease duration in seconds; the leader renews every third of it.
    #[arg(long, env = "MODELPILOT_LEASE_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=600))]
    pub lease_seconds: u64,
    /// Seconds a pod of the current revision may stay not ready before the ModelDeployment
    /// turns Degraded (reason PodsNotReady).
    #[arg(long, env = "MODELPILOT_POD_NOT_READY_DEADLINE_SECONDS", default_value_t = pods::DEFAULT_NOT_READY_DEADLINE.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub pod_not_ready_deadline_seconds: u64,
    /// Log format.
    #[arg(long, env = "MODELPILOT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log level or filter directive (RUST_LOG wins when set).
    #[arg(long, env = "MODELPILOT_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
}

/// Entry point of `modelpilot controller`.
pub fn main(args: ControllerArgs) -> anyhow::Result<()> {
    init_logging(args.log_format, &args.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve_operator(args))
}

async fn serve_operator(args: ControllerArgs) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster service account or KUBECONFIG)")?;
    let metrics = ControllerMetrics::new();
    let health = health::Health::default();
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .with_context(|| format!("binding the metrics address {}", args.metrics_addr))?;
    info!(addr = %args.metrics_addr, "serving /metrics, /healthz, /readyz");
    tokio::spawn(health::serve(listener, health.clone(), metrics.clone()));

    check_crd(&client, args.namespace.as_deref()).await?;
    health.set_ready();
    let config = RunConfig {
        namespace: args.namespace.clone(),
        defaults: Defaults {
            server_image: args.server_image.clone(),
        },
        metrics: metrics.clone(),
        identity: args.identity.clone().unwrap_or_else(default_identity),
        pod_not_ready_deadline: Duration::from_secs(args.pod_not_ready_deadline_seconds),
    };
    let stop = CancellationToken::new();
    tokio::spawn({
        let stop = stop.clone();
        async move {
            shutdown_signal().await;
            stop.cancel();
        }
    });
    if !args.leader_elect {
        return run(client, config, stop).await;
    }
    let elector = LeaderElector::new(
        client.clone(),
        LeaseConfig {
            namespace: args.lease_namespace.clone(),
            name: args.lease_name.clone(),
            identity: config.identity.clone(),
            duration: Duration::from_secs(args.lease_seconds),
            retry: Duration::from_secs(args.lease_seconds / 3),
        },
    );
    info!(lease = %args.lease_name, identity = %config.identity, "waiting for leadership");
    tokio::select! {
        () = elector.acquire() => {}
        () = stop.cancelled() => return Ok(()),
    }
    info!("became the leader");
    metrics.set_leader(true);
    let outcome = tokio::select! {
        result = run(client, config, stop.clone()) => result,
        () = elector.hold() => {
            // Stop reconciling before anyone else can take the lease over.
            stop.cancel();
            metrics.set_leader(false);
            anyhow::bail!("lost the leader lease; exiting so a restart rejoins as a follower")
        }
    };
    metrics.set_leader(false);
    if let Err(err) = elector.release().await {
        error!("releasing the leader lease: {err}");
    }
    outcome
}

/// How long running reconciles may take to finish once a shutdown is requested.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Settings of one in-process controller (what tests start directly).
#[derive(Clone)]
pub struct RunConfig {
    /// Watch only this namespace.
    pub namespace: Option<String>,
    pub defaults: Defaults,
    pub metrics: ControllerMetrics,
    /// Reporting instance of events.
    pub identity: String,
    /// How long a pod may stay not ready before that alone makes the ModelDeployment Degraded.
    pub pod_not_ready_deadline: Duration,
}

/// Run the controller until `stop` is cancelled, then let running reconciles finish.
pub async fn run(client: Client, config: RunConfig, stop: CancellationToken) -> anyhow::Result<()> {
    let (mdeps, deployments, services, pods, jobs, hpas) = match &config.namespace {
        Some(ns) => (
            Api::<ModelDeployment>::namespaced(client.clone(), ns),
            Api::<Deployment>::namespaced(client.clone(), ns),
            Api::<Service>::namespaced(client.clone(), ns),
            Api::<Pod>::namespaced(client.clone(), ns),
            Api::<Job>::namespaced(client.clone(), ns),
            Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), ns),
        ),
        None => (
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
            Api::all(client.clone()),
        ),
    };
    let reporter = Reporter {
        controller: "modelpilot".into(),
        instance: Some(config.identity.clone()),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let ctx = Arc::new(Context::new(
        client,
        config.defaults,
        recorder,
        config.identity.clone(),
        config.metrics,
        config.pod_not_ready_deadline,
    ));
    let children = watcher::Config::default().labels("app.kubernetes.io/managed-by=modelpilot");
    // Pods belong to ReplicaSets, not to us: map them back by the name label, so that a crash
    // or a failed image pull is reported at once rather than at the next resync.
    let our_pods = watcher::Config::default().labels(&format!(
        "app.kubernetes.io/managed-by=modelpilot,{}",
        crate::build::labels::NAME
    ));
    let controller = Controller::new(mdeps, watcher::Config::default().any_semantic())
        .owns(deployments, children.clone())
        .owns(services, children.clone())
        .owns(hpas, children)
        .owns(
            jobs,
            watcher::Config::default().labels(crate::build::labels::SIGNATURE_OF),
        )
        .watches(pods, our_pods, |pod| pods::owner_of(&pod))
        .graceful_shutdown_on(stop.clone().cancelled_owned())
        .run(reconcile::reconcile, reconcile::error_policy, ctx)
        .for_each(|result| async move {
            if let Err(err) = result {
                tracing::debug!("reconcile: {err}");
            }
        });
    // Graceful shutdown lets running reconciles finish, but a stop that arrives before the first
    // list of the watched objects completes would wait for a store that never fills: bound it.
    let deadline = async {
        stop.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = controller => {}
        () = deadline => tracing::warn!("reconciles still running {SHUTDOWN_GRACE:?} after shutdown; stopping anyway"),
    }
    info!("controller stopped");
    Ok(())
}

/// Fail fast, with the fix, when the CRD is not installed.
async fn check_crd(client: &Client, namespace: Option<&str>) -> anyhow::Result<()> {
    let api: Api<ModelDeployment> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    api.list(&ListParams::default().limit(1)).await.map(|_| ()).context(
        "cannot list ModelDeployments: is the CRD installed? (`modelpilot crd | kubectl apply --server-side -f -`)",
    )
}

fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "modelpilot".into());
    format!("{host}-{:08x}", rand::random::<u32>())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c().map(|_| ());
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = futures::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    info!("shutdown requested");
}
