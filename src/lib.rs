//! modelpilot as a library: the binary in `main.rs` is a thin CLI over these modules,
//! and the integration tests in `tests/` drive the same code.
#![forbid(unsafe_code)]

pub mod analysis;
pub mod api;
pub mod autoscale;
pub mod build;
pub mod controller;
pub mod drift;
pub mod monitor;
pub mod plugin;
pub mod retrain;
pub mod rollout;
pub mod serve;
pub mod telemetry;
pub mod validate;
