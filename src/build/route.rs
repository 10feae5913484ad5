//! The weights of the user's `HTTPRoute` in Gateway API traffic mode.
//!
//! The route belongs to the user (hostnames, matches, filters, parent Gateways); the operator owns
//! only the `backendRefs` of the rules that send traffic to the `ModelDeployment`. It rewrites each
//! such rule to exactly two weighted refs, `<mdep>-stable` and `<mdep>-canary`, and reads the
//! canary's share back from them. Everything here is a pure function over the route as JSON (a
//! [`kube::api::DynamicObject`] serialises to it): there is no typed Gateway API crate for
//! k8s-openapi 0.29 / kube 5, and JSON keeps every field of the user's rules we do not know about.
//!
//! The write is a JSON merge patch of `spec.rules` that carries the `resourceVersion` the rules were
//! computed from ([`rules_patch`]), so a route the user edited in the meantime is refused with
//! `409 Conflict` instead of being overwritten; the controller reads it again and recomputes.
//!
//! Worked example: the user's route sends `/predict` to the main Service `iris`; at a canary step
//! of 10 % it becomes a 90/10 split, and the share reads back as 10.
//!
//! ```
//! use modelpilot::build::route::{applied_weight, rules_patch, with_weights};
//! use serde_json::json;
//!
//! let route = json!({
//!     "metadata": {"name": "iris", "namespace": "ml", "resourceVersion": "41"},
//!     "spec": {
//!         "parentRefs": [{"name": "public"}],
//!         "rules": [{
//!             "matches": [{"path": {"type": "PathPrefix", "value": "/predict"}}],
//!             "backendRefs": [{"group": "", "kind": "Service", "name": "iris", "port": 80, "weight": 1}]
//!         }]
//!     }
//! });
//! assert_eq!(applied_weight(&route, "iris-stable", "iris-canary"), None); // not ours yet
//!
//! let rules = with_weights(&route, "iris", "iris-stable", "iris-canary", 80, 90, 10)
//!     .unwrap()
//!     .expect("the rule changes");
//! assert_eq!(rules, json!([{
//!     "matches": [{"path": {"type": "PathPrefix", "value": "/predict"}}],
//!     "backendRefs": [
//!         {"group": "", "kind": "Service", "name": "iris-stable", "port": 80, "weight": 90},
//!         {"group": "", "kind": "Service", "name": "iris-canary", "port": 80, "weight": 10}
//!     ]
//! }]));
//!
//! let patch = rules_patch(&route, rules.clone()).unwrap();
//! assert_eq!(patch, json!({"metadata": {"resourceVersion": "41"}, "spec": {"rules": rules}}));
//!
//! // After the write: the share reads back, and the same weights change nothing.
//! let mut written = route.clone();
//! written["spec"]["rules"] = rules;
//! assert_eq!(applied_weight(&written, "iris-stable", "iris-canary"), Some(10));
//! assert_eq!(with_weights(&written, "iris", "iris-stable", "iris-canary", 80, 90, 10), Ok(None));
//! ```

use kube::api::ApiResource;
use serde_json::{Map, Value, json};

/// API group of the Gateway API.
pub const GROUP: &str = "gateway.networking.k8s.io";
/// The served version of `HTTPRoute` used for reads and writes.
pub const VERSION: &str = "v1";
/// Kind of the route resource.
pub const KIND: &str = "HTTPRoute";
/// Largest weight a `backendRef` accepts (the CRD's `maximum`).
pub const MAX_WEIGHT: i32 = 1_000_000;

/// The `HTTPRoute` resource, for an `Api<DynamicObject>`.
pub fn api_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: KIND.into(),
        plural: "httproutes".into(),
    }
}

/// Why the route's weights cannot be set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// No rule sends traffic to the `ModelDeployment`: the route names another Service, or the
    /// wrong route was given in `spec.rollout.traffic.httpRoute`.
    #[error(
        "HTTPRoute {route} has no rule with a backendRef to service {main}, {stable} or {canary}"
    )]
    NoRuleForService {
        route: String,
        main: String,
        stable: String,
        canary: String,
    },
    /// A part of the route is not shaped as the Gateway API defines it.
    #[error("HTTPRoute {route}: {path} is not {expected}")]
    Malformed {
        route: String,
        path: String,
        expected: &'static str,
    },
    /// Weights the API server would refuse, or that would send the traffic nowhere.
    #[error(
        "backendRef weights stable {stable} and canary {canary}: each must be 0-{MAX_WEIGHT} and not both 0"
    )]
    InvalidWeights { stable: i32, canary: i32 },
    /// The route was not read from the API server, so a write could not be conditional on it.
    #[error("HTTPRoute {route} has no metadata.resourceVersion to make the write conditional on")]
    NoResourceVersion { route: String },
}

impl RouteError {
    /// A stable CamelCase reason for events, conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoRuleForService { .. } => "HTTPRouteNoRuleForService",
            Self::Malformed { .. } => "HTTPRouteMalformed",
            Self::InvalidWeights { .. } => "InvalidWeights",
            Self::NoResourceVersion { .. } => "HTTPRouteNoResourceVersion",
        }
    }
}

/// The new `spec.rules` of `route` with the canary split applied, or `None` when the route already
/// says exactly that (then nothing is written).
///
/// A rule is the `ModelDeployment`'s when one of its `backendRefs` is a Service (core group, kind
/// `Service`, in the route's namespace) named `main_service`, `stable_service` or
/// `canary_service`. Each such rule gets exactly two refs, stable then canary, on `port` with the
/// given weights; any other ref of that rule is dropped. Each of the two keeps the other fields
/// (`filters`, an explicit `group`/`kind`/`namespace`) of the ref it replaces: the existing
/// stable (canary) ref, else the one to the main Service, else the other track's. Rules without
/// such a ref, and every field outside `backendRefs`, are left as they are.
///
/// ```
/// use modelpilot::build::route::with_weights;
/// use serde_json::json;
///
/// // A rule split 90/10 already; a redirect rule that is not ours.
/// let route = json!({"metadata": {"name": "iris"}, "spec": {"rules": [
///     {"backendRefs": [{"name": "iris-stable", "port": 80, "weight": 90},
///                      {"name": "iris-canary", "port": 80, "weight": 10}]},
///     {"filters": [{"type": "RequestRedirect", "requestRedirect": {"statusCode": 301}}]}
/// ]}});
/// let rules = with_weights(&route, "iris", "iris-stable", "iris-canary", 80, 50, 50).unwrap().unwrap();
/// assert_eq!(rules[0]["backendRefs"][1], json!({"name": "iris-canary", "port": 80, "weight": 50}));
/// assert_eq!(rules[1], route["spec"]["rules"][1]);
///
/// let err = with_weights(&route, "wine", "wine-stable", "wine-canary", 80, 50, 50).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "HTTPRoute iris has no rule with a backendRef to service wine, wine-stable or wine-canary"
/// );
/// ```
pub fn with_weights(
    route: &Value,
    main_service: &str,
    stable_service: &str,
    canary_service: &str,
    port: i32,
    stable_weight: i32,
    canary_weight: i32,
) -> Result<Option<Value>, RouteError> {
    let valid = |w: i32| (0..=MAX_WEIGHT).contains(&w);
    if !valid(stable_weight) || !valid(canary_weight) || stable_weight + canary_weight == 0 {
        return Err(RouteError::InvalidWeights {
            stable: stable_weight,
            canary: canary_weight,
        });
    }
    let namespace = namespace(route);
    let ours = |r: &Value| {
        [main_service, stable_service, canary_service]
            .into_iter()
            .any(|name| is_service_ref(r, namespace, name))
    };
    let rules = rules(route)?;
    let mut changed = Vec::with_capacity(rules.len());
    let mut any_ours = false;
    for (i, rule) in rules.iter().enumerate() {
        let refs = backend_refs(route, rule, i)?;
        if !refs.iter().any(ours) {
            changed.push(rule.clone());
            continue;
        }
        any_ours = true;
        let pick = |order: [&str; 3]| {
            order
                .into_iter()
                .find_map(|name| refs.iter().find(|r| is_service_ref(r, namespace, name)))
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let stable = weighted(
            pick([stable_service, main_service, canary_service]),
            stable_service,
            port,
            stable_weight,
        );
        let canary = weighted(
            pick([canary_service, main_service, stable_service]),
            canary_service,
            port,
            canary_weight,
        );
        let mut rule = rule.as_object().cloned().unwrap_or_default();
        rule.insert("backendRefs".into(), json!([stable, canary]));
        changed.push(Value::Object(rule));
    }
    if !any_ours {
        return Err(RouteError::NoRuleForService {
            route: route_name(route),
            main: main_service.into(),
            stable: stable_service.into(),
            canary: canary_service.into(),
        });
    }
    Ok((changed.as_slice() != rules).then_some(Value::Array(changed)))
}

/// The canary's share of traffic (0-100) as the route says: `canary / (stable + canary) × 100`,
/// rounded half up, over the refs to `stable_service` and `canary_service` (a ref without
/// `weight` counts 1, the API's default; a missing one 0).
///
/// `None` when no rule sends traffic to either yet, when their weights add up to 0, or when the
/// rules that do disagree (then [`with_weights`] has a change to write).
///
/// ```
/// use modelpilot::build::route::applied_weight;
/// use serde_json::json;
///
/// let route = |stable: i32, canary: i32| json!({"spec": {"rules": [{"backendRefs": [
///     {"name": "iris-stable", "port": 80, "weight": stable},
///     {"name": "iris-canary", "port": 80, "weight": canary}
/// ]}]}});
/// assert_eq!(applied_weight(&route(90, 10), "iris-stable", "iris-canary"), Some(10));
/// assert_eq!(applied_weight(&route(2, 1), "iris-stable", "iris-canary"), Some(33)); // 33.3
/// assert_eq!(applied_weight(&route(1, 1), "iris-stable", "iris-canary"), Some(50));
/// assert_eq!(applied_weight(&route(0, 0), "iris-stable", "iris-canary"), None);
/// ```
pub fn applied_weight(route: &Value, stable_service: &str, canary_service: &str) -> Option<i32> {
    let namespace = namespace(route);
    let mut share = None;
    for rule in route.pointer("/spec/rules")?.as_array()? {
        let Some(refs) = rule.get("backendRefs").and_then(Value::as_array) else {
            continue;
        };
        let (mut stable, mut canary, mut seen) = (0i128, 0i128, false);
        for r in refs {
            if is_service_ref(r, namespace, stable_service) {
                stable += ref_weight(r)?;
                seen = true;
            } else if is_service_ref(r, namespace, canary_service) {
                canary += ref_weight(r)?;
                seen = true;
            }
        }
        if !seen {
            continue;
        }
        let total = stable + canary;
        if total == 0 {
            return None;
        }
        let this = i32::try_from((200 * canary + total) / (2 * total)).ok()?;
        match share {
            None => share = Some(this),
            Some(other) if other != this => return None,
            Some(_) => {}
        }
    }
    share
}

/// The body of the JSON merge patch (`Patch::Merge`) that replaces the route's `spec.rules` with
/// `rules`, conditional on the route still being at the `resourceVersion` it was read at: the API
/// server answers `409 Conflict` when it changed since.
pub fn rules_patch(route: &Value, rules: Value) -> Result<Value, RouteError> {
    let version = route
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| RouteError::NoResourceVersion {
            route: route_name(route),
        })?;
    Ok(json!({"metadata": {"resourceVersion": version}, "spec": {"rules": rules}}))
}

fn route_name(route: &Value) -> String {
    route
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_owned()
}

fn namespace(route: &Value) -> Option<&str> {
    route.pointer("/metadata/namespace").and_then(Value::as_str)
}

/// `spec.rules`; an absent list is empty.
fn rules(route: &Value) -> Result<&[Value], RouteError> {
    match route.pointer("/spec/rules") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(rules)) => Ok(rules),
        Some(_) => Err(malformed(route, "spec.rules".into(), "a list")),
    }
}

/// `spec.rules[i].backendRefs`; an absent list is empty.
fn backend_refs<'a>(route: &Value, rule: &'a Value, i: usize) -> Result<&'a [Value], RouteError> {
    let Some(rule) = rule.as_object() else {
        return Err(malformed(route, format!("spec.rules[{i}]"), "an object"));
    };
    match rule.get("backendRefs") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(refs)) => Ok(refs),
        Some(_) => Err(malformed(
            route,
            format!("spec.rules[{i}].backendRefs"),
            "a list",
        )),
    }
}

fn malformed(route: &Value, path: String, expected: &'static str) -> RouteError {
    RouteError::Malformed {
        route: route_name(route),
        path,
        expected,
    }
}

/// `r` refers to the Service `name` in the route's namespace (group and kind default to the core
/// group's `Service`, the namespace to the route's).
fn is_service_ref(r: &Value, route_namespace: Option<&str>, name: &str) -> bool {
    let field = |key| r.get(key).and_then(Value::as_str);
    field("name") == Some(name)
        && field("group").unwrap_or("").is_empty()
        && field("kind").unwrap_or("Service") == "Service"
        && field("namespace").is_none_or(|ns| Some(ns) == route_namespace)
}

/// A ref's weight: absent is the API's default 1; a negative or non-integer weight is unreadable.
fn ref_weight(r: &Value) -> Option<i128> {
    match r.get("weight") {
        None | Some(Value::Null) => Some(1),
        Some(w) => w.as_i64().filter(|w| *w >= 0).map(i128::from),
    }
}

fn weighted(mut template: Map<String, Value>, name: &str, port: i32, weight: i32) -> Value {
    template.insert("name".into(), name.into());
    template.insert("port".into(), port.into());
    template.insert("weight".into(), weight.into());
    Value::Object(template)
}

#[cfg(test)]
#[path = "route_tests.rs"]
mod tests;
