//! Dynamic batching against the real server: concurrent requests get exactly the answers
//! they get unbatched, requests with different output selections or row counts are kept
//! apart or merged correctly, and the batch metrics show that merging happened.

mod serve_support;

use serde_json::{Value, json};
use serve_support::Server;

async fn infer(client: &reqwest::Client, url: &str, body: Value) -> Value {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
}

/// Request `i`: 1 or 2 rows, every third asks only for `probabilities`.
fn request(i: usize) -> Value {
    let rows: Vec<[f32; 4]> = (0..1 + i % 2)
        .map(|r| {
            let x = (i * 7 + r) as f32 / 10.0;
            [4.5 + x % 3.0, 2.0 + x % 1.5, 1.0 + x % 5.5, 0.1 + x % 2.4]
        })
        .collect();
    let mut body = json!({
        "id": format!("r{i}"),
        "inputs": [{"name": "float_input", "shape": [rows.len(), 4], "datatype": "FP32", "data": rows}]
    });
    if i.is_multiple_of(3) {
        body["outputs"] = json!([{"name": "probabilities"}]);
    }
    body
}

fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{page}"))
}

fn assert_same_outputs(batched: &Value, single: &Value, id: &str) {
    let (a, b) = (&batched["outputs"], &single["outputs"]);
    assert_eq!(
        a.as_array().map(Vec::len),
        b.as_array().map(Vec::len),
        "{id}"
    );
    for (x, y) in a
        .as_array()
        .into_iter()
        .flatten()
        .zip(b.as_array().into_iter().flatten())
    {
        assert_eq!(x["name"], y["name"], "{id}");
        assert_eq!(x["shape"], y["shape"], "{id}");
        let xs: Vec<f64> = serde_json::from_value(x["data"].clone()).expect("numbers");
        let ys: Vec<f64> = serde_json::from_value(y["data"].clone()).expect("numbers");
        for (p, q) in xs.iter().zip(&ys) {
            assert!((p - q).abs() < 1e-5, "{id}: {xs:?} vs {ys:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_requests_are_merged_and_split_back() {
    let batched = Server::ready(
        "iris.onnx",
        &[
            "--batching",
            "--max-batch-size",
            "16",
            "--max-queue-delay-ms",
            "50",
            "--workers",
            "1",
        ],
    );
    let single = Server::ready("iris.onnx", &["--workers", "1"]);
    let client = reqwest::Client::new();
    let n = 48;
    let url = batched.url("/v2/models/iris/infer");
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move { infer(&client, &url, request(i)).await })
        })
        .collect();
    let single_url = single.url("/v2/models/iris/infer");
    for (i, task) in tasks.into_iter().enumerate() {
        let got = task.await.expect("task");
        assert_eq!(got["id"], format!("r{i}"));
        let want = infer(&client, &single_url, request(i)).await;
        assert_same_outputs(&got, &want, &format!("r{i}"));
    }

    let page = reqwest::get(batched.url("/metrics"))
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    let runs = metric(&page, "modelpilot_inference_batch_requests_count");
    let requests = metric(&page, "modelpilot_inference_batch_requests_sum");
    let rows = metric(&page, "modelpilot_inference_batch_rows_sum");
    assert_eq!(requests, n as f64, "every request counted once");
    assert_eq!(rows, (0..n).map(|i| 1 + i % 2).sum::<usize>() as f64);
    assert!(
        runs < requests / 2.0,
        "{requests} requests ran in {runs} runs: batching merged them"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mixed_datatypes_batch_correctly() {
    let server = Server::ready(
        "multi.onnx",
        &["--batching", "--max-queue-delay-ms", "50", "--workers", "1"],
    );
    let client = reqwest::Client::new();
    let url = server.url("/v2/models/multi/infer");
    let tasks: Vec<_> = (0..12i64)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            let body = json!({"inputs": [
                {"name": "features", "shape": [1, 3], "datatype": "FP32", "data": [i, 1, 2]},
                {"name": "count", "shape": [1, 1], "datatype": "INT64", "data": [i]},
                {"name": "flag", "shape": [1, 1], "datatype": "BOOL", "data": [i % 2 == 0]},
                {"name": "text", "shape": [1, 1], "datatype": "BYTES", "data": [format!("t{i}")]},
                {"name": "half", "shape": [1, 2], "datatype": "FP16", "data": [i, 0.5]}
            ]});
            tokio::spawn(async move { (i, infer(&client, &url, body).await) })
        })
        .collect();
    for task in tasks {
        let (i, body) = task.await.expect("task");
        let out = |name: &str| {
            body["outputs"]
                .as_array()
                .and_then(|o| o.iter().find(|t| t["name"] == name))
                .map(|t| t["data"].clone())
                .unwrap_or(Value::Null)
        };
        assert_eq!(out("total"), json!([(2 * i + 3) as f64]));
        assert_eq!(out("count_x2"), json!([2 * i]));
        assert_eq!(out("not_flag"), json!([i % 2 != 0]));
        assert_eq!(out("text_out"), json!([format!("t{i}")]));
        assert_eq!(out("half_neg"), json!([-(i as f64), -0.5]));
    }
}
