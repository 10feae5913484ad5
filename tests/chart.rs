//! The Helm chart in `charts/modelpilot`: it lints clean, renders an operator Deployment whose
//! arguments the real `modelpilot controller` parses, grants exactly the permissions the operator
//! uses, and is accepted by the real API server. The RBAC test binds the rendered roles to a
//! ServiceAccount and asks the API server's authorizer what that account may and may not do.

mod common;

#[path = "chart/rbac.rs"]
mod rbac;
#[path = "chart/render.rs"]
mod render;

use clap::Parser;
use modelpilot::{controller::ControllerArgs, telemetry::LogFormat};
use serde_json::{Value, json};

use crate::render::{CHART, FULL_VALUES, Rendered, helm, kubectl, run};

#[test]
fn helm_lint_passes_with_default_and_full_values() {
    run(helm("lint").args(["--strict", CHART]), None);
    run(
        helm("lint").args(["--strict", CHART, "-f", FULL_VALUES]),
        None,
    );
}

#[test]
fn values_schema_rejects_bad_values() {
    for (set, complaint) in [
        ("logFormat=xml", "at '/logFormat'"),
        ("metrics.port=80", "at '/metrics/port': minimum"),
        ("replicaCount=0", "at '/replicaCount': minimum"),
        ("watchNamespace=Models", "at '/watchNamespace'"),
        (
            "imagePullPolicy=Always",
            "additional properties 'imagePullPolicy' not allowed",
        ),
    ] {
        let out = render::try_template("bad-values", "default", &["--set", set]);
        let err = out.expect_err(&format!(
            "--set {set} must be rejected by values.schema.json"
        ));
        assert!(err.contains(complaint), "--set {set}: {err}");
    }
}

/// Parse the operator container's args with the real CLI definition.
#[derive(Parser)]
struct Controller {
    #[command(flatten)]
    args: ControllerArgs,
}

fn parse_controller_args(rendered: &Rendered) -> ControllerArgs {
    let container = rendered.operator_container();
    let args: Vec<String> = serde_json::from_value(container["args"].clone()).expect("args");
    assert_eq!(
        args.first().map(String::as_str),
        Some("controller"),
        "{args:?}"
    );
    let argv = std::iter::once("modelpilot controller".to_owned()).chain(args[1..].to_vec());
    Controller::try_parse_from(argv)
        .unwrap_or_else(|e| {
            panic!("`modelpilot controller` rejects the chart's args {args:?}:\n{e}")
        })
        .args
}

#[test]
fn default_render_runs_the_operator_as_the_controller_expects() {
    let rendered = Rendered::template("mp", "modelpilot-system", &[]);
    let version = env!("CARGO_PKG_VERSION");
    let args = parse_controller_args(&rendered);
    assert_eq!(
        args.server_image,
        format!("modelpilot/modelpilot:{version}")
    );
    assert_eq!(args.metrics_addr.to_string(), "0.0.0.0:8080");
    assert_eq!(args.log_format, LogFormat::Json);
    assert_eq!(args.log_level, "info");
    assert!(args.leader_elect);
    assert_eq!(args.lease_name, "mp-modelpilot");
    assert_eq!(args.namespace, None, "watches every namespace by default");

    let deployment = rendered.one("Deployment");
    assert_eq!(deployment["spec"]["replicas"], json!(2));
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], json!("mp-modelpilot"));
    let container = rendered.operator_container();
    assert_eq!(
        container["image"],
        json!(format!("modelpilot/modelpilot:{version}"))
    );
    for (name, field) in [
        ("POD_NAMESPACE", "metadata.namespace"),
        ("POD_NAME", "metadata.name"),
    ] {
        let env = container["env"].as_array().expect("env");
        let var = env
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(
            var["valueFrom"]["fieldRef"]["fieldPath"],
            json!(field),
            "{name}"
        );
    }
    assert_eq!(
        container["ports"][0],
        json!({"name": "metrics", "containerPort": 8080, "protocol": "TCP"})
    );
    assert_eq!(
        container["livenessProbe"]["httpGet"],
        json!({"path": "/healthz", "port": "metrics"})
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "metrics"})
    );
    assert_hardened(pod, container);

    let service = rendered.one("Service");
    assert_eq!(service["spec"]["ports"][0]["targetPort"], json!("metrics"));
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    assert_eq!(
        deployment["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"],
        json!(version)
    );
    assert_eq!(
        rendered.one("PodDisruptionBudget")["spec"]["minAvailable"],
        json!(1)
    );
    rbac::assert_least_privilege(&rendered, "mp-modelpilot", "modelpilot-system");
}

/// Non-root, read-only root filesystem, no privilege escalation, no capabilities, seccomp.
fn assert_hardened(pod: &Value, container: &Value) {
    let pod_sc = &pod["securityContext"];
    assert_eq!(pod_sc["runAsNonRoot"], json!(true), "{pod_sc}");
    assert_eq!(
        pod_sc["seccompProfile"]["type"],
        json!("RuntimeDefault"),
        "{pod_sc}"
    );
    let sc = &container["securityContext"];
    assert_eq!(sc["runAsNonRoot"], json!(true), "{sc}");
    assert_eq!(sc["readOnlyRootFilesystem"], json!(true), "{sc}");
    assert_eq!(sc["allowPrivilegeEscalation"], json!(false), "{sc}");
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{sc}");
    assert_eq!(
        sc["seccompProfile"]["type"],
        json!("RuntimeDefault"),
        "{sc}"
    );
}

#[test]
fn full_values_render_every_option() {
    let rendered = Rendered::template("ignored", "ml-platform", &["-f", FULL_VALUES]);
    let args = parse_controller_args(&rendered);
    assert_eq!(
        args.server_image,
        "registry.internal:5000/platform/modelpilot-server:0.1.0-gpu"
    );
    assert_eq!(args.metrics_addr.port(), 9090);
    assert_eq!(args.log_format, LogFormat::Text);
    assert_eq!(args.log_level, "info,modelpilot=debug");
    assert_eq!(args.lease_name, "mp-operator");
    let pod = &rendered.one("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], json!("mp-operator-sa"));
    assert_eq!(pod["nodeSelector"], json!({"kubernetes.io/os": "linux"}));
    assert_eq!(pod["tolerations"][0]["key"], json!("dedicated"));
    assert!(pod["affinity"]["podAntiAffinity"].is_object(), "{pod}");
    assert_eq!(
        pod["imagePullSecrets"],
        json!([{"name": "registry-credentials"}])
    );
    assert_hardened(pod, rendered.operator_container());
    rbac::assert_least_privilege(&rendered, "mp-operator", "ml-platform");
}

#[test]
fn the_operator_lists_pods_but_never_writes_them() {
    for extra in [&[][..], &["--set", "watchNamespace=models"][..]] {
        let rendered = Rendered::template("mp", "ops", extra);
        rbac::assert_pods_read_only(&rendered, "mp-modelpilot");
    }
}

#[test]
fn watch_namespace_narrows_the_operator_to_one_namespace() {
    let rendered = Rendered::template("mp", "ops", &["--set", "watchNamespace=models"]);
    assert_eq!(
        parse_controller_args(&rendered).namespace.as_deref(),
        Some("models")
    );
    assert!(
        rendered.all("ClusterRoleBinding").is_empty(),
        "no cluster-wide grant"
    );
    let binding = rendered.named("RoleBinding", "mp-modelpilot");
    assert_eq!(binding["metadata"]["namespace"], json!("models"));
    assert_eq!(binding["roleRef"]["kind"], json!("ClusterRole"));
}

#[test]
fn rbac_and_service_account_can_be_left_out() {
    let err = render::try_template(
        "mp",
        "ops",
        &[
            "--set",
            "rbac.create=false",
            "--set",
            "serviceAccount.create=false",
        ],
    )
    .expect_err("serviceAccount.name is required when the chart does not create it");
    assert!(err.contains("serviceAccount.name is required"), "{err}");
    let rendered = Rendered::template(
        "mp",
        "ops",
        &[
            "--set",
            "rbac.create=false",
            "--set",
            "serviceAccount.create=false",
            "--set",
            "serviceAccount.name=ops-sa",
        ],
    );
    for kind in [
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ] {
        assert!(
            rendered.all(kind).is_empty(),
            "{kind} rendered with rbac.create=false"
        );
    }
    let pod = &rendered.one("Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], json!("ops-sa"));
}

/// The API server accepts every object the chart renders (dry run, server-side apply), CRD included.
#[tokio::test]
async fn api_server_accepts_the_rendered_chart() {
    let ns = common::TestNamespace::create("chart").await;
    for values in [&[][..], &["-f", FULL_VALUES][..]] {
        let mut args = vec!["--include-crds"];
        args.extend_from_slice(values);
        let manifest = render::template_text("mp", &ns.name, &args);
        let out = run(
            kubectl().args([
                "apply",
                "--server-side",
                "--dry-run=server",
                "--field-manager=modelpilot-chart-test",
                "--namespace",
                &ns.name,
                "-f",
                "-",
            ]),
            Some(&manifest),
        );
        let rendered = Rendered::parse(&manifest);
        for doc in &rendered.docs {
            let name = doc["metadata"]["name"].as_str().unwrap_or_default();
            assert!(
                out.contains(&format!("/{name} serverside-applied (server dry run)")),
                "{values:?}: {name} not applied:\n{out}"
            );
        }
    }
    ns.delete().await;
}

/// The operator's ServiceAccount may do everything the operator does and nothing more.
#[tokio::test]
async fn rbac_grants_what_the_operator_needs_and_nothing_else() {
    let ns = common::TestNamespace::create("chart-rbac").await;
    rbac::check_against_api_server(&ns, &[]).await;
    ns.delete().await;
}

/// With `watchNamespace`, the grant holds in that namespace and nowhere else.
#[tokio::test]
async fn rbac_with_watch_namespace_is_scoped_to_it() {
    let ns = common::TestNamespace::create("chart-rbac-ns").await;
    let watch = format!("watchNamespace={}", ns.name);
    rbac::check_against_api_server(&ns, &["--set", &watch]).await;
    ns.delete().await;
}
