//! Tensors as the server holds them between the wire and ONNX Runtime: the protocol's
//! datatype names, typed flat buffers, and the shape arithmetic that must never overflow.
//!
//! Everything here is pure so that decoding can be tested (and fuzzed) without a runtime.

use half::f16;

/// Largest element count accepted for one tensor; far above any body the server accepts,
/// small enough that `elements * 8` cannot overflow.
pub const MAX_ELEMENTS: usize = 1 << 40;

/// A tensor datatype named by the Open Inference Protocol that ONNX Runtime can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DataType {
    Bool,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Int8,
    Int16,
    Int32,
    Int64,
    Fp16,
    Fp32,
    Fp64,
    Bytes,
}

impl DataType {
    /// Every supported datatype, in the protocol's order.
    pub const ALL: [DataType; 13] = [
        DataType::Bool,
        DataType::Uint8,
        DataType::Uint16,
        DataType::Uint32,
        DataType::Uint64,
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Fp16,
        DataType::Fp32,
        DataType::Fp64,
        DataType::Bytes,
    ];

    /// The protocol's name, e.g. `FP32`.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Bool => "BOOL",
            DataType::Uint8 => "UINT8",
            DataType::Uint16 => "UINT16",
            DataType::Uint32 => "UINT32",
            DataType::Uint64 => "UINT64",
            DataType::Int8 => "INT8",
            DataType::Int16 => "INT16",
            DataType::Int32 => "INT32",
            DataType::Int64 => "INT64",
            DataType::Fp16 => "FP16",
            DataType::Fp32 => "FP32",
            DataType::Fp64 => "FP64",
            DataType::Bytes => "BYTES",
        }
    }

    /// Parses a protocol datatype name; `None` for names the server cannot run (e.g. `BF16`).
    pub fn parse(name: &str) -> Option<DataType> {
        DataType::ALL.into_iter().find(|dt| dt.as_str() == name)
    }

    /// Bytes per element in the binary encoding; `None` for variable-length `BYTES`.
    pub fn element_size(self) -> Option<usize> {
        Some(match self {
            DataType::Bool | DataType::Uint8 | DataType::Int8 => 1,
            DataType::Uint16 | DataType::Int16 | DataType::Fp16 => 2,
            DataType::Uint32 | DataType::Int32 | DataType::Fp32 => 4,
            DataType::Uint64 | DataType::Int64 | DataType::Fp64 => 8,
            DataType::Bytes => return None,
        })
    }
}

impl std::fmt::Display for DataType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A flat, row-major tensor buffer of one datatype.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    Bool(Vec<bool>),
    Uint8(Vec<u8>),
    Uint16(Vec<u16>),
    Uint32(Vec<u32>),
    Uint64(Vec<u64>),
    Int8(Vec<i8>),
    Int16(Vec<i16>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Fp16(Vec<f16>),
    Fp32(Vec<f32>),
    Fp64(Vec<f64>),
    Bytes(Vec<Vec<u8>>),
}

/// Applies `$body` to the vector inside any [`TensorData`] variant, binding it as `$v`.
macro_rules! with_vec {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            TensorData::Bool($v) => $body,
            TensorData::Uint8($v) => $body,
            TensorData::Uint16($v) => $body,
            TensorData::Uint32($v) => $body,
            TensorData::Uint64($v) => $body,
            TensorData::Int8($v) => $body,
            TensorData::Int16($v) => $body,
            TensorData::Int32($v) => $body,
            TensorData::Int64($v) => $body,
            TensorData::Fp16($v) => $body,
            TensorData::Fp32($v) => $body,
            TensorData::Fp64($v) => $body,
            TensorData::Bytes($v) => $body,
        }
    };
}
pub(crate) use with_vec;

impl TensorData {
    /// The datatype of this buffer.
    pub fn datatype(&self) -> DataType {
        match self {
            TensorData::Bool(_) => DataType::Bool,
            TensorData::Uint8(_) => DataType::Uint8,
            TensorData::Uint16(_) => DataType::Uint16,
            TensorData::Uint32(_) => DataType::Uint32,
            TensorData::Uint64(_) => DataType::Uint64,
            TensorData::Int8(_) => DataType::Int8,
            TensorData::Int16(_) => DataType::Int16,
            TensorData::Int32(_) => DataType::Int32,
            TensorData::Int64(_) => DataType::Int64,
            TensorData::Fp16(_) => DataType::Fp16,
            TensorData::Fp32(_) => DataType::Fp32,
            TensorData::Fp64(_) => DataType::Fp64,
            TensorData::Bytes(_) => DataType::Bytes,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        with_vec!(self, v => v.len())
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// An empty buffer of `datatype` with room for `capacity` elements.
    pub fn with_capacity(datatype: DataType, capacity: usize) -> TensorData {
        match datatype {
            DataType::Bool => TensorData::Bool(Vec::with_capacity(capacity)),
            DataType::Uint8 => TensorData::Uint8(Vec::with_capacity(capacity)),
            DataType::Uint16 => TensorData::Uint16(Vec::with_capacity(capacity)),
            DataType::Uint32 => TensorData::Uint32(Vec::with_capacity(capacity)),
            DataType::Uint64 => TensorData::Uint64(Vec::with_capacity(capacity)),
            DataType::Int8 => TensorData::Int8(Vec::with_capacity(capacity)),
            DataType::Int16 => TensorData::Int16(Vec::with_capacity(capacity)),
            DataType::Int32 => TensorData::Int32(Vec::with_capacity(capacity)),
            DataType::Int64 => TensorData::Int64(Vec::with_capacity(capacity)),
            DataType::Fp16 => TensorData::Fp16(Vec::with_capacity(capacity)),
            DataType::Fp32 => TensorData::Fp32(Vec::with_capacity(capacity)),
            DataType::Fp64 => TensorData::Fp64(Vec::with_capacity(capacity)),
            DataType::Bytes => TensorData::Bytes(Vec::with_capacity(capacity)),
        }
    }

    /// A buffer of `len` zeros (false, empty strings) — used for the warm-up run.
    pub fn zeros(datatype: DataType, len: usize) -> TensorData {
        match datatype {
            DataType::Bool => TensorData::Bool(vec![false; len]),
            DataType::Uint8 => TensorData::Uint8(vec![0; len]),
            DataType::Uint16 => TensorData::Uint16(vec![0; len]),
            DataType::Uint32 => TensorData::Uint32(vec![0; len]),
            DataType::Uint64 => TensorData::Uint64(vec![0; len]),
            DataType::Int8 => TensorData::Int8(vec![0; len]),
            DataType::Int16 => TensorData::Int16(vec![0; len]),
            DataType::Int32 => TensorData::Int32(vec![0; len]),
            DataType::Int64 => TensorData::Int64(vec![0; len]),
            DataType::Fp16 => TensorData::Fp16(vec![f16::ZERO; len]),
            DataType::Fp32 => TensorData::Fp32(vec![0.0; len]),
            DataType::Fp64 => TensorData::Fp64(vec![0.0; len]),
            DataType::Bytes => TensorData::Bytes(vec![Vec::new(); len]),
        }
    }

    /// Appends `other` (same datatype) to this buffer; `false` when the datatypes differ.
    pub fn extend_from(&mut self, other: &TensorData) -> bool {
        macro_rules! ext {
            ($($variant:ident),*) => {
                match (self, other) {
                    $((TensorData::$variant(a), TensorData::$variant(b)) => { a.extend_from_slice(b); true })*
                    _ => false,
                }
            };
        }
        ext!(
            Bool, Uint8, Uint16, Uint32, Uint64, Int8, Int16, Int32, Int64, Fp16, Fp32, Fp64, Bytes
        )
    }

    /// Copies elements `range` into a new buffer (used to split a batched output).
    pub fn slice(&self, range: std::ops::Range<usize>) -> TensorData {
        match self {
            TensorData::Bool(v) => TensorData::Bool(v[range].to_vec()),
            TensorData::Uint8(v) => TensorData::Uint8(v[range].to_vec()),
            TensorData::Uint16(v) => TensorData::Uint16(v[range].to_vec()),
            TensorData::Uint32(v) => TensorData::Uint32(v[range].to_vec()),
            TensorData::Uint64(v) => TensorData::Uint64(v[range].to_vec()),
            TensorData::Int8(v) => TensorData::Int8(v[range].to_vec()),
            TensorData::Int16(v) => TensorData::Int16(v[range].to_vec()),
            TensorData::Int32(v) => TensorData::Int32(v[range].to_vec()),
            TensorData::Int64(v) => TensorData::Int64(v[range].to_vec()),
            TensorData::Fp16(v) => TensorData::Fp16(v[range].to_vec()),
            TensorData::Fp32(v) => TensorData::Fp32(v[range].to_vec()),
            TensorData::Fp64(v) => TensorData::Fp64(v[range].to_vec()),
            TensorData::Bytes(v) => TensorData::Bytes(v[range].to_vec()),
        }
    }
}

/// A named tensor with its shape.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: TensorData,
}

/// Why a shape is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShapeError {
    #[error("dimension {index} is {value}; dimensions must be >= 0")]
    Negative { index: usize, value: i64 },
    #[error("shape {0:?} has too many elements")]
    TooLarge(Vec<i64>),
}

/// Number of elements of `shape`, refusing negative dimensions and overflow.
///
/// `[2, 3]` → 6; `[]` (a scalar) → 1; `[0, 5]` → 0; `[-1]` → error;
/// `[1 << 40, 1 << 40]` → error (would overflow).
pub fn element_count(shape: &[i64]) -> Result<usize, ShapeError> {
    let mut count: usize = 1;
    for (index, &value) in shape.iter().enumerate() {
        let dim = usize::try_from(value).map_err(|_| ShapeError::Negative { index, value })?;
        count = count
            .checked_mul(dim)
            .filter(|&c| c <= MAX_ELEMENTS)
            .ok_or_else(|| ShapeError::TooLarge(shape.to_vec()))?;
    }
    Ok(count)
}

/// Whether a concrete `shape` fits a declared model shape (where `-1` is any size).
pub fn shape_matches(declared: &[i64], shape: &[i64]) -> bool {
    declared.len() == shape.len() && declared.iter().zip(shape).all(|(&d, &s)| d < 0 || d == s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datatype_names_round_trip() {
        for dt in DataType::ALL {
            assert_eq!(DataType::parse(dt.as_str()), Some(dt));
        }
        for unknown in ["fp32", "BF16", "", "STRING", "FP8"] {
            assert_eq!(DataType::parse(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn element_counts() {
        let cases: &[(&[i64], Result<usize, ()>)] = &[
            (&[], Ok(1)),
            (&[3], Ok(3)),
            (&[2, 3, 4], Ok(24)),
            (&[0, 5], Ok(0)),
            (&[-1], Err(())),
            (&[2, -3], Err(())),
            (&[i64::MAX, 2], Err(())),
            (&[1 << 32, 1 << 32], Err(())),
            (&[1 << 20, 1 << 20, 1 << 20, 0], Err(())),
        ];
        for (shape, want) in cases {
            assert_eq!(element_count(shape).map_err(|_| ()), *want, "{shape:?}");
        }
    }

    #[test]
    fn declared_shapes() {
        assert!(shape_matches(&[-1, 4], &[7, 4]));
        assert!(!shape_matches(&[-1, 4], &[7, 3]));
        assert!(!shape_matches(&[-1, 4], &[7]));
        assert!(shape_matches(&[], &[]));
    }

    #[test]
    fn extend_and_slice() {
        let mut a = TensorData::Fp32(vec![1.0, 2.0]);
        assert!(a.extend_from(&TensorData::Fp32(vec![3.0])));
        assert!(!a.extend_from(&TensorData::Int64(vec![3])));
        assert_eq!(a.slice(1..3), TensorData::Fp32(vec![2.0, 3.0]));
        assert_eq!(TensorData::zeros(DataType::Bytes, 2).len(), 2);
    }
}
