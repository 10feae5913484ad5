//! The node agent as a kubelet, on plain pods (no operator): what later tests and users rely on
//! beyond the inference server — init containers in order, a native sidecar in the pod's network
//! namespace, environment from ConfigMaps, Secrets and the downward API with `$(VAR)` expansion,
//! an emptyDir shared between containers, liveness probes that restart, and an image outside the
//! agent's table failing the way an unpullable image does.
//!
//! Needs `make cluster-up` as root; `make test` provides it.

mod common;
mod real_support;

use std::{collections::BTreeMap, time::Duration};

use common::{WAIT, in_namespace};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{ObjectMeta, PostParams};
use real_support::{describe, wait_pods};

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).expect("pod manifest")
}

fn phase(p: &Pod) -> Option<&str> {
    p.status.as_ref()?.phase.as_deref()
}

const MAIN: &str = r#"
import os, socket
init = open('/work/init.txt').read()
s = socket.create_connection(('127.0.0.1', 9000), timeout=5)
s.sendall(b'GET / HTTP/1.0\r\n\r\n')
status = s.recv(64).split(b' ')[1].decode()
fields = [init, os.environ['GREETING'], os.environ['TOKEN'], os.environ['POD'], os.environ['MSG'], status]
open('/dev/termination-log', 'w').write('|'.join(fields))
"#;

#[tokio::test]
async fn init_containers_a_sidecar_env_and_volumes_work_as_on_a_kubelet() {
    in_namespace("mp-kubelet", |ns| async move {
        let cm = ConfigMap {
            metadata: ObjectMeta { name: Some("cfg".into()), ..Default::default() },
            data: Some(data(&[("greeting", "hello")])),
            ..Default::default()
        };
        ns.api::<ConfigMap>().create(&PostParams::default(), &cm).await.expect("configmap");
        let secret = Secret {
            metadata: ObjectMeta { name: Some("creds".into()), ..Default::default() },
            string_data: Some(data(&[("token", "t0k")])),
            ..Default::default()
        };
        ns.api::<Secret>().create(&PostParams::default(), &secret).await.expect("secret");
        let manifest = pod(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "steps"},
            "spec": {
                "restartPolicy": "Never",
                "volumes": [{"name": "work", "emptyDir": {}}],
                "initContainers": [
                    {"name": "init", "image": "python:3.11",
                     "command": ["python", "-c", "open('/work/init.txt', 'w').write('from-init')"],
                     "volumeMounts": [{"name": "work", "mountPath": "/work"}]},
                    {"name": "sidecar", "image": "python:3.11", "restartPolicy": "Always",
                     "command": ["python", "-m", "http.server", "9000", "--bind", "0.0.0.0"],
                     "startupProbe": {"tcpSocket": {"port": 9000}, "periodSeconds": 1, "failureThreshold": 30}}
                ],
                "containers": [{
                    "name": "main", "image": "python:3.11", "command": ["python", "-c", MAIN],
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                    "env": [
                        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}}},
                        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "MSG", "value": "$(GREETING) world"}
                    ]
                }]
            }
        }));
        let pods = ns.api::<Pod>();
        pods.create(&PostParams::default(), &manifest).await.expect("create pod");
        let done = wait_pods(&pods, "", Duration::from_secs(120), "the pod to succeed", |ps| {
            ps.iter().any(|p| matches!(phase(p), Some("Succeeded" | "Failed")))
        })
        .await;
        let p = &done[0];
        assert_eq!(phase(p), Some("Succeeded"), "{}", describe(p));
        let status = p.status.clone().unwrap_or_default();
        let main = status.container_statuses.unwrap_or_default()[0].clone();
        let term = main.state.and_then(|s| s.terminated).expect("main terminated");
        assert_eq!(term.exit_code, 0);
        assert_eq!(term.message.as_deref(), Some("from-init|hello|t0k|steps|hello world|200"));
        let inits = status.init_container_statuses.unwrap_or_default();
        let init = inits[0].state.clone().and_then(|s| s.terminated).expect("init ran to completion");
        assert_eq!((init.exit_code, init.reason.as_deref()), (0, Some("Completed")));
        let sidecar = &inits[1];
        assert_eq!(sidecar.started, Some(true));
        assert!(
            sidecar.state.as_ref().and_then(|s| s.terminated.as_ref()).is_some(),
            "the sidecar is stopped once the main container finished: {sidecar:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_failing_liveness_probe_restarts_the_container() {
    in_namespace("mp-liveness", |ns| async move {
        // The container's own clock (the workload under test, not a wait): alive for 2 s, then
        // the file the liveness probe checks goes away.
        let script = "import os, time\nopen('/state/alive', 'w').close()\ntime.sleep(2)\nos.remove('/state/alive')\ntime.sleep(600)";
        let manifest = pod(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "flaky"},
            "spec": {
                "terminationGracePeriodSeconds": 2,
                "volumes": [{"name": "state", "emptyDir": {}}],
                "containers": [{
                    "name": "app", "image": "python:3.11", "command": ["python", "-c", script],
                    "volumeMounts": [{"name": "state", "mountPath": "/state"}],
                    "livenessProbe": {
                        "exec": {"command": ["python", "-c", "import os, sys; sys.exit(0 if os.path.exists('/state/alive') else 1)"]},
                        "initialDelaySeconds": 1, "periodSeconds": 1, "failureThreshold": 2
                    }
                }]
            }
        }));
        let pods = ns.api::<Pod>();
        pods.create(&PostParams::default(), &manifest).await.expect("create pod");
        let restarted = wait_pods(&pods, "", Duration::from_secs(90), "a liveness restart", |ps| {
            ps.iter().any(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .is_some_and(|cs| cs[0].restart_count >= 1)
            })
        })
        .await;
        let cs = restarted[0].status.clone().unwrap_or_default().container_statuses.unwrap_or_default()[0].clone();
        let last = cs.last_state.and_then(|s| s.terminated).expect("last state");
        assert!(last.exit_code == 143 || last.exit_code == 137, "killed by a signal: {last:?}");
        assert!(
            last.message.unwrap_or_default().contains("Liveness probe failed"),
            "the reason is in the termination message"
        );
    })
    .await;
}

#[tokio::test]
async fn an_image_outside_the_table_fails_like_an_unpullable_image() {
    in_namespace("mp-image", |ns| async move {
        let manifest = pod(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
        }));
        let pods = ns.api::<Pod>();
        pods.create(&PostParams::default(), &manifest)
            .await
            .expect("create pod");
        let waiting = wait_pods(&pods, "", WAIT, "an image pull failure", |ps| {
            ps.iter().any(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|cs| cs[0].state.as_ref()?.waiting.as_ref()?.reason.clone())
                    .is_some_and(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
            })
        })
        .await;
        let p = &waiting[0];
        assert_eq!(phase(p), Some("Pending"));
        let w = p
            .status
            .clone()
            .unwrap_or_default()
            .container_statuses
            .unwrap_or_default()[0]
            .state
            .clone()
            .and_then(|s| s.waiting)
            .expect("waiting");
        assert!(
            w.message.unwrap_or_default().contains("nginx:1.27"),
            "the message names the image"
        );
    })
    .await;
}
