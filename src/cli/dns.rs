//! `keel dns`: the cluster DNS (keel-dns) for the cluster a kubeconfig names, on one address
//! for UDP and TCP, until Ctrl-C.
//!
//! Also [`ClusterDns`]: the cluster DNS the way `keel dev` gives it to pods (and the
//! integration tests run it, through this same code):
//!
//! ```text
//!  pod ── resolv.conf nameserver 169.254.64.10 ──▶ node proxy frontend 169.254.64.10:53 udp/tcp
//!                                                        │ (a fixed frontend, ProxyConfig::fixed)
//!                                                        ▼
//!                                         keel-dns on 127.0.0.1:<port>, fed by the API
//!  Service kube-system/kube-dns, clusterIP 169.254.64.10 (holds the address, answers to
//!  kubectl get svc -n kube-system, resolves as kube-dns.kube-system.svc.cluster.local)
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

/// `keel dns --kubeconfig F --listen ADDR`.
#[derive(Debug, Args)]
pub struct DnsArgs {
    /// The kubeconfig of the cluster to serve (default: $KUBECONFIG, then ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Where to answer, UDP and TCP (port 0: any free port, printed).
    #[arg(long, default_value = "127.0.0.1:5353")]
    pub listen: SocketAddr,
}

impl DnsArgs {
    /// Serves until Ctrl-C.
    pub async fn execute(self) -> anyhow::Result<()> {
        let client = match &self.kubeconfig {
            Some(path) => {
                let file = kube::config::Kubeconfig::read_from(path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                let config = kube::Config::from_custom_kubeconfig(
                    file,
                    &kube::config::KubeConfigOptions::default(),
                )
                .await?;
                kube::Client::try_from(config)?
            }
            None => kube::Client::try_default().await?,
        };
        let listeners = keel_dns::Listeners::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        println!(
            "keel dns: {} answering *.svc.{} on {} (udp and tcp)",
            client.default_namespace(),
            keel_dns::CLUSTER_DOMAIN,
            listeners.local_addr()?
        );
        keel_dns::run(client, listeners, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        Ok(())
    }
}

/// The name and namespace of the cluster DNS Service (kubeadm's, CoreDNS's).
pub const DNS_SERVICE: (&str, &str) = ("kube-system", "kube-dns");

/// keel-dns serving a cluster on loopback, the `kube-system/kube-dns` Service holding its
/// ClusterIP, and the node proxy frontends that carry that ClusterIP's port 53 to it.
pub struct ClusterDns {
    /// Where keel-dns answers, UDP and TCP (loopback).
    pub address: SocketAddr,
    /// The cluster DNS ClusterIP pods' resolv.conf names (kubelet's `--cluster-dns`).
    pub service_ip: IpAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl ClusterDns {
    /// Serves keel-dns on `listen` from `client`'s view of the cluster and makes (or keeps)
    /// the `kube-system/kube-dns` Service at `service_ip`. `client` must read Services and
    /// EndpointSlices cluster-wide and create Services in kube-system.
    pub async fn start(
        client: kube::Client,
        listen: SocketAddr,
        service_ip: IpAddr,
    ) -> anyhow::Result<ClusterDns> {
        let listeners = keel_dns::Listeners::bind(listen)
            .await
            .with_context(|| format!("cannot serve DNS on {listen}"))?;
        let address = listeners.local_addr()?;
        ensure_service(&client, service_ip).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(keel_dns::run(client, listeners, async move {
            let _ = stopped.await;
        }));
        Ok(ClusterDns {
            address,
            service_ip,
            stop,
            task,
        })
    }

    /// The node proxy's frontends for the DNS ClusterIP: port 53, UDP and TCP, to keel-dns on
    /// loopback (`ProxyConfig::fixed`: keel-dns is no pod, so no EndpointSlice names it).
    pub fn proxy_frontends(
        &self,
    ) -> BTreeMap<keel_agent::proxy::table::Frontend, keel_agent::proxy::table::ServicePort> {
        use keel_agent::proxy::table::{Frontend, Protocol, ServicePort};
        [Protocol::Udp, Protocol::Tcp]
            .into_iter()
            .map(|protocol| {
                let frontend = Frontend {
                    address: self.service_ip,
                    port: 53,
                    protocol,
                };
                let port = ServicePort {
                    name: format!("{}/{}:dns (keel-dns)", DNS_SERVICE.0, DNS_SERVICE.1),
                    backends: vec![self.address],
                    listed: vec![self.address],
                    affinity: None,
                };
                (frontend, port)
            })
            .collect()
    }

    /// Stops serving (the Service stays: it is the cluster's, as kube-dns's is).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Creates `kube-system/kube-dns` at `service_ip` (ports dns 53/UDP, dns-tcp 53/TCP, no
/// selector: its endpoint is keel-dns itself, reached through the proxy's fixed frontends).
/// One that already exists is kept; if it stands at another address, that is an error, since
/// the agents' `--cluster-dns` would name an address nobody serves.
pub async fn ensure_service(client: &kube::Client, service_ip: IpAddr) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Service;
    let (namespace, name) = DNS_SERVICE;
    let services: kube::Api<Service> = kube::Api::namespaced(client.clone(), namespace);
    let service: Service = serde_json::from_value(serde_json::json!({
        "metadata": {
            "name": name,
            "labels": {"k8s-app": "kube-dns", "kubernetes.io/name": "keel-dns"}
        },
        "spec": {
            "clusterIP": service_ip.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53}
            ]
        }
    }))?;
    // A control plane just started may not have made kube-system yet: retry that a while.
    let mut attempts = 0;
    let existing = loop {
        attempts += 1;
        match services
            .create(&kube::api::PostParams::default(), &service)
            .await
        {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => {
                break services.get(name).await?
            }
            Err(kube::Error::Api(status)) if status.code == 404 && attempts < 100 => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot create Service {namespace}/{name}"))
            }
        }
    };
    let held = existing.spec.and_then(|s| s.cluster_ip).unwrap_or_default();
    if held != service_ip.to_string() {
        anyhow::bail!(
            "Service {namespace}/{name} has clusterIP {held}, not the cluster DNS address \
             {service_ip}: delete it and start again"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    #[test]
    fn dns_takes_a_kubeconfig_and_an_address() {
        let cli = Cli::parse_from([
            "keel",
            "dns",
            "--kubeconfig",
            "k.yaml",
            "--listen",
            "127.0.0.1:0",
        ]);
        let Some(Command::Dns(args)) = cli.command else {
            panic!("not dns");
        };
        assert_eq!(args.kubeconfig.unwrap().to_str(), Some("k.yaml"));
        assert_eq!(args.listen.port(), 0);
    }
}
