//! Two operator replicas are safe: leader election on a Lease in the real API server, first as
//! library calls, then as two `modelpilot controller` processes where the leader is stopped with
//! SIGTERM and the follower takes over and reconciles.

mod common;

use std::time::{Duration, Instant};

use common::{
    TestNamespace, WAIT, example, has_condition, operator::OperatorProcess, poll, simulated,
    wait_for,
};
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
    poll(
        Duration::from_secs(20),
        Duration::from_millis(250),
        "b to take over",
        || async { (b.try_acquire().await.expect("b") == Decision::Leader).then_some(()) },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "taken over before expiry: {:?}",
        started.elapsed()
    );
    ns.delete().await;
}

/// How often a process's /metrics is scraped while waiting on it (it cannot be watched).
const SCRAPE_EVERY: Duration = Duration::from_millis(200);

#[tokio::test]
async fn two_controller_processes_fail_over_on_sigterm() {
    let ns = TestNamespace::create("mp-failover").await;
    let mut a = OperatorProcess::start(&ns.name, "replica-a", 6);
    poll(WAIT, SCRAPE_EVERY, "replica-a to lead", || async {
        a.is_leader().await.then_some(())
    })
    .await;
    let b = OperatorProcess::start(&ns.name, "replica-b", 6);
    poll(WAIT, SCRAPE_EVERY, "replica-b to serve metrics", || {
        b.metrics()
    })
    .await;
    assert!(!b.is_leader().await, "two leaders at once");

    // The leader is stopped gracefully: it releases the lease and exits 0.
    let status = a.terminate().await;
    assert!(status.success(), "leader exit status {status:?}");
    let handed_over = Instant::now();
    poll(WAIT, SCRAPE_EVERY, "replica-b to lead", || async {
        b.is_leader().await.then_some(())
    })
    .await;
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
