//! The apply stage: carry a [`Plan`] out. Server-side apply of the spec revision's Deployment and
//! the Services, the scale of other revisions' Deployments, the route's weights, the signature
//! Job, a rollback's spec change, and pruning (by label) of every child the plan no longer wants.
//!
//! Every write is idempotent: carrying the same plan out twice changes nothing the second time.

use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job, core::v1::Service};
use kube::{
    Api, Resource,
    api::{DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams},
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::json;

use super::{context::Context, error::Error, observe::Cluster};
use crate::{
    api::{ModelDeployment, RolloutRevision, TrafficMode},
    build::{self, FIELD_MANAGER, labels::Track, route, signature_job},
    rollout::plan::Plan,
    validate::ValidSpec,
};

fn kube_err<'a>(
    stage: &'static str,
    kind: &'static str,
    name: &'a str,
) -> impl Fn(kube::Error) -> Error + 'a {
    move |e| Error::from_kube(stage, kind, name, e)
}

/// Server-side apply one child under our field manager.
pub async fn apply<K>(
    ctx: &Context,
    kind: &'static str,
    namespace: &str,
    child: &K,
) -> Result<K, Error>
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
    .map_err(kube_err("apply", kind, &name))
}

async fn delete<K>(
    ctx: &Context,
    kind: &'static str,
    namespace: &str,
    name: &str,
) -> Result<(), Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    <K as Resource>::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(Error::from_kube("prune", kind, name, e)),
    }
}

/// Carry the plan out.
pub async fn carry_out(
    ctx: &Context,
    spec: &ValidSpec,
    plan: &Plan,
    cluster: &Cluster,
) -> Result<(), Error> {
    let ns = &spec.owner.namespace;
    let rollout = spec.rollout.clone().unwrap_or_default();
    let gateway = rollout.traffic.mode == TrafficMode::GatewayApi;

    // Deployments: the spec revision is applied whole; others are only scaled.
    for (rev, replicas) in &plan.replicas {
        let track = if *rev == plan.stable.name {
            Track::Stable
        } else {
            Track::Canary
        };
        if *rev == spec.revision {
            apply(
                ctx,
                "Deployment",
                ns,
                &build::deployment::build(spec, track, *replicas),
            )
            .await?;
        } else if let Some(existing) = cluster.deployments.get(rev) {
            let name = existing.metadata.name.clone().unwrap_or_default();
            let labels_now = existing.metadata.labels.clone().unwrap_or_default();
            let same_track =
                labels_now.get(build::labels::TRACK).map(String::as_str) == Some(track.as_str());
            if existing.spec.replicas != Some(*replicas) || !same_track {
                let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
                let body = json!({
                    "metadata": {"labels": {build::labels::TRACK: track.as_str()}},
                    "spec": {"replicas": replicas},
                });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                    .map_err(kube_err("scale", "Deployment", &name))?;
            }
        }
    }

    // Services.
    let stable_rev = plan.stable.name.as_str();
    let main = build::service::build(spec, gateway.then_some(stable_rev));
    apply(ctx, "Service", ns, &main).await?;
    let track_services = [Track::Stable, Track::Canary];
    if gateway {
        let canary_rev = plan.canary.as_deref().unwrap_or(stable_rev);
        apply(
            ctx,
            "Service",
            ns,
            &build::service::build_track(spec, Track::Stable, stable_rev),
        )
        .await?;
        apply(
            ctx,
            "Service",
            ns,
            &build::service::build_track(spec, Track::Canary, canary_rev),
        )
        .await?;
        if let Some(route_name) = &rollout.traffic.http_route {
            set_route(ctx, spec, route_name, plan.route_weight).await?;
        }
    } else {
        for t in track_services {
            let name = build::service::track_name(&spec.owner.name, t);
            delete::<Service>(ctx, "Service", ns, &name).await?;
        }
    }

    // The signature Job of the spec revision, while it is being checked.
    let job_name = signature_job::name(&spec.owner.name, &spec.revision);
    if plan.check_signature {
        let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
        match jobs
            .create(&PostParams::default(), &signature_job::build(spec))
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 409 => {} // already there: one Job per revision
            Err(e) => return Err(Error::from_kube("apply", "Job", &job_name, e)),
        }
    }
    prune_jobs(ctx, spec, plan.check_signature.then_some(job_name.as_str())).await?;

    // Deployments the plan no longer wants. A Deployment from before revisions had their own
    // (no revision label) goes once the stable revision is fully ready, so capacity never drops.
    let stable_ready = cluster
        .deployments
        .get(stable_rev)
        .and_then(|d| d.status.as_ref())
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0);
    for (rev, d) in &cluster.deployments {
        let name = d.metadata.name.clone().unwrap_or_default();
        let wanted = plan.replicas.contains_key(rev);
        let legacy_waiting = rev.is_empty() && stable_ready < spec.replicas;
        if !wanted && !legacy_waiting && d.metadata.deletion_timestamp.is_none() {
            delete::<Deployment>(ctx, "Deployment", ns, &name).await?;
        }
    }

    Ok(())
}

/// A rollback's one write to the spec: `spec.model` set to the target revision's model. Done
/// after the status that records the rollback is written (a spec write first would make that
/// conditional status write fail), and repeated by later reconciles until the spec matches.
pub async fn set_model(
    ctx: &Context,
    spec: &ValidSpec,
    target: &RolloutRevision,
) -> Result<(), Error> {
    let api: Api<ModelDeployment> = Api::namespaced(ctx.client.clone(), &spec.owner.namespace);
    let body = json!({"spec": {"model": {
        "uri": target.uri, "sha256": target.sha256, "version": target.version,
        "profile": target.profile,
    }}});
    api.patch(
        &spec.owner.name,
        &PatchParams::default(),
        &Patch::Merge(&body),
    )
    .await
    .map_err(kube_err("rollback", "ModelDeployment", &spec.owner.name))?;
    Ok(())
}

/// Delete signature Jobs of this ModelDeployment other than `keep`.
async fn prune_jobs(ctx: &Context, spec: &ValidSpec, keep: Option<&str>) -> Result<(), Error> {
    let ns = &spec.owner.namespace;
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let selector = format!("{}={}", build::labels::SIGNATURE_OF, spec.owner.name);
    let list = jobs
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("prune", "Job", &spec.owner.name))?;
    for job in list.items {
        let name = job.metadata.name.clone().unwrap_or_default();
        if Some(name.as_str()) != keep && job.metadata.deletion_timestamp.is_none() {
            delete::<Job>(ctx, "Job", ns, &name).await?;
        }
    }
    Ok(())
}

/// Point the user's route at the stable and canary Services with the plan's weights.
async fn set_route(
    ctx: &Context,
    spec: &ValidSpec,
    route_name: &str,
    weight: i32,
) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &spec.owner.namespace,
        &route::api_resource(),
    );
    let Some(obj) =
        api.get_opt(route_name)
            .await
            .map_err(kube_err("route", "HTTPRoute", route_name))?
    else {
        return Err(Error::RouteMissing(route_name.into()));
    };
    let value = serde_json::to_value(&obj).unwrap_or_default();
    let name = &spec.owner.name;
    let rules = route::with_weights(
        &value,
        name,
        &build::service::track_name(name, Track::Stable),
        &build::service::track_name(name, Track::Canary),
        80,
        100 - weight,
        weight,
    )?;
    if let Some(rules) = rules {
        let body = route::rules_patch(&value, rules)?;
        api.patch(route_name, &PatchParams::default(), &Patch::Merge(&body))
            .await
            .map_err(kube_err("route", "HTTPRoute", route_name))?;
    }
    Ok(())
}
