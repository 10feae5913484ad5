//! Gateway API traffic splitting against the real API server and the real Gateway API CRDs
//! (`hack/cluster/gateway-api.sh`, run by `make cluster-up`).
//!
//! A user-shaped HTTPRoute (its Gateway need not exist: nothing here routes packets) is split by
//! `modelpilot::build::route`, written the way the controller writes it (a JSON merge patch of
//! `spec.rules` conditional on the `resourceVersion` it was computed from) and read back. The API
//! server's own validation of the route, OpenAPI bounds and CEL rules, is what refuses bad
//! weights; these tests check it really does.

mod common;

use std::future::Future;

use futures::FutureExt;
use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api,
    api::{DynamicObject, Patch, PatchParams, PostParams},
};
use modelpilot::build::{
    FIELD_MANAGER,
    route::{self, applied_weight, rules_patch, with_weights},
};
use serde_json::{Value, json};

use crate::common::{TestNamespace, client};

const STABLE: &str = "iris-stable";
const CANARY: &str = "iris-canary";

/// Run `body` in a fresh namespace, dumping its events if it panics, then delete it. Unlike
/// `common::in_namespace` it does not install the ModelDeployment CRD: these tests need only the
/// Gateway API's.
async fn in_namespace<F, Fut>(prefix: &str, body: F)
where
    F: FnOnce(TestNamespace) -> Fut,
    Fut: Future<Output = ()>,
{
    let client = client().await;
    let name = format!("{prefix}-{:08x}", rand::random::<u32>());
    let ns: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": {"modelpilot.io/test": "true"}}
    }))
    .expect("namespace object");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("create test namespace");
    let ns = TestNamespace { client, name };
    let result = std::panic::AssertUnwindSafe(body(ns.clone()))
        .catch_unwind()
        .await;
    if result.is_err() {
        ns.dump_events().await;
    }
    ns.delete().await;
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn routes(ns: &TestNamespace) -> Api<DynamicObject> {
    Api::namespaced_with(ns.client.clone(), &ns.name, &route::api_resource())
}

/// A route as a user writes it: a parent Gateway, a hostname, our rule to the main Service
/// `iris`, and a rule to some other Service.
fn user_route(name: &str, our_backend_ref: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name},
        "spec": {
            "parentRefs": [{"name": "public", "sectionName": "https"}],
            "hostnames": ["models.example.com"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/v2/models/iris"}}],
                    "backendRefs": [our_backend_ref]
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/legacy"}}],
                    "backendRefs": [{"name": "legacy", "port": 8080}]
                }
            ]
        }
    })
}

async fn create(api: &Api<DynamicObject>, route: Value) -> Result<Value, kube::Error> {
    let obj: DynamicObject = serde_json::from_value(route).expect("route object");
    let created = api.create(&PostParams::default(), &obj).await?;
    Ok(serde_json::to_value(created).expect("route as JSON"))
}

async fn get(api: &Api<DynamicObject>, name: &str) -> Value {
    serde_json::to_value(api.get(name).await.expect("get route")).expect("route as JSON")
}

/// Write a merge patch as the controller does (its field manager, strict field validation).
async fn write(api: &Api<DynamicObject>, name: &str, patch: &Value) -> Result<Value, kube::Error> {
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    }
    .validation_strict();
    let written = api.patch(name, &params, &Patch::Merge(patch)).await?;
    Ok(serde_json::to_value(written).expect("route as JSON"))
}

/// `err` is the API server refusing the object as invalid (422) with `expect` in its message.
fn assert_invalid(what: &str, result: Result<Value, kube::Error>, expect: &str) {
    match result {
        Err(kube::Error::Api(status)) => assert!(
            status.code == 422 && status.message.contains(expect),
            "{what}: refused with {} {}, expected 422 containing {expect:?}:\n{}",
            status.code,
            status.reason,
            status.message
        ),
        Err(err) => panic!("{what}: request failed: {err}"),
        Ok(route) => panic!("{what}: accepted, expected {expect:?}:\n{route:#}"),
    }
}

#[tokio::test]
async fn gateway_api_crds_are_installed_and_established() {
    let crds: Api<CustomResourceDefinition> = Api::all(client().await);
    for kind in [
        "gatewayclasses",
        "gateways",
        "httproutes",
        "referencegrants",
    ] {
        let name = format!("{kind}.{}", route::GROUP);
        let crd = crds
            .get_opt(&name)
            .await
            .expect("get CRD")
            .unwrap_or_else(|| {
                panic!(
                    "CRD {name} is not installed: run hack/cluster/gateway-api.sh \
                 (make cluster-up does, also on a cluster that is already up)"
                )
            });
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        assert!(established, "CRD {name} is not Established");
        assert!(
            crd.spec
                .versions
                .iter()
                .any(|v| v.name == route::VERSION && v.served),
            "CRD {name} does not serve {}",
            route::VERSION
        );
    }
}

#[tokio::test]
async fn weights_are_written_with_a_precondition_and_read_back() {
    in_namespace("mp-gwapi", |ns| async move {
        let api = routes(&ns);
        let created = create(
            &api,
            user_route("iris", json!({"name": "iris", "port": 80})),
        )
        .await
        .expect("the API server accepts the user's route");
        assert_eq!(
            applied_weight(&created, STABLE, CANARY),
            None,
            "not ours yet"
        );

        let rules = with_weights(&created, "iris", STABLE, CANARY, 80, 90, 10)
            .expect("the route has our rule")
            .expect("the split is a change");
        let patch = rules_patch(&created, rules).expect("read from the API server");
        write(&api, "iris", &patch)
            .await
            .expect("the API server accepts two weighted backendRefs");

        let stored = get(&api, "iris").await;
        assert_eq!(applied_weight(&stored, STABLE, CANARY), Some(10));
        let refs = &stored["spec"]["rules"][0]["backendRefs"];
        let summary: Vec<(&str, i64, i64)> = refs
            .as_array()
            .expect("backendRefs")
            .iter()
            .map(|r| {
                let field = |k: &str| r[k].as_i64().unwrap_or(-1);
                (
                    r["name"].as_str().unwrap_or(""),
                    field("port"),
                    field("weight"),
                )
            })
            .collect();
        assert_eq!(summary, [(STABLE, 80, 90), (CANARY, 80, 10)], "{refs:#}");
        assert_eq!(
            stored["spec"]["rules"][1], created["spec"]["rules"][1],
            "the rule to another Service is left alone"
        );
        assert_eq!(stored["spec"]["parentRefs"], created["spec"]["parentRefs"]);
        assert_eq!(stored["spec"]["hostnames"], created["spec"]["hostnames"]);
        // What the API server defaulted in (group, kind) does not make the next pass write again.
        assert_eq!(
            with_weights(&stored, "iris", STABLE, CANARY, 80, 90, 10),
            Ok(None)
        );

        // A write computed from the route as it was before is refused, not merged.
        let stale_rules = with_weights(&created, "iris", STABLE, CANARY, 80, 50, 50)
            .expect("our rule")
            .expect("a change");
        let stale = rules_patch(&created, stale_rules).expect("has a resourceVersion");
        match write(&api, "iris", &stale).await {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 409, "{status:?}"),
            other => panic!("a stale write was not refused with 409 Conflict: {other:?}"),
        }
        assert_eq!(
            applied_weight(&get(&api, "iris").await, STABLE, CANARY),
            Some(10)
        );
    })
    .await;
}

#[tokio::test]
async fn the_api_server_refuses_invalid_backend_refs() {
    in_namespace("mp-gwapi-invalid", |ns| async move {
        let api = routes(&ns);
        let weighted = |weight: i64| json!({"name": "iris", "port": 80, "weight": weight});
        #[rustfmt::skip]
        let cases = [
            ("weight -1", weighted(-1), "should be greater than or equal to 0"),
            ("weight over 1000000", weighted(1_000_001), "should be less than or equal to 1000000"),
            // A CEL rule of the HTTPRoute CRD (x-kubernetes-validations), not an OpenAPI bound.
            ("Service ref without port", json!({"name": "iris"}), "Must have port for Service reference"),
        ];
        for (i, (what, backend_ref, expect)) in cases.into_iter().enumerate() {
            let result = create(&api, user_route(&format!("bad-{i}"), backend_ref)).await;
            assert_invalid(what, result, expect);
        }

        // The controller's own write path: a merge patch carrying a negative weight.
        let created = create(&api, user_route("iris", json!({"name": "iris", "port": 80})))
            .await
            .expect("valid route");
        let mut rules = with_weights(&created, "iris", STABLE, CANARY, 80, 90, 10)
            .expect("our rule")
            .expect("a change");
        rules[0]["backendRefs"][1]["weight"] = json!(-1);
        let patch = rules_patch(&created, rules).expect("has a resourceVersion");
        assert_invalid(
            "patch with weight -1",
            write(&api, "iris", &patch).await,
            "should be greater than or equal to 0",
        );
        assert_eq!(
            get(&api, "iris").await["spec"]["rules"],
            created["spec"]["rules"],
            "a refused patch changes nothing"
        );
    })
    .await;
}
