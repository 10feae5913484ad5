//! Judging measurements and tallying them: the pure decisions of canary analysis.
//!
//! * [`judge`] turns a canary value (and the stable's, for relative bounds) into a verdict.
//!   Too few samples is *Inconclusive*, never *Failed*: a quiet canary must not be rolled back
//!   for lack of traffic (flagger learned this the hard way).
//! * [`tally`] folds a verdict into a metric's running counts and says whether the rollout goes
//!   on, the metric is complete, or the rollout aborts or pauses.
//! * [`due`] says when a metric's next measurement is due, from status timestamps only, so an
//!   operator restart changes nothing.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{AnalysisMetric, Bound, Measurement, MeasurementVerdict, MetricStatus};

/// Measurements kept in `MetricStatus.measurements`, newest last.
pub const KEPT_MEASUREMENTS: usize = 5;

/// Pause reason when inconclusive measurements exceed `inconclusiveLimit`.
pub const REASON_INCONCLUSIVE: &str = "Inconclusive";
/// Pause reason when source errors in a row reach `consecutiveErrorLimit`.
pub const REASON_SOURCE_ERRORS: &str = "MetricSourceErrors";

/// True when the bound compares the canary with the stable revision.
pub fn is_relative(bound: &Bound) -> bool {
    bound.max_ratio_to_stable.is_some()
        || bound.max_increase_over_stable.is_some()
        || bound.max_decrease_from_stable.is_some()
}

/// Judges a canary value against a bound. `canary` and `stable` are `(value, samples)`;
/// `stable` is only looked at when the bound is relative. Every bound given must hold:
/// `max`, `min`, canary ≤ `maxRatioToStable` × stable, canary ≤ stable + `maxIncreaseOverStable`,
/// canary ≥ stable − `maxDecreaseFromStable`.
///
/// Inconclusive, never Failed: no canary value, fewer than `min_sample` canary samples, a NaN
/// canary value, and — for a relative bound — no stable value, too few stable samples, or a
/// stable value that is not finite (nothing to compare with). An infinite canary value is
/// compared as is (+∞ breaks a `max`).
///
/// Worked examples, error rate with `max 0.01`, `maxIncreaseOverStable 0.005`, minSample 100:
///
/// | canary (value, samples) | stable | verdict |
/// |---|---|---|
/// | (0.008, 1000) | (0.004, 900) | Successful: 0.008 ≤ 0.01 and ≤ 0.004 + 0.005 |
/// | (0.010, 1000) | (0.001, 900) | Failed: 0.010 > 0.001 + 0.005 |
/// | (0.5, 40) | (0.0, 900) | Inconclusive: 40 samples < 100 |
/// | (0.008, 1000) | (0.0, 50) | Inconclusive: the stable has 50 samples < 100 |
///
/// ```
/// use modelpilot::{analysis::verdict::judge, api::{Bound, MeasurementVerdict::*}};
/// let bound = Bound { max: Some(0.01), max_increase_over_stable: Some(0.005), ..Bound::default() };
/// let v = |c, s| judge(&bound, Some(c), Some(s), 100).0;
/// assert_eq!(v((0.008, 1000), (0.004, 900)), Successful);
/// assert_eq!(v((0.010, 1000), (0.001, 900)), Failed);
/// assert_eq!(v((0.5, 40), (0.0, 900)), Inconclusive);
/// assert_eq!(v((0.008, 1000), (0.0, 50)), Inconclusive);
/// ```
pub fn judge(
    bound: &Bound,
    canary: Option<(f64, i64)>,
    stable: Option<(f64, i64)>,
    min_sample: i64,
) -> (MeasurementVerdict, String) {
    use MeasurementVerdict::{Failed, Inconclusive, Successful};
    let Some((c, c_samples)) = canary else {
        return (Inconclusive, "no canary value in the window".into());
    };
    if c_samples < min_sample {
        let msg = format!("canary has {c_samples} samples, fewer than minSample {min_sample}");
        return (Inconclusive, msg);
    }
    if c.is_nan() {
        return (Inconclusive, "the canary value is NaN".into());
    }
    let s = if is_relative(bound) {
        let Some((s, s_samples)) = stable else {
            return (Inconclusive, "no stable value in the window".into());
        };
        if s_samples < min_sample {
            let msg = format!("stable has {s_samples} samples, fewer than minSample {min_sample}");
            return (Inconclusive, msg);
        }
        if !s.is_finite() {
            return (
                Inconclusive,
                format!("the stable value is {s}: nothing to compare with"),
            );
        }
        Some(s)
    } else {
        None
    };
    let broken = broken_bounds(bound, c, s);
    let stable_note = s.map_or_else(String::new, |s| format!(", stable {}", num(s)));
    let head = format!("canary {} ({c_samples} samples{stable_note})", num(c));
    if broken.is_empty() {
        (Successful, format!("{head} within bounds"))
    } else {
        (Failed, format!("{head}: {}", broken.join("; ")))
    }
}

/// The bounds `c` breaks (relative ones only when `s` is given), as words. `c` is not NaN and
/// `s` is finite here ([`judge`] made sure), so plain comparisons are exact.
fn broken_bounds(bound: &Bound, c: f64, s: Option<f64>) -> Vec<String> {
    let mut broken = Vec::new();
    if let Some(max) = bound.max.filter(|max| c > *max) {
        broken.push(format!("above max {}", num(max)));
    }
    if let Some(min) = bound.min.filter(|min| c < *min) {
        broken.push(format!("below min {}", num(min)));
    }
    let Some(s) = s else { return broken };
    if let Some(r) = bound.max_ratio_to_stable.filter(|r| c > r * s) {
        broken.push(format!("above {} × stable = {}", num(r), num(r * s)));
    }
    if let Some(d) = bound.max_increase_over_stable.filter(|d| c > s + d) {
        broken.push(format!("above stable + {} = {}", num(d), num(s + d)));
    }
    if let Some(d) = bound.max_decrease_from_stable.filter(|d| c < s - d) {
        broken.push(format!("below stable − {} = {}", num(d), num(s - d)));
    }
    broken
}

/// Judges a custom query's `failure` bound: the measurement fails when the value is *within*
/// the bound's `max`/`min` (relative fields are not used). Same Inconclusive rules as [`judge`].
///
/// ```
/// use modelpilot::{analysis::verdict::judge_failure, api::{Bound, MeasurementVerdict::*}};
/// let failure = Bound { min: Some(100.0), ..Bound::default() }; // ≥ 100 abandoned carts fails
/// assert_eq!(judge_failure(&failure, Some((120.0, 0)), 0).0, Failed);
/// assert_eq!(judge_failure(&failure, Some((80.0, 0)), 0).0, Successful);
/// assert_eq!(judge_failure(&failure, None, 0).0, Inconclusive);
/// ```
pub fn judge_failure(
    bound: &Bound,
    canary: Option<(f64, i64)>,
    min_sample: i64,
) -> (MeasurementVerdict, String) {
    use MeasurementVerdict::{Error, Failed, Successful};
    if bound.max.is_none() && bound.min.is_none() {
        return (Error, "a failure bound needs max or min".into());
    }
    let absolute = Bound {
        max: bound.max,
        min: bound.min,
        ..Bound::default()
    };
    match judge(&absolute, canary, None, min_sample) {
        (Successful, message) => (Failed, format!("{message} of the failure bound")),
        (Failed, message) => (Successful, format!("{message}: outside the failure bound")),
        other => other,
    }
}

/// What the rollout does after a measurement was tallied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Keep measuring.
    Continue,
    /// The metric has taken its `count` measurements (never with count 0).
    Complete,
    /// Failed measurements exceed `failureLimit`: roll the canary back.
    Abort { message: String },
    /// Wait for a person: `reason` is [`REASON_INCONCLUSIVE`] or [`REASON_SOURCE_ERRORS`].
    Pause {
        reason: &'static str,
        message: String,
    },
}

/// Folds a measurement into a metric's tally.
///
/// An Error measurement only counts toward `consecutive_errors` (not `taken`); any other
/// resets it. The last [`KEPT_MEASUREMENTS`] measurements are kept, errors included.
/// Decided in this order:
/// 1. `failed > failureLimit` → Abort (sticky: every later tally aborts too);
/// 2. this measurement is Inconclusive and `inconclusive > inconclusiveLimit` → Pause
///    `Inconclusive` (raised by each Inconclusive past the limit, so a resumed analysis goes
///    on until the next one);
/// 3. this measurement is an Error and `consecutive_errors ≥ consecutive_error_limit` →
///    Pause `MetricSourceErrors`;
/// 4. `count > 0` and conclusive (successful + failed) `≥ count` → Complete;
/// 5. otherwise Continue.
///
/// Worked example, count 3, failureLimit 1, inconclusiveLimit 1, error limit 2:
/// S → Continue; E → Continue (1 error in a row, not taken); F → Continue (failed 1 ≤ 1,
/// errors reset); I → Continue (inconclusive 1 ≤ 1, not conclusive); S → 3 conclusive = count
/// → Complete.
///
/// ```
/// use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
/// use modelpilot::{
///     analysis::verdict::{Progress, tally},
///     api::{AnalysisMetric, Measurement, MeasurementVerdict::{self, *}, MetricStatus},
/// };
/// let metric = AnalysisMetric { name: "errors".into(), count: 3, failure_limit: 1,
///     inconclusive_limit: 1, ..AnalysisMetric::default() };
/// let m = |verdict: MeasurementVerdict| Measurement { at: Time(Timestamp::UNIX_EPOCH),
///     canary: None, stable: None, samples: 0, verdict, message: String::new() };
/// let mut status = MetricStatus::default();
/// let mut seen = Vec::new();
/// for v in [Successful, Error, Failed, Inconclusive, Successful] {
///     let (next, progress) = tally(&metric, &status, m(v), 2);
///     status = next;
///     seen.push(progress);
/// }
/// use Progress::{Complete, Continue};
/// assert_eq!(seen, vec![Continue, Continue, Continue, Continue, Complete]);
/// assert_eq!((status.taken, status.successful, status.failed, status.inconclusive), (4, 2, 1, 1));
/// ```
pub fn tally(
    metric: &AnalysisMetric,
    status: &MetricStatus,
    m: Measurement,
    consecutive_error_limit: i32,
) -> (MetricStatus, Progress) {
    use MeasurementVerdict::{Error, Failed, Inconclusive, Successful};
    let mut s = status.clone();
    if s.name.is_empty() {
        s.name = metric.name.clone();
    }
    let verdict = m.verdict;
    let message = m.message.clone();
    if verdict == Error {
        s.consecutive_errors = s.consecutive_errors.saturating_add(1);
    } else {
        s.consecutive_errors = 0;
        s.taken = s.taken.saturating_add(1);
        let counter = match verdict {
            Successful => &mut s.successful,
            Failed => &mut s.failed,
            Inconclusive | Error => &mut s.inconclusive,
        };
        *counter = counter.saturating_add(1);
    }
    s.measurements.push(m);
    let extra = s.measurements.len().saturating_sub(KEPT_MEASUREMENTS);
    s.measurements.drain(..extra);

    let progress = if s.failed > metric.failure_limit {
        Progress::Abort {
            message: format!(
                "{} failed measurements, more than failureLimit {}: {message}",
                s.failed, metric.failure_limit
            ),
        }
    } else if verdict == Inconclusive && s.inconclusive > metric.inconclusive_limit {
        Progress::Pause {
            reason: REASON_INCONCLUSIVE,
            message: format!(
                "{} inconclusive measurements, more than inconclusiveLimit {}: {message}",
                s.inconclusive, metric.inconclusive_limit
            ),
        }
    } else if verdict == Error && s.consecutive_errors >= consecutive_error_limit.max(1) {
        Progress::Pause {
            reason: REASON_SOURCE_ERRORS,
            message: format!(
                "{} metric source errors in a row: {message}",
                s.consecutive_errors
            ),
        }
    } else if metric.count > 0 && conclusive(&s) >= metric.count {
        Progress::Complete
    } else {
        Progress::Continue
    };
    (s, progress)
}

/// How long until the metric's next measurement: `Some(ZERO)` when due now, `None` when it has
/// taken all its `count` conclusive measurements. Each measurement covers the interval before
/// it, so the first is due `initialDelaySeconds + intervalSeconds` after `started_at` (when the
/// analysis — the step, or the background analysis — started), each next one `intervalSeconds`
/// after the last measurement's `at` (an Error is retried after an interval too).
///
/// ```
/// use std::time::Duration;
/// use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
/// use modelpilot::{analysis::verdict::due, api::{AnalysisMetric, MetricStatus}};
/// let t = |s| Time(Timestamp::from_second(s).unwrap());
/// let metric = AnalysisMetric { interval_seconds: 10, initial_delay_seconds: 30, count: 3,
///     ..AnalysisMetric::default() };
/// assert_eq!(due(&metric, None, &t(100), &t(110)), Some(Duration::from_secs(30)));
/// assert_eq!(due(&metric, None, &t(100), &t(140)), Some(Duration::ZERO));
/// ```
pub fn due(
    metric: &AnalysisMetric,
    status: Option<&MetricStatus>,
    started_at: &Time,
    now: &Time,
) -> Option<Duration> {
    if let Some(s) = status
        && metric.count > 0
        && conclusive(s) >= metric.count
    {
        return None;
    }
    // Each measurement covers the interval before it, so the first comes one interval after
    // the analysis (and its initial delay) started.
    let (from, wait) = match status.and_then(|s| s.measurements.last()) {
        Some(last) => (&last.at, metric.interval_seconds),
        None => (
            started_at,
            metric
                .initial_delay_seconds
                .saturating_add(metric.interval_seconds),
        ),
    };
    let due_ms = from
        .0
        .as_millisecond()
        .saturating_add(i64::from(wait.max(0)).saturating_mul(1000));
    let left = due_ms.saturating_sub(now.0.as_millisecond()).max(0);
    Some(Duration::from_millis(left.unsigned_abs()))
}

/// A number for messages: up to 4 decimals for ordinary magnitudes, scientific otherwise.
/// Measurements that reached a verdict on the bound (Successful or Failed): what `count`
/// counts, so an analysis never completes on Inconclusive measurements alone.
pub fn conclusive(s: &MetricStatus) -> i32 {
    s.successful.saturating_add(s.failed)
}

pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    if (1e-3..1e6).contains(&v.abs()) {
        let text = format!("{v:.4}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_string()
    } else {
        format!("{v:.3e}")
    }
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
