//! The pod's runtime record (what the agent's containers are doing) and the pure function that
//! turns it into the `PodStatus` the kubelet would report: phase, conditions, container states
//! with exit codes, reasons and termination messages, restart counts, readiness and the pod IP.
//! Kept pure so the phase rules — the ones the Job and EndpointSlice controllers act on — are
//! table-tested without processes.

use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
        ContainerStatus, HostIP, PodCondition, PodIP, PodSpec, PodStatus,
    },
    apimachinery::pkg::apis::meta::v1::Time,
};

/// A container's current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: Timestamp,
    },
    Terminated(Terminated),
}

/// How a container instance ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Terminated {
    pub exit_code: i32,
    pub signal: Option<i32>,
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
}

/// One container as the agent runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerRt {
    pub name: String,
    pub image: String,
    pub state: State,
    pub last: Option<Terminated>,
    pub restart_count: i32,
    pub ready: bool,
    pub started: bool,
    pub container_id: Option<String>,
}

impl ContainerRt {
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            state: State::Waiting {
                reason: "ContainerCreating".into(),
                message: None,
            },
            last: None,
            restart_count: 0,
            ready: false,
            started: false,
            container_id: None,
        }
    }
}

/// The pod as the agent runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodRt {
    pub host_ip: String,
    pub pod_ip: Option<String>,
    pub start_time: Option<Timestamp>,
    pub sandbox_ready: bool,
    pub init: Vec<ContainerRt>,
    pub main: Vec<ContainerRt>,
    /// Every regular init container completed.
    pub initialized: bool,
    /// A regular init container failed and the pod's restartPolicy is Never.
    pub init_failed: bool,
    /// Succeeded or Failed, once reached (a terminal phase never changes).
    pub terminal: Option<String>,
}

fn is_sidecar(spec: &PodSpec, name: &str) -> bool {
    spec.init_containers
        .iter()
        .flatten()
        .any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
}

/// The pod phase by the kubelet's rules.
///
/// ```text
/// init not done                          → Pending (Failed when an init container failed, policy Never)
/// a main container waiting, never run    → Pending
/// a main container running               → Running
/// a sidecar still running                → Running (sidecars stop after the main containers)
/// all stopped, policy Always             → Running (they restart)
/// all stopped with exit 0                → Succeeded
/// all stopped, one non-zero, Never       → Failed
/// all stopped, one non-zero, OnFailure   → Running (it restarts)
/// ```
/// A container waiting to restart counts as stopped with its last exit code.
pub fn phase(spec: &PodSpec, rt: &PodRt) -> String {
    if let Some(t) = &rt.terminal {
        return t.clone();
    }
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    if rt.init_failed {
        return "Failed".into();
    }
    if !rt.initialized {
        return "Pending".into();
    }
    // A sidecar still running keeps the pod Running until it is stopped after the main ones.
    let sidecars_running = rt
        .init
        .iter()
        .filter(|c| is_sidecar(spec, &c.name))
        .any(|c| matches!(c.state, State::Running { .. }));
    let (mut waiting, mut running, mut stopped, mut succeeded) =
        (0, usize::from(sidecars_running), 0, 0);
    for c in &rt.main {
        match (&c.state, &c.last) {
            (State::Running { .. }, _) => running += 1,
            (State::Terminated(t), _) | (State::Waiting { .. }, Some(t)) => {
                stopped += 1;
                if t.exit_code == 0 {
                    succeeded += 1;
                }
            }
            (State::Waiting { .. }, None) => waiting += 1,
        }
    }
    if waiting > 0 || rt.main.is_empty() {
        "Pending".into()
    } else if running > 0 {
        "Running".into()
    } else if policy == "Always" {
        let _ = stopped;
        "Running".into()
    } else if stopped == succeeded {
        "Succeeded".into()
    } else if policy == "Never" {
        "Failed".into()
    } else {
        "Running".into()
    }
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

fn container_status(c: &ContainerRt) -> ContainerStatus {
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone(),
        image_id: format!("modelpilot-node-agent://{}", c.image),
        container_id: c.container_id.clone(),
        ready: c.ready,
        started: Some(c.started),
        restart_count: c.restart_count,
        state: Some(state(&c.state)),
        last_state: Some(match &c.last {
            Some(t) => terminated(t),
            None => ContainerState::default(),
        }),
        ..Default::default()
    }
}

fn terminated(t: &Terminated) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: t.exit_code,
            signal: t.signal,
            reason: Some(t.reason.clone()),
            message: t.message.clone(),
            started_at: t.started_at.map(time),
            finished_at: Some(time(t.finished_at)),
            container_id: None,
        }),
        ..Default::default()
    }
}

fn state(s: &State) -> ContainerState {
    match s {
        State::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: message.clone(),
            }),
            ..Default::default()
        },
        State::Running { started_at } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(time(*started_at)),
            }),
            ..Default::default()
        },
        State::Terminated(t) => terminated(t),
    }
}

fn condition(
    prev: Option<&PodStatus>,
    kind: &str,
    ok: bool,
    reason: Option<&str>,
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let since = prev
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == kind))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or(time(now));
    PodCondition {
        type_: kind.into(),
        status: status.into(),
        reason: if ok { None } else { reason.map(Into::into) },
        last_transition_time: Some(since),
        ..Default::default()
    }
}

/// The status the agent reports for the pod. Condition transition times carry over from `prev`
/// while a condition keeps its status.
pub fn pod_status(
    spec: &PodSpec,
    rt: &PodRt,
    prev: Option<&PodStatus>,
    now: Timestamp,
) -> PodStatus {
    let phase = phase(spec, rt);
    let terminal = phase == "Succeeded" || phase == "Failed";
    let sidecars_ready = rt
        .init
        .iter()
        .filter(|c| is_sidecar(spec, &c.name))
        .all(|c| c.ready);
    let containers_ready = !terminal
        && rt.initialized
        && !rt.main.is_empty()
        && rt.main.iter().all(|c| c.ready)
        && sidecars_ready;
    let not_ready_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let conditions = vec![
        condition(
            prev,
            "PodReadyToStartContainers",
            rt.sandbox_ready,
            None,
            now,
        ),
        condition(
            prev,
            "Initialized",
            rt.initialized || terminal,
            Some("ContainersNotInitialized"),
            now,
        ),
        condition(prev, "Ready", containers_ready, Some(not_ready_reason), now),
        condition(
            prev,
            "ContainersReady",
            containers_ready,
            Some(not_ready_reason),
            now,
        ),
        condition(prev, "PodScheduled", true, None, now),
    ];
    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        host_ip: Some(rt.host_ip.clone()),
        host_ips: Some(vec![HostIP {
            ip: rt.host_ip.clone(),
        }]),
        pod_ip: rt.pod_ip.clone(),
        pod_ips: rt.pod_ip.as_ref().map(|ip| vec![PodIP { ip: ip.clone() }]),
        start_time: rt.start_time.map(time),
        init_container_statuses: (!rt.init.is_empty())
            .then(|| rt.init.iter().map(container_status).collect()),
        container_statuses: Some(rt.main.iter().map(container_status).collect()),
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn running() -> State {
        State::Running { started_at: t(10) }
    }

    fn exited(code: i32) -> Terminated {
        Terminated {
            exit_code: code,
            signal: None,
            reason: if code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            },
            message: None,
            started_at: Some(t(10)),
            finished_at: t(20),
        }
    }

    fn waiting(last: Option<Terminated>) -> ContainerRt {
        ContainerRt {
            last,
            ..ContainerRt::new("c", "img")
        }
    }

    /// A pod past its init containers, with these main containers.
    fn initialized(main: Vec<ContainerRt>) -> PodRt {
        PodRt {
            initialized: true,
            main,
            ..Default::default()
        }
    }

    fn with(state: State) -> ContainerRt {
        ContainerRt {
            state,
            ..ContainerRt::new("c", "img")
        }
    }

    #[test]
    fn phases() {
        let cases: Vec<(&str, PodRt, &str)> = vec![
            ("Always", PodRt::default(), "Pending"),
            ("Always", initialized(vec![waiting(None)]), "Pending"),
            ("Always", initialized(vec![with(running())]), "Running"),
            (
                "Always",
                initialized(vec![waiting(Some(exited(1)))]),
                "Running",
            ),
            (
                "Never",
                initialized(vec![with(State::Terminated(exited(0)))]),
                "Succeeded",
            ),
            (
                "Never",
                initialized(vec![
                    with(State::Terminated(exited(0))),
                    with(State::Terminated(exited(1))),
                ]),
                "Failed",
            ),
            (
                "OnFailure",
                initialized(vec![waiting(Some(exited(1)))]),
                "Running",
            ),
            (
                "OnFailure",
                initialized(vec![with(State::Terminated(exited(0)))]),
                "Succeeded",
            ),
            (
                "Never",
                initialized(vec![with(running()), with(State::Terminated(exited(1)))]),
                "Running",
            ),
            (
                "Never",
                PodRt {
                    init_failed: true,
                    ..Default::default()
                },
                "Failed",
            ),
            (
                "Always",
                PodRt {
                    terminal: Some("Succeeded".into()),
                    ..Default::default()
                },
                "Succeeded",
            ),
        ];
        for (i, (policy, rt, want)) in cases.into_iter().enumerate() {
            let spec = PodSpec {
                restart_policy: Some(policy.into()),
                ..Default::default()
            };
            assert_eq!(phase(&spec, &rt), want, "case {i} ({policy})");
        }
    }

    #[test]
    fn readiness_needs_every_container_and_sidecar() {
        let spec = PodSpec {
            init_containers: Some(vec![k8s_openapi::api::core::v1::Container {
                name: "side".into(),
                restart_policy: Some("Always".into()),
                ..Default::default()
            }]),
            ..Default::default()
        };
        let mut rt = PodRt {
            host_ip: "10.244.128.1".into(),
            pod_ip: Some("10.244.128.7".into()),
            sandbox_ready: true,
            initialized: true,
            init: vec![ContainerRt {
                name: "side".into(),
                ready: false,
                ..with(running())
            }],
            main: vec![ContainerRt {
                ready: true,
                ..with(running())
            }],
            ..Default::default()
        };
        let get = |s: &PodStatus, k: &str| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == k)
                .map(|c| c.status.clone())
        };
        let s1 = pod_status(&spec, &rt, None, t(100));
        assert_eq!(get(&s1, "Ready").as_deref(), Some("False"));
        rt.init[0].ready = true;
        let s2 = pod_status(&spec, &rt, Some(&s1), t(200));
        assert_eq!(get(&s2, "Ready").as_deref(), Some("True"));
        assert_eq!(s2.pod_ip.as_deref(), Some("10.244.128.7"));
        // Unchanged conditions keep their transition time; flipped ones move.
        let since = |s: &PodStatus, k: &str| {
            s.conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == k)
                .and_then(|c| c.last_transition_time.clone())
        };
        assert_eq!(since(&s2, "Initialized"), Some(Time(t(100))));
        assert_eq!(since(&s2, "Ready"), Some(Time(t(200))));
    }

    #[test]
    fn terminated_containers_report_code_reason_and_message() {
        let mut term = exited(3);
        term.message = Some("model failed to load".into());
        let spec = PodSpec {
            restart_policy: Some("Never".into()),
            ..Default::default()
        };
        let rt = initialized(vec![with(State::Terminated(term))]);
        let s = pod_status(&spec, &rt, None, t(5));
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        let cs = &s.container_statuses.expect("statuses")[0];
        let term = cs
            .state
            .as_ref()
            .and_then(|s| s.terminated.as_ref())
            .expect("terminated");
        assert_eq!(
            (
                term.exit_code,
                term.reason.as_deref(),
                term.message.as_deref()
            ),
            (3, Some("Error"), Some("model failed to load"))
        );
        let ready = s
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .expect("ready");
        assert_eq!(ready.reason.as_deref(), Some("PodCompleted"));
    }
}
