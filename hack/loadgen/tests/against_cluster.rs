//! The load generator through a real Service of the local cluster: `--service` is resolved by
//! the API server to a ClusterIP, kube-proxy spreads the connections over two endpoints, the
//! report attributes the answers to both pods, and feedback reaches the pod that made each
//! prediction (found through the EndpointSlices), so every post is accepted — through the
//! ClusterIP about half would reach the wrong pod and be refused.
//!
//! The two "pods" are `modelpilot serve` processes on the host listening on the node address
//! (10.244.128.1, the bridge), behind a selector-less Service with hand-written
//! EndpointSlices; so the test needs the cluster's API server, bridge and kube-proxy, but not
//! the node agent. Needs `make cluster-up` (as root); without a cluster it says so and passes.

mod support;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        core::v1::{Namespace, ObjectReference, Service, ServicePort, ServiceSpec},
        discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use kube::{
    Api, Client, Config,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use support::{Server, get, iris_csv, keys, loadgen, report_after};
use tokio::runtime::Runtime;

/// The real node's address on the bridge; host processes listening there are reachable as
/// endpoints.
const NODE_IP: &str = "10.244.128.1";
const SERVICE: &str = "iris";
const PODS: [&str; 2] = ["iris-pod-a", "iris-pod-b"];

fn kubeconfig() -> PathBuf {
    match std::env::var_os("KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => support::workspace().join(".cluster/kubeconfig"),
    }
}

/// A client when a cluster answers, else `None` (the reason printed).
fn cluster(rt: &Runtime) -> Option<Client> {
    let path = kubeconfig();
    let skip = |why: String| {
        eprintln!("skipping: {why}; start the cluster with `make cluster-up` (make test does)");
        None
    };
    let Ok(file) = Kubeconfig::read_from(&path) else {
        return skip(format!("no kubeconfig at {}", path.display()));
    };
    rt.block_on(async {
        let config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await;
        let client = config.ok().and_then(|c| Client::try_from(c).ok())?;
        let api: Api<Namespace> = Api::all(client.clone());
        let params = ListParams::default().limit(1);
        let probe = tokio::time::timeout(Duration::from_secs(5), api.list(&params)).await;
        matches!(probe, Ok(Ok(_))).then_some(client)
    })
    .or_else(|| skip(format!("the cluster of {} does not answer", path.display())))
}

/// A namespace of its own, deleted on drop (also when the test fails).
struct TestNamespace<'a> {
    rt: &'a Runtime,
    client: Client,
    name: String,
}

impl<'a> TestNamespace<'a> {
    fn create(rt: &'a Runtime, client: &Client) -> TestNamespace<'a> {
        let name = format!("loadgen-{:08x}", rand::random::<u32>());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        let api: Api<Namespace> = Api::all(client.clone());
        rt.block_on(api.create(&PostParams::default(), &ns))
            .expect("create namespace");
        TestNamespace {
            rt,
            client: client.clone(),
            name,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace<'_> {
    fn drop(&mut self) {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let _ = self
            .rt
            .block_on(api.delete(&self.name, &DeleteParams::default()));
    }
}

fn meta(name: &str, labels: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..ObjectMeta::default()
    }
}

/// A selector-less Service (port `http` 80) with one EndpointSlice per server.
fn publish(rt: &Runtime, ns: &TestNamespace, servers: &[(&str, &Server)]) -> String {
    let service = Service {
        metadata: meta(SERVICE, &[]),
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::Int(8080)),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    };
    let created = rt
        .block_on(ns.api::<Service>().create(&PostParams::default(), &service))
        .expect("create Service");
    for (pod, server) in servers {
        let labels = [
            ("kubernetes.io/service-name", SERVICE),
            ("endpointslice.kubernetes.io/managed-by", "loadgen-tests"),
        ];
        let slice = EndpointSlice {
            metadata: meta(&format!("{SERVICE}-{pod}"), &labels),
            address_type: "IPv4".into(),
            endpoints: Some(vec![Endpoint {
                addresses: vec![NODE_IP.into()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    ..EndpointConditions::default()
                }),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some(pod.to_string()),
                    namespace: Some(ns.name.clone()),
                    ..ObjectReference::default()
                }),
                ..Endpoint::default()
            }]),
            ports: Some(vec![EndpointPort {
                name: Some("http".into()),
                port: Some(i32::from(server.port())),
                protocol: Some("TCP".into()),
                ..EndpointPort::default()
            }]),
        };
        rt.block_on(
            ns.api::<EndpointSlice>()
                .create(&PostParams::default(), &slice),
        )
        .expect("create EndpointSlice");
    }
    let ip = created
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("a ClusterIP");
    format!("http://{ip}:80")
}

#[test]
fn service_spread_over_two_pods_with_feedback_to_the_answering_pod() {
    let rt = Runtime::new().expect("tokio runtime");
    let Some(client) = cluster(&rt) else { return };
    let ns = TestNamespace::create(&rt, &client);
    let servers: Vec<Server> = PODS
        .iter()
        .map(|pod| Server::start(NODE_IP, pod, "rev-1", &[]))
        .collect();
    let pairs: Vec<(&str, &Server)> = PODS.iter().copied().zip(&servers).collect();
    let cluster_url = publish(&rt, &ns, &pairs);

    // kube-proxy programs the Service asynchronously: wait until the ClusterIP answers.
    let deadline = Instant::now() + Duration::from_secs(60);
    while get(&cluster_url, "/v2/health/ready").is_none_or(|r| !r.starts_with("HTTP/1.1 200")) {
        assert!(Instant::now() < deadline, "{cluster_url} never answered");
        std::thread::sleep(Duration::from_millis(100));
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let csv = iris_csv(dir.path());
    let kubeconfig = kubeconfig();
    let service = format!("{}/{SERVICE}", ns.name);
    let common = [
        "--service",
        &service,
        "--kubeconfig",
        kubeconfig.to_str().expect("utf-8 path"),
        "--model",
        "iris",
    ];
    let out = loadgen(
        &[
            &common[..],
            &[
                "--json",
                "--requests",
                "400",
                "--duration",
                "60s",
                "--concurrency",
                "16",
                "--input-csv",
                csv.to_str().expect("utf-8 path"),
                "--label-column",
                "species",
                "--feedback",
            ],
        ]
        .concat(),
    );
    let r = report_after(&out, 0);
    assert_eq!(r["target"], cluster_url.as_str());
    assert_eq!(r["service"], service.as_str());
    let o = &r["overall"];
    assert_eq!(
        (o["requests"].as_u64(), o["ok"].as_u64()),
        (Some(400), Some(400)),
        "{o}"
    );
    assert_eq!(
        keys(&r["by_pod"]),
        PODS,
        "16 connections reach both endpoints"
    );
    assert_eq!(keys(&r["by_revision"]), ["rev-1"]);
    assert_eq!(
        o["feedback"]["accepted"], 400,
        "every label reached its pod: {o}"
    );
    let per_pod: BTreeMap<&str, u64> = PODS
        .iter()
        .map(|p| {
            (
                *p,
                r["by_pod"][*p]["feedback"]["accepted_rows"]
                    .as_u64()
                    .unwrap_or(0),
            )
        })
        .collect();
    for (pod, server) in &pairs {
        let counted = server.metric("modelpilot_feedback_rows_total");
        assert_eq!(
            counted, per_pod[pod] as f64,
            "{pod}'s own count of labelled rows"
        );
        assert_eq!(r["by_pod"][*pod]["requests"], r["by_pod"][*pod]["ok"]);
    }

    // The same Service with the service network left out of --allow-cidr: refused.
    let out = loadgen(&[&common[..], &["--allow-cidr", "10.244.0.0/16"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("refusing to dial 10.96."), "{stderr}");
    assert!(out.stdout.is_empty(), "no run, no report");
}
