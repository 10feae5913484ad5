//! Reading the data files `modelpilot profile` and `modelpilot drift` work on: CSV with a
//! header row, and NumPy `.npy` matrices. Small own readers (no CSV or NumPy crate): the
//! formats needed here are simple, and every bad input becomes an error naming the file and
//! the line or field, never a panic.
//!
//! A CSV column is numeric when every non-empty cell parses as a number (empty cells are
//! missing values); it is categorical when named in `categorical` or when some cell is not a
//! number. Categorical values are kept as text; a number in a categorical column is written as
//! the server writes labels, so `1.0` and `1` are the same category `"1"` ([`category_text`]).
//! A `.npy` file holds a 2-D C-order matrix of `f4`, `f8`, `i4` or `i8`; its columns are named
//! `f0`, `f1`, ….

use std::path::Path;

/// Why a data file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

/// The values of one column.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Numbers; `NaN` marks a missing value.
    Numeric(Vec<f64>),
    /// Category texts; an empty text marks a missing value.
    Categorical(Vec<String>),
}

/// One named column.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub values: Values,
}

/// A data file's columns, all with `rows` values.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: usize,
}

/// Reads a `.npy` file (by extension) or a CSV file.
pub fn read_table(path: &Path, categorical: &[String]) -> Result<Table, DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let is_npy = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
    let parsed = if is_npy {
        parse_npy(&bytes, categorical)
    } else {
        std::str::from_utf8(&bytes)
            .map_err(|e| format!("not UTF-8 text: {e}"))
            .and_then(|text| parse_csv(text, categorical))
    };
    parsed.map_err(|reason| DataError::Invalid {
        path: path.display().to_string(),
        reason,
    })
}

/// The category text of a number: integral values without a fraction (`1.0` → `"1"`).
///
/// Examples: `1.0 → "1"`, `-3.0 → "-3"`, `2.5 → "2.5"`.
pub fn category_text(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// Parses CSV text with a header row (fields may be double-quoted, `""` escapes a quote).
pub fn parse_csv(text: &str, categorical: &[String]) -> Result<Table, String> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err("empty file (a header row is expected)".into());
    };
    let names: Vec<String> = split_record(header)
        .map_err(|e| format!("line 1: {e}"))?
        .into_iter()
        .map(|n| n.trim().to_string())
        .collect();
    check_names(&names, categorical)?;
    let mut cells: Vec<Vec<String>> = vec![Vec::new(); names.len()];
    for (number, line) in lines {
        let fields = split_record(line).map_err(|e| format!("line {}: {e}", number + 1))?;
        if fields.len() != names.len() {
            let (got, want) = (fields.len(), names.len());
            return Err(format!(
                "line {}: {got} fields, the header has {want}",
                number + 1
            ));
        }
        for (column, field) in cells.iter_mut().zip(fields) {
            column.push(field.trim().to_string());
        }
    }
    let rows = cells.first().map_or(0, Vec::len);
    let columns = names
        .into_iter()
        .zip(cells)
        .map(|(name, cells)| {
            let values = column_values(cells, categorical.contains(&name));
            Column { name, values }
        })
        .collect();
    Ok(Table { columns, rows })
}

fn check_names(names: &[String], categorical: &[String]) -> Result<(), String> {
    if let Some(i) = names.iter().position(String::is_empty) {
        return Err(format!("header: column {} has no name", i + 1));
    }
    for (i, name) in names.iter().enumerate() {
        if names[..i].contains(name) {
            return Err(format!("header: duplicate column {name:?}"));
        }
    }
    if let Some(unknown) = categorical.iter().find(|c| !names.contains(c)) {
        return Err(format!("no column {unknown:?} (named as categorical)"));
    }
    Ok(())
}

fn column_values(cells: Vec<String>, categorical: bool) -> Values {
    let parse = |cell: &String| -> Option<f64> {
        if cell.is_empty() {
            Some(f64::NAN)
        } else {
            cell.parse().ok()
        }
    };
    let numbers: Option<Vec<f64>> = cells.iter().map(parse).collect();
    match numbers {
        Some(numbers) if !categorical => Values::Numeric(numbers),
        Some(numbers) => Values::Categorical(
            numbers
                .into_iter()
                .map(|v| {
                    if v.is_nan() {
                        String::new()
                    } else {
                        category_text(v)
                    }
                })
                .collect(),
        ),
        None => Values::Categorical(cells),
    }
}

/// Splits one CSV record on commas, honouring double quotes.
fn split_record(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field);
    Ok(fields)
}

/// Parses a NumPy `.npy` file: a 2-D (or 1-D: one column) C-order array of `f4`, `f8`, `i4`
/// or `i8`, little- or big-endian. Columns are named `f0`, `f1`, ….
pub fn parse_npy(bytes: &[u8], categorical: &[String]) -> Result<Table, String> {
    let header = npy_header(bytes)?;
    let (body_start, text) = header;
    let descr = dict_value(text, "descr").ok_or("npy header has no descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = dict_value(text, "fortran_order").ok_or("npy header has no fortran_order")?;
    if fortran.trim() != "False" {
        return Err("Fortran-order arrays are not supported (save with C order)".into());
    }
    let shape = dict_value(text, "shape").ok_or("npy header has no shape")?;
    let dims = shape
        .trim_matches(|c| c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            d.parse::<usize>()
                .map_err(|_| format!("bad npy shape {shape}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (rows, cols) = match dims[..] {
        [rows, cols] => (rows, cols),
        [rows] => (rows, 1),
        _ => {
            return Err(format!(
                "npy array of shape {shape}: a 2-D matrix is expected"
            ));
        }
    };
    let (big_endian, kind) = descr.split_at(descr.len().min(1));
    let big_endian = match big_endian {
        "<" | "|" | "=" => false,
        ">" => true,
        _ => return Err(format!("unsupported npy dtype {descr:?}")),
    };
    let width = match kind {
        "f4" | "i4" => 4,
        "f8" | "i8" => 8,
        _ => return Err(format!("unsupported npy dtype {descr:?} (f4, f8, i4, i8)")),
    };
    let body = &bytes[body_start..];
    let expected = rows.checked_mul(cols).and_then(|n| n.checked_mul(width));
    if expected != Some(body.len()) {
        let got = body.len();
        return Err(format!(
            "npy data has {got} bytes, shape {shape} of {descr} needs {expected:?}"
        ));
    }
    let value = |chunk: &[u8]| -> f64 {
        let mut b = [0u8; 8];
        b[..width].copy_from_slice(chunk);
        if big_endian {
            b[..width].reverse();
        }
        match kind {
            "f4" => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            "i4" => f64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            "i8" => i64::from_le_bytes(b) as f64,
            _ => f64::from_le_bytes(b),
        }
    };
    let numbers: Vec<f64> = body.chunks_exact(width).map(value).collect();
    let names: Vec<String> = (0..cols).map(|i| format!("f{i}")).collect();
    check_names(&names, categorical)?;
    let columns = names
        .into_iter()
        .enumerate()
        .map(|(c, name)| {
            let column = (0..rows).map(|r| numbers[r * cols + c]);
            let values = if categorical.contains(&name) {
                Values::Categorical(column.map(category_text).collect())
            } else {
                Values::Numeric(column.collect())
            };
            Column { name, values }
        })
        .collect();
    Ok(Table { columns, rows })
}

/// The start of the data and the header text (a Python dict literal).
fn npy_header(bytes: &[u8]) -> Result<(usize, &str), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file (magic string missing)".into());
    }
    let (len, start): (usize, usize) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => {
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            (usize::try_from(len).map_err(|_| "npy header too long")?, 12)
        }
        v => return Err(format!("unsupported npy format version {v}")),
    };
    let end = start
        .checked_add(len)
        .filter(|end| *end <= bytes.len())
        .ok_or("npy header longer than the file")?;
    let text = std::str::from_utf8(&bytes[start..end]).map_err(|_| "npy header is not text")?;
    Ok((end, text))
}

/// The raw value text of `'key': value` in the header dict (up to the next top-level comma).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let at = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

#[cfg(test)]
#[path = "data_tests.rs"]
mod tests;
