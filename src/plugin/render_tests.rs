//! The status summary rendered from fixtures, compared whole: the layout is the interface.

use serde_json::json;

use super::*;
use crate::{
    api::RetrainRecord,
    plugin::fixtures::{bare, monitoring, now, paused, retrained, retraining as records},
};

#[test]
fn a_paused_rollout_shows_everything() {
    let want = "\
Name:         ml/iris
Phase:        Paused (ModelDeployment Ready, 3/3 ready)
Stable:       v1 (revision aaaaaaaaaa) s3://models/iris/1/model.onnx sha256:1a2b3c4d5e6f
Canary:       v2 (revision cccccccccc) s3://models/iris/2/model.onnx
Step:         2/4: pause 60s
Step started: 2025-01-01T11:59:15Z (45s ago)
Weight:       desired 20%, applied 20%
Paused:       PauseStep: waiting 60s; since 2025-01-01T11:59:15Z (45s ago)
Analysis:
  error-rate (background): 2 taken, 1 successful, 0 failed, 1 inconclusive
    2025-01-01T11:59:30Z (30s ago)  canary 0  stable 0  samples 4  Inconclusive: 4 samples, need 20
    2025-01-01T11:59:50Z (10s ago)  canary 0.0125  stable 4.00e-5  samples 160  Successful
Last request: promote Done: moved to step 2; at 2025-01-01T11:58:00Z (2m0s ago), id 20250101T115800Z-0000abcd
";
    assert_eq!(render_status(&paused(), now()), want);
}

#[test]
fn an_object_without_status() {
    let want = "\
Name:         ml/iris
Phase:        Stable (ModelDeployment Pending, 0/3 ready)
Stable:       none yet
Canary:       none
";
    assert_eq!(render_status(&bare(), now()), want);
}

#[test]
fn before_any_rollout_the_current_revision_is_the_stable_one() {
    let mut mdep = bare();
    mdep.status = Some(
        serde_json::from_value(json!({
            "phase": "Ready", "readyReplicas": 3,
            "revision": {"name": "dddddddddd", "uri": "s3://models/iris/1/model.onnx"}
        }))
        .unwrap(),
    );
    let out = render_status(&mdep, now());
    assert!(
        out.contains(
            "Stable:       unversioned (revision dddddddddd) s3://models/iris/1/model.onnx\n"
        ),
        "{out}"
    );
    assert!(out.contains("Phase:        Stable (ModelDeployment Ready, 3/3 ready)\n"));
}

#[test]
fn an_aborted_rollout_says_why() {
    let mut mdep = paused();
    let rollout = mdep
        .status
        .as_mut()
        .and_then(|s| s.rollout.as_mut())
        .unwrap();
    *rollout = serde_json::from_value(json!({
        "phase": "Aborted",
        "canary": {"name": "cccccccccc", "uri": "s3://models/iris/2/model.onnx", "version": "v2"},
        "currentStep": 2,
        "desiredWeight": 0,
        "appliedWeight": 0,
        "abort": {"reason": "AnalysisFailed", "message": "error-rate 0.2 > 0.01",
                  "at": "2025-01-01T10:00:00Z"},
        "metrics": [{"name": "latency", "scope": "step", "taken": 1, "failed": 1,
                     "consecutiveErrors": 2,
                     "measurements": [{"at": "2025-01-01T09:59:00Z", "verdict": "Error",
                                       "message": "connection refused"}]}]
    }))
    .unwrap();
    let out = render_status(&mdep, now());
    for want in [
        "Phase:        Aborted (ModelDeployment Ready, 3/3 ready)\n",
        "Step:         3/4: analysis (error-rate, latency)\n",
        "Weight:       desired 0%, applied 0%\n",
        "Aborted:      AnalysisFailed: error-rate 0.2 > 0.01; at 2025-01-01T10:00:00Z (2h0m ago)\n",
        "  latency (step): 1 taken, 0 successful, 1 failed, 0 inconclusive, 2 source error(s) in a row\n",
        "    2025-01-01T09:59:00Z (2h1m ago)  canary -  stable -  samples 0  Error: connection refused\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    assert!(!out.contains("Paused:"), "{out}");
    assert!(!out.contains("Last request:"), "{out}");
}

#[test]
fn steps_read_as_written() {
    let steps: Vec<RolloutStep> = serde_json::from_value(json!([
        {"setWeight": 10},
        {"pause": {}},
        {"pause": {"durationSeconds": 300}},
        {"analysis": {"metrics": [{"name": "accuracy", "accuracy": {"bound": {"min": 0.9}}}]}},
        {}
    ]))
    .unwrap();
    let cases = [
        (0, "1/5: setWeight 10%"),
        (1, "2/5: pause until promoted"),
        (2, "3/5: pause 300s"),
        (3, "4/5: analysis (accuracy)"),
        (4, "5/5: empty step"),
        (5, "5/5: all steps done"),
        (-1, "1/5: setWeight 10%"),
    ];
    for (current, want) in cases {
        assert_eq!(step(current, &steps), want, "step {current}");
    }
}

#[test]
fn values_keep_their_meaning() {
    let cases = [
        (None, "-"),
        (Some(0.0), "0"),
        (Some(-0.0), "0"),
        (Some(0.5), "0.5"),
        (Some(0.01234), "0.0123"),
        (Some(120.0), "120"),
        (Some(0.00004), "4.00e-5"),
        (Some(-2.5), "-2.5"),
    ];
    for (v, want) in cases {
        assert_eq!(value(v), want, "{v:?}");
    }
}

#[test]
fn tables_pad_all_but_the_last_column() {
    let rows = [
        vec!["1".to_string(), "long cell".into(), "x".into()],
        vec!["22".to_string(), "s".into(), String::new()],
    ];
    let want = "A   B          C\n1   long cell  x\n22  s\n";
    assert_eq!(table(&["A", "B", "C"], rows.into_iter()), want);
}

#[test]
fn monitoring_and_retraining_follow_the_rollout() {
    let want = "\
Name:         ml/iris
Phase:        Paused (ModelDeployment Ready, 3/3 ready)
Stable:       v1 (revision aaaaaaaaaa) s3://models/iris/1/model.onnx sha256:1a2b3c4d5e6f
Canary:       v2 (revision cccccccccc) s3://models/iris/2/model.onnx
Step:         2/4: pause 60s
Step started: 2025-01-01T11:59:15Z (45s ago)
Weight:       desired 20%, applied 20%
Paused:       PauseStep: waiting 60s; since 2025-01-01T11:59:15Z (45s ago)
Analysis:
  error-rate (background): 2 taken, 1 successful, 0 failed, 1 inconclusive
    2025-01-01T11:59:30Z (30s ago)  canary 0  stable 0  samples 4  Inconclusive: 4 samples, need 20
    2025-01-01T11:59:50Z (10s ago)  canary 0.0125  stable 4.00e-5  samples 160  Successful
Last request: promote Done: moved to step 2; at 2025-01-01T11:58:00Z (2m0s ago), id 20250101T115800Z-0000abcd
Monitoring:   revision aaaaaaaaaa, 42 evaluation(s), last 2025-01-01T11:59:00Z (1m0s ago)
  drift:      drifted: petal_length, petal_width (1200 samples); 2 of the last 3 windows drifted, persistent (Drifted)
  prediction: no shift (1180 samples); 0 of the last 3 windows shifted
  feedback:   accuracy 0.81 vs 0.95 at promotion (200 labels); 2 of the last 3 windows degraded, persistent (AccuracyDegraded)
Retraining:   #3 Candidate: v2 s3://models/iris/2/model.onnx from Job iris-retrain-3, in the rollout; Drift (petal_length, petal_width)
";
    assert_eq!(render_status(&retrained(), now()), want);
}

#[test]
fn distributions_read_as_verdicts() {
    let base: MonitoringStatus = serde_json::from_value(monitoring()).unwrap();
    let Some(drift) = base.drift else {
        panic!("fixture has drift")
    };
    let quiet = DistributionStatus {
        drift: Some(false),
        recent: vec![true, false],
        persistent: false,
        drifted_features: vec![],
        ..drift.clone()
    };
    let too_few = DistributionStatus {
        drift: None,
        recent: vec![],
        persistent: false,
        drifted_features: vec![],
        features: vec![],
    };
    let many = DistributionStatus {
        drifted_features: (0..8).map(|i| format!("f{i}")).collect(),
        ..drift.clone()
    };
    let cases = [
        (
            "persistent drift names features and the condition",
            &drift,
            Finding::Drift,
            "drifted: petal_length, petal_width (1200 samples); 2 of the last 3 windows drifted, persistent (Drifted)",
        ),
        (
            "a prediction shift names no features",
            &drift,
            Finding::Shift,
            "shifted (1200 samples); 2 of the last 3 windows shifted, persistent",
        ),
        (
            "no drift now, not persistent",
            &quiet,
            Finding::Drift,
            "no drift (1200 samples); 1 of the last 2 windows drifted",
        ),
        (
            "before any verdict",
            &too_few,
            Finding::Drift,
            "no verdict (too few samples)",
        ),
        (
            "many features",
            &many,
            Finding::Drift,
            "drifted: f0, f1, f2, f3, f4, +3 more (1200 samples); 2 of the last 3 windows drifted, persistent (Drifted)",
        ),
    ];
    for (case, d, finding, want) in cases {
        assert_eq!(distribution(d, finding), want, "{case}");
    }
}

#[test]
fn feedback_compares_with_promotion() {
    let cases = [
        (
            json!({"metric": "accuracy", "value": 0.81, "labels": 200, "atPromotion": 0.95,
                   "recent": [false, true, true], "persistent": true}),
            "accuracy 0.81 vs 0.95 at promotion (200 labels); 2 of the last 3 windows degraded, persistent (AccuracyDegraded)",
        ),
        (
            json!({"metric": "f1", "value": 0.9, "labels": 80, "recent": [false]}),
            "f1 0.9 (80 labels); 0 of the last window degraded",
        ),
        (
            json!({"metric": "accuracy", "labels": 12, "atPromotion": 0.95}),
            "accuracy no verdict vs 0.95 at promotion (12 labels)",
        ),
    ];
    for (status, want) in cases {
        let a: AccuracyStatus = serde_json::from_value(status).unwrap();
        assert_eq!(feedback(&a), want);
    }
}

#[test]
fn monitoring_that_could_not_run() {
    let m: MonitoringStatus = serde_json::from_value(json!({
        "revision": "aaaaaaaaaa", "evaluations": 0,
        "message": "no pod of revision aaaaaaaaaa answered"
    }))
    .unwrap();
    let mut lines = vec![];
    monitoring_lines(&mut lines, &m, now());
    assert_eq!(
        lines,
        [
            "Monitoring:   revision aaaaaaaaaa, 0 evaluation(s), no evaluation yet",
            "  not run:    no pod of revision aaaaaaaaaa answered",
        ]
    );
}

/// The in-flight retraining, else the last one, in each phase.
#[test]
fn the_retraining_line() {
    let base: RetrainingStatus = serde_json::from_value(records()).unwrap();
    let Some(newest) = base.history.last().cloned() else {
        panic!("fixture has records")
    };
    let with = |phase, job: Option<&str>, message: &str| RetrainingStatus {
        last_id: 3,
        history: [
            base.history[..2].to_vec(),
            vec![RetrainRecord {
                phase,
                job: job.map(str::to_string),
                message: message.into(),
                finished_at: phase
                    .finished()
                    .then(|| Time("2025-01-01T11:55:00Z".parse().unwrap())),
                ..newest.clone()
            }],
        ]
        .concat(),
    };
    let cases = [
        (
            with(RetrainPhase::AwaitingApproval, None, ""),
            "#3 AwaitingApproval: Drift (petal_length, petal_width) at 2025-01-01T11:40:00Z (20m0s ago); waiting for `kubectl modelpilot approve iris`",
        ),
        (
            with(RetrainPhase::Running, Some("iris-retrain-3"), ""),
            "#3 Running: Job iris-retrain-3 since 2025-01-01T11:40:00Z (20m0s ago); Drift (petal_length, petal_width)",
        ),
        (
            with(RetrainPhase::Candidate, Some("iris-retrain-3"), ""),
            "#3 Candidate: v2 s3://models/iris/2/model.onnx from Job iris-retrain-3, in the rollout; Drift (petal_length, petal_width)",
        ),
        (
            with(
                RetrainPhase::RolledBack,
                Some("iris-retrain-3"),
                "rolled back (AnalysisFailed): error-rate 0.2 > 0.01",
            ),
            "last #3 RolledBack 2025-01-01T11:55:00Z (5m0s ago): rolled back (AnalysisFailed): error-rate 0.2 > 0.01",
        ),
        (
            with(RetrainPhase::Promoted, Some("iris-retrain-3"), "promoted"),
            "last #3 Promoted 2025-01-01T11:55:00Z (5m0s ago): promoted",
        ),
    ];
    for (status, want) in cases {
        assert_eq!(retraining("iris", &status, now()).as_deref(), Some(want));
    }
    let mut unstarted = with(RetrainPhase::Running, None, "");
    if let Some(r) = unstarted.history.last_mut() {
        r.started_at = None;
    }
    assert_eq!(
        retraining("iris", &unstarted, now()).as_deref(),
        Some("#3 Running: no Job yet; Drift (petal_length, petal_width)")
    );
    assert_eq!(
        retraining("iris", &RetrainingStatus::default(), now()),
        None
    );
    assert!(!render_status(&paused(), now()).contains("Retraining"));
    assert!(!render_status(&paused(), now()).contains("Monitoring"));
}
