//! Observability of the inference server: Prometheus metrics of the request path, prediction
//! statistics, per-feature drift histograms against a training baseline, label feedback
//! with rolling accuracy/precision/recall/F1, and the same counts over a sliding time window
//! ([`window`]) that the controller sums over pods to test for drift.
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
//!
//! # Metric families
//!
//! Every series carries `model` and `model_version`. Names as on the Prometheus text page:
//!
//! | family | type | labels | meaning |
//! |---|---|---|---|
//! | `modelpilot_inference_requests_total` | counter | `endpoint`, `code` | requests served |
//! | `modelpilot_inference_request_duration_seconds` | histogram | `endpoint` | receipt to response |
//! | `modelpilot_inference_queue_duration_seconds` | histogram | `endpoint` | wait for a session / batch |
//! | `modelpilot_inference_compute_duration_seconds` | histogram | `endpoint` | ONNX Runtime run |
//! | `modelpilot_inference_inflight_requests` | gauge | | requests being served |
//! | `modelpilot_inference_inflight_seconds_total` | counter | | request-seconds in flight: its rate is the mean concurrency (autoscaling) |
//! | `modelpilot_inference_batch_requests`, `_batch_rows` | histogram | | per ONNX Runtime run |
//! | `modelpilot_model_load_duration_seconds` | gauge | | fetch + load time |
//! | `modelpilot_model_ready` | gauge | | 1 once serving |
//! | `modelpilot_predictions_total` | counter | `output`, `class` | predicted rows per class (capped, rest `__other__`) |
//! | `modelpilot_prediction_value` | histogram | `output` | regression outputs |
//! | `modelpilot_feature_value` | histogram | `feature` | live inputs, baseline bins |
//! | `modelpilot_feature_drift_psi` | gauge | `feature` | PSI of live inputs vs baseline |
//! | `modelpilot_feature_baseline_mean`, `_std` | gauge | `feature` | training-time statistics |
//! | `modelpilot_feature_baseline_proportion` | gauge | `feature`, `upper_bound` | training-time share of the bin ending at `upper_bound` (the bucket's `le`; not cumulative) |
//! | `modelpilot_drift_window_seconds` | gauge | | length of the sliding window (`--drift-window-seconds`) |
//! | `modelpilot_drift_window_bin` | gauge | `feature`, `bin` | numeric inputs of the window per bin index `0`…`k` (every bin, zeros included) |
//! | `modelpilot_drift_window_category` | gauge | `feature`, `category` | categorical inputs of the window per profile category, plus `__other__` |
//! | `modelpilot_prediction_window_bin` | gauge | `bin` | regression outputs of the window per bin |
//! | `modelpilot_prediction_window_class` | gauge | `class` | predicted rows of the window per class (profile's classes and `__other__`, else capped) |
//! | `modelpilot_feedback_window_pairs` | gauge | `actual`, `predicted` | rows labelled in the window (non-zero pairs, labels capped) |
//! | `modelpilot_feedback_accuracy`, `_precision`, `_recall`, `_f1` | gauge | | over the labelled window |
//! | `modelpilot_feedback_window_rows`, `_window_capacity_rows` | gauge | | window fill and size |
//! | `modelpilot_feedback_pending_requests` | gauge | | predictions awaiting labels |
//! | `modelpilot_feedback_rows_total`, `_unmatched_total`, `_evicted_total` | counter | | feedback flow |
//! | `modelpilot_feedback_labels_total` | counter | `label`, `predicted` | labelled rows by true and predicted label (capped, rest `__other__`) |

pub mod categorical;
pub mod confusion;
pub mod drift;
pub mod exposition;
pub mod feedback;
mod feedback_metrics;
pub mod inflight;
pub mod metrics;
pub mod predictions;
pub mod profile;
pub mod scores;
pub mod values;
pub mod window;
pub mod window_metrics;

pub use exposition::Format;
pub use feedback::{FeedbackConfig, FeedbackError, FeedbackSummary};
pub use inflight::InflightGuard;
pub use metrics::{ServeMetrics, ServeMetricsConfig};
pub use profile::{BaselineProfile, ProfileError};
pub use scores::{Average, Scores};
