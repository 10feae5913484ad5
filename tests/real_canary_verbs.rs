//! The rollout verbs end to end, on real pods: the real `kubectl modelpilot` binary (as
//! `modelpilot plugin …`) asks, the in-process controller carries the request out on the real
//! cluster, and the test checks what changed — phases, pods, history, Services, an HTTPRoute's
//! weights — and what the plugin printed. One test per verb story, each in its own namespace with
//! its own controller, short steps and no load (the verbs need no traffic to act).
//!
//! Every sequence claim ("went Checking → Progressing → Paused", "never visited step 2", "the
//! route went 80/20 then 40/60") is checked against a `verbs_support::Recorder` that watches the object from
//! before the verb and keeps every distinct state it saw, so a skipped or extra state fails.
//!
//! Needs `make cluster-up` (as root) and the Python test env (`eval "$(hack/pyenv.sh)"`).

// `Load` (re-exported there) is not needed: the verbs act without traffic.
#[allow(unused_imports)]
mod canary_support;
mod common;
mod real_support;
mod serve_support;
mod verbs_support;

use canary_support::*;
use common::wait_for;
use k8s_openapi::api::{apps::v1::Deployment, batch::v1::Job};
use kube::{
    Api,
    api::{DynamicObject, PostParams},
};
use modelpilot::{
    api::{Outcome, RolloutPhase},
    build::{labels::SIGNATURE_OF, route},
};
use serde_json::json;
use verbs_support::*;

#[tokio::test]
async fn abort_then_retry_then_promote_through_the_plugin() {
    let test = "abort_then_retry_then_promote_through_the_plugin";
    verb_story("mp-verbs-retry", test, |ns, models| async move {
        let name = "retry";
        let rollout = json!({
            "steps": [{"setWeight": 50}, {"pause": {}}],
            "scaleDownDelaySeconds": 2
        });
        let mdeps = stable_v1(&ns, &models, name, 1, rollout).await;
        roll_out_v2(&mdeps, &models, name).await;
        let status = wait_paused_at(&mdeps, name, 1).await;
        let (v1_rev, v2_rev) = (stable_name(&status), canary_name(&status));
        assert_eq!(rollout_of(&status).desired_weight, 50);

        // abort: Done, the canary's pods go, the history says why.
        let out = plugin(&ns, &["abort", name]).await;
        assert_stdout(
            &out,
            0,
            &format!("abort {name}: Done: rolled back to the stable revision"),
        );
        let aborted = status_now(&mdeps, name).await;
        let rollout = rollout_of(&aborted);
        assert_eq!(rollout.phase, RolloutPhase::Aborted, "{rollout:#?}");
        assert_eq!(
            rollout.abort.as_ref().map(|a| a.reason.as_str()),
            Some("Requested")
        );
        let last = aborted.history.last().expect("a history entry");
        assert_eq!(
            (
                last.outcome,
                last.reason.as_str(),
                last.revision.name.as_str()
            ),
            (Outcome::RolledBack, "Requested", v2_rev.as_str())
        );
        assert_eq!(stable_name(&aborted), v1_rev);
        wait_no_pods(&ns, name, &v2_rev).await;

        // A verb that does not fit is refused with the controller's reason, and changes nothing.
        let out = plugin(&ns, &["resume", name]).await;
        assert_stdout(
            &out,
            1,
            &format!("resume {name}: Refused: nothing to resume: the rollout is Aborted"),
        );
        let refused = status_now(&mdeps, name).await;
        let ack = rollout_of(&refused)
            .last_request
            .expect("an acknowledgement");
        assert_eq!(
            (ack.action.as_str(), ack.result.as_str()),
            ("resume", "Refused")
        );
        assert_eq!(rollout_of(&refused).phase, RolloutPhase::Aborted);

        // retry: the same candidate goes through the check and the steps again.
        let moments = record(&mdeps, name, moment).await;
        let out = plugin(&ns, &["retry", name]).await;
        assert_stdout(
            &out,
            0,
            &format!("retry {name}: Done: started again from the first step"),
        );
        wait_paused_at(&mdeps, name, 1).await;
        let seen = phases(&moments_now(&moments, &mdeps, name).await);
        eprintln!("phases from the abort to the pause after retry: {seen:?}");
        assert!(
            in_order(
                &seen,
                &[
                    RolloutPhase::Aborted,
                    RolloutPhase::Checking,
                    RolloutPhase::Progressing,
                    RolloutPhase::Paused
                ]
            ),
            "phases after retry: {seen:?}\n{:#?}",
            moments.seen()
        );
        assert!(
            moments
                .seen()
                .iter()
                .all(|m| m.canary.is_none() || m.canary.as_deref() == Some(v2_rev.as_str())),
            "{:#?}",
            moments.seen()
        );

        // promote at the open pause: on to the end, promoted.
        let out = plugin(&ns, &["promote", name]).await;
        assert_stdout(&out, 0, &format!("promote {name}: Done: moved to step 2"));
        let status = wait_v2_promoted(&mdeps, name).await;
        assert_eq!(stable_version(&status), Some("v2"));
        assert_eq!(stable_name(&status), v2_rev);
        assert_eq!(rollout_of(&status).phase, RolloutPhase::Stable);
        // The last two entries: the aborted attempt, then the promotion of the same revision.
        let tail: Vec<_> = status
            .history
            .iter()
            .rev()
            .take(2)
            .rev()
            .map(|h| (h.revision.name.as_str(), h.outcome, h.reason.as_str()))
            .collect();
        assert_eq!(
            tail,
            [
                (v2_rev.as_str(), Outcome::RolledBack, "Requested"),
                (v2_rev.as_str(), Outcome::Promoted, "Promoted")
            ],
            "{:#?}",
            status.history
        );
        wait_no_pods(&ns, name, &v1_rev).await;
    })
    .await;
}

#[tokio::test]
async fn promote_full_skips_the_remaining_steps() {
    let test = "promote_full_skips_the_remaining_steps";
    verb_story("mp-verbs-full", test, |ns, models| async move {
        let name = "full";
        let rollout = json!({
            "steps": [{"setWeight": 25}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}],
            "scaleDownDelaySeconds": 2
        });
        let mdeps = stable_v1(&ns, &models, name, 1, rollout).await;
        roll_out_v2(&mdeps, &models, name).await;
        let status = wait_paused_at(&mdeps, name, 1).await;
        let v2_rev = canary_name(&status);
        assert_eq!(rollout_of(&status).desired_weight, 25);

        let moments = record(&mdeps, name, moment).await;
        let out = plugin(&ns, &["promote", name, "--full"]).await;
        assert_stdout(
            &out,
            0,
            &format!("promote-full {name}: Done: promoting without the remaining steps"),
        );
        let status = wait_v2_promoted(&mdeps, name).await;
        assert_eq!(stable_name(&status), v2_rev);
        assert_eq!(rollout_of(&status).phase, RolloutPhase::Stable);
        // From the first pause straight to the promotion: step 2 (setWeight 50) never started.
        let seen = moments_now(&moments, &mdeps, name).await;
        assert!(
            seen.iter().all(|m| m.step < 2 && m.desired != 50),
            "a later step was visited: {seen:#?}"
        );
        assert!(
            in_order(
                &phases(&seen),
                &[RolloutPhase::Paused, RolloutPhase::Stable]
            ),
            "{seen:#?}"
        );
        assert!(
            !phases(&seen).contains(&RolloutPhase::Progressing),
            "{seen:#?}"
        );
    })
    .await;
}

#[tokio::test]
async fn rollback_to_the_previous_stable_revision_through_the_plugin() {
    let test = "rollback_to_the_previous_stable_revision_through_the_plugin";
    verb_story("mp-verbs-back", test, |ns, models| async move {
        let name = "back";
        let rollout = json!({"steps": [{"setWeight": 50}], "scaleDownDelaySeconds": 2});
        let mdeps = stable_v1(&ns, &models, name, 1, rollout).await;
        let v1 = models.get("iris.onnx").clone();
        let v1_rev = stable_name(&status_now(&mdeps, name).await);
        roll_out_v2(&mdeps, &models, name).await;
        let v2_rev = stable_name(&wait_v2_promoted(&mdeps, name).await);
        assert_ne!(v1_rev, v2_rev);
        // After the scale-down delay v1 has no pod left: the rollback has to start it again.
        wait_no_pods(&ns, name, &v1_rev).await;

        let out = plugin_view(&ns, &["history", name]).await;
        eprintln!("history before the rollback:\n{}", report(&out));

        // Index 1 is the stable revision before the current one: v1.
        let jobs: Api<Job> = ns.api();
        let sig_jobs = record_names(&jobs, &format!("{SIGNATURE_OF}={name}")).await;
        let moments = record(&mdeps, name, moment).await;
        let out = plugin(&ns, &["rollback", name, "--to-revision", "1"]).await;
        assert_stdout(
            &out,
            0,
            &format!("rollback {name}: Done: spec.model set to revision {v1_rev} (v1)"),
        );
        let v1_rev2 = v1_rev.clone();
        let back = wait_rollout(&mdeps, name, START, move |s| {
            stable_name(s) == v1_rev2 && rollout_of(s).phase == RolloutPhase::Stable
        })
        .await;
        let model = &back.spec.model;
        assert_eq!(
            (
                model.uri.as_str(),
                model.sha256.as_deref(),
                model.version.as_deref()
            ),
            (v1.uri.as_str(), Some(v1.sha256.as_str()), Some("v1"))
        );
        let status = back.status.clone().unwrap_or_default();
        assert_eq!(stable_version(&status), Some("v1"));
        let last = status.history.last().expect("history");
        assert_eq!(
            (last.revision.name.as_str(), last.outcome),
            (v1_rev.as_str(), Outcome::Promoted),
            "{:#?}",
            status.history
        );
        // Fast-tracked: no signature check, no steps, straight to promoting.
        let seen = moments_now(&moments, &mdeps, name).await;
        assert!(
            phases(&seen)
                .iter()
                .all(|p| matches!(p, RolloutPhase::Stable | RolloutPhase::Promoting)),
            "the rollback went through the check or the steps: {seen:#?}"
        );
        assert!(
            seen.iter().any(|m| m.phase == RolloutPhase::Promoting
                && m.canary.as_deref() == Some(v1_rev.as_str())),
            "{seen:#?}"
        );
        let jobs_seen = sig_jobs.seen();
        eprintln!("signature Jobs seen from the rollback on: {jobs_seen:?}");
        assert!(
            !jobs_seen
                .iter()
                .any(|j| j.ends_with(&format!("-sig-{v1_rev}"))),
            "a signature Job ran for the rollback: {jobs_seen:?}"
        );
        wait_no_pods(&ns, name, &v2_rev).await;

        let out = plugin_view(&ns, &["history", name]).await;
        assert_eq!(out.status.code(), Some(0), "{}", report(&out));
        let table = text(&out.stdout);
        let rows: Vec<&str> = table.lines().collect();
        assert!(
            rows.get(1)
                .is_some_and(|r| r.starts_with("0*") && r.contains(&v1_rev) && r.contains("v1")),
            "{table}"
        );
        assert!(
            rows.get(2)
                .is_some_and(|r| r.starts_with("1 ") && r.contains(&v2_rev)),
            "{table}"
        );
    })
    .await;
}

#[tokio::test]
async fn gateway_api_weights_follow_the_steps_and_promotion() {
    let test = "gateway_api_weights_follow_the_steps_and_promotion";
    verb_story("mp-verbs-gateway", test, |ns, models| async move {
        let name = "routed";
        let routes: Api<DynamicObject> =
            Api::namespaced_with(ns.client.clone(), &ns.name, &route::api_resource());
        let user_route: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "public"},
            "spec": {
                "parentRefs": [{"name": "public-gateway"}],
                "rules": [{
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v2/models/iris"}}],
                    "backendRefs": [{"name": name, "port": 80}]
                }]
            }
        }))
        .expect("route object");
        routes
            .create(&PostParams::default(), &user_route)
            .await
            .expect("create the HTTPRoute");
        let weights = record(&routes, "public", move |r| route_weights(r, name)).await;

        let rollout = json!({
            "steps": [
                {"setWeight": 20}, {"pause": {"durationSeconds": 3}},
                {"setWeight": 60}, {"pause": {}}
            ],
            "traffic": {"mode": "GatewayAPI", "httpRoute": "public"},
            "scaleDownDelaySeconds": 2
        });
        let mdeps = stable_v1(&ns, &models, name, 2, rollout).await;
        let v1_rev = stable_name(&status_now(&mdeps, name).await);
        let deployments: Api<Deployment> = ns.api();
        let stable_deployment = format!("{name}-{v1_rev}");
        wait_for(
            &deployments,
            &stable_deployment,
            START,
            |d: Option<&Deployment>| {
                d.and_then(|d| d.status.as_ref())
                    .and_then(|s| s.ready_replicas)
                    == Some(2)
            },
        )
        .await;
        let stable_pods = record(&deployments, &stable_deployment, |d| {
            let status = d.status.clone().unwrap_or_default();
            Some((d.spec.replicas, status.ready_replicas.unwrap_or(0)))
        })
        .await;
        let moments = record(&mdeps, name, moment).await;

        roll_out_v2(&mdeps, &models, name).await;
        let at_pause = wait_rollout(&mdeps, name, START, |s| {
            paused_at(s, 3) && rollout_of(s).applied_weight == 60
        })
        .await;
        let v2_rev = canary_name(&at_pause.status.unwrap_or_default());

        // At the last pause: the track Services select their revisions, the main Service only
        // the stable one, and the stable revision kept all its pods throughout.
        assert_eq!(
            selected_revision(&ns, &format!("{name}-stable")).await,
            Some(v1_rev.clone())
        );
        assert_eq!(
            selected_revision(&ns, &format!("{name}-canary")).await,
            Some(v2_rev.clone())
        );
        assert_eq!(selected_revision(&ns, name).await, Some(v1_rev.clone()));
        let pods = stable_pods.seen();
        assert!(
            pods.iter()
                .all(|(replicas, ready)| *replicas == Some(2) && *ready == 2),
            "the stable Deployment lost pods during the rollout: {pods:?}"
        );
        let route_now = routes.get("public").await.expect("get the route");
        assert_eq!(route_weights(&route_now, name), Some((40, 60)));
        // Each setWeight step completed only once the route said so, and the status said it too.
        let seen = moments_now(&moments, &mdeps, name).await;
        assert!(
            seen.iter()
                .any(|m| m.phase == RolloutPhase::Progressing && m.step == 1 && m.applied == 20),
            "appliedWeight never read 20 during the timed pause: {seen:#?}"
        );

        let out = plugin(&ns, &["promote", name]).await;
        assert_stdout(&out, 0, &format!("promote {name}: Done: moved to step 4"));
        wait_v2_promoted(&mdeps, name).await;
        let v2_rev2 = v2_rev.clone();
        wait_for(
            &routes,
            "public",
            START,
            move |r: Option<&DynamicObject>| {
                r.and_then(|r| route_weights(r, name)) == Some((100, 0))
            },
        )
        .await;
        assert_eq!(
            selected_revision(&ns, &format!("{name}-stable")).await,
            Some(v2_rev2.clone())
        );
        assert_eq!(selected_revision(&ns, name).await, Some(v2_rev2));
        let weights = weights.seen();
        eprintln!("route (stable, canary) weights seen: {weights:?}");
        assert_eq!(
            weights,
            [(100, 0), (80, 20), (40, 60), (100, 0)],
            "route weights as the rollout went"
        );
        wait_no_pods(&ns, name, &v1_rev).await;
    })
    .await;
}
