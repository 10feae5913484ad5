//! Prometheus metrics of the operator: reconciles by result, errors by reason (the error's
//! `reason()`), reconcile duration, whether this replica holds the leader lease, and per
//! ModelDeployment the rollout phase, the canary weight, the analysis verdicts, the autoscaler's
//! decisions, what monitoring found and how retrainings ended.

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

use crate::api::{MeasurementVerdict, MonitoringStatus, RolloutPhase};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    namespace: String,
    name: String,
    phase: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TrackLabels {
    namespace: String,
    name: String,
    track: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FeatureLabels {
    namespace: String,
    name: String,
    feature: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    namespace: String,
    name: String,
    outcome: String,
}

type FloatGauge = Gauge<f64, std::sync::atomic::AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerdictLabels {
    namespace: String,
    name: String,
    metric: String,
    verdict: &'static str,
}

/// Every rollout phase, so the phase gauge has exactly one series at 1.
const PHASES: [RolloutPhase; 6] = [
    RolloutPhase::Stable,
    RolloutPhase::Checking,
    RolloutPhase::Progressing,
    RolloutPhase::Paused,
    RolloutPhase::Promoting,
    RolloutPhase::Aborted,
];

fn phase_name(p: RolloutPhase) -> &'static str {
    match p {
        RolloutPhase::Stable => "Stable",
        RolloutPhase::Checking => "Checking",
        RolloutPhase::Progressing => "Progressing",
        RolloutPhase::Paused => "Paused",
        RolloutPhase::Promoting => "Promoting",
        RolloutPhase::Aborted => "Aborted",
    }
}

/// The operator's metrics, cheap to clone.
#[derive(Clone)]
pub struct ControllerMetrics {
    registry: Arc<Registry>,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ReasonLabels, Counter>,
    duration: Histogram,
    leader: Gauge,
    rollout_phase: Family<PhaseLabels, Gauge>,
    weight: Family<ObjectLabels, Gauge>,
    verdicts: Family<VerdictLabels, Counter>,
    scale_desired: Family<TrackLabels, Gauge>,
    scale_observed: Family<TrackLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    scale_panic: Family<TrackLabels, Gauge>,
    drifted: Family<ObjectLabels, Gauge>,
    accuracy_degraded: Family<ObjectLabels, Gauge>,
    accuracy: Family<ObjectLabels, FloatGauge>,
    drift_statistic: Family<FeatureLabels, FloatGauge>,
    retrainings: Family<OutcomeLabels, Counter>,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ControllerMetrics {
    /// Register every metric under the `modelpilot_controller` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("modelpilot_controller");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let errors = Family::<ReasonLabels, Counter>::default();
        let duration = Histogram::new([
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ]);
        let leader = Gauge::default();
        registry.register(
            "reconciles",
            "Reconciles by result (ok or error)",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconcile errors by reason",
            errors.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Duration of one reconcile",
            prometheus_client::registry::Unit::Seconds,
            duration.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        let rollout_phase = Family::<PhaseLabels, Gauge>::default();
        let weight = Family::<ObjectLabels, Gauge>::default();
        let verdicts = Family::<VerdictLabels, Counter>::default();
        registry.register(
            "rollout_phase",
            "1 for the rollout phase each ModelDeployment is in",
            rollout_phase.clone(),
        );
        registry.register(
            "rollout_weight",
            "Share of traffic (percent) the canary has",
            weight.clone(),
        );
        registry.register(
            "analysis_measurements",
            "Analysis measurements by metric and verdict",
            verdicts.clone(),
        );
        let scale_desired = Family::<TrackLabels, Gauge>::default();
        let scale_observed =
            Family::<TrackLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let scale_panic = Family::<TrackLabels, Gauge>::default();
        registry.register(
            "autoscaler_desired_replicas",
            "Pods the built-in autoscaler decided, per ModelDeployment and track",
            scale_desired.clone(),
        );
        registry.register(
            "autoscaler_observed_per_pod",
            "The scaling metric per ready pod over the stable window",
            scale_observed.clone(),
        );
        registry.register(
            "autoscaler_panic",
            "1 while the autoscaler is in panic mode",
            scale_panic.clone(),
        );
        let drifted = Family::<ObjectLabels, Gauge>::default();
        let accuracy_degraded = Family::<ObjectLabels, Gauge>::default();
        let accuracy = Family::<ObjectLabels, FloatGauge>::default();
        let drift_statistic = Family::<FeatureLabels, FloatGauge>::default();
        let retrainings = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "monitoring_drifted",
            "1 while input drift or a prediction shift persists on the stable revision",
            drifted.clone(),
        );
        registry.register(
            "monitoring_accuracy_degraded",
            "1 while accuracy on label feedback stays degraded on the stable revision",
            accuracy_degraded.clone(),
        );
        registry.register(
            "monitoring_accuracy",
            "The monitored score (accuracy, F1, recall or precision) over the last window",
            accuracy.clone(),
        );
        registry.register(
            "monitoring_drift_statistic",
            "Each feature's drift statistic (KS D, chi-square, PSI or JS) in the last window",
            drift_statistic.clone(),
        );
        registry.register(
            "retrainings",
            "Retrainings that ended, by outcome (Promoted, RolledBack, Failed, TimedOut, Superseded)",
            retrainings.clone(),
        );
        Self {
            registry: Arc::new(registry),
            drifted,
            accuracy_degraded,
            accuracy,
            drift_statistic,
            retrainings,
            reconciles,
            errors,
            duration,
            leader,
            rollout_phase,
            weight,
            verdicts,
            scale_desired,
            scale_observed,
            scale_panic,
        }
    }

    /// Record one reconcile; `error_reason` is `None` on success.
    pub fn observe(&self, took: Duration, error_reason: Option<&'static str>) {
        self.duration.observe(took.as_secs_f64());
        let result = if error_reason.is_some() {
            "error"
        } else {
            "ok"
        };
        self.reconciles
            .get_or_create(&ResultLabels { result })
            .inc();
        if let Some(reason) = error_reason {
            self.errors.get_or_create(&ReasonLabels { reason }).inc();
        }
    }

    /// Set the leader gauge.
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Record a ModelDeployment's rollout phase and applied canary weight.
    pub fn rollout(&self, namespace: &str, name: &str, phase: RolloutPhase, weight: i32) {
        for p in PHASES {
            self.rollout_phase
                .get_or_create(&PhaseLabels {
                    namespace: namespace.into(),
                    name: name.into(),
                    phase: phase_name(p),
                })
                .set(i64::from(p == phase));
        }
        self.weight
            .get_or_create(&ObjectLabels {
                namespace: namespace.into(),
                name: name.into(),
            })
            .set(i64::from(weight));
    }

    /// Record one autoscaler decision for a track (`stable`, `canary`).
    pub fn autoscaler(
        &self,
        namespace: &str,
        name: &str,
        track: &str,
        desired: i32,
        observed: f64,
        panic: bool,
    ) {
        let labels = TrackLabels {
            namespace: namespace.into(),
            name: name.into(),
            track: track.into(),
        };
        self.scale_desired
            .get_or_create(&labels)
            .set(i64::from(desired));
        self.scale_observed.get_or_create(&labels).set(observed);
        self.scale_panic
            .get_or_create(&labels)
            .set(i64::from(panic));
    }

    /// Record the last monitoring evaluation of a ModelDeployment.
    pub fn monitoring(&self, namespace: &str, name: &str, m: &MonitoringStatus) {
        let object = ObjectLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        let drifted = m.drift.as_ref().is_some_and(|d| d.persistent)
            || m.prediction.as_ref().is_some_and(|d| d.persistent);
        self.drifted.get_or_create(&object).set(i64::from(drifted));
        if let Some(a) = &m.accuracy {
            self.accuracy_degraded
                .get_or_create(&object)
                .set(i64::from(a.persistent));
            if let Some(v) = a.value {
                self.accuracy.get_or_create(&object).set(v);
            }
        }
        let features = m
            .drift
            .iter()
            .chain(m.prediction.iter())
            .flat_map(|d| &d.features);
        for f in features {
            let labels = FeatureLabels {
                namespace: namespace.into(),
                name: name.into(),
                feature: f.name.clone(),
            };
            self.drift_statistic.get_or_create(&labels).set(f.statistic);
        }
    }

    /// Count a retraining that ended with `outcome`.
    pub fn retraining_ended(&self, namespace: &str, name: &str, outcome: &str) {
        self.retrainings
            .get_or_create(&OutcomeLabels {
                namespace: namespace.into(),
                name: name.into(),
                outcome: outcome.into(),
            })
            .inc();
    }

    /// Count one analysis measurement.
    pub fn verdict(&self, namespace: &str, name: &str, metric: &str, verdict: MeasurementVerdict) {
        let verdict = match verdict {
            MeasurementVerdict::Successful => "Successful",
            MeasurementVerdict::Failed => "Failed",
            MeasurementVerdict::Inconclusive => "Inconclusive",
            MeasurementVerdict::Error => "Error",
        };
        self.verdicts
            .get_or_create(&VerdictLabels {
                namespace: namespace.into(),
                name: name.into(),
                metric: metric.into(),
                verdict,
            })
            .inc();
    }

    /// The exposition text for `/metrics`.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_result_and_reason() {
        let m = ControllerMetrics::new();
        m.observe(Duration::from_millis(3), None);
        m.observe(Duration::from_millis(7), Some("InvalidSpec"));
        m.set_leader(true);
        let text = m.encode().unwrap_or_default();
        assert!(
            text.contains(r#"modelpilot_controller_reconciles_total{result="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"modelpilot_controller_reconcile_errors_total{reason="InvalidSpec"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("modelpilot_controller_reconcile_duration_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("modelpilot_controller_leader 1"), "{text}");
    }
}
