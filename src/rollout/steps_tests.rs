//! Step transitions, table by table.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::api::{Measurement, MeasurementVerdict};

fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(1_800_000_000 + secs).unwrap())
}

fn rollout(v: serde_json::Value) -> RolloutSpec {
    serde_json::from_value(v).unwrap()
}

/// Traffic that has reached every weight up to `upto`.
struct Upto(i32);
impl Traffic for Upto {
    fn reached(&self, weight: i32) -> bool {
        weight <= self.0
    }
}

fn progressing(step: i32, started: i64) -> RolloutStatus {
    RolloutStatus {
        phase: RolloutPhase::Progressing,
        current_step: step,
        step_started_at: Some(at(started)),
        started_at: Some(at(0)),
        ..Default::default()
    }
}

#[test]
fn step_transitions_table() {
    let spec = rollout(json!({"steps": [
        {"setWeight": 10},
        {"pause": {"durationSeconds": 30}},
        {"setWeight": 40},
        {"pause": {}},
        {"setWeight": 100}
    ]}));
    // (name, step, step started, now, traffic reached, → step, phase, recheck)
    let rows = [
        (
            "weight not reached",
            0,
            0,
            1,
            0,
            0,
            RolloutPhase::Progressing,
            Some(2),
        ),
        (
            "weight reached, pause starts",
            0,
            0,
            1,
            10,
            1,
            RolloutPhase::Progressing,
            Some(30),
        ),
        (
            "pause running",
            1,
            0,
            20,
            10,
            1,
            RolloutPhase::Progressing,
            Some(10),
        ),
        (
            "pause over, next weight waits",
            1,
            0,
            30,
            10,
            2,
            RolloutPhase::Progressing,
            Some(2),
        ),
        (
            "pause over, weight already there",
            1,
            0,
            30,
            40,
            3,
            RolloutPhase::Paused,
            None,
        ),
        (
            "open pause holds",
            3,
            0,
            999,
            100,
            3,
            RolloutPhase::Paused,
            None,
        ),
        (
            "last weight reached: promote",
            4,
            0,
            1,
            100,
            5,
            RolloutPhase::Promoting,
            None,
        ),
    ];
    for (name, step, started, now, upto, want_step, want_phase, recheck) in rows {
        let mut st = progressing(step, started);
        let out = advance(&spec, &mut st, &Upto(upto), &at(now));
        assert_eq!(st.current_step, want_step, "{name}");
        assert_eq!(st.phase, want_phase, "{name}");
        assert_eq!(out.recheck, recheck.map(Duration::from_secs), "{name}");
        if want_step != step {
            assert_eq!(
                st.step_started_at,
                Some(at(now)),
                "{name}: new step starts now"
            );
        }
    }
}

#[test]
fn weight_follows_the_last_set_weight() {
    let spec = rollout(
        json!({"steps": [{"pause": {}}, {"setWeight": 5}, {"analysis": {"metrics": [
        {"name": "errors", "errorRate": {"max": 0.01}}]}}, {"setWeight": 50}]}),
    );
    let weights: Vec<i32> = (0..5).map(|i| weight_at(&spec, i)).collect();
    assert_eq!(weights, vec![0, 5, 5, 50, 50]);
}

fn measurement(verdict: MeasurementVerdict, secs: i64) -> Measurement {
    Measurement {
        at: at(secs),
        canary: Some(0.0),
        stable: None,
        samples: 100,
        verdict,
        message: String::new(),
    }
}

#[test]
fn an_analysis_step_ends_after_its_count_and_fails_past_its_limit() {
    let spec = rollout(json!({"steps": [{"analysis": {"metrics": [
        {"name": "errors", "errorRate": {"max": 0.01}, "count": 2, "failureLimit": 0}]}},
        {"setWeight": 100}]}));
    let taken = |v, secs| Taken {
        scope: STEP_SCOPE.into(),
        name: "errors".into(),
        measurement: measurement(v, secs),
    };
    // Two good measurements: the step is done.
    let mut st = progressing(0, 0);
    fold(
        &spec,
        &mut st,
        &[taken(MeasurementVerdict::Successful, 10)],
        &at(10),
    );
    advance(&spec, &mut st, &Upto(0), &at(10));
    assert_eq!(st.current_step, 0);
    fold(
        &spec,
        &mut st,
        &[taken(MeasurementVerdict::Successful, 20)],
        &at(20),
    );
    advance(&spec, &mut st, &Upto(0), &at(20));
    assert_eq!(st.current_step, 1);
    assert!(
        st.metrics.iter().all(|m| m.scope != STEP_SCOPE),
        "step metrics reset"
    );
    // One failure past a limit of 0 aborts.
    let mut st = progressing(0, 0);
    let notes = fold(
        &spec,
        &mut st,
        &[taken(MeasurementVerdict::Failed, 10)],
        &at(10),
    );
    assert_eq!(st.phase, RolloutPhase::Aborted);
    assert_eq!(st.abort.as_ref().unwrap().reason, "AnalysisFailed");
    assert_eq!(notes.len(), 1);
    // A measurement for a metric no longer live (the step moved on) is ignored.
    let mut st = progressing(1, 0);
    fold(
        &spec,
        &mut st,
        &[taken(MeasurementVerdict::Failed, 10)],
        &at(10),
    );
    assert_eq!(st.phase, RolloutPhase::Progressing);
}

#[test]
fn inconclusive_pauses_never_aborts() {
    let spec = rollout(json!({"analysis": [
        {"name": "p99", "latency": {"bound": {"maxRatioToStable": 1.2}}, "count": 0, "inconclusiveLimit": 1}],
        "steps": [{"setWeight": 50}]}));
    let mut st = progressing(0, 0);
    for secs in [10, 20] {
        let t = Taken {
            scope: BACKGROUND_SCOPE.into(),
            name: "p99".into(),
            measurement: measurement(MeasurementVerdict::Inconclusive, secs),
        };
        fold(&spec, &mut st, &[t], &at(secs));
    }
    assert_eq!(st.phase, RolloutPhase::Paused);
    assert_eq!(st.pause.as_ref().unwrap().reason, "Inconclusive");
    assert!(st.abort.is_none());
}

#[test]
fn live_metrics_table() {
    let spec = rollout(
        json!({"analysis": [{"name": "bg", "errorRate": {"max": 0.1}}],
        "steps": [{"setWeight": 10}, {"analysis": {"metrics": [{"name": "inline", "errorRate": {"max": 0.1}}]}}]}),
    );
    let names = |st: &RolloutStatus| -> Vec<String> {
        live_metrics(&spec, st)
            .iter()
            .map(|l| format!("{}:{}", l.scope, l.metric.name))
            .collect()
    };
    assert_eq!(names(&progressing(0, 0)), vec!["background:bg"]);
    assert_eq!(
        names(&progressing(1, 5)),
        vec!["background:bg", "step:inline"]
    );
    let mut paused = progressing(1, 5);
    paused.phase = RolloutPhase::Paused;
    assert!(
        names(&paused).is_empty(),
        "nothing is measured while paused"
    );
}

#[test]
fn remaining_and_steps_hash() {
    assert_eq!(remaining(&at(0), 30, &at(10)), Duration::from_secs(20));
    assert_eq!(remaining(&at(0), 30, &at(40)), Duration::ZERO);
    let a = rollout(json!({"steps": [{"setWeight": 10}]}));
    let b = rollout(json!({"steps": [{"setWeight": 20}]}));
    assert_ne!(steps_hash(&a), steps_hash(&b));
    assert_eq!(steps_hash(&a), steps_hash(&a.clone()));
}
