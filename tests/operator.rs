//! The operator core against the real control plane: apply → children and Ready, a model change
//! rolls a new revision, an invalid child degrades and recovers, `kubectl scale` works through the
//! scale subresource, deletion garbage-collects the children.

mod common;

use common::{
    TestNamespace, WAIT, example, has_condition, simulated, wait_for, wait_gone, wait_list,
    with_controller,
};
use k8s_openapi::api::{apps::v1::Deployment, core::v1::Service, events::v1::Event};
use kube::{
    Api, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
    runtime::{wait::conditions, watcher},
};
use modelpilot::api::{ModelDeployment, Phase};
use serde_json::json;

const SERVER: &str = "modelpilot-server";

async fn apply(api: &Api<ModelDeployment>, obj: &ModelDeployment) -> ModelDeployment {
    api.patch(
        &obj.name_any(),
        &PatchParams::apply("modelpilot-tests").force(),
        &Patch::Apply(obj),
    )
    .await
    .expect("apply ModelDeployment")
}

/// The Deployment of the revision `status.revision` names (one Deployment per revision).
async fn revision_deployment(
    mdeps: &Api<ModelDeployment>,
    deployments: &Api<Deployment>,
    name: &str,
) -> Deployment {
    let md = wait_for(mdeps, name, WAIT, |o: Option<&ModelDeployment>| {
        o.and_then(|o| o.status.as_ref())
            .is_some_and(|s| s.revision.is_some())
    })
    .await;
    let rev = md
        .status
        .and_then(|s| s.revision)
        .map(|r| r.name)
        .unwrap_or_default();
    wait_for(
        deployments,
        &format!("{name}-{rev}"),
        WAIT,
        conditions::is_created(),
    )
    .await
}

fn revision_label(d: &Deployment) -> Option<String> {
    d.spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .and_then(|l| l.get("modelpilot.io/revision").cloned())
}

/// Wait until events with every one of `reasons` were recorded about ModelDeployment `name`
/// (events are published just after the status write a test watches for).
async fn await_events(ns: &TestNamespace, name: &str, reasons: &[&str]) {
    let events: Api<Event> = ns.api();
    let config = watcher::Config::default().fields(&format!(
        "regarding.name={name},regarding.kind=ModelDeployment"
    ));
    let all_seen = |list: &[Event]| {
        reasons
            .iter()
            .all(|want| list.iter().any(|e| e.reason.as_deref() == Some(want)))
    };
    let describe = |e: &Event| e.reason.clone().unwrap_or_default();
    let what = format!("events {reasons:?}");
    wait_list(&events, config, WAIT, &what, all_seen, describe).await;
}

#[tokio::test]
async fn minimal_example_reconciles_to_ready_rolls_and_is_garbage_collected() {
    with_controller("mp-core", |ns| async move {
        let mdeps: Api<ModelDeployment> = ns.api();
        let deployments: Api<Deployment> = ns.api();
        let services: Api<Service> = ns.api();
        let mdep = apply(&mdeps, &simulated(example("minimal.yaml"))).await;
        let name = mdep.name_any();

        // Children appear with the server and owner references.
        let d = revision_deployment(&mdeps, &deployments, &name).await;
        let (first_deployment, first_uid) = (d.name_any(), d.uid().unwrap_or_default());
        let pod = d.spec.template.spec.clone().unwrap_or_default();
        assert!(
            pod.containers.iter().any(|c| c.name == SERVER),
            "server container missing"
        );
        let owner = &d.owner_references()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str()),
            ("ModelDeployment", mdep.uid().unwrap_or_default().as_str())
        );
        let svc = wait_for(&services, &name, WAIT, conditions::is_created()).await;
        assert_eq!(svc.owner_references()[0].name, name);

        // kwok makes the pods Ready; the status follows.
        let ready = wait_for(&mdeps, &name, WAIT, has_condition("Ready", "True")).await;
        let status = ready.status.clone().unwrap_or_default();
        assert_eq!(status.observed_generation, ready.metadata.generation);
        assert_eq!(status.ready_replicas, 1);
        assert_eq!(
            status.selector.as_deref(),
            Some(format!("modelpilot.io/name={name}").as_str())
        );
        let first_revision = status.revision.clone().expect("revision in status");
        assert_eq!(first_revision.uri, mdep.spec.model.uri);
        assert_eq!(
            revision_label(&d).as_deref(),
            Some(first_revision.name.as_str())
        );
        let degraded_since = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .map(|c| c.last_transition_time.clone());

        // Events tell the story: the revision was created, then the service became ready.
        await_events(&ns, &name, &["RevisionCreated", "Ready"]).await;

        // A new model URI is a new revision, rolled out through the Deployment.
        let patch =
            json!({"spec": {"model": {"uri": "s3://models/iris/2/model.onnx", "version": "2"}}});
        mdeps
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch uri");
        let rolled = wait_for(&mdeps, &name, WAIT, move |o: Option<&ModelDeployment>| {
            o.and_then(|o| o.status.as_ref()).is_some_and(|s| {
                s.phase == Phase::Ready
                    && s.revision
                        .as_ref()
                        .is_some_and(|r| r.uri == "s3://models/iris/2/model.onnx")
                    && s.updated_replicas == 1
                    && s.replicas == 1
            })
        })
        .await;
        let status = rolled.status.clone().unwrap_or_default();
        let new_revision = status.revision.clone().expect("revision");
        assert_ne!(new_revision.name, first_revision.name);
        assert_eq!(new_revision.version.as_deref(), Some("2"));
        let d = revision_deployment(&mdeps, &deployments, &name).await;
        assert_eq!(
            revision_label(&d).as_deref(),
            Some(new_revision.name.as_str())
        );
        // The first revision's Deployment was pruned once the new one was ready.
        wait_gone(&deployments, &first_deployment, &first_uid, WAIT).await;
        let degraded_now = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .map(|c| c.last_transition_time.clone());
        assert_eq!(
            degraded_now, degraded_since,
            "Degraded did not flip, so its time must not move"
        );

        // Deleting the ModelDeployment garbage-collects the children.
        let uid = d.uid().unwrap_or_default();
        mdeps
            .delete(&name, &DeleteParams::foreground())
            .await
            .expect("delete");
        let d_name = d.name_any();
        wait_gone(&deployments, &d_name, &uid, WAIT).await;
        let svc_uid = svc.uid().unwrap_or_default();
        wait_gone(&services, &name, &svc_uid, WAIT).await;
    })
    .await;
}

#[tokio::test]
async fn template_gets_a_native_sidecar_and_pods_become_ready() {
    with_controller("mp-sidecar", |ns| async move {
        let mdeps: Api<ModelDeployment> = ns.api();
        let mut mdep = example("minimal.yaml");
        mdep.metadata.name = Some("gateway".into());
        mdep.spec.replicas = 2;
        mdep.spec.template = Some(
            serde_json::from_value(json!({
                "metadata": {"labels": {"team": "risk"}},
                "spec": {"containers": [{"name": "gateway", "image": "example.com/gateway:1"}]}
            }))
            .expect("template"),
        );
        apply(&mdeps, &simulated(mdep)).await;
        let ready = wait_for(&mdeps, "gateway", WAIT, has_condition("Ready", "True")).await;
        assert_eq!(ready.status.as_ref().map(|s| s.ready_replicas), Some(2));
        let d = revision_deployment(&mdeps, &ns.api(), "gateway").await;
        let pod = d.spec.template.spec.unwrap_or_default();
        let sidecar = pod
            .init_containers
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.name == SERVER)
            .expect("sidecar");
        assert_eq!(sidecar.restart_policy.as_deref(), Some("Always"));
        assert_eq!(
            pod.containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["gateway"]
        );
    })
    .await;
}

#[tokio::test]
async fn a_child_the_api_server_rejects_degrades_then_recovers() {
    with_controller("mp-degraded", |ns| async move {
        let mdeps: Api<ModelDeployment> = ns.api();
        let mut mdep = example("minimal.yaml");
        // Valid for the CRD, invalid for a Deployment: a container without an image.
        mdep.spec.template = Some(serde_json::from_value(json!({
            "spec": {"containers": [{"name": "app"}]}
        })).expect("template"));
        let mdep = simulated(mdep);
        apply(&mdeps, &mdep).await;
        let name = mdep.name_any();
        let degraded = wait_for(&mdeps, &name, WAIT, has_condition("Degraded", "True")).await;
        let status = degraded.status.clone().unwrap_or_default();
        let cond = status.conditions.iter().find(|c| c.type_ == "Degraded").expect("condition");
        assert_eq!(cond.reason, "ChildRejected");
        assert!(cond.message.contains("image"), "message names the problem: {}", cond.message);
        assert_eq!(status.phase, Phase::Degraded);

        // Fixing the spec is a change: the controller picks it up and recovers.
        let fix = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}});
        mdeps.patch(&name, &PatchParams::default(), &Patch::Merge(&fix)).await.expect("fix");
        let ok = wait_for(&mdeps, &name, WAIT, has_condition("Ready", "True")).await;
        let ok = wait_for(&mdeps, &name, WAIT, has_condition("Degraded", "False")).await.status.or(ok.status);
        assert_eq!(ok.map(|s| s.phase), Some(Phase::Ready));
    })
    .await;
}

#[tokio::test]
async fn scale_subresource_drives_the_deployment() {
    with_controller("mp-scale", |ns| async move {
        let mdeps: Api<ModelDeployment> = ns.api();
        let mdep = simulated(example("minimal.yaml"));
        let name = mdep.name_any();
        apply(&mdeps, &mdep).await;
        wait_for(&mdeps, &name, WAIT, has_condition("Ready", "True")).await;
        // What `kubectl scale mdep/<name> --replicas=3` sends.
        let scale = json!({"spec": {"replicas": 3}});
        mdeps
            .patch_scale(&name, &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .expect("scale");
        let scaled = wait_for(&mdeps, &name, WAIT, |o: Option<&ModelDeployment>| {
            o.and_then(|o| o.status.as_ref())
                .is_some_and(|s| s.ready_replicas == 3 && s.phase == Phase::Ready)
        })
        .await;
        assert_eq!(scaled.spec.replicas, 3);
        let read = mdeps.get_scale(&name).await.expect("read scale");
        assert_eq!(
            read.status.map(|s| (s.replicas, s.selector)),
            Some((3, Some(format!("modelpilot.io/name={name}"))))
        );
        let deployments: Api<Deployment> = ns.api();
        let d = revision_deployment(&mdeps, &deployments, &name).await;
        let d = wait_for(
            &deployments,
            &d.name_any(),
            WAIT,
            |o: Option<&Deployment>| o.is_some_and(|d| d.spec.replicas == Some(3)),
        )
        .await;
        assert_eq!(d.spec.replicas, Some(3));
    })
    .await;
}
