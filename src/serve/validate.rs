//! Checking a decoded request against the model's declared inputs and outputs before it
//! reaches ONNX Runtime, so clients get a precise 400 instead of a runtime error.

use std::sync::Arc;

use super::{
    model::ModelInfo,
    protocol::InferRequest,
    tensor::{NamedTensor, TensorData, shape_matches},
};

/// Why a request does not fit the model (HTTP 400).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValidationError {
    #[error("model '{model}' has no input named '{name}'")]
    UnknownInput { model: String, name: String },
    #[error("missing input '{0}'")]
    MissingInput(String),
    #[error("input '{name}' has datatype {actual}, the model expects {expected}")]
    Datatype {
        name: String,
        actual: &'static str,
        expected: &'static str,
    },
    #[error("input '{name}' has shape {actual:?}, the model expects {expected:?} (-1 = any size)")]
    Shape {
        name: String,
        actual: Vec<i64>,
        expected: Vec<i64>,
    },
    #[error("input '{0}': BYTES elements cannot contain NUL bytes")]
    NulByte(String),
    #[error("model '{model}' has no output named '{name}'")]
    UnknownOutput { model: String, name: String },
}

/// A request that fits the model: inputs in model order, the selected output names.
#[derive(Debug)]
pub struct Prepared {
    pub inputs: Vec<NamedTensor>,
    /// `None` = every output.
    pub outputs: Option<Arc<[String]>>,
    /// The common first dimension of all inputs, when there is one (the batch size).
    pub rows: Option<usize>,
}

/// Validates `request` against `info` and moves its tensors into a [`Prepared`].
pub fn prepare(info: &ModelInfo, request: &mut InferRequest) -> Result<Prepared, ValidationError> {
    if let Some(unknown) = request
        .inputs
        .iter()
        .find(|t| !info.inputs.iter().any(|s| s.name == t.name))
    {
        return Err(ValidationError::UnknownInput {
            model: info.name.clone(),
            name: unknown.name.clone(),
        });
    }
    let mut inputs = Vec::with_capacity(info.inputs.len());
    for spec in &info.inputs {
        let index = request
            .inputs
            .iter()
            .position(|t| t.name == spec.name)
            .ok_or_else(|| ValidationError::MissingInput(spec.name.clone()))?;
        let tensor = request.inputs.swap_remove(index);
        if tensor.data.datatype() != spec.datatype {
            return Err(ValidationError::Datatype {
                name: tensor.name,
                actual: tensor.data.datatype().as_str(),
                expected: spec.datatype.as_str(),
            });
        }
        if !shape_matches(&spec.shape, &tensor.shape) {
            return Err(ValidationError::Shape {
                name: tensor.name,
                actual: tensor.shape,
                expected: spec.shape.clone(),
            });
        }
        if let TensorData::Bytes(v) = &tensor.data
            && v.iter().any(|e| e.contains(&0))
        {
            return Err(ValidationError::NulByte(tensor.name));
        }
        inputs.push(tensor);
    }
    let outputs = select_outputs(info, request)?;
    let rows = common_rows(&inputs);
    Ok(Prepared {
        inputs,
        outputs,
        rows,
    })
}

fn select_outputs(
    info: &ModelInfo,
    request: &InferRequest,
) -> Result<Option<Arc<[String]>>, ValidationError> {
    if request.outputs.is_empty() {
        return Ok(None);
    }
    let mut names: Vec<String> = Vec::with_capacity(request.outputs.len());
    for out in &request.outputs {
        if !info.outputs.iter().any(|s| s.name == out.name) {
            return Err(ValidationError::UnknownOutput {
                model: info.name.clone(),
                name: out.name.clone(),
            });
        }
        if !names.contains(&out.name) {
            names.push(out.name.clone());
        }
    }
    Ok(Some(names.into()))
}

fn common_rows(inputs: &[NamedTensor]) -> Option<usize> {
    let first = *inputs.first()?.shape.first()?;
    inputs
        .iter()
        .all(|t| t.shape.first() == Some(&first))
        .then(|| usize::try_from(first).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::{
        model::TensorSpec,
        protocol::{InferRequest, OutputRequest},
        tensor::DataType,
    };

    fn info() -> ModelInfo {
        let spec = |name: &str, datatype, shape: &[i64]| TensorSpec {
            name: name.into(),
            datatype,
            shape: shape.to_vec(),
        };
        ModelInfo {
            name: "m".into(),
            version: "1".into(),
            inputs: vec![
                spec("a", DataType::Fp32, &[-1, 2]),
                spec("b", DataType::Bytes, &[-1]),
            ],
            outputs: vec![spec("y", DataType::Int64, &[-1])],
        }
    }

    fn request(a: (Vec<i64>, TensorData), b: Option<TensorData>, outputs: &[&str]) -> InferRequest {
        let mut inputs = vec![NamedTensor {
            name: "a".into(),
            shape: a.0,
            data: a.1,
        }];
        if let Some(data) = b {
            inputs.insert(
                0,
                NamedTensor {
                    name: "b".into(),
                    shape: vec![data.len() as i64],
                    data,
                },
            );
        }
        InferRequest {
            id: None,
            parameters: None,
            inputs,
            outputs: outputs
                .iter()
                .map(|n| OutputRequest {
                    name: (*n).into(),
                    binary: None,
                    parameters: None,
                })
                .collect(),
            binary_output: false,
        }
    }

    #[test]
    fn accepts_and_orders_inputs() {
        let bytes = TensorData::Bytes(vec![b"x".to_vec(), b"y".to_vec()]);
        let mut req = request(
            (vec![2, 2], TensorData::Fp32(vec![0.0; 4])),
            Some(bytes),
            &["y", "y"],
        );
        let prepared = prepare(&info(), &mut req).expect("valid");
        assert_eq!(prepared.inputs[0].name, "a");
        assert_eq!(prepared.rows, Some(2));
        assert_eq!(prepared.outputs.as_deref(), Some(&["y".to_string()][..]));
    }

    #[test]
    fn rejects_mismatches() {
        let two = || Some(TensorData::Bytes(vec![b"x".to_vec(), b"y".to_vec()]));
        let cases: Vec<(InferRequest, &str)> = vec![
            (
                request((vec![2, 2], TensorData::Fp32(vec![0.0; 4])), None, &[]),
                "missing input 'b'",
            ),
            (
                request((vec![2, 2], TensorData::Fp64(vec![0.0; 4])), two(), &[]),
                "datatype FP64",
            ),
            (
                request((vec![1, 4], TensorData::Fp32(vec![0.0; 4])), two(), &[]),
                "shape [1, 4]",
            ),
            (
                request((vec![4], TensorData::Fp32(vec![0.0; 4])), two(), &[]),
                "shape [4]",
            ),
            (
                request((vec![2, 2], TensorData::Fp32(vec![0.0; 4])), two(), &["z"]),
                "no output named 'z'",
            ),
            (
                request(
                    (vec![1, 2], TensorData::Fp32(vec![0.0; 2])),
                    Some(TensorData::Bytes(vec![b"a\0b".to_vec()])),
                    &[],
                ),
                "NUL",
            ),
        ];
        for (mut req, want) in cases {
            let err = prepare(&info(), &mut req).expect_err(want).to_string();
            assert!(err.contains(want), "got '{err}', want '{want}'");
        }
        let mut unknown = request((vec![1, 2], TensorData::Fp32(vec![0.0; 2])), two(), &[]);
        unknown.inputs[0].name = "c".into();
        assert!(prepare(&info(), &mut unknown).is_err());
    }
}
