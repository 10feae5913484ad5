//! What a retraining Job reports back, and the checks it must pass before the operator turns it
//! into a candidate model.
//!
//! The training code is the user's, so its report is input like any manifest: the operator
//! parses it here, once, into a [`JobResult`] that status can hold and a `ModelDeployment` can
//! serve, or refuses it with a [`ResultError`] a person can act on (it becomes the reason of the
//! failed retraining in status and an event).
//!
//! # The Job contract
//!
//! The operator runs the Job of `spec.retraining.template` with these environment variables:
//!
//! | variable | value |
//! |---|---|
//! | `MODELPILOT_TRIGGER` | JSON: `{"id": 3, "reason": "Drift", "window": {"start": "2025-01-01T10:00:00Z", "end": "2025-01-01T10:05:00Z"}, "features": ["petal_width"]}`; `reason` is one of `Drift`, `AccuracyDegraded`, `PredictionShift`, `Manual`; `features` are the drifted ones (may be empty) |
//! | `MODELPILOT_MODEL_URI` | the model being served now (`model.uri`) |
//! | `MODELPILOT_MODEL_SHA256` | its SHA-256 (empty when the spec gives none) |
//! | `MODELPILOT_MODEL_VERSION` | its version (empty when the spec gives none) |
//! | `MODELPILOT_PROFILE_URI` | its baseline profile (empty when the spec gives none) |
//! | `MODELPILOT_OUTPUT_URI` | a prefix for this trigger's files, ending in `/`, e.g. `s3://models/retrain/iris/3/` |
//! | `MODELPILOT_DEPLOYMENT` | the `ModelDeployment` as `namespace/name` |
//!
//! The Job writes its result as JSON of at most 4 KiB to its container's termination message
//! (`/dev/termination-log` unless the container sets `terminationMessagePath`):
//!
//! ```json
//! {"modelUri": "s3://models/retrain/iris/3/model.onnx",
//!  "sha256": "3f1c…(64 hex)",
//!  "version": "retrain-3",
//!  "profileUri": "s3://models/retrain/iris/3/profile.json",
//!  "metrics": {"accuracy": 0.93}}
//! ```
//!
//! `modelUri` and `sha256` are required; `modelUri` and `profileUri` follow the rules of
//! `model.uri` (`file:///…`, `pvc://<claim>/<path>`, `https://host/…`, `s3://<bucket>/<key>`),
//! `version` those of `model.version`; `metrics` maps up to 16 names to finite numbers. Any
//! other field is refused, so a misspelt `modelURI` fails loudly instead of being dropped.
//! `examples/retraining/` holds a training script that keeps this contract.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::validate::{ModelSource, SpecError};

/// Environment variable: the trigger as JSON (id, reason, window, features).
pub const ENV_TRIGGER: &str = "MODELPILOT_TRIGGER";
/// Environment variable: URI of the model served now.
pub const ENV_MODEL_URI: &str = "MODELPILOT_MODEL_URI";
/// Environment variable: SHA-256 of the model served now.
pub const ENV_MODEL_SHA256: &str = "MODELPILOT_MODEL_SHA256";
/// Environment variable: version of the model served now.
pub const ENV_MODEL_VERSION: &str = "MODELPILOT_MODEL_VERSION";
/// Environment variable: URI of the current baseline profile.
pub const ENV_PROFILE_URI: &str = "MODELPILOT_PROFILE_URI";
/// Environment variable: prefix (ending in `/`) the Job writes its files under.
pub const ENV_OUTPUT_URI: &str = "MODELPILOT_OUTPUT_URI";
/// Environment variable: the `ModelDeployment` as `namespace/name`.
pub const ENV_DEPLOYMENT: &str = "MODELPILOT_DEPLOYMENT";

/// Largest termination message Kubernetes keeps (it truncates longer ones).
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// Most metrics a result may carry (they are copied into status).
pub const MAX_METRICS: usize = 16;
/// How much of a refused value an error message quotes.
const PREVIEW_CHARS: usize = 80;
/// The fields a result may have, as the Job writes them.
const FIELDS: [&str; 5] = ["modelUri", "sha256", "version", "profileUri", "metrics"];

/// A retraining Job's report, checked: the new model and what the Job measured of it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobResult {
    /// Where the new model is (a valid `model.uri`).
    pub model_uri: String,
    /// SHA-256 of the new model file, 64 lowercase hex characters.
    pub sha256: String,
    /// Version of the new model (a valid `model.version`), if the Job named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Baseline profile of the new model's training data, if the Job wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_uri: Option<String>,
    /// What the Job measured (e.g. `accuracy` on a held-out split): name → finite number.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

/// Why a Job's termination message was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResultError {
    #[error(
        "the Job wrote no termination message: write the result JSON \
         ({{\"modelUri\": …, \"sha256\": …}}) to /dev/termination-log"
    )]
    Empty,
    #[error(
        "the termination message is {bytes} bytes, more than the {MAX_MESSAGE_BYTES} Kubernetes \
         keeps: report URIs and a few metrics only"
    )]
    TooLong { bytes: usize },
    #[error("the termination message is not JSON ({reason}); it starts with {start:?}")]
    NotJson { start: String, reason: String },
    #[error(
        "the termination message must be a JSON object like \
         {{\"modelUri\": …, \"sha256\": …}}, found {found}"
    )]
    NotAnObject { found: &'static str },
    #[error(
        "unknown field {field:?} in the termination message (known: modelUri, sha256, version, \
         profileUri, metrics)"
    )]
    UnknownField { field: String },
    #[error("the termination message has no {field}, which is required")]
    Missing { field: &'static str },
    #[error("{field} must be {expected}, found {found}")]
    WrongType {
        field: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error(
        "sha256 {value:?} must be exactly 64 hexadecimal characters (the SHA-256 of the model file)"
    )]
    Sha256 { value: String },
    #[error("{field} {uri:?}: {reason}")]
    Uri {
        field: &'static str,
        uri: String,
        reason: String,
    },
    #[error(
        "version {value:?} must be 1-63 letters, digits, '-', '_' or '.', starting and ending \
         with a letter or digit (the rule of model.version)"
    )]
    Version { value: String },
    #[error("the termination message has {count} metrics, at most {MAX_METRICS} are kept")]
    TooManyMetrics { count: usize },
    #[error("metric name {name:?} must be 1-63 letters, digits, '_', '-' or '.'")]
    MetricName { name: String },
    #[error("metrics.{name} must be a finite number, found {found}")]
    Metric { name: String, found: String },
}

/// Parses and checks a retraining Job's termination message (see the module docs).
///
/// Surrounding whitespace is ignored; `sha256` is returned in lowercase.
///
/// ```
/// use modelpilot::retrain::result::{parse_result, ResultError};
///
/// let digest = "ab".repeat(32);
/// let message = format!(
///     r#"{{"modelUri": "s3://models/retrain/iris/3/model.onnx", "sha256": "{digest}",
///         "version": "retrain-3", "metrics": {{"accuracy": 0.93}}}}"#
/// );
/// let result = parse_result(&message).unwrap();
/// assert_eq!(result.model_uri, "s3://models/retrain/iris/3/model.onnx");
/// assert_eq!(result.version.as_deref(), Some("retrain-3"));
/// assert_eq!(result.metrics["accuracy"], 0.93);
/// assert_eq!(result.profile_uri, None);
///
/// // A local path is not a URI the server can fetch.
/// let message = format!(r#"{{"modelUri": "/tmp/model.onnx", "sha256": "{digest}"}}"#);
/// assert!(matches!(parse_result(&message), Err(ResultError::Uri { .. })));
/// ```
pub fn parse_result(message: &str) -> Result<JobResult, ResultError> {
    if message.len() > MAX_MESSAGE_BYTES {
        return Err(ResultError::TooLong {
            bytes: message.len(),
        });
    }
    let text = message.trim();
    if text.is_empty() {
        return Err(ResultError::Empty);
    }
    let value: Value = serde_json::from_str(text).map_err(|e| not_json(text, &e))?;
    let Value::Object(mut fields) = value else {
        return Err(ResultError::NotAnObject {
            found: kind(&value),
        });
    };
    if let Some(field) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ResultError::UnknownField {
            field: preview(field),
        });
    }
    let model_uri =
        string(&mut fields, "modelUri")?.ok_or(ResultError::Missing { field: "modelUri" })?;
    check_uri("modelUri", &model_uri)?;
    let sha256 = string(&mut fields, "sha256")?.ok_or(ResultError::Missing { field: "sha256" })?;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ResultError::Sha256 {
            value: preview(&sha256),
        });
    }
    let version = string(&mut fields, "version")?;
    if let Some(v) = &version
        && !is_version(v)
    {
        return Err(ResultError::Version { value: preview(v) });
    }
    let profile_uri = string(&mut fields, "profileUri")?;
    if let Some(uri) = &profile_uri {
        check_uri("profileUri", uri)?;
    }
    let metrics = match fields.remove("metrics") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => metrics(m)?,
        Some(other) => {
            return Err(ResultError::WrongType {
                field: "metrics".into(),
                expected: "an object of name → number",
                found: kind(&other),
            });
        }
    };
    Ok(JobResult {
        model_uri,
        sha256: sha256.to_ascii_lowercase(),
        version,
        profile_uri,
        metrics,
    })
}

/// Takes an optional string field; `null` counts as absent.
fn string(
    fields: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, ResultError> {
    match fields.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ResultError::WrongType {
            field: field.into(),
            expected: "a string",
            found: kind(&other),
        }),
    }
}

fn metrics(map: Map<String, Value>) -> Result<BTreeMap<String, f64>, ResultError> {
    if map.len() > MAX_METRICS {
        return Err(ResultError::TooManyMetrics { count: map.len() });
    }
    let mut out = BTreeMap::new();
    for (name, value) in map {
        if !is_metric_name(&name) {
            return Err(ResultError::MetricName {
                name: preview(&name),
            });
        }
        match value.as_f64() {
            Some(v) if v.is_finite() => {
                out.insert(name, v);
            }
            _ => {
                return Err(ResultError::Metric {
                    name,
                    found: preview(&value.to_string()),
                });
            }
        }
    }
    Ok(out)
}

/// The rules of `model.uri` (the CRD's CEL rules, which the API server would apply when the
/// result becomes a spec): `validate::ModelSource` plus what only the CEL rules say.
fn check_uri(field: &'static str, uri: &str) -> Result<(), ResultError> {
    let refuse = |reason: &str| ResultError::Uri {
        field,
        uri: preview(uri),
        reason: reason.to_owned(),
    };
    match ModelSource::parse(uri) {
        Ok(_) => {}
        Err(SpecError::ModelUri { reason, .. }) => return Err(refuse(reason)),
        Err(other) => return Err(refuse(&other.to_string())),
    }
    // The CEL patterns' `.` does not match a line break; no control character belongs in a URI.
    if uri.chars().any(char::is_control) {
        return Err(refuse("contains a control character (a line break?)"));
    }
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if !is_bucket(bucket) || key.starts_with('/') {
            return Err(refuse(
                "must be s3://<bucket>/<key>, the bucket 3-63 lowercase letters, digits, '-' or \
                 '.', starting and ending with a letter or digit",
            ));
        }
    }
    Ok(())
}

/// `[a-z0-9][-a-z0-9.]{1,61}[a-z0-9]`, as the CRD's rule for `s3://` URIs.
fn is_bucket(s: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = s.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|&b| alnum(b) || b == b'-' || b == b'.')
        && bytes.first().is_some_and(|&b| alnum(b))
        && bytes.last().is_some_and(|&b| alnum(b))
}

/// The rule of `model.version`: `^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`, at most 63.
fn is_version(s: &str) -> bool {
    let bytes = s.as_bytes();
    (1..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_metric_name(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn not_json(text: &str, error: &serde_json::Error) -> ResultError {
    let mut reason = error.to_string();
    if text.contains("NaN") || text.contains("Infinity") {
        reason.push_str("; NaN and Infinity are not JSON, report finite metrics only");
    }
    ResultError::NotJson {
        start: preview(text),
        reason,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The first [`PREVIEW_CHARS`] characters of `s`, with "…" when cut.
fn preview(s: &str) -> String {
    match s.char_indices().nth(PREVIEW_CHARS) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
#[path = "result_tests.rs"]
mod tests;
