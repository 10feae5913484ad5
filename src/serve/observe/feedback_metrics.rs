//! Exports the label feedback tracker at scrape time: rolling accuracy, precision, recall
//! and F1, the window fill, how much feedback arrived, was unmatched or expired, and the
//! labelled rows by true and predicted label (counters canary analysis can difference).

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

use super::{confusion::escape_label_value, feedback::FeedbackTracker};

/// Scrape-time view of a shared [`FeedbackTracker`].
#[derive(Debug)]
pub struct FeedbackCollector {
    tracker: Arc<Mutex<FeedbackTracker>>,
}

impl FeedbackCollector {
    pub fn new(tracker: Arc<Mutex<FeedbackTracker>>) -> Self {
        Self { tracker }
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    ConstGauge::new(v).encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(metric)
}

impl Collector for FeedbackCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let (scores, counters, window, confusion) = {
            let tracker = self.tracker.lock().unwrap_or_else(PoisonError::into_inner);
            let confusion = tracker.confusion();
            (
                tracker.scores(),
                tracker.counters(),
                tracker.window(),
                confusion,
            )
        };
        let e = &mut encoder;
        if let Some(s) = scores {
            gauge(
                e,
                "feedback_accuracy",
                "Accuracy over the labelled window.",
                s.accuracy,
            )?;
            let help = "Precision over the labelled window (positive class or macro average).";
            gauge(e, "feedback_precision", help, s.precision)?;
            let help = "Recall over the labelled window (positive class or macro average).";
            gauge(e, "feedback_recall", help, s.recall)?;
            let help = "F1 score over the labelled window (positive class or macro average).";
            gauge(e, "feedback_f1", help, s.f1)?;
        }
        let rows = scores.map_or(0.0, |s| s.rows as f64);
        gauge(
            e,
            "feedback_window_rows",
            "Labelled rows in the window.",
            rows,
        )?;
        let help = "Capacity of the labelled window, in rows.";
        gauge(e, "feedback_window_capacity_rows", help, window as f64)?;
        let help = "Requests whose predictions await labels.";
        gauge(
            e,
            "feedback_pending_requests",
            help,
            counters.pending_requests as f64,
        )?;
        let help = "Labelled rows received and matched to a prediction.";
        counter(e, "feedback_rows", help, counters.received_rows)?;
        let help = "Feedback refused because its request id was unknown or expired.";
        counter(e, "feedback_unmatched", help, counters.unmatched)?;
        let help = "Remembered predictions dropped, oldest first, to bound memory.";
        counter(e, "feedback_evicted", help, counters.evicted)?;
        encode_confusion(e, &confusion)
    }
}

/// `feedback_labels_total{label, predicted}`; nothing before the first labelled row.
fn encode_confusion(
    encoder: &mut DescriptorEncoder,
    confusion: &[((String, String), u64)],
) -> std::fmt::Result {
    if confusion.is_empty() {
        return Ok(());
    }
    let help = "Labelled rows by true label and predicted label (rare labels are __other__).";
    let mut metric =
        encoder.encode_descriptor("feedback_labels", help, None, MetricType::Counter)?;
    for ((actual, predicted), rows) in confusion {
        let (actual, predicted) = (escape_label_value(actual), escape_label_value(predicted));
        let labels = [
            ("label", actual.as_str()),
            ("predicted", predicted.as_str()),
        ];
        ConstCounter::new(*rows).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}
