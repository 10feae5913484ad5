//! A verb as the operator receives it: the `modelpilot.io/request` annotation the plugin writes,
//! and how the operator's answer in `status.rollout.lastRequest` reads back.
//!
//! The request itself is the operator's type ([`crate::rollout::requests::Request`], re-exported
//! here), so what the plugin writes is by construction what the operator reads. Everything here
//! is pure, so the plugin's I/O stays a thin shell: build the request, patch it onto the object,
//! watch until [`progress`] says the request was answered, print [`render_ack`] and exit with
//! [`exit_code`].

use k8s_openapi::jiff::Timestamp;

use crate::api::{ModelDeployment, RequestAck};
pub use crate::rollout::requests::{ANNOTATION, Action, Request};

/// `result` of an acknowledgement that carried the request out.
pub const DONE: &str = "Done";

/// Exit code of a request the operator carried out.
pub const EXIT_DONE: u8 = 0;
/// Exit code of a request the operator refused (or that was replaced before it was handled).
pub const EXIT_REFUSED: u8 = 1;
/// Exit code when no acknowledgement came in time (the request stays recorded).
pub const EXIT_TIMEOUT: u8 = 2;

/// A request with an id made of `now` and `nonce` (see [`request_id`]).
pub fn new(action: Action, revision: Option<String>, now: Timestamp, nonce: u32) -> Request {
    Request {
        id: request_id(now, nonce),
        action,
        revision,
    }
}

/// The JSON merge patch that writes `request` onto an object's metadata.
///
/// ```
/// use k8s_openapi::jiff::Timestamp;
/// use modelpilot::plugin::request::{Action, merge_patch, new};
///
/// let request = new(Action::Pause, None, Timestamp::UNIX_EPOCH, 0xbeef);
/// let patch = merge_patch(&request);
/// assert_eq!(
///     patch["metadata"]["annotations"]["modelpilot.io/request"],
///     r#"{"id":"19700101T000000Z-0000beef","action":"pause"}"#
/// );
/// ```
pub fn merge_patch(request: &Request) -> serde_json::Value {
    // Serialising two strings, a unit enum and an optional string cannot fail.
    let value = serde_json::to_string(request).unwrap_or_default();
    serde_json::json!({"metadata": {"annotations": {ANNOTATION: value}}})
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

/// The annotation's text on `mdep`, if any.
fn annotation(mdep: &ModelDeployment) -> Option<&str> {
    mdep.metadata
        .annotations
        .as_ref()?
        .get(ANNOTATION)
        .map(String::as_str)
}

/// The request recorded on `mdep`, if its annotation parses.
pub fn recorded(mdep: &ModelDeployment) -> Option<Request> {
    serde_json::from_str(annotation(mdep)?).ok()
}

/// The id of the request recorded on `mdep`, even one whose action this version does not know
/// (the operator refuses that one by its id).
fn recorded_id(mdep: &ModelDeployment) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(annotation(mdep)?).ok()?;
    value.get("id")?.as_str().map(str::to_owned)
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
    match recorded_id(mdep) {
        Some(other) if other != id => Progress::Superseded(other),
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
