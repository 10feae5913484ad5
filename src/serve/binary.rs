//! The binary tensor data extension: raw little-endian tensor bytes appended after the JSON
//! header of a request or response (`Inference-Header-Content-Length` says where the JSON
//! ends). BOOL is one byte per element; BYTES elements are each prefixed by a 4-byte
//! little-endian length.

use half::f16;

use super::tensor::{DataType, TensorData};

/// Why a binary tensor payload cannot be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BinaryError {
    #[error("{datatype} tensor needs {expected} bytes of binary data, got {actual}")]
    SizeMismatch {
        datatype: DataType,
        expected: usize,
        actual: usize,
    },
    #[error("BYTES element {index} is truncated (length prefix says {len}, {left} bytes left)")]
    TruncatedElement {
        index: usize,
        len: usize,
        left: usize,
    },
    #[error("BYTES tensor holds {actual} elements, its shape needs {expected}")]
    CountMismatch { expected: usize, actual: usize },
    #[error("BOOL element {index} is {value}; only 0 and 1 are valid")]
    InvalidBool { index: usize, value: u8 },
}

fn fixed<const N: usize, T>(bytes: &[u8], convert: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|chunk| {
            let mut array = [0u8; N];
            array.copy_from_slice(chunk);
            convert(array)
        })
        .collect()
}

/// Decodes `count` elements of `datatype` from exactly `bytes`.
pub fn decode(datatype: DataType, bytes: &[u8], count: usize) -> Result<TensorData, BinaryError> {
    let Some(size) = datatype.element_size() else {
        return decode_bytes(bytes, count);
    };
    let expected = count.saturating_mul(size);
    if bytes.len() != expected {
        return Err(BinaryError::SizeMismatch {
            datatype,
            expected,
            actual: bytes.len(),
        });
    }
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(decode_bools(bytes)?),
        DataType::Uint8 => TensorData::Uint8(bytes.to_vec()),
        DataType::Int8 => TensorData::Int8(bytes.iter().map(|&b| b as i8).collect()),
        DataType::Uint16 => TensorData::Uint16(fixed(bytes, u16::from_le_bytes)),
        DataType::Int16 => TensorData::Int16(fixed(bytes, i16::from_le_bytes)),
        DataType::Fp16 => TensorData::Fp16(fixed(bytes, f16::from_le_bytes)),
        DataType::Uint32 => TensorData::Uint32(fixed(bytes, u32::from_le_bytes)),
        DataType::Int32 => TensorData::Int32(fixed(bytes, i32::from_le_bytes)),
        DataType::Fp32 => TensorData::Fp32(fixed(bytes, f32::from_le_bytes)),
        DataType::Uint64 => TensorData::Uint64(fixed(bytes, u64::from_le_bytes)),
        DataType::Int64 => TensorData::Int64(fixed(bytes, i64::from_le_bytes)),
        DataType::Fp64 => TensorData::Fp64(fixed(bytes, f64::from_le_bytes)),
        DataType::Bytes => decode_bytes(bytes, count)?,
    })
}

fn decode_bools(bytes: &[u8]) -> Result<Vec<bool>, BinaryError> {
    bytes
        .iter()
        .enumerate()
        .map(|(index, &value)| match value {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(BinaryError::InvalidBool { index, value }),
        })
        .collect()
}

fn decode_bytes(mut bytes: &[u8], count: usize) -> Result<TensorData, BinaryError> {
    // Each element costs at least its 4-byte prefix: bound the reservation by the payload.
    let mut out = Vec::with_capacity(count.min(bytes.len() / 4));
    while !bytes.is_empty() {
        let index = out.len();
        let (prefix, rest) = bytes
            .split_at_checked(4)
            .ok_or(BinaryError::TruncatedElement {
                index,
                len: 4,
                left: bytes.len(),
            })?;
        let mut len = [0u8; 4];
        len.copy_from_slice(prefix);
        let len = u32::from_le_bytes(len) as usize;
        let (element, rest) = rest
            .split_at_checked(len)
            .ok_or(BinaryError::TruncatedElement {
                index,
                len,
                left: rest.len(),
            })?;
        out.push(element.to_vec());
        bytes = rest;
    }
    if out.len() != count {
        return Err(BinaryError::CountMismatch {
            expected: count,
            actual: out.len(),
        });
    }
    Ok(TensorData::Bytes(out))
}

/// Appends the binary encoding of `data` to `out`; returns the number of bytes written.
pub fn encode(data: &TensorData, out: &mut Vec<u8>) -> usize {
    let start = out.len();
    macro_rules! le {
        ($v:expr) => {
            for x in $v {
                out.extend_from_slice(&x.to_le_bytes());
            }
        };
    }
    match data {
        TensorData::Bool(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        TensorData::Uint8(v) => out.extend_from_slice(v),
        TensorData::Int8(v) => le!(v),
        TensorData::Uint16(v) => le!(v),
        TensorData::Int16(v) => le!(v),
        TensorData::Fp16(v) => le!(v),
        TensorData::Uint32(v) => le!(v),
        TensorData::Int32(v) => le!(v),
        TensorData::Fp32(v) => le!(v),
        TensorData::Uint64(v) => le!(v),
        TensorData::Int64(v) => le!(v),
        TensorData::Fp64(v) => le!(v),
        TensorData::Bytes(v) => {
            for element in v {
                // Elements come from ONNX Runtime string tensors, far below 4 GiB each.
                let len = u32::try_from(element.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&len.to_le_bytes());
                out.extend_from_slice(&element[..len as usize]);
            }
        }
    }
    out.len() - start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_datatype() {
        let cases = vec![
            TensorData::Bool(vec![true, false, true]),
            TensorData::Uint8(vec![0, 7, 255]),
            TensorData::Uint16(vec![1, u16::MAX]),
            TensorData::Uint32(vec![u32::MAX]),
            TensorData::Uint64(vec![u64::MAX, 3]),
            TensorData::Int8(vec![-128, 5]),
            TensorData::Int16(vec![-2]),
            TensorData::Int32(vec![i32::MIN]),
            TensorData::Int64(vec![-1, 1 << 40]),
            TensorData::Fp16(vec![f16::from_f32(-2.5)]),
            TensorData::Fp32(vec![1.5, f32::MIN_POSITIVE]),
            TensorData::Fp64(vec![std::f64::consts::PI]),
            TensorData::Bytes(vec![b"".to_vec(), b"abc".to_vec(), vec![0xff, 0]]),
        ];
        for data in cases {
            let mut buf = Vec::new();
            let n = encode(&data, &mut buf);
            assert_eq!(n, buf.len());
            assert_eq!(decode(data.datatype(), &buf, data.len()), Ok(data));
        }
    }

    #[test]
    fn known_layouts() {
        let mut buf = Vec::new();
        encode(&TensorData::Fp32(vec![1.0]), &mut buf);
        assert_eq!(buf, [0, 0, 0x80, 0x3f]);
        buf.clear();
        encode(&TensorData::Bytes(vec![b"hi".to_vec()]), &mut buf);
        assert_eq!(buf, [2, 0, 0, 0, b'h', b'i']);
    }

    #[test]
    fn rejects_bad_payloads() {
        let cases: Vec<(DataType, &[u8], usize)> = vec![
            (DataType::Fp32, &[0, 0, 0], 1),
            (DataType::Fp32, &[0; 8], 1),
            (DataType::Int64, &[0; 8], 2),
            (DataType::Bool, &[2], 1),
            (DataType::Bytes, &[5, 0, 0, 0, b'a'], 1),
            (DataType::Bytes, &[1, 0], 1),
            (DataType::Bytes, &[1, 0, 0, 0, b'a'], 2),
            (DataType::Bytes, &[], 1),
            (DataType::Fp64, &[], usize::MAX),
        ];
        for (dt, bytes, count) in cases {
            assert!(decode(dt, bytes, count).is_err(), "{dt} {bytes:?} {count}");
        }
    }
}
