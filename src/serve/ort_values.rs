//! Moving tensors in and out of ONNX Runtime: owned buffers become session inputs without a
//! copy, outputs are copied once into [`TensorData`], and ONNX element types map to the
//! protocol's datatypes.

use ort::{
    session::SessionInputValue,
    value::{DynValue, Tensor, TensorElementType, Utf8Data, ValueType},
};

use super::tensor::{DataType, NamedTensor, TensorData};

/// The protocol datatype of an ONNX element type, if the server can carry it.
pub fn datatype_of(ty: TensorElementType) -> Option<DataType> {
    Some(match ty {
        TensorElementType::Bool => DataType::Bool,
        TensorElementType::Uint8 => DataType::Uint8,
        TensorElementType::Uint16 => DataType::Uint16,
        TensorElementType::Uint32 => DataType::Uint32,
        TensorElementType::Uint64 => DataType::Uint64,
        TensorElementType::Int8 => DataType::Int8,
        TensorElementType::Int16 => DataType::Int16,
        TensorElementType::Int32 => DataType::Int32,
        TensorElementType::Int64 => DataType::Int64,
        TensorElementType::Float16 => DataType::Fp16,
        TensorElementType::Float32 => DataType::Fp32,
        TensorElementType::Float64 => DataType::Fp64,
        TensorElementType::String => DataType::Bytes,
        _ => return None,
    })
}

/// Raw bytes handed to an ONNX Runtime string tensor (which stores bytes, not checked UTF-8).
#[derive(Clone)]
struct RawString(Vec<u8>);

impl Utf8Data for RawString {
    fn as_utf8_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Turns an owned tensor into a session input (numeric buffers are moved, not copied).
pub fn to_input(tensor: NamedTensor) -> ort::Result<(String, SessionInputValue<'static>)> {
    let shape = tensor.shape;
    macro_rules! owned {
        ($v:expr) => {
            Tensor::from_array((shape, $v))?.into_dyn()
        };
    }
    let value: DynValue = match tensor.data {
        TensorData::Bool(v) => owned!(v),
        TensorData::Uint8(v) => owned!(v),
        TensorData::Uint16(v) => owned!(v),
        TensorData::Uint32(v) => owned!(v),
        TensorData::Uint64(v) => owned!(v),
        TensorData::Int8(v) => owned!(v),
        TensorData::Int16(v) => owned!(v),
        TensorData::Int32(v) => owned!(v),
        TensorData::Int64(v) => owned!(v),
        TensorData::Fp16(v) => owned!(v),
        TensorData::Fp32(v) => owned!(v),
        TensorData::Fp64(v) => owned!(v),
        TensorData::Bytes(v) => {
            let strings: Vec<RawString> = v.into_iter().map(RawString).collect();
            Tensor::from_string_array((shape, strings.as_slice()))?.into_dyn()
        }
    };
    Ok((tensor.name, value.into()))
}

/// Why an output cannot be returned.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output '{0}' is not a tensor (sequences and maps are not supported)")]
    NotTensor(String),
    #[error("output '{name}' has element type {ty:?}, which the protocol cannot carry")]
    Unsupported { name: String, ty: TensorElementType },
    #[error("output '{name}': {source}")]
    Extract { name: String, source: ort::Error },
}

/// Copies one session output into an owned tensor.
pub fn from_output(name: &str, value: &DynValue) -> Result<NamedTensor, OutputError> {
    let ValueType::Tensor { ty, .. } = value.dtype() else {
        return Err(OutputError::NotTensor(name.to_owned()));
    };
    let datatype = datatype_of(*ty).ok_or_else(|| OutputError::Unsupported {
        name: name.to_owned(),
        ty: *ty,
    })?;
    let wrap = |source| OutputError::Extract {
        name: name.to_owned(),
        source,
    };
    macro_rules! copy {
        ($t:ty, $variant:ident) => {{
            let (shape, data) = value.try_extract_tensor::<$t>().map_err(wrap)?;
            (shape.to_vec(), TensorData::$variant(data.to_vec()))
        }};
    }
    let (shape, data) = match datatype {
        DataType::Bool => copy!(bool, Bool),
        DataType::Uint8 => copy!(u8, Uint8),
        DataType::Uint16 => copy!(u16, Uint16),
        DataType::Uint32 => copy!(u32, Uint32),
        DataType::Uint64 => copy!(u64, Uint64),
        DataType::Int8 => copy!(i8, Int8),
        DataType::Int16 => copy!(i16, Int16),
        DataType::Int32 => copy!(i32, Int32),
        DataType::Int64 => copy!(i64, Int64),
        DataType::Fp16 => copy!(half::f16, Fp16),
        DataType::Fp32 => copy!(f32, Fp32),
        DataType::Fp64 => copy!(f64, Fp64),
        DataType::Bytes => {
            let (shape, strings) = value.try_extract_strings().map_err(wrap)?;
            let bytes = strings.into_iter().map(String::into_bytes).collect();
            (shape.to_vec(), TensorData::Bytes(bytes))
        }
    };
    Ok(NamedTensor {
        name: name.to_owned(),
        shape,
        data,
    })
}
