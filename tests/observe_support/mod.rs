//! Helpers of the observability integration tests (`serve_metrics`, `serve_feedback`):
//! scraping `/metrics` and reading samples out of the Prometheus text page.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde_json::Value;

/// One sample line: metric name, labels, value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the sample lines of a Prometheus text (or OpenMetrics) page.
pub fn parse(page: &str) -> Vec<Sample> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("unparsable sample line: {l}")))
        .collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let Some((name, rest)) = series.split_once('{') else {
        return Some(Sample {
            name: series.into(),
            labels: BTreeMap::new(),
            value,
        });
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest.strip_suffix('}')?;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        let mut end = None;
        let mut escaped = false;
        for (i, c) in after.char_indices() {
            match (c, escaped) {
                ('\\', false) => escaped = true,
                ('"', false) => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let end = end?;
        labels.insert(key.to_string(), after[..end].replace("\\\"", "\""));
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some(Sample {
        name: name.into(),
        labels,
        value,
    })
}

/// Samples named `name` whose labels include all of `labels`.
pub fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The single sample matching, or a panic naming what was looked for.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(samples, name, labels).as_slice() {
        [one] => one.value,
        other => panic!("expected one sample {name}{labels:?}, found {other:?}"),
    }
}

/// Sum of the matching samples' values.
pub fn sum(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(samples, name, labels).iter().map(|s| s.value).sum()
}

/// `GET /metrics` with an optional `Accept` header: `(content type, body)`.
pub async fn scrape(base: &str, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(format!("{base}/metrics"));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("GET /metrics");
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (content_type, response.text().await.expect("metrics body"))
}

/// POSTs a JSON body: `(status, JSON answer or Null)`.
pub async fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let bytes = response.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Six iris rows, two of each species, for requests whose predictions a test labels.
pub const IRIS_ROWS: [[f32; 4]; 6] = [
    [5.1, 3.5, 1.4, 0.2],
    [4.9, 3.0, 1.4, 0.2],
    [6.0, 2.9, 4.5, 1.5],
    [5.7, 2.8, 4.1, 1.3],
    [6.9, 3.1, 5.8, 2.2],
    [7.7, 3.0, 6.1, 2.3],
];

/// An iris inference request for `rows`, with an optional request id.
pub fn iris_request(rows: &[[f32; 4]], id: Option<&str>) -> Value {
    let mut body = serde_json::json!({"inputs": [{
        "name": "float_input", "shape": [rows.len(), 4], "datatype": "FP32", "data": rows}]});
    if let Some(id) = id {
        body["id"] = Value::from(id);
    }
    body
}

/// The `data` of the output named `name` in an inference response.
pub fn output<'a>(response: &'a Value, name: &str) -> &'a Value {
    let outputs = response["outputs"].as_array().expect("outputs array");
    let found = outputs.iter().find(|o| o["name"] == name);
    &found.unwrap_or_else(|| panic!("no output {name} in {response}"))["data"]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_and_values() {
        let page = "# HELP x y\nx_total{a=\"1\",b=\"q\\\"t\"} 3\nup 1\nh_bucket{le=\"+Inf\"} 2\n";
        let samples = parse(page);
        assert_eq!(value(&samples, "x_total", &[("a", "1")]), 3.0);
        assert_eq!(samples[0].labels["b"], "q\"t");
        assert_eq!(value(&samples, "up", &[]), 1.0);
        assert_eq!(value(&samples, "h_bucket", &[("le", "+Inf")]), 2.0);
    }
}
