//! Shared harness of the `serve_*` integration tests: the generated test models, and the
//! real `modelpilot serve` binary started on a free port and awaited until ready.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, OnceLock, mpsc},
    time::{Duration, Instant},
};

/// How long a server may take to become ready (debug builds, loaded CI machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the serve tests need the Python test environment; \
             run `eval \"$(hack/pyenv.sh)\"` first (make test does this)"
        )
    })
}

/// The Python interpreter of the test venv.
pub fn python() -> String {
    required_env("MODELPILOT_PYTHON")
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Directory with the generated models, made once (per version of the generator) and shared
/// by every test binary.
pub fn models() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let _ = required_env("ORT_DYLIB_PATH");
        let script = repo().join("hack/models/make_models.py");
        let source = std::fs::read(&script).expect("read make_models.py");
        let key = source.iter().fold(0xcbf29ce484222325u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
        });
        let dir =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("serve-models-{key:016x}"));
        if dir.join("identity.onnx").exists() {
            return dir;
        }
        let staging = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("serve-models-{key:016x}.{}", std::process::id()));
        let status = Command::new(python())
            .arg(&script)
            .arg(&staging)
            .status()
            .expect("run make_models.py");
        assert!(status.success(), "make_models.py failed: {status}");
        // Another test binary may have won the race; either copy is complete.
        if std::fs::rename(&staging, &dir).is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        dir
    })
}

/// A running `modelpilot serve`; killed on drop.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
    /// Disconnected once the server's stderr closes, which it does when the process exits (the
    /// log reader holds the sender until then; nothing is ever sent).
    stderr_open: mpsc::Receiver<()>,
}

/// Starts the server with `args` (plus `--http-host 127.0.0.1 --http-port 0`) and returns
/// once it listens (not necessarily ready).
pub fn spawn(args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modelpilot"));
    command
        .arg("serve")
        .args(["--http-host", "127.0.0.1", "--http-port", "0"])
        .args(args)
        .env("RUST_LOG", "info,ort=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn modelpilot serve");
    let stderr = child.stderr.take().expect("stderr piped");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let (open, stderr_open) = mpsc::channel::<()>();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        let _open = open;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(port) = listening_port(&line) {
                let _ = tx.send(port);
            }
            sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .unwrap_or_else(|_| {
            let log = log.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
            panic!("server did not start listening:\n{log}")
        });
    Server {
        child,
        port,
        base: format!("http://127.0.0.1:{port}"),
        log,
        stderr_open,
    }
}

fn listening_port(line: &str) -> Option<u16> {
    if !line.contains("listening") {
        return None;
    }
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))?;
    addr.rsplit(':').next()?.parse().ok()
}

impl Server {
    /// Starts a server for `model` (a file in [`models`]) and waits until it is ready.
    pub fn ready(model: &str, extra: &[&str]) -> Server {
        let path = models().join(model);
        let path = path.to_str().expect("utf-8 path");
        let mut args = vec!["--model-uri", path];
        args.extend_from_slice(extra);
        let mut server = spawn(&args, &[]);
        server.wait_ready();
        server
    }

    /// Polls `/v2/health/ready` until 200 (bounded by [`READY_TIMEOUT`]): readiness is an HTTP
    /// answer, nothing to watch.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited with {status}:\n{}", self.log_text());
            }
            if http_status(&format!("{}/v2/health/ready", self.base)) == Some(200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "server not ready after {READY_TIMEOUT:?}:\n{}",
            self.log_text()
        );
    }

    /// Waits for the process to exit (bounded): its stderr closes, then it is reaped.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let exited = matches!(
            self.stderr_open.recv_timeout(timeout),
            Err(mpsc::RecvTimeoutError::Disconnected)
        );
        assert!(exited, "server still running after {timeout:?}");
        self.child.wait().expect("reap the server")
    }

    /// Sends a signal to the server process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status of a plain GET over a fresh connection, `None` if the server is unreachable.
pub fn http_status(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    use std::io::{Read, Write};
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A runtime for async HTTP in synchronous tests.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// SHA-256 of a file, in hex.
pub fn sha256_of(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(std::fs::read(path).expect("read file")))
}

/// Starts the server expecting it to fail to start; returns the last line of its log and the
/// termination message it wrote.
pub fn load_failure(args: &[&str], envs: &[(&str, &str)], remove_ort: bool) -> (String, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let termination = dir.path().join("termination-log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_modelpilot"));
    command
        .arg("serve")
        .args(["--http-host", "127.0.0.1", "--http-port", "0"])
        .arg("--termination-message-path")
        .arg(&termination)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if remove_ort {
        command.env_remove("ORT_DYLIB_PATH");
    }
    let output = command.output().expect("run modelpilot serve");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "expected a failure:\n{stderr}");
    let last = stderr.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("error: "),
        "last line is the error: {stderr}"
    );
    let message = std::fs::read_to_string(&termination).unwrap_or_default();
    (last, message)
}

/// A local S3-compatible server (moto) on a free port; killed on drop.
pub struct S3 {
    child: Child,
    pub endpoint: String,
}

impl Drop for S3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Credentials and region moto accepts (any will do).
pub const AWS_ENV: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
];

/// Starts moto on loopback and returns once it answers HTTP.
pub fn start_s3() -> S3 {
    start_s3_on("127.0.0.1")
}

/// Starts moto on `host` (loopback, or the cluster's node bridge so pods reach it) and returns
/// once it answers HTTP.
pub fn start_s3_on(host: &str) -> S3 {
    let port = std::net::TcpListener::bind((host, 0))
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("a free port on {host}: {e}"))
        .port();
    let child = Command::new(python())
        .args(["-m", "moto.server", "-H", host, "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start moto server");
    let endpoint = format!("http://{host}:{port}");
    // Up once it answers HTTP: polled, there is nothing to watch.
    let deadline = Instant::now() + Duration::from_secs(60);
    while http_status(&format!("{endpoint}/")).is_none() {
        assert!(Instant::now() < deadline, "moto server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    S3 { child, endpoint }
}

impl S3 {
    /// Runs a Python snippet with `s3` (boto3's client to this server) and `endpoint` defined,
    /// the snippet's own arguments from `sys.argv[2]` on; returns its stdout.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        let prelude = "import boto3, hashlib, json, sys\nendpoint = sys.argv[1]\n\
                       s3 = boto3.client('s3', endpoint_url=endpoint)\n";
        let out = Command::new(python())
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .arg(&self.endpoint)
            .args(args)
            .envs(AWS_ENV)
            .output()
            .expect("run python");
        assert!(
            out.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates `bucket` (if needed) and uploads `file` as `key`.
    pub fn upload(&self, bucket: &str, key: &str, file: &Path) {
        let upload = "import boto3, sys\n\
             s3 = boto3.client('s3', endpoint_url=sys.argv[1])\n\
             names = [b['Name'] for b in s3.list_buckets()['Buckets']]\n\
             if sys.argv[2] not in names: s3.create_bucket(Bucket=sys.argv[2])\n\
             s3.upload_file(sys.argv[4], sys.argv[2], sys.argv[3])\n";
        let file = file.to_str().expect("utf-8 path");
        let status = Command::new(python())
            .args(["-c", upload, &self.endpoint, bucket, key, file])
            .envs(AWS_ENV)
            .status()
            .expect("upload");
        assert!(status.success(), "upload of {key} failed");
    }

    /// The environment that points `modelpilot serve` at this S3.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut envs: Vec<(&str, String)> =
            AWS_ENV.iter().map(|(k, v)| (*k, v.to_string())).collect();
        envs.push(("AWS_ENDPOINT_URL", self.endpoint.clone()));
        envs
    }
}
