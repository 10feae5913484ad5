//! The monitoring stage of the reconcile: every `monitoring.intervalSeconds`, read the stable
//! revision's ready pods — their sliding-window counts from `/metrics`, and the baseline profile
//! they were started with from `/v2/models/<name>/profile` — sum the windows and hand them to
//! the pure evaluation (`crate::monitor::evaluate`).
//!
//! When the next evaluation is due is read from `status.monitoring.lastEvaluation`, so a
//! restarted operator keeps the rhythm. A new stable revision starts the clock without a
//! verdict: its servers' windows only hold its own traffic one interval later. Pods that cannot
//! be read are left out (the message says so); with none readable no verdict is added.

use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tracing::debug;

use super::{
    context::Context,
    observe::{self, Cluster},
};
use crate::{
    analysis::{
        pod_addr,
        scrape::{PodAddr, error_chain, fetch_page},
    },
    api::{ModelDeploymentStatus, MonitoringStatus},
    monitor::{
        evaluate::{Inputs, evaluate},
        window::Window,
    },
    rollout::plan::Transition,
    serve::observe::profile::BaselineProfile,
    validate::ValidSpec,
};

/// The stage's outcome: the status to write, its events, and when to look again.
pub struct Monitored {
    pub status: MonitoringStatus,
    pub transitions: Vec<Transition>,
    pub next: Duration,
}

fn seconds(t: &Time) -> i64 {
    t.0.as_second()
}

/// Runs an evaluation when one is due; `None` without `spec.monitoring`.
pub async fn stage(
    ctx: &Context,
    spec: &ValidSpec,
    status: &ModelDeploymentStatus,
    stable: &str,
    cluster: &Cluster,
    now: &Time,
) -> Option<Monitored> {
    let m = spec.monitoring.as_ref()?;
    let interval = i64::from(m.interval_seconds.max(1));
    let old = status.monitoring.as_ref().filter(|o| o.revision == stable);
    let Some(old) = old else {
        // A new stable revision: start its clock.
        let status = MonitoringStatus {
            revision: stable.to_string(),
            last_evaluation: Some(now.clone()),
            ..MonitoringStatus::default()
        };
        return Some(Monitored {
            status,
            transitions: vec![],
            next: secs(interval),
        });
    };
    let last = old.last_evaluation.as_ref().map_or(0, seconds);
    let due_in = last + interval - seconds(now);
    if due_in > 0 {
        return Some(Monitored {
            status: old.clone(),
            transitions: vec![],
            next: secs(due_in),
        });
    }
    let ready = observe::ready_pods(cluster.pods.get(stable));
    let pods: Vec<PodAddr> = ready
        .iter()
        .filter_map(|p| pod_addr(p, spec.port))
        .collect();
    let (window, errors) = read_windows(ctx, &pods).await;
    let profile = match spec.profile {
        Some(_) => read_profile(ctx, &pods, &spec.model_name).await,
        None => None,
    };
    let inputs = Inputs {
        spec: m,
        profile: profile.as_ref(),
        window: &window,
        revision: stable,
        now,
    };
    let (mut new, transitions) = evaluate(Some(old), &inputs);
    if pods.is_empty() {
        new.message = join(&new.message, "no ready pod of the stable revision to read");
    } else if !errors.is_empty() {
        debug!(errors = ?errors, "some pods could not be read for monitoring");
        let read = format!(
            "{} of {} pods read ({})",
            window.pods,
            pods.len(),
            errors.join("; ")
        );
        new.message = join(&new.message, &read);
    }
    Some(Monitored {
        status: new,
        transitions,
        next: secs(interval),
    })
}

fn secs(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s.max(1)).unwrap_or(1))
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_string()
    } else {
        format!("{a}; {b}")
    }
}

/// Every pod's window, summed; the pods that could not be read, with why.
async fn read_windows(ctx: &Context, pods: &[PodAddr]) -> (Window, Vec<String>) {
    let pages = join_all(pods.iter().map(|p| fetch_page(&ctx.http, p))).await;
    let mut windows = Vec::new();
    let mut errors = Vec::new();
    for (pod, page) in pods.iter().zip(pages) {
        match page.and_then(|text| Window::parse(&text).map_err(|e| e.to_string())) {
            Ok(w) => windows.push(w),
            Err(e) => errors.push(format!("{}: {e}", pod.name)),
        }
    }
    (Window::sum(&windows), errors)
}

/// The baseline profile the first answering pod serves (all pods of a revision share it).
async fn read_profile(ctx: &Context, pods: &[PodAddr], model: &str) -> Option<BaselineProfile> {
    for pod in pods {
        let host = if pod.ip.contains(':') {
            format!("[{}]", pod.ip)
        } else {
            pod.ip.clone()
        };
        let url = format!("http://{host}:{}/v2/models/{model}/profile", pod.port);
        let text = match ctx.http.get(&url).send().await {
            Ok(r) if r.status().is_success() => r.text().await.map_err(|e| error_chain(&e)),
            Ok(r) => Err(format!("HTTP {}", r.status())),
            Err(e) => Err(error_chain(&e)),
        };
        match text.map(|t| BaselineProfile::from_json(&t).map_err(|e| e.to_string())) {
            Ok(Ok(profile)) => return Some(profile),
            Ok(Err(e)) | Err(e) => debug!(pod = %pod.name, "no baseline profile: {e}"),
        }
    }
    None
}
