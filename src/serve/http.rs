//! The HTTP surface: Open Inference Protocol v2 routes, `/metrics` and label feedback, with
//! every failure answered as `{"error": "…"}` and the status the protocol expects.

use std::{
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::json;

use super::{
    batching::Batcher,
    identity::Identity,
    model::{Computed, Model, RunError},
    observe::{ServeMetrics, profile::BaselineProfile},
    protocol::{self, HEADER_CONTENT_LENGTH, InferRequest, ResponseOutput, ServerMetadata},
    validate::{self, Prepared},
};

/// A loaded model and how requests reach it.
pub struct Served {
    pub model: Arc<Model>,
    pub batcher: Option<Batcher>,
}

/// State shared by all handlers.
pub struct AppState {
    pub model_name: String,
    pub model_version: String,
    pub max_body_bytes: usize,
    pub ready: AtomicBool,
    /// Set on shutdown: the readiness endpoints answer 503 (so the pod leaves the endpoints)
    /// while inference keeps being served until the listener closes.
    pub draining: AtomicBool,
    pub served: OnceLock<Served>,
    pub metrics: ServeMetrics,
    /// Headers naming this pod and revision, added to every response.
    pub identity: Identity,
    /// The baseline profile the drift windows are binned by (`--baseline-profile`), served at
    /// `/v2/models/<name>/profile` so the operator compares the windows with the same file.
    pub profile: Option<BaselineProfile>,
}

impl AppState {
    fn served(&self) -> Option<&Served> {
        self.ready
            .load(Ordering::Acquire)
            .then(|| self.served.get())
            .flatten()
    }

    /// Ready to be sent new work: serving and not shutting down.
    fn accepting(&self) -> bool {
        self.served().is_some() && !self.draining.load(Ordering::Acquire)
    }
}

/// An error answered as `{"error": message}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
    fn bad_request(message: impl ToString) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<RunError> for ApiError {
    fn from(err: RunError) -> ApiError {
        let status = match err {
            RunError::Invalid(_) => StatusCode::BAD_REQUEST,
            RunError::Closed => StatusCode::SERVICE_UNAVAILABLE,
            RunError::Runtime(_) | RunError::Output(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, err.to_string())
    }
}

type Shared = State<Arc<AppState>>;

/// All routes of the server; every response names the pod and revision (see [`Identity`]).
pub fn router(state: Arc<AppState>) -> Router {
    let identity = state.identity.clone();
    let stamp = move |response: Response| std::future::ready(identity.stamp(response));
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(live))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route(
            "/v2/models/{name}/versions/{version}",
            get(model_metadata_version),
        )
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready_version),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route(
            "/v2/models/{name}/versions/{version}/infer",
            post(infer_version),
        )
        .route("/v2/models/{name}/feedback", post(feedback))
        .route("/v2/models/{name}/profile", get(profile))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .layer(axum::middleware::map_response(stamp))
        .with_state(state)
}

async fn server_metadata() -> Json<ServerMetadata> {
    Json(ServerMetadata {
        name: "modelpilot",
        version: env!("CARGO_PKG_VERSION"),
        extensions: vec!["binary_tensor_data", "model_feedback", "metrics"],
    })
}

async fn live() -> Json<serde_json::Value> {
    Json(json!({ "live": true }))
}

async fn server_ready(State(state): Shared) -> Response {
    if state.accepting() {
        Json(json!({ "ready": true })).into_response()
    } else {
        not_ready(&state).into_response()
    }
}

fn not_ready(state: &AppState) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("model '{}' is not ready", state.model_name),
    )
}

/// Checks the path's model name and version; returns the served model when ready.
fn resolve<'s>(
    state: &'s AppState,
    name: &str,
    version: Option<&str>,
) -> Result<&'s Served, ApiError> {
    if name != state.model_name {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown model '{name}'"),
        ));
    }
    if let Some(v) = version
        && v != state.model_version
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "unknown version '{v}' of model '{name}' (serving version '{}')",
                state.model_version
            ),
        ));
    }
    state.served().ok_or_else(|| not_ready(state))
}

async fn model_metadata(State(state): Shared, Path(name): Path<String>) -> Response {
    metadata_response(&state, &name, None)
}

async fn model_metadata_version(
    State(state): Shared,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    metadata_response(&state, &name, Some(&version))
}

fn metadata_response(state: &AppState, name: &str, version: Option<&str>) -> Response {
    match resolve(state, name, version) {
        Ok(served) => Json(served.model.info.metadata()).into_response(),
        Err(e) => e.into_response(),
    }
}

/// The baseline profile this server bins live inputs by; 404 without one.
async fn profile(State(state): Shared, Path(name): Path<String>) -> Response {
    if name != state.model_name {
        return ApiError::new(StatusCode::NOT_FOUND, format!("unknown model {name:?}"))
            .into_response();
    }
    match &state.profile {
        Some(p) => Json(p).into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND, "this server has no baseline profile")
            .into_response(),
    }
}

async fn model_ready(State(state): Shared, Path(name): Path<String>) -> Response {
    ready_response(&state, &name, None)
}

async fn model_ready_version(
    State(state): Shared,
    Path((name, version)): Path<(String, String)>,
) -> Response {
    ready_response(&state, &name, Some(&version))
}

fn ready_response(state: &AppState, name: &str, version: Option<&str>) -> Response {
    match resolve(state, name, version) {
        Ok(_) if state.accepting() => Json(json!({ "name": name, "ready": true })).into_response(),
        Ok(_) => not_ready(state).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn infer(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_observed(state, name, None, headers, body).await
}

async fn infer_version(
    State(state): Shared,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    infer_observed(state, name, Some(version), headers, body).await
}

/// Runs an inference request and records its status and timings.
async fn infer_observed(
    state: Arc<AppState>,
    name: String,
    version: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let start = Instant::now();
    let _inflight = state.metrics.inflight_guard();
    let (response, timing) =
        match infer_inner(&state, &name, version.as_deref(), &headers, body).await {
            Ok((response, computed)) => (response, Some((computed.queue, computed.compute))),
            Err(err) => (err.into_response(), None),
        };
    let (queue, compute) = timing.unwrap_or((Duration::ZERO, Duration::ZERO));
    let code = response.status().as_u16();
    state
        .metrics
        .observe_request("infer", code, start.elapsed(), queue, compute);
    response
}

async fn infer_inner(
    state: &AppState,
    name: &str,
    version: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Response, Computed), ApiError> {
    let served = resolve(state, name, version)?;
    let header_len = binary_header(headers)?;
    let bytes = read_body(body, headers, state.max_body_bytes).await?;
    let mut request =
        protocol::decode_request(&bytes, header_len).map_err(ApiError::bad_request)?;
    drop(bytes);
    let prepared =
        validate::prepare(&served.model.info, &mut request).map_err(ApiError::bad_request)?;
    state.metrics.observe_inputs(&prepared.inputs);
    let computed = run(state, served, prepared).await?;
    state
        .metrics
        .observe_outputs(request.id.as_deref(), &computed.outputs);
    let response = encode(state, &request, &computed)?;
    Ok((response, computed))
}

async fn run(state: &AppState, served: &Served, prepared: Prepared) -> Result<Computed, RunError> {
    match (&served.batcher, prepared.rows) {
        (Some(batcher), Some(rows)) => batcher.submit(prepared, rows).await,
        _ => {
            state.metrics.observe_batch(1, prepared.rows.unwrap_or(1));
            served.model.run(prepared.inputs, prepared.outputs).await
        }
    }
}

fn binary_header(headers: &HeaderMap) -> Result<Option<usize>, ApiError> {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && encoding.as_bytes() != b"identity"
    {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Encoding {encoding:?} is not supported"),
        ));
    }
    headers
        .get(HEADER_CONTENT_LENGTH)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "Inference-Header-Content-Length must be a non-negative integer",
                    )
                })
        })
        .transpose()
}

async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds the limit of {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if err.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = err.source();
        }
        ApiError::bad_request(format!("cannot read request body: {e}"))
    })
}

fn encode(
    state: &AppState,
    request: &InferRequest,
    computed: &Computed,
) -> Result<Response, ApiError> {
    let outputs: Vec<ResponseOutput<'_>> = computed
        .outputs
        .iter()
        .map(|tensor| {
            let asked = request.outputs.iter().find(|o| o.name == tensor.name);
            ResponseOutput {
                tensor,
                binary: asked
                    .and_then(|o| o.binary)
                    .unwrap_or(request.binary_output),
                parameters: asked.and_then(|o| o.parameters.as_ref()),
            }
        })
        .collect();
    let encoded = protocol::encode_response(
        &state.model_name,
        &state.model_version,
        request.id.as_deref(),
        request.parameters.as_ref(),
        &outputs,
    )
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode response: {e}"),
        )
    })?;
    let mut response = Response::new(Body::from(encoded.body));
    let headers = response.headers_mut();
    match encoded.header_len {
        Some(len) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(HEADER_CONTENT_LENGTH, HeaderValue::from(len));
        }
        None => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    Ok(response)
}

async fn feedback(
    State(state): Shared,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let start = Instant::now();
    let response = match feedback_inner(&state, &name, &headers, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    let code = response.status().as_u16();
    state.metrics.observe_request(
        "feedback",
        code,
        start.elapsed(),
        Duration::ZERO,
        Duration::ZERO,
    );
    response
}

async fn feedback_inner(
    state: &AppState,
    name: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if name != state.model_name {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("unknown model '{name}'"),
        ));
    }
    let bytes = read_body(body, headers, state.max_body_bytes).await?;
    let summary = state.metrics.apply_feedback(&bytes).map_err(|e| {
        let status = StatusCode::from_u16(e.status_code()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError::new(status, e.to_string())
    })?;
    let scores = summary.scores.map(|s| {
        json!({ "rows": s.rows, "accuracy": s.accuracy, "precision": s.precision, "recall": s.recall, "f1": s.f1 })
    });
    Ok(Json(json!({ "accepted_rows": summary.accepted_rows, "scores": scores })).into_response())
}

async fn metrics(State(state): Shared, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    match state.metrics.render(accept) {
        Ok((content_type, body)) => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Err(e) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}"),
        )
        .into_response(),
    }
}
