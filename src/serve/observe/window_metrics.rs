//! The sliding window as the server holds it (one [`Window`] behind a mutex, on the real
//! clock) and as `/metrics` shows it: gauges of counts, every bin and category present (zeros
//! included) so the controller can sum them over pods without knowing which pod saw what.
//!
//! | family | labels | value |
//! |---|---|---|
//! | `modelpilot_drift_window_seconds` | | the window length |
//! | `modelpilot_drift_window_bin` | `feature`, `bin` (`0`…`k`) | numeric inputs per bin |
//! | `modelpilot_drift_window_category` | `feature`, `category` (profile's, `__other__`) | categorical inputs |
//! | `modelpilot_prediction_window_bin` | `bin` | regression outputs per bin |
//! | `modelpilot_prediction_window_class` | `class` | predicted rows per class |
//! | `modelpilot_feedback_window_pairs` | `actual`, `predicted` | rows labelled in the window |

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, gauge::ConstGauge},
};

use super::{
    confusion::escape_label_value,
    drift::{DriftObserver, Series},
    predictions::OTHER_CLASS,
    window::{Snapshot, Window},
};

/// A [`Window`] on the real clock, shared by the request path and the scrape.
#[derive(Debug)]
pub struct LiveWindow {
    origin: Instant,
    window: Mutex<Window>,
}

impl LiveWindow {
    pub fn new(window: Window) -> Self {
        Self {
            origin: Instant::now(),
            window: Mutex::new(window),
        }
    }

    /// Runs `f` on the window with the time since the origin, read under the lock (so the
    /// times the window sees never go backwards).
    pub fn with<R>(&self, f: impl FnOnce(&mut Window, Duration) -> R) -> R {
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut window, self.origin.elapsed())
    }
}

/// Scrape-time export of a [`LiveWindow`]; the drift observer names the features.
#[derive(Debug)]
pub struct WindowCollector {
    window: Arc<LiveWindow>,
    drift: Arc<DriftObserver>,
}

impl WindowCollector {
    pub fn new(window: Arc<LiveWindow>, drift: Arc<DriftObserver>) -> Self {
        Self { window, drift }
    }
}

impl Collector for WindowCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let (length, snapshot) = self.window.with(|w, now| (w.length(), w.snapshot(now)));
        let e = &mut encoder;
        let help = "Length of the sliding window of the *_window_* counts, in seconds.";
        let metric = e.encode_descriptor("drift_window_seconds", help, None, MetricType::Gauge)?;
        ConstGauge::new(length.as_secs_f64()).encode(metric)?;
        let rows = feature_rows(&self.drift.window_layout(), &snapshot);
        let (bins, categories): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.0);
        let help = "Input values of the window per feature and bin (bin index of the baseline).";
        let bins = bins.into_iter().map(|(_, labels, n)| (labels, n));
        gauges(e, "drift_window_bin", help, ["feature", "bin"], bins)?;
        let help = "Input values of the window per categorical feature and category.";
        let categories = categories.into_iter().map(|(_, labels, n)| (labels, n));
        gauges(
            e,
            "drift_window_category",
            help,
            ["feature", "category"],
            categories,
        )?;
        let help = "Regression predictions of the window per bin (bin index of the baseline).";
        let bins = snapshot.prediction_bins.iter().flatten().enumerate();
        let bins = bins.map(|(i, n)| ([i.to_string()], *n));
        gauges(e, "prediction_window_bin", help, ["bin"], bins)?;
        let help = "Predicted rows of the window per class (rare classes are __other__).";
        let classes = snapshot.classes.iter().map(|(c, n)| ([c.clone()], *n));
        gauges(e, "prediction_window_class", help, ["class"], classes)?;
        let help = "Rows labelled in the window by true and predicted label.";
        let pairs = snapshot.pairs.iter();
        let pairs = pairs.map(|((a, p), n)| ([a.clone(), p.clone()], *n));
        gauges(
            e,
            "feedback_window_pairs",
            help,
            ["actual", "predicted"],
            pairs,
        )
    }
}

/// `(numeric?, [feature, bin or category], count)` for every series of every feature, zeros
/// included, in layout order.
fn feature_rows(layout: &[(&str, Series)], snapshot: &Snapshot) -> Vec<(bool, [String; 2], u64)> {
    let mut rows = Vec::new();
    for (i, (name, series)) in layout.iter().enumerate() {
        let counts = snapshot.features.get(i).map_or(&[][..], Vec::as_slice);
        let count = |j: usize| counts.get(j).copied().unwrap_or(0);
        match series {
            Series::Bins(n) => {
                rows.extend((0..*n).map(|j| (true, [name.to_string(), j.to_string()], count(j))));
            }
            Series::Categories(categories) => {
                let names = categories.iter().map(String::as_str);
                let names = names.chain(std::iter::once(OTHER_CLASS));
                let labelled = names.enumerate();
                rows.extend(
                    labelled.map(|(j, c)| (false, [name.to_string(), c.to_string()], count(j))),
                );
            }
        }
    }
    rows
}

/// One gauge family with label names `keys`; nothing at all when `rows` is empty.
fn gauges<const N: usize>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    keys: [&str; N],
    rows: impl Iterator<Item = ([String; N], u64)>,
) -> std::fmt::Result {
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (values, n) in rows {
        let values = values.map(|v| escape_label_value(&v));
        let labels: Vec<(&str, &str)> = keys
            .iter()
            .copied()
            .zip(values.iter().map(String::as_str))
            .collect();
        ConstGauge::new(n as f64).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}
