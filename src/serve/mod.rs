//! The inference server (`modelpilot serve`): fetches one ONNX model, loads it into ONNX
//! Runtime and serves it over the Open Inference Protocol v2 (REST, with the binary tensor
//! extension), with optional dynamic batching, Prometheus metrics and label feedback.
//!
//! The HTTP listener starts first so liveness answers at once; readiness turns true only
//! after the model is downloaded, verified, loaded and warmed up.

pub mod batching;
pub mod binary;
pub mod config;
pub mod http;
pub mod identity;
pub mod json_data;
pub mod model;
pub mod observe;
pub mod ort_values;
pub mod protocol;
pub mod shutdown;
pub mod signature;
pub mod source;
pub mod tensor;
pub mod termination;
pub mod validate;

use std::{
    sync::{Arc, OnceLock, atomic::AtomicBool, atomic::Ordering},
    time::{Duration, Instant},
};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

pub use self::config::ServeArgs;
use self::{
    batching::Batcher,
    http::{AppState, Served},
    model::Model,
    observe::{BaselineProfile, ServeMetrics, ServeMetricsConfig},
};

/// Entry point of `modelpilot serve`. A fatal error is also written to the termination
/// message file, where Kubernetes (and so the operator) finds it.
pub fn main(args: ServeArgs) -> anyhow::Result<()> {
    crate::telemetry::init_logging(args.log_format, &args.log_level);
    let termination = termination::Target::for_path(&args.termination_message_path);
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("serve-io")
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(serve(args)));
    if let Err(err) = &result {
        termination.write(err);
    }
    result
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let name = args.model_name();
    let mut metrics_config = ServeMetricsConfig::new(&name, &args.model_version);
    metrics_config.drift_window = args.drift_window();
    let profile_to_check = load_profile(&args).await?;
    metrics_config.profile = profile_to_check.clone();
    let state = Arc::new(AppState {
        model_name: name,
        model_version: args.model_version.clone(),
        max_body_bytes: args.max_body_bytes,
        ready: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        served: OnceLock::new(),
        metrics: ServeMetrics::new(metrics_config),
        identity: identity::Identity::new(args.pod_name.as_deref(), args.revision.as_deref()),
        profile: profile_to_check.clone(),
    });
    let addr = (args.http_host, args.http_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {}:{}", addr.0, addr.1))?;
    tracing::info!(addr = %listener.local_addr()?, model = %state.model_name, "listening");

    let token = CancellationToken::new();
    tokio::spawn(shutdown::on_signal(token.clone()));
    let loader = tokio::spawn(load(
        args.clone(),
        profile_to_check,
        Arc::clone(&state),
        token.clone(),
    ));
    let drain_delay = Duration::from_millis(args.drain_delay_ms);
    let server = axum::serve(listener, http::router(Arc::clone(&state))).with_graceful_shutdown(
        not_ready_on_cancel(Arc::clone(&state), token.clone(), drain_delay),
    );
    let drain_limit = Duration::from_secs(args.shutdown_timeout_secs) + drain_delay;
    tokio::select! {
        result = server => result.context("HTTP server failed")?,
        () = async { token.cancelled().await; tokio::time::sleep(drain_limit).await } => {
            tracing::warn!("in-flight requests did not finish within {drain_limit:?}; exiting");
        }
    }
    if let Some(served) = state.served.get() {
        served.model.close();
    }
    if loader.is_finished() {
        loader.await.context("model loader failed")??;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Resolves when the listener should close: on shutdown the server is marked not ready at once,
/// and a server that was serving keeps accepting for `drain_delay` more (new connections still
/// arrive until every endpoint watcher has seen the pod go).
async fn not_ready_on_cancel(
    state: Arc<AppState>,
    token: CancellationToken,
    drain_delay: Duration,
) {
    token.cancelled().await;
    let was_draining = state.draining.swap(true, Ordering::AcqRel);
    state.metrics.set_ready(false);
    let serving = state.ready.load(Ordering::Acquire);
    if serving && !was_draining && !drain_delay.is_zero() {
        tracing::info!(
            ?drain_delay,
            "not ready; still serving while endpoints catch up"
        );
        tokio::time::sleep(drain_delay).await;
    }
}

/// Fetches, verifies, loads and warms up the model, then marks the server ready. On failure
/// the server shuts down and the error becomes the process's exit message.
async fn load(
    args: ServeArgs,
    profile: Option<BaselineProfile>,
    state: Arc<AppState>,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let result = load_model(&args, profile.as_ref(), &state).await;
    if let Err(err) = &result {
        tracing::error!("{err:#}");
        token.cancel();
    }
    result
}

async fn load_model(
    args: &ServeArgs,
    profile: Option<&BaselineProfile>,
    state: &AppState,
) -> anyhow::Result<()> {
    let start = Instant::now();
    let session_config = args.session_config();
    let workers = session_config.workers;
    let model = fetch_and_load(
        &ModelFile {
            uri: &args.model_uri,
            sha256: args.sha256.as_deref(),
            limits: args.source_limits(),
        },
        session_config,
        (&state.model_name, &state.model_version),
        true,
    )
    .await?;
    if let Some(profile) = profile {
        check_profile(profile, &model.info)?;
    }
    let model = Arc::new(model);
    let batcher = match args.batch_config() {
        Some(config) if model.info.batchable() => {
            let metrics = state.metrics.clone();
            let observe = Arc::new(move |requests, rows| metrics.observe_batch(requests, rows));
            Some(Batcher::spawn(Arc::clone(&model), config, observe))
        }
        Some(_) => {
            tracing::warn!(
                "--batching ignored: not every input and output has a dynamic first dimension"
            );
            None
        }
        None => None,
    };
    let batching = batcher.is_some();
    if state.served.set(Served { model, batcher }).is_err() {
        anyhow::bail!("model loaded twice");
    }
    let elapsed = start.elapsed();
    state.metrics.set_model_load_seconds(elapsed.as_secs_f64());
    state.metrics.set_ready(true);
    state.ready.store(true, Ordering::Release);
    tracing::info!(
        elapsed_ms = elapsed.as_millis() as u64,
        workers,
        batching,
        "model ready"
    );
    Ok(())
}

/// Where a model file comes from: the `--model-uri`, `--sha256` and download flags.
#[derive(Clone, Debug)]
pub struct ModelFile<'a> {
    pub uri: &'a str,
    pub sha256: Option<&'a str>,
    pub limits: source::SourceLimits,
}

/// Fetches the model file (download into the cache, SHA-256 check) and loads it into ONNX
/// Runtime on a blocking thread, then runs the warm-up when `warm_up` is set. The one path by
/// which `serve` and `signature` read a model, so both accept and refuse the same files.
pub async fn fetch_and_load(
    file: &ModelFile<'_>,
    session_config: model::SessionConfig,
    (name, version): (&str, &str),
    warm_up: bool,
) -> anyhow::Result<Model> {
    let path = source::fetch(file.uri, file.sha256, &file.limits).await?;
    let (name, version) = (name.to_owned(), version.to_owned());
    tokio::task::spawn_blocking(move || -> anyhow::Result<Model> {
        let env = model::init_runtime()?;
        let model = Model::load(&env, &path, &name, &version, &session_config)?;
        if warm_up {
            model.warm_up()?;
        }
        Ok(model)
    })
    .await
    .context("model loading task failed")?
}

/// Fetches (like the model: path, file://, https:// or s3://, cached, size-limited, optionally
/// SHA-256 checked) and parses the `--baseline-profile`. It happens before the listener opens,
/// because every metric family is shaped by it; an unreadable or invalid profile ends the
/// start with the error (and the termination message), as a model that cannot be fetched
/// does: a model is never served with figures against the wrong baseline.
async fn load_profile(args: &ServeArgs) -> anyhow::Result<Option<BaselineProfile>> {
    let Some(uri) = &args.baseline_profile else {
        return Ok(None);
    };
    let sha256 = args.baseline_profile_sha256.as_deref();
    let path = source::fetch_artifact(
        source::Artifact::Profile,
        uri,
        sha256,
        &args.profile_limits(),
    )
    .await
    .with_context(|| format!("baseline profile {uri}"))?;
    let profile =
        BaselineProfile::load(&path).with_context(|| format!("baseline profile {uri}"))?;
    tracing::info!(
        uri,
        features = profile.features.len(),
        "baseline profile loaded"
    );
    Ok(Some(profile))
}

/// Fail start-up, before readiness, when the baseline profile names inputs or columns the
/// model does not have: drift figures against the wrong column would be silently wrong.
fn check_profile(profile: &BaselineProfile, info: &model::ModelInfo) -> anyhow::Result<()> {
    let inputs: Vec<(&str, Option<usize>)> = info
        .inputs
        .iter()
        .map(|t| {
            let last = t.shape.last().and_then(|&d| usize::try_from(d).ok());
            (t.name.as_str(), last)
        })
        .collect();
    profile
        .check_inputs(&inputs)
        .context("the baseline profile does not match the model")
}
