//! The HorizontalPodAutoscaler of `autoscaling.mode: HPA`.
//!
//! Users who already run a metrics adapter or KEDA keep their autoscaler: the operator creates
//! an `autoscaling/v2` HPA named after the ModelDeployment whose target is the
//! ModelDeployment's own scale subresource (so the HPA writes `spec.replicas`, and reads the pods
//! through `status.selector`), with the spec's bounds, metrics and behaviour. The operator then
//! stays out of the count and carries `spec.replicas` out like any other.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};

use super::child_metadata;
use crate::{api::AutoscalingMode, validate::ValidSpec};

/// The HPA for `spec`, or `None` when the spec does not ask for one.
///
/// ```
/// use modelpilot::{api::ModelDeployment, build::hpa, validate::{Defaults, validate}};
/// let md: ModelDeployment = serde_json::from_value(serde_json::json!({
///     "apiVersion": "modelpilot.io/v1alpha1", "kind": "ModelDeployment",
///     "metadata": {"name": "iris", "namespace": "ml", "uid": "u1"},
///     "spec": {"model": {"name": "iris", "uri": "s3://models/iris.onnx"},
///              "autoscaling": {"mode": "HPA", "minReplicas": 2, "maxReplicas": 8,
///                "hpa": {"metrics": [{"type": "Pods", "pods": {
///                  "metric": {"name": "modelpilot_inference_inflight_requests"},
///                  "target": {"type": "AverageValue", "averageValue": "4"}}}]}}}
/// })).unwrap();
/// let spec = validate(&md, &Defaults { server_image: "img".into() }).unwrap();
/// let hpa = hpa::build(&spec).unwrap();
/// let target = &hpa.spec.scale_target_ref;
/// assert_eq!((target.kind.as_str(), target.name.as_str()), ("ModelDeployment", "iris"));
/// assert_eq!(hpa.spec.max_replicas, 8);
/// ```
pub fn build(spec: &ValidSpec) -> Option<HorizontalPodAutoscaler> {
    let autoscaling = spec.autoscaling.as_ref()?;
    if autoscaling.mode != AutoscalingMode::Hpa {
        return None;
    }
    let hpa = autoscaling.hpa.clone().unwrap_or_default();
    Some(HorizontalPodAutoscaler {
        metadata: child_metadata(spec),
        spec: HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(format!("{}/v1alpha1", crate::api::GROUP)),
                kind: "ModelDeployment".into(),
                name: spec.owner.name.clone(),
            },
            min_replicas: Some(autoscaling.min_replicas),
            max_replicas: autoscaling.max_replicas,
            metrics: Some(hpa.metrics),
            behavior: hpa.behavior,
        },
        status: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{manifest, valid};

    #[test]
    fn only_hpa_mode_builds_one_and_it_carries_the_spec() {
        let mut m = manifest();
        assert!(build(&valid(m.clone())).is_none());
        m["spec"]["autoscaling"] = serde_json::json!({"maxReplicas": 4});
        assert!(
            build(&valid(m.clone())).is_none(),
            "builtin mode has no HPA"
        );
        m["spec"]["autoscaling"] = serde_json::json!({
            "mode": "HPA", "minReplicas": 1, "maxReplicas": 6,
            "hpa": {
                "metrics": [{"type": "Pods", "pods": {
                    "metric": {"name": "modelpilot_inference_inflight_requests"},
                    "target": {"type": "AverageValue", "averageValue": "4"}}}],
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}}
            }
        });
        let hpa = build(&valid(m)).unwrap();
        assert_eq!(hpa.metadata.name.as_deref(), Some("iris"));
        assert_eq!(hpa.metadata.namespace.as_deref(), Some("ml"));
        let owner = &hpa.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller),
            ("ModelDeployment", Some(true))
        );
        let s = hpa.spec;
        assert_eq!(
            s.scale_target_ref.api_version.as_deref(),
            Some("modelpilot.io/v1alpha1")
        );
        assert_eq!((s.min_replicas, s.max_replicas), (Some(1), 6));
        assert_eq!(s.metrics.unwrap().len(), 1);
        let window = s
            .behavior
            .and_then(|b| b.scale_down)
            .and_then(|d| d.stabilization_window_seconds);
        assert_eq!(window, Some(60));
    }
}
