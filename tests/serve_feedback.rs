//! Label feedback against the real `modelpilot serve` binary: predictions made with a request
//! id are matched to true labels posted later; the rolling accuracy and macro (or, with a
//! positive class in the profile, binary) precision/recall/F1 in the answer and on `/metrics`
//! equal a reference computed here from the raw pairs; errors map to 404/400 and are counted.

mod observe_support;
mod serve_support;

use std::collections::BTreeSet;

use observe_support::{IRIS_ROWS, iris_request, output, parse, post, scrape, value};
use serde_json::{Value, json};
use serve_support::Server;

const ROWS: [[f32; 4]; 6] = IRIS_ROWS;

/// Reference scores from the pairs: `[accuracy, precision, recall, f1]`, averaged over the
/// classes in `classes` (all classes seen, for macro; just the positive one, for binary).
fn reference(pairs: &[(i64, i64)], classes: &BTreeSet<i64>) -> [f64; 4] {
    let accuracy = pairs.iter().filter(|(p, t)| p == t).count() as f64 / pairs.len() as f64;
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let (mut p_sum, mut r_sum, mut f_sum) = (0.0, 0.0, 0.0);
    for c in classes {
        let tp = pairs.iter().filter(|(p, t)| p == c && t == c).count();
        let predicted = pairs.iter().filter(|(p, _)| p == c).count();
        let actual = pairs.iter().filter(|(_, t)| t == c).count();
        let (p, r) = (ratio(tp, predicted), ratio(tp, actual));
        p_sum += p;
        r_sum += r;
        f_sum += if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
    }
    let n = classes.len() as f64;
    [accuracy, p_sum / n, r_sum / n, f_sum / n]
}

async fn predict(server: &Server, rows: &[[f32; 4]], id: &str) -> Vec<i64> {
    let (status, body) = post(
        &server.base,
        "/v2/models/iris/infer",
        &iris_request(rows, Some(id)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id, "the response echoes the request id");
    output(&body, "label")
        .as_array()
        .expect("labels")
        .iter()
        .filter_map(Value::as_i64)
        .collect()
}

fn assert_scores(answer: &Value, page: &str, want: [f64; 4]) {
    let got =
        ["accuracy", "precision", "recall", "f1"].map(|k| answer["scores"][k].as_f64().expect(k));
    let s = parse(page);
    let gauges = ["accuracy", "precision", "recall", "f1"]
        .map(|k| value(&s, &format!("modelpilot_feedback_{k}"), &[]));
    for i in 0..4 {
        assert!(
            (got[i] - want[i]).abs() < 1e-9,
            "answer {got:?} vs reference {want:?}"
        );
        assert!(
            (gauges[i] - want[i]).abs() < 1e-9,
            "gauges {gauges:?} vs reference {want:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn feedback_round_trip_macro_scores_and_errors() {
    let server = Server::ready("iris.onnx", &[]);
    let first = predict(&server, &ROWS[..3], "req-a").await;
    let second = predict(&server, &ROWS[3..], "req-b").await;
    predict(&server, &ROWS[..1], "req-c").await;
    let (status, _) = post(
        &server.base,
        "/v2/models/iris/infer",
        &iris_request(&ROWS[..2], None),
    )
    .await;
    assert_eq!(status, 200);
    let (_, page) = scrape(&server.base, None).await;
    let s = parse(&page);
    assert_eq!(
        value(&s, "modelpilot_feedback_pending_requests", &[]),
        3.0,
        "requests without id are not kept"
    );
    assert!(
        !page.contains("modelpilot_feedback_accuracy"),
        "no scores before any feedback"
    );

    // True labels: the predictions for req-a; for req-b, every row moved to the next class.
    let truth_a = first.clone();
    let truth_b: Vec<i64> = second.iter().map(|p| (p + 1) % 3).collect();
    let body = json!([{"id": "req-a", "labels": truth_a}, {"id": "req-b", "labels": truth_b}]);
    let (status, answer) = post(&server.base, "/v2/models/iris/feedback", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted_rows"], 6);
    let pairs: Vec<(i64, i64)> = first
        .iter()
        .zip(&truth_a)
        .chain(second.iter().zip(&truth_b))
        .map(|(p, t)| (*p, *t))
        .collect();
    let classes: BTreeSet<i64> = pairs.iter().flat_map(|(p, t)| [*p, *t]).collect();
    let want = reference(&pairs, &classes);
    assert!(
        (want[0] - 0.5).abs() < 1e-12,
        "3 of 6 rows right by construction"
    );
    let (_, page) = scrape(&server.base, None).await;
    assert_scores(&answer, &page, want);
    let s = parse(&page);
    assert_eq!(value(&s, "modelpilot_feedback_rows_total", &[]), 6.0);
    assert_eq!(value(&s, "modelpilot_feedback_window_rows", &[]), 6.0);
    assert_eq!(value(&s, "modelpilot_feedback_pending_requests", &[]), 1.0);

    let cases = [
        (
            json!({"id": "req-a", "labels": truth_a}),
            404,
            "already labelled",
        ),
        (
            json!({"id": "nobody", "labels": [0]}),
            404,
            "unknown request id",
        ),
        (
            json!({"id": "req-c", "labels": [0, 1]}),
            400,
            "had 1 rows but 2 labels",
        ),
        (
            json!({"id": "req-c", "labels": [0.5]}),
            400,
            "strings, integers or booleans",
        ),
        (json!({"labels": [0]}), 400, "missing field `id`"),
        (json!([]), 400, "empty feedback array"),
    ];
    for (body, status, reason) in cases {
        let (got, answer) = post(&server.base, "/v2/models/iris/feedback", &body).await;
        assert_eq!(got, status, "{body} -> {answer}");
        assert!(answer.to_string().contains(reason), "{body} -> {answer}");
    }
    let (_, page) = scrape(&server.base, None).await;
    let s = parse(&page);
    assert_eq!(value(&s, "modelpilot_feedback_unmatched_total", &[]), 2.0);
    assert_eq!(
        value(&s, "modelpilot_feedback_rows_total", &[]),
        6.0,
        "refused bodies change nothing"
    );
    assert_eq!(
        value(
            &s,
            "modelpilot_inference_requests_total",
            &[("endpoint", "feedback"), ("code", "404")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "modelpilot_inference_requests_total",
            &[("endpoint", "feedback"), ("code", "400")]
        ),
        4.0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn positive_label_in_the_profile_gives_binary_scores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = dir.path().join("profile.json");
    std::fs::write(&profile, r#"{"version": 1, "positive_label": "2"}"#).expect("write profile");
    let server = Server::ready(
        "iris.onnx",
        &["--baseline-profile", profile.to_str().expect("utf-8")],
    );
    let predicted = predict(&server, &ROWS, "bin").await;
    // Flip rows 0 and 5 to/from class 2; keep the rest.
    let truth: Vec<i64> = predicted
        .iter()
        .enumerate()
        .map(|(i, p)| match i {
            0 | 5 => {
                if *p == 2 {
                    0
                } else {
                    2
                }
            }
            _ => *p,
        })
        .collect();
    let (status, answer) = post(
        &server.base,
        "/v2/models/iris/feedback",
        &json!({"id": "bin", "labels": truth}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let pairs: Vec<(i64, i64)> = predicted
        .iter()
        .zip(&truth)
        .map(|(p, t)| (*p, *t))
        .collect();
    let want = reference(&pairs, &BTreeSet::from([2]));
    let (_, page) = scrape(&server.base, None).await;
    assert_scores(&answer, &page, want);
}
