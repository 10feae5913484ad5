//! Table-driven tests of the pure status stage.

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::{controller::pods::PodProblem, validate::SpecError};

fn view(desired: i32, replicas: i32, ready: i32, updated: i32) -> DeploymentView {
    DeploymentView {
        desired,
        replicas,
        ready,
        updated,
        available: ready,
        observed: true,
        ..Default::default()
    }
}

fn time(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

/// (case, view, error, Ready, Progressing, Degraded reason, phase)
type Case<'a> = (
    &'a str,
    Option<DeploymentView>,
    Option<&'a Error>,
    &'a str,
    &'a str,
    &'a str,
    Phase,
);

#[test]
fn condition_table() {
    let invalid = Error::Spec(SpecError::Sha256);
    let stalled = DeploymentView {
        stalled: Some("deadline".into()),
        ..view(2, 3, 2, 1)
    };
    let quota = DeploymentView {
        replica_failure: Some("exceeded quota".into()),
        ..view(2, 0, 0, 0)
    };
    let failing = |v: DeploymentView, reason: &'static str| DeploymentView {
        pods: Some(PodProblem {
            reason,
            message: format!("{reason} details"),
        }),
        ..v
    };
    // (case, view, error, Ready, Progressing, Degraded reason, phase)
    let cases: Vec<Case> = vec![
        (
            "nothing yet",
            None,
            None,
            "NoDeployment",
            "Creating",
            "AsExpected",
            Phase::Progressing,
        ),
        (
            "pods starting",
            Some(view(3, 3, 1, 3)),
            None,
            "ReplicasNotReady",
            "RollingOut",
            "AsExpected",
            Phase::Progressing,
        ),
        (
            "all ready",
            Some(view(3, 3, 3, 3)),
            None,
            "AllReplicasReady",
            "RolloutComplete",
            "AsExpected",
            Phase::Ready,
        ),
        (
            "new model rolling",
            Some(view(3, 4, 3, 1)),
            None,
            "MinimumReplicasReady",
            "RollingOut",
            "AsExpected",
            Phase::Progressing,
        ),
        (
            "scaled to zero",
            Some(view(0, 0, 0, 0)),
            None,
            "ScaledToZero",
            "RolloutComplete",
            "AsExpected",
            Phase::Ready,
        ),
        (
            "invalid spec, old pods fine",
            Some(view(2, 2, 2, 2)),
            Some(&invalid),
            "AllReplicasReady",
            "RolloutComplete",
            "InvalidSpec",
            Phase::Degraded,
        ),
        (
            "stalled rollout",
            Some(stalled.clone()),
            None,
            "MinimumReplicasReady",
            "ProgressDeadlineExceeded",
            "RolloutStalled",
            Phase::Degraded,
        ),
        (
            "quota",
            Some(quota.clone()),
            None,
            "ReplicasNotReady",
            "RollingOut",
            "ReplicaFailure",
            Phase::Degraded,
        ),
        (
            "model fails to load",
            Some(failing(view(1, 1, 0, 1), "ModelLoadFailed")),
            None,
            "ModelLoadFailed",
            "RollingOut",
            "ModelLoadFailed",
            Phase::Degraded,
        ),
        (
            "bad new revision while old pods serve: not Ready",
            Some(failing(view(2, 3, 2, 1), "CrashLoopBackOff")),
            None,
            "CrashLoopBackOff",
            "RollingOut",
            "CrashLoopBackOff",
            Phase::Degraded,
        ),
        (
            "stalled with pods not ready: the pods say why",
            Some(failing(stalled.clone(), "PodsNotReady")),
            None,
            "PodsNotReady",
            "ProgressDeadlineExceeded",
            "PodsNotReady",
            Phase::Degraded,
        ),
        (
            "quota beats a pod problem",
            Some(failing(quota, "ImagePullFailed")),
            None,
            "ImagePullFailed",
            "RollingOut",
            "ReplicaFailure",
            Phase::Degraded,
        ),
        (
            "invalid spec beats a pod problem",
            Some(failing(view(2, 2, 0, 2), "ModelLoadFailed")),
            Some(&invalid),
            "ModelLoadFailed",
            "RollingOut",
            "InvalidSpec",
            Phase::Degraded,
        ),
        (
            "scaled to zero is ready whatever was wrong",
            Some(failing(view(0, 0, 0, 0), "PodsNotReady")),
            None,
            "ScaledToZero",
            "RolloutComplete",
            "PodsNotReady",
            Phase::Degraded,
        ),
    ];
    for (case, v, err, ready, progressing, degraded, phase) in cases {
        let problem = v
            .as_ref()
            .is_some_and(|v| v.pods.is_some() && v.desired > 0);
        let [r, p, d] = conditions_for(v.as_ref(), err);
        if problem {
            assert_eq!(r.status, ConditionStatus::False, "{case}: Ready");
        }
        assert_eq!(
            (r.reason.as_str(), p.reason.as_str(), d.reason.as_str()),
            (ready, progressing, degraded),
            "{case}"
        );
        let merged = merge_conditions(&[], &[r, p, d], Some(1), &time(10));
        assert_eq!(derive_phase(&merged), phase, "{case}");
    }
}

#[test]
fn transition_time_moves_only_on_a_flip() {
    let first = merge_conditions(
        &[],
        &conditions_for(Some(&view(2, 2, 1, 2)), None),
        Some(1),
        &time(100),
    );
    // Same statuses, new messages: times stay.
    let again = merge_conditions(
        &first,
        &conditions_for(Some(&view(2, 2, 1, 2)), None),
        Some(2),
        &time(200),
    );
    assert!(
        again.iter().all(|c| c.last_transition_time == time(100)),
        "{again:?}"
    );
    assert!(again.iter().all(|c| c.observed_generation == Some(2)));
    // Ready flips to True and Progressing to False: those two move, Degraded stays.
    let flipped = merge_conditions(
        &again,
        &conditions_for(Some(&view(2, 2, 2, 2)), None),
        Some(2),
        &time(300),
    );
    let at = |t: &str| {
        flipped
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.last_transition_time.clone())
    };
    assert_eq!(at("Ready"), Some(time(300)));
    assert_eq!(at("Progressing"), Some(time(300)));
    assert_eq!(at("Degraded"), Some(time(100)));
}

#[test]
fn desired_status_keeps_the_last_revision_when_the_spec_is_invalid() {
    let old = ModelDeploymentStatus {
        revision: Some(RevisionStatus {
            name: "abc".into(),
            uri: "s3://b/k".into(),
            ..Default::default()
        }),
        selector: Some("modelpilot.io/name=iris".into()),
        ..Default::default()
    };
    let err = Error::Spec(SpecError::Sha256);
    let obs = Observation {
        generation: Some(4),
        spec: None,
        deployment: None,
        error: Some(&err),
        pods: None,
        plan: None,
    };
    let status = desired_status(&old, &obs, &time(5));
    assert_eq!(status.revision, old.revision);
    assert_eq!(status.selector, old.selector);
    assert_eq!(status.observed_generation, Some(4));
    assert_eq!(status.phase, Phase::Degraded);
}

#[test]
fn desired_status_reports_the_pods_problem() {
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "iris", "generation": 1},
        "spec": {"replicas": 1, "selector": {}, "template": {}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1}
    }))
    .expect("deployment");
    let problem = PodProblem {
        reason: "ModelLoadFailed",
        message: "model file:///m.onnx: checksum mismatch".into(),
    };
    let observe = |pods| Observation {
        generation: Some(1),
        spec: None,
        deployment: Some(&deployment),
        error: None,
        pods,
        plan: None,
    };
    let failing = desired_status(
        &ModelDeploymentStatus::default(),
        &observe(Some(&problem)),
        &time(10),
    );
    let degraded = failing
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("Degraded");
    assert_eq!(
        (degraded.status.as_str(), degraded.reason.as_str()),
        ("True", "ModelLoadFailed")
    );
    assert_eq!(degraded.message, problem.message);
    assert_eq!(failing.phase, Phase::Degraded);
    // The problem gone (and still no ready pod): Degraded clears, its time moves.
    let cleared = desired_status(&failing, &observe(None), &time(20));
    let degraded = cleared
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .expect("Degraded");
    assert_eq!(degraded.status, "False");
    assert_eq!(degraded.last_transition_time, time(20));
    assert_eq!(cleared.phase, Phase::Progressing);
}
