//! A verb as the operator receives it: the `modelpilot.io/request` annotation the plugin writes,
//! and how the operator's answer in `status.rollout.lastRequest` reads back.
//!
//! Everything here is pure, so the plugin's I/O stays a thin shell: build the request, patch it
//! onto the object, watch until [`progress`] says the request was answered, print [`render_ack`]
//! and exit with [`exit_code`].

use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::api::{ModelDeployment, RequestAck};

/// The annotation carrying a request to the operator.
pub const REQUEST_ANNOTATION: &str = "modelpilot.io/request";

/// `result` of an acknowledgement that carried the request out.
pub const DONE: &str = "Done";

/// Exit code of a request the operator carried out.
pub const EXIT_DONE: u8 = 0;
/// Exit code of a request the operator refused (or that was replaced before it was handled).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code when no acknowledgement came in time (the request stays recorded).
pub const EXIT_TIMEOUT: u8 = 2;

/// What a request asks the operator to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Go on to the next step.
    Promote,
    /// Skip the remaining steps and analysis: promote now.
    PromoteFull,
    /// Roll the candidate back.
    Abort,
    /// Restart an aborted rollout.
    Retry,
    /// Hold the rollout at its current step.
    Pause,
    /// Continue a paused rollout.
    Resume,
    /// Make an earlier revision the candidate (promoted as soon as it is ready).
    Rollback,
}

impl Action {
    /// The `action` string of the request.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::PromoteFull => "promote-full",
            Self::Abort => "abort",
            Self::Retry => "retry",
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Rollback => "rollback",
        }
    }
}

/// The JSON value of the `modelpilot.io/request` annotation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Unique per request: the operator carries out each id once and echoes it in its ack.
    pub id: String,
    /// One of the [`Action`] strings.
    pub action: String,
    /// The revision to roll back to (`rollback` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl Request {
    /// A request with an id made of `now` and `nonce` (see [`request_id`]).
    pub fn new(action: Action, revision: Option<String>, now: Timestamp, nonce: u32) -> Self {
        Self {
            id: request_id(now, nonce),
            action: action.as_str().to_string(),
            revision,
        }
    }

    /// The JSON merge patch that writes this request onto an object's metadata.
    ///
    /// ```
    /// use k8s_openapi::jiff::Timestamp;
    /// use modelpilot::plugin::request::{Action, Request};
    ///
    /// let request = Request::new(Action::Pause, None, Timestamp::UNIX_EPOCH, 0xbeef);
    /// let patch = request.merge_patch();
    /// assert_eq!(
    ///     patch["metadata"]["annotations"]["modelpilot.io/request"],
    ///     r#"{"id":"19700101T000000Z-0000beef","action":"pause"}"#
    /// );
    /// ```
    pub fn merge_patch(&self) -> serde_json::Value {
        // Serialising two strings and an optional string cannot fail.
        let value = serde_json::to_string(self).unwrap_or_default();
        serde_json::json!({"metadata": {"annotations": {REQUEST_ANNOTATION: value}}})
    }
}

/// A request id: the UTC time to the second, then 8 random hex digits, so ids sort by time and
/// two requests in the same second still differ.
///
/// ```
/// use k8s_openapi::jiff::Timestamp;
/// use modelpilot::plugin::request::request_id;
///
/// let at: Timestamp = "2025-03-04T05:06:07.890Z".parse().unwrap();
/// assert_eq!(request_id(at, 0x1a2b), "20250304T050607Z-00001a2b");
/// ```
pub fn request_id(now: Timestamp, nonce: u32) -> String {
    format!("{}-{nonce:08x}", now.strftime("%Y%m%dT%H%M%SZ"))
}

/// The request recorded on `mdep`, if its annotation parses.
pub fn recorded(mdep: &ModelDeployment) -> Option<Request> {
    let text = mdep
        .metadata
        .annotations
        .as_ref()?
        .get(REQUEST_ANNOTATION)?;
    serde_json::from_str(text).ok()
}

/// Where request `id` stands on the object as last seen.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// Not handled yet.
    Pending,
    /// The operator answered it.
    Acknowledged(RequestAck),
    /// Another request (this id) replaced it on the annotation before the operator handled it.
    Superseded(String),
}

/// Read `mdep` for the answer to request `id`.
///
/// The acknowledgement wins over the annotation: once answered, a newer request written since
/// does not change the outcome of this one.
pub fn progress(mdep: &ModelDeployment, id: &str) -> Progress {
    let ack = mdep
        .status
        .as_ref()
        .and_then(|s| s.rollout.as_ref())
        .and_then(|r| r.last_request.as_ref());
    if let Some(ack) = ack.filter(|ack| ack.id == id) {
        return Progress::Acknowledged(ack.clone());
    }
    match recorded(mdep) {
        Some(other) if other.id != id => Progress::Superseded(other.id),
        _ => Progress::Pending,
    }
}

/// The exit code of an acknowledgement: 0 when carried out, 1 otherwise.
pub fn exit_code(ack: &RequestAck) -> u8 {
    if ack.result == DONE {
        EXIT_DONE
    } else {
        EXIT_REFUSED
    }
}

/// One line saying how the operator answered, e.g. `promote iris: Done: moved to step 3/5`.
pub fn render_ack(name: &str, ack: &RequestAck) -> String {
    if ack.message.is_empty() {
        format!("{} {name}: {}", ack.action, ack.result)
    } else {
        format!("{} {name}: {}: {}", ack.action, ack.result, ack.message)
    }
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
