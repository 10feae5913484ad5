//! Flags of `modelpilot serve`. Every flag can also be set through a `MODELPILOT_*`
//! environment variable, which is how the operator configures inference pods.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use ort::session::builder::GraphOptimizationLevel;

use super::{batching::BatchConfig, model::SessionConfig, source::SourceLimits};

/// ONNX Runtime graph optimisation level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum OptimizationLevel {
    Disable,
    Basic,
    Extended,
    All,
}

impl From<OptimizationLevel> for GraphOptimizationLevel {
    fn from(level: OptimizationLevel) -> Self {
        match level {
            OptimizationLevel::Disable => GraphOptimizationLevel::Disable,
            OptimizationLevel::Basic => GraphOptimizationLevel::Level1,
            OptimizationLevel::Extended => GraphOptimizationLevel::Level2,
            OptimizationLevel::All => GraphOptimizationLevel::All,
        }
    }
}

/// Flags of `modelpilot serve`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Where the ONNX model is: a local path, file://, https:// or s3://bucket/key.
    #[arg(long, env = "MODELPILOT_MODEL_URI")]
    pub model_uri: String,
    /// Name the model is served under (default: the file name without extension).
    #[arg(long, env = "MODELPILOT_MODEL_NAME")]
    pub model_name: Option<String>,
    /// Version reported in metadata and accepted in `/versions/{v}` routes.
    #[arg(long, env = "MODELPILOT_MODEL_VERSION", default_value = "1")]
    pub model_version: String,
    /// Expected SHA-256 of the model file (hex); loading fails on a mismatch.
    #[arg(long, env = "MODELPILOT_SHA256")]
    pub sha256: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "MODELPILOT_HTTP_HOST", default_value = "0.0.0.0")]
    pub http_host: IpAddr,
    /// HTTP port.
    #[arg(long, env = "MODELPILOT_HTTP_PORT", default_value_t = 8080)]
    pub http_port: u16,
    /// CPU thread budget for inference (default: all CPUs).
    #[arg(long, env = "MODELPILOT_THREADS")]
    pub threads: Option<usize>,
    /// Sessions run concurrently (default: 1 per thread); threads are split between them.
    #[arg(long, env = "MODELPILOT_WORKERS")]
    pub workers: Option<usize>,
    /// ONNX Runtime graph optimisation level.
    #[arg(
        long,
        env = "MODELPILOT_GRAPH_OPTIMIZATION_LEVEL",
        value_enum,
        default_value = "all"
    )]
    pub graph_optimization_level: OptimizationLevel,
    /// Largest request body accepted (bytes).
    #[arg(long, env = "MODELPILOT_MAX_BODY_BYTES", default_value_t = 64 << 20)]
    pub max_body_bytes: usize,
    /// Where and how the model is downloaded.
    #[command(flatten)]
    pub download: DownloadArgs,
    /// Merge concurrent requests into batches along dimension 0.
    #[arg(long, env = "MODELPILOT_BATCHING", default_value_t = false)]
    pub batching: bool,
    /// Most rows in one batch.
    #[arg(long, env = "MODELPILOT_MAX_BATCH_SIZE", default_value_t = 64)]
    pub max_batch_size: usize,
    /// Longest a request waits for a batch to fill (milliseconds). 0: a batch is whatever
    /// queued while every session was busy, with no added latency.
    #[arg(long, env = "MODELPILOT_MAX_QUEUE_DELAY_MS", default_value_t = 0)]
    pub max_queue_delay_ms: u64,
    /// Training-time baseline profile (JSON) for drift statistics: a local path, file://,
    /// https:// or s3://bucket/key, fetched like the model (at most 8 MiB); the server does
    /// not start when it cannot be read or does not fit the model.
    #[arg(long, env = "MODELPILOT_BASELINE_PROFILE")]
    pub baseline_profile: Option<String>,
    /// Expected SHA-256 of the baseline profile (hex); the start fails on a mismatch.
    #[arg(long, env = "MODELPILOT_BASELINE_PROFILE_SHA256")]
    pub baseline_profile_sha256: Option<String>,
    /// Length of the sliding window of the `*_window_*` metrics (input bins and categories,
    /// predictions, labelled pairs), in seconds (at least 10).
    #[arg(
        long,
        env = "MODELPILOT_DRIFT_WINDOW_SECONDS",
        default_value_t = 300,
        value_parser = clap::value_parser!(u64).range(10..)
    )]
    pub drift_window_seconds: u64,
    /// Milliseconds the server keeps accepting requests after SIGTERM (while reporting not
    /// ready) before it stops listening: time for the endpoints and kube-proxy to stop sending
    /// new connections to a pod that is going away.
    #[arg(long, env = "MODELPILOT_DRAIN_DELAY_MS", default_value_t = 0)]
    pub drain_delay_ms: u64,
    /// Seconds to wait for in-flight requests after SIGTERM before exiting anyway.
    #[arg(long, env = "MODELPILOT_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
    /// File that receives the fatal start-up error, for the pod's termination message (the
    /// default path is written only when it exists, as it does in a pod).
    #[arg(
        long,
        env = "MODELPILOT_TERMINATION_MESSAGE_PATH",
        default_value = super::termination::DEFAULT_PATH
    )]
    pub termination_message_path: PathBuf,
    /// Name of this pod, sent back in the `x-modelpilot-pod` response header.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Revision this pod runs, sent back in the `x-modelpilot-revision` response header.
    #[arg(long, env = "MODELPILOT_REVISION")]
    pub revision: Option<String>,
    /// Log format: `text` for people, `json` for log pipelines.
    #[arg(long, env = "MODELPILOT_LOG_FORMAT", value_enum, default_value_t = crate::telemetry::LogFormat::Text)]
    pub log_format: crate::telemetry::LogFormat,
    /// Log level or filter directive (RUST_LOG wins when set).
    #[arg(long, env = "MODELPILOT_LOG_LEVEL", default_value = "info,ort=warn")]
    pub log_level: String,
}

impl ServeArgs {
    /// The model name: the flag, or the file name of the URI without its extension.
    pub fn model_name(&self) -> String {
        if let Some(name) = &self.model_name {
            return name.clone();
        }
        let last = self
            .model_uri
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("model");
        let stem = last.split('.').next().unwrap_or(last);
        if stem.is_empty() {
            "model".into()
        } else {
            stem.into()
        }
    }

    /// Session pool layout from the thread budget.
    pub fn session_config(&self) -> SessionConfig {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = self.threads.unwrap_or(cpus).max(1);
        let workers = self.workers.unwrap_or(threads).clamp(1, threads);
        SessionConfig {
            workers,
            intra_threads: (threads / workers).max(1),
            optimization: self.graph_optimization_level.into(),
        }
    }

    /// Batching limits, when batching is on.
    pub fn batch_config(&self) -> Option<BatchConfig> {
        self.batching.then(|| BatchConfig {
            max_batch_size: self.max_batch_size.max(1),
            max_delay: Duration::from_millis(self.max_queue_delay_ms),
        })
    }

    /// Download limits and cache location.
    pub fn source_limits(&self) -> SourceLimits {
        self.download.source_limits()
    }

    /// Download limits of the baseline profile: the model's, but at most
    /// [`MAX_PROFILE_BYTES`].
    pub fn profile_limits(&self) -> SourceLimits {
        let limits = self.download.source_limits();
        SourceLimits {
            max_bytes: limits.max_bytes.min(MAX_PROFILE_BYTES),
            ..limits
        }
    }

    /// The sliding window's length.
    pub fn drift_window(&self) -> Duration {
        Duration::from_secs(self.drift_window_seconds)
    }
}

/// Largest baseline profile read (a profile of 100 features × 100 bins is about 100 KiB).
pub const MAX_PROFILE_BYTES: u64 = 8 << 20;

/// The model download flags `modelpilot serve` and `modelpilot signature` share.
#[derive(clap::Args, Debug, Clone)]
pub struct DownloadArgs {
    /// Directory for downloaded models (default: $MODELPILOT_CACHE/models or ~/.cache/modelpilot/models).
    #[arg(long, env = "MODELPILOT_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Largest model file downloaded (bytes).
    #[arg(long, env = "MODELPILOT_MAX_MODEL_BYTES", default_value_t = 4 << 30)]
    pub max_model_bytes: u64,
    /// Timeout to connect when downloading the model (seconds).
    #[arg(long, env = "MODELPILOT_CONNECT_TIMEOUT_SECS", default_value_t = 10)]
    pub connect_timeout_secs: u64,
    /// Timeout for the whole model download (seconds).
    #[arg(long, env = "MODELPILOT_DOWNLOAD_TIMEOUT_SECS", default_value_t = 600)]
    pub download_timeout_secs: u64,
}

impl DownloadArgs {
    /// Download limits and cache location.
    pub fn source_limits(&self) -> SourceLimits {
        SourceLimits {
            cache_dir: self.cache_dir.clone().unwrap_or_else(default_cache_dir),
            max_bytes: self.max_model_bytes,
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            timeout: Duration::from_secs(self.download_timeout_secs),
        }
    }
}

/// Where downloaded models go without `--cache-dir`: `$MODELPILOT_CACHE/models`, else
/// `~/.cache/modelpilot/models`, else `models` in the temporary directory.
pub fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("MODELPILOT_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/modelpilot")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("models")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(args: &[&str]) -> ServeArgs {
        let argv = std::iter::once("serve").chain(args.iter().copied());
        Cli::try_parse_from(argv)
            .map(|c| c.args)
            .expect("valid flags")
    }

    #[test]
    fn model_names_from_uris() {
        let cases = [
            ("/models/iris.onnx", "iris"),
            ("s3://bucket/a/b/mlp.v2.onnx", "mlp"),
            ("https://host/m/", "m"),
            ("model.onnx", "model"),
        ];
        for (uri, want) in cases {
            assert_eq!(parse(&["--model-uri", uri]).model_name(), want, "{uri}");
        }
        assert_eq!(
            parse(&["--model-uri", "x.onnx", "--model-name", "n"]).model_name(),
            "n"
        );
    }

    #[test]
    fn thread_budget_is_split_between_workers() {
        let c = parse(&["--model-uri", "m", "--threads", "4", "--workers", "2"]).session_config();
        assert_eq!((c.workers, c.intra_threads), (2, 2));
        let c = parse(&["--model-uri", "m", "--threads", "2", "--workers", "8"]).session_config();
        assert_eq!((c.workers, c.intra_threads), (2, 1));
        let c = parse(&["--model-uri", "m", "--threads", "3", "--workers", "1"]).session_config();
        assert_eq!((c.workers, c.intra_threads), (1, 3));
    }

    #[test]
    fn profile_and_window_flags() {
        let args = parse(&["--model-uri", "m"]);
        assert_eq!(args.drift_window(), Duration::from_secs(300));
        assert_eq!(args.baseline_profile, None);
        assert_eq!(args.profile_limits().max_bytes, MAX_PROFILE_BYTES);
        let args = parse(&[
            "--model-uri",
            "m",
            "--baseline-profile",
            "s3://b/p.json",
            "--baseline-profile-sha256",
            "ab",
            "--drift-window-seconds",
            "10",
            "--max-model-bytes",
            "1000",
        ]);
        assert_eq!(args.baseline_profile.as_deref(), Some("s3://b/p.json"));
        assert_eq!(args.baseline_profile_sha256.as_deref(), Some("ab"));
        assert_eq!(args.drift_window(), Duration::from_secs(10));
        assert_eq!(args.profile_limits().max_bytes, 1000);
        let argv = ["serve", "--model-uri", "m", "--drift-window-seconds", "9"];
        assert!(Cli::try_parse_from(argv).is_err(), "below 10 s");
    }

    #[test]
    fn batching_flags() {
        assert!(parse(&["--model-uri", "m"]).batch_config().is_none());
        let b = parse(&[
            "--model-uri",
            "m",
            "--batching",
            "--max-batch-size",
            "8",
            "--max-queue-delay-ms",
            "5",
        ])
        .batch_config()
        .expect("batching on");
        assert_eq!(
            (b.max_batch_size, b.max_delay),
            (8, Duration::from_millis(5))
        );
    }
}
