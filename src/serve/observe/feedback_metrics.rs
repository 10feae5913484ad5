//! Exports the label feedback tracker at scrape time: rolling accuracy, precision, recall
//! and F1, the window fill, and how much feedback arrived, was unmatched or expired.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
};

use super::feedback::FeedbackTracker;

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
        let (scores, counters, window) = {
            let tracker = self.tracker.lock().unwrap_or_else(PoisonError::into_inner);
            (tracker.scores(), tracker.counters(), tracker.window())
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
        counter(e, "feedback_evicted", help, counters.evicted)
    }
}
