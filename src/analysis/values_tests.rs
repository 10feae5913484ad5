//! Hand-computed tables for every value: quantiles (including the edge buckets), scores,
//! Jensen–Shannon distances, PSI and input drift.

use super::*;

const INF: f64 = f64::INFINITY;

fn close(got: Option<f64>, want: Option<f64>, what: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{what}: {g} vs {w}"),
        (g, w) => assert_eq!(g, w, "{what}"),
    }
}

#[test]
fn quantiles_interpolate_like_histogram_quantile() {
    let standard = vec![(0.1, 50.0), (0.5, 90.0), (1.0, 100.0), (INF, 100.0)];
    let tail = vec![(0.1, 10.0), (1.0, 20.0), (INF, 40.0)];
    let negative = vec![(-1.0, 5.0), (0.0, 10.0), (INF, 10.0)];
    type Row<'a> = (&'a str, Vec<(f64, f64)>, f64, Option<f64>);
    let rows: Vec<Row> = vec![
        (
            "median in the first bucket, from 0",
            standard.clone(),
            0.5,
            Some(0.1),
        ),
        (
            "q 0.25: 0 + 0.1 × 25/50",
            standard.clone(),
            0.25,
            Some(0.05),
        ),
        (
            "q 0.75: 0.1 + 0.4 × 25/40",
            standard.clone(),
            0.75,
            Some(0.35),
        ),
        (
            "q 0.9 ends the second bucket",
            standard.clone(),
            0.9,
            Some(0.5),
        ),
        (
            "q 0.95: 0.5 + 0.5 × 5/10",
            standard.clone(),
            0.95,
            Some(0.75),
        ),
        (
            "q 1 is the last finite bound reached",
            standard.clone(),
            1.0,
            Some(1.0),
        ),
        ("q 0 is the start", standard.clone(), 0.0, Some(0.0)),
        (
            "rank in +Inf: the largest finite bound",
            tail.clone(),
            0.99,
            Some(1.0),
        ),
        ("q 0.5 of tail: 0.1 + 0.9 × 10/10", tail, 0.5, Some(1.0)),
        (
            "first bound ≤ 0 is returned as is",
            negative.clone(),
            0.2,
            Some(-1.0),
        ),
        ("q 0.8 of negative: -1 + 1 × 3/5", negative, 0.8, Some(-0.4)),
        ("no observations", vec![(0.1, 0.0), (INF, 0.0)], 0.5, None),
        ("no +Inf bucket", vec![(0.1, 1.0), (1.0, 2.0)], 0.5, None),
        ("one bucket only", vec![(INF, 5.0)], 0.5, None),
        ("q out of range", vec![(0.1, 1.0), (INF, 1.0)], 1.5, None),
        ("q NaN", vec![(0.1, 1.0), (INF, 1.0)], f64::NAN, None),
        (
            "a dip is smoothed: (0.1, 10), (0.2, 8→10), (0.4, 20)",
            vec![(0.1, 10.0), (0.2, 8.0), (0.4, 20.0), (INF, 20.0)],
            0.75,
            Some(0.3),
        ),
        (
            "empty bucket before the rank",
            vec![(0.1, 10.0), (0.2, 10.0), (0.4, 20.0), (INF, 20.0)],
            0.5,
            Some(0.1),
        ),
    ];
    for (what, buckets, q, want) in rows {
        close(histogram_quantile(q, &Buckets(buckets)), want, what);
    }
}

#[test]
fn error_rate_and_latency_carry_their_samples() {
    let c = Counts {
        requests: 400.0,
        errors: 8.0,
        latency: Buckets(vec![(0.1, 300.0), (1.0, 390.0), (INF, 400.0)]),
        ..Counts::default()
    };
    assert_eq!(error_rate(&c), Some((0.02, 400)));
    // p90: rank 360 in (0.1, 1] holding ranks 300..390 → 0.1 + 0.9 × 60/90 = 0.7.
    let (p90, n) = latency(&c, 0.9).unwrap();
    assert!((p90 - 0.7).abs() < 1e-12, "{p90}");
    assert_eq!(n, 400);
    // p99: rank 396 is past 390, in +Inf → the largest finite bound.
    assert_eq!(latency(&c, 0.99), Some((1.0, 400)));
    assert_eq!(latency(&Counts::default(), 0.99), None);
    let fractional = Counts {
        requests: 19.6,
        errors: 0.0,
        ..Counts::default()
    };
    assert_eq!(error_rate(&fractional), Some((0.0, 20)));
    assert_eq!(samples(f64::NAN), 0);
}

fn confusion(rows: &[(&str, &str, f64)]) -> Counts {
    let mut c = Counts::default();
    for (t, p, n) in rows {
        c.labels.insert((t.to_string(), p.to_string()), *n);
    }
    c
}

#[test]
fn scores_table() {
    // (rows (true, predicted, n), accuracy, macro recall, macro f1)
    type Row<'a> = (&'a str, Vec<(&'a str, &'a str, f64)>, [f64; 3]);
    let rows: Vec<Row> = vec![
        (
            "doc example",
            vec![
                ("a", "a", 1.0),
                ("b", "a", 1.0),
                ("b", "b", 1.0),
                ("a", "c", 1.0),
            ],
            [0.5, 1.0 / 3.0, 7.0 / 18.0],
        ),
        (
            "all right",
            vec![("x", "x", 5.0), ("y", "y", 3.0)],
            [1.0, 1.0, 1.0],
        ),
        (
            "all wrong",
            vec![("x", "y", 5.0), ("y", "x", 3.0)],
            [0.0, 0.0, 0.0],
        ),
        (
            // a: tp 8 fn 2 fp 0 → P 1 R .8 F1 8/9; b: tp 0 fp 2 → 0 0 0
            "one class never right",
            vec![("a", "a", 8.0), ("a", "b", 2.0)],
            [0.8, 0.4, 4.0 / 9.0],
        ),
        (
            // zero-count rows are ignored: classes c does not count
            "zero rows ignored",
            vec![("a", "a", 2.0), ("c", "c", 0.0)],
            [1.0, 1.0, 1.0],
        ),
    ];
    for (what, rows, [accuracy, recall, f1]) in rows {
        let c = confusion(&rows);
        let n: f64 = rows.iter().map(|r| r.2).sum();
        assert_eq!(
            score(&c, Score::Accuracy),
            Some((accuracy, samples(n))),
            "{what}"
        );
        let (r, _) = score(&c, Score::Recall).unwrap();
        let (f, _) = score(&c, Score::F1).unwrap();
        assert!((r - recall).abs() < 1e-12, "{what}: recall {r}");
        assert!((f - f1).abs() < 1e-12, "{what}: f1 {f}");
    }
    assert_eq!(score(&Counts::default(), Score::Accuracy), None);
    assert_eq!(score(&confusion(&[("a", "a", 0.0)]), Score::F1), None);
}

fn classes(rows: &[(&str, f64)]) -> BTreeMap<String, f64> {
    rows.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn jensen_shannon_table() {
    type Row<'a> = (
        &'a str,
        Vec<(&'a str, f64)>,
        Vec<(&'a str, f64)>,
        Option<f64>,
    );
    let rows: Vec<Row> = vec![
        (
            "same shares",
            vec![("a", 10.0), ("b", 30.0)],
            vec![("a", 1.0), ("b", 3.0)],
            Some(0.0),
        ),
        ("disjoint", vec![("a", 10.0)], vec![("b", 3.0)], Some(1.0)),
        (
            "half vs all",
            vec![("a", 5.0), ("b", 5.0)],
            vec![("a", 8.0)],
            Some(0.311_278_f64.sqrt()),
        ),
        // p = (.9,.1) q = (.5,.5): m = (.7,.3)
        // JSD = .5(.9 log2(9/7) + .1 log2(1/3)) + .5(.5 log2(5/7) + .5 log2(5/3))
        (
            "0.9/0.1 vs 0.5/0.5",
            vec![("a", 90.0), ("b", 10.0)],
            vec![("a", 50.0), ("b", 50.0)],
            Some(
                (0.5 * (0.9 * (9.0f64 / 7.0).log2() + 0.1 * (1.0f64 / 3.0).log2())
                    + 0.5 * (0.5 * (5.0f64 / 7.0).log2() + 0.5 * (5.0f64 / 3.0).log2()))
                .sqrt(),
            ),
        ),
        ("empty canary", vec![], vec![("a", 1.0)], None),
        ("zero stable", vec![("a", 1.0)], vec![("a", 0.0)], None),
        (
            "negative counts are ignored",
            vec![("a", 4.0), ("b", -3.0)],
            vec![("a", 1.0)],
            Some(0.0),
        ),
    ];
    for (what, p, q, want) in rows {
        let got = js_distance(&classes(&p), &classes(&q));
        match (got, want) {
            (Some(g), Some(w)) => assert!((g - w).abs() < 1e-6, "{what}: {g} vs {w}"),
            (g, w) => assert_eq!(g, w, "{what}"),
        }
        if let Some(g) = got {
            assert!((0.0..=1.0).contains(&g), "{what}: {g}");
        }
    }
    let canary = Counts {
        predictions: classes(&[("a", 30.0)]),
        ..Counts::default()
    };
    let stable = Counts {
        predictions: classes(&[("a", 10.0), ("b", 10.0)]),
        ..Counts::default()
    };
    let (d, n) = prediction_shift(&canary, &stable).unwrap();
    assert!((d - 0.311_278_f64.sqrt()).abs() < 1e-5);
    assert_eq!(n, 20, "the smaller side");
}

#[test]
fn psi_and_input_drift() {
    let shares = vec![(1.0, 0.5), (INF, 0.5)];
    let live = |a: f64, b: f64| Buckets(vec![(1.0, a), (INF, a + b)]);
    close(
        psi(&shares, &live(75.0, 25.0)),
        Some(0.25 * 1.5f64.ln() + 0.25 * 2f64.ln()),
        "75/25",
    );
    close(psi(&shares, &live(50.0, 50.0)), Some(0.0), "no shift");
    close(psi(&shares, &live(0.0, 0.0)), None, "no values");
    close(
        psi(&shares, &Buckets(vec![(2.0, 1.0), (INF, 2.0)])),
        None,
        "other bins",
    );
    // An empty bin is floored at 1e-4: (1e-4 − .5)·ln(1e-4/.5) + (1 − 1e-4 − .5)… uses a = 1.
    let all_high = psi(&shares, &live(0.0, 10.0)).unwrap();
    let want = (1e-4 - 0.5) * (1e-4f64 / 0.5).ln() + (1.0 - 0.5) * (1.0f64 / 0.5).ln();
    assert!((all_high - want).abs() < 1e-9);

    let mut c = Counts::default();
    assert_eq!(input_drift(&c), Err(NO_BASELINE), "no baseline at all");
    c.baseline.insert("f".into(), shares.clone());
    c.baseline.insert("g".into(), shares.clone());
    c.baseline.insert("h".into(), vec![(5.0, 1.0), (INF, 0.0)]);
    c.features.insert("h".into(), live(3.0, 3.0));
    assert_eq!(input_drift(&c), Err(NO_BASELINE), "bins do not match");
    c.features.insert("f".into(), live(0.0, 0.0));
    assert_eq!(input_drift(&c), Ok(None), "matching bins, no values yet");
    c.features.insert("f".into(), live(75.0, 25.0));
    c.features.insert("g".into(), live(30.0, 30.0));
    let (value, n) = input_drift(&c).unwrap().unwrap();
    assert!((value - 0.274_653).abs() < 1e-5, "the largest feature PSI");
    assert_eq!(n, 60, "the fewest values of a feature");
}
