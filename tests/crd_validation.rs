//! The API server itself rejects bad ModelDeployments, with a message naming the field.
//!
//! Every case is server-side applied with strict field validation (what `kubectl apply
//! --server-side` does) to the real control plane, with the CRD generated from `src/api` installed.
//! The invalid cases must fail with a recognisable message; the valid edge cases and the manifests
//! in `examples/` must be accepted and read back into the Rust types. The cases are table-driven and
//! run concurrently; one failing case does not hide the others: all failures are reported at once.

mod common;

use std::path::PathBuf;

use futures::future::join_all;
use kube::{
    Api, Client,
    api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, TypeMeta},
};
use modelpilot::api::ModelDeployment;
use serde_json::{Value, json};

use crate::common::TestNamespace;

const MANAGER: &str = "modelpilot-crd-validation";

/// One change to the valid base manifest, addressed by a JSON pointer.
enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
}

/// A manifest the API server must reject, and a substring of its message.
struct Invalid {
    name: &'static str,
    edits: Vec<Edit>,
    expect: &'static str,
}

/// A manifest at the edge of a rule that the API server must accept.
struct Valid {
    name: &'static str,
    edits: Vec<Edit>,
}

fn set(pointer: &'static str, value: Value) -> Vec<Edit> {
    vec![Edit::Set(pointer, value)]
}

fn invalid(name: &'static str, edits: Vec<Edit>, expect: &'static str) -> Invalid {
    Invalid {
        name,
        edits,
        expect,
    }
}

/// A pod template with one container named `container`, for the template rules.
fn template(container: &str) -> Value {
    json!({"spec": {"containers": [{"name": container, "image": "registry.example.com/proxy:1"}]}})
}

#[rustfmt::skip]
fn invalid_cases() -> Vec<Invalid> {
    const URI: &str = "/spec/model/uri";
    const SCHEME: &str = "model.uri must start with file://, pvc://, https:// or s3://";
    const PVC: &str = "a pvc:// URI must be pvc://<claim-name>/<path inside the volume>";
    const S3: &str = "an s3:// URI must be s3://<bucket>/<key>";
    const SHA: &str = "model.sha256 must be exactly 64 hexadecimal characters";
    const MODEL_NAME: &str = "model.name must be 1-63 lowercase letters";
    const NAME: &str = "metadata.name must start with a lowercase letter";
    const RESERVED: &str = "the name 'modelpilot-server' is reserved for the injected server";
    vec![
        invalid("uri http", set(URI, json!("http://models.example.com/iris.onnx")), SCHEME),
        invalid("uri ftp", set(URI, json!("ftp://models.example.com/iris.onnx")), SCHEME),
        invalid("uri without scheme", set(URI, json!("models/iris.onnx")), SCHEME),
        invalid("uri scheme only", set(URI, json!("https://")), SCHEME),
        invalid("uri too long", set(URI, json!(format!("https://h/{}", "a".repeat(2040)))), "at most 2048 characters"),
        invalid("file uri relative", set(URI, json!("file://models/iris.onnx")), "a file:// URI needs an absolute path"),
        invalid("file uri without path", set(URI, json!("file:///")), "a file:// URI needs an absolute path"),
        invalid("s3 without key", set(URI, json!("s3://models")), S3),
        invalid("s3 with empty key", set(URI, json!("s3://models/")), S3),
        invalid("s3 bucket uppercase", set(URI, json!("s3://Models/iris.onnx")), S3),
        invalid("pvc without path", set(URI, json!("pvc://model-store")), PVC),
        invalid("pvc claim uppercase", set(URI, json!("pvc://Model-Store/iris.onnx")), PVC),
        invalid("pvc absolute path", set(URI, json!("pvc://model-store//iris.onnx")), PVC),
        invalid("pvc claim over 63 chars", set(URI, json!(format!("pvc://{}/m.onnx", "c".repeat(64)))), PVC),
        invalid("https without host", set(URI, json!("https:///models/iris.onnx")), "an https:// URI needs a host"),
        invalid("sha256 short", set("/spec/model/sha256", json!("abc123")), SHA),
        invalid("sha256 not hex", set("/spec/model/sha256", json!("g".repeat(64))), SHA),
        invalid("sha256 65 chars", set("/spec/model/sha256", json!("a".repeat(65))), SHA),
        invalid("replicas negative", set("/spec/replicas", json!(-1)), "spec.replicas in body should be greater than or equal to 0"),
        invalid("replicas over 1000", set("/spec/replicas", json!(1001)), "spec.replicas in body should be less than or equal to 1000"),
        invalid("replicas not a number", set("/spec/replicas", json!("two")), ".spec.replicas: expected numeric (int or float), got string"),
        invalid("missing model", vec![Edit::Remove("/spec/model")], "spec.model: Required value"),
        invalid("missing model.uri", vec![Edit::Remove(URI)], "spec.model.uri: Required value"),
        invalid("missing model.name", vec![Edit::Remove("/spec/model/name")], "spec.model.name: Required value"),
        invalid("missing spec", vec![Edit::Remove("/spec")], "spec: Required value"),
        invalid("unknown field spec.foo", set("/spec/foo", json!("bar")), ".spec.foo: field not declared in schema"),
        invalid("unknown field spec.model.bar", set("/spec/model/bar", json!(1)), ".spec.model.bar: field not declared in schema"),
        invalid("unknown field in template", set("/spec/template", json!({"spec": {"containers": [], "colour": "blue"}})), ".spec.template.spec.colour: field not declared in schema"),
        invalid("model name uppercase", set("/spec/model/name", json!("Iris")), MODEL_NAME),
        invalid("model name with slash", set("/spec/model/name", json!("iris/v2")), MODEL_NAME),
        invalid("model name 64 chars", set("/spec/model/name", json!("m".repeat(64))), MODEL_NAME),
        invalid("model name empty", set("/spec/model/name", json!("")), MODEL_NAME),
        invalid("version with space", set("/spec/model/version", json!("v1 beta")), "model.version must be 1-63 letters"),
        invalid("credentialsSecret underscore", set("/spec/model/credentialsSecret", json!("s3_creds")), "model.credentialsSecret must be the name of a Secret"),
        invalid("graphOptimizationLevel unknown", set("/spec/server/graphOptimizationLevel", json!("max")), "Unsupported value: \"max\": supported values: \"disable\", \"basic\", \"extended\", \"all\""),
        invalid("port below 1024", set("/spec/server/port", json!(80)), "spec.server.port in body should be greater than or equal to 1024"),
        invalid("port above 65535", set("/spec/server/port", json!(70000)), "spec.server.port in body should be less than or equal to 65535"),
        invalid("threads 0", set("/spec/server/threads", json!(0)), "spec.server.threads in body should be greater than or equal to 1"),
        invalid("threads 65", set("/spec/server/threads", json!(65)), "spec.server.threads in body should be less than or equal to 64"),
        invalid("server image empty", set("/spec/server/image", json!("")), "server.image must be a non-empty image reference without spaces"),
        invalid("server image with space", set("/spec/server/image", json!("modelpilot/modelpilot :0.1")), "server.image must be a non-empty image reference without spaces"),
        invalid("batching maxBatchSize 0", set("/spec/server/batching", json!({"maxBatchSize": 0})), "spec.server.batching.maxBatchSize in body should be greater than or equal to 1"),
        invalid("batching maxBatchSize 4097", set("/spec/server/batching", json!({"maxBatchSize": 4097})), "spec.server.batching.maxBatchSize in body should be less than or equal to 4096"),
        invalid("batching negative delay", set("/spec/server/batching", json!({"maxQueueDelayMs": -1})), "spec.server.batching.maxQueueDelayMs in body should be greater than or equal to 0"),
        invalid("batching delay over 1s", set("/spec/server/batching", json!({"maxQueueDelayMs": 1001})), "spec.server.batching.maxQueueDelayMs in body should be less than or equal to 1000"),
        invalid("metadata.name 51 chars", set("/metadata/name", json!(format!("m{}", "x".repeat(50)))), NAME),
        invalid("metadata.name with dot", set("/metadata/name", json!("iris.v2")), NAME),
        invalid("metadata.name starts with digit", set("/metadata/name", json!("2iris")), NAME),
        invalid("metadata.name uppercase", set("/metadata/name", json!("Iris")), "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters"),
        invalid("template container named modelpilot-server", set("/spec/template", template("modelpilot-server")), RESERVED),
        invalid("template init container named modelpilot-server", set("/spec/template", json!({"spec": {"containers": [], "initContainers": [{"name": "modelpilot-server", "image": "x"}]}})), RESERVED),
        invalid("template restartPolicy Never", set("/spec/template", json!({"spec": {"containers": [], "restartPolicy": "Never"}})), "template.spec.restartPolicy must be Always"),
        invalid("template without containers", set("/spec/template", json!({"spec": {}})), "spec.template.spec.containers: Required value"),
        invalid("rollout step with two kinds", set("/spec/rollout", json!({"steps": [{"setWeight": 10, "pause": {}}]})), "each rollout step sets exactly one of setWeight, pause or analysis"),
        invalid("rollout weight over 100", set("/spec/rollout", json!({"steps": [{"setWeight": 101}]})), "should be less than or equal to 100"),
        invalid("gateway traffic without a route", set("/spec/rollout", json!({"traffic": {"mode": "GatewayAPI"}})), "rollout.traffic.httpRoute is required"),
        invalid("metric with two kinds", set("/spec/rollout", json!({"analysis": [{"name": "e", "errorRate": {"max": 0.1}, "inputDrift": {"max": 0.2}}]})), "each analysis metric sets exactly one of"),
        invalid("metric bound without a limit", set("/spec/rollout", json!({"analysis": [{"name": "e", "errorRate": {}}]})), "a bound needs at least one of"),
        invalid("step analysis that never ends", set("/spec/rollout", json!({"steps": [{"analysis": {"metrics": [{"name": "e", "count": 0, "errorRate": {"max": 0.1}}]}}]})), "need count >= 1"),
        invalid("duplicate metric names", set("/spec/rollout", json!({"analysis": [{"name": "e", "errorRate": {"max": 0.1}}, {"name": "e", "errorRate": {"max": 0.2}}]})), "duplicate entries for key [name=\"e\"]"),
        invalid("prediction shift relative to stable", set("/spec/rollout", json!({"analysis": [{"name": "s", "predictionShift": {"maxRatioToStable": 1.2}}]})), "predictionShift already compares the canary with the stable revision"),
        invalid("latency quantile 1", set("/spec/rollout", json!({"analysis": [{"name": "p", "latency": {"quantile": 1.0, "bound": {"max": 1.0}}}]})), "latency.quantile must be between 0 and 1"),
        invalid("query with success and failure", set("/spec/rollout", json!({"analysis": [{"name": "q", "query": {"promql": "up", "success": {"max": 1.0}, "failure": {"min": 2.0}}}]})), "a query metric sets exactly one of success or failure"),
        invalid("autoscaling min above max", set("/spec/autoscaling", json!({"minReplicas": 5, "maxReplicas": 2})), "autoscaling.minReplicas must not exceed autoscaling.maxReplicas"),
        invalid("autoscaling minReplicas 0", set("/spec/autoscaling", json!({"minReplicas": 0, "maxReplicas": 2})), "spec.autoscaling.minReplicas in body should be greater than or equal to 1"),
        invalid("autoscaling without maxReplicas", set("/spec/autoscaling", json!({"minReplicas": 1})), "spec.autoscaling.maxReplicas: Required value"),
        invalid("autoscaling target 0", set("/spec/autoscaling", json!({"maxReplicas": 4, "target": 0.0})), "autoscaling.target must be greater than 0"),
        invalid("autoscaling unknown metric", set("/spec/autoscaling", json!({"maxReplicas": 4, "metric": "CPU"})), "Unsupported value: \"CPU\": supported values: \"Concurrency\", \"RPS\", \"QueueTime\""),
        invalid("autoscaling panic threshold 1", set("/spec/autoscaling", json!({"maxReplicas": 4, "panicThreshold": 1.0})), "autoscaling.panicThreshold must be above 1.0"),
        invalid("autoscaling scale-down rate 1", set("/spec/autoscaling", json!({"maxReplicas": 4, "maxScaleDownRate": 1.0})), "autoscaling.maxScaleDownRate must be above 1.0"),
        invalid("autoscaling panic window shorter than a tick", set("/spec/autoscaling", json!({"maxReplicas": 4, "stableWindowSeconds": 10, "panicWindowPercent": 10, "tickSeconds": 2})), "the panic window (stableWindowSeconds × panicWindowPercent / 100) must be at least tickSeconds long"),
        invalid("autoscaling HPA mode without metrics", set("/spec/autoscaling", json!({"mode": "HPA", "maxReplicas": 4})), "autoscaling.hpa.metrics is required when autoscaling.mode is HPA"),
        invalid("autoscaling hpa section in builtin mode", set("/spec/autoscaling", json!({"maxReplicas": 4, "hpa": {"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}})), "autoscaling.hpa is only used with mode: HPA"),
        invalid("drift without a profile", set("/spec/monitoring", json!({"drift": {}})), "monitoring.drift and monitoring.prediction need model.profile"),
        invalid("monitoring with nothing to watch", set("/spec/monitoring", json!({"intervalSeconds": 60})), "monitoring needs at least one of drift, accuracy or prediction"),
        invalid("monitoring interval 5 s", set("/spec/monitoring", json!({"intervalSeconds": 5, "accuracy": {"floor": 0.8}})), "spec.monitoring.intervalSeconds in body should be greater than or equal to 10"),
        invalid("persistence required above windows", vec![Edit::Set("/spec/model/profile", json!("s3://models/iris.profile.json")), Edit::Set("/spec/monitoring", json!({"drift": {"persistence": {"windows": 2, "required": 3}}}))], "persistence.required must not exceed persistence.windows"),
        invalid("threshold with a test", vec![Edit::Set("/spec/model/profile", json!("s3://models/iris.profile.json")), Edit::Set("/spec/monitoring", json!({"drift": {"method": "KS", "threshold": 0.2}}))], "threshold is only used with method PSI or JensenShannon"),
        invalid("accuracy without a bound", set("/spec/monitoring", json!({"accuracy": {"metric": "F1"}})), "monitoring.accuracy needs floor, maxDrop or both"),
        invalid("accuracy floor above 1", set("/spec/monitoring", json!({"accuracy": {"floor": 1.5}})), "spec.monitoring.accuracy.floor in body should be less than or equal to 1"),
        invalid("profile with a bad scheme", set("/spec/model/profile", json!("ftp://x/p.json")), "model.profile must start with file://, pvc://, https:// or s3://"),
        invalid("retraining without monitoring", set("/spec/retraining", json!({"outputUri": "s3://models/retrain", "template": template("train")})), "retraining needs monitoring"),
        invalid("retraining output with a bad scheme", vec![Edit::Set("/spec/monitoring", json!({"accuracy": {"floor": 0.8}})), Edit::Set("/spec/retraining", json!({"outputUri": "gs://models", "template": template("train")}))], "retraining.outputUri must start with file://, pvc://, https:// or s3://"),
        invalid("retraining maxPerDay 0", vec![Edit::Set("/spec/monitoring", json!({"accuracy": {"floor": 0.8}})), Edit::Set("/spec/retraining", json!({"outputUri": "s3://models/retrain", "maxPerDay": 0, "template": template("train")}))], "spec.retraining.maxPerDay in body should be greater than or equal to 1"),
        invalid("retraining unknown trigger", vec![Edit::Set("/spec/monitoring", json!({"accuracy": {"floor": 0.8}})), Edit::Set("/spec/retraining", json!({"outputUri": "s3://models/retrain", "triggers": ["Latency"], "template": template("train")}))], "Unsupported value: \"Latency\""),
    ]
}

#[rustfmt::skip]
fn valid_cases() -> Vec<Valid> {
    let valid = |name, edits| Valid { name, edits };
    vec![
        valid("base manifest", vec![]),
        valid("sha256 uppercase hex", set("/spec/model/sha256", json!("ABCDEF0123456789".repeat(4)))),
        valid("replicas 0", set("/spec/replicas", json!(0))),
        valid("replicas 1000", set("/spec/replicas", json!(1000))),
        valid("pvc uri", set("/spec/model/uri", json!("pvc://model-store/iris/v3/model.onnx"))),
        valid("file uri", set("/spec/model/uri", json!("file:///models/iris.onnx"))),
        valid("s3 uri with dotted bucket and nested key", set("/spec/model/uri", json!("s3://ml.models-prod/a/b/c.onnx"))),
        valid("https uri with query", set("/spec/model/uri", json!("https://models.example.com/iris.onnx?versionId=3"))),
        valid("port 1024", set("/spec/server/port", json!(1024))),
        valid("port 65535", set("/spec/server/port", json!(65535))),
        valid("threads 64", set("/spec/server/threads", json!(64))),
        valid("metadata.name 50 chars", set("/metadata/name", json!(format!("m{}", "x".repeat(49))))),
        valid("model name with dot and underscore", set("/spec/model/name", json!("iris_v2.onnx"))),
        valid("model name 63 chars", set("/spec/model/name", json!("m".repeat(63)))),
        valid("version with uppercase", set("/spec/model/version", json!("2024.06-RC1"))),
        valid("batching bounds", set("/spec/server/batching", json!({"maxBatchSize": 4096, "maxQueueDelayMs": 0}))),
        valid("template with sidecar and Always", set("/spec/template", json!({"spec": {"restartPolicy": "Always", "containers": [{"name": "gateway", "image": "registry.example.com/gw:1"}], "initContainers": [{"name": "warmup", "image": "registry.example.com/warm:1"}]}}))),
        valid("template with own container only", set("/spec/template", template("proxy"))),
        valid("autoscaling defaults", set("/spec/autoscaling", json!({"maxReplicas": 1}))),
        valid("autoscaling every builtin field", set("/spec/autoscaling", json!({"mode": "Builtin", "minReplicas": 1000, "maxReplicas": 1000, "metric": "QueueTime", "target": 0.02, "stableWindowSeconds": 6, "panicWindowPercent": 100, "panicThreshold": 100.0, "scaleDownDelaySeconds": 3600, "maxScaleUpRate": 1.5, "maxScaleDownRate": 1.01, "tickSeconds": 6}))),
        valid("autoscaling HPA with a pods metric and behaviour", set("/spec/autoscaling", json!({"mode": "HPA", "minReplicas": 2, "maxReplicas": 10, "hpa": {"metrics": [{"type": "Pods", "pods": {"metric": {"name": "modelpilot_inference_inflight_requests"}, "target": {"type": "AverageValue", "averageValue": "4"}}}], "behavior": {"scaleDown": {"stabilizationWindowSeconds": 120}}}}))),
        valid("monitoring and retraining, every field", vec![
            Edit::Set("/spec/model/profile", json!("s3://models/iris.profile.json")),
            Edit::Set("/spec/monitoring", json!({"intervalSeconds": 10,
                "drift": {"method": "PSI", "pValue": 0.01, "threshold": 0.25, "correction": "None", "minSamples": 1, "persistence": {"windows": 20, "required": 20}},
                "prediction": {"method": "JensenShannon", "threshold": 0.1},
                "accuracy": {"metric": "Recall", "floor": 0.0, "maxDrop": 1.0, "minLabels": 1}})),
            Edit::Set("/spec/retraining", json!({"outputUri": "file:///tmp/retrain", "triggers": ["Drift", "AccuracyDegraded", "PredictionShift"],
                "cooldownSeconds": 0, "maxPerDay": 100, "approval": true, "deadlineSeconds": 10, "backoffLimit": 10, "template": template("train")})),
        ]),
    ]
}

/// The valid manifest every case starts from.
fn base(name: &str) -> Value {
    json!({
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name},
        "spec": {"model": {"name": "iris", "uri": "https://models.example.com/iris/1/model.onnx"}},
    })
}

/// Apply `edits` to the base manifest (intermediate objects are created as needed).
fn manifest(index: usize, edits: &[Edit]) -> Value {
    let mut doc = base(&format!("case-{index}"));
    for edit in edits {
        match edit {
            Edit::Set(pointer, value) => {
                let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
                let mut target = &mut doc;
                for part in parent.split('/').skip(1) {
                    target = target
                        .as_object_mut()
                        .expect("pointer goes through objects")
                        .entry(part)
                        .or_insert_with(|| json!({}));
                }
                target[key] = value.clone();
            }
            Edit::Remove(pointer) => {
                let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
                if let Some(Value::Object(map)) = doc.pointer_mut(parent) {
                    map.remove(key);
                }
            }
        }
    }
    doc
}

/// Server-side apply `doc` with strict field validation, as `kubectl apply --server-side` does.
async fn apply(api: &Api<DynamicObject>, doc: &Value) -> Result<DynamicObject, kube::Error> {
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let params = PatchParams::apply(MANAGER).validation_strict();
    api.patch(name, &params, &Patch::Apply(doc)).await
}

fn api_for(ns: &TestNamespace, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(ns.client.clone(), &ns.name, resource)
}

fn model_deployments(ns: &TestNamespace) -> Api<DynamicObject> {
    api_for(ns, &ApiResource::erase::<ModelDeployment>(&()))
}

/// Why an invalid case did not fail as it should, or `None` when it did.
async fn check_invalid(api: &Api<DynamicObject>, index: usize, case: &Invalid) -> Option<String> {
    let doc = manifest(index, &case.edits);
    match apply(api, &doc).await {
        Ok(_) => Some(format!(
            "[{}] was accepted; expected: {}",
            case.name, case.expect
        )),
        Err(kube::Error::Api(status)) if status.message.contains(case.expect) => None,
        Err(kube::Error::Api(status)) => Some(format!(
            "[{}] rejected with {} {} but without {:?}:\n    {}",
            case.name, status.code, status.reason, case.expect, status.message
        )),
        Err(err) => Some(format!("[{}] request failed: {err}", case.name)),
    }
}

/// Why a valid case was not accepted (or not readable as a `ModelDeployment`), or `None`.
async fn check_valid(api: &Api<DynamicObject>, index: usize, case: &Valid) -> Option<String> {
    let doc = manifest(index, &case.edits);
    match apply(api, &doc).await {
        Ok(stored) => read_back(&stored)
            .err()
            .map(|e| format!("[{}] {e}", case.name)),
        Err(err) => Some(format!("[{}] was rejected: {err}", case.name)),
    }
}

/// What the API server stored must deserialise into the Rust types the controller uses.
fn read_back(stored: &DynamicObject) -> Result<ModelDeployment, String> {
    let value = serde_json::to_value(stored).map_err(|e| e.to_string())?;
    serde_json::from_value(value)
        .map_err(|e| format!("stored object is not a ModelDeployment: {e}"))
}

fn report(kind: &str, total: usize, failures: Vec<Option<String>>) {
    let failures: Vec<String> = failures.into_iter().flatten().collect();
    assert!(
        failures.is_empty(),
        "{} of {total} {kind} cases failed:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

#[tokio::test]
async fn api_server_rejects_invalid_manifests_with_clear_messages() {
    let ns = TestNamespace::create("crd-invalid").await;
    let api = model_deployments(&ns);
    let cases = invalid_cases();
    assert!(
        cases.len() >= 12,
        "the table covers at least 12 invalid manifests"
    );
    let checks = cases
        .iter()
        .enumerate()
        .map(|(i, case)| check_invalid(&api, i, case));
    let failures = join_all(checks).await;
    report("invalid", cases.len(), failures);
    ns.delete().await;
}

#[tokio::test]
async fn api_server_accepts_valid_edge_cases() {
    let ns = TestNamespace::create("crd-valid").await;
    let api = model_deployments(&ns);
    let cases = valid_cases();
    let checks = cases
        .iter()
        .enumerate()
        .map(|(i, case)| check_valid(&api, i, case));
    let failures = join_all(checks).await;
    report("valid", cases.len(), failures);
    ns.delete().await;
}

/// Defaults come from the schema, so a minimal manifest reads back complete.
#[tokio::test]
async fn api_server_fills_in_defaults() {
    let ns = TestNamespace::create("crd-defaults").await;
    let api = model_deployments(&ns);
    let mut doc = base("defaults");
    doc["spec"]["server"] = json!({"batching": {}});
    doc["spec"]["autoscaling"] = json!({"maxReplicas": 3});
    let stored = apply(&api, &doc)
        .await
        .expect("minimal manifest is accepted");
    let spec = &stored.data["spec"];
    assert_eq!(spec["replicas"], json!(1), "{spec}");
    let autoscaling = &spec["autoscaling"];
    for (field, value) in [
        ("mode", json!("Builtin")),
        ("minReplicas", json!(1)),
        ("metric", json!("Concurrency")),
        ("stableWindowSeconds", json!(60)),
        ("panicWindowPercent", json!(10)),
        ("panicThreshold", json!(2)),
        ("scaleDownDelaySeconds", json!(0)),
        ("maxScaleDownRate", json!(2)),
        ("tickSeconds", json!(2)),
    ] {
        assert_eq!(
            autoscaling[field], value,
            "autoscaling.{field}: {autoscaling}"
        );
    }
    assert_eq!(
        spec["server"]["graphOptimizationLevel"],
        json!("all"),
        "{spec}"
    );
    assert_eq!(
        spec["server"]["batching"]["maxBatchSize"],
        json!(32),
        "{spec}"
    );
    assert_eq!(
        spec["server"]["batching"]["maxQueueDelayMs"],
        json!(0),
        "{spec}"
    );
    ns.delete().await;
}

/// Every manifest in `examples/` applies cleanly (strict field validation) and reads back.
#[tokio::test]
async fn examples_apply_cleanly() {
    let ns = TestNamespace::create("examples").await;
    let mut failures = Vec::new();
    let mut model_deployments = 0;
    for path in example_files() {
        for doc in documents(&path) {
            let label = format!("{} {}", path.display(), doc["metadata"]["name"]);
            let resource = match resource_of(&ns.client, &doc).await {
                Ok(resource) => resource,
                Err(err) => {
                    failures.push(Some(format!("[{label}] {err}")));
                    continue;
                }
            };
            let outcome = apply(&api_for(&ns, &resource), &doc).await;
            failures.push(match outcome {
                Ok(stored) if resource.kind == "ModelDeployment" => {
                    model_deployments += 1;
                    read_back(&stored).err().map(|e| format!("[{label}] {e}"))
                }
                Ok(_) => None,
                Err(err) => Some(format!("[{label}] was rejected: {err}")),
            });
        }
    }
    assert!(
        model_deployments >= 2,
        "examples/ holds minimal.yaml and full.yaml"
    );
    let total = failures.len();
    report("example", total, failures);
    ns.delete().await;
}

fn example_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// The YAML documents of a file, as JSON values (empty documents skipped).
fn documents(path: &PathBuf) -> Vec<Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

/// The served resource of a manifest's `apiVersion` and `kind`, from discovery.
async fn resource_of(client: &Client, doc: &Value) -> Result<ApiResource, String> {
    let types = TypeMeta {
        api_version: doc["apiVersion"].as_str().unwrap_or_default().into(),
        kind: doc["kind"].as_str().unwrap_or_default().into(),
    };
    let gvk = GroupVersionKind::try_from(&types).map_err(|e| format!("{types:?}: {e}"))?;
    let (resource, _) = kube::discovery::pinned_kind(client, &gvk)
        .await
        .map_err(|e| format!("{types:?} is not served: {e}"))?;
    Ok(resource)
}
