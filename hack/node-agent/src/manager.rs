//! The agent's main loop: clean up whatever an earlier agent left, bring up the bridge, register
//! the node, serve container logs, then watch the pods bound to this node and run one worker per
//! pod (started on first sight, told of every change, stopped on deletion). On SIGTERM every pod's
//! processes are stopped and the sandboxes removed; the pod objects stay for the next agent.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use kube::{
    Api, Client, Config, ResourceExt,
    api::{DeleteParams, Preconditions},
    config::{KubeConfigOptions, Kubeconfig},
    runtime::{WatchStreamExt, watcher},
};
use tokio::{sync::watch, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    cli::RunArgs,
    cni::{self, Network},
    images::ImageTable,
    logs, node,
    pod::{self, AgentCtx, PodCtx},
};

async fn client(path: &std::path::Path) -> anyhow::Result<Client> {
    let kubeconfig = Kubeconfig::read_from(path)?;
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(config)?)
}

fn terminal(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// `modelpilot-node-agent run`.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let net = Network {
        bridge: args.bridge.clone(),
        pod_cidr: args.pod_cidr.parse()?,
        service_cidr: args.service_cidr.parse()?,
        cluster_cidr: args.cluster_cidr.parse()?,
        cni_bin_dir: args.cni_bin_dir.clone(),
        state_dir: args.state_dir.clone(),
    };
    if !nix::unistd::geteuid().is_root() {
        anyhow::bail!("the node agent needs root (network namespaces, veths, mounts)");
    }
    let images = ImageTable::load(&args.images)?;
    std::fs::create_dir_all(&args.state_dir)?;
    {
        let (state, bridge, cni_dir) = (
            args.state_dir.clone(),
            args.bridge.clone(),
            args.cni_bin_dir.clone(),
        );
        tokio::task::spawn_blocking(move || cni::cleanup(&state, &bridge, &cni_dir)).await??;
    }
    {
        let net = net.clone();
        tokio::task::spawn_blocking(move || cni::ensure_bridge(&net)).await??;
    }
    let client = client(&args.kubeconfig).await?;
    let host_ip = net.pod_cidr.gateway().to_string();
    let info = node::NodeInfo {
        name: args.node_name.clone(),
        pod_cidr: net.pod_cidr.to_string(),
        internal_ip: host_ip.clone(),
        kubelet_port: i32::from(args.listen.port()),
        since: Timestamp::now(),
    };
    let shutdown = CancellationToken::new();
    let log_server = logs::serve(&args, shutdown.clone()).await?;
    node::register(&client, &info).await?;
    tracing::info!(node = %info.name, ip = %host_ip, "node registered");
    let heartbeat = tokio::spawn(node::heartbeat(
        client.clone(),
        info,
        Duration::from_secs(args.heartbeat_seconds.max(1)),
    ));
    let agent = Arc::new(AgentCtx {
        client: client.clone(),
        images,
        exe: std::env::current_exe()?,
        net,
        host_ip,
        backoff_base: Duration::from_secs(args.restart_backoff_seconds.max(1)),
        backoff_max: Duration::from_secs(args.restart_backoff_max_seconds.max(1)),
    });
    tokio::spawn(on_signal(shutdown.clone()));
    watch_pods(&args, agent, shutdown.clone()).await;
    heartbeat.abort();
    log_server.abort();
    let (state, bridge, cni_dir) = (
        args.state_dir.clone(),
        args.bridge.clone(),
        args.cni_bin_dir.clone(),
    );
    tokio::task::spawn_blocking(move || cni::cleanup(&state, &bridge, &cni_dir)).await??;
    tracing::info!("stopped");
    Ok(())
}

async fn on_signal(token: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("shutting down: stopping every pod");
    token.cancel();
}

async fn watch_pods(args: &RunArgs, agent: Arc<AgentCtx>, shutdown: CancellationToken) {
    let api: Api<Pod> = Api::all(agent.client.clone());
    let config = watcher::Config::default().fields(&format!("spec.nodeName={}", args.node_name));
    let mut events = watcher(api, config).default_backoff().boxed();
    let mut workers: HashMap<String, watch::Sender<Option<Pod>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut seen_in_init = Vec::new();
    loop {
        let event = tokio::select! {
            e = events.next() => e,
            () = shutdown.cancelled() => break,
        };
        let Some(event) = event else { break };
        match event {
            Ok(watcher::Event::Init) => seen_in_init.clear(),
            Ok(watcher::Event::InitApply(p)) => {
                seen_in_init.push(p.uid().unwrap_or_default());
                upsert(p, &agent, args, &mut workers, &mut tasks, &shutdown);
            }
            Ok(watcher::Event::InitDone) => {
                workers.retain(|uid, _| seen_in_init.contains(uid));
            }
            Ok(watcher::Event::Apply(p)) => {
                upsert(p, &agent, args, &mut workers, &mut tasks, &shutdown)
            }
            Ok(watcher::Event::Delete(p)) => {
                // Dropping the sender tells the worker the object is gone.
                workers.remove(&p.uid().unwrap_or_default());
            }
            Err(err) => tracing::warn!("pod watch: {err}"),
        }
        while tasks.try_join_next().is_some() {}
    }
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
}

fn upsert(
    p: Pod,
    agent: &Arc<AgentCtx>,
    args: &RunArgs,
    workers: &mut HashMap<String, watch::Sender<Option<Pod>>>,
    tasks: &mut JoinSet<()>,
    shutdown: &CancellationToken,
) {
    let uid = p.uid().unwrap_or_default();
    if let Some(tx) = workers.get(&uid) {
        if tx.send(Some(p.clone())).is_ok() {
            return;
        }
        // The worker finished (the pod was removed); a late event for it needs nothing.
        workers.remove(&uid);
        return;
    }
    if terminal(&p) || p.metadata.deletion_timestamp.is_some() {
        // A finished pod from before this agent, or one deleted before it ever ran: nothing
        // runs, so a deletion completes at once.
        if p.metadata.deletion_timestamp.is_some() {
            let api: Api<Pod> =
                Api::namespaced(agent.client.clone(), &p.namespace().unwrap_or_default());
            let (name, uid) = (p.name_any(), p.uid());
            tasks.spawn(async move {
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid,
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                let _ = api.delete(&name, &params).await;
            });
        }
        return;
    }
    tracing::info!(pod = %format!("{}/{}", p.namespace().unwrap_or_default(), p.name_any()), "bound to this node");
    let ctx = Arc::new(PodCtx::new(Arc::clone(agent), p.clone(), &args.state_dir));
    let (tx, rx) = watch::channel(Some(p));
    workers.insert(uid, tx);
    tasks.spawn(pod::run(ctx, rx, shutdown.clone()));
}
