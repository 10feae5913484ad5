//! Replica counts for a canary weight: how many pods the stable and the canary revision run.
//!
//! With `traffic.mode: ReplicaRatio` the one Service spreads requests over every ready pod, so
//! the canary's share of traffic *is* its share of ready pods: the weight is approximated by
//! replica counts ([`split`]), reached without dropping ready capacity ([`step_counts`]), and
//! reported as what the pods really give ([`applied_weight`]). With `traffic.mode: GatewayAPI`
//! the route's weights split traffic and the stable keeps every pod ([`gateway_counts`]).
//!
//! Everything here is pure arithmetic on small integers, table-tested.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `ceil(total × weight / 100)` for non-negative operands.
fn ceil_share(total: i32, weight: i32) -> i32 {
    let product = i64::from(total.max(0)) * i64::from(weight.clamp(0, 100));
    // total ≤ i32::MAX and weight ≤ 100, so the result is at most total.
    i32::try_from((product + 99) / 100).unwrap_or(i32::MAX)
}

/// The replica counts `(stable, canary)` that give the canary `weight` percent of `total`
/// pods' worth of traffic: each side rounded **up**, `canary = ⌈total × weight / 100⌉` and
/// `stable = ⌈total × (100 − weight) / 100⌉`.
///
/// Rounding both sides up means neither revision ever gets fewer pods than its share of the
/// load, at the price of one extra pod when both shares are fractional (so the pair may sum to
/// `total + 1`). Any weight above 0 gets at least one canary pod, and any weight below 100 keeps
/// at least one stable pod. This is the rule Argo Rollouts applies when it scales both sides
/// from their traffic weights; its basic canary instead picks the nearest count.
///
/// ```
/// use modelpilot::rollout::replicas::split;
/// assert_eq!(split(10, 20), (8, 2)); // exact
/// assert_eq!(split(10, 25), (8, 3)); // 7.5 and 2.5 both round up: 11 pods
/// assert_eq!(split(4, 1), (4, 1)); // the smallest weight still gets a pod
/// assert_eq!(split(10, 100), (0, 10));
/// ```
pub fn split(total: i32, weight: i32) -> (i32, i32) {
    let weight = weight.clamp(0, 100);
    (ceil_share(total, 100 - weight), ceil_share(total, weight))
}

/// The replica counts `(stable, canary)` to apply now, moving from the current counts toward
/// [`split`]`(total, weight)` while the ready pods never fall below `total − max_unavailable`.
///
/// A side that grows gets its target at once (the canary on the way up, the stable on the way
/// back after an abort). A side that shrinks gives up only the pods the other side's ready pods
/// cover: it keeps enough of its own ready pods that, with the ready pods of the other side,
/// `total − max_unavailable` remain. It may always drop pods that are not ready, down to its
/// target, since that costs no ready capacity. When both shrink (fewer `total` pods), the stable
/// shrinks first.
///
/// Worked example, `total` 4, weight 50, `max_unavailable` 0 (target `(2, 2)`):
///
/// ```
/// use modelpilot::rollout::replicas::step_counts;
/// // args: total, weight, max_unavailable, ready (stable, canary), current (stable, canary)
/// // The canary is created at once; the stable waits for it.
/// assert_eq!(step_counts(4, 50, 0, 4, 0, 4, 0), (4, 2));
/// // One canary pod is ready: the stable may give up one pod.
/// assert_eq!(step_counts(4, 50, 0, 4, 1, 4, 2), (3, 2));
/// // Both canary pods are ready: the target.
/// assert_eq!(step_counts(4, 50, 0, 3, 2, 3, 2), (2, 2));
/// // Abort (weight 0): the stable grows back at once, the canary goes as stable pods are ready.
/// assert_eq!(step_counts(4, 0, 0, 2, 2, 2, 2), (4, 2));
/// assert_eq!(step_counts(4, 0, 0, 4, 2, 4, 2), (4, 0));
/// ```
pub fn step_counts(
    total: i32,
    weight: i32,
    max_unavailable: i32,
    ready_stable: i32,
    ready_canary: i32,
    current_stable: i32,
    current_canary: i32,
) -> (i32, i32) {
    let (target_stable, target_canary) = split(total, weight);
    let min_ready = total.max(0) - max_unavailable.clamp(0, total.max(0));
    let current_stable = current_stable.max(0);
    let current_canary = current_canary.max(0);
    let ready_stable = ready_stable.clamp(0, current_stable);
    let ready_canary = ready_canary.clamp(0, current_canary);

    // Growing sides first: they only add pods.
    let mut stable = current_stable.max(target_stable);
    let mut canary = current_canary.max(target_canary);
    if target_stable < current_stable {
        let others = ready_canary.min(canary);
        stable = shrink(
            target_stable,
            current_stable,
            ready_stable,
            others,
            min_ready,
        );
    }
    if target_canary < current_canary {
        let others = ready_stable.min(stable);
        canary = shrink(
            target_canary,
            current_canary,
            ready_canary,
            others,
            min_ready,
        );
    }
    (stable, canary)
}

/// How far a side may shrink toward `target`: it keeps as many of its `ready` pods as
/// `min_ready` still needs beyond the other side's ready pods (scaling down removes pods that
/// are not ready first).
fn shrink(target: i32, current: i32, ready: i32, others_ready: i32, min_ready: i32) -> i32 {
    let keep = (min_ready - others_ready).clamp(0, ready);
    target.max(keep).min(current)
}

/// The weight traffic really has with replica ratio: the canary's share of the ready pods, in
/// percent, rounded half up (0 when no pod is ready).
///
/// ```
/// use modelpilot::rollout::replicas::applied_weight;
/// assert_eq!(applied_weight(8, 3), 27); // 3 of 11 pods: 27.3 %
/// assert_eq!(applied_weight(7, 1), 13); // 12.5 % rounds up
/// assert_eq!(applied_weight(0, 0), 0);
/// ```
pub fn applied_weight(ready_stable: i32, ready_canary: i32) -> i32 {
    let canary = i64::from(ready_canary.max(0));
    let all = i64::from(ready_stable.max(0)) + canary;
    if all == 0 {
        return 0;
    }
    // round(100 × canary / all), halves up, in integers.
    i32::try_from((200 * canary + all) / (2 * all)).unwrap_or(100)
}

/// `rollout.maxUnavailable` in pods: a number as given, a percentage of `total` rounded down,
/// at most `total`; absent, negative or malformed (the CRD refuses those): 0, never below.
///
/// ```
/// use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
/// use modelpilot::rollout::replicas::max_unavailable;
/// assert_eq!(max_unavailable(10, Some(&IntOrString::String("25%".into()))), 2); // 2.5 → 2
/// assert_eq!(max_unavailable(10, Some(&IntOrString::Int(3))), 3);
/// assert_eq!(max_unavailable(10, None), 0);
/// ```
pub fn max_unavailable(total: i32, value: Option<&IntOrString>) -> i32 {
    let total = total.max(0);
    let pods = match value {
        None => 0,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => match s.strip_suffix('%').map(str::parse::<i64>) {
            Some(Ok(percent)) if (0..=100).contains(&percent) => {
                i32::try_from(i64::from(total) * percent / 100).unwrap_or(0)
            }
            _ => 0,
        },
    };
    pods.clamp(0, total)
}

/// The replica counts `(stable, canary)` with `traffic.mode: GatewayAPI`: the route's weights
/// split the traffic, so the stable keeps all `total` pods (it takes everything back on an
/// abort) and the canary runs `⌈total × weight / 100⌉`, at least one for any weight above 0.
/// With `total` 0 nothing runs.
///
/// ```
/// use modelpilot::rollout::replicas::gateway_counts;
/// assert_eq!(gateway_counts(10, 25), (10, 3));
/// assert_eq!(gateway_counts(10, 0), (10, 0));
/// assert_eq!(gateway_counts(3, 100), (3, 3));
/// ```
pub fn gateway_counts(total: i32, weight: i32) -> (i32, i32) {
    // Rounding up already gives any weight above 0 at least one pod of a non-zero total.
    (total.max(0), ceil_share(total, weight))
}

#[cfg(test)]
#[path = "replicas_tests.rs"]
mod tests;
