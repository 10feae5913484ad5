//! Canary rollouts end to end, on real pods under real load: the load generator through the
//! Service while a candidate model is shifted in steps, judged against the stable revision on
//! its live metrics, and promoted or rolled back with nobody watching. One test per case, with
//! short intervals so the suite stays fast.
//!
//! Needs `make cluster-up` (as root) and the Python test env (`eval "$(hack/pyenv.sh)"`).

mod canary_support;
mod common;
mod real_support;
mod serve_support;

use std::time::{Duration, Instant};

use canary_support::*;
use common::{TestNamespace, with_controller};
use modelpilot::api::{ModelDeploymentStatus, Outcome, RolloutPhase};
use serde_json::json;

/// Labelled load through the Service (feedback on), bounded in time.
fn load(ns: &TestNamespace, name: &str, rate: f64, secs: u64) -> Load {
    Load::service(&ns.name, name, MODEL_NAME)
        .concurrency(4)
        .rate(rate)
        .duration(Duration::from_secs(secs))
        .csv(&eval_csv(), true)
        .start()
}

fn history_outcome(s: &ModelDeploymentStatus) -> Option<(Outcome, &str)> {
    s.history.last().map(|h| (h.outcome, h.reason.as_str()))
}

#[tokio::test]
async fn a_good_model_is_promoted_through_every_step() {
    let models = Models::upload().await;
    with_controller("mp-canary-good", |ns| async move {
        let rollout = json!({
            "steps": [
                {"setWeight": 50},
                {"analysis": {"metrics": [
                    {"name": "errors", "intervalSeconds": 3, "count": 2, "minSample": 10,
                     "errorRate": {"maxIncreaseOverStable": 0.05}},
                    // p90, not p99: a 3 s window holds ~90 requests per revision, so its p99 is
                    // its slowest request, and one scheduling stall on 2 shared cores (0.27 s
                    // against 0.05 s, seen once in a fresh-clone run) fails a good model.
                    {"name": "p90", "intervalSeconds": 3, "count": 2, "minSample": 10,
                     "latency": {"quantile": 0.9, "bound": {"maxRatioToStable": 5.0, "max": 1.0}}}
                ]}},
                {"pause": {"durationSeconds": 2}}
            ],
            "scaleDownDelaySeconds": 2
        });
        let mdeps = stable_v1(&ns, &models, "good", 2, rollout).await;
        let traffic = load(&ns, "good", 60.0, 90);
        let v2 = models.get("iris_v2.onnx");
        set_model(&mdeps, "good", &v2.uri, &v2.sha256, "v2").await;
        let done = wait_rollout(&mdeps, "good", START, |s| {
            s.history.last().is_some_and(|h| {
                h.revision.version.as_deref() == Some("v2") && h.outcome != Outcome::Superseded
            })
        })
        .await;
        let report = traffic.interrupt().await;
        let status = done.status.unwrap_or_default();
        assert_eq!(
            history_outcome(&status),
            Some((Outcome::Promoted, "Promoted")),
            "{:#?}",
            status.history
        );
        assert_eq!(
            status.stable.as_ref().and_then(|s| s.version.as_deref()),
            Some("v2")
        );
        let rollout = status.rollout.clone().unwrap_or_default();
        assert_eq!(rollout.phase, RolloutPhase::Stable);
        // Both revisions served while the canary ran; no request failed.
        assert_eq!(report.by_revision.len(), 2, "{report:#?}");
        assert_eq!(report.overall.errors, 0, "{report:#?}");
        // The old revision's pods go after the scale-down delay.
        let stable = status.stable.clone().unwrap_or_default();
        wait_rollout(&mdeps, "good", START, move |s| {
            s.replicas == 2 && s.stable.as_ref().is_some_and(|r| r.name == stable.name)
        })
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_failing_model_is_rolled_back_within_the_failure_budget() {
    let models = Models::upload().await;
    with_controller("mp-canary-fail", |ns| async move {
        let interval = 3;
        let failure_limit = 1;
        let rollout = json!({
            "steps": [{"setWeight": 50}, {"pause": {}}],
            "analysis": [{"name": "errors", "intervalSeconds": interval, "count": 0,
                          "failureLimit": failure_limit, "minSample": 10,
                          "errorRate": {"maxIncreaseOverStable": 0.005}}]
        });
        let mdeps = stable_v1(&ns, &models, "failing", 2, rollout).await;
        let traffic = load(&ns, "failing", 60.0, 120);
        let bad = models.get("iris_failing.onnx");
        set_model(&mdeps, "failing", &bad.uri, &bad.sha256, "v2").await;
        let aborted = wait_rollout(&mdeps, "failing", START, |s| {
            s.rollout
                .as_ref()
                .is_some_and(|r| r.phase == RolloutPhase::Aborted)
        })
        .await;
        let status = aborted.status.unwrap_or_default();
        let rollout = status.rollout.clone().unwrap_or_default();
        let metric = rollout
            .metrics
            .iter()
            .find(|m| m.name == "errors")
            .expect("errors metric");
        let first_failed = metric
            .measurements
            .iter()
            .find(|m| m.verdict == modelpilot::api::MeasurementVerdict::Failed)
            .map(|m| m.at.0)
            .expect("a failed measurement");
        let aborted_at = rollout.abort.as_ref().map(|a| a.at.0).expect("abort time");
        // Traffic back on stable: the canary's pods leave the Service.
        let started = Instant::now();
        let canary = rollout.canary.clone().unwrap_or_default().name;
        real_support::wait_pods(
            &ns.api(),
            &format!("modelpilot.io/name=failing,modelpilot.io/revision={canary}"),
            START,
            "no canary pods",
            |ps| ps.is_empty(),
        )
        .await;
        let back = aborted_at.as_millisecond() - first_failed.as_millisecond()
            + i64::try_from(started.elapsed().as_millis()).unwrap_or(0);
        let budget = interval * (failure_limit + 1) * 1000 + 5000;
        eprintln!("first failing measurement → canary pods gone: {back} ms (budget {budget} ms)");
        assert!(
            i64::from(budget) >= back,
            "took {back} ms, budget {budget} ms"
        );
        let report = traffic.interrupt().await;
        assert!(
            report.overall.errors > 0,
            "the failing model did fail requests"
        );
        assert_eq!(
            history_outcome(&status),
            Some((Outcome::RolledBack, "AnalysisFailed"))
        );
        assert_eq!(status.stable.and_then(|s| s.version), Some("v1".into()));
    })
    .await;
}

#[tokio::test]
async fn prometheus_metrics_and_a_business_query_judge_the_canary() {
    let Some(prometheus) = real_support::prometheus_url() else {
        panic!("no Prometheus in .cluster/run/ports.env: run `make cluster-up`");
    };
    let models = Models::upload().await;
    with_controller("mp-canary-prom", |ns| async move {
        // Prometheus scrapes every 2 s: windows of 10 s hold several scrapes per pod.
        let rollout = json!({
            "prometheus": {"url": prometheus, "timeoutSeconds": 5},
            "steps": [
                {"setWeight": 50},
                {"analysis": {"metrics": [
                    {"name": "prom-errors", "source": "Prometheus", "intervalSeconds": 10,
                     "count": 1, "minSample": 10, "inconclusiveLimit": 3,
                     "errorRate": {"maxIncreaseOverStable": 0.01}},
                    {"name": "served-rate", "intervalSeconds": 10, "count": 1,
                     "inconclusiveLimit": 3,
                     "query": {"promql": "sum(rate(modelpilot_inference_requests_total{namespace=\"$namespace\",revision=\"$revision\",endpoint=\"infer\",code=\"200\"}[20s]))",
                               "success": {"min": 1.0}}}
                ]}}
            ],
            "scaleDownDelaySeconds": 1
        });
        let mdeps = stable_v1(&ns, &models, "prom", 2, rollout).await;
        let traffic = load(&ns, "prom", 40.0, 120);
        let v2 = models.get("iris_v2.onnx");
        set_model(&mdeps, "prom", &v2.uri, &v2.sha256, "v2").await;
        let done = wait_rollout(&mdeps, "prom", START, |s| {
            s.history.last().is_some_and(|h| h.revision.version.as_deref() == Some("v2"))
        })
        .await;
        traffic.interrupt().await;
        let status = done.status.unwrap_or_default();
        // `count: 1` counts conclusive measurements: the analysis step only ends on a Successful
        // one from each source (a Failed one rolls back), so the promotion shows both the
        // Prometheus-measured error rate and the PromQL query judged the canary.
        assert_eq!(
            history_outcome(&status),
            Some((Outcome::Promoted, "Promoted")),
            "{:#?}",
            status.history
        );
    })
    .await;
}
