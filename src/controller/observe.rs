//! The observe stage: read what the plan needs from the cluster — each revision's Deployment
//! and pods, the candidate's signature check, the stable model's signature, the route's weight —
//! and take the analysis measurements that are due. Reads only; nothing here writes.

use std::collections::BTreeMap;

use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job, core::v1::Pod};
use kube::{
    Api,
    api::{DynamicObject, ListParams},
};

use super::{context::Context, error::Error, pods};
use crate::{
    analysis::Target,
    api::{ModelDeploymentStatus, TrafficMode},
    build::{self, labels, route, signature_job},
    rollout::{
        plan::{Observed, SignatureCheck, TrackView},
        requests,
        steps::{self, Taken},
    },
    serve::signature::{Signature, compare},
    validate::ValidSpec,
};

/// The children and pods of one ModelDeployment, grouped by revision.
pub struct Cluster {
    /// Deployments by revision label (legacy ones without the label under "").
    pub deployments: BTreeMap<String, Deployment>,
    /// Pods by revision label.
    pub pods: BTreeMap<String, Vec<Pod>>,
}

fn kube_err<'a>(kind: &'static str, name: &'a str) -> impl Fn(kube::Error) -> Error + 'a {
    move |e| Error::from_kube("observe", kind, name, e)
}

/// List the Deployments and pods of `spec`'s ModelDeployment.
pub async fn cluster(ctx: &Context, spec: &ValidSpec) -> Result<Cluster, Error> {
    let ns = &spec.owner.namespace;
    let name = &spec.owner.name;
    let selector = format!("{}={name}", labels::NAME);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let list = deployments
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("Deployment", name))?;
    // One Deployment per revision (a legacy one without the label under "").
    let by_rev = list
        .items
        .into_iter()
        .map(|d| (revision_label(&d.metadata), d))
        .collect();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("Pod", name))?;
    let mut pods_by_rev: BTreeMap<String, Vec<Pod>> = BTreeMap::new();
    for p in list.items {
        pods_by_rev
            .entry(revision_label(&p.metadata))
            .or_default()
            .push(p);
    }
    Ok(Cluster {
        deployments: by_rev,
        pods: pods_by_rev,
    })
}

/// The `modelpilot.io/revision` label of an object ("" without one).
fn revision_label(meta: &kube::api::ObjectMeta) -> String {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(labels::REVISION))
        .cloned()
        .unwrap_or_default()
}

/// Replica counts of each revision's Deployment.
pub fn tracks(cluster: &Cluster) -> BTreeMap<String, TrackView> {
    cluster
        .deployments
        .iter()
        .filter(|(rev, _)| !rev.is_empty())
        .map(|(rev, d)| {
            let status = d.status.clone().unwrap_or_default();
            (
                rev.clone(),
                TrackView {
                    replicas: d.spec.replicas.unwrap_or(0),
                    ready: status.ready_replicas.unwrap_or(0),
                },
            )
        })
        .collect()
}

/// Everything the plan needs, measurements included.
pub async fn observed(
    ctx: &Context,
    spec: &ValidSpec,
    status: &ModelDeploymentStatus,
    cluster: &Cluster,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Result<Observed, Error> {
    let rollout = spec.rollout.clone().unwrap_or_default();
    let st = status.rollout.clone().unwrap_or_default();
    let stable = status.stable.as_ref();
    let mut obs = Observed {
        approval: None,
        now: Some(now.clone()),
        tracks: tracks(cluster),
        request: requests::pending(
            spec.request.as_deref(),
            st.last_request.as_ref().map(|a| a.id.as_str()),
        ),
        ..Default::default()
    };
    let candidate = stable.is_some_and(|s| s.name != spec.revision);
    if candidate {
        obs.signature = signature(ctx, spec).await?;
        if let SignatureCheck::Ready(sig) = &obs.signature {
            let stable_sig = match stable.and_then(|s| s.signature.clone()) {
                Some(s) => Some(s),
                None => {
                    let rev = stable.map(|s| s.name.as_str()).unwrap_or_default();
                    stable_signature(ctx, spec, cluster.pods.get(rev)).await
                }
            };
            obs.stable_signature.clone_from(&stable_sig);
            obs.signature_diff = stable_sig.and_then(|s| {
                let (a, b) = (Signature::parse(&s).ok()?, Signature::parse(sig).ok()?);
                Some(compare(&a, &b))
            });
        }
        // The candidate's pods: a model that does not load ends the rollout.
        if let Some(canary_pods) = cluster.pods.get(&spec.revision) {
            let problem = pods::pod_health(canary_pods, now, ctx.pod_not_ready_deadline);
            obs.canary_problem = problem.map(|p| format!("{}: {}", p.reason, p.message));
        }
    } else if spec.rollout.is_some()
        && let Some(s) = stable.filter(|s| s.signature.is_none())
    {
        // Read the stable model's signature while the spec still names it (a later candidate
        // may rename the model), so a check never has to guess.
        obs.stable_signature = stable_signature(ctx, spec, cluster.pods.get(&s.name)).await;
    }
    if rollout.traffic.mode == TrafficMode::GatewayApi
        && let Some(route_name) = &rollout.traffic.http_route
    {
        obs.route_weight = route_weight(ctx, spec, route_name).await;
    }
    if steps::measuring(&st) {
        obs.measurements = measure(ctx, spec, status, cluster, now).await;
    }
    Ok(obs)
}

/// The candidate's signature Job outcome.
async fn signature(ctx: &Context, spec: &ValidSpec) -> Result<SignatureCheck, Error> {
    let ns = &spec.owner.namespace;
    let name = signature_job::name(&spec.owner.name, &spec.revision);
    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), ns);
    let Some(job) = jobs.get_opt(&name).await.map_err(kube_err("Job", &name))? else {
        return Ok(SignatureCheck::Pending);
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let selector = build::labels::selector_string(&signature_job::labels(spec));
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(kube_err("Pod", &name))?;
    Ok(match signature_job::outcome(&job, &list.items) {
        signature_job::SignatureOutcome::Pending => SignatureCheck::Pending,
        signature_job::SignatureOutcome::Ready(s) => SignatureCheck::Ready(s),
        signature_job::SignatureOutcome::Failed(m) => SignatureCheck::Failed(m),
    })
}

/// The stable model's signature from a ready stable pod's model metadata (`/v2/models/<m>`),
/// which the server builds from the loaded model.
async fn stable_signature(
    ctx: &Context,
    spec: &ValidSpec,
    pods: Option<&Vec<Pod>>,
) -> Option<String> {
    for pod in pods.into_iter().flatten().filter(|p| pods::is_ready(p)) {
        let Some(ip) = pod.status.as_ref().and_then(|s| s.pod_ip.clone()) else {
            continue;
        };
        let url = format!("http://{ip}:{}/v2/models/{}", spec.port, spec.model_name);
        let Ok(resp) = ctx.http.get(&url).send().await else {
            continue;
        };
        let Ok(text) = resp.text().await else {
            continue;
        };
        if let Ok(sig) = Signature::parse(&text) {
            return Some(sig.to_json());
        }
    }
    None
}

/// The canary's share on the user's HTTPRoute.
async fn route_weight(ctx: &Context, spec: &ValidSpec, route_name: &str) -> Option<i32> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        ctx.client.clone(),
        &spec.owner.namespace,
        &route::api_resource(),
    );
    let obj = api.get_opt(route_name).await.ok()??;
    let value = serde_json::to_value(obj).ok()?;
    let name = &spec.owner.name;
    route::applied_weight(
        &value,
        &build::service::track_name(name, labels::Track::Stable),
        &build::service::track_name(name, labels::Track::Canary),
    )
}

/// Take the measurements that are due, canary against stable over the same window.
async fn measure(
    ctx: &Context,
    spec: &ValidSpec,
    status: &ModelDeploymentStatus,
    cluster: &Cluster,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> Vec<Taken> {
    let rollout = spec.rollout.clone().unwrap_or_default();
    let st = status.rollout.clone().unwrap_or_default();
    let (Some(stable), Some(canary)) = (status.stable.as_ref(), st.canary.as_ref()) else {
        return Vec::new();
    };
    let target = Target::new(
        &spec.owner.namespace,
        spec.port,
        (&canary.name, ready_pods(cluster.pods.get(&canary.name))),
        (&stable.name, ready_pods(cluster.pods.get(&stable.name))),
    );
    // Every reconcile scrapes the live revisions, so a due measurement has a recent baseline.
    ctx.analyzer.prime(&target).await;
    let mut taken = Vec::new();
    for (live, due) in steps::due_metrics(&rollout, &st, now) {
        if !due.is_zero() {
            continue;
        }
        let measurement = ctx
            .analyzer
            .measure(
                live.metric,
                &target,
                rollout.prometheus.as_ref(),
                now.clone(),
            )
            .await;
        ctx.metrics.verdict(
            &spec.owner.namespace,
            &spec.owner.name,
            &live.metric.name,
            measurement.verdict,
        );
        taken.push(Taken {
            scope: live.scope.into(),
            name: live.metric.name.clone(),
            measurement,
        });
    }
    taken
}

pub fn ready_pods(pods: Option<&Vec<Pod>>) -> Vec<Pod> {
    pods.into_iter()
        .flatten()
        .filter(|p| pods::is_ready(p))
        .cloned()
        .collect()
}

/// All revisions seen as one Deployment, for the conditions: `spec.replicas` is `desired` (the
/// spec's, or the autoscaler's count), the counts are summed across revisions, `updatedReplicas` and the Deployment conditions (stalled,
/// replica failure) are the spec revision's.
pub fn aggregate(cluster: &Cluster, spec: &ValidSpec, desired: i32) -> Option<Deployment> {
    use k8s_openapi::api::apps::v1::{DeploymentSpec, DeploymentStatus};
    if cluster.deployments.is_empty() {
        return None;
    }
    let current = cluster.deployments.get(&spec.revision);
    let mut status = DeploymentStatus::default();
    let mut observed = true;
    let add = |a: Option<i32>, b: Option<i32>| Some(a.unwrap_or(0) + b.unwrap_or(0));
    for d in cluster.deployments.values() {
        let s = d.status.clone().unwrap_or_default();
        status.replicas = add(status.replicas, s.replicas);
        status.ready_replicas = add(status.ready_replicas, s.ready_replicas);
        status.available_replicas = add(status.available_replicas, s.available_replicas);
        observed &= s.observed_generation >= d.metadata.generation;
    }
    let current_status = current.and_then(|d| d.status.clone()).unwrap_or_default();
    status.updated_replicas = Some(current_status.replicas.unwrap_or(0));
    status.conditions = current_status.conditions;
    status.observed_generation = Some(i64::from(observed));
    Some(Deployment {
        metadata: kube::api::ObjectMeta {
            generation: Some(1),
            ..Default::default()
        },
        spec: DeploymentSpec {
            replicas: Some(desired),
            ..Default::default()
        },
        status: Some(status),
    })
}
