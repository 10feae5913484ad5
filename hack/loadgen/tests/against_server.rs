//! The load generator against the real `modelpilot serve` on 127.0.0.1: the request bound
//! and the time bound end runs, every request is counted once (answered or failed), answers
//! are attributed to the pod and revision the server names, feedback posts are accepted by
//! the server (its own counter agrees), `--max-error-rate` decides the exit status, and
//! addresses outside loopback and the cluster networks are refused before anything is dialed.
//!
//! Needs `target/debug/modelpilot` (`cargo build --bin modelpilot`) and the Python test
//! environment (`eval "$(hack/pyenv.sh)"`) for the test models and ONNX Runtime.

mod support;

use serde_json::{Value, json};
use support::{Server, iris_csv, keys, loadgen, report_after};

const POD: &str = "loadgen-test-pod";
const REVISION: &str = "rev-a";

#[test]
fn request_bound_with_feedback_attributed_to_pod_and_revision() {
    let server = Server::start("127.0.0.1", POD, REVISION, &[]);
    let dir = tempfile::tempdir().unwrap();
    let csv = iris_csv(dir.path());
    let out = loadgen(&[
        "--url",
        &server.base,
        "--model",
        "iris",
        "--json",
        "--requests",
        "60",
        "--duration",
        "60s",
        "--concurrency",
        "3",
        "--batch",
        "2",
        "--input-csv",
        csv.to_str().unwrap(),
        "--label-column",
        "species",
        "--feedback",
    ]);
    let r = report_after(&out, 0);
    assert_eq!(r["stopped_by"], "requests");
    let o = &r["overall"];
    assert_eq!(o["requests"], 60, "the count bound is honoured exactly");
    assert_eq!(
        o["ok"].as_u64().unwrap() + o["errors"].as_u64().unwrap(),
        60
    );
    assert_eq!(o["ok"], 60, "{o}");
    assert_eq!(r["inputs"][0]["shape"], json!([2, 4]));
    assert!(o["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(o["latency_ms"]["max"].as_f64() >= o["latency_ms"]["p99"].as_f64());
    assert_eq!(o["feedback"]["sent"], 60);
    assert_eq!(o["feedback"]["accepted"], 60, "{o}");
    assert_eq!(o["feedback"]["accepted_rows"], 120);
    assert_eq!(server.metric("modelpilot_feedback_rows_total"), 120.0);
    assert_eq!(keys(&r["by_pod"]), [POD]);
    assert_eq!(keys(&r["by_revision"]), [REVISION]);
    assert_eq!(r["by_pod"][POD]["requests"], 60);
    assert_eq!(r["by_revision"][REVISION]["feedback"]["accepted_rows"], 120);
}

#[test]
fn time_bound_with_rate_and_random_inputs() {
    let server = Server::start("127.0.0.1", POD, REVISION, &[]);
    let out = loadgen(&[
        "--url",
        &server.base,
        "--model",
        "iris",
        "--json",
        "--requests",
        "1000000",
        "--duration",
        "1s",
        "--rate",
        "20",
        "--concurrency",
        "2",
    ]);
    let r = report_after(&out, 0);
    assert_eq!(r["stopped_by"], "duration");
    let o = &r["overall"];
    let requests = o["requests"].as_u64().unwrap();
    assert!((1..=20).contains(&requests), "20 req/s for 1 s: {requests}");
    assert_eq!(
        o["ok"].as_u64().unwrap() + o["errors"].as_u64().unwrap(),
        requests
    );
    assert_eq!(r["input_source"], "random values");
    assert_eq!(o["feedback"], Value::Null);
}

#[test]
fn max_error_rate_sets_the_exit_status() {
    // Bodies of 100 random rows (about 2 KiB) are over the server's 1 KiB limit: every
    // request is answered 413.
    let server = Server::start("127.0.0.1", POD, REVISION, &["--max-body-bytes", "1024"]);
    let base = [
        "--url",
        &server.base,
        "--model",
        "iris",
        "--requests",
        "10",
        "--batch",
        "100",
    ];
    let out = loadgen(&[&base[..], &["--json", "--max-error-rate", "0.5"]].concat());
    let r = report_after(&out, 3);
    assert_eq!(r["overall"]["errors"], 10);
    assert_eq!(r["overall"]["errors_by_kind"]["http_413"], 10);
    assert_eq!(r["overall"]["latency_ms"], Value::Null);
    assert_eq!(r["error_rate_exceeded"], true);
    let out = loadgen(&base);
    assert_eq!(
        out.status.code(),
        Some(0),
        "without --max-error-rate the run completed"
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("errors    overall: http_413=10"), "{table}");
}

#[test]
fn refuses_outside_addresses_and_unbounded_runs_before_dialing() {
    for (args, want) in [
        (
            &["--url", "http://192.168.1.1:80"][..],
            "refusing to dial 192.168.1.1",
        ),
        (
            &["--url", "http://10.97.0.1:80"],
            "refusing to dial 10.97.0.1",
        ),
        (
            &[
                "--url",
                "http://10.96.0.1:80",
                "--allow-cidr",
                "10.244.0.0/16",
            ],
            "refusing",
        ),
        (&["--url", "http://example.com"], "names are not resolved"),
        (
            &["--url", "http://127.0.0.1:9", "--requests", "0"],
            "every run is bounded",
        ),
        (
            &["--url", "http://127.0.0.1:9", "--duration", "0s"],
            "every run is bounded",
        ),
        (
            &["--url", "http://127.0.0.1:9", "--duration", "2h"],
            "every run is bounded",
        ),
    ] {
        let out = loadgen(&[&["--model", "iris"], args].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
