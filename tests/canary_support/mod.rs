//! Support for the canary rollout end-to-end tests: the candidate models (made by
//! `hack/models/make_models.py`, see its docstring for what each one does wrong) served by the
//! S3-compatible [`ModelSource`] with their digests, ModelDeployments with a `spec.rollout`
//! section, a new revision by patching `spec.model`, waits on `status`, and the real load
//! generator as background traffic ([`Load`]) whose report says which pods and revisions
//! answered.
//!
//! A test file using it declares `mod common; mod real_support; mod serve_support;
//! mod canary_support;` (it builds on all three). Like `tests/real_pods.rs` it needs the local
//! cluster (`make cluster-up`, as root) and the Python test env (`eval "$(hack/pyenv.sh)"`).
#![allow(dead_code)]

pub mod load;

use std::{collections::BTreeMap, path::PathBuf, time::Duration};

use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api,
    api::{Patch, PatchParams, PostParams},
};
pub use load::Load;
use modelpilot::api::{ModelDeployment, ModelDeploymentStatus, RolloutPhase};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{
    common::{TestNamespace, WAIT, poll, wait_for},
    real_support::{ModelSource, infer, service_url},
};

/// The name every test model is served under (`/v2/models/iris`).
pub const MODEL_NAME: &str = "iris";

/// The Secret that points the servers' S3 client at the [`ModelSource`].
pub const SOURCE_SECRET: &str = "models-s3";

/// The stable model and the canary candidates, as `make_models.py` writes them.
pub const MODEL_FILES: [&str; 6] = [
    "iris.onnx",
    "iris_v2.onnx",
    "iris_slow.onnx",
    "iris_failing.onnx",
    "iris_inaccurate.onnx",
    "iris_wide.onnx",
];

/// A model file in the [`ModelSource`]: what `spec.model` needs to name it.
#[derive(Clone, Debug)]
pub struct StoredModel {
    pub uri: String,
    pub sha256: String,
}

/// The test models, served on the node's bridge address.
pub struct Models {
    pub source: ModelSource,
    stored: BTreeMap<String, StoredModel>,
}

impl Models {
    /// Serves every file of [`MODEL_FILES`] (no download held back) and records its digest.
    pub async fn upload() -> Models {
        let files: Vec<(String, Vec<u8>)> = MODEL_FILES
            .iter()
            .map(|f| {
                let path = crate::serve_support::models().join(f);
                let bytes = std::fs::read(&path)
                    .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                (f.to_string(), bytes)
            })
            .collect();
        let stored = files
            .iter()
            .map(|(f, bytes)| (f.clone(), hex::encode(Sha256::digest(bytes))))
            .collect::<Vec<_>>();
        let source = ModelSource::start(files, false).await;
        let stored = stored
            .into_iter()
            .map(|(f, sha256)| {
                let uri = source.uri(&f);
                (f, StoredModel { uri, sha256 })
            })
            .collect();
        Models { source, stored }
    }

    /// The URI and digest of `file` (one of [`MODEL_FILES`]).
    pub fn get(&self, file: &str) -> &StoredModel {
        self.stored
            .get(file)
            .unwrap_or_else(|| panic!("{file} is not one of {MODEL_FILES:?}"))
    }

    /// Creates [`SOURCE_SECRET`] in `ns` (the credentials every ModelDeployment here names).
    pub async fn create_secret(&self, ns: &TestNamespace) {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(SOURCE_SECRET.into()),
                ..Default::default()
            },
            string_data: Some(self.source.secret_data()),
            ..Default::default()
        };
        ns.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .expect("create the model source Secret");
    }
}

/// `iris.eval.csv`: 300 labelled iris-like rows (label column `species`) for
/// [`load::LoadOptions::csv`].
pub fn eval_csv() -> PathBuf {
    crate::serve_support::models().join("iris.eval.csv")
}

/// A ModelDeployment of `uri` pinned to `sha256`, served as [`MODEL_NAME`] with the version
/// label `version`, credentials from [`SOURCE_SECRET`], one replica and no rollout section
/// (a new revision takes all traffic once ready). Adjust `spec` before creating it.
pub fn mdep(name: &str, uri: &str, sha256: &str, version: &str) -> ModelDeployment {
    serde_json::from_value(json!({
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {
                "name": MODEL_NAME,
                "uri": uri,
                "sha256": sha256,
                "version": version,
                "credentialsSecret": SOURCE_SECRET,
            },
        },
    }))
    .expect("a ModelDeployment")
}

/// [`mdep`] with `spec.rollout` = `rollout` (the JSON of `modelpilot::api::RolloutSpec`, e.g.
/// `json!({"steps": [{"setWeight": 50}, {"pause": {}}]})`); panics when it does not parse.
pub fn mdep_with_rollout(
    name: &str,
    uri: &str,
    sha256: &str,
    version: &str,
    rollout: Value,
) -> ModelDeployment {
    let mut md = mdep(name, uri, sha256, version);
    md.spec.rollout = Some(
        serde_json::from_value(rollout.clone())
            .unwrap_or_else(|e| panic!("not a rollout section ({e}): {rollout}")),
    );
    md
}

/// Start-up on real pods includes the model download and load: allow for a loaded machine.
pub const START: Duration = Duration::from_secs(120);

/// Creates `name` serving `iris.onnx` as v1 on `replicas` pods with `rollout`, and waits until
/// v1 is stable, every pod ready and the Service answers.
pub async fn stable_v1(
    ns: &TestNamespace,
    models: &Models,
    name: &str,
    replicas: i32,
    rollout: Value,
) -> Api<ModelDeployment> {
    let mdeps: Api<ModelDeployment> = ns.api();
    models.create_secret(ns).await;
    let iris = models.get("iris.onnx");
    let mut md = mdep_with_rollout(name, &iris.uri, &iris.sha256, "v1", rollout);
    md.spec.replicas = replicas;
    mdeps
        .create(&PostParams::default(), &md)
        .await
        .expect("create ModelDeployment");
    wait_rollout(&mdeps, name, START, move |s| {
        s.stable.as_ref().and_then(|r| r.version.as_deref()) == Some("v1")
            && s.ready_replicas >= replicas.max(1)
            && s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
    .await;
    wait_serving(ns, name).await;
    mdeps
}

/// Points `spec.model` of `name` at another model (a new revision) and returns the object.
pub async fn set_model(
    api: &Api<ModelDeployment>,
    name: &str,
    uri: &str,
    sha256: &str,
    version: &str,
) -> ModelDeployment {
    let patch = json!({"spec": {"model": {"uri": uri, "sha256": sha256, "version": version}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_or_else(|e| panic!("patch spec.model of {name}: {e}"))
}

/// The status of `name` as the API server has it now (empty when there is none yet).
pub async fn status_now(api: &Api<ModelDeployment>, name: &str) -> ModelDeploymentStatus {
    api.get(name)
        .await
        .unwrap_or_else(|e| panic!("get {name}: {e}"))
        .status
        .unwrap_or_default()
}

/// Watches `name` until `pred` holds for its status (the object is dumped on timeout).
pub async fn wait_rollout(
    api: &Api<ModelDeployment>,
    name: &str,
    timeout: Duration,
    pred: impl Fn(&ModelDeploymentStatus) -> bool + Send + Sync + 'static,
) -> ModelDeployment {
    let cond =
        move |md: Option<&ModelDeployment>| md.and_then(|m| m.status.as_ref()).is_some_and(&pred);
    wait_for(api, name, timeout, cond).await
}

/// The rollout's phase (`Stable` when the status has no rollout section).
pub fn rollout_phase(status: &ModelDeploymentStatus) -> RolloutPhase {
    status.rollout.as_ref().map(|r| r.phase).unwrap_or_default()
}

/// The model version the status says the spec's revision runs.
pub fn revision_version(status: &ModelDeploymentStatus) -> Option<&str> {
    status.revision.as_ref()?.version.as_deref()
}

/// Waits until the Service `name` answers an inference request through its ClusterIP (kube-proxy
/// programs its rules shortly after the EndpointSlices change, and they cannot be watched), and
/// returns its base URL.
pub async fn wait_serving(ns: &TestNamespace, name: &str) -> String {
    let url = service_url(&ns.api(), name).await;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .expect("HTTP client");
    let row = [[5.1, 3.5, 1.4, 0.2]];
    poll(
        WAIT,
        Duration::from_millis(200),
        &format!("an answer from {url}"),
        || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                let answer = infer(&client, &url, MODEL_NAME, &row).await.ok()?;
                (answer.status == 200).then_some(())
            }
        },
    )
    .await;
    url
}
