//! Running `helm` and `kubectl` for the chart tests, and reading what `helm template` renders.
//!
//! The tools come from `.cluster/bin/` (built by `make tools` / `make cluster-up` at the pinned
//! versions) or, failing that, from `PATH`.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
};

use serde::Deserialize;
use serde_json::Value;

/// The chart under test.
pub const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/modelpilot");
/// Values that switch every optional setting on.
pub const FULL_VALUES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/charts/modelpilot/ci/full-values.yaml"
);

/// `.cluster/bin/<name>` when it exists, else `<name>` from `PATH`; panics with the fix otherwise.
fn tool(name: &str) -> PathBuf {
    let pinned = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".cluster/bin")
        .join(name);
    if pinned.is_file() {
        return pinned;
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .find(|candidate| candidate.is_file());
    on_path.unwrap_or_else(|| {
        panic!(
            "`{name}` is neither in .cluster/bin nor on PATH; build the pinned tools with `make tools` \
             (or start the control plane with `make cluster-up`)"
        )
    })
}

/// The Kubernetes version of the test control plane, from `hack/cluster/versions.env`.
///
/// `helm template` and `helm lint` run offline, so they are told which version to render for
/// (a helm built from source would otherwise assume an old default and refuse the chart).
pub fn kube_version() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hack/cluster/versions.env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .find_map(|line| line.trim().strip_prefix("KUBERNETES_VERSION="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("no KUBERNETES_VERSION in {}", path.display()))
}

/// `helm <subcommand> --kube-version <pinned>`.
pub fn helm(subcommand: &str) -> Command {
    let mut command = Command::new(tool("helm"));
    command.args([subcommand, "--kube-version", &kube_version()]);
    command
}

/// `kubectl` talking to the test control plane.
pub fn kubectl() -> Command {
    let mut command = Command::new(tool("kubectl"));
    command.env("KUBECONFIG", crate::common::kubeconfig_path());
    command
}

/// Run `command` (feeding `stdin`), returning stdout or stderr.
pub fn try_run(command: &mut Command, stdin: Option<&str>) -> Result<String, String> {
    let shown = format!("{command:?}");
    let mut child = command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("writing to {shown}: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if output.status.success() {
        Ok(stdout)
    } else {
        Err(format!(
            "{shown} failed ({}):\n{stderr}{stdout}",
            output.status
        ))
    }
}

/// Run `command`, panicking with its output when it fails.
pub fn run(command: &mut Command, stdin: Option<&str>) -> String {
    try_run(command, stdin).unwrap_or_else(|e| panic!("{e}"))
}

/// `helm template <release> charts/modelpilot --namespace <namespace> <args>`.
pub fn try_template(release: &str, namespace: &str, args: &[&str]) -> Result<String, String> {
    try_run(
        helm("template")
            .args([release, CHART, "--namespace", namespace])
            .args(args),
        None,
    )
}

/// Like [`try_template`], panicking on failure.
pub fn template_text(release: &str, namespace: &str, args: &[&str]) -> String {
    try_template(release, namespace, args).unwrap_or_else(|e| panic!("{e}"))
}

/// The objects `helm template` rendered.
pub struct Rendered {
    pub docs: Vec<Value>,
}

impl Rendered {
    /// Render the chart; panics when helm fails.
    pub fn template(release: &str, namespace: &str, args: &[&str]) -> Self {
        Self::parse(&template_text(release, namespace, args))
    }

    /// Parse a multi-document YAML stream (empty documents skipped).
    pub fn parse(text: &str) -> Self {
        let docs = serde_yaml::Deserializer::from_str(text)
            .map(|doc| {
                Value::deserialize(doc).unwrap_or_else(|e| panic!("rendered YAML: {e}\n{text}"))
            })
            .filter(|doc| !doc.is_null())
            .collect();
        Self { docs }
    }

    /// Every object of `kind`.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|doc| doc["kind"] == kind).collect()
    }

    /// The only object of `kind`.
    pub fn one(&self, kind: &str) -> &Value {
        match self.all(kind).as_slice() {
            [only] => only,
            found => panic!("expected one {kind}, rendered {}", found.len()),
        }
    }

    /// The object of `kind` named `name`.
    pub fn named(&self, kind: &str, name: &str) -> &Value {
        self.all(kind)
            .into_iter()
            .find(|doc| doc["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} named {name} rendered"))
    }

    /// The `operator` container of the Deployment.
    pub fn operator_container(&self) -> &Value {
        let containers = &self.one("Deployment")["spec"]["template"]["spec"]["containers"];
        containers
            .as_array()
            .and_then(|list| list.iter().find(|c| c["name"] == "operator"))
            .unwrap_or_else(|| panic!("no operator container in {containers}"))
    }
}
