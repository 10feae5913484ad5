//! Support for the tests that run real pods: the local cluster's real node (the node agent,
//! `make cluster-up`) runs each container as a process in its own network namespace, reachable
//! from the host on its pod IP and through kube-proxy on its Service's ClusterIP.
//!
//! - [`ModelSource`]: a minimal S3-compatible endpoint (path-style `GET /<bucket>/<key>`, which
//!   is all the server's S3 client asks of it) on the node's bridge address — the only host
//!   address pods reach — optionally holding a download half-way until released, so a test can
//!   see a pod that is not Ready *because* its model is still downloading;
//! - [`wait_pods`]: watch a label selector until a predicate over the pod list holds;
//! - [`infer`]: one Open Inference Protocol request, returning the answering pod's name.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::{Api, runtime::watcher};
use tokio::sync::watch;

/// The real node's bridge address: the host as pods see it.
pub const NODE_IP: &str = "10.244.128.1";

/// The bucket [`ModelSource`] serves.
pub const BUCKET: &str = "models";

/// A model object store on the node's bridge address.
pub struct ModelSource {
    pub base: String,
    open: watch::Sender<bool>,
    downloads: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct SourceState {
    files: Arc<Vec<(String, Vec<u8>)>>,
    open: watch::Receiver<bool>,
    downloads: Arc<watch::Sender<usize>>,
}

async fn serve_file(State(st): State<SourceState>, Path(path): Path<String>) -> Response {
    let Some(name) = path.strip_prefix(&format!("{BUCKET}/")) else {
        return (
            StatusCode::NOT_FOUND,
            "<Error><Code>NoSuchBucket</Code></Error>",
        )
            .into_response();
    };
    let Some((_, bytes)) = st.files.iter().find(|(n, _)| *n == name) else {
        return (
            StatusCode::NOT_FOUND,
            "<Error><Code>NoSuchKey</Code></Error>",
        )
            .into_response();
    };
    st.downloads.send_modify(|n| *n += 1);
    let bytes = bytes.clone();
    let len = bytes.len();
    let split = len.min(64);
    let mut open = st.open.clone();
    // The first bytes go at once; the rest waits until the gate opens.
    let head = futures::stream::once(futures::future::ready(Ok::<_, std::io::Error>(
        Bytes::copy_from_slice(&bytes[..split]),
    )));
    let tail = futures::stream::once(async move {
        let _ = open.wait_for(|o| *o).await;
        Ok::<_, std::io::Error>(Bytes::copy_from_slice(&bytes[split..]))
    });
    Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ETAG, format!("\"{len:x}\""))
        .header(header::LAST_MODIFIED, "Fri, 27 Nov 2026 12:00:00 GMT")
        .body(Body::from_stream(head.chain(tail)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

impl ModelSource {
    /// Serves `files` as `s3://models/<name>`; with `gated`, each download stalls after its first bytes
    /// until [`ModelSource::release`].
    pub async fn start(files: Vec<(String, Vec<u8>)>, gated: bool) -> Self {
        let (open, open_rx) = watch::channel(!gated);
        let (count, downloads) = watch::channel(0);
        let state = SourceState {
            files: Arc::new(files),
            open: open_rx,
            downloads: Arc::new(count),
        };
        let app = Router::new()
            .route("/{*path}", get(serve_file))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind((NODE_IP, 0)).await.expect(
            "bind the model source on the node bridge (is the node agent up? make cluster-up)",
        );
        let port = listener.local_addr().expect("local addr").port();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base: format!("http://{NODE_IP}:{port}"),
            open,
            downloads,
            task,
        }
    }

    /// The model's URI: `s3://models/<name>`.
    pub fn uri(&self, name: &str) -> String {
        format!("s3://{BUCKET}/{name}")
    }

    /// The Secret data that points the server's S3 client here (`spec.model.credentialsSecret`).
    pub fn secret_data(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("AWS_ACCESS_KEY_ID", "modelpilot-test"),
            ("AWS_SECRET_ACCESS_KEY", "modelpilot-test"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", self.base.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Lets every stalled and future download finish.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// Waits until `n` downloads have started.
    pub async fn wait_downloads(&self, n: usize, timeout: Duration) {
        let mut rx = self.downloads.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|d| *d >= n))
            .await
            .is_ok();
        let seen = *rx.borrow();
        assert!(
            waited,
            "{n} model downloads did not start within {timeout:?} (saw {seen})"
        );
    }
}

impl Drop for ModelSource {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches the pods matching `selector` until `pred` holds over the whole list; panics with the
/// pods' phases and states after `timeout`.
pub async fn wait_pods(
    api: &Api<Pod>,
    selector: &str,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&[Pod]) -> bool,
) -> Vec<Pod> {
    crate::common::wait_list(
        api,
        watcher::Config::default().labels(selector),
        timeout,
        what,
        pred,
        describe,
    )
    .await
}

/// One line per pod: name, phase, readiness and container states (for failure messages).
pub fn describe(p: &Pod) -> String {
    let status = p.status.clone().unwrap_or_default();
    let containers: Vec<String> = status
        .container_statuses
        .iter()
        .flatten()
        .map(|c| {
            format!(
                "{} ready={} restarts={} state={:?}",
                c.name, c.ready, c.restart_count, c.state
            )
        })
        .collect();
    format!(
        "{} phase={:?} ip={:?} node={:?} {}",
        p.metadata.name.clone().unwrap_or_default(),
        status.phase,
        status.pod_ip,
        p.spec.as_ref().and_then(|s| s.node_name.clone()),
        containers.join("; ")
    )
}

pub fn is_ready(p: &Pod) -> bool {
    p.metadata.deletion_timestamp.is_none()
        && p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The pid of a pod's first container (`containerID: modelpilot://<pid>`).
pub fn pid(p: &Pod) -> Option<i32> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .container_id
        .as_deref()?
        .strip_prefix("modelpilot://")?
        .parse()
        .ok()
}

/// The command line of a live process.
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// `http://<clusterIP>:<port>` of a Service.
pub async fn service_url(api: &Api<Service>, name: &str) -> String {
    let svc = api.get(name).await.expect("service");
    let spec = svc.spec.expect("service spec");
    let ip = spec.cluster_ip.expect("clusterIP");
    let port = spec
        .ports
        .and_then(|p| p.first().map(|p| p.port))
        .expect("service port");
    format!("http://{ip}:{port}")
}

/// The answer to one iris inference request: HTTP status, answering pod, predicted labels.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub pod: Option<String>,
    pub revision: Option<String>,
    pub labels: Vec<i64>,
}

/// Sends the iris rows to `/v2/models/<model>/infer` at `base`.
pub async fn infer(
    client: &reqwest::Client,
    base: &str,
    model: &str,
    rows: &[[f32; 4]],
) -> Result<Answer, String> {
    let data: Vec<f32> = rows.iter().flatten().copied().collect();
    let body = serde_json::json!({
        "inputs": [{"name": "float_input", "datatype": "FP32", "shape": [rows.len(), 4], "data": data}],
        "outputs": [{"name": "label"}]
    });
    let resp = client
        .post(format!("{base}/v2/models/{model}/infer"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let header = |h: &str| {
        resp.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let (status, pod, revision) = (
        resp.status().as_u16(),
        header("x-modelpilot-pod"),
        header("x-modelpilot-revision"),
    );
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let labels = json["outputs"][0]["data"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default();
    Ok(Answer {
        status,
        pod,
        revision,
        labels,
    })
}

/// Prometheus' address from the running cluster (`.cluster/run/ports.env`).
pub fn prometheus_url() -> Option<String> {
    let ports = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".cluster/run/ports.env");
    let text = std::fs::read_to_string(ports).ok()?;
    let port = text
        .lines()
        .find_map(|l| l.strip_prefix("PROMETHEUS_PORT="))?;
    Some(format!("http://127.0.0.1:{}", port.trim()))
}
