//! Container processes: started through the agent's own `exec-in-pod` step (so they run in the
//! pod's namespaces), each the leader of its own process group with stdout and stderr appended
//! to the container's log file; stopped as the kubelet stops a container — SIGTERM to the whole
//! group, the grace period, then SIGKILL — and never left behind: once the leader exits, the rest
//! of its group is killed too, as a container's cgroup would be.

use std::{
    collections::BTreeMap,
    fs::File,
    path::Path,
    process::{ExitStatus, Stdio},
    time::Duration,
};

use nix::{
    sys::signal::{Signal, killpg},
    unistd::Pid,
};
use tokio::process::{Child, Command};

use crate::trampoline::Bind;

/// What to start, and where.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    pub agent_exe: &'a Path,
    pub netns: &'a Path,
    pub binds: &'a [Bind],
    pub keep: &'a [std::path::PathBuf],
    pub workdir: Option<&'a str>,
    pub argv: &'a [String],
    pub env: &'a BTreeMap<String, String>,
}

impl Launch<'_> {
    fn command(&self) -> Command {
        let mut cmd = Command::new(self.agent_exe);
        cmd.arg("exec-in-pod").arg("--netns").arg(self.netns);
        for b in self.binds {
            cmd.arg("--bind").arg(b.to_flag());
        }
        for k in self.keep {
            cmd.arg("--keep").arg(k);
        }
        if let Some(dir) = self.workdir {
            cmd.arg("--workdir").arg(dir);
        }
        cmd.arg("--").args(self.argv);
        cmd.env_clear().envs(self.env).stdin(Stdio::null());
        cmd.process_group(0);
        cmd
    }

    /// Starts the container with its output appended to `log`.
    pub fn spawn(&self, log: &File) -> std::io::Result<(Child, i32)> {
        let mut cmd = self.command();
        cmd.stdout(log.try_clone()?).stderr(log.try_clone()?);
        let child = cmd.spawn()?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| std::io::Error::other("spawned process has no pid"))?;
        Ok((child, pid))
    }

    /// Runs to completion with a deadline (exec probes); `Ok(true)` on exit 0.
    pub async fn run_with_timeout(&self, timeout: Duration) -> std::io::Result<Result<(), String>> {
        let mut cmd = self.command();
        cmd.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let child = cmd.spawn()?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok());
        match tokio::time::timeout(timeout, child.wait_with_output()).await {
            Ok(out) => {
                let out = out?;
                if out.status.success() {
                    Ok(Ok(()))
                } else {
                    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
                    text.push_str(&String::from_utf8_lossy(&out.stderr));
                    Ok(Err(format!(
                        "exit code {}: {}",
                        exit_code(out.status).0,
                        text.trim()
                    )))
                }
            }
            Err(_) => {
                if let Some(pid) = pid {
                    signal_group(pid, Signal::SIGKILL);
                }
                Ok(Err(format!("command timed out after {timeout:?}")))
            }
        }
    }
}

/// Sends a signal to a process group; a group that is already gone is not an error.
pub fn signal_group(pgid: i32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// The exit code a container status reports, and the signal when one ended it (128 + signal,
/// as a shell reports it).
///
/// ```text
/// exit(0) → (0, None); exit(3) → (3, None); SIGKILL → (137, Some(9)); SIGTERM → (143, Some(15))
/// ```
pub fn exit_code(status: ExitStatus) -> (i32, Option<i32>) {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => (code, None),
        (None, Some(sig)) => (128 + sig, Some(sig)),
        (None, None) => (255, None),
    }
}

/// Stops a container: SIGTERM to its group, up to `grace` for it to exit, then SIGKILL.
pub async fn terminate(
    child: &mut Child,
    pgid: i32,
    grace: Duration,
) -> std::io::Result<ExitStatus> {
    signal_group(pgid, Signal::SIGTERM);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => {
            signal_group(pgid, Signal::SIGKILL);
            status
        }
        Err(_) => {
            signal_group(pgid, Signal::SIGKILL);
            child.wait().await
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    #[test]
    fn exit_codes() {
        for (raw, want) in [
            (0, (0, None)),
            (3 << 8, (3, None)),
            (9, (137, Some(9))),
            (15, (143, Some(15))),
        ] {
            assert_eq!(exit_code(ExitStatus::from_raw(raw)), want, "raw {raw}");
        }
    }

    #[tokio::test]
    async fn terminate_signals_the_whole_group() {
        // A shell that ignores nothing: SIGTERM ends it well within the grace period.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg("sleep 30 & wait").process_group(0);
        let mut child = cmd.spawn().expect("spawn sh");
        let pid = i32::try_from(child.id().expect("pid")).expect("pid fits");
        let status = terminate(&mut child, pid, Duration::from_secs(5))
            .await
            .expect("waits");
        assert_eq!(exit_code(status).1.or(Some(15)), Some(15));
        // The group is gone (its last member reaped by init shortly after): signalling fails.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while killpg(Pid::from_raw(pid), None).is_ok() {
            assert!(
                std::time::Instant::now() < deadline,
                "process group {pid} outlived terminate"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
