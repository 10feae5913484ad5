//! Per-feature streaming histograms of the live inputs, binned like the training-time baseline,
//! and the population stability index (PSI) between the two: the raw material of drift alerts.
//!
//! Bins are counted with atomics (no lock on the request path) and exported at scrape time by a
//! [`Collector`], because every feature has its own bucket edges, which a plain histogram family
//! with one shared bucket layout cannot express.

use std::{
    collections::HashMap,
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, exemplar::Exemplar, gauge::ConstGauge},
};

use super::{
    categorical::{CategoricalFeature, column},
    profile::{BaselineProfile, Kind},
    values,
};
use crate::serve::tensor::NamedTensor;

/// Edges used for features without a baseline profile: symmetric, roughly logarithmic.
pub const DEFAULT_EDGES: [f64; 15] = [
    -1000.0, -100.0, -10.0, -2.0, -1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0, 2.0, 10.0, 100.0, 1000.0,
];

/// How many columns per input are tracked when no profile names the features.
pub const DEFAULT_MAX_FEATURES: usize = 16;

/// Probability floor used by [`psi`] so empty bins do not yield infinities.
pub use crate::drift::stats::PSI_EPSILON;

/// Population stability index of the `current` bin counts against `baseline` proportions:
/// `Σ (a_i − e_i) · ln(a_i / e_i)` with `a_i` the current share and `e_i` the baseline share,
/// both floored at [`PSI_EPSILON`]. `None` when nothing was observed yet or lengths differ.
/// The one implementation is [`crate::drift::stats::psi`], shared with the offline drift checks.
///
/// Worked example: baseline `[0.5, 0.5]`, current counts `[75, 25]` →
/// `0.25·ln(1.5) + (−0.25)·ln(0.5) = 0.1014 + 0.1733 = 0.2747` (a common reading:
/// < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift).
pub fn psi(baseline: &[f64], current: &[u64]) -> Option<f64> {
    crate::drift::stats::psi(baseline, current)
}

/// A histogram with fixed edges and lock-free counters.
#[derive(Debug)]
pub struct BinnedHistogram {
    edges: Vec<f64>,
    counts: Vec<AtomicU64>,
    sum_bits: AtomicU64,
}

impl BinnedHistogram {
    /// `edges` must be strictly increasing; there are `edges.len() + 1` bins.
    pub fn new(edges: Vec<f64>) -> Self {
        let counts = (0..=edges.len()).map(|_| AtomicU64::new(0)).collect();
        Self {
            edges,
            counts,
            sum_bits: AtomicU64::new(0f64.to_bits()),
        }
    }

    /// Index of the bin holding `v`: the first edge `>= v` (Prometheus `le`), else the last
    /// ([`crate::drift::bin_index`], as the profile builder and the offline drift bin).
    pub fn bin(&self, v: f64) -> usize {
        crate::drift::bin_index(&self.edges, v)
    }

    /// Counts a batch of values; NaN is skipped. Aggregates locally, then one atomic add per
    /// bin. Returns the batch's own per-bin counts (for the sliding window).
    pub fn observe_all(&self, values: impl Iterator<Item = f64>) -> Vec<u64> {
        let mut local = vec![0u64; self.counts.len()];
        let mut sum = 0.0;
        for v in values.filter(|v| !v.is_nan()) {
            if let Some(n) = local.get_mut(self.bin(v)) {
                *n += 1;
            }
            sum += v;
        }
        for (slot, n) in self.counts.iter().zip(&local) {
            if *n > 0 {
                slot.fetch_add(*n, Ordering::Relaxed);
            }
        }
        if local.iter().any(|n| *n > 0) {
            let add = |bits: u64| Some((f64::from_bits(bits) + sum).to_bits());
            let _ = self
                .sum_bits
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, add);
        }
        local
    }

    /// Number of bins (`edges.len() + 1`).
    pub fn bins(&self) -> usize {
        self.counts.len()
    }

    /// Current per-bin counts (not cumulative).
    pub fn counts(&self) -> Vec<u64> {
        self.counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Sum of all observed values.
    pub fn sum(&self) -> f64 {
        f64::from_bits(self.sum_bits.load(Ordering::Relaxed))
    }

    /// `(upper bound, count)` pairs as the text encoder expects (`f64::MAX` means `+Inf`).
    fn buckets(&self, counts: &[u64]) -> Vec<(f64, u64)> {
        let bounds = self.edges.iter().copied().chain(std::iter::once(f64::MAX));
        bounds.zip(counts.iter().copied()).collect()
    }
}

/// The series a tracked feature has in the sliding window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Series {
    /// A numeric feature: this many bins, `0..n`.
    Bins(usize),
    /// A categorical feature: these categories, then `__other__`.
    Categories(Vec<String>),
}

/// One tracked feature: where it lives in the inputs, its live histogram, its baseline.
#[derive(Debug)]
struct Feature {
    name: String,
    input: Option<String>,
    index: usize,
    histogram: BinnedHistogram,
    baseline: Option<Vec<f64>>,
    mean: Option<f64>,
    std: Option<f64>,
}

/// Streaming per-feature histograms for drift detection.
///
/// With a profile, the features and bins come from it. Without one, the first observed
/// request decides: the first [`DEFAULT_MAX_FEATURES`] numeric columns of every input,
/// named `input[column]`, with [`DEFAULT_EDGES`].
///
/// Categorical features of a version 2 profile are counted per category (see
/// [`CategoricalFeature`]) for the sliding window only; they come after the numeric ones.
#[derive(Debug, Default)]
pub struct DriftObserver {
    features: OnceLock<Vec<Feature>>,
    categorical: Vec<CategoricalFeature>,
}

impl DriftObserver {
    /// Builds the observer; features are fixed now when a profile is given.
    pub fn new(profile: Option<&BaselineProfile>) -> Self {
        let mut observer = Self::default();
        if let Some(profile) = profile {
            let (categorical, numeric): (Vec<_>, Vec<_>) = profile
                .features
                .iter()
                .partition(|f| f.bins.kind == Kind::Categorical);
            let categorical = categorical.into_iter();
            observer.categorical = categorical
                .filter_map(CategoricalFeature::from_profile)
                .collect();
            let features = numeric.into_iter().map(|f| Feature {
                name: f.name.clone(),
                input: f.input.clone(),
                index: f.index,
                histogram: BinnedHistogram::new(f.bins.edges.clone()),
                baseline: f.bins.baseline_proportions(),
                mean: f.mean,
                std: f.std,
            });
            let _ = observer.features.set(features.collect());
        }
        observer
    }

    /// Counts every tracked feature's values in `inputs` (the request's input tensors) and
    /// returns this request's counts, per feature in [`Self::window_layout`] order and per
    /// bin (empty for a feature the request does not carry).
    pub fn observe(&self, inputs: &[NamedTensor]) -> Vec<Vec<u64>> {
        let features = self.features.get_or_init(|| default_features(inputs));
        let mut counts = Vec::with_capacity(features.len() + self.categorical.len());
        for feature in features {
            let Some((tensor, positions)) = column(inputs, feature.input.as_deref(), feature.index)
            else {
                counts.push(Vec::new());
                continue;
            };
            let numbers = positions.filter_map(|i| values::number(&tensor.data, i));
            counts.push(feature.histogram.observe_all(numbers));
        }
        counts.extend(self.categorical.iter().map(|f| f.count(inputs)));
        counts
    }

    /// The tracked features and their series, in the order [`Self::observe`] counts them
    /// (empty until the features are known).
    pub fn window_layout(&self) -> Vec<(&str, Series)> {
        let features = self.features.get().map_or(&[][..], Vec::as_slice);
        let numeric = features
            .iter()
            .map(|f| (f.name.as_str(), Series::Bins(f.histogram.bins())));
        let categorical = self.categorical.iter().map(|f| {
            let categories = f.categories().to_vec();
            (f.name.as_str(), Series::Categories(categories))
        });
        numeric.chain(categorical).collect()
    }

    /// Current bin counts of a feature, by name (for tests and diagnostics).
    pub fn counts(&self, feature: &str) -> Option<Vec<u64>> {
        let features = self.features.get()?;
        let f = features.iter().find(|f| f.name == feature)?;
        Some(f.histogram.counts())
    }
}

fn default_features(inputs: &[NamedTensor]) -> Vec<Feature> {
    let numeric = inputs
        .iter()
        .filter(|t| values::number(&t.data, 0).is_some());
    numeric
        .flat_map(|t| {
            let tracked = values::columns(t).min(DEFAULT_MAX_FEATURES);
            (0..tracked).map(|index| Feature {
                name: format!("{}[{index}]", t.name),
                input: Some(t.name.to_string()),
                index,
                histogram: BinnedHistogram::new(DEFAULT_EDGES.to_vec()),
                baseline: None,
                mean: None,
                std: None,
            })
        })
        .collect()
}

type NoExemplars<'a> = Option<&'a HashMap<usize, Exemplar<Vec<(String, String)>, f64>>>;

impl Collector for DriftObserver {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(features) = self.features.get().filter(|f| !f.is_empty()) else {
            return Ok(());
        };
        let help = "Live input feature values, binned like the training baseline.";
        let mut metric =
            encoder.encode_descriptor("feature_value", help, None, MetricType::Histogram)?;
        let snapshots: Vec<Vec<u64>> = features.iter().map(|f| f.histogram.counts()).collect();
        for (f, counts) in features.iter().zip(&snapshots) {
            let labels = [("feature", f.name.as_str())];
            let mut family = metric.encode_family(&labels)?;
            let buckets = f.histogram.buckets(counts);
            let total = counts.iter().sum();
            family.encode_histogram(f.histogram.sum(), total, &buckets, NoExemplars::None)?;
        }
        let scores = features.iter().zip(&snapshots).filter_map(|(f, counts)| {
            let baseline = f.baseline.as_ref()?;
            Some((f.name.as_str(), psi(baseline, counts)?))
        });
        let help = "Population stability index of live inputs against the baseline.";
        encode_gauges(&mut encoder, "feature_drift_psi", help, scores)?;
        let means = features
            .iter()
            .filter_map(|f| Some((f.name.as_str(), f.mean?)));
        let help = "Training-time mean of the feature.";
        encode_gauges(&mut encoder, "feature_baseline_mean", help, means)?;
        let stds = features
            .iter()
            .filter_map(|f| Some((f.name.as_str(), f.std?)));
        let help = "Training-time standard deviation of the feature.";
        encode_gauges(&mut encoder, "feature_baseline_std", help, stds)?;
        encode_baseline_proportions(&mut encoder, features)
    }
}

/// `feature_baseline_proportion{feature, upper_bound}`: the training-time share of each bin
/// (not cumulative; `upper_bound` is the bin's upper edge, the `le` of the same bin on
/// `feature_value_bucket` — a gauge may not carry an `le` label), so a reader can compute the
/// PSI of any window of the live histogram, not only the since-start one.
fn encode_baseline_proportions(
    encoder: &mut DescriptorEncoder,
    features: &[Feature],
) -> Result<(), std::fmt::Error> {
    let with_baseline: Vec<(&Feature, &Vec<f64>)> = features
        .iter()
        .filter_map(|f| Some((f, f.baseline.as_ref()?)))
        .collect();
    if with_baseline.is_empty() {
        return Ok(());
    }
    let help = "Training-time share of the feature's values in the bin ending at le.";
    let mut metric =
        encoder.encode_descriptor("feature_baseline_proportion", help, None, MetricType::Gauge)?;
    for (feature, proportions) in with_baseline {
        let edges = feature.histogram.edges.iter().map(|e| format!("{e:?}"));
        let les = edges.chain(std::iter::once("+Inf".to_string()));
        for (le, share) in les.zip(proportions) {
            let labels = [
                ("feature", feature.name.as_str()),
                ("upper_bound", le.as_str()),
            ];
            ConstGauge::new(*share).encode(metric.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// Encodes one gauge family labelled by `feature`; nothing at all when `values` is empty.
fn encode_gauges<'a>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    values: impl Iterator<Item = (&'a str, f64)>,
) -> Result<(), std::fmt::Error> {
    let mut values = values.peekable();
    if values.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (feature, value) in values {
        let labels = [("feature", feature)];
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::tensor::TensorData;

    #[test]
    fn psi_worked_examples() {
        let cases: [(&[f64], &[u64], Option<f64>); 4] = [
            (&[0.5, 0.5], &[75, 25], Some(0.274653)),
            (&[0.5, 0.5], &[50, 50], Some(0.0)),
            (&[0.5, 0.5], &[0, 0], None),
            (&[1.0], &[1, 1], None),
        ];
        for (baseline, current, expected) in cases {
            let got = psi(baseline, current);
            match (got, expected) {
                (Some(g), Some(e)) => assert!((g - e).abs() < 1e-5, "{g} vs {e}"),
                (g, e) => assert_eq!(g, e),
            }
        }
    }

    #[test]
    fn values_land_in_le_bins() {
        let h = BinnedHistogram::new(vec![0.0, 1.0]);
        h.observe_all([-5.0, 0.0, 0.5, 1.0, 1.5, f64::NAN].into_iter());
        assert_eq!(h.counts(), vec![2, 2, 1]);
        assert!((h.sum() - (-5.0 + 0.5 + 1.0 + 1.5)).abs() < 1e-12);
    }

    #[test]
    fn default_features_follow_the_first_request() {
        let observer = DriftObserver::new(None);
        let x = NamedTensor {
            name: "x".into(),
            shape: vec![2, 2],
            data: TensorData::Fp32(vec![0.05, 50.0, -3.0, 5000.0]),
        };
        observer.observe(&[x]);
        let c0 = observer.counts("x[0]").unwrap();
        let c1 = observer.counts("x[1]").unwrap();
        assert_eq!(c0[DriftObserver::bin_of(0.05)], 1);
        assert_eq!(c0[DriftObserver::bin_of(-3.0)], 1);
        assert_eq!(c1[DEFAULT_EDGES.len()], 1, "5000 is above the last edge");
        assert_eq!(c1.iter().sum::<u64>(), 2);
    }

    impl DriftObserver {
        fn bin_of(v: f64) -> usize {
            BinnedHistogram::new(DEFAULT_EDGES.to_vec()).bin(v)
        }
    }
}
