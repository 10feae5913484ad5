//! Answers of the query API (decoded and reduced to one value), the built-in PromQL, and one
//! round trip against a local stand-in for Prometheus.

use std::sync::{Arc, Mutex};

use k8s_openapi::jiff::Timestamp;

use super::*;

fn series(labels: &[(&str, &str)], v: f64) -> (BTreeMap<String, String>, f64) {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (labels, v)
}

#[test]
fn decode_table() {
    let ok = |data: &str| format!(r#"{{"status":"success","data":{data}}}"#);
    let vector = ok(r#"{"resultType":"vector","result":[
        {"metric":{"le":"0.1"},"value":[1.7e9,"3"]},
        {"metric":{"le":"+Inf"},"value":[1.7e9,"NaN"]}]}"#);
    let rows: Vec<(u16, String, Result<QueryValue, &str>)> = vec![
        (
            200,
            ok(r#"{"resultType":"scalar","result":[1.7e9,"0.5"]}"#),
            Ok(QueryValue::Scalar(0.5)),
        ),
        (
            200,
            ok(r#"{"resultType":"scalar","result":[1.7e9,"+Inf"]}"#),
            Ok(QueryValue::Scalar(f64::INFINITY)),
        ),
        (
            200,
            ok(r#"{"resultType":"vector","result":[]}"#),
            Ok(QueryValue::Vector(vec![])),
        ),
        (
            200,
            ok(r#"{"resultType":"matrix","result":[]}"#),
            Err("a matrix"),
        ),
        (
            200,
            ok(r#"{"resultType":"string","result":[1,"x"]}"#),
            Err("a string"),
        ),
        (
            200,
            ok(r#"{"resultType":"scalar","result":[1.7e9,"x"]}"#),
            Err("bad sample"),
        ),
        (
            200,
            ok(r#"{"resultType":"scalar","result":[1.7e9,0.5]}"#),
            Err("bad sample"),
        ),
        (
            200,
            ok(r#"{"resultType":"vector","result":{}}"#),
            Err("not a list"),
        ),
        (200, ok(r#"{}"#), Err("no resultType")),
        (
            400,
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#.into(),
            Err("bad_data (HTTP 400): parse error at char 5"),
        ),
        (503, "Service Unavailable".into(), Err("HTTP 503, not JSON")),
    ];
    for (status, body, want) in rows {
        let got = decode(status, body.as_bytes());
        match (got, want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w, "{body}"),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{body}: {e}"),
            (g, w) => panic!("{body}: got {g:?}, want {w:?}"),
        }
    }
    let Ok(QueryValue::Vector(v)) = decode(200, vector.as_bytes()) else {
        panic!("vector")
    };
    assert_eq!(v[0], series(&[("le", "0.1")], 3.0));
    assert!(v[1].1.is_nan());
}

#[test]
fn one_number_from_a_result() {
    let rows: Vec<(QueryValue, Result<Option<f64>, &str>)> = vec![
        (QueryValue::Scalar(2.0), Ok(Some(2.0))),
        (QueryValue::Vector(vec![]), Ok(None)),
        (
            QueryValue::Vector(vec![series(&[("pod", "a")], 4.0)]),
            Ok(Some(4.0)),
        ),
        (
            QueryValue::Vector(vec![
                series(&[("pod", "a")], 4.0),
                series(&[("pod", "b")], 5.0),
            ]),
            Err("2 series"),
        ),
    ];
    for (value, want) in rows {
        match (single_value(value), want) {
            (Ok(g), Ok(w)) => assert_eq!(g, w),
            (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{e}"),
            (g, w) => panic!("got {g:?}, want {w:?}"),
        }
    }
}

#[test]
fn built_in_queries() {
    let w = Duration::from_secs(30);
    let sel = r#"namespace="ns",revision="r1""#;
    let rows = [
        (
            Part::Requests,
            format!(
                r#"sum(increase(modelpilot_inference_requests_total{{{sel},endpoint="infer"}}[30s]))"#
            ),
        ),
        (
            Part::Errors,
            format!(
                r#"sum(increase(modelpilot_inference_requests_total{{{sel},endpoint="infer",code=~"5.."}}[30s]))"#
            ),
        ),
        (
            Part::Labels,
            format!(
                "sum by (label, predicted) (increase(modelpilot_feedback_labels_total{{{sel}}}[30s]))"
            ),
        ),
        (
            Part::Predictions,
            format!("sum by (class) (increase(modelpilot_predictions_total{{{sel}}}[30s]))"),
        ),
        (
            Part::Features,
            format!(
                "sum by (feature, le) (increase(modelpilot_feature_value_bucket{{{sel}}}[30s]))"
            ),
        ),
        (
            Part::Baseline,
            format!(
                "max by (feature, upper_bound) (last_over_time(modelpilot_feature_baseline_proportion{{{sel}}}[30s]))"
            ),
        ),
    ];
    for (part, want) in rows {
        assert_eq!(query_for(part, "ns", "r1", w), want);
    }
    let odd = query_for(Part::Requests, "n\"s", "r\\1", Duration::ZERO);
    assert!(odd.contains(r#"namespace="n\"s",revision="r\\1""#), "{odd}");
    assert!(
        odd.contains("[1s]"),
        "a zero window asks for one second: {odd}"
    );
}

#[test]
fn answers_fill_counts() {
    let mut c = Counts::default();
    fill(
        &mut c,
        Part::Requests,
        QueryValue::Vector(vec![series(&[], 99.6)]),
    );
    fill(&mut c, Part::Errors, QueryValue::Vector(vec![]));
    fill(
        &mut c,
        Part::Latency,
        QueryValue::Vector(vec![
            series(&[("le", "+Inf")], 10.0),
            series(&[("le", "0.5")], 8.0),
            series(&[("le", "bad")], 8.0),
            series(&[("le", "1")], f64::NAN),
        ]),
    );
    fill(
        &mut c,
        Part::Labels,
        QueryValue::Vector(vec![series(&[("label", "a"), ("predicted", "b")], 2.0)]),
    );
    fill(
        &mut c,
        Part::Predictions,
        QueryValue::Vector(vec![series(&[("class", "a")], 5.0)]),
    );
    fill(
        &mut c,
        Part::Features,
        QueryValue::Vector(vec![series(&[("feature", "f"), ("le", "1.0")], 5.0)]),
    );
    fill(
        &mut c,
        Part::Baseline,
        QueryValue::Vector(vec![series(
            &[("feature", "f"), ("upper_bound", "1.0")],
            0.5,
        )]),
    );
    assert_eq!((c.requests, c.errors), (99.6, 0.0));
    assert_eq!(c.latency.0, vec![(0.5, 8.0), (f64::INFINITY, 10.0)]);
    assert_eq!(c.labels[&("a".to_string(), "b".to_string())], 2.0);
    assert_eq!(c.predictions["a"], 5.0);
    assert_eq!(c.features["f"].0, vec![(1.0, 5.0)]);
    assert_eq!(c.baseline["f"], vec![(1.0, 0.5)]);
}

/// A stand-in for Prometheus on a free local port: answers every query with `body` and
/// records the query strings it was asked.
async fn fake_prometheus(body: &'static str) -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::{Router, extract::RawQuery, routing::get};
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/api/v1/query",
        get(move |RawQuery(q): RawQuery| {
            let log = log.clone();
            async move {
                log.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(q.unwrap_or_default());
                body
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), seen)
}

#[tokio::test]
async fn a_query_round_trip_sends_time_and_timeout() {
    let body = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"7"]}]}}"#;
    let (url, seen) = fake_prometheus(body).await;
    let spec = PrometheusSpec {
        url,
        timeout_seconds: 3,
    };
    let at = Time(Timestamp::from_millisecond(1_700_000_000_250).unwrap());
    let value = Prometheus::default().single(&spec, "up == 1", &at).await;
    assert_eq!(value, Ok(Some(7.0)));
    let asked = seen.lock().unwrap().clone();
    assert_eq!(
        asked,
        vec!["query=up+%3D%3D+1&time=1700000000.250&timeout=3s".to_string()]
    );
}

#[tokio::test]
async fn an_unreachable_prometheus_is_an_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let spec = PrometheusSpec {
        url,
        timeout_seconds: 1,
    };
    let at = Time(Timestamp::UNIX_EPOCH);
    let err = Prometheus::default()
        .single(&spec, "up", &at)
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Unreachable { .. }), "{err}");
}
