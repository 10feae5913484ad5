//! [`ServeMetrics`]: the one handle the request path and the routes use to record what the
//! server does (requests, latency split into queue and compute, batching, readiness), what
//! the model sees and predicts (drift histograms, class counts) and how right it was
//! (label feedback), and to render all of it as a Prometheus/OpenMetrics page.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

use super::{
    drift::{DEFAULT_EDGES, DriftObserver},
    exposition::{Format, to_prometheus_text},
    feedback::{FeedbackConfig, FeedbackError, FeedbackSummary, FeedbackTracker, parse_feedback},
    feedback_metrics::FeedbackCollector,
    inflight::{Inflight, InflightGuard},
    predictions::PredictionStats,
    profile::{BaselineProfile, Bins, Kind},
    scores::Average,
    values,
    window::Window,
    window_metrics::{LiveWindow, WindowCollector},
};
use crate::serve::tensor::NamedTensor;

/// Latency buckets in seconds: 50 µs (a tiny model in process) up to 10 s.
const LATENCY_BUCKETS: [f64; 17] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0,
];

/// Batch size buckets (requests or rows per ONNX Runtime run).
const BATCH_BUCKETS: [f64; 12] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// Default length of the sliding window (`--drift-window-seconds`).
pub const DEFAULT_DRIFT_WINDOW: Duration = Duration::from_secs(300);

/// What [`ServeMetrics::new`] needs.
#[derive(Clone, Debug)]
pub struct ServeMetricsConfig {
    pub model_name: String,
    pub model_version: String,
    /// Training-time baseline: drift bins, regression bins, positive class.
    pub profile: Option<BaselineProfile>,
    /// Sizes of the label feedback tracker. When the profile names a `positive_label` and
    /// `feedback.average` is [`Average::Macro`], the binary scores of that class are used.
    pub feedback: FeedbackConfig,
    /// Most distinct predicted-class series exported (and most distinct labels of the
    /// feedback confusion counters).
    pub max_classes: usize,
    /// Feed the drift histograms from every n-th request only (1 = every request).
    pub drift_sample_every: u64,
    /// Length of the sliding window of the `*_window_*` counts.
    pub drift_window: Duration,
}

impl ServeMetricsConfig {
    /// Defaults for a model: no profile, 10 000 pending requests, a 1 000-row window,
    /// 64 classes, drift from every request, a 300 s sliding window.
    pub fn new(model_name: impl Into<String>, model_version: impl Into<String>) -> Self {
        Self {
            model_name: model_name.into(),
            model_version: model_version.into(),
            profile: None,
            feedback: FeedbackConfig::default(),
            max_classes: 64,
            drift_sample_every: 1,
            drift_window: DEFAULT_DRIFT_WINDOW,
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

fn latency_family() -> Family<EndpointLabels, Histogram> {
    Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS))
}

fn batch_histogram() -> Histogram {
    Histogram::new(BATCH_BUCKETS)
}

#[derive(Debug)]
struct Inner {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    total: Family<EndpointLabels, Histogram>,
    queue: Family<EndpointLabels, Histogram>,
    compute: Family<EndpointLabels, Histogram>,
    inflight: Inflight,
    batch_requests: Histogram,
    batch_rows: Histogram,
    load_seconds: Gauge<f64, AtomicU64>,
    ready: Gauge,
    predictions: PredictionStats,
    drift: Arc<DriftObserver>,
    drift_seen: AtomicU64,
    drift_sample_every: u64,
    feedback: Arc<Mutex<FeedbackTracker>>,
    window: Arc<LiveWindow>,
    /// Bin edges of regression outputs in the window (the profile's, else the defaults).
    prediction_edges: Vec<f64>,
}

/// Metrics, prediction statistics, drift histograms and label feedback of one served model.
/// Cheap to clone (an `Arc` inside); every method takes `&self` and is safe across threads.
#[derive(Clone, Debug)]
pub struct ServeMetrics {
    inner: Arc<Inner>,
}

impl ServeMetrics {
    /// Builds the registry. Every series carries the labels `model` and `model_version`.
    pub fn new(config: ServeMetricsConfig) -> Self {
        let labels = [
            ("model".into(), config.model_name.clone().into()),
            ("model_version".into(), config.model_version.clone().into()),
        ];
        let mut registry = Registry::with_prefix_and_labels("modelpilot", labels.into_iter());
        let profile = config.profile.as_ref();
        let mut feedback_config = config.feedback.clone();
        if let (Average::Macro, Some(positive)) = (
            &feedback_config.average,
            profile.and_then(|p| p.positive_label.clone()),
        ) {
            feedback_config.average = Average::Binary { positive };
        }
        let inner = Inner {
            registry: Registry::default(),
            requests: Family::default(),
            total: latency_family(),
            queue: latency_family(),
            compute: latency_family(),
            inflight: Inflight::default(),
            batch_requests: batch_histogram(),
            batch_rows: batch_histogram(),
            load_seconds: Gauge::default(),
            ready: Gauge::default(),
            predictions: PredictionStats::new(
                config.max_classes,
                profile.and_then(|p| p.prediction.as_ref()),
            ),
            drift: Arc::new(DriftObserver::new(profile)),
            drift_seen: AtomicU64::new(0),
            drift_sample_every: config.drift_sample_every.max(1),
            feedback: Arc::new(Mutex::new(
                FeedbackTracker::new(feedback_config).with_max_labels(config.max_classes),
            )),
            window: Arc::new(LiveWindow::new(window(&config))),
            prediction_edges: numeric_prediction(profile)
                .map_or_else(|| DEFAULT_EDGES.to_vec(), |b| b.edges.clone()),
        };
        register_all(&mut registry, &inner);
        let inner = Inner { registry, ..inner };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Marks one request in flight; the gauge goes down when the guard is dropped, and the
    /// time in between adds to `modelpilot_inference_inflight_seconds_total`.
    pub fn inflight_guard(&self) -> InflightGuard {
        self.inner.inflight.guard()
    }

    /// Records a finished request. `endpoint` is a fixed route name (e.g. `"infer"`), never
    /// client input; `queue` is the wait for a batch slot, `compute` the ONNX Runtime run
    /// (pass `Duration::ZERO` for both on endpoints that do not run the model).
    pub fn observe_request(
        &self,
        endpoint: &'static str,
        code: u16,
        total: Duration,
        queue: Duration,
        compute: Duration,
    ) {
        let inner = &self.inner;
        inner
            .requests
            .get_or_create(&RequestLabels { endpoint, code })
            .inc();
        let labels = EndpointLabels { endpoint };
        inner
            .total
            .get_or_create(&labels)
            .observe(total.as_secs_f64());
        if !queue.is_zero() || !compute.is_zero() {
            inner
                .queue
                .get_or_create(&labels)
                .observe(queue.as_secs_f64());
            inner
                .compute
                .get_or_create(&labels)
                .observe(compute.as_secs_f64());
        }
    }

    /// Records one ONNX Runtime run over `requests` merged requests holding `rows` rows.
    pub fn observe_batch(&self, requests: usize, rows: usize) {
        self.inner.batch_requests.observe(requests as f64);
        self.inner.batch_rows.observe(rows as f64);
    }

    /// Sets how long fetching and loading the model took.
    pub fn set_model_load_seconds(&self, seconds: f64) {
        self.inner.load_seconds.set(seconds);
    }

    /// Sets the readiness gauge (1 once the model can serve).
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.set(i64::from(ready));
    }

    /// Feeds the drift histograms and the sliding window with a validated request's input
    /// tensors (every `drift_sample_every`-th request).
    pub fn observe_inputs(&self, inputs: &[NamedTensor]) {
        let inner = &self.inner;
        let n = inner.drift_seen.fetch_add(1, Ordering::Relaxed);
        if n.is_multiple_of(inner.drift_sample_every) {
            let counts = inner.drift.observe(inputs);
            inner.window.with(|w, now| w.add_features(now, &counts));
        }
    }

    /// Counts a successful response's predictions (since start and in the window) and, when
    /// the client sent a request `id`, remembers the predicted labels so label feedback can
    /// be matched to them later.
    pub fn observe_outputs(&self, id: Option<&str>, outputs: &[NamedTensor]) {
        let labels = self.inner.predictions.observe(outputs);
        match &labels {
            Some(labels) => {
                let counts = count_labels(labels);
                self.inner.window.with(|w, now| w.add_classes(now, &counts));
            }
            None => {
                if let Some(bins) = regression_bins(outputs, &self.inner.prediction_edges) {
                    let add = |w: &mut Window, now| w.add_prediction_bins(now, &bins);
                    self.inner.window.with(add);
                }
            }
        }
        if let (Some(id), Some(labels)) = (id, labels) {
            self.tracker().record(id, labels);
        }
    }

    /// Applies a `POST /v2/models/{name}/feedback` body. Map errors with
    /// [`FeedbackError::status_code`] (404 unknown id, 400 malformed).
    pub fn apply_feedback(&self, body: &[u8]) -> Result<FeedbackSummary, FeedbackError> {
        let items = parse_feedback(body)?;
        let (summary, pairs) = self.tracker().apply_labelled(&items)?;
        let pairs = pairs.iter().map(|(a, p)| (a.as_str(), p.as_str()));
        self.inner.window.with(|w, now| w.add_pairs(now, pairs));
        Ok(summary)
    }

    /// The metrics page in OpenMetrics text.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut page = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut page, &self.inner.registry)?;
        Ok(page)
    }

    /// The `GET /metrics` response for a request's `Accept` header: `(Content-Type, body)`,
    /// OpenMetrics when asked for, Prometheus text (what `promtool` and curl read) otherwise.
    pub fn render(&self, accept: Option<&str>) -> Result<(&'static str, String), std::fmt::Error> {
        let format = Format::negotiate(accept);
        let page = self.encode()?;
        let body = match format {
            Format::OpenMetrics => page,
            Format::PrometheusText => to_prometheus_text(&page),
        };
        Ok((format.content_type(), body))
    }

    /// The drift observer (bin counts per feature, for tests and diagnostics).
    pub fn drift(&self) -> &DriftObserver {
        &self.inner.drift
    }

    /// The prediction statistics (class counts, for tests and diagnostics).
    pub fn predictions(&self) -> &PredictionStats {
        &self.inner.predictions
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, FeedbackTracker> {
        self.inner
            .feedback
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// The profile's prediction when it is binned (a regression output).
fn numeric_prediction(profile: Option<&BaselineProfile>) -> Option<&Bins> {
    let bins = profile?.prediction.as_ref()?;
    (bins.kind == Kind::Numeric).then_some(bins)
}

/// The sliding window for `config`: its length, label cap, and what the profile fixes in
/// advance (the regression bins of its prediction, or its classes and `__other__`).
fn window(config: &ServeMetricsConfig) -> Window {
    let window = Window::new(config.drift_window, config.max_classes);
    let prediction = config.profile.as_ref().and_then(|p| p.prediction.as_ref());
    let Some(bins) = prediction else {
        return window;
    };
    match bins.category_counts() {
        Some(classes) => window.with_fixed_classes(classes.map(|(c, _)| c.to_string())),
        None => window.with_prediction_bins(bins.edges.len() + 1),
    }
}

/// Rows per distinct label, in order of first appearance.
fn count_labels(labels: &[String]) -> Vec<(&str, u64)> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for label in labels {
        let i = *index.entry(label.as_str()).or_insert_with(|| {
            counts.push((label.as_str(), 0));
            counts.len() - 1
        });
        counts[i].1 += 1;
    }
    counts
}

/// Per-bin counts of the first regression output (NaN skipped), binned by `edges`.
fn regression_bins(outputs: &[NamedTensor], edges: &[f64]) -> Option<Vec<u64>> {
    let output = outputs.iter().find(|t| values::is_regression(t))?;
    let mut bins = vec![0u64; edges.len() + 1];
    for i in 0..output.data.len() {
        let Some(v) = values::number(&output.data, i).filter(|v| !v.is_nan()) else {
            continue;
        };
        if let Some(n) = bins.get_mut(crate::drift::bin_index(edges, v)) {
            *n += 1;
        }
    }
    Some(bins)
}

fn register_all(registry: &mut Registry, inner: &Inner) {
    registry.register(
        "inference_requests",
        "Requests served, by endpoint and HTTP status code",
        inner.requests.clone(),
    );
    let durations = [
        (
            "inference_request_duration",
            "Request latency, receipt to response",
            &inner.total,
        ),
        (
            "inference_queue_duration",
            "Time waiting for a batch or session slot",
            &inner.queue,
        ),
        (
            "inference_compute_duration",
            "Time in the ONNX Runtime run",
            &inner.compute,
        ),
    ];
    for (name, help, family) in durations {
        registry.register_with_unit(name, help, Unit::Seconds, family.clone());
    }
    registry.register(
        "inference_inflight_requests",
        "Requests being served now",
        inner.inflight.gauge(),
    );
    registry.register_with_unit(
        "inference_inflight",
        "Request-seconds in flight (its rate is the mean number of requests in flight)",
        Unit::Seconds,
        inner.inflight.seconds(),
    );
    registry.register(
        "inference_batch_requests",
        "Requests merged into one ONNX Runtime run",
        inner.batch_requests.clone(),
    );
    registry.register(
        "inference_batch_rows",
        "Rows (first dimension) in one ONNX Runtime run",
        inner.batch_rows.clone(),
    );
    registry.register_with_unit(
        "model_load_duration",
        "Time to fetch and load the model",
        Unit::Seconds,
        inner.load_seconds.clone(),
    );
    registry.register(
        "model_ready",
        "1 when the model is loaded and serving",
        inner.ready.clone(),
    );
    inner.predictions.register(registry);
    registry.register_collector(Box::new(inner.drift.clone()));
    registry.register_collector(Box::new(FeedbackCollector::new(inner.feedback.clone())));
    let window = WindowCollector::new(inner.window.clone(), inner.drift.clone());
    registry.register_collector(Box::new(window));
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
