//! The short-lived step between the agent and a container's program: it joins the pod's network
//! namespace, makes a private mount namespace with the container's volume mounts bound at their
//! mount paths, changes to the working directory and then execs the program, which so keeps this
//! process's pid (and its process group, which the agent signals).
//!
//! Mount points that do not exist on the host are created (an empty directory, or an empty file
//! for a file source) before the bind; they stay empty outside the pod's mount namespace.

use std::{
    fs::{self, File},
    os::{
        fd::AsRawFd,
        unix::{fs::OpenOptionsExt, process::CommandExt},
    },
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::Context;
use nix::{
    mount::{MsFlags, mount},
    sched::{CloneFlags, setns, unshare},
};

use crate::cli::ExecArgs;

/// One bind mount of a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

impl Bind {
    /// The `--bind` flag value: `SOURCE=TARGET[=ro]`.
    pub fn to_flag(&self) -> String {
        let ro = if self.read_only { "=ro" } else { "" };
        format!("{}={}{ro}", self.source.display(), self.target.display())
    }

    /// Parses a `--bind` flag value.
    ///
    /// ```text
    /// "/s/vol=/data"     → source /s/vol, target /data, read-write
    /// "/s/vol=/data=ro"  → read-only
    /// ```
    pub fn parse(flag: &str) -> anyhow::Result<Self> {
        let mut parts = flag.split('=');
        let (Some(source), Some(target)) = (parts.next(), parts.next()) else {
            anyhow::bail!("--bind wants SOURCE=TARGET[=ro], got '{flag}'");
        };
        let read_only = match parts.next() {
            None => false,
            Some("ro") => true,
            Some(other) => anyhow::bail!("--bind '{flag}': unknown option '{other}'"),
        };
        if source.is_empty() || !target.starts_with('/') || parts.next().is_some() {
            anyhow::bail!("--bind wants SOURCE=/ABSOLUTE/TARGET[=ro], got '{flag}'");
        }
        Ok(Self {
            source: source.into(),
            target: target.into(),
            read_only,
        })
    }
}

/// Runs `exec-in-pod`; returns only when something failed before the exec.
pub fn exec_in_pod(args: ExecArgs) -> ExitCode {
    match enter(&args) {
        Ok(()) => {
            let err = Command::new(&args.argv[0]).args(&args.argv[1..]).exec();
            eprintln!("exec {}: {err}", args.argv[0]);
            // 127: command not found / not executable, as a shell reports it.
            ExitCode::from(127)
        }
        Err(err) => {
            eprintln!("modelpilot-node-agent: cannot enter the pod: {err:#}");
            ExitCode::from(126)
        }
    }
}

fn enter(args: &ExecArgs) -> anyhow::Result<()> {
    let netns = File::open(&args.netns)
        .with_context(|| format!("network namespace {}", args.netns.display()))?;
    setns(&netns, CloneFlags::CLONE_NEWNET).context("setns(net)")?;
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(mount)")?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .context("making / private")?;
    let mut binds = args
        .binds
        .iter()
        .map(|f| Bind::parse(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Parents before children, as a runtime orders mounts; and every source opened before the
    // first mount, since a mount (an emptyDir at /tmp, say) may hide where later sources live.
    binds.sort_by_key(|b| b.target.components().count());
    let sources = binds
        .iter()
        .map(|b| {
            open_path(&b.source).with_context(|| format!("volume source {}", b.source.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let keeps: Vec<(&PathBuf, File)> = args
        .keeps
        .iter()
        .filter_map(|k| open_path(k).ok().map(|f| (k, f)))
        .collect();
    for (b, source) in binds.iter().zip(&sources) {
        bind(b, source)?;
    }
    // The image's own files (the program, its libraries) stay where they were, as in a
    // container image, even when a volume now covers a parent directory.
    for (path, file) in &keeps {
        if !same_file(path, file) {
            let b = Bind {
                source: (*path).clone(),
                target: (*path).clone(),
                read_only: false,
            };
            bind(&b, file)?;
        }
    }
    if let Some(dir) = &args.workdir {
        fs::create_dir_all(dir).with_context(|| format!("working dir {}", dir.display()))?;
        std::env::set_current_dir(dir).with_context(|| format!("chdir {}", dir.display()))?;
    }
    Ok(())
}

/// An O_PATH handle: any kind of file, no read permission needed; only something to mount from.
fn open_path(path: &Path) -> std::io::Result<File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_PATH.bits())
        .open(path)
}

/// Whether `path` still names the file behind `file` (not hidden by a mount).
fn same_file(path: &Path, file: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn bind(b: &Bind, source: &File) -> anyhow::Result<()> {
    let is_dir = source.metadata().map(|m| m.is_dir()).unwrap_or(false);
    ensure_mount_point(is_dir, &b.target)?;
    // The opened source, whatever has been mounted over its path since.
    let by_fd = PathBuf::from(format!("/proc/self/fd/{}", source.as_raw_fd()));
    mount(
        Some(&by_fd),
        &b.target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind {} at {}", b.source.display(), b.target.display()))?;
    if b.read_only {
        mount(
            None::<&str>,
            &b.target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC,
            None::<&str>,
        )
        .with_context(|| format!("read-only {}", b.target.display()))?;
    }
    Ok(())
}

fn ensure_mount_point(is_dir: bool, target: &Path) -> anyhow::Result<()> {
    if target.exists() {
        return Ok(());
    }
    if is_dir {
        fs::create_dir_all(target)
    } else {
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        File::create(target).map(drop)
    }
    .with_context(|| format!("mount point {}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_flags_round_trip_and_reject_bad_forms() {
        type Want<'a> = Option<(&'a str, &'a str, bool)>;
        let cases: &[(&str, Want)] = &[
            ("/s/v=/data", Some(("/s/v", "/data", false))),
            ("/s/v=/data=ro", Some(("/s/v", "/data", true))),
            ("/s/v=data", None),
            ("/s/v", None),
            ("=/data", None),
            ("/s/v=/data=rw", None),
            ("/s/v=/data=ro=x", None),
        ];
        for (flag, want) in cases {
            let got = Bind::parse(flag).ok();
            match (got, want) {
                (Some(b), Some((s, t, ro))) => {
                    assert_eq!(
                        (b.source.to_str(), b.target.to_str(), b.read_only),
                        (Some(*s), Some(*t), *ro),
                        "{flag}"
                    );
                    assert_eq!(b.to_flag(), *flag);
                }
                (None, None) => {}
                (got, want) => panic!("{flag}: got {got:?}, want {want:?}"),
            }
        }
    }
}
