//! The labels every child carries: the `app.kubernetes.io/*` set plus our own keys, and the
//! narrower selector labels that tie a Deployment and the Service to their pods.

use std::collections::BTreeMap;

use crate::validate::ValidSpec;

/// Name of the `ModelDeployment` a child belongs to.
pub const NAME: &str = "modelpilot.io/name";
/// Revision (hash of what defines the pods) a pod runs.
pub const REVISION: &str = "modelpilot.io/revision";
/// Which track of a rollout a Deployment serves (`stable` until canaries exist).
pub const TRACK: &str = "modelpilot.io/track";
/// The track of the primary Deployment.
pub const TRACK_STABLE: &str = "stable";

/// Labels selecting every serving pod of a `ModelDeployment` (the Service selector).
pub fn service_selector(spec: &ValidSpec) -> BTreeMap<String, String> {
    BTreeMap::from([(NAME.to_owned(), spec.owner.name.clone())])
}

/// Labels selecting the pods of the stable Deployment (immutable once created).
pub fn deployment_selector(spec: &ValidSpec) -> BTreeMap<String, String> {
    let mut labels = service_selector(spec);
    labels.insert(TRACK.into(), TRACK_STABLE.into());
    labels
}

/// Labels selecting the pods of one revision (what the operator checks the health of).
pub fn revision_selector(spec: &ValidSpec) -> BTreeMap<String, String> {
    let mut labels = service_selector(spec);
    labels.insert(REVISION.into(), spec.revision.clone());
    labels
}

/// Labels of the Deployment and Service objects.
pub fn common(spec: &ValidSpec) -> BTreeMap<String, String> {
    let mut labels = deployment_selector(spec);
    labels.extend([
        (
            "app.kubernetes.io/name".to_owned(),
            "modelpilot-inference".to_owned(),
        ),
        (
            "app.kubernetes.io/instance".to_owned(),
            spec.owner.name.clone(),
        ),
        (
            "app.kubernetes.io/component".to_owned(),
            "inference".to_owned(),
        ),
        (
            "app.kubernetes.io/part-of".to_owned(),
            "modelpilot".to_owned(),
        ),
        (
            "app.kubernetes.io/managed-by".to_owned(),
            "modelpilot".to_owned(),
        ),
    ]);
    if let Some(version) = &spec.version {
        labels.insert("app.kubernetes.io/version".into(), version.clone());
    }
    labels
}

/// Labels of the pods: the common set, the revision, and the user's own template labels (ours
/// win on a clash, since selectors depend on them).
pub fn pod(spec: &ValidSpec) -> BTreeMap<String, String> {
    let mut labels = spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.extend(common(spec));
    labels.insert(REVISION.into(), spec.revision.clone());
    labels
}

/// The `key=value,…` form of a selector, for the scale subresource's `status.selector`.
pub fn selector_string(selector: &BTreeMap<String, String>) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{manifest, valid};

    #[test]
    fn pod_labels_keep_user_labels_but_not_over_ours() {
        let mut m = manifest();
        m["spec"]["model"]["version"] = "v7".into();
        m["spec"]["template"] = serde_json::json!({
            "metadata": {"labels": {"team": "risk", "modelpilot.io/name": "spoofed"}},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]}
        });
        let spec = valid(m);
        let labels = pod(&spec);
        assert_eq!(labels["team"], "risk");
        assert_eq!(labels[NAME], "iris");
        assert_eq!(labels[TRACK], "stable");
        assert_eq!(labels["app.kubernetes.io/version"], "v7");
        assert_eq!(labels[REVISION], spec.revision);
    }

    #[test]
    fn selector_string_is_sorted_and_joined() {
        let spec = valid(manifest());
        assert_eq!(
            selector_string(&deployment_selector(&spec)),
            "modelpilot.io/name=iris,modelpilot.io/track=stable"
        );
        assert_eq!(
            selector_string(&revision_selector(&spec)),
            format!(
                "modelpilot.io/name=iris,modelpilot.io/revision={}",
                spec.revision
            )
        );
    }

    #[test]
    fn pods_carry_every_selector_they_are_found_by() {
        let spec = valid(manifest());
        let labels = pod(&spec);
        for selector in [
            service_selector(&spec),
            deployment_selector(&spec),
            revision_selector(&spec),
        ] {
            for (k, v) in &selector {
                assert_eq!(labels.get(k), Some(v), "{k}");
            }
        }
    }
}
