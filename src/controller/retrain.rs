//! The retraining stage of the reconcile: observe the in-flight retraining's Job, decide (pure,
//! `crate::retrain::decide`), create the Job once, and point `spec.model` at a Job's result.
//!
//! Order is what makes "exactly one Job per trigger" hold: a new trigger is decided from the
//! status just read; its Job is created under a name derived from the trigger's number before
//! the status that records it is written (conditionally on the version read, so a second
//! operator cannot record a second trigger); creating it again — after a crash, or by the next
//! leader — meets `AlreadyExists`, which counts as done. The spec write that starts the
//! candidate's canary comes after the status write, like a rollback's.

use k8s_openapi::{
    api::{batch::v1::Job, core::v1::Pod},
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::{
    Api,
    api::{ListParams, Patch, PatchParams, PostParams},
};
use serde_json::json;

use super::{context::Context, error::Error};
use crate::{
    api::{ModelDeployment, ModelDeploymentStatus, RetrainRecord, RolloutPhase, RolloutRevision},
    build::retrain_job,
    retrain::{
        decide::{Decision, Inputs, JobState, decide},
        result::JobResult,
    },
    rollout::requests::{self, Action},
    validate::ValidSpec,
};

/// The Job of the in-flight retraining, when one is in flight and has a Job name.
async fn observe_job(
    ctx: &Context,
    spec: &ValidSpec,
    status: &ModelDeploymentStatus,
) -> Result<Option<JobState>, Error> {
    let Some(r) = status
        .retraining
        .as_ref()
        .and_then(|s| s.history.last())
        .filter(|r| !r.phase.finished())
    else {
        return Ok(None);
    };
    let Some(name) = &r.job else {
        return Ok(None);
    };
    let ns = &spec.owner.namespace;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let job = jobs
        .get_opt(name)
        .await
        .map_err(|e| Error::from_kube("observe", "Job", name, e))?;
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!(
        "{},{}={}",
        retrain_job::selector(spec),
        retrain_job::TRIGGER_ID,
        r.id
    );
    let pods = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|e| Error::from_kube("observe", "Pod", name, e))?;
    Ok(Some(retrain_job::state(job.as_ref(), &pods.items)))
}

/// Whether the annotation holds a `action` request not yet answered.
fn pending(spec: &ValidSpec, status: &ModelDeploymentStatus, action: Action) -> bool {
    let acknowledged = status
        .rollout
        .as_ref()
        .and_then(|r| r.last_request.as_ref())
        .map(|a| a.id.as_str());
    matches!(
        requests::pending(spec.request.as_deref(), acknowledged),
        Some(Ok(r)) if r.action == action
    )
}

/// One retraining decision; `None` without `spec.retraining`.
pub async fn stage(
    ctx: &Context,
    spec: &ValidSpec,
    status: &ModelDeploymentStatus,
    stable: &RolloutRevision,
    now: &Time,
) -> Result<Option<Decision>, Error> {
    let Some(retraining) = &spec.retraining else {
        return Ok(None);
    };
    let job = observe_job(ctx, spec, status).await?;
    let rollout_active = status.rollout.as_ref().is_some_and(|r| {
        matches!(
            r.phase,
            RolloutPhase::Checking
                | RolloutPhase::Progressing
                | RolloutPhase::Paused
                | RolloutPhase::Promoting
        )
    });
    let old = status.retraining.clone().unwrap_or_default();
    let inputs = Inputs {
        spec: retraining,
        owner: &spec.owner.name,
        stable,
        monitoring: status
            .monitoring
            .as_ref()
            .filter(|m| m.revision == stable.name),
        window_seconds: spec
            .monitoring
            .as_ref()
            .map_or(60, |m| i64::from(m.interval_seconds)),
        rollout_active,
        history: &status.history,
        spec_uri: &spec.model_uri,
        spec_revision: &spec.revision,
        job,
        approve: pending(spec, status, Action::Approve),
        manual: pending(spec, status, Action::Retrain),
        now,
    };
    Ok(Some(decide(&old, &inputs)))
}

/// Creates the Job of `record` (an existing one of that name is the same trigger's: done).
pub async fn create_job(
    ctx: &Context,
    spec: &ValidSpec,
    record: &RetrainRecord,
) -> Result<(), Error> {
    let Some(retraining) = &spec.retraining else {
        return Ok(());
    };
    let job = retrain_job::build(spec, retraining, record);
    let name = job.metadata.name.clone().unwrap_or_default();
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &spec.owner.namespace);
    match jobs.create(&PostParams::default(), &job).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(Error::from_kube("apply", "Job", &name, e)),
    }
}

/// Points `spec.model` at a retraining's result (model, digest, version and profile together).
pub async fn set_model(ctx: &Context, spec: &ValidSpec, result: &JobResult) -> Result<(), Error> {
    let api: Api<ModelDeployment> = Api::namespaced(ctx.client.clone(), &spec.owner.namespace);
    let body = json!({"spec": {"model": {
        "uri": result.model_uri, "sha256": result.sha256, "version": result.version,
        "profile": result.profile_uri.clone().or_else(|| spec.profile.clone()),
    }}});
    api.patch(
        &spec.owner.name,
        &PatchParams::default(),
        &Patch::Merge(&body),
    )
    .await
    .map_err(|e| Error::from_kube("retrain", "ModelDeployment", &spec.owner.name, e))?;
    Ok(())
}
