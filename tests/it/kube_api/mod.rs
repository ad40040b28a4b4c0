//! The Kubernetes API served by keel, driven by real clients: the `kube` crate (typed and
//! dynamic API, watcher), kubectl v1.32 and the Python `kubernetes` client, against members of
//! an in-process cluster. The storage contract runs against keel and against a real etcd 3.4.

mod apply;
mod client;
mod components;
mod crd;
mod dns;
mod errors;
pub(crate) mod kubectl;
mod leader;
mod openapi;
mod openapi_v2;
mod priority;
mod protobuf;
mod python;
mod rbac;
mod services;
mod storage_contract;

use std::path::PathBuf;
use std::time::Duration;

use keel::cli::dev::DevCluster;

/// A cluster with its control plane, and a kube client of its admin kubeconfig.
pub struct ControlPlane {
    /// The cluster.
    pub cluster: DevCluster,
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// A client of the first member's API server.
    pub client: kube::Client,
}

impl ControlPlane {
    /// `size` members on free ports, each with its API server, once the system namespaces exist.
    pub async fn start(size: usize) -> ControlPlane {
        ControlPlane::start_tuned(size, |_| {}).await
    }

    /// [`ControlPlane::start`] with each member's configuration changed by `tune` first.
    pub async fn start_tuned(
        size: usize,
        tune: impl Fn(&mut keel::config::Config),
    ) -> ControlPlane {
        let args = keel::cli::dev::DevArgs::on_free_ports(size);
        let cluster = DevCluster::start_tuned(&args, false, tune)
            .await
            .expect("cluster");
        ControlPlane::on(cluster).await
    }

    /// The control plane of a started `cluster`, once the system namespaces exist.
    pub async fn on(mut cluster: DevCluster) -> ControlPlane {
        let kubeconfig = cluster.start_control_plane(0).await.expect("control plane");
        let client = client_of(&kubeconfig, None).await;
        let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> =
            kube::Api::all(client.clone());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = namespaces.get_opt("kube-node-lease").await {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the system namespaces did not appear"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The bootstrap RBAC policy (its last binding, and admin aggregated) is in place.
        let bindings: kube::Api<k8s_openapi::api::rbac::v1::ClusterRoleBinding> =
            kube::Api::all(client.clone());
        let roles: kube::Api<k8s_openapi::api::rbac::v1::ClusterRole> =
            kube::Api::all(client.clone());
        loop {
            let bound = matches!(bindings.get_opt("system:kube-dns").await, Ok(Some(_)));
            let aggregated = matches!(roles.get_opt("admin").await,
                Ok(Some(admin)) if admin.rules.as_ref().is_some_and(|r| !r.is_empty()));
            if bound && aggregated {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the bootstrap RBAC policy did not appear"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ControlPlane {
            cluster,
            kubeconfig,
            client,
        }
    }

    /// The URL of member `i`'s API server.
    pub fn server(&self, i: usize) -> String {
        format!("https://{}", self.cluster.apiservers[i].addr)
    }

    /// A client of member `i`'s API server.
    pub async fn client_of_member(&self, i: usize) -> kube::Client {
        client_of(&self.kubeconfig, Some(self.server(i))).await
    }

    /// Stops everything.
    pub async fn stop(self) {
        self.cluster.stop().await.expect("stop");
    }
}

/// A client of `kubeconfig`, optionally pointed at another server of the same cluster.
pub async fn client_of(kubeconfig: &std::path::Path, server: Option<String>) -> kube::Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig");
    let mut config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .expect("config");
    if let Some(server) = server {
        config.cluster_url = server.parse().expect("url");
    }
    kube::Client::try_from(config).expect("client")
}

/// Sends `request`; its status code and JSON body (a Status for errors).
pub async fn call(request: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let response = request.send().await.expect("the API server answers");
    let code = response.status().as_u16();
    (code, response.json().await.expect("a JSON body"))
}

/// An HTTPS client of the cluster: with the admin certificate, or anonymous.
pub fn https(cp: &ControlPlane, admin: bool) -> reqwest::Client {
    let pki = cp.kubeconfig.parent().unwrap().join("pki");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(pki.join("ca.crt")).unwrap()).unwrap();
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca);
    if admin {
        let mut pem = std::fs::read(pki.join("admin.key")).unwrap();
        pem.extend(std::fs::read(pki.join("admin.crt")).unwrap());
        builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    builder.build().unwrap()
}
