//! Unit tests of the [`ServeMetrics`] facade and of its page.

use super::*;
use crate::serve::tensor::TensorData;

const PROFILE: &str = r#"{"version": 1, "positive_label": "1", "features": [
    {"name": "f0", "index": 0, "edges": [0.0, 1.0], "proportions": [0.25, 0.5, 0.25],
     "mean": 0.5, "std": 0.3},
    {"name": "f1", "input": "x", "index": 1, "edges": [10.0], "counts": [1, 1]}]}"#;

fn tensor(name: &str, shape: &[i64], data: TensorData) -> NamedTensor {
    NamedTensor {
        name: name.into(),
        shape: shape.to_vec(),
        data,
    }
}

fn metrics_with_profile() -> ServeMetrics {
    let mut config = ServeMetricsConfig::new("iris", "3");
    config.profile = Some(BaselineProfile::from_json(PROFILE).unwrap());
    ServeMetrics::new(config)
}

/// The value of the sample line starting with `series ` (exact series match).
fn sample(page: &str, series: &str) -> Option<f64> {
    let line = page
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))?;
    line.rsplit(' ').next()?.parse().ok()
}

/// Asserts each row `(a, b, value)`: the series `metric{labels,ka="a",kb="b"}` has `value`,
/// where `head` is `metric{labels` and `keys` is `[ka, kb]`.
fn assert_rows(page: &str, head: &str, keys: [&str; 2], rows: &[(&str, &str, f64)]) {
    let [ka, kb] = keys;
    for (a, b, value) in rows {
        let series = format!(r#"{head},{ka}="{a}",{kb}="{b}"}}"#);
        assert_eq!(sample(page, &series), Some(*value), "{series} in\n{page}");
    }
}

#[test]
fn request_metrics_count_and_split_latency() {
    let m = ServeMetrics::new(ServeMetricsConfig::new("iris", "3"));
    let ms = Duration::from_millis;
    m.observe_request("infer", 200, ms(3), ms(1), ms(2));
    m.observe_request("infer", 200, ms(3), ms(1), ms(2));
    m.observe_request("infer", 400, ms(1), Duration::ZERO, Duration::ZERO);
    m.observe_batch(4, 16);
    m.set_model_load_seconds(0.25);
    m.set_ready(true);
    let page = m.encode().unwrap();
    let base = r#"model="iris",model_version="3""#;
    let ok =
        format!(r#"modelpilot_inference_requests_total{{{base},endpoint="infer",code="200"}}"#);
    assert_eq!(sample(&page, &ok), Some(2.0), "{page}");
    let total = format!(
        r#"modelpilot_inference_request_duration_seconds_count{{{base},endpoint="infer"}}"#
    );
    assert_eq!(sample(&page, &total), Some(3.0));
    let queue =
        format!(r#"modelpilot_inference_queue_duration_seconds_count{{{base},endpoint="infer"}}"#);
    assert_eq!(
        sample(&page, &queue),
        Some(2.0),
        "zero splits are not observed"
    );
    let rows = format!(r#"modelpilot_inference_batch_rows_sum{{{base}}}"#);
    assert_eq!(sample(&page, &rows), Some(16.0));
    assert_eq!(
        sample(&page, &format!("modelpilot_model_ready{{{base}}}")),
        Some(1.0)
    );
    let load = format!("modelpilot_model_load_duration_seconds{{{base}}}");
    assert_eq!(sample(&page, &load), Some(0.25));
    assert!(page.ends_with("# EOF\n"));
}

#[test]
fn inflight_guard_counts_until_dropped() {
    let m = ServeMetrics::new(ServeMetricsConfig::new("m", "1"));
    let series = r#"modelpilot_inference_inflight_requests{model="m",model_version="1"}"#;
    let a = m.inflight_guard();
    let b = m.inflight_guard();
    assert_eq!(sample(&m.encode().unwrap(), series), Some(2.0));
    drop(a);
    drop(b);
    assert_eq!(sample(&m.encode().unwrap(), series), Some(0.0));
}

#[test]
fn drift_bins_follow_the_profile() {
    let m = metrics_with_profile();
    let x = tensor(
        "x",
        &[3, 2],
        TensorData::Fp32(vec![-1.0, 5.0, 0.5, 20.0, 1.0, 10.0]),
    );
    m.observe_inputs(&[x]);
    assert_eq!(m.drift().counts("f0").unwrap(), vec![1, 2, 0]);
    assert_eq!(m.drift().counts("f1").unwrap(), vec![2, 1]);
    let page = m.encode().unwrap();
    let le =
        r#"modelpilot_feature_value_bucket{model="iris",model_version="3",le="1.0",feature="f0"}"#;
    assert_eq!(sample(&page, le), Some(3.0), "{page}");
    // f0: live [1/3, 2/3, 0] vs baseline [0.25, 0.5, 0.25]; f1: [2/3, 1/3] vs [0.5, 0.5].
    let psi = r#"modelpilot_feature_drift_psi{model="iris",model_version="3",feature="f1"}"#;
    let want = (2.0 / 3.0 - 0.5) * (4.0f64 / 3.0).ln() + (1.0 / 3.0 - 0.5) * (2.0f64 / 3.0).ln();
    assert!((sample(&page, psi).unwrap() - want).abs() < 1e-9);
    let mean = r#"modelpilot_feature_baseline_mean{model="iris",model_version="3",feature="f0"}"#;
    assert_eq!(sample(&page, mean), Some(0.5));
}

#[test]
fn feedback_round_trip_sets_the_binary_scores() {
    let m = metrics_with_profile();
    let out = tensor("label", &[5], TensorData::Int64(vec![1, 1, 1, 0, 0]));
    m.observe_outputs(Some("req-1"), std::slice::from_ref(&out));
    m.observe_outputs(None, &[out]);
    let page = m.encode().unwrap();
    let class1 =
        r#"modelpilot_predictions_total{model="iris",model_version="3",output="label",class="1"}"#;
    assert_eq!(sample(&page, class1), Some(6.0));
    assert!(
        !page.contains("modelpilot_feedback_accuracy"),
        "no scores before feedback"
    );

    let summary = m
        .apply_feedback(br#"{"id": "req-1", "labels": [1, 0, 0, 1, 0]}"#)
        .unwrap();
    assert_eq!(summary.accepted_rows, 5);
    let page = m.encode().unwrap();
    let series = |name: &str| format!(r#"modelpilot_{name}{{model="iris",model_version="3"}}"#);
    assert_eq!(sample(&page, &series("feedback_accuracy")), Some(0.4));
    let precision = sample(&page, &series("feedback_precision")).unwrap();
    assert!((precision - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(sample(&page, &series("feedback_recall")), Some(0.5));
    assert_eq!(sample(&page, &series("feedback_rows_total")), Some(5.0));

    let err = m
        .apply_feedback(br#"{"id": "req-1", "labels": [1, 0, 0, 1, 0]}"#)
        .unwrap_err();
    assert_eq!(err.status_code(), 404);
    let page = m.encode().unwrap();
    assert_eq!(
        sample(&page, &series("feedback_unmatched_total")),
        Some(1.0)
    );
}

#[test]
fn drift_sampling_skips_requests() {
    let mut config = ServeMetricsConfig::new("m", "1");
    config.drift_sample_every = 3;
    let m = ServeMetrics::new(config);
    for _ in 0..7 {
        m.observe_inputs(&[tensor("x", &[1, 1], TensorData::Fp32(vec![0.0]))]);
    }
    assert_eq!(m.drift().counts("x[0]").unwrap().iter().sum::<u64>(), 3);
}

#[test]
fn concurrent_observers_lose_no_count() {
    let m = ServeMetrics::new(ServeMetricsConfig::new("m", "1"));
    std::thread::scope(|scope| {
        for t in 0..8 {
            let m = m.clone();
            scope.spawn(move || {
                for i in 0..500i64 {
                    let _inflight = m.inflight_guard();
                    let x = tensor("x", &[1, 2], TensorData::Fp32(vec![0.05, 50.0]));
                    m.observe_inputs(&[x]);
                    let label = tensor("label", &[1], TensorData::Int64(vec![i % 3]));
                    m.observe_outputs(Some(&format!("t{t}-{i}")), &[label]);
                    let ms = Duration::from_millis(1);
                    m.observe_request("infer", 200, ms, Duration::ZERO, ms);
                    assert!(m.encode().is_ok());
                }
            });
        }
    });
    let page = m.encode().unwrap();
    let series =
        |name: &str, extra: &str| format!(r#"{name}{{model="m",model_version="1"{extra}}}"#);
    let count = |name: &str, extra: &str| sample(&page, &series(name, extra)).unwrap();
    let ok = r#",endpoint="infer",code="200""#;
    assert_eq!(count("modelpilot_inference_requests_total", ok), 4000.0);
    assert_eq!(count("modelpilot_inference_inflight_requests", ""), 0.0);
    assert_eq!(
        count("modelpilot_feature_value_count", r#",feature="x[1]""#),
        4000.0
    );
    let classes: f64 = ["0", "1", "2"]
        .iter()
        .map(|c| {
            count(
                "modelpilot_predictions_total",
                &format!(r#",output="label",class="{c}""#),
            )
        })
        .sum();
    assert_eq!(classes, 4000.0);
    assert_eq!(count("modelpilot_feedback_pending_requests", ""), 4000.0);
}

#[test]
fn baseline_proportions_are_exported_per_bin() {
    let m = metrics_with_profile();
    m.observe_inputs(&[tensor("x", &[1, 2], TensorData::Fp32(vec![0.5, 5.0]))]);
    let page = m.encode().unwrap();
    let head = r#"modelpilot_feature_baseline_proportion{model="iris",model_version="3""#;
    let shares = [
        ("f0", "0.0", 0.25),
        ("f0", "1.0", 0.5),
        ("f0", "+Inf", 0.25),
        ("f1", "10.0", 0.5),
        ("f1", "+Inf", 0.5),
    ];
    assert_rows(&page, head, ["feature", "upper_bound"], &shares);
}

#[test]
fn feedback_labels_count_the_confusion_matrix_with_escaped_labels() {
    let mut config = ServeMetricsConfig::new("m", "1");
    config.max_classes = 3;
    let m = ServeMetrics::new(config);
    let out = tensor("label", &[4], TensorData::Int64(vec![0, 1, 1, 2]));
    m.observe_outputs(Some("a"), std::slice::from_ref(&out));
    m.observe_outputs(Some("b"), &[out]);
    assert!(!m.encode().unwrap().contains("feedback_labels"));
    m.apply_feedback(br#"{"id": "a", "labels": [0, 1, 2, 2]}"#)
        .unwrap();
    m.apply_feedback(br#"{"id": "b", "labels": [0, "q\"x", 5, 6]}"#)
        .unwrap();
    let page = m.encode().unwrap();
    let head = r#"modelpilot_feedback_labels_total{model="m",model_version="1""#;
    // Labels 0, 1, 2 fill the cap of 3; "q\"x", 5 and 6 become __other__.
    let rows = [
        ("0", "0", 2.0),
        ("1", "1", 1.0),
        ("2", "1", 1.0),
        ("2", "2", 1.0),
        ("__other__", "1", 2.0),
        ("__other__", "2", 1.0),
    ];
    assert_rows(&page, head, ["label", "predicted"], &rows);
    let total: usize = page
        .lines()
        .filter(|l| l.starts_with("modelpilot_feedback_labels_total{"))
        .count();
    assert_eq!(total, 6);
}

#[test]
fn feedback_label_values_are_escaped_on_the_page() {
    let m = ServeMetrics::new(ServeMetricsConfig::new("m", "1"));
    let out = tensor("label", &[1], TensorData::Int64(vec![1]));
    m.observe_outputs(Some("a"), &[out]);
    m.apply_feedback(br#"{"id": "a", "labels": ["q\"x\\y\nz"]}"#)
        .unwrap();
    let page = m.encode().unwrap();
    let want = r#"modelpilot_feedback_labels_total{model="m",model_version="1",label="q\"x\\y\nz",predicted="1"} 1"#;
    assert!(page.lines().any(|l| l == want), "{page}");
}

#[test]
fn window_gauges_list_every_bin_and_regression_outputs() {
    let m = metrics_with_profile();
    let base = r#"model="iris",model_version="3""#;
    let page = m.encode().unwrap();
    let seconds = format!("modelpilot_drift_window_seconds{{{base}}}");
    assert_eq!(sample(&page, &seconds), Some(300.0));
    let head = format!("modelpilot_drift_window_bin{{{base}");
    let zeros = [("f0", "0", 0.0), ("f0", "2", 0.0), ("f1", "1", 0.0)];
    assert_rows(&page, &head, ["feature", "bin"], &zeros);
    assert!(
        !page.contains("prediction_window_bin"),
        "no regression seen yet"
    );

    // f0 (first input, column 0): -1 → bin 0, 0.5 → bin 1; f1 (x, column 1): 5 → 0, 20 → 1.
    m.observe_inputs(&[tensor(
        "x",
        &[2, 2],
        TensorData::Fp32(vec![-1.0, 5.0, 0.5, 20.0]),
    )]);
    let value = tensor(
        "variable",
        &[3, 1],
        TensorData::Fp32(vec![-0.5, 0.05, f32::NAN]),
    );
    m.observe_outputs(None, &[value]);
    let page = m.encode().unwrap();
    let rows = [
        ("f0", "0", 1.0),
        ("f0", "1", 1.0),
        ("f0", "2", 0.0),
        ("f1", "0", 1.0),
        ("f1", "1", 1.0),
    ];
    assert_rows(&page, &head, ["feature", "bin"], &rows);
    // No profile prediction: regression values binned by the default edges, every bin listed.
    let bin = |i: usize| format!(r#"modelpilot_prediction_window_bin{{{base},bin="{i}"}}"#);
    let at = |v: f64| DEFAULT_EDGES.partition_point(|e| *e < v);
    assert_eq!(sample(&page, &bin(at(-0.5))), Some(1.0), "{page}");
    assert_eq!(sample(&page, &bin(at(0.05))), Some(1.0));
    assert_eq!(sample(&page, &bin(DEFAULT_EDGES.len())), Some(0.0));
}

#[test]
fn window_pairs_are_the_rows_labelled() {
    let m = ServeMetrics::new(ServeMetricsConfig::new("iris", "3"));
    let out = tensor("label", &[3], TensorData::Int64(vec![0, 1, 1]));
    m.observe_outputs(Some("r1"), &[out]);
    m.apply_feedback(br#"{"id": "r1", "labels": [0, 1, "a\"b"]}"#)
        .unwrap();
    let page = m.encode().unwrap();
    let base = r#"model="iris",model_version="3""#;
    let head = format!("modelpilot_feedback_window_pairs{{{base}");
    let rows = [("0", "0", 1.0), ("1", "1", 1.0), (r#"a\"b"#, "1", 1.0)];
    assert_rows(&page, &head, ["actual", "predicted"], &rows);
    let head = format!("modelpilot_prediction_window_class{{{base}");
    let class = |c: &str| sample(&page, &format!(r#"{head},class="{c}"}}"#));
    assert_eq!((class("0"), class("1")), (Some(1.0), Some(2.0)));
}
