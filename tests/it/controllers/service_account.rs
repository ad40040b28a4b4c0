//! The ServiceAccount controller: every namespace, the ones the API server makes at start and
//! new ones, has a `default` ServiceAccount, made again when it is deleted.

use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, DeleteParams};
use kube::ResourceExt as _;

use super::{wait_for, Harness};

#[tokio::test]
async fn every_namespace_has_a_default_service_account_even_after_its_deletion() {
    let h = Harness::start().await;
    for namespace in ["default", "kube-system"] {
        let accounts: Api<ServiceAccount> = Api::namespaced(h.client.clone(), namespace);
        wait_for("a built-in namespace's default account", 30, || async {
            accounts.get_opt("default").await.unwrap()
        })
        .await;
    }
    h.namespace("team").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(h.client.clone(), "team");
    let first = wait_for("team's default account", 30, || async {
        accounts.get_opt("default").await.unwrap()
    })
    .await;
    accounts
        .delete("default", &DeleteParams::default())
        .await
        .unwrap();
    let again = wait_for("team's default account made again", 30, || async {
        accounts
            .get_opt("default")
            .await
            .unwrap()
            .filter(|a| a.uid() != first.uid())
    })
    .await;
    assert!(again.metadata.deletion_timestamp.is_none());
    h.stop().await;
}
