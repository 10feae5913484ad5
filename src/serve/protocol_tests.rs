//! Table-driven tests of request decoding and response encoding.

use super::*;
use crate::serve::tensor::TensorData;

fn binary_request(json: &str, binary: &[u8]) -> Vec<u8> {
    let mut body = json.as_bytes().to_vec();
    body.extend_from_slice(binary);
    body
}

#[test]
fn decodes_json_request() {
    let body = br#"{"id":"r1","parameters":{"p":1,"binary_data_output":true},
        "inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}],
        "outputs":[{"name":"y","parameters":{"binary_data":false,"k":"v"}}]}"#;
    let req = decode_request(body, None).expect("valid request");
    assert_eq!(req.id.as_deref(), Some("r1"));
    assert!(req.binary_output);
    assert_eq!(req.parameters.as_ref().map(|p| p.len()), Some(1));
    assert_eq!(req.inputs[0].shape, vec![2, 2]);
    assert_eq!(
        req.inputs[0].data,
        TensorData::Fp32(vec![1.0, 2.0, 3.0, 4.0])
    );
    assert_eq!(req.outputs[0].binary, Some(false));
    assert_eq!(req.outputs[0].parameters.as_ref().map(|p| p.len()), Some(1));
}

#[test]
fn decodes_binary_inputs_mixed_with_json() {
    let json = r#"{"inputs":[
        {"name":"a","shape":[2],"datatype":"INT64","parameters":{"binary_data_size":16}},
        {"name":"b","shape":[1],"datatype":"BOOL","data":[true]},
        {"name":"c","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":6}}]}"#;
    let mut bin = Vec::new();
    bin.extend_from_slice(&7i64.to_le_bytes());
    bin.extend_from_slice(&(-1i64).to_le_bytes());
    bin.extend_from_slice(&[2, 0, 0, 0, b'o', b'k']);
    let body = binary_request(json, &bin);
    let req = decode_request(&body, Some(json.len())).expect("valid request");
    assert_eq!(req.inputs[0].data, TensorData::Int64(vec![7, -1]));
    assert_eq!(req.inputs[1].data, TensorData::Bool(vec![true]));
    assert_eq!(req.inputs[2].data, TensorData::Bytes(vec![b"ok".to_vec()]));
}

#[test]
fn rejects_bad_requests() {
    let x = |shape: &str, dt: &str, data: &str| {
        format!(r#"{{"inputs":[{{"name":"x","shape":{shape},"datatype":"{dt}","data":{data}}}]}}"#)
    };
    let cases: Vec<(String, &str)> = vec![
        ("not json".into(), "malformed JSON"),
        (r#"{"inputs":[]}"#.into(), "no inputs"),
        (r#"{"outputs":[]}"#.into(), "malformed JSON"),
        (x("[2]", "FP32", "[1]"), "needs 2"),
        (x("[1]", "FP32", "[1,2]"), "needs 1"),
        (x("[1]", "BF16", "[1]"), "unsupported datatype"),
        (x("[-1]", "FP32", "[1]"), "must be >= 0"),
        (
            x("[4294967296,4294967296]", "FP32", "[1]"),
            "too many elements",
        ),
        (
            x("[9223372036854775807,9223372036854775807]", "INT8", "[1]"),
            "too many elements",
        ),
        (x("[99999999999999999999]", "FP32", "[1]"), "malformed JSON"),
        (x("[1]", "INT32", "[1.5]"), "invalid data"),
        (x("[1]", "UINT8", "[-3]"), "invalid data"),
        (x("[1]", "BOOL", "[\"yes\"]"), "invalid data"),
        (
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}"#.into(),
            "neither",
        ),
        (
            r#"{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},
                {"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}"#
                .into(),
            "more than once",
        ),
    ];
    for (body, want) in cases {
        let err = decode_request(body.as_bytes(), None)
            .expect_err(&body)
            .to_string();
        assert!(err.contains(want), "{body}: got '{err}', want '{want}'");
    }
}

#[test]
fn rejects_bad_binary_bodies() {
    let json = r#"{"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]}"#;
    let n = json.len();
    let cases: Vec<(Vec<u8>, usize, &str)> = vec![
        (binary_request(json, &[0; 4]), n, "only 4 are left"),
        (binary_request(json, &[0; 12]), n, "no input claims"),
        (binary_request(json, &[0; 8]), n + 100, "exceeds the body"),
        (binary_request(json, &[0; 8]), n - 1, "malformed JSON"),
        (
            binary_request(&json.replace("8}", "-8}"), &[0; 8]),
            n + 1,
            "non-negative integer",
        ),
        (
            binary_request(&json.replace("8}", "4}"), &[0; 4]),
            n,
            "needs 8 bytes",
        ),
    ];
    for (body, header, want) in cases {
        let err = decode_request(&body, Some(header))
            .expect_err(want)
            .to_string();
        assert!(err.contains(want), "got '{err}', want '{want}'");
    }
}

#[test]
fn encodes_json_and_binary_outputs() {
    let y = NamedTensor {
        name: "y".into(),
        shape: vec![2],
        data: TensorData::Fp32(vec![1.0, 2.0]),
    };
    let z = NamedTensor {
        name: "z".into(),
        shape: vec![1],
        data: TensorData::Int64(vec![5]),
    };
    let outputs = [
        ResponseOutput {
            tensor: &y,
            binary: false,
            parameters: None,
        },
        ResponseOutput {
            tensor: &z,
            binary: true,
            parameters: None,
        },
    ];
    let resp = encode_response("m", "1", Some("id7"), None, &outputs).expect("encodes");
    let header = resp.header_len.expect("binary output present");
    let json: Value = serde_json::from_slice(&resp.body[..header]).expect("json header");
    assert_eq!(json["id"], "id7");
    assert_eq!(json["outputs"][0]["data"], serde_json::json!([1.0, 2.0]));
    assert_eq!(json["outputs"][1]["parameters"]["binary_data_size"], 8);
    assert!(json["outputs"][1].get("data").is_none());
    assert_eq!(&resp.body[header..], &5i64.to_le_bytes());

    let only_json = encode_response("m", "1", None, None, &outputs[..1]).expect("encodes");
    assert_eq!(only_json.header_len, None);
}
