//! Tables over the plan: each row is a status and an observation, and what the plan must decide.

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use serde_json::json;

use super::*;
use crate::{
    api::{HistoryEntry, RolloutPhase, RolloutRevision},
    build::fixtures::{manifest, valid},
};

fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(1_800_000_000 + secs).unwrap())
}

/// A spec with `replicas`, model version `version` and the given rollout section.
fn spec(version: &str, replicas: i32, rollout: serde_json::Value) -> ValidSpec {
    let mut m = manifest();
    m["spec"]["model"]["uri"] = format!("s3://models/iris/{version}.onnx").into();
    m["spec"]["model"]["version"] = version.into();
    m["spec"]["replicas"] = replicas.into();
    m["spec"]["rollout"] = rollout;
    valid(m)
}

fn steps() -> serde_json::Value {
    json!({"steps": [{"setWeight": 25}, {"pause": {"durationSeconds": 10}}, {"setWeight": 50}]})
}

/// The status after v1 became stable.
fn stable_v1() -> ModelDeploymentStatus {
    let v1 = spec("v1", 4, steps());
    let first = plan(&v1, &ModelDeploymentStatus::default(), &obs(0, &[]));
    written(&first)
}

fn written(p: &Plan) -> ModelDeploymentStatus {
    ModelDeploymentStatus {
        stable: Some(p.stable.clone()),
        rollout: Some(p.rollout.clone()),
        history: p.history.clone(),
        ..Default::default()
    }
}

fn obs(now: i64, tracks: &[(&str, i32, i32)]) -> Observed {
    Observed {
        approval: None,
        now: Some(at(now)),
        tracks: tracks
            .iter()
            .map(|(rev, replicas, ready)| {
                (
                    (*rev).to_owned(),
                    TrackView {
                        replicas: *replicas,
                        ready: *ready,
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

fn signed(mut o: Observed) -> Observed {
    o.signature = SignatureCheck::Ready(r#"{"inputs":[],"outputs":[]}"#.into());
    o.signature_diff = Some(Ok(()));
    o
}

fn reasons(p: &Plan) -> Vec<&'static str> {
    p.transitions.iter().map(|t| t.reason).collect()
}

#[test]
fn a_new_object_is_stable_at_once() {
    let v1 = spec("v1", 4, steps());
    let p = plan(&v1, &ModelDeploymentStatus::default(), &obs(0, &[]));
    assert_eq!(p.stable.name, v1.revision);
    assert_eq!(p.rollout.phase, RolloutPhase::Stable);
    assert_eq!(p.replicas, BTreeMap::from([(v1.revision.clone(), 4)]));
    assert_eq!(p.canary, None);
    assert!(!p.check_signature);
    assert_eq!(reasons(&p), vec!["Serving"]);
    // Recorded as promoted, so a rollback can return to it.
    assert_eq!(p.history.len(), 1);
    assert_eq!(p.history[0].outcome, Outcome::Promoted);
}

#[test]
fn a_new_revision_is_checked_before_any_traffic() {
    let status = stable_v1();
    let v1 = status.stable.clone().unwrap().name;
    let v2 = spec("v2", 4, steps());
    let p = plan(&v2, &status, &obs(1, &[(&v1, 4, 4)]));
    assert_eq!(p.rollout.phase, RolloutPhase::Checking);
    assert_eq!(p.rollout.canary.as_ref().unwrap().name, v2.revision);
    assert!(p.check_signature);
    // Only the stable revision has pods while the signature is read.
    assert_eq!(p.replicas, BTreeMap::from([(v1.clone(), 4)]));
    assert_eq!(p.requeue, WAITING);
}

#[test]
fn signature_outcomes_table() {
    let status = stable_v1();
    let v1 = status.stable.clone().unwrap().name;
    let v2 = spec("v2", 4, steps());
    let checking = written(&plan(&v2, &status, &obs(1, &[(&v1, 4, 4)])));
    let mut allow = v2.clone();
    allow.rollout.as_mut().unwrap().allow_signature_change = true;
    let mismatch = |mut o: Observed| {
        o.signature = SignatureCheck::Ready("{}".into());
        o.signature_diff = Some(Err(vec!["input x: shape [-1,4] → [-1,5]".into()]));
        o
    };
    let failed = |mut o: Observed| {
        o.signature = SignatureCheck::Failed("checksum mismatch".into());
        o
    };
    let rows: Vec<(&str, &ValidSpec, Observed, RolloutPhase, Option<&str>)> = vec![
        (
            "match",
            &v2,
            signed(obs(2, &[(&v1, 4, 4)])),
            RolloutPhase::Progressing,
            None,
        ),
        (
            "pending",
            &v2,
            obs(2, &[(&v1, 4, 4)]),
            RolloutPhase::Checking,
            None,
        ),
        (
            "mismatch",
            &v2,
            mismatch(obs(2, &[(&v1, 4, 4)])),
            RolloutPhase::Aborted,
            Some("SignatureMismatch"),
        ),
        (
            "mismatch allowed",
            &allow,
            mismatch(obs(2, &[(&v1, 4, 4)])),
            RolloutPhase::Progressing,
            None,
        ),
        (
            "unreadable",
            &v2,
            failed(obs(2, &[(&v1, 4, 4)])),
            RolloutPhase::Aborted,
            Some("SignatureCheckFailed"),
        ),
    ];
    for (name, spec, o, phase, abort) in rows {
        let p = plan(spec, &checking, &o);
        assert_eq!(p.rollout.phase, phase, "{name}");
        assert_eq!(
            p.rollout.abort.as_ref().map(|a| a.reason.as_str()),
            abort,
            "{name}"
        );
        if abort.is_some() {
            // A refused candidate never gets a pod, and the history says why.
            assert_eq!(p.replicas, BTreeMap::from([(v1.clone(), 4)]), "{name}");
            assert_eq!(
                p.history.last().unwrap().outcome,
                Outcome::RolledBack,
                "{name}"
            );
            assert!(reasons(&p).contains(&"RolledBack"), "{name}");
        }
    }
}

/// Walk a rollout through its steps with the pods following the plan at once.
#[test]
fn a_good_candidate_walks_every_step_and_is_promoted() {
    let mut status = stable_v1();
    let v1 = status.stable.clone().unwrap().name;
    let v2 = spec("v2", 4, steps());
    let r2 = v2.revision.clone();
    status = written(&plan(&v2, &status, &obs(1, &[(&v1, 4, 4)])));
    // Signature matches: step 0 (25 %) starts; the canary gets one pod.
    let p = plan(&v2, &status, &signed(obs(2, &[(&v1, 4, 4)])));
    assert_eq!(
        (p.rollout.phase, p.rollout.current_step),
        (RolloutPhase::Progressing, 0)
    );
    assert_eq!(p.replicas[&r2], 1);
    assert_eq!(p.rollout.desired_weight, 25);
    status = written(&p);
    // The canary pod is ready and the stable revision went down to 3: step 0 is done, the pause
    // of step 1 starts now and the plan looks again when it ends.
    let p = plan(&v2, &status, &obs(5, &[(&v1, 3, 3), (&r2, 1, 1)]));
    assert_eq!(p.rollout.current_step, 1, "{:?}", p.rollout);
    assert_eq!(p.rollout.step_started_at, Some(at(5)));
    assert_eq!(p.rollout.applied_weight, 25);
    assert_eq!(p.requeue, Duration::from_secs(10));
    assert_eq!(reasons(&p), vec!["StepCompleted"]);
    status = written(&p);
    // Halfway through the pause nothing moves.
    let p = plan(&v2, &status, &obs(10, &[(&v1, 3, 3), (&r2, 1, 1)]));
    assert_eq!(p.rollout.current_step, 1);
    assert_eq!(p.requeue, Duration::from_secs(5));
    // After the pause: step 2 asks for 50 %, two pods each.
    let p = plan(&v2, &status, &obs(15, &[(&v1, 3, 3), (&r2, 1, 1)]));
    assert_eq!(p.rollout.current_step, 2);
    assert_eq!(p.replicas[&r2], 2);
    status = written(&p);
    // 50 % reached: every step done, promotion scales the candidate to full.
    let p = plan(&v2, &status, &obs(20, &[(&v1, 2, 2), (&r2, 2, 2)]));
    assert_eq!(p.rollout.phase, RolloutPhase::Promoting);
    assert_eq!(p.replicas[&r2], 4);
    status = written(&p);
    // Full and ready: the candidate is stable, the old one waits for its scale-down delay.
    let p = plan(&v2, &status, &obs(25, &[(&v1, 2, 2), (&r2, 4, 4)]));
    assert_eq!(p.rollout.phase, RolloutPhase::Stable);
    assert_eq!(p.stable.name, r2);
    assert_eq!(p.history.last().unwrap().outcome, Outcome::Promoted);
    assert!(reasons(&p).contains(&"Promoted"));
    assert_eq!(p.rollout.scale_downs[0].revision, v1);
    assert_eq!(p.rollout.scale_downs[0].after, at(55));
    assert_eq!(
        p.replicas.get(&v1),
        Some(&2),
        "old stable keeps its pods during the delay"
    );
    status = written(&p);
    // After the delay the old revision is gone from the plan (pruned).
    let p = plan(&v2, &status, &obs(56, &[(&v1, 2, 2), (&r2, 4, 4)]));
    assert_eq!(p.replicas, BTreeMap::from([(r2.clone(), 4)]));
    assert!(p.rollout.scale_downs.is_empty());
}

#[test]
fn planning_again_from_what_was_written_does_nothing_twice() {
    // The operator restarting between any two reconciles plans from the written status: the
    // same observation must not complete a step, record history or publish an event again.
    let mut status = stable_v1();
    let v1 = status.stable.clone().unwrap().name;
    let v2 = spec("v2", 4, steps());
    let r2 = v2.revision.clone();
    let script = [
        obs(1, &[(&v1, 4, 4)]),
        signed(obs(2, &[(&v1, 4, 4)])),
        obs(5, &[(&v1, 3, 3), (&r2, 1, 1)]),
        obs(15, &[(&v1, 3, 3), (&r2, 1, 1)]),
        obs(20, &[(&v1, 2, 2), (&r2, 2, 2)]),
        obs(25, &[(&v1, 2, 2), (&r2, 4, 4)]),
    ];
    for o in script {
        let first = plan(&v2, &status, &o);
        status = written(&first);
        let again = plan(&v2, &status, &o);
        assert_eq!(written(&again), status, "a second plan changed the status");
        assert_eq!(again.replicas, first.replicas);
        assert!(again.transitions.is_empty(), "{:?}", again.transitions);
    }
    assert_eq!(status.stable.unwrap().name, r2);
    let outcomes: Vec<_> = status
        .history
        .iter()
        .map(|h| (h.outcome, h.reason.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        vec![
            (Outcome::Promoted, "Initial"),
            (Outcome::Promoted, "Promoted")
        ]
    );
}

#[test]
fn spec_back_on_stable_drops_the_candidate_at_once() {
    let mut status = stable_v1();
    let v1 = status.stable.clone().unwrap().name;
    let v1_spec = spec("v1", 4, steps());
    let v2 = spec("v2", 4, steps());
    status = written(&plan(&v2, &status, &obs(1, &[(&v1, 4, 4)])));
    status = written(&plan(&v2, &status, &signed(obs(2, &[(&v1, 4, 4)]))));
    let p = plan(
        &v1_spec,
        &status,
        &obs(3, &[(&v1, 4, 4), (&v2.revision, 1, 0)]),
    );
    assert_eq!(p.rollout.phase, RolloutPhase::Stable);
    assert_eq!(p.replicas, BTreeMap::from([(v1.clone(), 4)]));
    assert_eq!(p.history.last().unwrap().outcome, Outcome::Superseded);
    assert_eq!(reasons(&p), vec!["RolloutCancelled"]);
}

#[test]
fn a_newer_revision_supersedes_the_candidate() {
    let mut status = stable_v1();
    let v1 = status.stable.clone().unwrap().name;
    let v2 = spec("v2", 4, steps());
    let v3 = spec("v3", 4, steps());
    status = written(&plan(&v2, &status, &obs(1, &[(&v1, 4, 4)])));
    status = written(&plan(&v2, &status, &signed(obs(2, &[(&v1, 4, 4)]))));
    let p = plan(&v3, &status, &obs(3, &[(&v1, 4, 4), (&v2.revision, 1, 1)]));
    assert_eq!(p.rollout.phase, RolloutPhase::Checking);
    assert_eq!(p.rollout.canary.as_ref().unwrap().name, v3.revision);
    assert_eq!(p.history.last().unwrap().outcome, Outcome::Superseded);
    assert!(
        !p.replicas.contains_key(&v2.revision),
        "the superseded canary is scaled away"
    );
}

#[test]
fn unhealthy_canary_pods_roll_back() {
    let mut status = stable_v1();
    let v1 = status.stable.clone().unwrap().name;
    let v2 = spec("v2", 4, steps());
    status = written(&plan(&v2, &status, &obs(1, &[(&v1, 4, 4)])));
    status = written(&plan(&v2, &status, &signed(obs(2, &[(&v1, 4, 4)]))));
    let mut o = obs(3, &[(&v1, 4, 4), (&v2.revision, 1, 0)]);
    o.canary_problem = Some("ModelLoadFailed: bad file".into());
    let p = plan(&v2, &status, &o);
    assert_eq!(p.rollout.phase, RolloutPhase::Aborted);
    assert_eq!(p.rollout.abort.as_ref().unwrap().reason, "CanaryUnhealthy");
    assert_eq!(p.replicas, BTreeMap::from([(v1, 4)]));
}

fn request(action: &str, id: &str) -> Option<Result<Request, (String, String)>> {
    requests::pending(
        Some(&format!(r#"{{"id":"{id}","action":"{action}"}}"#)),
        None,
    )
}

#[test]
fn requests_table() {
    let mut status = stable_v1();
    let v1 = status.stable.clone().unwrap().name;
    let v2 = spec("v2", 4, steps());
    status = written(&plan(&v2, &status, &obs(1, &[(&v1, 4, 4)])));
    let progressing = written(&plan(&v2, &status, &signed(obs(2, &[(&v1, 4, 4)]))));
    let mut aborted_obs = obs(3, &[(&v1, 4, 4)]);
    aborted_obs.request = request("abort", "a");
    let aborted = written(&plan(&v2, &progressing, &aborted_obs));
    let rows = [
        ("abort", &progressing, RolloutPhase::Aborted, "Done"),
        ("pause", &progressing, RolloutPhase::Paused, "Done"),
        ("promote", &progressing, RolloutPhase::Progressing, "Done"),
        (
            "promote-full",
            &progressing,
            RolloutPhase::Promoting,
            "Done",
        ),
        ("retry", &progressing, RolloutPhase::Progressing, "Refused"),
        ("resume", &progressing, RolloutPhase::Progressing, "Refused"),
        ("retry", &aborted, RolloutPhase::Checking, "Done"),
        ("abort", &aborted, RolloutPhase::Aborted, "Refused"),
        ("bogus", &progressing, RolloutPhase::Progressing, "Refused"),
    ];
    for (action, from, phase, result) in rows {
        let mut o = obs(4, &[(&v1, 4, 4)]);
        o.request = request(action, "r1");
        let p = plan(&v2, from, &o);
        let ack = p.rollout.last_request.clone().unwrap();
        assert_eq!(
            (p.rollout.phase, ack.result.as_str()),
            (phase, result),
            "{action}: {}",
            ack.message
        );
        assert_eq!(ack.id, "r1");
        // Acknowledged: the same annotation is not carried out again.
        let again = requests::pending(
            Some(&format!(r#"{{"id":"r1","action":"{action}"}}"#)),
            Some(&ack.id),
        );
        assert!(again.is_none(), "{action}");
    }
    assert_eq!(aborted.history.last().unwrap().outcome, Outcome::RolledBack);
    // Promote moves one step: 0 → 1.
    let mut o = obs(4, &[(&v1, 4, 4)]);
    o.request = request("promote", "r2");
    assert_eq!(plan(&v2, &progressing, &o).rollout.current_step, 1);
}

#[test]
fn rollback_returns_to_a_promoted_revision() {
    let mut status = stable_v1();
    let old = RolloutRevision {
        name: "0123456789".into(),
        uri: "s3://models/iris/v0.onnx".into(),
        version: Some("v0".into()),
        ..Default::default()
    };
    status.history.push(HistoryEntry {
        revision: old.clone(),
        outcome: Outcome::Promoted,
        at: at(0),
        reason: "Promoted".into(),
        message: String::new(),
    });
    let v1 = spec("v1", 4, steps());
    let mut o = obs(5, &[(&v1.revision, 4, 4)]);
    o.request = requests::pending(
        Some(r#"{"id":"x","action":"rollback","revision":"0123456789"}"#),
        None,
    );
    let p = plan(&v1, &status, &o);
    assert_eq!(p.rollback_to, Some(old.clone()));
    assert_eq!(p.rollout.last_request.clone().unwrap().result, "Done");
    // Until the spec names the target's model, every plan asks for the spec write again (a
    // restart between the status and the spec write loses nothing).
    let mut pending = written(&p);
    pending.rollout.as_mut().unwrap().fast_track = Some("fast".into());
    let again = plan(&v1, &pending, &obs(6, &[(&v1.revision, 4, 4)]));
    assert_eq!(again.rollback_to, Some(old.clone()));
    assert!(again.transitions.is_empty());
    // Once it does, the rollback is done.
    let mut v0 = spec("v0", 4, steps());
    v0.model_uri = old.uri.clone();
    v0.version = old.version.clone();
    let after = plan(&v0, &pending, &obs(7, &[(&v1.revision, 4, 4)]));
    assert_eq!(after.rollback_to, None);
    assert_eq!(after.rollout.rollback_to, None);
    // An unknown revision is refused.
    o.request = requests::pending(
        Some(r#"{"id":"y","action":"rollback","revision":"ffff"}"#),
        None,
    );
    let p = plan(&v1, &status, &o);
    assert_eq!(p.rollback_to, None);
    assert_eq!(p.rollout.last_request.unwrap().result, "Refused");
}

#[test]
fn a_fast_tracked_revision_skips_check_and_steps() {
    let mut status = stable_v1();
    let v1 = status.stable.clone().unwrap().name;
    let v0 = spec("v0", 4, steps());
    status.rollout.as_mut().unwrap().fast_track = Some(v0.revision.clone());
    let p = plan(&v0, &status, &obs(1, &[(&v1, 4, 4)]));
    assert_eq!(p.rollout.phase, RolloutPhase::Promoting);
    assert_eq!(p.replicas[&v0.revision], 4);
    assert!(!p.check_signature);
}

#[test]
fn gateway_api_keeps_stable_full_and_weights_the_route() {
    let rollout = json!({"steps": [{"setWeight": 20}, {"setWeight": 60}],
                         "traffic": {"mode": "GatewayAPI", "httpRoute": "iris"}});
    let v1 = spec("v1", 5, rollout.clone());
    let mut status = written(&plan(&v1, &ModelDeploymentStatus::default(), &obs(0, &[])));
    let v2 = spec("v2", 5, rollout);
    let r2 = v2.revision.clone();
    status = written(&plan(&v2, &status, &obs(1, &[(&v1.revision, 5, 5)])));
    let p = plan(&v2, &status, &signed(obs(2, &[(&v1.revision, 5, 5)])));
    assert_eq!(p.replicas[&v1.revision], 5);
    assert_eq!(p.replicas[&r2], 1);
    assert_eq!(p.route_weight, 20);
    status = written(&p);
    // Pods ready but the route still says 0: the step waits for the route.
    let p = plan(&v2, &status, &obs(3, &[(&v1.revision, 5, 5), (&r2, 1, 1)]));
    assert_eq!(p.rollout.current_step, 0);
    let mut o = obs(4, &[(&v1.revision, 5, 5), (&r2, 1, 1)]);
    o.route_weight = Some(20);
    let p = plan(&v2, &status, &o);
    assert_eq!(p.rollout.current_step, 1);
    assert_eq!(p.route_weight, 60);
    assert_eq!(p.replicas[&r2], 3);
    assert_eq!(p.rollout.applied_weight, 20);
}

#[test]
fn an_open_pause_is_announced_once_and_measured_through() {
    let rollout = json!({"steps": [{"setWeight": 50}, {"pause": {}}],
        "analysis": [{"name": "errors", "intervalSeconds": 5, "count": 0,
                      "errorRate": {"max": 0.1}}]});
    let v1 = spec("v1", 2, rollout.clone());
    let mut status = written(&plan(&v1, &ModelDeploymentStatus::default(), &obs(0, &[])));
    let v2 = spec("v2", 2, rollout);
    let r2 = v2.revision.clone();
    status = written(&plan(&v2, &status, &obs(1, &[(&v1.revision, 2, 2)])));
    status = written(&plan(
        &v2,
        &status,
        &signed(obs(2, &[(&v1.revision, 2, 2)])),
    ));
    let tracks = [(v1.revision.as_str(), 1, 1), (r2.as_str(), 1, 1)];
    let p = plan(&v2, &status, &obs(3, &tracks));
    assert_eq!(p.rollout.phase, RolloutPhase::Paused);
    assert_eq!(reasons(&p), vec!["StepCompleted", "RolloutPaused"]);
    status = written(&p);
    // Paused at the step: later reconciles announce nothing, the background metric is live.
    let again = plan(&v2, &status, &obs(4, &tracks));
    assert!(again.transitions.is_empty(), "{:?}", again.transitions);
    let live = steps::live_metrics(
        v2.rollout.as_ref().unwrap(),
        status.rollout.as_ref().unwrap(),
    );
    assert_eq!(live.len(), 1);
    // A failing measurement while paused still rolls back.
    let mut o = obs(8, &tracks);
    o.measurements = vec![Taken {
        scope: steps::BACKGROUND_SCOPE.into(),
        name: "errors".into(),
        measurement: crate::api::Measurement {
            at: at(8),
            canary: Some(0.5),
            stable: None,
            samples: 100,
            verdict: crate::api::MeasurementVerdict::Failed,
            message: String::new(),
        },
    }];
    let p = plan(&v2, &status, &o);
    assert_eq!(p.rollout.phase, RolloutPhase::Aborted);
    assert_eq!(p.replicas, BTreeMap::from([(v1.revision.clone(), 2)]));
}

/// A spec like [`spec`] with `autoscaling` set.
fn autoscaled(
    version: &str,
    rollout: serde_json::Value,
    autoscaling: serde_json::Value,
) -> ValidSpec {
    let mut m = manifest();
    m["spec"]["model"]["uri"] = format!("s3://models/iris/{version}.onnx").into();
    m["spec"]["model"]["version"] = version.into();
    m["spec"]["replicas"] = 1.into();
    m["spec"]["rollout"] = rollout;
    m["spec"]["autoscaling"] = autoscaling;
    valid(m)
}

fn with_counts(mut o: Observed, stable: i32, canary: Option<i32>) -> Observed {
    o.autoscaled = Some(Counts { stable, canary });
    o
}

#[test]
fn autoscaled_counts_replace_spec_replicas_within_the_bounds() {
    let bounds = json!({"minReplicas": 2, "maxReplicas": 6});
    let v1 = autoscaled("v1", steps(), bounds);
    let r1 = v1.revision.clone();
    let status = written(&plan(&v1, &ModelDeploymentStatus::default(), &obs(0, &[])));
    // (autoscaler's stable count, planned pods)
    for (counted, planned) in [(4, 4), (1, 2), (9, 6), (2, 2)] {
        let p = plan(
            &v1,
            &status,
            &with_counts(obs(1, &[(&r1, 3, 3)]), counted, None),
        );
        assert_eq!(p.replicas[&r1], planned, "autoscaler said {counted}");
    }
    // Without the autoscaler's counts (no autoscaling section) spec.replicas rules.
    let p = plan(&v1, &status, &obs(1, &[(&r1, 3, 3)]));
    assert_eq!(p.replicas[&r1], 1);
}

/// v1 stable with `rollout` and autoscaling bounds 1..=10 at `pods` pods, then v2 checked and
/// started without a count of its own: (v2, v1's revision, v2's revision, status, the plan
/// that started it).
fn autoscaled_canary(
    rollout: serde_json::Value,
    pods: i32,
) -> (ValidSpec, String, String, ModelDeploymentStatus, Plan) {
    let bounds = json!({"minReplicas": 1, "maxReplicas": 10});
    let v1 = autoscaled("v1", rollout.clone(), bounds.clone());
    let r1 = v1.revision.clone();
    let mut status = written(&plan(&v1, &ModelDeploymentStatus::default(), &obs(0, &[])));
    let v2 = autoscaled("v2", rollout, bounds);
    let r2 = v2.revision.clone();
    let stable = [(r1.as_str(), pods, pods)];
    status = written(&plan(
        &v2,
        &status,
        &with_counts(obs(1, &stable), pods, None),
    ));
    let p = plan(
        &v2,
        &status,
        &signed(with_counts(obs(2, &stable), pods, None)),
    );
    (v2, r1, r2, written(&p), p)
}

#[test]
fn replica_ratio_splits_the_sum_of_both_revisions_counts_by_weight() {
    let rollout = json!({"steps": [{"setWeight": 50}, {"pause": {}}]});
    // The canary has no count of its own yet: the stable's 4 are split 2 + 2, the stable
    // giving up its pods once the canary's are ready (no drop in capacity).
    let (v2, r1, r2, mut status, p) = autoscaled_canary(rollout, 4);
    assert_eq!(
        (p.replicas[&r1], p.replicas[&r2]),
        (4, 2),
        "{:?}",
        p.replicas
    );
    // Its pods ready, each revision's own load asks for 2: 4 in all, 2 + 2.
    let o = with_counts(obs(3, &[(&r1, 4, 4), (&r2, 2, 2)]), 2, Some(2));
    let p = plan(&v2, &status, &o);
    assert_eq!(
        (p.replicas[&r1], p.replicas[&r2]),
        (2, 2),
        "{:?}",
        p.replicas
    );
    status = written(&p);
    // Each revision's load asks for 3 (the canary is slower): 6 in all, split 3 + 3.
    let o = with_counts(obs(4, &[(&r1, 2, 2), (&r2, 2, 2)]), 3, Some(3));
    let p = plan(&v2, &status, &o);
    assert_eq!(
        (p.replicas[&r1], p.replicas[&r2]),
        (3, 3),
        "{:?}",
        p.replicas
    );
}

#[test]
fn behind_a_route_each_revision_runs_its_own_count() {
    let rollout = json!({"steps": [{"setWeight": 20}, {"pause": {}}],
                         "traffic": {"mode": "GatewayAPI", "httpRoute": "iris"}});
    // No count for the canary yet: the weight's share of the stable's (20 % of 5 → 1).
    let (v2, r1, r2, status, p) = autoscaled_canary(rollout, 5);
    assert_eq!((p.replicas[&r1], p.replicas[&r2]), (5, 1));
    // The canary overloaded (its own count 4), the stable calm (2): each gets its own.
    let mut o = with_counts(obs(3, &[(&r1, 5, 5), (&r2, 1, 1)]), 2, Some(4));
    o.route_weight = Some(20);
    let p = plan(&v2, &status, &o);
    assert_eq!(
        (p.replicas[&r1], p.replicas[&r2]),
        (2, 4),
        "{:?}",
        p.replicas
    );
    // A canary count of 0 while it takes traffic still keeps the weight's share.
    let o = with_counts(obs(4, &[(&r1, 2, 2), (&r2, 4, 4)]), 2, Some(0));
    let p = plan(&v2, &status, &o);
    assert_eq!(p.replicas[&r2], 1);
}
