//! The autoscaler's targets against the HorizontalPodAutoscaler's default policy, on the
//! deterministic trace simulation the benchmark prints (`benches/autoscale_sim/`): per trace,
//! our reaction to a rise at most half the HPA's, no more direction changes and no more
//! over-provisioned replica-seconds.

#[path = "../benches/autoscale_sim/mod.rs"]
mod autoscale_sim;

use autoscale_sim::{Params, markdown, run};

/// Targets the recommender misses today, as (trace, measure); see docs/performance.md,
/// "Autoscaling: reaction to load traces". On a gradual rise the panic threshold is never
/// crossed and the stable window's mean trails the load by half a window, so the reaction is
/// about 0.55–0.6 of the HPA's, not 0.5. Listed, not hidden: the test fails when one of them
/// starts passing, so the list shrinks with the fix.
const KNOWN_MISSES: &[(&str, &str)] = &[("ramp", "reaction"), ("diurnal", "reaction")];

#[test]
fn ours_reacts_faster_and_steadier_than_the_hpa() {
    let params = Params::default();
    let rows = run(&params);
    println!("{}", markdown(&params, &rows));
    let mut wrong = Vec::new();
    for row in &rows {
        let (ours, hpa) = (&row.ours, &row.hpa);
        let mut check = |measure: &str, met: bool, detail: String| {
            let known = KNOWN_MISSES.contains(&(row.trace, measure));
            match (met, known) {
                (false, false) => wrong.push(format!("{}: missed: {detail}", row.trace)),
                (true, true) => wrong.push(format!(
                    "{}: met, drop it from KNOWN_MISSES: {detail}",
                    row.trace
                )),
                _ => {}
            }
        };
        if let (Some(o), Some(h)) = (ours.reaction, hpa.reaction) {
            check(
                "reaction",
                o <= 0.5 * h,
                format!("reaction {o:.1} s, the HPA's {h:.1} s (target: at most half)"),
            );
        }
        check(
            "direction changes",
            ours.direction_changes <= hpa.direction_changes,
            format!(
                "{:.1} direction changes, the HPA's {:.1}",
                ours.direction_changes, hpa.direction_changes
            ),
        );
        check(
            "over-provisioned",
            ours.over <= hpa.over,
            format!(
                "{:.0} over-provisioned replica-s, the HPA's {:.0}",
                ours.over, hpa.over
            ),
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
