//! Explicit requests (`kubectl modelpilot promote|abort|retry|pause|resume|rollback`): parsed from
//! the `modelpilot.io/request` annotation, carried out once, acknowledged in
//! `status.rollout.lastRequest`.
//!
//! "Once" comes from the acknowledgement living in the same status write as the state change it
//! caused: a request whose id is already acknowledged is never looked at again, and one that is not
//! yet acknowledged is decided again from the same status after a restart.
//!
//! [`Request`] is the one definition of the annotation's JSON: the operator reads it, and `kubectl
//! modelpilot` (`crate::plugin::request`) writes it.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};

use crate::api::{
    AbortStatus, HistoryEntry, Outcome, PauseStatus, RequestAck, RolloutPhase, RolloutRevision,
    RolloutStatus,
};

/// The annotation a request is written to.
pub const ANNOTATION: &str = "modelpilot.io/request";

/// A verb.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// End the current step (or pause) and go to the next one.
    Promote,
    /// Skip the remaining steps and analysis: promote now.
    PromoteFull,
    /// Roll the candidate back.
    Abort,
    /// Start an aborted rollout again from its first step.
    Retry,
    /// Stop at the current step.
    Pause,
    /// Continue after a pause.
    Resume,
    /// Return the spec's model to an earlier revision and promote it without analysis.
    Rollback,
    /// Let the retraining that waits for approval create its Job.
    Approve,
    /// Start a retraining now (the daily budget still applies; the cooldown does not).
    Retrain,
}

impl Action {
    /// The verb as the plugin spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::PromoteFull => "promote-full",
            Self::Abort => "abort",
            Self::Retry => "retry",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Rollback => "rollback",
            Self::Approve => "approve",
            Self::Retrain => "retrain",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request as the annotation carries it.
///
/// ```
/// use modelpilot::rollout::requests::{Action, Request};
/// let r = Request { id: "a1".into(), action: Action::PromoteFull, revision: None };
/// let json = serde_json::to_string(&r).unwrap();
/// assert_eq!(json, r#"{"id":"a1","action":"promote-full"}"#);
/// assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Unique id, echoed in the acknowledgement.
    pub id: String,
    /// The verb.
    pub action: Action,
    /// Target revision of a rollback.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

/// The request in `annotation` that still needs handling: `None` when absent or already
/// acknowledged; a malformed one is refused (acknowledged with the parse error, when it has an id).
///
/// ```
/// use modelpilot::rollout::requests::{Action, pending};
/// let r = pending(Some(r#"{"id":"a1","action":"abort"}"#), None).unwrap().unwrap();
/// assert_eq!(r.action, Action::Abort);
/// assert!(pending(Some(r#"{"id":"a1","action":"abort"}"#), Some("a1")).is_none());
/// ```
pub fn pending(
    annotation: Option<&str>,
    acknowledged: Option<&str>,
) -> Option<Result<Request, (String, String)>> {
    let raw = annotation?;
    match serde_json::from_str::<Request>(raw) {
        Ok(r) if Some(r.id.as_str()) == acknowledged => None,
        Ok(r) if r.id.is_empty() => Some(Err((String::new(), "request without an id".into()))),
        Ok(r) => Some(Ok(r)),
        Err(e) => {
            // Acknowledge a malformed request once, by whatever id it carries.
            let id = serde_json::from_str::<serde_json::Value>(raw)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
                .unwrap_or_default();
            if id.is_empty() || Some(id.as_str()) == acknowledged {
                return None;
            }
            Some(Err((id, format!("malformed request: {e}"))))
        }
    }
}

/// What a request changes beyond the rollout status.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Effects {
    /// Set the spec's model to this revision's (a rollback).
    pub rollback_to: Option<RolloutRevision>,
}

/// Carry out `request` on the rollout state; returns the acknowledgement and side effects.
///
/// A request that does not fit the state is refused with the reason, never half done. Worked
/// example: `pause` while `Progressing` → phase `Paused` with reason `Requested`, acknowledged
/// `Done`; `retry` while `Progressing` → `Refused` ("nothing to retry: the rollout is Progressing").
pub fn apply(
    request: &Request,
    st: &mut RolloutStatus,
    stable: Option<&RolloutRevision>,
    history: &[HistoryEntry],
    now: &Time,
) -> (RequestAck, Effects) {
    let mut effects = Effects::default();
    let active = matches!(
        st.phase,
        RolloutPhase::Checking
            | RolloutPhase::Progressing
            | RolloutPhase::Paused
            | RolloutPhase::Promoting
    );
    let phase = format!("{:?}", st.phase);
    let outcome: Result<String, String> = match request.action {
        Action::Promote => match st.phase {
            RolloutPhase::Progressing | RolloutPhase::Paused => {
                st.pause = None;
                st.phase = RolloutPhase::Progressing;
                st.current_step += 1;
                st.step_started_at = Some(now.clone());
                st.metrics.retain(|m| m.scope != super::steps::STEP_SCOPE);
                Ok(format!("moved to step {}", st.current_step))
            }
            _ => Err(format!("nothing to promote: the rollout is {phase}")),
        },
        Action::PromoteFull => match st.phase {
            RolloutPhase::Progressing | RolloutPhase::Paused => {
                st.pause = None;
                st.phase = RolloutPhase::Promoting;
                Ok("promoting without the remaining steps".into())
            }
            RolloutPhase::Checking => {
                Err("the candidate's signature is still being checked".into())
            }
            _ => Err(format!("nothing to promote: the rollout is {phase}")),
        },
        Action::Abort if active => {
            abort(st, "Requested", "aborted by request", now);
            Ok("rolled back to the stable revision".into())
        }
        Action::Abort => Err(format!("nothing to abort: the rollout is {phase}")),
        Action::Retry => match st.phase {
            RolloutPhase::Aborted if st.canary.is_some() => {
                restart(st, now);
                Ok("started again from the first step".into())
            }
            _ => Err(format!("nothing to retry: the rollout is {phase}")),
        },
        Action::Pause => match st.phase {
            RolloutPhase::Progressing => {
                st.phase = RolloutPhase::Paused;
                st.pause = Some(PauseStatus {
                    reason: "Requested".into(),
                    message: "paused by request".into(),
                    since: now.clone(),
                });
                Ok(format!("paused at step {}", st.current_step))
            }
            _ => Err(format!("nothing to pause: the rollout is {phase}")),
        },
        Action::Resume => match st.phase {
            RolloutPhase::Paused => {
                resume(st, now);
                Ok(format!("resumed at step {}", st.current_step))
            }
            _ => Err(format!("nothing to resume: the rollout is {phase}")),
        },
        // Answered by the retraining stage (see `acknowledge`); here only without one.
        Action::Approve => Err("no retraining is awaiting approval".into()),
        Action::Retrain => Err("this ModelDeployment has no spec.retraining".into()),
        Action::Rollback => rollback_target(request, stable, history).map(|target| {
            let message = format!(
                "spec.model set to revision {} ({})",
                target.name,
                target.version.as_deref().unwrap_or(&target.uri)
            );
            effects.rollback_to = Some(target);
            message
        }),
    };
    (acknowledge(request, outcome, now), effects)
}

/// The acknowledgement of `request` with its outcome: `Done` with what was done, or `Refused`
/// with why.
pub fn acknowledge(request: &Request, outcome: Result<String, String>, now: &Time) -> RequestAck {
    let (result, message) = match outcome {
        Ok(m) => ("Done", m),
        Err(m) => ("Refused", m),
    };
    RequestAck {
        id: request.id.clone(),
        action: request.action.as_str().into(),
        result: result.into(),
        message,
        at: now.clone(),
    }
}

/// Which earlier revision a rollback returns to: one promoted before (from the history), or the
/// current stable revision (cancelling a candidate).
fn rollback_target(
    request: &Request,
    stable: Option<&RolloutRevision>,
    history: &[HistoryEntry],
) -> Result<RolloutRevision, String> {
    let wanted = request
        .revision
        .as_deref()
        .ok_or("rollback needs a revision (see `kubectl modelpilot history`)")?;
    if let Some(s) = stable.filter(|s| s.name == wanted) {
        return Ok(s.clone());
    }
    history
        .iter()
        .rev()
        .find(|h| h.revision.name == wanted && h.outcome == Outcome::Promoted)
        .map(|h| h.revision.clone())
        .ok_or_else(|| {
            format!("revision {wanted} was never promoted (see `kubectl modelpilot history`)")
        })
}

/// Roll the candidate back: traffic returns to stable at once (see `plan`).
pub fn abort(st: &mut RolloutStatus, reason: &str, message: &str, now: &Time) {
    st.phase = RolloutPhase::Aborted;
    st.pause = None;
    st.abort = Some(AbortStatus {
        reason: reason.into(),
        message: message.into(),
        at: now.clone(),
    });
}

/// Start the candidate's steps again (after `retry`).
pub fn restart(st: &mut RolloutStatus, now: &Time) {
    st.phase = RolloutPhase::Checking;
    st.abort = None;
    st.pause = None;
    st.current_step = 0;
    st.step_started_at = None;
    st.started_at = None;
    st.metrics.clear();
    let _ = now;
}

/// Continue after a pause: the counts that caused it start again.
pub fn resume(st: &mut RolloutStatus, now: &Time) {
    let step_pause = st
        .pause
        .as_ref()
        .is_some_and(|p| p.reason == super::steps::PAUSE_STEP);
    st.phase = RolloutPhase::Progressing;
    st.pause = None;
    for m in &mut st.metrics {
        m.inconclusive = 0;
        m.consecutive_errors = 0;
    }
    if step_pause {
        // An open-ended pause step ends with resume, as with promote.
        st.current_step += 1;
        st.step_started_at = Some(now.clone());
    }
}

#[cfg(test)]
#[path = "requests_tests.rs"]
mod tests;
