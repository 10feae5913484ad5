//! The drift statistics of `modelpilot::drift::stats` against SciPy on fixed histograms: the
//! numbers a drift verdict rests on are the numbers a data scientist gets in Python.
//!
//! * KS: our binned test against `scipy.stats.ks_2samp(method="asymp")` on the binned data
//!   (every value replaced by its bin index), which is exactly what the binned test measures.
//!   The statistic must agree to rounding. The p-value: SciPy evaluates the one-sample
//!   distribution of `D` at `n_e = round(n·m/(n+m))`; we use Kolmogorov's limit with its first
//!   finite-size corrections, whose relative error against that distribution is below 0.2 %
//!   for `p ≥ 0.01` and `n_e ≥ 100` and a few per cent in the far tail (`p ~ 1e-5`). The
//!   tolerance is therefore 0.5 % relative for `p ≥ 0.01` and 5 % relative below (the
//!   decisions at any level between 1e-5 and 1 are unaffected by such differences unless `p`
//!   sits within them of the level).
//! * chi-square: `scipy.stats.chi2_contingency` on the 2×k table with empty columns dropped
//!   (it rejects them) — statistic and p-value to 1e-9 relative (our incomplete gamma is
//!   accurate to ~1e-14).
//! * PSI: SciPy has none; the script computes the same formula with NumPy (shares floored at
//!   1e-4), to 1e-12.
//! * Jensen–Shannon: `scipy.spatial.distance.jensenshannon(p, q, base=2)`, to 1e-12.

use std::{path::PathBuf, process::Command};

use modelpilot::drift::stats;

const SCRIPT: &str = r#"
import json, sys
import numpy as np
from scipy.stats import ks_2samp, chi2_contingency
from scipy.spatial.distance import jensenshannon

out = []
for case in json.load(open(sys.argv[1])):
    ref = np.array(case["reference"], dtype=float)
    cur = np.array(case["current"], dtype=float)
    bins = np.arange(len(ref))
    ks = ks_2samp(np.repeat(bins, ref.astype(int)), np.repeat(bins, cur.astype(int)), method="asymp")
    table = np.array([ref, cur])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] > 1:
        chi = chi2_contingency(table)
        chi = [float(chi.statistic), float(chi.pvalue)]
    else:
        chi = [0.0, 1.0]
    e = np.maximum(ref / ref.sum(), 1e-4)
    a = np.maximum(cur / cur.sum(), 1e-4)
    psi = float(np.sum((a - e) * np.log(a / e)))
    js = float(jensenshannon(ref, cur, base=2))
    out.append({"ks": [float(ks.statistic), float(ks.pvalue)], "chi2": chi, "psi": psi, "js": js})
json.dump(out, sys.stdout)
"#;

/// Fixed histograms: (reference counts, current counts). Shapes from 2 bins (Yates) to 100
/// quantile bins, sizes from a few hundred to 10,000, from identical to far apart.
fn cases() -> Vec<(Vec<f64>, Vec<u64>)> {
    let quantile_ref = vec![50.0; 100];
    let shifted: Vec<u64> = (0..100u64).map(|i| 5 + i / 10).collect();
    let wavy: Vec<u64> = (0..100u64).map(|i| 10 + (i * 7) % 5).collect();
    vec![
        (vec![50.0, 50.0], vec![70, 30]),
        (vec![300.0, 700.0], vec![120, 280]),
        (vec![300.0, 700.0], vec![150, 250]),
        (
            vec![120.0, 340.0, 560.0, 300.0, 80.0],
            vec![30, 90, 150, 95, 35],
        ),
        (
            vec![120.0, 340.0, 560.0, 300.0, 80.0],
            vec![60, 90, 110, 95, 45],
        ),
        (vec![120.0, 0.0, 560.0, 300.0, 0.0], vec![30, 0, 150, 95, 5]),
        (
            vec![1000.0, 2000.0, 3000.0, 2000.0, 1000.0],
            vec![100, 210, 290, 190, 110],
        ),
        (
            vec![1000.0, 2000.0, 3000.0, 2000.0, 1000.0],
            vec![150, 250, 300, 200, 100],
        ),
        (quantile_ref.clone(), vec![10; 100]),
        (quantile_ref.clone(), shifted),
        (quantile_ref, wavy),
        (
            vec![2500.0, 2500.0, 2500.0, 2500.0],
            vec![260, 240, 255, 245],
        ),
        (
            vec![2500.0, 2500.0, 2500.0, 2500.0],
            vec![300, 250, 250, 200],
        ),
    ]
}

fn python() -> String {
    std::env::var("MODELPILOT_PYTHON").unwrap_or_else(|_| {
        panic!("MODELPILOT_PYTHON is not set: run `eval \"$(hack/pyenv.sh)\"` first")
    })
}

fn scipy(cases: &[(Vec<f64>, Vec<u64>)]) -> Vec<serde_json::Value> {
    let dir = tempfile::tempdir().expect("temp dir");
    let input: PathBuf = dir.path().join("cases.json");
    let json: Vec<serde_json::Value> = cases
        .iter()
        .map(|(r, c)| serde_json::json!({"reference": r, "current": c}))
        .collect();
    std::fs::write(&input, serde_json::to_string(&json).expect("json")).expect("write cases");
    let output = Command::new(python())
        .args(["-c", SCRIPT])
        .arg(&input)
        .output()
        .expect("run python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("scipy output")
}

/// Allowed relative error of the KS p-value (see the module docs): the corrected Kolmogorov
/// limit is within 0.2 % of SciPy's exact one-sample distribution for `p ≥ 0.01` once
/// `n_e ≥ 100`, within about 1 % for smaller `n_e`, and drifts apart in the far tail (about
/// 10 % at `p ~ 1e-12`), where no decision at a sensible level depends on it.
fn ks_tolerance(n_e: f64, p: f64) -> f64 {
    match (n_e >= 100.0, p) {
        (true, p) if p >= 0.01 => 5e-3,
        (false, p) if p >= 0.01 => 2e-2,
        (_, p) if p >= 1e-6 => 5e-2,
        _ => 0.25,
    }
}

fn relative(got: f64, expected: f64) -> f64 {
    (got - expected).abs() / expected.abs().max(1e-300)
}

#[test]
fn statistics_match_scipy() {
    let cases = cases();
    let expected = scipy(&cases);
    let mut worst_ks_p = 0.0f64;
    for ((reference, current), want) in cases.iter().zip(&expected) {
        let label = format!("{reference:?} vs {current:?}");
        let f = |key: &str, i: usize| want[key][i].as_f64().expect("number");

        let ks = stats::ks_binned(reference, current).expect("ks");
        assert!(
            (ks.statistic - f("ks", 0)).abs() < 1e-12,
            "KS D {label}: {ks:?} vs {want}"
        );
        let p = f("ks", 1);
        let n: f64 = reference.iter().sum();
        let m = current.iter().sum::<u64>() as f64;
        let n_e = (n * m / (n + m)).round();
        let error = if p == 1.0 {
            (ks.p_value - p).abs()
        } else {
            relative(ks.p_value, p)
        };
        eprintln!(
            "KS n_e {n_e:>5}: D {:.4}, p scipy {p:.3e} ours {:.3e}, relative error {error:.1e}",
            ks.statistic, ks.p_value
        );
        assert!(
            error <= ks_tolerance(n_e, p),
            "KS p {label}: {} vs {p}",
            ks.p_value
        );
        if p >= 0.01 && n_e >= 100.0 {
            worst_ks_p = worst_ks_p.max(error);
        }

        let chi = stats::chi_square(reference, current).expect("chi2");
        let (s, p) = (f("chi2", 0), f("chi2", 1));
        assert!(
            relative(chi.statistic, s) < 1e-9 || chi.statistic == s,
            "χ² {label}: {chi:?} vs {s}"
        );
        assert!(
            relative(chi.p_value, p) < 1e-9,
            "χ² p {label}: {chi:?} vs {p}"
        );

        let psi = stats::psi(reference, current).expect("psi");
        assert!(
            (psi - want["psi"].as_f64().expect("psi")).abs() < 1e-12,
            "PSI {label}"
        );
        let js = stats::jensen_shannon(reference, current).expect("js");
        assert!(
            (js - want["js"].as_f64().expect("js")).abs() < 1e-12,
            "JS {label}"
        );
    }
    eprintln!("largest relative KS p-value error (p >= 0.01, n_e >= 100): {worst_ks_p:.2e}");
}
