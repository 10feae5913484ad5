//! The errors of the reconcile pipeline, by stage.
//!
//! Each error knows its *reason* (the event reason, the `Degraded` condition reason and the
//! `reason` label of the error metric) and whether it is *permanent* — retrying cannot help until
//! the user changes the spec, so the controller waits for a change — or *transient*, retried with
//! backoff.

use crate::validate::SpecError;

/// An error of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Validate stage: the spec cannot be reconciled as written.
    #[error("invalid spec: {0}")]
    Spec(#[from] SpecError),

    /// Apply stage: the API server refused a child as invalid (e.g. a bad pod template).
    #[error("the API server rejected {kind} {name}: {message}")]
    Rejected {
        kind: &'static str,
        name: String,
        message: String,
    },

    /// Apply or status stage: a write lost a race; retried soon.
    #[error("conflict writing {kind} {name}: {message}")]
    Conflict {
        kind: &'static str,
        name: String,
        message: String,
    },

    /// The user's HTTPRoute cannot carry the rollout's weights (retried: the route may be fixed).
    #[error("{0}")]
    Route(#[from] crate::build::route::RouteError),

    /// `spec.rollout.traffic.httpRoute` names a route that does not exist (yet).
    #[error("HTTPRoute {0} not found (spec.rollout.traffic.httpRoute)")]
    RouteMissing(String),

    /// The reconcile task panicked or was cancelled (a bug; retried with backoff).
    #[error("reconcile task failed: {0}")]
    Internal(String),

    /// Any other API failure (unreachable server, timeout, 5xx, RBAC): retried with backoff.
    #[error("{stage} {kind} {name}: {source}")]
    Api {
        stage: &'static str,
        kind: &'static str,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// Classify a client error from writing `kind`/`name` during `stage`.
    pub fn from_kube(
        stage: &'static str,
        kind: &'static str,
        name: &str,
        err: kube::Error,
    ) -> Self {
        match &err {
            kube::Error::Api(status) if status.code == 409 => Self::Conflict {
                kind,
                name: name.to_owned(),
                message: status.message.clone(),
            },
            kube::Error::Api(status) if status.code == 422 || status.code == 400 => {
                Self::Rejected {
                    kind,
                    name: name.to_owned(),
                    message: status.message.clone(),
                }
            }
            _ => Self::Api {
                stage,
                kind,
                name: name.to_owned(),
                source: err,
            },
        }
    }

    /// CamelCase reason for events, conditions and metric labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Spec(_) => "InvalidSpec",
            Self::Rejected { .. } => "ChildRejected",
            Self::Conflict { .. } => "Conflict",
            Self::Route(e) => e.reason(),
            Self::RouteMissing(_) => "HTTPRouteNotFound",
            Self::Internal(_) => "InternalError",
            Self::Api { .. } => "ApiError",
        }
    }

    /// True when only a change of the spec can fix it.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::Spec(_) | Self::Rejected { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> kube::Error {
        kube::Error::Api(
            kube::core::Status::failure("boom", "Reason")
                .with_code(code)
                .boxed(),
        )
    }

    #[test]
    fn classification_table() {
        let cases = [
            (409, "Conflict", false),
            (422, "ChildRejected", true),
            (400, "ChildRejected", true),
            (403, "ApiError", false),
            (500, "ApiError", false),
        ];
        for (code, reason, permanent) in cases {
            let err = Error::from_kube("apply", "Deployment", "iris", api_error(code));
            assert_eq!(err.reason(), reason, "HTTP {code}");
            assert_eq!(err.is_permanent(), permanent, "HTTP {code}");
        }
        let spec = Error::from(SpecError::Sha256);
        assert_eq!((spec.reason(), spec.is_permanent()), ("InvalidSpec", true));
    }
}
