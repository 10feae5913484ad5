//! `/metrics` of the real `modelpilot serve` binary: the request, latency, batch, readiness
//! and prediction families carry exactly the counts of the traffic sent; the page passes
//! `promtool check metrics`; content negotiation serves OpenMetrics to Prometheus; the drift
//! histograms put each input value into the bin the baseline profile defines and export the
//! profile's share of each bin; labelled rows are counted by (true, predicted) label, escaped.

mod observe_support;
mod serve_support;

use std::{io::Write, process::Command};

use observe_support::{find, iris_request, parse, post, scrape, sum, value};
use serde_json::{Value, json};
use serve_support::Server;

const ROWS: [[f32; 4]; 3] = [
    [5.1, 3.5, 1.4, 0.2],
    [6.0, 2.9, 4.5, 1.5],
    [6.9, 3.1, 5.8, 2.2],
];

/// Runs `promtool check metrics` on `page`; `None` (with the reason printed) without promtool.
fn promtool_check(page: &str) -> Option<(bool, String)> {
    let spawned = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            eprintln!("SKIPPED promtool check: promtool not runnable ({e}); .ci/run installs it");
            return None;
        }
    };
    child.stdin.take()?.write_all(page.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success() && text.trim().is_empty(), text))
}

#[tokio::test(flavor = "multi_thread")]
async fn request_families_count_the_traffic_and_pass_promtool() {
    let server = Server::ready("iris.onnx", &[]);
    for n in 1..=3 {
        let (status, body) = post(
            &server.base,
            "/v2/models/iris/infer",
            &iris_request(&ROWS[..n], None),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    for _ in 0..2 {
        let (status, _) = post(
            &server.base,
            "/v2/models/iris/infer",
            &json!({"inputs": []}),
        )
        .await;
        assert_eq!(status, 400);
    }

    let (content_type, page) = scrape(&server.base, None).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let s = parse(&page);
    let infer = [("endpoint", "infer")];
    let model = [("model", "iris"), ("model_version", "1")];
    assert_eq!(
        value(
            &s,
            "modelpilot_inference_requests_total",
            &[model[0], model[1], ("endpoint", "infer"), ("code", "200")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "modelpilot_inference_requests_total",
            &[("endpoint", "infer"), ("code", "400")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &s,
            "modelpilot_inference_request_duration_seconds_count",
            &infer
        ),
        5.0
    );
    assert_eq!(
        value(
            &s,
            "modelpilot_inference_compute_duration_seconds_count",
            &infer
        ),
        3.0,
        "only served requests ran the model"
    );
    assert_eq!(
        value(
            &s,
            "modelpilot_inference_queue_duration_seconds_count",
            &infer
        ),
        3.0
    );
    assert_eq!(
        value(
            &s,
            "modelpilot_inference_request_duration_seconds_bucket",
            &[("endpoint", "infer"), ("le", "+Inf")]
        ),
        5.0
    );
    assert_eq!(
        value(&s, "modelpilot_inference_batch_rows_sum", &[]),
        6.0,
        "1 + 2 + 3 rows"
    );
    assert_eq!(value(&s, "modelpilot_inference_batch_rows_count", &[]), 3.0);
    assert_eq!(
        sum(&s, "modelpilot_predictions_total", &[("output", "label")]),
        6.0
    );
    assert_eq!(
        value(&s, "modelpilot_inference_inflight_requests", &[]),
        0.0
    );
    assert_eq!(value(&s, "modelpilot_model_ready", &[]), 1.0);
    assert!(value(&s, "modelpilot_model_load_duration_seconds", &[]) > 0.0);
    for sample in &s {
        assert_eq!(
            sample.labels.get("model").map(String::as_str),
            Some("iris"),
            "{sample:?}"
        );
    }

    if let Some((ok, output)) = promtool_check(&page) {
        assert!(ok, "promtool check metrics failed:\n{output}\n{page}");
    }

    let accept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5";
    let (content_type, om) = scrape(&server.base, Some(accept)).await;
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(om.ends_with("# EOF\n"));
    assert!(om.contains("# TYPE modelpilot_inference_requests counter\n"));
    assert!(om.contains("# UNIT modelpilot_inference_request_duration_seconds seconds\n"));
}

/// Cumulative `le` bucket counts of a feature's histogram on the page, in bound order.
fn buckets(page: &str, feature: &str) -> Vec<(f64, f64)> {
    let s = parse(page);
    let mut out: Vec<(f64, f64)> = find(
        &s,
        "modelpilot_feature_value_bucket",
        &[("feature", feature)],
    )
    .iter()
    .map(|b| {
        let le = b.labels["le"].parse::<f64>().unwrap_or(f64::INFINITY);
        (le, b.value)
    })
    .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_histograms_bin_inputs_like_the_profile() {
    let profile_path = serve_support::models().join("iris.profile.json");
    let profile: Value =
        serde_json::from_slice(&std::fs::read(&profile_path).expect("profile")).expect("json");
    let features = profile["features"].as_array().expect("features");
    let edges = |i: usize| -> Vec<f64> {
        features[i]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .filter_map(Value::as_f64)
            .collect()
    };
    // Per feature: one value below the first edge, one between edges 1 and 2, two above the
    // last edge (midpoints, never an edge itself, so f32 rounding cannot move a value).
    let mut rows = [[0f32; 4]; 4];
    let mut expected_bins = Vec::new();
    for i in 0..4 {
        let e = edges(i);
        let last = e.len() - 1;
        let values = [
            e[0] - 1.0,
            (e[1] + e[2]) / 2.0,
            e[last] + 0.5,
            e[last] + 2.0,
        ];
        for (row, v) in rows.iter_mut().zip(values) {
            row[i] = v as f32;
        }
        expected_bins.push([0usize, 2, last + 1, last + 1]);
    }
    let path = profile_path.to_str().expect("utf-8");
    let server = Server::ready("iris.onnx", &["--baseline-profile", path]);
    let (status, body) = post(
        &server.base,
        "/v2/models/iris/infer",
        &iris_request(&rows, Some("drift-1")),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Labels with characters that need escaping on the page (the confusion counters).
    let labels = json!({"id": "drift-1", "labels": ["a\"b", "c\\d", "e\nf", 0]});
    let (status, body) = post(&server.base, "/v2/models/iris/feedback", &labels).await;
    assert_eq!(status, 200, "{body}");

    let (_, page) = scrape(&server.base, None).await;
    let s = parse(&page);
    if let Some((ok, output)) = promtool_check(&page) {
        assert!(ok, "promtool check metrics failed:\n{output}\n{page}");
    }
    assert_eq!(
        sum(&s, "modelpilot_feedback_labels_total", &[]),
        4.0,
        "one labelled row per row"
    );
    assert_eq!(
        find(&s, "modelpilot_feedback_labels_total", &[("label", "a\"b")]).len(),
        1,
        "{page}"
    );
    for (i, feature) in features.iter().enumerate() {
        let name = feature["name"].as_str().expect("name");
        let e = edges(i);
        let mut per_bin = vec![0.0; e.len() + 1];
        for bin in expected_bins[i] {
            per_bin[bin] += 1.0;
        }
        let cumulative: Vec<f64> = per_bin
            .iter()
            .scan(0.0, |acc, c| {
                *acc += c;
                Some(*acc)
            })
            .collect();
        let got = buckets(&page, name);
        let bounds: Vec<f64> = e.iter().copied().chain([f64::INFINITY]).collect();
        let want: Vec<(f64, f64)> = bounds.into_iter().zip(cumulative).collect();
        assert_eq!(got, want, "feature {name}\n{page}");
        assert_eq!(
            value(&s, "modelpilot_feature_value_count", &[("feature", name)]),
            4.0
        );
        let mean = value(&s, "modelpilot_feature_baseline_mean", &[("feature", name)]);
        assert!((mean - feature["mean"].as_f64().expect("mean")).abs() < 1e-9);
        // The baseline shares, per bin, for windowed PSI: the profile's counts normalised.
        let counts: Vec<f64> = feature["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .filter_map(Value::as_f64)
            .collect();
        let total: f64 = counts.iter().sum();
        let mut shares: Vec<(f64, f64)> = find(
            &s,
            "modelpilot_feature_baseline_proportion",
            &[("feature", name)],
        )
        .iter()
        .map(|p| {
            let bound = p.labels["upper_bound"]
                .parse::<f64>()
                .unwrap_or(f64::INFINITY);
            (bound, p.value)
        })
        .collect();
        shares.sort_by(|a, b| a.0.total_cmp(&b.0));
        let bounds = e.iter().copied().chain([f64::INFINITY]);
        let want: Vec<(f64, f64)> = bounds.zip(counts.iter().map(|c| c / total)).collect();
        assert_eq!(shares.len(), want.len(), "feature {name}");
        for (got, want) in shares.iter().zip(&want) {
            assert_eq!(got.0, want.0, "feature {name}");
            assert!(
                (got.1 - want.1).abs() < 1e-12,
                "feature {name}: {got:?} vs {want:?}"
            );
        }
        let psi = value(&s, "modelpilot_feature_drift_psi", &[("feature", name)]);
        assert!(
            psi > 0.5,
            "4 values far in the tails are a large shift: psi {psi}"
        );
    }
}
