//! From per-feature counts to a drift verdict: one test (or distance) per feature, then one
//! answer for the dataset. Pure, so the offline CLI and the controller (live window counts)
//! reach the same verdict from the same numbers.
//!
//! The dataset rule follows Alibi Detect's `TabularDrift`: every feature gets its own test
//! (Kolmogorov–Smirnov for numeric, chi-square for categorical features under
//! [`Method::Auto`]) and the dataset drifted when any feature's p-value falls below the level
//! divided by the number of features tested ([`Correction::Bonferroni`]). Distances (PSI,
//! Jensen–Shannon) have no p-value; a feature drifted when its distance exceeds the threshold.
//!
//! Worked example (defaults: level 0.05, Bonferroni, 100 samples at least): three numeric
//! features with 1,000 current rows and KS p-values `0.2, 0.03, 0.001` are each compared with
//! `0.05 / 3 = 0.0167`: only the third drifted, so the dataset drifted. With 50 rows every
//! feature is below `min_samples`: each `drift` is `None` and so is the report's.

use std::{collections::BTreeMap, str::FromStr};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::stats;
use crate::serve::observe::profile::{BaselineProfile, Bins, Kind};

/// Reference size assumed for a profile with proportions but neither counts nor `rows`: so
/// large that both tests become their one-sample forms (the reference taken as exact).
const EXACT_REFERENCE_ROWS: f64 = 1e9;

/// The per-feature test or distance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Method {
    /// KS for numeric features, chi-square for categorical ones.
    #[default]
    Auto,
    /// Two-sample Kolmogorov–Smirnov on the bins (categorical features: chi-square, since
    /// categories have no order).
    #[serde(rename = "KS")]
    Ks,
    /// Chi-square test of homogeneity on bins or categories.
    ChiSquare,
    /// Population stability index (no p-value; threshold default 0.2).
    #[serde(rename = "PSI")]
    Psi,
    /// Jensen–Shannon distance, base 2 (no p-value; threshold default 0.1).
    JensenShannon,
}

impl Method {
    /// The method actually run on a quantity of this kind.
    fn resolve(self, kind: Kind) -> Method {
        match (self, kind) {
            (Method::Auto, Kind::Numeric) => Method::Ks,
            (Method::Auto | Method::Ks, Kind::Categorical) => Method::ChiSquare,
            (method, _) => method,
        }
    }

    /// The name in reports and status, as `spec.monitoring` spells the methods.
    pub fn name(self) -> &'static str {
        match self {
            Method::Auto => "Auto",
            Method::Ks => "KS",
            Method::ChiSquare => "ChiSquare",
            Method::Psi => "PSI",
            Method::JensenShannon => "JensenShannon",
        }
    }

    /// Default threshold of a distance; `None` for tests (they use the p-value level).
    pub fn default_threshold(self) -> Option<f64> {
        match self {
            Method::Psi => Some(0.2),
            Method::JensenShannon => Some(0.1),
            _ => None,
        }
    }
}

impl FromStr for Method {
    type Err = String;

    /// `auto`, `ks`, `chi-square` (or `chisquare`, `chi2`), `psi`, `js` (or `jensen-shannon`);
    /// any case.
    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().replace('_', "-").as_str() {
            "auto" => Ok(Method::Auto),
            "ks" => Ok(Method::Ks),
            "chi-square" | "chisquare" | "chi2" => Ok(Method::ChiSquare),
            "psi" => Ok(Method::Psi),
            "js" | "jensen-shannon" | "jensenshannon" => Ok(Method::JensenShannon),
            _ => Err(format!(
                "unknown drift method {text:?} (auto, ks, chi-square, psi, js)"
            )),
        }
    }
}

/// How the per-feature p-value level accounts for testing many features at once.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Correction {
    /// Level divided by the number of features tested.
    #[default]
    Bonferroni,
    /// Every feature at the full level (more false alarms with many features).
    None,
}

impl FromStr for Correction {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_lowercase().as_str() {
            "bonferroni" => Ok(Correction::Bonferroni),
            "none" => Ok(Correction::None),
            _ => Err(format!("unknown correction {text:?} (bonferroni, none)")),
        }
    }
}

/// Settings of a drift evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct DriftConfig {
    pub method: Method,
    /// Significance level of the dataset verdict (tests only).
    pub p_value: f64,
    /// Distance above which a feature drifted (PSI / Jensen–Shannon); method default if unset.
    pub threshold: Option<f64>,
    pub correction: Correction,
    /// Fewer current samples than this leave a feature without a verdict.
    pub min_samples: u64,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            method: Method::Auto,
            p_value: 0.05,
            threshold: None,
            correction: Correction::Bonferroni,
            min_samples: 100,
        }
    }
}

/// Current counts of one quantity, shaped like its profile entry.
#[derive(Clone, Debug, PartialEq)]
pub enum Counts {
    /// Per bin of the profile's edges (`edges.len() + 1` entries, see [`super::bin_index`]).
    Binned(Vec<u64>),
    /// Per category text; values unknown to the profile are allowed (e.g. `__other__`).
    Categories(BTreeMap<String, u64>),
}

impl Counts {
    /// Number of observations.
    pub fn samples(&self) -> u64 {
        match self {
            Counts::Binned(counts) => counts.iter().sum(),
            Counts::Categories(counts) => counts.values().sum(),
        }
    }
}

/// The verdict on one feature (or the prediction).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FeatureResult {
    pub name: String,
    /// The method run (never `Auto`).
    pub method: Method,
    /// The test statistic or distance; `None` without current samples.
    pub statistic: Option<f64>,
    /// The p-value (tests only).
    pub p_value: Option<f64>,
    /// Tests: the per-feature level after correction (drift when `pValue < threshold`);
    /// distances: the distance threshold (drift when `statistic > threshold`).
    pub threshold: f64,
    /// `None` below `minSamples`.
    pub drift: Option<bool>,
    /// Current observations of the feature.
    pub samples: u64,
}

/// The verdict on a dataset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Any feature drifted; `None` when no feature reached `minSamples`.
    pub drift: Option<bool>,
    pub features: Vec<FeatureResult>,
}

/// Counts that do not fit the profile, or settings out of range.
#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("{name}: {reason}")]
    Shape { name: String, reason: String },
    #[error("drift settings: {0}")]
    Config(String),
}

/// Evaluates every profile feature against its `current` counts (missing counts: no samples).
pub fn evaluate(
    profile: &BaselineProfile,
    current: &BTreeMap<String, Counts>,
    config: &DriftConfig,
) -> Result<Report, DriftError> {
    check_config(config)?;
    let empty = Counts::Binned(Vec::new());
    let measured = profile
        .features
        .iter()
        .map(|f| {
            let counts = current.get(&f.name).unwrap_or(&empty);
            measure(&f.name, &f.bins, counts, profile.rows, config)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tested = measured
        .iter()
        .filter(|m| m.p_value.is_some() && m.samples >= config.min_samples)
        .count();
    let level = match config.correction {
        Correction::Bonferroni => config.p_value / tested.max(1) as f64,
        Correction::None => config.p_value,
    };
    let features: Vec<FeatureResult> = measured
        .into_iter()
        .map(|m| verdict(m, level, config))
        .collect();
    let verdicts = features.iter().filter_map(|f| f.drift);
    let drift = verdicts.reduce(|a, b| a || b);
    Ok(Report { drift, features })
}

/// Evaluates the prediction distribution (named `prediction`; one test, so no correction).
/// `None` when the profile has no prediction baseline.
pub fn evaluate_prediction(
    profile: &BaselineProfile,
    current: &Counts,
    config: &DriftConfig,
) -> Result<Option<FeatureResult>, DriftError> {
    check_config(config)?;
    let Some(bins) = &profile.prediction else {
        return Ok(None);
    };
    let measured = measure("prediction", bins, current, profile.rows, config)?;
    Ok(Some(verdict(measured, config.p_value, config)))
}

fn check_config(config: &DriftConfig) -> Result<(), DriftError> {
    if !(config.p_value > 0.0 && config.p_value < 1.0) {
        return Err(DriftError::Config("pValue must be in (0, 1)".into()));
    }
    if config
        .threshold
        .is_some_and(|t| !(t.is_finite() && t >= 0.0))
    {
        let reason = "threshold must be a finite, non-negative number";
        return Err(DriftError::Config(reason.into()));
    }
    Ok(())
}

/// A feature measured, before the verdict: `FeatureResult` without threshold and drift.
fn measure(
    name: &str,
    bins: &Bins,
    current: &Counts,
    rows: Option<u64>,
    config: &DriftConfig,
) -> Result<FeatureResult, DriftError> {
    let method = config.method.resolve(bins.kind);
    let samples = current.samples();
    let mut result = FeatureResult {
        name: name.to_string(),
        method,
        statistic: None,
        p_value: None,
        threshold: 0.0,
        drift: None,
        samples,
    };
    if samples == 0 {
        return Ok(result);
    }
    let shape = |reason: String| DriftError::Shape {
        name: name.to_string(),
        reason,
    };
    let (reference, current) = aligned(bins, current, rows).map_err(shape)?;
    let test = |r: Option<stats::TestResult>| r.map(|t| (t.statistic, Some(t.p_value)));
    let distance = |d: Option<f64>| d.map(|d| (d, None));
    let outcome = match method {
        Method::Auto | Method::Ks => test(stats::ks_binned(&reference, &current)),
        Method::ChiSquare => test(stats::chi_square(&reference, &current)),
        Method::Psi => distance(stats::psi(&reference, &current)),
        Method::JensenShannon => distance(stats::jensen_shannon(&reference, &current)),
    };
    if let Some((statistic, p_value)) = outcome {
        result.statistic = Some(statistic);
        result.p_value = p_value;
    }
    Ok(result)
}

fn verdict(mut result: FeatureResult, level: f64, config: &DriftConfig) -> FeatureResult {
    let enough = result.samples >= config.min_samples;
    match (result.method.default_threshold(), result.p_value) {
        (Some(default), _) => {
            result.threshold = config.threshold.unwrap_or(default);
            let over = result.statistic.map(|s| s > result.threshold);
            result.drift = over.filter(|_| enough);
        }
        (None, p_value) => {
            result.threshold = level;
            result.drift = p_value.map(|p| p < level).filter(|_| enough);
        }
    }
    result
}

/// Reference and current counts side by side, bin by bin or category by category (profile
/// categories in file order, then unknown current ones in text order).
fn aligned(
    bins: &Bins,
    current: &Counts,
    rows: Option<u64>,
) -> Result<(Vec<f64>, Vec<u64>), String> {
    match (bins.kind, current) {
        (Kind::Numeric, Counts::Binned(counts)) => {
            let expected = bins.edges.len() + 1;
            if counts.len() != expected {
                let got = counts.len();
                return Err(format!("{got} bin counts, the profile has {expected} bins"));
            }
            let reference = match (&bins.counts, &bins.proportions) {
                (Some(counts), _) => counts.clone(),
                (None, Some(shares)) => {
                    let n = rows.map_or(EXACT_REFERENCE_ROWS, |r| r as f64);
                    shares.iter().map(|s| s * n).collect()
                }
                (None, None) => return Err("the profile has no baseline counts".into()),
            };
            Ok((reference, counts.clone()))
        }
        (Kind::Categorical, Counts::Categories(counts)) => {
            let known = bins.category_counts().into_iter().flatten();
            let mut pairs: Vec<(f64, u64)> = known
                .map(|(v, n)| (n as f64, counts.get(v).copied().unwrap_or(0)))
                .collect();
            let is_known = |v: &str| {
                bins.category_counts()
                    .into_iter()
                    .flatten()
                    .any(|c| c.0 == v)
            };
            let unknown = counts.iter().filter(|(v, _)| !is_known(v));
            pairs.extend(unknown.map(|(_, n)| (0.0, *n)));
            Ok(pairs.into_iter().unzip())
        }
        (Kind::Numeric, Counts::Categories(_)) => {
            Err("category counts for a numeric feature".into())
        }
        (Kind::Categorical, Counts::Binned(_)) => {
            Err("bin counts for a categorical feature".into())
        }
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
