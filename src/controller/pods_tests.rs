//! Table-driven tests of pod health: one pod state per row, then precedence between pods.

use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::*;

/// Pods are created at second 0 of this day; `now` counts from there.
const DAY: &str = "2025-01-01T00:00:";

fn at(secs: i64) -> Time {
    let start: Timestamp = format!("{DAY}00Z").parse().unwrap_or(Timestamp::UNIX_EPOCH);
    Time(Timestamp::from_second(start.as_second() + secs).unwrap_or(Timestamp::UNIX_EPOCH))
}

fn stamp(secs: i64) -> String {
    at(secs).0.to_string()
}

/// A container status: `state` and `last` are `ContainerState` JSON (or null).
fn container(name: &str, ready: bool, restarts: i32, state: Value, last: Value) -> Value {
    json!({"name": name, "ready": ready, "restartCount": restarts, "image": "img", "imageID": "",
           "state": state, "lastState": last})
}

fn server(ready: bool, restarts: i32, state: Value, last: Value) -> Value {
    container(CONTAINER_NAME, ready, restarts, state, last)
}

fn running() -> Value {
    json!({"running": {"startedAt": stamp(1)}})
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"waiting": {"reason": reason, "message": message}})
}

fn exited(code: i32, reason: &str, message: &str) -> Value {
    json!({"terminated": {"exitCode": code, "reason": reason, "message": message}})
}

/// A pod created at second 0, `Ready` as given since `ready_since`.
fn pod(name: &str, phase: &str, ready: bool, ready_since: i64, containers: Value) -> Pod {
    let manifest = json!({
        "metadata": {"name": name, "namespace": "ml", "creationTimestamp": stamp(0),
                     "labels": {"modelpilot.io/name": "iris"}},
        "status": {
            "phase": phase,
            "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" },
                            "reason": if ready { "" } else { "ContainersNotReady" },
                            "message": if ready { "" } else { "containers with unready status: [modelpilot-server]" },
                            "lastTransitionTime": stamp(ready_since)}],
            "containerStatuses": containers,
        }
    });
    serde_json::from_value(manifest).expect("pod fixture parses")
}

fn starting(name: &str, containers: Value) -> Pod {
    pod(name, "Running", false, 0, containers)
}

const DEADLINE: Duration = Duration::from_secs(600);

/// (case, pods, now in seconds, expected reason, text the message contains)
type Case = (
    &'static str,
    Vec<Pod>,
    i64,
    Option<&'static str>,
    &'static str,
);

#[test]
fn one_pod_table() {
    let checksum = "model s3://models/iris.onnx: checksum mismatch: expected 00…, got ab…";
    let mut evicted = pod("p", "Failed", false, 0, json!([]));
    if let Some(status) = evicted.status.as_mut() {
        status.reason = Some("Evicted".into());
        status.message = Some("The node was low on resource: memory.".into());
    }
    let mut terminating = starting(
        "p",
        json!([server(
            false,
            4,
            waiting("CrashLoopBackOff", ""),
            exited(1, "Error", checksum)
        )]),
    );
    terminating.metadata.deletion_timestamp = Some(at(50));
    let sidecar_failed = {
        let mut p = starting(
            "p",
            json!([container("app", true, 0, running(), Value::Null)]),
        );
        let init = serde_json::from_value(json!([server(
            false,
            1,
            exited(1, "Error", checksum),
            Value::Null
        )]))
        .expect("statuses");
        if let Some(status) = p.status.as_mut() {
            status.init_container_statuses = Some(init);
        }
        p
    };
    let cases: Vec<Case> = vec![
        ("no pods", vec![], 0, None, ""),
        (
            "ready",
            vec![pod(
                "p",
                "Running",
                true,
                5,
                json!([server(true, 0, running(), Value::Null)]),
            )],
            5000,
            None,
            "",
        ),
        (
            "starting within the deadline",
            vec![starting(
                "p",
                json!([server(false, 0, running(), Value::Null)]),
            )],
            600,
            None,
            "",
        ),
        (
            "not ready past the deadline",
            vec![starting(
                "p",
                json!([server(false, 0, running(), Value::Null)]),
            )],
            601,
            Some(PODS_NOT_READY),
            "pod p not ready since 2025-01-01T00:00:00Z (deadline 600s): ContainersNotReady: containers with unready status",
        ),
        (
            "was ready, not ready again only briefly",
            vec![pod(
                "p",
                "Running",
                false,
                5000,
                json!([server(false, 0, running(), Value::Null)]),
            )],
            5030,
            None,
            "",
        ),
        (
            "server exited with its error",
            vec![starting(
                "p",
                json!([server(false, 0, exited(1, "Error", checksum), Value::Null)]),
            )],
            3,
            Some(MODEL_LOAD_FAILED),
            checksum,
        ),
        (
            "server in back-off after its error: the error, verbatim",
            vec![starting(
                "p",
                json!([server(
                    false,
                    3,
                    waiting("CrashLoopBackOff", "back-off 40s"),
                    exited(1, "Error", checksum)
                )]),
            )],
            60,
            Some(MODEL_LOAD_FAILED),
            checksum,
        ),
        (
            "server restarting after its error: still failed (no flapping)",
            vec![starting(
                "p",
                json!([server(false, 3, running(), exited(1, "Error", checksum))]),
            )],
            60,
            Some(MODEL_LOAD_FAILED),
            checksum,
        ),
        (
            "server ready again after a failure",
            vec![pod(
                "p",
                "Running",
                true,
                70,
                json!([server(true, 1, running(), exited(1, "Error", checksum))]),
            )],
            80,
            None,
            "",
        ),
        (
            "server as a native sidecar",
            vec![sidecar_failed],
            10,
            Some(MODEL_LOAD_FAILED),
            checksum,
        ),
        (
            "server killed (OOM): a crash loop, not a load failure",
            vec![starting(
                "p",
                json!([server(
                    false,
                    5,
                    waiting("CrashLoopBackOff", ""),
                    exited(137, "OOMKilled", "")
                )]),
            )],
            60,
            Some(CRASH_LOOP_BACK_OFF),
            "container modelpilot-server of pod p keeps crashing (5 restarts); last exit code 137: OOMKilled",
        ),
        (
            "exit 0 is no load failure",
            vec![starting(
                "p",
                json!([server(false, 1, running(), exited(0, "Completed", "done"))]),
            )],
            60,
            None,
            "",
        ),
        (
            "user container crash-loops",
            vec![starting(
                "p",
                json!([
                    container(
                        "app",
                        false,
                        2,
                        waiting("CrashLoopBackOff", ""),
                        exited(2, "Error", "no config")
                    ),
                    server(true, 0, running(), Value::Null)
                ]),
            )],
            60,
            Some(CRASH_LOOP_BACK_OFF),
            "container app of pod p keeps crashing (2 restarts); last exit code 2: Error: no config",
        ),
        (
            "image pull back-off",
            vec![starting(
                "p",
                json!([server(
                    false,
                    0,
                    waiting(
                        "ImagePullBackOff",
                        "Back-off pulling image \"modelpilot/nope:1\""
                    ),
                    Value::Null
                )]),
            )],
            30,
            Some(IMAGE_PULL_FAILED),
            "container modelpilot-server of pod p: ImagePullBackOff: Back-off pulling image \"modelpilot/nope:1\"",
        ),
        (
            "invalid image name",
            vec![starting(
                "p",
                json!([server(
                    false,
                    0,
                    waiting("InvalidImageName", "couldn't parse image name"),
                    Value::Null
                )]),
            )],
            30,
            Some(IMAGE_PULL_FAILED),
            "InvalidImageName: couldn't parse image name",
        ),
        (
            "missing credentials Secret",
            vec![starting(
                "p",
                json!([server(
                    false,
                    0,
                    waiting(
                        "CreateContainerConfigError",
                        "secret \"s3-creds\" not found"
                    ),
                    Value::Null
                )]),
            )],
            30,
            Some(CONTAINER_CREATE_FAILED),
            "CreateContainerConfigError: secret \"s3-creds\" not found",
        ),
        (
            "evicted",
            vec![evicted],
            30,
            Some(POD_FAILED),
            "pod p failed: Evicted: The node was low on resource: memory.",
        ),
        (
            "terminating pods are ignored",
            vec![terminating],
            5000,
            None,
            "",
        ),
    ];
    for (case, pods, now, reason, text) in cases {
        let got = pod_health(&pods, &at(now), DEADLINE);
        assert_eq!(got.as_ref().map(|p| p.reason), reason, "{case}: {got:?}");
        if let Some(problem) = got {
            assert!(
                problem.message.contains(text),
                "{case}: '{}' lacks '{text}'",
                problem.message
            );
        }
    }
}

#[test]
fn the_worst_problem_wins_then_the_first_pod_by_name() {
    let pull = |name| {
        starting(
            name,
            json!([server(
                false,
                0,
                waiting("ErrImagePull", "not found"),
                Value::Null
            )]),
        )
    };
    let failed = |name, message| {
        starting(
            name,
            json!([server(false, 1, exited(1, "Error", message), Value::Null)]),
        )
    };
    let slow = |name| starting(name, json!([server(false, 0, running(), Value::Null)]));
    // (case, pods, reason, message contains)
    let cases = [
        (
            "load failure beats image pull",
            vec![pull("a"), failed("b", "bad digest")],
            MODEL_LOAD_FAILED,
            "bad digest",
        ),
        (
            "image pull beats not ready",
            vec![slow("a"), pull("b")],
            IMAGE_PULL_FAILED,
            "pod b",
        ),
        (
            "same reason: first by name",
            vec![failed("b", "from b"), failed("a", "from a")],
            MODEL_LOAD_FAILED,
            "from a",
        ),
    ];
    for (case, pods, reason, text) in cases {
        let got = pod_health(&pods, &at(700), DEADLINE).expect(case);
        assert_eq!(got.reason, reason, "{case}");
        assert!(got.message.contains(text), "{case}: {}", got.message);
    }
}

#[test]
fn recheck_when_the_first_pod_reaches_the_deadline() {
    let slow = |name| starting(name, json!([server(false, 0, running(), Value::Null)]));
    let later = pod(
        "late",
        "Running",
        false,
        200,
        json!([server(false, 0, running(), Value::Null)]),
    );
    let ready = pod(
        "r",
        "Running",
        true,
        5,
        json!([server(true, 0, running(), Value::Null)]),
    );
    // (case, pods, now, recheck in seconds)
    let cases = [
        ("nothing starting", vec![ready.clone()], 100, None),
        ("one starting", vec![slow("a"), ready], 100, Some(500)),
        (
            "the earliest wins",
            vec![later.clone(), slow("a")],
            100,
            Some(500),
        ),
        (
            "one past the deadline, one on its way",
            vec![slow("a"), later],
            700,
            Some(100),
        ),
        ("all past", vec![slow("a")], 601, None),
    ];
    for (case, pods, now, want) in cases {
        let got = recheck_in(&pods, &at(now), DEADLINE);
        assert_eq!(got, want.map(Duration::from_secs), "{case}");
    }
}

#[test]
fn pods_map_to_their_model_deployment() {
    let p = starting("p", json!([]));
    assert_eq!(owner_of(&p), Some(ObjectRef::new("iris").within("ml")));
    let mut unlabelled = p.clone();
    unlabelled.metadata.labels = None;
    assert_eq!(owner_of(&unlabelled), None);
}
