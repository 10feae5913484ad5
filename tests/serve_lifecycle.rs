//! `modelpilot serve` over its life: liveness before readiness while the model downloads,
//! model sources (HTTP, S3 through a local S3-compatible server, the download cache), every
//! load failure as a one-line error and a non-zero exit, and graceful shutdown on SIGTERM
//! that lets an in-flight request finish.

mod serve_support;

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    process::Command,
    time::{Duration, Instant},
};

use serve_support::{
    AWS_ENV, Server, http_status, load_failure, models, sha256_of, spawn, start_s3,
};
use sha2::{Digest, Sha256};

/// Answers exactly one HTTP request with `body`, after `release` says so.
fn one_shot_http(
    body: Vec<u8>,
) -> (
    u16,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
            line.clear();
        }
        let _ = wait.recv_timeout(Duration::from_secs(60));
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    });
    (port, release, handle)
}

#[test]
fn live_before_ready_while_the_model_downloads() {
    let model = std::fs::read(models().join("iris.onnx")).expect("model");
    let digest = hex::encode(Sha256::digest(&model));
    let (port, release, upstream) = one_shot_http(model);
    let cache = tempfile::tempdir().expect("tempdir");
    let uri = format!("http://127.0.0.1:{port}/models/iris.onnx");
    let cache_dir = cache.path().to_str().expect("utf-8");
    let args = [
        "--model-uri",
        &uri,
        "--sha256",
        &digest,
        "--cache-dir",
        cache_dir,
    ];
    let mut server = spawn(&args, &[]);
    assert_eq!(http_status(&server.url("/v2/health/live")), Some(200));
    assert_eq!(http_status(&server.url("/v2/health/ready")), Some(503));
    assert_eq!(http_status(&server.url("/v2/models/iris/ready")), Some(503));
    assert_eq!(http_status(&server.url("/v2/models/iris")), Some(503));
    release.send(()).expect("release the download");
    server.wait_ready();
    upstream.join().expect("upstream thread");
    assert_eq!(http_status(&server.url("/v2/models/iris/ready")), Some(200));
    drop(server);

    // A second start finds the verified model in the cache: no upstream needed.
    let mut again = spawn(&args, &[]);
    again.wait_ready();
    assert!(
        again.log_text().contains("model found in cache"),
        "{}",
        again.log_text()
    );
}

#[test]
fn load_failures_exit_with_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let garbage = dir.path().join("garbage.onnx");
    std::fs::write(&garbage, b"this is not a protobuf").expect("write");
    let garbage = garbage.to_str().expect("utf-8");
    let iris = models().join("iris.onnx");
    let iris = iris.to_str().expect("utf-8");
    let wrong = "0".repeat(64);
    // A profile whose feature reads column 9 of a 4-column input.
    let profile = dir.path().join("profile.json");
    let bad_profile = r#"{"version": 1, "features": [{"name": "f9", "input": "float_input",
        "index": 9, "edges": [0.0, 1.0], "counts": [1, 1, 1]}]}"#;
    std::fs::write(&profile, bad_profile).expect("write profile");
    let profile = profile.to_str().expect("utf-8");
    // (arguments, extra environment, remove ORT_DYLIB_PATH, expected text)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, bool, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec!["--model-uri", "/nonexistent/m.onnx"],
            vec![],
            false,
            "not found",
        ),
        (
            vec!["--model-uri", iris, "--sha256", &wrong],
            vec![],
            false,
            "checksum mismatch",
        ),
        (
            vec!["--model-uri", iris, "--sha256", "xyz"],
            vec![],
            false,
            "64 hex digits",
        ),
        (
            vec!["--model-uri", garbage],
            vec![],
            false,
            "not a loadable ONNX model",
        ),
        (
            vec!["--model-uri", "gs://bucket/m.onnx"],
            vec![],
            false,
            "unsupported model URI",
        ),
        (vec!["--model-uri", iris], vec![], true, "ORT_DYLIB_PATH"),
        (
            vec!["--model-uri", iris],
            vec![("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
            false,
            "ORT_DYLIB_PATH",
        ),
        (
            vec!["--model-uri", iris, "--baseline-profile", profile],
            vec![],
            false,
            "the baseline profile does not match the model",
        ),
        (
            vec!["--model-uri", "http://127.0.0.1:9/m.onnx"],
            vec![],
            false,
            "downloading",
        ),
    ];
    for (args, envs, remove_ort, want) in cases {
        let (line, message) = load_failure(&args, &envs, remove_ort);
        assert!(line.contains(want), "{args:?}: '{line}' lacks '{want}'");
        assert!(!line.contains("panicked"), "{line}");
        // The same error, for the pod's termination message.
        assert_eq!(
            Some(message.as_str()),
            line.strip_prefix("error: "),
            "{args:?}"
        );
    }
}

#[test]
fn an_unwritable_termination_message_path_still_exits_with_the_error() {
    let iris = models().join("iris.onnx");
    let iris = iris.to_str().expect("utf-8");
    let wrong = "0".repeat(64);
    let output = Command::new(env!("CARGO_BIN_EXE_modelpilot"))
        .arg("serve")
        .args(["--http-host", "127.0.0.1", "--http-port", "0"])
        .args(["--model-uri", iris, "--sha256", &wrong])
        .env(
            "MODELPILOT_TERMINATION_MESSAGE_PATH",
            "/nonexistent/dir/termination-log",
        )
        .output()
        .expect("run modelpilot serve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains("checksum mismatch"), "{stderr}");
}

#[test]
fn sigterm_drains_in_flight_requests() {
    let mut server = Server::ready("mlp.onnx", &["--workers", "1", "--threads", "1"]);
    let rows = 3000;
    let header = format!(
        r#"{{"inputs":[{{"name":"input","shape":[{rows},256],"datatype":"FP32","parameters":{{"binary_data_size":{}}}}}]}}"#,
        rows * 256 * 4
    );
    let mut body = header.clone().into_bytes();
    body.extend(std::iter::repeat_n(0.5f32.to_le_bytes(), rows * 256).flatten());
    let addr = format!("127.0.0.1:{}", server.port);
    let request = std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        write!(
            stream,
            "POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\
             Inference-Header-Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len(),
            header.len()
        )
        .expect("write head");
        stream.write_all(&body).expect("write body");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).expect("read response");
        String::from_utf8_lossy(&response[..response.len().min(200)]).to_string()
    });
    // Wait until the request is in flight, then ask the server to stop (the in-flight gauge is
    // on the /metrics page, which can only be polled).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let page = raw_http::get_text(&server.url("/metrics"));
        if page
            .lines()
            .any(|l| l.starts_with("modelpilot_inference_inflight_requests{") && !l.ends_with(" 0"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "request never in flight:\n{page}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(60));
    let response = request.join().expect("request thread");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "in-flight request completed: {response}"
    );
    assert!(
        status.success(),
        "clean exit: {status}\n{}",
        server.log_text()
    );
    assert!(server.log_text().contains("SIGTERM received"));
}

/// Minimal blocking GET used while the test thread polls.
mod raw_http {
    pub fn get_text(url: &str) -> String {
        let Some(rest) = url.strip_prefix("http://") else {
            return String::new();
        };
        let Some((host, path)) = rest.split_once('/') else {
            return String::new();
        };
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(host) else {
            return String::new();
        };
        let _ = write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        );
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text);
        text
    }
}

#[test]
fn s3_source_with_checksum() {
    let s3 = start_s3();
    let model = models().join("iris.onnx");
    s3.upload("models", "prod/iris.onnx", &model);
    let cache = tempfile::tempdir().expect("tempdir");
    let cache_dir = cache.path().to_str().expect("utf-8");
    let digest = sha256_of(&model);
    let mut envs: Vec<(&str, &str)> = AWS_ENV.to_vec();
    envs.push(("AWS_ENDPOINT_URL", &s3.endpoint));
    let args = [
        "--model-uri",
        "s3://models/prod/iris.onnx",
        "--sha256",
        &digest,
        "--cache-dir",
        cache_dir,
    ];
    let mut server = spawn(&args, &envs);
    server.wait_ready();
    assert_eq!(http_status(&server.url("/v2/models/iris/ready")), Some(200));
    drop(server);

    let missing = [
        "--model-uri",
        "s3://models/prod/absent.onnx",
        "--cache-dir",
        cache_dir,
    ];
    let (line, _) = load_failure(&missing, &envs, false);
    assert!(line.contains("not found"), "{line}");
    let wrong = "1".repeat(64);
    let mismatch = [
        "--model-uri",
        "s3://models/prod/iris.onnx",
        "--sha256",
        &wrong,
        "--cache-dir",
        cache_dir,
    ];
    let (line, message) = load_failure(&mismatch, &envs, false);
    assert!(line.contains("checksum mismatch"), "{line}");
    assert!(message.contains("checksum mismatch"), "{message}");
}
