//! A ModelDeployment in the middle of a canary rollout, for the render and request tests.

use k8s_openapi::jiff::Timestamp;
use serde_json::json;

use crate::api::ModelDeployment;

/// The time the fixtures are rendered at.
pub fn now() -> Timestamp {
    "2025-01-01T12:00:00Z"
        .parse()
        .unwrap_or(Timestamp::UNIX_EPOCH)
}

/// A bare object: no status, no rollout section.
pub fn bare() -> ModelDeployment {
    serde_json::from_value(json!({
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml"},
        "spec": {"model": {"name": "iris", "uri": "s3://models/iris/1/model.onnx"}, "replicas": 3}
    }))
    .unwrap()
}

/// `iris` in `ml`: stable v1, canary v2 paused at step 2 of 4, one background metric with two
/// measurements, an acknowledged promote, three history entries.
pub fn paused() -> ModelDeployment {
    serde_json::from_value(json!({
        "apiVersion": "modelpilot.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "iris", "namespace": "ml"},
        "spec": {
            "model": {"name": "iris", "uri": "s3://models/iris/2/model.onnx", "version": "v2"},
            "replicas": 3,
            "rollout": {"steps": [
                {"setWeight": 20},
                {"pause": {"durationSeconds": 60}},
                {"analysis": {"metrics": [
                    {"name": "error-rate", "errorRate": {"max": 0.01}},
                    {"name": "latency", "latency": {"bound": {"maxRatioToStable": 1.2}}}
                ]}},
                {"setWeight": 50}
            ]}
        },
        "status": {
            "phase": "Ready",
            "readyReplicas": 3,
            "stable": {
                "name": "aaaaaaaaaa", "uri": "s3://models/iris/1/model.onnx", "version": "v1",
                "sha256": "1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d1a2b3c4d5e6f7a8b9c0d1a2b"
            },
            "rollout": {
                "phase": "Paused",
                "canary": {"name": "cccccccccc", "uri": "s3://models/iris/2/model.onnx", "version": "v2"},
                "currentStep": 1,
                "stepStartedAt": "2025-01-01T11:59:15Z",
                "desiredWeight": 20,
                "appliedWeight": 20,
                "pause": {"reason": "PauseStep", "message": "waiting 60s", "since": "2025-01-01T11:59:15Z"},
                "metrics": [{
                    "name": "error-rate", "scope": "background",
                    "taken": 2, "successful": 1, "failed": 0, "inconclusive": 1,
                    "measurements": [
                        {"at": "2025-01-01T11:59:30Z", "canary": 0.0, "stable": 0.0, "samples": 4,
                         "verdict": "Inconclusive", "message": "4 samples, need 20"},
                        {"at": "2025-01-01T11:59:50Z", "canary": 0.0125, "stable": 0.00004,
                         "samples": 160, "verdict": "Successful"}
                    ]
                }],
                "lastRequest": {
                    "id": "20250101T115800Z-0000abcd", "action": "promote", "result": "Done",
                    "message": "moved to step 2", "at": "2025-01-01T11:58:00Z"
                }
            },
            "history": [
                {"revision": {"name": "0000000000", "uri": "s3://models/iris/0/model.onnx", "version": "v0"},
                 "outcome": "Promoted", "at": "2024-12-30T09:00:00Z", "reason": "StepsComplete"},
                {"revision": {"name": "bbbbbbbbbb", "uri": "s3://models/iris/x/model.onnx"},
                 "outcome": "RolledBack", "at": "2024-12-31T10:00:00Z", "reason": "AnalysisFailed",
                 "message": "error-rate 0.2 > 0.01"},
                {"revision": {"name": "aaaaaaaaaa", "uri": "s3://models/iris/1/model.onnx", "version": "v1"},
                 "outcome": "Promoted", "at": "2025-01-01T08:00:00Z", "reason": "StepsComplete"}
            ]
        }
    }))
    .unwrap()
}

/// [`paused`] where the canary v2 came out of retraining 3 (drift in two features), after
/// retraining 1 failed and retraining 2's candidate (`bbbbbbbbbb`) was rolled back; monitoring
/// finds persistent drift and degraded accuracy on the stable v1.
pub fn retrained() -> ModelDeployment {
    let mut mdep = paused();
    if let Some(status) = mdep.status.as_mut() {
        status.monitoring = Some(serde_json::from_value(monitoring()).unwrap());
        status.retraining = Some(serde_json::from_value(retraining()).unwrap());
    }
    mdep
}

/// `status.monitoring` of [`retrained`].
pub fn monitoring() -> serde_json::Value {
    let feature = |name: &str, statistic: f64, p: f64, drift: bool| {
        json!({"name": name, "method": "KS", "statistic": statistic, "pValue": p,
               "threshold": 0.0125, "samples": 1200, "drift": drift})
    };
    json!({
        "revision": "aaaaaaaaaa",
        "lastEvaluation": "2025-01-01T11:59:00Z",
        "evaluations": 42,
        "drift": {
            "drift": true, "recent": [false, true, true], "persistent": true,
            "driftedFeatures": ["petal_length", "petal_width"],
            "features": [
                feature("sepal_length", 0.02, 0.9, false),
                feature("petal_length", 0.31, 0.00001, true),
                feature("petal_width", 0.22, 0.0004, true)
            ]
        },
        "prediction": {
            "drift": false, "recent": [false, false, false], "persistent": false,
            "features": [{"name": "prediction", "method": "ChiSquare", "statistic": 1.2,
                          "pValue": 0.55, "threshold": 0.05, "samples": 1180, "drift": false}]
        },
        "accuracy": {"metric": "accuracy", "value": 0.81, "labels": 200, "atPromotion": 0.95,
                     "recent": [false, true, true], "persistent": true}
    })
}

/// `status.retraining` of [`retrained`]: three records, oldest first.
pub fn retraining() -> serde_json::Value {
    let from = json!({"name": "0000000000", "uri": "s3://models/iris/0/model.onnx",
                      "version": "v0"});
    json!({
        "lastId": 3,
        "history": [
            {"id": 1, "phase": "Failed", "from": from, "job": "iris-retrain-1",
             "outputUri": "s3://out/iris/1/",
             "trigger": {"reason": "Drift", "at": "2024-12-31T06:00:00Z",
                         "windowStart": "2024-12-31T05:57:00Z", "windowEnd": "2024-12-31T06:00:00Z",
                         "features": ["petal_length"], "detail": "drift in 2 of the last 3 windows"},
             "startedAt": "2024-12-31T06:00:00Z", "finishedAt": "2024-12-31T06:05:00Z",
             "message": "Job failed (BackoffLimitExceeded): Job has reached the specified backoff limit"},
            {"id": 2, "phase": "RolledBack", "from": from, "job": "iris-retrain-2",
             "outputUri": "s3://out/iris/2/",
             "trigger": {"reason": "AccuracyDegraded", "at": "2024-12-31T09:00:00Z",
                         "windowStart": "2024-12-31T08:57:00Z", "windowEnd": "2024-12-31T09:00:00Z",
                         "detail": "accuracy 0.700 on 200 labels"},
             "startedAt": "2024-12-31T09:00:00Z",
             "result": {"modelUri": "s3://models/iris/x/model.onnx", "sha256": "ab".repeat(32)},
             "candidate": "bbbbbbbbbb", "finishedAt": "2024-12-31T10:00:00Z",
             "message": "rolled back (AnalysisFailed): error-rate 0.2 > 0.01"},
            {"id": 3, "phase": "Candidate", "job": "iris-retrain-3",
             "from": {"name": "aaaaaaaaaa", "uri": "s3://models/iris/1/model.onnx", "version": "v1"},
             "outputUri": "s3://out/iris/3/",
             "trigger": {"reason": "Drift", "at": "2025-01-01T11:40:00Z",
                         "windowStart": "2025-01-01T11:37:00Z", "windowEnd": "2025-01-01T11:40:00Z",
                         "features": ["petal_length", "petal_width"],
                         "detail": "drift in 2 of the last 3 windows"},
             "startedAt": "2025-01-01T11:40:00Z",
             "result": {"modelUri": "s3://models/iris/2/model.onnx", "sha256": "cd".repeat(32),
                        "version": "v2", "metrics": {"accuracy": 0.96}},
             "candidate": "cccccccccc",
             "message": "candidate s3://models/iris/2/model.onnx"}
        ]
    })
}
