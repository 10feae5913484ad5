//! One pod's `/metrics` page reduced to the counters canary analysis needs: inference requests
//! and their 5xx errors, the end-to-end latency histogram, predicted classes, labelled rows by
//! (true, predicted) label, and the per-feature input histograms with their baseline shares.
//!
//! Everything here is a since-start counter of one process ([`Counts`]); a window is the
//! difference of two of them (`window.rs`). Only `endpoint="infer"` requests count: feedback
//! posts are not inference traffic. Series of every `model`/`output` on the page are summed
//! (a pod serves one model; a classifier has one label output).
//!
//! | field | from |
//! |---|---|
//! | `requests`, `errors` | `modelpilot_inference_requests_total{endpoint="infer"}` (all codes; `code` 500-599) |
//! | `latency` | `modelpilot_inference_request_duration_seconds_bucket{endpoint="infer"}` |
//! | `predictions` | `modelpilot_predictions_total` by `class` |
//! | `labels` | `modelpilot_feedback_labels_total` by (`label`, `predicted`) |
//! | `features` | `modelpilot_feature_value_bucket` by `feature` |
//! | `baseline` | `modelpilot_feature_baseline_proportion` by `feature`, `upper_bound` (a gauge: the profile) |

use std::collections::BTreeMap;

use super::exposition::{ParseError, Sample, parse, parse_value};

pub const REQUESTS: &str = "modelpilot_inference_requests_total";
pub const LATENCY_BUCKET: &str = "modelpilot_inference_request_duration_seconds_bucket";
pub const PREDICTIONS: &str = "modelpilot_predictions_total";
pub const FEEDBACK_LABELS: &str = "modelpilot_feedback_labels_total";
pub const FEATURE_BUCKET: &str = "modelpilot_feature_value_bucket";
pub const FEATURE_BASELINE: &str = "modelpilot_feature_baseline_proportion";

/// A cumulative histogram: `(le, observations ≤ le)` sorted by `le`; complete ones end at `+Inf`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets(pub Vec<(f64, f64)>);

impl Buckets {
    /// Observations in total: the `+Inf` bucket (0 when there is none).
    pub fn count(&self) -> f64 {
        match self.0.last() {
            Some((le, n)) if *le == f64::INFINITY => *n,
            _ => 0.0,
        }
    }

    /// Adds `n` to the bucket `le`, keeping the order (a repeated `le` is summed).
    pub fn add_bucket(&mut self, le: f64, n: f64) {
        match self.0.binary_search_by(|(b, _)| b.total_cmp(&le)) {
            Ok(i) => self.0[i].1 += n,
            Err(i) => self.0.insert(i, (le, n)),
        }
    }

    /// The cumulative count at `le`: the bucket with the largest bound ≤ `le` (0 below all).
    pub fn at(&self, le: f64) -> f64 {
        let i = self.0.partition_point(|(b, _)| *b <= le);
        if i == 0 { 0.0 } else { self.0[i - 1].1 }
    }

    /// Sums two histograms bucket by bucket. Layouts normally match (same server version);
    /// when they do not, the union of bounds is used and a histogram lacking a bound
    /// contributes its count at the next lower bound (a step function, so still cumulative).
    ///
    /// ```
    /// use modelpilot::analysis::snapshot::Buckets;
    /// let a = Buckets(vec![(0.1, 1.0), (1.0, 3.0), (f64::INFINITY, 4.0)]);
    /// let b = Buckets(vec![(0.1, 2.0), (f64::INFINITY, 5.0)]);
    /// assert_eq!(a.sum(&b).0, vec![(0.1, 3.0), (1.0, 5.0), (f64::INFINITY, 9.0)]);
    /// ```
    pub fn sum(&self, other: &Buckets) -> Buckets {
        if self.0.is_empty() {
            return other.clone();
        }
        if other.0.is_empty() || self.same_bounds(other) {
            let mut out = self.clone();
            for ((_, n), (_, m)) in out.0.iter_mut().zip(&other.0) {
                *n += m;
            }
            return out;
        }
        let mut bounds: Vec<f64> = self.0.iter().chain(&other.0).map(|(b, _)| *b).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        Buckets(
            bounds
                .into_iter()
                .map(|b| (b, self.at(b) + other.at(b)))
                .collect(),
        )
    }

    /// True when both have the same bucket bounds.
    pub fn same_bounds(&self, other: &Buckets) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a.0 == b.0)
    }

    /// True when the bounds are those of `shares` (`(le, share)` pairs), in order.
    pub fn same_le(&self, shares: &[(f64, f64)]) -> bool {
        self.0.len() == shares.len() && self.0.iter().zip(shares).all(|(a, b)| a.0 == b.0)
    }

    /// Per-bin counts (not cumulative), in bound order.
    pub fn per_bin(&self) -> Vec<f64> {
        let mut below = 0.0;
        self.0
            .iter()
            .map(|(_, n)| {
                let bin = (n - below).max(0.0);
                below = below.max(*n);
                bin
            })
            .collect()
    }
}

/// One process's counters since it started (a snapshot), or their increase over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counts {
    /// Inference requests (`endpoint="infer"`), every status code.
    pub requests: f64,
    /// Inference requests answered with a 5xx status.
    pub errors: f64,
    /// End-to-end latency of inference requests, seconds.
    pub latency: Buckets,
    /// Predicted rows by class.
    pub predictions: BTreeMap<String, f64>,
    /// Labelled rows by (true label, predicted label).
    pub labels: BTreeMap<(String, String), f64>,
    /// Live input histograms by feature.
    pub features: BTreeMap<String, Buckets>,
    /// Training-time share per bin, by feature: `(le, share)` sorted by `le`. A property of
    /// the served profile, not a counter: carried through windows unchanged.
    pub baseline: BTreeMap<String, Vec<(f64, f64)>>,
}

impl Counts {
    /// Reads a `/metrics` page.
    ///
    /// ```
    /// use modelpilot::analysis::snapshot::Counts;
    /// let page = r#"
    /// modelpilot_inference_requests_total{endpoint="infer",code="200"} 9
    /// modelpilot_inference_requests_total{endpoint="infer",code="503"} 1
    /// modelpilot_inference_requests_total{endpoint="feedback",code="500"} 4
    /// modelpilot_predictions_total{output="label",class="1"} 12
    /// "#;
    /// let counts = Counts::parse(page).unwrap();
    /// assert_eq!((counts.requests, counts.errors), (10.0, 1.0));
    /// assert_eq!(counts.predictions["1"], 12.0);
    /// ```
    pub fn parse(page: &str) -> Result<Counts, ParseError> {
        Ok(Counts::from_samples(&parse(page)?))
    }

    /// Picks the families above out of parsed samples; everything else is ignored, as are
    /// counter values that are negative or not finite.
    pub fn from_samples(samples: &[Sample]) -> Counts {
        let mut counts = Counts::default();
        for s in samples {
            if s.name == FEATURE_BASELINE {
                counts.add_baseline(s);
                continue;
            }
            if !(s.value.is_finite() && s.value >= 0.0) {
                continue;
            }
            let v = s.value;
            match s.name.as_str() {
                REQUESTS if s.label("endpoint") == Some("infer") => {
                    counts.requests += v;
                    if is_5xx(s.label("code")) {
                        counts.errors += v;
                    }
                }
                LATENCY_BUCKET if s.label("endpoint") == Some("infer") => {
                    if let Some(le) = s.label("le").and_then(parse_value) {
                        counts.latency.add_bucket(le, v);
                    }
                }
                PREDICTIONS => {
                    if let Some(class) = s.label("class") {
                        *counts.predictions.entry(class.to_string()).or_default() += v;
                    }
                }
                FEEDBACK_LABELS => {
                    if let (Some(label), Some(predicted)) = (s.label("label"), s.label("predicted"))
                    {
                        let key = (label.to_string(), predicted.to_string());
                        *counts.labels.entry(key).or_default() += v;
                    }
                }
                FEATURE_BUCKET => {
                    let le = s.label("le").and_then(parse_value);
                    if let (Some(feature), Some(le)) = (s.label("feature"), le) {
                        let buckets = counts.features.entry(feature.to_string()).or_default();
                        buckets.add_bucket(le, v);
                    }
                }
                _ => {}
            }
        }
        counts
    }

    fn add_baseline(&mut self, s: &Sample) {
        let le = s.label("upper_bound").and_then(parse_value);
        let (Some(feature), Some(le)) = (s.label("feature"), le) else {
            return;
        };
        if !(s.value.is_finite() && (0.0..=1.0).contains(&s.value)) {
            return;
        }
        let shares = self.baseline.entry(feature.to_string()).or_default();
        if let Err(i) = shares.binary_search_by(|(b, _)| b.total_cmp(&le)) {
            shares.insert(i, (le, s.value));
        }
    }
}

fn is_5xx(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<u16>().ok())
        .is_some_and(|c| (500..600).contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_page_reduces_to_the_analysis_counters() {
        let page = r#"
# TYPE modelpilot_inference_requests_total counter
modelpilot_inference_requests_total{model="m",model_version="1",endpoint="infer",code="200"} 90
modelpilot_inference_requests_total{model="m",model_version="1",endpoint="infer",code="400"} 5
modelpilot_inference_requests_total{model="m",model_version="1",endpoint="infer",code="500"} 3
modelpilot_inference_requests_total{model="m",model_version="1",endpoint="infer",code="503"} 2
modelpilot_inference_requests_total{model="m",model_version="1",endpoint="feedback",code="500"} 7
modelpilot_inference_request_duration_seconds_bucket{model="m",le="0.1",endpoint="infer"} 60
modelpilot_inference_request_duration_seconds_bucket{model="m",le="+Inf",endpoint="infer"} 100
modelpilot_inference_request_duration_seconds_bucket{model="m",le="0.1",endpoint="feedback"} 7
modelpilot_inference_request_duration_seconds_bucket{model="m",le="1.0",endpoint="infer"} 90
modelpilot_inference_request_duration_seconds_count{model="m",endpoint="infer"} 100
modelpilot_predictions_total{output="label",class="0"} 40
modelpilot_predictions_total{output="other",class="0"} 2
modelpilot_predictions_total{output="label",class="1"} NaN
modelpilot_feedback_labels_total{label="0",predicted="1"} 4
modelpilot_feedback_labels_total{label="0"} 4
modelpilot_feature_value_bucket{le="1.0",feature="f"} 3
modelpilot_feature_value_bucket{le="+Inf",feature="f"} 5
modelpilot_feature_value_bucket{le="bad",feature="f"} 5
modelpilot_feature_baseline_proportion{upper_bound="1.0",feature="f"} 0.4
modelpilot_feature_baseline_proportion{upper_bound="+Inf",feature="f"} 0.6
modelpilot_feature_baseline_proportion{upper_bound="2.0",feature="f"} 1.5
modelpilot_inference_inflight_requests 3
"#;
        let c = Counts::parse(page).unwrap();
        assert_eq!((c.requests, c.errors), (100.0, 5.0));
        assert_eq!(
            c.latency.0,
            vec![(0.1, 60.0), (1.0, 90.0), (f64::INFINITY, 100.0)]
        );
        assert_eq!(c.latency.count(), 100.0);
        assert_eq!(
            c.predictions.into_iter().collect::<Vec<_>>(),
            vec![("0".to_string(), 42.0)]
        );
        assert_eq!(c.labels[&("0".to_string(), "1".to_string())], 4.0);
        assert_eq!(c.labels.len(), 1);
        assert_eq!(c.features["f"].0, vec![(1.0, 3.0), (f64::INFINITY, 5.0)]);
        assert_eq!(c.baseline["f"], vec![(1.0, 0.4), (f64::INFINITY, 0.6)]);
    }

    #[test]
    fn bucket_arithmetic() {
        let inf = f64::INFINITY;
        let a = Buckets(vec![(1.0, 2.0), (2.0, 5.0), (inf, 6.0)]);
        assert_eq!(a.count(), 6.0);
        assert_eq!(a.per_bin(), vec![2.0, 3.0, 1.0]);
        assert_eq!(
            [a.at(0.5), a.at(1.0), a.at(1.5), a.at(inf)],
            [0.0, 2.0, 2.0, 6.0]
        );
        assert_eq!(a.sum(&Buckets::default()), a);
        assert_eq!(Buckets::default().sum(&a), a);
        assert_eq!(a.sum(&a).0, vec![(1.0, 4.0), (2.0, 10.0), (inf, 12.0)]);
        assert_eq!(Buckets(vec![(1.0, 2.0)]).count(), 0.0, "no +Inf bucket");
        let not_monotonic = Buckets(vec![(1.0, 3.0), (2.0, 2.0), (inf, 4.0)]);
        assert_eq!(not_monotonic.per_bin(), vec![3.0, 0.0, 1.0]);
    }
}
