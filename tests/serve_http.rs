//! `modelpilot serve` over HTTP: every Open Inference Protocol route, JSON and binary
//! tensors of every datatype, output selection, metrics and feedback, and the error paths
//! (each answered as `{"error": …}` with the right status, the server staying up).

mod serve_support;

use serde_json::{Value, json};
use serve_support::Server;

async fn json_of(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.expect("body");
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

/// Assert an `{"error": …}` answer with `want_status` whose message contains `want_text`.
async fn expect_error(response: reqwest::Response, want_status: u16, want_text: &str, case: &str) {
    let status = response.status().as_u16();
    let json = json_of(response).await;
    let message = json["error"].as_str().unwrap_or_default().to_string();
    assert_eq!(status, want_status, "{case}: {message}");
    assert!(
        message.contains(want_text),
        "{case}: '{message}' lacks '{want_text}'"
    );
}

fn post_json(client: &reqwest::Client, url: String, body: &Value) -> reqwest::RequestBuilder {
    client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
}

async fn get(server: &Server, path: &str) -> (u16, Value) {
    let response = reqwest::get(server.url(path)).await.expect("GET");
    let status = response.status().as_u16();
    (status, json_of(response).await)
}

async fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let response = post_json(&reqwest::Client::new(), server.url(path), body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    (status, json_of(response).await)
}

fn iris_request(rows: &[[f32; 4]]) -> Value {
    json!({"inputs": [{"name": "float_input", "shape": [rows.len(), 4], "datatype": "FP32", "data": rows}]})
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metadata_and_json_inference() {
    let server = Server::ready("iris.onnx", &[]);
    assert_eq!(
        get(&server, "/v2/health/live").await,
        (200, json!({"live": true}))
    );
    assert_eq!(
        get(&server, "/v2/health/ready").await,
        (200, json!({"ready": true}))
    );
    let (status, meta) = get(&server, "/v2").await;
    assert_eq!(status, 200);
    assert_eq!(meta["name"], "modelpilot");
    assert!(
        meta["extensions"]
            .as_array()
            .is_some_and(|e| e.contains(&json!("binary_tensor_data")))
    );

    let expected = json!({
        "name": "iris", "versions": ["1"], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "float_input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "label", "datatype": "INT64", "shape": [-1]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}]
    });
    assert_eq!(
        get(&server, "/v2/models/iris").await,
        (200, expected.clone())
    );
    assert_eq!(
        get(&server, "/v2/models/iris/versions/1").await,
        (200, expected)
    );
    assert_eq!(
        get(&server, "/v2/models/iris/ready").await,
        (200, json!({"name": "iris", "ready": true}))
    );
    assert_eq!(
        get(&server, "/v2/models/iris/versions/1/ready").await.0,
        200
    );

    let mut request = iris_request(&[
        [5.1, 3.5, 1.4, 0.2],
        [6.7, 3.0, 5.2, 2.3],
        [5.9, 2.8, 4.3, 1.3],
    ]);
    request["id"] = json!("req-1");
    request["parameters"] = json!({"trace": "abc"});
    let (status, body) = post(&server, "/v2/models/iris/versions/1/infer", &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "req-1");
    assert_eq!(body["model_name"], "iris");
    assert_eq!(body["model_version"], "1");
    assert_eq!(body["parameters"], json!({"trace": "abc"}));
    assert_eq!(body["outputs"][0]["name"], "label");
    assert_eq!(body["outputs"][0]["shape"], json!([3]));
    assert_eq!(
        body["outputs"][0]["data"],
        json!([0, 2, 1]),
        "iris-like classes"
    );
    let probs: Vec<f64> =
        serde_json::from_value(body["outputs"][1]["data"].clone()).expect("floats");
    assert_eq!(probs.len(), 9);
    for row in probs.chunks(3) {
        assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-4, "{row:?}");
    }

    // Nested and flat data are the same tensor.
    let flat = json!({"inputs": [{"name": "float_input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]});
    let (_, a) = post(&server, "/v2/models/iris/infer", &flat).await;
    let (_, b) = post(
        &server,
        "/v2/models/iris/infer",
        &iris_request(&[[5.1, 3.5, 1.4, 0.2]]),
    )
    .await;
    assert_eq!(a["outputs"], b["outputs"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn output_selection_and_binary_outputs() {
    let server = Server::ready("iris.onnx", &[]);
    let mut request = iris_request(&[[6.7, 3.0, 5.2, 2.3]]);
    request["outputs"] = json!([{"name": "probabilities"}]);
    let (status, body) = post(&server, "/v2/models/iris/infer", &request).await;
    assert_eq!(status, 200, "{body}");
    let outputs = body["outputs"].as_array().expect("outputs");
    assert_eq!(outputs.len(), 1);
    assert_eq!(outputs[0]["name"], "probabilities");

    // JSON inputs, binary outputs (as tritonclient asks for them).
    request["outputs"] =
        json!([{"name": "label", "parameters": {"binary_data": true}}, {"name": "probabilities"}]);
    let response = post_json(
        &reqwest::Client::new(),
        server.url("/v2/models/iris/infer"),
        &request,
    )
    .send()
    .await
    .expect("POST");
    assert_eq!(response.status(), 200);
    let header: usize = response
        .headers()
        .get("inference-header-content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Inference-Header-Content-Length");
    let bytes = response.bytes().await.expect("body");
    let json: Value = serde_json::from_slice(&bytes[..header]).expect("JSON header");
    assert_eq!(json["outputs"][0]["parameters"]["binary_data_size"], 8);
    assert!(json["outputs"][0].get("data").is_none());
    assert_eq!(json["outputs"][1]["data"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        &bytes[header..],
        &2i64.to_le_bytes(),
        "label 2 as little-endian INT64"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn binary_request_with_binary_outputs_by_default() {
    let server = Server::ready("iris.onnx", &[]);
    let rows: [f32; 8] = [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3];
    let header = json!({
        "parameters": {"binary_data_output": true},
        "inputs": [{"name": "float_input", "shape": [2, 4], "datatype": "FP32", "parameters": {"binary_data_size": 32}}]
    })
    .to_string();
    let mut body = header.clone().into_bytes();
    rows.iter()
        .for_each(|x| body.extend_from_slice(&x.to_le_bytes()));
    let response = reqwest::Client::new()
        .post(server.url("/v2/models/iris/infer"))
        .header("Inference-Header-Content-Length", header.len())
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    let len: usize = response.headers()["inference-header-content-length"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("header length");
    let bytes = response.bytes().await.expect("body");
    let json: Value = serde_json::from_slice(&bytes[..len]).expect("json");
    assert_eq!(json["outputs"][0]["parameters"]["binary_data_size"], 16);
    assert_eq!(json["outputs"][1]["parameters"]["binary_data_size"], 24);
    let labels: Vec<i64> = bytes[len..len + 16]
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect();
    assert_eq!(labels, vec![0, 2]);
    assert_eq!(bytes.len(), len + 16 + 24);
}

/// One value per datatype, as JSON, and its little-endian binary encoding.
fn datatype_samples() -> Vec<(&'static str, Value, Vec<u8>)> {
    let le = |parts: &[&[u8]]| parts.concat();
    vec![
        ("BOOL", json!([true, false]), vec![1, 0]),
        ("UINT8", json!([0, 255]), vec![0, 255]),
        (
            "UINT16",
            json!([1, 65535]),
            le(&[&1u16.to_le_bytes(), &65535u16.to_le_bytes()]),
        ),
        (
            "UINT32",
            json!([7, 4294967295u32]),
            le(&[&7u32.to_le_bytes(), &u32::MAX.to_le_bytes()]),
        ),
        (
            "UINT64",
            json!([0, 18446744073709551615u64]),
            le(&[&0u64.to_le_bytes(), &u64::MAX.to_le_bytes()]),
        ),
        ("INT8", json!([-128, 127]), vec![0x80, 0x7f]),
        (
            "INT16",
            json!([-2, 300]),
            le(&[&(-2i16).to_le_bytes(), &300i16.to_le_bytes()]),
        ),
        (
            "INT32",
            json!([-5, 2147483647]),
            le(&[&(-5i32).to_le_bytes(), &i32::MAX.to_le_bytes()]),
        ),
        (
            "INT64",
            json!([-9007199254740993i64, 3]),
            le(&[&(-9007199254740993i64).to_le_bytes(), &3i64.to_le_bytes()]),
        ),
        (
            "FP16",
            json!([1.5, -2.0]),
            le(&[
                &half::f16::from_f32(1.5).to_le_bytes(),
                &half::f16::from_f32(-2.0).to_le_bytes(),
            ]),
        ),
        (
            "FP32",
            json!([0.25, -1.5]),
            le(&[&0.25f32.to_le_bytes(), &(-1.5f32).to_le_bytes()]),
        ),
        (
            "FP64",
            json!([0.1, 1e300]),
            le(&[&0.1f64.to_le_bytes(), &1e300f64.to_le_bytes()]),
        ),
        (
            "BYTES",
            json!(["héllo", ""]),
            le(&[&6u32.to_le_bytes(), "héllo".as_bytes(), &0u32.to_le_bytes()]),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_datatype_round_trips_as_json_and_binary() {
    let server = Server::ready("identity.onnx", &[]);
    let samples = datatype_samples();
    let inputs: Vec<Value> = samples
        .iter()
        .map(|(dt, data, _)| json!({"name": format!("x_{dt}"), "shape": [1, 2], "datatype": dt, "data": data}))
        .collect();
    let (status, body) = post(
        &server,
        "/v2/models/identity/infer",
        &json!({"inputs": inputs}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (i, (dt, data, _)) in samples.iter().enumerate() {
        let out = &body["outputs"][i];
        assert_eq!(out["name"], format!("y_{dt}"));
        assert_eq!(out["datatype"], *dt);
        assert_eq!(out["shape"], json!([1, 2]));
        assert_eq!(&out["data"], data, "{dt}");
    }

    // The same tensors as binary, both ways.
    let mut binary = Vec::new();
    let inputs: Vec<Value> = samples
        .iter()
        .map(|(dt, _, bytes)| {
            binary.extend_from_slice(bytes);
            json!({"name": format!("x_{dt}"), "shape": [1, 2], "datatype": dt,
                   "parameters": {"binary_data_size": bytes.len()}})
        })
        .collect();
    let header = json!({"inputs": inputs, "parameters": {"binary_data_output": true}}).to_string();
    let mut request = header.clone().into_bytes();
    request.extend_from_slice(&binary);
    let response = reqwest::Client::new()
        .post(server.url("/v2/models/identity/infer"))
        .header("Inference-Header-Content-Length", header.len())
        .body(request)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let len: usize = response.headers()["inference-header-content-length"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("header length");
    let bytes = response.bytes().await.expect("body");
    assert_eq!(
        &bytes[len..],
        &binary[..],
        "binary outputs equal binary inputs, in order"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn model_with_mixed_datatypes() {
    let server = Server::ready("multi.onnx", &[]);
    let request = json!({"inputs": [
        {"name": "features", "shape": [2, 3], "datatype": "FP32", "data": [[1, 2, 3], [0.5, 0.5, 0]]},
        {"name": "count", "shape": [2, 1], "datatype": "INT64", "data": [[10], [-1]]},
        {"name": "flag", "shape": [2, 1], "datatype": "BOOL", "data": [[true], [false]]},
        {"name": "text", "shape": [2, 1], "datatype": "BYTES", "data": [["a b"], ["ç"]]},
        {"name": "half", "shape": [2, 2], "datatype": "FP16", "data": [[1, -0.5], [2, 0]]}
    ]});
    let (status, body) = post(&server, "/v2/models/multi/infer", &request).await;
    assert_eq!(status, 200, "{body}");
    let by_name = |name: &str| {
        body["outputs"]
            .as_array()
            .and_then(|o| o.iter().find(|t| t["name"] == name))
            .map(|t| t["data"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(by_name("total"), json!([16.0, 0.0]));
    assert_eq!(by_name("count_x2"), json!([20, -2]));
    assert_eq!(by_name("not_flag"), json!([false, true]));
    assert_eq!(by_name("text_out"), json!(["a b", "ç"]));
    assert_eq!(by_name("half_neg"), json!([-1.0, 0.5, -2.0, -0.0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn mid_size_mlp() {
    let server = Server::ready("mlp.onnx", &[]);
    let data: Vec<f32> = (0..4 * 256).map(|i| (i % 17) as f32 / 17.0).collect();
    let request =
        json!({"inputs": [{"name": "input", "shape": [4, 256], "datatype": "FP32", "data": data}]});
    let (status, body) = post(&server, "/v2/models/mlp/infer", &request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outputs"][0]["shape"], json!([4, 16]));
    assert_eq!(
        body["outputs"][0]["data"].as_array().map(Vec::len),
        Some(64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_json_with_the_right_status() {
    let server = Server::ready("iris.onnx", &["--max-body-bytes", "4096"]);
    let input = |shape: Value, dt: &str, data: Value| json!({"inputs": [{"name": "float_input", "shape": shape, "datatype": dt, "data": data}]});
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/v2/models/nope/infer",
            iris_request(&[[1.0; 4]]),
            404,
            "unknown model",
        ),
        (
            "/v2/models/iris/versions/7/infer",
            iris_request(&[[1.0; 4]]),
            404,
            "unknown version",
        ),
        (
            "/v2/models/iris/infer",
            input(json!([1, 4]), "INT64", json!([1, 2, 3, 4])),
            400,
            "datatype INT64",
        ),
        (
            "/v2/models/iris/infer",
            input(json!([1, 3]), "FP32", json!([1, 2, 3])),
            400,
            "shape [1, 3]",
        ),
        (
            "/v2/models/iris/infer",
            input(json!([2, 4]), "FP32", json!([1, 2, 3, 4])),
            400,
            "needs 8",
        ),
        (
            "/v2/models/iris/infer",
            input(json!([1, 4]), "FP32", json!(["a", 2, 3, 4])),
            400,
            "invalid data",
        ),
        (
            "/v2/models/iris/infer",
            input(json!([1, 4]), "BF16", json!([1, 2, 3, 4])),
            400,
            "unsupported datatype",
        ),
        (
            "/v2/models/iris/infer",
            input(json!([-1, 4]), "FP32", json!([1, 2, 3, 4])),
            400,
            ">= 0",
        ),
        (
            "/v2/models/iris/infer",
            input(json!([4294967296i64, 4294967296i64, 4]), "FP32", json!([1])),
            400,
            "too many elements",
        ),
        (
            "/v2/models/iris/infer",
            input(
                json!([9223372036854775807i64, 9223372036854775807i64]),
                "FP32",
                json!([1]),
            ),
            400,
            "too many elements",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": [{"name": "other", "shape": [1], "datatype": "FP32", "data": [1]}]}),
            400,
            "no input named 'other'",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": []}),
            400,
            "no inputs",
        ),
        (
            "/v2/models/iris/infer",
            json!({"inputs": "x"}),
            400,
            "malformed JSON",
        ),
        (
            "/v2/models/iris/infer",
            {
                let mut r = iris_request(&[[1.0; 4]]);
                r["outputs"] = json!([{"name": "nope"}]);
                r
            },
            400,
            "no output named 'nope'",
        ),
        (
            "/v2/models/iris/infer",
            input(json!([600, 4]), "FP32", json!(vec![1.25; 2400])),
            413,
            "exceeds the limit",
        ),
    ];
    let client = reqwest::Client::new();
    for (path, body, want_status, want_text) in cases {
        let response = post_json(&client, server.url(path), &body)
            .send()
            .await
            .expect("POST");
        expect_error(response, want_status, want_text, path).await;
    }

    let raw = |body: Vec<u8>, header: Option<usize>| {
        let mut rb = client.post(server.url("/v2/models/iris/infer")).body(body);
        if let Some(len) = header {
            rb = rb.header("Inference-Header-Content-Length", len);
        }
        rb.send()
    };
    let header = r#"{"inputs":[{"name":"float_input","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}"#;
    let truncated = [header.as_bytes(), &[0u8; 10]].concat();
    let cases: Vec<(Vec<u8>, Option<usize>, u16, &str)> = vec![
        (
            truncated.clone(),
            Some(header.len()),
            400,
            "only 10 are left",
        ),
        (
            truncated.clone(),
            Some(header.len() + 100),
            400,
            "exceeds the body length",
        ),
        (truncated, None, 400, "malformed JSON"),
        (b"{not json".to_vec(), None, 400, "malformed JSON"),
        (vec![b' '; 5000], None, 413, "exceeds the limit"),
    ];
    for (body, header, want_status, want_text) in cases {
        let response = raw(body, header).await.expect("POST");
        expect_error(response, want_status, want_text, "raw body").await;
    }
    let bad_header = client
        .post(server.url("/v2/models/iris/infer"))
        .header("Inference-Header-Content-Length", "-3")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(bad_header.status(), 400);

    assert_eq!(get(&server, "/v2/models/nope").await.0, 404);
    assert_eq!(get(&server, "/v2/models/iris/versions/2").await.0, 404);
    assert_eq!(get(&server, "/v2/models/nope/ready").await.0, 404);
    let (status, body) = get(&server, "/v3/anything").await;
    assert_eq!((status, body["error"].is_string()), (404, true));

    // Still serving after all of that.
    let (status, _) = post(&server, "/v2/models/iris/infer", &iris_request(&[[1.0; 4]])).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_label_feedback() {
    let profile = serve_support::models().join("iris.profile.json");
    let profile = profile.to_str().expect("utf-8").to_string();
    let server = Server::ready("iris.onnx", &["--baseline-profile", &profile]);
    let mut request = iris_request(&[[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]);
    request["id"] = json!("fb-1");
    let (status, body) = post(&server, "/v2/models/iris/infer", &request).await;
    assert_eq!(status, 200);
    assert_eq!(body["outputs"][0]["data"], json!([0, 2]));
    let (status, bad) = post(&server, "/v2/models/iris/infer", &json!({"inputs": []})).await;
    assert_eq!(status, 400, "{bad}");

    let (status, summary) = post(
        &server,
        "/v2/models/iris/feedback",
        &json!({"id": "fb-1", "labels": [0, 1]}),
    )
    .await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["accepted_rows"], 2);
    assert_eq!(summary["scores"]["accuracy"], 0.5);
    let (status, unknown) = post(
        &server,
        "/v2/models/iris/feedback",
        &json!({"id": "never", "labels": [0]}),
    )
    .await;
    assert_eq!(status, 404, "{unknown}");
    let (status, _) = post(&server, "/v2/models/iris/feedback", &json!({"labels": 3})).await;
    assert_eq!(status, 400);
    assert_eq!(
        post(
            &server,
            "/v2/models/other/feedback",
            &json!({"id": "x", "labels": [0]})
        )
        .await
        .0,
        404
    );

    let page = reqwest::get(server.url("/metrics"))
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    for needle in [
        "modelpilot_inference_requests_total{",
        "code=\"200\"",
        "code=\"400\"",
        "modelpilot_inference_compute_duration_seconds",
        "modelpilot_model_ready{",
    ] {
        assert!(page.contains(needle), "/metrics lacks {needle}:\n{page}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_response_names_the_pod_and_revision() {
    let server = Server::ready(
        "iris.onnx",
        &["--pod-name", "iris-5c7b-abcde", "--revision", "4f9c2a1b0d"],
    );
    let client = reqwest::Client::new();
    let good = iris_request(&[[5.1, 3.5, 1.4, 0.2]]);
    let requests = [
        ("ready", client.get(server.url("/v2/health/ready")), 200),
        (
            "inference",
            post_json(&client, server.url("/v2/models/iris/infer"), &good),
            200,
        ),
        (
            "bad request",
            post_json(
                &client,
                server.url("/v2/models/iris/infer"),
                &json!({"inputs": 1}),
            ),
            400,
        ),
        ("unknown route", client.get(server.url("/nope")), 404),
        ("metrics", client.get(server.url("/metrics")), 200),
    ];
    for (case, request, want_status) in requests {
        let response = request.send().await.expect("send");
        assert_eq!(response.status().as_u16(), want_status, "{case}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            header("x-modelpilot-pod").as_deref(),
            Some("iris-5c7b-abcde"),
            "{case}"
        );
        assert_eq!(
            header("x-modelpilot-revision").as_deref(),
            Some("4f9c2a1b0d"),
            "{case}"
        );
    }

    // Without the names (outside a pod) there are no such headers.
    let mut plain = serve_support::spawn(
        &[
            "--model-uri",
            serve_support::models()
                .join("iris.onnx")
                .to_str()
                .expect("utf-8"),
        ],
        &[("POD_NAME", ""), ("MODELPILOT_REVISION", "")],
    );
    plain.wait_ready();
    let response = reqwest::get(plain.url("/v2/health/ready"))
        .await
        .expect("GET");
    assert!(response.headers().get("x-modelpilot-pod").is_none());
    assert!(response.headers().get("x-modelpilot-revision").is_none());
}
