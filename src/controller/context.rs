//! What every reconcile shares: the client, defaults, the event recorder, metrics, the pod
//! health deadline, the analysis measurer, the autoscaler's load windows, and the per-object failure counts that drive retry backoff.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use kube::{Client, runtime::events::Recorder};

use crate::telemetry::metrics::ControllerMetrics;
use crate::validate::Defaults;

/// Shared state of the controller.
pub struct Context {
    pub client: Client,
    pub defaults: Defaults,
    pub recorder: Recorder,
    /// This operator replica's identity (the events' reporting instance).
    pub instance: String,
    pub metrics: ControllerMetrics,
    /// How long a pod may stay not ready before the ModelDeployment is Degraded for it.
    pub pod_not_ready_deadline: Duration,
    /// Measures canary analysis metrics (keeps the recent scrapes of each pod).
    pub analyzer: crate::analysis::Analyzer,
    /// The built-in autoscaler's scrapes and load windows.
    pub autoscaler: crate::autoscale::collect::Collector,
    /// Reads model metadata from inference pods (the stable model's signature).
    pub http: reqwest::Client,
    failures: Mutex<HashMap<String, u32>>,
}

/// Retry delay after the `n`th consecutive transient failure: 1 s doubling to 5 min.
///
/// ```
/// use std::time::Duration;
/// use modelpilot::controller::context::backoff;
/// assert_eq!(backoff(1), Duration::from_secs(1));
/// assert_eq!(backoff(4), Duration::from_secs(8));
/// assert_eq!(backoff(30), Duration::from_secs(300));
/// ```
pub fn backoff(n: u32) -> Duration {
    let secs = 1u64.checked_shl(n.saturating_sub(1)).unwrap_or(u64::MAX);
    Duration::from_secs(secs.min(300))
}

impl Context {
    /// A context for one controller.
    pub fn new(
        client: Client,
        defaults: Defaults,
        recorder: Recorder,
        instance: String,
        metrics: ControllerMetrics,
        pod_not_ready_deadline: Duration,
    ) -> Self {
        Self {
            client,
            defaults,
            recorder,
            instance,
            metrics,
            pod_not_ready_deadline,
            analyzer: crate::analysis::Analyzer::default(),
            autoscaler: crate::autoscale::collect::Collector::default(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap_or_default(),
            failures: Mutex::default(),
        }
    }

    /// Count a transient failure of `key` and return how long to wait before retrying.
    pub fn next_retry(&self, key: &str) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let n = failures.entry(key.to_owned()).or_insert(0);
        *n = n.saturating_add(1);
        backoff(*n)
    }

    /// Forget the failures of `key` after a successful reconcile.
    pub fn succeeded(&self, key: &str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        failures.remove(key);
    }
}
