//! Shared harness of the load generator's integration tests: the generated test models, a
//! CSV of labelled iris rows, the real `modelpilot serve` started and awaited until ready,
//! and the load generator run to a JSON report.
//!
//! Needs `target/debug/modelpilot` (`cargo build --bin modelpilot`; a test cannot build
//! another package's binary) and the Python test environment (`eval "$(hack/pyenv.sh)"`)
//! for the test models and ONNX Runtime.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{Arc, Mutex, OnceLock, mpsc},
    time::{Duration, Instant},
};

use serde_json::Value;

pub const LOADGEN: &str = env!("CARGO_BIN_EXE_modelpilot-loadgen");
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The workspace root (this crate is `hack/loadgen` in it).
pub fn workspace() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `eval \"$(hack/pyenv.sh)\"` first (make test does this)")
    })
}

/// The server binary, next to the load generator in the shared target directory.
fn modelpilot() -> PathBuf {
    let path = Path::new(LOADGEN).with_file_name("modelpilot");
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bin modelpilot` first",
        path.display()
    );
    path
}

/// The generated test models, made once per version of the generator (the directory scheme
/// of the root crate's serve tests, so either may make them for both).
pub fn models() -> &'static Path {
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

/// Writes a CSV of the generator's labelled iris rows (label column `species`) into `dir`.
pub fn iris_csv(dir: &Path) -> PathBuf {
    let text = std::fs::read(models().join("iris.sample.json")).expect("iris.sample.json");
    let sample: Value = serde_json::from_slice(&text).expect("sample JSON");
    let mut csv = String::from("sepal_length,sepal_width,petal_length,petal_width,species\n");
    let rows = sample["inputs"].as_array().expect("inputs");
    for (row, label) in rows
        .iter()
        .zip(sample["labels"].as_array().expect("labels"))
    {
        let cells: Vec<String> = row
            .as_array()
            .expect("row")
            .iter()
            .map(Value::to_string)
            .collect();
        csv.push_str(&format!("{},{label}\n", cells.join(",")));
    }
    let path = dir.join("iris.csv");
    std::fs::write(&path, csv).expect("write iris.csv");
    path
}

/// A running `modelpilot serve` of iris.onnx; killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    pub base: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts a server on `host` (any free port) that names itself `pod` of `revision`.
    pub fn start(host: &str, pod: &str, revision: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(modelpilot())
            .arg("serve")
            .args(["--http-host", host, "--http-port", "0", "--model-uri"])
            .arg(models().join("iris.onnx"))
            .args(["--pod-name", pod, "--revision", revision])
            .args(extra)
            .env("RUST_LOG", "info,ort=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn modelpilot serve");
        let stderr = child.stderr.take().expect("stderr piped");
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
        let text =
            |log: &Mutex<Vec<String>>| log.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "server did not listen (a stale target/debug/modelpilot? rebuild it):\n{}",
                    text(&log)
                )
            });
        let server = Server {
            child,
            base: format!("http://{addr}"),
            addr,
            log,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        while get(&server.base, "/v2/health/ready").is_none_or(|r| !r.starts_with("HTTP/1.1 200")) {
            assert!(
                Instant::now() < deadline,
                "server not ready:\n{}",
                text(&server.log)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// A sample's value on `/metrics` (the first series of that name).
    pub fn metric(&self, name: &str) -> f64 {
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
pub fn get(base: &str, path: &str) -> Option<String> {
    let host = base.strip_prefix("http://")?;
    let mut stream =
        TcpStream::connect_timeout(&host.parse().ok()?, Duration::from_secs(2)).ok()?;
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

/// Runs the load generator to completion.
pub fn loadgen(args: &[&str]) -> Output {
    Command::new(LOADGEN)
        .args(args)
        .output()
        .expect("run modelpilot-loadgen")
}

/// The JSON report on a run's stdout.
pub fn report(out: &Output) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not a JSON report ({e}); stderr:\n{stderr}"))
}

/// The JSON report of a run that exited with `code`.
pub fn report_after(out: &Output, code: i32) -> Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    report(out)
}

/// Keys of a JSON object, in order.
pub fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}
