//! keel-apiserver: the Kubernetes API served from keel.
//!
//! Objects live under `/registry/<resource>/<namespace>/<name>` as JSON; an object's
//! resourceVersion is the revision of its last write, a list's the revision it was read at.
//! Every write is a compare-and-swap on the object's revision through [`storage::Storage`],
//! the only way this crate reaches the keyspace, so it depends on no keel crate: keel
//! implements the trait in-process over the local member.
//!
//! # Layout
//!
//! - [`storage`]: the `Storage` trait (range at a revision, compare-and-swap writes, watch).
//! - [`registry`]: the served resources, one table row each.
//! - [`request`]: what a path, method and query ask for.
//! - [`server`]: TLS, HTTP, authentication, the in-flight limit and dispatch.
//! - [`audit`]: the audit log of mutating requests.
//! - [`auth`]: identities from client certificates and bearer tokens.
//! - [`rbac`]: authorization by Roles and bindings; impersonation; access reviews; the
//!   bootstrap policy and ClusterRole aggregation.
//! - [`service_account`]: service account tokens (ES256 JWTs): signing and checking.
//! - [`rest`]: the verbs on one object and its subresources.
//! - [`eviction`]: `pods/NAME/eviction`, a delete that honours PodDisruptionBudgets.
//! - [`collection`]: list (cache or store, paged) and watch (from the cache).
//! - [`object`]: metadata rules (uid, generation, spec/status split, finalizers).
//! - [`watch_cache`]: every registry object, fed by one store watch, with recent events.
//! - [`admission`]: defaults and validation per kind.
//! - [`allocator`]: Services' cluster IPs and node ports, claimed in the store; repair.
//! - [`patch`]: JSON patch, merge patch and strategic merge patch.
//! - [`apply`]: server-side apply and `metadata.managedFields`.
//! - [`selector`]: label and field selectors.
//! - [`table`]: server-side Tables, the columns kubectl prints.
//! - [`discovery`]: aggregated and legacy discovery documents.
//! - [`crd`]: CustomResourceDefinitions and the custom resources they bring.
//! - [`schema`]: the kinds' OpenAPI schemas, from k8s-openapi.
//! - [`openapi`]: the OpenAPI v3 documents kubectl validates and explains with.
//! - [`openapi_v2`]: `/openapi/v2` (Swagger 2.0, JSON or gnostic protobuf) from the v3 documents.
//! - [`protobuf`]: protobuf request and response bodies, converted to and from JSON.
//! - [`field_validation`]: `fieldValidation` (unknown and duplicate fields) on writes.
//! - [`warning`]: `Warning` headers.
//! - `priority`: the `Priority` admission plugin: pods' priorities from their PriorityClass.
//! - [`quota`]: the `LimitRanger` and `ResourceQuota` admission plugins: LimitRanges and
//!   quotas read from the cache, quotas charged with a compare-and-swap before a create.
//! - [`certificates`]: CertificateSigningRequests (requester, validation, approval and
//!   signing rights).
//! - [`bootstrap`]: the namespaces, RuntimeClasses and system PriorityClasses every cluster
//!   starts with.
//! - [`node_proxy`]: `pods/log`, `pods/exec` (attach, portforward) proxied to the node agent.
//! - [`master_endpoints`]: the `kubernetes` service, members' leases and its endpoints.
//! - [`error`]: `Status` errors.
//! - `go_format`: Go's `%q` quoting, shared by admission, selectors and Tables.

pub mod admission;
pub mod allocator;
pub mod apply;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod certificates;
pub mod collection;
pub mod crd;
pub mod discovery;
pub mod error;
pub mod eviction;
pub mod field_validation;
mod go_format;
pub mod master_endpoints;
pub mod metrics;
pub mod node_proxy;
pub mod object;
pub mod openapi;
pub mod openapi_v2;
pub mod patch;
mod priority;
pub mod protobuf;
pub mod quota;
pub mod rbac;
pub mod registry;
pub mod request;
pub mod rest;
pub mod schema;
pub mod selector;
pub mod server;
pub mod service_account;
pub mod storage;
pub mod table;
pub mod warning;
pub mod watch_cache;

use std::sync::Arc;

pub use auth::{Identity, Tokens};
pub use error::ApiError;
pub use rest::Api;
pub use server::{tls_config, Front, Server};
pub use storage::Storage;

impl Api {
    /// An API over `storage` serving the built-in resources, signing service account tokens
    /// with `service_accounts` when given. Its watch cache starts loading in a task that lives
    /// as long as the returned handle is not aborted.
    pub fn start(
        storage: Arc<dyn Storage>,
        service_accounts: Option<service_account::ServiceAccountKeys>,
    ) -> (Arc<Api>, tokio::task::JoinHandle<()>) {
        Api::start_with(
            storage,
            service_accounts,
            allocator::ServiceNetwork::default(),
        )
    }

    /// [`Api::start`] with the cluster's service ranges.
    pub fn start_with(
        storage: Arc<dyn Storage>,
        service_accounts: Option<service_account::ServiceAccountKeys>,
        service_network: allocator::ServiceNetwork,
    ) -> (Arc<Api>, tokio::task::JoinHandle<()>) {
        let custom = crd::CustomTable::default();
        let registry = registry::Registry::with_custom(custom.clone());
        let cache = watch_cache::WatchCache::new(registry.built_in().iter().map(|r| r.prefix()));
        let api = Arc::new(Api {
            storage: Arc::clone(&storage),
            openapi: openapi::OpenApi::new(registry.clone()),
            registry,
            cache: Arc::clone(&cache),
            service_accounts: service_accounts.map(Arc::new),
            services: allocator::ServiceAllocator::new(service_network),
            quota: quota::QuotaAdmission::default(),
            metrics: Arc::default(),
        });
        // One task for the cache and the CRD loops it drives, so aborting it stops them all.
        let task = tokio::spawn({
            let api = Arc::clone(&api);
            async move {
                tokio::join!(
                    cache.run(storage),
                    crd::sync::serve(Arc::clone(&api), custom),
                    crd::sync::clean_up(api),
                );
            }
        });
        (api, task)
    }
}
