//! The history table, its stable numbering and `--to-revision` resolution, from fixtures.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::json;

use super::*;
use crate::{
    api::RolloutRevision,
    plugin::fixtures::{bare, now, paused},
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
