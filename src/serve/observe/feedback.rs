//! Label feedback: the server remembers what it predicted for each request id (bounded, oldest
//! evicted first), callers later post the true labels, and the pairs feed rolling scores.
//!
//! Body of `POST /v2/models/{name}/feedback`: one object or an array of objects, each with the
//! request `id` the inference response carried and one true label per row of that request.
//!
//! ```json
//! {"id": "req-42", "labels": [1, 0, 2]}
//! [{"id": "req-42", "labels": ["cat"]}, {"id": "req-43", "labels": [true]}]
//! ```
//!
//! Labels are compared as text: integers in decimal, booleans as `true`/`false`, strings as is.
//! A batch is all or nothing: every item is checked before any is applied.

use std::collections::{HashMap, HashSet, VecDeque};

use serde::Deserialize;
use serde_json::Value;

use super::{
    confusion::{Confusion, DEFAULT_MAX_LABELS},
    scores::{Average, RollingScores, Scores},
};

/// Longest request id remembered, in bytes (ids are client-chosen; memory stays bounded).
pub const MAX_ID_LEN: usize = 256;

/// Longest class label kept, in bytes: feedback labels past it are refused, predicted ones
/// are cut to it (see [`super::values::label`]), so the window's memory stays bounded.
pub const MAX_LABEL_LEN: usize = 256;

/// Why a feedback body was refused. [`FeedbackError::status_code`] maps it to HTTP.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FeedbackError {
    #[error("malformed feedback: {0}")]
    Malformed(String),
    #[error(
        "feedback[{index}]: unknown request id {id:?} (never seen, expired or already labelled)"
    )]
    UnknownId { index: usize, id: String },
    #[error("feedback[{index}]: request {id:?} had {expected} rows but {got} labels were sent")]
    RowMismatch {
        index: usize,
        id: String,
        expected: usize,
        got: usize,
    },
}

impl FeedbackError {
    /// 404 for an unknown id, 400 for everything else.
    pub fn status_code(&self) -> u16 {
        match self {
            FeedbackError::UnknownId { .. } => 404,
            _ => 400,
        }
    }
}

/// One item of a feedback body: the true labels of a request's rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackItem {
    pub id: String,
    pub labels: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawItem {
    id: String,
    labels: Vec<Value>,
}

/// Parses a feedback body (one object or a non-empty array of objects).
pub fn parse_feedback(body: &[u8]) -> Result<Vec<FeedbackItem>, FeedbackError> {
    let malformed = |e: serde_json::Error| FeedbackError::Malformed(e.to_string());
    let value: Value = serde_json::from_slice(body).map_err(malformed)?;
    let raw: Vec<RawItem> = match value {
        Value::Array(items) => items
            .into_iter()
            .map(serde_json::from_value)
            .collect::<Result<_, _>>()
            .map_err(malformed)?,
        other => vec![serde_json::from_value(other).map_err(malformed)?],
    };
    if raw.is_empty() {
        return Err(FeedbackError::Malformed("empty feedback array".into()));
    }
    raw.into_iter().enumerate().map(convert_item).collect()
}

fn convert_item((index, raw): (usize, RawItem)) -> Result<FeedbackItem, FeedbackError> {
    if raw.id.is_empty() {
        return Err(FeedbackError::Malformed(format!(
            "feedback[{index}]: empty id"
        )));
    }
    let labels = raw
        .labels
        .iter()
        .map(label_text)
        .collect::<Option<Vec<_>>>();
    let labels = labels.ok_or_else(|| {
        let reason = "labels must be strings, integers or booleans";
        FeedbackError::Malformed(format!("feedback[{index}]: {reason}"))
    })?;
    if labels.iter().any(|l| l.len() > MAX_LABEL_LEN) {
        let reason = format!("labels must be at most {MAX_LABEL_LEN} bytes");
        return Err(FeedbackError::Malformed(format!(
            "feedback[{index}]: {reason}"
        )));
    }
    Ok(FeedbackItem { id: raw.id, labels })
}

fn label_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => n.as_i64().map(|i| i.to_string()).or_else(|| {
            // Accept 2.0 for 2, refuse 2.5: a class label is never fractional.
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f.abs() < 9.0e15).then(|| (f as i64).to_string())
        }),
        _ => None,
    }
}

/// Sizes of the tracker.
#[derive(Clone, Debug)]
pub struct FeedbackConfig {
    /// Most request ids remembered; the oldest is forgotten first.
    pub max_requests: usize,
    /// Most predicted labels (rows) remembered over all requests.
    pub max_rows: usize,
    /// Labelled rows in the rolling window the scores are computed over.
    pub window: usize,
    pub average: Average,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            max_requests: 10_000,
            max_rows: 100_000,
            window: 1_000,
            average: Average::Macro,
        }
    }
}

/// Outcome of an accepted feedback body.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FeedbackSummary {
    /// Labelled rows added by this body.
    pub accepted_rows: usize,
    /// Scores after applying it.
    pub scores: Option<Scores>,
}

/// Counters describing the tracker, exported as metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedbackCounters {
    pub received_rows: u64,
    pub unmatched: u64,
    pub evicted: u64,
    pub pending_requests: usize,
    pub pending_rows: usize,
}

struct Pending {
    seq: u64,
    labels: Vec<String>,
}

/// Predictions awaiting their true labels, and the rolling scores of those that got them.
pub struct FeedbackTracker {
    config: FeedbackConfig,
    pending: HashMap<String, Pending>,
    order: VecDeque<(u64, String)>,
    seq: u64,
    rows: usize,
    scores: RollingScores,
    confusion: Confusion,
    counters: FeedbackCounters,
}

impl std::fmt::Debug for FeedbackTracker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedbackTracker")
            .field("config", &self.config)
            .field("counters", &self.counters())
            .finish_non_exhaustive()
    }
}

impl FeedbackTracker {
    pub fn new(config: FeedbackConfig) -> Self {
        let scores = RollingScores::new(config.window, config.average.clone());
        Self {
            config,
            pending: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            rows: 0,
            scores,
            confusion: Confusion::new(DEFAULT_MAX_LABELS),
            counters: FeedbackCounters::default(),
        }
    }

    /// Caps the distinct labels of the confusion counters (see [`Confusion`]).
    pub fn with_max_labels(mut self, max_labels: usize) -> Self {
        self.confusion = Confusion::new(max_labels);
        self
    }

    /// Remembers the predicted labels of request `id` (replacing an earlier one with that id).
    /// Requests with more rows than `max_rows`, or ids longer than [`MAX_ID_LEN`] bytes, are
    /// not remembered at all.
    pub fn record(&mut self, id: &str, predicted: Vec<String>) {
        let too_big = predicted.len() > self.config.max_rows || id.len() > MAX_ID_LEN;
        if too_big || self.config.max_requests == 0 {
            return;
        }
        self.seq += 1;
        self.rows += predicted.len();
        let entry = Pending {
            seq: self.seq,
            labels: predicted,
        };
        if let Some(old) = self.pending.insert(id.to_string(), entry) {
            self.rows -= old.labels.len();
        }
        self.order.push_back((self.seq, id.to_string()));
        while self.order.len() > self.config.max_requests || self.rows > self.config.max_rows {
            let Some((seq, id)) = self.order.pop_front() else {
                break;
            };
            if self.pending.get(&id).is_some_and(|p| p.seq == seq)
                && let Some(old) = self.pending.remove(&id)
            {
                self.rows -= old.labels.len();
                self.counters.evicted += 1;
            }
        }
    }

    /// Checks every item, then applies all of them (or none, on the first error).
    pub fn apply(&mut self, items: &[FeedbackItem]) -> Result<FeedbackSummary, FeedbackError> {
        self.apply_labelled(items).map(|(summary, _)| summary)
    }

    /// [`Self::apply`], also returning the labelled rows as `(true label, predicted label)`
    /// (for the sliding window of label pairs).
    pub fn apply_labelled(
        &mut self,
        items: &[FeedbackItem],
    ) -> Result<(FeedbackSummary, Vec<(String, String)>), FeedbackError> {
        let mut seen = HashSet::new();
        for (index, item) in items.iter().enumerate() {
            if !seen.insert(item.id.as_str()) {
                let reason = format!("feedback[{index}]: id {:?} appears twice", item.id);
                return Err(FeedbackError::Malformed(reason));
            }
            let Some(pending) = self.pending.get(&item.id) else {
                self.counters.unmatched += 1;
                let id = item.id.clone();
                return Err(FeedbackError::UnknownId { index, id });
            };
            if pending.labels.len() != item.labels.len() {
                return Err(FeedbackError::RowMismatch {
                    index,
                    id: item.id.clone(),
                    expected: pending.labels.len(),
                    got: item.labels.len(),
                });
            }
        }
        let mut accepted_rows = 0;
        let mut pairs = Vec::new();
        for item in items {
            let Some(pending) = self.pending.remove(&item.id) else {
                continue;
            };
            self.rows -= pending.labels.len();
            accepted_rows += pending.labels.len();
            for (predicted, actual) in pending.labels.into_iter().zip(item.labels.iter()) {
                self.confusion.record(actual, &predicted);
                pairs.push((actual.clone(), predicted.clone()));
                self.scores.push(predicted, actual.clone());
            }
        }
        self.counters.received_rows += accepted_rows as u64;
        let summary = FeedbackSummary {
            accepted_rows,
            scores: self.scores.scores(),
        };
        Ok((summary, pairs))
    }

    /// Current rolling scores (`None` before any feedback).
    pub fn scores(&self) -> Option<Scores> {
        self.scores.scores()
    }

    /// Window capacity in rows.
    pub fn window(&self) -> usize {
        self.scores.capacity()
    }

    /// Labelled rows so far by `(true label, predicted label)`, sorted.
    pub fn confusion(&self) -> Vec<((String, String), u64)> {
        self.confusion.counts()
    }

    /// Counters for the metrics page.
    pub fn counters(&self) -> FeedbackCounters {
        FeedbackCounters {
            pending_requests: self.pending.len(),
            pending_rows: self.rows,
            ..self.counters
        }
    }
}

#[cfg(test)]
#[path = "feedback_tests.rs"]
mod tests;
