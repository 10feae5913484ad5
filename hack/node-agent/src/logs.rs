//! The kubelet's container-log endpoint, so `kubectl logs` (with `-f`, `--tail`, `--previous`,
//! `--limit-bytes`) works for pods on the real node: the API server dials
//! `https://<InternalIP>:<port>/containerLogs/<ns>/<pod>/<container>` with its kubelet client
//! certificate, which must chain to the cluster CA. Logs are the files the agent writes, one per
//! container instance: `<state>/pods/<ns>_<pod>_<uid>/logs/<container>/<restart>.log`.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path as UrlPath, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use hyper_util::{
    rt::TokioExecutor, rt::TokioIo, server::conn::auto, service::TowerToHyperService,
};
use rustls::{RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use serde::Deserialize;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::cli::RunArgs;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LogQuery {
    #[serde(default)]
    pub follow: Option<String>,
    #[serde(default)]
    pub previous: Option<String>,
    #[serde(default)]
    pub tail_lines: Option<i64>,
    #[serde(default)]
    pub limit_bytes: Option<i64>,
}

fn yes(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("true" | "1"))
}

/// The log file of a container instance: the newest (or the one before, with `previous`).
pub fn find_log(
    state_dir: &Path,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
) -> Result<PathBuf, String> {
    let prefix = format!("{ns}_{pod}_");
    let pod_dir = std::fs::read_dir(state_dir.join("pods"))
        .map_err(|_| format!("pod \"{pod}\" in namespace \"{ns}\" is not running on this node"))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .max_by_key(|e| e.metadata().and_then(|m| m.modified()).ok())
        .map(|e| e.path())
        .ok_or_else(|| {
            format!("pod \"{pod}\" in namespace \"{ns}\" is not running on this node")
        })?;
    let dir = pod_dir.join("logs").join(container);
    let mut instances: Vec<u64> = std::fs::read_dir(&dir)
        .map_err(|_| format!("container \"{container}\" in pod \"{pod}\" has not started"))?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".log")?
                .parse()
                .ok()
        })
        .collect();
    instances.sort_unstable();
    let pick = if previous {
        instances.iter().rev().nth(1)
    } else {
        instances.last()
    };
    pick.map(|n| dir.join(format!("{n}.log"))).ok_or_else(|| {
        if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod}\" has not started")
        }
    })
}

/// The byte offset where the last `lines` lines of `text` start.
///
/// ```text
/// "a\nb\nc\n", 2 → 2 ("b\nc\n");  "a\nb", 1 → 2 ("b");  0 lines → len
/// ```
pub fn tail_offset(text: &[u8], lines: usize) -> usize {
    if lines == 0 {
        return text.len();
    }
    let body = text.strip_suffix(b"\n").unwrap_or(text);
    body.iter()
        .enumerate()
        .rev()
        .filter(|(_, b)| **b == b'\n')
        .nth(lines - 1)
        .map_or(0, |(i, _)| i + 1)
}

async fn container_logs(
    State(state_dir): State<Arc<PathBuf>>,
    UrlPath((ns, pod, container)): UrlPath<(String, String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let path = match find_log(&state_dir, &ns, &pod, &container, yes(&q.previous)) {
        Ok(p) => p,
        Err(msg) => return (StatusCode::NOT_FOUND, msg).into_response(),
    };
    let mut content = Vec::new();
    let read = File::open(&path).and_then(|mut f| f.read_to_end(&mut content));
    if let Err(err) = read {
        return (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response();
    }
    let mut start = match q.tail_lines {
        Some(n) if n >= 0 => tail_offset(&content, usize::try_from(n).unwrap_or(usize::MAX)),
        _ => 0,
    };
    let limit = q
        .limit_bytes
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0);
    if !yes(&q.follow) || yes(&q.previous) {
        let end = limit.map_or(content.len(), |l| (start + l).min(content.len()));
        return (StatusCode::OK, content[start..end].to_vec()).into_response();
    }
    let first = Bytes::copy_from_slice(&content[start..]);
    start = content.len();
    let stream = futures::stream::unfold(
        (Some(first), path, start as u64),
        |(first, path, pos)| async move {
            if let Some(first) = first {
                return Some((Ok::<_, std::io::Error>(first), (None, path, pos)));
            }
            loop {
                let mut buf = Vec::new();
                let read = File::open(&path).and_then(|mut f| {
                    f.seek(SeekFrom::Start(pos))?;
                    f.read_to_end(&mut buf)
                });
                match read {
                    Ok(n) if n > 0 => {
                        return Some((Ok(Bytes::from(buf)), (None, path, pos + n as u64)));
                    }
                    Ok(_) => {
                        // The instance ended when a newer log file exists (a restart) or the pod is gone.
                        if !path.exists() || newer_exists(&path) {
                            return None;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(_) => return None,
                }
            }
        },
    );
    (StatusCode::OK, Body::from_stream(stream)).into_response()
}

fn newer_exists(path: &Path) -> bool {
    let n: Option<u64> = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok());
    match (n, path.parent()) {
        (Some(n), Some(dir)) => dir.join(format!("{}.log", n + 1)).exists(),
        _ => false,
    }
}

fn tls_config(args: &RunArgs) -> anyhow::Result<ServerConfig> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&args.tls_cert)
        .with_context(|| format!("reading {}", args.tls_cert.display()))?
        .collect::<Result<_, _>>()?;
    let key = PrivateKeyDer::from_pem_file(&args.tls_key)
        .with_context(|| format!("reading {}", args.tls_key.display()))?;
    let mut roots = RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(&args.client_ca)
        .with_context(|| format!("reading {}", args.client_ca.display()))?
    {
        roots.add(ca?)?;
    }
    let verifier = WebPkiClientVerifier::builder(Arc::new(roots)).build()?;
    Ok(ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?)
}

/// Starts the HTTPS endpoint; it runs until `shutdown`.
pub async fn serve(args: &RunArgs, shutdown: CancellationToken) -> anyhow::Result<JoinHandle<()>> {
    let acceptor = TlsAcceptor::from(Arc::new(tls_config(args)?));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let app = Router::new()
        .route("/containerLogs/{ns}/{pod}/{container}", get(container_logs))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(Arc::new(args.state_dir.clone()));
    tracing::info!(addr = %args.listen, "log endpoint listening");
    Ok(tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                () = shutdown.cancelled() => return,
            };
            let Ok((tcp, _)) = accepted else { continue };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = TowerToHyperService::new(app);
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_offsets() {
        for (text, n, want) in [
            ("a\nb\nc\n", 2, "b\nc\n"),
            ("a\nb\nc\n", 5, "a\nb\nc\n"),
            ("a\nb", 1, "b"),
            ("a\nb\n", 0, ""),
            ("", 3, ""),
        ] {
            let off = tail_offset(text.as_bytes(), n);
            assert_eq!(&text[off..], want, "{text:?} {n}");
        }
    }

    #[test]
    fn finds_current_and_previous_instances() {
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = dir.path().join("pods/ml_iris-1_uid/logs/server");
        std::fs::create_dir_all(&logs).expect("mkdir");
        for n in [0, 1, 10] {
            std::fs::write(logs.join(format!("{n}.log")), format!("{n}\n")).expect("write");
        }
        let cur = find_log(dir.path(), "ml", "iris-1", "server", false).expect("current");
        assert!(cur.ends_with("10.log"), "{}", cur.display());
        let prev = find_log(dir.path(), "ml", "iris-1", "server", true).expect("previous");
        assert!(prev.ends_with("1.log"));
        assert!(find_log(dir.path(), "ml", "iris-2", "server", false).is_err());
        assert!(find_log(dir.path(), "ml", "iris-1", "other", false).is_err());
        assert!(newer_exists(&logs.join("0.log")) && !newer_exists(&logs.join("10.log")));
    }
}
