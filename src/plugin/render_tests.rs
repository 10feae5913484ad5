//! The status summary rendered from fixtures, compared whole: the layout is the interface.

use serde_json::json;

use super::*;
use crate::plugin::fixtures::{bare, now, paused};

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
