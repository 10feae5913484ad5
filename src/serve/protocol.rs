//! Open Inference Protocol v2 (REST) messages: the JSON shapes on the wire, decoding an
//! inference request (JSON or JSON + binary tensors) into owned tensors, and encoding the
//! response. Pure functions over bytes — no runtime, no model — so they are fuzzed as is.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, value::RawValue};

use super::{
    binary::{self, BinaryError},
    json_data::{self, JsonData},
    tensor::{DataType, NamedTensor, ShapeError, element_count},
};

/// Request/response parameters: a free-form JSON object.
pub type Parameters = Map<String, Value>;

/// Parameter naming the binary size of an input or output.
pub const BINARY_DATA_SIZE: &str = "binary_data_size";
/// Output parameter asking for binary data.
pub const BINARY_DATA: &str = "binary_data";
/// Request parameter asking for binary data on every output by default.
pub const BINARY_DATA_OUTPUT: &str = "binary_data_output";
/// HTTP header giving the length of the JSON part of a body with binary tensors.
pub const HEADER_CONTENT_LENGTH: &str = "inference-header-content-length";

/// Why a request body cannot be decoded (all are client errors, HTTP 400).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("Inference-Header-Content-Length {header} exceeds the body length {body}")]
    HeaderLength { header: usize, body: usize },
    #[error("malformed JSON request: {0}")]
    Json(#[from] serde_json::Error),
    #[error("request has no inputs")]
    NoInputs,
    #[error("input '{0}' appears more than once")]
    DuplicateInput(String),
    #[error("input '{name}' has unsupported datatype '{datatype}'")]
    Datatype { name: String, datatype: String },
    #[error("input '{name}': {source}")]
    Shape { name: String, source: ShapeError },
    #[error("input '{name}' has neither 'data' nor a 'binary_data_size' parameter")]
    MissingData { name: String },
    #[error("input '{name}': invalid data: {source}")]
    Data {
        name: String,
        source: serde_json::Error,
    },
    #[error("input '{name}' has {actual} elements but its shape {shape:?} needs {expected}")]
    Count {
        name: String,
        shape: Vec<i64>,
        expected: usize,
        actual: usize,
    },
    #[error("input '{name}': parameter '{BINARY_DATA_SIZE}' must be a non-negative integer")]
    BinarySizeParam { name: String },
    #[error("input '{name}' claims {size} bytes of binary data, only {left} are left in the body")]
    BinaryTruncated {
        name: String,
        size: usize,
        left: usize,
    },
    #[error("input '{name}': {source}")]
    Binary { name: String, source: BinaryError },
    #[error("{0} bytes of binary data follow the JSON header but no input claims them")]
    TrailingBinary(usize),
}

#[derive(Deserialize)]
struct WireRequest<'a> {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    parameters: Option<Parameters>,
    #[serde(borrow)]
    inputs: Vec<WireInput<'a>>,
    #[serde(default)]
    outputs: Option<Vec<WireOutput>>,
}

#[derive(Deserialize)]
struct WireInput<'a> {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Option<Parameters>,
    #[serde(default, borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireOutput {
    name: String,
    #[serde(default)]
    parameters: Option<Parameters>,
}

/// An output the client asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputRequest {
    pub name: String,
    /// Explicit `binary_data` choice, if any.
    pub binary: Option<bool>,
    /// The output's other parameters, echoed in the response.
    pub parameters: Option<Parameters>,
}

/// A decoded inference request: owned tensors, ready to validate against a model.
#[derive(Clone, Debug, PartialEq)]
pub struct InferRequest {
    pub id: Option<String>,
    pub parameters: Option<Parameters>,
    pub inputs: Vec<NamedTensor>,
    /// Empty means "every model output".
    pub outputs: Vec<OutputRequest>,
    /// `binary_data_output` of the request: the default for outputs without a choice.
    pub binary_output: bool,
}

/// Decodes a request body. `header_len` is the `Inference-Header-Content-Length` value when
/// the body carries binary tensors after its JSON part.
pub fn decode_request(body: &[u8], header_len: Option<usize>) -> Result<InferRequest, DecodeError> {
    let (json, mut binary) = match header_len {
        Some(header) => body
            .split_at_checked(header)
            .ok_or(DecodeError::HeaderLength {
                header,
                body: body.len(),
            })?,
        None => (body, &[][..]),
    };
    let wire: WireRequest<'_> = serde_json::from_slice(json)?;
    if wire.inputs.is_empty() {
        return Err(DecodeError::NoInputs);
    }
    let mut inputs: Vec<NamedTensor> = Vec::with_capacity(wire.inputs.len());
    for input in wire.inputs {
        if inputs.iter().any(|t| t.name == input.name) {
            return Err(DecodeError::DuplicateInput(input.name));
        }
        inputs.push(decode_input(input, &mut binary)?);
    }
    if !binary.is_empty() {
        return Err(DecodeError::TrailingBinary(binary.len()));
    }
    let mut parameters = wire.parameters;
    let binary_output = take_bool(&mut parameters, BINARY_DATA_OUTPUT).unwrap_or(false);
    let outputs = wire
        .outputs
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            let mut parameters = o.parameters;
            let binary = take_bool(&mut parameters, BINARY_DATA);
            OutputRequest {
                name: o.name,
                binary,
                parameters,
            }
        })
        .collect();
    Ok(InferRequest {
        id: wire.id,
        parameters,
        inputs,
        outputs,
        binary_output,
    })
}

/// Removes `key` from `params` and returns it when it is a boolean; leaves an empty map as `None`.
fn take_bool(params: &mut Option<Parameters>, key: &str) -> Option<bool> {
    let map = params.as_mut()?;
    let value = map.remove(key).and_then(|v| v.as_bool());
    if map.is_empty() {
        *params = None;
    }
    value
}

fn decode_input(input: WireInput<'_>, binary: &mut &[u8]) -> Result<NamedTensor, DecodeError> {
    let name = input.name;
    let datatype = DataType::parse(&input.datatype).ok_or_else(|| DecodeError::Datatype {
        name: name.clone(),
        datatype: input.datatype.clone(),
    })?;
    let expected = element_count(&input.shape).map_err(|source| DecodeError::Shape {
        name: name.clone(),
        source,
    })?;
    let binary_size = match input
        .parameters
        .as_ref()
        .and_then(|p| p.get(BINARY_DATA_SIZE))
    {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| DecodeError::BinarySizeParam { name: name.clone() })?,
        ),
    };
    let data = match (binary_size, input.data) {
        (Some(size), _) => {
            let (bytes, rest) =
                binary
                    .split_at_checked(size)
                    .ok_or(DecodeError::BinaryTruncated {
                        name: name.clone(),
                        size,
                        left: binary.len(),
                    })?;
            *binary = rest;
            binary::decode(datatype, bytes, expected).map_err(|source| DecodeError::Binary {
                name: name.clone(),
                source,
            })?
        }
        (None, Some(raw)) => {
            json_data::decode(datatype, raw, expected).map_err(|source| DecodeError::Data {
                name: name.clone(),
                source,
            })?
        }
        (None, None) => return Err(DecodeError::MissingData { name }),
    };
    if data.len() != expected {
        return Err(DecodeError::Count {
            name,
            shape: input.shape,
            expected,
            actual: data.len(),
        });
    }
    Ok(NamedTensor {
        name,
        shape: input.shape,
        data,
    })
}

#[derive(Serialize)]
struct WireResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Parameters>,
    outputs: Vec<WireResponseOutput<'a>>,
}

#[derive(Serialize)]
struct WireResponseOutput<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: &'a [i64],
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Parameters>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<JsonData<'a>>,
}

/// One output of a response, with how to send it.
pub struct ResponseOutput<'a> {
    pub tensor: &'a NamedTensor,
    pub binary: bool,
    pub parameters: Option<&'a Parameters>,
}

/// An encoded response body; `header_len` is set when binary tensors follow the JSON.
pub struct EncodedResponse {
    pub body: Vec<u8>,
    pub header_len: Option<usize>,
}

/// Encodes an inference response (JSON, plus binary tensors after it if any output asks).
pub fn encode_response(
    model_name: &str,
    model_version: &str,
    id: Option<&str>,
    parameters: Option<&Parameters>,
    outputs: &[ResponseOutput<'_>],
) -> Result<EncodedResponse, serde_json::Error> {
    let mut binary_part = Vec::new();
    let mut wire_outputs = Vec::with_capacity(outputs.len());
    for out in outputs {
        let mut params = out.parameters.cloned();
        let data = if out.binary {
            let size = binary::encode(&out.tensor.data, &mut binary_part);
            params
                .get_or_insert_with(Map::new)
                .insert(BINARY_DATA_SIZE.to_owned(), Value::from(size));
            None
        } else {
            Some(JsonData(&out.tensor.data))
        };
        wire_outputs.push(WireResponseOutput {
            name: &out.tensor.name,
            datatype: out.tensor.data.datatype().as_str(),
            shape: &out.tensor.shape,
            parameters: params,
            data,
        });
    }
    let wire = WireResponse {
        model_name,
        model_version,
        id,
        parameters,
        outputs: wire_outputs,
    };
    let mut body = serde_json::to_vec(&wire)?;
    let header_len = outputs.iter().any(|o| o.binary).then_some(body.len());
    body.extend_from_slice(&binary_part);
    Ok(EncodedResponse { body, header_len })
}

/// A tensor in model metadata.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: &'static str,
    pub shape: Vec<i64>,
}

/// `GET /v2/models/{name}` response.
#[derive(Clone, Debug, Serialize)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: &'static str,
    pub inputs: Vec<TensorMetadata>,
    pub outputs: Vec<TensorMetadata>,
}

/// `GET /v2` response.
#[derive(Clone, Debug, Serialize)]
pub struct ServerMetadata {
    pub name: &'static str,
    pub version: &'static str,
    pub extensions: Vec<&'static str>,
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
