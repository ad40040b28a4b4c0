//! Cluster IPs and node ports for Services, as kube-apiserver's service REST allocates them.
//!
//! A create claims what the service needs before the service is written (a requested
//! `clusterIP` or `nodePort` if free and in range, else the next free one), and gives the
//! claims back if the write fails; an update claims only what changed and frees what the new
//! state no longer holds once the write has committed; a delete frees everything once the
//! delete has committed, so an address is never reusable while a service still holds it.
//!
//! # Why one key per claim
//!
//! kube-apiserver kept each range as one bitmap (`/registry/ranges/serviceips`) rewritten with
//! a compare-and-swap; kube 1.33 moved cluster IPs to one `IPAddress` object per address. keel
//! does the latter for both ranges: every allocation is one create-if-absent on its own key,
//! so members allocating at once only collide when they pick the same address (a bitmap makes
//! every allocation in the cluster contend on one key, and rewrites the whole bitmap, 128 KiB
//! for a /12, per service), and the holder is written beside the claim, so release and repair
//! need no second index.
//!
//! # Layout
//!
//! - [`range`]: the CIDR and the port range, numbered by offset.
//! - [`claims`]: claim, release and list keys in the store.
//! - `hooks`: the calls `rest` makes on create, update and delete.
//! - [`repair`]: rebuilds claims from the services and reclaims leaks (kube's repair loop).

pub mod claims;
mod hooks;
pub mod range;
pub mod repair;

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::admission::FieldError;
use crate::error::{ApiError, Result};
use crate::go_format::go_quote;
use crate::storage::Storage;
use claims::{Claims, Holder, IPS, NODE_PORTS};
pub use range::{IpRange, PortRange};

/// How the cluster's services are numbered.
#[derive(Clone, Debug)]
pub struct ServiceNetwork {
    /// Where cluster IPs come from (`--service-cluster-ip-range`).
    pub cluster_ip_range: IpRange,
    /// Where node ports come from (`--service-node-port-range`).
    pub node_port_range: PortRange,
    /// How old a claim no service holds must be before repair reclaims it: younger ones may
    /// belong to a create still on its way to the store.
    pub repair_grace: Duration,
}

/// The range `keel dev` and tests use: link-local, so no test ever routes a service address
/// off the machine. Its tenth address is kept for cluster DNS, as kube-dns's is.
pub const DEV_CLUSTER_IP_RANGE: &str = "169.254.64.0/20";

impl Default for ServiceNetwork {
    fn default() -> Self {
        ServiceNetwork {
            cluster_ip_range: IpRange::parse(DEV_CLUSTER_IP_RANGE).expect("a valid CIDR"),
            node_port_range: PortRange {
                first: 30000,
                last: 32767,
            },
            repair_grace: Duration::from_secs(60),
        }
    }
}

impl ServiceNetwork {
    /// The `kubernetes` service's address: the range's first.
    pub fn api_service_ip(&self) -> Ipv4Addr {
        self.cluster_ip_range
            .nth(0)
            .expect("a range holds an address")
    }

    /// The cluster DNS service's address: the range's tenth, where kube-dns sits in kube's
    /// default range.
    pub fn dns_service_ip(&self) -> Option<Ipv4Addr> {
        self.cluster_ip_range.nth(9)
    }
}

/// What a service holds: its cluster IP and node ports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Held {
    /// Cluster IPs (none for headless and ExternalName services).
    pub ips: Vec<Ipv4Addr>,
    /// Node ports, each once.
    pub node_ports: Vec<u16>,
}

impl Held {
    /// What a stored service holds, read from its spec.
    pub fn of(service: &Value) -> Held {
        let spec = &service["spec"];
        if spec["type"] == "ExternalName" {
            return Held::default();
        }
        let mut ips: Vec<Ipv4Addr> = spec["clusterIPs"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|ip| ip.as_str()?.parse().ok())
            .collect();
        if ips.is_empty() {
            ips.extend(
                spec["clusterIP"]
                    .as_str()
                    .and_then(|ip| ip.parse::<Ipv4Addr>().ok()),
            );
        }
        let mut node_ports: Vec<u16> = spec["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["nodePort"].as_u64())
            .chain(spec["healthCheckNodePort"].as_u64())
            .filter_map(|p| u16::try_from(p).ok().filter(|p| *p != 0))
            .collect();
        node_ports.sort_unstable();
        node_ports.dedup();
        Held { ips, node_ports }
    }

    /// What `self` holds that `other` does not.
    pub fn minus(&self, other: &Held) -> Held {
        Held {
            ips: self
                .ips
                .iter()
                .filter(|ip| !other.ips.contains(ip))
                .copied()
                .collect(),
            node_ports: self
                .node_ports
                .iter()
                .filter(|p| !other.node_ports.contains(p))
                .copied()
                .collect(),
        }
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.ips.is_empty() && self.node_ports.is_empty()
    }
}

/// Allocates and frees services' cluster IPs and node ports in the store.
#[derive(Clone, Debug, Default)]
pub struct ServiceAllocator {
    /// The ranges.
    pub network: ServiceNetwork,
}

/// Whether a service of this spec gets node ports.
fn needs_node_ports(spec: &Value) -> bool {
    match spec["type"].as_str() {
        Some("NodePort") => true,
        Some("LoadBalancer") => spec["allocateLoadBalancerNodePorts"] != false,
        _ => false,
    }
}

fn is_headless(spec: &Value) -> bool {
    spec["clusterIP"] == "None"
}

fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

fn invalid(service: &Value, field: String, message: String) -> ApiError {
    let name = crate::object::meta_str(service, "name").unwrap_or("");
    ApiError::invalid(
        "Service",
        "",
        name,
        &[FieldError {
            reason: "FieldValueInvalid",
            field,
            message,
        }],
    )
}

impl ServiceAllocator {
    /// An allocator over `network`.
    pub fn new(network: ServiceNetwork) -> ServiceAllocator {
        ServiceAllocator { network }
    }

    /// Clears what a type change leaves behind before validation, as kube's
    /// `dropTypeDependentFields`: a service turned ExternalName drops the cluster IP and IP
    /// families it kept, one that no longer needs node ports drops the ones it kept (values the
    /// user changed in the same update stay, so validation can refuse them).
    pub fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
        let (old_spec, spec) = (&old["spec"], &mut new["spec"]);
        if spec["type"] == "ExternalName" && old_spec["type"] != "ExternalName" {
            for field in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                if spec.get(field) == old_spec.get(field) {
                    if let Some(map) = spec.as_object_mut() {
                        map.remove(field);
                    }
                }
            }
        }
        let externally_accessible = |spec: &Value| match spec["type"].as_str() {
            Some("NodePort" | "LoadBalancer") => true,
            Some("ClusterIP") => spec["externalIPs"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            _ => false,
        };
        let drop_if_same = |spec: &mut Value, field: &str| {
            if spec.get(field) == old_spec.get(field) {
                if let Some(map) = spec.as_object_mut() {
                    map.remove(field);
                }
            }
        };
        if externally_accessible(old_spec) && !externally_accessible(spec) {
            drop_if_same(spec, "externalTrafficPolicy");
        }
        if old_spec["type"] == "LoadBalancer" && spec["type"] != "LoadBalancer" {
            drop_if_same(spec, "allocateLoadBalancerNodePorts");
        }
        if needs_node_ports(old_spec) && !needs_node_ports(spec) {
            let old_ports = old_spec["ports"].as_array().cloned().unwrap_or_default();
            for port in spec["ports"].as_array_mut().into_iter().flatten() {
                let kept = old_ports
                    .iter()
                    .any(|o| o["port"] == port["port"] && o["nodePort"] == port["nodePort"]);
                if kept {
                    if let Some(map) = port.as_object_mut() {
                        map.remove("nodePort");
                    }
                }
            }
        }
    }

    /// Fills in and claims what `service` needs beyond what `old` (on an update) already
    /// holds. Returns what was claimed now, which the caller releases if its write fails.
    /// A dry run checks and fills in without claiming.
    pub async fn allocate(
        &self,
        storage: &dyn Storage,
        service: &mut Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> Result<Held> {
        if service["spec"]["type"] == "ExternalName" {
            return Ok(Held::default());
        }
        self.init_ip_families(service)?;
        let holder = Holder::of(service);
        let kept = old.map(Held::of).unwrap_or_default();
        let mut claimed = Held::default();
        let result = async {
            self.allocate_ip(storage, service, &holder, &kept, &mut claimed, dry_run)
                .await?;
            self.allocate_node_ports(storage, service, &holder, &kept, &mut claimed, dry_run)
                .await
        }
        .await;
        match result {
            Ok(()) => Ok(claimed),
            Err(e) => {
                self.release(storage, &holder, &claimed).await;
                Err(e)
            }
        }
    }

    /// `ipFamilies` and the family policy on a single-stack IPv4 cluster.
    fn init_ip_families(&self, service: &mut Value) -> Result<()> {
        let spec = &service["spec"];
        let selectorless = spec["selector"].as_object().is_none_or(|s| s.is_empty());
        if spec["ipFamilyPolicy"] == "RequireDualStack" && !(is_headless(spec) && selectorless) {
            return Err(invalid(
                service,
                "spec.ipFamilyPolicy".into(),
                "Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services".into(),
            ));
        }
        let families = spec["ipFamilies"].as_array().cloned().unwrap_or_default();
        for (i, family) in families.iter().enumerate() {
            if family != "IPv4" {
                let family = family.as_str().unwrap_or("");
                return Err(invalid(
                    service,
                    format!("spec.ipFamilies[{i}]"),
                    format!(
                        "Invalid value: {}: not configured on this cluster",
                        go_quote(family)
                    ),
                ));
            }
        }
        if families.is_empty() {
            service["spec"]["ipFamilies"] = json!(["IPv4"]);
        }
        Ok(())
    }

    async fn allocate_ip(
        &self,
        storage: &dyn Storage,
        service: &mut Value,
        holder: &Holder,
        kept: &Held,
        claimed: &mut Held,
        dry_run: bool,
    ) -> Result<()> {
        let spec = &service["spec"];
        if is_headless(spec) {
            return Ok(());
        }
        let requested = spec["clusterIP"].as_str().unwrap_or("").to_owned();
        if requested.is_empty() {
            let range = self.network.cluster_ip_range;
            let ip = claim_next(
                storage,
                IPS,
                holder,
                (range.size(), range.static_band()),
                |offset| range.nth(offset).expect("offset in range").to_string(),
                dry_run,
            )
            .await?
            .ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))?;
            let ip = range.nth(ip).expect("offset in range");
            service["spec"]["clusterIP"] = json!(ip.to_string());
            service["spec"]["clusterIPs"] = json!([ip.to_string()]);
            claimed.ips.push(ip);
            return Ok(());
        }
        let refuse = |why: String| {
            invalid(
                service,
                "spec.clusterIPs".into(),
                format!(
                    "Invalid value: {}: failed to allocate IP {requested}: {why}",
                    go_string_slice(std::slice::from_ref(&requested))
                ),
            )
        };
        let ip = requested
            .parse::<Ipv4Addr>()
            .ok()
            .filter(|ip| self.network.cluster_ip_range.offset(*ip).is_some());
        let Some(ip) = ip else {
            return Err(refuse(format!(
                "the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}",
                self.network.cluster_ip_range
            )));
        };
        if kept.ips.contains(&ip) {
            return Ok(());
        }
        let free = if dry_run {
            !IPS.is_claimed(storage, &ip.to_string()).await?
        } else {
            IPS.claim(storage, &ip.to_string(), holder).await?
        };
        if !free {
            return Err(refuse("provided IP is already allocated".into()));
        }
        if !dry_run {
            claimed.ips.push(ip);
        }
        service["spec"]["clusterIPs"] = json!([ip.to_string()]);
        Ok(())
    }

    async fn allocate_node_ports(
        &self,
        storage: &dyn Storage,
        service: &mut Value,
        holder: &Holder,
        kept: &Held,
        claimed: &mut Held,
        dry_run: bool,
    ) -> Result<()> {
        if !needs_node_ports(&service["spec"]) {
            return Ok(());
        }
        let range = self.network.node_port_range;
        let count = service["spec"]["ports"].as_array().map_or(0, Vec::len);
        // A port number served over two protocols shares its node port, as kube does.
        let mut by_port: Vec<(Value, u16)> = Vec::new();
        for i in 0..count {
            let port = &service["spec"]["ports"][i];
            let number = port["port"].clone();
            let requested = port["nodePort"].as_i64().unwrap_or(0);
            if requested != 0 {
                let node_port = u16::try_from(requested)
                    .ok()
                    .filter(|p| range.contains(i64::from(*p)));
                let Some(node_port) = node_port else {
                    return Err(invalid(
                        service,
                        format!("spec.ports[{i}].nodePort"),
                        format!("Invalid value: {requested}: provided port is not in the valid range. The range of valid ports is {range}"),
                    ));
                };
                let mine = kept.node_ports.contains(&node_port)
                    || claimed.node_ports.contains(&node_port)
                    || by_port.iter().any(|(_, p)| *p == node_port);
                if !mine {
                    let free = if dry_run {
                        !NODE_PORTS
                            .is_claimed(storage, &node_port.to_string())
                            .await?
                    } else {
                        NODE_PORTS
                            .claim(storage, &node_port.to_string(), holder)
                            .await?
                    };
                    if !free {
                        return Err(invalid(
                            service,
                            format!("spec.ports[{i}].nodePort"),
                            format!(
                                "Invalid value: {requested}: provided port is already allocated"
                            ),
                        ));
                    }
                    if !dry_run {
                        claimed.node_ports.push(node_port);
                    }
                }
                by_port.push((number, node_port));
                continue;
            }
            let shared = by_port.iter().find(|(n, _)| *n == number).map(|(_, p)| *p);
            let node_port = match shared {
                Some(p) => p,
                None => {
                    let offset = claim_next(
                        storage,
                        NODE_PORTS,
                        holder,
                        (range.size(), range.static_band()),
                        |offset| range.nth(offset).expect("offset in range").to_string(),
                        dry_run,
                    )
                    .await?
                    .ok_or_else(|| {
                        ApiError::internal("failed to allocate a nodePort: range is full")
                    })?;
                    let p = range.nth(offset).expect("offset in range");
                    if !dry_run {
                        claimed.node_ports.push(p);
                    }
                    p
                }
            };
            service["spec"]["ports"][i]["nodePort"] = json!(node_port);
            by_port.push((number, node_port));
        }
        Ok(())
    }

    /// Gives back what `holder` holds of `held`. Failures are logged, not returned: the
    /// caller's write has already committed, and repair reclaims what a failed release leaves.
    pub async fn release(&self, storage: &dyn Storage, holder: &Holder, held: &Held) {
        for ip in &held.ips {
            if let Err(e) = IPS.release(storage, &ip.to_string(), holder).await {
                tracing::warn!(%ip, "cannot release a cluster IP (repair will): {}", e.message);
            }
        }
        for port in &held.node_ports {
            if let Err(e) = NODE_PORTS.release(storage, &port.to_string(), holder).await {
                tracing::warn!(
                    port,
                    "cannot release a node port (repair will): {}",
                    e.message
                );
            }
        }
    }
}

/// Claims a free offset of a space of `size` offsets whose first `band` are kept for requested
/// values: a few random picks above the band first (cheap while the range is sparse), then a
/// scan of what the store says is free, above the band and then within it. `None`: full.
async fn claim_next(
    storage: &dyn Storage,
    claims: Claims,
    holder: &Holder,
    (size, band): (u32, u32),
    name_of: impl Fn(u32) -> String,
    dry_run: bool,
) -> Result<Option<u32>> {
    let try_claim = |offset: u32| {
        let name = name_of(offset);
        async move {
            if dry_run {
                Ok(!claims.is_claimed(storage, &name).await?)
            } else {
                claims.claim(storage, &name, holder).await
            }
        }
    };
    const RANDOM_PICKS: usize = 3;
    if band < size {
        for _ in 0..RANDOM_PICKS {
            let offset = band + rand::random::<u32>() % (size - band);
            if try_claim(offset).await? {
                return Ok(Some(offset));
            }
        }
    }
    let taken: std::collections::HashSet<String> = claims
        .list(storage)
        .await?
        .into_iter()
        .map(|c| c.name)
        .collect();
    let start = rand::random::<u32>() % (size - band).max(1);
    let dynamic = (0..size - band).map(|i| band + (start + i) % (size - band));
    for offset in dynamic.chain(0..band) {
        if !taken.contains(&name_of(offset)) && try_claim(offset).await? {
            return Ok(Some(offset));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests;
