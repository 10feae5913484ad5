//! The built-in autoscaler's scrapes: every tick, each ready pod's `/metrics` page, turned into
//! one load sample per revision (see `load.rs`).
//!
//! One [`Collector`] lives as long as the operator. It keeps in memory, per ModelDeployment,
//! the last reading of every pod and each revision's samples over the stable window. After an
//! operator restart (or a leadership change) that memory is empty: the first tick only reads
//! baselines, and until the samples cover a whole stable window the recommender is told so and
//! does not scale down (scaling up still works from the panic window). What a decision needs to
//! continue — panic state, scale-down memory, the last counts — is in the object's status.
//!
//! Scrapes of all pods run concurrently, each bounded by the analysis scraper's timeout.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures::future::join_all;

use super::load::{Average, PodRates, PodReading, Samples, rates, total};
use crate::analysis::scrape::{PodAddr, fetch_page};

/// A revision's load averaged over the two windows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RevisionLoad {
    pub stable: Option<Average>,
    pub panic: Option<Average>,
    /// Over the rise window (twice the panic window): its lowest tick is the load that held.
    pub rise: Option<Average>,
    /// The samples cover the whole stable window.
    pub covered: bool,
    /// Pods measured this tick, of those ready.
    pub measured: usize,
    /// Pods that could not be read, with why (for logs).
    pub errors: Vec<String>,
}

/// The windows of one ModelDeployment.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Windows {
    pub tick: Duration,
    pub stable: Duration,
    pub panic: Duration,
}

#[derive(Debug, Default)]
struct ObjectLoad {
    last_tick: Option<Duration>,
    pods: HashMap<String, (Duration, PodReading)>,
    revisions: HashMap<String, Samples>,
}

/// Scrapes and remembers load per ModelDeployment (memory only).
#[derive(Debug)]
pub struct Collector {
    start: Instant,
    client: reqwest::Client,
    objects: Mutex<HashMap<String, ObjectLoad>>,
}

impl Default for Collector {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            client: reqwest::Client::builder()
                .timeout(crate::analysis::scrape::SCRAPE_TIMEOUT)
                .build()
                .unwrap_or_default(),
            objects: Mutex::default(),
        }
    }
}

impl Collector {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, ObjectLoad>) -> T) -> T {
        f(&mut self.objects.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// How long until `key`'s next tick is due (zero: now).
    pub fn due_in(&self, key: &str, tick: Duration) -> Duration {
        let now = self.now();
        // A reconcile woken a little early still counts as on time.
        let slack = Duration::from_millis(200);
        self.with(|objects| {
            objects
                .get(key)
                .and_then(|o| o.last_tick)
                .map_or(Duration::ZERO, |last| {
                    (last + tick).saturating_sub(now + slack)
                })
        })
    }

    /// Scrapes the ready pods of each revision, stores one sample per revision and returns
    /// each revision's windows. Revisions and pods not passed are forgotten.
    pub async fn tick(
        &self,
        key: &str,
        revisions: &[(String, Vec<PodAddr>)],
        windows: Windows,
    ) -> BTreeMap<String, RevisionLoad> {
        let pods: Vec<&PodAddr> = revisions.iter().flat_map(|(_, p)| p).collect();
        let pages = join_all(pods.iter().map(|p| fetch_page(&self.client, p))).await;
        let now = self.now();
        let mut readings: HashMap<&str, Result<PodReading, String>> = HashMap::new();
        for (pod, page) in pods.iter().zip(pages) {
            let reading = page.and_then(|text| PodReading::parse(&text).map_err(|e| e.to_string()));
            readings.insert(pod.uid.as_str(), reading);
        }
        self.with(|objects| {
            let object = objects.entry(key.to_string()).or_default();
            object.last_tick = Some(now);
            let mut out = BTreeMap::new();
            let mut seen_pods = HashMap::new();
            for (revision, pods) in revisions {
                let mut measured: Vec<PodRates> = Vec::new();
                let mut errors = Vec::new();
                for pod in pods {
                    match readings.get(pod.uid.as_str()) {
                        Some(Ok(reading)) => {
                            if let Some((at, before)) = object.pods.get(&pod.uid)
                                && let Some(r) = rates(before, reading, now.saturating_sub(*at))
                            {
                                measured.push(r);
                            }
                            seen_pods.insert(pod.uid.clone(), (now, *reading));
                        }
                        Some(Err(e)) => errors.push(format!("{}: {e}", pod.name)),
                        None => {}
                    }
                }
                let samples = object.revisions.entry(revision.clone()).or_default();
                if let Some(sample) = total(&measured, pods.len(), now) {
                    // Three missed ticks in a row break coverage.
                    samples.push(sample, windows.stable + windows.tick, windows.tick * 3);
                }
                out.insert(
                    revision.clone(),
                    RevisionLoad {
                        stable: samples.average(now, windows.stable),
                        panic: samples.average(now, windows.panic),
                        rise: samples.average(now, windows.panic * 2),
                        covered: samples.covers(now, windows.stable, windows.tick),
                        measured: measured.len(),
                        errors,
                    },
                );
            }
            object.pods = seen_pods;
            object
                .revisions
                .retain(|rev, _| revisions.iter().any(|(r, _)| r == rev));
            out
        })
    }

    /// Forgets a ModelDeployment (deleted, or no longer autoscaled).
    pub fn forget(&self, key: &str) {
        self.with(|objects| objects.remove(key));
    }
}
