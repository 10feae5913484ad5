use serde_json::{Value, json};

use super::*;

fn ev(pod: &str, revision: &str, outcome: Outcome) -> Event {
    Event {
        pod: pod.into(),
        revision: revision.into(),
        outcome,
    }
}

fn ms(n: u64) -> Outcome {
    Outcome::Answered(Duration::from_millis(n))
}

fn info(max_error_rate: Option<f64>, feedback: bool) -> RunInfo {
    RunInfo {
        target: "http://127.0.0.1:8080".into(),
        service: None,
        model: "iris".into(),
        inputs: vec![TensorMeta {
            name: "float_input".into(),
            datatype: "FP32".into(),
            shape: vec![1, 4],
        }],
        input_source: "iris.csv".into(),
        bounds: Bounds {
            requests: 100,
            duration_seconds: 10.0,
            concurrency: 2,
            rate: None,
            timeout_seconds: 5.0,
            feedback,
        },
        max_error_rate,
    }
}

/// Two pods of one revision plus a canary pod; a connect error names nobody.
fn sample() -> Tally {
    let mut t = Tally::default();
    for e in [
        ev("a", "r1", ms(10)),
        ev("a", "r1", ms(20)),
        ev("b", "r1", ms(30)),
        ev("c", "r2", ms(40)),
        ev("c", "r2", Outcome::Failed(ErrorKind::Status(503))),
        ev(UNKNOWN, UNKNOWN, Outcome::Failed(ErrorKind::Connect)),
        ev(UNKNOWN, UNKNOWN, Outcome::Failed(ErrorKind::Timeout)),
        ev("a", "r1", Outcome::Feedback(Ok(2))),
        ev("c", "r2", Outcome::Feedback(Err(ErrorKind::Status(404)))),
    ] {
        t.record(&e);
    }
    t
}

#[test]
fn counts_per_scope() {
    let t = sample();
    assert_eq!(t.requests(), 7, "feedback posts are not requests");
    let r = Report::new(
        info(None, true),
        &t,
        StoppedBy::Requests,
        Duration::from_secs(2),
    );
    let o = &r.overall;
    assert_eq!((o.requests, o.ok, o.errors), (7, 4, 3));
    assert_eq!(o.requests, o.ok + o.errors);
    assert!((o.error_rate - 3.0 / 7.0).abs() < 1e-12);
    assert!((o.throughput_rps - 2.0).abs() < 1e-12);
    let kinds: Vec<(&str, u64)> = o
        .errors_by_kind
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(kinds, [("connect", 1), ("http_503", 1), ("timeout", 1)]);
    let per = |m: &BTreeMap<String, Summary>| -> Vec<(String, u64, u64)> {
        m.iter()
            .map(|(k, s)| (k.clone(), s.requests, s.ok))
            .collect()
    };
    assert_eq!(
        per(&r.by_pod),
        [
            ("a".into(), 2, 2),
            ("b".into(), 1, 1),
            ("c".into(), 2, 1),
            (UNKNOWN.into(), 2, 0)
        ]
    );
    assert_eq!(
        per(&r.by_revision),
        [
            ("r1".into(), 3, 3),
            ("r2".into(), 2, 1),
            (UNKNOWN.into(), 2, 0)
        ]
    );
    let f = o.feedback.as_ref().unwrap();
    assert_eq!((f.sent, f.accepted, f.accepted_rows), (2, 1, 2));
    assert_eq!(f.errors_by_kind.get("http_404"), Some(&1));
    assert_eq!(r.by_pod["a"].feedback.as_ref().unwrap().accepted_rows, 2);
}

#[test]
fn latency_percentiles() {
    let mut t = Tally::default();
    for i in 1..=100 {
        t.record(&ev("p", "r", ms(i)));
    }
    let r = Report::new(
        info(None, false),
        &t,
        StoppedBy::Duration,
        Duration::from_secs(1),
    );
    let l = r.overall.latency_ms.clone().unwrap();
    for (got, want) in [
        (l.p50, 50.0),
        (l.p90, 90.0),
        (l.p99, 99.0),
        (l.max, 100.0),
        (l.mean, 50.5),
    ] {
        assert!((got - want).abs() / want < 0.002, "{got} vs {want}");
    }
    assert_eq!(
        r.overall.feedback, None,
        "no feedback section without --feedback"
    );
    let none = Report::new(
        info(None, false),
        &Tally::default(),
        StoppedBy::Duration,
        Duration::ZERO,
    );
    assert_eq!(none.overall.latency_ms, None);
    assert_eq!(
        (none.overall.error_rate, none.overall.throughput_rps),
        (0.0, 0.0)
    );
}

#[test]
fn error_rate_threshold() {
    // sample() has 3 errors in 7 requests, 0.43.
    for (max, exceeded) in [
        (None, false),
        (Some(0.5), false),
        (Some(3.0 / 7.0), false),
        (Some(0.4), true),
        (Some(0.0), true),
    ] {
        let r = Report::new(
            info(max, false),
            &sample(),
            StoppedBy::Requests,
            Duration::from_secs(1),
        );
        assert_eq!(r.error_rate_exceeded, exceeded, "{max:?}");
    }
}

#[test]
fn json_fields() {
    let r = Report::new(
        info(Some(0.5), true),
        &sample(),
        StoppedBy::Requests,
        Duration::from_secs(2),
    );
    let v: Value = serde_json::to_value(&r).unwrap();
    let mut keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "bounds",
            "by_pod",
            "by_revision",
            "elapsed_seconds",
            "error_rate_exceeded",
            "input_source",
            "inputs",
            "max_error_rate",
            "model",
            "overall",
            "service",
            "stopped_by",
            "target",
        ]
    );
    assert_eq!(v["stopped_by"], "requests");
    assert_eq!(v["bounds"]["rate"], Value::Null);
    let mut summary: Vec<&str> = v["overall"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    summary.sort();
    assert_eq!(
        summary,
        [
            "error_rate",
            "errors",
            "errors_by_kind",
            "feedback",
            "latency_ms",
            "ok",
            "requests",
            "throughput_rps"
        ]
    );
    assert_eq!(
        v["overall"]["feedback"],
        json!({"sent": 2, "accepted": 1, "accepted_rows": 2, "errors_by_kind": {"http_404": 1}})
    );
    let mut latency: Vec<&str> = v["overall"]["latency_ms"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    latency.sort();
    assert_eq!(latency, ["max", "mean", "p50", "p90", "p99"]);
}

#[test]
fn table_lists_every_scope() {
    let r = Report::new(
        info(Some(0.1), true),
        &sample(),
        StoppedBy::Requests,
        Duration::from_secs(2),
    );
    let table = r.table();
    for line in [
        "target    http://127.0.0.1:8080, model iris",
        "inputs    float_input FP32 [1, 4] from iris.csv",
        "finished  7 requests in 2.000 s (request bound reached)",
        "pod a ",
        "pod unknown ",
        "revision r2 ",
        "errors    overall: connect=1, http_503=1, timeout=1",
        "errors    pod c: http_503=1",
        "feedback  overall: sent 2, accepted 1 (2 rows), errors http_404=1",
        "feedback  pod a: sent 1, accepted 1 (2 rows), errors none",
        "(max 0.1): EXCEEDED",
    ] {
        assert!(table.contains(line), "missing {line:?} in\n{table}");
    }
}
