use k8s_openapi::jiff::Timestamp;

use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(s: i64) -> Time {
    Time(Timestamp::from_second(1_700_000_000 + s).unwrap())
}

/// The spec's defaults, 1 to 100 pods.
fn cfg() -> Config {
    Config {
        min: 1,
        max: 100,
        stable_window: secs(60),
        panic_window: secs(6),
        panic_threshold: 2.0,
        scale_down_delay: Duration::ZERO,
        max_scale_up_rate: 1000.0,
        max_scale_down_rate: 2.0,
        // The KPA rules alone; the tolerance has its own test.
        down_tolerance: 0.0,
    }
}

fn input(t: i64, current: i32, ready: i32, stable: Option<f64>, panic: Option<f64>) -> Input {
    Input {
        now: at(t),
        current,
        ready,
        stable_need: stable,
        panic_need: panic,
        rise_need: None,
        stable_covered: true,
    }
}

use Reason::*;

/// (desired, stable pods, panic pods, panic, reason)
type Want = (i32, i32, i32, bool, Reason);

#[test]
fn one_tick_table() {
    let with = |f: fn(&mut Config)| {
        let mut c = cfg();
        f(&mut c);
        c
    };
    let uncovered = |mut i: Input| {
        i.stable_covered = false;
        i
    };
    let n = Some;
    let up2 = with(|c| c.max_scale_up_rate = 2.0);
    let up2_calm = with(|c| {
        c.max_scale_up_rate = 2.0;
        c.panic_threshold = 10.0;
    });
    let up15 = with(|c| c.max_scale_up_rate = 1.5);
    let (min2, min0, max6) = (
        with(|c| c.min = 2),
        with(|c| c.min = 0),
        with(|c| c.max = 6),
    );
    #[rustfmt::skip]
    let cases: Vec<(&str, Config, Input, Want)> = vec![
        // (what, config, input(t, current, ready, stable need, panic need))
        //     → (desired, stable pods, panic pods, panic, reason)
        ("steady", cfg(), input(0, 4, 4, n(4.0), n(4.0)), (4, 4, 4, false, Stable)),
        ("float noise is forgiven", cfg(), input(0, 4, 4, n(4.000_000_1), n(4.0)), (4, 4, 4, false, Stable)),
        ("a little more is a pod more", cfg(), input(0, 4, 4, n(4.01), n(4.0)), (5, 5, 4, false, Stable)),
        ("no load", cfg(), input(0, 1, 1, n(0.0), n(0.0)), (1, 0, 0, false, ClampedMin)),
        ("up below the panic threshold", cfg(), input(0, 4, 4, n(7.0), n(7.9)), (7, 7, 8, false, Stable)),
        ("panic at the threshold", cfg(), input(0, 4, 4, n(5.0), n(8.0)), (8, 5, 8, true, Panic)),
        ("panic at the threshold, float noise", cfg(), input(0, 4, 4, n(5.0), n(7.999_999_9)), (8, 5, 8, true, Panic)),
        ("panic takes the larger window", cfg(), input(0, 4, 4, n(10.0), n(8.0)), (10, 10, 8, true, Panic)),
        ("no panic window: the stable one", cfg(), input(0, 4, 4, n(10.0), None), (10, 10, 10, true, Panic)),
        ("zero ready count as one", cfg(), input(0, 0, 0, n(0.5), n(0.5)), (1, 1, 1, false, Stable)),
        ("zero ready count as one, panic", cfg(), input(0, 0, 0, n(0.4), n(3.0)), (3, 1, 3, true, Panic)),
        ("panic keeps the pods still starting", cfg(), input(0, 10, 2, n(3.0), n(5.0)), (10, 3, 5, true, HeldInPanic)),
        ("up rate", up2_calm, input(0, 4, 4, n(20.0), n(20.0)), (8, 20, 20, false, RateLimited)),
        ("up rate in panic", up2, input(0, 4, 4, n(20.0), n(20.0)), (8, 20, 20, true, RateLimited)),
        ("up rate rounds up", up15, input(0, 3, 3, n(9.0), n(5.9)), (5, 9, 6, false, RateLimited)),
        ("down rate", cfg(), input(0, 10, 10, n(2.0), n(2.0)), (5, 2, 2, false, RateLimited)),
        ("down rate rounds down", cfg(), input(0, 5, 5, n(1.0), n(1.0)), (2, 1, 1, false, RateLimited)),
        ("rates count ready pods", cfg(), input(0, 10, 4, n(1.0), n(1.0)), (2, 1, 1, false, RateLimited)),
        ("no data: keep", cfg(), input(0, 5, 3, None, n(9.0)), (5, 5, 5, false, NoData)),
        ("no data: keep, bounds apply", cfg(), input(0, 130, 3, None, None), (100, 130, 130, false, ClampedMax)),
        ("a NaN is no data", cfg(), input(0, 5, 5, n(f64::NAN), n(1.0)), (5, 5, 5, false, NoData)),
        ("an infinity is no data", cfg(), input(0, 5, 5, n(f64::INFINITY), n(1.0)), (5, 5, 5, false, NoData)),
        ("a NaN panic need: the stable one", cfg(), input(0, 4, 4, n(3.0), n(f64::NAN)), (3, 3, 3, false, Stable)),
        ("window not covered: no scale-down", cfg(), uncovered(input(0, 10, 10, n(6.0), n(6.0))), (10, 6, 6, false, HeldUntilWindowCovered)),
        ("window not covered: scale-up", cfg(), uncovered(input(0, 4, 4, n(6.0), n(6.0))), (6, 6, 6, false, Stable)),
        ("min", min2, input(0, 2, 2, n(0.0), n(0.0)), (2, 0, 0, false, ClampedMin)),
        ("min zero", min0, input(0, 1, 1, n(0.0), n(0.0)), (0, 0, 0, false, Stable)),
        ("max", max6.clone(), input(0, 4, 4, n(7.0), n(7.0)), (6, 7, 7, false, ClampedMax)),
        ("max in panic", max6, input(0, 4, 4, n(7.0), n(40.0)), (6, 7, 40, true, ClampedMax)),
        ("huge need saturates", cfg(), input(0, 4, 4, n(1e30), n(1e30)), (100, i32::MAX, i32::MAX, true, ClampedMax)),
    ];
    for (what, cfg, input, want) in cases {
        let (d, state) = recommend(&cfg, &State::default(), &input);
        assert_eq!(
            (d.desired, d.stable_pods, d.panic_pods, d.panic, d.reason),
            want,
            "{what}"
        );
        let moved = if d.desired == input.current {
            None
        } else {
            Some(input.now.clone())
        };
        assert_eq!(state.last_scale, moved, "{what}: lastScale");
        assert_eq!(state.panic_since.is_some(), d.panic, "{what}: panicSince");
    }
}

/// A tick of a table over time: (t, current, ready, stable need, panic need) → (desired, panic,
/// reason).
type Tick = (i64, i32, i32, Option<f64>, Option<f64>, i32, bool, Reason);

/// Runs ticks in order, each from the state the last one left after a trip through JSON (as a
/// restarted leader reads it from status).
fn run(what: &str, cfg: &Config, covered: &[bool], ticks: &[Tick]) -> State {
    let mut state = State::default();
    for (i, &(t, current, ready, stable, panic, desired, panicking, reason)) in
        ticks.iter().enumerate()
    {
        let mut tick = input(t, current, ready, stable, panic);
        tick.stable_covered = covered.get(i).copied().unwrap_or(true);
        let (d, next) = recommend(cfg, &state, &tick);
        assert_eq!(
            (d.desired, d.panic, d.reason),
            (desired, panicking, reason),
            "{what}: t={t}"
        );
        assert!(
            next.recent.len() <= MAX_RECENT,
            "{what}: t={t}: {} remembered",
            next.recent.len()
        );
        let json = serde_json::to_string(&next).unwrap();
        state = serde_json::from_str(&json).unwrap();
        assert_eq!(state, next, "{what}: t={t}: state survives status");
    }
    state
}

#[test]
fn panic_starts_is_extended_holds_and_ends() {
    let n = Some;
    #[rustfmt::skip]
    let ticks: &[Tick] = &[
        // t, current, ready, stable, panic → desired, panic, reason
        (0, 4, 4, n(4.0), n(4.0), 4, false, Stable),
        // 10 pods' worth on 4 ready: panic.
        (2, 4, 4, n(4.5), n(10.0), 10, true, Panic),
        (4, 10, 4, n(5.0), n(12.0), 12, true, Panic),
        // Exactly at the threshold again: panic is extended to t=6.
        (6, 12, 4, n(5.5), n(8.0), 12, true, HeldInPanic),
        // The pods are ready; the load is well below them, but panic never scales down.
        (8, 12, 12, n(6.0), n(6.0), 12, true, HeldInPanic),
        (64, 12, 12, n(7.0), n(7.0), 12, true, HeldInPanic),
        // A stable window after the last crossing (t=6): stable mode.
        (66, 12, 12, n(7.0), n(7.0), 7, false, Stable),
        (68, 7, 7, n(7.0), n(7.0), 7, false, Stable),
        // A new panic starts from the count now, not from the last panic's 12.
        (70, 7, 7, n(7.0), n(15.0), 15, true, Panic),
        (72, 15, 7, n(7.5), n(14.0), 15, true, HeldInPanic),
    ];
    let state = run("panic", &cfg(), &[], ticks);
    assert_eq!(state.panic_since, Some(at(72)));
    assert_eq!(state.max_panic_pods, 15);
}

#[test]
fn panic_without_data_stays_on() {
    let n = Some;
    #[rustfmt::skip]
    let ticks: &[Tick] = &[
        (0, 2, 2, n(3.0), n(8.0), 8, true, Panic),
        (2, 8, 2, None, None, 8, true, NoData),
        // Data again, below the threshold, long after: panic ends only now.
        (90, 8, 8, n(3.0), n(3.0), 4, false, RateLimited),
    ];
    run("no data", &cfg(), &[], ticks);
}

#[test]
fn a_scale_down_waits_for_the_delay() {
    let mut cfg = cfg();
    cfg.scale_down_delay = secs(10);
    let n = Some;
    #[rustfmt::skip]
    let ticks: &[Tick] = &[
        (0, 10, 10, n(10.0), n(10.0), 10, false, Stable),
        (2, 10, 10, n(6.0), n(6.0), 10, false, DelayedScaleDown),
        (4, 10, 10, n(8.0), n(8.0), 10, false, DelayedScaleDown),
        // The 10 of t=0 is 10 s old: the 8 of t=4 is the highest left.
        (10, 10, 10, n(6.0), n(6.0), 8, false, DelayedScaleDown),
        (14, 8, 8, n(6.0), n(6.0), 6, false, Stable),
        // Scale-ups are never delayed.
        (16, 6, 6, n(9.0), n(9.0), 9, false, Stable),
        // A halving recommended at t=18 waits for the 9 of t=16 to expire.
        (18, 9, 9, n(1.0), n(1.0), 9, false, DelayedScaleDown),
        (26, 9, 9, n(1.0), n(1.0), 4, false, RateLimited),
    ];
    let state = run("delay", &cfg, &[], ticks);
    assert_eq!(
        state.recent,
        vec![Recommendation {
            at: at(26),
            pods: 4
        }]
    );
}

#[test]
fn the_delay_holds_the_end_of_a_panic() {
    let mut cfg = cfg();
    cfg.scale_down_delay = secs(30);
    let n = Some;
    #[rustfmt::skip]
    let ticks: &[Tick] = &[
        (0, 2, 2, n(2.0), n(9.0), 9, true, Panic),
        (58, 9, 9, n(3.0), n(3.0), 9, true, HeldInPanic),
        // Panic ends; the 9 held at t=58 is remembered for 30 s.
        (60, 9, 9, n(3.0), n(3.0), 9, false, DelayedScaleDown),
        (86, 9, 9, n(3.0), n(3.0), 9, false, DelayedScaleDown),
        (88, 9, 9, n(3.0), n(3.0), 4, false, RateLimited),
    ];
    run("delay after panic", &cfg, &[], ticks);
}

#[test]
fn no_scale_down_until_the_window_is_covered() {
    let n = Some;
    #[rustfmt::skip]
    let ticks: &[Tick] = &[
        // A restarted leader with 10 pods and 40 s of data that needs 3.
        (0, 10, 10, n(3.0), n(3.0), 10, false, HeldUntilWindowCovered),
        (2, 10, 10, n(12.0), n(12.0), 12, false, Stable),
        (4, 12, 12, n(3.0), n(3.0), 12, false, HeldUntilWindowCovered),
        // Covered: down, at most halving.
        (20, 12, 12, n(3.0), n(3.0), 6, false, RateLimited),
    ];
    run("covered", &cfg(), &[false, false, false, true], ticks);
}

#[test]
fn last_scale_moves_only_with_the_count() {
    let (_, s1) = recommend(
        &cfg(),
        &State::default(),
        &input(0, 4, 4, Some(6.0), Some(6.0)),
    );
    assert_eq!(s1.last_scale, Some(at(0)));
    let (_, s2) = recommend(&cfg(), &s1, &input(2, 6, 6, Some(6.0), Some(6.0)));
    assert_eq!(s2.last_scale, Some(at(0)));
    let (_, s3) = recommend(&cfg(), &s2, &input(4, 6, 6, Some(2.0), Some(2.0)));
    assert_eq!(s3.last_scale, Some(at(4)));
}

/// The highest recommendation of the last `delay`, the slow way.
fn exact_highest(history: &[(i64, i32)], now: i64, delay: i64) -> i32 {
    history
        .iter()
        .filter(|(t, _)| now - t < delay)
        .map(|&(_, p)| p)
        .max()
        .unwrap_or(0)
}

#[test]
fn the_delay_memory_is_bounded_and_never_scales_down_early() {
    // A long, slow fall: 60 pods' worth down to 1, a pod less every tick, then flat; the
    // delay (40 s) spans 20 ticks, more than the eight entries remembered.
    let mut cfg = cfg();
    cfg.scale_down_delay = secs(40);
    cfg.max_scale_down_rate = 1000.0;
    let mut state = State::default();
    let mut history = Vec::new();
    let mut current = 60;
    for i in 0..100 {
        let t = 2 * i64::from(i);
        let need = f64::from((60 - i).max(1));
        let (d, next) = recommend(
            &cfg,
            &state,
            &input(t, current, current, Some(need), Some(need)),
        );
        history.push((t, (60 - i).max(1)));
        let exact = exact_highest(&history, t, 40);
        assert!(
            next.recent.len() <= MAX_RECENT,
            "t={t}: {} remembered",
            next.recent.len()
        );
        assert!(
            d.desired >= exact,
            "t={t}: {} below the exact {exact}",
            d.desired
        );
        // Merging holds a count longer, but not by more than the staircase's spread.
        assert!(
            d.desired <= exact_highest(&history, t, 80),
            "t={t}: {}",
            d.desired
        );
        state = next;
        current = d.desired;
    }
    // Flat long enough: the memory is the last recommendation only.
    assert_eq!(current, 1);
    assert_eq!(state.recent.len(), 1);
}

#[test]
fn a_disabled_delay_forgets() {
    let state = State {
        recent: vec![Recommendation {
            at: at(0),
            pods: 50,
        }],
        ..State::default()
    };
    let (d, next) = recommend(&cfg(), &state, &input(2, 10, 10, Some(10.0), Some(10.0)));
    assert_eq!((d.desired, d.reason), (10, Stable));
    assert!(next.recent.is_empty());
}

#[test]
fn a_clock_going_back_keeps_the_memory() {
    let mut cfg = cfg();
    cfg.scale_down_delay = secs(10);
    let state = State {
        recent: vec![Recommendation {
            at: at(100),
            pods: 9,
        }],
        ..State::default()
    };
    let (d, _) = recommend(&cfg, &state, &input(90, 9, 9, Some(4.0), Some(4.0)));
    assert_eq!((d.desired, d.reason), (9, DelayedScaleDown));
}

#[test]
fn state_in_status_is_camel_case_and_small() {
    let state = State {
        panic_since: Some(at(0)),
        max_panic_pods: 12,
        recent: vec![Recommendation {
            at: at(2),
            pods: 12,
        }],
        last_scale: Some(at(2)),
    };
    let json = serde_json::to_value(&state).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "panicSince": "2023-11-14T22:13:20Z",
            "maxPanicPods": 12,
            "recent": [{"at": "2023-11-14T22:13:22Z", "pods": 12}],
            "lastScale": "2023-11-14T22:13:22Z",
        })
    );
    assert_eq!(
        serde_json::to_value(State::default()).unwrap(),
        serde_json::json!({"maxPanicPods": 0})
    );
    assert_eq!(
        serde_json::from_str::<State>("{}").unwrap(),
        State::default()
    );
    let schema = serde_json::to_value(schemars::schema_for!(State)).unwrap();
    assert_eq!(schema["properties"]["recent"]["maxItems"], 8);
}

#[test]
fn reasons_as_written() {
    let all = [
        Stable,
        Panic,
        HeldInPanic,
        RateLimited,
        DelayedScaleDown,
        NoData,
        HeldUntilWindowCovered,
        ClampedMin,
        ClampedMax,
    ];
    for r in all {
        assert_eq!(r.to_string(), format!("{r:?}"));
    }
}

#[test]
fn a_sustained_rise_is_met_early_and_noise_does_not_flap() {
    let mut cfg = cfg();
    cfg.down_tolerance = 0.1;
    // (stable need, panic need, lowest tick of the rise window, current) → (desired, reason)
    let rows = [
        // A ramp: every tick of the rise window needed more than 4 pods; the minute's mean 3.
        (3.0, 5.5, 5.2, 4, 6, SustainedRise),
        // A burst (some ticks low): the stable window rules, and 3.0 × 1.1 keeps the 4th pod.
        (3.0, 5.5, 2.5, 4, 4, Stable),
        // Noise around a plateau: the lowest tick below the mean, the mean rules.
        (6.0, 6.3, 5.4, 6, 6, Stable),
        // Falling: down to ⌈4.0 × 1.1⌉, not ⌈4.0⌉.
        (4.0, 2.0, 1.5, 6, 5, Stable),
        // A need just under a pod boundary keeps the pod above it …
        (4.9, 4.9, 0.0, 6, 6, Stable),
        // … until it is 10 % below.
        (4.4, 4.4, 0.0, 6, 5, Stable),
        // The last seconds above the minute's mean: not falling, no scale-down.
        (3.0, 3.5, 2.0, 6, 6, HeldWhileRising),
    ];
    for (stable, panic, rise, current, want, reason) in rows {
        let mut i = input(0, current, current, Some(stable), Some(panic));
        i.rise_need = Some(rise);
        let (d, _) = recommend(&cfg, &State::default(), &i);
        assert_eq!(
            (d.desired, d.reason),
            (want, reason),
            "stable {stable} panic {panic} rise {rise} current {current}"
        );
        assert!(!d.panic);
    }
    // Over time: a ramp of +0.5 pods' worth per tick (never twice the ready pods: no panic).
    // The count follows the lowest recent tick up, a pod's worth behind the load, and never
    // goes down while the stable mean lags behind.
    let mut state = State::default();
    let mut current = 9;
    let mut seen = Vec::new();
    for k in 0..20 {
        let load = 10.0 + 0.5 * f64::from(k);
        let mut i = input(
            2 * i64::from(k),
            current,
            current,
            Some(load - 1.5),
            Some(load),
        );
        i.rise_need = Some(load - 1.0);
        let (d, next) = recommend(&cfg, &state, &i);
        assert!(!d.panic, "tick {k}: {d:?}");
        state = next;
        current = d.desired;
        seen.push(d.desired);
    }
    assert!(seen.windows(2).all(|w| w[1] >= w[0]), "{seen:?}");
    assert_eq!(seen.last(), Some(&19), "{seen:?}"); // ⌈10 + 9.5 − 1⌉
}
