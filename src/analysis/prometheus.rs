//! A client of the Prometheus HTTP API (`GET /api/v1/query`, instant queries) for metrics with
//! `source: Prometheus` and custom `query` metrics.
//!
//! Built-in metrics are asked as PromQL over the labels the scrape configuration gives the
//! inference pods' series (`namespace`, `pod`, `revision`, see
//! `hack/cluster/prometheus/prometheus.yml`), always as `increase()` over the window, so the
//! same counters as a direct scrape come back and the same code computes the values from them
//! ([`window_counts`]). For example, the errors of revision `r` in `ns` over 30 s:
//!
//! ```text
//! sum(increase(modelpilot_inference_requests_total{namespace="ns",revision="r",endpoint="infer",code=~"5.."}[30s]))
//! ```
//!
//! An empty result is "no value" (Inconclusive, never Failed); a failed request, an error
//! answer or a result of the wrong shape is an error (the measurement's verdict is Error).
//! `increase()` needs two samples of a series inside the range, so an interval shorter than
//! twice Prometheus' scrape interval stays empty.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

use super::{
    exposition::parse_value,
    scrape::error_chain,
    snapshot::{
        Counts, FEATURE_BASELINE, FEATURE_BUCKET, FEEDBACK_LABELS, LATENCY_BUCKET, PREDICTIONS,
        REQUESTS,
    },
};
use crate::api::PrometheusSpec;

/// Largest answer read.
pub const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Why a query gave no usable answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("Prometheus at {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error("Prometheus answered {kind}: {message}")]
    Api { kind: String, message: String },
    #[error("cannot read Prometheus' answer: {0}")]
    Decode(String),
    #[error("query result is {0}; expected a scalar or one series")]
    Shape(String),
}

/// The result of an instant query.
#[derive(Clone, Debug, PartialEq)]
pub enum QueryValue {
    Scalar(f64),
    /// Series: labels and value.
    Vector(Vec<(BTreeMap<String, String>, f64)>),
}

/// Runs instant queries with a shared HTTP client; the timeout comes from each call's
/// [`PrometheusSpec`].
#[derive(Clone, Debug, Default)]
pub struct Prometheus {
    client: reqwest::Client,
}

impl Prometheus {
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// Evaluates `promql` at `at`.
    pub async fn query(
        &self,
        spec: &PrometheusSpec,
        promql: &str,
        at: &Time,
    ) -> Result<QueryValue, QueryError> {
        let url = format!("{}/api/v1/query", spec.url.trim_end_matches('/'));
        let timeout =
            Duration::from_secs(u64::from(spec.timeout_seconds.clamp(1, 60).unsigned_abs()));
        let time = format!("{:.3}", at.0.as_millisecond() as f64 / 1000.0);
        let unreachable = |e: &reqwest::Error| QueryError::Unreachable {
            url: spec.url.clone(),
            message: error_chain(e),
        };
        let mut response = self
            .client
            .get(&url)
            .query(&[
                ("query", promql),
                ("time", &time),
                ("timeout", &format!("{}s", timeout.as_secs())),
            ])
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&e))? {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(QueryError::Decode(format!(
                    "answer larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        decode(status.as_u16(), &body)
    }

    /// Evaluates a query that should give one number: `None` for an empty result.
    pub async fn single(
        &self,
        spec: &PrometheusSpec,
        promql: &str,
        at: &Time,
    ) -> Result<Option<f64>, QueryError> {
        single_value(self.query(spec, promql, at).await?)
    }
}

/// Reads an answer of `/api/v1/query` (HTTP status and body).
///
/// ```
/// use modelpilot::analysis::prometheus::{QueryValue, decode};
/// let body = br#"{"status":"success","data":{"resultType":"scalar","result":[1.7e9,"0.25"]}}"#;
/// assert_eq!(decode(200, body), Ok(QueryValue::Scalar(0.25)));
/// ```
pub fn decode(status: u16, body: &[u8]) -> Result<QueryValue, QueryError> {
    let answer: Value = serde_json::from_slice(body).map_err(|e| {
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
        QueryError::Decode(format!("HTTP {status}, not JSON ({e}): {text}"))
    })?;
    if answer["status"] != "success" {
        let text = |k: &str| answer[k].as_str().unwrap_or("").to_string();
        return Err(QueryError::Api {
            kind: format!("{} (HTTP {status})", text("errorType")),
            message: text("error"),
        });
    }
    let data = &answer["data"];
    let result = &data["result"];
    match data["resultType"].as_str() {
        Some("scalar") => Ok(QueryValue::Scalar(sample_value(result)?)),
        Some("vector") => {
            let series = result
                .as_array()
                .ok_or_else(|| QueryError::Decode("vector result is not a list".into()))?;
            series
                .iter()
                .map(|s| {
                    let labels = s["metric"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                                .collect()
                        })
                        .unwrap_or_default();
                    Ok((labels, sample_value(&s["value"])?))
                })
                .collect::<Result<_, _>>()
                .map(QueryValue::Vector)
        }
        Some(other) => Err(QueryError::Shape(format!("a {other}"))),
        None => Err(QueryError::Decode("no resultType".into())),
    }
}

/// `[<time>, "<value>"]` → the value.
fn sample_value(pair: &Value) -> Result<f64, QueryError> {
    pair.get(1)
        .and_then(Value::as_str)
        .and_then(parse_value)
        .ok_or_else(|| QueryError::Decode(format!("bad sample {pair}")))
}

/// A scalar, or the value of a vector's only series; `None` for an empty vector.
pub fn single_value(value: QueryValue) -> Result<Option<f64>, QueryError> {
    match value {
        QueryValue::Scalar(v) => Ok(Some(v)),
        QueryValue::Vector(series) => match series.as_slice() {
            [] => Ok(None),
            [(_, v)] => Ok(Some(*v)),
            more => Err(QueryError::Shape(format!("{} series", more.len()))),
        },
    }
}

/// Replaces `$namespace` and `$revision` in a custom query.
///
/// ```
/// use modelpilot::analysis::prometheus::substitute;
/// let q = r#"sum(rate(orders_total{namespace="$namespace",revision="$revision"}[1m]))"#;
/// assert_eq!(substitute(q, "shop", "a1b2c3d4e5"),
///     r#"sum(rate(orders_total{namespace="shop",revision="a1b2c3d4e5"}[1m]))"#);
/// ```
pub fn substitute(promql: &str, namespace: &str, revision: &str) -> String {
    promql
        .replace("$namespace", namespace)
        .replace("$revision", revision)
}

/// What a built-in metric needs from Prometheus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Requests,
    Errors,
    Latency,
    Labels,
    Predictions,
    Features,
    Baseline,
}

/// The PromQL of one part for one revision over `window`.
///
/// ```
/// use std::time::Duration;
/// use modelpilot::analysis::prometheus::{Part, query_for};
/// assert_eq!(
///     query_for(Part::Latency, "ns", "r1", Duration::from_secs(30)),
///     r#"sum by (le) (increase(modelpilot_inference_request_duration_seconds_bucket{namespace="ns",revision="r1",endpoint="infer"}[30s]))"#
/// );
/// ```
pub fn query_for(part: Part, namespace: &str, revision: &str, window: Duration) -> String {
    let sel = format!(
        r#"namespace="{}",revision="{}""#,
        escape(namespace),
        escape(revision)
    );
    let range = format!("{}s", window.as_secs().max(1));
    let infer = r#"endpoint="infer""#;
    match part {
        Part::Requests => format!("sum(increase({REQUESTS}{{{sel},{infer}}}[{range}]))"),
        Part::Errors => {
            format!(r#"sum(increase({REQUESTS}{{{sel},{infer},code=~"5.."}}[{range}]))"#)
        }
        Part::Latency => {
            format!("sum by (le) (increase({LATENCY_BUCKET}{{{sel},{infer}}}[{range}]))")
        }
        Part::Labels => {
            format!("sum by (label, predicted) (increase({FEEDBACK_LABELS}{{{sel}}}[{range}]))")
        }
        Part::Predictions => {
            format!("sum by (class) (increase({PREDICTIONS}{{{sel}}}[{range}]))")
        }
        Part::Features => {
            format!("sum by (feature, le) (increase({FEATURE_BUCKET}{{{sel}}}[{range}]))")
        }
        Part::Baseline => {
            format!(
                "max by (feature, upper_bound) (last_over_time({FEATURE_BASELINE}{{{sel}}}[{range}]))"
            )
        }
    }
}

/// Escapes a PromQL string literal's content.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Runs the queries of `parts` for one revision and assembles their answers into [`Counts`]
/// (the window's increases), the shape the direct scrape produces.
pub async fn window_counts(
    prometheus: &Prometheus,
    spec: &PrometheusSpec,
    parts: &[Part],
    namespace: &str,
    revision: &str,
    window: Duration,
    at: &Time,
) -> Result<Counts, QueryError> {
    let mut counts = Counts::default();
    for part in parts {
        let promql = query_for(*part, namespace, revision, window);
        let value = prometheus.query(spec, &promql, at).await?;
        fill(&mut counts, *part, value);
    }
    Ok(counts)
}

/// Adds one part's answer to `counts`.
pub fn fill(counts: &mut Counts, part: Part, value: QueryValue) {
    let series = match value {
        QueryValue::Vector(series) => series,
        QueryValue::Scalar(v) => vec![(BTreeMap::new(), v)],
    };
    let label = |labels: &BTreeMap<String, String>, k: &str| labels.get(k).cloned();
    for (labels, v) in series {
        if !v.is_finite() {
            continue;
        }
        let le = label(&labels, "le").as_deref().and_then(parse_value);
        match part {
            Part::Requests => counts.requests += v,
            Part::Errors => counts.errors += v,
            Part::Latency => {
                if let Some(le) = le {
                    counts.latency.add_bucket(le, v);
                }
            }
            Part::Labels => {
                if let (Some(t), Some(p)) = (label(&labels, "label"), label(&labels, "predicted")) {
                    *counts.labels.entry((t, p)).or_default() += v;
                }
            }
            Part::Predictions => {
                if let Some(class) = label(&labels, "class") {
                    *counts.predictions.entry(class).or_default() += v;
                }
            }
            Part::Features => {
                if let (Some(f), Some(le)) = (label(&labels, "feature"), le) {
                    counts.features.entry(f).or_default().add_bucket(le, v);
                }
            }
            Part::Baseline => {
                let upper = label(&labels, "upper_bound")
                    .as_deref()
                    .and_then(parse_value);
                if let (Some(f), Some(le)) = (label(&labels, "feature"), upper) {
                    let shares = counts.baseline.entry(f).or_default();
                    if let Err(i) = shares.binary_search_by(|(b, _)| b.total_cmp(&le)) {
                        shares.insert(i, (le, v));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "prometheus_tests.rs"]
mod tests;
