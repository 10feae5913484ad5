//! How our autoscaler and the HorizontalPodAutoscaler's default policy follow load traces (a
//! step, a ramp, a spike, a compressed day): reaction time to a rise, under- and
//! over-provisioning, direction changes. A deterministic simulation (`autoscale_sim/`); prints
//! a markdown table. `tests/autoscale_traces.rs` asserts the targets on the same numbers.
//!
//! ```text
//! cargo bench --bench autoscale_traces [-- --startup-seconds 10]
//! ```

mod autoscale_sim;

use clap::Parser;

#[derive(Parser, Debug)]
struct Args {
    /// Seconds from a scale-up decision to the new pod serving.
    #[arg(long, default_value_t = 10)]
    startup_seconds: u32,
    /// Ignored: `cargo bench` passes it to every bench target.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    let args = Args::parse();
    let params = autoscale_sim::Params {
        startup_seconds: args.startup_seconds,
        ..autoscale_sim::Params::default()
    };
    let rows = autoscale_sim::run(&params);
    print!("{}", autoscale_sim::markdown(&params, &rows));
}
