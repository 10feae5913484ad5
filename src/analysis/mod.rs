//! Canary analysis: measure the canary revision (and the stable one over the same window),
//! judge the measurement against the metric's bound, and tally the verdicts.
//!
//! The controller, per reconcile of a rollout that is measuring, primes the [`Analyzer`] (a
//! recent baseline of every pod), measures each metric that `rollout::steps::due_metrics` says is
//! due, and folds the measurements in with [`verdict::tally`].
//!
//! | file | what |
//! |---|---|
//! | `exposition.rs` | reads the Prometheus text format |
//! | `snapshot.rs` | a pod's page → the counters analysis needs ([`snapshot::Counts`]) |
//! | `window.rs` | differences of snapshots (restarts handled), summed per revision |
//! | `history.rs` | per-pod snapshot history, thinned with age |
//! | `values.rs` | error rate, latency quantile, scores, JS distance, PSI (pure) |
//! | `verdict.rs` | [`verdict::judge`], [`verdict::tally`], [`verdict::due`] (pure) |
//! | `measure.rs` | a metric's kind and the judging of its counters (pure) |
//! | `scrape.rs` | `source: Direct`: the pods' own `/metrics` |
//! | `prometheus.rs` | `source: Prometheus` and custom queries |

pub mod exposition;
pub mod history;
pub mod measure;
pub mod prometheus;
pub mod scrape;
pub mod snapshot;
pub mod values;
pub mod verdict;
pub mod window;

use std::time::Duration;

use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time};

pub use self::scrape::PodAddr;
use self::{
    measure::{Judged, Kind, judge_counts, judge_query},
    prometheus::{Prometheus, substitute, window_counts},
    scrape::{RevisionWindow, Scraper},
    snapshot::Counts,
};
use crate::api::{AnalysisMetric, Measurement, MeasurementVerdict, MetricSource, PrometheusSpec};

/// One revision and its ready pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revision {
    /// The revision hash (the `modelpilot.io/revision` label; `$revision` in queries).
    pub name: String,
    pub pods: Vec<PodAddr>,
}

/// What a measurement looks at: the namespace, the canary and the stable revision with their
/// ready pods, and optionally the window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub namespace: String,
    pub canary: Revision,
    pub stable: Revision,
    /// The window measured; `None`: the metric's `intervalSeconds` (each measurement covers
    /// the time since the previous one).
    pub window: Option<Duration>,
}

impl Target {
    /// A target from the revisions' ready pods and the server port; pods without a UID or an
    /// IP yet are left out.
    pub fn new(
        namespace: &str,
        port: i32,
        canary: (&str, Vec<Pod>),
        stable: (&str, Vec<Pod>),
    ) -> Target {
        let revision = |(name, pods): (&str, Vec<Pod>)| Revision {
            name: name.to_string(),
            pods: pods.iter().filter_map(|p| pod_addr(p, port)).collect(),
        };
        Target {
            namespace: namespace.to_string(),
            canary: revision(canary),
            stable: revision(stable),
            window: None,
        }
    }

    /// The same target measured over `window` instead of the metric's interval.
    pub fn with_window(self, window: Duration) -> Target {
        Target {
            window: Some(window),
            ..self
        }
    }
}

/// Where a pod's metrics are: its UID, name, IP and the server port.
pub fn pod_addr(pod: &Pod, port: i32) -> Option<PodAddr> {
    Some(PodAddr {
        uid: pod.metadata.uid.clone()?,
        name: pod.metadata.name.clone().unwrap_or_default(),
        ip: pod
            .status
            .as_ref()?
            .pod_ip
            .clone()
            .filter(|ip| !ip.is_empty())?,
        port: u16::try_from(port).ok()?,
    })
}

/// Measures analysis metrics: the pods' own `/metrics` or Prometheus. One per operator; it
/// keeps the recent scrapes of every pod it has seen (memory only, see [`scrape`]).
#[derive(Debug, Default)]
pub struct Analyzer {
    scraper: Scraper,
    prometheus: Prometheus,
}

impl Analyzer {
    pub fn new(scraper: Scraper, prometheus: Prometheus) -> Self {
        Self {
            scraper,
            prometheus,
        }
    }

    /// Scrapes the target's pods so later windows have a baseline. Call it when an analysis
    /// starts and at every reconcile; failures are ignored here (a measurement reports them).
    /// Returns the pods that answered.
    pub async fn prime(&self, target: &Target) -> usize {
        let pods: Vec<PodAddr> = [&target.canary.pods, &target.stable.pods]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        self.scraper.prime(&pods).await
    }

    /// Takes one measurement of `metric`, stamped `now`. Never fails: a source that cannot be
    /// read is an Error measurement, too little data an Inconclusive one.
    pub async fn measure(
        &self,
        metric: &AnalysisMetric,
        target: &Target,
        prometheus: Option<&PrometheusSpec>,
        now: Time,
    ) -> Measurement {
        let judged = self.judged(metric, target, prometheus, &now).await;
        Measurement {
            at: now,
            canary: judged.canary,
            stable: judged.stable,
            samples: judged.samples,
            verdict: judged.verdict,
            message: judged.message,
        }
    }

    async fn judged(
        &self,
        metric: &AnalysisMetric,
        target: &Target,
        prometheus: Option<&PrometheusSpec>,
        now: &Time,
    ) -> Judged {
        use MeasurementVerdict::Error;
        let kind = match Kind::of(metric) {
            Ok(kind) => kind,
            Err(why) => return Judged::only(Error, why),
        };
        let window = target.window.unwrap_or_else(|| {
            Duration::from_secs(u64::from(metric.interval_seconds.max(1).unsigned_abs()))
        });
        let source = metric.source.unwrap_or_default();
        let prometheus_needed =
            matches!(kind, Kind::Query(_)) || source == MetricSource::Prometheus;
        let spec = match (prometheus, prometheus_needed) {
            (None, true) => {
                let why = format!(
                    "{}: needs rollout.prometheus (a Prometheus URL)",
                    kind.label()
                );
                return Judged::only(Error, why);
            }
            (spec, _) => spec,
        };
        let mut revisions = vec![&target.canary];
        if kind.needs_stable() {
            revisions.push(&target.stable);
        }
        if let (Kind::Query(query), Some(spec)) = (kind, spec) {
            let mut values = Vec::new();
            for revision in &revisions {
                let promql = substitute(&query.promql, &target.namespace, &revision.name);
                match self.prometheus.single(spec, &promql, now).await {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        return Judged::only(Error, format!("query ({}): {e}", revision.name));
                    }
                }
            }
            return judge_query(
                query,
                values.first().copied().flatten(),
                values.get(1).copied().flatten(),
            );
        }
        let counts = match (source, spec) {
            (MetricSource::Prometheus, Some(spec)) => {
                let mut counts = Vec::new();
                for revision in &revisions {
                    let at = window_counts(
                        &self.prometheus,
                        spec,
                        kind.parts(),
                        &target.namespace,
                        &revision.name,
                        window,
                        now,
                    )
                    .await;
                    match at {
                        Ok(c) => counts.push(c),
                        Err(e) => {
                            return Judged::only(
                                Error,
                                format!("{} ({}): {e}", kind.label(), revision.name),
                            );
                        }
                    }
                }
                counts
            }
            _ => match self.direct(&revisions, window).await {
                Ok(counts) => counts,
                Err(judged) => {
                    let message = format!("{}: {}", kind.label(), judged.message);
                    return Judged { message, ..judged };
                }
            },
        };
        let canary = counts.first().cloned().unwrap_or_default();
        judge_counts(kind, metric, &canary, counts.get(1))
    }

    /// Scrapes the revisions' pods; an Error for pods that did not answer, an Inconclusive
    /// for a revision without ready pods or without an earlier scrape.
    async fn direct(
        &self,
        revisions: &[&Revision],
        window: Duration,
    ) -> Result<Vec<Counts>, Judged> {
        let pods: Vec<&[PodAddr]> = revisions.iter().map(|r| r.pods.as_slice()).collect();
        let windows = self.scraper.window(&pods, window).await;
        for (revision, w) in revisions.iter().zip(&windows) {
            if !w.failures.is_empty() {
                let why = format!(
                    "{} of {} pods of revision {} did not answer: {}",
                    w.failures.len(),
                    revision.pods.len(),
                    revision.name,
                    w.failures.join("; ")
                );
                return Err(Judged::only(MeasurementVerdict::Error, why));
            }
        }
        for (revision, w) in revisions.iter().zip(&windows) {
            if let Some(why) = not_measurable(revision, w) {
                return Err(Judged::only(MeasurementVerdict::Inconclusive, why));
            }
        }
        Ok(windows.into_iter().map(|w| w.stats.counts).collect())
    }
}

/// Why a revision's window says nothing yet (no pods, or only first scrapes).
fn not_measurable(revision: &Revision, w: &RevisionWindow) -> Option<String> {
    if revision.pods.is_empty() {
        return Some(format!("revision {} has no ready pods", revision.name));
    }
    (w.stats.pods == 0).then(|| {
        format!(
            "first scrape of the {} pods of revision {}: the window starts now",
            w.answered, revision.name
        )
    })
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
