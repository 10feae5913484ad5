//! Rolling classification scores over the last W labelled rows: accuracy, and precision,
//! recall and F1 either for one positive class (binary) or macro-averaged over classes.
//!
//! Counts per class are updated incrementally as rows enter and leave the window, so a score
//! costs O(classes in the window), never O(window).
//!
//! [`scores_from_pairs`] scores the same way from `(true, predicted, rows)` counts, so the
//! controller, which sums the pods' windowed pair counts, gets the figures a pod would.

use std::collections::{HashMap, VecDeque};

/// How precision, recall and F1 are averaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Average {
    /// Scores of the given positive class only.
    Binary { positive: String },
    /// Unweighted mean over every class seen in the window (as true or predicted label).
    Macro,
}

/// Scores of the current window. A ratio whose denominator is zero counts as 0.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scores {
    pub rows: usize,
    pub accuracy: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct ClassCounts {
    tp: u64,
    fp: u64,
    fn_: u64,
}

impl ClassCounts {
    fn is_zero(&self) -> bool {
        self.tp == 0 && self.fp == 0 && self.fn_ == 0
    }

    /// `(precision, recall, f1)` of this class.
    fn scores(&self) -> (f64, f64, f64) {
        let p = ratio(self.tp, self.tp + self.fp);
        let r = ratio(self.tp, self.tp + self.fn_);
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        (p, r, f1)
    }
}

fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// A bounded window of `(predicted, actual)` rows with incremental per-class counts.
///
/// Worked example, macro average, predicted `[a, a, b, c]` vs actual `[a, b, b, a]`:
/// accuracy 2/4 = 0.5; per class (P, R, F1): a (1/2, 1/2, 1/2), b (1, 1/2, 2/3), c (0, 0, 0);
/// macro precision 0.5, recall 1/3, F1 (1/2 + 2/3 + 0)/3 ≈ 0.3889.
///
/// Binary with positive `1`, predicted `[1, 1, 1, 0, 0]` vs actual `[1, 0, 0, 1, 0]`:
/// tp 1, fp 2, fn 1 → accuracy 0.4, precision 1/3, recall 1/2, F1 0.4.
#[derive(Debug)]
pub struct RollingScores {
    capacity: usize,
    average: Average,
    rows: VecDeque<(String, String)>,
    classes: HashMap<String, ClassCounts>,
    correct: u64,
}

impl RollingScores {
    /// A window of at most `capacity` rows (at least 1).
    pub fn new(capacity: usize, average: Average) -> Self {
        Self {
            capacity: capacity.max(1),
            average,
            rows: VecDeque::new(),
            classes: HashMap::new(),
            correct: 0,
        }
    }

    /// Window capacity in rows.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Labelled rows currently in the window.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True before the first labelled row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Adds one labelled row, evicting the oldest when the window is full.
    pub fn push(&mut self, predicted: String, actual: String) {
        if self.rows.len() == self.capacity
            && let Some((p, a)) = self.rows.pop_front()
        {
            self.update(&p, &a, false);
        }
        self.update(&predicted, &actual, true);
        self.rows.push_back((predicted, actual));
    }

    fn update(&mut self, predicted: &str, actual: &str, add: bool) {
        let step = |v: &mut u64| *v = if add { *v + 1 } else { v.saturating_sub(1) };
        if predicted == actual {
            step(&mut self.correct);
            step(&mut self.class(predicted).tp);
        } else {
            step(&mut self.class(predicted).fp);
            step(&mut self.class(actual).fn_);
        }
        if !add {
            self.classes.retain(|_, c| !c.is_zero());
        }
    }

    fn class(&mut self, label: &str) -> &mut ClassCounts {
        self.classes.entry(label.to_string()).or_default()
    }

    /// Scores of the current window; `None` while it is empty.
    pub fn scores(&self) -> Option<Scores> {
        score(&self.classes, self.correct, self.rows.len(), &self.average)
    }
}

/// Scores from per-class counts: accuracy `correct / rows`, then precision, recall and F1 of
/// the positive class or their unweighted mean over every class. `None` when `rows` is 0.
fn score(
    classes: &HashMap<String, ClassCounts>,
    correct: u64,
    rows: usize,
    average: &Average,
) -> Option<Scores> {
    if rows == 0 {
        return None;
    }
    let (precision, recall, f1) = match average {
        Average::Binary { positive } => classes
            .get(positive)
            .map_or((0.0, 0.0, 0.0), ClassCounts::scores),
        Average::Macro => {
            let n = classes.len().max(1) as f64;
            let sums = classes
                .values()
                .map(ClassCounts::scores)
                .fold((0.0, 0.0, 0.0), |acc, s| {
                    (acc.0 + s.0, acc.1 + s.1, acc.2 + s.2)
                });
            (sums.0 / n, sums.1 / n, sums.2 / n)
        }
    };
    Some(Scores {
        rows,
        accuracy: ratio(correct, rows as u64),
        precision,
        recall,
        f1,
    })
}

/// Scores of labelled rows given as `(true label, predicted label, rows)` counts, e.g. the
/// `modelpilot_feedback_window_pairs` series of several pods summed: the binary scores of
/// `positive_label` when given, else the macro average over every label seen (true or
/// predicted), exactly as [`RollingScores`] scores the same rows. `None` without rows.
///
/// Worked example, macro: `(a, a, 1), (b, a, 1), (b, b, 1), (a, c, 1)` are the rows of the
/// [`RollingScores`] example (predicted `[a, a, b, c]`, actual `[a, b, b, a]`): accuracy 0.5,
/// precision 0.5, recall 1/3, F1 ≈ 0.3889. Binary with positive `"1"`: `(1, 1, 30), (0, 1, 10),
/// (1, 0, 20), (0, 0, 40)` → tp 30, fp 10, fn 20: accuracy 0.7, precision 0.75, recall 0.6,
/// F1 2·0.75·0.6/1.35 ≈ 0.6667.
pub fn scores_from_pairs(
    pairs: &[(String, String, u64)],
    positive_label: Option<&str>,
) -> Option<Scores> {
    let mut classes: HashMap<String, ClassCounts> = HashMap::new();
    let (mut correct, mut rows) = (0u64, 0u64);
    for (actual, predicted, n) in pairs.iter().filter(|p| p.2 > 0) {
        let n = *n;
        rows = rows.saturating_add(n);
        if actual == predicted {
            correct = correct.saturating_add(n);
            classes.entry(actual.clone()).or_default().tp += n;
        } else {
            classes.entry(predicted.clone()).or_default().fp += n;
            classes.entry(actual.clone()).or_default().fn_ += n;
        }
    }
    let average = positive_label.map_or(Average::Macro, |positive| Average::Binary {
        positive: positive.to_string(),
    });
    score(&classes, correct, usize::try_from(rows).ok()?, &average)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(capacity: usize, average: Average, predicted: &[&str], actual: &[&str]) -> Scores {
        let mut window = RollingScores::new(capacity, average);
        for (p, a) in predicted.iter().zip(actual) {
            window.push(p.to_string(), a.to_string());
        }
        window.scores().unwrap()
    }

    fn close(got: Scores, want: [f64; 4]) {
        let got_arr = [got.accuracy, got.precision, got.recall, got.f1];
        for (g, w) in got_arr.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn table_of_worked_examples() {
        let positive = || Average::Binary {
            positive: "1".into(),
        };
        type Case<'a> = (usize, Average, Vec<&'a str>, Vec<&'a str>, [f64; 4]);
        let cases: Vec<Case> = vec![
            // Macro, from the type docs.
            (
                10,
                Average::Macro,
                vec!["a", "a", "b", "c"],
                vec!["a", "b", "b", "a"],
                [0.5, 0.5, 1.0 / 3.0, 0.388_889],
            ),
            // Binary, from the type docs.
            (
                10,
                positive(),
                vec!["1", "1", "1", "0", "0"],
                vec!["1", "0", "0", "1", "0"],
                [0.4, 1.0 / 3.0, 0.5, 0.4],
            ),
            // All correct.
            (
                10,
                Average::Macro,
                vec!["x", "y"],
                vec!["x", "y"],
                [1.0, 1.0, 1.0, 1.0],
            ),
            // Positive class never seen: P = R = F1 = 0.
            (
                10,
                positive(),
                vec!["0", "0"],
                vec!["0", "0"],
                [1.0, 0.0, 0.0, 0.0],
            ),
            // Window of 2 keeps only the last two rows (both correct).
            (
                2,
                Average::Macro,
                vec!["a", "b", "b"],
                vec!["b", "b", "b"],
                [1.0, 1.0, 1.0, 1.0],
            ),
        ];
        for (capacity, average, predicted, actual, want) in cases {
            close(run(capacity, average, &predicted, &actual), want);
        }
    }

    #[test]
    fn eviction_keeps_counts_exact() {
        let mut window = RollingScores::new(3, Average::Macro);
        for i in 0..100 {
            let label = format!("c{}", i % 7);
            window.push(label.clone(), if i % 2 == 0 { label } else { "z".into() });
        }
        assert_eq!(window.len(), 3);
        assert!(
            window.classes.len() <= 6,
            "classes of evicted rows are dropped"
        );
        let fresh = run(3, Average::Macro, &["c6", "c0", "c1"], &["z", "c0", "z"]);
        assert_eq!(window.scores().unwrap(), fresh);
    }

    #[test]
    fn scores_from_pairs_table() {
        let pairs = |rows: &[(&str, &str, u64)]| -> Vec<(String, String, u64)> {
            let owned = rows
                .iter()
                .map(|(a, p, n)| (a.to_string(), p.to_string(), *n));
            owned.collect()
        };
        type Case<'a> = (Vec<(&'a str, &'a str, u64)>, Option<&'a str>, [f64; 4]);
        let cases: Vec<Case> = vec![
            // The macro example of the docs (the RollingScores example as pairs).
            (
                vec![("a", "a", 1), ("b", "a", 1), ("b", "b", 1), ("a", "c", 1)],
                None,
                [0.5, 0.5, 1.0 / 3.0, 0.388_889],
            ),
            // The binary example of the docs.
            (
                vec![
                    ("1", "1", 30),
                    ("0", "1", 10),
                    ("1", "0", 20),
                    ("0", "0", 40),
                ],
                Some("1"),
                [0.7, 0.75, 0.6, 2.0 / 3.0],
            ),
            // Zero counts are no rows; positive class absent: P = R = F1 = 0.
            (
                vec![("0", "0", 3), ("1", "1", 0)],
                Some("1"),
                [1.0, 0.0, 0.0, 0.0],
            ),
        ];
        for (rows, positive, want) in cases {
            let got = scores_from_pairs(&pairs(&rows), positive).unwrap();
            close(got, want);
        }
        assert!(scores_from_pairs(&[], None).is_none());
        assert!(scores_from_pairs(&pairs(&[("a", "a", 0)]), None).is_none());
    }

    #[test]
    fn scores_from_pairs_agree_with_the_rolling_window() {
        let predicted = ["c0", "c1", "c1", "c2", "c0", "z", "c2", "c1"];
        let actual = ["c0", "c1", "c0", "c2", "z", "z", "c1", "c1"];
        for average in [
            Average::Macro,
            Average::Binary {
                positive: "c1".into(),
            },
        ] {
            let rolling = run(100, average.clone(), &predicted, &actual);
            let mut counts: HashMap<(String, String), u64> = HashMap::new();
            for (p, a) in predicted.iter().zip(actual) {
                *counts.entry((a.to_string(), p.to_string())).or_default() += 1;
            }
            let pairs: Vec<_> = counts.into_iter().map(|((a, p), n)| (a, p, n)).collect();
            let positive = match &average {
                Average::Binary { positive } => Some(positive.as_str()),
                Average::Macro => None,
            };
            let summed = scores_from_pairs(&pairs, positive).unwrap();
            assert_eq!(summed.rows, rolling.rows);
            close(
                summed,
                [
                    rolling.accuracy,
                    rolling.precision,
                    rolling.recall,
                    rolling.f1,
                ],
            );
        }
    }

    #[test]
    fn empty_window_has_no_scores() {
        assert!(RollingScores::new(5, Average::Macro).scores().is_none());
    }
}
