//! Requests as written, and how answers read back.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::plugin::fixtures::{bare, now, paused};

fn ack(id: &str, result: &str, message: &str) -> RequestAck {
    RequestAck {
        id: id.into(),
        action: "promote".into(),
        result: result.into(),
        message: message.into(),
        at: Time(now()),
    }
}

fn with_annotation(mut mdep: ModelDeployment, value: &str) -> ModelDeployment {
    mdep.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(ANNOTATION.into(), value.into());
    mdep
}

#[test]
fn actions_are_spelled_as_the_operator_reads_them() {
    let table = [
        (Action::Promote, "promote"),
        (Action::PromoteFull, "promote-full"),
        (Action::Abort, "abort"),
        (Action::Retry, "retry"),
        (Action::Pause, "pause"),
        (Action::Resume, "resume"),
        (Action::Rollback, "rollback"),
    ];
    for (action, spelled) in table {
        assert_eq!(action.as_str(), spelled);
        assert_eq!(action.to_string(), spelled);
        // What the plugin writes is what the operator's `pending` reads back.
        let request = new(action, None, now(), 1);
        let written = merge_patch(&request)["metadata"]["annotations"][ANNOTATION]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            written.contains(&format!(r#""action":"{spelled}""#)),
            "{written}"
        );
        let read = crate::rollout::requests::pending(Some(&written), None);
        assert_eq!(read, Some(Ok(request)), "{spelled}");
    }
}

#[test]
fn the_patch_carries_the_request_as_json() {
    let request = new(Action::Rollback, Some("aaaaaaaaaa".into()), now(), 7);
    assert_eq!(request.id, "20250101T120000Z-00000007");
    let patch = merge_patch(&request);
    let value = patch["metadata"]["annotations"][ANNOTATION]
        .as_str()
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(value).unwrap();
    assert_eq!(
        parsed,
        serde_json::json!({"id": "20250101T120000Z-00000007", "action": "rollback", "revision": "aaaaaaaaaa"})
    );
    // Nothing else is touched by the merge patch.
    assert_eq!(patch.as_object().map(|o| o.len()), Some(1));
    let mdep = with_annotation(bare(), value);
    assert_eq!(recorded(&mdep), Some(request));
}

#[test]
fn ids_differ_within_a_second() {
    assert_ne!(request_id(now(), 1), request_id(now(), 2));
}

#[test]
fn progress_table() {
    let acked = paused(); // lastRequest id 20250101T115800Z-0000abcd, Done
    let acked_id = "20250101T115800Z-0000abcd";
    let mine = r#"{"id":"mine","action":"pause"}"#;
    let theirs = r#"{"id":"theirs","action":"abort"}"#;
    let cases = [
        (
            "no status, no annotation",
            bare(),
            "mine",
            Progress::Pending,
        ),
        (
            "our request still on the annotation",
            with_annotation(bare(), mine),
            "mine",
            Progress::Pending,
        ),
        (
            "another request replaced ours",
            with_annotation(bare(), theirs),
            "mine",
            Progress::Superseded("theirs".into()),
        ),
        (
            "a request with a verb this plugin does not know replaced ours",
            with_annotation(bare(), r#"{"id":"theirs","action":"explode"}"#),
            "mine",
            Progress::Superseded("theirs".into()),
        ),
        (
            "an unreadable annotation is not a replacement",
            with_annotation(bare(), "not json"),
            "mine",
            Progress::Pending,
        ),
        (
            "an older ack is not ours",
            with_annotation(acked.clone(), mine),
            "mine",
            Progress::Pending,
        ),
        (
            "our ack wins over a newer request",
            with_annotation(acked.clone(), theirs),
            acked_id,
            Progress::Acknowledged(RequestAck {
                id: acked_id.into(),
                action: "promote".into(),
                result: "Done".into(),
                message: "moved to step 2".into(),
                at: Time("2025-01-01T11:58:00Z".parse().unwrap()),
            }),
        ),
    ];
    for (case, mdep, id, want) in cases {
        assert_eq!(progress(&mdep, id), want, "{case}");
    }
}

#[test]
fn answers_and_exit_codes() {
    let cases = [
        (
            ack("1", "Done", "moved to step 3/5"),
            "promote iris: Done: moved to step 3/5",
            0,
        ),
        (
            ack("2", "Refused", "not paused"),
            "promote iris: Refused: not paused",
            1,
        ),
        (ack("3", "Done", ""), "promote iris: Done", 0),
        (ack("4", "Failed", "?"), "promote iris: Failed: ?", 1),
    ];
    for (ack, line, code) in cases {
        assert_eq!(render_ack("iris", &ack), line);
        assert_eq!(exit_code(&ack), code, "{line}");
    }
}
