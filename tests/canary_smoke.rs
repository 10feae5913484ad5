//! The ground the canary rollout end-to-end tests stand on, checked on its own: the candidate
//! models in the S3-compatible source with their digests, a ModelDeployment built by
//! `canary_support` (its rollout section accepted by the API server's schema and CEL rules),
//! real servers behind the Service, the real load generator through the ClusterIP with label
//! feedback, and a new revision by patching `spec.model` while load runs.
//!
//! The ModelDeployment served here has no rollout section: this does not wait for the rollout
//! controller.
//! Needs `make cluster-up` (as root) and the Python test env (`eval "$(hack/pyenv.sh)"`).

mod canary_support;
mod common;
mod real_support;
mod serve_support;

use std::{collections::BTreeSet, time::Duration};

use canary_support::*;
use common::{TestNamespace, with_controller};
use k8s_openapi::api::core::v1::Pod;
use kube::{Api, ResourceExt, api::PostParams};
use modelpilot::api::{ModelDeployment, ModelDeploymentStatus, RolloutPhase};
use real_support::{is_ready, wait_pods};
use serde_json::json;

/// Start-up on real pods includes the model download and load: allow for a loaded machine.
const START: Duration = Duration::from_secs(120);

/// A rollout section using every kind of step and a background analysis.
fn rollout() -> serde_json::Value {
    json!({
        "steps": [
            {"setWeight": 25},
            {"analysis": {"metrics": [
                {"name": "errors", "intervalSeconds": 5, "count": 2, "errorRate": {"max": 0.05}},
                {"name": "p99", "latency": {"quantile": 0.99, "bound": {"maxRatioToStable": 2.0}}}
            ]}},
            {"setWeight": 50},
            {"pause": {"durationSeconds": 10}},
            {"pause": {}}
        ],
        "analysis": [{"name": "accuracy", "minSample": 50,
                      "accuracy": {"score": "accuracy", "bound": {"maxDecreaseFromStable": 0.05}}}],
        "scaleDownDelaySeconds": 5
    })
}

/// Ready with every pod on the revision of `generation`, which runs model `version`.
fn settled(generation: i64, version: &'static str) -> impl Fn(&ModelDeploymentStatus) -> bool {
    move |s| {
        s.observed_generation >= Some(generation)
            && revision_version(s) == Some(version)
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    }
}

/// The names and revision labels of the live pods `selector` selects, once `n` are all ready.
async fn ready_pods(
    ns: &TestNamespace,
    selector: &str,
    n: usize,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let pods = wait_pods(
        &ns.api::<Pod>(),
        selector,
        START,
        &format!("{n} ready pods ({selector})"),
        |ps| ps.len() == n && ps.iter().all(is_ready),
    )
    .await;
    let names = pods.iter().map(|p| p.name_any()).collect();
    let revisions = pods
        .iter()
        .filter_map(|p| p.labels().get("modelpilot.io/revision").cloned())
        .collect();
    (names, revisions)
}

#[tokio::test]
async fn canary_support_serves_candidates_and_drives_real_load() {
    let models = Models::upload().await;
    with_controller("mp-canary-smoke", |ns| async move {
        let mdeps: Api<ModelDeployment> = ns.api();
        models.create_secret(&ns).await;
        let (iris, v2) = (models.get("iris.onnx"), models.get("iris_v2.onnx"));
        assert_ne!(iris.sha256, v2.sha256);

        // The builder's rollout section passes the API server's validation (dry run: the
        // controller does not run rollouts yet).
        let dry = PostParams {
            dry_run: true,
            ..Default::default()
        };
        let candidate = mdep_with_rollout("dry", &iris.uri, &iris.sha256, "v1", rollout());
        mdeps
            .create(&dry, &candidate)
            .await
            .expect("rollout section accepted");

        let mut md = mdep("iris", &iris.uri, &iris.sha256, "v1");
        md.spec.replicas = 2;
        let created = mdeps
            .create(&PostParams::default(), &md)
            .await
            .expect("create ModelDeployment");
        let generation = created.metadata.generation.unwrap_or(1);
        let ready = wait_rollout(&mdeps, "iris", START, settled(generation, "v1")).await;
        let status = ready.status.unwrap_or_default();
        assert_eq!(rollout_phase(&status), RolloutPhase::Stable);
        let (pods, revisions) = ready_pods(&ns, "modelpilot.io/name=iris", 2).await;
        wait_serving(&ns, "iris").await;

        // Labelled rows through the ClusterIP: every request answered by a pod of the
        // revision, every label accepted by the pod that made the prediction.
        let report = Load::service(&ns.name, "iris", MODEL_NAME)
            .requests(200)
            .rate(50.0)
            .duration(Duration::from_secs(30))
            .csv(&eval_csv(), true)
            .start()
            .finish()
            .await;
        eprintln!("{report:#?}");
        assert_eq!(report.stopped_by, "requests");
        assert_eq!(
            (report.overall.ok, report.overall.errors),
            (200, 0),
            "{report:?}"
        );
        assert_eq!(report.answered_by_pods(), 200);
        let answering: BTreeSet<String> = report.by_pod.keys().cloned().collect();
        assert!(answering.is_subset(&pods), "{answering:?} not in {pods:?}");
        let answered_revisions: BTreeSet<String> = report.by_revision.keys().cloned().collect();
        assert_eq!(answered_revisions, revisions);
        let revision = revisions.first().cloned().unwrap_or_default();
        assert_eq!(report.revision_share(&revision), 1.0);
        let feedback = report.overall.feedback.clone().expect("feedback counts");
        assert_eq!((feedback.sent, feedback.accepted), (200, 200), "{report:?}");

        // A new revision by patching spec.model, while load runs.
        let load = Load::service(&ns.name, "iris", MODEL_NAME)
            .rate(20.0)
            .duration(Duration::from_secs(300))
            .start();
        let patched = set_model(&mdeps, "iris", &v2.uri, &v2.sha256, "v2").await;
        let generation = patched.metadata.generation.unwrap_or_default();
        let settled_v2 = wait_rollout(&mdeps, "iris", START, settled(generation, "v2")).await;
        let status = settled_v2.status.unwrap_or_default();
        let revision = status.revision.expect("status.revision");
        assert_eq!(revision.uri, v2.uri, "status.revision follows spec.model");
        assert!(!revisions.contains(&revision.name), "a new revision");
        let selector = format!(
            "modelpilot.io/name=iris,modelpilot.io/revision={}",
            revision.name
        );
        ready_pods(&ns, &selector, 2).await;
        let report = load.interrupt().await;
        eprintln!("{report:#?}");
        assert_eq!(report.stopped_by, "interrupted");
        assert!(report.overall.ok > 0, "{report:?}");
    })
    .await;
}
