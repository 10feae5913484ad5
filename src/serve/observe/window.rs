//! Counts over a sliding time window: what the inputs, the predictions and the labelled rows
//! looked like in the last few minutes, besides the since-start histograms.
//!
//! A since-start histogram answers "has anything changed since the pod started"; drift
//! decisions need "what does traffic look like now", comparable across pods. The controller
//! scrapes these counts from every pod, sums them and runs its tests (KS, chi-square, scores)
//! on the sum, so the window exports plain counts with every bin present.
//!
//! The window is a ring of `slots` time slots of `window / slots` each. A value lands in the
//! slot of the current time; a slot older than the window is cleared when the ring passes it
//! again (on observe) and skipped when summed (on export). The sum therefore covers at most
//! `window`, at least `window − window / slots` (the oldest slot expires whole).
//!
//! Everything here is pure: time is an argument (`Duration` since an origin the caller picks),
//! so rotation and expiry are tested with a fake clock. The server keeps one [`Window`] behind
//! a mutex, aggregates a request's counts locally and adds them in one short lock.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use super::predictions::OTHER_CLASS;

/// Time slots per window (a tenth of the window expires at a time).
pub const DEFAULT_SLOTS: usize = 10;

/// A ring of time slots, each holding a `T` for the time it covers.
#[derive(Debug)]
pub struct Ring<T> {
    slot_ms: u64,
    slots: Vec<(Option<u64>, T)>,
}

impl<T: Default> Ring<T> {
    /// `slots` slots (at least 1) covering `window` together; a slot lasts at least 1 ms.
    pub fn new(window: Duration, slots: usize) -> Self {
        let slots = slots.max(1);
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX);
        Self {
            slot_ms: (window_ms / slots as u64).max(1),
            slots: (0..slots).map(|_| (None, T::default())).collect(),
        }
    }

    /// Index of the slot period `now` falls in (periods are counted from the origin).
    fn period(&self, now: Duration) -> u64 {
        u64::try_from(now.as_millis()).unwrap_or(u64::MAX) / self.slot_ms
    }

    /// The slot of `now`, cleared first when it last held an older period.
    pub fn current(&mut self, now: Duration) -> &mut T {
        let period = self.period(now);
        let n = self.slots.len() as u64;
        let slot = &mut self.slots[(period % n) as usize];
        if slot.0 != Some(period) {
            *slot = (Some(period), T::default());
        }
        &mut slot.1
    }

    /// Clears every slot that has left the window at `now` (frees what it held).
    pub fn expire(&mut self, now: Duration) {
        let current = self.period(now);
        let n = self.slots.len() as u64;
        for slot in &mut self.slots {
            if slot.0.is_some_and(|p| !live(p, current, n)) {
                *slot = (None, T::default());
            }
        }
    }

    /// The slots inside the window at `now`.
    pub fn in_window(&self, now: Duration) -> impl Iterator<Item = &T> {
        let current = self.period(now);
        let n = self.slots.len() as u64;
        self.slots
            .iter()
            .filter(move |(p, _)| p.is_some_and(|p| live(p, current, n)))
            .map(|(_, data)| data)
    }
}

/// True when a slot of `period` is inside a window of `slots` slots at period `current`.
fn live(period: u64, current: u64, slots: u64) -> bool {
    period <= current && current - period < slots
}

/// Labels with a bounded set of names: the first `max` distinct labels keep their own name,
/// later ones count as [`OTHER_CLASS`] (labels come from models and clients; series must not
/// grow without bound). Built from a fixed list, only those names are kept and
/// [`OTHER_CLASS`] is always listed (a profile's categories).
#[derive(Debug)]
pub struct BoundedLabels {
    names: Vec<String>,
    index: HashMap<String, usize>,
    max: usize,
    fixed: bool,
}

impl BoundedLabels {
    /// Up to `max` names, learnt in order of appearance.
    pub fn new(max: usize) -> Self {
        Self {
            names: Vec::new(),
            index: HashMap::new(),
            max,
            fixed: false,
        }
    }

    /// Exactly `names` (duplicates ignored) plus [`OTHER_CLASS`], which always exists.
    pub fn fixed(names: impl IntoIterator<Item = String>) -> Self {
        let mut labels = Self::new(usize::MAX);
        for name in names {
            labels.id(&name);
        }
        labels.id(OTHER_CLASS);
        labels.fixed = true;
        labels
    }

    /// The id of `label`: its own, a new one while there is room, else that of [`OTHER_CLASS`].
    pub fn id(&mut self, label: &str) -> usize {
        if let Some(id) = self.index.get(label) {
            return *id;
        }
        let name = if self.fixed || self.names.len() >= self.max {
            OTHER_CLASS
        } else {
            label
        };
        if let Some(id) = self.index.get(name) {
            return *id;
        }
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }

    /// Every name, by id.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// What one time slot (or a whole window) counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Per tracked feature (in the drift observer's order), per bin or category index.
    pub features: Vec<Vec<u64>>,
    /// Per bin of the regression output.
    pub prediction_bins: Vec<u64>,
    /// Per predicted class id (see [`BoundedLabels`]).
    pub classes: Vec<u64>,
    /// Labelled rows per `(true label id, predicted label id)`.
    pub pairs: BTreeMap<(usize, usize), u64>,
}

/// Adds `src` to `dst` element-wise, growing `dst` as needed.
pub fn add_into(dst: &mut Vec<u64>, src: &[u64]) {
    if dst.len() < src.len() {
        dst.resize(src.len(), 0);
    }
    for (d, s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

impl Counts {
    /// Adds everything `other` counted.
    pub fn add(&mut self, other: &Counts) {
        if self.features.len() < other.features.len() {
            self.features.resize_with(other.features.len(), Vec::new);
        }
        for (d, s) in self.features.iter_mut().zip(&other.features) {
            add_into(d, s);
        }
        add_into(&mut self.prediction_bins, &other.prediction_bins);
        add_into(&mut self.classes, &other.classes);
        for (pair, n) in &other.pairs {
            *self.pairs.entry(*pair).or_default() += n;
        }
    }
}

/// The window's counts at one moment, with labels resolved to their names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Per feature, per bin or category index (shorter than the layout when the tail is 0).
    pub features: Vec<Vec<u64>>,
    /// Per regression bin; `None` until a regression output was seen (or a profile gave bins).
    pub prediction_bins: Option<Vec<u64>>,
    /// Every known class with its count in the window (zeros included).
    pub classes: Vec<(String, u64)>,
    /// `((true label, predicted label), rows)` labelled in the window; zero pairs left out.
    pub pairs: Vec<((String, String), u64)>,
}

/// Sliding-window counts of one served model (see the module docs).
#[derive(Debug)]
pub struct Window {
    length: Duration,
    ring: Ring<Counts>,
    classes: BoundedLabels,
    labels: BoundedLabels,
    prediction_bins: Option<usize>,
}

impl Window {
    /// A window of `length` in [`DEFAULT_SLOTS`] slots; at most `max_labels` distinct
    /// predicted classes and feedback labels keep their own name.
    pub fn new(length: Duration, max_labels: usize) -> Self {
        Self {
            length,
            ring: Ring::new(length, DEFAULT_SLOTS),
            classes: BoundedLabels::new(max_labels),
            labels: BoundedLabels::new(max_labels),
            prediction_bins: None,
        }
    }

    /// Predicted classes restricted to `classes` (a profile's categories) plus `__other__`.
    pub fn with_fixed_classes(mut self, classes: impl IntoIterator<Item = String>) -> Self {
        self.classes = BoundedLabels::fixed(classes);
        self
    }

    /// Regression bins known in advance (`edges.len() + 1` of a profile's prediction), so
    /// they are exported, as zeros, before the first prediction.
    pub fn with_prediction_bins(mut self, bins: usize) -> Self {
        self.prediction_bins = Some(bins);
        self
    }

    /// The window length.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// Adds a request's per-feature counts (as the drift observer binned them).
    pub fn add_features(&mut self, now: Duration, features: &[Vec<u64>]) {
        let slot = self.ring.current(now);
        if slot.features.len() < features.len() {
            slot.features.resize_with(features.len(), Vec::new);
        }
        for (d, s) in slot.features.iter_mut().zip(features) {
            add_into(d, s);
        }
    }

    /// Adds per-bin counts of regression predictions.
    pub fn add_prediction_bins(&mut self, now: Duration, bins: &[u64]) {
        let known = self.prediction_bins.unwrap_or(0).max(bins.len());
        self.prediction_bins = Some(known);
        add_into(&mut self.ring.current(now).prediction_bins, bins);
    }

    /// Adds predicted rows per class label.
    pub fn add_classes(&mut self, now: Duration, counts: &[(&str, u64)]) {
        let ids: Vec<(usize, u64)> = counts
            .iter()
            .map(|(label, n)| (self.classes.id(label), *n))
            .collect();
        let slot = self.ring.current(now);
        for (id, n) in ids {
            if slot.classes.len() <= id {
                slot.classes.resize(id + 1, 0);
            }
            slot.classes[id] += n;
        }
    }

    /// Adds labelled rows as `(true label, predicted label)` pairs.
    pub fn add_pairs<'a>(
        &mut self,
        now: Duration,
        pairs: impl Iterator<Item = (&'a str, &'a str)>,
    ) {
        let ids: Vec<(usize, usize)> = pairs
            .map(|(actual, predicted)| (self.labels.id(actual), self.labels.id(predicted)))
            .collect();
        let slot = self.ring.current(now);
        for pair in ids {
            *slot.pairs.entry(pair).or_default() += 1;
        }
    }

    /// Expires old slots and sums the rest.
    pub fn snapshot(&mut self, now: Duration) -> Snapshot {
        self.ring.expire(now);
        let mut sum = Counts::default();
        for slot in self.ring.in_window(now) {
            sum.add(slot);
        }
        let prediction_bins = self.prediction_bins.map(|n| {
            let mut bins = sum.prediction_bins.clone();
            bins.resize(n.max(bins.len()), 0);
            bins
        });
        let class_count = |id: usize| sum.classes.get(id).copied().unwrap_or(0);
        let classes = self.classes.names().iter().enumerate();
        let name = |id: &usize| {
            let names = self.labels.names();
            names
                .get(*id)
                .map_or(OTHER_CLASS, String::as_str)
                .to_string()
        };
        let pairs = sum.pairs.iter().filter(|(_, n)| **n > 0);
        Snapshot {
            features: sum.features.clone(),
            prediction_bins,
            classes: classes
                .map(|(id, c)| (c.clone(), class_count(id)))
                .collect(),
            pairs: pairs.map(|((a, p), n)| ((name(a), name(p)), *n)).collect(),
        }
    }
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
