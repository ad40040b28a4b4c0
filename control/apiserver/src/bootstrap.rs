//! What every cluster starts with: the `default`, `kube-system`, `kube-public` and
//! `kube-node-lease` namespaces, created by whichever member gets there first (a create of an
//! existing one is a no-op), as kube-apiserver's bootstrap controller does.

use crate::error::Result;
use crate::request::Query;
use crate::rest::{Api, Call};
use crate::warning::Warnings;

/// The namespaces a cluster always has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl Api {
    /// Creates the system namespaces that do not exist yet.
    pub async fn bootstrap(&self) -> Result<()> {
        let namespaces = self
            .registry
            .find("", "v1", "namespaces")
            .expect("namespaces are built in");
        let query = Query::default();
        let warnings = Warnings::default();
        for name in SYSTEM_NAMESPACES {
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            let body = body.to_string();
            let call = Call {
                resource: &namespaces,
                namespace: None,
                name: "",
                query: &query,
                body: body.as_bytes(),
                content_type: None,
                warnings: &warnings,
            };
            match self.create(&call).await {
                Ok(_) => tracing::info!(namespace = name, "created"),
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
