//! The ServiceAccount controller (kube's `pkg/controller/serviceaccount`, tokens aside): every
//! namespace that is not terminating has a `default` ServiceAccount, made again when it is
//! deleted. Tokens are not minted here: the API server signs bound tokens through the
//! TokenRequest API (`serviceaccounts/NAME/token`), as kube does since 1.24.

use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;

use crate::error::{is_conflict, is_namespace_terminating, is_not_found};

/// The account every namespace gets.
pub const DEFAULT_ACCOUNT: &str = "default";

/// What the controller shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every namespace.
    pub namespaces: Store<Namespace>,
    /// Every service account.
    pub accounts: Store<ServiceAccount>,
}

/// Runs until the future is dropped, triggered by namespace changes and by changes (deletes)
/// of service accounts.
pub async fn run(
    ctx: Arc<Context>,
    namespaces: impl Stream<Item = Result<Namespace, watcher::Error>> + Send + 'static,
    accounts: impl Stream<Item = Result<ServiceAccount, watcher::Error>> + Send + 'static,
) {
    for namespace in ctx.namespaces.state() {
        ensure(&ctx, &namespace.name_any()).await;
    }
    let namespaces = namespaces.filter_map(|n| async move { n.ok().map(|n| n.name_any()) });
    let accounts = accounts.filter_map(|a| async move {
        a.ok()
            .filter(|a| a.name_any() == DEFAULT_ACCOUNT)
            .and_then(|a| a.namespace())
    });
    let mut triggers = std::pin::pin!(futures::stream::select(namespaces, accounts));
    while let Some(namespace) = triggers.next().await {
        ensure(&ctx, &namespace).await;
    }
}

/// Creates `namespace`'s default account if the namespace is active and the cache lacks it.
async fn ensure(ctx: &Context, namespace: &str) {
    let Some(ns) = ctx.namespaces.get(&ObjectRef::new(namespace)) else {
        return;
    };
    let terminating = ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating");
    let cached = ctx
        .accounts
        .get(&ObjectRef::new(DEFAULT_ACCOUNT).within(namespace))
        .is_some_and(|a| a.metadata.deletion_timestamp.is_none());
    if terminating || cached {
        return;
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), namespace);
    let account = ServiceAccount {
        metadata: ObjectMeta {
            name: Some(DEFAULT_ACCOUNT.into()),
            ..ObjectMeta::default()
        },
        ..ServiceAccount::default()
    };
    match accounts.create(&PostParams::default(), &account).await {
        Ok(_) => tracing::info!(%namespace, "default service account created"),
        // Already there (the cache lags), or the namespace is going away.
        Err(e) if is_conflict(&e) || is_not_found(&e) || is_namespace_terminating(&e) => {}
        Err(e) => tracing::warn!(%namespace, error = %e, "default service account not created"),
    }
}
