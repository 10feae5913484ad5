//! The drift statistics, as pure functions of two histograms: the training-time reference and
//! the live (or offline) current sample. Everything the drift verdict rests on lives here, so
//! it can be checked number by number against SciPy (`tests/drift_scipy.rs`).
//!
//! Histograms come in two shapes with the same code path: numeric bins (quantile edges of the
//! reference, `le` semantics, see [`bin_index`]) and categories (one column per value). The
//! reference is given as counts (`f64`, so proportions times a row count work too); the current
//! sample as integer counts.

/// Floor of both shares in [`psi`], so an empty bin gives a large but finite term.
pub const PSI_EPSILON: f64 = 1e-4;

/// Index of the bin holding `v` with `le` edges: the first edge `>= v`, else `edges.len()`
/// (the open last bin). Profile builder, offline drift and server all bin through this.
///
/// Worked example: edges `[0, 1]` → `-5 → 0`, `0 → 0`, `0.5 → 1`, `1 → 1`, `1.5 → 2`.
/// NaN compares false with every edge and lands in bin 0; callers skip NaN before binning.
pub fn bin_index(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|e| *e < v)
}

/// A test statistic with its p-value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestResult {
    pub statistic: f64,
    pub p_value: f64,
}

/// Two-sample Kolmogorov–Smirnov test on binned data.
///
/// `D = max_j |F_ref(j) − F_cur(j)|` over the bin boundaries, `F` the cumulative shares. With
/// quantile bins of the reference this is the raw-data KS statistic evaluated at the edges (never
/// larger than it). The p-value is the asymptotic two-sided one of `scipy.stats.ks_2samp(method=
/// "asymp")`, which asks the one-sample distribution of `D` for `n_e = round(n·m/(n+m))` (`n`, `m`
/// the two sample sizes); we take Kolmogorov's limit with its first finite-size corrections,
/// `p = Q(x + 1/(6√n_e) + (x − 1)/(4·n_e))`, `x = √n_e·D`, `Q(t) = 2 Σ_{k≥1} (−1)^(k−1) e^(−2k²t²)`
/// (see [`ks_p_value`]); it stays within 0.2 % (relative) of SciPy for `p ≥ 0.01`, `n_e ≥ 100`.
///
/// Worked example: reference `[50, 50]`, current `[70, 30]`: `F_ref = 0.5`, `F_cur = 0.7` at the
/// only inner boundary, `D = 0.2`; `n_e = 100·100/200 = 50`, `x = √50·0.2 = 1.4142`, corrected
/// `x' = 1.4142 + 0.0236 + 0.0021 = 1.4399`, `p = Q(1.4399) ≈ 0.032`.
///
/// `None` when the lengths differ, a sample is empty or a reference count is negative/not finite.
pub fn ks_binned(reference: &[f64], current: &[u64]) -> Option<TestResult> {
    let (n, m) = totals(reference, current)?;
    let (mut f_ref, mut f_cur, mut d) = (0.0, 0u64, 0.0f64);
    for (r, c) in reference.iter().zip(current) {
        f_ref += r;
        f_cur += c;
        d = d.max((f_ref / n - f_cur as f64 / m).abs());
    }
    let n_eff = n * m / (n + m);
    Some(TestResult {
        statistic: d,
        p_value: ks_p_value(d, n_eff.round().max(1.0)),
    })
}

/// Two-sided p-value of a KS distance `d` with effective sample size `n` (see [`ks_binned`]).
///
/// Worked example: `d = 0.1`, `n = 400`: `x = 2`, `x' = 2 + 1/120 + 1/1600 = 2.00896`,
/// `p = Q(2.00896) ≈ 2·e^(−8.072) ≈ 0.000625`.
pub fn ks_p_value(d: f64, n: f64) -> f64 {
    if d.is_nan() || d <= 0.0 {
        return 1.0;
    }
    let sqrt_n = n.sqrt();
    let x = sqrt_n * d;
    kolmogorov_sf(x + 1.0 / (6.0 * sqrt_n) + (x - 1.0) / (4.0 * n))
}

/// `Q(t) = P(K > t)` of Kolmogorov's limiting distribution.
///
/// For `t < 1` the alternating series converges slowly, so the Jacobi-theta form of the CDF is
/// used there: `P(K ≤ t) = √(2π)/t · Σ_{k≥1} e^(−(2k−1)²π²/(8t²))`. Examples: `Q(1) ≈ 0.26999967`,
/// `Q(1.3581) ≈ 0.05`.
pub fn kolmogorov_sf(t: f64) -> f64 {
    if t.is_nan() || t <= 0.0 {
        return 1.0;
    }
    let q = if t < 1.0 {
        let pi2_8t2 = std::f64::consts::PI.powi(2) / (8.0 * t * t);
        let sum: f64 = (1..=20)
            .map(|k| (-((2 * k - 1) as f64).powi(2) * pi2_8t2).exp())
            .sum();
        1.0 - (2.0 * std::f64::consts::PI).sqrt() / t * sum
    } else {
        let mut sum = 0.0;
        for k in 1..=100 {
            let term = (-2.0 * (k * k) as f64 * t * t).exp();
            sum += if k % 2 == 1 { term } else { -term };
            if term < 1e-18 {
                break;
            }
        }
        2.0 * sum
    };
    q.clamp(0.0, 1.0)
}

/// Chi-square test of homogeneity on the 2×k contingency table (reference counts, current
/// counts), like `scipy.stats.chi2_contingency`: columns empty in both rows are dropped,
/// expected counts come from the margins, Yates' continuity correction applies when the table
/// has one degree of freedom, and the p-value is the chi-square survival function with
/// `k − 1` degrees of freedom ([`chi2_sf`]). A single remaining column gives `0` and `p = 1`.
///
/// Worked example: reference `[30, 70]`, current `[50, 50]`: margins 100/100, columns 80/120,
/// expected 40/60 in both rows; every `|O − E| = 10`, Yates makes it 9.5, so
/// `χ² = 9.5²·(1/40 + 1/60 + 1/40 + 1/60) = 7.5208`, `p = chi2_sf(7.5208, 1) ≈ 0.0061`.
///
/// `None` when the lengths differ or a row is empty.
pub fn chi_square(reference: &[f64], current: &[u64]) -> Option<TestResult> {
    let (n, m) = totals(reference, current)?;
    let columns: Vec<(f64, f64)> = reference
        .iter()
        .zip(current)
        .map(|(r, c)| (*r, *c as f64))
        .filter(|(r, c)| r + c > 0.0)
        .collect();
    let dof = columns.len().saturating_sub(1);
    if dof == 0 {
        return Some(TestResult {
            statistic: 0.0,
            p_value: 1.0,
        });
    }
    let total = n + m;
    let mut statistic = 0.0;
    for (r, c) in &columns {
        let column = r + c;
        for (observed, row) in [(*r, n), (*c, m)] {
            let expected = row * column / total;
            let mut diff = (observed - expected).abs();
            if dof == 1 {
                diff = (diff - 0.5).max(0.0);
            }
            statistic += diff * diff / expected;
        }
    }
    Some(TestResult {
        statistic,
        p_value: chi2_sf(statistic, dof as f64),
    })
}

/// Survival function of the chi-square distribution: `P(X > x) = Q(dof/2, x/2)`.
///
/// Examples: `chi2_sf(3.841459, 1) ≈ 0.05`, `chi2_sf(2, 2) = e^(−1) ≈ 0.367879`.
pub fn chi2_sf(x: f64, dof: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return 1.0;
    }
    gamma_q(dof / 2.0, x / 2.0)
}

/// Regularised upper incomplete gamma function `Q(a, x) = Γ(a, x)/Γ(a)` for `a > 0`, `x ≥ 0`.
///
/// The power series of `P = 1 − Q` below `x < a + 1`, Lentz's continued fraction of `Q` above;
/// both to machine precision (about 1e-14 relative for moderate `a`, `x`).
/// Example: `Q(1, x) = e^(−x)`.
pub fn gamma_q(a: f64, x: f64) -> f64 {
    if a.is_nan() || a <= 0.0 || x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    let log_prefix = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // P(a, x) = e^(−x) x^a / Γ(a+1) · Σ x^k / ((a+1)…(a+k))
        let (mut term, mut sum, mut ap) = (1.0 / a, 1.0 / a, a);
        for _ in 0..1000 {
            ap += 1.0;
            term *= x / ap;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        (1.0 - sum * log_prefix.exp()).clamp(0.0, 1.0)
    } else {
        // Q(a, x) = e^(−x) x^a / Γ(a) · 1/(x+1−a− 1·(1−a)/(x+3−a− 2·(2−a)/(x+5−a− …)))
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..1000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        (log_prefix.exp() * h).clamp(0.0, 1.0)
    }
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, 9 terms; ~1e-15 relative).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).abs().ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

/// Population stability index of `current` counts against `reference` counts (or shares):
/// `Σ (a_i − e_i) · ln(a_i / e_i)`, `a_i`/`e_i` the current/reference shares, both floored at
/// [`PSI_EPSILON`]. `None` when nothing was observed or the lengths differ.
///
/// Worked example: reference `[0.5, 0.5]`, current `[75, 25]` →
/// `0.25·ln(1.5) + (−0.25)·ln(0.5) = 0.1014 + 0.1733 = 0.2747` (a common reading:
/// < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift).
pub fn psi(reference: &[f64], current: &[u64]) -> Option<f64> {
    let (n, m) = totals(reference, current)?;
    let score = reference
        .iter()
        .zip(current)
        .map(|(r, c)| {
            let e = (r / n).max(PSI_EPSILON);
            let a = (*c as f64 / m).max(PSI_EPSILON);
            (a - e) * (a / e).ln()
        })
        .sum();
    Some(score)
}

/// Jensen–Shannon distance (base 2, in `[0, 1]`) between the normalised `reference` and
/// `current` histograms, as `scipy.spatial.distance.jensenshannon(p, q, base=2)`:
/// `√((KL(p‖m) + KL(q‖m)) / 2)`, `m = (p + q)/2`, with `0·log 0 = 0` (no epsilon).
///
/// Worked example: `p = [1, 0]`, `q = [0, 1]`: `m = [½, ½]`, each KL is `log2(2) = 1`, so the
/// distance is `√1 = 1`; `p = q` gives `0`. `None` when a histogram is empty or lengths differ.
pub fn jensen_shannon(reference: &[f64], current: &[u64]) -> Option<f64> {
    let (n, m) = totals(reference, current)?;
    let mut sum = 0.0;
    for (r, c) in reference.iter().zip(current) {
        let (p, q) = (r / n, *c as f64 / m);
        let mid = (p + q) / 2.0;
        for share in [p, q] {
            if share > 0.0 {
                sum += share * (share / mid).log2();
            }
        }
    }
    Some((sum / 2.0).max(0.0).sqrt())
}

/// Sample sizes `(n, m)` of a well-formed pair of histograms.
fn totals(reference: &[f64], current: &[u64]) -> Option<(f64, f64)> {
    if reference.len() != current.len() || reference.is_empty() {
        return None;
    }
    if reference.iter().any(|r| r.is_nan() || *r < 0.0) {
        return None;
    }
    let n: f64 = reference.iter().sum();
    let m = current.iter().sum::<u64>() as f64;
    (n > 0.0 && n.is_finite() && m > 0.0).then_some((n, m))
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
