//! The example retraining Job, `examples/retraining/train.py`, run as the operator runs it: the
//! MODELPILOT_* environment of a trigger, training data and output in a local S3-compatible
//! server (moto), the result read back from its termination message with the operator's own
//! parser. So the example users copy keeps the contract the operator enforces.
//!
//! Needs the Python test env (`eval "$(hack/pyenv.sh)"`; `make test` provides it). The baseline
//! profile is written by this crate's `modelpilot profile`.

mod serve_support;

use std::{
    path::Path,
    process::{Command, Output},
};

use modelpilot::{
    retrain::result::{JobResult, parse_result},
    serve::observe::profile::BaselineProfile,
};
use serve_support::{AWS_ENV, S3, python, repo, start_s3};

const FEATURES: [&str; 4] = ["sepal_length", "sepal_width", "petal_length", "petal_width"];

/// Three Gaussian classes shaped like the iris measurements, 200 rows each, uploaded as
/// `s3://data/iris/train.csv` with the label column `species`.
const UPLOAD_DATA: &str = "\
import io, numpy as np
rng = np.random.default_rng(5)
means = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
scales = np.array([[0.35, 0.38, 0.17, 0.1], [0.5, 0.31, 0.47, 0.2], [0.63, 0.32, 0.55, 0.27]])
out = io.StringIO()
out.write('sepal_length,sepal_width,petal_length,petal_width,species\\n')
for label in range(3):
    for row in rng.normal(means[label], scales[label], size=(200, 4)):
        out.write(','.join(f'{v:.3f}' for v in row) + f',{label}\\n')
s3.create_bucket(Bucket='data')
s3.create_bucket(Bucket='models')
s3.put_object(Bucket='data', Key='iris/train.csv', Body=out.getvalue().encode())
";

/// Prints the SHA-256 of an object and, for an ONNX model, its input and output names.
const DESCRIBE: &str = "\
body = s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read()
info = {'sha256': hashlib.sha256(body).hexdigest()}
if sys.argv[3].endswith('.onnx'):
    import onnxruntime as ort
    session = ort.InferenceSession(body, providers=['CPUExecutionProvider'])
    info['inputs'] = [(i.name, i.shape) for i in session.get_inputs()]
    info['outputs'] = [o.name for o in session.get_outputs()]
else:
    info['text'] = body.decode()
print(json.dumps(info))
";

/// Keys under a prefix, one a line.
const LIST: &str = "\
for o in s3.list_objects_v2(Bucket=sys.argv[2], Prefix=sys.argv[3]).get('Contents', []):
    print(o['Key'])
";

/// A run of train.py for trigger `id`, and what it left in its termination log.
struct Run {
    output: Output,
    message: String,
}

impl Run {
    fn log(&self) -> String {
        format!(
            "status {}\nstdout:\n{}\nstderr:\n{}",
            self.output.status,
            String::from_utf8_lossy(&self.output.stdout),
            String::from_utf8_lossy(&self.output.stderr)
        )
    }

    fn result(&self) -> JobResult {
        assert!(
            self.output.status.success(),
            "train.py failed:\n{}",
            self.log()
        );
        parse_result(&self.message).unwrap_or_else(|e| panic!("{e}\n{}", self.log()))
    }
}

fn train(s3: &S3, dir: &Path, id: u32, extra: &[&str]) -> Run {
    let log = dir.join(format!("termination-log-{id}"));
    let trigger = format!(
        r#"{{"id": {id}, "reason": "Drift", "window": {{"start": "2025-01-01T10:00:00Z",
             "end": "2025-01-01T10:05:00Z"}}, "features": ["petal_width"]}}"#
    );
    let output = Command::new(python())
        .arg(repo().join("examples/retraining/train.py"))
        .args(["--data", "s3://data/iris/train.csv", "--label", "species"])
        .arg("--profile-bin")
        .arg(env!("CARGO_BIN_EXE_modelpilot"))
        .arg("--termination-log")
        .arg(&log)
        .args(extra)
        .envs(AWS_ENV)
        .env("AWS_ENDPOINT_URL", &s3.endpoint)
        .env("MODELPILOT_TRIGGER", trigger)
        .env("MODELPILOT_MODEL_URI", "s3://models/iris/v1/model.onnx")
        .env("MODELPILOT_MODEL_SHA256", "ab".repeat(32))
        .env("MODELPILOT_MODEL_VERSION", "v1")
        .env("MODELPILOT_PROFILE_URI", "s3://models/iris/v1/profile.json")
        .env(
            "MODELPILOT_OUTPUT_URI",
            format!("s3://models/retrain/iris/{id}/"),
        )
        .env("MODELPILOT_DEPLOYMENT", "default/iris")
        .output()
        .expect("run train.py");
    let message = std::fs::read_to_string(&log).unwrap_or_default();
    Run { output, message }
}

fn describe(s3: &S3, uri: &str) -> serde_json::Value {
    let (bucket, key) = uri
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .unwrap_or_else(|| panic!("not an s3 URI: {uri}"));
    let text = s3.python(DESCRIBE, &[bucket, key]);
    serde_json::from_str(&text).expect("describe prints JSON")
}

#[test]
fn the_example_job_keeps_the_contract() {
    let s3 = start_s3();
    s3.python(UPLOAD_DATA, &[]);
    let dir = tempfile::tempdir().expect("tempdir");

    // A good model: reported, uploaded with the reported digest, with its profile.
    let good = train(&s3, dir.path(), 3, &[]);
    let result = good.result();
    assert_eq!(result.model_uri, "s3://models/retrain/iris/3/model.onnx");
    assert_eq!(result.version.as_deref(), Some("retrain-3"));
    let accuracy = result.metrics["accuracy"];
    assert!(accuracy > 0.9, "accuracy {accuracy}\n{}", good.log());
    assert_eq!(result.metrics["testRows"], 150.0);
    let model = describe(&s3, &result.model_uri);
    assert_eq!(model["sha256"], result.sha256.as_str());
    assert_eq!(
        model["inputs"],
        serde_json::json!([["float_input", [null, 4]]]),
        "the signature of the project's iris models"
    );
    assert_eq!(
        model["outputs"],
        serde_json::json!(["label", "probabilities"])
    );
    let profile_uri = result.profile_uri.as_deref().expect("a profile");
    assert_eq!(profile_uri, "s3://models/retrain/iris/3/profile.json");
    let text = describe(&s3, profile_uri)["text"].clone();
    let text = text.as_str().expect("the profile is text");
    let profile = BaselineProfile::from_json(text)
        .unwrap_or_else(|e| panic!("the uploaded profile does not load: {e}\n{text}"));
    let features: Vec<(&str, Option<&str>, usize)> = profile
        .features
        .iter()
        .map(|f| (f.name.as_str(), f.input.as_deref(), f.index))
        .collect();
    let want: Vec<_> = (FEATURES.iter().enumerate())
        .map(|(i, name)| (*name, Some("float_input"), i))
        .collect();
    assert_eq!(features, want, "the profile describes the model's input");
    let json: serde_json::Value = serde_json::from_str(text).expect("JSON");
    assert_eq!(json["rows"], 600, "every training row, the label left out");
    // What it printed is what it wrote.
    let stdout = String::from_utf8_lossy(&good.output.stdout);
    assert_eq!(stdout.trim(), good.message);

    // Same data, same seed: the same model, byte for byte.
    let again = train(&s3, dir.path(), 5, &[]).result();
    assert_eq!(again.sha256, result.sha256);

    // --degrade: a worse model, reported as such.
    let degraded = train(&s3, dir.path(), 4, &["--degrade"]).result();
    assert_eq!(degraded.version.as_deref(), Some("retrain-4"));
    let worse = degraded.metrics["accuracy"];
    assert!(
        worse < accuracy - 0.3,
        "degraded {worse} against {accuracy}"
    );
    assert_ne!(degraded.sha256, result.sha256);
    assert_eq!(
        describe(&s3, &degraded.model_uri)["sha256"],
        degraded.sha256.as_str()
    );

    // --fail: non-zero, the reason in the termination message, nothing uploaded.
    let failed = train(&s3, dir.path(), 6, &["--fail"]);
    assert!(!failed.output.status.success(), "{}", failed.log());
    assert!(
        failed.message.contains("failing on purpose"),
        "{}",
        failed.message
    );
    assert!(parse_result(&failed.message).is_err());
    assert_eq!(s3.python(LIST, &["models", "retrain/iris/6/"]), "");

    // A mistake in the Job's arguments is named, and uploads nothing either.
    let wrong = train(&s3, dir.path(), 7, &["--label", "class"]);
    assert!(!wrong.output.status.success(), "{}", wrong.log());
    assert!(
        wrong.message.contains("no label column 'class'"),
        "{}",
        wrong.message
    );
    assert_eq!(s3.python(LIST, &["models", "retrain/iris/7/"]), "");
}

/// Whether every value `part` sets is in `full` (what `full` adds, defaults, is ignored).
fn holds(full: &serde_json::Value, part: &serde_json::Value, at: &str) -> Result<(), String> {
    use serde_json::Value;
    match (full, part) {
        (Value::Object(f), Value::Object(p)) => p.iter().try_for_each(|(k, v)| {
            let path = format!("{at}.{k}");
            f.get(k)
                .ok_or_else(|| format!("{path} was dropped"))
                .and_then(|f| holds(f, v, &path))
        }),
        (Value::Array(f), Value::Array(p)) if f.len() == p.len() => f
            .iter()
            .zip(p)
            .enumerate()
            .try_for_each(|(i, (f, p))| holds(f, p, &format!("{at}[{i}]"))),
        _ if full == part => Ok(()),
        _ => Err(format!("{at}: {part} read back as {full}")),
    }
}

/// The example manifest reads into the API types without losing a field (a misspelt one would
/// be dropped silently by serde; the API server's strict validation is the cluster tests' job).
#[test]
fn the_example_manifest_reads_back() {
    use modelpilot::api::ModelDeployment;
    let path = repo().join("examples/retraining.yaml");
    let text = std::fs::read_to_string(&path).expect("read the example");
    let doc: serde_json::Value = serde_yaml::from_str(&text).expect("YAML");
    let mdep: ModelDeployment = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} does not read: {e}", path.display()));
    let back = serde_json::to_value(&mdep).expect("serialize");
    if let Err(e) = holds(&back, &doc, "") {
        panic!("{}: {e}", path.display());
    }
    let args = &doc["spec"]["retraining"]["template"]["spec"]["containers"][0]["args"];
    assert_eq!(args[0], "--data", "the Job runs train.py with its options");
}
