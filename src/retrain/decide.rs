//! The retraining state machine, as one pure function of the status and what was observed.
//!
//! A trigger is written to status (with its number) before its Job exists, and the Job's name is
//! derived from that number, so whoever reconciles next — this operator after a crash, or another
//! one after a leader change — creates the same Job, and `AlreadyExists` says it is done. At most
//! one retraining is in flight; a new one needs the cooldown since the last ended and room in the
//! 24-hour budget, and, with `approval`, a `kubectl modelpilot approve`.
//!
//! ```text
//! trigger ─▶ AwaitingApproval ─approve─▶ Running ─Job ok─▶ Candidate ─▶ Promoted | RolledBack
//!                                           │                  └──────▶ Superseded
//!                                           └─Job failed / refused ─▶ Failed | TimedOut
//! ```

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};

use super::result::{JobResult, parse_result};
use crate::{
    api::{
        HistoryEntry, MonitoringStatus, Outcome, RetrainPhase, RetrainRecord, RetrainingSpec,
        RetrainingStatus, RolloutRevision, Trigger, TriggerReason,
    },
    rollout::plan::{Transition, note},
};

/// Entries kept in `status.retraining.history`.
pub const HISTORY_LIMIT: usize = 20;

/// What the cluster says about the in-flight retraining's Job.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    /// No Job of that name exists.
    Missing,
    /// Created, not finished.
    Active,
    /// Completed; the termination message of its pod (empty when none was written).
    Succeeded { message: String },
    /// Failed: the Job's reason (`DeadlineExceeded`, `BackoffLimitExceeded`, …) and what its
    /// pod said.
    Failed { reason: String, message: String },
}

/// Everything the decision reads.
#[derive(Clone, Debug)]
pub struct Inputs<'a> {
    pub spec: &'a RetrainingSpec,
    /// The ModelDeployment's name (Jobs are `<name>-retrain-<id>`).
    pub owner: &'a str,
    /// The stable revision (what a retraining starts from).
    pub stable: &'a RolloutRevision,
    pub monitoring: Option<&'a MonitoringStatus>,
    /// Seconds one monitoring window covers (`monitoring.intervalSeconds`).
    pub window_seconds: i64,
    /// A candidate is being rolled out (checking, progressing, paused or promoting).
    pub rollout_active: bool,
    /// The rollout history (where a candidate's outcome is read).
    pub history: &'a [HistoryEntry],
    /// The spec's model URI and revision now.
    pub spec_uri: &'a str,
    pub spec_revision: &'a str,
    /// The in-flight record's Job, when one is in flight and has a Job name.
    pub job: Option<JobState>,
    /// An `approve` request is pending.
    pub approve: bool,
    /// A `retrain` request is pending.
    pub manual: bool,
    pub now: &'a Time,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Decision {
    pub status: RetrainingStatus,
    /// Create (or find) the Job of this record.
    pub create_job: Option<RetrainRecord>,
    /// Point `spec.model` at this result once the status is written.
    pub set_model: Option<JobResult>,
    /// The answer to a pending `approve` or `retrain`: `Ok(message)` or `Err(reason)`.
    pub approval: Option<Result<String, String>>,
    pub transitions: Vec<Transition>,
}

/// The Job's name for trigger `id`.
///
/// ```
/// assert_eq!(modelpilot::retrain::decide::job_name("iris", 3), "iris-retrain-3");
/// ```
pub fn job_name(owner: &str, id: i64) -> String {
    format!("{owner}-retrain-{id}")
}

/// Where trigger `id`'s Job writes: `<outputUri>/<owner>/<id>/`.
///
/// ```
/// use modelpilot::retrain::decide::output_uri;
/// assert_eq!(output_uri("s3://models/retrain/", "iris", 3), "s3://models/retrain/iris/3/");
/// assert_eq!(output_uri("s3://models/retrain", "iris", 3), "s3://models/retrain/iris/3/");
/// ```
pub fn output_uri(base: &str, owner: &str, id: i64) -> String {
    format!("{}/{owner}/{id}/", base.trim_end_matches('/'))
}

/// One reconcile's retraining decision.
///
/// Worked example: drift persistent, nothing in flight, cooldown over, budget left, no
/// approval → record 1 `Running` with Job `iris-retrain-1` to create; next reconcile the Job is
/// `Active` → nothing; then `Succeeded` with `{"modelUri": "s3://m/iris/1/model.onnx",
/// "sha256": "…"}` → `Candidate` and `set_model`; when the rollout history shows that URI
/// `Promoted` → `Promoted`, finished, and the cooldown starts.
pub fn decide(old: &RetrainingStatus, i: &Inputs<'_>) -> Decision {
    let mut d = Decision {
        status: old.clone(),
        ..Decision::default()
    };
    let in_flight = d.status.history.last().is_some_and(|r| !r.phase.finished());
    if i.manual {
        d.approval = Some(manual(&mut d, old, i, in_flight));
    }
    if in_flight {
        advance(&mut d, i);
    } else if d.approval.is_none()
        && let Some(trigger) = due_trigger(old, i)
    {
        start(&mut d, i, trigger);
    }
    if i.approve && d.approval.is_none() {
        d.approval = Some(Err("no retraining is awaiting approval".into()));
    }
    let excess = d.status.history.len().saturating_sub(HISTORY_LIMIT);
    d.status.history.drain(..excess);
    d
}

/// A `retrain` request: started now unless one is in flight, a canary rolls out, or the day's
/// budget is used (the cooldown is for automatic triggers; a person asked).
fn manual(
    d: &mut Decision,
    old: &RetrainingStatus,
    i: &Inputs<'_>,
    in_flight: bool,
) -> Result<String, String> {
    if let Some(r) = old.history.last().filter(|_| in_flight) {
        return Err(format!("retraining {} is in flight ({:?})", r.id, r.phase));
    }
    if i.rollout_active {
        return Err("a candidate is being rolled out".into());
    }
    if used_today(old, i) >= usize::try_from(i.spec.max_per_day).unwrap_or(0) {
        return Err(format!(
            "the daily budget of {} retrainings is used",
            i.spec.max_per_day
        ));
    }
    let trigger = Trigger {
        reason: TriggerReason::Manual,
        at: i.now.clone(),
        window_start: i.now.clone(),
        window_end: i.now.clone(),
        features: vec![],
        detail: "requested".into(),
    };
    start(d, i, trigger);
    let id = d.status.last_id;
    Ok(format!(
        "retraining {id} started (Job {})",
        job_name(i.owner, id)
    ))
}

/// Retrainings triggered in the last 24 hours.
fn used_today(old: &RetrainingStatus, i: &Inputs<'_>) -> usize {
    let day_ago = seconds(i.now) - 86_400;
    old.history
        .iter()
        .filter(|r| seconds(&r.trigger.at) > day_ago)
        .count()
}

/// The finding that should start a retraining now, if any.
fn due_trigger(old: &RetrainingStatus, i: &Inputs<'_>) -> Option<Trigger> {
    if i.rollout_active {
        return None;
    }
    let m = i.monitoring?;
    let now = seconds(i.now);
    if let Some(last) = old.history.last() {
        let ended = last.finished_at.as_ref().map_or(now, seconds);
        if now - ended < i.spec.cooldown_seconds {
            return None;
        }
    }
    if used_today(old, i) >= usize::try_from(i.spec.max_per_day).unwrap_or(0) {
        return None;
    }
    let window_end = m.last_evaluation.clone().unwrap_or_else(|| i.now.clone());
    let fired = |reason: TriggerReason| i.spec.triggers.contains(&reason);
    let trigger = |reason, windows: usize, features: Vec<String>, detail: String| Trigger {
        reason,
        at: i.now.clone(),
        window_start: at(seconds(&window_end) - i.window_seconds * windows.max(1) as i64),
        window_end: window_end.clone(),
        features,
        detail,
    };
    if let Some(dr) = m.drift.as_ref().filter(|d| d.persistent)
        && fired(TriggerReason::Drift)
    {
        let detail = format!(
            "drift in {} of the last {} windows",
            count(&dr.recent),
            dr.recent.len()
        );
        let features = dr.drifted_features.clone();
        return Some(trigger(
            TriggerReason::Drift,
            dr.recent.len(),
            features,
            detail,
        ));
    }
    if let Some(a) = m.accuracy.as_ref().filter(|a| a.persistent)
        && fired(TriggerReason::AccuracyDegraded)
    {
        let value = a.value.map_or("n/a".into(), |v| format!("{v:.3}"));
        let detail = format!("{} {value} on {} labels", a.metric, a.labels);
        return Some(trigger(
            TriggerReason::AccuracyDegraded,
            a.recent.len(),
            vec![],
            detail,
        ));
    }
    if let Some(p) = m.prediction.as_ref().filter(|p| p.persistent)
        && fired(TriggerReason::PredictionShift)
    {
        let detail = format!(
            "prediction shift in {} of the last {} windows",
            count(&p.recent),
            p.recent.len()
        );
        return Some(trigger(
            TriggerReason::PredictionShift,
            p.recent.len(),
            vec![],
            detail,
        ));
    }
    None
}

fn count(recent: &[bool]) -> usize {
    recent.iter().filter(|b| **b).count()
}

fn seconds(t: &Time) -> i64 {
    t.0.as_second()
}

fn start(d: &mut Decision, i: &Inputs<'_>, trigger: Trigger) {
    let id = d.status.last_id + 1;
    d.status.last_id = id;
    // A person asking for a retraining has approved it.
    let phase = if i.spec.approval && trigger.reason != TriggerReason::Manual {
        RetrainPhase::AwaitingApproval
    } else {
        RetrainPhase::Running
    };
    let features = if trigger.features.is_empty() {
        String::new()
    } else {
        format!(" ({})", trigger.features.join(", "))
    };
    let message = format!(
        "retraining {id}: {}{features}: {}",
        trigger.reason.as_str(),
        trigger.detail
    );
    let record = RetrainRecord {
        id,
        trigger,
        from: i.stable.clone(),
        phase,
        job: None,
        output_uri: output_uri(&i.spec.output_uri, i.owner, id),
        started_at: None,
        result: None,
        candidate: None,
        finished_at: None,
        message: String::new(),
    };
    d.transitions.push(note("RetrainingTriggered", message));
    d.status.history.push(record);
    if phase == RetrainPhase::AwaitingApproval {
        let message = format!(
            "retraining {id} waits for `kubectl modelpilot approve {}`",
            i.owner
        );
        d.transitions
            .push(note("RetrainingAwaitingApproval", message));
    } else {
        create(d, i);
    }
}

/// Mark the last record's Job as wanted (created now, or found by name).
fn create(d: &mut Decision, i: &Inputs<'_>) {
    let Some(r) = d.status.history.last_mut() else {
        return;
    };
    let name = job_name(i.owner, r.id);
    if r.job.is_none() {
        let message = format!("retraining {}: Job {name} started", r.id);
        d.transitions.push(note("RetrainingStarted", message));
    }
    r.job = Some(name);
    r.started_at.get_or_insert_with(|| i.now.clone());
    d.create_job = Some(r.clone());
}

fn advance(d: &mut Decision, i: &Inputs<'_>) {
    let Some(phase) = d.status.history.last().map(|r| r.phase) else {
        return;
    };
    match phase {
        RetrainPhase::AwaitingApproval if i.approve => {
            if let Some(r) = d.status.history.last_mut() {
                r.phase = RetrainPhase::Running;
                d.approval = Some(Ok(format!("retraining {} approved", r.id)));
            }
            create(d, i);
        }
        RetrainPhase::AwaitingApproval => {}
        RetrainPhase::Running => running(d, i),
        RetrainPhase::Candidate => candidate(d, i),
        _ => {}
    }
}

fn running(d: &mut Decision, i: &Inputs<'_>) {
    // Triggered (or approved) and not yet created: the Job's creation is recorded in the same
    // status write that follows it, so a crash in between creates it again (AlreadyExists).
    let Some(name) = d.status.history.last().and_then(|r| r.job.clone()) else {
        return create(d, i);
    };
    let job = match &i.job {
        None | Some(JobState::Missing) => JobState::Failed {
            reason: "JobDeleted".into(),
            message: format!("Job {name} disappeared before it finished"),
        },
        Some(job) => job.clone(),
    };
    let now = i.now.clone();
    let Some(r) = d.status.history.last_mut() else {
        return;
    };
    let id = r.id;
    match job {
        JobState::Missing | JobState::Active => {}
        JobState::Succeeded { message } => match parse_result(&message) {
            Ok(result) => {
                r.phase = RetrainPhase::Candidate;
                r.message = format!("candidate {}", result.model_uri);
                let version = result
                    .version
                    .clone()
                    .unwrap_or_else(|| result.model_uri.clone());
                d.transitions.push(note(
                    "RetrainingSucceeded",
                    format!("retraining {id}: candidate {version} goes through the canary"),
                ));
                r.result = Some(result.clone());
                d.set_model = Some(result);
            }
            Err(e) => finish(
                d,
                RetrainPhase::Failed,
                format!("result refused: {e}"),
                &now,
            ),
        },
        JobState::Failed { reason, message } => {
            let phase = if reason == "DeadlineExceeded" {
                RetrainPhase::TimedOut
            } else {
                RetrainPhase::Failed
            };
            let said = if message.is_empty() {
                String::new()
            } else {
                format!(": {}", message.chars().take(200).collect::<String>())
            };
            finish(d, phase, format!("Job failed ({reason}){said}"), &now);
        }
    }
}

fn candidate(d: &mut Decision, i: &Inputs<'_>) {
    let Some(r) = d.status.history.last_mut() else {
        return;
    };
    let Some(result) = r.result.clone() else {
        return;
    };
    // Until the spec is seen pointing at the result, (re)write it: a crash between the status
    // write and the spec write must not lose the candidate.
    let candidate = match &r.candidate {
        Some(c) => c.clone(),
        None if i.spec_uri == result.model_uri => {
            r.candidate = Some(i.spec_revision.to_string());
            i.spec_revision.to_string()
        }
        None => {
            d.set_model = Some(result);
            return;
        }
    };
    let started = r.started_at.as_ref().map_or(0, seconds);
    let outcome = i
        .history
        .iter()
        .rev()
        .find(|h| h.revision.name == candidate && seconds(&h.at) >= started);
    let (phase, message) = match outcome.map(|h| (h.outcome, h.reason.clone(), h.message.clone())) {
        Some((Outcome::Promoted, ..)) => (RetrainPhase::Promoted, "promoted".to_owned()),
        Some((Outcome::RolledBack, reason, message)) => (
            RetrainPhase::RolledBack,
            format!("rolled back ({reason}): {message}"),
        ),
        Some((Outcome::Superseded, ..)) => (
            RetrainPhase::Superseded,
            "superseded by a newer spec".to_owned(),
        ),
        None if i.stable.name == candidate => (RetrainPhase::Promoted, "promoted".to_owned()),
        None if i.spec_revision != candidate && !i.rollout_active => (
            RetrainPhase::Superseded,
            format!(
                "spec.model moved to {} before the candidate was judged",
                i.spec_uri
            ),
        ),
        None => return,
    };
    let now = i.now.clone();
    finish(d, phase, message, &now);
}

fn finish(d: &mut Decision, phase: RetrainPhase, message: String, now: &Time) {
    let Some(r) = d.status.history.last_mut() else {
        return;
    };
    r.phase = phase;
    r.finished_at = Some(now.clone());
    r.message.clone_from(&message);
    let (reason, warning) = match phase {
        RetrainPhase::Promoted => ("RetrainingPromoted", false),
        RetrainPhase::RolledBack => ("RetrainingRolledBack", true),
        RetrainPhase::TimedOut => ("RetrainingTimedOut", true),
        RetrainPhase::Superseded => ("RetrainingSuperseded", false),
        _ => ("RetrainingFailed", true),
    };
    d.transitions.push(Transition {
        reason,
        message: format!("retraining {}: {message}", r.id),
        warning,
    });
}

/// Seconds until the cooldown of the last retraining ends (0 when none applies).
pub fn cooldown_left(status: &RetrainingStatus, spec: &RetrainingSpec, now: &Time) -> i64 {
    let Some(ended) = status.history.last().and_then(|r| r.finished_at.as_ref()) else {
        return 0;
    };
    (seconds(ended) + spec.cooldown_seconds - seconds(now)).max(0)
}

/// `Timestamp` → `Time` at whole seconds (for tests and callers building times).
pub fn at(seconds: i64) -> Time {
    Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
