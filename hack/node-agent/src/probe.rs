//! Startup, readiness and liveness probes run against the real process, as the kubelet runs
//! them: `httpGet` (any 2xx/3xx is success; no redirects followed), `tcpSocket` and `exec` (the
//! command in the container's namespaces), with initial delay, period, timeout and thresholds.
//! Readiness drives the container's `ready` (and so the pod's Ready and its EndpointSlice
//! entry); a failed startup or liveness probe asks the container's runner to restart it.

use std::{collections::BTreeMap, net::IpAddr, sync::Arc, time::Duration};

use k8s_openapi::{
    api::core::v1::{Container, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    pod::{PodCtx, Slot},
    process::Launch,
    trampoline::Bind,
};

/// Where and how probes reach a container.
#[derive(Debug, Clone)]
pub struct Target {
    pub pod_ip: IpAddr,
    pub ports: BTreeMap<String, i32>,
    pub netns: std::path::PathBuf,
    pub binds: Vec<Bind>,
    pub keep: Vec<std::path::PathBuf>,
    pub env: BTreeMap<String, String>,
    pub workdir: Option<String>,
}

/// The numeric port of a probe's `port` (a number or a container port name).
pub fn port(p: &IntOrString, ports: &BTreeMap<String, i32>) -> Result<u16, String> {
    let n = match p {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => *ports
                .get(name)
                .ok_or_else(|| format!("no container port named \"{name}\""))?,
        },
    };
    u16::try_from(n)
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid port {n}"))
}

fn secs(v: Option<i32>, default: i32) -> Duration {
    Duration::from_secs(u64::try_from(v.unwrap_or(default).max(0)).unwrap_or(0))
}

/// The probes' HTTP client, built once (its connection pool and TLS setup are shared; each
/// request carries its probe's timeout).
fn http_client() -> reqwest::Result<&'static reqwest::Client> {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    if let Some(c) = CLIENT.get() {
        return Ok(c);
    }
    let built = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .user_agent("kube-probe/1.37")
        .pool_max_idle_per_host(0)
        .build()?;
    Ok(CLIENT.get_or_init(|| built))
}

/// One probe attempt.
pub async fn check(
    probe: &Probe,
    target: &Target,
    agent_exe: &std::path::Path,
) -> Result<(), String> {
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_secs(1));
    if let Some(h) = &probe.http_get {
        let port = port(&h.port, &target.ports)?;
        let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_ascii_lowercase();
        let host = h.host.clone().unwrap_or_else(|| target.pod_ip.to_string());
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        let url = format!("{scheme}://{host}:{port}{path}");
        let client = http_client().map_err(|e| e.to_string())?;
        let mut req = client.get(&url).timeout(timeout);
        for hdr in h.http_headers.iter().flatten() {
            req = req.header(&hdr.name, &hdr.value);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("Get \"{url}\": {e}"))?;
        let code = resp.status().as_u16();
        return if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        };
    }
    if let Some(t) = &probe.tcp_socket {
        let port = port(&t.port, &target.ports)?;
        let host: IpAddr = match &t.host {
            Some(h) => h
                .parse()
                .map_err(|_| format!("tcpSocket host \"{h}\" is not an IP"))?,
            None => target.pod_ip,
        };
        return match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port)))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("dial tcp {host}:{port}: {e}")),
            Err(_) => Err(format!("dial tcp {host}:{port}: timeout")),
        };
    }
    if let Some(e) = &probe.exec {
        let argv = e.command.clone().unwrap_or_default();
        if argv.is_empty() {
            return Err("exec probe without a command".into());
        }
        let launch = Launch {
            agent_exe,
            netns: &target.netns,
            binds: &target.binds,
            keep: &target.keep,
            workdir: target.workdir.as_deref(),
            argv: &argv,
            env: &target.env,
        };
        return launch
            .run_with_timeout(timeout)
            .await
            .map_err(|e| e.to_string())?;
    }
    Err("probe has no handler the local node agent supports (httpGet, tcpSocket, exec)".into())
}

/// Runs a container's probes until `stop`: startup first, then readiness and liveness side by
/// side. A failed startup or liveness probe sends its message on `kill` and ends the probes.
pub async fn run(
    ctx: Arc<PodCtx>,
    slot: Slot,
    spec: Container,
    target: Target,
    kill: mpsc::Sender<String>,
    stop: CancellationToken,
) {
    let exe = ctx.agent.exe.clone();
    let body = async {
        if let Some(p) = &spec.startup_probe {
            tokio::time::sleep(secs(p.initial_delay_seconds, 0)).await;
            let mut failures = 0;
            loop {
                match check(p, &target, &exe).await {
                    Ok(()) => break,
                    Err(msg) => {
                        failures += 1;
                        if failures >= p.failure_threshold.unwrap_or(3) {
                            let _ = kill.send(format!("Startup probe failed: {msg}")).await;
                            return;
                        }
                    }
                }
                tokio::time::sleep(secs(p.period_seconds, 10)).await;
            }
        }
        ctx.update(slot, |c| c.started = true);
        let readiness = async {
            let Some(p) = &spec.readiness_probe else {
                ctx.update(slot, |c| c.ready = true);
                return;
            };
            tokio::time::sleep(secs(p.initial_delay_seconds, 0)).await;
            let (mut ok, mut bad) = (0, 0);
            loop {
                match check(p, &target, &exe).await {
                    Ok(()) => {
                        ok += 1;
                        bad = 0;
                        if ok >= p.success_threshold.unwrap_or(1) {
                            ctx.update(slot, |c| c.ready = true);
                        }
                    }
                    Err(msg) => {
                        bad += 1;
                        ok = 0;
                        if bad >= p.failure_threshold.unwrap_or(3) {
                            ctx.update(slot, |c| c.ready = false);
                        }
                        tracing::debug!(pod = %ctx.key, container = %spec.name, "readiness probe failed: {msg}");
                    }
                }
                tokio::time::sleep(secs(p.period_seconds, 10)).await;
            }
        };
        let liveness = async {
            let Some(p) = &spec.liveness_probe else {
                return std::future::pending::<()>().await;
            };
            tokio::time::sleep(secs(p.initial_delay_seconds, 0)).await;
            let mut bad = 0;
            loop {
                match check(p, &target, &exe).await {
                    Ok(()) => bad = 0,
                    Err(msg) => {
                        bad += 1;
                        if bad >= p.failure_threshold.unwrap_or(3) {
                            let _ = kill.send(format!("Liveness probe failed: {msg}")).await;
                            return;
                        }
                    }
                }
                tokio::time::sleep(secs(p.period_seconds, 10)).await;
            }
        };
        // Both run until the container stops (readiness without a probe returns at once; that
        // must not end liveness).
        tokio::join!(readiness, liveness);
    };
    tokio::select! {
        () = body => {}
        () = stop.cancelled() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_by_number_or_name() {
        let ports: BTreeMap<String, i32> = [("http".to_string(), 8080)].into();
        assert_eq!(port(&IntOrString::Int(9000), &ports), Ok(9000));
        assert_eq!(port(&IntOrString::String("http".into()), &ports), Ok(8080));
        assert_eq!(port(&IntOrString::String("8081".into()), &ports), Ok(8081));
        assert!(port(&IntOrString::String("grpc".into()), &ports).is_err());
        assert!(port(&IntOrString::Int(0), &ports).is_err());
        assert!(port(&IntOrString::Int(70000), &ports).is_err());
    }

    #[tokio::test]
    async fn http_and_tcp_probes_against_a_listener() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let code = if req.starts_with("GET /ok") {
                    "200 OK"
                } else {
                    "503 Unavailable"
                };
                let _ = s
                    .write_all(
                        format!(
                            "HTTP/1.1 {code}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            }
        });
        let target = Target {
            pod_ip: "127.0.0.1".parse().expect("ip"),
            ports: [("http".to_string(), i32::from(port))].into(),
            netns: "/nonexistent".into(),
            binds: vec![],
            keep: vec![],
            env: BTreeMap::new(),
            workdir: None,
        };
        let http = |path: &str| Probe {
            http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                path: Some(path.into()),
                port: IntOrString::String("http".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let exe = std::path::Path::new("/nonexistent");
        assert_eq!(check(&http("/ok"), &target, exe).await, Ok(()));
        let err = check(&http("/bad"), &target, exe)
            .await
            .expect_err("503 fails");
        assert!(err.contains("503"), "{err}");
        let tcp = Probe {
            tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                port: IntOrString::Int(i32::from(port)),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(check(&tcp, &target, exe).await, Ok(()));
        assert!(check(&Probe::default(), &target, exe).await.is_err());
    }
}
