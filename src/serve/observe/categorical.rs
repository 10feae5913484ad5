//! Categorical input features (version 2 profiles): a column whose values are codes or names,
//! counted per category of the training data rather than binned on a number line.
//!
//! Values are compared as text, the way the profile writes them ([`values::category`]):
//! integral numbers without a fraction (`1.0` → `"1"`), strings as they are. A value the
//! training data never had counts as `__other__`, so the series stay the profile's.

use std::collections::HashMap;

use super::{profile::FeatureProfile, values};
use crate::serve::tensor::NamedTensor;

/// One categorical feature: where it lives in the inputs and its categories.
#[derive(Debug)]
pub struct CategoricalFeature {
    pub name: String,
    input: Option<String>,
    index: usize,
    categories: Vec<String>,
    lookup: HashMap<String, usize>,
}

impl CategoricalFeature {
    /// The feature of a profile entry; `None` unless it lists categories.
    pub fn from_profile(feature: &FeatureProfile) -> Option<Self> {
        let categories: Vec<String> = feature
            .bins
            .category_counts()?
            .map(|(value, _)| value.to_string())
            .collect();
        let lookup = categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        Some(Self {
            name: feature.name.clone(),
            input: feature.input.clone(),
            index: feature.index,
            categories,
            lookup,
        })
    }

    /// The profile's categories, in its order (`__other__` comes after them).
    pub fn categories(&self) -> &[String] {
        &self.categories
    }

    /// Counts per category of this feature's column in `inputs`, the last entry for values
    /// outside the categories; empty when the request does not carry the column.
    pub fn count(&self, inputs: &[NamedTensor]) -> Vec<u64> {
        let Some((tensor, positions)) = column(inputs, self.input.as_deref(), self.index) else {
            return Vec::new();
        };
        let other = self.categories.len();
        let mut counts = vec![0u64; other + 1];
        for i in positions {
            let Some(text) = values::category(&tensor.data, i) else {
                continue;
            };
            let slot = self.lookup.get(&text).copied().unwrap_or(other);
            counts[slot] += 1;
        }
        counts
    }
}

/// The tensor holding column `index` of input `input` (the first input when `None`) and the
/// flat positions of that column; `None` when the request has no such column.
pub fn column<'a>(
    inputs: &'a [NamedTensor],
    input: Option<&str>,
    index: usize,
) -> Option<(&'a NamedTensor, std::iter::StepBy<std::ops::Range<usize>>)> {
    let tensor = match input {
        Some(name) => inputs.iter().find(|t| t.name == name),
        None => inputs.first(),
    }?;
    let cols = values::columns(tensor);
    (index < cols).then(|| (tensor, (index..tensor.data.len()).step_by(cols)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::{observe::profile::BaselineProfile, tensor::TensorData};

    #[test]
    fn counts_per_category_with_other() {
        let profile = BaselineProfile::from_json(
            r#"{"version": 2, "features": [{"name": "code", "index": 1, "kind": "categorical",
                "categories": [{"value": "1", "count": 5}, {"value": "2", "count": 5}]}]}"#,
        )
        .unwrap();
        let feature = CategoricalFeature::from_profile(&profile.features[0]).unwrap();
        let x = NamedTensor {
            name: "x".into(),
            shape: vec![4, 2],
            data: TensorData::Fp32(vec![9.0, 1.0, 9.0, 2.0, 9.0, 2.0, 9.0, 2.5]),
        };
        assert_eq!(feature.count(std::slice::from_ref(&x)), vec![1, 2, 1]);
        assert_eq!(feature.count(&[]), Vec::<u64>::new(), "no such input");
        let names = NamedTensor {
            name: "x".into(),
            shape: vec![1, 2],
            data: TensorData::Bytes(vec![b"a".to_vec(), b"2".to_vec()]),
        };
        assert_eq!(feature.count(&[names]), vec![0, 1, 0]);
    }
}
