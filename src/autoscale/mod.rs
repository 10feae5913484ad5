//! Autoscaling inference replicas on inference load.
//!
//! A model server saturates on requests in flight long before its CPU average moves, so the
//! built-in autoscaler reads each revision's own server metrics every tick and recommends a
//! count per revision:
//!
//! * `load.rs` — a metrics page's load counters, per-pod rates, per-revision totals and window
//!   averages (pure);
//! * `collect.rs` — the scrapes, one sample per revision per tick (memory only);
//! * `recommend.rs` — the recommender: stable and panic windows, scale-down delay, bounded
//!   rates (pure, modelled on Knative's KPA);
//! * `tick.rs` — one tick of one ModelDeployment: every serving revision decided on its own
//!   load, the status to write and the events (pure).
//!
//! How the counts become pods during a canary is the plan's (`rollout::plan`); `mode: HPA`
//! hands the count to a HorizontalPodAutoscaler instead (`build::hpa`).

pub mod collect;
pub mod load;
pub mod recommend;
pub mod tick;
