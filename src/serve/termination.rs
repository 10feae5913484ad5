//! The Kubernetes termination message: when `modelpilot serve` exits on a fatal error (a bad
//! digest, a model that does not load, an unreachable source, a bad profile…), the one-line
//! error is written to the container's `terminationMessagePath`, where the kubelet picks it
//! up into the pod's `lastState.terminated.message`. The operator reads it from there and
//! shows it on the ModelDeployment, so `kubectl get mdep` says why the model did not load.
//!
//! Best effort: the message also goes to stderr (`FallbackToLogsOnError` covers a path that
//! cannot be written), so a failure to write it is logged at debug level and never fatal.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// Where the kubelet expects the message unless the pod says otherwise.
pub const DEFAULT_PATH: &str = "/dev/termination-log";
/// The kubelet keeps at most this many bytes of a container's message.
pub const MAX_BYTES: usize = 4096;

/// The message for a fatal error: its whole chain on one line, at most [`MAX_BYTES`] bytes,
/// cut on a character boundary.
///
/// ```
/// use modelpilot::serve::termination::message;
/// let err = anyhow::anyhow!("checksum mismatch").context("model s3://b/m.onnx");
/// assert_eq!(message(&err), "model s3://b/m.onnx: checksum mismatch");
/// ```
pub fn message(err: &anyhow::Error) -> String {
    let line = format!("{err:#}").replace(['\r', '\n'], " ");
    truncate(&line, MAX_BYTES).to_owned()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let end = (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    &s[..end]
}

/// Where to write the message and whether the file may be created.
///
/// The default path is written only when it exists: in a pod the kubelet always provides it,
/// and outside one (a developer's machine) `/dev` must not gain a stray file. Any other path
/// is created when missing (its directory must exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub create: bool,
}

impl Target {
    /// The target for the `--termination-message-path` flag.
    pub fn for_path(path: &Path) -> Target {
        Target {
            path: path.to_owned(),
            create: path != Path::new(DEFAULT_PATH),
        }
    }

    /// Write the message for `err`; a failure is logged at debug level and otherwise ignored.
    pub fn write(&self, err: &anyhow::Error) {
        if let Err(io) = self.write_text(&message(err)) {
            tracing::debug!(path = %self.path.display(), "termination message not written: {io}");
        }
    }

    /// Write `text`, cut to [`MAX_BYTES`] on a character boundary, in place of the file's
    /// content (for a successful run's result, e.g. `modelpilot signature`).
    pub fn write_text(&self, text: &str) -> std::io::Result<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .create(self.create)
            .open(&self.path)
            .and_then(|mut file| file.write_all(truncate(text, MAX_BYTES).as_bytes()))
    }

    /// Whether this is the default path and it does not exist: not in a pod, so there is
    /// nobody to read the message and nothing is written.
    pub fn absent_default(&self) -> bool {
        !self.create && !self.path.exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_bounded() {
        let long = "é".repeat(3000); // 6000 bytes
        let cases = [
            ("plain", anyhow::anyhow!("boom"), "boom".to_owned()),
            (
                "chain on one line",
                anyhow::anyhow!("inner").context("outer"),
                "outer: inner".to_owned(),
            ),
            (
                "line breaks flattened",
                anyhow::anyhow!("a\nb\r\nc"),
                "a b  c".to_owned(),
            ),
            (
                "cut on a char boundary",
                anyhow::anyhow!("{long}"),
                "é".repeat(2048),
            ),
            (
                "odd cut drops the split char",
                anyhow::anyhow!("x{long}"),
                format!("x{}", "é".repeat(2047)),
            ),
        ];
        for (case, err, want) in cases {
            let got = message(&err);
            assert!(got.len() <= MAX_BYTES, "{case}: {} bytes", got.len());
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn write_targets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let explicit = dir.path().join("explicit");
        let existing = dir.path().join("existing");
        std::fs::write(&existing, "old text that is longer").expect("write");
        let absent = dir.path().join("absent");
        let no_dir = dir.path().join("missing/dir/log");
        let err = anyhow::anyhow!("bad digest").context("model");
        // (case, target, file content afterwards)
        let cases = [
            (
                "explicit path is created",
                Target::for_path(&explicit),
                Some("model: bad digest"),
            ),
            (
                "existing file is truncated",
                Target {
                    path: existing.clone(),
                    create: false,
                },
                Some("model: bad digest"),
            ),
            (
                "default-like target is not created",
                Target {
                    path: absent.clone(),
                    create: false,
                },
                None,
            ),
            (
                "missing directory is ignored",
                Target::for_path(&no_dir),
                None,
            ),
        ];
        for (case, target, want) in cases {
            target.write(&err);
            let got = std::fs::read_to_string(&target.path).ok();
            assert_eq!(got.as_deref(), want, "{case}");
        }
        assert_eq!(
            Target::for_path(Path::new(DEFAULT_PATH)),
            Target {
                path: DEFAULT_PATH.into(),
                create: false
            }
        );
    }
}
