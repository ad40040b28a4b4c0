//! The repair pass, as kube-apiserver's service IP and node port repair controllers run it on
//! start and then periodically: every address a stored service holds gets its claim back (a
//! store written before claims existed, or a claim lost to an operator), addresses two
//! services hold, or that lie outside the range, are reported, and claims no service holds
//! (a release that never ran because its member stopped) are reclaimed once older than the
//! grace period, since a younger one may belong to a create still on its way.

use std::collections::HashMap;

use crate::error::Result;
use crate::storage::{self, Storage};
use crate::watch_cache::decode;

use super::claims::{Claims, Holder, IPS, NODE_PORTS};
use super::{Held, ServiceAllocator};

/// What one repair pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Claims made for addresses services held without one.
    pub restored: usize,
    /// Claims no service held, reclaimed.
    pub reclaimed: usize,
    /// Addresses held by more than one service, or outside the range (logged as warnings).
    pub conflicts: usize,
}

impl ServiceAllocator {
    /// One repair pass over every service and claim.
    pub async fn repair(&self, storage: &dyn Storage) -> Result<RepairReport> {
        // Services first: a claim made after this read is younger than the grace period, so
        // it is never taken for a leak.
        let start = b"/registry/services/".to_vec();
        let end = storage::prefix_end(&start);
        let page = storage.range(start, end, 0, 0).await?;
        let mut ips: HashMap<String, Holder> = HashMap::new();
        let mut ports: HashMap<String, Holder> = HashMap::new();
        let mut report = RepairReport::default();
        for stored in &page.items {
            let Some(service) = decode(stored) else {
                continue;
            };
            let holder = Holder::of(&service);
            let held = Held::of(&service);
            for ip in held.ips {
                if self.network.cluster_ip_range.offset(ip).is_none() {
                    tracing::warn!(service = %format!("{}/{}", holder.namespace, holder.name), %ip,
                        "ClusterIPOutOfRange: the cluster IP is not within the service CIDR {}",
                        self.network.cluster_ip_range);
                    report.conflicts += 1;
                    continue;
                }
                note(&mut ips, ip.to_string(), &holder, &mut report);
            }
            for port in held.node_ports {
                if !self.network.node_port_range.contains(i64::from(port)) {
                    tracing::warn!(service = %format!("{}/{}", holder.namespace, holder.name), port,
                        "PortOutOfRange: the node port is not within the range {}",
                        self.network.node_port_range);
                    report.conflicts += 1;
                    continue;
                }
                note(&mut ports, port.to_string(), &holder, &mut report);
            }
        }
        let grace =
            time::Duration::try_from(self.network.repair_grace).unwrap_or(time::Duration::MINUTE);
        for (claims, held) in [(IPS, &ips), (NODE_PORTS, &ports)] {
            repair_claims(storage, claims, held, grace, &mut report).await?;
        }
        if report != RepairReport::default() {
            tracing::info!(?report, "service allocations repaired");
        }
        Ok(report)
    }

    /// Runs a repair pass now and every `interval` after; a failed pass is retried at the
    /// next tick.
    pub async fn run_repair(&self, storage: &dyn Storage, interval: std::time::Duration) {
        loop {
            if let Err(e) = self.repair(storage).await {
                tracing::warn!("service allocation repair: {}", e.message);
            }
            tokio::time::sleep(interval).await;
        }
    }
}

/// Records that `holder` holds `name`, reporting a second holder.
fn note(
    held: &mut HashMap<String, Holder>,
    name: String,
    holder: &Holder,
    report: &mut RepairReport,
) {
    match held.get(&name) {
        Some(first) if first.uid != holder.uid => {
            tracing::warn!(address = %name, first = %format!("{}/{}", first.namespace, first.name),
                second = %format!("{}/{}", holder.namespace, holder.name),
                "AlreadyAllocated: the address is held by two services; one must be recreated");
            report.conflicts += 1;
        }
        Some(_) => {}
        None => {
            held.insert(name, holder.clone());
        }
    }
}

async fn repair_claims(
    storage: &dyn Storage,
    claims: Claims,
    held: &HashMap<String, Holder>,
    grace: time::Duration,
    report: &mut RepairReport,
) -> Result<()> {
    let existing = claims.list(storage).await?;
    let now = time::OffsetDateTime::now_utc();
    for claim in &existing {
        if held.contains_key(&claim.name) {
            continue;
        }
        let created = time::OffsetDateTime::parse(
            &claim.created,
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or(now);
        if now - created >= grace && claims.reclaim(storage, claim).await? {
            tracing::info!(address = %claim.name, holder = %format!("{}/{}", claim.holder.namespace, claim.holder.name),
                "reclaimed an address no service holds");
            report.reclaimed += 1;
        }
    }
    for (name, holder) in held {
        let claim = existing.iter().find(|c| &c.name == name);
        match claim {
            Some(c) if c.holder.uid == holder.uid => {}
            Some(c) => {
                tracing::warn!(address = %name, claimed_by = %format!("{}/{}", c.holder.namespace, c.holder.name),
                    service = %format!("{}/{}", holder.namespace, holder.name),
                    "AlreadyAllocated: a service holds an address claimed for another");
                report.conflicts += 1;
            }
            None => {
                if claims.claim(storage, name, holder).await? {
                    report.restored += 1;
                } else {
                    report.conflicts += 1;
                }
            }
        }
    }
    Ok(())
}
