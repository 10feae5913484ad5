//! Logging and metrics plumbing shared by the subcommands.
//!
//! Logs go through `tracing` to stderr, as text for people or JSON for log pipelines; the level
//! comes from `--log-level` or `RUST_LOG`. Operator metrics live in [`metrics`].

pub mod metrics;

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Output format of the logs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with span fields (e.g. the object being reconciled).
    Json,
}

/// Install the global subscriber. `level` is an `EnvFilter` directive such as `info` or
/// `modelpilot=debug,kube=info`; `RUST_LOG` wins when set. Calling it twice is harmless.
pub fn init_logging(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_ansi(false)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}
