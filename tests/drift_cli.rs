//! `modelpilot profile` and `modelpilot drift` end to end, on generated data (seeded, so every
//! run sees the same numbers): the verdicts have the error rates a drift alarm needs, and agree
//! with the raw-data tests a data scientist would run in Python.
//!
//! Data: three numeric features (`x0` normal, `x1` log-normal, `x2` normal with another scale)
//! and one categorical (`c`: a 40 %, b 30 %, c 20 %, d 10 %). The profile is built from 5,000
//! rows; every trial checks 1,000 fresh rows with the binary, default settings (KS per numeric
//! feature on the profile's 100 quantile bins, chi-square for `c`, Bonferroni at 0.05).
//!
//! * false alarms: no-drift trials, at most 5 % may report drift;
//! * detection: `x0` shifted by 0.5 σ, at least 95 % must report drift;
//! * agreement: every trial (no drift, small shifts near the detection limit, large shifts)
//!   also goes through SciPy on the raw rows — `ks_2samp(method="asymp")` per numeric feature,
//!   `chi2_contingency` for `c`, drift when a p-value is below 0.05 / 4, the rule of Alibi
//!   Detect's `TabularDrift` — and at least 95 % of the dataset verdicts must agree.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use rand::{Rng, SeedableRng, rngs::StdRng};

const REFERENCE_ROWS: usize = 5_000;
const CURRENT_ROWS: usize = 1_000;
const CATEGORIES: [(&str, f64); 4] = [("a", 0.4), ("b", 0.3), ("c", 0.2), ("d", 0.1)];

/// A change of one feature: a mean shift of `amount` σ for `x0`–`x2` (of the underlying normal
/// for the log-normal `x1`); for `c`, `amount · 0.1` of probability moved from `a` to `d`.
#[derive(Clone, Copy, Debug)]
struct Shift {
    feature: usize,
    amount: f64,
}

fn normal(rng: &mut StdRng) -> f64 {
    // Box–Muller; 1 − u keeps the logarithm finite.
    let (u, v): (f64, f64) = (rng.random(), rng.random());
    (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn category(rng: &mut StdRng, moved: f64) -> &'static str {
    let mut u: f64 = rng.random();
    for (i, (name, p)) in CATEGORIES.iter().enumerate() {
        let p = match i {
            0 => p - moved,
            3 => p + moved,
            _ => *p,
        };
        if u < p {
            return name;
        }
        u -= p;
    }
    "d"
}

fn csv(rng: &mut StdRng, rows: usize, shift: Option<Shift>) -> String {
    let by = |feature: usize| {
        shift
            .filter(|s| s.feature == feature)
            .map_or(0.0, |s| s.amount)
    };
    let mut text = String::from("x0,x1,x2,c\n");
    for _ in 0..rows {
        let x0 = normal(rng) + by(0);
        let x1 = (0.5 * (normal(rng) + by(1))).exp();
        let x2 = 5.0 + 2.0 * (normal(rng) + by(2));
        let c = category(rng, 0.1 * by(3));
        text.push_str(&format!("{x0},{x1},{x2},{c}\n"));
    }
    text
}

fn modelpilot(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_modelpilot"))
        .args(args)
        .output()
        .expect("run modelpilot")
}

/// Runs `modelpilot` and asserts it succeeded (its stderr in the message); its output.
fn modelpilot_ok(args: &[&str]) -> std::process::Output {
    let out = modelpilot(args);
    assert!(
        out.status.success(),
        "modelpilot {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 temp path")
}

/// Runs `modelpilot drift` on a trial file; the dataset verdict.
fn binary_verdict(profile: &Path, data: &Path) -> bool {
    let out = modelpilot_ok(&["drift", "--profile", path(profile), "--data", path(data)]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report JSON");
    report["drift"]
        .as_bool()
        .expect("a verdict with 1,000 rows")
}

const SCIPY: &str = r#"
import csv, json, sys
from collections import Counter
import numpy as np
from scipy.stats import ks_2samp, chi2_contingency

def load(path):
    with open(path) as f:
        rows = list(csv.reader(f))
    return {name: column for name, column in zip(rows[0], zip(*rows[1:]))}

ref = load(sys.argv[1])
numeric = {n: np.array(ref[n], dtype=float) for n in ("x0", "x1", "x2")}
ref_c = Counter(ref["c"])
out = []
for path in json.load(open(sys.argv[2])):
    cur = load(path)
    ps = [float(ks_2samp(numeric[n], np.array(cur[n], dtype=float), method="asymp").pvalue)
          for n in ("x0", "x1", "x2")]
    cur_c = Counter(cur["c"])
    values = sorted(set(ref_c) | set(cur_c))
    table = np.array([[ref_c[v] for v in values], [cur_c[v] for v in values]])
    ps.append(float(chi2_contingency(table).pvalue))
    out.append(ps)
json.dump(out, sys.stdout)
"#;

/// SciPy's raw-data p-values (`x0`, `x1`, `x2`, `c`) of every trial file, in one Python run.
fn scipy_p_values(dir: &Path, reference: &Path, trials: &[PathBuf]) -> Vec<[f64; 4]> {
    let list = dir.join("trials.json");
    let names: Vec<&str> = trials.iter().map(|p| path(p)).collect();
    std::fs::write(&list, serde_json::to_string(&names).expect("json")).expect("write list");
    let python = std::env::var("MODELPILOT_PYTHON")
        .unwrap_or_else(|_| panic!("MODELPILOT_PYTHON is not set: eval \"$(hack/pyenv.sh)\""));
    let out = Command::new(python)
        .args(["-c", SCIPY, path(reference), path(&list)])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scipy output")
}

#[test]
fn verdicts_have_low_false_alarms_high_power_and_agree_with_scipy() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = StdRng::seed_from_u64(20_240_601);
    let reference = dir.path().join("reference.csv");
    std::fs::write(&reference, csv(&mut rng, REFERENCE_ROWS, None)).expect("write reference");
    let profile = dir.path().join("profile.json");
    modelpilot_ok(&[
        "profile",
        "--data",
        path(&reference),
        "--output",
        path(&profile),
        "--categorical",
        "c",
    ]);

    // (set name, shift) per trial: no drift, 0.5 σ on x0, near the limit, far beyond it.
    let mut plan: Vec<(&str, Option<Shift>)> = Vec::new();
    plan.extend((0..120).map(|_| ("none", None)));
    plan.extend((0..100).map(|_| {
        (
            "x0 +0.5σ",
            Some(Shift {
                feature: 0,
                amount: 0.5,
            }),
        )
    }));
    for i in 0..100 {
        let amount = 0.05 + 0.2 * rng.random::<f64>();
        plan.push((
            "small",
            Some(Shift {
                feature: i % 4,
                amount,
            }),
        ));
    }
    plan.extend((0..20).map(|i| {
        (
            "large",
            Some(Shift {
                feature: i % 4,
                amount: 1.0,
            }),
        )
    }));

    let mut files = Vec::with_capacity(plan.len());
    for (i, (_, shift)) in plan.iter().enumerate() {
        let file = dir.path().join(format!("trial-{i}.csv"));
        std::fs::write(&file, csv(&mut rng, CURRENT_ROWS, *shift)).expect("write trial");
        files.push(file);
    }
    let ours: Vec<bool> = files.iter().map(|f| binary_verdict(&profile, f)).collect();
    let binary_done = started.elapsed();
    let level = 0.05 / 4.0;
    let theirs: Vec<bool> = scipy_p_values(dir.path(), &reference, &files)
        .iter()
        .map(|ps| ps.iter().any(|p| *p < level))
        .collect();
    assert_eq!(theirs.len(), ours.len());

    let rate = |set: &str, verdicts: &[bool]| {
        let in_set: Vec<bool> = plan
            .iter()
            .zip(verdicts)
            .filter(|((name, _), _)| *name == set)
            .map(|(_, v)| *v)
            .collect();
        in_set.iter().filter(|v| **v).count() as f64 / in_set.len() as f64
    };
    let false_alarms = rate("none", &ours);
    let detection = rate("x0 +0.5σ", &ours);
    let agreeing = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    let agreement = agreeing as f64 / ours.len() as f64;
    eprintln!(
        "trials {}: false alarms {:.1} % (scipy {:.1} %), detection of 0.5σ {:.1} % (scipy {:.1} %), \
         small shifts detected {:.1} % (scipy {:.1} %), agreement with scipy {agreeing}/{} = {:.1} %; \
         binary {:.1?}, total {:.1?}",
        ours.len(),
        100.0 * false_alarms,
        100.0 * rate("none", &theirs),
        100.0 * detection,
        100.0 * rate("x0 +0.5σ", &theirs),
        100.0 * rate("small", &ours),
        100.0 * rate("small", &theirs),
        ours.len(),
        100.0 * agreement,
        binary_done,
        started.elapsed(),
    );
    assert!(false_alarms <= 0.05, "false alarms {false_alarms}");
    assert!(detection >= 0.95, "detection {detection}");
    assert!(agreement >= 0.95, "agreement {agreement}");
}

#[test]
fn bad_input_fails_with_a_message_and_other_methods_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data.csv");
    std::fs::write(&data, "x,c\n1,a\n2,b\n3,a\n4,b\n").expect("write data");
    let profile = dir.path().join("profile.json");
    modelpilot_ok(&[
        "profile",
        "--data",
        path(&data),
        "--output",
        path(&profile),
        "--bins",
        "2",
    ]);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).expect("profile")).expect("json");
    assert_eq!(written["features"][1]["kind"], "categorical", "{written}");
    assert_eq!(
        written["features"][0]["edges"],
        serde_json::json!([2.0]),
        "{written}"
    );

    let out = modelpilot_ok(&[
        "drift",
        "--profile",
        path(&profile),
        "--data",
        path(&data),
        "--method",
        "psi",
        "--min-samples",
        "1",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("report");
    assert_eq!(report["drift"], false, "{report}");
    assert_eq!(report["features"][0]["method"], "PSI", "{report}");

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "x,c\n1,a\nnot-a-number,b\n").expect("write bad data");
    let missing = dir.path().join("missing.csv");
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["drift", "--profile", path(&profile), "--data", path(&bad)],
            "not numeric",
        ),
        (
            vec![
                "drift",
                "--profile",
                path(&profile),
                "--data",
                path(&missing),
            ],
            "missing.csv",
        ),
        (
            vec!["drift", "--profile", path(&data), "--data", path(&data)],
            "not valid JSON",
        ),
        (
            vec![
                "profile",
                "--data",
                path(&data),
                "--output",
                path(&profile),
                "--bins",
                "1",
            ],
            "bin count",
        ),
    ];
    for (args, expected) in cases {
        let out = modelpilot(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
    }
}
