//! Pod volumes as host directories: `emptyDir` becomes a directory in the pod's state directory,
//! `hostPath` the host path itself; `configMap`, `secret`, `downwardAPI` and `projected` volumes
//! (the ServiceAccount token volume every pod gets included) are written out as files. Each
//! container then sees them at its mount paths through bind mounts (see `trampoline`). Any other
//! volume type fails the pod's containers with CreateContainerConfigError, naming the type.

use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
};

use k8s_openapi::api::{
    authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec},
    core::v1::{
        ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume,
        VolumeMount,
    },
};
use kube::{Api, Client, ResourceExt, api::PostParams};

use crate::{env::PodFacts, trampoline::Bind};

/// Host directories of a pod's volumes, by volume name.
pub type Prepared = BTreeMap<String, PathBuf>;

/// Makes every volume of the pod exist on the host. Errors are the containers' config error.
pub async fn prepare(
    client: &Client,
    pod: &Pod,
    pod_dir: &Path,
    facts: &PodFacts,
) -> Result<Prepared, String> {
    let mut out = Prepared::new();
    let ns = pod.namespace().unwrap_or_default();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let dir = pod_dir.join("volumes").join(&v.name);
        let path = prepare_one(client, pod, &ns, v, &dir, facts)
            .await
            .map_err(|e| format!("volume \"{}\": {e}", v.name))?;
        out.insert(v.name.clone(), path);
    }
    Ok(out)
}

async fn prepare_one(
    client: &Client,
    pod: &Pod,
    ns: &str,
    v: &Volume,
    dir: &Path,
    facts: &PodFacts,
) -> Result<PathBuf, String> {
    let io = |e: std::io::Error| e.to_string();
    if v.empty_dir.is_some() {
        fs::create_dir_all(dir).map_err(io)?;
        return Ok(dir.into());
    }
    if let Some(hp) = &v.host_path {
        let path = PathBuf::from(&hp.path);
        match hp.type_.as_deref().unwrap_or("") {
            "DirectoryOrCreate" => fs::create_dir_all(&path).map_err(io)?,
            "FileOrCreate" if !path.exists() => {
                if let Some(parent) = path.parent() {
                    fs::create_dir_all(parent).map_err(io)?;
                }
                fs::File::create(&path).map_err(io)?;
            }
            "Directory" if !path.is_dir() => {
                return Err(format!("hostPath {} is not a directory", hp.path));
            }
            "File" if !path.is_file() => return Err(format!("hostPath {} is not a file", hp.path)),
            _ => {}
        }
        return Ok(path);
    }
    let Some(projections) = projections(v) else {
        return Err("this volume type is not supported by the local node agent (emptyDir, hostPath, configMap, secret, downwardAPI and projected are)".into());
    };
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for p in &projections {
        project(client, pod, ns, facts, p, &mut files).await?;
    }
    write_files(dir, &files).map_err(io)?;
    Ok(dir.into())
}

fn write_files(dir: &Path, files: &BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    for (rel, bytes) in files {
        if rel.split('/').any(|part| part == "..") || rel.starts_with('/') {
            continue;
        }
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(path, bytes)?;
    }
    Ok(())
}

fn select(
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    files: &mut BTreeMap<String, Vec<u8>>,
) {
    match items {
        Some(items) => {
            for item in items {
                if let Some(bytes) = data.get(&item.key) {
                    files.insert(item.path.clone(), bytes.clone());
                }
            }
        }
        None => files.extend(data),
    }
}

/// One source of a volume's files: a `configMap`, `secret` or `downwardAPI` volume is one of
/// these, a `projected` volume a list of them.
enum Projection<'a> {
    ConfigMap {
        name: &'a str,
        items: Option<&'a [KeyToPath]>,
        optional: bool,
    },
    Secret {
        name: &'a str,
        items: Option<&'a [KeyToPath]>,
        optional: bool,
    },
    Downward(Option<&'a [DownwardAPIVolumeFile]>),
    Token {
        path: &'a str,
        expiration: Option<i64>,
        audience: Option<String>,
    },
}

/// The file sources of a volume; `None` for a type the agent does not write out.
fn projections(v: &Volume) -> Option<Vec<Projection<'_>>> {
    if let Some(cm) = &v.config_map {
        return Some(vec![Projection::ConfigMap {
            name: &cm.name,
            items: cm.items.as_deref(),
            optional: cm.optional.unwrap_or(false),
        }]);
    }
    if let Some(s) = &v.secret {
        return Some(vec![Projection::Secret {
            name: s.secret_name.as_deref().unwrap_or_default(),
            items: s.items.as_deref(),
            optional: s.optional.unwrap_or(false),
        }]);
    }
    if let Some(d) = &v.downward_api {
        return Some(vec![Projection::Downward(d.items.as_deref())]);
    }
    let p = v.projected.as_ref()?;
    let mut out = Vec::new();
    for src in p.sources.iter().flatten() {
        if let Some(cm) = &src.config_map {
            out.push(Projection::ConfigMap {
                name: &cm.name,
                items: cm.items.as_deref(),
                optional: cm.optional.unwrap_or(false),
            });
        }
        if let Some(s) = &src.secret {
            out.push(Projection::Secret {
                name: &s.name,
                items: s.items.as_deref(),
                optional: s.optional.unwrap_or(false),
            });
        }
        if let Some(d) = &src.downward_api {
            out.push(Projection::Downward(d.items.as_deref()));
        }
        if let Some(t) = &src.service_account_token {
            out.push(Projection::Token {
                path: &t.path,
                expiration: t.expiration_seconds,
                audience: t.audience.clone(),
            });
        }
    }
    Some(out)
}

/// Adds one source's files.
async fn project(
    client: &Client,
    pod: &Pod,
    ns: &str,
    facts: &PodFacts,
    p: &Projection<'_>,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    let (kind, name, items, optional, data) = match p {
        Projection::ConfigMap {
            name,
            items,
            optional,
        } => (
            "configmap",
            *name,
            *items,
            *optional,
            config_map_data(client, ns, name).await?,
        ),
        Projection::Secret {
            name,
            items,
            optional,
        } => (
            "secret",
            *name,
            *items,
            *optional,
            secret_data(client, ns, name).await?,
        ),
        Projection::Downward(items) => return downward_files(pod, facts, *items, files),
        Projection::Token {
            path,
            expiration,
            audience,
        } => {
            let token =
                service_account_token(client, pod, ns, *expiration, audience.clone()).await?;
            files.insert((*path).to_owned(), token.into_bytes());
            return Ok(());
        }
    };
    match data {
        Some(data) => select(data, items, files),
        None if optional => {}
        None => return Err(format!("{kind} \"{name}\" not found")),
    }
    Ok(())
}

/// A ConfigMap's data and binaryData, or `None` when it does not exist.
pub async fn config_map_data(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm = api.get_opt(name).await.map_err(|e| e.to_string())?;
    Ok(cm.map(|cm| {
        let text = cm
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()));
        let binary = cm
            .binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0));
        text.chain(binary).collect()
    }))
}

/// A Secret's data, or `None` when it does not exist.
pub async fn secret_data(
    client: &Client,
    ns: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, String> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = api.get_opt(name).await.map_err(|e| e.to_string())?;
    Ok(secret.map(|s| {
        s.data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect()
    }))
}

/// The files of a downward API volume (or projection): one per item with a fieldRef.
fn downward_files(
    pod: &Pod,
    facts: &PodFacts,
    items: Option<&[DownwardAPIVolumeFile]>,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), String> {
    for item in items.unwrap_or_default() {
        if let Some(f) = &item.field_ref {
            files.insert(
                item.path.clone(),
                downward(pod, facts, &f.field_path)?.into_bytes(),
            );
        }
    }
    Ok(())
}

fn downward(pod: &Pod, facts: &PodFacts, path: &str) -> Result<String, String> {
    let map = |m: Option<&BTreeMap<String, String>>| {
        m.map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}=\"{v}\"\n"))
                .collect::<String>()
        })
        .unwrap_or_default()
    };
    match path {
        "metadata.labels" => Ok(map(pod.metadata.labels.as_ref())),
        "metadata.annotations" => Ok(map(pod.metadata.annotations.as_ref())),
        _ => {
            let env = k8s_openapi::api::core::v1::Container {
                env: Some(vec![k8s_openapi::api::core::v1::EnvVar {
                    name: "V".into(),
                    value_from: Some(k8s_openapi::api::core::v1::EnvVarSource {
                        field_ref: Some(k8s_openapi::api::core::v1::ObjectFieldSelector {
                            field_path: path.into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            };
            let vars = crate::env::compose(&env, pod, facts, &Default::default(), &[])?;
            Ok(vars.get("V").cloned().unwrap_or_default())
        }
    }
}

/// A token for the pod's ServiceAccount, bound to the pod (as the kubelet requests it).
async fn service_account_token(
    client: &Client,
    pod: &Pod,
    ns: &str,
    expiration: Option<i64>,
    audience: Option<String>,
) -> Result<String, String> {
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: audience.map(|a| vec![a]),
            expiration_seconds: Some(expiration.unwrap_or(3600)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(pod.name_any()),
                uid: pod.uid(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let got = api
        .create_token_request(&sa, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("token for serviceaccount {sa}: {e}"))?;
    Ok(got.status.and_then(|s| s.token).unwrap_or_default())
}

/// The bind mounts of a container: each volumeMount (with its subPath) at its mount path.
pub fn binds(mounts: &[VolumeMount], prepared: &Prepared) -> Result<Vec<Bind>, String> {
    mounts
        .iter()
        .map(|m| {
            let base = prepared
                .get(&m.name)
                .ok_or_else(|| format!("volumeMount \"{}\": no volume of that name", m.name))?;
            let source = match m.sub_path.as_deref() {
                Some(sub) if !sub.is_empty() => {
                    if sub.split('/').any(|p| p == "..") || sub.starts_with('/') {
                        return Err(format!(
                            "volumeMount \"{}\": subPath must be relative",
                            m.name
                        ));
                    }
                    base.join(sub)
                }
                _ => base.clone(),
            };
            Ok(Bind {
                source,
                target: PathBuf::from(&m.mount_path),
                read_only: m.read_only.unwrap_or(false),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_follow_mounts_and_sub_paths() {
        let prepared: Prepared =
            [("cache".to_string(), PathBuf::from("/s/p/volumes/cache"))].into();
        let m = |name: &str, path: &str, sub: Option<&str>, ro: bool| VolumeMount {
            name: name.into(),
            mount_path: path.into(),
            sub_path: sub.map(Into::into),
            read_only: Some(ro),
            ..Default::default()
        };
        let got = binds(
            &[
                m("cache", "/var/cache/x", None, false),
                m("cache", "/etc/x.conf", Some("conf/x"), true),
            ],
            &prepared,
        )
        .expect("binds");
        assert_eq!(got[0].to_flag(), "/s/p/volumes/cache=/var/cache/x");
        assert_eq!(got[1].to_flag(), "/s/p/volumes/cache/conf/x=/etc/x.conf=ro");
        assert!(binds(&[m("nope", "/x", None, false)], &prepared).is_err());
        assert!(binds(&[m("cache", "/x", Some("../etc"), false)], &prepared).is_err());
    }

    #[test]
    fn files_stay_inside_the_volume() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files: BTreeMap<String, Vec<u8>> = [
            ("a".to_string(), b"1".to_vec()),
            ("sub/b".to_string(), b"2".to_vec()),
            ("../escape".to_string(), b"3".to_vec()),
        ]
        .into();
        write_files(dir.path(), &files).expect("writes");
        assert_eq!(fs::read(dir.path().join("sub/b")).expect("b"), b"2");
        assert!(!dir.path().parent().expect("parent").join("escape").exists());
    }
}
