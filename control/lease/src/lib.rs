//! keel-lease: leader election on a `coordination.k8s.io/v1` Lease, the way client-go's
//! `leaderelection` package does it, for the components every control-plane member runs but
//! only one may drive at a time (the scheduler, the controller manager).
//!
//! A candidate takes the Lease when it is free or when its holder has not renewed it for a
//! whole lease duration *as this candidate observed it*: expiry is judged by the local clock
//! from when the candidate last saw the Lease change, never by comparing the holder's
//! timestamps with our clock, so clock skew between members cannot make two leaders. Every
//! write is a compare-and-swap on the Lease's resourceVersion. The leader renews every retry
//! period; if it cannot renew within the renew deadline it steps down (its work is dropped)
//! before the lease duration ends, so the next leader starts after the last one stopped.
//!
//! The crate talks only to the Kubernetes API, through the `kube` crate.
//!
//! # Layout
//!
//! - [`Config`]: the Lease's name and the timings (kube-scheduler's defaults).
//! - [`Elector`]: acquire, renew, release.
//! - [`run_while_leader`]: runs a piece of work only while leading, again each time.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

/// Where the Lease is and how long leadership lasts.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Lease's namespace (kube-system for the control plane).
    pub namespace: String,
    /// The Lease's name (`keel-scheduler`, `keel-controller-manager`).
    pub name: String,
    /// This candidate's identity, unique among candidates (member name plus a random suffix).
    pub identity: String,
    /// How long a holder's claim lasts without renewal (kube's default 15 s).
    pub lease_duration: Duration,
    /// How long a leader keeps trying to renew before it steps down (10 s).
    pub renew_deadline: Duration,
    /// How often candidates retry and leaders renew (2 s).
    pub retry_period: Duration,
}

impl Config {
    /// The Lease `namespace/name` for `identity` with kube-scheduler's default timings.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Config {
        Config {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// What the candidate last saw of the Lease, and when (by its own clock).
struct Observed {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    at: Instant,
}

/// One candidate for one Lease.
pub struct Elector {
    leases: Api<Lease>,
    config: Config,
    observed: Option<Observed>,
}

/// What one attempt to take or keep the Lease came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// We hold it now.
    Leading,
    /// Someone else holds it, and has renewed it recently enough.
    Held {
        /// The holder's identity.
        holder: String,
    },
    /// The API refused or failed; try again.
    Failed(String),
}

fn now() -> MicroTime {
    MicroTime(Timestamp::now())
}

impl Elector {
    /// A candidate for `config`'s Lease.
    pub fn new(client: kube::Client, config: Config) -> Elector {
        Elector {
            leases: Api::namespaced(client, &config.namespace),
            config,
            observed: None,
        }
    }

    /// The candidate's identity.
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    fn our_spec(&self, transitions: i32, acquire_time: Option<MicroTime>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.config.lease_duration.as_secs() as i32),
            acquire_time: Some(acquire_time.unwrap_or_else(now)),
            renew_time: Some(now()),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Takes the Lease if it is free, expired or ours; renews it if ours.
    pub async fn try_acquire_or_renew(&mut self) -> Attempt {
        let current = match self.leases.get_opt(&self.config.name).await {
            Ok(current) => current,
            Err(e) => return Attempt::Failed(e.to_string()),
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.our_spec(0, None)),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(created) => self.observe(&created, Attempt::Leading),
                Err(e) => Attempt::Failed(e.to_string()),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let ours = holder.as_deref() == Some(self.config.identity.as_str());
        self.note(&spec);
        if !ours {
            if let Some(holder) = holder {
                let duration = spec
                    .lease_duration_seconds
                    .map(|s| Duration::from_secs(s.max(0) as u64))
                    .unwrap_or(self.config.lease_duration);
                let seen = self.observed.as_ref().map_or_else(Instant::now, |o| o.at);
                if seen.elapsed() < duration {
                    return Attempt::Held { holder };
                }
            }
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!ours);
        let acquire_time = if ours { spec.acquire_time } else { None };
        lease.spec = Some(self.our_spec(transitions, acquire_time));
        // The resourceVersion from the read makes this a compare-and-swap: if another
        // candidate wrote in between, the replace fails with 409 and we read again.
        match self
            .leases
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => self.observe(&written, Attempt::Leading),
            Err(e) => Attempt::Failed(e.to_string()),
        }
    }

    /// Records what the Lease says, restarting the expiry clock when holder or renew time
    /// changed since we last looked.
    fn note(&mut self, spec: &LeaseSpec) {
        let holder = spec.holder_identity.clone();
        let renew_time = spec.renew_time.as_ref().map(|t| t.0);
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|o| o.holder != holder || o.renew_time != renew_time);
        if changed {
            self.observed = Some(Observed {
                holder,
                renew_time,
                at: Instant::now(),
            });
        }
    }

    fn observe(&mut self, lease: &Lease, attempt: Attempt) -> Attempt {
        if let Some(spec) = &lease.spec {
            self.note(spec);
        }
        attempt
    }

    /// Waits until this candidate leads.
    pub async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Attempt::Leading => {
                    tracing::info!(lease = %self.config.name, identity = %self.config.identity, "became leader");
                    return;
                }
                Attempt::Held { .. } => {}
                Attempt::Failed(why) => {
                    tracing::debug!(lease = %self.config.name, %why, "could not take the lease")
                }
            }
            tokio::time::sleep(self.config.retry_period).await;
        }
    }

    /// Renews every retry period; returns when a renewal has not succeeded for the renew
    /// deadline, or someone else holds the Lease: leadership is lost.
    pub async fn hold(&mut self) {
        let mut last_renewal = Instant::now();
        loop {
            tokio::time::sleep(self.config.retry_period).await;
            match self.try_acquire_or_renew().await {
                Attempt::Leading => last_renewal = Instant::now(),
                Attempt::Held { holder } => {
                    tracing::warn!(lease = %self.config.name, %holder, "lost the lease");
                    return;
                }
                Attempt::Failed(why) => {
                    if last_renewal.elapsed() >= self.config.renew_deadline {
                        tracing::warn!(lease = %self.config.name, %why, "could not renew the lease in time; stepping down");
                        return;
                    }
                }
            }
        }
    }

    /// Gives the Lease up (on a clean shutdown), so the next leader need not wait it out.
    pub async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.leases.get_opt(&self.config.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        let _ = self
            .leases
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await;
    }
}

/// Runs `work` whenever this candidate leads, until `shutdown` resolves: acquire, run the work
/// while renewing, drop the work when leadership is lost, and try again. On shutdown the Lease
/// is released.
pub async fn run_while_leader<W, F>(
    client: kube::Client,
    config: Config,
    mut work: W,
    shutdown: impl Future<Output = ()>,
) where
    W: FnMut() -> F,
    F: Future<Output = ()>,
{
    let mut elector = Elector::new(client, config);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = elector.acquire() => {}
            () = &mut shutdown => return,
        }
        tokio::select! {
            () = work() => {
                // The work ended by itself; keep the Lease's contract simple: step down.
            }
            () = elector.hold() => continue,
            () = &mut shutdown => {
                elector.release().await;
                return;
            }
        }
        elector.release().await;
    }
}
