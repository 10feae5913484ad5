use std::collections::BTreeMap;

use super::*;
use crate::{monitor::window::Tally, retrain::decide::at};

/// Two numeric features with four equal quantile bins of 1,000 training rows each, and classes.
const PROFILE: &str = r#"{"version": 2, "rows": 1000, "positive_label": "1",
  "features": [
    {"name": "a", "index": 0, "edges": [1, 2, 3], "counts": [250, 250, 250, 250]},
    {"name": "b", "index": 1, "edges": [1, 2, 3], "counts": [250, 250, 250, 250]}],
  "prediction": {"kind": "categorical",
                 "categories": [{"value": "0", "count": 500}, {"value": "1", "count": 500}]}}"#;

fn spec() -> MonitoringSpec {
    serde_json::from_value(serde_json::json!({
        "intervalSeconds": 30,
        "drift": {"persistence": {"windows": 3, "required": 2}},
        "prediction": {"persistence": {"windows": 1, "required": 1}},
        "accuracy": {"floor": 0.8, "maxDrop": 0.1, "minLabels": 20},
    }))
    .unwrap()
}

fn bins(v: [u64; 4]) -> Tally {
    Tally::Bins(v.into_iter().enumerate().collect())
}

/// A window of 400 rows: `a` as given, `b` always in distribution; classes and labels.
fn window(a: [u64; 4], classes: [u64; 2], right: u64, wrong: u64) -> Window {
    let pair = |a: &str, p: &str| (a.to_string(), p.to_string());
    Window {
        features: BTreeMap::from([("a".into(), bins(a)), ("b".into(), bins([100; 4]))]),
        prediction: Some(Tally::Categories(BTreeMap::from([
            ("0".into(), classes[0]),
            ("1".into(), classes[1]),
        ]))),
        pairs: BTreeMap::from([(pair("1", "1"), right), (pair("0", "1"), wrong)]),
        pods: 2,
    }
}

const CALM: [u64; 4] = [100, 100, 100, 100];
const SHIFTED: [u64; 4] = [20, 60, 120, 200];

fn step(
    old: Option<&MonitoringStatus>,
    w: &Window,
    revision: &str,
) -> (MonitoringStatus, Vec<&'static str>) {
    let profile = BaselineProfile::from_json(PROFILE).unwrap();
    let spec = spec();
    let now = at(1_800_000_000 + old.map_or(0, |o| o.evaluations) * 30);
    let inputs = Inputs {
        spec: &spec,
        profile: Some(&profile),
        window: w,
        revision,
        now: &now,
    };
    let (status, transitions) = evaluate(old, &inputs);
    (status, transitions.iter().map(|t| t.reason).collect())
}

#[test]
fn persistence_table() {
    let p = Persistence {
        windows: 3,
        required: 2,
    };
    // (recent, verdict, recent after, persistent)
    type Case<'a> = (&'a [bool], Option<bool>, &'a [bool], bool);
    let cases: [Case; 6] = [
        (&[], Some(true), &[true], false),
        (&[true], Some(true), &[true, true], true),
        (&[true, false], Some(true), &[true, false, true], true),
        (
            &[true, false, true],
            Some(false),
            &[false, true, false],
            false,
        ),
        (&[true, true], None, &[true, true], true),
        (&[], None, &[], false),
    ];
    for (recent, verdict, want, persistent) in cases {
        assert_eq!(
            persist(recent, verdict, &p),
            (want.to_vec(), persistent),
            "{recent:?} + {verdict:?}"
        );
    }
    let one = Persistence {
        windows: 1,
        required: 1,
    };
    assert_eq!(persist(&[false], Some(true), &one), (vec![true], true));
}

#[test]
fn drift_must_persist_and_clears_the_same_way() {
    let calm = window(CALM, [200, 200], 190, 10);
    let shifted = window(SHIFTED, [200, 200], 190, 10);
    let (s1, t1) = step(None, &calm, "r1");
    let d = s1.drift.as_ref().unwrap();
    assert_eq!((d.drift, d.persistent), (Some(false), false));
    assert_eq!(d.features.len(), 2);
    assert!(
        d.features
            .iter()
            .all(|f| f.method == "KS" && f.samples == 400)
    );
    assert!(t1.is_empty());

    let (s2, t2) = step(Some(&s1), &shifted, "r1");
    assert_eq!(s2.drift.as_ref().unwrap().recent, [false, true]);
    assert!(t2.is_empty(), "one window is not persistence");
    let (s3, t3) = step(Some(&s2), &shifted, "r1");
    let d3 = s3.drift.as_ref().unwrap();
    assert!(d3.persistent);
    assert_eq!(d3.drifted_features, ["a"]);
    let a = &d3.features[0];
    assert!(a.p_value.unwrap() < a.threshold, "{a:?}");
    assert_eq!(a.threshold, 0.05 / 2.0, "Bonferroni over two features");
    assert_eq!(t3, ["DriftDetected"]);
    let (s4, _) = step(Some(&s3), &calm, "r1");
    assert!(
        s4.drift.as_ref().unwrap().persistent,
        "2 of the last 3 still drifted"
    );
    let (s5, t5) = step(Some(&s4), &calm, "r1");
    assert!(!s5.drift.as_ref().unwrap().persistent);
    assert_eq!(t5, ["DriftCleared"]);
    assert_eq!(s5.evaluations, 5);
}

#[test]
fn a_new_revision_starts_over() {
    let shifted = window(SHIFTED, [200, 200], 190, 10);
    let (s1, _) = step(None, &shifted, "r1");
    let (s2, _) = step(Some(&s1), &shifted, "r1");
    assert!(s2.drift.as_ref().unwrap().persistent);
    let (s3, t3) = step(Some(&s2), &window(CALM, [200, 200], 150, 50), "r2");
    assert_eq!((s3.revision.as_str(), s3.evaluations), ("r2", 1));
    assert_eq!(s3.drift.as_ref().unwrap().recent, [false]);
    assert_eq!(s3.accuracy.as_ref().unwrap().at_promotion, Some(0.75));
    assert!(t3.is_empty());
}

#[test]
fn accuracy_against_floor_and_drop_from_promotion() {
    // Binary scores for positive "1": all predictions are "1", so accuracy = right / total.
    let rows = |right, wrong| window(CALM, [200, 200], right, wrong);
    let (s1, _) = step(None, &rows(95, 5), "r1");
    let a1 = s1.accuracy.as_ref().unwrap();
    assert_eq!(
        (a1.value, a1.at_promotion, a1.labels),
        (Some(0.95), Some(0.95), 100)
    );
    assert_eq!(a1.recent, [false]);
    // 0.84: above the floor but 0.11 below promotion → degraded.
    let (s2, _) = step(Some(&s1), &rows(84, 16), "r1");
    assert_eq!(s2.accuracy.as_ref().unwrap().recent, [false, true]);
    // Too few labels: no verdict, the value is absent, the promotion value stays.
    let (s3, _) = step(Some(&s2), &rows(5, 5), "r1");
    let a3 = s3.accuracy.as_ref().unwrap();
    assert_eq!(
        (a3.value, a3.at_promotion, a3.recent.len()),
        (None, Some(0.95), 2)
    );
    // 0.7: below the floor → second degraded window of three → persistent.
    let (s4, t4) = step(Some(&s3), &rows(70, 30), "r1");
    assert!(s4.accuracy.as_ref().unwrap().persistent);
    assert_eq!(t4, ["AccuracyDegraded"]);
}

#[test]
fn prediction_shift_and_problems_are_reported() {
    let (s, t) = step(None, &window(CALM, [40, 360], 190, 10), "r1");
    let p = s.prediction.as_ref().unwrap();
    assert_eq!((p.drift, p.persistent), (Some(true), true));
    assert_eq!(p.features[0].method, "ChiSquare");
    assert_eq!(t, ["PredictionShifted"]);

    // Without a profile: no drift verdict, a message saying why, accuracy still judged.
    let spec = spec();
    let now = at(1_800_000_000);
    let w = window(CALM, [200, 200], 190, 10);
    let inputs = Inputs {
        spec: &spec,
        profile: None,
        window: &w,
        revision: "r1",
        now: &now,
    };
    let (s, _) = evaluate(None, &inputs);
    assert!(s.drift.is_none());
    assert!(s.message.contains("no baseline profile"), "{}", s.message);
    assert!(s.accuracy.is_some());
}
