//! Two operator replicas are safe: leader election on a Lease in the real API server, first as
//! library calls, then as two `modelpilot controller` processes where the leader is stopped with
//! SIGTERM and the follower takes over and reconciles.

mod common;

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use common::{TestNamespace, WAIT, example, has_condition, kubeconfig_path, simulated, wait_for};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{
    Api, ResourceExt,
    api::{Patch, PatchParams},
};
use modelpilot::{
    api::ModelDeployment,
    controller::leader::{Decision, LeaderElector, LeaseConfig},
};

fn elector(ns: &TestNamespace, identity: &str, secs: u64) -> LeaderElector {
    LeaderElector::new(
        ns.client.clone(),
        LeaseConfig {
            namespace: ns.name.clone(),
            name: "modelpilot-controller".into(),
            identity: identity.into(),
            duration: Duration::from_secs(secs),
            retry: Duration::from_secs(1),
        },
    )
}

#[tokio::test]
async fn one_leader_at_a_time_and_release_hands_over() {
    let ns = TestNamespace::create("mp-lease").await;
    let a = elector(&ns, "replica-a", 30);
    let b = elector(&ns, "replica-b", 30);
    assert_eq!(a.try_acquire().await.expect("a"), Decision::Leader);
    assert_eq!(b.try_acquire().await.expect("b"), Decision::Follower);
    assert_eq!(a.try_acquire().await.expect("a renews"), Decision::Leader);
    a.release().await.expect("release");
    assert_eq!(
        b.try_acquire().await.expect("b takes over"),
        Decision::Leader
    );
    assert_eq!(
        a.try_acquire().await.expect("a now follows"),
        Decision::Follower
    );
    let lease: Lease = ns.api().get("modelpilot-controller").await.expect("lease");
    let spec = lease.spec.unwrap_or_default();
    assert_eq!(spec.holder_identity.as_deref(), Some("replica-b"));
    assert_eq!(spec.lease_transitions, Some(1));
    ns.delete().await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let ns = TestNamespace::create("mp-expiry").await;
    let a = elector(&ns, "replica-a", 3);
    let b = elector(&ns, "replica-b", 3);
    assert_eq!(a.try_acquire().await.expect("a"), Decision::Leader);
    let started = Instant::now();
    // a stops renewing; b polls (as a follower does) until the lease expires.
    loop {
        if b.try_acquire().await.expect("b") == Decision::Leader {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "b never took over"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "taken over before expiry: {:?}",
        started.elapsed()
    );
    ns.delete().await;
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Replica {
    child: Child,
    port: u16,
}

impl Replica {
    fn start(ns: &str, identity: &str) -> Self {
        let port = free_port();
        let log = std::fs::File::create(std::env::temp_dir().join(format!("{ns}-{identity}.log")))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_modelpilot"))
            .args([
                "controller",
                "--namespace",
                ns,
                "--lease-namespace",
                ns,
                "--identity",
                identity,
            ])
            .args([
                "--metrics-addr",
                &format!("127.0.0.1:{port}"),
                "--lease-seconds",
                "6",
            ])
            .env("KUBECONFIG", kubeconfig_path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start controller");
        Self { child, port }
    }

    async fn metrics(&self) -> Option<String> {
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        reqwest::get(url).await.ok()?.text().await.ok()
    }

    async fn is_leader(&self) -> bool {
        self.metrics()
            .await
            .is_some_and(|m| m.lines().any(|l| l == "modelpilot_controller_leader 1"))
    }

    /// SIGTERM, then wait (bounded) for the process to exit.
    fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("poll controller") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "controller still running 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Poll until `pred` holds (each probe is an HTTP scrape), failing after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut pred: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !pred().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_controller_processes_fail_over_on_sigterm() {
    let ns = TestNamespace::create("mp-failover").await;
    let mut a = Replica::start(&ns.name, "replica-a");
    eventually("replica-a to lead", WAIT, || a.is_leader()).await;
    let b = Replica::start(&ns.name, "replica-b");
    eventually("replica-b to serve metrics", WAIT, || async {
        b.metrics().await.is_some()
    })
    .await;
    assert!(!b.is_leader().await, "two leaders at once");

    // The leader is stopped gracefully: it releases the lease and exits 0.
    let status = a.terminate();
    assert!(status.success(), "leader exit status {status:?}");
    let handed_over = Instant::now();
    eventually("replica-b to lead", WAIT, || b.is_leader()).await;
    assert!(
        handed_over.elapsed() < Duration::from_secs(6),
        "released lease taken over quickly"
    );

    // And the new leader reconciles.
    let mdeps: Api<ModelDeployment> = ns.api();
    let mdep = simulated(example("minimal.yaml"));
    mdeps
        .patch(
            &mdep.name_any(),
            &PatchParams::apply("modelpilot-tests").force(),
            &Patch::Apply(&mdep),
        )
        .await
        .expect("apply");
    wait_for(
        &mdeps,
        &mdep.name_any(),
        WAIT,
        has_condition("Ready", "True"),
    )
    .await;
    let metrics = b.metrics().await.unwrap_or_default();
    assert!(
        metrics.contains("modelpilot_controller_reconciles_total{result=\"ok\"}"),
        "{metrics}"
    );
    drop(b);
    ns.delete().await;
}
