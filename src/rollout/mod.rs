//! Canary rollouts: how a new revision replaces the stable one, step by step, judged by analysis.
//!
//! Pure decisions live here — replica counts for a traffic weight (`replicas`), the step machine
//! (`steps`), explicit requests (`requests`) and the plan that ties them together (`plan`); the
//! controller observes the cluster, calls `plan::plan`, and carries the plan out.

pub mod plan;
pub mod replicas;
pub mod requests;
pub mod steps;
