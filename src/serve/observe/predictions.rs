//! Prediction statistics: how often each class is predicted (classifiers) and the
//! distribution of predicted values (regressors), so a shift in outputs shows up on a dashboard
//! even before any true label comes back.
//!
//! Class labels come from the model, and a model may emit arbitrarily many distinct ones, so
//! the number of class series is capped: labels past the cap are counted as [`OTHER_CLASS`].

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::{Family, MetricConstructor},
        histogram::Histogram,
    },
    registry::Registry,
};

use super::{
    drift::DEFAULT_EDGES,
    profile::{Bins, Kind},
    values,
};
use crate::serve::tensor::NamedTensor;

/// Class label used once [`PredictionStats`] tracks its maximum number of classes.
pub const OTHER_CLASS: &str = "__other__";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabels {
    output: String,
    class: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutputLabels {
    output: String,
}

#[derive(Clone, Debug)]
struct Buckets(Vec<f64>);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// Counters of predicted classes and histograms of predicted values.
#[derive(Clone, Debug)]
pub struct PredictionStats {
    classes: Family<ClassLabels, Counter>,
    values: Family<OutputLabels, Histogram, Buckets>,
    /// Class series created so far; the lock also serialises their creation.
    class_series: Arc<Mutex<usize>>,
    max_classes: usize,
}

impl PredictionStats {
    /// `max_classes` caps the distinct class series; `bins` (from the baseline profile) sets
    /// the bucket edges of regression outputs when numeric, [`DEFAULT_EDGES`] otherwise.
    pub fn new(max_classes: usize, bins: Option<&Bins>) -> Self {
        let numeric = bins.filter(|b| b.kind == Kind::Numeric);
        let edges = numeric.map_or_else(|| DEFAULT_EDGES.to_vec(), |b| b.edges.clone());
        Self {
            classes: Family::default(),
            values: Family::new_with_constructor(Buckets(edges)),
            class_series: Arc::new(Mutex::new(0)),
            max_classes,
        }
    }

    /// Registers the metric families (names relative to the registry prefix).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "predictions",
            "Predicted rows by class (classifiers); rare classes past the cap are __other__",
            self.classes.clone(),
        );
        registry.register(
            "prediction_value",
            "Predicted values of regression outputs",
            self.values.clone(),
        );
    }

    /// Counts a response's predictions and returns the per-row predicted labels (for label
    /// feedback) when the model is a classifier.
    pub fn observe(&self, outputs: &[NamedTensor]) -> Option<Vec<String>> {
        for output in outputs.iter().filter(|t| values::is_regression(t)) {
            let labels = OutputLabels {
                output: output.name.clone(),
            };
            let histogram = self.values.get_or_create(&labels);
            for i in 0..output.data.len() {
                if let Some(v) = values::number(&output.data, i).filter(|v| !v.is_nan()) {
                    histogram.observe(v);
                }
            }
        }
        let (name, labels) = values::predicted_labels(outputs)?;
        // Count per class in order of first appearance, so the cap keeps the earliest classes.
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut counts: Vec<(&str, u64)> = Vec::new();
        for label in &labels {
            let i = *index.entry(label.as_str()).or_insert_with(|| {
                counts.push((label.as_str(), 0));
                counts.len() - 1
            });
            counts[i].1 += 1;
        }
        for (class, n) in counts {
            self.class_counter(name, class).inc_by(n);
        }
        Some(labels)
    }

    fn class_counter(&self, output: &str, class: &str) -> Counter {
        let key = ClassLabels {
            output: output.to_string(),
            class: class.to_string(),
        };
        if let Some(counter) = self.classes.get(&key) {
            return counter.clone();
        }
        let mut series = self
            .class_series
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(counter) = self.classes.get(&key) {
            return counter.clone();
        }
        let key = if *series < self.max_classes {
            key
        } else {
            ClassLabels {
                output: output.to_string(),
                class: OTHER_CLASS.to_string(),
            }
        };
        if self.classes.get(&key).is_none() {
            *series += 1;
        }
        self.classes.get_or_create_owned(&key)
    }

    /// Count of a class so far (for tests and diagnostics).
    pub fn class_count(&self, output: &str, class: &str) -> u64 {
        let key = ClassLabels {
            output: output.to_string(),
            class: class.to_string(),
        };
        self.classes.get(&key).map_or(0, |c| c.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::tensor::TensorData;

    fn labels(v: Vec<i64>) -> NamedTensor {
        NamedTensor {
            name: "label".into(),
            shape: vec![v.len() as i64],
            data: TensorData::Int64(v),
        }
    }

    #[test]
    fn counts_classes_up_to_the_cap() {
        let stats = PredictionStats::new(3, None);
        let got = stats.observe(&[labels(vec![0, 1, 1, 2, 3, 4, 4])]).unwrap();
        assert_eq!(got.len(), 7);
        let count = |c: &str| stats.class_count("label", c);
        assert_eq!([count("0"), count("1"), count("2")], [1, 2, 1]);
        assert_eq!([count("3"), count("4"), count(OTHER_CLASS)], [0, 0, 3]);
        assert_eq!(
            *stats.class_series.lock().unwrap(),
            3 + 1,
            "three classes plus __other__"
        );
    }

    #[test]
    fn regression_outputs_fill_the_value_histogram() {
        let stats = PredictionStats::new(10, None);
        let out = NamedTensor {
            name: "variable".into(),
            shape: vec![3, 1],
            data: TensorData::Fp32(vec![1.0, 2.0, f32::NAN]),
        };
        assert!(stats.observe(&[out]).is_none());
        let mut registry = Registry::default();
        stats.register(&mut registry);
        let mut page = String::new();
        prometheus_client::encoding::text::encode(&mut page, &registry).unwrap();
        assert!(
            page.contains("prediction_value_count{output=\"variable\"} 2\n"),
            "{page}"
        );
        assert!(
            page.contains("prediction_value_sum{output=\"variable\"} 3.0\n"),
            "{page}"
        );
    }
}
