//! The recent snapshots of one pod, thinned with age, so a measurement over the last W seconds
//! finds a snapshot about W seconds old whatever the metric's interval — several metrics with
//! different intervals share one scrape history instead of each keeping "its" previous scrape.
//!
//! Thinning keeps the error of a window proportional to its length: after each new snapshot,
//! an entry is dropped when the gap it would leave between its neighbours is at most 1/8 of
//! the newer neighbour's age. A snapshot W seconds old is then found within about W/8 of the
//! target, with roughly 8·ln(age/spacing) entries kept (about 70 for an hour of 1 s scrapes),
//! bounded by [`MAX_ENTRIES`] and [`MAX_AGE`]. Times are offsets on a monotonic clock.

use std::{collections::VecDeque, time::Duration};

use super::snapshot::Counts;

/// A gap may span at most `age / RESOLUTION` of the newer neighbour's age.
pub const RESOLUTION: u32 = 8;
/// Most snapshots kept per pod.
pub const MAX_ENTRIES: usize = 96;
/// Snapshots older than this are dropped (longer than the longest interval, 3600 s).
pub const MAX_AGE: Duration = Duration::from_secs(2 * 3600);

/// Snapshots of one pod, oldest first.
#[derive(Clone, Debug, Default)]
pub struct History {
    entries: VecDeque<(Duration, Counts)>,
}

impl History {
    /// Records a snapshot taken at `at` (not before the newest one; one at the same instant
    /// replaces it), then thins the older ones.
    pub fn push(&mut self, at: Duration, counts: Counts) {
        match self.entries.back() {
            Some((last, _)) if *last > at => return,
            Some((last, _)) if *last == at => {
                self.entries.pop_back();
            }
            _ => {}
        }
        self.entries.push_back((at, counts));
        self.thin(at);
    }

    /// The newest snapshot.
    pub fn newest(&self) -> Option<(Duration, &Counts)> {
        self.entries.back().map(|(at, c)| (*at, c))
    }

    /// The snapshot to difference a snapshot taken at `end` against for a `window`: the newest
    /// taken at or before `end − window`, else the oldest taken before `end` (a shorter window:
    /// the pod was first seen later). `None` when nothing was taken before `end`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use modelpilot::analysis::{history::History, snapshot::Counts};
    /// let s = Duration::from_secs;
    /// let mut h = History::default();
    /// for t in [0, 4, 8, 12] {
    ///     h.push(s(t), Counts { requests: t as f64, ..Counts::default() });
    /// }
    /// assert_eq!(h.baseline(s(12), s(5)).map(|(at, _)| at), Some(s(4)));
    /// assert_eq!(h.baseline(s(12), s(60)).map(|(at, _)| at), Some(s(0)));
    /// assert_eq!(h.baseline(s(0), s(5)), None);
    /// ```
    pub fn baseline(&self, end: Duration, window: Duration) -> Option<(Duration, &Counts)> {
        let target = end.saturating_sub(window);
        let before: Vec<&(Duration, Counts)> = self
            .entries
            .iter()
            .take_while(|(at, _)| *at < end)
            .collect();
        let pick = before
            .iter()
            .rev()
            .find(|(at, _)| *at <= target)
            .or_else(|| before.first())?;
        Some((pick.0, &pick.1))
    }

    /// Snapshots kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The times of the snapshots kept, oldest first.
    pub fn times(&self) -> Vec<Duration> {
        self.entries.iter().map(|(at, _)| *at).collect()
    }

    fn thin(&mut self, now: Duration) {
        while self.entries.len() > 1
            && self
                .entries
                .front()
                .is_some_and(|(at, _)| now.saturating_sub(*at) > MAX_AGE)
        {
            self.entries.pop_front();
        }
        let mut i = 1;
        while i + 1 < self.entries.len() {
            let older = self.entries[i - 1].0;
            let newer = self.entries[i + 1].0;
            if newer - older <= now.saturating_sub(newer) / RESOLUTION {
                self.entries.remove(i);
            } else {
                i += 1;
            }
        }
        while self.entries.len() > MAX_ENTRIES {
            self.entries.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: u64) -> Counts {
        Counts {
            requests: n as f64,
            ..Counts::default()
        }
    }

    #[test]
    fn baseline_table() {
        let s = Duration::from_secs;
        let mut h = History::default();
        for t in [100, 110, 120, 130] {
            h.push(s(t), counts(t));
        }
        let rows = [
            ("exact", 130, 10, Some(120)),
            (
                "between: the older one (window ≥ asked)",
                130,
                15,
                Some(110),
            ),
            ("longer than kept: the oldest", 130, 500, Some(100)),
            ("window 0: the newest before end", 130, 0, Some(120)),
            ("end in the past", 115, 5, Some(110)),
            ("nothing before end", 100, 5, None),
        ];
        for (what, end, window, want) in rows {
            let got = h.baseline(s(end), s(window)).map(|(at, _)| at.as_secs());
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn pushes_in_the_past_are_ignored_and_same_instant_replaces() {
        let s = Duration::from_secs;
        let mut h = History::default();
        h.push(s(10), counts(1));
        h.push(s(5), counts(2));
        h.push(s(10), counts(3));
        assert_eq!(h.times(), vec![s(10)]);
        assert_eq!(h.newest().map(|(_, c)| c.requests), Some(3.0));
    }

    #[test]
    fn an_hour_of_one_second_scrapes_stays_small_and_accurate() {
        let mut h = History::default();
        for t in 0..=3600u64 {
            h.push(Duration::from_secs(t), counts(t));
            assert!(h.len() <= MAX_ENTRIES);
        }
        assert!(h.len() < 90, "kept {}", h.len());
        let end = Duration::from_secs(3600);
        for window in [1u64, 2, 5, 10, 30, 60, 300, 600, 1800, 3600] {
            let (at, c) = h.baseline(end, Duration::from_secs(window)).unwrap();
            let got = (end - at).as_secs_f64();
            let w = window as f64;
            assert!(got >= w && got <= w * 1.2 + 1.0, "window {window}: {got}");
            assert_eq!(c.requests, at.as_secs() as f64);
        }
    }

    #[test]
    fn old_snapshots_expire_but_the_newest_stays() {
        let mut h = History::default();
        h.push(Duration::ZERO, counts(0));
        h.push(MAX_AGE + Duration::from_secs(1), counts(1));
        assert_eq!(h.len(), 1);
    }
}
