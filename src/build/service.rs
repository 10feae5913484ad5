//! The Service in front of the inference pods: port 80 → the server's `http` port, selecting every
//! serving pod of the `ModelDeployment` (all tracks, so a canary receives its share).

use k8s_openapi::{
    api::core::v1::{Service, ServicePort, ServiceSpec},
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{child_metadata, labels, server::PORT_NAME};
use crate::validate::ValidSpec;

/// Build the Service.
pub fn build(spec: &ValidSpec) -> Service {
    Service {
        metadata: child_metadata(spec),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(labels::service_selector(spec)),
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
        let svc = build(&valid(manifest()));
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
}
