use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use super::*;
use crate::autoscale::load::Average;

fn spec(json: serde_json::Value) -> AutoscalingSpec {
    serde_json::from_value(json).unwrap()
}

fn at(s: i64) -> Time {
    Time(Timestamp::from_second(1_700_000_000 + s).unwrap())
}

fn load(stable: f64, panic: f64) -> RevisionLoad {
    let avg = |concurrency| Average {
        concurrency,
        rps: concurrency * 10.0,
        queue_time: 0.0,
        samples: 10,
        ..Default::default()
    };
    RevisionLoad {
        stable: Some(avg(stable)),
        panic: Some(avg(panic)),
        rise: None,
        covered: true,
        measured: 1,
        errors: Vec::new(),
    }
}

fn input<'a>(
    revision: &'a str,
    track: Track,
    current: i32,
    load: Option<&'a RevisionLoad>,
) -> TrackInput<'a> {
    TrackInput {
        revision,
        track,
        current,
        ready: current,
        load,
    }
}

#[test]
fn each_track_is_decided_on_its_own_load() {
    let spec = spec(serde_json::json!({"maxReplicas": 20, "target": 4}));
    // The stable serves 8 in flight on 2 pods (on target); the canary 24 on 2 (three times it).
    let (calm, busy) = (load(8.0, 8.0), load(24.0, 24.0));
    let tracks = [
        input("s1", Track::Stable, 2, Some(&calm)),
        input("c1", Track::Canary, 2, Some(&busy)),
    ];
    let d = decide(&spec, None, &tracks, &at(0));
    assert_eq!(d.counts.stable, 2, "{d:?}");
    assert!(d.counts.canary.is_some_and(|c| c >= 6), "{d:?}");
    let [s, c] = &d.status.revisions[..] else {
        panic!("two entries: {d:?}")
    };
    assert_eq!((s.revision.as_str(), s.track.as_str()), ("s1", "stable"));
    assert_eq!((c.revision.as_str(), c.track.as_str()), ("c1", "canary"));
    assert_eq!((s.observed, c.observed), (Some(4.0), Some(12.0)));
    assert_eq!(s.recommendation, 2);
    // Only the canary's count changed: one event, about the canary.
    assert_eq!(d.transitions.len(), 1, "{:?}", d.transitions);
    assert_eq!(d.transitions[0].reason, "ScaledUp");
    assert!(
        d.transitions[0]
            .message
            .starts_with("canary revision c1 from 2 to"),
        "{}",
        d.transitions[0].message
    );
}

#[test]
fn state_follows_the_revision_and_events_only_on_a_changed_decision() {
    let spec = spec(serde_json::json!({"maxReplicas": 20, "target": 4}));
    let busy = load(40.0, 40.0);
    let first = decide(
        &spec,
        None,
        &[input("r1", Track::Stable, 2, Some(&busy))],
        &at(0),
    );
    assert_eq!(first.counts.stable, 10);
    assert_eq!(first.transitions.len(), 1);
    // Next tick: the Deployment still says 2 (not applied yet) but the decision is the same:
    // no second event.
    let again = decide(
        &spec,
        Some(&first.status),
        &[input("r1", Track::Stable, 2, Some(&busy))],
        &at(2),
    );
    assert_eq!(again.counts.stable, 10);
    assert!(again.transitions.is_empty(), "{:?}", again.transitions);
    // A revision without an entry starts from a fresh state; one with an entry continues.
    assert_eq!(again.status.revisions[0].state, {
        let (_, s) = recommend::recommend(
            &config(&spec, Track::Stable),
            &first.status.revisions[0].state,
            &Input {
                now: at(2),
                current: 2,
                ready: 2,
                stable_need: Some(10.0),
                panic_need: Some(10.0),
                rise_need: Some(10.0),
                stable_covered: true,
            },
        );
        s
    });
}

#[test]
fn carried_counts_between_ticks() {
    let spec = spec(serde_json::json!({"maxReplicas": 20, "target": 4}));
    let busy = load(40.0, 40.0);
    let d = decide(
        &spec,
        None,
        &[input("r1", Track::Stable, 2, Some(&busy))],
        &at(0),
    );
    let tracks = [
        input("r1", Track::Stable, 2, None),
        input("c9", Track::Canary, 1, None),
    ];
    assert_eq!(
        carried(Some(&d.status), &tracks),
        Counts {
            stable: 10,
            canary: Some(1)
        }
    );
    assert_eq!(
        carried(None, &tracks[..1]),
        Counts {
            stable: 2,
            canary: None
        }
    );
}

#[test]
fn no_load_keeps_the_count_and_bounds_hold() {
    let spec = spec(serde_json::json!({"minReplicas": 2, "maxReplicas": 5, "target": 4}));
    let d = decide(&spec, None, &[input("r1", Track::Stable, 3, None)], &at(0));
    assert_eq!(d.counts.stable, 3, "no data: keep");
    assert_eq!(d.status.revisions[0].observed, None);
    let flood = load(400.0, 400.0);
    let d = decide(
        &spec,
        None,
        &[input("r1", Track::Stable, 3, Some(&flood))],
        &at(0),
    );
    assert_eq!(d.counts.stable, 5, "max bound");
}

#[test]
fn config_per_track() {
    let spec = spec(serde_json::json!({
        "minReplicas": 3, "maxReplicas": 9, "stableWindowSeconds": 30, "panicWindowPercent": 20,
        "scaleDownDelaySeconds": 15, "panicThreshold": 3.0, "maxScaleUpRate": 4.0, "maxScaleDownRate": 1.5
    }));
    let stable = config(&spec, Track::Stable);
    let canary = config(&spec, Track::Canary);
    assert_eq!(
        (stable.min, stable.max, canary.min, canary.max),
        (3, 9, 1, 9)
    );
    assert_eq!(stable.stable_window.as_secs(), 30);
    assert_eq!(stable.panic_window.as_secs(), 6);
    assert_eq!(stable.scale_down_delay.as_secs(), 15);
    assert_eq!(
        (
            stable.panic_threshold,
            stable.max_scale_up_rate,
            stable.max_scale_down_rate
        ),
        (3.0, 4.0, 1.5)
    );
    let one = self::spec(serde_json::json!({"minReplicas": 1, "maxReplicas": 2}));
    assert_eq!(config(&one, Track::Canary).min, 1);
}
