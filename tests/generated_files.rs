//! Generated files must match their source: the CRD YAML in `crds/` and in the Helm chart is the
//! output of `modelpilot crd` (the Rust types in `src/api`), and the chart deploys the crate's
//! version. A stale copy would install a schema the controller does not speak, so these checks fail
//! with the command that fixes them.

use std::{
    fs,
    path::{Path, PathBuf},
};

use modelpilot::api::{CRD_FILE, crd_yaml};

const FIX: &str = "run `make crds` and commit the result";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The first line where `actual` and `expected` differ, for a failure message that points at it.
fn first_difference(actual: &str, expected: &str) -> String {
    let mut actual_lines = actual.lines();
    let mut expected_lines = expected.lines();
    for number in 1.. {
        match (actual_lines.next(), expected_lines.next()) {
            (Some(a), Some(e)) if a == e => continue,
            (None, None) => return "only in line endings or a trailing newline".into(),
            (a, e) => {
                return format!(
                    "line {number}:\n  file:      {}\n  generated: {}",
                    a.unwrap_or("<end of file>"),
                    e.unwrap_or("<end of output>")
                );
            }
        }
    }
    unreachable!("the loop returns")
}

/// Assert that `dir` holds exactly the generated CRD file, with the generated content.
fn assert_crd_dir_is_fresh(dir: &Path) {
    let expected = crd_yaml().expect("the CRD renders from the Rust types");
    let path = dir.join(CRD_FILE);
    let actual = fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {} ({err}); {FIX}", path.display()));
    assert!(
        actual == expected,
        "{} is stale: it differs from `modelpilot crd` at {}\n{FIX}",
        path.display(),
        first_difference(&actual, &expected)
    );

    let mut others: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot list {} ({err})", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name != CRD_FILE)
        .collect();
    others.sort();
    assert!(
        others.is_empty(),
        "{} holds files that `modelpilot crd` does not generate: {others:?}; delete them ({FIX})",
        dir.display()
    );
}

#[test]
fn crds_dir_matches_generated_crd() {
    assert_crd_dir_is_fresh(&repo().join("crds"));
}

#[test]
fn chart_crds_dir_matches_generated_crd() {
    assert_crd_dir_is_fresh(&repo().join("charts/modelpilot/crds"));
}

/// `first_difference` must name the line that changed, or the failure message is useless.
#[test]
fn first_difference_points_at_the_changed_line() {
    let diff = first_difference("a\nb\nc\n", "a\nB\nc\n");
    assert!(diff.starts_with("line 2:"), "{diff}");
    assert!(
        diff.contains("file:      b") && diff.contains("generated: B"),
        "{diff}"
    );
    assert!(first_difference("a\n", "a\nb\n").contains("<end of file>"));
}

#[test]
fn chart_app_version_is_the_crate_version() {
    let path = repo().join("charts/modelpilot/Chart.yaml");
    let text = fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {} ({err})", path.display()));
    let chart: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not YAML: {err}", path.display()));
    let app_version = chart["appVersion"].as_str().unwrap_or_default();
    assert_eq!(
        app_version,
        env!("CARGO_PKG_VERSION"),
        "{}: appVersion must equal the crate version in Cargo.toml",
        path.display()
    );
}

/// Fields whose schema comes from Kubernetes types; the walk below does not descend into them.
const UPSTREAM_TYPES: &[&str] = &["template", "resources", "metrics", "behavior"];

/// Dotted paths of every field of `schema`, stopping at [`UPSTREAM_TYPES`].
fn field_paths(schema: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    let Some(properties) = schema["properties"].as_object() else {
        return;
    };
    for (name, child) in properties {
        let path = format!("{prefix}{name}");
        if !UPSTREAM_TYPES.contains(&name.as_str()) {
            field_paths(child, &format!("{path}."), out);
        }
        out.push(path);
    }
}

/// `examples/full.yaml` promises every field; when the API grows, the example must show the new one.
#[test]
fn full_example_sets_every_spec_field() {
    let crd = serde_json::to_value(modelpilot::api::crd().expect("CRD renders")).expect("JSON");
    let spec_schema =
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let mut paths = Vec::new();
    field_paths(spec_schema, "", &mut paths);
    assert!(paths.len() > 10, "walked the spec schema: {paths:?}");

    let path = repo().join("examples/full.yaml");
    let text = fs::read_to_string(&path).expect("examples/full.yaml");
    let spec = serde_yaml::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("YAML"))
        .find(|doc: &serde_json::Value| doc["kind"] == "ModelDeployment")
        .map(|doc| doc["spec"].clone())
        .expect("examples/full.yaml holds a ModelDeployment");
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| p.split('.').fold(&spec, |v, key| &v[key]).is_null())
        .collect();
    assert!(
        missing.is_empty(),
        "examples/full.yaml does not set spec fields {missing:?}"
    );
}
