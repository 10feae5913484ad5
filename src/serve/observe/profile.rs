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
//! Version 2 (`tests/fixtures/baseline_profile_v2.json`, written by `modelpilot profile`) adds:
//!
//! * `rows` at the top level: the number of training rows the profile was built from;
//! * `kind` per feature (and on `prediction`): `"numeric"` (the default, bins as above, with
//!   optional `min`/`max` besides `mean`/`std`) or `"categorical"`: no edges, but
//!   `categories: [{"value": "a", "count": 120}, …]` (values as text, numeric codes written as
//!   the server writes labels: `1.0` → `"1"`). A categorical `prediction` holds class labels.
//!
//! ```json
//! { "version": 2, "rows": 150,
//!   "features": [{ "name": "colour", "index": 4, "kind": "categorical",
//!                  "categories": [{"value": "red", "count": 100}, {"value": "blue", "count": 50}] }],
//!   "prediction": { "kind": "categorical",
//!                   "categories": [{"value": "0", "count": 75}, {"value": "1", "count": 75}] } }
//! ```
//!
//! Version 1 files stay readable; the version 2 fields in a version 1 file are rejected.
//!
//! * `input` names the input tensor (optional when the model has one input); `index` is the
//!   position on the tensor's last dimension (default 0).
//! * Either `counts` or `proportions` may be given (or neither: then only the live histogram is
//!   exported, without a drift score).
//! * `prediction` gives bins for the regression output histogram; `positive_label` selects the
//!   binary precision/recall/F1 of label feedback instead of the macro average.

use std::{collections::HashSet, path::Path};

use serde::{Deserialize, Serialize};

/// The profile format version written by `modelpilot profile`; every version from 1 up to it is
/// read.
pub const PROFILE_VERSION: u32 = 2;

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
    #[error("baseline profile version {0} is not supported (expected 1 to {PROFILE_VERSION})")]
    Version(u32),
    #[error("baseline profile: {what}: {reason}")]
    Invalid { what: String, reason: String },
}

/// Whether a quantity is binned on a number line or counted per distinct value.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    #[default]
    Numeric,
    Categorical,
}

impl Kind {
    fn is_numeric(&self) -> bool {
        *self == Kind::Numeric
    }
}

/// Training-time count of one category (version 2).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CategoryCount {
    /// The value as text (numeric codes without a trailing `.0`).
    pub value: String,
    pub count: u64,
}

/// Baseline distribution of one quantity (an input feature or the prediction): numeric bins,
/// or (version 2, `kind: categorical`) counts per category.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Bins {
    /// `numeric` (default) or `categorical` (version 2).
    #[serde(default, skip_serializing_if = "Kind::is_numeric")]
    pub kind: Kind,
    /// Strictly increasing, finite upper bounds; the last bin `(e(k-1), +inf)` is implicit.
    /// Empty for a categorical quantity.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<f64>,
    /// Training-time counts per bin (`edges.len() + 1` entries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Vec<f64>>,
    /// Training-time proportions per bin (`edges.len() + 1` entries, summing to 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proportions: Option<Vec<f64>>,
    /// Training-time counts per category (categorical only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<CategoryCount>>,
}

/// Baseline of one input feature: a column of an input tensor.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeatureProfile {
    /// Feature name, used as the `feature` label of the drift metrics.
    pub name: String,
    /// Input tensor holding the feature; `None` means the model's first input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Index of the feature on the last dimension of that tensor.
    #[serde(default)]
    pub index: usize,
    #[serde(flatten)]
    pub bins: Bins,
    /// Training-time mean and standard deviation, exported as gauges when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub std: Option<f64>,
    /// Training-time extremes (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
}

/// A validated baseline profile (see the module docs for the file format).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BaselineProfile {
    pub version: u32,
    /// Rows of the training data (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default)]
    pub features: Vec<FeatureProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prediction: Option<Bins>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
        if !(1..=PROFILE_VERSION).contains(&self.version) {
            return Err(ProfileError::Version(self.version));
        }
        if self.version < 2 && self.uses_version_2() {
            let reason = "rows, kind, categories, min and max need version 2";
            return Err(invalid("profile", reason));
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
            if let (Some(min), Some(max)) = (feature.min, feature.max)
                && min > max
            {
                return Err(invalid(&what, "min must not exceed max"));
            }
        }
        if let Some(bins) = &self.prediction {
            bins.validate("prediction")?;
        }
        Ok(())
    }

    /// Whether any field new in version 2 is present.
    fn uses_version_2(&self) -> bool {
        let v2_bins = |b: &Bins| b.kind != Kind::Numeric || b.categories.is_some();
        self.rows.is_some()
            || self.prediction.as_ref().is_some_and(v2_bins)
            || self
                .features
                .iter()
                .any(|f| v2_bins(&f.bins) || f.min.is_some() || f.max.is_some())
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
        match self.kind {
            Kind::Numeric if self.categories.is_some() => {
                Err(invalid(what, "categories need kind \"categorical\""))
            }
            Kind::Numeric => self.validate_numeric(what),
            Kind::Categorical => self.validate_categorical(what),
        }
    }

    fn validate_categorical(&self, what: &str) -> Result<(), ProfileError> {
        if !self.edges.is_empty() || self.counts.is_some() || self.proportions.is_some() {
            let reason = "a categorical profile has categories, not edges, counts or proportions";
            return Err(invalid(what, reason));
        }
        let Some(categories) = self.categories.as_ref().filter(|c| !c.is_empty()) else {
            return Err(invalid(what, "categories must not be empty"));
        };
        let mut seen = HashSet::new();
        if let Some(c) = categories.iter().find(|c| !seen.insert(c.value.as_str())) {
            return Err(invalid(what, &format!("duplicate category {:?}", c.value)));
        }
        if categories.iter().all(|c| c.count == 0) {
            return Err(invalid(what, "category counts must not all be zero"));
        }
        Ok(())
    }

    fn validate_numeric(&self, what: &str) -> Result<(), ProfileError> {
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

    /// Training-time counts per category (categorical only), in the file's order.
    pub fn category_counts(&self) -> Option<impl Iterator<Item = (&str, u64)>> {
        let categories = self.categories.as_ref()?;
        Some(categories.iter().map(|c| (c.value.as_str(), c.count)))
    }

    /// Baseline proportions per bin, from `proportions` or normalised `counts` (numeric only).
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
            (r#"{"version": 3}"#, "version 3"),
            (r#"{"version": 0}"#, "version 0"),
            (r#"{"version": 1, "rows": 10}"#, "need version 2"),
            (
                r#"{"version": 2, "features": [{"name": "a", "kind": "categorical"}]}"#,
                "categories must not be empty",
            ),
            (
                r#"{"version": 2, "features": [{"name": "a", "kind": "categorical", "edges": [1],
                    "categories": [{"value": "x", "count": 1}]}]}"#,
                "not edges",
            ),
            (
                r#"{"version": 2, "features": [{"name": "a", "kind": "categorical",
                    "categories": [{"value": "x", "count": 1}, {"value": "x", "count": 2}]}]}"#,
                "duplicate category",
            ),
            (
                r#"{"version": 2, "features": [{"name": "a", "edges": [0],
                    "categories": [{"value": "x", "count": 1}]}]}"#,
                "need kind",
            ),
            (
                r#"{"version": 2, "features": [{"name": "a", "edges": [0], "min": 2, "max": 1}]}"#,
                "min must not exceed max",
            ),
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
    fn the_version_2_example_is_valid_and_round_trips() {
        let example = include_str!("../../../tests/fixtures/baseline_profile_v2.json");
        let p = BaselineProfile::from_json(example).unwrap();
        assert_eq!((p.version, p.rows), (2, Some(1000)));
        let colour = &p.features[2].bins;
        assert_eq!(colour.kind, Kind::Categorical);
        let counts: Vec<(&str, u64)> = colour.category_counts().unwrap().collect();
        assert_eq!(counts, vec![("blue", 300), ("green", 200), ("red", 500)]);
        assert_eq!(p.features[0].min, Some(4.3));
        let prediction = p.prediction.as_ref().unwrap();
        assert_eq!(prediction.kind, Kind::Categorical);
        let written = serde_json::to_string(&p).unwrap();
        assert_eq!(BaselineProfile::from_json(&written).unwrap(), p);
        assert!(!written.contains("\"kind\":\"numeric\""), "{written}");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = BaselineProfile::load(Path::new("/nonexistent/profile.json")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/profile.json"));
    }
}
