//! A deterministic simulation of how fast and how steadily an autoscaler follows load: our
//! recommender (`modelpilot::autoscale::recommend`) and the HorizontalPodAutoscaler's default
//! policy, each driving the same simulated Deployment through the same load traces.
//!
//! Shared by the benchmark (`benches/autoscale_traces.rs`, prints the table) and the test
//! (`tests/autoscale_traces.rs`, asserts the targets): it is arithmetic, not timing, so the
//! numbers are the same on every machine.
//!
//! The plant: each second the demanded requests are in flight (queued when pods are short);
//! pods asked for serve after the start-up delay, pods removed stop at once. Both autoscalers
//! start in the steady state of the trace's first second. Where an autoscaler decides within
//! its period is arbitrary, so every score is the mean over all phases: both 2 s tick phases
//! for ours, all fifteen 1 s phases of the HPA's 15 s sync.

mod hpa;
mod ours;
mod plant;
mod score;
mod traces;

use plant::Plant;
pub use score::Score;
use score::{Run, mean, needed, score};

/// The simulation's knobs.
#[derive(Clone, Debug)]
pub struct Params {
    /// Requests in flight per pod both autoscalers aim at.
    pub target: f64,
    /// Seconds from a scale-up decision to the new pod serving.
    pub startup_seconds: u32,
    pub min: i32,
    pub max: i32,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            target: 4.0,
            startup_seconds: 10,
            min: 1,
            max: 20,
        }
    }
}

/// An autoscaler: called every second; `Some(count)` when it decides.
trait Autoscaler {
    fn decide(&mut self, t: u32, seen: &[f64], plant: &Plant) -> Option<i32>;
}

/// One trace's scores, side by side.
pub struct Row {
    pub trace: &'static str,
    pub ours: Score,
    pub hpa: Score,
}

/// Drives the plant through `demand` with `scaler`.
fn simulate(demand: &[f64], params: &Params, scaler: &mut dyn Autoscaler) -> Run {
    let first = demand.first().copied().unwrap_or(0.0);
    let mut plant = Plant::new(
        needed(first, params.target).clamp(params.min, params.max),
        params.startup_seconds,
    );
    let mut run = Run {
        ready: Vec::with_capacity(demand.len()),
        steps: Vec::new(),
    };
    for (t, seen) in (0..).zip(1..=demand.len()) {
        run.ready.push(plant.ready(t));
        if let Some(desired) = scaler.decide(t, &demand[..seen], &plant) {
            let step = desired - plant.current();
            if step != 0 {
                run.steps.push(step);
                plant.scale(t, desired);
            }
        }
    }
    run
}

/// Every trace, both autoscalers.
pub fn run(params: &Params) -> Vec<Row> {
    traces::all()
        .into_iter()
        .map(|trace| {
            let each = |scaler: &mut dyn Autoscaler| {
                score(
                    &trace.demand,
                    &simulate(&trace.demand, params, scaler),
                    params.target,
                    params.max,
                )
            };
            let ours: Vec<Score> = (0..ours::TICK)
                .map(|p| each(&mut ours::Ours::new(params, p)))
                .collect();
            let hpa: Vec<Score> = (0..hpa::SYNC)
                .map(|p| each(&mut hpa::Hpa::new(params, p)))
                .collect();
            Row {
                trace: trace.name,
                ours: mean(&ours),
                hpa: mean(&hpa),
            }
        })
        .collect()
}

/// The rows as a markdown table.
pub fn markdown(params: &Params, rows: &[Row]) -> String {
    let mut out = format!(
        "Target {} requests in flight per pod, {}–{} pods, pods serve {} s after the decision; \
         means over all decision phases.\n\n",
        params.target, params.min, params.max, params.startup_seconds
    );
    out.push_str("| trace | measure | ours | HPA | ours / HPA |\n|---|---|---|---|---|\n");
    for row in rows {
        let measures = [
            (
                "reaction to a rise (s)",
                row.ours.reaction,
                row.hpa.reaction,
                1,
            ),
            (
                "under-provisioned request-s",
                Some(row.ours.under),
                Some(row.hpa.under),
                0,
            ),
            (
                "over-provisioned replica-s",
                Some(row.ours.over),
                Some(row.hpa.over),
                0,
            ),
            (
                "direction changes",
                Some(row.ours.direction_changes),
                Some(row.hpa.direction_changes),
                1,
            ),
        ];
        for (what, ours, hpa, digits) in measures {
            let shown =
                |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"));
            let ratio = match (ours, hpa) {
                (Some(o), Some(h)) if h > 0.0 => format!("{:.2}", o / h),
                _ => "-".to_string(),
            };
            out.push_str(&format!(
                "| {} | {what} | {} | {} | {ratio} |\n",
                row.trace,
                shown(ours),
                shown(hpa)
            ));
        }
    }
    out
}
