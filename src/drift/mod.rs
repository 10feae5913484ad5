//! Drift detection: is the data a model sees now distributed like the data it was trained on?
//!
//! The same statistics serve three callers, so they live here, apart from the server:
//! `modelpilot profile` builds the training-time baseline profile from a data file,
//! `modelpilot drift` compares another data file against it offline, and the controller
//! compares the server's live window counts against it. All of them bin values through
//! [`bin_index`] with the profile's edges, count categories by their text, and hand the
//! counts to the pure [`evaluate`].
//!
//! * [`stats`]: the tests and distances (KS on bins, chi-square, PSI, Jensen–Shannon);
//! * [`evaluate`](mod@evaluate): one verdict per feature, then one for the dataset
//!   (Bonferroni by default, the rule of Alibi Detect's `TabularDrift`);
//! * [`data`]: CSV and `.npy` readers; [`build_profile`](mod@build_profile): data → profile;
//! * [`cli`]: the two subcommands.

pub mod build_profile;
pub mod cli;
pub mod data;
pub mod evaluate;
pub mod stats;

pub use evaluate::{
    Correction, Counts, DriftConfig, DriftError, FeatureResult, Method, Report, evaluate,
    evaluate_prediction,
};
pub use stats::bin_index;
