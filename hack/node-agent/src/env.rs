//! A container's environment as the kubelet composes it: `envFrom` (ConfigMaps and Secrets,
//! with prefixes), then `env` in order with `$(VAR)` references expanded, values from Secrets,
//! ConfigMaps and the downward API; and the same expansion for `command` and `args`. The
//! objects are fetched first ([`fetch`]); composing is pure ([`compose`]).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::Client;

use crate::volumes;

/// The data of the ConfigMaps and Secrets a container refers to (absent when not found).
#[derive(Debug, Default, Clone)]
pub struct Sources {
    pub config_maps: BTreeMap<String, BTreeMap<String, String>>,
    pub secrets: BTreeMap<String, BTreeMap<String, String>>,
}

/// Names of the ConfigMaps and Secrets a container's environment refers to.
pub fn referenced(c: &Container) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut cms, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    for from in c.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            cms.insert(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            secrets.insert(r.name.clone());
        }
    }
    for var in c.env.iter().flatten() {
        if let Some(src) = &var.value_from {
            if let Some(r) = &src.config_map_key_ref {
                cms.insert(r.name.clone());
            }
            if let Some(r) = &src.secret_key_ref {
                secrets.insert(r.name.clone());
            }
        }
    }
    (cms, secrets)
}

/// Reads the referenced objects; one that does not exist is left out (and an `optional: false`
/// reference to it then fails the container with CreateContainerConfigError, as in a cluster).
pub async fn fetch(
    client: &Client,
    namespace: &str,
    cms: &BTreeSet<String>,
    secrets: &BTreeSet<String>,
) -> Result<Sources, String> {
    let text = |data: BTreeMap<String, Vec<u8>>| -> BTreeMap<String, String> {
        data.into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
            .collect()
    };
    let mut sources = Sources::default();
    for name in cms {
        if let Some(data) = volumes::config_map_data(client, namespace, name).await? {
            sources.config_maps.insert(name.clone(), text(data));
        }
    }
    for name in secrets {
        if let Some(data) = volumes::secret_data(client, namespace, name).await? {
            sources.secrets.insert(name.clone(), text(data));
        }
    }
    Ok(sources)
}

/// Pod facts the downward API exposes.
#[derive(Debug, Clone, Default)]
pub struct PodFacts {
    pub pod_ip: String,
    pub host_ip: String,
}

/// Expands `$(NAME)` with the variables defined so far; `$$(NAME)` stays as `$(NAME)`; an
/// unknown reference stays as written (the kubelet's rules).
///
/// ```text
/// vars {A=1}: "x$(A)y" → "x1y", "$(B)" → "$(B)", "$$(A)" → "$(A)", "$A" → "$A"
/// ```
pub fn expand(input: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("$(") {
            out.push_str("$(");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(') {
            match tail.find(')') {
                Some(end) => {
                    let name = &tail[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field(pod: &Pod, facts: &PodFacts, path: &str) -> Result<String, String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let keyed = |prefix: &str, map: Option<&BTreeMap<String, String>>| -> Option<String> {
        let key = path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    if let Some(v) = keyed("metadata.labels['", meta.labels.as_ref()) {
        return Ok(v);
    }
    if let Some(v) = keyed("metadata.annotations['", meta.annotations.as_ref()) {
        return Ok(v);
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => facts.pod_ip.clone(),
        "status.hostIP" | "status.hostIPs" => facts.host_ip.clone(),
        other => return Err(format!("unsupported fieldRef {other}")),
    })
}

fn lookup(
    kind: &str,
    store: &BTreeMap<String, BTreeMap<String, String>>,
    name: &str,
    key: &str,
    optional: bool,
) -> Result<Option<String>, String> {
    match store.get(name) {
        None if optional => Ok(None),
        None => Err(format!("{kind} \"{name}\" not found")),
        Some(data) => match data.get(key) {
            Some(v) => Ok(Some(v.clone())),
            None if optional => Ok(None),
            None => Err(format!("couldn't find key {key} in {kind} \"{name}\"")),
        },
    }
}

/// The container's environment (image env first, then `envFrom`, then `env`), and its argv with
/// `$(VAR)` expanded. An error is the CreateContainerConfigError message.
pub fn compose(
    c: &Container,
    pod: &Pod,
    facts: &PodFacts,
    sources: &Sources,
    image_env: &[(String, String)],
) -> Result<BTreeMap<String, String>, String> {
    let mut vars: BTreeMap<String, String> = image_env.iter().cloned().collect();
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let (kind, store, name, optional) = if let Some(r) = &from.config_map_ref {
            (
                "configmap",
                &sources.config_maps,
                &r.name,
                r.optional.unwrap_or(false),
            )
        } else if let Some(r) = &from.secret_ref {
            (
                "secret",
                &sources.secrets,
                &r.name,
                r.optional.unwrap_or(false),
            )
        } else {
            continue;
        };
        match store.get(name) {
            Some(data) => {
                for (k, v) in data {
                    vars.insert(format!("{prefix}{k}"), v.clone());
                }
            }
            None if optional => {}
            None => return Err(format!("{kind} \"{name}\" not found")),
        }
    }
    for var in c.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => Some(expand(v, &vars)),
            (None, Some(src)) => {
                if let Some(r) = &src.field_ref {
                    Some(field(pod, facts, &r.field_path)?)
                } else if let Some(r) = &src.config_map_key_ref {
                    lookup(
                        "configmap",
                        &sources.config_maps,
                        &r.name,
                        &r.key,
                        r.optional.unwrap_or(false),
                    )?
                } else if let Some(r) = &src.secret_key_ref {
                    lookup(
                        "secret",
                        &sources.secrets,
                        &r.name,
                        &r.key,
                        r.optional.unwrap_or(false),
                    )?
                } else if src.resource_field_ref.is_some() {
                    // No resource accounting here: limits read as unset ("0").
                    Some("0".into())
                } else {
                    return Err(format!("env {}: unsupported valueFrom", var.name));
                }
            }
            (None, None) => Some(String::new()),
        };
        if let Some(value) = value {
            vars.insert(var.name.clone(), value);
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ConfigMapEnvSource, ConfigMapKeySelector, EnvFromSource, EnvVar, EnvVarSource,
        ObjectFieldSelector, PodSpec, SecretKeySelector,
    };
    use kube::api::ObjectMeta;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn expansion_rules() {
        let v = vars(&[("A", "1"), ("B", "two")]);
        for (input, want) in [
            ("x$(A)y", "x1y"),
            ("$(A)$(B)", "1two"),
            ("$(C)", "$(C)"),
            ("$$(A)", "$(A)"),
            ("$A", "$A"),
            ("$(A", "$(A"),
            ("cost $5", "cost $5"),
            ("", ""),
        ] {
            assert_eq!(expand(input, &v), want, "{input}");
        }
    }

    fn env(name: &str, value: Option<&str>, from: Option<EnvVarSource>) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: value.map(Into::into),
            value_from: from,
        }
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("iris-abc".into()),
                namespace: Some("ml".into()),
                labels: Some(vars(&[("modelpilot.io/revision", "r1")])),
                ..Default::default()
            },
            spec: Some(PodSpec {
                node_name: Some("modelpilot-node-0".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn composes_downward_api_secrets_configmaps_and_references() {
        let field_ref = |p: &str| EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: p.into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let c = Container {
            name: "c".into(),
            env_from: Some(vec![EnvFromSource {
                prefix: Some("CFG_".into()),
                config_map_ref: Some(ConfigMapEnvSource {
                    name: "cfg".into(),
                    optional: None,
                }),
                ..Default::default()
            }]),
            env: Some(vec![
                env("POD", None, Some(field_ref("metadata.name"))),
                env(
                    "REV",
                    None,
                    Some(field_ref("metadata.labels['modelpilot.io/revision']")),
                ),
                env("IP", None, Some(field_ref("status.podIP"))),
                env(
                    "TOKEN",
                    None,
                    Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: "s".into(),
                            key: "token".into(),
                            optional: None,
                        }),
                        ..Default::default()
                    }),
                ),
                env(
                    "MISSING_OK",
                    None,
                    Some(EnvVarSource {
                        config_map_key_ref: Some(ConfigMapKeySelector {
                            name: "nope".into(),
                            key: "k".into(),
                            optional: Some(true),
                        }),
                        ..Default::default()
                    }),
                ),
                env("URL", Some("http://$(IP):8080/$(CFG_path)"), None),
            ]),
            ..Default::default()
        };
        let mut sources = Sources::default();
        sources
            .config_maps
            .insert("cfg".into(), vars(&[("path", "v2")]));
        sources
            .secrets
            .insert("s".into(), vars(&[("token", "t0k")]));
        let facts = PodFacts {
            pod_ip: "10.244.128.9".into(),
            host_ip: "10.244.128.1".into(),
        };
        let got = compose(
            &c,
            &pod(),
            &facts,
            &sources,
            &[("PATH".into(), "/bin".into())],
        )
        .expect("composes");
        let want = vars(&[
            ("PATH", "/bin"),
            ("CFG_path", "v2"),
            ("POD", "iris-abc"),
            ("REV", "r1"),
            ("IP", "10.244.128.9"),
            ("TOKEN", "t0k"),
            ("URL", "http://10.244.128.9:8080/v2"),
        ]);
        assert_eq!(got, want);
    }

    #[test]
    fn missing_required_references_are_config_errors() {
        let c = Container {
            name: "c".into(),
            env: Some(vec![env(
                "X",
                None,
                Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "absent".into(),
                        key: "k".into(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            )]),
            ..Default::default()
        };
        let err =
            compose(&c, &pod(), &PodFacts::default(), &Sources::default(), &[]).expect_err("fails");
        assert_eq!(err, "secret \"absent\" not found");
        let (cms, secrets) = referenced(&c);
        assert!(cms.is_empty());
        assert_eq!(
            secrets.into_iter().collect::<Vec<_>>(),
            vec!["absent".to_string()]
        );
    }
}
