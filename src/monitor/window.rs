//! The servers' sliding windows, read from their `/metrics` pages and summed over a revision's
//! pods: what monitoring evaluates.
//!
//! Each server counts its live inputs per feature bin (or category), its predictions and its
//! labelled feedback over the last `--drift-window-seconds`, and exports those counts as
//! gauges. Counts add up across pods, so the revision's window is the sum of its pods' windows —
//! with no memory in the operator: what an evaluation needs is on the pages it reads.

use std::collections::BTreeMap;

use crate::{
    analysis::exposition::{self, ParseError, Sample},
    drift::evaluate::Counts,
};

/// Numeric feature bins: `{feature, bin}`.
pub const FEATURE_BIN: &str = "modelpilot_drift_window_bin";
/// Categorical features: `{feature, category}`.
pub const FEATURE_CATEGORY: &str = "modelpilot_drift_window_category";
/// Regression predictions per bin: `{bin}`.
pub const PREDICTION_BIN: &str = "modelpilot_prediction_window_bin";
/// Predicted classes: `{class}`.
pub const PREDICTION_CLASS: &str = "modelpilot_prediction_window_class";
/// Labelled rows: `{actual, predicted}`.
pub const FEEDBACK_PAIRS: &str = "modelpilot_feedback_window_pairs";

/// One window of counts (a pod's, or the sum of a revision's pods).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    /// Per feature: bin index → count, or category → count.
    pub features: BTreeMap<String, Tally>,
    /// The prediction's bins or classes.
    pub prediction: Option<Tally>,
    /// `(actual, predicted)` → labelled rows.
    pub pairs: BTreeMap<(String, String), u64>,
    /// Pods summed.
    pub pods: usize,
}

/// Counts keyed by bin index or by category, before they are shaped for the tests.
#[derive(Clone, Debug, PartialEq)]
pub enum Tally {
    Bins(BTreeMap<usize, u64>),
    Categories(BTreeMap<String, u64>),
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        match (self, other) {
            (Tally::Bins(a), Tally::Bins(b)) => {
                for (k, v) in b {
                    *a.entry(*k).or_default() += v;
                }
            }
            (Tally::Categories(a), Tally::Categories(b)) => {
                for (k, v) in b {
                    *a.entry(k.clone()).or_default() += v;
                }
            }
            // A feature cannot be both; the first kind seen wins.
            _ => {}
        }
    }

    /// The counts as the drift tests take them (bins in index order, gaps as zero).
    pub fn counts(&self) -> Counts {
        match self {
            Tally::Bins(bins) => {
                let len = bins.keys().next_back().map_or(0, |k| k + 1);
                let mut v = vec![0; len];
                for (k, c) in bins {
                    v[*k] = *c;
                }
                Counts::Binned(v)
            }
            Tally::Categories(c) => Counts::Categories(c.clone()),
        }
    }
}

/// A gauge value as a count (negative, NaN or fractional values are not counts: 0 or floor).
fn count(s: &Sample) -> u64 {
    if s.value.is_finite() && s.value > 0.0 {
        s.value as u64
    } else {
        0
    }
}

fn bin_of(s: &Sample) -> Option<usize> {
    s.label("bin")?.parse().ok()
}

impl Window {
    /// Reads one server's page.
    ///
    /// ```
    /// use modelpilot::monitor::window::Window;
    /// let page = "modelpilot_drift_window_bin{feature=\"a\",bin=\"0\"} 3\n\
    ///             modelpilot_drift_window_bin{feature=\"a\",bin=\"2\"} 5\n\
    ///             modelpilot_feedback_window_pairs{actual=\"1\",predicted=\"0\"} 2\n";
    /// let w = Window::parse(page).unwrap();
    /// assert_eq!(w.features["a"].counts(), modelpilot::drift::evaluate::Counts::Binned(vec![3, 0, 5]));
    /// assert_eq!(w.pairs[&("1".to_string(), "0".to_string())], 2);
    /// ```
    pub fn parse(page: &str) -> Result<Window, ParseError> {
        let mut w = Window {
            pods: 1,
            ..Window::default()
        };
        for s in exposition::parse(page)? {
            let n = count(&s);
            match s.name.as_str() {
                FEATURE_BIN => {
                    if let (Some(f), Some(bin)) = (s.label("feature"), bin_of(&s)) {
                        let one = Tally::Bins(BTreeMap::from([(bin, n)]));
                        add(&mut w.features, f, &one);
                    }
                }
                FEATURE_CATEGORY => {
                    if let (Some(f), Some(c)) = (s.label("feature"), s.label("category")) {
                        let one = Tally::Categories(BTreeMap::from([(c.to_string(), n)]));
                        add(&mut w.features, f, &one);
                    }
                }
                PREDICTION_BIN => {
                    if let Some(bin) = bin_of(&s) {
                        let one = Tally::Bins(BTreeMap::from([(bin, n)]));
                        add_prediction(&mut w.prediction, &one);
                    }
                }
                PREDICTION_CLASS => {
                    if let Some(c) = s.label("class") {
                        let one = Tally::Categories(BTreeMap::from([(c.to_string(), n)]));
                        add_prediction(&mut w.prediction, &one);
                    }
                }
                FEEDBACK_PAIRS => {
                    if let (Some(a), Some(p)) = (s.label("actual"), s.label("predicted")) {
                        *w.pairs.entry((a.to_string(), p.to_string())).or_default() += n;
                    }
                }
                _ => {}
            }
        }
        Ok(w)
    }

    /// Adds another pod's window to this one.
    pub fn add(&mut self, other: &Window) {
        for (name, tally) in &other.features {
            add(&mut self.features, name, tally);
        }
        if let Some(p) = &other.prediction {
            add_prediction(&mut self.prediction, p);
        }
        for (k, v) in &other.pairs {
            *self.pairs.entry(k.clone()).or_default() += v;
        }
        self.pods += other.pods;
    }

    /// The sum of many windows.
    pub fn sum<'a>(windows: impl IntoIterator<Item = &'a Window>) -> Window {
        let mut total = Window::default();
        for w in windows {
            total.add(w);
        }
        total
    }

    /// Per-feature counts as the drift evaluation takes them.
    pub fn feature_counts(&self) -> BTreeMap<String, Counts> {
        self.features
            .iter()
            .map(|(k, t)| (k.clone(), t.counts()))
            .collect()
    }

    /// `(actual, predicted, rows)` triples as the scores take them.
    pub fn pair_list(&self) -> Vec<(String, String, u64)> {
        self.pairs
            .iter()
            .map(|((a, p), n)| (a.clone(), p.clone(), *n))
            .collect()
    }
}

fn add(features: &mut BTreeMap<String, Tally>, name: &str, tally: &Tally) {
    match features.get_mut(name) {
        Some(t) => t.add(tally),
        None => {
            features.insert(name.to_string(), tally.clone());
        }
    }
}

fn add_prediction(prediction: &mut Option<Tally>, tally: &Tally) {
    match prediction {
        Some(t) => t.add(tally),
        None => *prediction = Some(tally.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POD_A: &str = "\
modelpilot_drift_window_seconds 60
modelpilot_drift_window_bin{feature=\"x\",bin=\"0\"} 1
modelpilot_drift_window_bin{feature=\"x\",bin=\"1\"} 2
modelpilot_drift_window_bin{feature=\"x\",bin=\"2\"} 0
modelpilot_drift_window_category{feature=\"c\",category=\"red\"} 4
modelpilot_prediction_window_class{class=\"1\"} 3
modelpilot_feedback_window_pairs{actual=\"1\",predicted=\"1\"} 5
other_metric{bin=\"0\"} 99
";
    const POD_B: &str = "\
modelpilot_drift_window_bin{feature=\"x\",bin=\"0\"} 10
modelpilot_drift_window_bin{feature=\"x\",bin=\"1\"} 0
modelpilot_drift_window_bin{feature=\"x\",bin=\"2\"} 7
modelpilot_drift_window_category{feature=\"c\",category=\"__other__\"} 1
modelpilot_drift_window_category{feature=\"c\",category=\"red\"} 1
modelpilot_prediction_window_class{class=\"0\"} 2
modelpilot_feedback_window_pairs{actual=\"1\",predicted=\"1\"} 1
modelpilot_feedback_window_pairs{actual=\"0\",predicted=\"1\"} 2
";

    #[test]
    fn pods_add_up_bin_by_bin_and_category_by_category() {
        let a = Window::parse(POD_A).unwrap();
        let b = Window::parse(POD_B).unwrap();
        let w = Window::sum([&a, &b]);
        assert_eq!(w.pods, 2);
        let counts = w.feature_counts();
        assert_eq!(counts["x"], Counts::Binned(vec![11, 2, 7]));
        let c = BTreeMap::from([("__other__".to_string(), 1), ("red".to_string(), 5)]);
        assert_eq!(counts["c"], Counts::Categories(c));
        let classes = BTreeMap::from([("0".to_string(), 2), ("1".to_string(), 3)]);
        assert_eq!(
            w.prediction.as_ref().map(|p| p.counts()),
            Some(Counts::Categories(classes))
        );
        assert_eq!(
            w.pair_list(),
            vec![("0".into(), "1".into(), 2), ("1".into(), "1".into(), 6)]
        );
    }

    #[test]
    fn odd_values_are_not_counts_and_bad_pages_are_errors() {
        let w = Window::parse(
            "modelpilot_drift_window_bin{feature=\"x\",bin=\"0\"} -3\n\
             modelpilot_drift_window_bin{feature=\"x\",bin=\"1\"} NaN\n\
             modelpilot_drift_window_bin{feature=\"x\",bin=\"zz\"} 4\n\
             modelpilot_drift_window_bin{bin=\"2\"} 4\n",
        )
        .unwrap();
        assert_eq!(w.feature_counts()["x"], Counts::Binned(vec![0, 0]));
        assert!(Window::parse("modelpilot_drift_window_bin{feature=\"x\" 3\n").is_err());
    }
}
