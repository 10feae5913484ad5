//! Table-driven tests of the pure status stage.

use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::controller::validate::SpecError;

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
            Some(stalled),
            None,
            "MinimumReplicasReady",
            "ProgressDeadlineExceeded",
            "RolloutStalled",
            Phase::Degraded,
        ),
        (
            "quota",
            Some(quota),
            None,
            "ReplicasNotReady",
            "RollingOut",
            "ReplicaFailure",
            Phase::Degraded,
        ),
    ];
    for (case, v, err, ready, progressing, degraded, phase) in cases {
        let [r, p, d] = conditions_for(v.as_ref(), err);
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
    };
    let status = desired_status(&old, &obs, &time(5));
    assert_eq!(status.revision, old.revision);
    assert_eq!(status.selector, old.selector);
    assert_eq!(status.observed_generation, Some(4));
    assert_eq!(status.phase, Phase::Degraded);
}
