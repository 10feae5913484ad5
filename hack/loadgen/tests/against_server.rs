//! The load generator against the real `modelpilot serve` on 127.0.0.1: the request bound
//! and the time bound end runs, every request is counted once (answered or failed), answers
//! are attributed to the pod and revision the server names, feedback posts are accepted by
//! the server (its own counter agrees), `--max-error-rate` decides the exit status, and
//! addresses outside loopback and the cluster networks are refused before anything is dialed.
//!
//! Needs `target/debug/modelpilot` (`cargo build --bin modelpilot`) and the Python test
//! environment (`eval "$(hack/pyenv.sh)"`) for the test models and ONNX Runtime.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex, OnceLock, mpsc},
    time::{Duration, Instant},
};

use serde_json::Value;

const LOADGEN: &str = env!("CARGO_BIN_EXE_modelpilot-loadgen");
const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `eval \"$(hack/pyenv.sh)\"` first (make test does this)")
    })
}

/// The server binary: next to the load generator in the shared target directory.
fn modelpilot() -> PathBuf {
    let path = Path::new(LOADGEN).with_file_name("modelpilot");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bin modelpilot` first (a test cannot build \
         another package's binary)",
        path.display()
    );
    path
}

/// The generated test models, made once per version of the generator (same directory
/// scheme as the root crate's serve tests, so either may make them for both).
fn models() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let _ = required_env("ORT_DYLIB_PATH");
        let script = workspace().join("hack/models/make_models.py");
        let source = std::fs::read(&script).expect("read make_models.py");
        let key = source.iter().fold(0xcbf29ce484222325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.join(format!("serve-models-{key:016x}"));
        if dir.join("identity.onnx").exists() {
            return dir;
        }
        let staging = tmp.join(format!("serve-models-{key:016x}.{}", std::process::id()));
        let status = Command::new(required_env("MODELPILOT_PYTHON"))
            .arg(&script)
            .arg(&staging)
            .status()
            .expect("run make_models.py");
        assert!(status.success(), "make_models.py failed: {status}");
        if std::fs::rename(&staging, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        dir
    })
}

/// A CSV of labelled iris rows from the generator's sample.
fn iris_csv(dir: &Path) -> PathBuf {
    let sample: Value =
        serde_json::from_slice(&std::fs::read(models().join("iris.sample.json")).unwrap()).unwrap();
    let mut csv = String::from("sepal_length,sepal_width,petal_length,petal_width,species\n");
    let rows = sample["inputs"].as_array().unwrap();
    for (row, label) in rows.iter().zip(sample["labels"].as_array().unwrap()) {
        let cells: Vec<String> = row
            .as_array()
            .unwrap()
            .iter()
            .map(Value::to_string)
            .collect();
        csv.push_str(&format!("{},{label}\n", cells.join(",")));
    }
    let path = dir.join("iris.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// A running `modelpilot serve`; killed on drop.
struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    /// Whether this build names its pod and revision in response headers.
    names_itself: bool,
}

const POD: &str = "loadgen-test-pod";
const REVISION: &str = "rev-a";

impl Server {
    fn start(extra: &[&str]) -> Server {
        let binary = modelpilot();
        let help = Command::new(&binary)
            .args(["serve", "--help"])
            .output()
            .unwrap();
        let names_itself = String::from_utf8_lossy(&help.stdout).contains("--pod-name");
        let model = models().join("iris.onnx");
        let mut command = Command::new(&binary);
        command
            .arg("serve")
            .args([
                "--http-host",
                "127.0.0.1",
                "--http-port",
                "0",
                "--model-uri",
            ])
            .arg(&model)
            .args(extra)
            .env("RUST_LOG", "info,ort=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if names_itself {
            command.args(["--pod-name", POD, "--revision", REVISION]);
        }
        let mut child = command.spawn().expect("spawn modelpilot serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let addr = line
                    .contains("listening")
                    .then(|| {
                        line.split_whitespace()
                            .find_map(|w| w.strip_prefix("addr="))
                    })
                    .flatten();
                if let Some(addr) = addr {
                    let _ = tx.send(addr.to_string());
                }
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!("server did not listen:\n{}", log.lock().unwrap().join("\n"))
            });
        let server = Server {
            child,
            base: format!("http://{addr}"),
            log,
            names_itself,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if get(&self.base, "/v2/health/ready").is_some_and(|r| r.starts_with("HTTP/1.1 200")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server not ready:\n{}", self.log.lock().unwrap().join("\n"));
    }

    /// A sample's value from `/metrics` (the first series of that name).
    fn metric(&self, name: &str) -> f64 {
        let page = get(&self.base, "/metrics").expect("scrape /metrics");
        page.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} on /metrics:\n{page}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole response of a plain GET (`None` when unreachable).
fn get(base: &str, path: &str) -> Option<String> {
    let host = base.strip_prefix("http://")?;
    let mut stream = TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

fn loadgen(args: &[&str]) -> Output {
    Command::new(LOADGEN)
        .args(args)
        .output()
        .expect("run modelpilot-loadgen")
}

fn report(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not a JSON report ({e}); stderr:\n{stderr}"))
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn request_bound_with_feedback_attributed_to_pod_and_revision() {
    let server = Server::start(&[]);
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
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    assert_eq!(r["stopped_by"], "requests");
    let o = &r["overall"];
    assert_eq!(o["requests"], 60, "the count bound is honoured exactly");
    assert_eq!(
        o["ok"].as_u64().unwrap() + o["errors"].as_u64().unwrap(),
        60
    );
    assert_eq!(o["ok"], 60, "{o}");
    assert_eq!(r["inputs"][0]["shape"], serde_json::json!([2, 4]));
    assert!(o["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    assert!(o["latency_ms"]["max"].as_f64() >= o["latency_ms"]["p99"].as_f64());
    assert_eq!(o["feedback"]["sent"], 60);
    assert_eq!(o["feedback"]["accepted"], 60, "{o}");
    assert_eq!(o["feedback"]["accepted_rows"], 120);
    assert_eq!(server.metric("modelpilot_feedback_rows_total"), 120.0);
    let (pod, revision) = if server.names_itself {
        (POD, REVISION)
    } else {
        ("unknown", "unknown")
    };
    assert_eq!(keys(&r["by_pod"]), [pod]);
    assert_eq!(keys(&r["by_revision"]), [revision]);
    assert_eq!(r["by_pod"][pod]["requests"], 60);
    assert_eq!(r["by_revision"][revision]["feedback"]["accepted_rows"], 120);
}

#[test]
fn time_bound_with_rate_and_random_inputs() {
    let server = Server::start(&[]);
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
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
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
    let server = Server::start(&["--max-body-bytes", "1024"]);
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
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
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
