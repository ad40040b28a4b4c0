//! Where the verbs call the allocator: small hooks the create, update and delete paths of
//! `rest` call for every resource, doing something only for Services.

use serde_json::Value;

use super::claims::Holder;
use super::{Held, ServiceAllocator};
use crate::error::Result;
use crate::registry::Resource;
use crate::rest::Api;

fn is_service(resource: &Resource) -> bool {
    resource.kind == "Service" && resource.group.is_empty()
}

impl Api {
    /// Before validating an update: drops what a type change leaves behind.
    pub(crate) fn prepare_service_update(resource: &Resource, new: &mut Value, old: &Value) {
        if is_service(resource) {
            ServiceAllocator::drop_type_dependent_fields(new, old);
        }
    }

    /// After validation, before the write: claims what a service needs that `old` did not
    /// hold. What it returns is given back with [`Api::release_service`] if the write fails.
    pub(crate) async fn allocate_service(
        &self,
        resource: &Resource,
        new: &mut Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> Result<Held> {
        if !is_service(resource) {
            return Ok(Held::default());
        }
        self.services
            .allocate(&*self.storage, new, old, dry_run)
            .await
    }

    /// Gives back `held`, claimed for `service`.
    pub(crate) async fn release_service(&self, resource: &Resource, service: &Value, held: &Held) {
        if is_service(resource) && !held.is_empty() {
            self.services
                .release(&*self.storage, &Holder::of(service), held)
                .await;
        }
    }

    /// After a write of `new` over `old` committed (`new` is `None` after a delete): frees
    /// what the old state held and the new one does not.
    pub(crate) async fn release_replaced(
        &self,
        resource: &Resource,
        old: &Value,
        new: Option<&Value>,
    ) {
        if !is_service(resource) {
            return;
        }
        let freed = match new {
            Some(new) => Held::of(old).minus(&Held::of(new)),
            None => Held::of(old),
        };
        self.release_service(resource, old, &freed).await;
    }
}
