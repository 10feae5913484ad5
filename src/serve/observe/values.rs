//! Reading request and response tensors as the observers need them: numbers per column for
//! the drift histograms, one label per row for class counts and label feedback.

use super::feedback::MAX_LABEL_LEN;
use crate::serve::tensor::{NamedTensor, TensorData};

/// Size of the last dimension: columns per row (1 for a scalar or a vector `[N]`).
pub fn columns(tensor: &NamedTensor) -> usize {
    match tensor.shape.as_slice() {
        [] | [_] => 1,
        [.., last] => usize::try_from(*last).unwrap_or(1).max(1),
    }
}

/// The numeric value at flat position `i` (None for `BYTES` or out of range).
pub fn number(data: &TensorData, i: usize) -> Option<f64> {
    Some(match data {
        TensorData::Bool(d) => f64::from(u8::from(*d.get(i)?)),
        TensorData::Uint8(d) => f64::from(*d.get(i)?),
        TensorData::Uint16(d) => f64::from(*d.get(i)?),
        TensorData::Uint32(d) => f64::from(*d.get(i)?),
        TensorData::Uint64(d) => *d.get(i)? as f64,
        TensorData::Int8(d) => f64::from(*d.get(i)?),
        TensorData::Int16(d) => f64::from(*d.get(i)?),
        TensorData::Int32(d) => f64::from(*d.get(i)?),
        TensorData::Int64(d) => *d.get(i)? as f64,
        TensorData::Fp16(d) => f64::from(*d.get(i)?),
        TensorData::Fp32(d) => f64::from(*d.get(i)?),
        TensorData::Fp64(d) => *d.get(i)?,
        TensorData::Bytes(_) => return None,
    })
}

/// True for float data (scores or regression values rather than class labels).
pub fn is_float(data: &TensorData) -> bool {
    matches!(
        data,
        TensorData::Fp16(_) | TensorData::Fp32(_) | TensorData::Fp64(_)
    )
}

/// Cuts a label to at most [`MAX_LABEL_LEN`] bytes, on a character boundary.
fn truncate_label(text: &mut String) {
    if text.len() > MAX_LABEL_LEN {
        let mut end = MAX_LABEL_LEN;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// The element at `i` as a class label: integers in decimal, booleans as `true`/`false`,
/// bytes as (lossy) UTF-8 cut to [`MAX_LABEL_LEN`] bytes. None for floats.
pub fn label(data: &TensorData, i: usize) -> Option<String> {
    match data {
        TensorData::Bool(d) => d.get(i).map(bool::to_string),
        TensorData::Bytes(d) => d.get(i).map(|b| {
            let mut text = String::from_utf8_lossy(b).into_owned();
            truncate_label(&mut text);
            text
        }),
        d if is_float(d) => None,
        d => number(d, i).map(|v| format!("{v:.0}")),
    }
}

/// The element at `i` as a category, the way profiles write categorical values (one rule,
/// [`crate::drift::data::category_text`]): integral floats without a fraction (`1.0` → `"1"`),
/// other floats as they print (`2.5` → `"2.5"`); integers, booleans and bytes as [`label`]
/// writes them. None for NaN or out of range.
pub fn category(data: &TensorData, i: usize) -> Option<String> {
    let v = match data {
        // An f32 prints in its own shortest form: 0.2f32 is "0.2", not "0.20000000298023224".
        TensorData::Fp32(d) => {
            let v = *d.get(i)?;
            if v.is_nan() {
                return None;
            }
            if v.fract() != 0.0 {
                return Some(v.to_string());
            }
            f64::from(v)
        }
        d if is_float(d) => number(d, i)?,
        d => return label(d, i),
    };
    (!v.is_nan()).then(|| crate::drift::data::category_text(v))
}

/// Per-row predicted labels: the elements of a one-column discrete tensor, or the arg-max
/// column of a float score tensor `[N, C]` with `C > 1` (logits or probabilities).
///
/// Example: scores `[[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]]` give labels `["1", "0"]`.
pub fn row_labels(tensor: &NamedTensor) -> Option<Vec<String>> {
    let cols = columns(tensor);
    let data = &tensor.data;
    if !is_float(data) {
        if cols != 1 {
            return None;
        }
        return (0..data.len()).map(|i| label(data, i)).collect();
    }
    if cols < 2 {
        return None;
    }
    let argmax = |row: usize| {
        let mut best = (0usize, f64::NEG_INFINITY);
        for c in 0..cols {
            let v = number(data, row * cols + c).unwrap_or(f64::NEG_INFINITY);
            if v > best.1 {
                best = (c, v);
            }
        }
        best.0.to_string()
    };
    Some((0..data.len() / cols).map(argmax).collect())
}

/// Chooses the output that carries the predicted class: the first discrete one-column
/// output (e.g. `label`), else the first float score matrix. Returns its name and labels.
pub fn predicted_labels(outputs: &[NamedTensor]) -> Option<(&str, Vec<String>)> {
    let discrete = outputs
        .iter()
        .find(|t| !is_float(&t.data) && columns(t) == 1);
    let chosen = discrete.or_else(|| outputs.iter().find(|t| columns(t) > 1))?;
    Some((chosen.name.as_str(), row_labels(chosen)?))
}

/// True for float outputs with one value per row (regression values).
pub fn is_regression(tensor: &NamedTensor) -> bool {
    is_float(&tensor.data) && columns(tensor) == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str, shape: &[i64], data: TensorData) -> NamedTensor {
        NamedTensor {
            name: name.into(),
            shape: shape.to_vec(),
            data,
        }
    }

    #[test]
    fn labels_from_label_and_score_outputs() {
        let label = t("label", &[2], TensorData::Int64(vec![3, -1]));
        assert_eq!(row_labels(&label).unwrap(), vec!["3", "-1"]);
        let scores = vec![0.1f32, 0.7, 0.2, 0.8, 0.1, 0.1];
        let probs = t("probabilities", &[2, 3], TensorData::Fp32(scores));
        assert_eq!(row_labels(&probs).unwrap(), vec!["1", "0"]);
        let names = t("y", &[1], TensorData::Bytes(vec![b"cat".to_vec()]));
        assert_eq!(row_labels(&names).unwrap(), vec!["cat"]);
        let long = "é".repeat(MAX_LABEL_LEN);
        let names = t("y", &[1], TensorData::Bytes(vec![long.into_bytes()]));
        let cut = &row_labels(&names).unwrap()[0];
        assert!(cut.len() <= MAX_LABEL_LEN && cut.chars().all(|c| c == 'é'));
        let outputs = [probs.clone(), label.clone()];
        assert_eq!(predicted_labels(&outputs).unwrap().0, "label");
        assert_eq!(predicted_labels(&[probs]).unwrap().0, "probabilities");
    }

    #[test]
    fn category_text_table() {
        let cases = [
            (TensorData::Fp32(vec![1.0]), Some("1")),
            (TensorData::Fp64(vec![-3.0]), Some("-3")),
            (TensorData::Fp64(vec![2.5]), Some("2.5")),
            (TensorData::Fp32(vec![0.2]), Some("0.2")),
            (TensorData::Fp64(vec![0.2]), Some("0.2")),
            (TensorData::Fp32(vec![3e9]), Some("3000000000")),
            (TensorData::Fp32(vec![f32::NAN]), None),
            (TensorData::Int64(vec![-3]), Some("-3")),
            (TensorData::Bool(vec![true]), Some("true")),
            (TensorData::Bytes(vec![b"red".to_vec()]), Some("red")),
        ];
        for (data, want) in cases {
            assert_eq!(category(&data, 0).as_deref(), want, "{data:?}");
        }
        assert_eq!(category(&TensorData::Fp32(vec![]), 0), None);
    }

    #[test]
    fn regression_outputs_have_no_labels() {
        let v = t("variable", &[2, 1], TensorData::Fp32(vec![1.5, 2.5]));
        assert!(row_labels(&v).is_none());
        assert!(is_regression(&v));
        assert!(predicted_labels(&[v]).is_none());
    }

    #[test]
    fn columns_follow_the_last_dimension() {
        let d = || TensorData::Fp32(vec![0.0; 6]);
        assert_eq!(columns(&t("x", &[2, 3], d())), 3);
        assert_eq!(columns(&t("x", &[6], d())), 1);
        assert_eq!(columns(&t("x", &[], d())), 1);
        assert_eq!(columns(&t("x", &[2, -1], d())), 1);
    }
}
