//! Pure builders: one function per owned child object.
//!
//! Each builder takes a [`ValidSpec`](crate::validate::ValidSpec) and returns the
//! complete desired object, ready for server-side apply. No client, no clock, no randomness: the
//! same spec always yields the same objects, which is what makes them table-testable and what lets
//! server-side apply see "no change" when nothing changed.

pub mod deployment;
pub mod hpa;
pub mod labels;
pub mod retrain_job;
pub mod route;
pub mod server;
pub mod service;
pub mod signature_job;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::validate::ValidSpec;

/// The field manager every object applied by the operator is written under.
pub const FIELD_MANAGER: &str = "modelpilot";

/// Metadata of a child named after its owner: namespace, common labels, owner reference.
pub fn child_metadata(spec: &ValidSpec) -> ObjectMeta {
    ObjectMeta {
        name: Some(spec.owner.name.clone()),
        namespace: Some(spec.owner.namespace.clone()),
        labels: Some(labels::common(spec)),
        owner_references: Some(vec![owner_reference(spec)]),
        ..Default::default()
    }
}

/// The controller owner reference that makes the garbage collector delete children with their
/// `ModelDeployment`.
pub fn owner_reference(spec: &ValidSpec) -> OwnerReference {
    OwnerReference {
        api_version: format!("{}/v1alpha1", crate::api::GROUP),
        kind: "ModelDeployment".into(),
        name: spec.owner.name.clone(),
        uid: spec.owner.uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! A chainable test fixture for builder tests.

    use crate::{
        api::ModelDeployment,
        validate::{Defaults, ValidSpec, validate},
    };

    /// A minimal valid `ModelDeployment` as JSON, to be tweaked by a test.
    pub fn manifest() -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "modelpilot.io/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "iris", "namespace": "ml", "uid": "0000-1111", "generation": 3},
            "spec": {"model": {"name": "iris", "uri": "s3://models/iris/v1.onnx"}}
        })
    }

    /// Validate a manifest with the test defaults.
    pub fn valid(manifest: serde_json::Value) -> ValidSpec {
        let mdep: ModelDeployment = serde_json::from_value(manifest).expect("fixture parses");
        validate(
            &mdep,
            &Defaults {
                server_image: "modelpilot/modelpilot:test".into(),
            },
        )
        .expect("fixture is valid")
    }
}
