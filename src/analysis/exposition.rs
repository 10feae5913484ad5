//! A reader of the Prometheus text exposition format (0.0.4) and of the sample lines of
//! OpenMetrics, so the analysis can read an inference pod's `/metrics` page directly.
//!
//! The page comes over the network from a pod, so it is untrusted input: anything malformed is
//! a [`ParseError`] naming the line, never a panic. Understood: `# HELP` / `# TYPE` (checked,
//! otherwise skipped), other comments and `# EOF`, label values with the `\\`, `\"` and `\n`
//! escapes, `+Inf`/`-Inf`/`NaN` values, an optional timestamp, and an OpenMetrics exemplar
//! after the value (skipped).
//!
//! ```
//! use modelpilot::analysis::exposition::parse;
//!
//! let page = "# HELP x_total Things.\n# TYPE x_total counter\n\
//!             x_total{code=\"500\",path=\"a\\\"b\"} 3 1700000000000\nup NaN\n";
//! let samples = parse(page).unwrap();
//! assert_eq!(samples[0].name, "x_total");
//! assert_eq!(samples[0].label("path"), Some("a\"b"));
//! assert_eq!(samples[0].value, 3.0);
//! assert_eq!(samples[0].timestamp, Some(1.7e12));
//! assert!(samples[1].value.is_nan());
//! ```

use std::collections::BTreeMap;

/// One sample line: metric name, labels, value and the optional timestamp as written.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    /// Milliseconds (Prometheus text) or seconds (OpenMetrics), as on the page.
    pub timestamp: Option<f64>,
}

impl Sample {
    /// The value of label `name`, if the sample has it.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Why a page could not be read: the 1-based line and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("metrics line {line}: {reason}")]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

/// The metric types a `# TYPE` line may name (Prometheus text and OpenMetrics).
const TYPES: [&str; 9] = [
    "counter",
    "gauge",
    "histogram",
    "summary",
    "untyped",
    "unknown",
    "info",
    "stateset",
    "gaugehistogram",
];

/// Parses a whole page into its samples, in page order.
pub fn parse(text: &str) -> Result<Vec<Sample>, ParseError> {
    let mut samples = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let fail = |reason: String| ParseError {
            line: index + 1,
            reason,
        };
        let trimmed = line.trim_start_matches([' ', '\t']);
        if trimmed.is_empty() {
            continue;
        }
        if let Some(comment) = trimmed.strip_prefix('#') {
            check_comment(comment).map_err(fail)?;
            continue;
        }
        samples.push(parse_sample(trimmed).map_err(fail)?);
    }
    Ok(samples)
}

/// `# HELP name text` and `# TYPE name type` must be well formed; other comments are free.
fn check_comment(comment: &str) -> Result<(), String> {
    let mut words = comment.split([' ', '\t']).filter(|w| !w.is_empty());
    match words.next() {
        Some(keyword @ ("HELP" | "TYPE")) => {
            let name = words
                .next()
                .ok_or_else(|| format!("# {keyword} without a metric name"))?;
            if !is_metric_name(name) {
                return Err(format!("# {keyword}: invalid metric name {name:?}"));
            }
            if keyword == "TYPE" {
                let kind = words.next().unwrap_or_default();
                if !TYPES.contains(&kind) || words.next().is_some() {
                    return Err(format!("# TYPE {name}: unknown type {kind:?}"));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// A cursor over one sample line.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn skip_blanks(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    /// The longest prefix made of characters accepted by `ok` (`first` for the first one).
    fn take_name(&mut self, first: fn(char) -> bool, ok: fn(char) -> bool) -> Option<&'a str> {
        let mut end = 0;
        for (i, c) in self.rest.char_indices() {
            if (i == 0 && first(c)) || (i > 0 && ok(c)) {
                end = i + c.len_utf8();
            } else {
                break;
            }
        }
        let (name, rest) = self.rest.split_at(end);
        self.rest = rest;
        (!name.is_empty()).then_some(name)
    }

    /// The next blank-separated token.
    fn token(&mut self) -> Option<&'a str> {
        self.skip_blanks();
        let end = self.rest.find([' ', '\t']).unwrap_or(self.rest.len());
        let (token, rest) = self.rest.split_at(end);
        self.rest = rest;
        (!token.is_empty()).then_some(token)
    }

    /// A double-quoted label value (the opening quote already eaten), unescaped.
    fn quoted(&mut self) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = self.rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, '"')) => out.push('"'),
                    // Unknown escapes stay as written, as Prometheus keeps them.
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err("unterminated label value".into())
    }
}

fn parse_sample(line: &str) -> Result<Sample, String> {
    let mut cursor = Cursor { rest: line };
    let first = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let rest = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let name = cursor
        .take_name(first, rest)
        .ok_or_else(|| format!("expected a metric name at {:?}", clip(line)))?;
    cursor.skip_blanks();
    let labels = if cursor.eat('{') {
        parse_labels(&mut cursor)?
    } else {
        BTreeMap::new()
    };
    let value = cursor
        .token()
        .ok_or_else(|| format!("{name}: missing value"))?;
    let value = parse_value(value).ok_or_else(|| format!("{name}: invalid value {value:?}"))?;
    let timestamp = match cursor.token() {
        None => None,
        Some("#") => {
            cursor.rest = "";
            None
        }
        Some(t) => Some(
            t.parse::<f64>()
                .ok()
                .filter(|t| t.is_finite())
                .ok_or_else(|| format!("{name}: invalid timestamp {t:?}"))?,
        ),
    };
    match cursor.token() {
        None => {}
        // An OpenMetrics exemplar: `# {labels} value [timestamp]`.
        Some("#") => {}
        Some(extra) => return Err(format!("{name}: unexpected {extra:?} after the value")),
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
        timestamp,
    })
}

fn parse_labels(cursor: &mut Cursor<'_>) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let first = |c: char| c.is_ascii_alphabetic() || c == '_';
    let rest = |c: char| c.is_ascii_alphanumeric() || c == '_';
    loop {
        cursor.skip_blanks();
        if cursor.eat('}') {
            return Ok(labels);
        }
        let key = cursor
            .take_name(first, rest)
            .ok_or_else(|| format!("expected a label name at {:?}", clip(cursor.rest)))?;
        cursor.skip_blanks();
        if !cursor.eat('=') {
            return Err(format!("label {key}: expected '='"));
        }
        cursor.skip_blanks();
        if !cursor.eat('"') {
            return Err(format!("label {key}: expected a quoted value"));
        }
        let value = cursor.quoted()?;
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} given twice"));
        }
        cursor.skip_blanks();
        if cursor.eat('}') {
            return Ok(labels);
        }
        if !cursor.eat(',') {
            return Err(format!("after label {key}: expected ',' or '}}'"));
        }
    }
}

/// A sample value: a float, `+Inf`, `-Inf`, `Inf` or `NaN` (any case, as Prometheus reads them).
pub(crate) fn parse_value(text: &str) -> Option<f64> {
    match text.to_ascii_lowercase().as_str() {
        "+inf" | "inf" | "+infinity" | "infinity" => Some(f64::INFINITY),
        "-inf" | "-infinity" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        lower if lower.contains("inf") || lower.contains("nan") => None,
        _ => text.parse().ok(),
    }
}

/// The start of `text`, for error messages.
fn clip(text: &str) -> &str {
    let end = text.char_indices().nth(40).map_or(text.len(), |(i, _)| i);
    &text[..end]
}

#[cfg(test)]
#[path = "exposition_tests.rs"]
mod tests;
