//! The labels every child carries: the `app.kubernetes.io/*` set plus our own keys, and the
//! narrower selector labels that tie a revision's Deployment and the Services to their pods.
//!
//! Pods carry the name and the revision, never the track: a revision's pods stay the same when it
//! is promoted from canary to stable, so the track lives only on the Deployment object and in
//! status.

use std::collections::BTreeMap;

use crate::validate::ValidSpec;

/// Name of the `ModelDeployment` a child belongs to.
pub const NAME: &str = "modelpilot.io/name";
/// Revision (hash of what defines the pods) a pod runs.
pub const REVISION: &str = "modelpilot.io/revision";
/// Which track of a rollout a revision's Deployment serves (on the Deployment object only).
pub const TRACK: &str = "modelpilot.io/track";
/// Marks the pods of a signature-check Job (value: the ModelDeployment's name).
pub const SIGNATURE_OF: &str = "modelpilot.io/signature-of";
/// Selects every object the operator manages.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by=modelpilot";

/// The part a revision plays in a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Track {
    /// Serves what the rollout's weight leaves it (all traffic outside a rollout).
    Stable,
    /// The candidate being judged.
    Canary,
}

impl Track {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Canary => "canary",
        }
    }
}

/// Labels selecting every serving pod of a `ModelDeployment` (the Service selector).
pub fn service_selector(spec: &ValidSpec) -> BTreeMap<String, String> {
    BTreeMap::from([(NAME.to_owned(), spec.owner.name.clone())])
}

/// Labels selecting the pods of one revision: a revision's Deployment selector (immutable once
/// created) and the selector of the stable and canary Services.
pub fn revision_selector_of(name: &str, revision: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), name.to_owned()),
        (REVISION.to_owned(), revision.to_owned()),
    ])
}

/// Labels selecting the pods of the spec's revision.
pub fn revision_selector(spec: &ValidSpec) -> BTreeMap<String, String> {
    revision_selector_of(&spec.owner.name, &spec.revision)
}

/// Labels of the Deployment and Service objects.
pub fn common(spec: &ValidSpec) -> BTreeMap<String, String> {
    let mut labels = service_selector(spec);
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
        assert!(!labels.contains_key(TRACK), "pods carry no track");
        assert_eq!(labels["app.kubernetes.io/version"], "v7");
        assert_eq!(labels[REVISION], spec.revision);
    }

    #[test]
    fn selector_string_is_sorted_and_joined() {
        let spec = valid(manifest());
        assert_eq!(
            selector_string(&service_selector(&spec)),
            "modelpilot.io/name=iris"
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
        for selector in [service_selector(&spec), revision_selector(&spec)] {
            for (k, v) in &selector {
                assert_eq!(labels.get(k), Some(v), "{k}");
            }
        }
    }
}
