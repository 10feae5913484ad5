//! Drift- and accuracy-triggered retraining end to end, on real pods with real load: the
//! servers count live inputs and labelled feedback over a sliding window, the operator sums
//! those windows every interval and compares them with the model's baseline profile, and a
//! persistent finding runs the example training script (`examples/retraining/train.py`) as a
//! Job exactly once; its model goes through the canary and is promoted or rolled back.
//!
//! Needs `make cluster-up` (as root) and the Python test env (`eval "$(hack/pyenv.sh)"`).

mod canary_support;
mod common;
mod real_support;
mod retrain_support;
mod serve_support;

use std::time::Duration;

use canary_support::{Load, MODEL_NAME, START, status_now, wait_rollout};
use common::{TestNamespace, in_namespace, operator::OperatorProcess, plugin, with_controller};
use kube::api::PostParams;
use modelpilot::api::{ModelDeployment, ModelDeploymentStatus, RetrainPhase, TriggerReason};
use retrain_support::{Store, jobs, watched};
use serde_json::json;

/// Long enough for monitoring windows, a Job and a canary on 2 shared cores.
const STORY: Duration = Duration::from_secs(240);

/// Load from a data set's rows through the Service, labels posted as feedback.
fn load(ns: &TestNamespace, name: &str, csv: &std::path::Path, secs: u64) -> Load {
    Load::service(&ns.name, name, MODEL_NAME)
        .concurrency(2)
        .rate(40.0)
        .duration(Duration::from_secs(secs))
        .csv(csv, true)
        .start()
}

fn condition(s: &ModelDeploymentStatus, type_: &str) -> Option<String> {
    s.conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

fn last_record(s: &ModelDeploymentStatus) -> Option<&modelpilot::api::RetrainRecord> {
    s.retraining.as_ref().and_then(|r| r.history.last())
}

async fn create(ns: &TestNamespace, md: &ModelDeployment) -> kube::Api<ModelDeployment> {
    let api = ns.api::<ModelDeployment>();
    api.create(&PostParams::default(), md)
        .await
        .expect("create ModelDeployment");
    api
}

/// Waits until the first pod is ready and answers through the Service.
async fn serving(ns: &TestNamespace, mdeps: &kube::Api<ModelDeployment>, name: &str) {
    wait_rollout(mdeps, name, START, |s| s.ready_replicas >= 1).await;
    canary_support::wait_serving(ns, name).await;
}

fn monitoring_drift() -> serde_json::Value {
    json!({"intervalSeconds": 10,
           "drift": {"minSamples": 100, "persistence": {"windows": 2, "required": 2}}})
}

#[tokio::test]
async fn drift_retrains_once_promotes_and_clears_even_across_an_operator_kill() {
    let store = Store::start("drift");
    let v1 = store.first_model();
    in_namespace("mp-retrain-drift", |ns| async move {
        store.create_secret(&ns).await;
        let rollout = json!({"steps": [{"setWeight": 50}, {"pause": {"durationSeconds": 5}}],
                             "scaleDownDelaySeconds": 2});
        // The prediction shift too (the profile's `prediction`: v1's answers on its training rows).
        let mut monitoring = monitoring_drift();
        monitoring["prediction"] =
            json!({"minSamples": 100, "persistence": {"windows": 2, "required": 2}});
        let md = watched(
            "drift",
            &v1,
            rollout,
            monitoring,
            json!({"cooldownSeconds": 600}),
            "shifted",
            &[],
        );
        let mut operator = OperatorProcess::start(&ns.name, "first", 4);
        let mdeps = create(&ns, &md).await;
        serving(&ns, &mdeps, "drift").await;

        // In-distribution traffic: evaluations without drift, and no trigger.
        let calm = load(&ns, "drift", &store.csv("calm"), 40);
        let judged = wait_rollout(&mdeps, "drift", START, |s| {
            s.monitoring
                .as_ref()
                .and_then(|m| m.drift.as_ref())
                .is_some_and(|d| d.recent.len() >= 2)
        })
        .await
        .status
        .unwrap_or_default();
        let drift = judged
            .monitoring
            .as_ref()
            .and_then(|m| m.drift.clone())
            .unwrap_or_default();
        assert_eq!(drift.recent, [false, false], "{:#?}", judged.monitoring);
        assert_eq!(condition(&judged, "Drifted").as_deref(), Some("False"));
        assert!(last_record(&judged).is_none(), "{:#?}", judged.retraining);
        calm.interrupt().await;

        // Shifted traffic: Drifted within two windows, then exactly one Job.
        let shifted = load(&ns, "drift", &store.csv("shifted"), 200);
        let running = wait_rollout(&mdeps, "drift", STORY, |s| {
            last_record(s).is_some_and(|r| r.job.is_some())
        })
        .await
        .status
        .unwrap_or_default();
        assert_eq!(condition(&running, "Drifted").as_deref(), Some("True"));
        let shift = running
            .monitoring
            .as_ref()
            .and_then(|m| m.prediction.clone())
            .unwrap_or_default();
        assert!(
            shift.persistent,
            "shifted inputs shift v1's answers: {shift:#?}"
        );
        let record = last_record(&running).cloned().expect("a retraining");
        assert_eq!(
            (record.id, record.trigger.reason),
            (1, TriggerReason::Drift)
        );
        assert!(
            record
                .trigger
                .features
                .iter()
                .any(|f| f.starts_with("petal")),
            "{record:#?}"
        );

        // The operator dies while the Job runs; the next one carries on with the same Job.
        operator.kill().await;
        let _next = OperatorProcess::start(&ns.name, "second", 4);
        let done = wait_rollout(&mdeps, "drift", STORY, |s| {
            last_record(s).is_some_and(|r| r.phase.finished())
        })
        .await
        .status
        .unwrap_or_default();
        let record = last_record(&done).cloned().expect("a retraining");
        assert_eq!(record.phase, RetrainPhase::Promoted, "{record:#?}");
        let version = record.result.as_ref().and_then(|r| r.version.clone());
        assert_eq!(version.as_deref(), Some("retrain-1"));
        assert_eq!(
            done.stable.as_ref().and_then(|s| s.version.clone()),
            version
        );
        assert_eq!(jobs(&ns, "drift").await.len(), 1, "exactly one Job");

        // Against the new baseline the same traffic is in distribution: drift clears.
        let cleared = wait_rollout(&mdeps, "drift", STORY, |s| {
            s.monitoring.as_ref().is_some_and(|m| {
                Some(&m.revision) == s.stable.as_ref().map(|r| &r.name)
                    && m.drift.as_ref().is_some_and(|d| d.recent.len() >= 2)
            })
        })
        .await
        .status
        .unwrap_or_default();
        let drift = cleared
            .monitoring
            .as_ref()
            .and_then(|m| m.drift.clone())
            .unwrap_or_default();
        assert!(!drift.persistent, "{:#?}", cleared.monitoring);
        let shift = cleared
            .monitoring
            .as_ref()
            .and_then(|m| m.prediction.clone())
            .unwrap_or_default();
        assert!(!shift.persistent, "{shift:#?}");
        assert_eq!(condition(&cleared, "Drifted").as_deref(), Some("False"));
        assert_eq!(cleared.retraining.map(|r| r.history.len()), Some(1));
        shifted.interrupt().await;
    })
    .await;
}

#[tokio::test]
async fn degraded_accuracy_retrains_and_a_worse_model_is_rolled_back() {
    let store = Store::start("accuracy");
    let v1 = store.first_model();
    with_controller("mp-retrain-acc", |ns| async move {
        store.create_secret(&ns).await;
        let rollout = json!({
            "steps": [{"setWeight": 50}, {"pause": {"durationSeconds": 30}}],
            "analysis": [{"name": "accuracy", "intervalSeconds": 3, "count": 0, "failureLimit": 0,
                          "minSample": 20,
                          "accuracy": {"score": "accuracy", "bound": {"maxDecreaseFromStable": 0.1}}}]
        });
        let monitoring = json!({"intervalSeconds": 10,
            "accuracy": {"floor": 0.8, "minLabels": 50, "persistence": {"windows": 2, "required": 2}}});
        let md = watched(
            "acc",
            &v1,
            rollout,
            monitoring,
            json!({"cooldownSeconds": 600}),
            "relabelled",
            &["--degrade"],
        );
        let mdeps = create(&ns, &md).await;
        serving(&ns, &mdeps, "acc").await;
        let traffic = load(&ns, "acc", &store.csv("relabelled"), 200);
        let done = wait_rollout(&mdeps, "acc", STORY, |s| {
            last_record(s).is_some_and(|r| r.phase.finished())
        })
        .await
        .status
        .unwrap_or_default();
        traffic.interrupt().await;
        let record = last_record(&done).cloned().expect("a retraining");
        assert_eq!(record.trigger.reason, TriggerReason::AccuracyDegraded);
        assert_eq!(record.phase, RetrainPhase::RolledBack, "{record:#?}");
        assert!(record.message.contains("rolled back"), "{}", record.message);
        assert_eq!(done.stable.as_ref().and_then(|s| s.version.as_deref()), Some("v1"));
        let accuracy = done.monitoring.as_ref().and_then(|m| m.accuracy.clone()).unwrap_or_default();
        assert!(accuracy.value.is_some_and(|v| v < 0.8), "{accuracy:#?}");
        let h = done.history.last().expect("rollout history");
        assert_eq!(h.outcome, modelpilot::api::Outcome::RolledBack);
        assert_eq!(jobs(&ns, "acc").await.len(), 1);

        // Within the cooldown no trigger fires, but a person may ask for one.
        let asked = plugin::command(&ns, &["retrain", "acc", "--wait", "60"])
            .output()
            .await
            .expect("run the plugin");
        assert!(asked.status.success(), "{}", plugin::report(&asked));
        assert!(plugin::text(&asked.stdout).contains("retraining 2 started"), "{}", plugin::report(&asked));
        let now = status_now(&mdeps, "acc").await;
        let manual = last_record(&now).cloned().expect("the requested retraining");
        assert_eq!((manual.id, manual.trigger.reason), (2, TriggerReason::Manual));
        assert_eq!(manual.job.as_deref(), Some("acc-retrain-2"));
    })
    .await;
}

#[tokio::test]
async fn a_failing_job_waits_for_approval_is_recorded_and_respects_the_cooldown() {
    let store = Store::start("failing");
    let v1 = store.first_model();
    with_controller("mp-retrain-fail", |ns| async move {
        store.create_secret(&ns).await;
        let cooldown = 30;
        let md = watched(
            "failing",
            &v1,
            json!({"steps": [{"setWeight": 50}]}),
            monitoring_drift(),
            json!({"cooldownSeconds": cooldown, "approval": true}),
            "shifted",
            &["--fail"],
        );
        let mdeps = create(&ns, &md).await;
        serving(&ns, &mdeps, "failing").await;
        let traffic = load(&ns, "failing", &store.csv("shifted"), 200);
        let waiting = wait_rollout(&mdeps, "failing", STORY, |s| last_record(s).is_some())
            .await
            .status
            .unwrap_or_default();
        assert_eq!(
            last_record(&waiting).map(|r| r.phase),
            Some(RetrainPhase::AwaitingApproval)
        );
        assert!(
            jobs(&ns, "failing").await.is_empty(),
            "no Job before approval"
        );
        let approved = plugin::command(&ns, &["approve", "failing", "--wait", "60"])
            .output()
            .await
            .expect("run the plugin");
        assert!(approved.status.success(), "{}", plugin::report(&approved));
        let failed = wait_rollout(&mdeps, "failing", STORY, |s| {
            last_record(s).is_some_and(|r| r.phase.finished())
        })
        .await
        .status
        .unwrap_or_default();
        let first = last_record(&failed).cloned().expect("a retraining");
        assert_eq!(first.phase, RetrainPhase::Failed, "{first:#?}");
        assert!(first.message.contains("Job failed"), "{}", first.message);
        // Drift goes on: the next trigger comes only after the cooldown.
        let second = wait_rollout(&mdeps, "failing", STORY, |s| {
            s.retraining.as_ref().is_some_and(|r| r.last_id >= 2)
        })
        .await
        .status
        .unwrap_or_default();
        traffic.interrupt().await;
        let record = last_record(&second).cloned().expect("a second retraining");
        let ended = first
            .finished_at
            .map(|t| t.0.as_second())
            .unwrap_or_default();
        let next = record.trigger.at.0.as_second();
        assert!(
            next - ended >= cooldown,
            "second trigger {next} only {}s after {ended}",
            next - ended
        );
        let now = status_now(&mdeps, "failing").await;
        assert_eq!(now.retraining.map(|r| r.history.len()), Some(2));
    })
    .await;
}
