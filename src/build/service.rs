//! The Services in front of the inference pods: port 80 → the server's `http` port.
//!
//! The main Service `<name>` selects every revision's pods with replica-ratio traffic (so a canary
//! receives the share its pods have) and only the stable revision's behind a Gateway API route;
//! there the `<name>-stable` and `<name>-canary` Services are the route's weighted backends.

use k8s_openapi::{
    api::core::v1::{Service, ServicePort, ServiceSpec},
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{child_metadata, labels, server::PORT_NAME};
use crate::validate::ValidSpec;

/// Name of the stable or canary Service of a Gateway API rollout.
pub fn track_name(owner: &str, track: labels::Track) -> String {
    format!("{owner}-{}", track.as_str())
}

/// Build the main Service: every revision, or only `revision` when given.
pub fn build(spec: &ValidSpec, revision: Option<&str>) -> Service {
    let selector = match revision {
        Some(rev) => labels::revision_selector_of(&spec.owner.name, rev),
        None => labels::service_selector(spec),
    };
    with_selector(spec, spec.owner.name.clone(), selector)
}

/// Build the stable or canary Service selecting `revision`'s pods.
pub fn build_track(spec: &ValidSpec, track: labels::Track, revision: &str) -> Service {
    let mut service = with_selector(
        spec,
        track_name(&spec.owner.name, track),
        labels::revision_selector_of(&spec.owner.name, revision),
    );
    service
        .metadata
        .labels
        .get_or_insert_with(Default::default)
        .insert(labels::TRACK.into(), track.as_str().into());
    service
}

fn with_selector(
    spec: &ValidSpec,
    name: String,
    selector: std::collections::BTreeMap<String, String>,
) -> Service {
    let mut metadata = child_metadata(spec);
    metadata.name = Some(name);
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector),
            ports: Some(vec![ServicePort {
                name: Some(PORT_NAME.into()),
                port: 80,
                target_port: Some(IntOrString::String(PORT_NAME.into())),
                protocol: Some("TCP".into()),
                app_protocol: Some("http".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::fixtures::{manifest, valid};

    #[test]
    fn service_targets_the_named_port_and_selects_all_tracks() {
        let svc = build(&valid(manifest()), None);
        let spec = svc.spec.unwrap_or_default();
        let selector = spec.selector.unwrap_or_default();
        assert_eq!(selector.len(), 1, "{selector:?}");
        assert_eq!(selector["modelpilot.io/name"], "iris");
        let port = &spec.ports.unwrap_or_default()[0];
        assert_eq!(port.port, 80);
        assert_eq!(port.target_port, Some(IntOrString::String("http".into())));
        let owners = svc.metadata.owner_references.unwrap_or_default();
        assert_eq!(owners[0].kind, "ModelDeployment");
        assert_eq!(owners[0].controller, Some(true));
    }

    #[test]
    fn track_services_select_one_revision() {
        let spec = valid(manifest());
        let main = build(&spec, Some("abc"));
        let canary = build_track(&spec, labels::Track::Canary, "def");
        let selector = |s: &Service| {
            s.spec
                .clone()
                .unwrap_or_default()
                .selector
                .unwrap_or_default()
        };
        assert_eq!(main.metadata.name.as_deref(), Some("iris"));
        assert_eq!(selector(&main)["modelpilot.io/revision"], "abc");
        assert_eq!(canary.metadata.name.as_deref(), Some("iris-canary"));
        assert_eq!(selector(&canary)["modelpilot.io/revision"], "def");
        assert_eq!(selector(&canary)["modelpilot.io/name"], "iris");
    }
}
