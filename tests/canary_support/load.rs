//! Background load for the canary tests: the real load generator (`modelpilot-loadgen`, a
//! workspace member) run as a child process against a Service, bounded in requests and time,
//! its JSON report parsed into counts per pod and per revision.
//!
//! A test cannot name another package's binary with `CARGO_BIN_EXE_*`, so [`loadgen`] builds it
//! once per test process with the same cargo, profile and target directory as the test (a no-op
//! after `cargo test --workspace`, which builds it anyway) and runs it from there.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    sync::OnceLock,
    time::Duration,
};

use serde::Deserialize;
use tokio::process::{Child, Command};

/// How long one request may take before the load generator counts it as a `timeout`.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack on top of `duration + request timeout` before [`Load::finish`] gives up.
const FINISH_SLACK: Duration = Duration::from_secs(30);

/// The load generator binary, built on first use (see the module docs).
pub fn loadgen() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // <target dir>/<profile>/modelpilot: the load generator is built into the same place.
        let dir = Path::new(env!("CARGO_BIN_EXE_modelpilot"))
            .parent()
            .expect("target profile directory");
        let target_dir = dir.parent().expect("target directory");
        let mut cargo =
            std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
        cargo.current_dir(env!("CARGO_MANIFEST_DIR")).args([
            "build",
            "--quiet",
            "-p",
            "modelpilot-loadgen",
            "--bin",
            "modelpilot-loadgen",
        ]);
        cargo.arg("--target-dir").arg(target_dir);
        match dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => {}
            Some(profile) => {
                cargo.args(["--profile", profile]);
            }
        }
        let status = cargo
            .status()
            .expect("run cargo build -p modelpilot-loadgen");
        assert!(
            status.success(),
            "cargo build -p modelpilot-loadgen: {status}"
        );
        let bin = dir.join("modelpilot-loadgen");
        assert!(bin.exists(), "{} missing after the build", bin.display());
        bin
    })
}

/// What a [`Load`] sends, where, how fast and for how long. Built with [`Load::service`], then
/// adjusted with the chained setters; [`LoadOptions::start`] runs it.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// `--service NAMESPACE/NAME` or `--url URL`.
    target: Vec<String>,
    model: String,
    requests: u64,
    duration: Duration,
    concurrency: usize,
    rate: Option<f64>,
    csv: Option<PathBuf>,
    feedback: bool,
}

impl LoadOptions {
    /// At most this many requests (default 100 000: the duration is the real bound).
    pub fn requests(mut self, n: u64) -> Self {
        self.requests = n;
        self
    }

    /// Requests start for at most this long (default 30 s).
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }

    /// Workers, each waiting for its answer before the next request (default 2).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// At most this many requests per second over all workers (default: unpaced).
    pub fn rate(mut self, per_second: f64) -> Self {
        self.rate = Some(per_second);
        self
    }

    /// Rows of a labelled CSV (label column `species`, e.g. `iris.eval.csv`) instead of random
    /// inputs; with `feedback`, each answer's true label is posted to the pod that answered.
    pub fn csv(mut self, path: &Path, feedback: bool) -> Self {
        self.csv = Some(path.to_path_buf());
        self.feedback = feedback;
        self
    }

    /// The command line of the load generator.
    fn args(&self) -> Vec<String> {
        let mut args = self.target.clone();
        args.extend([
            "--model".into(),
            self.model.clone(),
            "--requests".into(),
            self.requests.to_string(),
            "--duration".into(),
            format!("{}ms", self.duration.as_millis()),
            "--concurrency".into(),
            self.concurrency.to_string(),
            "--timeout".into(),
            format!("{}s", REQUEST_TIMEOUT.as_secs()),
            // kube-proxy balances connections: a new one per request spreads the requests over
            // the pods as a replica ratio intends.
            "--fresh-connections".into(),
            "--json".into(),
        ]);
        if let Some(rate) = self.rate {
            args.extend(["--rate".into(), rate.to_string()]);
        }
        if let Some(csv) = &self.csv {
            args.extend(["--input-csv".into(), csv.display().to_string()]);
            args.extend(["--label-column".into(), "species".into()]);
        }
        if self.feedback {
            args.push("--feedback".into());
        }
        args
    }

    /// Starts the load generator in the background.
    pub fn start(self) -> Load {
        let child = Command::new(loadgen())
            .args(self.args())
            .env("KUBECONFIG", crate::common::kubeconfig_path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn modelpilot-loadgen");
        Load {
            child,
            limit: self.duration + REQUEST_TIMEOUT + FINISH_SLACK,
        }
    }
}

/// A running load generator; dropping it kills the process.
pub struct Load {
    child: Child,
    limit: Duration,
}

impl Load {
    /// Load on the Service `namespace/name` (its ClusterIP, through kube-proxy) for `model`.
    pub fn service(namespace: &str, name: &str, model: &str) -> LoadOptions {
        Self::target(
            vec!["--service".into(), format!("{namespace}/{name}")],
            model,
        )
    }

    /// Load on a base URL (`http://ADDRESS:PORT`) for `model`.
    pub fn url(base: &str, model: &str) -> LoadOptions {
        Self::target(vec!["--url".into(), base.into()], model)
    }

    fn target(target: Vec<String>, model: &str) -> LoadOptions {
        LoadOptions {
            target,
            model: model.into(),
            requests: 100_000,
            duration: Duration::from_secs(30),
            concurrency: 2,
            rate: None,
            csv: None,
            feedback: false,
        }
    }

    /// Waits for the run to end by its own bounds and returns the report; panics when the load
    /// generator could not start (exit 1 or 2, its stderr in the message) or overruns its bounds.
    pub async fn finish(self) -> LoadReport {
        let limit = self.limit;
        let out = tokio::time::timeout(limit, self.child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("modelpilot-loadgen still runs after {limit:?}"))
            .expect("wait for modelpilot-loadgen");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "modelpilot-loadgen {}: {stderr}",
            out.status
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not a load generator report ({e}); stderr:\n{stderr}"))
    }

    /// Stops sending (SIGINT, as Ctrl-C: requests in flight finish) and returns the report.
    pub async fn interrupt(self) -> LoadReport {
        if let Some(pid) = self.child.id() {
            let sent = std::process::Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status()
                .expect("kill -INT");
            assert!(sent.success(), "kill -INT {pid}");
        }
        self.finish().await
    }
}

/// The load generator's JSON report (the fields the tests read; see hack/loadgen/README.md).
#[derive(Clone, Debug, Deserialize)]
pub struct LoadReport {
    /// `requests`, `duration` or `interrupted`.
    pub stopped_by: String,
    pub elapsed_seconds: f64,
    pub overall: Summary,
    /// By the `x-modelpilot-pod` header; `unknown` for answers without it and connect errors.
    pub by_pod: BTreeMap<String, Summary>,
    /// By the `x-modelpilot-revision` header; `unknown` as for pods.
    pub by_revision: BTreeMap<String, Summary>,
}

/// Counts of one scope of a [`LoadReport`].
#[derive(Clone, Debug, Deserialize)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// `{"http_500": 3, "connect": 1}`: only kinds that occurred.
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Milliseconds over ok answers; `None` when there were none.
    pub latency_ms: Option<Latency>,
    /// Present when the run posted feedback.
    pub feedback: Option<FeedbackCounts>,
}

/// Latency quantiles in milliseconds.
#[derive(Clone, Debug, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// Feedback posts of a scope.
#[derive(Clone, Debug, Deserialize)]
pub struct FeedbackCounts {
    pub sent: u64,
    pub accepted: u64,
    pub accepted_rows: u64,
    #[serde(default)]
    pub errors_by_kind: BTreeMap<String, u64>,
}

impl LoadReport {
    /// Requests answered by a named pod (every scope but `unknown`).
    pub fn answered_by_pods(&self) -> u64 {
        self.by_pod
            .iter()
            .filter(|(pod, _)| pod.as_str() != "unknown")
            .map(|(_, s)| s.requests)
            .sum()
    }

    /// The share of the pod-answered requests that pods of `revision` answered (0 when none).
    pub fn revision_share(&self, revision: &str) -> f64 {
        let total = self.answered_by_pods();
        let of = self.by_revision.get(revision).map_or(0, |s| s.requests);
        if total == 0 {
            0.0
        } else {
            of as f64 / total as f64
        }
    }
}
