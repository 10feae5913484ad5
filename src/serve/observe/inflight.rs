//! Requests in flight, as a gauge and as its integral over time.
//!
//! The autoscaler needs the *average* number of requests in flight over a window (a stable
//! window of a minute, a panic window of a few seconds). Sampling the instantaneous gauge every
//! tick misses every request that starts and ends between two scrapes, so the server also
//! exports `modelpilot_inference_inflight_seconds_total`: the time integral of the gauge, brought
//! up to date when the page is rendered. Its increase over any window divided by the window's
//! length is the exact mean concurrency over that window, whatever the scrape interval.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::Instant,
};

use prometheus_client::{
    encoding::{EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{MetricType, TypedMetric},
};

#[derive(Debug)]
struct State {
    current: i64,
    /// Request-seconds accumulated up to `since`.
    integral: f64,
    since: Instant,
}

impl State {
    /// Accumulates the time since the last change at the current level.
    fn catch_up(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.since).as_secs_f64();
        self.integral += self.current.max(0) as f64 * dt;
        self.since = now;
    }
}

/// The shared in-flight count. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Inflight {
    state: Arc<Mutex<State>>,
}

impl Default for Inflight {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                current: 0,
                integral: 0.0,
                since: Instant::now(),
            })),
        }
    }
}

impl Inflight {
    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    fn add(&self, delta: i64, now: Instant) {
        self.with(|s| {
            s.catch_up(now);
            s.current += delta;
        });
    }

    /// Marks one request in flight until the guard is dropped.
    pub fn guard(&self) -> InflightGuard {
        self.add(1, Instant::now());
        InflightGuard {
            inflight: self.clone(),
        }
    }

    /// Requests in flight now.
    pub fn current(&self) -> i64 {
        self.with(|s| s.current)
    }

    /// Request-seconds in flight since the server started, up to `now`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use modelpilot::serve::observe::inflight::Inflight;
    /// let inflight = Inflight::default();
    /// let (_a, _b) = (inflight.guard(), inflight.guard());
    /// let later = Instant::now() + Duration::from_millis(500);
    /// // Two requests for half a second: one request-second.
    /// assert!((inflight.seconds_at(later) - 1.0).abs() < 0.01);
    /// ```
    pub fn seconds_at(&self, now: Instant) -> f64 {
        self.with(|s| {
            let dt = now.saturating_duration_since(s.since).as_secs_f64();
            s.integral + s.current.max(0) as f64 * dt
        })
    }

    /// The gauge's metric: requests in flight now.
    pub fn gauge(&self) -> InflightGauge {
        InflightGauge(self.clone())
    }

    /// The integral's metric: request-seconds in flight so far.
    pub fn seconds(&self) -> InflightSeconds {
        InflightSeconds(self.clone())
    }
}

/// Holds one request in flight (see [`Inflight::guard`]).
#[derive(Debug)]
pub struct InflightGuard {
    inflight: Inflight,
}

impl Drop for InflightGuard {
    fn drop(&mut self) {
        self.inflight.add(-1, Instant::now());
    }
}

/// `modelpilot_inference_inflight_requests`.
#[derive(Debug)]
pub struct InflightGauge(Inflight);

impl TypedMetric for InflightGauge {
    const TYPE: MetricType = MetricType::Gauge;
}

impl EncodeMetric for InflightGauge {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_gauge(&self.0.current())
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// `modelpilot_inference_inflight_seconds_total`, computed when the page is rendered.
#[derive(Debug)]
pub struct InflightSeconds(Inflight);

impl TypedMetric for InflightSeconds {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for InflightSeconds {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let value = self.0.seconds_at(Instant::now());
        encoder.encode_counter::<NoLabelSet, _, f64>(&value, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_integral_is_exact_whatever_the_sampling() {
        let inflight = Inflight::default();
        let t0 = Instant::now();
        // One request for 2 s, a second one joining for the last 1 s: 3 request-seconds.
        inflight.add(1, t0);
        inflight.add(1, t0 + Duration::from_secs(1));
        inflight.add(-1, t0 + Duration::from_secs(2));
        inflight.add(-1, t0 + Duration::from_secs(2));
        let at = |s| inflight.seconds_at(t0 + Duration::from_secs(s));
        assert!((at(2) - 3.0).abs() < 1e-9, "{}", at(2));
        // Idle time adds nothing.
        assert!((at(10) - 3.0).abs() < 1e-9);
        assert_eq!(inflight.current(), 0);
    }

    #[test]
    fn guards_count_until_dropped_and_the_page_shows_both_series() {
        let inflight = Inflight::default();
        let guard = inflight.guard();
        assert_eq!(inflight.current(), 1);
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register("inflight_requests", "now", inflight.gauge());
        registry.register("inflight_seconds", "integral", inflight.seconds());
        let mut page = String::new();
        prometheus_client::encoding::text::encode(&mut page, &registry).unwrap_or_default();
        assert!(page.contains("inflight_requests 1"), "{page}");
        assert!(page.contains("# TYPE inflight_seconds counter"), "{page}");
        assert!(page.contains("inflight_seconds_total "), "{page}");
        drop(guard);
        assert_eq!(inflight.current(), 0);
    }
}
