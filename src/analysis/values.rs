//! The values analysis judges, computed from a revision's counters over a window: error rate,
//! a latency quantile, label-feedback scores, prediction shift and input drift. Pure functions
//! of [`Counts`]; each returns `(value, samples)` — the samples are what `minSample` is
//! compared with — or `None` when the window holds nothing to compute it from.
//!
//! Counts are floats because Prometheus' `increase()` extrapolates; samples are rounded.

use std::collections::{BTreeMap, BTreeSet};

use super::snapshot::{Buckets, Counts};
use crate::api::Score;

/// A value and the samples behind it.
pub type Valued = Option<(f64, i64)>;

/// A count as a sample number (rounded; 0 when not finite).
pub fn samples(count: f64) -> i64 {
    if count.is_finite() {
        count.round() as i64
    } else {
        0
    }
}

/// 5xx answers / inference requests; samples = requests.
///
/// ```
/// use modelpilot::analysis::{snapshot::Counts, values::error_rate};
/// let w = Counts { requests: 200.0, errors: 3.0, ..Counts::default() };
/// assert_eq!(error_rate(&w), Some((0.015, 200)));
/// assert_eq!(error_rate(&Counts::default()), None);
/// ```
pub fn error_rate(c: &Counts) -> Valued {
    (c.requests > 0.0).then(|| (c.errors / c.requests, samples(c.requests)))
}

/// The `q` quantile of the request latency (seconds); samples = observed requests.
pub fn latency(c: &Counts, q: f64) -> Valued {
    let value = histogram_quantile(q, &c.latency)?;
    Some((value, samples(c.latency.count())))
}

/// The `q` quantile of a cumulative histogram, estimated like Prometheus' `histogram_quantile`:
/// find the bucket holding rank `q × count` and interpolate linearly inside it, taking the
/// lower bound of the first bucket as 0 (or its upper bound when that is ≤ 0). A rank in the
/// `+Inf` bucket yields the largest finite bound. `None` without a `+Inf` bucket, with fewer
/// than two buckets, with no observations, or for a `q` outside [0, 1].
///
/// Worked example: buckets `le 0.1: 50, le 0.5: 90, le 1: 100, +Inf: 100`, q = 0.9 → rank 90
/// lies in the first bucket reaching it, `(0.1, 0.5]`, which holds ranks 50..90: 0.1 + 0.4 ×
/// (90 − 50)/40 = 0.5. q = 0.75: 0.1 + 0.4 × 25/40 = 0.35. q = 0.95: 0.5 + 0.5 × 5/10 = 0.75.
///
/// ```
/// use modelpilot::analysis::{snapshot::Buckets, values::histogram_quantile};
/// let b = Buckets(vec![(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (f64::INFINITY, 100.0)]);
/// assert_eq!(histogram_quantile(0.75, &b), Some(0.35));
/// assert_eq!(histogram_quantile(0.95, &b), Some(0.75));
/// ```
pub fn histogram_quantile(q: f64, buckets: &Buckets) -> Option<f64> {
    if !(0.0..=1.0).contains(&q) {
        return None;
    }
    let b = &buckets.0;
    if b.len() < 2 || b.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
        return None;
    }
    // Counts are cumulative; smooth out any dip (float noise, mixed layouts).
    let mut cumulative = Vec::with_capacity(b.len());
    let mut running = 0.0f64;
    for (le, n) in b {
        running = running.max(*n);
        cumulative.push((*le, running));
    }
    let total = running;
    if total <= 0.0 || !total.is_finite() {
        return None;
    }
    let rank = q * total;
    let last = cumulative.len() - 1;
    let i = cumulative[..last]
        .iter()
        .position(|(_, n)| *n >= rank)
        .unwrap_or(last);
    if i == last {
        return Some(cumulative[last - 1].0);
    }
    let (end, count_end) = cumulative[i];
    if i == 0 && end <= 0.0 {
        return Some(end);
    }
    let (start, below) = if i == 0 {
        (0.0, 0.0)
    } else {
        cumulative[i - 1]
    };
    let in_bucket = count_end - below;
    if in_bucket <= 0.0 {
        return Some(end);
    }
    Some(start + (end - start) * ((rank - below) / in_bucket))
}

/// A score of label feedback over the window's labelled rows; samples = labelled rows.
pub fn score(c: &Counts, which: Score) -> Valued {
    let s = scores(&c.labels)?;
    let value = match which {
        Score::Accuracy => s.accuracy,
        Score::F1 => s.f1,
        Score::Recall => s.recall,
    };
    Some((value, samples(s.rows)))
}

/// Accuracy and macro-averaged scores of a confusion matrix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    pub rows: f64,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

/// Accuracy, and precision, recall and F1 averaged over every class seen (as true or as
/// predicted label), from rows counted by `(true label, predicted label)`. A ratio with a zero
/// denominator counts as 0 — the server's rolling scores use the same rules.
///
/// Worked example, rows (true, predicted) `(a,a) (b,a) (b,b) (a,c)`: accuracy 2/4; per class
/// (P, R, F1): a (1/2, 1/2, 1/2), b (1, 1/2, 2/3), c (0, 0, 0); macro recall 1/3, macro F1
/// (1/2 + 2/3 + 0)/3 ≈ 0.3889.
///
/// ```
/// use std::collections::BTreeMap;
/// use modelpilot::analysis::values::scores;
/// let pair = |t: &str, p: &str| (t.to_string(), p.to_string());
/// let rows = BTreeMap::from([
///     (pair("a", "a"), 1.0), (pair("b", "a"), 1.0), (pair("b", "b"), 1.0), (pair("a", "c"), 1.0),
/// ]);
/// let s = scores(&rows).unwrap();
/// assert_eq!((s.rows, s.accuracy), (4.0, 0.5));
/// assert!((s.recall - 1.0 / 3.0).abs() < 1e-12);
/// assert!((s.f1 - 7.0 / 18.0).abs() < 1e-12);
/// ```
pub fn scores(labels: &BTreeMap<(String, String), f64>) -> Option<Scores> {
    let counted = labels.iter().filter(|(_, n)| **n > 0.0);
    let rows: f64 = counted.clone().map(|(_, n)| n).sum();
    if rows <= 0.0 {
        return None;
    }
    let mut classes: BTreeMap<&str, [f64; 3]> = BTreeMap::new(); // tp, fp, fn
    let mut correct = 0.0;
    for ((actual, predicted), n) in counted {
        if actual == predicted {
            correct += n;
            classes.entry(actual).or_default()[0] += n;
        } else {
            classes.entry(predicted).or_default()[1] += n;
            classes.entry(actual).or_default()[2] += n;
        }
    }
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let (mut p_sum, mut r_sum, mut f_sum) = (0.0, 0.0, 0.0);
    for [tp, fp, fn_] in classes.values() {
        let p = ratio(*tp, tp + fp);
        let r = ratio(*tp, tp + fn_);
        p_sum += p;
        r_sum += r;
        f_sum += ratio(2.0 * p * r, p + r);
    }
    let n = classes.len() as f64;
    Some(Scores {
        rows,
        accuracy: correct / rows,
        precision: p_sum / n,
        recall: r_sum / n,
        f1: f_sum / n,
    })
}

/// Jensen–Shannon distance between the canary's and the stable's predicted-class
/// distributions; samples = the smaller of the two revisions' predicted rows (both need
/// enough for the distance to mean anything).
pub fn prediction_shift(canary: &Counts, stable: &Counts) -> Valued {
    let value = js_distance(&canary.predictions, &stable.predictions)?;
    let rows = |c: &Counts| c.predictions.values().filter(|n| **n > 0.0).sum::<f64>();
    Some((value, samples(rows(canary).min(rows(stable)))))
}

/// Jensen–Shannon distance (base 2, so between 0 and 1) of two count distributions over the
/// same keys: the square root of `½ KL(p‖m) + ½ KL(q‖m)` with `m = (p + q)/2`. `None` when
/// either side has no counts.
///
/// Worked examples: disjoint supports → 1; identical shares → 0; p = (½, ½), q = (1, 0):
/// m = (¾, ¼), KL(p‖m) = ½·log2(⅔) + ½·log2(2) = 0.20752, KL(q‖m) = log2(4/3) = 0.41504,
/// JSD = 0.31128, distance = 0.55793.
///
/// ```
/// use std::collections::BTreeMap;
/// use modelpilot::analysis::values::js_distance;
/// let p = BTreeMap::from([("a".to_string(), 5.0), ("b".to_string(), 5.0)]);
/// let q = BTreeMap::from([("a".to_string(), 8.0)]);
/// assert!((js_distance(&p, &q).unwrap() - 0.55793).abs() < 1e-5);
/// ```
pub fn js_distance(p: &BTreeMap<String, f64>, q: &BTreeMap<String, f64>) -> Option<f64> {
    let positive = |m: &BTreeMap<String, f64>| m.values().filter(|v| **v > 0.0).sum::<f64>();
    let (p_total, q_total) = (positive(p), positive(q));
    if !(p_total > 0.0 && q_total > 0.0 && p_total.is_finite() && q_total.is_finite()) {
        return None;
    }
    let share = |m: &BTreeMap<String, f64>, k: &str, total: f64| {
        m.get(k).copied().filter(|v| *v > 0.0).unwrap_or(0.0) / total
    };
    let keys: BTreeSet<&str> = p.keys().chain(q.keys()).map(String::as_str).collect();
    let term = |a: f64, m: f64| if a > 0.0 { a * (a / m).log2() } else { 0.0 };
    let mut divergence = 0.0;
    for k in keys {
        let (a, b) = (share(p, k, p_total), share(q, k, q_total));
        let m = (a + b) / 2.0;
        divergence += 0.5 * term(a, m) + 0.5 * term(b, m);
    }
    Some(divergence.clamp(0.0, 1.0).sqrt())
}

/// Why input drift could not be computed at all (a setup problem, not a lack of traffic).
pub const NO_BASELINE: &str = "the canary exports no baseline profile whose bins match its \
    input histograms (modelpilot_feature_baseline_proportion): serve it with a baseline profile \
    (MODELPILOT_BASELINE_PROFILE)";

/// The largest per-feature PSI of the window's live inputs against the baseline profile the
/// server was given (the window's bin counts, not the since-start PSI gauge); samples = the
/// fewest values observed for one of those features. `Err` when no feature has a baseline
/// whose bins match its live histogram.
pub fn input_drift(c: &Counts) -> Result<Valued, &'static str> {
    let mut worst: Option<(f64, f64)> = None;
    let mut comparable = false;
    for (feature, shares) in &c.baseline {
        let Some(live) = c.features.get(feature) else {
            continue;
        };
        let Some(value) = psi(shares, live) else {
            comparable |= live.same_le(shares);
            continue;
        };
        comparable = true;
        let count = live.count();
        worst = Some(match worst {
            Some((v, n)) => (v.max(value), n.min(count)),
            None => (value, count),
        });
    }
    if !comparable {
        return Err(NO_BASELINE);
    }
    Ok(worst.map(|(v, n)| (v, samples(n))))
}

/// Population stability index of a live histogram against baseline shares with the same
/// bins: `Σ (a − e)·ln(a/e)`, both shares floored at [`crate::drift::stats::PSI_EPSILON`] (as the server's gauge).
/// `None` when the bins differ or nothing was observed.
///
/// Worked example: baseline `[0.5, 0.5]`, live counts `[75, 25]` → 0.25·ln 1.5 + 0.25·ln 2
/// = 0.2747.
pub fn psi(baseline: &[(f64, f64)], live: &Buckets) -> Option<f64> {
    if !live.same_le(baseline) {
        return None;
    }
    // Counter differences: whole numbers (rounded against float noise), never negative.
    let counts: Vec<u64> = live
        .per_bin()
        .iter()
        .map(|n| {
            if n.is_finite() && *n > 0.0 {
                n.round() as u64
            } else {
                0
            }
        })
        .collect();
    let shares: Vec<f64> = baseline.iter().map(|(_, e)| *e).collect();
    crate::drift::stats::psi(&shares, &counts)
}

#[cfg(test)]
#[path = "values_tests.rs"]
mod tests;
