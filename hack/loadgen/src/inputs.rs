//! What each request carries: rows of a CSV file (cycled, `--batch` rows per request) or
//! random values, shaped and typed after the model's metadata, as Open Inference Protocol v2
//! JSON bodies — plus the true labels of those rows for feedback.
//!
//! Everything that can be wrong with the file or the model (a text cell in a feature
//! column, a column count the model does not take, an integer input fed 2.5) is found once,
//! in [`Payloads::new`], before the first request; [`Payloads::make`] cannot fail.

use std::{io::Read, path::Path};

use rand::{Rng, distr::Alphanumeric};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most elements one input tensor of a request may have.
const MAX_ELEMENTS: usize = 1 << 20;

/// Why the inputs cannot be built.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InputError {
    #[error("cannot read CSV: {0}")]
    Csv(String),
    #[error("CSV has no column {0:?} (for --label-column)")]
    NoLabelColumn(String),
    #[error("CSV has no feature columns")]
    NoFeatures,
    #[error("CSV has no data rows")]
    NoRows,
    #[error("CSV line {line}, column {column:?}: {value:?} is not a finite number")]
    NotNumeric {
        line: u64,
        column: String,
        value: String,
    },
    #[error("the model has no inputs")]
    NoInputs,
    #[error("input {input:?}: datatype {datatype:?} is not supported")]
    Datatype { input: String, datatype: String },
    #[error("input {input:?} with shape {shape:?}: {reason}")]
    Shape {
        input: String,
        shape: Vec<i64>,
        reason: String,
    },
    #[error("input {input:?} is {datatype}, but CSV column {column:?} holds {value}")]
    Value {
        input: String,
        datatype: String,
        column: String,
        value: f64,
    },
}

/// The part of `GET /v2/models/{name}` this tool reads.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelMetadata {
    pub inputs: Vec<TensorMeta>,
}

/// One input as the model describes it; `-1` is a dynamic dimension.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct TensorMeta {
    pub name: String,
    pub datatype: String,
    pub shape: Vec<i64>,
}

/// A CSV file: numeric feature columns and, optionally, a label column.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub features: Vec<String>,
    rows: Vec<Vec<f64>>,
    labels: Option<Vec<Value>>,
}

impl Table {
    pub fn read(path: &Path, label_column: Option<&str>) -> Result<Table, InputError> {
        let file = std::fs::File::open(path)
            .map_err(|e| InputError::Csv(format!("{}: {e}", path.display())))?;
        Table::from_reader(file, label_column)
    }

    /// Parses a CSV with a header row; every column but `label_column` must be numeric.
    pub fn from_reader(reader: impl Read, label_column: Option<&str>) -> Result<Table, InputError> {
        let mut csv = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_reader(reader);
        let csv_err = |e: csv::Error| InputError::Csv(e.to_string());
        let header: Vec<String> = csv
            .headers()
            .map_err(csv_err)?
            .iter()
            .map(String::from)
            .collect();
        let label_index = label_column
            .map(|name| {
                header
                    .iter()
                    .position(|h| h == name)
                    .ok_or_else(|| InputError::NoLabelColumn(name.to_string()))
            })
            .transpose()?;
        let features: Vec<String> = header
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != label_index)
            .map(|(_, h)| h.clone())
            .collect();
        if features.is_empty() {
            return Err(InputError::NoFeatures);
        }
        let (mut rows, mut labels) = (Vec::new(), Vec::new());
        for record in csv.records() {
            let record = record.map_err(csv_err)?;
            let line = record.position().map_or(0, |p| p.line());
            let mut row = Vec::with_capacity(features.len());
            for (i, cell) in record.iter().enumerate() {
                if Some(i) == label_index {
                    labels.push(label_value(cell));
                    continue;
                }
                let value = cell.parse::<f64>().ok().filter(|v| v.is_finite());
                row.push(value.ok_or_else(|| InputError::NotNumeric {
                    line,
                    column: header.get(i).cloned().unwrap_or_default(),
                    value: cell.to_string(),
                })?);
            }
            rows.push(row);
        }
        if rows.is_empty() {
            return Err(InputError::NoRows);
        }
        Ok(Table {
            features,
            rows,
            labels: label_index.map(|_| labels),
        })
    }
}

/// A label cell as the feedback endpoint compares it: integers (also `2.0`) as numbers,
/// `true`/`false` as booleans, anything else as text.
pub fn label_value(cell: &str) -> Value {
    if let Ok(i) = cell.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = cell.parse::<f64>()
        && f.is_finite()
        && f.fract() == 0.0
        && f.abs() < 9.0e15
    {
        return Value::from(f as i64);
    }
    match cell {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(cell.to_string()),
    }
}

/// How values of a datatype are written and checked.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Float,
    Int { min: f64, max: f64 },
    Bool,
    Bytes,
}

fn kind(datatype: &str) -> Option<Kind> {
    let int = |min: f64, max: f64| Some(Kind::Int { min, max });
    match datatype {
        "FP16" | "FP32" | "FP64" => Some(Kind::Float),
        "INT8" => int(i8::MIN.into(), i8::MAX.into()),
        "INT16" => int(i16::MIN.into(), i16::MAX.into()),
        "INT32" => int(i32::MIN.into(), i32::MAX.into()),
        "INT64" => int(-9.0e15, 9.0e15),
        "UINT8" => int(0.0, u8::MAX.into()),
        "UINT16" => int(0.0, u16::MAX.into()),
        "UINT32" => int(0.0, u32::MAX.into()),
        "UINT64" => int(0.0, 9.0e15),
        "BOOL" => Some(Kind::Bool),
        "BYTES" => Some(Kind::Bytes),
        _ => None,
    }
}

impl Kind {
    fn accepts(self, v: f64) -> bool {
        match self {
            Kind::Float | Kind::Bytes => true,
            Kind::Int { min, max } => v.fract() == 0.0 && (min..=max).contains(&v),
            Kind::Bool => v == 0.0 || v == 1.0,
        }
    }

    fn encode(self, v: f64) -> Value {
        match self {
            Kind::Float => Value::from(v),
            Kind::Int { .. } => Value::from(v as i64),
            Kind::Bool => Value::Bool(v != 0.0),
            Kind::Bytes => Value::String(v.to_string()),
        }
    }

    fn random(self, rng: &mut impl Rng) -> Value {
        match self {
            Kind::Float => Value::from((rng.random::<f64>() * 1000.0).round() / 1000.0),
            Kind::Int { .. } => Value::from(rng.random_range(0..10)),
            Kind::Bool => Value::Bool(rng.random()),
            Kind::Bytes => {
                let s: String = (0..8)
                    .map(|_| char::from(rng.sample(Alphanumeric)))
                    .collect();
                Value::String(s)
            }
        }
    }
}

/// Shape of one request's tensor: `batch` rows of `columns` values when fed from a CSV
/// (rank 1 or 2 inputs), otherwise the model's shape with the first dynamic dimension set
/// to `batch` (default 1) and later dynamic dimensions to 1.
pub fn request_shape(
    meta: &[i64],
    batch: Option<usize>,
    columns: Option<usize>,
) -> Result<Vec<usize>, String> {
    let k = batch.unwrap_or(1);
    let first = |d: i64| match (d, batch) {
        (-1, _) => Ok(k),
        (d, Some(b)) if d != b as i64 => Err(format!(
            "the first dimension is fixed at {d}, not --batch {b}"
        )),
        (d, _) => usize::try_from(d).map_err(|_| format!("invalid dimension {d}")),
    };
    let shape = match (columns, meta) {
        (Some(1), [d]) => vec![first(*d)?],
        (Some(c), [d0, d1]) if *d1 == -1 || *d1 == c as i64 => vec![first(*d0)?, c],
        (Some(c), _) => return Err(format!("cannot take CSV rows of {c} values")),
        (None, []) if k == 1 => vec![],
        (None, []) => return Err("a scalar input takes no batch".into()),
        (None, [d0, rest @ ..]) => {
            let mut shape = vec![first(*d0)?];
            for d in rest {
                shape.push(if *d == -1 {
                    1
                } else {
                    usize::try_from(*d).map_err(|_| format!("invalid dimension {d}"))?
                });
            }
            shape
        }
    };
    let elements = shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d));
    match elements {
        Some(n) if n <= MAX_ELEMENTS => Ok(shape),
        _ => Err(format!("more than {MAX_ELEMENTS} elements per request")),
    }
}

struct Input {
    meta: TensorMeta,
    kind: Kind,
    shape: Vec<usize>,
}

/// One request body and the true labels of its rows (when the CSV has labels).
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    pub body: Vec<u8>,
    pub labels: Option<Vec<Value>>,
}

#[derive(Serialize)]
struct Body<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    inputs: Vec<TensorBody<'a>>,
}

#[derive(Serialize)]
struct TensorBody<'a> {
    name: &'a str,
    shape: &'a [usize],
    datatype: &'a str,
    data: Vec<Value>,
}

/// Builds request bodies: the first input from the CSV (if any), the others random.
pub struct Payloads {
    inputs: Vec<Input>,
    table: Option<Table>,
    batch: usize,
}

impl Payloads {
    pub fn new(
        meta: &ModelMetadata,
        table: Option<Table>,
        batch: Option<usize>,
    ) -> Result<Payloads, InputError> {
        if meta.inputs.is_empty() {
            return Err(InputError::NoInputs);
        }
        let mut inputs = Vec::with_capacity(meta.inputs.len());
        for (i, m) in meta.inputs.iter().enumerate() {
            let kind = kind(&m.datatype).ok_or_else(|| InputError::Datatype {
                input: m.name.clone(),
                datatype: m.datatype.clone(),
            })?;
            let columns = table.as_ref().filter(|_| i == 0).map(|t| t.features.len());
            let shape =
                request_shape(&m.shape, batch, columns).map_err(|reason| InputError::Shape {
                    input: m.name.clone(),
                    shape: m.shape.clone(),
                    reason,
                })?;
            inputs.push(Input {
                meta: m.clone(),
                kind,
                shape,
            });
        }
        if let (Some(t), Some(first)) = (&table, inputs.first()) {
            for row in &t.rows {
                for (value, column) in row.iter().zip(&t.features) {
                    if !first.kind.accepts(*value) {
                        return Err(InputError::Value {
                            input: first.meta.name.clone(),
                            datatype: first.meta.datatype.clone(),
                            column: column.clone(),
                            value: *value,
                        });
                    }
                }
            }
        }
        let batch = inputs
            .first()
            .and_then(|i| i.shape.first().copied())
            .unwrap_or(1);
        Ok(Payloads {
            inputs,
            table,
            batch,
        })
    }

    /// The inputs as sent: name, datatype and the request's shape.
    pub fn describe(&self) -> Vec<TensorMeta> {
        self.inputs
            .iter()
            .map(|i| TensorMeta {
                name: i.meta.name.clone(),
                datatype: i.meta.datatype.clone(),
                shape: i.shape.iter().map(|d| *d as i64).collect(),
            })
            .collect()
    }

    /// Body of request number `seq`: CSV rows `seq*batch ..` (wrapping), request `id` if given.
    pub fn make(&self, seq: u64, id: Option<&str>, rng: &mut impl Rng) -> Payload {
        let mut labels = None;
        let inputs = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let data = match (&self.table, i) {
                    (Some(t), 0) => {
                        let picked = self.rows(t, seq);
                        labels = t
                            .labels
                            .as_ref()
                            .map(|l| picked.iter().map(|r| l[*r].clone()).collect());
                        picked
                            .iter()
                            .flat_map(|r| t.rows[*r].iter().map(|v| input.kind.encode(*v)))
                            .collect()
                    }
                    _ => {
                        let n = input.shape.iter().product();
                        (0..n).map(|_| input.kind.random(rng)).collect()
                    }
                };
                TensorBody {
                    name: &input.meta.name,
                    shape: &input.shape,
                    datatype: &input.meta.datatype,
                    data,
                }
            })
            .collect();
        let body = serde_json::to_vec(&Body { id, inputs }).unwrap_or_default();
        Payload { body, labels }
    }

    /// Indices of the rows request `seq` sends.
    fn rows(&self, table: &Table, seq: u64) -> Vec<usize> {
        let n = table.rows.len() as u64;
        let start = (seq % n) * self.batch as u64 % n;
        (0..self.batch as u64)
            .map(|j| ((start + j) % n) as usize)
            .collect()
    }
}

#[cfg(test)]
#[path = "inputs_tests.rs"]
mod tests;
