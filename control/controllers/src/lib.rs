//! keel-controllers: the controller manager. Each controller watches the Kubernetes API and
//! drives the cluster toward what its objects ask for, the way kube-controller-manager's do:
//! level-triggered `reconcile(object, ctx) -> Result<Action>` plus an error policy (kube-rs's
//! `Controller`), idempotent, with a periodic requeue as the safety net.
//!
//! Every control-plane member runs [`run`]; one Lease (`kube-system/keel-controller-manager`,
//! through keel-lease) decides which member drives the controllers, and another takes over
//! when it stops renewing.
//!
//! The crate reaches the cluster only through the Kubernetes API with the `kube` crate and
//! `k8s-openapi` types, as any outside program would. It must not depend on `keel`,
//! `keel-raft` or `keel-store`.
//!
//! # Layout
//!
//! - [`informer`]: one shared watch per resource: a cache, and triggers for the controllers.
//! - [`replicaset`]: pods for ReplicaSets (slow start, expectations, adoption, kube's deletion
//!   order, status).
//! - [`deployment`]: ReplicaSets for Deployments (template hash, revisions, RollingUpdate and
//!   Recreate, conditions, history cleanup).
//! - [`disruption`]: PodDisruptionBudgets' status (expected and healthy pods, disruptions
//!   allowed), which the eviction subresource and preemption read.
//! - [`endpoints`]: EndpointSlices and Endpoints for every Service with a selector.
//! - [`job`]: pods for Jobs until enough succeed, or every index does (or too many fail, or
//!   time runs out); back-off after failures; suspend and resume.
//! - [`cronjob`]: Jobs made from CronJobs on their schedule; concurrency policy, history
//!   limits.
//! - [`ttl_after_finished`]: finished Jobs deleted `ttlSecondsAfterFinished` after.
//! - [`daemonset`]: one pod of a DaemonSet on every eligible node, its ControllerRevisions,
//!   RollingUpdate (maxUnavailable, maxSurge) and OnDelete.
//! - [`namespace`]: a deleted namespace emptied, then finalized.
//! - [`node_ipam`]: each node's own pod CIDR, cut from the cluster CIDR.
//! - [`node_lifecycle`]: silent nodes marked Unknown, nodes tainted by their conditions, pods
//!   evicted from NoExecute-tainted nodes (rate-limited as kube does).
//! - [`garbage_collector`]: dependents whose owners are gone deleted; the Orphan and
//!   Foreground propagation policies carried out.
//! - [`service_account`]: a `default` ServiceAccount in every namespace.
//! - [`resource_quota`]: each ResourceQuota's `status.hard` and `status.used`, recounted
//!   from the objects on quota changes, on deletions and every `resync`.
//! - [`certificates`]: kubelets' CertificateSigningRequests approved (csrapproving, by a
//!   SubjectAccessReview of the requester) and signed with the cluster CA (csrsigning).
//! - [`bootstrap_token`]: expired bootstrap token Secrets deleted (tokencleaner).
//! - [`pod_gc`]: pods of deleted nodes, terminating pods nobody will finish, and terminated
//!   pods past a threshold force-deleted.
//! - [`expectations`]: creates and deletes the pod cache has not shown yet.
//! - [`events`]: core/v1 Events, as `kubectl describe` shows them, through client-go's
//!   correlator (similar events aggregated and counted, a spam filter per object).
//! - [`pods`], [`labels`], [`ownership`]: what controllers read off pods (and a controller's
//!   pod create and delete with its expectation and event), selectors, and ownerReferences.
//! - [`error`]: the error type.

pub mod bootstrap_token;
pub mod certificates;
pub mod cronjob;
pub mod daemonset;
pub mod deployment;
pub mod disruption;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod expectations;
pub mod garbage_collector;
pub mod informer;
pub mod job;
pub mod labels;
pub mod namespace;
pub mod node_ipam;
pub mod node_lifecycle;
pub mod ownership;
pub mod pod_gc;
pub mod pods;
pub mod replicaset;
pub mod resource_quota;
pub mod service_account;
pub mod ttl_after_finished;

use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ResourceQuota, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;

pub use error::{Error, Result};

use events::Recorder;
use expectations::Expectations;
use informer::Informer;

/// The Lease's namespace.
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The Lease that elects the member running the controllers.
pub const LEASE_NAME: &str = "keel-controller-manager";

/// How the controller manager runs.
#[derive(Clone, Debug)]
pub struct ControllersConfig {
    /// This member's identity in the election and in events' `reportingInstance`.
    pub identity: String,
    /// How long a leader's claim lasts without renewal (kube's 15 s).
    pub lease_duration: Duration,
    /// How long a leader tries to renew before stepping down (10 s).
    pub renew_deadline: Duration,
    /// How often candidates retry and the leader renews (2 s).
    pub retry_period: Duration,
    /// The safety-net requeue of every object, on top of the watch triggers.
    pub resync: Duration,
    /// How long a ReplicaSet waits for its pod cache to show its own creates and deletes
    /// before it acts anyway (kube's 5 minutes).
    pub expectations_timeout: Duration,
    /// How soon a terminating namespace with content left is looked at again.
    pub namespace_recheck: Duration,
    /// How soon the garbage collector looks again at an owner waiting for its dependents to
    /// go (foreground deletion), or after a failure.
    pub garbage_collector_recheck: Duration,
    /// How often the node lifecycle controller looks at every node (`--node-monitor-period`).
    pub node_monitor_period: Duration,
    /// How long a node's agent may be silent before its node turns Unknown
    /// (`--node-monitor-grace-period`, 40 s).
    pub node_monitor_grace_period: Duration,
    /// The same for a node that never posted Ready (`--node-startup-grace-period`, 60 s).
    pub node_startup_grace_period: Duration,
    /// Nodes given the NoExecute taint per second in a healthy cluster
    /// (`--node-eviction-rate`, 0.1).
    pub node_eviction_rate: f64,
    /// The same in a large cluster with most nodes down (`--secondary-node-eviction-rate`).
    pub secondary_node_eviction_rate: f64,
    /// Past this many nodes a cluster is large (`--large-cluster-size-threshold`, 50).
    pub large_cluster_size_threshold: usize,
    /// The share of not-ready nodes that makes a disruption (`--unhealthy-zone-threshold`).
    pub unhealthy_zone_threshold: f64,
    /// The pods' network, from which every node gets its own block (`--cluster-cidr`);
    /// None leaves nodes' `podCIDR` alone (`--allocate-node-cidrs=false`).
    pub cluster_cidr: Option<String>,
    /// The size of a node's block (`--node-cidr-mask-size`, 24).
    pub node_cidr_mask_size: u8,
    /// How often the pod garbage collector looks (kube's 20 s).
    pub pod_gc_period: Duration,
    /// How long a node must be missing before its pods are collected (kube's 40 s).
    pub pod_gc_quarantine: Duration,
    /// Terminated pods kept before the oldest are collected; 0 keeps all
    /// (`--terminated-pod-gc-threshold`, 12500).
    pub terminated_pod_gc_threshold: usize,
    /// How long a Job waits before replacing its first failed pod; doubled for each further
    /// failure in a row (kube's 10 s).
    pub job_pod_failure_backoff: Duration,
    /// The longest such wait (6 minutes).
    pub job_pod_failure_backoff_max: Duration,
    /// The cluster CA that signs kubelets' certificates; None runs neither csrapproving nor
    /// csrsigning (nothing could sign what was approved).
    pub signing: Option<certificates::SigningConfig>,
}

impl ControllersConfig {
    /// kube-controller-manager's defaults for `identity`.
    pub fn new(identity: &str) -> ControllersConfig {
        ControllersConfig {
            identity: identity.to_owned(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            resync: Duration::from_secs(300),
            expectations_timeout: Duration::from_secs(300),
            namespace_recheck: Duration::from_secs(2),
            garbage_collector_recheck: Duration::from_secs(2),
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(40),
            node_startup_grace_period: Duration::from_secs(60),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
            cluster_cidr: None,
            node_cidr_mask_size: 24,
            pod_gc_period: Duration::from_secs(20),
            pod_gc_quarantine: Duration::from_secs(40),
            terminated_pod_gc_threshold: 12_500,
            job_pod_failure_backoff: Duration::from_secs(10),
            job_pod_failure_backoff_max: Duration::from_secs(360),
            signing: None,
        }
    }

    fn node_lifecycle(&self) -> node_lifecycle::Config {
        node_lifecycle::Config {
            monitor_period: self.node_monitor_period,
            grace_period: self.node_monitor_grace_period,
            startup_grace_period: self.node_startup_grace_period,
            rates: node_lifecycle::Rates {
                primary: self.node_eviction_rate,
                secondary: self.secondary_node_eviction_rate,
                large_cluster: self.large_cluster_size_threshold,
            },
            unhealthy_threshold: self.unhealthy_zone_threshold,
        }
    }

    fn lease(&self) -> keel_lease::Config {
        keel_lease::Config {
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
            ..keel_lease::Config::new(LEASE_NAMESPACE, LEASE_NAME, &self.identity)
        }
    }
}

/// Runs every controller whenever this member leads, until `shutdown` resolves (then the
/// Lease is released so another member takes over at once).
pub async fn run(
    client: kube::Client,
    config: ControllersConfig,
    shutdown: impl Future<Output = ()>,
) {
    let lease = config.lease();
    keel_lease::run_while_leader(
        client.clone(),
        lease,
        || run_controllers(client.clone(), config.clone()),
        shutdown,
    )
    .await;
}

/// Runs every controller, without an election, until the future is dropped: the informers
/// first, then, once their caches are filled, the controllers (a ReplicaSet reconciled
/// against an empty pod cache would create its pods again).
pub async fn run_controllers(client: kube::Client, config: ControllersConfig) {
    let mut tasks = tokio::task::JoinSet::new();
    let mut pods = Informer::<Pod>::new(Api::all(client.clone()));
    let mut replicasets = Informer::<ReplicaSet>::new(Api::all(client.clone()));
    let mut deployments = Informer::<Deployment>::new(Api::all(client.clone()));
    let mut nodes = Informer::<Node>::new(Api::all(client.clone()));
    let node_leases = Informer::<Lease>::new(Api::namespaced(
        client.clone(),
        node_lifecycle::LEASE_NAMESPACE,
    ));
    let (pod_store, rs_store, deployment_store) =
        (pods.store(), replicasets.store(), deployments.store());
    let (node_store, node_lease_store) = (nodes.store(), node_leases.store());
    let mut namespaces = Informer::<Namespace>::new(Api::all(client.clone()));
    let mut accounts = Informer::<ServiceAccount>::new(Api::all(client.clone()));
    let (namespace_store, account_store) = (namespaces.store(), accounts.store());
    let namespaces_for_accounts = namespaces.subscribe();
    let accounts_for_themselves = accounts.subscribe();
    let nodes_for_eviction = nodes.subscribe();
    // Only subscribed when used: an unread subscription would buffer every node change.
    let ipam = config.cluster_cidr.as_deref().and_then(|cidr| {
        node_ipam::CidrSet::new(cidr, config.node_cidr_mask_size)
            .inspect_err(|e| tracing::error!(error = %e, "node IPAM not started"))
            .ok()
    });
    let nodes_for_ipam = ipam.as_ref().map(|_| nodes.subscribe());
    let pods_for_eviction = pods.subscribe();
    let mut services = Informer::<Service>::new(Api::all(client.clone()));
    let service_store = services.store();
    let services_for_endpoints = services.subscribe();
    let mut quotas = Informer::<ResourceQuota>::new(Api::all(client.clone()));
    let quota_context = Arc::new(resource_quota::Context {
        client: client.clone(),
        quotas: quotas.store(),
        pods: pods.store(),
        services: service_store.clone(),
        resync: config.resync,
        discovered: Default::default(),
    });
    let quota_triggers = resource_quota::Triggers {
        quotas: quotas.subscribe(),
        pods: pods.subscribe(),
        services: services.subscribe(),
    };
    let pods_for_endpoints = pods.subscribe();
    let mut jobs = Informer::<Job>::new(Api::all(client.clone()));
    let job_store = jobs.store();
    let jobs_for_themselves = jobs.subscribe();
    let jobs_for_ttl = jobs.subscribe();
    let jobs_for_cronjobs = jobs.subscribe();
    let mut cronjobs = Informer::<CronJob>::new(Api::all(client.clone()));
    let cronjob_store = cronjobs.store();
    let cronjobs_for_themselves = cronjobs.subscribe();
    let pods_for_jobs = pods.subscribe();
    let mut daemonsets = Informer::<DaemonSet>::new(Api::all(client.clone()));
    let mut revisions = Informer::<ControllerRevision>::new(Api::all(client.clone()));
    let (daemonset_store, revision_store) = (daemonsets.store(), revisions.store());
    let daemonset_triggers = (
        daemonsets.subscribe(),
        pods.subscribe(),
        revisions.subscribe(),
        nodes.subscribe(),
    );

    let mut budgets = Informer::<PodDisruptionBudget>::new(Api::all(client.clone()));
    let budget_store = budgets.store();
    let disruption_triggers = (budgets.subscribe(), pods.subscribe());

    let expectations = Arc::new(Expectations::new(config.expectations_timeout));
    let pods_for_replicasets = pods.subscribe();
    let replicasets_for_themselves = replicasets.subscribe();
    let replicasets_for_deployments = replicasets.subscribe();
    let deployments_for_themselves = deployments.subscribe();
    let gc_triggers = garbage_collector::Triggers {
        pods: pods.subscribe(),
        pods_for_replicasets: pods.subscribe(),
        replicasets: replicasets.subscribe(),
        replicasets_for_pods: replicasets.subscribe(),
        replicasets_for_deployments: replicasets.subscribe(),
        deployments: deployments.subscribe(),
        deployments_for_replicasets: deployments.subscribe(),
        deployments_for_pods: deployments.subscribe(),
        jobs_for_pods: jobs.subscribe(),
        jobs: job_store.clone(),
    };

    let observed = Arc::clone(&expectations);
    tasks.spawn(pods.run(move |pod| observe_pod(&observed, pod)));
    tasks.spawn(replicasets.run(|_| {}));
    tasks.spawn(deployments.run(|_| {}));
    tasks.spawn(nodes.run(|_| {}));
    tasks.spawn(node_leases.run(|_| {}));
    tasks.spawn(namespaces.run(|_| {}));
    tasks.spawn(accounts.run(|_| {}));
    tasks.spawn(services.run(|_| {}));
    tasks.spawn(quotas.run(|_| {}));
    tasks.spawn(jobs.run(|_| {}));
    tasks.spawn(daemonsets.run(|_| {}));
    tasks.spawn(revisions.run(|_| {}));
    tasks.spawn(cronjobs.run(|_| {}));
    tasks.spawn(budgets.run(|_| {}));
    for ready in [
        pod_store.wait_until_ready().await,
        rs_store.wait_until_ready().await,
        deployment_store.wait_until_ready().await,
        node_store.wait_until_ready().await,
        node_lease_store.wait_until_ready().await,
        namespace_store.wait_until_ready().await,
        account_store.wait_until_ready().await,
        service_store.wait_until_ready().await,
        job_store.wait_until_ready().await,
        daemonset_store.wait_until_ready().await,
        revision_store.wait_until_ready().await,
        cronjob_store.wait_until_ready().await,
        budget_store.wait_until_ready().await,
    ] {
        if ready.is_err() {
            tracing::error!("an informer stopped before its cache filled");
            return;
        }
    }
    tracing::info!(identity = %config.identity, "caches synced; starting controllers");

    let replicaset_context = Arc::new(replicaset::Context {
        client: client.clone(),
        pods: pod_store.clone(),
        replicasets: rs_store.clone(),
        expectations,
        recorder: Recorder::new(client.clone(), "replicaset-controller", &config.identity),
        resync: config.resync,
    });
    tasks.spawn(replicaset::run(
        replicaset_context,
        replicasets_for_themselves,
        pods_for_replicasets,
    ));
    let gc_context = Arc::new(garbage_collector::Context::new(
        client.clone(),
        pod_store.clone(),
        rs_store.clone(),
        deployment_store.clone(),
        config.garbage_collector_recheck,
        config.resync,
    ));
    tasks.spawn(garbage_collector::run(gc_context, gc_triggers));
    let disruption_context = Arc::new(disruption::Context {
        client: client.clone(),
        budgets: budget_store,
        pods: pod_store.clone(),
        replicasets: rs_store.clone(),
        deployments: deployment_store.clone(),
        recorder: Recorder::new(client.clone(), "controllermanager", &config.identity),
        resync: config.resync,
    });
    let (budgets_for_themselves, pods_for_budgets) = disruption_triggers;
    tasks.spawn(disruption::run(
        disruption_context,
        budgets_for_themselves,
        pods_for_budgets,
    ));
    let deployment_context = Arc::new(deployment::Context {
        client: client.clone(),
        deployments: deployment_store,
        replicasets: rs_store,
        pods: pod_store.clone(),
        recorder: Recorder::new(client.clone(), "deployment-controller", &config.identity),
        resync: config.resync,
    });
    tasks.spawn(deployment::run(
        deployment_context,
        deployments_for_themselves,
        replicasets_for_deployments,
    ));
    let node_lifecycle_context = Arc::new(node_lifecycle::Context {
        client: client.clone(),
        nodes: node_store.clone(),
        leases: node_lease_store,
        pods: pod_store.clone(),
        recorder: Recorder::new(client.clone(), "node-controller", &config.identity),
        eviction_recorder: Recorder::new(
            client.clone(),
            "taint-eviction-controller",
            &config.identity,
        ),
        config: config.node_lifecycle(),
    });
    tasks.spawn(node_lifecycle::run(
        node_lifecycle_context,
        nodes_for_eviction,
        pods_for_eviction,
    ));
    if let (Some(cidrs), Some(triggers)) = (ipam, nodes_for_ipam) {
        let ipam_context = Arc::new(node_ipam::Context {
            client: client.clone(),
            nodes: node_store.clone(),
            recorder: Recorder::new(client.clone(), "cidrAllocator", &config.identity),
        });
        tasks.spawn(node_ipam::run(ipam_context, cidrs, triggers));
    }
    let account_context = Arc::new(service_account::Context {
        client: client.clone(),
        namespaces: namespace_store,
        accounts: account_store,
    });
    tasks.spawn(service_account::run(
        account_context,
        namespaces_for_accounts,
        accounts_for_themselves,
    ));
    let endpoints_context = Arc::new(endpoints::Context::new(
        client.clone(),
        service_store,
        pod_store.clone(),
        &config.identity,
        config.resync,
    ));
    tasks.spawn(endpoints::run(
        endpoints_context,
        services_for_endpoints,
        pods_for_endpoints,
    ));
    let job_context = Arc::new(job::Context {
        client: client.clone(),
        pods: pod_store.clone(),
        jobs: job_store.clone(),
        expectations: Expectations::new(config.expectations_timeout),
        recorder: Recorder::new(client.clone(), "job-controller", &config.identity),
        backoffs: job::backoff::Backoffs::new(job::backoff::Timings {
            base: config.job_pod_failure_backoff,
            max: config.job_pod_failure_backoff_max,
        }),
        resync: config.resync,
    });
    tasks.spawn(job::run(job_context, jobs_for_themselves, pods_for_jobs));
    let daemonset_context = Arc::new(daemonset::Context::new(
        client.clone(),
        (
            daemonset_store,
            pod_store.clone(),
            node_store.clone(),
            revision_store,
        ),
        config.expectations_timeout,
        Recorder::new(client.clone(), "daemonset-controller", &config.identity),
        config.resync,
    ));
    let (ds_triggers, ds_pods, ds_revisions, ds_nodes) = daemonset_triggers;
    tasks.spawn(daemonset::run(
        daemonset_context,
        ds_triggers,
        ds_pods,
        ds_revisions,
        ds_nodes,
    ));
    let pod_gc_context = Arc::new(pod_gc::Context {
        client: client.clone(),
        pods: pod_store.clone(),
        nodes: node_store.clone(),
        config: pod_gc::Config {
            period: config.pod_gc_period,
            quarantine: config.pod_gc_quarantine,
            terminated_threshold: config.terminated_pod_gc_threshold,
        },
    });
    tasks.spawn(pod_gc::run(pod_gc_context));
    let cronjob_context = Arc::new(cronjob::Context {
        client: client.clone(),
        cronjobs: cronjob_store,
        jobs: job_store.clone(),
        recorder: Recorder::new(client.clone(), "cronjob-controller", &config.identity),
        resync: config.resync,
    });
    tasks.spawn(cronjob::run(
        cronjob_context,
        cronjobs_for_themselves,
        jobs_for_cronjobs,
    ));
    let ttl_context = Arc::new(ttl_after_finished::Context {
        client: client.clone(),
        jobs: job_store,
    });
    tasks.spawn(ttl_after_finished::run(ttl_context, jobs_for_ttl));
    tasks.spawn(resource_quota::run(quota_context, quota_triggers));
    let namespace_context = Arc::new(namespace::Context {
        client: client.clone(),
        recheck: config.namespace_recheck,
        finalize_unserved: AtomicBool::new(false),
    });
    tasks.spawn(namespace::run(namespace_context));
    tasks.spawn(bootstrap_token::run(client.clone()));
    if let Some(signing) = config.signing.clone() {
        tasks.spawn(certificates::run(client.clone(), signing));
    }
    // The tasks run until this future is dropped (leadership lost or shutdown); the JoinSet
    // aborts them then.
    while tasks.join_next().await.is_some() {
        tracing::warn!("a controller task ended");
    }
}

/// The pod informer's hook: a pod the cache shows (or showed, for a deleted one) satisfies
/// its ReplicaSet's creation expectation.
fn observe_pod(expectations: &Expectations, pod: &Pod) {
    if let (Some(owner), Some(namespace), Some(name)) = (
        ownership::controller_of(&pod.metadata),
        pod.metadata.namespace.as_deref(),
        pod.metadata.name.as_deref(),
    ) {
        if owner.kind == "ReplicaSet" {
            expectations.observed(&format!("{namespace}/{}", owner.name), name);
        }
    }
}
