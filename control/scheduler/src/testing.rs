//! Builders for the table tests, after kube-scheduler's `st.MakePod()` / `st.MakeNode()`.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerImage, ContainerPort, Node, NodeAffinity, NodeSelector,
    NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, NodeStatus, Pod, PodAffinity,
    PodAffinityTerm, PodAntiAffinity, PodSpec, PreferredSchedulingTerm, ResourceRequirements,
    Taint, Toleration, TopologySpreadConstraint, WeightedPodAffinityTerm,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};

use crate::cache::Cache;

use crate::cache::NodeInfo;
use crate::framework::PodInfo;

fn quantities(list: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    list.iter()
        .map(|(name, value)| ((*name).to_owned(), Quantity((*value).to_owned())))
        .collect()
}

/// A container asking for `requests`.
pub fn container(requests: &[(&str, &str)]) -> Container {
    Container {
        name: "c".into(),
        image: Some("busybox".into()),
        resources: Some(ResourceRequirements {
            requests: Some(quantities(requests)),
            ..ResourceRequirements::default()
        }),
        ..Container::default()
    }
}

/// A sidecar: an init container with `restartPolicy: Always`.
pub fn sidecar(requests: &[(&str, &str)]) -> Container {
    Container {
        restart_policy: Some("Always".into()),
        ..container(requests)
    }
}

/// A pod under construction.
#[derive(Clone)]
pub struct PodBuilder(Pod);

/// A pod `name` in `default`, uid `uid-<name>`, for the default scheduler.
pub fn pod(name: &str) -> PodBuilder {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.into());
    pod.metadata.namespace = Some("default".into());
    pod.metadata.uid = Some(format!("uid-{name}"));
    pod.spec = Some(PodSpec {
        scheduler_name: Some("default-scheduler".into()),
        ..PodSpec::default()
    });
    PodBuilder(pod)
}

impl PodBuilder {
    fn spec_mut(&mut self) -> &mut PodSpec {
        self.0.spec.get_or_insert_with(PodSpec::default)
    }

    fn node_affinity(&mut self) -> &mut NodeAffinity {
        self.spec_mut()
            .affinity
            .get_or_insert_with(Affinity::default)
            .node_affinity
            .get_or_insert_with(NodeAffinity::default)
    }

    /// Adds a container.
    pub fn container(mut self, container: Container) -> Self {
        self.spec_mut().containers.push(container);
        self
    }

    /// Adds a container asking for `requests`.
    pub fn req(self, requests: &[(&str, &str)]) -> Self {
        self.container(container(requests))
    }

    /// Adds an init container.
    pub fn init_container(mut self, container: Container) -> Self {
        self.spec_mut()
            .init_containers
            .get_or_insert_with(Vec::new)
            .push(container);
        self
    }

    /// Sets the pod overhead.
    pub fn overhead(mut self, overhead: &[(&str, &str)]) -> Self {
        self.spec_mut().overhead = Some(quantities(overhead));
        self
    }

    /// Adds a toleration (`operator` "" means Equal).
    pub fn toleration(mut self, key: &str, operator: &str, value: &str, effect: &str) -> Self {
        let toleration = Toleration {
            key: Some(key.into()).filter(|k: &String| !k.is_empty()),
            operator: Some(operator.into()).filter(|o: &String| !o.is_empty()),
            value: Some(value.into()).filter(|v: &String| !v.is_empty()),
            effect: Some(effect.into()).filter(|e: &String| !e.is_empty()),
            ..Toleration::default()
        };
        self.spec_mut()
            .tolerations
            .get_or_insert_with(Vec::new)
            .push(toleration);
        self
    }

    /// Adds a `nodeSelector` entry.
    pub fn node_selector(mut self, key: &str, value: &str) -> Self {
        self.spec_mut()
            .node_selector
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self
    }

    /// Sets the required node affinity terms.
    pub fn required_terms(mut self, terms: Vec<NodeSelectorTerm>) -> Self {
        self.node_affinity()
            .required_during_scheduling_ignored_during_execution = Some(NodeSelector {
            node_selector_terms: terms,
        });
        self
    }

    /// Adds a preferred node affinity term.
    pub fn preferred_term(mut self, weight: i32, preference: NodeSelectorTerm) -> Self {
        self.node_affinity()
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(PreferredSchedulingTerm { weight, preference });
        self
    }

    /// Adds a container taking TCP `port` on all host addresses.
    pub fn host_port(self, port: i32) -> Self {
        self.host_port_on(port, "TCP", "")
    }

    /// Adds a container taking `port`/`protocol` on `ip` ("" for all).
    pub fn host_port_on(mut self, port: i32, protocol: &str, ip: &str) -> Self {
        let container = Container {
            name: format!("port-{port}"),
            ports: Some(vec![ContainerPort {
                container_port: port,
                host_port: Some(port),
                protocol: Some(protocol.into()).filter(|p: &String| !p.is_empty()),
                host_ip: Some(ip.into()).filter(|i: &String| !i.is_empty()),
                ..ContainerPort::default()
            }]),
            ..Container::default()
        };
        self.spec_mut().containers.push(container);
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self
    }

    /// Moves the pod to `namespace`.
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.0.metadata.namespace = Some(namespace.into());
        self
    }

    /// Sets the controller owner reference.
    pub fn owner(mut self, api_version: &str, kind: &str, name: &str) -> Self {
        self.0.metadata.owner_references = Some(vec![OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            controller: Some(true),
            ..OwnerReference::default()
        }]);
        self
    }

    fn affinity(&mut self) -> &mut Affinity {
        self.spec_mut()
            .affinity
            .get_or_insert_with(Affinity::default)
    }

    /// Adds a required pod affinity term.
    pub fn pod_affinity(mut self, term: PodAffinityTerm) -> Self {
        self.affinity()
            .pod_affinity
            .get_or_insert_with(PodAffinity::default)
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(term);
        self
    }

    /// Adds a required pod anti-affinity term.
    pub fn pod_anti_affinity(mut self, term: PodAffinityTerm) -> Self {
        self.affinity()
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default)
            .required_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(term);
        self
    }

    /// Adds a preferred pod affinity term.
    pub fn preferred_pod_affinity(mut self, weight: i32, term: PodAffinityTerm) -> Self {
        self.affinity()
            .pod_affinity
            .get_or_insert_with(PodAffinity::default)
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(WeightedPodAffinityTerm {
                weight,
                pod_affinity_term: term,
            });
        self
    }

    /// Adds a preferred pod anti-affinity term.
    pub fn preferred_pod_anti_affinity(mut self, weight: i32, term: PodAffinityTerm) -> Self {
        self.affinity()
            .pod_anti_affinity
            .get_or_insert_with(PodAntiAffinity::default)
            .preferred_during_scheduling_ignored_during_execution
            .get_or_insert_with(Vec::new)
            .push(WeightedPodAffinityTerm {
                weight,
                pod_affinity_term: term,
            });
        self
    }

    /// Adds a topology spread constraint over pods `selector` selects.
    pub fn spread(mut self, max_skew: i32, key: &str, when: &str, selector: LabelSelector) -> Self {
        self.spec_mut()
            .topology_spread_constraints
            .get_or_insert_with(Vec::new)
            .push(TopologySpreadConstraint {
                max_skew,
                topology_key: key.into(),
                when_unsatisfiable: when.into(),
                label_selector: Some(selector),
                ..TopologySpreadConstraint::default()
            });
        self
    }

    /// Adds a topology spread constraint as given.
    pub fn spread_constraint(mut self, constraint: TopologySpreadConstraint) -> Self {
        self.spec_mut()
            .topology_spread_constraints
            .get_or_insert_with(Vec::new)
            .push(constraint);
        self
    }

    /// Adds a container running `image`.
    pub fn image(mut self, image: &str) -> Self {
        let containers = &mut self.spec_mut().containers;
        containers.push(Container {
            name: format!("c{}", containers.len()),
            image: Some(image.into()),
            ..Container::default()
        });
        self
    }

    /// Sets `spec.priority`.
    pub fn priority(mut self, priority: i32) -> Self {
        self.spec_mut().priority = Some(priority);
        self
    }

    /// Sets `spec.preemptionPolicy`.
    pub fn preemption_policy(mut self, policy: &str) -> Self {
        self.spec_mut().preemption_policy = Some(policy.into());
        self
    }

    /// Sets `status.startTime`, in seconds since the epoch.
    pub fn started(mut self, seconds: i64) -> Self {
        let time = k8s_openapi::jiff::Timestamp::from_second(seconds).expect("a valid time");
        self.0
            .status
            .get_or_insert_with(Default::default)
            .start_time = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(time));
        self
    }

    /// Marks the pod as being deleted after the scheduler preempted it.
    pub fn preempted(mut self) -> Self {
        self.0.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        self.0
            .status
            .get_or_insert_with(Default::default)
            .conditions
            .get_or_insert_with(Vec::new)
            .push(k8s_openapi::api::core::v1::PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                reason: Some("PreemptionByScheduler".into()),
                ..Default::default()
            });
        self
    }

    /// Sets `spec.nodeName`.
    pub fn node(mut self, node: &str) -> Self {
        self.spec_mut().node_name = Some(node.into());
        self
    }

    /// The spec.
    pub fn spec(self) -> PodSpec {
        self.0.spec.unwrap_or_default()
    }

    /// The pod.
    pub fn build(self) -> Pod {
        self.0
    }

    /// The pod, worked out for scheduling.
    pub fn info(self) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(Arc::new(self.0)))
    }
}

/// A node under construction.
#[derive(Clone)]
pub struct NodeBuilder(Node);

/// A node `name` with nothing allocatable.
pub fn node(name: &str) -> NodeBuilder {
    let mut node = Node::default();
    node.metadata.name = Some(name.into());
    node.spec = Some(NodeSpec::default());
    node.status = Some(NodeStatus::default());
    NodeBuilder(node)
}

impl NodeBuilder {
    /// Sets capacity and allocatable.
    pub fn allocatable(mut self, list: &[(&str, &str)]) -> Self {
        let status = self.0.status.get_or_insert_with(NodeStatus::default);
        status.allocatable = Some(quantities(list));
        status.capacity = Some(quantities(list));
        self
    }

    /// Adds a taint.
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        let spec = self.0.spec.get_or_insert_with(NodeSpec::default);
        spec.taints.get_or_insert_with(Vec::new).push(Taint {
            key: key.into(),
            value: Some(value.into()).filter(|v: &String| !v.is_empty()),
            effect: effect.into(),
            ..Taint::default()
        });
        self
    }

    /// Adds a label.
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.0
            .metadata
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(key.into(), value.into());
        self
    }

    /// Adds an image the node reports, under `names`, of `size` bytes.
    pub fn image(mut self, names: &[&str], size: i64) -> Self {
        let status = self.0.status.get_or_insert_with(NodeStatus::default);
        status
            .images
            .get_or_insert_with(Vec::new)
            .push(ContainerImage {
                names: Some(names.iter().map(|n| (*n).to_owned()).collect()),
                size_bytes: Some(size),
            });
        self
    }

    /// Sets `spec.unschedulable`.
    pub fn unschedulable(mut self) -> Self {
        self.0
            .spec
            .get_or_insert_with(NodeSpec::default)
            .unschedulable = Some(true);
        self
    }

    /// The node.
    pub fn build(self) -> Node {
        self.0
    }

    /// The node with these pods on it.
    pub fn info(self, pods: Vec<Pod>) -> NodeInfo {
        let mut info = NodeInfo::new(Arc::new(self.0));
        for pod in pods {
            info.add_pod(Arc::new(PodInfo::new(Arc::new(pod))));
        }
        info
    }
}

/// A node selector term of `matchExpressions` (key, operator, values).
pub fn term(expressions: &[(&str, &str, &[&str])]) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: Some(requirements(expressions)),
        match_fields: None,
    }
}

/// A node selector term of `matchFields`.
pub fn field_term(fields: &[(&str, &str, &[&str])]) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_expressions: None,
        match_fields: Some(requirements(fields)),
    }
}

fn requirements(list: &[(&str, &str, &[&str])]) -> Vec<NodeSelectorRequirement> {
    list.iter()
        .map(|(key, operator, values)| NodeSelectorRequirement {
            key: (*key).into(),
            operator: (*operator).into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        })
        .collect()
}

/// A label selector of `matchLabels`.
pub fn selector(labels: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..LabelSelector::default()
    }
}

/// A pod affinity term: pods labelled `key=value` (in the owner's namespace), per
/// `topology_key`.
pub fn affinity_term(key: &str, value: &str, topology_key: &str) -> PodAffinityTerm {
    PodAffinityTerm {
        label_selector: Some(selector(&[(key, value)])),
        topology_key: topology_key.into(),
        ..PodAffinityTerm::default()
    }
}

/// A cache of `nodes` with `pods` bound where their `spec.nodeName` says.
pub fn cache_of(nodes: Vec<NodeBuilder>, pods: Vec<PodBuilder>) -> Cache {
    let mut cache = Cache::default();
    for node in nodes {
        cache.add_node(Arc::new(node.build()));
    }
    for pod in pods {
        cache.add_pod(pod.info());
    }
    cache
}
