//! Table tests of the drift verdicts: method resolution, Bonferroni, min_samples, shapes.

use super::*;

/// Two numeric features (4 bins, 250 training rows each) and one categorical.
fn profile() -> BaselineProfile {
    BaselineProfile::from_json(
        r#"{"version": 2, "rows": 1000, "features": [
            {"name": "a", "edges": [1, 2, 3], "counts": [250, 250, 250, 250]},
            {"name": "b", "edges": [1, 2, 3], "proportions": [0.25, 0.25, 0.25, 0.25]},
            {"name": "c", "kind": "categorical",
             "categories": [{"value": "x", "count": 500}, {"value": "y", "count": 500}]}],
          "prediction": {"kind": "categorical",
             "categories": [{"value": "0", "count": 500}, {"value": "1", "count": 500}]}}"#,
    )
    .unwrap()
}

fn binned(counts: [u64; 4]) -> Counts {
    Counts::Binned(counts.to_vec())
}

fn categories(pairs: &[(&str, u64)]) -> Counts {
    Counts::Categories(pairs.iter().map(|(v, n)| (v.to_string(), *n)).collect())
}

fn current(a: [u64; 4], b: [u64; 4], c: &[(&str, u64)]) -> BTreeMap<String, Counts> {
    BTreeMap::from([
        ("a".to_string(), binned(a)),
        ("b".to_string(), binned(b)),
        ("c".to_string(), categories(c)),
    ])
}

#[test]
fn verdicts_per_feature_and_dataset() {
    let same = [100, 100, 100, 100];
    let shifted = [40, 80, 120, 160];
    let even = [("x", 200), ("y", 200)];
    let skewed = [("x", 260), ("y", 140)];
    // (a, b, c, method, correction) → (drift per feature, dataset drift)
    type Case<'a> = ([u64; 4], [u64; 4], &'a [(&'a str, u64)], Method, Correction);
    let cases: [(Case, [Option<bool>; 3], Option<bool>); 6] = [
        (
            (same, same, &even, Method::Auto, Correction::Bonferroni),
            [Some(false); 3],
            Some(false),
        ),
        (
            (shifted, same, &even, Method::Auto, Correction::Bonferroni),
            [Some(true), Some(false), Some(false)],
            Some(true),
        ),
        (
            (same, same, &skewed, Method::Auto, Correction::Bonferroni),
            [Some(false), Some(false), Some(true)],
            Some(true),
        ),
        (
            (same, shifted, &even, Method::ChiSquare, Correction::None),
            [Some(false), Some(true), Some(false)],
            Some(true),
        ),
        (
            (shifted, same, &even, Method::Psi, Correction::Bonferroni),
            [Some(true), Some(false), Some(false)],
            Some(true),
        ),
        // JS distance of ½/½ against 0.65/0.35 is 0.129, above the default 0.1.
        (
            (
                same,
                same,
                &skewed,
                Method::JensenShannon,
                Correction::Bonferroni,
            ),
            [Some(false), Some(false), Some(true)],
            Some(true),
        ),
    ];
    for ((a, b, c, method, correction), drift, dataset) in cases {
        let config = DriftConfig {
            method,
            correction,
            ..DriftConfig::default()
        };
        let report = evaluate(&profile(), &current(a, b, c), &config).unwrap();
        let got: Vec<Option<bool>> = report.features.iter().map(|f| f.drift).collect();
        assert_eq!(got, drift, "{method:?} {a:?} {b:?} {c:?}: {report:?}");
        assert_eq!(report.drift, dataset, "{method:?}");
    }
}

#[test]
fn methods_thresholds_and_corrections() {
    let report = evaluate(
        &profile(),
        &current([100; 4], [100; 4], &[("x", 200), ("y", 200)]),
        &DriftConfig::default(),
    )
    .unwrap();
    let methods: Vec<Method> = report.features.iter().map(|f| f.method).collect();
    assert_eq!(methods, [Method::Ks, Method::Ks, Method::ChiSquare]);
    assert!(
        report
            .features
            .iter()
            .all(|f| (f.threshold - 0.05 / 3.0).abs() < 1e-15)
    );
    assert_eq!(report.features[0].statistic, Some(0.0));
    let none = DriftConfig {
        correction: Correction::None,
        ..DriftConfig::default()
    };
    let report = evaluate(&profile(), &BTreeMap::new(), &none).unwrap();
    assert!(
        report
            .features
            .iter()
            .all(|f| f.threshold == 0.05 && f.statistic.is_none())
    );
    let psi = DriftConfig {
        method: Method::Psi,
        threshold: Some(0.5),
        ..DriftConfig::default()
    };
    let report = evaluate(&profile(), &BTreeMap::new(), &psi).unwrap();
    assert!(
        report
            .features
            .iter()
            .all(|f| f.threshold == 0.5 && f.method == Method::Psi)
    );
}

#[test]
fn below_min_samples_gives_no_verdict_and_fewer_tests() {
    // a has 40 rows (< 100): no verdict, and the level is split between b and c only.
    let report = evaluate(
        &profile(),
        &current([10; 4], [100; 4], &[("x", 200), ("y", 200)]),
        &DriftConfig::default(),
    )
    .unwrap();
    assert_eq!(report.features[0].drift, None);
    assert!(report.features[0].statistic.is_some());
    assert!((report.features[1].threshold - 0.025).abs() < 1e-15);
    assert_eq!(report.drift, Some(false));
    let report = evaluate(&profile(), &BTreeMap::new(), &DriftConfig::default()).unwrap();
    assert_eq!(report.drift, None);
    assert!(
        report
            .features
            .iter()
            .all(|f| f.drift.is_none() && f.samples == 0)
    );
}

#[test]
fn unknown_categories_count_against_the_reference() {
    let c = [("x", 150), ("y", 150), ("__other__", 100)];
    let report = evaluate(
        &profile(),
        &current([100; 4], [100; 4], &c),
        &DriftConfig::default(),
    )
    .unwrap();
    assert_eq!(report.features[2].drift, Some(true));
    assert_eq!(report.features[2].samples, 400);
}

#[test]
fn prediction_is_one_test_without_correction() {
    let config = DriftConfig::default();
    let even = evaluate_prediction(&profile(), &categories(&[("0", 100), ("1", 100)]), &config)
        .unwrap()
        .unwrap();
    assert_eq!(
        (even.name.as_str(), even.method, even.drift, even.threshold),
        ("prediction", Method::ChiSquare, Some(false), 0.05)
    );
    let no_prediction = BaselineProfile::from_json(r#"{"version": 2}"#).unwrap();
    assert_eq!(
        evaluate_prediction(&no_prediction, &binned([1; 4]), &config).unwrap(),
        None
    );
}

#[test]
fn mismatched_counts_and_bad_settings_are_errors() {
    let cases: [(BTreeMap<String, Counts>, DriftConfig, &str); 5] = [
        (
            BTreeMap::from([("a".to_string(), Counts::Binned(vec![1, 2]))]),
            DriftConfig::default(),
            "a: 2 bin counts, the profile has 4 bins",
        ),
        (
            BTreeMap::from([("a".to_string(), categories(&[("x", 1)]))]),
            DriftConfig::default(),
            "category counts for a numeric",
        ),
        (
            BTreeMap::from([("c".to_string(), binned([1; 4]))]),
            DriftConfig::default(),
            "bin counts for a categorical",
        ),
        (
            BTreeMap::new(),
            DriftConfig {
                p_value: 1.5,
                ..DriftConfig::default()
            },
            "pValue",
        ),
        (
            BTreeMap::new(),
            DriftConfig {
                threshold: Some(f64::NAN),
                ..DriftConfig::default()
            },
            "threshold",
        ),
    ];
    for (counts, config, expected) in cases {
        let err = evaluate(&profile(), &counts, &config)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn method_and_correction_names_parse() {
    let cases = [
        ("ks", Method::Ks),
        ("chi-square", Method::ChiSquare),
        ("CHI2", Method::ChiSquare),
        ("psi", Method::Psi),
        ("js", Method::JensenShannon),
        ("Auto", Method::Auto),
    ];
    for (text, method) in cases {
        assert_eq!(text.parse::<Method>(), Ok(method));
    }
    assert!("t-test".parse::<Method>().is_err());
    assert_eq!("none".parse::<Correction>(), Ok(Correction::None));
    assert!("holm".parse::<Correction>().is_err());
    let json = serde_json::to_value(DriftConfig::default()).unwrap();
    assert_eq!(json["method"], "Auto");
    assert_eq!(json["minSamples"], 100);
}
