//! Per-kind judging of counters: one row per kind and outcome.

use std::collections::BTreeMap;

use super::*;
use crate::analysis::snapshot::Buckets;
use crate::api::{
    LatencyMetric,
    MeasurementVerdict::{Error, Failed, Inconclusive, Successful},
    ScoreMetric,
};

const INF: f64 = f64::INFINITY;

fn max(v: f64) -> Bound {
    Bound {
        max: Some(v),
        ..Bound::default()
    }
}

fn base() -> AnalysisMetric {
    AnalysisMetric {
        name: "m".into(),
        min_sample: 10,
        ..AnalysisMetric::default()
    }
}

fn requests(n: f64, errors: f64) -> Counts {
    Counts {
        requests: n,
        errors,
        ..Counts::default()
    }
}

fn classes(rows: &[(&str, f64)]) -> Counts {
    Counts {
        predictions: rows.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        ..Counts::default()
    }
}

#[test]
fn kinds_of_metrics() {
    let none = base();
    assert!(Kind::of(&none).unwrap_err().contains("measures nothing"));
    let relative = Bound {
        max_ratio_to_stable: Some(1.5),
        ..Bound::default()
    };
    let rows: Vec<(AnalysisMetric, &str, bool)> = vec![
        (
            AnalysisMetric {
                error_rate: Some(max(0.1)),
                ..base()
            },
            "errorRate",
            false,
        ),
        (
            AnalysisMetric {
                error_rate: Some(relative.clone()),
                ..base()
            },
            "errorRate",
            true,
        ),
        (
            AnalysisMetric {
                latency: Some(LatencyMetric {
                    quantile: 0.99,
                    bound: relative.clone(),
                }),
                ..base()
            },
            "latency q0.99",
            true,
        ),
        (
            AnalysisMetric {
                accuracy: Some(ScoreMetric {
                    score: Score::F1,
                    bound: max(1.0),
                }),
                ..base()
            },
            "f1",
            false,
        ),
        (
            AnalysisMetric {
                prediction_shift: Some(max(0.1)),
                ..base()
            },
            "predictionShift",
            true,
        ),
        (
            AnalysisMetric {
                input_drift: Some(max(0.2)),
                ..base()
            },
            "inputDrift",
            false,
        ),
        (
            AnalysisMetric {
                query: Some(QueryMetric {
                    promql: "x".into(),
                    success: Some(relative),
                    failure: None,
                }),
                ..base()
            },
            "query",
            true,
        ),
    ];
    for (metric, label, stable) in rows {
        let kind = Kind::of(&metric).unwrap();
        assert_eq!(kind.label(), label);
        assert_eq!(kind.needs_stable(), stable, "{label}");
    }
}

#[test]
fn judging_counts_by_kind() {
    let inc = Bound {
        max_increase_over_stable: Some(0.01),
        ..Bound::default()
    };
    let err = AnalysisMetric {
        error_rate: Some(inc),
        ..base()
    };
    let lat = AnalysisMetric {
        latency: Some(LatencyMetric {
            quantile: 0.5,
            bound: max(0.2),
        }),
        ..base()
    };
    let acc = AnalysisMetric {
        accuracy: Some(ScoreMetric {
            score: Score::Accuracy,
            bound: Bound {
                min: Some(0.9),
                ..Bound::default()
            },
        }),
        ..base()
    };
    let shift = AnalysisMetric {
        prediction_shift: Some(max(0.1)),
        ..base()
    };
    let shift_rel = AnalysisMetric {
        prediction_shift: Some(Bound {
            max_ratio_to_stable: Some(1.0),
            ..Bound::default()
        }),
        ..base()
    };
    let drift = AnalysisMetric {
        input_drift: Some(max(0.2)),
        ..base()
    };
    let slow = Counts {
        latency: Buckets(vec![(0.1, 10.0), (0.5, 30.0), (INF, 40.0)]),
        ..Counts::default()
    };
    let labelled = Counts {
        labels: BTreeMap::from([
            (("a".to_string(), "a".to_string()), 17.0),
            (("a".to_string(), "b".to_string()), 3.0),
        ]),
        ..Counts::default()
    };
    let mut drifted = Counts::default();
    drifted
        .baseline
        .insert("f".into(), vec![(1.0, 0.5), (INF, 0.5)]);
    drifted
        .features
        .insert("f".into(), Buckets(vec![(1.0, 75.0), (INF, 100.0)]));
    type Row<'a> = (
        &'a str,
        &'a AnalysisMetric,
        Counts,
        Option<Counts>,
        MeasurementVerdict,
        Option<f64>,
        Option<f64>,
        i64,
    );
    // (what, metric, canary counts, stable counts, verdict, canary value, stable value, samples)
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("error rate within stable + 0.01", &err, requests(100.0, 2.0), Some(requests(100.0, 1.0)), Successful, Some(0.02), Some(0.01), 100),
        ("error rate above stable + 0.01", &err, requests(100.0, 3.0), Some(requests(100.0, 1.0)), Failed, Some(0.03), Some(0.01), 100),
        ("error rate, stable idle", &err, requests(100.0, 3.0), Some(requests(0.0, 0.0)), Inconclusive, Some(0.03), None, 100),
        ("error rate, canary idle", &err, requests(0.0, 0.0), Some(requests(100.0, 0.0)), Inconclusive, None, Some(0.0), 0),
        // rank 20 in (0.1, 0.5] holding 10..30 → 0.3
        ("p50 above 0.2 s", &lat, slow, None, Failed, Some(0.3), None, 40),
        ("accuracy 17/20 below 0.9", &acc, labelled, None, Failed, Some(0.85), None, 20),
        ("shift of identical outputs", &shift, classes(&[("a", 30.0)]), Some(classes(&[("a", 10.0)])), Successful, Some(0.0), None, 10),
        ("shift of disjoint outputs", &shift, classes(&[("a", 30.0)]), Some(classes(&[("b", 10.0)])), Failed, Some(1.0), None, 10),
        ("shift with too few stable rows", &shift, classes(&[("a", 30.0)]), Some(classes(&[("a", 9.0)])), Inconclusive, Some(0.0), None, 9),
        ("shift with a relative bound", &shift_rel, classes(&[("a", 30.0)]), Some(classes(&[("a", 9.0)])), Error, None, None, 0),
        ("drift without a baseline", &drift, Counts::default(), None, Error, None, None, 0),
        ("drift 0.2747 above 0.2", &drift, drifted, None, Failed, Some(psi_75_25()), None, 100),
    ];
    for (what, metric, canary, stable, verdict, c, s, samples) in rows {
        let judged = judge_counts(Kind::of(metric).unwrap(), metric, &canary, stable.as_ref());
        assert_eq!(judged.verdict, verdict, "{what}: {}", judged.message);
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() < 1e-6,
            (a, b) => a == b,
        };
        assert!(
            close(judged.canary, c),
            "{what}: canary {:?}",
            judged.canary
        );
        assert!(
            close(judged.stable, s),
            "{what}: stable {:?}",
            judged.stable
        );
        assert_eq!(judged.samples, samples, "{what}");
    }
}

/// PSI of [75, 25] against [0.5, 0.5] (see values.rs).
fn psi_75_25() -> f64 {
    0.25 * 1.5f64.ln() + 0.25 * 2f64.ln()
}

#[test]
fn judging_query_values() {
    let q = |success: Option<Bound>, failure: Option<Bound>| QueryMetric {
        promql: "x".into(),
        success,
        failure,
    };
    let ratio = Bound {
        max_ratio_to_stable: Some(1.1),
        ..Bound::default()
    };
    type Row = (
        QueryMetric,
        Option<f64>,
        Option<f64>,
        MeasurementVerdict,
        Option<f64>,
    );
    let rows: Vec<Row> = vec![
        (q(Some(max(5.0)), None), Some(4.0), None, Successful, None),
        (q(Some(max(5.0)), None), Some(6.0), None, Failed, None),
        (q(Some(max(5.0)), None), None, None, Inconclusive, None),
        (
            q(Some(ratio.clone()), None),
            Some(1.0),
            Some(1.0),
            Successful,
            Some(1.0),
        ),
        (
            q(Some(ratio.clone()), None),
            Some(1.2),
            Some(1.0),
            Failed,
            Some(1.0),
        ),
        (q(Some(ratio), None), Some(1.2), None, Inconclusive, None),
        (q(None, Some(max(5.0))), Some(4.0), None, Failed, None),
        (q(None, Some(max(5.0))), Some(6.0), None, Successful, None),
        (q(None, None), Some(6.0), None, Error, None),
    ];
    for (query, canary, stable, verdict, kept_stable) in rows {
        let judged = judge_query(&query, canary, stable);
        assert_eq!(
            judged.verdict, verdict,
            "{query:?} {canary:?}: {}",
            judged.message
        );
        assert_eq!(judged.stable, kept_stable);
        assert_eq!(judged.samples, 0);
        assert!(judged.message.starts_with("query: "));
    }
}
