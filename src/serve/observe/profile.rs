//! The baseline profile: what the model's inputs (and regression outputs) looked like at
//! training time, so the server can bin live traffic the same way and report drift.
//!
//! The profile is a JSON file written next to the model by the training pipeline. Bins follow
//! Prometheus `le` semantics: with `edges = [e0, e1, …, e(k-1)]` there are `k + 1` bins,
//! `(-inf, e0]`, `(e0, e1]`, …, `(e(k-1), +inf)`, so `counts`/`proportions` have `k + 1` entries.
//!
//! ```json
//! {
//!   "version": 1,
//!   "positive_label": "1",
//!   "features": [
//!     { "name": "sepal_length", "input": "float_input", "index": 0,
//!       "edges": [5.0, 6.0, 7.0], "counts": [30, 60, 45, 15],
//!       "mean": 5.84, "std": 0.83 }
//!   ],
//!   "prediction": { "edges": [0.0, 10.0, 20.0], "proportions": [0.1, 0.4, 0.4, 0.1] }
//! }
//! ```
//!
//! A complete example lives in `tests/fixtures/baseline_profile.json`.
//!
//! * `input` names the input tensor (optional when the model has one input); `index` is the
//!   position on the tensor's last dimension (default 0).
//! * Either `counts` or `proportions` may be given (or neither: then only the live histogram is
//!   exported, without a drift score).
//! * `prediction` gives bins for the regression output histogram; `positive_label` selects the
//!   binary precision/recall/F1 of label feedback instead of the macro average.

use std::{collections::HashSet, path::Path};

use serde::Deserialize;

/// The only profile format version this server reads.
pub const PROFILE_VERSION: u32 = 1;

/// Why a baseline profile was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read baseline profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("baseline profile is not valid JSON for the expected format: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("baseline profile version {0} is not supported (expected {PROFILE_VERSION})")]
    Version(u32),
    #[error("baseline profile: {what}: {reason}")]
    Invalid { what: String, reason: String },
}

/// Baseline distribution of one bucketed quantity (an input feature or the prediction).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bins {
    /// Strictly increasing, finite upper bounds; the last bin `(e(k-1), +inf)` is implicit.
    pub edges: Vec<f64>,
    /// Training-time counts per bin (`edges.len() + 1` entries).
    #[serde(default)]
    pub counts: Option<Vec<f64>>,
    /// Training-time proportions per bin (`edges.len() + 1` entries, summing to 1).
    #[serde(default)]
    pub proportions: Option<Vec<f64>>,
}

/// Baseline of one input feature: a column of an input tensor.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureProfile {
    /// Feature name, used as the `feature` label of the drift metrics.
    pub name: String,
    /// Input tensor holding the feature; `None` means the model's first input.
    #[serde(default)]
    pub input: Option<String>,
    /// Index of the feature on the last dimension of that tensor.
    #[serde(default)]
    pub index: usize,
    #[serde(flatten)]
    pub bins: Bins,
    /// Training-time mean and standard deviation, exported as gauges when present.
    #[serde(default)]
    pub mean: Option<f64>,
    #[serde(default)]
    pub std: Option<f64>,
}

/// A validated baseline profile (see the module docs for the file format).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BaselineProfile {
    pub version: u32,
    #[serde(default)]
    pub features: Vec<FeatureProfile>,
    #[serde(default)]
    pub prediction: Option<Bins>,
    #[serde(default)]
    pub positive_label: Option<String>,
}

impl BaselineProfile {
    /// Reads and validates a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text)
    }

    /// Parses and validates a profile from JSON text.
    pub fn from_json(text: &str) -> Result<Self, ProfileError> {
        let profile: BaselineProfile = serde_json::from_str(text)?;
        profile.validate()?;
        Ok(profile)
    }

    /// Checks the invariants the drift code relies on.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.version != PROFILE_VERSION {
            return Err(ProfileError::Version(self.version));
        }
        let mut names = HashSet::new();
        for feature in &self.features {
            let what = format!("feature {:?}", feature.name);
            if feature.name.is_empty() {
                return Err(invalid("feature", "name must not be empty"));
            }
            if !names.insert(feature.name.as_str()) {
                return Err(invalid(&what, "duplicate feature name"));
            }
            feature.bins.validate(&what)?;
            if feature.std.is_some_and(|s| !s.is_finite() || s < 0.0) {
                return Err(invalid(&what, "std must be a finite, non-negative number"));
            }
        }
        if let Some(bins) = &self.prediction {
            bins.validate("prediction")?;
        }
        Ok(())
    }

    /// Checks that every feature points at an existing input column.
    ///
    /// `inputs` lists the model's input names with the size of their last dimension (`None`
    /// when dynamic). Call it once after the model is loaded to fail fast on a wrong profile.
    pub fn check_inputs(&self, inputs: &[(&str, Option<usize>)]) -> Result<(), ProfileError> {
        for feature in &self.features {
            let what = format!("feature {:?}", feature.name);
            let found = match &feature.input {
                Some(name) => inputs.iter().find(|(n, _)| n == name),
                None => inputs.first(),
            };
            let Some((_, last_dim)) = found else {
                let reason = format!("model has no input {:?}", feature.input);
                return Err(invalid(&what, &reason));
            };
            if last_dim.is_some_and(|d| feature.index >= d) {
                let reason = format!("index {} out of range {last_dim:?}", feature.index);
                return Err(invalid(&what, &reason));
            }
        }
        Ok(())
    }
}

impl Bins {
    fn validate(&self, what: &str) -> Result<(), ProfileError> {
        if self.edges.is_empty() {
            return Err(invalid(what, "edges must not be empty"));
        }
        if self.edges.iter().any(|e| !e.is_finite()) {
            return Err(invalid(what, "edges must be finite numbers"));
        }
        if self.edges.windows(2).any(|w| w[0] >= w[1]) {
            return Err(invalid(what, "edges must be strictly increasing"));
        }
        let bins = self.edges.len() + 1;
        for (field, values) in [("counts", &self.counts), ("proportions", &self.proportions)] {
            let Some(values) = values else { continue };
            if values.len() != bins {
                let reason = format!("{field} has {} entries, expected {bins}", values.len());
                return Err(invalid(what, &reason));
            }
            if values.iter().any(|v| !v.is_finite() || *v < 0.0) {
                let reason = format!("{field} must be finite, non-negative numbers");
                return Err(invalid(what, &reason));
            }
        }
        if let Some(p) = &self.proportions
            && (p.iter().sum::<f64>() - 1.0).abs() > 1e-3
        {
            return Err(invalid(what, "proportions must sum to 1"));
        }
        if self
            .counts
            .as_ref()
            .is_some_and(|c| c.iter().sum::<f64>() <= 0.0)
        {
            return Err(invalid(what, "counts must not all be zero"));
        }
        Ok(())
    }

    /// Baseline proportions per bin, from `proportions` or normalised `counts`.
    pub fn baseline_proportions(&self) -> Option<Vec<f64>> {
        if let Some(p) = &self.proportions {
            return Some(p.clone());
        }
        let counts = self.counts.as_ref()?;
        let total: f64 = counts.iter().sum();
        Some(counts.iter().map(|c| c / total).collect())
    }
}

fn invalid(what: &str, reason: &str) -> ProfileError {
    ProfileError::Invalid {
        what: what.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"version": 1, "positive_label": "1",
        "features": [{"name": "a", "input": "x", "index": 1, "edges": [0.0, 1.0],
                      "counts": [1, 2, 1], "mean": 0.5, "std": 0.2}],
        "prediction": {"edges": [10.0], "proportions": [0.25, 0.75]}}"#;

    #[test]
    fn parses_a_full_profile() {
        let p = BaselineProfile::from_json(GOOD).unwrap();
        assert_eq!(p.features[0].index, 1);
        assert_eq!(
            p.features[0].bins.baseline_proportions().unwrap(),
            vec![0.25, 0.5, 0.25]
        );
        assert_eq!(p.positive_label.as_deref(), Some("1"));
        assert!(p.check_inputs(&[("x", Some(2))]).is_ok());
        assert!(p.check_inputs(&[("x", Some(1))]).is_err());
        assert!(p.check_inputs(&[("y", None)]).is_err());
    }

    #[test]
    fn rejects_bad_profiles_with_a_reason() {
        let cases = [
            (r#"{"version": 2}"#, "version 2"),
            (
                r#"{"version": 1, "features": [{"name": "a", "edges": []}]}"#,
                "edges must not be empty",
            ),
            (
                r#"{"version": 1, "features": [{"name": "a", "edges": [1, 0]}]}"#,
                "strictly increasing",
            ),
            (
                r#"{"version": 1, "features": [{"name": "a", "edges": [0], "counts": [1]}]}"#,
                "expected 2",
            ),
            (
                r#"{"version": 1, "features": [{"name": "a", "edges": [0], "proportions": [0.2, 0.2]}]}"#,
                "sum to 1",
            ),
            (
                r#"{"version": 1, "features": [{"name": "a", "edges": [0]}, {"name": "a", "edges": [0]}]}"#,
                "duplicate",
            ),
            (
                r#"{"version": 1, "features": [{"name": "a", "edges": [0], "bogus": 1}]}"#,
                "bogus",
            ),
            (
                r#"{"version": 1, "features": [{"name": "a", "edges": [0], "counts": [0, 0]}]}"#,
                "all be zero",
            ),
            ("not json", "not valid JSON"),
        ];
        for (json, expected) in cases {
            let err = BaselineProfile::from_json(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn the_documented_example_is_valid() {
        let example = include_str!("../../../tests/fixtures/baseline_profile.json");
        let p = BaselineProfile::from_json(example).unwrap();
        assert_eq!(p.features.len(), 2);
        assert!(p.check_inputs(&[("float_input", Some(4))]).is_ok());
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = BaselineProfile::load(Path::new("/nonexistent/profile.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/profile.json"));
    }
}
