//! Prometheus metrics of the operator: reconciles by result, errors by reason (the error's
//! `reason()`), reconcile duration, and whether this replica holds the leader lease.

use std::{sync::Arc, time::Duration};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The operator's metrics, cheap to clone.
#[derive(Clone)]
pub struct ControllerMetrics {
    registry: Arc<Registry>,
    reconciles: Family<ResultLabels, Counter>,
    errors: Family<ReasonLabels, Counter>,
    duration: Histogram,
    leader: Gauge,
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
        Self {
            registry: Arc::new(registry),
            reconciles,
            errors,
            duration,
            leader,
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
