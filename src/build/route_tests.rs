use serde_json::{Value, json};

use super::*;

/// An HTTPRoute `iris` in namespace `ml` with these rules.
fn route(rules: Value) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "iris", "namespace": "ml", "resourceVersion": "7"},
        "spec": {"parentRefs": [{"name": "public"}], "rules": rules}
    })
}

/// `with_weights` for the ModelDeployment `iris` on port 80.
fn iris(route: &Value, stable: i32, canary: i32) -> Result<Option<Value>, RouteError> {
    with_weights(
        route,
        "iris",
        "iris-stable",
        "iris-canary",
        80,
        stable,
        canary,
    )
}

/// A backendRef to Service `name` on port 80.
fn svc(name: &str) -> Value {
    json!({"name": name, "port": 80})
}

/// A backendRef to Service `name` on port 80 with `weight`.
fn svcw(name: &str, weight: i64) -> Value {
    json!({"name": name, "port": 80, "weight": weight})
}

fn split(stable: i64, canary: i64) -> Value {
    json!([svcw("iris-stable", stable), svcw("iris-canary", canary)])
}

fn filters(header: &str) -> Value {
    json!([{"type": "RequestHeaderModifier",
            "requestHeaderModifier": {"set": [{"name": "x-track", "value": header}]}}])
}

enum Want {
    /// These are the new rules.
    Rules(Value),
    /// Nothing to write.
    Unchanged,
    /// This error.
    Err(RouteError),
}

struct Case {
    name: &'static str,
    rules: Value,
    weights: (i32, i32),
    want: Want,
}

fn no_rule() -> RouteError {
    RouteError::NoRuleForService {
        route: "iris".into(),
        main: "iris".into(),
        stable: "iris-stable".into(),
        canary: "iris-canary".into(),
    }
}

fn malformed(path: &str, expected: &'static str) -> RouteError {
    RouteError::Malformed {
        route: "iris".into(),
        path: path.into(),
        expected,
    }
}

#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Want::*;
    let case = |name, rules, weights, want| Case { name, rules, weights, want };
    let matches = json!([{"path": {"type": "PathPrefix", "value": "/predict"}}]);
    let other = json!({"backendRefs": [svc("legacy")]});
    let redirect = json!({"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 301}}]});
    vec![
        case("main Service only: split",
            json!([{"matches": matches, "backendRefs": [svc("iris")]}]), (90, 10),
            Rules(json!([{"matches": matches, "backendRefs": split(90, 10)}]))),
        case("defaulted group, kind and weight of the main ref are kept, weight replaced",
            json!([{"backendRefs": [{"group": "", "kind": "Service", "name": "iris", "port": 80, "weight": 1}]}]), (90, 10),
            Rules(json!([{"backendRefs": [
                {"group": "", "kind": "Service", "name": "iris-stable", "port": 80, "weight": 90},
                {"group": "", "kind": "Service", "name": "iris-canary", "port": 80, "weight": 10}]}]))),
        case("filters of the main ref go to both tracks",
            json!([{"backendRefs": [{"name": "iris", "port": 80, "filters": filters("any")}]}]), (75, 25),
            Rules(json!([{"backendRefs": [
                {"name": "iris-stable", "port": 80, "weight": 75, "filters": filters("any")},
                {"name": "iris-canary", "port": 80, "weight": 25, "filters": filters("any")}]}]))),
        case("same weights: nothing to write",
            json!([{"backendRefs": split(90, 10)}]), (90, 10), Unchanged),
        case("new weights; each track keeps its own filters",
            json!([{"backendRefs": [
                {"name": "iris-stable", "port": 80, "weight": 90, "filters": filters("s")},
                {"name": "iris-canary", "port": 80, "weight": 10, "filters": filters("c")}]}]), (50, 50),
            Rules(json!([{"backendRefs": [
                {"name": "iris-stable", "port": 80, "weight": 50, "filters": filters("s")},
                {"name": "iris-canary", "port": 80, "weight": 50, "filters": filters("c")}]}]))),
        case("stable only: the canary ref is added like it",
            json!([{"backendRefs": [{"name": "iris-stable", "port": 80, "filters": filters("s")}]}]), (100, 0),
            Rules(json!([{"backendRefs": [
                {"name": "iris-stable", "port": 80, "weight": 100, "filters": filters("s")},
                {"name": "iris-canary", "port": 80, "weight": 0, "filters": filters("s")}]}]))),
        case("canary first: reordered stable, canary",
            json!([{"backendRefs": [svcw("iris-canary", 10), svcw("iris-stable", 90)]}]), (90, 10),
            Rules(json!([{"backendRefs": split(90, 10)}]))),
        case("another port: set to ours",
            json!([{"backendRefs": [{"name": "iris", "port": 8080}]}]), (90, 10),
            Rules(json!([{"backendRefs": split(90, 10)}]))),
        case("another Service in our rule is dropped",
            json!([{"backendRefs": [svc("iris"), svc("legacy")]}]), (90, 10),
            Rules(json!([{"backendRefs": split(90, 10)}]))),
        case("rules pointing elsewhere, and rule fields, are left alone",
            json!([other, {"name": "predict", "matches": matches, "timeouts": {"request": "10s"},
                           "backendRefs": [svc("iris")]}, redirect]), (90, 10),
            Rules(json!([other, {"name": "predict", "matches": matches, "timeouts": {"request": "10s"},
                                 "backendRefs": split(90, 10)}, redirect]))),
        case("every rule of ours is split",
            json!([{"backendRefs": [svc("iris")]}, {"backendRefs": split(90, 10)}]), (80, 20),
            Rules(json!([{"backendRefs": split(80, 20)}, {"backendRefs": split(80, 20)}]))),
        case("explicit namespace equal to the route's is ours",
            json!([{"backendRefs": [{"name": "iris", "namespace": "ml", "port": 80}]}]), (90, 10),
            Rules(json!([{"backendRefs": [
                {"name": "iris-stable", "namespace": "ml", "port": 80, "weight": 90},
                {"name": "iris-canary", "namespace": "ml", "port": 80, "weight": 10}]}]))),
        case("weights at the limits", json!([{"backendRefs": [svc("iris")]}]), (0, MAX_WEIGHT),
            Rules(json!([{"backendRefs": split(0, MAX_WEIGHT.into())}]))),
        case("Service of the same name in another namespace is not ours",
            json!([{"backendRefs": [{"name": "iris", "namespace": "other", "port": 80}]}]), (90, 10), Err(no_rule())),
        case("another kind of the same name is not ours",
            json!([{"backendRefs": [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": "iris"}]}]),
            (90, 10), Err(no_rule())),
        case("only other Services", json!([other]), (90, 10), Err(no_rule())),
        case("no backendRefs at all", json!([redirect]), (90, 10), Err(no_rule())),
        case("no rules", Value::Null, (90, 10), Err(no_rule())),
        case("rules not a list", json!({"backendRefs": []}), (90, 10), Err(malformed("spec.rules", "a list"))),
        case("a rule not an object", json!([[svc("iris")]]), (90, 10), Err(malformed("spec.rules[0]", "an object"))),
        case("backendRefs not a list", json!([other, {"backendRefs": svc("iris")}]), (90, 10),
            Err(malformed("spec.rules[1].backendRefs", "a list"))),
        case("negative weight", json!([{"backendRefs": [svc("iris")]}]), (-1, 10),
            Err(RouteError::InvalidWeights { stable: -1, canary: 10 })),
        case("weight over the maximum", json!([{"backendRefs": [svc("iris")]}]), (90, MAX_WEIGHT + 1),
            Err(RouteError::InvalidWeights { stable: 90, canary: MAX_WEIGHT + 1 })),
        case("both zero", json!([{"backendRefs": [svc("iris")]}]), (0, 0),
            Err(RouteError::InvalidWeights { stable: 0, canary: 0 })),
    ]
}

#[test]
fn with_weights_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut input = route(case.rules.clone());
        if case.rules.is_null() {
            input["spec"].as_object_mut().unwrap().remove("rules");
        }
        let (stable, canary) = case.weights;
        let got = iris(&input, stable, canary);
        let ok = match (&case.want, &got) {
            (Want::Rules(want), Ok(Some(got))) => want == got,
            (Want::Unchanged, Ok(None)) => true,
            (Want::Err(want), Err(got)) => want == got,
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: got {got:?}", case.name));
        }
        // Applying the result again changes nothing.
        if let Ok(Some(rules)) = got {
            input["spec"]["rules"] = rules;
            let again = iris(&input, stable, canary);
            if again != Ok(None) {
                failures.push(format!(
                    "{}: not idempotent, second pass {again:?}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn applied_weight_table() {
    let with_refs = |refs: Value| route(json!([{"backendRefs": refs}]));
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, Option<i32>)> = vec![
        ("90/10", with_refs(split(90, 10)), Some(10)),
        ("all stable", with_refs(split(100, 0)), Some(0)),
        ("all canary", with_refs(split(0, 100)), Some(100)),
        ("a third rounds down", with_refs(split(2, 1)), Some(33)),
        ("two thirds round up", with_refs(split(1, 2)), Some(67)),
        ("half a percent rounds up", with_refs(split(199, 1)), Some(1)),
        ("just under half a percent", with_refs(split(201, 1)), Some(0)),
        ("weights at the maximum", with_refs(split(1_000_000, 1_000_000)), Some(50)),
        ("no weight counts 1", with_refs(json!([svc("iris-stable"), svc("iris-canary")])), Some(50)),
        ("stable ref only", with_refs(json!([svc("iris-stable")])), Some(0)),
        ("canary first", with_refs(json!([svcw("iris-canary", 25), svcw("iris-stable", 75)])), Some(25)),
        ("both zero", with_refs(split(0, 0)), None),
        ("negative weight", with_refs(split(-1, 10)), None),
        ("main Service only: not ours yet", with_refs(json!([svc("iris")])), None),
        ("in another namespace", with_refs(json!([
            {"name": "iris-stable", "namespace": "other", "port": 80, "weight": 90},
            {"name": "iris-canary", "namespace": "other", "port": 80, "weight": 10}])), None),
        ("rules agree", route(json!([{"backendRefs": split(90, 10)}, {"backendRefs": [svc("legacy")]},
                                     {"backendRefs": split(9, 1)}])), Some(10)),
        ("rules disagree", route(json!([{"backendRefs": split(90, 10)}, {"backendRefs": split(50, 50)}])), None),
        ("no rules", json!({"metadata": {"name": "iris"}, "spec": {}}), None),
    ];
    let failures: Vec<String> = cases
        .into_iter()
        .filter_map(|(name, route, want)| {
            let got = applied_weight(&route, "iris-stable", "iris-canary");
            (got != want).then(|| format!("{name}: got {got:?}, want {want:?}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn weights_round_trip_through_applied_weight() {
    let base = route(json!([{"backendRefs": [svc("iris")]}]));
    for canary in 0..=100 {
        let rules = iris(&base, 100 - canary, canary).unwrap().unwrap();
        let mut written = base.clone();
        written["spec"]["rules"] = rules;
        assert_eq!(
            applied_weight(&written, "iris-stable", "iris-canary"),
            Some(canary)
        );
    }
}

#[test]
fn patch_carries_the_resource_version() {
    let rules = json!([{"backendRefs": split(90, 10)}]);
    let patch = rules_patch(&route(Value::Null), rules.clone()).unwrap();
    assert_eq!(
        patch,
        json!({"metadata": {"resourceVersion": "7"}, "spec": {"rules": rules}})
    );
    let mut unread = route(Value::Null);
    unread["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let err = rules_patch(&unread, rules).unwrap_err();
    assert_eq!(err.reason(), "HTTPRouteNoResourceVersion");
    assert_eq!(
        err.to_string(),
        "HTTPRoute iris has no metadata.resourceVersion to make the write conditional on"
    );
}

#[test]
fn error_messages_name_the_route_and_services() {
    let err = iris(&route(json!([{"backendRefs": [svc("legacy")]}])), 90, 10).unwrap_err();
    assert_eq!(err.reason(), "HTTPRouteNoRuleForService");
    assert_eq!(
        err.to_string(),
        "HTTPRoute iris has no rule with a backendRef to service iris, iris-stable or iris-canary"
    );
    assert_eq!(
        malformed("spec.rules[1].backendRefs", "a list").to_string(),
        "HTTPRoute iris: spec.rules[1].backendRefs is not a list"
    );
    assert_eq!(
        RouteError::InvalidWeights {
            stable: -1,
            canary: 10
        }
        .to_string(),
        "backendRef weights stable -1 and canary 10: each must be 0-1000000 and not both 0"
    );
}

#[test]
fn api_resource_is_httproute_v1() {
    let ar = api_resource();
    assert_eq!(ar.api_version, "gateway.networking.k8s.io/v1");
    assert_eq!(
        (ar.kind.as_str(), ar.plural.as_str()),
        ("HTTPRoute", "httproutes")
    );
}
