//! Graceful shutdown: SIGTERM (what Kubernetes sends) or SIGINT stops accepting new
//! connections, marks the server not ready, and lets in-flight requests finish.

use tokio_util::sync::CancellationToken;

/// Waits for SIGTERM or SIGINT, then cancels `token`. Returns early if `token` is cancelled
/// for another reason (e.g. the model failed to load).
pub async fn on_signal(token: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received, draining in-flight requests"),
        () = terminate => tracing::info!("SIGTERM received, draining in-flight requests"),
        () = token.cancelled() => return,
    }
    token.cancel();
}
