//! Labelled rows counted by (true label, predicted label): the confusion matrix of label
//! feedback as monotonic counters (`modelpilot_feedback_labels_total{label, predicted}`).
//!
//! The rolling score gauges describe the last W labelled rows, whichever they are; counters can
//! be differenced over any window, per pod and per revision, so canary analysis (and PromQL's
//! `increase()`) can compute accuracy, macro recall and macro F1 of exactly the rows labelled in
//! a window. True labels come from clients, so the distinct labels are capped like predicted
//! classes are: labels past the cap are counted as [`OTHER_CLASS`].

use std::collections::{BTreeMap, HashSet};

use super::predictions::OTHER_CLASS;

/// Distinct labels tracked before [`OTHER_CLASS`] takes the rest (the server's class cap).
pub const DEFAULT_MAX_LABELS: usize = 64;

/// Counts of `(true label, predicted label)` pairs with a bounded label set.
#[derive(Debug)]
pub struct Confusion {
    max_labels: usize,
    labels: HashSet<String>,
    counts: BTreeMap<(String, String), u64>,
}

impl Confusion {
    /// At most `max_labels` distinct labels (true or predicted) keep their own name.
    pub fn new(max_labels: usize) -> Self {
        Self {
            max_labels,
            labels: HashSet::new(),
            counts: BTreeMap::new(),
        }
    }

    /// Counts one labelled row.
    pub fn record(&mut self, actual: &str, predicted: &str) {
        let key = (self.bounded(actual), self.bounded(predicted));
        *self.counts.entry(key).or_default() += 1;
    }

    /// `label` itself when known or when there is room for it, [`OTHER_CLASS`] otherwise.
    fn bounded(&mut self, label: &str) -> String {
        if self.labels.contains(label) {
            return label.to_string();
        }
        if self.labels.len() < self.max_labels {
            self.labels.insert(label.to_string());
            return label.to_string();
        }
        OTHER_CLASS.to_string()
    }

    /// Every `((true, predicted), rows)` counted so far, sorted.
    pub fn counts(&self) -> Vec<((String, String), u64)> {
        self.counts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Escapes a label value for the text formats (`\`, `"` and newline), which the metrics
/// encoder does not do for us.
pub fn escape_label_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_counted_and_labels_capped() {
        let mut c = Confusion::new(2);
        for (actual, predicted) in [("a", "a"), ("a", "b"), ("c", "a"), ("c", "d"), ("a", "a")] {
            c.record(actual, predicted);
        }
        let pair = |a: &str, p: &str, n: u64| ((a.to_string(), p.to_string()), n);
        assert_eq!(
            c.counts(),
            vec![
                pair(OTHER_CLASS, OTHER_CLASS, 1),
                pair(OTHER_CLASS, "a", 1),
                pair("a", "a", 2),
                pair("a", "b", 1),
            ]
        );
    }

    #[test]
    fn escaping_table() {
        let rows = [
            ("plain", "plain"),
            ("a\"b", "a\\\"b"),
            ("a\\b", "a\\\\b"),
            ("a\nb", "a\\nb"),
            ("é", "é"),
        ];
        for (raw, escaped) in rows {
            assert_eq!(escape_label_value(raw), escaped);
        }
    }
}
