//! `modelpilot signature` as the signature Job runs it: the real binary and ONNX Runtime on the
//! generated test models. The JSON on stdout and in the termination message file, the same
//! inputs and outputs `modelpilot serve` reports, and a model it cannot read as a non-zero exit
//! with the one-line error in the termination message.

mod serve_support;

use std::{
    path::Path,
    process::{Command, Output, Stdio},
};

use modelpilot::serve::signature::{Signature, compare};
use serve_support::{Server, models, runtime};
use sha2::{Digest, Sha256};

/// Runs `modelpilot signature` with `args`; returns its output and the termination message.
fn signature(args: &[&str]) -> (Output, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let termination = dir.path().join("termination-log");
    let output = Command::new(env!("CARGO_BIN_EXE_modelpilot"))
        .arg("signature")
        .arg("--termination-message-path")
        .arg(&termination)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run modelpilot signature");
    let message = std::fs::read_to_string(&termination).unwrap_or_default();
    (output, message)
}

fn model(name: &str) -> String {
    models().join(name).to_str().expect("utf-8 path").to_owned()
}

/// The signature of `file`, checking that stdout and the termination message agree.
fn read_ok(args: &[&str]) -> String {
    let (output, message) = signature(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{args:?}: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "one line on stdout: {stdout}");
    assert_eq!(
        stdout.trim_end(),
        message,
        "stdout and the termination message agree"
    );
    message
}

#[test]
fn prints_the_models_inputs_and_outputs() {
    let iris = model("iris.onnx");
    let multi = model("multi.onnx");
    let iris_json = concat!(
        r#"{"inputs":[{"name":"float_input","datatype":"FP32","shape":[-1,4]}],"#,
        r#""outputs":[{"name":"label","datatype":"INT64","shape":[-1]},"#,
        r#"{"name":"probabilities","datatype":"FP32","shape":[-1,3]}]}"#
    );
    let multi_json = concat!(
        r#"{"inputs":[{"name":"features","datatype":"FP32","shape":[-1,3]},"#,
        r#"{"name":"count","datatype":"INT64","shape":[-1,1]},"#,
        r#"{"name":"flag","datatype":"BOOL","shape":[-1,1]},"#,
        r#"{"name":"text","datatype":"BYTES","shape":[-1,1]},"#,
        r#"{"name":"half","datatype":"FP16","shape":[-1,2]}],"#,
        r#""outputs":[{"name":"total","datatype":"FP32","shape":[-1,1]},"#,
        r#"{"name":"count_x2","datatype":"INT64","shape":[-1,1]},"#,
        r#"{"name":"not_flag","datatype":"BOOL","shape":[-1,1]},"#,
        r#"{"name":"text_out","datatype":"BYTES","shape":[-1,1]},"#,
        r#"{"name":"half_neg","datatype":"FP16","shape":[-1,2]}]}"#
    );
    let digest = hex::encode(Sha256::digest(std::fs::read(&iris).expect("read iris")));
    let file_uri = format!("file://{iris}");
    // (arguments, expected JSON)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--model-uri", &iris], iris_json),
        (
            vec!["--model-uri", &file_uri, "--sha256", &digest],
            iris_json,
        ),
        (
            vec![
                "--model-uri",
                &iris,
                "--graph-optimization-level",
                "disable",
            ],
            iris_json,
        ),
        (vec!["--model-uri", &multi], multi_json),
    ];
    for (args, want) in cases {
        assert_eq!(read_ok(&args), want, "{args:?}");
    }

    // The stable/candidate comparison on real signatures.
    let iris = Signature::parse(iris_json).expect("parse");
    let multi = Signature::parse(multi_json).expect("parse");
    assert_eq!(compare(&iris, &iris.clone()), Ok(()));
    let differences = compare(&iris, &multi).expect_err("different models");
    assert!(
        differences.contains(&"input float_input missing".to_owned())
            && differences.contains(&"output half_neg added".to_owned()),
        "{differences:?}"
    );
}

/// What `signature` reads is what `serve` reports in its model metadata.
#[test]
fn agrees_with_the_servers_metadata() {
    for file in ["iris.onnx", "multi.onnx", "identity.onnx", "mlp.onnx"] {
        let printed = Signature::parse(&read_ok(&["--model-uri", &model(file)]))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let server = Server::ready(file, &["--model-name", "m", "--threads", "1"]);
        let body = runtime().block_on(async {
            reqwest::get(server.url("/v2/models/m"))
                .await
                .expect("GET metadata")
                .bytes()
                .await
                .expect("metadata body")
        });
        let metadata: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{file}: metadata: {e}"));
        let served = Signature::parse(
            &serde_json::json!({"inputs": metadata["inputs"], "outputs": metadata["outputs"]})
                .to_string(),
        )
        .unwrap_or_else(|e| panic!("{file}: metadata {metadata}: {e}"));
        assert_eq!(printed, served, "{file}");
    }
}

#[test]
fn a_model_it_cannot_read_fails_with_the_error_in_the_termination_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a protobuf").expect("write");
    let garbage = garbage.to_str().expect("utf-8").to_owned();
    let iris = model("iris.onnx");
    let wrong = "0".repeat(64);
    // (arguments, expected text)
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--model-uri", &garbage], "not a loadable ONNX model"),
        (
            vec!["--model-uri", &iris, "--sha256", &wrong],
            "checksum mismatch",
        ),
        (vec!["--model-uri", "/nonexistent/m.onnx"], "not found"),
        (
            vec!["--model-uri", "gs://bucket/m.onnx"],
            "unsupported model URI",
        ),
    ];
    for (args, want) in cases {
        let (output, message) = signature(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: nothing on stdout");
        assert!(
            message.contains(want),
            "{args:?}: '{message}' lacks '{want}'"
        );
        assert!(!message.contains('\n'), "one line: {message:?}");
        let last = stderr.lines().last().unwrap_or_default();
        assert_eq!(
            last.strip_prefix("error: "),
            Some(message.as_str()),
            "{args:?}"
        );
    }
}

/// Outside a pod the default `/dev/termination-log` does not exist, and is not created.
#[test]
fn the_default_termination_path_is_left_alone_outside_a_pod() {
    let default = Path::new("/dev/termination-log");
    if default.exists() {
        return; // In a pod: the kubelet's file, not ours to test with.
    }
    let output = Command::new(env!("CARGO_BIN_EXE_modelpilot"))
        .args(["signature", "--model-uri", &model("iris.onnx")])
        .env_remove("MODELPILOT_TERMINATION_MESSAGE_PATH")
        .output()
        .expect("run modelpilot signature");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!default.exists(), "created {}", default.display());
}
