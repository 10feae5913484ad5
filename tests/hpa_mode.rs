//! `autoscaling.mode: HPA` against the real control plane: the operator's HorizontalPodAutoscaler
//! is accepted by the API server, and the real controller-manager's HPA controller resolves the
//! ModelDeployment's scale subresource — it reads the count and the selector, and (the spec's
//! count being below `minReplicas`) writes `spec.replicas` back through it, which the operator
//! carries out. No metrics adapter runs here, so the HPA reports that it cannot read its metric;
//! that is the expected rest of its status. Switching back to the built-in autoscaler deletes it.
//!
//! Pods run on the kwok-simulated nodes: this is about the control plane, not serving.

mod common;

use std::time::Duration;

use common::{example, simulated, wait_for, with_controller};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
use modelpilot::api::{AutoscalingMode, ModelDeployment};
use serde_json::json;

const NAME: &str = "fraud-hpa-demo";
/// The HPA controller syncs every 15 s by default.
const HPA_SYNC: Duration = Duration::from_secs(90);

fn condition(hpa: &HorizontalPodAutoscaler, type_: &str) -> Option<(String, String)> {
    let c = hpa
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

#[tokio::test]
async fn the_controller_managers_hpa_drives_the_scale_subresource() {
    with_controller("mp-hpa", |ns| async move {
        let mdeps: Api<ModelDeployment> = ns.api();
        let hpas: Api<HorizontalPodAutoscaler> = ns.api();
        let md = simulated(example("autoscaling-hpa.yaml"));
        assert_eq!(md.spec.replicas, 1, "the example starts below minReplicas");
        mdeps
            .create(&PostParams::default(), &md)
            .await
            .expect("create ModelDeployment");

        let hpa = wait_for(
            &hpas,
            NAME,
            common::WAIT,
            |h: Option<&HorizontalPodAutoscaler>| h.is_some(),
        )
        .await;
        let target = &hpa.spec.scale_target_ref;
        assert_eq!(
            (
                target.api_version.as_deref(),
                target.kind.as_str(),
                target.name.as_str()
            ),
            (Some("modelpilot.io/v1alpha1"), "ModelDeployment", NAME)
        );
        assert_eq!(
            (hpa.spec.min_replicas, hpa.spec.max_replicas),
            (Some(2), 10)
        );
        let owner = &hpa.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("ModelDeployment", NAME)
        );

        // The HPA controller read the scale subresource ...
        let hpa = wait_for(
            &hpas,
            NAME,
            HPA_SYNC,
            |h: Option<&HorizontalPodAutoscaler>| {
                h.and_then(|h| condition(h, "AbleToScale"))
                    .is_some_and(|(status, _)| status == "True")
            },
        )
        .await;
        println!(
            "HPA conditions: {:?}",
            hpa.status.as_ref().and_then(|s| s.conditions.clone())
        );
        // ... and wrote the count back through it: spec.replicas raised to minReplicas, carried
        // out by the operator (status from the Deployment), seen by the HPA again.
        let md = wait_for(&mdeps, NAME, HPA_SYNC, |m: Option<&ModelDeployment>| {
            m.is_some_and(|m| {
                m.spec.replicas == 2 && m.status.as_ref().is_some_and(|s| s.replicas == 2)
            })
        })
        .await;
        let status = md.status.unwrap_or_default();
        let autoscaling = status.autoscaling.expect("status.autoscaling");
        assert_eq!(autoscaling.mode, AutoscalingMode::Hpa);
        assert_eq!(autoscaling.hpa.as_deref(), Some(NAME));
        assert!(status.selector.is_some_and(|s| s.contains(NAME)));
        wait_for(
            &hpas,
            NAME,
            HPA_SYNC,
            |h: Option<&HorizontalPodAutoscaler>| {
                h.and_then(|h| h.status.as_ref())
                    .is_some_and(|s| s.current_replicas == Some(2))
            },
        )
        .await;

        // Back to the built-in autoscaler: the HPA goes.
        let builtin = json!({"spec": {"autoscaling": {"mode": "Builtin", "hpa": null}}});
        mdeps
            .patch(NAME, &PatchParams::default(), &Patch::Merge(&builtin))
            .await
            .expect("switch to the built-in autoscaler");
        let uid = hpa.metadata.uid.clone().unwrap_or_default();
        common::wait_gone(&hpas, NAME, &uid, common::WAIT).await;
    })
    .await;
}
