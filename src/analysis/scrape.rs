//! Reads the inference pods' own `/metrics` pages (`source: Direct`): no Prometheus needed.
//!
//! One [`Scraper`] lives as long as the operator. It keeps, per pod UID and in memory only, a
//! short history of that pod's counters ([`History`]), and measures a window as the difference
//! between a fresh scrape and the pod's snapshot from about `window` ago. Consequences:
//!
//! * A pod's first scrape is only a baseline. After an operator restart (memory lost) or for a
//!   pod that just became ready, the first measurement has no window for that pod; call
//!   [`Scraper::prime`] at the start of an analysis and at every reconcile so there is always
//!   an earlier scrape (and the history has snapshots near every window start).
//! * Traffic a pod served between its last scrape and its deletion is not seen.
//! * A pod that does not answer is reported, never guessed: the caller turns it into an Error
//!   measurement (retried, and a pause after `consecutiveErrorLimit` in a row).
//!
//! Scrapes of all pods run concurrently, each bounded by a short timeout and a body limit.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use futures::future::join_all;

use super::{
    history::{History, MAX_AGE},
    snapshot::Counts,
    window::{WindowStats, across_pods},
};

/// Timeout of one scrape (connect included).
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(2);
/// Largest metrics page read (a server page is tens of KiB).
pub const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// Where a pod's metrics are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodAddr {
    /// The pod's UID: snapshots are kept per pod UID.
    pub uid: String,
    /// The pod's name (for messages).
    pub name: String,
    pub ip: String,
    pub port: u16,
}

impl PodAddr {
    /// `http://<ip>:<port>/metrics` (IPv6 addresses bracketed).
    pub fn url(&self) -> String {
        if self.ip.contains(':') {
            format!("http://[{}]:{}/metrics", self.ip, self.port)
        } else {
            format!("http://{}:{}/metrics", self.ip, self.port)
        }
    }
}

/// One revision's pods over a window.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RevisionWindow {
    /// The counters over the window, summed over the pods that have one.
    pub stats: WindowStats,
    /// Pods that answered this time (with or without an earlier snapshot).
    pub answered: usize,
    /// Pods that did not answer: `"<pod> (<url>): <why>"`.
    pub failures: Vec<String>,
    /// Shortest and longest window actually covered by a pod (the pods' earlier snapshots
    /// are not all exactly `window` old).
    pub covered: Option<(Duration, Duration)>,
}

/// Scrapes pods and keeps their recent snapshots (see the module docs).
#[derive(Debug)]
pub struct Scraper {
    client: reqwest::Client,
    epoch: Instant,
    pods: Mutex<HashMap<String, History>>,
    reuse_within: Duration,
}

impl Default for Scraper {
    fn default() -> Self {
        Self::new()
    }
}

impl Scraper {
    /// A scraper with its own HTTP client ([`SCRAPE_TIMEOUT`]); a snapshot younger than one
    /// second is reused instead of scraping again (prime and measure in one reconcile).
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(SCRAPE_TIMEOUT)
            .connect_timeout(SCRAPE_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            client,
            epoch: Instant::now(),
            pods: Mutex::new(HashMap::new()),
            reuse_within: Duration::from_secs(1),
        }
    }

    /// Reuse a pod's newest snapshot instead of scraping when it is younger than this
    /// (`Duration::ZERO`: always scrape).
    pub fn reuse_within(mut self, age: Duration) -> Self {
        self.reuse_within = age;
        self
    }

    /// Scrapes `pods` (those without a snapshot fresher than the reuse age) and records their
    /// snapshots as baselines of later windows. Returns how many pods have a fresh snapshot;
    /// failures are left to the measurement that needs the pod.
    pub async fn prime(&self, pods: &[PodAddr]) -> usize {
        self.snapshots(pods)
            .await
            .iter()
            .filter(|r| r.is_ok())
            .count()
    }

    /// The counters of each revision (a list of its ready pods) over the last `window`: a fresh
    /// scrape (or one younger than the reuse age) minus each pod's snapshot from about `window`
    /// ago. Results are in the order of `revisions`.
    pub async fn window(&self, revisions: &[&[PodAddr]], window: Duration) -> Vec<RevisionWindow> {
        let all: Vec<PodAddr> = revisions.iter().flat_map(|r| r.iter().cloned()).collect();
        let ends = self.snapshots(&all).await;
        let mut ends = all.iter().zip(ends);
        let pods = self.pods.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = Vec::with_capacity(revisions.len());
        for revision in revisions {
            let mut result = RevisionWindow::default();
            let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
            for (pod, end) in ends.by_ref().take(revision.len()) {
                let end_at = match end {
                    Ok(at) => at,
                    Err(why) => {
                        result
                            .failures
                            .push(format!("{} ({}): {why}", pod.name, pod.url()));
                        continue;
                    }
                };
                result.answered += 1;
                let Some(history) = pods.get(&pod.uid) else {
                    continue;
                };
                let Some((_, end)) = history.newest() else {
                    continue;
                };
                after.insert(pod.uid.clone(), end.clone());
                if let Some((start_at, start)) = history.baseline(end_at, window) {
                    before.insert(pod.uid.clone(), start.clone());
                    let span = end_at - start_at;
                    result.covered = Some(match result.covered {
                        Some((lo, hi)) => (lo.min(span), hi.max(span)),
                        None => (span, span),
                    });
                }
            }
            result.stats = across_pods(&before, &after);
            out.push(result);
        }
        out
    }

    /// A fresh snapshot of each pod (recorded in its history): the time it stands for, or why
    /// the pod did not answer.
    async fn snapshots(&self, pods: &[PodAddr]) -> Vec<Result<Duration, String>> {
        let now = self.epoch.elapsed();
        let reusable: Vec<Option<Duration>> = {
            let known = self.pods.lock().unwrap_or_else(PoisonError::into_inner);
            pods.iter()
                .map(|pod| {
                    let (at, _) = known.get(&pod.uid)?.newest()?;
                    (now.saturating_sub(at) < self.reuse_within).then_some(at)
                })
                .collect()
        };
        let fetches = pods.iter().zip(&reusable).map(|(pod, reuse)| async move {
            match reuse {
                Some(at) => Ok((*at, None)),
                None => {
                    let counts = fetch(&self.client, pod).await?;
                    Ok((self.epoch.elapsed(), Some(counts)))
                }
            }
        });
        let fetched: Vec<Result<(Duration, Option<Counts>), String>> = join_all(fetches).await;
        let mut known = self.pods.lock().unwrap_or_else(PoisonError::into_inner);
        let results = pods
            .iter()
            .zip(fetched)
            .map(|(pod, result)| {
                let (at, counts) = result?;
                if let Some(counts) = counts {
                    known.entry(pod.uid.clone()).or_default().push(at, counts);
                }
                Ok(at)
            })
            .collect();
        let now = self.epoch.elapsed();
        known.retain(|_, h| {
            h.newest()
                .is_some_and(|(at, _)| now.saturating_sub(at) <= MAX_AGE)
        });
        results
    }

    /// Pods with a history (for tests and diagnostics).
    pub fn known_pods(&self) -> usize {
        self.pods
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// GETs and reads one pod's metrics page.
async fn fetch(client: &reqwest::Client, pod: &PodAddr) -> Result<Counts, String> {
    let text = fetch_page(client, pod).await?;
    Counts::parse(&text).map_err(|e| e.to_string())
}

/// GETs one pod's metrics page as text (bounded by [`MAX_PAGE_BYTES`]); the error says why not.
pub async fn fetch_page(client: &reqwest::Client, pod: &PodAddr) -> Result<String, String> {
    let mut response = client
        .get(pod.url())
        .header(reqwest::header::ACCEPT, "text/plain;version=0.0.4")
        .send()
        .await
        .map_err(|e| error_chain(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(format!("metrics page larger than {MAX_PAGE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| "metrics page is not UTF-8".to_string())
}

/// An error and its causes on one line (reqwest's top-level message alone says little).
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
#[path = "scrape_tests.rs"]
mod tests;
