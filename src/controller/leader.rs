//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas are safe: one
//! reconciles, the other waits and takes over when the leader's lease expires.
//!
//! Every write goes through optimistic concurrency (`resourceVersion`), so two candidates racing
//! for an expired lease cannot both win: one gets `409 Conflict` and stays a follower. A leader
//! that cannot renew within the lease duration steps down (the process exits and restarts as a
//! follower) rather than risk two writers.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, Client, api::PostParams};

/// Settings of the election.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub duration: Duration,
    /// How often the leader renews and a follower retries.
    pub retry: Duration,
}

/// What a candidate saw of the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// We hold it (or just took it).
    Leader,
    /// Someone else holds a valid lease.
    Follower,
}

/// One candidate for leadership.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

/// Whether a lease held by `holder` and last renewed at `renewed` for `duration` may be taken by
/// `me` at `now`.
///
/// ```
/// use k8s_openapi::jiff::Timestamp;
/// use modelpilot::controller::leader::may_take;
/// let t = |s| Timestamp::from_second(s).unwrap();
/// assert!(may_take(Some("b"), Some(t(100)), 15, "a", t(116)));   // expired
/// assert!(!may_take(Some("b"), Some(t(100)), 15, "a", t(110)));  // still b's
/// assert!(may_take(Some("a"), Some(t(100)), 15, "a", t(110)));   // ours: renew
/// assert!(may_take(None, None, 15, "a", t(0)));                  // released
/// ```
pub fn may_take(
    holder: Option<&str>,
    renewed: Option<Timestamp>,
    duration_secs: i32,
    me: &str,
    now: Timestamp,
) -> bool {
    match (holder, renewed) {
        (None, _) | (Some(""), _) => true,
        (Some(h), _) if h == me => true,
        (Some(_), None) => true,
        (Some(_), Some(at)) => at + SignedDuration::from_secs(i64::from(duration_secs)) < now,
    }
}

impl LeaderElector {
    /// A candidate using `client`.
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        Self { api, config }
    }

    /// The settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.config.duration.as_secs()).unwrap_or(i32::MAX)
    }

    /// Try once to become (or stay) the leader.
    pub async fn try_acquire(&self) -> Result<Decision, kube::Error> {
        let now = Timestamp::now();
        let me = self.config.identity.as_str();
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(me.into()),
                    lease_duration_seconds: Some(self.duration_secs()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Decision::Leader),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(Decision::Follower),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone();
        let renewed = spec.renew_time.as_ref().map(|t| t.0);
        let duration = spec.lease_duration_seconds.unwrap_or(self.duration_secs());
        if !may_take(holder.as_deref(), renewed, duration, me, now) {
            return Ok(Decision::Follower);
        }
        if holder.as_deref() != Some(me) {
            spec.holder_identity = Some(me.into());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.duration_secs());
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Decision::Leader),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(Decision::Follower),
            Err(e) => Err(e),
        }
    }

    /// Give the lease up (on graceful shutdown) so a follower takes over at once.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Retry until leader (polling every `retry`), logging transient API errors.
    pub async fn acquire(&self) {
        loop {
            match self.try_acquire().await {
                Ok(Decision::Leader) => return,
                Ok(Decision::Follower) => {}
                Err(err) => tracing::warn!("leader election: {err}"),
            }
            tokio::time::sleep(self.config.retry).await;
        }
    }

    /// Renew every `retry` until renewals have failed for two thirds of the lease duration, then
    /// return: leadership is lost. Stepping down before the lease can expire means a follower
    /// never takes over while this replica still believes it leads.
    pub async fn hold(&self) {
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.config.retry).await;
            match self.try_acquire().await {
                Ok(Decision::Leader) => last_ok = tokio::time::Instant::now(),
                Ok(Decision::Follower) => return,
                Err(err) => tracing::warn!("renewing the leader lease: {err}"),
            }
            if last_ok.elapsed() >= self.config.duration * 2 / 3 {
                return;
            }
        }
    }
}
