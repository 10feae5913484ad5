//! A revision's load, tick by tick: what one pod's metrics page says, the per-pod rates between
//! two scrapes, their total over the revision's ready pods, and averages over the stable and
//! panic windows.
//!
//! Everything here is arithmetic on numbers already read, so it is table-tested; the scrapes
//! themselves live in `collect.rs`. Each tick stores one [`Sample`]: the revision's total load
//! over the time since the previous tick (requests in flight from the server's request-seconds
//! counter, so requests shorter than a tick are counted exactly). A window's average is the mean
//! of the samples that fall in it.

use std::{collections::VecDeque, time::Duration};

use crate::{
    analysis::exposition::{ParseError, parse},
    api::ScaleMetric,
};

const INFLIGHT_SECONDS: &str = "modelpilot_inference_inflight_seconds_total";
const INFLIGHT: &str = "modelpilot_inference_inflight_requests";
const REQUESTS: &str = "modelpilot_inference_requests_total";
const QUEUE_SUM: &str = "modelpilot_inference_queue_duration_seconds_sum";
const QUEUE_COUNT: &str = "modelpilot_inference_queue_duration_seconds_count";

/// The load counters of one server's metrics page.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PodReading {
    /// Request-seconds in flight since the server started.
    pub inflight_seconds: f64,
    /// Requests in flight at the scrape.
    pub inflight: f64,
    /// Inference requests answered.
    pub requests: f64,
    /// Seconds inference requests waited for a batch slot or session, summed.
    pub queue_seconds: f64,
    /// Inference requests that went through the queue.
    pub queued: f64,
}

impl PodReading {
    /// Reads a `/metrics` page; families other than the load counters are ignored.
    ///
    /// ```
    /// use modelpilot::autoscale::load::PodReading;
    /// let page = r#"
    /// modelpilot_inference_inflight_seconds_total 12.5
    /// modelpilot_inference_inflight_requests 3
    /// modelpilot_inference_requests_total{endpoint="infer",code="200"} 40
    /// modelpilot_inference_requests_total{endpoint="infer",code="400"} 2
    /// modelpilot_inference_requests_total{endpoint="metadata",code="200"} 7
    /// "#;
    /// let r = PodReading::parse(page).unwrap();
    /// assert_eq!((r.inflight_seconds, r.inflight, r.requests), (12.5, 3.0, 42.0));
    /// ```
    pub fn parse(page: &str) -> Result<PodReading, ParseError> {
        let mut r = PodReading::default();
        for s in parse(page)? {
            if !(s.value.is_finite() && s.value >= 0.0) {
                continue;
            }
            let infer = s.label("endpoint") == Some("infer");
            match s.name.as_str() {
                INFLIGHT_SECONDS => r.inflight_seconds += s.value,
                INFLIGHT => r.inflight += s.value,
                REQUESTS if infer => r.requests += s.value,
                QUEUE_SUM if infer => r.queue_seconds += s.value,
                QUEUE_COUNT if infer => r.queued += s.value,
                _ => {}
            }
        }
        Ok(r)
    }
}

/// One pod's load between two scrapes `dt` apart.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PodRates {
    /// Mean requests in flight.
    pub concurrency: f64,
    /// Requests per second.
    pub rps: f64,
    /// Queue seconds and queued requests added.
    pub queue_seconds: f64,
    pub queued: f64,
}

/// The rates between two readings of the same pod; `None` when a counter went down (the
/// server restarted) or no time passed: the newer reading is then only a baseline.
///
/// ```
/// use std::time::Duration;
/// use modelpilot::autoscale::load::{PodReading, rates};
/// let a = PodReading { inflight_seconds: 10.0, requests: 100.0, ..Default::default() };
/// let b = PodReading { inflight_seconds: 18.0, requests: 140.0, ..Default::default() };
/// let r = rates(&a, &b, Duration::from_secs(2)).unwrap();
/// assert_eq!((r.concurrency, r.rps), (4.0, 20.0)); // 8 request-seconds in 2 s
/// ```
pub fn rates(before: &PodReading, after: &PodReading, dt: Duration) -> Option<PodRates> {
    let secs = dt.as_secs_f64();
    let d = |a: f64, b: f64| (b >= a).then_some(b - a);
    let inflight = d(before.inflight_seconds, after.inflight_seconds)?;
    let requests = d(before.requests, after.requests)?;
    let queue_seconds = d(before.queue_seconds, after.queue_seconds)?;
    let queued = d(before.queued, after.queued)?;
    (secs > 0.0).then(|| PodRates {
        concurrency: inflight / secs,
        rps: requests / secs,
        queue_seconds,
        queued,
    })
}

/// A revision's total load over one tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    /// When the tick ended, on the collector's monotonic clock.
    pub at: Duration,
    /// Requests in flight, summed over the pods.
    pub concurrency: f64,
    /// Requests per second, summed over the pods.
    pub rps: f64,
    pub queue_seconds: f64,
    pub queued: f64,
}

/// Sums the rates of the pods measured and scales the sum up to `ready` pods when some could
/// not be measured this tick (a pod that just became ready has no earlier reading; a scrape
/// may fail): the pods measured stand for the ones that were not. `None` when no pod was.
///
/// ```
/// use std::time::Duration;
/// use modelpilot::autoscale::load::{PodRates, total};
/// let pod = PodRates { concurrency: 3.0, rps: 10.0, ..Default::default() };
/// // Two of three ready pods measured: their total stands for three.
/// let s = total(&[pod, pod], 3, Duration::from_secs(8)).unwrap();
/// assert_eq!((s.concurrency, s.rps), (9.0, 30.0));
/// ```
pub fn total(measured: &[PodRates], ready: usize, at: Duration) -> Option<Sample> {
    if measured.is_empty() {
        return None;
    }
    let scale = ready.max(measured.len()) as f64 / measured.len() as f64;
    let sum = |f: fn(&PodRates) -> f64| measured.iter().map(f).sum::<f64>() * scale;
    Some(Sample {
        at,
        concurrency: sum(|r| r.concurrency),
        rps: sum(|r| r.rps),
        queue_seconds: sum(|r| r.queue_seconds),
        queued: sum(|r| r.queued),
    })
}

/// The load averaged over one window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Average {
    /// Mean total requests in flight.
    pub concurrency: f64,
    /// Mean total requests per second.
    pub rps: f64,
    /// Mean queue time per request (0 when nothing was queued).
    pub queue_time: f64,
    /// Samples averaged.
    pub samples: usize,
    /// The lowest sample of the window, per metric: the load that held through all of it.
    pub lowest: Lowest,
}

/// The lowest tick of a window (see [`Average::lowest`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lowest {
    pub concurrency: f64,
    pub rps: f64,
    pub queue_time: f64,
}

impl Average {
    /// Pods' worth of this load at `target` per pod, with `ready` pods serving it.
    ///
    /// Concurrency and requests/s add up across pods, so the need is the total over the
    /// target. Queue time does not add up: the count moves in proportion to how far the
    /// queue time is from its target, as the HPA does with any per-pod average.
    ///
    /// ```
    /// use modelpilot::{api::ScaleMetric, autoscale::load::Average};
    /// let load = Average { concurrency: 30.0, rps: 300.0, queue_time: 0.2, ..Default::default() };
    /// assert_eq!(load.need(ScaleMetric::Concurrency, 4.0, 2), 7.5);
    /// assert_eq!(load.need(ScaleMetric::Rps, 100.0, 2), 3.0);
    /// assert_eq!(load.need(ScaleMetric::QueueTime, 0.05, 2), 8.0); // 2 pods × 0.2 / 0.05
    /// ```
    pub fn need(&self, metric: ScaleMetric, target: f64, ready: i32) -> f64 {
        if target.is_nan() || target <= 0.0 {
            return 0.0;
        }
        match metric {
            ScaleMetric::Concurrency => self.concurrency / target,
            ScaleMetric::Rps => self.rps / target,
            ScaleMetric::QueueTime => f64::from(ready.max(1)) * self.queue_time / target,
        }
    }

    /// Pods' worth of the window's lowest tick: what the load needed through all of it.
    ///
    /// ```
    /// use modelpilot::{api::ScaleMetric, autoscale::load::{Average, Lowest}};
    /// let load = Average {
    ///     concurrency: 30.0,
    ///     lowest: Lowest { concurrency: 24.0, ..Default::default() },
    ///     ..Default::default()
    /// };
    /// assert_eq!(load.floor_need(ScaleMetric::Concurrency, 4.0, 2), 6.0);
    /// ```
    pub fn floor_need(&self, metric: ScaleMetric, target: f64, ready: i32) -> f64 {
        let lowest = Average {
            concurrency: self.lowest.concurrency,
            rps: self.lowest.rps,
            queue_time: self.lowest.queue_time,
            ..*self
        };
        lowest.need(metric, target, ready)
    }

    /// The metric per ready pod (what the target is compared with), for status.
    pub fn per_pod(&self, metric: ScaleMetric, ready: i32) -> f64 {
        let pods = f64::from(ready.max(1));
        match metric {
            ScaleMetric::Concurrency => self.concurrency / pods,
            ScaleMetric::Rps => self.rps / pods,
            ScaleMetric::QueueTime => self.queue_time,
        }
    }
}

/// The samples of one revision over the longest window asked for.
#[derive(Clone, Debug, Default)]
pub struct Samples {
    samples: VecDeque<Sample>,
    /// When the first sample after a gap was taken: the data covers the time since then.
    since: Option<Duration>,
}

impl Samples {
    /// Adds a sample and forgets those older than `keep`. A gap of more than `max_gap` since
    /// the previous sample (no pod ready, the operator lost leadership) restarts coverage.
    pub fn push(&mut self, sample: Sample, keep: Duration, max_gap: Duration) {
        let gap = self
            .samples
            .back()
            .is_none_or(|last| sample.at.saturating_sub(last.at) > max_gap);
        if gap {
            self.samples.clear();
            self.since = Some(sample.at);
        }
        self.samples.push_back(sample);
        while self
            .samples
            .front()
            .is_some_and(|s| sample.at.saturating_sub(s.at) > keep)
        {
            self.samples.pop_front();
        }
    }

    /// Whether the samples cover the last `window` up to `now` (a tick's slack allowed).
    pub fn covers(&self, now: Duration, window: Duration, tick: Duration) -> bool {
        self.since
            .is_some_and(|since| now.saturating_sub(since) + tick >= window)
    }

    /// The mean over the samples taken in the last `window` up to `now`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use modelpilot::autoscale::load::{Sample, Samples};
    /// let s = |at, c| Sample { at: Duration::from_secs(at), concurrency: c, ..Default::default() };
    /// let mut samples = Samples::default();
    /// let (keep, gap) = (Duration::from_secs(60), Duration::from_secs(10));
    /// for (at, c) in [(2, 4.0), (4, 4.0), (6, 40.0), (8, 40.0)] {
    ///     samples.push(s(at, c), keep, gap);
    /// }
    /// let now = Duration::from_secs(8);
    /// assert_eq!(samples.average(now, Duration::from_secs(60)).unwrap().concurrency, 22.0);
    /// assert_eq!(samples.average(now, Duration::from_secs(4)).unwrap().concurrency, 40.0);
    /// ```
    pub fn average(&self, now: Duration, window: Duration) -> Option<Average> {
        let inside: Vec<&Sample> = self
            .samples
            .iter()
            .filter(|s| s.at <= now && now.saturating_sub(s.at) < window)
            .collect();
        if inside.is_empty() {
            return None;
        }
        let n = inside.len() as f64;
        let mean = |f: fn(&Sample) -> f64| inside.iter().map(|s| f(s)).sum::<f64>() / n;
        let queued: f64 = inside.iter().map(|s| s.queued).sum();
        let queue_seconds: f64 = inside.iter().map(|s| s.queue_seconds).sum();
        let low =
            |f: &dyn Fn(&Sample) -> f64| inside.iter().map(|s| f(s)).fold(f64::INFINITY, f64::min);
        let queue_time = |s: &Sample| {
            if s.queued > 0.0 {
                s.queue_seconds / s.queued
            } else {
                0.0
            }
        };
        Some(Average {
            concurrency: mean(|s| s.concurrency),
            rps: mean(|s| s.rps),
            queue_time: if queued > 0.0 {
                queue_seconds / queued
            } else {
                0.0
            },
            samples: inside.len(),
            lowest: Lowest {
                concurrency: low(&|s| s.concurrency),
                rps: low(&|s| s.rps),
                queue_time: low(&queue_time),
            },
        })
    }

    /// The number of samples kept.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// Whether no sample is kept.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
}

#[cfg(test)]
#[path = "load_tests.rs"]
mod tests;
