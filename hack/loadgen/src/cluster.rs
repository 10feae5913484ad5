//! The local cluster as the source of addresses: a Service's ClusterIP and port (`--service`),
//! and, for label feedback, the IP of the pod that answered a request.
//!
//! Feedback must reach the pod that made the prediction (each server remembers only its own
//! request ids), but a Service spreads connections over its pods. The answering pod names
//! itself in a response header; [`PodDirectory`] maps that name to the pod's IP and port
//! from the Service's EndpointSlices, so feedback is posted to the pod directly. Every
//! address, the API server's included, passes the [`AddressGuard`] first.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use k8s_openapi::api::{
    core::v1::{Service, ServicePort},
    discovery::v1::EndpointSlice,
};
use kube::{
    Api, Client, Config,
    api::ListParams,
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio::sync::Mutex;

use crate::target::{AddressGuard, BaseUrl};

/// A client for the kubeconfig's current context, after checking the API server's address.
pub async fn connect(kubeconfig: &Path, guard: &AddressGuard) -> anyhow::Result<Client> {
    let file = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("cannot read kubeconfig {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("invalid kubeconfig {}", kubeconfig.display()))?;
    guard
        .check_url(&config.cluster_url.to_string())
        .context("the kubeconfig's API server")?;
    if let Some(proxy) = &config.proxy_url {
        guard
            .check_url(&proxy.to_string())
            .context("the kubeconfig's proxy-url")?;
    }
    Client::try_from(config).context("cannot build a Kubernetes client")
}

/// A Service resolved to the address the load goes to.
#[derive(Clone, Debug)]
pub struct ServiceTarget {
    pub base: BaseUrl,
    /// Name of the Service port used (EndpointSlice ports carry the same name).
    pub port_name: Option<String>,
}

/// Reads Service `namespace/name` and returns its ClusterIP and the chosen port.
pub async fn resolve_service(
    client: &Client,
    namespace: &str,
    name: &str,
    port: Option<&str>,
    guard: &AddressGuard,
) -> anyhow::Result<ServiceTarget> {
    let api: Api<Service> = Api::namespaced(client.clone(), namespace);
    let service = api
        .get(name)
        .await
        .with_context(|| format!("cannot read Service {namespace}/{name}"))?;
    let spec = service.spec.unwrap_or_default();
    let ip = match spec.cluster_ip.as_deref() {
        None | Some("") => bail!("Service {namespace}/{name} has no ClusterIP yet"),
        Some("None") => bail!("Service {namespace}/{name} is headless (no ClusterIP)"),
        Some(ip) => ip
            .parse::<IpAddr>()
            .with_context(|| format!("Service {namespace}/{name}: bad ClusterIP {ip:?}"))?,
    };
    guard.check(ip)?;
    let (number, port_name) = pick_port(spec.ports.as_deref().unwrap_or_default(), port)
        .with_context(|| format!("Service {namespace}/{name}"))?;
    Ok(ServiceTarget {
        base: BaseUrl::http(SocketAddr::new(ip, number)),
        port_name,
    })
}

/// Chooses a Service port: the one named or numbered `wanted`; else the only port; else the
/// port named `http`.
pub fn pick_port(
    ports: &[ServicePort],
    wanted: Option<&str>,
) -> anyhow::Result<(u16, Option<String>)> {
    let found = match wanted {
        Some(w) => ports
            .iter()
            .find(|p| p.name.as_deref() == Some(w) || p.port.to_string() == w),
        None if ports.len() == 1 => ports.first(),
        None => ports.iter().find(|p| p.name.as_deref() == Some("http")),
    };
    let Some(port) = found else {
        let names: Vec<String> = ports
            .iter()
            .map(|p| format!("{}={}", p.name.as_deref().unwrap_or("(unnamed)"), p.port))
            .collect();
        match wanted {
            Some(w) => bail!("no port {w:?} (ports: {})", names.join(", ")),
            None => bail!(
                "pick a port with --service-port (ports: {})",
                names.join(", ")
            ),
        }
    };
    let number = u16::try_from(port.port).context("port out of range")?;
    Ok((number, port.name.clone()))
}

/// Pod name → address of the Service's port on that pod, from EndpointSlices. Addresses the
/// guard refuses are left out.
pub fn pod_addresses(
    slices: &[EndpointSlice],
    port_name: Option<&str>,
    guard: &AddressGuard,
) -> HashMap<String, SocketAddr> {
    let same_name = |name: Option<&str>| name.unwrap_or("") == port_name.unwrap_or("");
    let mut pods = HashMap::new();
    for slice in slices {
        let port = slice
            .ports
            .iter()
            .flatten()
            .find(|p| same_name(p.name.as_deref()))
            .and_then(|p| p.port)
            .and_then(|p| u16::try_from(p).ok());
        let Some(port) = port else { continue };
        for endpoint in slice.endpoints.iter().flatten() {
            let pod = endpoint
                .target_ref
                .as_ref()
                .filter(|r| r.kind.as_deref() == Some("Pod"))
                .and_then(|r| r.name.clone());
            let ip = endpoint
                .addresses
                .first()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .filter(|ip| guard.check(*ip).is_ok());
            if let (Some(pod), Some(ip)) = (pod, ip) {
                pods.insert(pod, SocketAddr::new(ip, port));
            }
        }
    }
    pods
}

/// Shortest interval between two EndpointSlice reads when a pod name is not known.
const REFRESH_INTERVAL: Duration = Duration::from_secs(1);

/// Pod name → pod address for one Service, read again (at most once a second) when a name
/// is missing.
pub struct PodDirectory {
    api: Api<EndpointSlice>,
    selector: String,
    port_name: Option<String>,
    guard: AddressGuard,
    state: Mutex<(HashMap<String, SocketAddr>, Option<Instant>)>,
}

impl PodDirectory {
    pub fn new(
        client: &Client,
        namespace: &str,
        service: &str,
        port_name: Option<String>,
        guard: AddressGuard,
    ) -> PodDirectory {
        PodDirectory {
            api: Api::namespaced(client.clone(), namespace),
            selector: format!("kubernetes.io/service-name={service}"),
            port_name,
            guard,
            state: Mutex::new((HashMap::new(), None)),
        }
    }

    /// The address of `pod`, or `None` when the Service has no such endpoint.
    pub async fn address(&self, pod: &str) -> Option<SocketAddr> {
        let mut state = self.state.lock().await;
        let (pods, refreshed) = &mut *state;
        if let Some(addr) = pods.get(pod) {
            return Some(*addr);
        }
        if refreshed.is_some_and(|t| t.elapsed() < REFRESH_INTERVAL) {
            return None;
        }
        *refreshed = Some(Instant::now());
        let params = ListParams::default().labels(&self.selector);
        match self.api.list(&params).await {
            Ok(list) => {
                *pods = pod_addresses(&list.items, self.port_name.as_deref(), &self.guard);
            }
            Err(e) => eprintln!("modelpilot-loadgen: cannot list EndpointSlices: {e}"),
        }
        pods.get(pod).copied()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::{
        core::v1::ObjectReference,
        discovery::v1::{Endpoint, EndpointPort},
    };

    use super::*;
    use crate::target::DEFAULT_ALLOWED_CIDRS;

    fn port(name: Option<&str>, number: i32) -> ServicePort {
        ServicePort {
            name: name.map(str::to_string),
            port: number,
            ..ServicePort::default()
        }
    }

    #[test]
    fn picks_service_ports() {
        let one = [port(None, 80)];
        let two = [port(Some("http"), 80), port(Some("metrics"), 9090)];
        let odd = [port(Some("a"), 80), port(Some("b"), 81)];
        for (ports, wanted, want) in [
            (&one[..], None, Some((80, None))),
            (&one[..], Some("80"), Some((80, None))),
            (&one[..], Some("81"), None),
            (&two[..], None, Some((80, Some("http")))),
            (&two[..], Some("metrics"), Some((9090, Some("metrics")))),
            (&two[..], Some("9090"), Some((9090, Some("metrics")))),
            (&odd[..], None, None),
            (&odd[..], Some("b"), Some((81, Some("b")))),
            (&[][..], None, None),
        ] {
            let got = pick_port(ports, wanted).ok();
            let want = want.map(|(n, name): (u16, Option<&str>)| (n, name.map(str::to_string)));
            assert_eq!(got, want, "{wanted:?}");
        }
    }

    fn endpoint(pod: &str, ip: &str) -> Endpoint {
        Endpoint {
            addresses: vec![ip.to_string()],
            target_ref: Some(ObjectReference {
                kind: Some("Pod".into()),
                name: Some(pod.into()),
                ..ObjectReference::default()
            }),
            ..Endpoint::default()
        }
    }

    fn slice(ports: &[(Option<&str>, i32)], endpoints: Vec<Endpoint>) -> EndpointSlice {
        EndpointSlice {
            address_type: "IPv4".into(),
            endpoints: Some(endpoints),
            ports: Some(
                ports
                    .iter()
                    .map(|(name, p)| EndpointPort {
                        name: name.map(str::to_string),
                        port: Some(*p),
                        ..EndpointPort::default()
                    })
                    .collect(),
            ),
            ..EndpointSlice::default()
        }
    }

    #[test]
    fn maps_pods_to_addresses_of_the_named_port() {
        let guard = AddressGuard::new(
            DEFAULT_ALLOWED_CIDRS
                .iter()
                .map(|c| c.parse().unwrap())
                .collect(),
        );
        let slices = [
            slice(
                &[(Some("http"), 8080), (Some("metrics"), 9090)],
                vec![
                    endpoint("a", "10.244.128.5"),
                    endpoint("b", "10.244.128.6"),
                    endpoint("outside", "192.168.0.9"),
                    endpoint("garbled", "not-an-ip"),
                ],
            ),
            slice(&[(Some("other"), 1)], vec![endpoint("c", "10.244.128.7")]),
            slice(&[(Some("http"), 8081)], vec![endpoint("d", "10.244.1.2")]),
        ];
        let got = pod_addresses(&slices, Some("http"), &guard);
        let mut got: Vec<(String, String)> =
            got.into_iter().map(|(k, v)| (k, v.to_string())).collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("a".to_string(), "10.244.128.5:8080".to_string()),
                ("b".to_string(), "10.244.128.6:8080".to_string()),
                ("d".to_string(), "10.244.1.2:8081".to_string()),
            ]
        );
        let unnamed = [slice(&[(None, 8080)], vec![endpoint("a", "10.244.128.5")])];
        assert_eq!(pod_addresses(&unnamed, None, &guard).len(), 1);
        assert_eq!(pod_addresses(&unnamed, Some("http"), &guard).len(), 0);
    }
}
