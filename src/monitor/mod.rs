//! Monitoring the stable revision: its servers' sliding windows summed across pods
//! ([`window`]) and judged against the revision's baseline profile and its accuracy at
//! promotion ([`evaluate`]). The controller stage that schedules evaluations and scrapes the
//! pods is `controller::monitor`; the statistics themselves are `crate::drift`.

pub mod evaluate;
pub mod window;
