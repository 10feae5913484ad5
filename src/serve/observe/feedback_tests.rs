//! Unit tests of the feedback tracker and body parser.

use super::*;

fn labels(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn item(id: &str, v: &[&str]) -> FeedbackItem {
    FeedbackItem {
        id: id.into(),
        labels: labels(v),
    }
}

fn tracker(max_requests: usize, max_rows: usize, window: usize) -> FeedbackTracker {
    FeedbackTracker::new(FeedbackConfig {
        max_requests,
        max_rows,
        window,
        average: Average::Macro,
    })
}

#[test]
fn parses_single_and_batch_bodies() {
    let one = parse_feedback(br#"{"id": "r1", "labels": [1, "cat", true, 2.0]}"#).unwrap();
    assert_eq!(one, vec![item("r1", &["1", "cat", "true", "2"])]);
    let many = parse_feedback(br#"[{"id": "a", "labels": [0]}, {"id": "b", "labels": []}]"#);
    assert_eq!(many.unwrap(), vec![item("a", &["0"]), item("b", &[])]);
}

#[test]
fn malformed_bodies_are_400_with_a_reason() {
    let long = format!(
        r#"{{"id": "a", "labels": ["{}"]}}"#,
        "x".repeat(MAX_LABEL_LEN + 1)
    );
    let cases: [(&[u8], &str); 8] = [
        (long.as_bytes(), "at most 256 bytes"),
        (b"not json", "malformed"),
        (b"[]", "empty feedback array"),
        (br#"{"labels": [1]}"#, "missing field `id`"),
        (br#"{"id": "a"}"#, "missing field `labels`"),
        (
            br#"{"id": "a", "labels": [1.5]}"#,
            "strings, integers or booleans",
        ),
        (br#"{"id": "", "labels": [1]}"#, "empty id"),
        (
            br#"{"id": "a", "labels": [1], "extra": 1}"#,
            "unknown field",
        ),
    ];
    for (body, want) in cases {
        let err = parse_feedback(body).unwrap_err();
        assert_eq!(err.status_code(), 400);
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[test]
fn round_trip_updates_scores_and_forgets_the_id() {
    let mut t = tracker(10, 100, 100);
    t.record("r1", labels(&["a", "a", "b", "c"]));
    let summary = t.apply(&[item("r1", &["a", "b", "b", "a"])]).unwrap();
    assert_eq!(summary.accepted_rows, 4);
    let scores = summary.scores.unwrap();
    assert_eq!(scores.accuracy, 0.5);
    assert_eq!(scores.rows, 4);
    let again = t.apply(&[item("r1", &["a", "b", "b", "a"])]).unwrap_err();
    assert_eq!(again.status_code(), 404);
    assert_eq!(t.counters().unmatched, 1);
    assert_eq!(t.counters().received_rows, 4);
}

#[test]
fn a_bad_item_rejects_the_whole_batch() {
    let mut t = tracker(10, 100, 100);
    t.record("a", labels(&["1"]));
    t.record("b", labels(&["1", "0"]));
    let err = t
        .apply(&[item("a", &["1"]), item("b", &["1"])])
        .unwrap_err();
    assert_eq!(
        err,
        FeedbackError::RowMismatch {
            index: 1,
            id: "b".into(),
            expected: 2,
            got: 1
        }
    );
    let err = t
        .apply(&[item("a", &["1"]), item("a", &["1"])])
        .unwrap_err();
    assert!(err.to_string().contains("appears twice"));
    assert!(t.scores().is_none(), "nothing applied");
    assert_eq!(t.counters().pending_requests, 2);
}

#[test]
fn memory_stays_bounded_by_requests_and_rows() {
    let mut t = tracker(100, 250, 10);
    for i in 0..10_000 {
        t.record(&format!("req-{i}"), labels(&["x", "y", "z"]));
        let c = t.counters();
        assert!(c.pending_requests <= 100 && c.pending_rows <= 250);
        assert!(t.order.len() <= 100);
    }
    let c = t.counters();
    assert_eq!(c.pending_rows, 249, "83 requests of 3 rows fit in 250");
    assert_eq!(c.evicted, 10_000 - 83);
    assert_eq!(
        t.apply(&[item("req-0", &["x", "y", "z"])])
            .unwrap_err()
            .status_code(),
        404
    );
    assert!(t.apply(&[item("req-9999", &["x", "y", "z"])]).is_ok());
}

#[test]
fn re_recording_an_id_replaces_it_without_growth() {
    let mut t = tracker(3, 100, 10);
    for _ in 0..1_000 {
        t.record("same", labels(&["a"]));
    }
    assert_eq!(t.counters().pending_requests, 1);
    assert!(t.order.len() <= 3);
    t.record("huge", vec!["a".to_string(); 101]);
    t.record(&"x".repeat(MAX_ID_LEN + 1), labels(&["a"]));
    assert_eq!(
        t.counters().pending_requests,
        1,
        "oversized entries are not kept"
    );
}
