//! The history table, its stable numbering and `--to-revision` resolution, from fixtures.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::*;
use crate::{
    api::RolloutRevision,
    api::{RetrainingStatus, TriggerReason},
    plugin::fixtures::{bare, now, paused, retrained, retraining},
};

fn entry(name: &str, outcome: Outcome) -> HistoryEntry {
    HistoryEntry {
        revision: RolloutRevision {
            name: name.into(),
            ..Default::default()
        },
        outcome,
        at: Time(now()),
        reason: String::new(),
        message: String::new(),
    }
}

#[test]
fn the_table_lists_newest_first_and_marks_the_stable() {
    let want = "\
INDEX  REVISION    VERSION  OUTCOME     WHEN                             REASON          MESSAGE
0*     aaaaaaaaaa  v1       Promoted    2025-01-01T08:00:00Z (4h0m ago)  StepsComplete
-      bbbbbbbbbb  -        RolledBack  2024-12-31T10:00:00Z (1d2h ago)  AnalysisFailed  error-rate 0.2 > 0.01
1      0000000000  v0       Promoted    2024-12-30T09:00:00Z (2d3h ago)  StepsComplete
* current stable. Roll back with `rollback NAME --to-revision INDEX|REVISION`.
";
    assert_eq!(render_history(&paused(), now()), want);
}

#[test]
fn an_empty_history() {
    assert_eq!(
        render_history(&bare(), now()),
        "No rollout history for ml/iris.\nNo stable revision yet.\n"
    );
    let mut mdep = bare();
    mdep.status = Some(
        serde_json::from_value(json!({
            "stable": {"name": "dddddddddd", "uri": "s3://m/1.onnx", "version": "v1"}
        }))
        .unwrap(),
    );
    assert_eq!(
        render_history(&mdep, now()),
        "No rollout history for ml/iris.\n* current stable: dddddddddd (version v1), deployed before the recorded history\n"
    );
}

#[test]
fn numbering_counts_stable_revisions_only() {
    use Outcome::{Promoted as P, RolledBack as R, Superseded as S};
    type Case<'a> = (
        &'a str,
        Vec<HistoryEntry>,
        Option<&'a str>,
        Vec<(Option<usize>, bool)>,
    );
    let cases: Vec<Case> = vec![
        ("empty", vec![], Some("a"), vec![]),
        (
            "stable newest, failures unnumbered",
            vec![entry("a", P), entry("b", R), entry("c", S), entry("d", P)],
            Some("d"),
            vec![
                (Some(0), true),
                (None, false),
                (None, false),
                (Some(1), false),
            ],
        ),
        (
            "stable not in the history: every promotion is an earlier one",
            vec![entry("a", P), entry("b", P)],
            Some("z"),
            vec![(Some(1), false), (Some(2), false)],
        ),
        (
            "rolled back to a, promoted twice: only the newest is current",
            vec![entry("a", P), entry("b", P), entry("a", P)],
            Some("a"),
            vec![(Some(0), true), (Some(1), false), (Some(2), false)],
        ),
        (
            "no stable",
            vec![entry("a", P)],
            None,
            vec![(Some(1), false)],
        ),
    ];
    for (case, history, stable, want) in cases {
        let got: Vec<_> = rows(&history, stable)
            .iter()
            .map(|r| (r.index, r.current))
            .collect();
        assert_eq!(got, want, "{case}");
    }
}

#[test]
fn to_revision_resolution() {
    let paused = paused();
    let status = paused.status.as_ref();
    let cases = [
        ("0", status, Ok("aaaaaaaaaa")),
        ("1", status, Ok("0000000000")),
        ("01", status, Ok("0000000000")),
        (
            "2",
            status,
            Err(ResolveError::NoSuchIndex {
                index: 2,
                available: 1,
            }),
        ),
        ("bbbbbbbbbb", status, Ok("bbbbbbbbbb")),
        ("12345", status, Ok("12345")),
        ("0", None, Err(ResolveError::NoStable)),
        (
            "1",
            None,
            Err(ResolveError::NoSuchIndex {
                index: 1,
                available: 0,
            }),
        ),
    ];
    for (arg, status, want) in cases {
        let want = want.map(str::to_string);
        assert_eq!(resolve_revision(arg, status), want, "{arg}");
    }
}

#[test]
fn retraining_follows_the_rollouts_newest_first() {
    let want = "\
INDEX  REVISION    VERSION  OUTCOME     WHEN                             REASON          MESSAGE
0*     aaaaaaaaaa  v1       Promoted    2025-01-01T08:00:00Z (4h0m ago)  StepsComplete
-      bbbbbbbbbb  -        RolledBack  2024-12-31T10:00:00Z (1d2h ago)  AnalysisFailed  error-rate 0.2 > 0.01
1      0000000000  v0       Promoted    2024-12-30T09:00:00Z (2d3h ago)  StepsComplete
* current stable. Roll back with `rollback NAME --to-revision INDEX|REVISION`.

Retraining:
ID  TRIGGER                            WHEN                              JOB             PHASE       CANDIDATE                         MESSAGE
3   Drift (petal_length, petal_width)  2025-01-01T11:40:00Z (20m0s ago)  iris-retrain-3  Candidate   v2 s3://models/iris/2/model.onnx  candidate s3://models/iris/2/model.onnx
2   AccuracyDegraded                   2024-12-31T09:00:00Z (1d3h ago)   iris-retrain-2  RolledBack  s3://models/iris/x/model.onnx     rolled back (AnalysisFailed): error-rate 0.2 > 0.01
1   Drift (petal_length)               2024-12-31T06:00:00Z (1d6h ago)   iris-retrain-1  Failed      -                                 Job failed (BackoffLimitExceeded): Job has reached the specified backoff limit
";
    assert_eq!(render_history(&retrained(), now()), want);
}

#[test]
fn no_retraining_section_without_records() {
    let empty = RetrainingStatus::default();
    for (case, retraining) in [("no status", None), ("no records", Some(&empty))] {
        assert_eq!(render_retraining("iris", retraining, now()), "", "{case}");
    }
    assert!(!render_history(&paused(), now()).contains("Retraining"));
}

/// One record at a time, in each phase: the cells that change with it (JOB to MESSAGE).
#[test]
fn a_record_in_each_phase() {
    let base: RetrainingStatus = serde_json::from_value(retraining()).unwrap();
    let Some(newest) = base.history.last().cloned() else {
        panic!("fixture has records")
    };
    let v2 = "v2 s3://models/iris/2/model.onnx";
    type Case<'a> = (&'a str, RetrainPhase, bool, &'a str, [&'a str; 4]);
    let cases: [Case; 6] = [
        (
            "awaiting approval: no Job yet, the approval it waits for",
            RetrainPhase::AwaitingApproval,
            false,
            "",
            [
                "-",
                "AwaitingApproval",
                "-",
                "waiting for `kubectl modelpilot approve iris`",
            ],
        ),
        (
            "running: the finding that started it",
            RetrainPhase::Running,
            false,
            "",
            [
                "iris-retrain-3",
                "Running",
                "-",
                "drift in 2 of the last 3 windows",
            ],
        ),
        (
            "a candidate",
            RetrainPhase::Candidate,
            true,
            "candidate s3://models/iris/2/model.onnx",
            [
                "iris-retrain-3",
                "Candidate",
                v2,
                "candidate s3://models/iris/2/model.onnx",
            ],
        ),
        (
            "timed out",
            RetrainPhase::TimedOut,
            false,
            "Job failed (DeadlineExceeded): too long",
            [
                "iris-retrain-3",
                "TimedOut",
                "-",
                "Job failed (DeadlineExceeded): too long",
            ],
        ),
        (
            "promoted",
            RetrainPhase::Promoted,
            true,
            "promoted",
            ["iris-retrain-3", "Promoted", v2, "promoted"],
        ),
        (
            "superseded",
            RetrainPhase::Superseded,
            true,
            "superseded by a newer spec",
            [
                "iris-retrain-3",
                "Superseded",
                v2,
                "superseded by a newer spec",
            ],
        ),
    ];
    for (case, phase, has_result, message, want) in cases {
        let mut record = newest.clone();
        record.phase = phase;
        record.message = message.into();
        if phase == RetrainPhase::AwaitingApproval {
            record.job = None;
        }
        if !has_result {
            record.result = None;
        }
        let status = RetrainingStatus {
            last_id: 3,
            history: vec![record],
        };
        let out = render_retraining("iris", Some(&status), now());
        let row = out.lines().nth(3).unwrap_or_default();
        let cells: Vec<&str> = row
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(cells.get(3..), Some(&want[..]), "{case}\n{out}");
    }
}

#[test]
fn triggers_name_a_few_features() {
    let base: RetrainingStatus = serde_json::from_value(retraining()).unwrap();
    let Some(mut trigger) = base.history.last().map(|r| r.trigger.clone()) else {
        panic!("fixture has records")
    };
    let cases: [(&[&str], TriggerReason, &str); 4] = [
        (&[], TriggerReason::AccuracyDegraded, "AccuracyDegraded"),
        (&[], TriggerReason::PredictionShift, "PredictionShift"),
        (&["a", "b", "c"], TriggerReason::Drift, "Drift (a, b, c)"),
        (
            &["a", "b", "c", "d", "e"],
            TriggerReason::Drift,
            "Drift (a, b, c, +2 more)",
        ),
    ];
    for (features, reason, want) in cases {
        trigger.reason = reason;
        trigger.features = features.iter().map(|f| f.to_string()).collect();
        assert_eq!(trigger_text(&trigger, TRIGGER_FEATURES), want);
    }
}
