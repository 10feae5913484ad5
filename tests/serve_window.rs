//! The sliding window of the real `modelpilot serve`: a version 2 baseline profile fetched
//! from S3 (a local moto), every window series present before traffic (zeros, so pods can be
//! summed), then exact bin, category, class and label-pair counts after inference and label
//! feedback; the pairs, scored by `scores_from_pairs` as the controller does, equal the
//! server's own rolling scores. A profile that cannot be fetched or read stops the start.

mod observe_support;
mod serve_support;

use std::collections::BTreeMap;

use modelpilot::serve::observe::scores::scores_from_pairs;
use observe_support::{IRIS_ROWS, Sample, find, iris_request, output, parse, post, scrape, value};
use serde_json::{Value, json};
use serve_support::{S3, Server, load_failure, models, sha256_of, spawn, start_s3};

const ROWS: [[f32; 4]; 6] = IRIS_ROWS;

/// Two numeric features, petal width as categories (two of the rows fall outside them), and
/// the three iris classes as the prediction's categories.
const PROFILE: &str = r#"{"version": 2, "rows": 150,
  "features": [
    {"name": "sepal_length", "input": "float_input", "index": 0,
     "edges": [5.0, 6.0, 7.0], "counts": [30, 60, 45, 15]},
    {"name": "petal_length", "input": "float_input", "index": 2,
     "edges": [2.0, 4.0, 5.0], "counts": [50, 10, 40, 50]},
    {"name": "petal_width", "input": "float_input", "index": 3, "kind": "categorical",
     "categories": [{"value": "0.2", "count": 29}, {"value": "1.3", "count": 13},
                    {"value": "2.3", "count": 8}]}],
  "prediction": {"kind": "categorical",
     "categories": [{"value": "0", "count": 50}, {"value": "1", "count": 50},
                    {"value": "2", "count": 50}]}}"#;

/// Bins of the numeric features by hand (le semantics: 6.0 is in `(5, 6]`, bin 1).
const SEPAL_BINS: [f64; 4] = [1.0, 3.0, 1.0, 1.0];
const PETAL_BINS: [f64; 4] = [2.0, 0.0, 2.0, 2.0];
/// Petal widths 0.2, 0.2, 1.5, 1.3, 2.2, 2.3 against the categories 0.2, 1.3, 2.3.
const WIDTH_CATEGORIES: [(&str, f64); 4] =
    [("0.2", 2.0), ("1.3", 1.0), ("2.3", 1.0), ("__other__", 2.0)];

/// A server for iris with the profile at `s3://profiles/iris/profile.json`.
struct Setup {
    s3: S3,
    server: Server,
    _dir: tempfile::TempDir,
}

fn start() -> Setup {
    let s3 = start_s3();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("profile.json");
    std::fs::write(&file, PROFILE).expect("write profile");
    s3.upload("profiles", "iris/profile.json", &file);
    let digest = sha256_of(&file);
    let model = models().join("iris.onnx");
    let cache = dir.path().join("cache");
    let args = [
        "--model-uri",
        model.to_str().expect("utf-8"),
        "--baseline-profile",
        "s3://profiles/iris/profile.json",
        "--baseline-profile-sha256",
        &digest,
        "--cache-dir",
        cache.to_str().expect("utf-8"),
        "--drift-window-seconds",
        "120",
    ];
    let envs = s3.env();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut server = spawn(&args, &envs);
    server.wait_ready();
    Setup {
        s3,
        server,
        _dir: dir,
    }
}

fn assert_series(s: &[Sample], name: &str, key: [&str; 2], rows: &[(&str, &str, f64)]) {
    for (a, b, want) in rows {
        let got = value(s, name, &[(key[0], a), (key[1], b)]);
        assert_eq!(got, *want, "{name}{{{}={a}, {}={b}}}", key[0], key[1]);
    }
}

fn bins<'a>(feature: &'a str, counts: &[f64; 4]) -> Vec<(&'a str, &'static str, f64)> {
    ["0", "1", "2", "3"]
        .into_iter()
        .zip(counts)
        .map(|(bin, n)| (feature, bin, *n))
        .collect()
}

async fn predict(server: &Server, rows: &[[f32; 4]], id: &str) -> Vec<String> {
    let request = iris_request(rows, Some(id));
    let (status, body) = post(&server.base, "/v2/models/iris/infer", &request).await;
    assert_eq!(status, 200, "{body}");
    let labels = output(&body, "label").as_array().expect("labels").iter();
    labels
        .filter_map(Value::as_i64)
        .map(|l| l.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn window_counts_inputs_predictions_and_feedback_with_a_profile_from_s3() {
    let setup = start();
    let server = &setup.server;
    let log = server.log_text();
    assert!(log.contains("baseline profile loaded"), "{log}");

    // Before any traffic: every series of the profile, at zero.
    let (_, page) = scrape(&server.base, None).await;
    let s = parse(&page);
    assert_eq!(value(&s, "modelpilot_drift_window_seconds", &[]), 120.0);
    let window_bins = find(&s, "modelpilot_drift_window_bin", &[]);
    assert_eq!(window_bins.len(), 8, "4 bins of 2 numeric features");
    assert!(window_bins.iter().all(|b| b.value == 0.0));
    assert_eq!(find(&s, "modelpilot_drift_window_category", &[]).len(), 4);
    let classes = find(&s, "modelpilot_prediction_window_class", &[]);
    let names: Vec<&str> = classes.iter().map(|c| c.labels["class"].as_str()).collect();
    assert_eq!(names, ["0", "1", "2", "__other__"]);
    assert!(find(&s, "modelpilot_feedback_window_pairs", &[]).is_empty());

    let first = predict(server, &ROWS[..3], "req-a").await;
    let second = predict(server, &ROWS[3..], "req-b").await;
    let truth_b: Vec<String> = second
        .iter()
        .map(|p| ((p.parse::<i64>().expect("class") + 1) % 3).to_string())
        .collect();
    let body = json!([{"id": "req-a", "labels": first}, {"id": "req-b", "labels": truth_b}]);
    let (status, answer) = post(&server.base, "/v2/models/iris/feedback", &body).await;
    assert_eq!(status, 200, "{answer}");

    let (_, page) = scrape(&server.base, None).await;
    let s = parse(&page);
    let key = ["feature", "bin"];
    assert_series(
        &s,
        "modelpilot_drift_window_bin",
        key,
        &bins("sepal_length", &SEPAL_BINS),
    );
    assert_series(
        &s,
        "modelpilot_drift_window_bin",
        key,
        &bins("petal_length", &PETAL_BINS),
    );
    let widths: Vec<(&str, &str, f64)> = WIDTH_CATEGORIES
        .iter()
        .map(|(c, n)| ("petal_width", *c, *n))
        .collect();
    let key = ["feature", "category"];
    assert_series(&s, "modelpilot_drift_window_category", key, &widths);

    let predicted: Vec<&String> = first.iter().chain(&second).collect();
    for class in ["0", "1", "2"] {
        let want = predicted.iter().filter(|p| p.as_str() == class).count() as f64;
        let got = value(
            &s,
            "modelpilot_prediction_window_class",
            &[("class", class)],
        );
        assert_eq!(got, want, "class {class}");
    }

    // Pairs as the server exports them, against the pairs the test sent.
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    let truth = first.iter().chain(&truth_b);
    for (actual, predicted) in truth.zip(&predicted) {
        *want
            .entry((actual.clone(), predicted.to_string()))
            .or_default() += 1;
    }
    let got: BTreeMap<(String, String), u64> = find(&s, "modelpilot_feedback_window_pairs", &[])
        .iter()
        .map(|p| {
            let pair = (p.labels["actual"].clone(), p.labels["predicted"].clone());
            (pair, p.value as u64)
        })
        .collect();
    assert_eq!(got, want);

    // The controller's view: scores of the summed pairs equal the pod's rolling scores.
    let pairs: Vec<(String, String, u64)> = got.into_iter().map(|((a, p), n)| (a, p, n)).collect();
    let scores = scores_from_pairs(&pairs, None).expect("rows");
    assert_eq!(scores.rows, 6);
    let gauges = [
        ("accuracy", scores.accuracy),
        ("precision", scores.precision),
        ("recall", scores.recall),
        ("f1", scores.f1),
    ];
    for (name, from_pairs) in gauges {
        let pod = value(&s, &format!("modelpilot_feedback_{name}"), &[]);
        assert!(
            (pod - from_pairs).abs() < 1e-12,
            "{name}: {pod} vs {from_pairs}"
        );
    }
    drop(setup.s3);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_profile_the_first_request_sets_the_features() {
    let server = Server::ready("iris.onnx", &[]);
    let (_, page) = scrape(&server.base, None).await;
    let s = parse(&page);
    assert_eq!(value(&s, "modelpilot_drift_window_seconds", &[]), 300.0);
    assert!(find(&s, "modelpilot_drift_window_bin", &[]).is_empty());
    predict(&server, &ROWS, "req").await;
    let (_, page) = scrape(&server.base, None).await;
    let s = parse(&page);
    let feature = [("feature", "float_input[0]")];
    let bins = find(&s, "modelpilot_drift_window_bin", &feature);
    assert_eq!(bins.len(), 16, "the default edges: 15 edges, 16 bins");
    assert_eq!(bins.iter().map(|b| b.value).sum::<f64>(), 6.0);
    let classes = find(&s, "modelpilot_prediction_window_class", &[]);
    assert_eq!(classes.iter().map(|c| c.value).sum::<f64>(), 6.0);
    assert!(find(&s, "modelpilot_drift_window_category", &[]).is_empty());
}

#[test]
fn a_profile_that_cannot_be_fetched_or_read_stops_the_start() {
    let s3 = start_s3();
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("profile.json");
    std::fs::write(&good, PROFILE).expect("write");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"version\": 2, \"features\": [").expect("write");
    s3.upload("profiles", "iris/profile.json", &good);
    s3.upload("profiles", "iris/broken.json", &broken);
    let envs = s3.env();
    let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let model = models().join("iris.onnx");
    let model = model.to_str().expect("utf-8");
    let cache = dir.path().join("cache");
    let cache = cache.to_str().expect("utf-8");
    let wrong = "1".repeat(64);
    let cases: [(&str, Option<&str>, &str); 5] = [
        (
            "s3://profiles/iris/absent.json",
            None,
            "baseline profile file",
        ),
        (
            "s3://profiles/iris/profile.json",
            Some(&wrong),
            "checksum mismatch",
        ),
        ("s3://profiles/iris/broken.json", None, "not valid JSON"),
        ("/nonexistent/profile.json", None, "not found"),
        (
            "gs://profiles/p.json",
            None,
            "unsupported baseline profile URI",
        ),
    ];
    for (uri, digest, want) in cases {
        let mut args = vec![
            "--model-uri",
            model,
            "--cache-dir",
            cache,
            "--baseline-profile",
            uri,
        ];
        if let Some(digest) = digest {
            args.extend(["--baseline-profile-sha256", digest]);
        }
        let (line, message) = load_failure(&args, &envs, false);
        assert!(line.contains(want), "{uri}: '{line}' lacks '{want}'");
        assert!(line.contains(&format!("baseline profile {uri}")), "{line}");
        assert_eq!(Some(message.as_str()), line.strip_prefix("error: "));
    }
}
