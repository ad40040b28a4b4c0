//! What every cluster starts with: the `default`, `kube-system`, `kube-public` and
//! `kube-node-lease` namespaces, created by whichever member gets there first (a create of an
//! existing one is a no-op), as kube-apiserver's bootstrap controller does; and the
//! RuntimeClasses of keel's node agent (`host`, `hollow`, `embedded`), which pods choose by
//! `spec.runtimeClassName`; and the system PriorityClasses `system-node-critical` and
//! `system-cluster-critical`, as kube-apiserver's scheduling bootstrap creates them.

use crate::admission::priority::SYSTEM_PRIORITY_CLASSES;
use crate::error::Result;
use crate::request::Query;
use crate::rest::{Api, Call};
use crate::warning::Warnings;

/// The RuntimeClasses a cluster always has: keel-agent's runtimes, each class named as its
/// handler.
pub const RUNTIME_CLASSES: &[&str] = &["host", "hollow", "embedded"];

/// The namespaces a cluster always has.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

impl Api {
    /// Creates the system namespaces, RuntimeClasses and PriorityClasses that do not exist
    /// yet.
    pub async fn bootstrap(&self) -> Result<()> {
        let namespaces = self
            .registry
            .find("", "v1", "namespaces")
            .expect("namespaces are built in");
        let runtime_classes = self
            .registry
            .find("node.k8s.io", "v1", "runtimeclasses")
            .expect("runtimeclasses are built in");
        let priority_classes = self
            .registry
            .find("scheduling.k8s.io", "v1", "priorityclasses")
            .expect("priorityclasses are built in");
        let query = Query::default();
        let warnings = Warnings::default();
        let namespace_bodies = SYSTEM_NAMESPACES.iter().map(|name| {
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
            (&namespaces, *name, body)
        });
        let class_bodies = RUNTIME_CLASSES.iter().map(|name| {
            let body = serde_json::json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                "metadata": {"name": name}, "handler": name});
            (&runtime_classes, *name, body)
        });
        let priority_bodies = SYSTEM_PRIORITY_CLASSES
            .iter()
            .map(|(name, value, description)| {
                let body = serde_json::json!({"apiVersion": "scheduling.k8s.io/v1",
                    "kind": "PriorityClass", "metadata": {"name": name}, "value": value,
                    "description": description});
                (&priority_classes, *name, body)
            });
        let bodies = namespace_bodies.chain(class_bodies).chain(priority_bodies);
        for (resource, name, body) in bodies {
            let body = body.to_string();
            let call = Call {
                resource,
                namespace: None,
                name: "",
                query: &query,
                body: body.as_bytes(),
                content_type: None,
                warnings: &warnings,
                user_agent: Some("kube-apiserver"),
            };
            match self.create(&call).await {
                Ok(_) => tracing::info!(kind = resource.kind, name, "created"),
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
