use super::*;

const URI: &str = "s3://models/retrain/iris/3/model.onnx";

fn digest() -> String {
    "0123456789abcdef".repeat(4)
}

/// A minimal valid result: the two required fields.
fn minimal() -> JobResult {
    JobResult {
        model_uri: URI.into(),
        sha256: digest(),
        version: None,
        profile_uri: None,
        metrics: BTreeMap::new(),
    }
}

/// `{"modelUri": URI, "sha256": digest, <extra>}`.
fn message(extra: &str) -> String {
    let sep = if extra.is_empty() { "" } else { ", " };
    format!(
        r#"{{"modelUri": "{URI}", "sha256": "{}"{sep}{extra}}}"#,
        digest()
    )
}

fn uri_error(field: &'static str, uri: &str, reason: &str) -> ResultError {
    ResultError::Uri {
        field,
        uri: uri.into(),
        reason: reason.into(),
    }
}

const BUCKET_RULE: &str = "must be s3://<bucket>/<key>, the bucket 3-63 lowercase letters, \
                           digits, '-' or '.', starting and ending with a letter or digit";

#[test]
fn table() {
    let full = JobResult {
        version: Some("retrain-3".into()),
        profile_uri: Some("s3://models/retrain/iris/3/profile.json".into()),
        metrics: BTreeMap::from([("accuracy".into(), 0.93), ("f1".into(), 0.9)]),
        ..minimal()
    };
    let upper = format!(
        r#"{{"modelUri": "{URI}", "sha256": "{}"}}"#,
        digest().to_uppercase()
    );
    let many: Vec<String> = (0..17).map(|i| format!(r#""m{i}": {i}"#)).collect();
    let many = message(&format!(r#""metrics": {{{}}}"#, many.join(", ")));
    let cases: Vec<(&str, String, Result<JobResult, ResultError>)> = vec![
        ("minimal", message(""), Ok(minimal())),
        (
            "everything",
            message(
                r#""version": "retrain-3", "profileUri": "s3://models/retrain/iris/3/profile.json",
                   "metrics": {"accuracy": 0.93, "f1": 0.9}"#,
            ),
            Ok(full),
        ),
        (
            "whitespace around",
            format!("\n  {}\n", message("")),
            Ok(minimal()),
        ),
        ("sha256 lowercased", upper, Ok(minimal())),
        (
            "nulls are absent",
            message(r#""version": null, "profileUri": null, "metrics": null"#),
            Ok(minimal()),
        ),
        (
            "integer metric",
            message(r#""metrics": {"rows": 1200}"#),
            Ok(JobResult {
                metrics: BTreeMap::from([("rows".into(), 1200.0)]),
                ..minimal()
            }),
        ),
        (
            "other schemes",
            format!(
                r#"{{"modelUri": "pvc://models/iris/3.onnx", "sha256": "{}",
                    "profileUri": "https://models.example.com/p.json"}}"#,
                digest()
            ),
            Ok(JobResult {
                model_uri: "pvc://models/iris/3.onnx".into(),
                profile_uri: Some("https://models.example.com/p.json".into()),
                ..minimal()
            }),
        ),
        ("empty", String::new(), Err(ResultError::Empty)),
        ("blank", " \n\t".into(), Err(ResultError::Empty)),
        (
            "too long",
            format!("{}{}", message(""), " ".repeat(4096)),
            Err(ResultError::TooLong {
                bytes: message("").len() + 4096,
            }),
        ),
        (
            "an array",
            "[1, 2]".into(),
            Err(ResultError::NotAnObject { found: "an array" }),
        ),
        (
            "a string",
            r#""s3://models/m.onnx""#.into(),
            Err(ResultError::NotAnObject { found: "a string" }),
        ),
        (
            "misspelt field",
            message(r#""modelURI": "s3://models/m.onnx""#),
            Err(ResultError::UnknownField {
                field: "modelURI".into(),
            }),
        ),
        (
            "no modelUri",
            format!(r#"{{"sha256": "{}"}}"#, digest()),
            Err(ResultError::Missing { field: "modelUri" }),
        ),
        (
            "no sha256",
            format!(r#"{{"modelUri": "{URI}"}}"#),
            Err(ResultError::Missing { field: "sha256" }),
        ),
        (
            "sha256 too short",
            format!(r#"{{"modelUri": "{URI}", "sha256": "abc"}}"#),
            Err(ResultError::Sha256 {
                value: "abc".into(),
            }),
        ),
        (
            "sha256 not hex",
            format!(r#"{{"modelUri": "{URI}", "sha256": "{}"}}"#, "g".repeat(64)),
            Err(ResultError::Sha256 {
                value: "g".repeat(64),
            }),
        ),
        (
            "modelUri a number",
            format!(r#"{{"modelUri": 3, "sha256": "{}"}}"#, digest()),
            Err(ResultError::WrongType {
                field: "modelUri".into(),
                expected: "a string",
                found: "a number",
            }),
        ),
        (
            "a bare path",
            format!(
                r#"{{"modelUri": "/out/model.onnx", "sha256": "{}"}}"#,
                digest()
            ),
            Err(uri_error(
                "modelUri",
                "/out/model.onnx",
                "scheme must be file://, pvc://, https:// or s3://",
            )),
        ),
        (
            "http",
            format!(
                r#"{{"modelUri": "http://h/m.onnx", "sha256": "{}"}}"#,
                digest()
            ),
            Err(uri_error(
                "modelUri",
                "http://h/m.onnx",
                "scheme must be file://, pvc://, https:// or s3://",
            )),
        ),
        (
            "relative file",
            format!(
                r#"{{"modelUri": "file://m.onnx", "sha256": "{}"}}"#,
                digest()
            ),
            Err(uri_error(
                "modelUri",
                "file://m.onnx",
                "a file:// URI needs an absolute path",
            )),
        ),
        (
            "s3 prefix only",
            format!(
                r#"{{"modelUri": "s3://models/", "sha256": "{}"}}"#,
                digest()
            ),
            Err(uri_error(
                "modelUri",
                "s3://models/",
                "must be s3://<bucket>/<key>",
            )),
        ),
        (
            "s3 bucket upper case",
            format!(
                r#"{{"modelUri": "s3://Models/m.onnx", "sha256": "{}"}}"#,
                digest()
            ),
            Err(uri_error("modelUri", "s3://Models/m.onnx", BUCKET_RULE)),
        ),
        (
            "s3 bucket too short",
            format!(
                r#"{{"modelUri": "s3://ab/m.onnx", "sha256": "{}"}}"#,
                digest()
            ),
            Err(uri_error("modelUri", "s3://ab/m.onnx", BUCKET_RULE)),
        ),
        (
            "s3 key starting with a slash",
            format!(
                r#"{{"modelUri": "s3://models//m.onnx", "sha256": "{}"}}"#,
                digest()
            ),
            Err(uri_error("modelUri", "s3://models//m.onnx", BUCKET_RULE)),
        ),
        (
            "line break in a URI",
            format!(
                r#"{{"modelUri": "s3://models/m\n.onnx", "sha256": "{}"}}"#,
                digest()
            ),
            Err(uri_error(
                "modelUri",
                "s3://models/m\n.onnx",
                "contains a control character (a line break?)",
            )),
        ),
        (
            "bad profileUri",
            message(r#""profileUri": "profile.json""#),
            Err(uri_error(
                "profileUri",
                "profile.json",
                "scheme must be file://, pvc://, https:// or s3://",
            )),
        ),
        (
            "version with a slash",
            message(r#""version": "retrain/3""#),
            Err(ResultError::Version {
                value: "retrain/3".into(),
            }),
        ),
        (
            "version ending in a dash",
            message(r#""version": "retrain-""#),
            Err(ResultError::Version {
                value: "retrain-".into(),
            }),
        ),
        (
            "version too long",
            message(&format!(r#""version": "{}""#, "v".repeat(64))),
            Err(ResultError::Version {
                value: "v".repeat(64),
            }),
        ),
        (
            "empty version",
            message(r#""version": """#),
            Err(ResultError::Version {
                value: String::new(),
            }),
        ),
        (
            "metric as text",
            message(r#""metrics": {"accuracy": "NaN"}"#),
            Err(ResultError::Metric {
                name: "accuracy".into(),
                found: r#""NaN""#.into(),
            }),
        ),
        (
            "metric null",
            message(r#""metrics": {"accuracy": null}"#),
            Err(ResultError::Metric {
                name: "accuracy".into(),
                found: "null".into(),
            }),
        ),
        (
            "metrics an array",
            message(r#""metrics": [0.9]"#),
            Err(ResultError::WrongType {
                field: "metrics".into(),
                expected: "an object of name → number",
                found: "an array",
            }),
        ),
        (
            "metric name with a space",
            message(r#""metrics": {"top 1": 0.9}"#),
            Err(ResultError::MetricName {
                name: "top 1".into(),
            }),
        ),
        (
            "too many metrics",
            many,
            Err(ResultError::TooManyMetrics { count: 17 }),
        ),
    ];
    for (name, text, want) in cases {
        assert_eq!(parse_result(&text), want, "case {name:?}: {text}");
    }
}

#[test]
fn not_json_quotes_the_start() {
    let log = format!("Traceback (most recent call last):\n{}", "x".repeat(200));
    let Err(ResultError::NotJson { start, reason }) = parse_result(&log) else {
        panic!("expected NotJson");
    };
    assert_eq!(start.chars().count(), 81, "80 characters and an ellipsis");
    assert!(start.starts_with("Traceback (most recent"), "{start}");
    assert!(start.ends_with('…'));
    assert!(reason.contains("line 1"), "{reason}");
}

#[test]
fn truncated_message_is_not_json() {
    // What Kubernetes keeps of a longer message: the first 4096 bytes.
    let cut = &message(r#""metrics": {"accuracy": 0.9}"#)[..60];
    assert!(matches!(
        parse_result(cut),
        Err(ResultError::NotJson { .. })
    ));
}

#[test]
fn nan_gets_a_hint() {
    // Python's json.dumps writes NaN unless allow_nan=False.
    let err = parse_result(&message(r#""metrics": {"accuracy": NaN}"#)).unwrap_err();
    assert!(matches!(err, ResultError::NotJson { .. }));
    assert!(
        err.to_string().contains("NaN and Infinity are not JSON"),
        "{err}"
    );
}

#[test]
fn messages_read_well() {
    let cases = [
        (
            ResultError::Missing { field: "sha256" },
            "the termination message has no sha256, which is required",
        ),
        (
            uri_error(
                "modelUri",
                "/out/m.onnx",
                "scheme must be file://, pvc://, https:// or s3://",
            ),
            "modelUri \"/out/m.onnx\": scheme must be file://, pvc://, https:// or s3://",
        ),
        (
            ResultError::TooLong { bytes: 5000 },
            "the termination message is 5000 bytes, more than the 4096 Kubernetes keeps: \
             report URIs and a few metrics only",
        ),
    ];
    for (err, want) in cases {
        assert_eq!(err.to_string(), want);
    }
    assert!(
        ResultError::Empty
            .to_string()
            .contains("/dev/termination-log")
    );
}

#[test]
fn long_values_are_cut_in_errors() {
    let long = "s".repeat(300);
    let err = parse_result(&format!(r#"{{"modelUri": "{URI}", "sha256": "{long}"}}"#)).unwrap_err();
    let ResultError::Sha256 { value } = err else {
        panic!("expected Sha256, got {err:?}");
    };
    assert_eq!(value.chars().count(), 81);
}

#[test]
fn status_round_trip() {
    let result = parse_result(&message(
        r#""version": "retrain-3", "metrics": {"accuracy": 0.5}"#,
    ))
    .unwrap();
    let json = serde_json::to_value(&result).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"modelUri": URI, "sha256": digest(), "version": "retrain-3",
                           "metrics": {"accuracy": 0.5}})
    );
    let back: JobResult = serde_json::from_value(json).unwrap();
    assert_eq!(back, result);
    // What status writes, the parser reads again.
    assert_eq!(
        parse_result(&serde_json::to_string(&result).unwrap()),
        Ok(result)
    );
}
