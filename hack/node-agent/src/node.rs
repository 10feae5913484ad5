//! The Node object the agent owns: registered with the node's pod CIDR, its InternalIP (the
//! bridge address, where the API server reaches the agent's log endpoint) and capacity, then kept
//! Ready by a heartbeat — the node status and the node's Lease in `kube-node-lease` — as the
//! kubelet keeps its node, so the node lifecycle controller never marks it unreachable.

use std::{collections::BTreeMap, time::Duration};

use jiff::Timestamp;
use k8s_openapi::{
    api::{
        coordination::v1::{Lease, LeaseSpec},
        core::v1::{Node, NodeAddress, NodeCondition, NodeSpec, NodeSystemInfo},
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{MicroTime, Time},
    },
};
use kube::{
    Api, Client,
    api::{ObjectMeta, Patch, PatchParams, PostParams},
};

/// What the node says about itself.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    pub name: String,
    pub pod_cidr: String,
    pub internal_ip: String,
    pub kubelet_port: i32,
    pub since: Timestamp,
}

fn labels(name: &str) -> BTreeMap<String, String> {
    [
        ("type", "real"),
        ("modelpilot.dev/node-agent", "true"),
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn mem_total_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1 << 20)
}

/// The node's status (as a JSON merge patch body).
pub fn status(info: &NodeInfo, now: Timestamp) -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let capacity: BTreeMap<String, Quantity> = [
        ("cpu", cpus.to_string()),
        ("memory", format!("{}Ki", mem_total_kib())),
        ("pods", "110".into()),
        ("ephemeral-storage", "100Gi".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Quantity(v)))
    .collect();
    let cond = |kind: &str, status: &str, reason: &str, message: &str| NodeCondition {
        type_: kind.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_heartbeat_time: Some(Time(now)),
        last_transition_time: Some(Time(info.since)),
    };
    let version = "v1.37.2";
    let sys = NodeSystemInfo {
        architecture: "amd64".into(),
        boot_id: String::new(),
        container_runtime_version: "modelpilot-node-agent://0.1.0".into(),
        kernel_version: String::new(),
        kube_proxy_version: version.into(),
        kubelet_version: version.into(),
        machine_id: String::new(),
        operating_system: "linux".into(),
        os_image: "modelpilot local node agent".into(),
        system_uuid: String::new(),
        ..Default::default()
    };
    serde_json::json!({
        "status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory accounting here"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk accounting here"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "no PID accounting here"),
                cond("Ready", "True", "KubeletReady", "modelpilot-node-agent is posting ready status"),
            ],
            "addresses": [
                NodeAddress { type_: "InternalIP".into(), address: info.internal_ip.clone() },
                NodeAddress { type_: "Hostname".into(), address: info.name.clone() },
            ],
            "daemonEndpoints": { "kubeletEndpoint": { "Port": info.kubelet_port } },
            "nodeInfo": sys,
        }
    })
}

/// Creates the Node (or takes over an existing one of that name) and reports it Ready.
pub async fn register(client: &Client, info: &NodeInfo) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    if api.get_opt(&info.name).await?.is_none() {
        let node = Node {
            metadata: ObjectMeta {
                name: Some(info.name.clone()),
                labels: Some(labels(&info.name)),
                ..Default::default()
            },
            spec: Some(NodeSpec {
                pod_cidr: Some(info.pod_cidr.clone()),
                pod_cidrs: Some(vec![info.pod_cidr.clone()]),
                ..Default::default()
            }),
            status: None,
        };
        api.create(&PostParams::default(), &node).await?;
    }
    api.patch_status(
        &info.name,
        &PatchParams::default(),
        &Patch::Merge(status(info, Timestamp::now())),
    )
    .await?;
    renew_lease(client, &info.name).await?;
    Ok(())
}

async fn renew_lease(client: &Client, node: &str) -> anyhow::Result<()> {
    let api: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let now = MicroTime(Timestamp::now());
    match api.get_opt(node).await? {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(node.into()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(node.into()),
                    lease_duration_seconds: Some(40),
                    renew_time: Some(now),
                    ..Default::default()
                }),
            };
            api.create(&PostParams::default(), &lease).await?;
        }
        Some(_) => {
            let patch = serde_json::json!({"spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now}});
            api.patch(node, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    Ok(())
}

/// Renews the Lease and the Ready condition every `period` until cancelled.
pub async fn heartbeat(client: Client, info: NodeInfo, period: Duration) {
    let api: Api<Node> = Api::all(client.clone());
    loop {
        tokio::time::sleep(period).await;
        if let Err(err) = renew_lease(&client, &info.name).await {
            tracing::warn!("node lease: {err:#}");
        }
        let patch = status(&info, Timestamp::now());
        if let Err(err) = api
            .patch_status(&info.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!("node status: {err}");
        }
    }
}
