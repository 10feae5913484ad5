//! Canary rollouts: how a new revision replaces the stable one, step by step, judged by analysis.
//! Pure decisions live here (replica counts for a traffic weight, …); the controller carries them
//! out.

pub mod replicas;
