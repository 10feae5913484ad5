//! The reconcile pipeline: fetch → validate → build → apply → observe pods → status.
//!
//! Only the apply, pod listing and status stages touch the API; validation, building and pod
//! health are pure functions (see `validate.rs`, `crate::build` and `pods.rs`). Children are written with server-side apply under one
//! field manager, so a reconcile that changes nothing writes nothing new, and a field another
//! manager owns is taken back deliberately (`force`). Status is patched only when it changed.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Pod, Service},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{ListParams, Patch, PatchParams},
    runtime::controller::Action,
};
use serde::{Serialize, de::DeserializeOwned};
use tracing::{Instrument, info, info_span, warn};

use super::{
    context::Context,
    error::Error,
    events,
    pods::{self, PodProblem},
    status::{self, Observation},
};
use crate::{
    api::{ModelDeployment, ModelDeploymentStatus},
    build::{self, FIELD_MANAGER},
    validate::{ValidSpec, validate},
};

/// How often a healthy object is looked at again even when nothing changes.
const RESYNC: Duration = Duration::from_secs(300);

fn key(obj: &ModelDeployment) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Reconcile one ModelDeployment (the function handed to the kube-runtime `Controller`).
pub async fn reconcile(obj: Arc<ModelDeployment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let span = info_span!("reconcile", name = %obj.name_any(), namespace = %obj.namespace().unwrap_or_default());
    let started = Instant::now();
    let result = pipeline(&obj, &ctx).instrument(span).await;
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

async fn pipeline(obj: &ModelDeployment, ctx: &Context) -> Result<Action, Error> {
    let valid = match validate(obj, &ctx.defaults) {
        Ok(valid) => valid,
        Err(spec_error) => {
            let err = Error::Spec(spec_error);
            let deployment = fetch_deployment(obj, ctx).await?;
            write_status(obj, ctx, None, deployment.as_ref(), Some(&err), None).await?;
            return Err(err);
        }
    };
    let children = build::Children {
        deployment: Some(build::deployment::build(
            &valid,
            build::labels::Track::Stable,
            valid.replicas,
        )),
        services: vec![build::service::build(&valid, None)],
    };
    let applied = match apply_children(ctx, &valid, children).await {
        Ok(deployment) => deployment,
        Err(err) if err.is_permanent() => {
            let deployment = fetch_deployment(obj, ctx).await?;
            let deployment = deployment.as_ref();
            write_status(obj, ctx, Some(&valid), deployment, Some(&err), None).await?;
            return Err(err);
        }
        Err(err) => return Err(err),
    };
    let pods = list_pods(ctx, &valid).await?;
    let now = status::now();
    let deadline = ctx.pod_not_ready_deadline;
    let problem = pods::pod_health(&pods, &now, deadline);
    write_status(
        obj,
        ctx,
        Some(&valid),
        Some(&applied),
        None,
        problem.as_ref(),
    )
    .await?;
    // A pod on its way to the not-ready deadline changes nothing when it gets there: look again.
    let next = pods::recheck_in(&pods, &now, deadline)
        .map_or(RESYNC, |left| (left + Duration::from_secs(1)).min(RESYNC));
    Ok(Action::requeue(next))
}

/// The pods of the current revision (older revisions' pods are on their way out).
async fn list_pods(ctx: &Context, valid: &ValidSpec) -> Result<Vec<Pod>, Error> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &valid.owner.namespace);
    let selector = build::labels::selector_string(&build::labels::revision_selector(valid));
    api.list(&ListParams::default().labels(&selector))
        .await
        .map(|list| list.items)
        .map_err(|e| Error::from_kube("observe", "Pod", &valid.owner.name, e))
}

async fn fetch_deployment(
    obj: &ModelDeployment,
    ctx: &Context,
) -> Result<Option<Deployment>, Error> {
    let name = obj.name_any();
    let api: Api<Deployment> =
        Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    let name = match validate(obj, &ctx.defaults) {
        Ok(v) => build::deployment::name(&name, &v.revision),
        Err(_) => name,
    };
    api.get_opt(&name)
        .await
        .map_err(|e| Error::from_kube("fetch", "Deployment", &name, e))
}

/// Server-side apply one child under our field manager.
async fn apply<K>(ctx: &Context, kind: &'static str, namespace: &str, child: &K) -> Result<K, Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Serialize
        + DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let name = child.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(child),
    )
    .await
    .map_err(|e| Error::from_kube("apply", kind, &name, e))
}

async fn apply_children(
    ctx: &Context,
    valid: &ValidSpec,
    children: build::Children,
) -> Result<Deployment, Error> {
    let ns = &valid.owner.namespace;
    let Some(deployment) = &children.deployment else {
        return Err(Error::Spec(crate::validate::SpecError::Metadata(
            "deployment",
        )));
    };
    let deployment = apply(ctx, "Deployment", ns, deployment).await?;
    for service in &children.services {
        apply::<Service>(ctx, "Service", ns, service).await?;
    }
    Ok(deployment)
}

/// Compute the status, patch it when it changed, and publish events for its transitions.
async fn write_status(
    obj: &ModelDeployment,
    ctx: &Context,
    valid: Option<&ValidSpec>,
    deployment: Option<&Deployment>,
    error: Option<&Error>,
    pods: Option<&PodProblem>,
) -> Result<(), Error> {
    let old = obj.status.clone().unwrap_or_default();
    let observation = Observation {
        generation: obj.meta().generation,
        spec: valid,
        deployment,
        error,
        pods,
    };
    let new = status::desired_status(&old, &observation, &status::now());
    if new == old {
        return Ok(());
    }
    patch_status(obj, ctx, &new).await?;
    let reference = obj.object_ref(&());
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
    let body = serde_json::json!({
        "apiVersion": ModelDeployment::api_version(&()),
        "kind": ModelDeployment::kind(&()),
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
