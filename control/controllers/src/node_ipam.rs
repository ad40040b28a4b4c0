//! Node IPAM (kube's range allocator, `pkg/controller/nodeipam`): every node gets its own
//! slice of the cluster's pod network, `spec.podCIDR` and `spec.podCIDRs`, cut from
//! `cluster_cidr` in blocks of `node_cidr_mask_size` (a /24 by default), never two nodes the
//! same block.
//!
//! The allocator keeps a bitmap of the blocks. It is rebuilt from the nodes' own `podCIDR`s
//! when the controller starts (so a new leader never hands out a block in use), a block comes
//! back when its node is deleted, and a free block is looked for round-robin from the last one
//! handed out, as kube's `CidrSet` does, so a block just freed is not reused at once.
//! IPv4 only.

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Arc;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::ResourceExt as _;
use serde_json::json;

use crate::error::{is_not_found, Error, Result};
use crate::events::{EventType, Recorder};

/// kube's cap on how many times larger the cluster range may be than a node's block (2^16).
pub const MAX_BLOCK_BITS: u8 = 16;

/// The blocks of one cluster range and which are taken.
#[derive(Clone, Debug)]
pub struct CidrSet {
    base: u32,
    cluster_prefix: u8,
    block_prefix: u8,
    used: Vec<bool>,
    next: usize,
}

impl CidrSet {
    /// Blocks of `/node_mask` in `cluster` (`a.b.c.d/n`).
    pub fn new(cluster: &str, node_mask: u8) -> Result<CidrSet> {
        let (address, prefix) = parse_cidr(cluster)?;
        let bad = |why: String| Error::invalid(format!("cluster CIDR {cluster}"), why);
        if node_mask < prefix || node_mask > 32 {
            return Err(bad(format!(
                "the node CIDR mask size {node_mask} must lie between the cluster's /{prefix} and /32"
            )));
        }
        if node_mask - prefix > MAX_BLOCK_BITS {
            return Err(bad(format!(
                "a /{prefix} cut into /{node_mask} blocks is more than 2^{MAX_BLOCK_BITS} blocks"
            )));
        }
        Ok(CidrSet {
            base: u32::from(address) & mask(prefix),
            cluster_prefix: prefix,
            block_prefix: node_mask,
            used: vec![false; 1 << (node_mask - prefix)],
            next: 0,
        })
    }

    fn block(&self, index: usize) -> String {
        let start = self.base + ((index as u32) << (32 - self.block_prefix));
        format!("{}/{}", Ipv4Addr::from(start), self.block_prefix)
    }

    /// The block index `cidr` names, if it is one of this set's blocks (kube's
    /// `getIndexForIP` on a CIDR of the node mask size).
    fn index(&self, cidr: &str) -> Option<usize> {
        let (address, prefix) = parse_cidr(cidr).ok()?;
        let address = u32::from(address);
        if prefix != self.block_prefix || address & mask(self.cluster_prefix) != self.base {
            return None;
        }
        Some(((address - self.base) >> (32 - self.block_prefix)) as usize)
    }

    /// Marks `cidr` taken; false when it is not one of this set's blocks.
    pub fn occupy(&mut self, cidr: &str) -> bool {
        match self.index(cidr) {
            Some(i) => {
                self.used[i] = true;
                true
            }
            None => false,
        }
    }

    /// Frees `cidr`.
    pub fn release(&mut self, cidr: &str) {
        if let Some(i) = self.index(cidr) {
            self.used[i] = false;
        }
    }

    /// Takes the next free block, round-robin; None when every block is taken.
    pub fn allocate(&mut self) -> Option<String> {
        let count = self.used.len();
        for step in 0..count {
            let i = (self.next + step) % count;
            if !self.used[i] {
                self.used[i] = true;
                self.next = (i + 1) % count;
                return Some(self.block(i));
            }
        }
        None
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    }
}

fn parse_cidr(cidr: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || Error::invalid(format!("CIDR {cidr}"), "not an IPv4 a.b.c.d/n");
    let (address, prefix) = cidr.split_once('/').ok_or_else(bad)?;
    let address: Ipv4Addr = address.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    if prefix > 32 {
        return Err(bad());
    }
    Ok((address, prefix))
}

/// What the controller shares.
pub struct Context {
    /// The API.
    pub client: kube::Client,
    /// Every node.
    pub nodes: Store<Node>,
    /// Events, as kube's range allocator records them (`cidrAllocator`).
    pub recorder: Recorder,
}

/// The node's pod CIDRs (`podCIDRs`, or the lone `podCIDR` of an older writer).
fn pod_cidrs(node: &Node) -> Vec<String> {
    let Some(spec) = node.spec.as_ref() else {
        return Vec::new();
    };
    match (&spec.pod_cidrs, &spec.pod_cidr) {
        (Some(cidrs), _) if !cidrs.is_empty() => cidrs.clone(),
        (_, Some(cidr)) if !cidr.is_empty() => vec![cidr.clone()],
        _ => Vec::new(),
    }
}

/// Runs the allocator over `cidrs` until the future is dropped, triggered by `nodes` changes.
pub async fn run(
    ctx: Arc<Context>,
    mut cidrs: CidrSet,
    nodes: impl Stream<Item = Result<Node, watcher::Error>> + Send + 'static,
) {
    // Every block already on a node is taken before any is handed out.
    for node in ctx.nodes.state() {
        for cidr in pod_cidrs(&node) {
            if !cidrs.occupy(&cidr) {
                tracing::warn!(node = %node.name_any(), %cidr, "node CIDR outside the cluster CIDR; left alone");
            }
        }
    }
    for node in ctx.nodes.state() {
        assign(&ctx, &mut cidrs, &node).await;
    }
    let mut nodes = std::pin::pin!(nodes);
    while let Some(node) = nodes.next().await {
        let Ok(node) = node else { continue };
        let name = node.name_any();
        match ctx.nodes.get(&ObjectRef::new(&name)) {
            Some(current) => assign(&ctx, &mut cidrs, &current).await,
            None => {
                // Deleted: its blocks come back, unless another node claims them, and nodes
                // still waiting for one get their turn.
                let claimed: HashSet<String> = ctx
                    .nodes
                    .state()
                    .iter()
                    .flat_map(|n| pod_cidrs(n))
                    .collect();
                for cidr in pod_cidrs(&node) {
                    if !claimed.contains(&cidr) {
                        cidrs.release(&cidr);
                    }
                }
                for waiting in ctx.nodes.state() {
                    assign(&ctx, &mut cidrs, &waiting).await;
                }
            }
        }
    }
}

/// Gives `node` a block if it has none.
async fn assign(ctx: &Context, cidrs: &mut CidrSet, node: &Node) {
    if !pod_cidrs(node).is_empty() || node.metadata.deletion_timestamp.is_some() {
        return;
    }
    let name = node.name_any();
    let Some(cidr) = cidrs.allocate() else {
        ctx.recorder.record(
            node,
            EventType::Normal,
            "CIDRNotAvailable",
            format!("Node {name} status is now: CIDRNotAvailable"),
        );
        return;
    };
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let patch = json!({"spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
    match nodes
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => tracing::info!(node = %name, %cidr, "pod CIDR assigned"),
        Err(e) => {
            cidrs.release(&cidr);
            if !is_not_found(&e) {
                tracing::warn!(node = %name, error = %e, "pod CIDR not assigned");
                ctx.recorder.record(
                    node,
                    EventType::Warning,
                    "CIDRAssignmentFailed",
                    format!("Node {name} status is now: CIDRAssignmentFailed"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_handed_out_once_round_robin_and_reused_after_release() {
        let mut set = CidrSet::new("169.254.0.0/22", 24).unwrap();
        assert_eq!(set.allocate().as_deref(), Some("169.254.0.0/24"));
        assert!(set.occupy("169.254.2.0/24"));
        assert_eq!(set.allocate().as_deref(), Some("169.254.1.0/24"));
        assert_eq!(set.allocate().as_deref(), Some("169.254.3.0/24"));
        assert_eq!(set.allocate(), None);
        set.release("169.254.1.0/24");
        assert_eq!(set.allocate().as_deref(), Some("169.254.1.0/24"));
        // Not blocks of this set.
        assert!(!set.occupy("169.254.8.0/24"));
        assert!(!set.occupy("169.254.1.0/25"));
        assert!(!set.occupy("fd00::/64"));
    }

    #[test]
    fn the_cluster_range_and_mask_are_checked() {
        let set = CidrSet::new("169.254.0.0/18", 24).unwrap();
        assert_eq!(set.used.len(), 64);
        assert_eq!(set.block(63), "169.254.63.0/24");
        // A host address inside the range is taken as its network.
        assert_eq!(
            CidrSet::new("169.254.1.7/16", 24).unwrap().block(1),
            "169.254.1.0/24"
        );
        assert!(CidrSet::new("169.254.0.0/18", 16).is_err());
        // At most 2^16 blocks: a /8 cut into /25s is too many, into /24s just fits.
        assert!(CidrSet::new("127.0.0.0/8", 25).is_err());
        assert!(CidrSet::new("127.0.0.0/8", 24).is_ok());
        assert!(CidrSet::new("fd00::/48", 64).is_err());
        assert!(CidrSet::new("169.254.0.0", 24).is_err());
    }
}
