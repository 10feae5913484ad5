//! Table tests of the drift statistics: the worked examples of the doc comments, the special
//! functions at known values, and the edge cases (empty, mismatched, degenerate tables).

use super::*;

/// (reference, current, expected `(statistic, p-value)`).
type Case = (&'static [f64], &'static [u64], Option<(f64, f64)>);

fn close(got: f64, expected: f64, relative: f64) -> bool {
    (got - expected).abs() <= relative * expected.abs().max(1e-300)
}

#[test]
fn bin_index_uses_le_edges() {
    let edges = [0.0, 1.0];
    let cases = [
        (-5.0, 0),
        (0.0, 0),
        (0.5, 1),
        (1.0, 1),
        (1.5, 2),
        (f64::INFINITY, 2),
    ];
    for (v, bin) in cases {
        assert_eq!(bin_index(&edges, v), bin, "{v}");
    }
    assert_eq!(bin_index(&[], 3.0), 0);
}

#[test]
fn special_functions_at_known_values() {
    let cases: [(&str, f64, f64); 9] = [
        ("ln_gamma(1)", ln_gamma(1.0), 0.0),
        ("ln_gamma(10) = ln 9!", ln_gamma(10.0), 362_880f64.ln()),
        (
            "ln_gamma(0.5) = ln √π",
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
        ),
        ("Q(1, 3) = e^-3", gamma_q(1.0, 3.0), (-3.0f64).exp()),
        ("Q(1, 0.2) = e^-0.2", gamma_q(1.0, 0.2), (-0.2f64).exp()),
        ("chi2_sf(2, 2) = e^-1", chi2_sf(2.0, 2.0), (-1.0f64).exp()),
        (
            "chi2_sf(3.841459, 1)",
            chi2_sf(3.841_458_820_694_124, 1.0),
            0.05,
        ),
        (
            "chi2_sf(123.225, 99)",
            chi2_sf(123.225_221_453_361_81, 99.0),
            0.05,
        ),
        ("Q_KS(1)", kolmogorov_sf(1.0), 0.269_999_671_677_354_56),
    ];
    for (what, got, expected) in cases {
        assert!(
            close(got, expected, 1e-10) || (got - expected).abs() < 1e-14,
            "{what}: {got} vs {expected}"
        );
    }
    // Both branches of Q_KS agree where they meet, and the 5 % critical value.
    assert!((kolmogorov_sf(1.0 - 1e-12) - kolmogorov_sf(1.0)).abs() < 1e-10);
    assert!(close(kolmogorov_sf(1.358_098_639_322_550_7), 0.05, 1e-9));
    assert_eq!(kolmogorov_sf(0.0), 1.0);
    assert!(kolmogorov_sf(0.1) > 0.999_999);
    assert_eq!(chi2_sf(0.0, 3.0), 1.0);
}

#[test]
fn ks_worked_examples() {
    let cases: [Case; 5] = [
        (&[50.0, 50.0], &[70, 30], Some((0.2, 0.031_65))),
        (&[50.0, 50.0], &[50, 50], Some((0.0, 1.0))),
        (&[10.0, 0.0, 10.0], &[0, 5, 5], Some((0.5, f64::NAN))),
        (&[50.0, 50.0], &[0, 0], None),
        (&[1.0], &[1, 1], None),
    ];
    for (reference, current, expected) in cases {
        let got = ks_binned(reference, current);
        match (got, expected) {
            (Some(g), Some((d, p))) => {
                assert!((g.statistic - d).abs() < 1e-12, "{reference:?}: {g:?}");
                assert!(
                    p.is_nan() || close(g.p_value, p, 1e-3),
                    "{reference:?}: {g:?}"
                );
            }
            (g, e) => assert_eq!(g.is_some(), e.is_some(), "{reference:?}: {g:?}"),
        }
    }
    assert!(close(ks_p_value(0.1, 400.0), 0.000_624, 1e-2));
}

#[test]
fn chi_square_worked_examples() {
    let cases: [Case; 5] = [
        // 2x2: Yates.
        (&[30.0, 70.0], &[50, 50], Some((7.520_833, 0.006_099))),
        // 2x3 without correction: expected 20/40 per column, (10² + 10²)/20 + 0 + … = 10/… .
        (
            &[10.0, 20.0, 30.0],
            &[30, 20, 10],
            Some((20.0, 4.539_99e-5)),
        ),
        // An empty column is dropped: the same table as the first one.
        (
            &[30.0, 0.0, 70.0],
            &[50, 0, 50],
            Some((7.520_833, 0.006_099)),
        ),
        // One column left: nothing to compare.
        (&[30.0, 0.0], &[50, 0], Some((0.0, 1.0))),
        (&[30.0, 70.0], &[0, 0], None),
    ];
    for (reference, current, expected) in cases {
        let got = chi_square(reference, current);
        match (got, expected) {
            (Some(g), Some((s, p))) => {
                assert!(close(g.statistic, s, 1e-6) || g.statistic == s, "{g:?}");
                assert!(close(g.p_value, p, 1e-4), "{reference:?}: {g:?}");
            }
            (g, e) => assert_eq!(g.is_some(), e.is_some(), "{reference:?}: {g:?}"),
        }
    }
}

#[test]
fn psi_and_js_worked_examples() {
    let psi_cases: [(&[f64], &[u64], Option<f64>); 5] = [
        (&[0.5, 0.5], &[75, 25], Some(0.274_653)),
        (&[50.0, 50.0], &[75, 25], Some(0.274_653)),
        (&[0.5, 0.5], &[50, 50], Some(0.0)),
        (&[0.5, 0.5], &[0, 0], None),
        (&[1.0], &[1, 1], None),
    ];
    for (reference, current, expected) in psi_cases {
        let got = psi(reference, current);
        match (got, expected) {
            (Some(g), Some(e)) => assert!((g - e).abs() < 1e-5, "{g} vs {e}"),
            (g, e) => assert_eq!(g, e),
        }
    }
    let js_cases: [(&[f64], &[u64], Option<f64>); 4] = [
        (&[1.0, 0.0], &[0, 1], Some(1.0)),
        (&[2.0, 2.0], &[5, 5], Some(0.0)),
        // p = [½, ½], q = [1, 0], m = [¾, ¼]: (½log2(⅔) + ½log2(2) + log2(4/3)) / 2 = 0.311278.
        (
            &[1.0, 1.0],
            &[4, 0],
            Some(0.311_278_124_459_132_8f64.sqrt()),
        ),
        (&[1.0, 1.0], &[0, 0], None),
    ];
    for (reference, current, expected) in js_cases {
        let got = jensen_shannon(reference, current);
        match (got, expected) {
            (Some(g), Some(e)) => assert!((g - e).abs() < 1e-12, "{g} vs {e}"),
            (g, e) => assert_eq!(g, e),
        }
    }
}
