//! Claims in the store: one key per cluster IP (`/registry/ipaddresses/<ip>`, an `IPAddress`
//! object as kube 1.33 keeps it) and one per node port (`/registry/servicenodeports/<port>`),
//! each naming the service that holds it.
//!
//! A claim is made with the store's create-if-absent, so two members racing for one address
//! cannot both win, and released with a delete conditional on the revision it was read at and
//! on the holder being the releasing service (its uid), so a stale release never frees an
//! address someone else holds now.

use serde_json::{json, Value};

use crate::error::Result;
use crate::object;
use crate::storage::{self, Storage, StoredValue, Written};

/// Where cluster IP claims live.
pub const IP_PREFIX: &str = "/registry/ipaddresses/";
/// Where node port claims live.
pub const NODE_PORT_PREFIX: &str = "/registry/servicenodeports/";

/// The annotation naming the uid of the service that holds a claim (kube's `parentRef` names
/// the service by namespace and name only, which a deleted-then-recreated service shares).
const HOLDER_UID: &str = "keel.dev/service-uid";

/// The service a claim belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

impl Holder {
    /// The holder a service object names.
    pub fn of(service: &Value) -> Holder {
        let text = |field| object::meta_str(service, field).unwrap_or("").to_owned();
        Holder {
            namespace: text("namespace"),
            name: text("name"),
            uid: text("uid"),
        }
    }
}

/// The claim object stored for `name` (an IP or a port), as an `IPAddress`.
fn claim_object(kind: &str, name: &str, holder: &Holder) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "uid": object::new_uid(),
            "creationTimestamp": object::now_rfc3339(),
            "labels": {"ipaddress.kubernetes.io/managed-by": "ipallocator.k8s.io"},
            "annotations": {HOLDER_UID: holder.uid},
        },
        "spec": {"parentRef": {"group": "", "resource": "services",
            "namespace": holder.namespace, "name": holder.name}},
    })
}

/// A claim as read back.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The IP or port, as its key ends.
    pub name: String,
    /// Who holds it.
    pub holder: Holder,
    /// When it was made (RFC 3339).
    pub created: String,
    /// The key's revision.
    pub revision: i64,
}

fn decode(prefix: &str, stored: &StoredValue) -> Option<Claim> {
    let value: Value = serde_json::from_slice(&stored.value).ok()?;
    let key = std::str::from_utf8(&stored.key).ok()?;
    let parent = &value["spec"]["parentRef"];
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    Some(Claim {
        name: key.strip_prefix(prefix)?.to_owned(),
        holder: Holder {
            namespace: text(&parent["namespace"]),
            name: text(&parent["name"]),
            uid: text(&value["metadata"]["annotations"][HOLDER_UID]),
        },
        created: text(&value["metadata"]["creationTimestamp"]),
        revision: stored.mod_revision,
    })
}

/// One kind of claim: cluster IPs or node ports.
#[derive(Clone, Copy, Debug)]
pub struct Claims {
    prefix: &'static str,
    kind: &'static str,
}

/// Cluster IP claims.
pub const IPS: Claims = Claims {
    prefix: IP_PREFIX,
    kind: "IPAddress",
};
/// Node port claims.
pub const NODE_PORTS: Claims = Claims {
    prefix: NODE_PORT_PREFIX,
    kind: "ServiceNodePort",
};

impl Claims {
    fn key(&self, name: &str) -> Vec<u8> {
        format!("{}{name}", self.prefix).into_bytes()
    }

    /// Claims `name` for `holder`: `true` if it is now the holder's (made now, or already its
    /// own), `false` if another service holds it.
    pub async fn claim(&self, storage: &dyn Storage, name: &str, holder: &Holder) -> Result<bool> {
        let value = object::encode(&claim_object(self.kind, name, holder))?;
        match storage.create(self.key(name), value).await? {
            Written::Done { .. } => Ok(true),
            Written::Conflict { current } => Ok(current
                .and_then(|c| decode(self.prefix, &c))
                .is_some_and(|c| c.holder.uid == holder.uid)),
        }
    }

    /// Whether `name` is claimed by anyone (a linearizable read).
    pub async fn is_claimed(&self, storage: &dyn Storage, name: &str) -> Result<bool> {
        Ok(storage::get(storage, &self.key(name)).await?.is_some())
    }

    /// Releases `name` if `holder` holds it.
    pub async fn release(&self, storage: &dyn Storage, name: &str, holder: &Holder) -> Result<()> {
        for _ in 0..object::WRITE_RETRIES {
            let Some(current) = storage::get(storage, &self.key(name)).await? else {
                return Ok(());
            };
            let Some(claim) = decode(self.prefix, &current) else {
                return Ok(());
            };
            if claim.holder.uid != holder.uid {
                return Ok(());
            }
            match storage.delete(self.key(name), claim.revision).await? {
                Written::Done { .. } => return Ok(()),
                Written::Conflict { .. } => continue,
            }
        }
        Ok(())
    }

    /// Deletes a claim if it is still at `revision` (the repair pass's reclaim of a leak).
    pub async fn reclaim(&self, storage: &dyn Storage, claim: &Claim) -> Result<bool> {
        Ok(matches!(
            storage
                .delete(self.key(&claim.name), claim.revision)
                .await?,
            Written::Done { .. }
        ))
    }

    /// Every claim, read linearizably.
    pub async fn list(&self, storage: &dyn Storage) -> Result<Vec<Claim>> {
        let start = self.prefix.as_bytes().to_vec();
        let end = storage::prefix_end(&start);
        let page = storage.range(start, end, 0, 0).await?;
        Ok(page
            .items
            .iter()
            .filter_map(|s| decode(self.prefix, s))
            .collect())
    }
}
