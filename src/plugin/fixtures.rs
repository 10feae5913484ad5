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
