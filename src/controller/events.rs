//! Kubernetes Events for what a person watching `kubectl describe mdep` wants to know: a new
//! revision started rolling out, the service became ready or stopped being ready, something is
//! degraded (or degraded for a new reason: the pods' problem changed), and every reconcile
//! error (reason = the error's reason).

use k8s_openapi::{
    api::{core::v1::ObjectReference, events::v1::Event as K8sEvent},
    apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{
    Api, Client,
    api::PostParams,
    runtime::events::{Event, EventType},
};

use crate::api::{ModelDeploymentStatus, condition_types as ct};

/// An event to publish, decided purely from the old and new status.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub warning: bool,
    pub reason: String,
    pub action: &'static str,
    pub message: String,
}

impl Note {
    /// The kube-runtime event.
    pub fn to_event(&self) -> Event {
        Event {
            type_: if self.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: self.reason.clone(),
            note: Some(truncate(&self.message, 1000)),
            action: self.action.into(),
            secondary: None,
        }
    }
}

/// Publishes `note` as an event of its own, never folded into an earlier one.
///
/// The kube-runtime recorder counts repeats of a (reason, action) pair as one event series that
/// keeps the first message; that suits conditions flipping, not decisions whose message is the
/// point (each scale says from how many to how many pods, and why). These go out one by one.
pub async fn publish_each(
    client: &Client,
    instance: &str,
    note: &Note,
    regarding: &ObjectReference,
) -> Result<(), kube::Error> {
    let namespace = regarding
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let now = Timestamp::now();
    // `<object>.<nanoseconds><random>`: unique, and a valid name (a generateName ending in '.'
    // is refused for events).
    let name = format!(
        "{}.{:x}{:04x}",
        regarding.name.as_deref().unwrap_or("modelpilot"),
        now.as_nanosecond(),
        rand::random::<u16>()
    );
    let event = K8sEvent {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(namespace.clone()),
            ..Default::default()
        },
        action: Some(note.action.into()),
        event_time: Some(MicroTime(now)),
        note: Some(truncate(&note.message, 1000)),
        reason: Some(note.reason.clone()),
        regarding: Some(regarding.clone()),
        reporting_controller: Some("modelpilot".into()),
        reporting_instance: Some(instance.into()),
        type_: Some(if note.warning { "Warning" } else { "Normal" }.into()),
        ..Default::default()
    };
    let api: Api<K8sEvent> = Api::namespaced(client.clone(), &namespace);
    api.create(&PostParams::default(), &event).await.map(|_| ())
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn find<'a>(conditions: &'a [Condition], t: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == t)
}

/// The events a status change deserves.
pub fn transitions(old: &ModelDeploymentStatus, new: &ModelDeploymentStatus) -> Vec<Note> {
    let mut notes = Vec::new();
    if let Some(rev) = &new.revision
        && old.revision.as_ref().map(|r| &r.name) != Some(&rev.name)
    {
        notes.push(Note {
            warning: false,
            reason: "RevisionCreated".into(),
            action: "Rollout",
            message: format!(
                "revision {} of model {}{}",
                rev.name,
                rev.uri,
                rev.version
                    .as_ref()
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            ),
        });
    }
    let flipped = |t: &str| {
        let now = find(&new.conditions, t)?;
        let before = find(&old.conditions, t).map(|c| c.status.as_str());
        (before != Some(now.status.as_str())).then_some(now)
    };
    if let Some(c) = flipped(ct::READY) {
        if c.status == "True" {
            notes.push(Note {
                warning: false,
                reason: "Ready".into(),
                action: "Serve",
                message: c.message.clone(),
            });
        } else if find(&old.conditions, ct::READY).is_some() {
            notes.push(Note {
                warning: true,
                reason: c.reason.clone(),
                action: "Serve",
                message: c.message.clone(),
            });
        }
    }
    // A new kind of trouble while already degraded (an image fixed, now the model fails to
    // load) is news too; the same trouble with a new message (a restart count) is not.
    let degraded_anew = find(&new.conditions, ct::DEGRADED).filter(|now| {
        let before = find(&old.conditions, ct::DEGRADED);
        now.status == "True" && before.is_some_and(|b| b.status == "True" && b.reason != now.reason)
    });
    if let Some(c) = flipped(ct::DEGRADED).or(degraded_anew) {
        if c.status == "True" {
            // A rollback is announced by the rollout plan itself (reason RolledBack, with the
            // verdict); the Degraded condition it raises would say so a second time.
            if c.reason != "RolledBack" {
                notes.push(Note {
                    warning: true,
                    reason: c.reason.clone(),
                    action: "Reconcile",
                    message: c.message.clone(),
                });
            }
        } else if find(&old.conditions, ct::DEGRADED).is_some() {
            notes.push(Note {
                warning: false,
                reason: "Recovered".into(),
                action: "Reconcile",
                message: c.message.clone(),
            });
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        api::{RevisionStatus, RolloutPhase, RolloutStatus},
        controller::{
            pods::PodProblem,
            status::{
                DeploymentView, Verdict, conditions_for, merge_conditions, now, rollout_conditions,
            },
        },
    };

    fn status(ready: i32, revision: &str) -> ModelDeploymentStatus {
        failing(ready, revision, None)
    }

    /// A status whose pods have `problem` (reason, message).
    fn failing(
        ready: i32,
        revision: &str,
        problem: Option<(&'static str, &str)>,
    ) -> ModelDeploymentStatus {
        with_verdicts(conditions_for(Some(&view(ready, problem)), None), revision)
    }

    /// A status whose ready pods serve `revision` after a canary was rolled back.
    fn rolled_back(revision: &str) -> ModelDeploymentStatus {
        let mut verdicts = conditions_for(Some(&view(2, None)), None);
        let rollout = RolloutStatus {
            phase: RolloutPhase::Aborted,
            ..Default::default()
        };
        rollout_conditions(&mut verdicts, &rollout, None);
        with_verdicts(verdicts, revision)
    }

    fn view(ready: i32, problem: Option<(&'static str, &str)>) -> DeploymentView {
        DeploymentView {
            desired: 2,
            replicas: 2,
            ready,
            updated: 2,
            available: ready,
            observed: true,
            pods: problem.map(|(reason, message)| PodProblem {
                reason,
                message: message.into(),
            }),
            ..Default::default()
        }
    }

    fn with_verdicts(verdicts: [Verdict; 3], revision: &str) -> ModelDeploymentStatus {
        ModelDeploymentStatus {
            conditions: merge_conditions(&[], &verdicts, Some(1), &now()),
            revision: Some(RevisionStatus {
                name: revision.into(),
                uri: "s3://b/m.onnx".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn transition_table() {
        let empty = ModelDeploymentStatus::default();
        let cases = [
            (
                "first status: new revision only",
                &empty,
                status(0, "a"),
                vec!["RevisionCreated"],
            ),
            (
                "pods became ready",
                &status(0, "a"),
                status(2, "a"),
                vec!["Ready"],
            ),
            (
                "no change, no event",
                &status(2, "a"),
                status(2, "a"),
                vec![],
            ),
            (
                "new model",
                &status(2, "a"),
                status(2, "b"),
                vec!["RevisionCreated"],
            ),
            (
                "lost readiness",
                &status(2, "a"),
                status(1, "a"),
                vec!["ReplicasNotReady"],
            ),
            (
                "model fails to load",
                &status(0, "a"),
                failing(0, "a", Some(("ModelLoadFailed", "checksum mismatch"))),
                vec!["ModelLoadFailed"],
            ),
            (
                "same problem, new message: no event",
                &failing(0, "a", Some(("CrashLoopBackOff", "3 restarts"))),
                failing(0, "a", Some(("CrashLoopBackOff", "4 restarts"))),
                vec![],
            ),
            (
                "another problem",
                &failing(0, "a", Some(("ImagePullFailed", "no such image"))),
                failing(0, "a", Some(("ModelLoadFailed", "checksum mismatch"))),
                vec!["ModelLoadFailed"],
            ),
            (
                "ready pods fail: readiness lost and degraded",
                &status(2, "a"),
                failing(2, "a", Some(("CrashLoopBackOff", "2 restarts"))),
                vec!["CrashLoopBackOff", "CrashLoopBackOff"],
            ),
            (
                "pods recover",
                &failing(0, "a", Some(("ModelLoadFailed", "checksum mismatch"))),
                status(2, "a"),
                vec!["Ready", "Recovered"],
            ),
            (
                "canary rolled back: the plan's RolledBack event says it, not the condition",
                &status(2, "a"),
                rolled_back("a"),
                vec![],
            ),
            (
                "rollback over: recovered",
                &rolled_back("a"),
                status(2, "a"),
                vec!["Recovered"],
            ),
        ];
        for (case, old, new, want) in cases {
            let got: Vec<_> = transitions(old, &new)
                .into_iter()
                .map(|n| n.reason)
                .collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        assert_eq!(truncate("ééé", 2), "éé…");
        assert_eq!(truncate("ok", 5), "ok");
    }
}
