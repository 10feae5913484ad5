//! Targets from pods, and which metrics are due.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use super::*;
use crate::api::Bound;

fn pod(uid: Option<&str>, ip: Option<&str>) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "p", "uid": uid},
        "status": {"podIP": ip}
    }))
    .unwrap()
}

#[test]
fn targets_keep_pods_with_a_uid_and_an_ip() {
    let t = Target::new(
        "ns",
        8080,
        (
            "c",
            vec![
                pod(Some("u1"), Some("10.0.0.1")),
                pod(None, Some("10.0.0.2")),
            ],
        ),
        ("s", vec![pod(Some("u3"), None), pod(Some("u4"), Some(""))]),
    );
    assert_eq!(t.canary.name, "c");
    let addr = PodAddr {
        uid: "u1".into(),
        name: "p".into(),
        ip: "10.0.0.1".into(),
        port: 8080,
    };
    assert_eq!(t.canary.pods, vec![addr]);
    assert!(t.stable.pods.is_empty());
    assert_eq!(t.window, None);
    let bad_port = Target::new(
        "ns",
        70000,
        ("c", vec![pod(Some("u1"), Some("10.0.0.1"))]),
        ("s", vec![]),
    );
    assert!(bad_port.canary.pods.is_empty());
    assert_eq!(
        t.with_window(Duration::from_secs(5)).window,
        Some(Duration::from_secs(5))
    );
}

fn t(s: i64) -> Time {
    Time(Timestamp::from_second(s).unwrap())
}

/// Canary `c` and stable `s` in `ns`, neither with a pod (nothing for the direct scrape).
fn podless() -> Target {
    Target::new("ns", 8080, ("c", vec![]), ("s", vec![]))
}

fn metric(name: &str, delay: i32) -> AnalysisMetric {
    AnalysisMetric {
        name: name.into(),
        interval_seconds: 10,
        count: 2,
        initial_delay_seconds: delay,
        error_rate: Some(Bound {
            max: Some(0.01),
            ..Bound::default()
        }),
        ..AnalysisMetric::default()
    }
}

#[tokio::test]
async fn measurements_that_cannot_be_taken_say_why() {
    let analyzer = Analyzer::default();
    let now = t(1_700_000_000);
    let target = podless();
    let errors = metric("errors", 0);
    let rows: Vec<(AnalysisMetric, MeasurementVerdict, &str)> = vec![
        (
            AnalysisMetric {
                error_rate: None,
                ..errors.clone()
            },
            MeasurementVerdict::Error,
            "measures nothing",
        ),
        (
            errors.clone(),
            MeasurementVerdict::Inconclusive,
            "errorRate: revision c has no ready pods",
        ),
        (
            AnalysisMetric {
                source: Some(MetricSource::Prometheus),
                ..errors.clone()
            },
            MeasurementVerdict::Error,
            "errorRate: needs rollout.prometheus",
        ),
    ];
    for (metric, verdict, message) in rows {
        let m = analyzer.measure(&metric, &target, None, now.clone()).await;
        assert_eq!(m.verdict, verdict, "{}", m.message);
        assert!(m.message.contains(message), "{}", m.message);
        assert_eq!((m.at.clone(), m.canary, m.samples), (now.clone(), None, 0));
    }
}

/// A stand-in for Prometheus answering each query with the value of the first rule whose
/// needle the query contains (an empty vector when none does).
async fn fake_prometheus(rules: Vec<(&'static str, &'static str)>) -> PrometheusSpec {
    use axum::{Router, extract::Query, routing::get};
    let app = Router::new().route(
        "/api/v1/query",
        get(move |Query(params): Query<std::collections::HashMap<String, String>>| {
            let query = params.get("query").cloned().unwrap_or_default();
            let value = rules.iter().find(|(needle, _)| query.contains(needle));
            let result = match value {
                Some((_, v)) => format!(r#"[{{"metric":{{}},"value":[1,"{v}"]}}]"#),
                None => "[]".into(),
            };
            async move {
                format!(r#"{{"status":"success","data":{{"resultType":"vector","result":{result}}}}}"#)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    PrometheusSpec {
        url: format!("http://{addr}"),
        timeout_seconds: 2,
    }
}

#[tokio::test]
async fn measurements_through_prometheus() {
    let spec = fake_prometheus(vec![
        (r#"revision="c",endpoint="infer",code=~"5.."}[10s]"#, "3"),
        (r#"revision="c",endpoint="infer"}[10s]"#, "99.7"),
        ("orders{rev=\"c\"}", "1.2"),
        ("orders{rev=\"s\"}", "1.0"),
    ])
    .await;
    let analyzer = Analyzer::default();
    let target = podless();
    let now = t(1_700_000_000);
    let errors = AnalysisMetric {
        source: Some(MetricSource::Prometheus),
        min_sample: 50,
        ..metric("errors", 0)
    };
    let m = analyzer
        .measure(&errors, &target, Some(&spec), now.clone())
        .await;
    assert_eq!(m.verdict, MeasurementVerdict::Failed, "{}", m.message);
    assert_eq!((m.canary, m.samples), (Some(3.0 / 99.7), 100));

    let ratio = |max_ratio: f64| AnalysisMetric {
        error_rate: None,
        query: Some(crate::api::QueryMetric {
            promql: "sum(orders{rev=\"$revision\"})".into(),
            success: Some(Bound {
                max_ratio_to_stable: Some(max_ratio),
                ..Bound::default()
            }),
            failure: None,
        }),
        ..metric("orders", 0)
    };
    let m = analyzer
        .measure(&ratio(1.1), &target, Some(&spec), now.clone())
        .await;
    assert_eq!(m.verdict, MeasurementVerdict::Failed, "{}", m.message);
    assert_eq!((m.canary, m.stable), (Some(1.2), Some(1.0)));
    let m = analyzer
        .measure(&ratio(1.5), &target, Some(&spec), now.clone())
        .await;
    assert_eq!(m.verdict, MeasurementVerdict::Successful, "{}", m.message);

    let quiet = Target {
        canary: Revision {
            name: "quiet".into(),
            pods: vec![],
        },
        ..target
    };
    let m = analyzer
        .measure(&errors, &quiet, Some(&spec), now.clone())
        .await;
    assert_eq!(
        m.verdict,
        MeasurementVerdict::Inconclusive,
        "empty results: {}",
        m.message
    );
    let down = PrometheusSpec {
        url: "http://127.0.0.1:1".into(),
        timeout_seconds: 1,
    };
    let m = analyzer.measure(&errors, &quiet, Some(&down), now).await;
    assert_eq!(m.verdict, MeasurementVerdict::Error, "{}", m.message);
    assert!(m.message.contains("unreachable"), "{}", m.message);
}
