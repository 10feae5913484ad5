//! The `modelpilot profile` and `modelpilot drift` subcommands: thin shells over
//! [`build_profile`](super::build_profile::build_profile) and [`evaluate`](super::evaluate()),
//! so a data scientist can build a baseline and check a batch offline with the same numbers
//! the controller uses on live traffic.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::Context;

use super::{
    Correction, Counts, DriftConfig, Method, bin_index,
    build_profile::{DEFAULT_BINS, ProfileOptions, build_profile},
    data::{Table, Values, read_table},
    evaluate,
};
use crate::serve::observe::profile::{BaselineProfile, Kind};

/// `modelpilot profile`: write the baseline profile of a training data file.
#[derive(Debug, clap::Args)]
pub struct ProfileArgs {
    /// Training data: CSV with a header row, or a 2-D NumPy `.npy` (columns `f0`, `f1`, …).
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the profile (JSON, format version 2).
    #[arg(long)]
    pub output: PathBuf,
    /// Columns to treat as categorical (comma-separated); non-numeric columns always are.
    #[arg(long, value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Quantile bins per numeric column.
    #[arg(long, default_value_t = DEFAULT_BINS, value_parser = parse_bins)]
    pub bins: usize,
    /// Name of the model input tensor holding the columns (default: the model's first input).
    #[arg(long)]
    pub input: Option<String>,
    /// A column holding the model's predictions on this data (not an input): the baseline of
    /// the prediction shift. List it in --categorical for class labels.
    #[arg(long)]
    pub prediction: Option<String>,
    /// The class label binary precision, recall and F1 of label feedback are scored for.
    #[arg(long)]
    pub positive_label: Option<String>,
}

/// `modelpilot drift`: compare a data file with a baseline profile; prints the report (JSON).
/// The exit code is 0 whatever the verdict, non-zero only on bad input.
#[derive(Debug, clap::Args)]
pub struct DriftArgs {
    /// The baseline profile (from `modelpilot profile`).
    #[arg(long)]
    pub profile: PathBuf,
    /// The data to check, in the format the profile was built from.
    #[arg(long)]
    pub data: PathBuf,
    /// auto (KS for numeric, chi-square for categorical), ks, chi-square, psi or js.
    #[arg(long, default_value = "auto")]
    pub method: Method,
    /// Significance level of the dataset verdict (KS, chi-square).
    #[arg(long, default_value_t = 0.05)]
    pub p_value: f64,
    /// Distance threshold (PSI default 0.2, Jensen–Shannon default 0.1).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// bonferroni (level divided by the number of features) or none.
    #[arg(long, default_value = "bonferroni")]
    pub correction: Correction,
    /// Fewer rows than this leave a feature without a verdict.
    #[arg(long, default_value_t = 100)]
    pub min_samples: u64,
}

/// `--bins`: 2 to 10,000.
fn parse_bins(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(bins) if (2..=10_000).contains(&bins) => Ok(bins),
        _ => Err(format!("{text:?} is not a bin count from 2 to 10000")),
    }
}

/// Runs `modelpilot profile`.
pub fn profile(args: ProfileArgs) -> anyhow::Result<()> {
    let table = read_table(&args.data, &args.categorical)?;
    let options = ProfileOptions {
        bins: args.bins,
        input: args.input,
        prediction: args.prediction,
        positive_label: args.positive_label,
    };
    let profile = build_profile(&table, &options)
        .map_err(|reason| anyhow::anyhow!("{}: {reason}", args.data.display()))?;
    let mut json = serde_json::to_string_pretty(&profile)?;
    json.push('\n');
    std::fs::write(&args.output, json)
        .with_context(|| format!("cannot write {}", args.output.display()))
}

/// Runs `modelpilot drift`.
pub fn drift(args: DriftArgs) -> anyhow::Result<()> {
    let profile = BaselineProfile::load(&args.profile)?;
    let categorical: Vec<String> = profile
        .features
        .iter()
        .filter(|f| f.bins.kind == Kind::Categorical)
        .map(|f| f.name.clone())
        .collect();
    let table = read_table(&args.data, &categorical)?;
    let counts = current_counts(&profile, &table)
        .map_err(|reason| anyhow::anyhow!("{}: {reason}", args.data.display()))?;
    let config = DriftConfig {
        method: args.method,
        p_value: args.p_value,
        threshold: args.threshold,
        correction: args.correction,
        min_samples: args.min_samples,
    };
    let report = evaluate(&profile, &counts, &config)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

/// Counts of every profile feature in `table`, binned with the profile's edges (missing
/// values skipped). Every feature needs a column of the same name and kind.
pub fn current_counts(
    profile: &BaselineProfile,
    table: &Table,
) -> Result<BTreeMap<String, Counts>, String> {
    let mut counts = BTreeMap::new();
    for feature in &profile.features {
        let column = table
            .columns
            .iter()
            .find(|c| c.name == feature.name)
            .ok_or_else(|| format!("no column {:?} (a profile feature)", feature.name))?;
        let feature_counts = match (&column.values, feature.bins.kind) {
            (Values::Numeric(values), Kind::Numeric) => {
                let mut bins = vec![0u64; feature.bins.edges.len() + 1];
                for v in values.iter().filter(|v| !v.is_nan()) {
                    bins[bin_index(&feature.bins.edges, *v)] += 1;
                }
                Counts::Binned(bins)
            }
            (Values::Categorical(values), Kind::Categorical) => {
                let mut by_value = BTreeMap::new();
                for v in values.iter().filter(|v| !v.is_empty()) {
                    *by_value.entry(v.clone()).or_insert(0u64) += 1;
                }
                Counts::Categories(by_value)
            }
            _ => {
                let reason = format!("column {:?} is not numeric as in the profile", column.name);
                return Err(reason);
            }
        };
        counts.insert(feature.name.clone(), feature_counts);
    }
    Ok(counts)
}
