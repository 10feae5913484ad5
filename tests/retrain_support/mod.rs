//! Support for the retraining end-to-end tests: a local S3-compatible store (moto) on the node's
//! bridge address — pods read models from it and the retraining Job writes there —, iris-like
//! data sets generated with a seed (as trained on, with shifted inputs, with changed labels), the
//! first model made by the example training script itself, and a ModelDeployment that monitors
//! and retrains with that script.
//!
//! A test file using it declares `mod common; mod real_support; mod serve_support;
//! mod canary_support; mod retrain_support;`.
#![allow(dead_code)]

use std::{collections::BTreeMap, path::PathBuf, process::Command};

use k8s_openapi::api::{batch::v1::Job, core::v1::Secret};
use kube::api::{ListParams, PostParams};
use modelpilot::{api::ModelDeployment, retrain::result::JobResult};
use serde_json::{Value, json};

use crate::{
    canary_support::mdep,
    common::TestNamespace,
    real_support::NODE_IP,
    serve_support::{AWS_ENV, S3, python, repo, start_s3_on},
};

/// The Secret that points servers and Jobs at the [`Store`].
pub const STORE_SECRET: &str = "store-s3";

/// A moto S3 server on the node's bridge address (reachable from pods and from the host), with
/// the data sets.
pub struct Store {
    /// The moto process (stopped when the store is dropped).
    _server: S3,
    pub endpoint: String,
    pub dir: PathBuf,
}

impl Store {
    /// Starts moto with buckets `models` and `data`; the data sets are written to
    /// `data/iris/{train,calm,shifted,relabelled}.csv` there and in [`Store::dir`].
    pub fn start(name: &str) -> Store {
        let s3 = start_s3_on(NODE_IP);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("retrain-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("data dir");
        s3.python(DATA, &[&dir.display().to_string()]);
        Store {
            endpoint: s3.endpoint.clone(),
            _server: s3,
            dir,
        }
    }

    /// A local copy of a data set (`train`, `calm`, `shifted` or `relabelled`) for the load
    /// generator.
    pub fn csv(&self, set: &str) -> PathBuf {
        self.dir.join(format!("{set}.csv"))
    }

    /// Trains the first model with the example script, as a host process, into
    /// `s3://models/iris/v1/`.
    pub fn first_model(&self) -> JobResult {
        let log = self.dir.join("v1.termination-log");
        let out = Command::new(python())
            .arg(repo().join("examples/retraining/train.py"))
            .args(["--data", "s3://data/iris/train.csv", "--label", "species"])
            .args(["--version", "v1", "--output-uri", "s3://models/iris/v1/"])
            .arg("--profile-bin")
            .arg(env!("CARGO_BIN_EXE_modelpilot"))
            .arg("--termination-log")
            .arg(&log)
            .envs(AWS_ENV)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .output()
            .expect("run train.py");
        assert!(
            out.status.success(),
            "train.py v1 failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let message = std::fs::read_to_string(&log).expect("v1 termination message");
        modelpilot::retrain::result::parse_result(&message).expect("v1 result")
    }

    /// The Secret data for servers and Jobs.
    pub fn secret_data(&self) -> BTreeMap<String, String> {
        AWS_ENV
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("AWS_ENDPOINT_URL".to_string(), self.endpoint.clone())])
            .collect()
    }

    /// Creates [`STORE_SECRET`] in `ns`.
    pub async fn create_secret(&self, ns: &TestNamespace) {
        let secret = Secret {
            metadata: kube::api::ObjectMeta {
                name: Some(STORE_SECRET.into()),
                ..Default::default()
            },
            string_data: Some(self.secret_data()),
            ..Default::default()
        };
        ns.api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await
            .expect("create the store Secret");
    }
}

/// Three Gaussian classes shaped like iris (labels 0, 1, 2), 200 rows each, seeded, shuffled:
/// `train` as the first model learns it; `calm`: new rows of the same distribution; `shifted`: petal length +1.5 cm and width +0.6 cm
/// (covariate drift: the inputs move, the labels follow the new shapes); `relabelled`: the
/// same inputs, class 2 now labelled 1 (concept drift: only labels reveal it).
const DATA: &str = r#"
import csv, io, numpy as np
out = sys.argv[2]
rng = np.random.default_rng(7)
means = np.array([[5.0, 3.4, 1.5, 0.25], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
sd = np.array([0.35, 0.3, 0.25, 0.12])
def make(seed):
    r = np.random.default_rng(seed)
    xs, ys = [], []
    for c in range(3):
        xs.append(means[c] + sd * r.standard_normal((200, 4)))
        ys += [c] * 200
    # Shuffled: the load generator sends rows in file order, and any run of them must look
    # like the whole set.
    order = r.permutation(600)
    return np.vstack(xs)[order], np.array(ys)[order]
sets = {}
x, y = make(1); sets["train"] = (x, y)
x, y = make(2); sets["calm"] = (x, y)
x, y = make(3); x = x + np.array([0.0, 0.0, 1.5, 0.6]); sets["shifted"] = (x, y)
x, y = make(4); sets["relabelled"] = (x, np.where(y == 2, 1, y))
s3.create_bucket(Bucket="models"); s3.create_bucket(Bucket="data")
for name, (x, y) in sets.items():
    buf = io.StringIO(); w = csv.writer(buf)
    w.writerow(["sepal_length", "sepal_width", "petal_length", "petal_width", "species"])
    for row, label in zip(x, y):
        w.writerow([f"{v:.3f}" for v in row] + [int(label)])
    text = buf.getvalue()
    open(f"{out}/{name}.csv", "w").write(text)
    s3.put_object(Bucket="data", Key=f"iris/{name}.csv", Body=text.encode())
"#;

/// A ModelDeployment of the first model with monitoring every 10 s, the rollout `rollout` and a
/// retraining Job running the example script on `data` with `extra` arguments.
pub fn watched(
    name: &str,
    v1: &JobResult,
    rollout: Value,
    monitoring: Value,
    retraining: Value,
    data: &str,
    extra: &[&str],
) -> ModelDeployment {
    let mut args = vec![
        repo()
            .join("examples/retraining/train.py")
            .display()
            .to_string(),
        "--data".into(),
        format!("s3://data/iris/{data}.csv"),
        "--label".into(),
        "species".into(),
        "--profile-bin".into(),
        env!("CARGO_BIN_EXE_modelpilot").into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut retraining_spec = json!({
        "outputUri": "s3://models/retrain",
        "template": {"spec": {"containers": [{
            "name": "train", "image": "python:3.11", "command": ["python3"], "args": args,
        }]}},
    });
    merge(&mut retraining_spec, retraining);
    let mut md = mdep(name, &v1.model_uri, &v1.sha256, "v1");
    md.spec.model.credentials_secret = Some(STORE_SECRET.into());
    md.spec.model.profile.clone_from(&v1.profile_uri);
    md.spec.rollout = Some(serde_json::from_value(rollout).expect("rollout"));
    md.spec.monitoring = Some(serde_json::from_value(monitoring).expect("monitoring"));
    md.spec.retraining = Some(serde_json::from_value(retraining_spec).expect("retraining"));
    md
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// This ModelDeployment's retraining Jobs.
pub async fn jobs(ns: &TestNamespace, name: &str) -> Vec<Job> {
    ns.api::<Job>()
        .list(&ListParams::default().labels(&format!("modelpilot.io/retrain-of={name}")))
        .await
        .expect("list Jobs")
        .items
}
