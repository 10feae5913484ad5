//! Fetching the model file (and the baseline profile, which follows the model wherever it
//! is kept): a local path or `file://` URI is used in place; `https://` and `s3://` objects
//! are streamed into the cache directory (temp file + rename, so a crash never leaves a
//! half-written file under the final name), size-limited and, when a digest is given,
//! SHA-256 verified. One code path for both, so they accept the same URIs and credentials.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// Where downloads go and how far they may go.
#[derive(Clone, Debug)]
pub struct SourceLimits {
    pub cache_dir: PathBuf,
    pub max_bytes: u64,
    pub connect_timeout: Duration,
    pub timeout: Duration,
}

/// What is fetched: it names the file in errors and the digest flag, and gives the cached
/// copy its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Artifact {
    Model,
    Profile,
}

impl Artifact {
    fn noun(self) -> &'static str {
        match self {
            Artifact::Model => "model",
            Artifact::Profile => "baseline profile",
        }
    }

    fn digest_flag(self) -> &'static str {
        match self {
            Artifact::Model => "--sha256",
            Artifact::Profile => "--baseline-profile-sha256",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Artifact::Model => "onnx",
            Artifact::Profile => "json",
        }
    }

    /// What an empty file is not.
    fn expected(self) -> &'static str {
        match self {
            Artifact::Model => "an ONNX model",
            Artifact::Profile => "a baseline profile",
        }
    }
}

/// Why the model file (or profile) cannot be obtained.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "unsupported {} URI '{uri}' (use a path, file://, https:// or s3://bucket/key)",
        what.noun()
    )]
    Scheme { what: Artifact, uri: String },
    #[error("{} file {path} not found", what.noun())]
    NotFound { what: Artifact, path: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{} must be 64 hex digits, got '{digest}'", what.digest_flag())]
    BadDigest { what: Artifact, digest: String },
    #[error("checksum mismatch for {uri}: expected sha256 {expected}, got {actual}")]
    Checksum {
        uri: String,
        expected: String,
        actual: String,
    },
    #[error("{} at {uri} is larger than the limit of {limit} bytes", what.noun())]
    TooBig {
        what: Artifact,
        uri: String,
        limit: u64,
    },
    #[error("downloading {uri}: {message}")]
    Download { uri: String, message: String },
    #[error("downloading {uri}: HTTP status {status}")]
    Status { uri: String, status: u16 },
    #[error("{uri} is empty, not {}", what.expected())]
    Empty { what: Artifact, uri: String },
}

/// Resolves `uri` to a local file holding the verified model.
pub async fn fetch(
    uri: &str,
    sha256: Option<&str>,
    limits: &SourceLimits,
) -> Result<PathBuf, SourceError> {
    fetch_artifact(Artifact::Model, uri, sha256, limits).await
}

/// Resolves `uri` to a local file holding the verified `what`. A local profile larger than
/// the limit is refused too (a local model is used whatever its size, as before).
pub async fn fetch_artifact(
    what: Artifact,
    uri: &str,
    sha256: Option<&str>,
    limits: &SourceLimits,
) -> Result<PathBuf, SourceError> {
    let expected = sha256.map(|d| normalize_digest(what, d)).transpose()?;
    let expected = expected.as_deref();
    let remote =
        uri.starts_with("https://") || uri.starts_with("http://") || uri.starts_with("s3://");
    if remote {
        let target = cache_path(what, uri, limits);
        if let Some(expected) = expected
            && verify_local(what, &target, Some(expected), None)
                .await
                .is_ok()
        {
            tracing::info!(path = %target.display(), "{} found in cache", what.noun());
            return Ok(target);
        }
        let stream = match uri.strip_prefix("s3://") {
            Some(rest) => s3_stream(what, uri, rest).await?,
            None => http_stream(what, uri, limits).await?,
        };
        return download(what, uri, expected, limits, stream).await;
    }
    let path = match uri.strip_prefix("file://") {
        Some(path) => PathBuf::from(path),
        None if uri.contains("://") => {
            let uri = uri.into();
            return Err(SourceError::Scheme { what, uri });
        }
        None => PathBuf::from(uri),
    };
    let max = (what == Artifact::Profile).then_some(limits.max_bytes);
    verify_local(what, &path, expected, max).await?;
    Ok(path)
}

/// Where the download of `uri` is kept (named by the hash of the URI).
fn cache_path(what: Artifact, uri: &str, limits: &SourceLimits) -> PathBuf {
    let key = hex::encode(Sha256::digest(uri.as_bytes()));
    let name = format!("{}.{}", &key[..24], what.extension());
    limits.cache_dir.join(name)
}

fn normalize_digest(what: Artifact, digest: &str) -> Result<String, SourceError> {
    let digest = digest.trim().to_ascii_lowercase();
    let digest = digest.strip_prefix("sha256:").unwrap_or(&digest).to_owned();
    if digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(digest)
    } else {
        Err(SourceError::BadDigest { what, digest })
    }
}

/// Checks a local file: present, not empty, at most `max_bytes` when given, and of the
/// expected digest when given.
async fn verify_local(
    what: Artifact,
    path: &Path,
    expected: Option<&str>,
    max_bytes: Option<u64>,
) -> Result<(), SourceError> {
    let shown = path.display().to_string();
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => SourceError::NotFound {
            what,
            path: shown.clone(),
        },
        _ => SourceError::Io {
            path: shown.clone(),
            source,
        },
    };
    let meta = tokio::fs::metadata(path).await.map_err(io)?;
    if meta.len() == 0 {
        return Err(SourceError::Empty { what, uri: shown });
    }
    if let Some(limit) = max_bytes.filter(|max| meta.len() > *max) {
        return Err(SourceError::TooBig {
            what,
            uri: shown,
            limit,
        });
    }
    if let Some(expected) = expected {
        let bytes = tokio::fs::read(path).await.map_err(io)?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if actual != expected {
            return Err(SourceError::Checksum {
                uri: shown,
                expected: expected.into(),
                actual,
            });
        }
    }
    Ok(())
}

type ByteStream = std::pin::Pin<Box<dyn Stream<Item = Result<bytes::Bytes, String>> + Send>>;

async fn http_stream(
    what: Artifact,
    uri: &str,
    limits: &SourceLimits,
) -> Result<ByteStream, SourceError> {
    let err = |message: String| SourceError::Download {
        uri: uri.into(),
        message,
    };
    let client = reqwest::Client::builder()
        .connect_timeout(limits.connect_timeout)
        .timeout(limits.timeout)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let response = client
        .get(uri)
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        let path = uri.into();
        return Err(SourceError::NotFound { what, path });
    }
    if !status.is_success() {
        return Err(SourceError::Status {
            uri: uri.into(),
            status: status.as_u16(),
        });
    }
    if response
        .content_length()
        .is_some_and(|len| len > limits.max_bytes)
    {
        return Err(SourceError::TooBig {
            what,
            uri: uri.into(),
            limit: limits.max_bytes,
        });
    }
    Ok(Box::pin(
        response
            .bytes_stream()
            .map(|r| r.map_err(|e| e.to_string())),
    ))
}

/// Opens `s3://bucket/key` with credentials, region and endpoint from the standard AWS
/// environment variables (`AWS_ACCESS_KEY_ID`, `AWS_REGION`, `AWS_ENDPOINT_URL`, …).
async fn s3_stream(what: Artifact, uri: &str, rest: &str) -> Result<ByteStream, SourceError> {
    use object_store::{ObjectStore, aws::AmazonS3Builder, path::Path as ObjectPath};
    let err = |message: String| SourceError::Download {
        uri: uri.into(),
        message,
    };
    let (bucket, key) = rest
        .split_once('/')
        .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        .ok_or_else(|| SourceError::Scheme {
            what,
            uri: uri.into(),
        })?;
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Ok(endpoint) =
        std::env::var("AWS_ENDPOINT_URL_S3").or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
    {
        builder = builder
            .with_endpoint(&endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    let store = builder.build().map_err(|e| err(e.to_string()))?;
    let result = store
        .get(&ObjectPath::from(key))
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => SourceError::NotFound {
                what,
                path: uri.into(),
            },
            other => err(other.to_string()),
        })?;
    Ok(Box::pin(
        result.into_stream().map(|r| r.map_err(|e| e.to_string())),
    ))
}

/// Streams `body` into the cache (temp file, hashing as it goes), then renames it into place.
async fn download(
    what: Artifact,
    uri: &str,
    expected: Option<&str>,
    limits: &SourceLimits,
    mut body: ByteStream,
) -> Result<PathBuf, SourceError> {
    let dir = &limits.cache_dir;
    let io = |path: &Path, source| SourceError::Io {
        path: path.display().to_string(),
        source,
    };
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| io(dir, e))?;
    let target = cache_path(what, uri, limits);
    let mut temp_name = target.file_name().unwrap_or_default().to_os_string();
    temp_name.push(format!(".{}.part", std::process::id()));
    let temp = dir.join(temp_name);
    let mut file = tokio::fs::File::create(&temp)
        .await
        .map_err(|e| io(&temp, e))?;
    let mut hasher = Sha256::new();
    let mut written: u64 = 0;
    let result = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|message| SourceError::Download {
                uri: uri.into(),
                message,
            })?;
            written += chunk.len() as u64;
            if written > limits.max_bytes {
                return Err(SourceError::TooBig {
                    what,
                    uri: uri.into(),
                    limit: limits.max_bytes,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(|e| io(&temp, e))?;
        }
        file.sync_all().await.map_err(|e| io(&temp, e))
    }
    .await;
    let checked = result.and_then(|()| check_download(what, uri, expected, written, hasher));
    if let Err(e) = checked {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(e);
    }
    tokio::fs::rename(&temp, &target)
        .await
        .map_err(|e| io(&target, e))?;
    let noun = what.noun();
    tracing::info!(uri, bytes = written, path = %target.display(), "{noun} downloaded");
    Ok(target)
}

fn check_download(
    what: Artifact,
    uri: &str,
    expected: Option<&str>,
    written: u64,
    hasher: Sha256,
) -> Result<(), SourceError> {
    if written == 0 {
        return Err(SourceError::Empty {
            what,
            uri: uri.into(),
        });
    }
    let actual = hex::encode(hasher.finalize());
    match expected {
        Some(expected) if expected != actual => Err(SourceError::Checksum {
            uri: uri.into(),
            expected: expected.into(),
            actual,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(dir: &Path) -> SourceLimits {
        SourceLimits {
            cache_dir: dir.to_path_buf(),
            max_bytes: 16,
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn digests() {
        let d = "A".repeat(64);
        let m = Artifact::Model;
        assert_eq!(normalize_digest(m, &d).ok(), Some("a".repeat(64)));
        assert!(normalize_digest(m, &format!("sha256:{}", "0".repeat(64))).is_ok());
        assert!(normalize_digest(m, "abc").is_err());
        assert!(normalize_digest(m, &"g".repeat(64)).is_err());
        let err = normalize_digest(Artifact::Profile, "abc").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("--baseline-profile-sha256 must be 64 hex digits")
        );
    }

    #[tokio::test]
    async fn local_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("m.onnx");
        std::fs::write(&path, b"onnx").expect("write");
        let digest = hex::encode(Sha256::digest(b"onnx"));
        let uri = path.display().to_string();
        let l = limits(dir.path());
        assert!(fetch(&uri, Some(&digest), &l).await.is_ok());
        assert!(fetch(&format!("file://{uri}"), None, &l).await.is_ok());
        let wrong = "0".repeat(64);
        assert!(matches!(
            fetch(&uri, Some(&wrong), &l).await,
            Err(SourceError::Checksum { .. })
        ));
        assert!(matches!(
            fetch("/nonexistent/x.onnx", None, &l).await,
            Err(SourceError::NotFound { .. })
        ));
        assert!(matches!(
            fetch("ftp://x/y", None, &l).await,
            Err(SourceError::Scheme { .. })
        ));
    }

    #[tokio::test]
    async fn profiles_are_named_and_limited_even_when_local() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = limits(dir.path());
        let big = dir.path().join("big.json");
        std::fs::write(&big, [b'x'; 17]).expect("write");
        let big = big.display().to_string();
        let p = Artifact::Profile;
        let cases = [
            (
                p,
                "/nonexistent/p.json",
                "baseline profile file /nonexistent/p.json not found",
            ),
            (p, big.as_str(), "baseline profile at "),
            (p, "gs://b/p.json", "unsupported baseline profile URI"),
            (p, "s3://bucket-only", "unsupported baseline profile URI"),
        ];
        for (what, uri, want) in cases {
            let err = fetch_artifact(what, uri, None, &l).await.unwrap_err();
            assert!(err.to_string().contains(want), "{uri}: {err}");
        }
        assert!(
            fetch(&big, None, &l).await.is_ok(),
            "local models are not size-limited"
        );
        let path = cache_path(p, "s3://b/p.json", &l);
        assert_eq!(path.extension().and_then(|e| e.to_str()), Some("json"));
    }

    #[tokio::test]
    async fn downloads_are_limited_and_atomic() {
        let dir = tempfile::tempdir().expect("tempdir");
        let l = limits(dir.path());
        let chunks = |n: usize| -> ByteStream {
            Box::pin(futures::stream::iter(
                (0..n).map(|_| Ok(bytes::Bytes::from_static(b"12345678"))),
            ))
        };
        let too_big = download(Artifact::Model, "s3://b/k", None, &l, chunks(3)).await;
        assert!(matches!(too_big, Err(SourceError::TooBig { .. })));
        assert_eq!(
            std::fs::read_dir(dir.path())
                .map(|d| d.count())
                .unwrap_or(99),
            0,
            "temp file removed"
        );
        let digest = hex::encode(Sha256::digest(b"1234567812345678"));
        let path = download(Artifact::Model, "s3://b/k", Some(&digest), &l, chunks(2))
            .await
            .expect("downloads");
        assert_eq!(
            std::fs::read(&path).ok().as_deref(),
            Some(&b"1234567812345678"[..])
        );
        let bad = download(
            Artifact::Model,
            "s3://b/k2",
            Some(&"0".repeat(64)),
            &l,
            chunks(1),
        )
        .await;
        assert!(matches!(bad, Err(SourceError::Checksum { .. })));
    }
}
