//! One container's life under the agent: resolve its image to a host executable, compose its
//! environment, start it in the pod's namespaces with its volume mounts, probe it, and when it
//! exits record the exit code, reason and termination message, then restart it by the pod's
//! `restartPolicy` (sidecars always) with a doubling back-off (`CrashLoopBackOff` while waiting).

use std::{
    fs::{self, File, OpenOptions},
    io::{Read, Seek, SeekFrom},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Container;
use nix::sys::signal::Signal;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    env,
    pod::{PodCtx, Slot},
    probe,
    process::{self, Launch},
    status::{State, Terminated},
    volumes,
};

/// What the container is to the pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular init container: runs to completion before the next one.
    Init,
    /// An init container with `restartPolicy: Always`: kept running beside the main containers.
    Sidecar,
    Main,
}

/// How a container's runner ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    /// Stopped by the pod's deletion (or the agent's shutdown).
    Stopped,
}

/// What happens after an exit, by the kubelet's rules.
///
/// ```text
/// Sidecar, any exit                    → restart
/// Init, exit 0                         → Succeeded (the next init container starts)
/// Init, exit ≠ 0, pod policy Never     → Failed (the pod fails)
/// Init, exit ≠ 0, Always or OnFailure  → restart
/// Main, Always                         → restart
/// Main, OnFailure: exit 0 → Succeeded, else restart
/// Main, Never: exit 0 → Succeeded, else Failed
/// ```
pub fn after_exit(kind: Kind, pod_policy: &str, exit_code: i32) -> Option<Outcome> {
    match (kind, pod_policy, exit_code) {
        (Kind::Sidecar, _, _) => None,
        (Kind::Init | Kind::Main, _, 0) if kind == Kind::Init || pod_policy != "Always" => {
            Some(Outcome::Succeeded)
        }
        (Kind::Init | Kind::Main, "Never", _) => Some(Outcome::Failed),
        _ => None,
    }
}

/// The back-off before restart number `crashes` (0-based): base × 2^crashes, capped.
///
/// ```text
/// base 1 s, max 300 s: 1, 2, 4, 8, … 256, 300, 300 …
/// ```
pub fn backoff(base: Duration, max: Duration, crashes: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(crashes.min(20)))
        .min(max)
}

const MESSAGE_LIMIT: usize = 4096;
const FALLBACK_LINES: usize = 80;
const FALLBACK_BYTES: usize = 2048;

/// The termination message: the file the container wrote (at most 4 KiB), or, with
/// `FallbackToLogsOnError` and a failed exit, the tail of its log.
fn termination_message(file: &Path, log: &Path, fallback: bool, exit_code: i32) -> Option<String> {
    let mut text = String::new();
    if let Ok(f) = File::open(file) {
        let _ = f.take(MESSAGE_LIMIT as u64).read_to_string(&mut text);
    }
    let text = text.trim().to_owned();
    if !text.is_empty() {
        return Some(text);
    }
    if fallback && exit_code != 0 {
        let tail = log_tail(log, FALLBACK_LINES, FALLBACK_BYTES);
        let tail = tail.trim();
        if !tail.is_empty() {
            return Some(tail.to_owned());
        }
    }
    None
}

/// The last `lines` lines of a file, at most `bytes` bytes.
pub fn log_tail(path: &Path, lines: usize, bytes: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(bytes as u64);
    let mut buf = Vec::new();
    if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn wait(ctx: &PodCtx, slot: Slot, reason: &str, message: String) {
    ctx.update(slot, |c| {
        c.state = State::Waiting {
            reason: reason.into(),
            message: Some(message),
        };
        c.ready = false;
    });
}

/// Runs the container until it is done for good or `stop` fires.
pub async fn run(
    ctx: Arc<PodCtx>,
    slot: Slot,
    spec: Container,
    kind: Kind,
    stop: CancellationToken,
) -> Outcome {
    let policy = ctx
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into());
    let logs_dir = ctx.dir.join("logs").join(&spec.name);
    let state_dir = ctx.dir.join("containers").join(&spec.name);
    let mut crashes = 0u32;
    loop {
        if stop.is_cancelled() {
            return Outcome::Stopped;
        }
        let delay = backoff(ctx.agent.backoff_base, ctx.agent.backoff_max, crashes);
        let started = match start(&ctx, slot, &spec, &logs_dir, &state_dir).await {
            Ok(started) => started,
            Err((reason, message)) => {
                tracing::warn!(pod = %ctx.key, container = %spec.name, "{reason}: {message}");
                wait(&ctx, slot, reason, message.clone());
                crashes += 1;
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stop.cancelled() => return Outcome::Stopped,
                }
                if reason == "ErrImagePull" {
                    wait(
                        &ctx,
                        slot,
                        "ImagePullBackOff",
                        format!("Back-off pulling image: {message}"),
                    );
                }
                continue;
            }
        };
        let Started {
            mut child,
            pid,
            log,
            term_file,
            target,
        } = started;
        let started_at = Timestamp::now();
        let ran_from = Instant::now();
        ctx.update(slot, |c| {
            c.state = State::Running { started_at };
            c.container_id = Some(format!("modelpilot://{pid}"));
            c.started = false;
            c.ready = false;
        });
        tracing::info!(pod = %ctx.key, container = %spec.name, pid, "started");
        let (kill_tx, mut kill_rx) = mpsc::channel(1);
        let probes_stop = CancellationToken::new();
        tokio::spawn(probe::run(
            Arc::clone(&ctx),
            slot,
            spec.clone(),
            target,
            kill_tx,
            probes_stop.clone(),
        ));
        let mut stopping = false;
        let mut killed_for = None;
        let status = tokio::select! {
            status = child.wait() => status,
            Some(reason) = kill_rx.recv() => {
                tracing::info!(pod = %ctx.key, container = %spec.name, "{reason}; restarting");
                killed_for = Some(reason);
                process::terminate(&mut child, pid, ctx.pod_grace()).await
            }
            () = stop.cancelled() => {
                stopping = true;
                process::terminate(&mut child, pid, ctx.grace()).await
            }
        };
        probes_stop.cancel();
        process::signal_group(pid, Signal::SIGKILL);
        let (exit_code, signal) = match &status {
            Ok(s) => process::exit_code(*s),
            Err(_) => (255, None),
        };
        let fallback = spec.termination_message_policy.as_deref() == Some("FallbackToLogsOnError");
        let mut message = termination_message(&term_file, &log, fallback, exit_code);
        if message.is_none() {
            message = killed_for;
        }
        let terminated = Terminated {
            exit_code,
            signal,
            reason: if exit_code == 0 {
                "Completed".into()
            } else {
                "Error".into()
            },
            message,
            started_at: Some(started_at),
            finished_at: Timestamp::now(),
        };
        tracing::info!(pod = %ctx.key, container = %spec.name, exit_code, "exited");
        ctx.update(slot, |c| {
            c.state = State::Terminated(terminated.clone());
            c.ready = false;
        });
        if stopping {
            return Outcome::Stopped;
        }
        if let Some(outcome) = after_exit(kind, &policy, exit_code) {
            return outcome;
        }
        if ran_from.elapsed() > Duration::from_secs(600) {
            crashes = 0;
        }
        let delay = backoff(ctx.agent.backoff_base, ctx.agent.backoff_max, crashes);
        crashes += 1;
        ctx.update(slot, |c| {
            c.last = Some(terminated);
            c.state = State::Waiting {
                reason: "CrashLoopBackOff".into(),
                message: Some(format!(
                    "back-off {}s restarting failed container={} pod={}",
                    delay.as_secs(),
                    spec.name,
                    ctx.pod.metadata.name.clone().unwrap_or_default()
                )),
            };
        });
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = stop.cancelled() => return Outcome::Stopped,
        }
        ctx.update(slot, |c| c.restart_count += 1);
    }
}

struct Started {
    child: tokio::process::Child,
    pid: i32,
    log: PathBuf,
    term_file: PathBuf,
    target: probe::Target,
}

/// Everything up to a running process; an error is a waiting reason and its message.
async fn start(
    ctx: &Arc<PodCtx>,
    slot: Slot,
    spec: &Container,
    logs_dir: &Path,
    state_dir: &Path,
) -> Result<Started, (&'static str, String)> {
    let image = spec.image.clone().unwrap_or_default();
    let resolved = ctx
        .agent
        .images
        .resolve(&image, spec.command.as_deref(), spec.args.as_deref(), |p| {
            p.is_file()
        })
        .map_err(|e| ("ErrImagePull", e.to_string()))?;
    let config_err = |m: String| ("CreateContainerConfigError", m);
    let facts = ctx.facts();
    let (cms, secrets) = env::referenced(spec);
    let ns = ctx.pod.metadata.namespace.clone().unwrap_or_default();
    let sources = env::fetch(&ctx.agent.client, &ns, &cms, &secrets)
        .await
        .map_err(config_err)?;
    let vars = env::compose(spec, &ctx.pod, &facts, &sources, &resolved.env).map_err(config_err)?;
    let mut argv = resolved.argv.clone();
    for arg in argv.iter_mut().skip(1) {
        *arg = env::expand(arg, &vars);
    }
    let prepared = ctx.volumes();
    let mut binds = volumes::binds(spec.volume_mounts.as_deref().unwrap_or_default(), &prepared)
        .map_err(config_err)?;
    let restart = ctx.restart_count(slot);
    let io_err = |e: std::io::Error| ("RunContainerError", e.to_string());
    fs::create_dir_all(logs_dir).map_err(io_err)?;
    fs::create_dir_all(state_dir).map_err(io_err)?;
    let term_file = state_dir.join(format!("termination-{restart}"));
    File::create(&term_file).map_err(io_err)?;
    binds.push(crate::trampoline::Bind {
        source: term_file.clone(),
        target: spec
            .termination_message_path
            .clone()
            .unwrap_or_else(|| "/dev/termination-log".into())
            .into(),
        read_only: false,
    });
    let log = logs_dir.join(format!("{restart}.log"));
    let log_file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
        .map_err(io_err)?;
    let netns = ctx.sandbox_path();
    let launch = Launch {
        agent_exe: &ctx.agent.exe,
        netns: &netns,
        binds: &binds,
        keep: &resolved.keep,
        workdir: spec.working_dir.as_deref(),
        argv: &argv,
        env: &vars,
    };
    let (child, pid) = launch
        .spawn(&log_file)
        .map_err(|e| ("RunContainerError", format!("start {}: {e}", argv[0])))?;
    let ports = spec
        .ports
        .iter()
        .flatten()
        .filter_map(|p| Some((p.name.clone()?, p.container_port)))
        .collect();
    let pod_ip = facts
        .pod_ip
        .parse()
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let target = probe::Target {
        pod_ip,
        ports,
        netns,
        binds,
        keep: resolved.keep.clone(),
        env: vars,
        workdir: spec.working_dir.clone(),
    };
    Ok(Started {
        child,
        pid,
        log,
        term_file,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_rules() {
        use Kind::*;
        use Outcome::*;
        let cases = [
            (Sidecar, "Never", 0, None),
            (Sidecar, "Never", 1, None),
            (Init, "Always", 0, Some(Succeeded)),
            (Init, "Never", 1, Some(Failed)),
            (Init, "OnFailure", 1, None),
            (Init, "Always", 1, None),
            (Main, "Always", 0, None),
            (Main, "Always", 137, None),
            (Main, "OnFailure", 0, Some(Succeeded)),
            (Main, "OnFailure", 2, None),
            (Main, "Never", 0, Some(Succeeded)),
            (Main, "Never", 1, Some(Failed)),
        ];
        for (kind, policy, code, want) in cases {
            assert_eq!(
                after_exit(kind, policy, code),
                want,
                "{kind:?} {policy} {code}"
            );
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap() {
        let s = Duration::from_secs;
        let got: Vec<u64> = (0..12)
            .map(|n| backoff(s(1), s(300), n).as_secs())
            .collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(backoff(s(10), s(300), 40), s(300));
    }

    #[test]
    fn messages_prefer_the_file_then_the_log_tail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (file, log) = (dir.path().join("term"), dir.path().join("0.log"));
        fs::write(
            &log,
            (0..100).map(|i| format!("line {i}\n")).collect::<String>(),
        )
        .expect("log");
        fs::write(&file, "").expect("term");
        assert_eq!(termination_message(&file, &log, false, 1), None);
        let tail = termination_message(&file, &log, true, 1).expect("fallback");
        assert!(
            tail.ends_with("line 99") && !tail.contains("line 19\n"),
            "{tail}"
        );
        assert_eq!(termination_message(&file, &log, true, 0), None);
        fs::write(&file, "  checksum mismatch\n").expect("term");
        assert_eq!(
            termination_message(&file, &log, true, 1).as_deref(),
            Some("checksum mismatch")
        );
        fs::write(&file, "x".repeat(10_000)).expect("term");
        assert_eq!(
            termination_message(&file, &log, false, 1).map(|m| m.len()),
            Some(MESSAGE_LIMIT)
        );
    }
}
