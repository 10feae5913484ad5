//! Table tests of the replica math.

use super::*;

#[test]
fn split_table() {
    // (total, weight, stable, canary)
    let cases = [
        // Nothing to split.
        (0, 0, 0, 0),
        (0, 50, 0, 0),
        (0, 100, 0, 0),
        // The canary's counts are Argo Rollouts' traffic-weight rounding (ceil), on 10 pods.
        (10, 0, 10, 0),
        (10, 20, 8, 2),
        (10, 25, 8, 3),
        (10, 33, 7, 4),
        (10, 99, 1, 10),
        (10, 100, 0, 10),
        (23, 100, 0, 23),
        // Small weights still get a pod; large ones leave the stable one.
        (10, 1, 10, 1),
        (10, 5, 10, 1),
        (10, 14, 9, 2),
        (10, 15, 9, 2),
        (10, 16, 9, 2),
        // One pod: any weight strictly between 0 and 100 runs both.
        (1, 0, 1, 0),
        (1, 1, 1, 1),
        (1, 50, 1, 1),
        (1, 99, 1, 1),
        (1, 100, 0, 1),
        // Two and three pods.
        (2, 1, 2, 1),
        (2, 50, 1, 1),
        (2, 99, 1, 2),
        (3, 10, 3, 1),
        (3, 33, 3, 1),
        (3, 34, 2, 2),
        (3, 50, 2, 2),
        (3, 67, 1, 3),
        // Exact shares need no extra pod.
        (4, 25, 3, 1),
        (5, 60, 2, 3),
        (100, 37, 63, 37),
        (1000, 1, 990, 10),
        // Out-of-range weights are clamped.
        (10, -5, 10, 0),
        (10, 150, 0, 10),
    ];
    for (total, weight, stable, canary) in cases {
        let got = split(total, weight);
        assert_eq!(got, (stable, canary), "split({total}, {weight})");
        // Never fewer pods than total, at most one more.
        if total > 0 {
            assert!(
                got.0 + got.1 == total || got.0 + got.1 == total + 1,
                "split({total}, {weight}) = {got:?}"
            );
        }
    }
}

#[test]
fn step_counts_table() {
    // (case, total, weight, max_unavailable, ready (stable, canary), current (stable, canary),
    //  expected (stable, canary))
    type Row = (
        &'static str,
        i32,
        i32,
        i32,
        (i32, i32),
        (i32, i32),
        (i32, i32),
    );
    let cases: [Row; 20] = [
        (
            "first step: canary created, stable untouched",
            10,
            20,
            0,
            (10, 0),
            (10, 0),
            (10, 2),
        ),
        (
            "one canary pod ready: one stable pod goes",
            10,
            20,
            0,
            (10, 1),
            (10, 2),
            (9, 2),
        ),
        (
            "canary ready: stable at its target",
            10,
            20,
            0,
            (10, 2),
            (10, 2),
            (8, 2),
        ),
        (
            "at the target: no change",
            10,
            20,
            0,
            (8, 2),
            (8, 2),
            (8, 2),
        ),
        (
            "max unavailable lets the stable go before the canary is ready",
            10,
            20,
            2,
            (10, 0),
            (10, 0),
            (8, 2),
        ),
        (
            "max unavailable 1 of a 2-pod drop",
            10,
            20,
            1,
            (10, 0),
            (10, 0),
            (9, 2),
        ),
        (
            "next step: canary grows at once, stable waits",
            10,
            50,
            0,
            (8, 2),
            (8, 2),
            (8, 5),
        ),
        (
            "next step: three more canary pods ready",
            10,
            50,
            0,
            (8, 5),
            (8, 5),
            (5, 5),
        ),
        (
            "weight 100: the stable goes as the canary covers it",
            10,
            100,
            0,
            (5, 8),
            (5, 10),
            (2, 10),
        ),
        ("weight 100 reached", 10, 100, 0, (2, 10), (2, 10), (0, 10)),
        (
            "unready stable pods may go, down to the target, at no capacity cost",
            10,
            20,
            0,
            (6, 0),
            (10, 0),
            (8, 2),
        ),
        (
            "capacity already short: no ready stable pod goes",
            10,
            20,
            0,
            (9, 0),
            (10, 0),
            (9, 2),
        ),
        (
            "abort: stable back to all at once, canary stays while stable is not ready",
            10,
            0,
            0,
            (5, 5),
            (5, 5),
            (10, 5),
        ),
        (
            "abort: canary goes as stable pods become ready",
            10,
            0,
            0,
            (8, 5),
            (10, 5),
            (10, 2),
        ),
        ("abort done", 10, 0, 0, (10, 2), (10, 2), (10, 0)),
        (
            "weight lowered: stable grows, canary shrinks once stable is ready",
            10,
            20,
            0,
            (5, 5),
            (5, 5),
            (8, 5),
        ),
        (
            "fewer replicas: both shrink, stable first",
            4,
            50,
            0,
            (5, 5),
            (5, 5),
            (2, 2),
        ),
        (
            "fewer replicas, part not ready: ready pods kept to the floor",
            4,
            50,
            0,
            (1, 5),
            (5, 5),
            (2, 3),
        ),
        (
            "more replicas: both grow at once",
            20,
            50,
            0,
            (5, 5),
            (5, 5),
            (10, 10),
        ),
        ("nothing to run", 0, 50, 0, (0, 0), (0, 0), (0, 0)),
    ];
    for (case, total, weight, max_unavail, ready, current, want) in cases {
        let got = step_counts(
            total,
            weight,
            max_unavail,
            ready.0,
            ready.1,
            current.0,
            current.1,
        );
        assert_eq!(got, want, "{case}");
    }
}

/// Walk a rollout to its end, pods becoming ready one reconcile after they are asked for:
/// the ready pods never fall below the floor, and the counts end at the target.
#[test]
fn step_counts_never_drop_ready_capacity() {
    for total in [1, 2, 3, 5, 10] {
        for max_unavail in [0, 1, 3] {
            for weights in [[10, 50, 100], [100, 0, 0], [33, 66, 0]] {
                let floor = total - max_unavailable(total, Some(&IntOrString::Int(max_unavail)));
                let (mut current, mut ready) = ((total, 0), (total, 0));
                for weight in weights {
                    for _ in 0..(4 * total + 4) {
                        let next = step_counts(
                            total,
                            weight,
                            max_unavail,
                            ready.0,
                            ready.1,
                            current.0,
                            current.1,
                        );
                        // Scaling down removes ready pods last, and only down to the new count.
                        let after = (ready.0.min(next.0), ready.1.min(next.1));
                        assert!(
                            after.0 + after.1 >= floor.min(ready.0 + ready.1),
                            "total {total} max {max_unavail} weight {weight}: \
                             {current:?}/{ready:?} → {next:?}"
                        );
                        // Pods asked for become ready by the next round.
                        current = next;
                        ready = next;
                    }
                    assert_eq!(
                        current,
                        split(total, weight),
                        "total {total} weight {weight}"
                    );
                }
            }
        }
    }
}

#[test]
fn applied_weight_table() {
    // (ready stable, ready canary, weight)
    let cases = [
        (0, 0, 0),
        (10, 0, 0),
        (0, 10, 100),
        (8, 2, 20),
        (8, 3, 27),
        (9, 2, 18),
        (7, 1, 13), // 12.5 rounds up
        (1, 1, 50),
        (2, 1, 33),
        (1, 2, 67),
        (199, 1, 1), // 0.5 rounds up
        (201, 1, 0),
        (-3, 2, 100), // negative counts read as 0
    ];
    for (stable, canary, want) in cases {
        assert_eq!(
            applied_weight(stable, canary),
            want,
            "applied_weight({stable}, {canary})"
        );
    }
}

#[test]
fn max_unavailable_table() {
    let pct = |s: &str| Some(IntOrString::String(s.into()));
    // (total, value, pods)
    let cases = [
        (10, None, 0),
        (10, Some(IntOrString::Int(0)), 0),
        (10, Some(IntOrString::Int(3)), 3),
        (10, Some(IntOrString::Int(30)), 10), // at most total
        (10, Some(IntOrString::Int(-1)), 0),
        (10, pct("0%"), 0),
        (10, pct("25%"), 2), // 2.5 rounds down
        (10, pct("100%"), 10),
        (3, pct("50%"), 1),
        (3, pct("33%"), 0),
        (1, pct("99%"), 0),
        (0, pct("50%"), 0),
        (0, Some(IntOrString::Int(2)), 0),
        // Malformed: never below the replicas.
        (10, pct("25"), 0),
        (10, pct("abc%"), 0),
        (10, pct("150%"), 0),
        (10, pct("-5%"), 0),
    ];
    for (total, value, want) in cases {
        assert_eq!(
            max_unavailable(total, value.as_ref()),
            want,
            "max_unavailable({total}, {value:?})"
        );
    }
}

#[test]
fn gateway_counts_table() {
    // (total, weight, stable, canary)
    let cases = [
        (10, 0, 10, 0),
        (10, 1, 10, 1),
        (10, 20, 10, 2),
        (10, 25, 10, 3),
        (10, 99, 10, 10),
        (10, 100, 10, 10),
        (1, 1, 1, 1),
        (3, 50, 3, 2),
        (0, 0, 0, 0),
        (0, 50, 0, 0),
        (10, 200, 10, 10),
        (-1, 50, 0, 0),
    ];
    for (total, weight, stable, canary) in cases {
        assert_eq!(
            gateway_counts(total, weight),
            (stable, canary),
            "gateway_counts({total}, {weight})"
        );
    }
}
