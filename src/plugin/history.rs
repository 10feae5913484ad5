//! `kubectl modelpilot history`: `status.history` as a table, newest first, and the stable-index
//! numbering that lets `rollback --to-revision 1` mean "the stable revision before this one".
//!
//! Indexes count stable revisions only: 0 is the current stable revision, 1 the one promoted
//! before it, and so on. Rolled-back and superseded candidates get no index (roll back to one by
//! its revision name).
//!
//! Below the rollouts, the retraining history (`status.retraining`) gets its own table: each
//! trigger, its Job, the candidate it produced and what became of it, so "why is there a new
//! model?" and "why did retraining not help?" are answered in the same place.

use k8s_openapi::jiff::Timestamp;

use super::render::{feature_list, table, when};
use crate::api::{
    HistoryEntry, ModelDeployment, ModelDeploymentStatus, Outcome, RetrainPhase, RetrainRecord,
    RetrainingStatus, Trigger,
};

/// Longest argument of `--to-revision` read as an index (revision names have 10 characters).
const MAX_INDEX_DIGITS: usize = 4;

/// One history entry with its place in the stable numbering.
#[derive(Clone, Debug, PartialEq)]
pub struct Row<'a> {
    /// The stable index, for promoted entries.
    pub index: Option<usize>,
    /// This entry is the promotion of the current stable revision.
    pub current: bool,
    /// The entry.
    pub entry: &'a HistoryEntry,
}

/// The history, newest first, numbered.
///
/// ```
/// use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
/// use modelpilot::api::{HistoryEntry, Outcome, RolloutRevision};
/// use modelpilot::plugin::history::rows;
///
/// let entry = |name: &str, outcome| HistoryEntry {
///     revision: RolloutRevision { name: name.into(), ..Default::default() },
///     outcome,
///     at: Time(Timestamp::UNIX_EPOCH),
///     reason: String::new(),
///     message: String::new(),
/// };
/// // Oldest first, as status.history stores it: a promoted, a rolled back, a promoted.
/// let history = [entry("aaa", Outcome::Promoted), entry("bbb", Outcome::RolledBack),
///                entry("ccc", Outcome::Promoted)];
/// let numbered: Vec<_> = rows(&history, Some("ccc")).iter().map(|r| (r.index, r.current)).collect();
/// assert_eq!(numbered, [(Some(0), true), (None, false), (Some(1), false)]);
/// ```
pub fn rows<'a>(history: &'a [HistoryEntry], stable: Option<&str>) -> Vec<Row<'a>> {
    let mut next = 1;
    let mut current_seen = false;
    history
        .iter()
        .rev()
        .map(|entry| {
            if entry.outcome != Outcome::Promoted {
                return Row {
                    index: None,
                    current: false,
                    entry,
                };
            }
            if !current_seen && stable == Some(entry.revision.name.as_str()) {
                current_seen = true;
                return Row {
                    index: Some(0),
                    current: true,
                    entry,
                };
            }
            next += 1;
            Row {
                index: Some(next - 1),
                current: false,
                entry,
            }
        })
        .collect()
}

/// Why `--to-revision` names no revision.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// Index 0 without a stable revision.
    #[error("there is no stable revision yet")]
    NoStable,
    /// An index past the recorded stable revisions.
    #[error(
        "no stable revision at index {index}: the history holds {available} earlier stable revision(s) (see `kubectl modelpilot history`)"
    )]
    NoSuchIndex {
        /// The index asked for.
        index: usize,
        /// Earlier stable revisions in the history.
        available: usize,
    },
}

/// The revision `--to-revision` designates: a revision name as given, or a stable index from
/// [`rows`] (`1` = the stable revision before the current one).
///
/// ```
/// use modelpilot::plugin::history::resolve_revision;
///
/// // Names pass through untouched: the operator decides whether it can roll back to them.
/// assert_eq!(resolve_revision("5d41402abc", None).unwrap(), "5d41402abc");
/// assert!(resolve_revision("1", None).is_err());
/// ```
pub fn resolve_revision(
    arg: &str,
    status: Option<&ModelDeploymentStatus>,
) -> Result<String, ResolveError> {
    let is_index = arg.len() <= MAX_INDEX_DIGITS && arg.bytes().all(|b| b.is_ascii_digit());
    let Some(index) = is_index.then(|| arg.parse::<usize>().ok()).flatten() else {
        return Ok(arg.to_string());
    };
    let stable = status
        .and_then(|s| s.stable.as_ref())
        .map(|r| r.name.as_str());
    if index == 0 {
        return stable.map(str::to_string).ok_or(ResolveError::NoStable);
    }
    let history = status.map(|s| s.history.as_slice()).unwrap_or_default();
    let numbered = rows(history, stable);
    let available = numbered
        .iter()
        .filter(|r| r.index.is_some_and(|i| i > 0))
        .count();
    numbered
        .iter()
        .find(|r| r.index == Some(index))
        .map(|r| r.entry.revision.name.clone())
        .ok_or(ResolveError::NoSuchIndex { index, available })
}

/// The history table of `mdep`, newest first, the current stable revision marked with `*`.
pub fn render_history(mdep: &ModelDeployment, now: Timestamp) -> String {
    let name = mdep.metadata.name.as_deref().unwrap_or_default();
    let namespace = mdep.metadata.namespace.as_deref().unwrap_or("default");
    let default = ModelDeploymentStatus::default();
    let status = mdep.status.as_ref().unwrap_or(&default);
    let stable = status.stable.as_ref();
    let numbered = rows(&status.history, stable.map(|r| r.name.as_str()));

    let mut out = String::new();
    if numbered.is_empty() {
        out.push_str(&format!("No rollout history for {namespace}/{name}.\n"));
    } else {
        let header = [
            "INDEX", "REVISION", "VERSION", "OUTCOME", "WHEN", "REASON", "MESSAGE",
        ];
        let body = numbered.iter().map(|row| {
            let entry = row.entry;
            vec![
                match (row.index, row.current) {
                    (Some(i), true) => format!("{i}*"),
                    (Some(i), false) => i.to_string(),
                    (None, _) => "-".into(),
                },
                entry.revision.name.clone(),
                entry.revision.version.clone().unwrap_or_else(|| "-".into()),
                outcome_str(entry.outcome).into(),
                when(&entry.at, now),
                entry.reason.clone(),
                entry.message.clone(),
            ]
        });
        out.push_str(&table(&header, body));
    }
    match stable {
        Some(stable) if !numbered.iter().any(|r| r.current) => out.push_str(&format!(
            "* current stable: {} (version {}), deployed before the recorded history\n",
            stable.name,
            stable.version.as_deref().unwrap_or("-")
        )),
        Some(_) => out.push_str(
            "* current stable. Roll back with `rollback NAME --to-revision INDEX|REVISION`.\n",
        ),
        None => out.push_str("No stable revision yet.\n"),
    }
    out.push_str(&render_retraining(name, status.retraining.as_ref(), now));
    out
}

/// Features a trigger names in the history table before `+N more`.
const TRIGGER_FEATURES: usize = 3;

/// The retraining table of the ModelDeployment `name`, newest first, after a blank line and a
/// `Retraining:` heading; empty when nothing was ever triggered.
pub fn render_retraining(
    name: &str,
    retraining: Option<&RetrainingStatus>,
    now: Timestamp,
) -> String {
    let records = retraining.map(|r| r.history.as_slice()).unwrap_or_default();
    if records.is_empty() {
        return String::new();
    }
    let header = [
        "ID",
        "TRIGGER",
        "WHEN",
        "JOB",
        "PHASE",
        "CANDIDATE",
        "MESSAGE",
    ];
    let body = records.iter().rev().map(|r| {
        vec![
            r.id.to_string(),
            trigger_text(&r.trigger, TRIGGER_FEATURES),
            when(&r.trigger.at, now),
            r.job.clone().unwrap_or_else(|| "-".into()),
            retrain_phase_str(r.phase).into(),
            candidate_text(r).unwrap_or_else(|| "-".into()),
            retrain_message(name, r),
        ]
    });
    format!("\nRetraining:\n{}", table(&header, body))
}

/// `Drift (petal_length, petal_width)`: the reason, and the features it names, if any.
pub(super) fn trigger_text(trigger: &Trigger, max_features: usize) -> String {
    let reason = trigger.reason.as_str();
    if trigger.features.is_empty() {
        reason.into()
    } else {
        format!(
            "{reason} ({})",
            feature_list(&trigger.features, max_features)
        )
    }
}

/// The model a retraining's Job produced: `v3 s3://models/iris/3/model.onnx`, or the URI alone
/// when the Job named no version; `None` before the Job reported.
pub(super) fn candidate_text(record: &RetrainRecord) -> Option<String> {
    let result = record.result.as_ref()?;
    Some(match &result.version {
        Some(version) => format!("{version} {}", result.model_uri),
        None => result.model_uri.clone(),
    })
}

/// What the record says about itself; before it has a message, the approval it waits for or
/// the finding that started it.
fn retrain_message(name: &str, record: &RetrainRecord) -> String {
    if !record.message.is_empty() {
        return record.message.clone();
    }
    if record.phase == RetrainPhase::AwaitingApproval {
        return approve_hint(name);
    }
    record.trigger.detail.clone()
}

/// `waiting for `kubectl modelpilot approve NAME``.
pub(super) fn approve_hint(name: &str) -> String {
    format!("waiting for `kubectl modelpilot approve {name}`")
}

/// The phase as status spells it.
pub(super) fn retrain_phase_str(phase: RetrainPhase) -> &'static str {
    match phase {
        RetrainPhase::AwaitingApproval => "AwaitingApproval",
        RetrainPhase::Running => "Running",
        RetrainPhase::Candidate => "Candidate",
        RetrainPhase::Promoted => "Promoted",
        RetrainPhase::RolledBack => "RolledBack",
        RetrainPhase::Failed => "Failed",
        RetrainPhase::TimedOut => "TimedOut",
        RetrainPhase::Superseded => "Superseded",
    }
}

/// The outcome as the table prints it.
fn outcome_str(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Promoted => "Promoted",
        Outcome::RolledBack => "RolledBack",
        Outcome::Superseded => "Superseded",
    }
}

#[cfg(test)]
#[path = "history_tests.rs"]
mod tests;
