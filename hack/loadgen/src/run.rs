//! The bounded loop: `concurrency` workers send inference requests until the request count
//! or the time bound is reached (whichever first), optionally paced to a rate, optionally
//! posting each answered request's true labels as feedback to the pod that answered.
//!
//! Workers claim request numbers from one counter, so exactly `requests` are sent at most;
//! no request starts after the deadline, and one already sent finishes or times out
//! (`--timeout`), so a run lasts at most `duration + timeout`. Outcomes go to one
//! aggregating task (see [`crate::report`]).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::{SeedableRng, rngs::StdRng};
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::JoinSet};

use crate::{
    cluster::PodDirectory,
    inputs::Payloads,
    report::{ErrorKind, Event, Outcome, StoppedBy, Tally, UNKNOWN},
    target::BaseUrl,
};

/// Response header naming the pod that answered.
pub const POD_HEADER: &str = "x-modelpilot-pod";
/// Response header naming the revision that answered.
pub const REVISION_HEADER: &str = "x-modelpilot-revision";

/// The bounds and shape of a run.
#[derive(Clone, Debug)]
pub struct Plan {
    pub requests: u64,
    pub duration: Duration,
    pub concurrency: usize,
    /// Requests per second over all workers; `None` sends as fast as answers come.
    pub rate: Option<f64>,
    pub feedback: bool,
}

/// What the workers share.
pub struct Context {
    pub http: reqwest::Client,
    pub base: BaseUrl,
    pub model: String,
    pub payloads: Payloads,
    /// Pod addresses for feedback when the target is a Service.
    pub pods: Option<PodDirectory>,
    /// Prefix of request ids, unique per run.
    pub run_id: String,
}

/// The result of a run.
pub struct Finished {
    pub tally: Tally,
    pub stopped_by: StoppedBy,
    pub elapsed: Duration,
}

/// Runs the plan; `interrupt` (set on Ctrl-C) stops new requests early.
pub async fn run(ctx: Arc<Context>, plan: Plan, interrupt: Arc<AtomicBool>) -> Finished {
    let start = Instant::now();
    let deadline = start + plan.duration;
    let next = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let aggregator = tokio::spawn(async move {
        let mut tally = Tally::default();
        while let Some(event) = rx.recv().await {
            tally.record(&event);
        }
        tally
    });
    let mut workers = JoinSet::new();
    for _ in 0..plan.concurrency {
        let worker = Worker {
            ctx: Arc::clone(&ctx),
            plan: plan.clone(),
            next: Arc::clone(&next),
            interrupt: Arc::clone(&interrupt),
            start,
            deadline,
            events: tx.clone(),
        };
        workers.spawn(worker.run());
    }
    drop(tx);
    while workers.join_next().await.is_some() {}
    let elapsed = start.elapsed();
    let tally = aggregator.await.unwrap_or_default();
    let stopped_by = if interrupt.load(Ordering::Relaxed) {
        StoppedBy::Interrupted
    } else if tally.requests() >= plan.requests {
        StoppedBy::Requests
    } else {
        StoppedBy::Duration
    };
    Finished {
        tally,
        stopped_by,
        elapsed,
    }
}

struct Worker {
    ctx: Arc<Context>,
    plan: Plan,
    next: Arc<AtomicU64>,
    interrupt: Arc<AtomicBool>,
    start: Instant,
    deadline: Instant,
    events: mpsc::UnboundedSender<Event>,
}

impl Worker {
    async fn run(self) {
        let mut rng = StdRng::from_rng(&mut rand::rng());
        loop {
            let seq = self.next.fetch_add(1, Ordering::Relaxed);
            if seq >= self.plan.requests {
                return;
            }
            if let Some(rate) = self.plan.rate {
                let at = self.start + Duration::from_secs_f64(seq as f64 / rate);
                if at >= self.deadline {
                    return;
                }
                tokio::time::sleep_until(at.into()).await;
            }
            if Instant::now() >= self.deadline || self.interrupt.load(Ordering::Relaxed) {
                return;
            }
            let id = self
                .plan
                .feedback
                .then(|| format!("{}-{seq}", self.ctx.run_id));
            let payload = self.ctx.payloads.make(seq, id.as_deref(), &mut rng);
            let (pod, revision, result) = infer(&self.ctx, payload.body).await;
            let answered = result.is_ok();
            self.emit(
                &pod,
                &revision,
                result.map_or_else(Outcome::Failed, Outcome::Answered),
            );
            if let (true, Some(id), Some(labels)) = (answered, id, payload.labels) {
                let result = feedback(&self.ctx, &pod, &id, labels).await;
                self.emit(&pod, &revision, Outcome::Feedback(result));
            }
        }
    }

    fn emit(&self, pod: &str, revision: &str, outcome: Outcome) {
        let _ = self.events.send(Event {
            pod: pod.to_string(),
            revision: revision.to_string(),
            outcome,
        });
    }
}

/// Classifies a client error; a timeout wins over the phase it happened in.
fn classify(err: &reqwest::Error) -> ErrorKind {
    if err.is_timeout() {
        ErrorKind::Timeout
    } else if err.is_connect() {
        ErrorKind::Connect
    } else {
        ErrorKind::Transport
    }
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .unwrap_or(UNKNOWN)
        .to_string()
}

/// One inference request: who answered, and its latency or error. The body is read to the
/// end, so the latency covers the whole response.
async fn infer(ctx: &Context, body: Vec<u8>) -> (String, String, Result<Duration, ErrorKind>) {
    let url = ctx.base.join(&format!("/v2/models/{}/infer", ctx.model));
    let start = Instant::now();
    let sent = ctx
        .http
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) => return (UNKNOWN.into(), UNKNOWN.into(), Err(classify(&e))),
    };
    let pod = header(response.headers(), POD_HEADER);
    let revision = header(response.headers(), REVISION_HEADER);
    let status = response.status();
    let result = match response.bytes().await {
        Err(e) => Err(classify(&e)),
        Ok(_) if status.is_success() => Ok(start.elapsed()),
        Ok(_) => Err(ErrorKind::Status(status.as_u16())),
    };
    (pod, revision, result)
}

/// Posts the true labels of request `id` to the pod that answered it (directly, when the
/// target is a Service and the pod's address is known; else to the target).
async fn feedback(
    ctx: &Context,
    pod: &str,
    id: &str,
    labels: Vec<Value>,
) -> Result<u64, ErrorKind> {
    let direct = match &ctx.pods {
        Some(pods) if pod != UNKNOWN => pods.address(pod).await.map(BaseUrl::http),
        _ => None,
    };
    let base = direct.as_ref().unwrap_or(&ctx.base);
    let url = base.join(&format!("/v2/models/{}/feedback", ctx.model));
    let response = ctx
        .http
        .post(url)
        .json(&json!({ "id": id, "labels": labels }))
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        return Err(ErrorKind::Status(status.as_u16()));
    }
    Ok(answer["accepted_rows"].as_u64().unwrap_or(0))
}
