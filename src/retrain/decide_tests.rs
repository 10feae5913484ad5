use super::*;
use crate::api::{AccuracyStatus, DistributionStatus};

const SHA: &str = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12";
const NOW: i64 = 1_800_000_000;

fn spec(approval: bool) -> RetrainingSpec {
    serde_json::from_value(serde_json::json!({
        "template": {"spec": {"containers": [{"name": "train", "image": "python:3.11"}]}},
        "outputUri": "s3://models/retrain",
        "cooldownSeconds": 600, "maxPerDay": 2, "approval": approval,
    }))
    .unwrap()
}

fn stable() -> RolloutRevision {
    RolloutRevision {
        name: "aaaaaaaaaa".into(),
        uri: "s3://models/iris/1.onnx".into(),
        version: Some("v1".into()),
        profile: Some("s3://models/iris/1.json".into()),
        ..Default::default()
    }
}

fn drifted(persistent: bool) -> MonitoringStatus {
    MonitoringStatus {
        revision: "aaaaaaaaaa".into(),
        last_evaluation: Some(at(NOW - 60)),
        drift: Some(DistributionStatus {
            drift: Some(true),
            recent: vec![false, true, persistent],
            persistent,
            drifted_features: vec!["petal_width".into()],
            features: vec![],
        }),
        ..Default::default()
    }
}

fn degraded() -> MonitoringStatus {
    MonitoringStatus {
        revision: "aaaaaaaaaa".into(),
        accuracy: Some(AccuracyStatus {
            metric: "accuracy".into(),
            value: Some(0.6),
            labels: 200,
            at_promotion: Some(0.95),
            recent: vec![true, true],
            persistent: true,
        }),
        ..Default::default()
    }
}

#[derive(Clone)]
struct Case<'a> {
    spec: RetrainingSpec,
    monitoring: MonitoringStatus,
    rollout_active: bool,
    history: Vec<HistoryEntry>,
    spec_uri: &'a str,
    spec_revision: &'a str,
    job: Option<JobState>,
    approve: bool,
    manual: bool,
    now: i64,
}

impl Default for Case<'_> {
    fn default() -> Self {
        Self {
            spec: spec(false),
            monitoring: drifted(true),
            rollout_active: false,
            history: vec![],
            spec_uri: "s3://models/iris/1.onnx",
            spec_revision: "aaaaaaaaaa",
            job: None,
            approve: false,
            manual: false,
            now: NOW,
        }
    }
}

fn run(old: &RetrainingStatus, c: &Case<'_>) -> Decision {
    let stable = stable();
    let now = at(c.now);
    let inputs = Inputs {
        spec: &c.spec,
        owner: "iris",
        stable: &stable,
        monitoring: Some(&c.monitoring),
        window_seconds: 60,
        rollout_active: c.rollout_active,
        history: &c.history,
        spec_uri: c.spec_uri,
        spec_revision: c.spec_revision,
        job: c.job.clone(),
        approve: c.approve,
        manual: c.manual,
        now: &now,
    };
    decide(old, &inputs)
}

fn reasons(d: &Decision) -> Vec<&'static str> {
    d.transitions.iter().map(|t| t.reason).collect()
}

fn ok_message() -> String {
    format!(
        r#"{{"modelUri": "s3://models/retrain/iris/1/model.onnx", "sha256": "{SHA}", "version": "retrain-1"}}"#
    )
}

const CANDIDATE_URI: &str = "s3://models/retrain/iris/1/model.onnx";

/// The spec points at the candidate (revision cccccccccc), its rollout running.
fn rolling() -> Case<'static> {
    Case {
        spec_uri: CANDIDATE_URI,
        spec_revision: "cccccccccc",
        rollout_active: true,
        ..Case::default()
    }
}

/// The status after a trigger and its Job's success: a candidate, the spec not yet moved.
fn candidate_status() -> RetrainingStatus {
    let started = run(&RetrainingStatus::default(), &Case::default()).status;
    let job = Some(JobState::Succeeded {
        message: ok_message(),
    });
    run(
        &started,
        &Case {
            job,
            ..Case::default()
        },
    )
    .status
}

fn history_entry(outcome: Outcome, sha: &str) -> HistoryEntry {
    HistoryEntry {
        revision: RolloutRevision {
            name: "cccccccccc".into(),
            uri: "s3://models/retrain/iris/1/model.onnx".into(),
            sha256: Some(sha.into()),
            ..Default::default()
        },
        outcome,
        at: at(NOW + 30),
        reason: "AnalysisFailed".into(),
        message: "error rate 0.4 > 0.05".into(),
    }
}

#[test]
fn a_persistent_finding_starts_exactly_one_job() {
    let d = run(&RetrainingStatus::default(), &Case::default());
    assert_eq!(d.status.last_id, 1);
    let r = &d.status.history[0];
    assert_eq!(r.phase, RetrainPhase::Running);
    assert_eq!(r.job.as_deref(), Some("iris-retrain-1"));
    assert_eq!(r.output_uri, "s3://models/retrain/iris/1/");
    assert_eq!(r.trigger.features, vec!["petal_width".to_string()]);
    assert_eq!(r.from.profile.as_deref(), Some("s3://models/iris/1.json"));
    assert_eq!(d.create_job.as_ref().map(|r| r.id), Some(1));
    assert_eq!(reasons(&d), ["RetrainingTriggered", "RetrainingStarted"]);

    // The next reconcile (the Job exists and runs) neither triggers again nor re-creates.
    let again = run(
        &d.status,
        &Case {
            job: Some(JobState::Active),
            ..Case::default()
        },
    );
    assert_eq!(again.status, d.status);
    assert!(again.create_job.is_none() && again.transitions.is_empty());

    // A crash before the status write: same decision from the same status → same Job name.
    let replay = run(&RetrainingStatus::default(), &Case::default());
    assert_eq!(replay.create_job, d.create_job);
}

#[test]
fn no_trigger_without_a_persistent_finding_or_room() {
    let finished = {
        let mut s = candidate_status();
        let last = s.history.last_mut().unwrap();
        last.phase = RetrainPhase::Failed;
        last.finished_at = Some(at(NOW - 100));
        s
    };
    let cases: Vec<(&str, RetrainingStatus, Case)> = vec![
        (
            "not persistent",
            RetrainingStatus::default(),
            Case {
                monitoring: drifted(false),
                ..Case::default()
            },
        ),
        (
            "rollout running",
            RetrainingStatus::default(),
            Case {
                rollout_active: true,
                ..Case::default()
            },
        ),
        ("within the cooldown", finished.clone(), Case::default()),
        (
            "trigger not listed",
            RetrainingStatus::default(),
            Case {
                spec: RetrainingSpec {
                    triggers: vec![TriggerReason::AccuracyDegraded],
                    ..spec(false)
                },
                ..Case::default()
            },
        ),
    ];
    for (name, old, case) in cases {
        let d = run(&old, &case);
        assert_eq!(d.status, old, "{name}");
        assert!(d.create_job.is_none(), "{name}");
    }
    // After the cooldown the same finding triggers again.
    let d = run(
        &finished,
        &Case {
            now: NOW + 600,
            ..Case::default()
        },
    );
    assert_eq!(d.status.last_id, 2);
    assert_eq!(
        d.create_job.map(|r| r.job),
        Some(Some("iris-retrain-2".into()))
    );
}

#[test]
fn the_daily_budget_counts_triggers_of_the_last_24_hours() {
    let mut old = RetrainingStatus::default();
    for id in [1, 2] {
        let mut r = run(&RetrainingStatus::default(), &Case::default())
            .status
            .history
            .remove(0);
        r.id = id;
        r.phase = RetrainPhase::Failed;
        r.trigger.at = at(NOW - 3600 * id);
        r.finished_at = Some(at(NOW - 3000));
        old.history.push(r);
        old.last_id = id;
    }
    assert!(
        run(&old, &Case::default()).create_job.is_none(),
        "two in a day, budget 2"
    );
    old.history[1].trigger.at = at(NOW - 90_000);
    assert!(
        run(&old, &Case::default()).create_job.is_some(),
        "one is older than a day"
    );
}

#[test]
fn approval_holds_the_job_until_approved() {
    let case = Case {
        spec: spec(true),
        ..Case::default()
    };
    let d = run(&RetrainingStatus::default(), &case);
    assert_eq!(d.status.history[0].phase, RetrainPhase::AwaitingApproval);
    assert!(d.create_job.is_none() && d.status.history[0].job.is_none());
    assert_eq!(
        reasons(&d),
        ["RetrainingTriggered", "RetrainingAwaitingApproval"]
    );
    let approved = run(
        &d.status,
        &Case {
            approve: true,
            ..Case {
                spec: spec(true),
                ..Case::default()
            }
        },
    );
    assert_eq!(approved.status.history[0].phase, RetrainPhase::Running);
    assert_eq!(approved.create_job.map(|r| r.id), Some(1));
    assert_eq!(approved.approval, Some(Ok("retraining 1 approved".into())));
    // Approving with nothing to approve is refused, changing nothing.
    let none = run(
        &approved.status,
        &Case {
            approve: true,
            job: Some(JobState::Active),
            ..Case::default()
        },
    );
    assert_eq!(
        none.approval,
        Some(Err("no retraining is awaiting approval".into()))
    );
    assert_eq!(none.status, approved.status);
}

#[test]
fn job_outcomes_table() {
    let started = run(&RetrainingStatus::default(), &Case::default()).status;
    let failed = |reason: &str, message: &str| JobState::Failed {
        reason: reason.into(),
        message: message.into(),
    };
    let cases = [
        (
            JobState::Succeeded {
                message: ok_message(),
            },
            RetrainPhase::Candidate,
            "candidate s3://models/retrain/iris/1/model.onnx",
            "RetrainingSucceeded",
        ),
        (
            JobState::Succeeded {
                message: "done!".into(),
            },
            RetrainPhase::Failed,
            "result refused: the termination message is not JSON",
            "RetrainingFailed",
        ),
        (
            JobState::Succeeded {
                message: String::new(),
            },
            RetrainPhase::Failed,
            "result refused: the Job wrote no termination message",
            "RetrainingFailed",
        ),
        (
            failed("BackoffLimitExceeded", "out of memory"),
            RetrainPhase::Failed,
            "Job failed (BackoffLimitExceeded): out of memory",
            "RetrainingFailed",
        ),
        (
            failed("DeadlineExceeded", ""),
            RetrainPhase::TimedOut,
            "Job failed (DeadlineExceeded)",
            "RetrainingTimedOut",
        ),
        (
            JobState::Missing,
            RetrainPhase::Failed,
            "Job failed (JobDeleted): Job iris-retrain-1 disappeared",
            "RetrainingFailed",
        ),
    ];
    for (job, phase, message, reason) in cases {
        let d = run(
            &started,
            &Case {
                job: Some(job.clone()),
                ..Case::default()
            },
        );
        let r = &d.status.history[0];
        assert_eq!(r.phase, phase, "{job:?}");
        assert!(r.message.starts_with(message), "{job:?}: {}", r.message);
        assert_eq!(reasons(&d), [reason], "{job:?}");
        assert_eq!(
            d.set_model.is_some(),
            phase == RetrainPhase::Candidate,
            "{job:?}"
        );
        assert_eq!(r.finished_at.is_some(), phase.finished(), "{job:?}");
    }
}

#[test]
fn a_candidate_ends_with_its_rollout() {
    let old = candidate_status();
    // The spec write did not land (a crash after the status write): written again.
    let again = run(&old, &Case::default());
    assert_eq!(
        again.set_model.map(|r| r.model_uri).as_deref(),
        Some(CANDIDATE_URI)
    );
    assert_eq!(again.status, old);
    // The spec points at it: the candidate is named, nothing else happens while it rolls out.
    let named = run(&old, &rolling()).status;
    assert_eq!(named.history[0].candidate.as_deref(), Some("cccccccccc"));
    assert_eq!(named.history[0].phase, RetrainPhase::Candidate);
    let cases = [
        (Outcome::Promoted, RetrainPhase::Promoted, "promoted"),
        (
            Outcome::RolledBack,
            RetrainPhase::RolledBack,
            "rolled back (AnalysisFailed): error rate 0.4 > 0.05",
        ),
        (
            Outcome::Superseded,
            RetrainPhase::Superseded,
            "superseded by a newer spec",
        ),
    ];
    for (outcome, phase, message) in cases {
        let history = vec![history_entry(outcome, SHA)];
        let d = run(
            &named,
            &Case {
                history,
                rollout_active: false,
                ..rolling()
            },
        );
        let r = &d.status.history[0];
        assert_eq!((r.phase, r.message.as_str()), (phase, message));
        assert!(r.finished_at.is_some());
    }
    // Another revision's history entry while the canary runs: still a candidate.
    let mut other = history_entry(Outcome::Promoted, SHA);
    other.revision.name = "dddddddddd".into();
    let waiting = run(
        &named,
        &Case {
            history: vec![other],
            ..rolling()
        },
    );
    assert_eq!(waiting.status, named);
    // The user pointed the spec elsewhere and nothing is rolling out: superseded.
    let moved = Case {
        spec_uri: "s3://models/iris/9.onnx",
        spec_revision: "eeeeeeeeee",
        ..Case::default()
    };
    assert_eq!(
        run(&named, &moved).status.history[0].phase,
        RetrainPhase::Superseded
    );
}

#[test]
fn the_history_is_bounded() {
    let mut old = RetrainingStatus::default();
    let template = run(&RetrainingStatus::default(), &Case::default())
        .status
        .history
        .remove(0);
    for id in 1..=HISTORY_LIMIT as i64 {
        old.history.push(RetrainRecord {
            id,
            phase: RetrainPhase::Failed,
            finished_at: Some(at(NOW - 100_000)),
            trigger: Trigger {
                at: at(NOW - 100_000),
                ..template.trigger.clone()
            },
            ..template.clone()
        });
        old.last_id = id;
    }
    let d = run(
        &old,
        &Case {
            monitoring: degraded(),
            ..Case::default()
        },
    );
    assert_eq!(d.status.history.len(), HISTORY_LIMIT);
    assert_eq!(d.status.history.first().map(|r| r.id), Some(2));
    let last = d.status.history.last().unwrap();
    assert_eq!(
        (last.id, last.trigger.reason),
        (21, TriggerReason::AccuracyDegraded)
    );
    assert_eq!(last.trigger.detail, "accuracy 0.600 on 200 labels");
}

#[test]
fn a_retrain_request_starts_one_now_within_the_budget() {
    let quiet = Case {
        monitoring: drifted(false),
        manual: true,
        ..Case::default()
    };
    let d = run(
        &RetrainingStatus::default(),
        &Case {
            spec: spec(true),
            ..quiet.clone()
        },
    );
    assert_eq!(
        d.approval,
        Some(Ok("retraining 1 started (Job iris-retrain-1)".into()))
    );
    let r = &d.status.history[0];
    assert_eq!(
        (r.trigger.reason, r.phase),
        (TriggerReason::Manual, RetrainPhase::Running),
        "no approval needed"
    );
    assert_eq!(d.create_job.map(|r| r.id), Some(1));

    // Refused, changing nothing: one in flight, a rollout running, the budget used. The cooldown
    // does not hold a request back.
    let mut finished = d.status.clone();
    finished.history[0].phase = RetrainPhase::Failed;
    finished.history[0].finished_at = Some(at(NOW));
    let mut spent = finished.clone();
    spent.history.push(RetrainRecord {
        id: 2,
        ..finished.history[0].clone()
    });
    let cases = [
        (
            d.status.clone(),
            quiet.clone(),
            "retraining 1 is in flight (Running)",
        ),
        (
            RetrainingStatus::default(),
            Case {
                rollout_active: true,
                ..quiet.clone()
            },
            "a candidate is being rolled out",
        ),
        (
            spent,
            quiet.clone(),
            "the daily budget of 2 retrainings is used",
        ),
    ];
    for (old, case, why) in cases {
        let refused = run(
            &old,
            &Case {
                job: Some(JobState::Active),
                ..case
            },
        );
        assert_eq!(refused.approval, Some(Err(why.into())));
        assert!(refused.create_job.is_none(), "{why}");
    }
    let again = run(
        &finished,
        &Case {
            now: NOW + 1,
            ..quiet
        },
    );
    assert_eq!(again.status.last_id, 2, "within the cooldown, on request");
}
