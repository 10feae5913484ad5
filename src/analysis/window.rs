//! Counters over a window: the difference of two snapshots of the same pod, summed over a
//! revision's pods.
//!
//! Counters only go up while a process lives. A counter that went down means the server
//! restarted in between (a container restart keeps the pod's UID), so its whole current value
//! is the increase. One decreasing series is taken as proof the *process* restarted: then every
//! counter of that pod counts from zero, not only the ones that happened to go down (a
//! restarted process may already have passed an old value on another series). Series that
//! appear count from zero; series that vanish count nothing.
//!
//! Pods are matched by UID: a pod seen only in the later snapshot set has no window yet (its
//! first scrape is its baseline) and a pod seen only in the earlier one is gone; neither
//! contributes, and both are counted so a caller can say so.

use std::collections::BTreeMap;

use super::snapshot::{Buckets, Counts};

/// The counters of one revision over a window, summed over its pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowStats {
    /// Increases over the window (and the baseline shares of the input features).
    pub counts: Counts,
    /// Pods with a window (a snapshot at both ends).
    pub pods: usize,
    /// Of those, pods whose server restarted within the window.
    pub restarted: usize,
    /// Pods seen only at the end: their first snapshot, a baseline for the next window.
    pub new_pods: usize,
    /// Pods seen only at the start.
    pub gone_pods: usize,
}

/// The increase of one pod's counters from `before` to `after`, and whether the process
/// restarted in between.
///
/// ```
/// use modelpilot::analysis::{snapshot::Counts, window::increase};
/// let at = |requests, errors| Counts { requests, errors, ..Counts::default() };
/// assert_eq!(increase(&at(100.0, 2.0), &at(130.0, 5.0)), (at(30.0, 3.0), false));
/// // The server restarted and served 12 requests since: the increase is 12, not -88.
/// assert_eq!(increase(&at(100.0, 2.0), &at(12.0, 1.0)), (at(12.0, 1.0), true));
/// ```
pub fn increase(before: &Counts, after: &Counts) -> (Counts, bool) {
    if restarted(before, after) {
        return (after.clone(), true);
    }
    let counts = Counts {
        requests: after.requests - before.requests,
        errors: after.errors - before.errors,
        latency: bucket_increase(&before.latency, &after.latency),
        predictions: map_increase(&before.predictions, &after.predictions),
        labels: map_increase(&before.labels, &after.labels),
        features: after
            .features
            .iter()
            .map(|(name, b)| {
                let earlier = before.features.get(name).cloned().unwrap_or_default();
                (name.clone(), bucket_increase(&earlier, b))
            })
            .collect(),
        baseline: after.baseline.clone(),
    };
    (counts, false)
}

/// Sums the windows of every pod present in both snapshot sets (keyed by pod UID).
///
/// ```
/// use std::collections::BTreeMap;
/// use modelpilot::analysis::{snapshot::Counts, window::across_pods};
/// let at = |requests| Counts { requests, ..Counts::default() };
/// let before = BTreeMap::from([("a".to_string(), at(10.0)), ("gone".to_string(), at(50.0))]);
/// let after = BTreeMap::from([("a".to_string(), at(25.0)), ("new".to_string(), at(7.0))]);
/// let w = across_pods(&before, &after);
/// assert_eq!((w.counts.requests, w.pods, w.new_pods, w.gone_pods), (15.0, 1, 1, 1));
/// ```
pub fn across_pods(
    before: &BTreeMap<String, Counts>,
    after: &BTreeMap<String, Counts>,
) -> WindowStats {
    let mut stats = WindowStats::default();
    for (uid, end) in after {
        match before.get(uid) {
            Some(start) => {
                let (counts, restarted) = increase(start, end);
                stats.add(&counts);
                stats.pods += 1;
                stats.restarted += usize::from(restarted);
            }
            None => stats.new_pods += 1,
        }
    }
    stats.gone_pods = before
        .keys()
        .filter(|uid| !after.contains_key(*uid))
        .count();
    stats
}

impl WindowStats {
    /// Adds one pod's window (histograms bucket by bucket; the first baseline of a feature
    /// is kept: the pods of one revision serve the same profile).
    pub fn add(&mut self, pod: &Counts) {
        let c = &mut self.counts;
        c.requests += pod.requests;
        c.errors += pod.errors;
        c.latency = c.latency.sum(&pod.latency);
        add_map(&mut c.predictions, &pod.predictions);
        add_map(&mut c.labels, &pod.labels);
        for (name, buckets) in &pod.features {
            let sum = c
                .features
                .get(name)
                .map_or_else(|| buckets.clone(), |b| b.sum(buckets));
            c.features.insert(name.clone(), sum);
        }
        for (name, shares) in &pod.baseline {
            c.baseline
                .entry(name.clone())
                .or_insert_with(|| shares.clone());
        }
    }
}

fn add_map<K: Ord + Clone>(into: &mut BTreeMap<K, f64>, from: &BTreeMap<K, f64>) {
    for (k, v) in from {
        *into.entry(k.clone()).or_default() += v;
    }
}

/// True when any counter of `after` is below its value in `before` (or vanished).
fn restarted(before: &Counts, after: &Counts) -> bool {
    after.requests < before.requests
        || after.errors < before.errors
        || buckets_decreased(&before.latency, &after.latency)
        || map_decreased(&before.predictions, &after.predictions)
        || map_decreased(&before.labels, &after.labels)
        || before.features.iter().any(|(name, b)| {
            let empty = Buckets::default();
            buckets_decreased(b, after.features.get(name).unwrap_or(&empty))
        })
}

fn map_decreased<K: Ord>(before: &BTreeMap<K, f64>, after: &BTreeMap<K, f64>) -> bool {
    before
        .iter()
        .any(|(k, v)| after.get(k).copied().unwrap_or(0.0) < *v)
}

fn buckets_decreased(before: &Buckets, after: &Buckets) -> bool {
    before.0.iter().any(|(le, n)| after.at(*le) < *n)
}

fn map_increase<K: Ord + Clone>(
    before: &BTreeMap<K, f64>,
    after: &BTreeMap<K, f64>,
) -> BTreeMap<K, f64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (v - before.get(k).copied().unwrap_or(0.0)).max(0.0),
            )
        })
        .collect()
}

/// Bucket-wise increase; a changed layout counts as a fresh histogram.
fn bucket_increase(before: &Buckets, after: &Buckets) -> Buckets {
    if !before.same_bounds(after) {
        return after.clone();
    }
    let diff = after.0.iter().zip(&before.0);
    Buckets(
        diff.map(|((le, a), (_, b))| (*le, (a - b).max(0.0)))
            .collect(),
    )
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
