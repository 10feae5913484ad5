//! Table-driven tests of the Deployment builder.

use clap::Parser;
use serde_json::json;

use super::*;
use crate::build::{
    fixtures::{manifest, valid},
    server::{CONTAINER_NAME, args},
};
use crate::validate::ValidSpec;

/// Where the server container ended up in the pod.
#[derive(Debug, PartialEq)]
enum Placement {
    Container,
    NativeSidecar,
}

fn placement(d: &Deployment) -> Placement {
    let pod = pod_spec(d);
    let in_containers = pod.containers.iter().any(|c| c.name == CONTAINER_NAME);
    let sidecar = pod
        .init_containers
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.name == CONTAINER_NAME);
    match (in_containers, sidecar) {
        (true, None) => Placement::Container,
        (false, Some(c)) if c.restart_policy.as_deref() == Some("Always") => {
            Placement::NativeSidecar
        }
        other => panic!("server placed wrongly: {other:?}"),
    }
}

fn server_container(d: &Deployment) -> k8s_openapi::api::core::v1::Container {
    let pod = pod_spec(d);
    pod.containers
        .into_iter()
        .chain(pod.init_containers.unwrap_or_default())
        .find(|c| c.name == CONTAINER_NAME)
        .expect("server container present")
}

fn build_stable(spec: &ValidSpec) -> Deployment {
    build(spec, labels::Track::Stable, spec.replicas)
}

#[test]
fn deployment_is_named_and_selects_by_revision() {
    let spec = valid(manifest());
    let d = build(&spec, labels::Track::Canary, 2);
    assert_eq!(d.metadata.name, Some(format!("iris-{}", spec.revision)));
    assert_eq!(d.spec.replicas, Some(2));
    let selector = d.spec.selector.match_labels.clone().unwrap_or_default();
    assert_eq!(selector, labels::revision_selector(&spec));
    let object_labels = d.metadata.labels.clone().unwrap_or_default();
    assert_eq!(object_labels[labels::TRACK], "canary");
}

#[test]
fn server_placement_table() {
    let user_pod = json!({"spec": {"containers": [{"name": "app", "image": "app:1"}],
                                   "initContainers": [{"name": "prep", "image": "prep:1"}]}});
    let cases = [
        (
            "no template: server alone",
            None,
            Placement::Container,
            vec![CONTAINER_NAME],
        ),
        (
            "template: native sidecar after user init",
            Some(user_pod),
            Placement::NativeSidecar,
            vec!["app"],
        ),
    ];
    for (name, template, want, containers) in cases {
        let mut m = manifest();
        if let Some(t) = template {
            m["spec"]["template"] = t;
        }
        let d = build_stable(&valid(m));
        assert_eq!(placement(&d), want, "{name}");
        let pod = pod_spec(&d);
        let names: Vec<_> = pod.containers.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, containers, "{name}");
        if want == Placement::NativeSidecar {
            let inits: Vec<_> = pod
                .init_containers
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.name)
                .collect();
            assert_eq!(
                inits,
                ["prep", CONTAINER_NAME],
                "{name}: server runs after user init"
            );
        }
    }
}

#[test]
fn model_source_table() {
    // (uri, URI given to the server, PVC claim mounted)
    let cases = [
        ("s3://models/iris/v1.onnx", "s3://models/iris/v1.onnx", None),
        (
            "https://models.example.com/iris.onnx",
            "https://models.example.com/iris.onnx",
            None,
        ),
        (
            "file:///opt/models/iris.onnx",
            "file:///opt/models/iris.onnx",
            None,
        ),
        (
            "pvc://model-store/iris/v2.onnx",
            "file:///mnt/models/iris/v2.onnx",
            Some("model-store"),
        ),
    ];
    for (uri, served, claim) in cases {
        let mut m = manifest();
        m["spec"]["model"]["uri"] = uri.into();
        let d = build_stable(&valid(m));
        let c = server_container(&d);
        let a = c.args.clone().unwrap_or_default();
        let pos = a.iter().position(|x| x == "--model-uri").expect("flag");
        assert_eq!(a[pos + 1], served, "{uri}");
        let mounted_claim = pod_spec(&d)
            .volumes
            .unwrap_or_default()
            .into_iter()
            .find_map(|v| {
                v.persistent_volume_claim
                    .map(|p| (p.claim_name, p.read_only))
            });
        assert_eq!(
            mounted_claim,
            claim.map(|c| (c.to_owned(), Some(true))),
            "{uri}"
        );
    }
}

#[test]
fn server_is_locked_down_and_probed() {
    let c = server_container(&build_stable(&valid(manifest())));
    let sc = c.security_context.expect("security context");
    assert_eq!(sc.run_as_non_root, Some(true));
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    let path = |p: Option<k8s_openapi::api::core::v1::Probe>| {
        p.and_then(|p| p.http_get).and_then(|h| h.path)
    };
    assert_eq!(path(c.readiness_probe).as_deref(), Some("/v2/health/ready"));
    assert_eq!(path(c.liveness_probe).as_deref(), Some("/v2/health/live"));
    let mounts: Vec<_> = c
        .volume_mounts
        .unwrap_or_default()
        .into_iter()
        .map(|m| m.mount_path)
        .collect();
    assert!(mounts.contains(&server::CACHE_DIR.to_owned()), "{mounts:?}");
}

/// New capacity is seen within a second of its model being ready: the startup probe asks the
/// readiness endpoint every second (the kubelet probes readiness as soon as startup passes),
/// and gives up only after the server's own download timeouts would have, so a stuck download
/// ends with the server's message. Started servers are probed at calmer periods.
#[test]
fn probes_see_new_capacity_within_a_second_and_outlast_the_download() {
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(clap::Subcommand)]
    enum Cmd {
        Serve(crate::serve::ServeArgs),
    }
    let spec = valid(manifest());
    let c = server_container(&build_stable(&spec));
    let cases = [
        ("startup", c.startup_probe, ("/v2/health/ready", 1, 1200)),
        ("readiness", c.readiness_probe, ("/v2/health/ready", 5, 3)),
        ("liveness", c.liveness_probe, ("/v2/health/live", 10, 3)),
    ];
    for (name, probe, (path, period, failures)) in cases {
        let p = probe.expect(name);
        let got = (
            p.http_get.and_then(|h| h.path),
            p.period_seconds,
            p.failure_threshold,
            p.initial_delay_seconds,
        );
        let want = (Some(path.to_owned()), Some(period), Some(failures), None);
        assert_eq!(got, want, "{name} probe");
    }

    let argv = std::iter::once("modelpilot".to_owned()).chain(args(&spec));
    let Cmd::Serve(serve) = Cli::try_parse_from(argv).expect("server flags").cmd;
    let server_gives_up =
        serve.download.connect_timeout_secs + serve.download.download_timeout_secs;
    let budget = u64::try_from(crate::build::server::STARTUP_BUDGET_SECS).expect("positive");
    assert!(
        budget >= server_gives_up + 5 * 60,
        "startup budget {budget} s leaves under 5 min to load after a {server_gives_up} s download"
    );
}

#[test]
fn revision_changes_with_the_model_not_with_replicas() {
    let base = valid(manifest());
    let mut scaled = manifest();
    scaled["spec"]["replicas"] = 7.into();
    let mut new_model = manifest();
    new_model["spec"]["model"]["uri"] = "s3://models/iris/v2.onnx".into();
    let mut new_threads = manifest();
    new_threads["spec"]["server"] = json!({"threads": 2});
    assert_eq!(valid(scaled).revision, base.revision);
    assert_ne!(valid(new_model).revision, base.revision);
    assert_ne!(valid(new_threads).revision, base.revision);
    assert_eq!(base.revision.len(), 10);
}

#[test]
fn builders_are_deterministic() {
    let mut m = manifest();
    m["spec"]["template"] = json!({"metadata": {"annotations": {"b": "2", "a": "1"}},
                                   "spec": {"containers": [{"name": "app", "image": "app:1"}]}});
    assert_eq!(build_stable(&valid(m.clone())), build_stable(&valid(m)));
}

/// The command line the operator writes must be one the server accepts.
#[test]
fn server_args_parse_with_the_servers_own_cli() {
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(clap::Subcommand)]
    enum Cmd {
        Serve(crate::serve::ServeArgs),
    }
    let mut m = manifest();
    m["spec"]["model"]["sha256"] = "AB".repeat(32).into();
    m["spec"]["model"]["version"] = "v3".into();
    m["spec"]["server"] = json!({"threads": 3, "graphOptimizationLevel": "basic", "port": 9000,
                                 "batching": {"maxBatchSize": 16, "maxQueueDelayMs": 4}});
    let spec = valid(m);
    let argv = std::iter::once("modelpilot".to_owned()).chain(args(&spec));
    if let Err(err) = Cli::try_parse_from(argv) {
        panic!("server rejects the operator's flags: {err}");
    }

    // The environment the builder sets is read by the flags it is meant for, and the
    // termination message path is where the server writes by default.
    use clap::CommandFactory;
    let command = Cli::command();
    let serve = command.find_subcommand("serve").expect("serve subcommand");
    let flag_of = |env: &str| {
        serve
            .get_arguments()
            .find(|a| a.get_env().is_some_and(|e| e == env))
            .map(|a| a.get_id().to_string())
    };
    let envs: Vec<String> = server_container(&build_stable(&spec))
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.name)
        .collect();
    for (env, flag) in [
        ("POD_NAME", "pod_name"),
        ("MODELPILOT_REVISION", "revision"),
    ] {
        assert!(envs.iter().any(|e| e == env), "{env} not set: {envs:?}");
        assert_eq!(flag_of(env).as_deref(), Some(flag), "{env}");
    }
    let default_path = serve
        .get_arguments()
        .find(|a| a.get_id() == "termination_message_path")
        .map(|a| a.get_default_values().to_vec());
    assert_eq!(
        default_path,
        Some(vec![server::TERMINATION_MESSAGE_PATH.into()])
    );
}

#[test]
fn server_knows_its_pod_and_reports_failures() {
    let spec = valid(manifest());
    let c = server_container(&build_stable(&spec));
    let env: Vec<(String, Option<String>)> = c
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|e| {
            let path = e.value_from.and_then(|v| v.field_ref).map(|f| f.field_path);
            (e.name, path)
        })
        .collect();
    let want = [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
        (
            "MODELPILOT_REVISION",
            "metadata.labels['modelpilot.io/revision']",
        ),
    ];
    let want: Vec<(String, Option<String>)> = want
        .iter()
        .map(|(n, p)| ((*n).to_owned(), Some((*p).to_owned())))
        .collect();
    assert_eq!(env, want);
    assert_eq!(
        c.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    assert_eq!(
        c.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    // The label the revision comes from is on the pod.
    let labels = build_stable(&spec)
        .spec
        .template
        .metadata
        .and_then(|m| m.labels)
        .unwrap_or_default();
    assert_eq!(
        labels.get(crate::build::labels::REVISION),
        Some(&spec.revision)
    );
}

#[test]
fn scrape_annotations_table() {
    let scrape = |port: &str| {
        vec![
            ("prometheus.io/path", "/metrics".to_owned()),
            ("prometheus.io/port", port.to_owned()),
            ("prometheus.io/scrape", "true".to_owned()),
        ]
    };
    let with = |extra: &[(&'static str, &str)]| {
        let mut all = scrape("8080");
        for (k, v) in extra {
            all.retain(|(key, _)| key != k);
            all.push((*k, (*v).to_owned()));
        }
        all.sort();
        all
    };
    let app = json!([{"name": "app", "image": "app:1"}]);
    // (case, server block, template, annotations)
    let cases = [
        ("no template", json!(null), json!(null), scrape("8080")),
        (
            "server port",
            json!({"port": 9000}),
            json!(null),
            scrape("9000"),
        ),
        (
            "user annotations kept",
            json!(null),
            json!({"metadata": {"annotations": {"team": "risk"}}, "spec": {"containers": app}}),
            with(&[("team", "risk")]),
        ),
        (
            "user's own scrape settings win",
            json!(null),
            json!({"metadata": {"annotations": {"prometheus.io/scrape": "false",
                                                "prometheus.io/port": "9102"}},
                   "spec": {"containers": app}}),
            with(&[
                ("prometheus.io/scrape", "false"),
                ("prometheus.io/port", "9102"),
            ]),
        ),
    ];
    for (case, server, template, want) in cases {
        let mut m = manifest();
        if !server.is_null() {
            m["spec"]["server"] = server;
        }
        if !template.is_null() {
            m["spec"]["template"] = template;
        }
        let annotations = build_stable(&valid(m))
            .spec
            .template
            .metadata
            .and_then(|m| m.annotations)
            .unwrap_or_default();
        let got: Vec<(&str, String)> = annotations
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        assert_eq!(got, want, "{case}");
    }
}
