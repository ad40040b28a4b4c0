//! The tokencleaner controller: bootstrap token Secrets (`bootstrap.kubernetes.io/token` in
//! kube-system) are deleted once their `expiration` has passed, as kube-controller-manager's
//! `tokencleaner` does. The API server already refuses an expired token; deleting the Secret
//! keeps `keel token list` honest and the namespace tidy.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Preconditions};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt as _};

use crate::error::{is_not_found, Error, Result};

/// Where bootstrap token Secrets live.
pub const NAMESPACE: &str = "kube-system";
/// Their type.
pub const TOKEN_TYPE: &str = "bootstrap.kubernetes.io/token";

/// When the token expires, if it says (an unparsable expiration counts as expired, as kube's
/// cleaner treats it).
pub fn expiration(secret: &Secret) -> Option<Timestamp> {
    let raw = secret.data.as_ref()?.get("expiration")?;
    let text = std::str::from_utf8(&raw.0).ok()?;
    Some(text.parse::<Timestamp>().unwrap_or(Timestamp::UNIX_EPOCH))
}

/// Runs the cleaner until the future is dropped.
pub async fn run(client: kube::Client) {
    let api: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let config = watcher::Config::default().fields(&format!("type={TOKEN_TYPE}"));
    Controller::new(api, config)
        .run(reconcile, error_policy, Arc::new(client))
        .for_each(|_| futures::future::ready(()))
        .await;
}

fn error_policy(secret: Arc<Secret>, error: &Error, _: Arc<kube::Client>) -> Action {
    tracing::info!(secret = %secret.name_any(), %error, "tokencleaner reconcile failed");
    Action::requeue(Duration::from_secs(1))
}

async fn reconcile(secret: Arc<Secret>, client: Arc<kube::Client>) -> Result<Action> {
    if secret.type_.as_deref() != Some(TOKEN_TYPE) || secret.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let Some(expires) = expiration(&secret) else {
        return Ok(Action::await_change());
    };
    let now = Timestamp::now();
    if now < expires {
        let left = expires.duration_since(now).as_secs_f64().max(0.0);
        return Ok(Action::requeue(
            Duration::from_secs_f64(left) + Duration::from_millis(50),
        ));
    }
    let api: Api<Secret> = Api::namespaced((*client).clone(), NAMESPACE);
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: secret.uid(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(&secret.name_any(), &params).await {
        Ok(_) => {
            tracing::info!(secret = %secret.name_any(), "deleted an expired bootstrap token");
            Ok(Action::await_change())
        }
        Err(e) if is_not_found(&e) => Ok(Action::await_change()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expiration_reads_the_secrets_field() {
        let secret: Secret =
            serde_json::from_value(json!({"metadata": {"name": "bootstrap-token-abcdef"},
            "type": TOKEN_TYPE, "data": {"expiration": "MjAzMC0wMS0wMVQwMDowMDowMFo="}}))
            .unwrap();
        assert_eq!(
            expiration(&secret),
            Some("2030-01-01T00:00:00Z".parse().unwrap())
        );
        let none: Secret = serde_json::from_value(json!({"metadata": {"name": "x"}})).unwrap();
        assert_eq!(expiration(&none), None);
    }
}
