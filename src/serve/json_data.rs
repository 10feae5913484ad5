//! The `data` member of JSON tensors: decoded straight from the raw JSON text into a typed
//! flat buffer (nested arrays are flattened row-major), and encoded back as a flat array.
//!
//! Decoding never builds a `serde_json::Value` tree: one visitor walks the arrays and pushes
//! each leaf, converted and range-checked, into the final `Vec` — that keeps large requests
//! free of per-element allocations.

use std::fmt;

use half::f16;
use serde::{
    Serialize, Serializer,
    de::{self, DeserializeSeed, SeqAccess, Visitor},
    ser::SerializeSeq,
};
use serde_json::value::RawValue;

use super::tensor::{DataType, TensorData};

/// One JSON leaf converted into an element type; `None` means "wrong kind or out of range".
trait Leaf: Sized {
    const EXPECTED: &'static str;
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_i64(_: i64) -> Option<Self> {
        None
    }
    fn from_f64(_: f64) -> Option<Self> {
        None
    }
    fn from_bool(_: bool) -> Option<Self> {
        None
    }
    fn from_str(_: &str) -> Option<Self> {
        None
    }
}

macro_rules! int_leaf {
    ($($t:ty => $name:literal),*) => {$(
        impl Leaf for $t {
            const EXPECTED: &'static str = $name;
            fn from_u64(v: u64) -> Option<Self> { <$t>::try_from(v).ok() }
            fn from_i64(v: i64) -> Option<Self> { <$t>::try_from(v).ok() }
        }
    )*};
}
int_leaf!(u8 => "UINT8 integers", u16 => "UINT16 integers", u32 => "UINT32 integers",
    u64 => "UINT64 integers", i8 => "INT8 integers", i16 => "INT16 integers",
    i32 => "INT32 integers", i64 => "INT64 integers");

macro_rules! float_leaf {
    ($($t:ty => $name:literal, $from:expr),*) => {$(
        impl Leaf for $t {
            const EXPECTED: &'static str = $name;
            fn from_u64(v: u64) -> Option<Self> { Some($from(v as f64)) }
            fn from_i64(v: i64) -> Option<Self> { Some($from(v as f64)) }
            fn from_f64(v: f64) -> Option<Self> { Some($from(v)) }
        }
    )*};
}
float_leaf!(f32 => "FP32 numbers", |v: f64| v as f32, f64 => "FP64 numbers", |v: f64| v,
    f16 => "FP16 numbers", f16::from_f64);

impl Leaf for bool {
    const EXPECTED: &'static str = "BOOL values (true/false)";
    fn from_bool(v: bool) -> Option<Self> {
        Some(v)
    }
}

impl Leaf for Vec<u8> {
    const EXPECTED: &'static str = "BYTES strings";
    fn from_str(v: &str) -> Option<Self> {
        Some(v.as_bytes().to_vec())
    }
}

/// Pushes every leaf of a (possibly nested) JSON array, or a single scalar, into `out`.
struct Flatten<'v, T>(&'v mut Vec<T>);

impl<'de, T: Leaf> DeserializeSeed<'de> for Flatten<'_, T> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<T: Leaf> Flatten<'_, T> {
    fn push<E: de::Error>(self, leaf: Option<T>, unexp: de::Unexpected<'_>) -> Result<(), E> {
        match leaf {
            Some(v) => {
                self.0.push(v);
                Ok(())
            }
            None => Err(E::invalid_value(unexp, &self)),
        }
    }
}

impl<'de, T: Leaf> Visitor<'de> for Flatten<'_, T> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (optionally nested in arrays)", T::EXPECTED)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Flatten(&mut *self.0))?.is_some() {}
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.push(T::from_u64(v), de::Unexpected::Unsigned(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.push(T::from_i64(v), de::Unexpected::Signed(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.push(T::from_f64(v), de::Unexpected::Float(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.push(T::from_bool(v), de::Unexpected::Bool(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.push(T::from_str(v), de::Unexpected::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Err(E::invalid_type(de::Unexpected::Unit, &self))
    }
    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(de::Error::invalid_type(de::Unexpected::Map, &self))
    }
}

fn flatten<T: Leaf>(raw: &RawValue, capacity: usize) -> Result<Vec<T>, serde_json::Error> {
    let mut out = Vec::with_capacity(capacity);
    let mut de = serde_json::Deserializer::from_str(raw.get());
    Flatten(&mut out).deserialize(&mut de)?;
    de.end()?;
    Ok(out)
}

/// Decodes the raw JSON `data` of a tensor of `datatype`; `expected` (the element count of
/// the declared shape) only sizes the buffer — the caller checks the count.
pub fn decode(
    datatype: DataType,
    raw: &RawValue,
    expected: usize,
) -> Result<TensorData, serde_json::Error> {
    // Every JSON element takes at least two bytes ("1,"), so a lying shape cannot make us
    // reserve more than the body could hold.
    let capacity = expected.min(raw.get().len() / 2 + 1);
    Ok(match datatype {
        DataType::Bool => TensorData::Bool(flatten(raw, capacity)?),
        DataType::Uint8 => TensorData::Uint8(flatten(raw, capacity)?),
        DataType::Uint16 => TensorData::Uint16(flatten(raw, capacity)?),
        DataType::Uint32 => TensorData::Uint32(flatten(raw, capacity)?),
        DataType::Uint64 => TensorData::Uint64(flatten(raw, capacity)?),
        DataType::Int8 => TensorData::Int8(flatten(raw, capacity)?),
        DataType::Int16 => TensorData::Int16(flatten(raw, capacity)?),
        DataType::Int32 => TensorData::Int32(flatten(raw, capacity)?),
        DataType::Int64 => TensorData::Int64(flatten(raw, capacity)?),
        DataType::Fp16 => TensorData::Fp16(flatten(raw, capacity)?),
        DataType::Fp32 => TensorData::Fp32(flatten(raw, capacity)?),
        DataType::Fp64 => TensorData::Fp64(flatten(raw, capacity)?),
        DataType::Bytes => TensorData::Bytes(flatten(raw, capacity)?),
    })
}

/// Serializes a tensor buffer as the flat JSON array of the protocol (FP16 as numbers,
/// BYTES as strings; bytes that are not UTF-8 are replaced — ask for binary output instead).
pub struct JsonData<'a>(pub &'a TensorData);

impl Serialize for JsonData<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            TensorData::Fp16(v) => {
                let mut seq = serializer.serialize_seq(Some(v.len()))?;
                for x in v {
                    seq.serialize_element(&x.to_f32())?;
                }
                seq.end()
            }
            TensorData::Bytes(v) => {
                let mut seq = serializer.serialize_seq(Some(v.len()))?;
                for x in v {
                    seq.serialize_element(&String::from_utf8_lossy(x))?;
                }
                seq.end()
            }
            TensorData::Bool(v) => v.serialize(serializer),
            TensorData::Uint8(v) => v.serialize(serializer),
            TensorData::Uint16(v) => v.serialize(serializer),
            TensorData::Uint32(v) => v.serialize(serializer),
            TensorData::Uint64(v) => v.serialize(serializer),
            TensorData::Int8(v) => v.serialize(serializer),
            TensorData::Int16(v) => v.serialize(serializer),
            TensorData::Int32(v) => v.serialize(serializer),
            TensorData::Int64(v) => v.serialize(serializer),
            TensorData::Fp32(v) => v.serialize(serializer),
            TensorData::Fp64(v) => v.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(dt: DataType, json: &str) -> Result<TensorData, String> {
        let raw: Box<RawValue> = serde_json::from_str(json).map_err(|e| e.to_string())?;
        decode(dt, &raw, 4).map_err(|e| e.to_string())
    }

    #[test]
    fn decodes_every_datatype() {
        let cases: Vec<(DataType, &str, TensorData)> = vec![
            (
                DataType::Bool,
                "[true,false]",
                TensorData::Bool(vec![true, false]),
            ),
            (DataType::Uint8, "[0,255]", TensorData::Uint8(vec![0, 255])),
            (DataType::Uint16, "[65535]", TensorData::Uint16(vec![65535])),
            (
                DataType::Uint32,
                "[4294967295]",
                TensorData::Uint32(vec![u32::MAX]),
            ),
            (
                DataType::Uint64,
                "[18446744073709551615]",
                TensorData::Uint64(vec![u64::MAX]),
            ),
            (
                DataType::Int8,
                "[-128,127]",
                TensorData::Int8(vec![-128, 127]),
            ),
            (DataType::Int16, "[-2]", TensorData::Int16(vec![-2])),
            (
                DataType::Int32,
                "[-2147483648]",
                TensorData::Int32(vec![i32::MIN]),
            ),
            (
                DataType::Int64,
                "[[1],[-2]]",
                TensorData::Int64(vec![1, -2]),
            ),
            (
                DataType::Fp16,
                "[1.5, 2]",
                TensorData::Fp16(vec![f16::from_f32(1.5), f16::from_f32(2.0)]),
            ),
            (
                DataType::Fp32,
                "[[1, 2.5], [3e2, -0.0]]",
                TensorData::Fp32(vec![1.0, 2.5, 300.0, -0.0]),
            ),
            (DataType::Fp64, "[0.1]", TensorData::Fp64(vec![0.1])),
            (
                DataType::Bytes,
                r#"["a","\u00e9"]"#,
                TensorData::Bytes(vec![b"a".to_vec(), "é".as_bytes().to_vec()]),
            ),
            (DataType::Fp32, "7", TensorData::Fp32(vec![7.0])),
            (DataType::Fp32, "[]", TensorData::Fp32(vec![])),
        ];
        for (dt, json, want) in cases {
            assert_eq!(dec(dt, json), Ok(want), "{dt} {json}");
        }
    }

    #[test]
    fn rejects_wrong_kinds_and_ranges() {
        let cases = [
            (DataType::Uint8, "[256]"),
            (DataType::Uint8, "[-1]"),
            (DataType::Int8, "[128]"),
            (DataType::Int64, "[1.5]"),
            (DataType::Int32, r#"["1"]"#),
            (DataType::Bool, "[1]"),
            (DataType::Fp32, "[true]"),
            (DataType::Fp32, "[null]"),
            (DataType::Fp32, r#"[{"a":1}]"#),
            (DataType::Bytes, "[1]"),
            (DataType::Fp32, "[1,"),
        ];
        for (dt, json) in cases {
            assert!(dec(dt, json).is_err(), "{dt} {json} should fail");
        }
        let msg = dec(DataType::Uint8, "[300]").unwrap_err();
        assert!(msg.contains("UINT8"), "{msg}");
    }

    #[test]
    fn encodes_flat_arrays() {
        let cases: Vec<(TensorData, &str)> = vec![
            (TensorData::Fp16(vec![f16::from_f32(0.5)]), "[0.5]"),
            (TensorData::Bytes(vec![b"hi".to_vec()]), r#"["hi"]"#),
            (TensorData::Bool(vec![true]), "[true]"),
            (TensorData::Int64(vec![-3, 4]), "[-3,4]"),
            (TensorData::Fp32(vec![1.5]), "[1.5]"),
        ];
        for (data, want) in cases {
            assert_eq!(
                serde_json::to_string(&JsonData(&data)).ok().as_deref(),
                Some(want)
            );
        }
    }
}
