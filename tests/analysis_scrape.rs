//! The analysis' direct scrape against real `modelpilot serve` processes: the window between
//! two scrapes holds exactly the traffic sent in between — inference requests with their 4xx
//! and 5xx answers, latency observations, predicted classes, labelled rows by (true,
//! predicted) label, input histograms with their baseline — and a full measurement judges it.

mod observe_support;
mod serve_support;

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use modelpilot::{
    analysis::{
        Analyzer, PodAddr, Revision, Target, prometheus::Prometheus, scrape::Scraper, values,
    },
    api::{AnalysisMetric, Bound, MeasurementVerdict},
};
use observe_support::{iris_request, output, post};
use serde_json::{Value, json};
use serve_support::{Server, models};

const ROWS: [[f32; 4]; 3] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.0, 2.9, 4.5, 1.5],
    [6.9, 3.1, 5.8, 2.2],
];

fn iris_server() -> Server {
    let profile = models().join("iris.profile.json");
    let profile = profile.to_str().expect("utf-8 path");
    Server::ready("iris.onnx", &["--baseline-profile", profile])
}

fn pod(uid: &str, server: &Server) -> PodAddr {
    PodAddr {
        uid: uid.into(),
        name: uid.into(),
        ip: "127.0.0.1".into(),
        port: server.port,
    }
}

/// A multi.onnx request; `count_rows` ≠ 2 makes ONNX Runtime fail (batch dimensions differ,
/// so the Add cannot broadcast): a 500.
fn multi_request(count_rows: usize) -> Value {
    json!({"inputs": [
        {"name": "features", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [4, 5, 6]]},
        {"name": "count", "shape": [count_rows, 1], "datatype": "INT64", "data": vec![[1]; count_rows]},
        {"name": "flag", "shape": [2, 1], "datatype": "BOOL", "data": [[true], [false]]},
        {"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": [["a"], ["b"]]},
        {"name": "half", "shape": [2, 2], "datatype": "FP16", "data": [[1, 2], [3, 4]]}
    ]})
}

/// Sends an iris request; returns the predicted classes.
async fn predict(server: &Server, rows: &[[f32; 4]], id: Option<&str>) -> Vec<String> {
    let (status, body) = post(
        &server.base,
        "/v2/models/iris/infer",
        &iris_request(rows, id),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let labels = output(&body, "label").as_array().expect("labels").clone();
    labels.iter().map(|l| l.to_string()).collect()
}

fn count_classes(predicted: &[String]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for class in predicted {
        *out.entry(class.clone()).or_default() += 1.0;
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_holds_exactly_the_traffic_between_scrapes() {
    let iris = iris_server();
    let multi = Server::ready("multi.onnx", &[]);
    let (iris_pod, multi_pod) = (pod("iris-uid", &iris), pod("multi-uid", &multi));
    let scraper = Scraper::new().reuse_within(Duration::ZERO);
    assert_eq!(
        scraper.prime(&[iris_pod.clone(), multi_pod.clone()]).await,
        2
    );

    // iris: 4 answered requests (9 rows), two 400s, one 404 (unknown model).
    let mut predicted = Vec::new();
    let r1 = predict(&iris, &ROWS[..1], Some("r1")).await;
    let r2 = predict(&iris, &ROWS[..2], Some("r2")).await;
    predicted.extend(r1.iter().chain(&r2).cloned());
    predicted.extend(predict(&iris, &ROWS, Some("r3")).await);
    predicted.extend(predict(&iris, &ROWS, None).await);
    for _ in 0..2 {
        let (status, _) = post(&iris.base, "/v2/models/iris/infer", &json!({"inputs": []})).await;
        assert_eq!(status, 400);
    }
    let (status, _) = post(
        &iris.base,
        "/v2/models/nope/infer",
        &iris_request(&ROWS, None),
    )
    .await;
    assert_eq!(status, 404);
    // Labels: r1 right; r2 first row right, second labelled 9 (wrong).
    let feedback = json!([{"id": "r1", "labels": [r1[0].parse::<i64>().expect("int")]},
                          {"id": "r2", "labels": [r2[0].parse::<i64>().expect("int"), 9]}]);
    let (status, body) = post(&iris.base, "/v2/models/iris/feedback", &feedback).await;
    assert_eq!(status, 200, "{body}");
    // multi: one answered request, three 500s.
    let (status, body) = post(&multi.base, "/v2/models/multi/infer", &multi_request(2)).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..3 {
        let (status, _) = post(&multi.base, "/v2/models/multi/infer", &multi_request(3)).await;
        assert_eq!(status, 500);
    }

    let hour = Duration::from_secs(3600);
    let both = [
        std::slice::from_ref(&iris_pod),
        std::slice::from_ref(&multi_pod),
    ];
    let windows = scraper.window(&both, hour).await;
    let (w, m) = (&windows[0], &windows[1]);
    assert_eq!(
        (w.answered, w.failures.len(), w.stats.pods, w.stats.new_pods),
        (1, 0, 1, 0)
    );
    let c = &w.stats.counts;
    assert_eq!((c.requests, c.errors), (7.0, 0.0));
    assert_eq!(c.latency.count(), 7.0);
    assert_eq!(c.predictions, count_classes(&predicted));
    assert_eq!(c.predictions.values().sum::<f64>(), 9.0);
    let pair = |t: &str, p: &str| (t.to_string(), p.to_string());
    let mut want_labels = BTreeMap::new();
    for key in [
        pair(&r1[0], &r1[0]),
        pair(&r2[0], &r2[0]),
        pair("9", &r2[1]),
    ] {
        *want_labels.entry(key).or_insert(0.0) += 1.0;
    }
    let got_labels: BTreeMap<_, _> = c
        .labels
        .iter()
        .filter(|(_, v)| **v > 0.0)
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert_eq!(got_labels, want_labels);
    assert_eq!(c.features.len(), 4, "four iris features");
    for (name, buckets) in &c.features {
        assert_eq!(buckets.count(), 9.0, "{name}: one value per answered row");
        assert!(c.baseline.contains_key(name), "{name} has its baseline");
    }
    let (psi, samples) = values::input_drift(c).expect("baseline").expect("values");
    assert!(psi.is_finite() && psi >= 0.0, "{psi}");
    assert_eq!(samples, 9);
    assert_eq!(
        values::score(c, modelpilot::api::Score::Accuracy).map(|(v, n)| (v * 3.0, n)),
        Some((2.0, 3))
    );
    let mc = &m.stats.counts;
    assert_eq!(
        (mc.requests, mc.errors, mc.latency.count()),
        (4.0, 3.0, 4.0)
    );
    assert_eq!(values::error_rate(mc), Some((0.75, 4)));

    // The next window (length 0: since the previous scrape) holds only the new traffic.
    predict(&iris, &ROWS[..1], None).await;
    predict(&iris, &ROWS[1..2], None).await;
    let windows = scraper.window(&both, Duration::ZERO).await;
    let c = &windows[0].stats.counts;
    assert_eq!((c.requests, c.errors, c.latency.count()), (2.0, 0.0, 2.0));
    assert_eq!(c.predictions.values().sum::<f64>(), 2.0);
    assert_eq!(c.labels.values().sum::<f64>(), 0.0);
    assert!(c.features.values().all(|b| b.count() == 2.0));
    assert_eq!(windows[1].stats.counts.requests, 0.0);

    // A pod that does not answer is reported, and one never seen before is only a baseline.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let gone = PodAddr {
        port: closed,
        ..pod("gone-uid", &iris)
    };
    let fresh = pod("fresh-uid", &iris);
    let windows = scraper.window(&[&[gone, fresh]], hour).await;
    let w = &windows[0];
    assert_eq!((w.answered, w.stats.pods, w.stats.new_pods), (1, 0, 1));
    assert_eq!(w.failures.len(), 1);
    assert!(
        w.failures[0].starts_with("gone-uid (http://127.0.0.1:"),
        "{:?}",
        w.failures
    );
    assert_eq!(scraper.known_pods(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_measurement_judges_the_canary_against_the_stable() {
    let iris = iris_server();
    let multi = Server::ready("multi.onnx", &[]);
    let analyzer = Analyzer::new(
        Scraper::new().reuse_within(Duration::ZERO),
        Prometheus::default(),
    );
    let target = Target {
        namespace: "ns".into(),
        canary: Revision {
            name: "canary".into(),
            pods: vec![pod("multi-uid", &multi)],
        },
        stable: Revision {
            name: "stable".into(),
            pods: vec![pod("iris-uid", &iris)],
        },
        window: Some(Duration::from_secs(600)),
    };
    let now = Time(Timestamp::now());
    // An errorRate metric of at least 4 samples with `bound`, measured at `now`.
    let measure = async |bound: Bound| {
        let metric = AnalysisMetric {
            name: "errors".into(),
            min_sample: 4,
            error_rate: Some(bound),
            ..AnalysisMetric::default()
        };
        analyzer.measure(&metric, &target, None, now.clone()).await
    };
    let at_most_10_percent = Bound {
        max: Some(0.1),
        ..Bound::default()
    };

    let early = measure(at_most_10_percent.clone()).await;
    assert_eq!(
        early.verdict,
        MeasurementVerdict::Inconclusive,
        "{}",
        early.message
    );
    assert!(early.message.contains("first scrape"), "{}", early.message);

    assert_eq!(analyzer.prime(&target).await, 2);
    post(&multi.base, "/v2/models/multi/infer", &multi_request(2)).await;
    for _ in 0..3 {
        post(&multi.base, "/v2/models/multi/infer", &multi_request(3)).await;
    }
    let absolute = measure(at_most_10_percent).await;
    assert_eq!(
        absolute.verdict,
        MeasurementVerdict::Failed,
        "{}",
        absolute.message
    );
    assert_eq!(
        (absolute.canary, absolute.samples, absolute.stable),
        (Some(0.75), 4, None)
    );
    assert_eq!(
        absolute.message,
        "errorRate: canary 0.75 (4 samples): above max 0.1"
    );
    assert_eq!(absolute.at, now);

    // Relative to a stable that served nothing in the window: Inconclusive, never Failed.
    let relative = Bound {
        max_increase_over_stable: Some(0.01),
        ..Bound::default()
    };
    let m = measure(relative.clone()).await;
    assert_eq!(m.verdict, MeasurementVerdict::Inconclusive, "{}", m.message);
    // With stable traffic in the same window, the canary is judged against it.
    for _ in 0..4 {
        predict(&iris, &ROWS[..1], None).await;
    }
    let m = measure(relative).await;
    assert_eq!(m.verdict, MeasurementVerdict::Failed, "{}", m.message);
    assert_eq!((m.canary, m.stable), (Some(0.75), Some(0.0)));
}
