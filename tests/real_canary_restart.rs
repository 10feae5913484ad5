//! Canary rollouts survive operator restarts. Two `modelpilot controller` processes elect a
//! leader on a Lease; a rollout with every kind of step runs on real pods under light load, and
//! at every step (each change of `status.rollout.currentStep` or of the phase) the leader is
//! killed with SIGKILL — no graceful hand-over, no lease release — and a fresh process replaces
//! it; the leader is killed once more right after a `promote` request is written.
//!
//! Everything the operator needs to continue lives in `status.rollout`, so whoever leads next
//! must pick up exactly where the last write left off: no step skipped or carried out twice
//! (every status write, as a watcher saw them from the start; no StepCompleted event twice), the
//! request carried out once, one signature Job for the candidate, one promotion, and a timed pause
//! that ends on the clock of its `stepStartedAt` rather than being restarted by the new leader.
//!
//! Events are published after the status write they describe, so a leader killed right after
//! that write may take them with it (docs/rollouts.md, "Conditional status writes"): the test
//! holds events to "at most once" and the status to "exactly once".
//!
//! Needs `make cluster-up` (as root) and the Python test env (`eval "$(hack/pyenv.sh)"`).

mod canary_support;
mod common;
mod real_support;
mod serve_support;

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use canary_support::*;
use common::{TestNamespace, WAIT, in_namespace, operator::OperatorProcess, plugin, poll};
use futures::StreamExt;
use k8s_openapi::{
    api::{batch::v1::Job, coordination::v1::Lease, events::v1::Event},
    jiff::Timestamp,
};
use kube::{
    Api,
    api::ListParams,
    runtime::{WatchStreamExt, watcher},
};
use modelpilot::{
    api::{ModelDeployment, ModelDeploymentStatus, Outcome, RolloutPhase},
    build::labels::SIGNATURE_OF,
};
use serde_json::json;
use tokio::{io::AsyncBufReadExt, sync::watch};

const NAME: &str = "restart";
/// The shortest lease the operator accepts: a killed leader is replaced after about this long.
const LEASE_SECONDS: u64 = 3;
/// The timed pause: longer than a takeover, so the new leader sees it running.
const PAUSE_SECONDS: i64 = 10;
/// The open-ended pause step, ended by `promote`.
const OPEN_PAUSE: i32 = 4;

fn rollout() -> serde_json::Value {
    json!({
        "steps": [
            {"setWeight": 25},
            {"pause": {"durationSeconds": PAUSE_SECONDS}},
            {"analysis": {"metrics": [
                {"name": "errors", "intervalSeconds": 2, "count": 2, "minSample": 5,
                 "errorRate": {"max": 0.05}}
            ]}},
            {"setWeight": 50},
            {"pause": {}},
            {"setWeight": 75}
        ],
        "scaleDownDelaySeconds": 0
    })
}

/// The operator processes of a test; dropping it kills every one still running.
struct Fleet {
    ns: String,
    started: usize,
    replicas: Vec<OperatorProcess>,
    logs: Vec<std::path::PathBuf>,
}

impl Fleet {
    fn new(ns: &str) -> Self {
        Self {
            ns: ns.into(),
            started: 0,
            replicas: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// Starts one more `modelpilot controller` process.
    fn spawn(&mut self) -> String {
        self.started += 1;
        let identity = format!("replica-{}", self.started);
        let replica = OperatorProcess::start(&self.ns, &identity, LEASE_SECONDS);
        self.logs.push(replica.log.clone());
        self.replicas.push(replica);
        identity
    }

    /// SIGKILL, and reap it.
    async fn kill(&mut self, identity: &str) {
        let i = self
            .replicas
            .iter()
            .position(|r| r.identity == identity)
            .unwrap_or_else(|| panic!("{identity} is not one of ours"));
        self.replicas.remove(i).kill().await;
    }

    /// Successful reconciles of a running replica, from its /metrics.
    async fn reconciled(&self, identity: &str) -> Option<u64> {
        let replica = self.replicas.iter().find(|r| r.identity == identity)?;
        replica.reconciled().await
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        // Dropping the processes kills them.
        if std::thread::panicking() {
            eprintln!("controller logs: {:?}", self.logs);
        }
    }
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    let lease = leases.get_opt("modelpilot-controller").await.ok()??;
    lease.spec?.holder_identity.filter(|h| !h.is_empty())
}

/// Waits until a replica other than `not` holds the lease and, once there is something to
/// reconcile (`reconciling`), has finished a reconcile.
async fn wait_leader(
    fleet: &Fleet,
    leases: &Api<Lease>,
    not: Option<&str>,
    reconciling: bool,
) -> String {
    poll(
        WAIT,
        Duration::from_millis(100),
        "a new leader",
        || async move {
            let h = holder(leases).await?;
            let fresh = Some(h.as_str()) != not && fleet.replicas.iter().any(|r| r.identity == h);
            let working = !reconciling || fleet.reconciled(&h).await? >= 1;
            (fresh && working).then_some(h)
        },
    )
    .await
}

/// A leader killed and the one that took over.
#[derive(Debug)]
struct Takeover {
    what: String,
    killed: String,
    killed_at: Timestamp,
    leader: String,
    led_at: Timestamp,
}

/// Kills the leader, starts its replacement, and waits for the new leader to reconcile.
async fn fail_over(fleet: &mut Fleet, leases: &Api<Lease>, what: String) -> Takeover {
    let killed = holder(leases).await.expect("a leader holds the lease");
    let killed_at = Timestamp::now();
    fleet.kill(&killed).await;
    fleet.spawn();
    let leader = wait_leader(fleet, leases, Some(&killed), true).await;
    let t = Takeover {
        what,
        killed,
        killed_at,
        leader,
        led_at: Timestamp::now(),
    };
    eprintln!(
        "{}: killed {}, {} leads after {} ms",
        t.what,
        t.killed,
        t.leader,
        millis(t.killed_at, t.led_at)
    );
    t
}

/// Milliseconds from `a` to `b`.
fn millis(a: Timestamp, b: Timestamp) -> i64 {
    b.as_millisecond() - a.as_millisecond()
}

/// What the status watcher records of each distinct rollout state.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    phase: RolloutPhase,
    step: i32,
    step_started_at: Option<Timestamp>,
    canary: Option<String>,
    request: Option<String>,
    promoted: usize,
}

fn seen(s: &ModelDeploymentStatus) -> Seen {
    let r = s.rollout.clone().unwrap_or_default();
    Seen {
        phase: r.phase,
        step: r.current_step,
        step_started_at: r.step_started_at.map(|t| t.0),
        canary: r.canary.map(|c| c.name),
        request: r.last_request.map(|a| a.id),
        promoted: promotions(s),
    }
}

/// Promoted history entries of the candidate (v2).
fn promotions(s: &ModelDeploymentStatus) -> usize {
    s.history
        .iter()
        .filter(|h| h.outcome == Outcome::Promoted && h.revision.version.as_deref() == Some("v2"))
        .count()
}

/// Every distinct rollout state of `name`, from now on, and the latest status.
fn watch_status(
    api: &Api<ModelDeployment>,
) -> (
    Arc<Mutex<Vec<Seen>>>,
    watch::Receiver<ModelDeploymentStatus>,
) {
    let log = Arc::new(Mutex::new(Vec::<Seen>::new()));
    let (tx, rx) = watch::channel(ModelDeploymentStatus::default());
    let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    let stream = watcher(api.clone(), config).default_backoff();
    let record = log.clone();
    tokio::spawn(async move {
        let mut objects = std::pin::pin!(stream.applied_objects());
        while let Some(Ok(md)) = objects.next().await {
            let status = md.status.unwrap_or_default();
            let now = seen(&status);
            let mut log = record.lock().expect("status log");
            if log.last() != Some(&now) {
                log.push(now);
            }
            drop(log);
            tx.send_replace(status);
        }
    });
    (log, rx)
}

/// Every (name, uid) of a signature Job seen from now on.
fn watch_jobs(api: &Api<Job>) -> Arc<Mutex<BTreeSet<(String, String)>>> {
    let jobs = Arc::new(Mutex::new(BTreeSet::new()));
    let stream = watcher(api.clone(), watcher::Config::default().labels(SIGNATURE_OF));
    let record = jobs.clone();
    tokio::spawn(async move {
        let mut objects = std::pin::pin!(stream.default_backoff().applied_objects());
        while let Some(Ok(job)) = objects.next().await {
            let (name, uid) = (job.metadata.name, job.metadata.uid);
            record
                .lock()
                .expect("job log")
                .insert((name.unwrap_or_default(), uid.unwrap_or_default()));
        }
    });
    jobs
}

/// What counts as a step of the rollout: its phase and current step.
fn position(s: &ModelDeploymentStatus) -> (RolloutPhase, i32) {
    let r = s.rollout.clone().unwrap_or_default();
    (r.phase, r.current_step)
}

/// `modelpilot plugin promote`, killing the leader as soon as the request is written; returns
/// the request id once the plugin reports it done.
async fn promote_killing_the_leader(
    ns: &TestNamespace,
    fleet: &mut Fleet,
    leases: &Api<Lease>,
    takeovers: &mut Vec<Takeover>,
) -> String {
    let mut child = plugin::command(ns, &["promote", NAME, "--wait", "60"])
        .spawn()
        .expect("start the plugin");
    let stderr = child.stderr.take().expect("plugin stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    // "promote restart: requested (id <id>), waiting up to 60s for the operator…"
    let id = loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the plugin writes its request in time")
            .expect("plugin stderr")
            .expect("the plugin names its request before exiting");
        if let Some(rest) = line.split("(id ").nth(1) {
            break rest.split(')').next().unwrap_or_default().to_string();
        }
    };
    takeovers.push(fail_over(fleet, leases, format!("promote {id} written")).await);
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the plugin gets its answer in time")
        .expect("plugin output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "plugin: {stdout}");
    assert!(
        stdout.contains(&format!("moved to step {}", OPEN_PAUSE + 1)),
        "{stdout}"
    );
    id
}

/// Events about `NAME` by reason, each counted as often as it occurred (series included); for
/// StepCompleted, by the step index its note names.
async fn events(ns: &TestNamespace) -> (BTreeMap<String, i32>, BTreeMap<i32, i32>) {
    let list = ns
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .expect("list events");
    let (mut by_reason, mut steps) = (BTreeMap::new(), BTreeMap::new());
    for e in list.items {
        let about = e.regarding.as_ref().and_then(|r| r.name.as_deref());
        let kind = e.regarding.as_ref().and_then(|r| r.kind.as_deref());
        if about != Some(NAME) || kind != Some("ModelDeployment") {
            continue;
        }
        let times = e
            .series
            .as_ref()
            .map(|s| s.count)
            .or(e.deprecated_count)
            .unwrap_or(1);
        let reason = e.reason.clone().unwrap_or_default();
        *by_reason.entry(reason.clone()).or_insert(0) += times;
        if reason == "StepCompleted" {
            let note = e.note.unwrap_or_default();
            let index = note
                .strip_prefix("step ")
                .and_then(|r| r.split(' ').next())
                .and_then(|i| i.parse().ok())
                .unwrap_or_else(|| panic!("StepCompleted note {note:?}"));
            *steps.entry(index).or_insert(0) += times;
        }
    }
    (by_reason, steps)
}

#[tokio::test]
async fn a_rollout_continues_exactly_where_a_killed_leader_left_it() {
    let began = Instant::now();
    let models = Models::upload().await;
    in_namespace("mp-canary-restart", |ns| async move {
        let mut fleet = Fleet::new(&ns.name);
        fleet.spawn();
        fleet.spawn();
        let leases: Api<Lease> = ns.api();
        wait_leader(&fleet, &leases, None, false).await;
        let mdeps = stable_v1(&ns, &models, NAME, 2, rollout()).await;
        let jobs = watch_jobs(&ns.api());
        let (log, mut status) = watch_status(&mdeps);
        // The status watcher has listed the object before the rollout begins (the Job watcher,
        // started first, has seconds to list before the signature Job is created).
        tokio::time::timeout(WAIT, status.wait_for(|s| s.stable.is_some()))
            .await
            .expect("the status watcher lists the object")
            .expect("status watcher");
        let traffic = Load::service(&ns.name, NAME, MODEL_NAME)
            .concurrency(2)
            .rate(30.0)
            .duration(Duration::from_secs(300))
            .csv(&eval_csv(), false)
            .start();
        let v2 = models.get("iris_v2.onnx");
        set_model(&mdeps, NAME, &v2.uri, &v2.sha256, "v2").await;

        let mut takeovers = Vec::new();
        let mut request = None;
        let mut last = position(&status.borrow());
        loop {
            let changed = tokio::time::timeout(
                START,
                status.wait_for(|s| position(s) != last || promotions(s) > 0),
            )
            .await
            .unwrap_or_else(|_| panic!("no progress past {last:?} in {START:?}: {:?}", log))
            .expect("status watcher")
            .clone();
            last = position(&changed);
            assert_ne!(last.0, RolloutPhase::Aborted, "{:#?}", changed.rollout);
            let what = format!("{:?} at step {}", last.0, last.1);
            takeovers.push(fail_over(&mut fleet, &leases, what).await);
            if promotions(&changed) > 0 {
                break;
            }
            if last == (RolloutPhase::Paused, OPEN_PAUSE) && request.is_none() {
                let id = promote_killing_the_leader(&ns, &mut fleet, &leases, &mut takeovers);
                request = Some(id.await);
                last = position(&status.borrow());
            }
        }
        let report = traffic.interrupt().await;
        eprintln!(
            "load: {} requests, {} errors, by revision {:?}",
            report.overall.requests,
            report.overall.errors,
            report.by_revision.keys().collect::<Vec<_>>()
        );
        let final_status = status_now(&mdeps, NAME).await;
        let log = log.lock().expect("status log").clone();
        for s in &log {
            eprintln!("seen: {s:?}");
        }
        check(&ns, &final_status, &log, &takeovers, request, &jobs).await;
        eprintln!(
            "{} takeovers; the test took {:?}",
            takeovers.len(),
            began.elapsed()
        );
    })
    .await;
}

/// The assertions, from the final status, what the watchers saw and the events.
async fn check(
    ns: &TestNamespace,
    status: &ModelDeploymentStatus,
    log: &[Seen],
    takeovers: &[Takeover],
    request: Option<String>,
    jobs: &Arc<Mutex<BTreeSet<(String, String)>>>,
) {
    // Promoted: v2 stable, one Promoted history entry.
    assert_eq!(
        status.stable.as_ref().and_then(|s| s.version.as_deref()),
        Some("v2")
    );
    assert_eq!(rollout_phase(status), RolloutPhase::Stable);
    assert_eq!(promotions(status), 1, "{:#?}", status.history);
    let candidate = status.stable.clone().unwrap_or_default().name;

    // Steps, as the status went: 0, 1, … with no gap, no return, and each step started once
    // (the status watcher sees every write).
    let running: Vec<&Seen> = log
        .iter()
        .filter(|s| s.canary.as_deref() == Some(candidate.as_str()))
        .filter(|s| s.phase != RolloutPhase::Checking && s.phase != RolloutPhase::Stable)
        .collect();
    let mut steps: Vec<i32> = running.iter().map(|s| s.step).collect();
    steps.dedup();
    let last = steps.last().copied().unwrap_or(-1);
    assert!(last >= 5, "the rollout reached its last step: {steps:?}");
    assert_eq!(steps, (0..=last).collect::<Vec<_>>(), "steps in order");
    let mut started: BTreeMap<i32, BTreeSet<Timestamp>> = BTreeMap::new();
    for s in &running {
        if let Some(at) = s.step_started_at {
            started.entry(s.step).or_default().insert(at);
        }
    }
    for (step, at) in &started {
        assert_eq!(at.len(), 1, "step {step} started more than once: {at:?}");
    }

    // The timed pause was running when its leader was killed, and ended on its own clock.
    let first = |step: i32| *started[&step].first().expect("step start");
    let (pause_from, pause_to) = (first(1), first(2));
    let took = millis(pause_from, pause_to);
    let pause_takeover = takeovers
        .iter()
        .find(|t| t.what.ends_with("at step 1"))
        .expect("a takeover during the timed pause");
    assert!(
        millis(pause_from, pause_takeover.led_at) < PAUSE_SECONDS * 1000,
        "the new leader took over after the pause was over: {pause_takeover:?}"
    );
    eprintln!("timed pause of {PAUSE_SECONDS} s took {took} ms");
    assert!(
        (PAUSE_SECONDS * 1000..PAUSE_SECONDS * 1000 + 2500).contains(&took),
        "the {PAUSE_SECONDS} s pause took {took} ms from its stepStartedAt"
    );

    // The request: acknowledged once, in the write that moved the open pause on by one step.
    let id = request.expect("promote was requested");
    let ack = status
        .rollout
        .as_ref()
        .and_then(|r| r.last_request.clone())
        .expect("an acknowledged request");
    assert_eq!(
        (ack.id.as_str(), ack.result.as_str()),
        (id.as_str(), "Done")
    );
    let acked = log
        .iter()
        .position(|s| s.request.as_deref() == Some(id.as_str()))
        .expect("the acknowledgement was seen");
    assert!(acked > 0);
    assert_eq!(
        (log[acked - 1].step, log[acked - 1].phase),
        (OPEN_PAUSE, RolloutPhase::Paused)
    );
    assert_eq!(log[acked].step, OPEN_PAUSE + 1, "{:?}", log[acked]);

    // Events: never twice for one step or one promotion. Events are published after the status
    // write that recorded the change, so a leader killed right after that write (as here, at
    // every step) may take one with it: the status sequence above is the exact record.
    let (by_reason, completed) = events(ns).await;
    eprintln!("events: {by_reason:?}; StepCompleted by step: {completed:?}");
    let completable = [0, 1, 2, 3, 5];
    for (step, n) in &completed {
        assert!(
            completable.contains(step),
            "step {step} completed: {completed:?}"
        );
        assert_eq!(*n, 1, "StepCompleted events for step {step}: {completed:?}");
    }
    let lost: Vec<_> = completable
        .iter()
        .filter(|s| !completed.contains_key(s))
        .collect();
    eprintln!("StepCompleted events lost with a killed leader: steps {lost:?}");
    for reason in [
        "Promoted",
        "RequestDone",
        "RolloutStarted",
        "SignatureChecked",
        "RolloutPaused",
    ] {
        let n = by_reason.get(reason).copied().unwrap_or(0);
        assert!(n <= 1, "{n} {reason} events: {by_reason:?}");
    }

    // One signature Job for the candidate.
    let jobs = jobs.lock().expect("job log").clone();
    let sig = format!("{NAME}-sig-{candidate}");
    let created: Vec<_> = jobs.iter().filter(|(n, _)| *n == sig).collect();
    assert_eq!(created.len(), 1, "signature Jobs: {jobs:?}");
}
