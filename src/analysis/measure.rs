//! What one analysis metric measures and how its counters become a judged measurement — the
//! pure half of [`super::Analyzer::measure`] (the I/O half fetches the [`Counts`]).

use super::{
    prometheus::Part,
    snapshot::Counts,
    values::{self, Valued},
    verdict::{is_relative, judge, judge_failure, num},
};
use crate::api::{AnalysisMetric, Bound, MeasurementVerdict, QueryMetric, Score};

/// The kind of a metric: exactly one of its kind fields.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind<'a> {
    ErrorRate(&'a Bound),
    Latency { quantile: f64, bound: &'a Bound },
    Score { score: Score, bound: &'a Bound },
    PredictionShift(&'a Bound),
    InputDrift(&'a Bound),
    Query(&'a QueryMetric),
}

impl<'a> Kind<'a> {
    /// The metric's kind (the first one set; the CRD allows exactly one).
    pub fn of(metric: &'a AnalysisMetric) -> Result<Kind<'a>, String> {
        if let Some(b) = &metric.error_rate {
            return Ok(Kind::ErrorRate(b));
        }
        if let Some(l) = &metric.latency {
            return Ok(Kind::Latency {
                quantile: l.quantile,
                bound: &l.bound,
            });
        }
        if let Some(s) = &metric.accuracy {
            return Ok(Kind::Score {
                score: s.score,
                bound: &s.bound,
            });
        }
        if let Some(b) = &metric.prediction_shift {
            return Ok(Kind::PredictionShift(b));
        }
        if let Some(b) = &metric.input_drift {
            return Ok(Kind::InputDrift(b));
        }
        if let Some(q) = &metric.query {
            return Ok(Kind::Query(q));
        }
        Err(format!(
            "metric {} measures nothing (set one of errorRate, latency, accuracy, predictionShift, inputDrift, query)",
            metric.name
        ))
    }

    /// How the kind is named in messages.
    pub fn label(&self) -> String {
        match self {
            Kind::ErrorRate(_) => "errorRate".into(),
            Kind::Latency { quantile, .. } => format!("latency q{}", num(*quantile)),
            Kind::Score { score, .. } => format!("{score:?}").to_lowercase(),
            Kind::PredictionShift(_) => "predictionShift".into(),
            Kind::InputDrift(_) => "inputDrift".into(),
            Kind::Query(_) => "query".into(),
        }
    }

    /// True when the stable revision is measured too: a relative bound, or a prediction shift
    /// (a distance between the two).
    pub fn needs_stable(&self) -> bool {
        match self {
            Kind::ErrorRate(b) | Kind::InputDrift(b) => is_relative(b),
            Kind::Latency { bound, .. } | Kind::Score { bound, .. } => is_relative(bound),
            Kind::PredictionShift(_) => true,
            Kind::Query(q) => q.success.as_ref().is_some_and(is_relative),
        }
    }

    /// The counters a built-in kind needs from Prometheus.
    pub fn parts(&self) -> &'static [Part] {
        match self {
            Kind::ErrorRate(_) => &[Part::Requests, Part::Errors],
            Kind::Latency { .. } => &[Part::Latency],
            Kind::Score { .. } => &[Part::Labels],
            Kind::PredictionShift(_) => &[Part::Predictions],
            Kind::InputDrift(_) => &[Part::Features, Part::Baseline],
            Kind::Query(_) => &[],
        }
    }
}

/// A judged measurement before it is stamped with its time.
#[derive(Clone, Debug, PartialEq)]
pub struct Judged {
    pub canary: Option<f64>,
    pub stable: Option<f64>,
    pub samples: i64,
    pub verdict: MeasurementVerdict,
    pub message: String,
}

impl Judged {
    /// A verdict without values (Error, or Inconclusive for want of pods).
    pub fn only(verdict: MeasurementVerdict, message: impl Into<String>) -> Judged {
        Judged {
            canary: None,
            stable: None,
            samples: 0,
            verdict,
            message: message.into(),
        }
    }
}

/// Judges a built-in kind from the window's counters of the canary (and of the stable, when
/// [`Kind::needs_stable`]).
///
/// ```
/// use modelpilot::{analysis::{measure::{Kind, judge_counts}, snapshot::Counts},
///     api::{AnalysisMetric, Bound, MeasurementVerdict}};
/// let metric = AnalysisMetric { name: "errors".into(), min_sample: 100,
///     error_rate: Some(Bound { max: Some(0.01), ..Bound::default() }), ..AnalysisMetric::default() };
/// let canary = Counts { requests: 400.0, errors: 8.0, ..Counts::default() };
/// let judged = judge_counts(Kind::of(&metric).unwrap(), &metric, &canary, None);
/// assert_eq!(judged.verdict, MeasurementVerdict::Failed);
/// assert_eq!((judged.canary, judged.samples), (Some(0.02), 400));
/// assert_eq!(judged.message, "errorRate: canary 0.02 (400 samples): above max 0.01");
/// ```
pub fn judge_counts(
    kind: Kind<'_>,
    metric: &AnalysisMetric,
    canary: &Counts,
    stable: Option<&Counts>,
) -> Judged {
    let label = kind.label();
    let single = |counts: &Counts| -> Result<Valued, &'static str> {
        Ok(match kind {
            Kind::ErrorRate(_) => values::error_rate(counts),
            Kind::Latency { quantile, .. } => values::latency(counts, quantile),
            Kind::Score { score, .. } => values::score(counts, score),
            Kind::InputDrift(_) => values::input_drift(counts)?,
            Kind::PredictionShift(_) | Kind::Query(_) => None,
        })
    };
    let (bound, canary_value, stable_value) = match kind {
        Kind::ErrorRate(bound)
        | Kind::InputDrift(bound)
        | Kind::Latency { bound, .. }
        | Kind::Score { bound, .. } => {
            let c = match single(canary) {
                Ok(v) => v,
                Err(why) => {
                    return Judged::only(MeasurementVerdict::Error, format!("{label}: {why}"));
                }
            };
            let s = match stable.filter(|_| is_relative(bound)).map(single) {
                Some(Err(why)) => {
                    return Judged::only(
                        MeasurementVerdict::Error,
                        format!("{label}: stable: {why}"),
                    );
                }
                Some(Ok(v)) => v,
                None => None,
            };
            (bound, c, s)
        }
        Kind::PredictionShift(bound) => {
            if is_relative(bound) {
                let why =
                    "a prediction shift already compares canary and stable; bound it with max";
                return Judged::only(MeasurementVerdict::Error, format!("{label}: {why}"));
            }
            let c = stable.and_then(|s| values::prediction_shift(canary, s));
            (bound, c, None)
        }
        Kind::Query(_) => {
            let why = "a query is measured by Prometheus";
            return Judged::only(MeasurementVerdict::Error, format!("{label}: {why}"));
        }
    };
    let (verdict, message) = judge(bound, canary_value, stable_value, metric.min_sample);
    Judged {
        canary: canary_value.map(|(v, _)| v),
        stable: stable_value.map(|(v, _)| v),
        samples: canary_value.map_or(0, |(_, n)| n),
        verdict,
        message: format!("{label}: {message}"),
    }
}

/// Judges a custom query's values (no sample count: `minSample` does not apply; an empty
/// result is Inconclusive).
///
/// ```
/// use modelpilot::{analysis::measure::judge_query, api::{Bound, MeasurementVerdict, QueryMetric}};
/// let q = QueryMetric { promql: "…".into(),
///     success: Some(Bound { min: Some(0.95), ..Bound::default() }), failure: None };
/// assert_eq!(judge_query(&q, Some(0.97), None).verdict, MeasurementVerdict::Successful);
/// assert_eq!(judge_query(&q, None, None).verdict, MeasurementVerdict::Inconclusive);
/// ```
pub fn judge_query(query: &QueryMetric, canary: Option<f64>, stable: Option<f64>) -> Judged {
    let with_samples = |v: Option<f64>| v.map(|v| (v, 0));
    let (verdict, message) = match (&query.success, &query.failure) {
        (Some(success), _) => judge(success, with_samples(canary), with_samples(stable), 0),
        (None, Some(failure)) => judge_failure(failure, with_samples(canary), 0),
        (None, None) => (
            MeasurementVerdict::Error,
            "a query metric needs a success or a failure bound".into(),
        ),
    };
    let relative = query.success.as_ref().is_some_and(is_relative);
    Judged {
        canary,
        stable: stable.filter(|_| relative),
        samples: 0,
        verdict,
        message: format!("query: {message}"),
    }
}

#[cfg(test)]
#[path = "measure_tests.rs"]
mod tests;
