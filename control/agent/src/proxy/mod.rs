//! The node proxy (kube-proxy's job): Services' ClusterIPs and NodePorts, reachable from the
//! node and from its pods, load-balanced over their ready endpoints.
//!
//! ```text
//!  Services, EndpointSlices ──watch──▶ reflectors ──change──▶ table.rs: frontends → backends
//!                                                                  │ reconcile
//!            interface.rs: link keel-svc holding each ClusterIP/32,     ◀┤
//!                          unreachable route for the service range      │
//!            tcp.rs / udp.rs: a socket per frontend ◀──────────────────────┘
//!                 accept ─▶ balancer.rs (round robin, ClientIP affinity) ─▶ backend
//! ```
//!
//! # Why a userspace proxy
//!
//! kube-proxy's production modes program the kernel (nftables/iptables DNAT). This machine
//! (and the hosts keel targets first) has nf_tables in the kernel but no `nft`/`iptables`
//! binary, and no pure-Rust nftables netlink crate is in use here (`rustables` would have to
//! be vetted; `nftnl`/`mnl` bind the C libraries). A userspace proxy needs nothing but
//! iproute2's `ip`, which the host runtime already uses: the ClusterIPs become local
//! addresses on a link of their own, so the kernel delivers pod and node traffic to them to sockets
//! this module owns, and each connection is spliced to a chosen endpoint. That gives, beyond
//! kube-proxy's kernel modes:
//! - backends on loopback work (the `kubernetes` service's members on 127.0.0.1);
//! - no IP forwarding, masquerade or hairpin rules (the proxy's own connection reaches the
//!   pod over the node bridge, so a pod reaching itself through its service just works);
//! - cleanup is one `ip link del` (and the route), reconcile-from-scratch is "make it again".
//!
//! Its costs: a userspace copy per byte and a second connect per connection, and backends see
//! the node's address rather than the client's (as with kube-proxy's userspace mode).
//! `cargo bench -p keel-agent --bench service_proxy` (loopback, alternating rounds) measured
//! 0.86x the connections/s of going direct and +4 µs per round trip (p50: 17.6 vs 13.4 µs).
//! Its UDP case (DNS-sized queries, as pods reach the cluster DNS ClusterIP) measured +6 µs
//! per query on one socket (p50 14.1 vs 8.1 µs) and +16 µs with a socket per query (31.5 vs
//! 15.1 µs: a new session each time), on a machine loaded by builds (load 8 on 2 cores), where
//! TCP came to 0.53x the connections/s and +6.5 µs.
//!
//! # Behaviour
//! - New connections go to ready endpoints only, from the moment the EndpointSlice update is
//!   seen (milliseconds): the listener's [`balancer::Balancer`] is swapped in place.
//! - Established connections outlive their endpoint turning unready or terminating (the pod
//!   drains them, and they end when it closes them: its FIN is passed on). Once the endpoint
//!   leaves the slices altogether (its pod is deleted, say scaled down), a TCP connection still
//!   joined to it is ended with a FIN to the client, and a UDP client's session to it is
//!   dropped as soon as the endpoint is no longer ready, so its next datagram goes to a live
//!   one: what kube-proxy's conntrack cleanup gives.
//! - A service port without any endpoint closes its listener: its ClusterIP stays on the link,
//!   so a connection is refused at once (kube-proxy REJECTs). A deleted service's ClusterIP
//!   leaves the link and falls into the unreachable route.
//! - NodePorts listen on the configured node addresses only (kube-proxy's
//!   `--nodeport-addresses`), 127.0.0.1 in `keel dev` and tests.
//! - On stop (and on drop) the link and the route are removed; on start an old link of the
//!   same name is removed first, and everything is rebuilt from the API.

pub mod balancer;
pub mod interface;
pub mod table;
pub mod tcp;
pub mod udp;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, reflector, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::Result;
use balancer::Balancer;
use interface::Interface;
use table::{Frontend, Protocol, Table};

/// The proxy's settings.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// The link that holds the ClusterIPs (kube-proxy's ipvs mode calls its
    /// `kube-ipvs0`). One per network namespace: two proxies must not share a name.
    pub interface: String,
    /// The service range (`--service-cluster-ip-range`), routed `unreachable` so an unheld
    /// ClusterIP never leaves the node; `None` adds no route.
    pub service_cidr: Option<String>,
    /// Where NodePorts listen (kube-proxy's `--nodeport-addresses`).
    pub node_port_addresses: Vec<IpAddr>,
    /// How often everything is reconciled even with no change seen (kube-proxy's
    /// `--iptables-sync-period`: 30 s): the net under a failed `ip` or bind.
    pub resync: Duration,
    /// Frontends served whatever the API says: `keel dev` puts its cluster DNS (keel-dns, on
    /// loopback, not a pod) at the ClusterIP kept for it. They win over a Service's.
    pub fixed: BTreeMap<Frontend, table::ServicePort>,
}

impl ProxyConfig {
    /// The defaults: link `keel-svc`, NodePorts on `node_address`, a 30 s resync.
    pub fn new(node_address: IpAddr, service_cidr: Option<&str>) -> ProxyConfig {
        ProxyConfig {
            interface: "keel-svc".into(),
            service_cidr: service_cidr.map(str::to_owned),
            node_port_addresses: vec![node_address],
            resync: Duration::from_secs(30),
            fixed: BTreeMap::new(),
        }
    }
}

/// Runs the proxy until `shutdown` resolves, then removes its link and route. `client` needs
/// list and watch on services and endpointslices (kube's `system:node-proxier`, which keel
/// binds to the group `system:nodes` too, so `keel agent --proxy` runs it as the node).
pub async fn run(
    client: kube::Client,
    config: ProxyConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let interface = Interface::create(&config.interface, config.service_cidr.as_deref())?;
    let changed = Arc::new(Notify::new());
    let (services, services_writer) = reflector::store::<Service>();
    let (slices, slices_writer) = reflector::store::<EndpointSlice>();
    let watches = [
        tokio::spawn(follow(
            reflector(
                services_writer,
                watcher(kube::Api::all(client.clone()), watcher::Config::default()),
            ),
            Arc::clone(&changed),
            "services",
        )),
        tokio::spawn(follow(
            reflector(
                slices_writer,
                watcher(kube::Api::all(client), watcher::Config::default()),
            ),
            Arc::clone(&changed),
            "endpointslices",
        )),
    ];
    let mut proxy = Proxy {
        config,
        interface,
        frontends: BTreeMap::new(),
    };
    tokio::pin!(shutdown);
    let ready = async {
        let _ = services.wait_until_ready().await;
        let _ = slices.wait_until_ready().await;
    };
    tokio::select! {
        _ = ready => {}
        _ = &mut shutdown => return proxy.stop(watches),
    }
    loop {
        proxy.reconcile(&services, &slices);
        tokio::select! {
            _ = changed.notified() => {}
            _ = tokio::time::sleep(proxy.config.resync) => {}
            _ = &mut shutdown => return proxy.stop(watches),
        }
    }
}

/// Drives a reflector's stream, waking the reconciler on every change.
async fn follow<K>(
    stream: impl futures::Stream<Item = std::result::Result<watcher::Event<K>, watcher::Error>>,
    changed: Arc<Notify>,
    what: &'static str,
) {
    stream
        .default_backoff()
        .for_each(|event| {
            match event {
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::debug!("proxy: {what} watch: {e}"),
            }
            async {}
        })
        .await;
}

/// What runs for one frontend.
struct Running {
    service_port: table::ServicePort,
    balancer: Arc<Balancer>,
    /// The socket's task; `None` while the port has no backend (closed: connections refused).
    task: Option<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

struct Proxy {
    config: ProxyConfig,
    interface: Interface,
    frontends: BTreeMap<Frontend, Running>,
}

impl Proxy {
    /// Brings the link's addresses and the sockets in line with the watched objects.
    fn reconcile(&mut self, services: &Store<Service>, slices: &Store<EndpointSlice>) {
        let mut table = table::build(
            &services.state(),
            &slices.state(),
            &self.config.node_port_addresses,
        );
        table.frontends.extend(self.config.fixed.clone());
        let addresses = table.cluster_ips(&self.config.node_port_addresses);
        // Addresses first: a socket cannot bind an address the node does not have.
        if let Err(e) = self.interface.set_addresses(&addresses) {
            tracing::warn!("proxy: setting service addresses: {e}");
        }
        self.apply(table);
    }

    fn apply(&mut self, table: Table) {
        let gone: Vec<Frontend> = self
            .frontends
            .keys()
            .filter(|f| !table.frontends.contains_key(f))
            .copied()
            .collect();
        for frontend in gone {
            self.frontends.remove(&frontend);
        }
        for (frontend, service_port) in table.frontends {
            let running = self.frontends.entry(frontend).or_insert_with(|| {
                let balancer = Balancer::new(service_port.backends.clone(), service_port.affinity);
                balancer.set_listed(service_port.listed.iter().copied());
                Running {
                    service_port: service_port.clone(),
                    balancer: Arc::new(balancer),
                    task: None,
                }
            });
            if running.service_port != service_port {
                running
                    .balancer
                    .update(service_port.backends.clone(), service_port.affinity);
                running
                    .balancer
                    .set_listed(service_port.listed.iter().copied());
                running.service_port = service_port;
            }
            let wanted = !running.service_port.backends.is_empty();
            let serving = running.task.as_ref().is_some_and(|t| !t.is_finished());
            if wanted && !serving {
                running.task = open(frontend, running);
            } else if !wanted {
                if let Some(task) = running.task.take() {
                    task.abort();
                }
            }
        }
    }
}

/// Binds the frontend's socket and starts serving it; `None` (logged) when it cannot be
/// bound now (the next reconcile tries again).
fn open(frontend: Frontend, running: &Running) -> Option<JoinHandle<()>> {
    let address = SocketAddr::new(frontend.address, frontend.port);
    let name = running.service_port.name.clone();
    let balancer = Arc::clone(&running.balancer);
    let bound = match frontend.protocol {
        Protocol::Tcp => {
            tcp::bind(address).map(|listener| tokio::spawn(tcp::serve(name, listener, balancer)))
        }
        Protocol::Udp => std::net::UdpSocket::bind(address)
            .and_then(|socket| {
                socket.set_nonblocking(true)?;
                tokio::net::UdpSocket::from_std(socket)
            })
            .map(|socket| tokio::spawn(udp::serve(name, socket, balancer))),
    };
    match bound {
        Ok(task) => {
            tracing::debug!(
                "proxy: {frontend} serves {} ({} backends)",
                running.service_port.name,
                running.balancer.len()
            );
            Some(task)
        }
        Err(e) => {
            tracing::warn!(
                "proxy: cannot serve {} on {frontend}: {e}",
                running.service_port.name
            );
            None
        }
    }
}

impl Proxy {
    /// Closes every socket, removes the link and the route.
    fn stop(self, watches: [JoinHandle<()>; 2]) -> Result<()> {
        for watch in watches {
            watch.abort();
        }
        let Proxy {
            interface,
            frontends,
            ..
        } = self;
        drop(frontends);
        interface.remove()
    }
}
