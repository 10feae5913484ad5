//! `modelpilot controller` as a process of its own, for the tests where replicas elect a leader
//! on a Lease and one of them is stopped: gracefully ([`OperatorProcess::terminate`], SIGTERM) or
//! not at all ([`OperatorProcess::kill`], SIGKILL). Each process watches one test namespace,
//! keeps its Lease there, serves `/metrics` on a free local port and writes its log to a file
//! in the temp directory; dropping it kills it.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use tokio::process::{Child, Command};

use super::kubeconfig_path;

/// A local port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One operator process.
pub struct OperatorProcess {
    pub identity: String,
    /// Its log (stderr).
    pub log: PathBuf,
    port: u16,
    child: Child,
}

impl OperatorProcess {
    /// Starts `modelpilot controller` for `ns` with leader election on a Lease in `ns` held for
    /// `lease_seconds`, under `identity`.
    pub fn start(ns: &str, identity: &str, lease_seconds: u64) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{ns}-{identity}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_modelpilot"))
            .args(["controller", "--namespace", ns, "--leader-elect=true"])
            .args(["--lease-namespace", ns, "--identity", identity])
            .args(["--lease-seconds", &lease_seconds.to_string()])
            .args(["--server-image", "modelpilot/modelpilot:test"])
            .args(["--metrics-addr", &format!("127.0.0.1:{port}")])
            .env("KUBECONFIG", kubeconfig_path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .kill_on_drop(true)
            .spawn()
            .expect("start a controller process");
        Self {
            identity: identity.into(),
            log,
            port,
            child,
        }
    }

    /// Its `/metrics` page, once it serves one.
    pub async fn metrics(&self) -> Option<String> {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        reqwest::get(url).await.ok()?.text().await.ok()
    }

    /// Whether it says it leads.
    pub async fn is_leader(&self) -> bool {
        self.metrics()
            .await
            .is_some_and(|m| m.lines().any(|l| l == "modelpilot_controller_leader 1"))
    }

    /// Its successful reconciles so far.
    pub async fn reconciled(&self) -> Option<u64> {
        let page = self.metrics().await?;
        page.lines()
            .find_map(|l| l.strip_prefix(r#"modelpilot_controller_reconciles_total{result="ok"} "#))
            .and_then(|v| v.trim().parse().ok())
    }

    /// SIGTERM, then waits (at most 30 s) for it to exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.id().expect("the controller is running");
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("controller still running 30 s after SIGTERM")
            .expect("wait for the controller")
    }

    /// SIGKILL, and reap it.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL the controller");
    }
}
