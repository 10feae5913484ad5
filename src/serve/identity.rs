//! Response headers naming the pod and the revision that answered (`x-modelpilot-pod`,
//! `x-modelpilot-revision`). During a rollout a client behind the Service sees which pods,
//! and which model revision, served it; the load generator groups its results by them.
//!
//! The values come from the pod's environment (the downward API) and are turned into header
//! values once at start-up, so each response only clones them.

use std::sync::Arc;

use axum::{
    http::{HeaderName, HeaderValue},
    response::Response,
};

/// Header carrying the pod name.
pub const POD_HEADER: &str = "x-modelpilot-pod";
/// Header carrying the revision.
pub const REVISION_HEADER: &str = "x-modelpilot-revision";

/// The precomputed identity headers (none when neither name is known).
#[derive(Clone, Debug, Default)]
pub struct Identity(Arc<[(HeaderName, HeaderValue)]>);

impl Identity {
    /// Headers for the given pod name and revision; an absent, empty or non-header-safe value
    /// is left out (with a warning for the last).
    ///
    /// ```
    /// use modelpilot::serve::identity::Identity;
    /// let id = Identity::new(Some("iris-7d9f-x2"), None);
    /// assert_eq!(id.headers(), vec![("x-modelpilot-pod", "iris-7d9f-x2")]);
    /// ```
    pub fn new(pod: Option<&str>, revision: Option<&str>) -> Identity {
        let headers = [(POD_HEADER, pod), (REVISION_HEADER, revision)]
            .into_iter()
            .filter_map(|(name, value)| {
                let value = value.filter(|v| !v.is_empty())?;
                match HeaderValue::from_str(value) {
                    Ok(value) => Some((HeaderName::from_static(name), value)),
                    Err(_) => {
                        tracing::warn!("{name} left out: {value:?} is not a valid header value");
                        None
                    }
                }
            })
            .collect();
        Identity(headers)
    }

    /// The headers as `(name, value)` text, for tests and logs.
    pub fn headers(&self) -> Vec<(&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.to_str().unwrap_or_default()))
            .collect()
    }

    /// Add the headers to a response (the body of the router's `map_response` layer).
    pub fn stamp(&self, mut response: Response) -> Response {
        let headers = response.headers_mut();
        for (name, value) in self.0.iter() {
            headers.insert(name.clone(), value.clone());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use axum::response::IntoResponse;

    use super::*;

    /// (case, pod, revision, headers)
    type Case = (
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        Vec<(&'static str, &'static str)>,
    );

    #[test]
    fn identity_table() {
        let cases: Vec<Case> = vec![
            ("neither", None, None, vec![]),
            (
                "both",
                Some("iris-5c7b-abcde"),
                Some("4f9c2a1b0d"),
                vec![
                    (POD_HEADER, "iris-5c7b-abcde"),
                    (REVISION_HEADER, "4f9c2a1b0d"),
                ],
            ),
            (
                "revision only",
                None,
                Some("4f9c2a1b0d"),
                vec![(REVISION_HEADER, "4f9c2a1b0d")],
            ),
            ("empty values are absent", Some(""), Some(""), vec![]),
            (
                "invalid value left out",
                Some("bad\nname"),
                Some("r1"),
                vec![(REVISION_HEADER, "r1")],
            ),
        ];
        for (case, pod, revision, want) in cases {
            let identity = Identity::new(pod, revision);
            assert_eq!(identity.headers(), want, "{case}");
            let response = identity.stamp("ok".into_response());
            let got: Vec<_> = [POD_HEADER, REVISION_HEADER]
                .into_iter()
                .filter_map(|h| {
                    let value = response.headers().get(h)?.to_str().ok()?;
                    Some((h, value))
                })
                .collect();
            assert_eq!(got, want, "{case}: on the response");
        }
    }
}
