//! The `ModelDeployment` API (group `modelpilot.io`, version `v1alpha1`).

/// Render the CRD as YAML.
pub fn crd_yaml() -> anyhow::Result<String> {
    anyhow::bail!("not yet")
}
