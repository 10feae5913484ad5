//! `/healthz`, `/readyz` and `/metrics` of the operator.
//!
//! `/healthz` answers while the process runs; `/readyz` once the API server answered and the CRD
//! is installed (a follower waiting for the lease is ready: it can take over at once).

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};

use crate::telemetry::metrics::ControllerMetrics;

/// Readiness flag shared with the HTTP handlers.
#[derive(Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    /// Mark the process ready.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: ControllerMetrics,
}

/// Serve until the process exits.
pub async fn serve(listener: tokio::net::TcpListener, health: Health, metrics: ControllerMetrics) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_page))
        .with_state(AppState { health, metrics });
    if let Err(err) = axum::serve(listener, app).await {
        tracing::error!("metrics server: {err}");
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.health.0.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "waiting for the API server",
        )
    }
}

async fn metrics_page(State(state): State<AppState>) -> impl IntoResponse {
    match state.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                axum::http::header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding metrics failed").into_response(),
    }
}
