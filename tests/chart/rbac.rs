//! The operator's permissions, as rendered by the chart and as the API server's authorizer sees
//! them once the roles are bound to its ServiceAccount.

use std::collections::BTreeSet;

use k8s_openapi::{
    api::{
        authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
        rbac::v1::{ClusterRole, ClusterRoleBinding},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    Api,
    api::{DeleteParams, PostParams},
};
use serde_json::Value;

use crate::{
    common::TestNamespace,
    render::{Rendered, kubectl, run, template_text},
};

/// `(apiGroup, resource, verb)` the operator uses cluster-wide (or in the watched namespace).
const OPERATOR: &[(&str, &str, &[&str])] = &[
    // patch: a `rollback` request sets spec.model.
    (
        "modelpilot.io",
        "modeldeployments",
        &["get", "list", "watch", "patch"],
    ),
    (
        "modelpilot.io",
        "modeldeployments/status",
        &["get", "patch", "update"],
    ),
    // delete: revisions a rollout no longer needs are pruned.
    (
        "apps",
        "deployments",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    (
        "",
        "services",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    // The candidate's signature check.
    (
        "batch",
        "jobs",
        &["get", "list", "watch", "create", "delete"],
    ),
    // Gateway API traffic: the weights of the user's route.
    ("gateway.networking.k8s.io", "httproutes", &["get", "patch"]),
    // autoscaling.mode HPA: the HPA of each ModelDeployment (applied, watched, pruned).
    (
        "autoscaling",
        "horizontalpodautoscalers",
        &["get", "list", "watch", "create", "patch", "delete"],
    ),
    // Read only: the pods' states say why a model does not serve.
    ("", "pods", &["get", "list", "watch"]),
    ("events.k8s.io", "events", &["create", "patch"]),
];

/// What leader election uses, in the release namespace only.
const LEADER_ELECTION: &[(&str, &str, &[&str])] = &[(
    "coordination.k8s.io",
    "leases",
    &["get", "create", "update"],
)];

/// What the operator must never be able to do.
const FORBIDDEN: &[(&str, &str, &[&str])] = &[
    (
        "modelpilot.io",
        "modeldeployments",
        &["create", "update", "delete"],
    ),
    ("apps", "deployments", &["update", "deletecollection"]),
    ("", "services", &["update", "deletecollection"]),
    ("batch", "jobs", &["update", "patch", "deletecollection"]),
    (
        "gateway.networking.k8s.io",
        "httproutes",
        &["create", "delete", "list"],
    ),
    (
        "autoscaling",
        "horizontalpodautoscalers",
        &["update", "deletecollection"],
    ),
    ("", "secrets", &["get", "list", "watch"]),
    ("", "configmaps", &["get", "list"]),
    ("", "pods", &["create", "update", "patch", "delete"]),
    ("", "pods/exec", &["create"]),
    ("", "pods/log", &["get"]),
    ("", "serviceaccounts/token", &["create"]),
    ("coordination.k8s.io", "leases", &["list", "delete"]),
    (
        "rbac.authorization.k8s.io",
        "roles",
        &["create", "bind", "escalate"],
    ),
    (
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        &["get", "create", "delete"],
    ),
];

type Permission = (String, String, String);

fn expand(table: &[(&str, &str, &[&str])]) -> BTreeSet<Permission> {
    table
        .iter()
        .flat_map(|(group, resource, verbs)| {
            verbs
                .iter()
                .map(|verb| (group.to_string(), resource.to_string(), verb.to_string()))
        })
        .collect()
}

/// The `(apiGroup, resource, verb)` triples a Role or ClusterRole grants; panics on wildcards or
/// `resourceNames`/`nonResourceURLs`, which the operator has no use for.
fn granted(role: &Value) -> BTreeSet<Permission> {
    let mut out = BTreeSet::new();
    for rule in role["rules"].as_array().into_iter().flatten() {
        let list = |key: &str| -> Vec<String> {
            serde_json::from_value(rule[key].clone()).unwrap_or_default()
        };
        assert!(
            rule.get("nonResourceURLs").is_none() && rule.get("resourceNames").is_none(),
            "{rule}"
        );
        for group in list("apiGroups") {
            for resource in list("resources") {
                for verb in list("verbs") {
                    assert!(
                        ![&group, &resource, &verb].contains(&&"*".to_owned()),
                        "wildcard in {rule}"
                    );
                    out.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    out
}

/// The rendered roles grant exactly [`OPERATOR`] and [`LEADER_ELECTION`], bound to the operator's
/// ServiceAccount in the release namespace.
pub fn assert_least_privilege(rendered: &Rendered, fullname: &str, namespace: &str) {
    assert_eq!(
        granted(rendered.named("ClusterRole", fullname)),
        expand(OPERATOR)
    );
    let lease_role = format!("{fullname}-leader-election");
    let role = rendered.named("Role", &lease_role);
    assert_eq!(role["metadata"]["namespace"], namespace);
    assert_eq!(granted(role), expand(LEADER_ELECTION));

    let account =
        rendered.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"].clone();
    let bindings = [
        rendered.named("ClusterRoleBinding", fullname),
        rendered.named("RoleBinding", &lease_role),
    ];
    for binding in bindings {
        let subjects = binding["subjects"].as_array().expect("subjects");
        assert_eq!(subjects.len(), 1, "{binding}");
        assert_eq!(subjects[0]["kind"], "ServiceAccount");
        assert_eq!(subjects[0]["name"], account);
        assert_eq!(subjects[0]["namespace"], namespace);
    }
    // Any other role the chart renders is for people (aggregated into admin/edit/view), never bound
    // to the operator.
    for binding in rendered
        .all("ClusterRoleBinding")
        .into_iter()
        .chain(rendered.all("RoleBinding"))
    {
        let role = binding["roleRef"]["name"].as_str().unwrap_or_default();
        assert!(
            role == fullname || role == lease_role,
            "operator bound to {role}"
        );
    }
}

/// The operator's ClusterRole lets it list (and get, watch) pods, to report why they fail, and
/// grants nothing else on pods or their subresources.
pub fn assert_pods_read_only(rendered: &Rendered, fullname: &str) {
    let on_pods: BTreeSet<Permission> = granted(rendered.named("ClusterRole", fullname))
        .into_iter()
        .filter(|(group, resource, _)| group.is_empty() && resource.starts_with("pods"))
        .collect();
    let want: BTreeSet<Permission> = ["get", "list", "watch"]
        .iter()
        .map(|verb| (String::new(), "pods".to_owned(), (*verb).to_owned()))
        .collect();
    assert_eq!(on_pods, want);
}

/// Where an access review asks about.
#[derive(Clone, Copy, Debug)]
enum Scope<'a> {
    Namespace(&'a str),
    Cluster,
}

/// Whether the account may do `verb` on `group`/`resource` in `scope`, per the API server.
async fn can_i(ns: &TestNamespace, user: &str, permission: &Permission, scope: Scope<'_>) -> bool {
    let (group, resource, verb) = permission;
    let (resource, subresource) = match resource.split_once('/') {
        Some((resource, sub)) => (resource.to_owned(), Some(sub.to_owned())),
        None => (resource.clone(), None),
    };
    let review = SubjectAccessReview {
        metadata: ObjectMeta::default(),
        spec: SubjectAccessReviewSpec {
            user: Some(user.to_owned()),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", ns.name),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                group: Some(group.clone()),
                resource: Some(resource),
                subresource,
                verb: Some(verb.clone()),
                namespace: match scope {
                    Scope::Namespace(name) => Some(name.to_owned()),
                    Scope::Cluster => None,
                },
                ..Default::default()
            }),
            ..Default::default()
        },
        status: None,
    };
    let api: Api<SubjectAccessReview> = Api::all(ns.client.clone());
    let answer = api
        .create(&PostParams::default(), &review)
        .await
        .expect("SubjectAccessReview");
    answer.status.is_some_and(|status| status.allowed)
}

/// Apply the chart's ServiceAccount and RBAC into `ns` (with `extra` helm args), then check every
/// permission the operator needs is granted where it should be and every forbidden one is denied.
/// When `extra` sets `watchNamespace` (to `ns`), the workload permissions hold only there.
pub async fn check_against_api_server(ns: &TestNamespace, extra: &[&str]) {
    let release = format!("mp-{}", &ns.name[ns.name.len() - 8..]);
    let mut args = vec![
        "--show-only",
        "templates/serviceaccount.yaml",
        "--show-only",
        "templates/rbac.yaml",
        "--set",
        "rbac.aggregateToDefaultRoles=false",
    ];
    args.extend_from_slice(extra);
    let manifest = template_text(&release, &ns.name, &args);
    let rendered = Rendered::parse(&manifest);
    run(
        kubectl().args([
            "apply",
            "--server-side",
            "--field-manager=modelpilot-chart-test",
            "-n",
            &ns.name,
            "-f",
            "-",
        ]),
        Some(&manifest),
    );
    let account = rendered.one("ServiceAccount")["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let user = format!("system:serviceaccount:{}:{account}", ns.name);
    let scoped = extra.iter().any(|arg| arg.starts_with("watchNamespace="));

    let mut wrong = Vec::new();
    let mut expect = |permission: &Permission, scope: Scope<'_>, allowed: bool, answer: bool| {
        if allowed != answer {
            let (group, resource, verb) = permission;
            let should = if allowed { "should" } else { "must not" };
            wrong.push(format!(
                "{user} {should} {verb} {group}/{resource} in {scope:?}"
            ));
        }
    };
    for permission in expand(OPERATOR) {
        let here = can_i(ns, &user, &permission, Scope::Namespace(&ns.name)).await;
        expect(&permission, Scope::Namespace(&ns.name), true, here);
        let elsewhere = can_i(ns, &user, &permission, Scope::Namespace("default")).await;
        expect(&permission, Scope::Namespace("default"), !scoped, elsewhere);
        if ["list", "watch"].contains(&permission.2.as_str()) {
            let everywhere = can_i(ns, &user, &permission, Scope::Cluster).await;
            expect(&permission, Scope::Cluster, !scoped, everywhere);
        }
    }
    for permission in expand(LEADER_ELECTION) {
        let here = can_i(ns, &user, &permission, Scope::Namespace(&ns.name)).await;
        expect(&permission, Scope::Namespace(&ns.name), true, here);
        let elsewhere = can_i(ns, &user, &permission, Scope::Namespace("default")).await;
        expect(&permission, Scope::Namespace("default"), false, elsewhere);
    }
    for permission in expand(FORBIDDEN) {
        for scope in [
            Scope::Namespace(&ns.name),
            Scope::Namespace("default"),
            Scope::Cluster,
        ] {
            let answer = can_i(ns, &user, &permission, scope).await;
            expect(&permission, scope, false, answer);
        }
    }

    delete_cluster_scoped(ns, &rendered).await;
    assert!(
        wrong.is_empty(),
        "RBAC of the chart is wrong:\n  {}",
        wrong.join("\n  ")
    );
}

/// The namespace takes its own objects with it; cluster-scoped ones are deleted here.
async fn delete_cluster_scoped(ns: &TestNamespace, rendered: &Rendered) {
    let name_of = |doc: &Value| {
        doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    for doc in rendered.all("ClusterRoleBinding") {
        let api: Api<ClusterRoleBinding> = Api::all(ns.client.clone());
        let _ = api.delete(&name_of(doc), &DeleteParams::background()).await;
    }
    for doc in rendered.all("ClusterRole") {
        let api: Api<ClusterRole> = Api::all(ns.client.clone());
        let _ = api.delete(&name_of(doc), &DeleteParams::background()).await;
    }
}
