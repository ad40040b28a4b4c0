//! The scheduler's view of the cluster: every node with what it offers (allocatable) and what
//! its pods already ask for (requested), including pods this scheduler has *assumed* onto a
//! node — decided, binding in flight, not yet seen bound through the watch — so the next
//! decision already counts the resources the last one took. An assumption ends when the
//! watch shows the pod bound (confirmed), or is forgotten when the binding fails.
//!
//! A pod can be seen on a node before the node itself (or after the node is gone): the node's
//! entry then has no `Node` object and takes no new pods.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PodSpec, Taint};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::disruption::Budget;
use crate::framework::PodInfo;
use crate::nominator::Nominator;
use crate::resources::{NonZero, Resource};

/// A host port a container takes: `hostIP` (0.0.0.0 when unset), protocol (TCP when unset)
/// and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    /// The host IP, `0.0.0.0` for all.
    pub ip: String,
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The port.
    pub port: i32,
}

/// The "all addresses" host IP.
pub const BIND_ALL_HOST_IP: &str = "0.0.0.0";

impl HostPort {
    /// The host ports (`hostPort` > 0) of a pod's containers and sidecars (init containers
    /// with `restartPolicy: Always`, which run as long as the pod), as `GetHostPorts`.
    pub fn of(spec: &PodSpec) -> Vec<HostPort> {
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| c.restart_policy.as_deref() == Some("Always"));
        sidecars
            .chain(&spec.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .filter(|p| p.host_port.unwrap_or(0) > 0)
            .map(|p| HostPort {
                ip: p
                    .host_ip
                    .clone()
                    .filter(|ip| !ip.is_empty())
                    .unwrap_or_else(|| BIND_ALL_HOST_IP.to_owned()),
                protocol: p
                    .protocol
                    .clone()
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| "TCP".to_owned()),
                port: p.host_port.unwrap_or(0),
            })
            .collect()
    }
}

/// One node as scheduling sees it.
#[derive(Clone, Debug, Default)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// The Node object; `None` while only its pods are known.
    pub node: Option<Arc<Node>>,
    /// `status.allocatable`.
    pub allocatable: Resource,
    /// The sum of its pods' requests.
    pub requested: Resource,
    /// The sum of its pods' requests as scoring counts them.
    pub non_zero_requested: NonZero,
    /// Its pods (bound and assumed), by uid.
    pub pods: BTreeMap<String, Arc<PodInfo>>,
    /// Host ports in use, with how many pods use each.
    pub used_ports: HashMap<HostPort, usize>,
    /// How many of its pods have pod affinity or anti-affinity terms (InterPodAffinity looks
    /// at their terms only on nodes where this is not 0).
    pub pods_with_affinity: usize,
    /// How many of its pods have required anti-affinity terms.
    pub pods_with_required_anti_affinity: usize,
}

/// Whether a pod has pod affinity or anti-affinity terms, and required anti-affinity ones.
fn affinity_kinds(pod: &PodInfo) -> (bool, bool) {
    let Some(affinity) = pod.spec().affinity.as_ref() else {
        return (false, false);
    };
    let anti = affinity.pod_anti_affinity.as_ref();
    let required_anti = anti
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|terms| !terms.is_empty());
    (
        affinity.pod_affinity.is_some() || anti.is_some(),
        required_anti,
    )
}

impl NodeInfo {
    /// A node with no pods.
    pub fn new(node: Arc<Node>) -> NodeInfo {
        let mut info = NodeInfo {
            name: node.metadata.name.clone().unwrap_or_default(),
            ..NodeInfo::default()
        };
        info.set_node(node);
        info
    }

    /// Replaces the Node object (its allocatable may have changed).
    pub fn set_node(&mut self, node: Arc<Node>) {
        self.allocatable = Resource::allocatable_of(&node);
        self.node = Some(node);
    }

    /// Counts a pod on this node.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        if let Some(old) = self.pods.remove(&pod.uid) {
            self.uncount(&old);
        }
        self.requested.add(&pod.requests);
        self.non_zero_requested.milli_cpu += pod.non_zero.milli_cpu;
        self.non_zero_requested.memory += pod.non_zero.memory;
        for port in &pod.host_ports {
            *self.used_ports.entry(port.clone()).or_default() += 1;
        }
        let (affinity, required_anti) = affinity_kinds(&pod);
        self.pods_with_affinity += usize::from(affinity);
        self.pods_with_required_anti_affinity += usize::from(required_anti);
        self.pods.insert(pod.uid.clone(), pod);
    }

    /// Stops counting a pod; whether it was here.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        match self.pods.remove(uid) {
            Some(old) => {
                self.uncount(&old);
                true
            }
            None => false,
        }
    }

    fn uncount(&mut self, pod: &PodInfo) {
        self.requested.subtract(&pod.requests);
        self.non_zero_requested.milli_cpu -= pod.non_zero.milli_cpu;
        self.non_zero_requested.memory -= pod.non_zero.memory;
        let (affinity, required_anti) = affinity_kinds(pod);
        self.pods_with_affinity -= usize::from(affinity);
        self.pods_with_required_anti_affinity -= usize::from(required_anti);
        for port in &pod.host_ports {
            if let Some(count) = self.used_ports.get_mut(port) {
                *count -= 1;
                if *count == 0 {
                    self.used_ports.remove(port);
                }
            }
        }
    }

    /// The node's taints.
    pub fn taints(&self) -> &[Taint] {
        self.node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[])
    }

    /// The node's labels.
    pub fn labels(&self) -> Option<&BTreeMap<String, String>> {
        self.node.as_ref().and_then(|n| n.metadata.labels.as_ref())
    }

    /// The names of the images the node reports (`status.images[].names`).
    pub fn image_names(&self) -> impl Iterator<Item = &String> {
        image_names(self.node.as_deref())
    }

    /// The size of the image `name` on the node, if it has it.
    pub fn image_size(&self, name: &str) -> Option<i64> {
        self.node
            .as_ref()?
            .status
            .as_ref()?
            .images
            .as_ref()?
            .iter()
            .find(|i| i.names.iter().flatten().any(|n| n == name))
            .map(|i| i.size_bytes.unwrap_or(0))
    }

    /// `spec.unschedulable`.
    pub fn unschedulable(&self) -> bool {
        self.node
            .as_ref()
            .and_then(|n| n.spec.as_ref())
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    }
}

fn image_names(node: Option<&Node>) -> impl Iterator<Item = &String> {
    node.and_then(|n| n.status.as_ref())
        .and_then(|s| s.images.as_ref())
        .into_iter()
        .flatten()
        .flat_map(|i| i.names.iter().flatten())
}

/// Where a pod the cache knows stands.
#[derive(Debug)]
struct PodState {
    node: String,
    /// Placed by this scheduler, not yet seen bound.
    assumed: bool,
}

/// The kinds of controller whose selector a pod's default spreading follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ControllerKind {
    /// core/v1 ReplicationController (`spec.selector` is a map).
    ReplicationController,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// apps/v1 StatefulSet.
    StatefulSet,
}

/// Nodes and the pods on them, bound or assumed; the pods nominated to nodes and the
/// PodDisruptionBudgets preemption respects; and what else of the cluster the plugins
/// read: namespace labels (pod affinity's `namespaceSelector`), how many nodes have each
/// image (ImageLocality), and the selectors of Services and controllers (the default
/// topology spread constraints).
#[derive(Debug, Default)]
pub struct Cache {
    nodes: BTreeMap<String, NodeInfo>,
    pods: HashMap<String, PodState>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    image_nodes: HashMap<String, usize>,
    /// Service selectors by namespace, then name.
    services: HashMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    /// Controller selectors by (kind, namespace, name).
    controllers: HashMap<(ControllerKind, String, String), LabelSelector>,
    /// Pods with pod affinity or anti-affinity terms, over all nodes.
    pods_with_affinity: usize,
    /// Pods with required anti-affinity terms, over all nodes.
    pods_with_required_anti_affinity: usize,
    /// Pods waiting for room their preemption makes.
    pub nominated: Nominator,
    budgets: BTreeMap<String, Budget>,
}

impl Cache {
    /// Adds a node or takes its new version.
    pub fn add_node(&mut self, node: Arc<Node>) {
        let name = node.metadata.name.clone().unwrap_or_default();
        for image in image_names(Some(&node)) {
            *self.image_nodes.entry(image.clone()).or_default() += 1;
        }
        match self.nodes.get_mut(&name) {
            Some(info) => {
                let old = info.node.take();
                for image in image_names(old.as_deref()) {
                    uncount_image(&mut self.image_nodes, image);
                }
                info.set_node(node)
            }
            None => {
                self.nodes.insert(name, NodeInfo::new(node));
            }
        }
    }

    /// Adds a node with its pods as they are (for scoring a list of nodes on their own).
    pub fn insert_node_info(&mut self, info: NodeInfo) {
        for image in image_names(info.node.as_deref()) {
            *self.image_nodes.entry(image.clone()).or_default() += 1;
        }
        self.pods_with_affinity += info.pods_with_affinity;
        self.pods_with_required_anti_affinity += info.pods_with_required_anti_affinity;
        for uid in info.pods.keys() {
            self.pods.insert(
                uid.clone(),
                PodState {
                    node: info.name.clone(),
                    assumed: false,
                },
            );
        }
        self.nodes.insert(info.name.clone(), info);
    }

    /// Whether any pod has pod affinity or anti-affinity terms.
    pub fn any_pod_with_affinity(&self) -> bool {
        self.pods_with_affinity > 0
    }

    /// Whether any pod has required anti-affinity terms.
    pub fn any_pod_with_required_anti_affinity(&self) -> bool {
        self.pods_with_required_anti_affinity > 0
    }

    /// Whether any node reports images.
    pub fn any_images(&self) -> bool {
        !self.image_nodes.is_empty()
    }

    /// How many nodes report the image `name`.
    pub fn nodes_with_image(&self, name: &str) -> usize {
        self.image_nodes.get(name).copied().unwrap_or(0)
    }

    /// Sets a namespace's labels (added or changed).
    pub fn set_namespace(&mut self, name: &str, labels: BTreeMap<String, String>) {
        self.namespaces.insert(name.to_owned(), labels);
    }

    /// Forgets a deleted namespace.
    pub fn remove_namespace(&mut self, name: &str) {
        self.namespaces.remove(name);
    }

    /// The namespaces with their labels.
    pub fn namespaces(&self) -> &BTreeMap<String, BTreeMap<String, String>> {
        &self.namespaces
    }

    /// Sets (or with `None` forgets) a Service's selector.
    pub fn set_service(
        &mut self,
        namespace: &str,
        name: &str,
        selector: Option<BTreeMap<String, String>>,
    ) {
        let services = self.services.entry(namespace.to_owned()).or_default();
        match selector {
            Some(selector) => {
                services.insert(name.to_owned(), selector);
            }
            None => {
                services.remove(name);
            }
        }
    }

    /// The selectors of the Services in `namespace`.
    pub fn service_selectors(
        &self,
        namespace: &str,
    ) -> impl Iterator<Item = &BTreeMap<String, String>> {
        self.services
            .get(namespace)
            .into_iter()
            .flat_map(|s| s.values())
    }

    /// Sets (or with `None` forgets) a controller's selector.
    pub fn set_controller(
        &mut self,
        kind: ControllerKind,
        namespace: &str,
        name: &str,
        selector: Option<LabelSelector>,
    ) {
        let key = (kind, namespace.to_owned(), name.to_owned());
        match selector {
            Some(selector) => {
                self.controllers.insert(key, selector);
            }
            None => {
                self.controllers.remove(&key);
            }
        }
    }

    /// A controller's selector.
    pub fn controller_selector(
        &self,
        kind: ControllerKind,
        namespace: &str,
        name: &str,
    ) -> Option<&LabelSelector> {
        self.controllers
            .get(&(kind, namespace.to_owned(), name.to_owned()))
    }

    /// Removes a node; its pods stay counted until they go too.
    pub fn remove_node(&mut self, name: &str) {
        if let Some(info) = self.nodes.get(name) {
            for image in image_names(info.node.as_deref()) {
                uncount_image(&mut self.image_nodes, image);
            }
        }
        if let Some(info) = self.nodes.get_mut(name) {
            if info.pods.is_empty() {
                self.nodes.remove(name);
            } else {
                info.node = None;
                info.allocatable = Resource::default();
            }
        }
    }

    /// A node by name (also one known only through its pods).
    pub fn node(&self, name: &str) -> Option<&NodeInfo> {
        self.nodes.get(name)
    }

    /// The nodes pods can go to (those whose Node object is known), by name.
    pub fn nodes(&self) -> Vec<&NodeInfo> {
        self.nodes.values().filter(|n| n.node.is_some()).collect()
    }

    /// Adds or replaces the budget `key` (`namespace/name`); `None` removes it.
    pub fn set_budget(&mut self, key: &str, budget: Option<Budget>) {
        match budget {
            Some(budget) => self.budgets.insert(key.to_owned(), budget),
            None => self.budgets.remove(key),
        };
    }

    /// The PodDisruptionBudgets.
    pub fn budgets(&self) -> Vec<Budget> {
        self.budgets.values().cloned().collect()
    }

    /// How many pods the cache counts.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    fn place(&mut self, pod: Arc<PodInfo>, node: &str, assumed: bool) {
        self.remove_pod(&pod.uid);
        let (affinity, required_anti) = affinity_kinds(&pod);
        self.pods_with_affinity += usize::from(affinity);
        self.pods_with_required_anti_affinity += usize::from(required_anti);
        self.nodes
            .entry(node.to_owned())
            .or_insert_with(|| NodeInfo {
                name: node.to_owned(),
                ..NodeInfo::default()
            })
            .add_pod(Arc::clone(&pod));
        self.pods.insert(
            pod.uid.clone(),
            PodState {
                node: node.to_owned(),
                assumed,
            },
        );
    }

    /// Counts `pod` on `node` before the binding is seen.
    pub fn assume(&mut self, pod: Arc<PodInfo>, node: &str) {
        self.place(pod, node, true);
    }

    /// Whether `uid` is placed by this scheduler and not yet seen bound.
    pub fn is_assumed(&self, uid: &str) -> bool {
        self.pods.get(uid).is_some_and(|p| p.assumed)
    }

    /// Drops an assumption (the binding failed); the node it was on, if it was assumed.
    pub fn forget(&mut self, uid: &str) -> Option<String> {
        if self.is_assumed(uid) {
            self.remove_pod(uid)
        } else {
            None
        }
    }

    /// A bound pod as the watch shows it: added, updated, or an assumption confirmed.
    pub fn add_pod(&mut self, pod: Arc<PodInfo>) {
        let Some(node) = pod.node_name().map(str::to_owned) else {
            return;
        };
        self.place(pod, &node, false);
    }

    /// Stops counting a pod; the node it was on.
    pub fn remove_pod(&mut self, uid: &str) -> Option<String> {
        let state = self.pods.remove(uid)?;
        if let Some(info) = self.nodes.get_mut(&state.node) {
            if let Some(old) = info.pods.get(uid) {
                let (affinity, required_anti) = affinity_kinds(old);
                self.pods_with_affinity -= usize::from(affinity);
                self.pods_with_required_anti_affinity -= usize::from(required_anti);
            }
            info.remove_pod(uid);
            if info.node.is_none() && info.pods.is_empty() {
                self.nodes.remove(&state.node);
            }
        }
        Some(state.node)
    }
}

fn uncount_image(counts: &mut HashMap<String, usize>, image: &str) {
    if let Some(count) = counts.get_mut(image) {
        *count -= 1;
        if *count == 0 {
            counts.remove(image);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod};

    fn info(p: crate::testing::PodBuilder) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(p.build())))
    }

    #[test]
    fn assumed_pods_count_until_forgotten_or_confirmed() {
        let mut cache = Cache::default();
        cache.add_node(Arc::new(
            node("n1")
                .allocatable(&[("cpu", "2"), ("memory", "4Gi"), ("pods", "110")])
                .build(),
        ));
        let p = info(
            pod("p")
                .req(&[("cpu", "1"), ("memory", "1Gi")])
                .host_port(80),
        );
        cache.assume(Arc::clone(&p), "n1");
        assert!(cache.is_assumed(&p.uid));
        let n1 = cache.node("n1").unwrap();
        assert_eq!(n1.requested.milli_cpu, 1000);
        assert_eq!(n1.requested.memory, 1 << 30);
        assert_eq!(n1.allocatable.milli_cpu, 2000);
        assert_eq!(n1.allocatable.allowed_pods, 110);
        assert_eq!(n1.used_ports.len(), 1);

        assert_eq!(cache.forget(&p.uid).as_deref(), Some("n1"));
        let n1 = cache.node("n1").unwrap();
        assert_eq!(n1.requested, Resource::default());
        assert!(n1.used_ports.is_empty());
        assert!(n1.pods.is_empty());

        // Assumed, then seen bound: counted once, no longer assumed, not forgettable.
        cache.assume(Arc::clone(&p), "n1");
        cache.add_pod(info(
            pod("p")
                .req(&[("cpu", "1"), ("memory", "1Gi")])
                .host_port(80)
                .node("n1"),
        ));
        assert!(!cache.is_assumed(&p.uid));
        assert_eq!(cache.forget(&p.uid), None);
        assert!(!cache.any_pod_with_affinity());
        assert_eq!(cache.node("n1").unwrap().requested.milli_cpu, 1000);
        assert_eq!(cache.pod_count(), 1);
        assert_eq!(cache.remove_pod(&p.uid).as_deref(), Some("n1"));
        assert_eq!(cache.node("n1").unwrap().requested.milli_cpu, 0);
    }

    #[test]
    fn pods_of_unknown_nodes_wait_for_their_node() {
        let mut cache = Cache::default();
        cache.add_pod(info(pod("p").req(&[("cpu", "1")]).node("later")));
        assert!(cache.nodes().is_empty(), "no Node object yet");
        assert_eq!(cache.node("later").unwrap().requested.milli_cpu, 1000);
        cache.add_node(Arc::new(node("later").allocatable(&[("cpu", "4")]).build()));
        assert_eq!(cache.nodes().len(), 1);
        assert_eq!(cache.nodes()[0].requested.milli_cpu, 1000);
        cache.remove_node("later");
        assert!(cache.nodes().is_empty());
        assert!(cache.node("later").is_some(), "kept while its pod is");
        cache.remove_pod("uid-p");
        assert!(cache.node("later").is_none());
    }

    #[test]
    fn affinity_pods_and_images_are_counted_incrementally() {
        let mut cache = Cache::default();
        let imaged = |size| {
            Arc::new(
                node("n1")
                    .image(&["nginx:latest", "nginx:1.27"], size)
                    .build(),
            )
        };
        cache.add_node(imaged(10));
        cache.add_node(Arc::new(node("n2").image(&["nginx:latest"], 10).build()));
        assert_eq!(cache.nodes_with_image("nginx:latest"), 2);
        cache.add_node(imaged(20));
        assert_eq!(
            cache.nodes_with_image("nginx:1.27"),
            1,
            "an update is not a new node"
        );
        assert_eq!(cache.node("n1").unwrap().image_size("nginx:1.27"), Some(20));
        cache.remove_node("n2");
        assert_eq!(cache.nodes_with_image("nginx:latest"), 1);

        let anti = info(
            pod("anti")
                .node("n1")
                .pod_anti_affinity(crate::testing::affinity_term(
                    "app",
                    "web",
                    "kubernetes.io/hostname",
                )),
        );
        cache.assume(Arc::clone(&anti), "n1");
        assert!(cache.any_pod_with_required_anti_affinity());
        assert_eq!(cache.node("n1").unwrap().pods_with_affinity, 1);
        cache.add_pod(Arc::clone(&anti));
        assert!(
            cache.any_pod_with_affinity(),
            "confirmed, still counted once"
        );
        cache.remove_pod(&anti.uid);
        assert!(!cache.any_pod_with_affinity());
        assert!(!cache.any_pod_with_required_anti_affinity());
        assert_eq!(
            cache.node("n1").unwrap().pods_with_required_anti_affinity,
            0
        );
    }
}
