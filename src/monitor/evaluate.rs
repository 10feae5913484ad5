//! One monitoring evaluation, pure: the revision's summed window and the last status in, the
//! new status and its transitions out.
//!
//! Each check keeps the verdicts of its recent windows in status (oldest first, at most
//! `persistence.windows`), and a finding counts once `persistence.required` of them agree —
//! a single odd window neither raises nor clears `Drifted`. A window without enough samples
//! adds no verdict. Accuracy's `atPromotion` is the first value measured on the revision; the
//! status starts over when the stable revision changes, so a promoted model is judged against
//! its own baseline from its first window.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::window::Window;
use crate::{
    api::{
        AccuracyMetric, AccuracyMonitor, AccuracyStatus, DistributionStatus, DriftMonitor,
        FeatureEvaluation, MonitoringSpec, MonitoringStatus, Persistence,
    },
    drift::evaluate::{self as drift, DriftConfig, FeatureResult},
    rollout::plan::{Transition, note, warn},
    serve::observe::{profile::BaselineProfile, scores::scores_from_pairs},
};

/// What one evaluation reads.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub spec: &'a MonitoringSpec,
    /// The revision's baseline profile, when it has one and a server served it.
    pub profile: Option<&'a BaselineProfile>,
    /// The revision's window, summed over its ready pods.
    pub window: &'a Window,
    /// The stable revision.
    pub revision: &'a str,
    pub now: &'a Time,
}

/// The drift settings of a monitor, as the tests take them.
pub fn config(m: &DriftMonitor) -> DriftConfig {
    DriftConfig {
        method: m.method,
        p_value: m.p_value,
        threshold: m.threshold,
        correction: m.correction,
        min_samples: u64::try_from(m.min_samples).unwrap_or(1),
    }
}

/// Appends a verdict (when there is one) and says whether the finding persists.
///
/// Worked example: 2 of 3, recent `[true, false]` + `true` → `[true, false, true]`, persistent;
/// + `false` → `[false, true, false]`, not; + no verdict → unchanged.
pub fn persist(recent: &[bool], verdict: Option<bool>, p: &Persistence) -> (Vec<bool>, bool) {
    let mut recent = recent.to_vec();
    if let Some(v) = verdict {
        recent.push(v);
    }
    let keep = usize::try_from(p.windows).unwrap_or(1).max(1);
    let excess = recent.len().saturating_sub(keep);
    recent.drain(..excess);
    let hits = recent.iter().filter(|v| **v).count();
    let persistent = hits >= usize::try_from(p.required).unwrap_or(1).max(1);
    (recent, persistent)
}

fn feature_status(f: &FeatureResult) -> FeatureEvaluation {
    FeatureEvaluation {
        name: f.name.clone(),
        method: f.method.name().into(),
        statistic: f.statistic.unwrap_or(0.0),
        p_value: f.p_value,
        threshold: f.threshold,
        samples: i64::try_from(f.samples).unwrap_or(i64::MAX),
        drift: f.drift,
    }
}

fn distribution(
    old: Option<&DistributionStatus>,
    verdict: Option<bool>,
    features: &[FeatureResult],
    p: &Persistence,
) -> DistributionStatus {
    let recent = old.map(|o| o.recent.as_slice()).unwrap_or_default();
    let (recent, persistent) = persist(recent, verdict, p);
    DistributionStatus {
        drift: verdict,
        recent,
        persistent,
        drifted_features: features
            .iter()
            .filter(|f| f.drift == Some(true))
            .map(|f| f.name.clone())
            .collect(),
        features: features.iter().map(feature_status).collect(),
    }
}

/// The chosen score of the labelled pairs.
fn score(
    metric: AccuracyMetric,
    pairs: &[(String, String, u64)],
    positive: Option<&str>,
) -> Option<f64> {
    let s = scores_from_pairs(pairs, positive)?;
    Some(match metric {
        AccuracyMetric::Accuracy => s.accuracy,
        AccuracyMetric::F1 => s.f1,
        AccuracyMetric::Recall => s.recall,
        AccuracyMetric::Precision => s.precision,
    })
}

fn accuracy(
    old: Option<&AccuracyStatus>,
    a: &AccuracyMonitor,
    window: &Window,
    positive: Option<&str>,
) -> AccuracyStatus {
    let pairs = window.pair_list();
    let labels: u64 = pairs.iter().map(|p| p.2).sum();
    let labels = i64::try_from(labels).unwrap_or(i64::MAX);
    let value = (labels >= a.min_labels)
        .then(|| score(a.metric, &pairs, positive))
        .flatten();
    let at_promotion = old.and_then(|o| o.at_promotion).or(value);
    let verdict = value.map(|v| {
        let below = a.floor.is_some_and(|f| v < f);
        let dropped = a
            .max_drop
            .zip(at_promotion)
            .is_some_and(|(d, base)| base - v > d);
        below || dropped
    });
    let recent = old.map(|o| o.recent.as_slice()).unwrap_or_default();
    let (recent, persistent) = persist(recent, verdict, &a.persistence);
    AccuracyStatus {
        metric: a.metric.as_str().into(),
        value,
        labels,
        at_promotion,
        recent,
        persistent,
    }
}

/// One evaluation of the stable revision.
///
/// Worked example: drift with the default 2 of 3, windows where petal width drifts, drifts,
/// then not → `recent [true]` (not yet), `[true, true]` → persistent: `DriftDetected`; then
/// `[true, true, false]` → still persistent, no event.
pub fn evaluate(
    old: Option<&MonitoringStatus>,
    i: &Inputs<'_>,
) -> (MonitoringStatus, Vec<Transition>) {
    let old = old.filter(|o| o.revision == i.revision);
    let mut new = MonitoringStatus {
        revision: i.revision.to_string(),
        last_evaluation: Some(i.now.clone()),
        evaluations: old.map_or(0, |o| o.evaluations) + 1,
        ..MonitoringStatus::default()
    };
    let mut problems = Vec::new();
    let positive = i.profile.and_then(|p| p.positive_label.as_deref());
    if let Some(d) = &i.spec.drift {
        match i
            .profile
            .map(|p| drift::evaluate(p, &i.window.feature_counts(), &config(d)))
        {
            Some(Ok(report)) => {
                let prior = old.and_then(|o| o.drift.as_ref());
                new.drift = Some(distribution(
                    prior,
                    report.drift,
                    &report.features,
                    &d.persistence,
                ));
            }
            Some(Err(e)) => problems.push(format!("drift: {e}")),
            None => problems.push("drift: the servers publish no baseline profile".into()),
        }
    }
    if let Some(d) = &i.spec.prediction {
        let counts = i.window.prediction.as_ref().map(|t| t.counts());
        let result = i
            .profile
            .zip(counts.as_ref())
            .map(|(p, c)| drift::evaluate_prediction(p, c, &config(d)));
        let prior = old.and_then(|o| o.prediction.as_ref());
        match result {
            Some(Ok(Some(f))) => {
                let status = distribution(prior, f.drift, std::slice::from_ref(&f), &d.persistence);
                new.prediction = Some(status);
            }
            Some(Ok(None)) => {
                problems.push("prediction: the profile has no prediction baseline".into())
            }
            Some(Err(e)) => problems.push(format!("prediction: {e}")),
            None => new.prediction = Some(distribution(prior, None, &[], &d.persistence)),
        }
    }
    if let Some(a) = &i.spec.accuracy {
        let prior = old.and_then(|o| o.accuracy.as_ref());
        new.accuracy = Some(accuracy(prior, a, i.window, positive));
    }
    new.message = problems.join("; ");
    let transitions = transitions(old, &new);
    (new, transitions)
}

fn transitions(old: Option<&MonitoringStatus>, new: &MonitoringStatus) -> Vec<Transition> {
    let mut out = Vec::new();
    let was = |f: fn(&MonitoringStatus) -> bool| old.is_some_and(f);
    let drift_now = new.drift.as_ref().is_some_and(|d| d.persistent);
    if drift_now != was(|o| o.drift.as_ref().is_some_and(|d| d.persistent)) {
        let features = new
            .drift
            .as_ref()
            .map(|d| d.drifted_features.join(", "))
            .unwrap_or_default();
        out.push(if drift_now {
            warn(
                "DriftDetected",
                format!("input drift on revision {} ({features})", new.revision),
            )
        } else {
            note(
                "DriftCleared",
                format!("no input drift on revision {}", new.revision),
            )
        });
    }
    let shift_now = new.prediction.as_ref().is_some_and(|d| d.persistent);
    if shift_now != was(|o| o.prediction.as_ref().is_some_and(|d| d.persistent)) {
        out.push(if shift_now {
            warn(
                "PredictionShifted",
                format!(
                    "prediction distribution shifted on revision {}",
                    new.revision
                ),
            )
        } else {
            note(
                "PredictionShiftCleared",
                format!(
                    "predictions match the baseline on revision {}",
                    new.revision
                ),
            )
        });
    }
    let degraded_now = new.accuracy.as_ref().is_some_and(|a| a.persistent);
    if degraded_now != was(|o| o.accuracy.as_ref().is_some_and(|a| a.persistent)) {
        let a = new.accuracy.clone().unwrap_or_default();
        let value = a.value.map_or("n/a".into(), |v| format!("{v:.3}"));
        out.push(if degraded_now {
            warn(
                "AccuracyDegraded",
                format!(
                    "{} {value} on {} labels (at promotion {:?})",
                    a.metric, a.labels, a.at_promotion
                ),
            )
        } else {
            note(
                "AccuracyRecovered",
                format!("{} {value} on {} labels", a.metric, a.labels),
            )
        });
    }
    out
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
