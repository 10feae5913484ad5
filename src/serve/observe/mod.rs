//! Observability of the inference server: Prometheus metrics of the request path, prediction
//! statistics, per-feature drift histograms against a training baseline, and label feedback
//! with rolling accuracy/precision/recall/F1.
//!
//! The request path holds one [`ServeMetrics`] (cheap to clone) and calls, per request:
//!
//! ```no_run
//! # use std::time::{Duration, Instant};
//! # use modelpilot::serve::observe::{ServeMetrics, ServeMetricsConfig};
//! # let (inputs, outputs) = (Vec::new(), Vec::new());
//! let metrics = ServeMetrics::new(ServeMetricsConfig::new("iris", "1"));
//! let start = Instant::now();
//! let _inflight = metrics.inflight_guard();
//! metrics.observe_inputs(&inputs); // validated request tensors
//! // … queue, batch (metrics.observe_batch(requests, rows)), run …
//! metrics.observe_outputs(Some("request-id"), &outputs);
//! metrics.observe_request("infer", 200, start.elapsed(), Duration::ZERO, Duration::ZERO);
//! // GET /metrics: pass the request's Accept header, answer with this Content-Type and body.
//! let (content_type, body) = metrics.render(Some("*/*")).unwrap();
//! ```
//!
//! and `POST /v2/models/{name}/feedback` hands its body to [`ServeMetrics::apply_feedback`].

pub mod drift;
pub mod exposition;
pub mod feedback;
mod feedback_metrics;
pub mod metrics;
pub mod predictions;
pub mod profile;
pub mod scores;
pub mod values;

pub use exposition::Format;
pub use feedback::{FeedbackConfig, FeedbackError, FeedbackSummary};
pub use metrics::{InflightGuard, ServeMetrics, ServeMetricsConfig};
pub use profile::{BaselineProfile, ProfileError};
pub use scores::{Average, Scores};
