//! The reconcile pipeline: fetch → validate → observe → plan → apply → status.
//!
//! Only the fetch, observe (`observe.rs`), apply (`apply.rs`) and status stages touch the API;
//! validation (`crate::validate`), the plan (`crate::rollout::plan`), building (`crate::build`)
//! and pod health (`pods.rs`) are pure functions. The spec revision's Deployment and the
//! Services are written with server-side apply under one field manager, so a reconcile that
//! changes nothing writes nothing new; other revisions are only scaled (merge patch), the route's
//! rules are replaced conditionally on its resourceVersion, and a signature Job is created once.
//! Status is patched only when it changed, conditional on the resourceVersion the reconcile
//! started from; a rollback's spec write comes after it.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::apps::v1::Deployment;
use kube::{
    Api, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::controller::Action,
};
use tracing::{Instrument, info, info_span, warn};

use super::{
    apply,
    context::Context,
    error::Error,
    events, monitor, observe,
    pods::{self, PodProblem},
    retrain, scale,
    status::{self, Observation},
};
use crate::{
    api::{AutoscalingMode, ModelDeployment, ModelDeploymentStatus},
    build::FIELD_MANAGER,
    rollout::plan::{self, Plan},
    validate::{ValidSpec, validate},
};

/// How often a reconcile looks at an in-flight retraining (its Job, its candidate).
const RETRAIN_POLL: Duration = Duration::from_secs(5);

fn key(obj: &ModelDeployment) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Reconcile one ModelDeployment (the function handed to the kube-runtime `Controller`).
pub async fn reconcile(obj: Arc<ModelDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = info_span!("reconcile", name = %obj.name_any(), namespace = %obj.namespace().unwrap_or_default());
    let started = Instant::now();
    // A task of its own: the pipeline is polled from the scheduler's shallow stack rather than
    // deep inside the controller's stream machinery, and a panic in it fails this reconcile only.
    let task = tokio::spawn({
        let (obj, ctx) = (obj.clone(), ctx.clone());
        async move { pipeline(&obj, &ctx).await }.instrument(span)
    });
    let result = match task.await {
        Ok(result) => result,
        Err(join) => Err(Error::Internal(join.to_string())),
    };
    ctx.metrics
        .observe(started.elapsed(), result.as_ref().err().map(Error::reason));
    if result.is_ok() {
        ctx.succeeded(&key(&obj));
    }
    result
}

/// What to do after a failed reconcile: wait for a spec change, or retry with backoff.
pub fn error_policy(obj: Arc<ModelDeployment>, err: &Error, ctx: Arc<Context>) -> Action {
    if err.is_permanent() {
        warn!(name = %obj.name_any(), reason = err.reason(), "{err}; waiting for a spec change");
        return Action::await_change();
    }
    let delay = ctx.next_retry(&key(&obj));
    warn!(name = %obj.name_any(), reason = err.reason(), retry_in = ?delay, "{err}");
    let ctx = ctx.clone();
    let note = events::Note {
        warning: true,
        reason: err.reason().into(),
        action: "Reconcile",
        message: err.to_string(),
    };
    let reference = obj.object_ref(&());
    tokio::spawn(async move {
        let _ = ctx.recorder.publish(&note.to_event(), &reference).await;
    });
    Action::requeue(delay)
}

async fn pipeline(cached: &ModelDeployment, ctx: &Context) -> Result<Action, Error> {
    // Decide from the latest status, never from a cache that may lag behind our own last write:
    // that is what keeps each step and each request carried out once.
    let api: Api<ModelDeployment> =
        Api::namespaced(ctx.client.clone(), &cached.namespace().unwrap_or_default());
    let Some(obj) = api
        .get_opt(&cached.name_any())
        .await
        .map_err(|e| Error::from_kube("fetch", "ModelDeployment", &cached.name_any(), e))?
    else {
        return Ok(Action::await_change());
    };
    let obj = &obj;
    let valid = match validate(obj, &ctx.defaults) {
        Ok(valid) => valid,
        Err(spec_error) => {
            let err = Error::Spec(spec_error);
            write_status(obj, ctx, None, None, Some(&err), None, None).await?;
            return Err(err);
        }
    };
    let status = obj.status.clone().unwrap_or_default();
    let cluster = observe::cluster(ctx, &valid).await?;
    let now = status::now();
    let mut observed = Box::pin(observe::observed(ctx, &valid, &status, &cluster, &now)).await?;
    let scaled = Box::pin(scale::builtin(ctx, &valid, &status, &cluster, &now)).await;
    observed.autoscaled = scaled.as_ref().map(|s| s.decided.counts);
    let stable = status
        .stable
        .clone()
        .unwrap_or_else(|| plan::revision_of(&valid));
    let monitored = Box::pin(monitor::stage(
        ctx,
        &valid,
        &status,
        &stable.name,
        &cluster,
        &now,
    ))
    .await;
    let retrained = Box::pin(retrain::stage(ctx, &valid, &status, &stable, &now)).await?;
    observed.approval = retrained.as_ref().and_then(|d| d.approval.clone());
    let mut plan = plan::plan(&valid, &status, &observed);
    // Without spec.monitoring nothing is watched: its last evaluation goes with it (the
    // retraining history stays: it is the record of what was done).
    plan.monitoring = valid.monitoring.as_ref().and(status.monitoring.clone());
    plan.retraining = status.retraining.clone();
    if let Some(m) = monitored {
        plan.monitoring = Some(m.status);
        plan.transitions.extend(m.transitions);
        plan.requeue = plan.requeue.min(m.next);
    }
    if let Some(d) = &retrained {
        plan.retraining = Some(d.status.clone());
        plan.transitions.extend(d.transitions.clone());
        // Jobs and candidates move on their own: look again soon while one is in flight.
        if d.status.history.last().is_some_and(|r| !r.phase.finished()) {
            plan.requeue = plan.requeue.min(RETRAIN_POLL);
        }
    }
    if let Some(s) = scaled {
        plan.autoscaling = Some(s.decided.status);
        plan.transitions.extend(s.decided.transitions);
        plan.requeue = plan.requeue.min(s.next);
    }
    if let Some(target) = &plan.rollback_to
        && plan.rollout.fast_track.is_none()
    {
        plan.rollout.fast_track = revision_with_model(obj, ctx, target);
    }
    let desired = match (&valid.autoscaling, plan.autoscaling.as_ref()) {
        (Some(_), Some(a)) if a.mode == AutoscalingMode::Builtin => {
            plan.replicas.get(&plan.stable.name).copied().unwrap_or(0)
        }
        _ => valid.replicas,
    };
    let aggregate = observe::aggregate(&cluster, &valid, desired);
    let mut result = Box::pin(apply::carry_out(ctx, &valid, &plan, &cluster)).await;
    if result.is_ok() {
        match scale::hpa(ctx, &valid, &status).await {
            Ok(Some(hpa_status)) => plan.autoscaling = Some(hpa_status),
            Ok(None) => {}
            Err(e) => result = Err(e),
        }
    }
    if result.is_ok()
        && let Some(record) = retrained.as_ref().and_then(|d| d.create_job.as_ref())
    {
        result = retrain::create_job(ctx, &valid, record).await;
    }
    if let Err(err) = result {
        if err.is_permanent() || matches!(err, Error::Route(_) | Error::RouteMissing(_)) {
            let plan = Some(&plan);
            write_status(
                obj,
                ctx,
                Some(&valid),
                aggregate.as_ref(),
                Some(&err),
                None,
                plan,
            )
            .await?;
        }
        return Err(err);
    }
    let pods = cluster
        .pods
        .get(&valid.revision)
        .cloned()
        .unwrap_or_default();
    let deadline = ctx.pod_not_ready_deadline;
    let problem = pods::pod_health(&pods, &now, deadline);
    write_status(
        obj,
        ctx,
        Some(&valid),
        aggregate.as_ref(),
        None,
        problem.as_ref(),
        Some(&plan),
    )
    .await?;
    if let Some(target) = &plan.rollback_to {
        apply::set_model(ctx, &valid, target).await?;
    }
    if let Some(result) = retrained.as_ref().and_then(|d| d.set_model.as_ref()) {
        retrain::set_model(ctx, &valid, result).await?;
    }
    ctx.metrics.rollout(
        &valid.owner.namespace,
        &valid.owner.name,
        plan.rollout.phase,
        plan.rollout.applied_weight,
    );
    if let Some(m) = &plan.monitoring {
        ctx.metrics
            .monitoring(&valid.owner.namespace, &valid.owner.name, m);
    }
    let ended = plan
        .transitions
        .iter()
        .filter_map(|t| retrain_outcome(t.reason));
    for outcome in ended {
        ctx.metrics
            .retraining_ended(&valid.owner.namespace, &valid.owner.name, outcome);
    }
    // A pod on its way to the not-ready deadline changes nothing when it gets there: look again.
    let next = pods::recheck_in(&pods, &now, deadline).map_or(plan.requeue, |left| {
        (left + Duration::from_secs(1)).min(plan.requeue)
    });
    Ok(Action::requeue(next))
}

/// The outcome a retraining event reports, for the operator's counter.
fn retrain_outcome(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "RetrainingPromoted" => "Promoted",
        "RetrainingRolledBack" => "RolledBack",
        "RetrainingFailed" => "Failed",
        "RetrainingTimedOut" => "TimedOut",
        "RetrainingSuperseded" => "Superseded",
        _ => return None,
    })
}

/// The revision the spec would have with `target`'s model: a rollback's fast track.
fn revision_with_model(
    obj: &ModelDeployment,
    ctx: &Context,
    target: &crate::api::RolloutRevision,
) -> Option<String> {
    let mut patched = obj.clone();
    patched.spec.model.uri.clone_from(&target.uri);
    patched.spec.model.sha256.clone_from(&target.sha256);
    patched.spec.model.version.clone_from(&target.version);
    patched.spec.model.profile.clone_from(&target.profile);
    validate(&patched, &ctx.defaults).ok().map(|v| v.revision)
}

/// Compute the status, patch it when it changed, and publish events for its transitions.
async fn write_status(
    obj: &ModelDeployment,
    ctx: &Context,
    valid: Option<&ValidSpec>,
    deployment: Option<&Deployment>,
    error: Option<&Error>,
    pods: Option<&PodProblem>,
    plan: Option<&Plan>,
) -> Result<(), Error> {
    let old = obj.status.clone().unwrap_or_default();
    let observation = Observation {
        generation: obj.meta().generation,
        spec: valid,
        deployment,
        error,
        pods,
        plan,
    };
    let new = status::desired_status(&old, &observation, &status::now());
    if new != old {
        patch_status(obj, ctx, &new).await?;
    }
    let reference = obj.object_ref(&());
    let rollout_notes = plan.map(|p| p.transitions.clone()).unwrap_or_default();
    for t in rollout_notes {
        let scale = t.reason.starts_with("Scaled");
        let note = events::Note {
            warning: t.warning,
            reason: t.reason.into(),
            action: if scale { "Scale" } else { "Rollout" },
            message: t.message,
        };
        info!(reason = %note.reason, "{}", note.message);
        let published = if scale {
            events::publish_each(&ctx.client, &ctx.instance, &note, &reference).await
        } else {
            ctx.recorder.publish(&note.to_event(), &reference).await
        };
        if let Err(err) = published {
            warn!("could not publish event {}: {err}", note.reason);
        }
    }
    for note in events::transitions(&old, &new) {
        info!(reason = %note.reason, "{}", note.message);
        if let Err(err) = ctx.recorder.publish(&note.to_event(), &reference).await {
            warn!("could not publish event {}: {err}", note.reason);
        }
    }
    Ok(())
}

async fn patch_status(
    obj: &ModelDeployment,
    ctx: &Context,
    status: &ModelDeploymentStatus,
) -> Result<(), Error> {
    let name = obj.name_any();
    let api: Api<ModelDeployment> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    // Conditional on the version read at the start of this reconcile: a second operator (an old
    // leader that has not noticed yet) writing in between makes this fail with a conflict, and
    // the reconcile starts again from what that one wrote.
    let body = serde_json::json!({
        "apiVersion": ModelDeployment::api_version(&()),
        "kind": ModelDeployment::kind(&()),
        "metadata": {"resourceVersion": obj.resource_version()},
        "status": status,
    });
    match api
        .patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Deleted while we reconciled: nothing left to report on.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::from_kube("status", "ModelDeployment", &name, e)),
    }
}
