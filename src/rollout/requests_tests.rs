//! Parsing and acknowledging requests.

use super::*;

/// (case, annotation, acknowledged id, what `pending` yields: the action or the refused id).
type Row = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<Result<Action, &'static str>>,
);

#[test]
fn pending_table() {
    let rows: [Row; 6] = [
        ("absent", None, None, None),
        (
            "new",
            Some(r#"{"id":"a","action":"pause"}"#),
            None,
            Some(Ok(Action::Pause)),
        ),
        (
            "acknowledged",
            Some(r#"{"id":"a","action":"pause"}"#),
            Some("a"),
            None,
        ),
        (
            "newer than the ack",
            Some(r#"{"id":"b","action":"resume"}"#),
            Some("a"),
            Some(Ok(Action::Resume)),
        ),
        (
            "unknown verb",
            Some(r#"{"id":"c","action":"explode"}"#),
            None,
            Some(Err("c")),
        ),
        ("not JSON, no id", Some("promote please"), None, None),
    ];
    for (name, annotation, ack, want) in rows {
        let got = pending(annotation, ack);
        match (got, want) {
            (None, None) => {}
            (Some(Ok(r)), Some(Ok(action))) => assert_eq!(r.action, action, "{name}"),
            (Some(Err((id, msg))), Some(Err(want_id))) => {
                assert_eq!(id, want_id, "{name}");
                assert!(msg.contains("malformed"), "{name}: {msg}");
            }
            (got, want) => panic!("{name}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn resume_after_an_open_pause_step_moves_on() {
    let now = crate::controller::status::now();
    let mut st = RolloutStatus {
        phase: RolloutPhase::Paused,
        current_step: 2,
        pause: Some(PauseStatus {
            reason: "PauseStep".into(),
            message: String::new(),
            since: now.clone(),
        }),
        ..Default::default()
    };
    resume(&mut st, &now);
    assert_eq!((st.phase, st.current_step), (RolloutPhase::Progressing, 3));
    // An inconclusive pause resumes at the same step, with the inconclusive count cleared.
    st.phase = RolloutPhase::Paused;
    st.pause = Some(PauseStatus {
        reason: "Inconclusive".into(),
        message: String::new(),
        since: now.clone(),
    });
    st.metrics.push(crate::api::MetricStatus {
        name: "p99".into(),
        scope: "step".into(),
        inconclusive: 3,
        ..Default::default()
    });
    resume(&mut st, &now);
    assert_eq!(st.current_step, 3);
    assert_eq!(st.metrics[0].inconclusive, 0);
}
