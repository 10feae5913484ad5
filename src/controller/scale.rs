//! The autoscaling stage of the reconcile: the built-in autoscaler's tick (scrape, then the pure
//! decision in `crate::autoscale::tick`), and the HorizontalPodAutoscaler of `mode: HPA`.
//!
//! A ModelDeployment with the built-in autoscaler is reconciled at least every `tickSeconds`;
//! a reconcile that comes before the next tick is due (a watch event) reuses the counts the last
//! tick wrote to status, so only ticks scrape and decide. Only the leader reconciles, so only
//! the leader scales; what a decision continues from lives in `status.autoscaling`.

use std::time::Duration;

use k8s_openapi::{
    api::autoscaling::v2::HorizontalPodAutoscaler, apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{Api, api::DeleteParams};
use tracing::debug;

use super::{
    apply,
    context::Context,
    error::Error,
    observe::{self, Cluster},
};
use crate::{
    analysis::pod_addr,
    api::{AutoscalingMode, AutoscalingStatus, ModelDeploymentStatus, RolloutPhase},
    autoscale::{
        collect::Windows,
        tick::{self, Decided, Track, TrackInput},
    },
    build,
    validate::ValidSpec,
};

/// The tick's outcome and when the next one is due.
pub struct Scaled {
    pub decided: Decided,
    pub next: Duration,
}

/// The serving revisions: the stable one, and the canary while it has pods.
fn serving(spec: &ValidSpec, status: &ModelDeploymentStatus) -> Vec<(String, Track)> {
    let stable = status
        .stable
        .as_ref()
        .map_or_else(|| spec.revision.clone(), |s| s.name.clone());
    let mut out = vec![(stable, Track::Stable)];
    if let Some(r) = &status.rollout
        && matches!(
            r.phase,
            RolloutPhase::Progressing | RolloutPhase::Paused | RolloutPhase::Promoting
        )
        && let Some(c) = &r.canary
    {
        out.push((c.name.clone(), Track::Canary));
    }
    out
}

/// One tick of the built-in autoscaler, or `None` without one.
pub async fn builtin(
    ctx: &Context,
    spec: &ValidSpec,
    status: &ModelDeploymentStatus,
    cluster: &Cluster,
    now: &Time,
) -> Option<Scaled> {
    let key = format!("{}/{}", spec.owner.namespace, spec.owner.name);
    let Some(a) = spec
        .autoscaling
        .as_ref()
        .filter(|a| a.mode == AutoscalingMode::Builtin)
    else {
        ctx.autoscaler.forget(&key);
        return None;
    };
    let tick_every = Duration::from_secs(u64::try_from(a.tick_seconds.max(1)).unwrap_or(2));
    let views = observe::tracks(cluster);
    let revisions = serving(spec, status);
    let prev = status
        .autoscaling
        .as_ref()
        .filter(|s| s.mode == AutoscalingMode::Builtin);
    let due_in = ctx.autoscaler.due_in(&key, tick_every);
    if !due_in.is_zero() {
        let none = Default::default();
        let inputs = track_inputs(&revisions, &views, &none);
        return Some(Scaled {
            decided: Decided {
                counts: tick::carried(prev, &inputs),
                status: prev.cloned().unwrap_or_else(|| AutoscalingStatus {
                    mode: AutoscalingMode::Builtin,
                    ..Default::default()
                }),
                transitions: Vec::new(),
            },
            next: due_in,
        });
    }
    let pods: Vec<(String, Vec<_>)> = revisions
        .iter()
        .map(|(rev, _)| {
            let ready = observe::ready_pods(cluster.pods.get(rev));
            let addrs = ready
                .iter()
                .filter_map(|p| pod_addr(p, spec.port))
                .collect();
            (rev.clone(), addrs)
        })
        .collect();
    let config = tick::config(a, Track::Stable);
    let windows = Windows {
        tick: tick_every,
        stable: config.stable_window,
        panic: config.panic_window,
    };
    let loads = ctx.autoscaler.tick(&key, &pods, windows).await;
    for (rev, load) in &loads {
        if !load.errors.is_empty() {
            debug!(revision = %rev, errors = ?load.errors, "some pods could not be scraped");
        }
    }
    let inputs = track_inputs(&revisions, &views, &loads);
    let decided = tick::decide(a, prev, &inputs, now);
    for r in &decided.status.revisions {
        ctx.metrics.autoscaler(
            &spec.owner.namespace,
            &spec.owner.name,
            &r.track,
            r.desired,
            r.observed.unwrap_or(0.0),
            r.panic,
        );
    }
    Some(Scaled {
        decided,
        next: tick_every,
    })
}

fn track_inputs<'a>(
    revisions: &'a [(String, Track)],
    views: &std::collections::BTreeMap<String, crate::rollout::plan::TrackView>,
    loads: &'a std::collections::BTreeMap<String, crate::autoscale::collect::RevisionLoad>,
) -> Vec<TrackInput<'a>> {
    revisions
        .iter()
        .map(|(rev, track)| {
            let view = views.get(rev).copied().unwrap_or_default();
            TrackInput {
                revision: rev,
                track: *track,
                current: view.replicas,
                ready: view.ready,
                load: loads.get(rev).filter(|l| l.stable.is_some()),
            }
        })
        .collect()
}

/// The HorizontalPodAutoscaler of `mode: HPA`: applied while the spec asks for it, deleted
/// once it no longer does (status remembers that one was created). Returns the status to write.
pub async fn hpa(
    ctx: &Context,
    spec: &ValidSpec,
    status: &ModelDeploymentStatus,
) -> Result<Option<AutoscalingStatus>, Error> {
    let ns = &spec.owner.namespace;
    if let Some(hpa) = build::hpa::build(spec) {
        apply::apply(ctx, "HorizontalPodAutoscaler", ns, &hpa).await?;
        return Ok(Some(AutoscalingStatus {
            mode: AutoscalingMode::Hpa,
            hpa: hpa.metadata.name,
            revisions: Vec::new(),
        }));
    }
    if let Some(name) = status.autoscaling.as_ref().and_then(|a| a.hpa.as_deref()) {
        let api: Api<HorizontalPodAutoscaler> = Api::namespaced(ctx.client.clone(), ns);
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(Error::from_kube(
                    "prune",
                    "HorizontalPodAutoscaler",
                    name,
                    e,
                ));
            }
        }
    }
    Ok(None)
}
