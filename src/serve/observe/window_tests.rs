//! Unit tests of the sliding window, on a fake clock (times are arguments, nothing sleeps).

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sum of a `Ring<u64>` of 10 s in 10 slots at `at`, after adding `(time, n)` in order.
fn ring_sum(adds: &[(u64, u64)], at: u64) -> u64 {
    let mut ring: Ring<u64> = Ring::new(Duration::from_secs(10), 10);
    for (t, n) in adds {
        *ring.current(ms(*t)) += n;
    }
    ring.expire(ms(at));
    ring.in_window(ms(at)).sum()
}

#[test]
fn ring_rotation_and_expiry_table() {
    /// Adds as `(time ms, count)`, read at ms, expected sum.
    type Case<'a> = (&'a [(u64, u64)], u64, u64);
    let adds = [(500, 1), (3_200, 10), (9_900, 100)];
    let cases: [Case; 9] = [
        (&adds, 9_900, 111),
        // The slot of 0.5 s covers [0, 1) s: it leaves the window when 10 s begins.
        (&adds, 9_999, 111),
        (&adds, 10_000, 110),
        (&adds, 13_100, 100),
        // 9.9 s is in the slot [9, 10) s, which leaves the window when 19 s begins.
        (&adds, 18_999, 100),
        (&adds, 19_000, 0),
        // Much later: everything has expired, even slots never revisited.
        (&adds, 1_000_000, 0),
        // Same slot index one window apart: the older count is cleared on observe.
        (&[(1_000, 1), (11_000, 2)], 11_000, 2),
        // Several adds in one slot accumulate.
        (&[(2_000, 1), (2_100, 2), (2_999, 3)], 5_000, 6),
    ];
    for (adds, at, want) in cases {
        assert_eq!(ring_sum(adds, at), want, "{adds:?} read at {at} ms");
    }
}

#[test]
fn ring_reads_before_the_first_slot_period() {
    let mut ring: Ring<u64> = Ring::new(Duration::from_secs(10), 10);
    *ring.current(ms(5_000)) += 1;
    assert_eq!(ring.in_window(ms(4_000)).sum::<u64>(), 0, "a future slot");
    assert_eq!(ring.in_window(ms(5_000)).sum::<u64>(), 1);
}

#[test]
fn bounded_labels_table() {
    let mut learnt = BoundedLabels::new(2);
    let ids: Vec<usize> = ["a", "b", "c", "a", "d"]
        .iter()
        .map(|l| learnt.id(l))
        .collect();
    assert_eq!(ids, vec![0, 1, 2, 0, 2]);
    assert_eq!(learnt.names(), ["a", "b", OTHER_CLASS]);

    let mut fixed = BoundedLabels::fixed(["x".to_string(), "y".to_string(), "x".to_string()]);
    assert_eq!(fixed.names(), ["x", "y", OTHER_CLASS]);
    assert_eq!([fixed.id("y"), fixed.id("z"), fixed.id("x")], [1, 2, 0]);
    assert_eq!(fixed.names().len(), 3, "no name learnt");
}

#[test]
fn window_sums_features_predictions_and_pairs() {
    let mut w = Window::new(Duration::from_secs(10), 64);
    w.add_features(ms(0), &[vec![1, 0, 2], vec![0, 5]]);
    w.add_features(ms(4_000), &[vec![0, 1], vec![1, 0, 0, 3]]);
    w.add_classes(ms(4_000), &[("setosa", 2), ("virginica", 1)]);
    w.add_pairs(ms(6_000), [("1", "1"), ("1", "2"), ("1", "1")].into_iter());
    let s = w.snapshot(ms(9_000));
    assert_eq!(s.features, vec![vec![1, 1, 2], vec![1, 5, 0, 3]]);
    assert_eq!(
        s.classes,
        vec![("setosa".to_string(), 2), ("virginica".to_string(), 1)]
    );
    let pair = |a: &str, p: &str, n| ((a.to_string(), p.to_string()), n);
    assert_eq!(s.pairs, vec![pair("1", "1", 2), pair("1", "2", 1)]);
    assert_eq!(s.prediction_bins, None, "no regression output seen");

    // 10.5 s: the slot of 0 s left the window; classes stay listed with zeros once gone.
    let s = w.snapshot(ms(10_500));
    assert_eq!(s.features, vec![vec![0, 1], vec![1, 0, 0, 3]]);
    let s = w.snapshot(ms(15_000));
    assert_eq!(s.features, Vec::<Vec<u64>>::new());
    assert_eq!(
        s.classes,
        vec![("setosa".to_string(), 0), ("virginica".to_string(), 0)]
    );
    assert_eq!(s.pairs, vec![pair("1", "1", 2), pair("1", "2", 1)]);
    assert!(w.snapshot(ms(16_000)).pairs.is_empty(), "pairs expire");
}

#[test]
fn labels_past_the_cap_are_other() {
    let mut w = Window::new(Duration::from_secs(60), 2);
    w.add_classes(ms(0), &[("a", 1), ("b", 1), ("c", 4), ("d", 1)]);
    w.add_pairs(ms(0), [("x", "a"), ("y", "b"), ("z", "x")].into_iter());
    let s = w.snapshot(ms(1));
    let names: Vec<&str> = s.classes.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, ["a", "b", OTHER_CLASS]);
    assert_eq!(s.classes[2].1, 5);
    let pairs: Vec<(&str, &str)> = s
        .pairs
        .iter()
        .map(|((a, p), _)| (a.as_str(), p.as_str()))
        .collect();
    // Feedback labels learn x and a; y, b and z come past the cap; x is known. Sorted by id.
    assert_eq!(
        pairs,
        [("x", "a"), (OTHER_CLASS, "x"), (OTHER_CLASS, OTHER_CLASS)]
    );
}

#[test]
fn fixed_classes_and_prediction_bins_are_listed_before_traffic() {
    let mut w = Window::new(Duration::from_secs(60), 64)
        .with_fixed_classes(["0".to_string(), "1".to_string()])
        .with_prediction_bins(3);
    let s = w.snapshot(ms(0));
    assert_eq!(s.prediction_bins, Some(vec![0, 0, 0]));
    assert_eq!(
        s.classes,
        vec![("0".into(), 0), ("1".into(), 0), (OTHER_CLASS.into(), 0)]
    );
    w.add_classes(ms(10), &[("1", 2), ("7", 1)]);
    w.add_prediction_bins(ms(10), &[0, 4]);
    let s = w.snapshot(ms(20));
    assert_eq!(s.prediction_bins, Some(vec![0, 4, 0]));
    assert_eq!(
        s.classes,
        vec![("0".into(), 0), ("1".into(), 2), (OTHER_CLASS.into(), 1)]
    );
}
