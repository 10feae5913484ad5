//! What a run measured: every request's outcome folded into counts, error kinds and an HDR
//! latency histogram — overall, per answering pod and per revision — and the result
//! rendered as a table for people or as JSON for scripts (fields in the README).
//!
//! Outcomes arrive as [`Event`]s on one channel and are folded by one task into one
//! [`Tally`], so the histograms exist once per scope rather than once per worker.

use std::{collections::BTreeMap, fmt::Write, time::Duration};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::inputs::TensorMeta;

/// Scope name of requests whose response named no pod or revision.
pub const UNKNOWN: &str = "unknown";

/// Why a request (or a feedback post) did not get a 2xx answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    Status(u16),
    Connect,
    Timeout,
    /// The connection broke mid-request or the body could not be read.
    Transport,
}

impl ErrorKind {
    /// Key in `errors_by_kind`: `http_503`, `connect`, `timeout`, `transport`.
    pub fn label(self) -> String {
        match self {
            ErrorKind::Status(code) => format!("http_{code}"),
            ErrorKind::Connect => "connect".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Transport => "transport".into(),
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A 2xx answer after this long.
    Answered(Duration),
    Failed(ErrorKind),
    /// A feedback post: accepted rows, or why not.
    Feedback(Result<u64, ErrorKind>),
}

/// One outcome and who answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub pod: String,
    pub revision: String,
    pub outcome: Outcome,
}

/// Feedback posts of a scope.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct FeedbackStats {
    pub sent: u64,
    pub accepted: u64,
    pub accepted_rows: u64,
    pub errors_by_kind: BTreeMap<String, u64>,
}

/// Counts and latencies of one scope (overall, a pod, a revision).
#[derive(Clone, Debug)]
pub struct Stats {
    requests: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
    latency_us: Histogram<u64>,
    feedback: FeedbackStats,
}

/// Highest latency the histograms resolve (longer ones are recorded as this).
const MAX_LATENCY_US: u64 = 3_600_000_000;

impl Default for Stats {
    fn default() -> Stats {
        // 1 µs to 1 h at 3 significant digits: constant bounds, not input.
        let latency_us = Histogram::new_with_bounds(1, MAX_LATENCY_US, 3)
            .expect("constant histogram bounds are valid");
        Stats {
            requests: 0,
            ok: 0,
            errors: BTreeMap::new(),
            latency_us,
            feedback: FeedbackStats::default(),
        }
    }
}

impl Stats {
    fn record(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Answered(latency) => {
                self.requests += 1;
                self.ok += 1;
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                self.latency_us
                    .saturating_record(us.clamp(1, MAX_LATENCY_US));
            }
            Outcome::Failed(kind) => {
                self.requests += 1;
                *self.errors.entry(kind.label()).or_default() += 1;
            }
            Outcome::Feedback(result) => {
                self.feedback.sent += 1;
                match result {
                    Ok(rows) => {
                        self.feedback.accepted += 1;
                        self.feedback.accepted_rows += rows;
                    }
                    Err(kind) => {
                        *self
                            .feedback
                            .errors_by_kind
                            .entry(kind.label())
                            .or_default() += 1
                    }
                }
            }
        }
    }

    fn summary(&self, elapsed: Duration, feedback: bool) -> Summary {
        let errors = self.requests - self.ok;
        let secs = elapsed.as_secs_f64();
        let ms = |us: u64| us as f64 / 1000.0;
        let h = &self.latency_us;
        Summary {
            requests: self.requests,
            ok: self.ok,
            errors,
            error_rate: if self.requests == 0 {
                0.0
            } else {
                errors as f64 / self.requests as f64
            },
            throughput_rps: if secs > 0.0 {
                self.ok as f64 / secs
            } else {
                0.0
            },
            latency_ms: (self.ok > 0).then(|| Latency {
                p50: ms(h.value_at_quantile(0.50)),
                p90: ms(h.value_at_quantile(0.90)),
                p99: ms(h.value_at_quantile(0.99)),
                max: ms(h.max()),
                mean: h.mean() / 1000.0,
            }),
            errors_by_kind: self.errors.clone(),
            feedback: feedback.then(|| self.feedback.clone()),
        }
    }
}

/// Stats overall, per pod and per revision.
#[derive(Debug, Default)]
pub struct Tally {
    overall: Stats,
    by_pod: BTreeMap<String, Stats>,
    by_revision: BTreeMap<String, Stats>,
}

impl Tally {
    pub fn record(&mut self, event: &Event) {
        self.overall.record(&event.outcome);
        self.by_pod
            .entry(event.pod.clone())
            .or_default()
            .record(&event.outcome);
        self.by_revision
            .entry(event.revision.clone())
            .or_default()
            .record(&event.outcome);
    }

    /// Requests recorded (answered or failed).
    pub fn requests(&self) -> u64 {
        self.overall.requests
    }
}

/// What was asked for.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    pub target: String,
    pub service: Option<String>,
    pub model: String,
    pub inputs: Vec<TensorMeta>,
    pub input_source: String,
    pub bounds: Bounds,
    pub max_error_rate: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Bounds {
    pub requests: u64,
    pub duration_seconds: f64,
    pub concurrency: usize,
    pub rate: Option<f64>,
    pub timeout_seconds: f64,
    pub feedback: bool,
}

/// Which bound ended the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoppedBy {
    Requests,
    Duration,
    /// Ctrl-C: no new requests were started after it.
    Interrupted,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// The figures of one scope.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub requests: u64,
    pub ok: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub throughput_rps: f64,
    pub latency_ms: Option<Latency>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub feedback: Option<FeedbackStats>,
}

/// The whole report; `--json` prints it as is.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    #[serde(flatten)]
    pub info: RunInfo,
    pub stopped_by: StoppedBy,
    pub elapsed_seconds: f64,
    pub overall: Summary,
    pub by_pod: BTreeMap<String, Summary>,
    pub by_revision: BTreeMap<String, Summary>,
    pub error_rate_exceeded: bool,
}

impl Report {
    pub fn new(info: RunInfo, tally: &Tally, stopped_by: StoppedBy, elapsed: Duration) -> Report {
        let feedback = info.bounds.feedback;
        let scope = |m: &BTreeMap<String, Stats>| {
            m.iter()
                .map(|(k, s)| (k.clone(), s.summary(elapsed, feedback)))
                .collect()
        };
        let overall = tally.overall.summary(elapsed, feedback);
        let error_rate_exceeded = info
            .max_error_rate
            .is_some_and(|max| overall.error_rate > max);
        Report {
            stopped_by,
            elapsed_seconds: elapsed.as_secs_f64(),
            by_pod: scope(&tally.by_pod),
            by_revision: scope(&tally.by_revision),
            overall,
            error_rate_exceeded,
            info,
        }
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let i = &self.info;
        let b = &i.bounds;
        let inputs: Vec<String> = i
            .inputs
            .iter()
            .map(|t| format!("{} {} {:?}", t.name, t.datatype, t.shape))
            .collect();
        let via = i
            .service
            .as_ref()
            .map(|s| format!(" (Service {s})"))
            .unwrap_or_default();
        let _ = writeln!(out, "target    {}{via}, model {}", i.target, i.model);
        let _ = writeln!(
            out,
            "inputs    {} from {}",
            inputs.join(", "),
            i.input_source
        );
        let rate = b
            .rate
            .map_or("unpaced".to_string(), |r| format!("{r} req/s"));
        let _ = writeln!(
            out,
            "bounds    {} requests or {} s, concurrency {}, {rate}, timeout {} s",
            b.requests, b.duration_seconds, b.concurrency, b.timeout_seconds
        );
        let stop = match self.stopped_by {
            StoppedBy::Requests => "request bound reached",
            StoppedBy::Duration => "time bound reached",
            StoppedBy::Interrupted => "interrupted",
        };
        let _ = writeln!(
            out,
            "finished  {} requests in {:.3} s ({stop})\n",
            self.overall.requests, self.elapsed_seconds
        );
        let rows: Vec<(String, &Summary)> = std::iter::once(("overall".to_string(), &self.overall))
            .chain(self.by_pod.iter().map(|(k, s)| (format!("pod {k}"), s)))
            .chain(
                self.by_revision
                    .iter()
                    .map(|(k, s)| (format!("revision {k}"), s)),
            )
            .collect();
        let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max(5);
        let _ = writeln!(
            out,
            "{:<width$}  {:>8} {:>8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "scope", "requests", "ok", "errors", "ok/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for (name, s) in &rows {
            let l = |f: fn(&Latency) -> f64| {
                s.latency_ms
                    .as_ref()
                    .map_or("-".into(), |l| format!("{:.2}", f(l)))
            };
            let _ = writeln!(
                out,
                "{name:<width$}  {:>8} {:>8} {:>7} {:>9.1} {:>9} {:>9} {:>9} {:>9}",
                s.requests,
                s.ok,
                s.errors,
                s.throughput_rps,
                l(|l| l.p50),
                l(|l| l.p90),
                l(|l| l.p99),
                l(|l| l.max)
            );
        }
        let kinds = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, n)| format!("{k}={n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (name, s) in rows.iter().filter(|(_, s)| !s.errors_by_kind.is_empty()) {
            let _ = writeln!(out, "errors    {name}: {}", kinds(&s.errors_by_kind));
        }
        for (name, s) in &rows {
            if let Some(f) = &s.feedback {
                let errors = if f.errors_by_kind.is_empty() {
                    "none".into()
                } else {
                    kinds(&f.errors_by_kind)
                };
                let _ = writeln!(
                    out,
                    "feedback  {name}: sent {}, accepted {} ({} rows), errors {errors}",
                    f.sent, f.accepted, f.accepted_rows
                );
            }
        }
        if let Some(max) = i.max_error_rate {
            let verdict = if self.error_rate_exceeded {
                "EXCEEDED"
            } else {
                "ok"
            };
            let _ = writeln!(
                out,
                "error rate {:.4} (max {max}): {verdict}",
                self.overall.error_rate
            );
        }
        out
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
