//! The image table: which host executable stands in for which container image. The local node
//! agent runs no container runtime, so an image is only a name that selects an entrypoint, a
//! search path and extra environment (the cluster scripts write the table with the freshly built
//! `modelpilot` binary and the project's Python env). An image outside the table fails its pod as
//! an unpullable image does.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde::Deserialize;

/// The host's default search path, after the image's own entries.
pub const HOST_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageTable {
    pub images: Vec<ImageEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageEntry {
    /// Repository without tag or digest, e.g. `modelpilot/modelpilot` or `python`.
    pub repository: String,
    /// The image's ENTRYPOINT, used when the container gives no `command`.
    pub entrypoint: Vec<String>,
    /// Directories searched first for a relative program name.
    #[serde(default)]
    pub path: Vec<PathBuf>,
    /// Environment the image brings (a container's own `env` wins).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Host paths that are part of the "image" (the binary's directory, a shared library, a
    /// venv): kept visible in the container even when one of its volumes is mounted over a
    /// parent directory (an emptyDir at /tmp while the checkout lives under /tmp).
    #[serde(default)]
    pub keep: Vec<PathBuf>,
}

/// What to run for a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub argv: Vec<String>,
    /// The image's environment, then `PATH`.
    pub env: Vec<(String, String)>,
    /// Host paths to keep visible: the entry's `keep` and the program itself.
    pub keep: Vec<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error(
        "image \"{0}\" is not in the local node agent's image table (it maps modelpilot/modelpilot, python and busybox images to host executables)"
    )]
    Unknown(String),
    #[error("image \"{image}\": no command and no entrypoint to run")]
    NothingToRun { image: String },
    #[error("image \"{image}\": executable \"{program}\" not found on the image's path")]
    NotFound { image: String, program: String },
}

/// The repository part of an image reference: tag and digest dropped, Docker Hub's implicit
/// prefixes removed.
///
/// ```text
/// "python:3.11-slim"                      → "python"
/// "docker.io/library/python:3.11"         → "python"
/// "localhost:5000/modelpilot/modelpilot:1" → "localhost:5000/modelpilot/modelpilot"
/// "modelpilot/modelpilot@sha256:ab…"      → "modelpilot/modelpilot"
/// ```
pub fn repository(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let repo = match no_digest[last_slash..].find(':') {
        Some(colon) => &no_digest[..last_slash + colon],
        None => no_digest,
    };
    repo.strip_prefix("docker.io/library/")
        .or_else(|| repo.strip_prefix("docker.io/"))
        .unwrap_or(repo)
}

impl ImageTable {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("image table {}: {e}", path.display()))?;
        serde_yaml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("image table {}: {e}", path.display()))
    }

    /// The argv and environment for a container, as a runtime would compose them: `command`
    /// replaces the entrypoint, `args` replace the (empty) image CMD. A relative program is
    /// looked up on the image's path, then the host's; an absolute one that the host lacks is
    /// looked up by its file name on the image's path (`/usr/local/bin/python` → the venv's).
    /// `exists` tells whether a host file is an executable (a parameter so tests need no files).
    pub fn resolve(
        &self,
        image: &str,
        command: Option<&[String]>,
        args: Option<&[String]>,
        exists: impl Fn(&Path) -> bool,
    ) -> Result<Resolved, ImageError> {
        let repo = repository(image);
        let entry = self
            .images
            .iter()
            .find(|e| e.repository == repo)
            .ok_or_else(|| ImageError::Unknown(image.to_owned()))?;
        let mut argv: Vec<String> = match command {
            Some(cmd) if !cmd.is_empty() => cmd.to_vec(),
            _ => entry.entrypoint.clone(),
        };
        argv.extend(args.unwrap_or_default().iter().cloned());
        let Some(program) = argv.first().cloned() else {
            return Err(ImageError::NothingToRun {
                image: image.into(),
            });
        };
        let search: Vec<PathBuf> = entry
            .path
            .iter()
            .cloned()
            .chain(HOST_PATH.split(':').map(PathBuf::from))
            .collect();
        let found = if program.starts_with('/') {
            let name = Path::new(&program).file_name().unwrap_or_default();
            if exists(Path::new(&program)) {
                Some(PathBuf::from(&program))
            } else {
                entry.path.iter().map(|d| d.join(name)).find(|p| exists(p))
            }
        } else if program.contains('/') {
            Some(PathBuf::from(&program))
        } else {
            search.iter().map(|d| d.join(&program)).find(|p| exists(p))
        };
        let Some(found) = found else {
            return Err(ImageError::NotFound {
                image: image.into(),
                program,
            });
        };
        argv[0] = found.display().to_string();
        let found = PathBuf::from(&argv[0]);
        let mut env: Vec<(String, String)> = entry
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let path = search
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":");
        env.push(("PATH".into(), path));
        let mut keep = entry.keep.clone();
        keep.push(found);
        Ok(Resolved { argv, env, keep })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> ImageTable {
        serde_yaml::from_str(
            r#"
images:
  - repository: modelpilot/modelpilot
    entrypoint: [/w/target/debug/modelpilot]
    path: [/w/target/debug]
    env: {ORT_DYLIB_PATH: /v/libonnxruntime.so}
  - repository: python
    entrypoint: [/v/bin/python3]
    path: [/v/bin]
"#,
        )
        .expect("table parses")
    }

    fn exists(p: &Path) -> bool {
        [
            "/w/target/debug/modelpilot",
            "/v/bin/python3",
            "/v/bin/python",
            "/bin/sh",
        ]
        .contains(&p.to_str().unwrap_or_default())
    }

    #[test]
    fn repositories() {
        for (image, want) in [
            ("python", "python"),
            ("python:3.11-slim", "python"),
            ("docker.io/library/python:3.11", "python"),
            (
                "docker.io/modelpilot/modelpilot:0.1.0",
                "modelpilot/modelpilot",
            ),
            (
                "localhost:5000/modelpilot/modelpilot:1",
                "localhost:5000/modelpilot/modelpilot",
            ),
            ("modelpilot/modelpilot@sha256:abcd", "modelpilot/modelpilot"),
            (
                "modelpilot/modelpilot:0.1@sha256:abcd",
                "modelpilot/modelpilot",
            ),
        ] {
            assert_eq!(repository(image), want, "{image}");
        }
    }

    #[test]
    fn resolution_table() {
        let t = table();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        type Case<'a> = (
            &'a str,
            Option<&'a [&'a str]>,
            Option<&'a [&'a str]>,
            Result<&'a [&'a str], &'a str>,
        );
        let cases: &[Case] = &[
            (
                "modelpilot/modelpilot:0.1.0",
                None,
                Some(&["serve", "--model-uri", "x"]),
                Ok(&["/w/target/debug/modelpilot", "serve", "--model-uri", "x"]),
            ),
            (
                "modelpilot/modelpilot:0.1.0",
                Some(&["modelpilot"]),
                Some(&["crd"]),
                Ok(&["/w/target/debug/modelpilot", "crd"]),
            ),
            (
                "python:3.11",
                Some(&["python", "-c", "print(1)"]),
                None,
                Ok(&["/v/bin/python", "-c", "print(1)"]),
            ),
            (
                "python:3.11",
                Some(&["/usr/local/bin/python3", "job.py"]),
                None,
                Ok(&["/v/bin/python3", "job.py"]),
            ),
            (
                "python:3.11",
                Some(&["sh", "-c", "exit 1"]),
                None,
                Ok(&["/bin/sh", "-c", "exit 1"]),
            ),
            ("python:3.11", Some(&["nosuch"]), None, Err("not found")),
            (
                "nginx:1.27",
                None,
                None,
                Err("not in the local node agent's image table"),
            ),
        ];
        for (image, cmd, args, want) in cases {
            let cmd = cmd.map(s);
            let args = args.map(s);
            let got = t.resolve(image, cmd.as_deref(), args.as_deref(), exists);
            match (got, want) {
                (Ok(r), Ok(argv)) => assert_eq!(r.argv, s(argv), "{image}"),
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{image}: {e}"),
                (got, want) => panic!("{image}: got {got:?}, want {want:?}"),
            }
        }
        let r = t
            .resolve("modelpilot/modelpilot", None, None, exists)
            .expect("resolves");
        assert_eq!(
            r.env[0],
            ("ORT_DYLIB_PATH".into(), "/v/libonnxruntime.so".into())
        );
        assert!(r.env[1].1.starts_with("/w/target/debug:/usr/local/sbin"));
        assert_eq!(r.keep, [PathBuf::from("/w/target/debug/modelpilot")]);
    }
}
