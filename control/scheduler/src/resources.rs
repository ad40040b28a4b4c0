//! What a pod asks for and what a node offers, counted as kube-scheduler counts them
//! (`framework.Resource`, `resourcehelper.PodRequests`).
//!
//! A pod's request is the larger of (a) its containers' requests summed with its sidecars
//! (restartable init containers) and (b) each init container's request plus the sidecars
//! started before it; then the pod overhead is added. Scoring counts a container that asks for
//! no cpu or memory as asking for 100m and 200Mi ([`NonZero`]), so empty pods still spread.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Node, PodSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::quantity;

/// `cpu`.
pub const CPU: &str = "cpu";
/// `memory`.
pub const MEMORY: &str = "memory";
/// `ephemeral-storage`.
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
/// `pods`: how many pods a node takes.
pub const PODS: &str = "pods";

/// The cpu a container without a cpu request counts as when scoring (schedutil's default).
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// The memory a container without a memory request counts as when scoring: 200Mi.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

/// A collection of compute resources: cpu in millicores, the rest in whole units.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    /// Millicores.
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
    /// Bytes.
    pub ephemeral_storage: i64,
    /// How many pods (a node's allocatable `pods`; unused in a pod's request).
    pub allowed_pods: i64,
    /// Extended resources, hugepages and other scalar resources, by name.
    pub scalar: BTreeMap<String, i64>,
}

impl Resource {
    /// A resource list (`allocatable`, a pod's aggregated requests) as a `Resource`; names
    /// kube-scheduler does not count are dropped.
    pub fn from_milli(list: &BTreeMap<String, i128>) -> Resource {
        let mut resource = Resource::default();
        for (name, &milli) in list {
            match name.as_str() {
                CPU => resource.milli_cpu = quantity::clamp(milli),
                MEMORY => resource.memory = quantity::whole_units(milli),
                EPHEMERAL_STORAGE => resource.ephemeral_storage = quantity::whole_units(milli),
                PODS => resource.allowed_pods = quantity::whole_units(milli),
                _ if is_scalar_resource_name(name) => {
                    resource
                        .scalar
                        .insert(name.clone(), quantity::whole_units(milli));
                }
                _ => {}
            }
        }
        resource
    }

    /// A node's allocatable resources.
    pub fn allocatable_of(node: &Node) -> Resource {
        let list = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .map(to_milli)
            .unwrap_or_default();
        Resource::from_milli(&list)
    }

    /// Adds `other` in every dimension.
    pub fn add(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_add(other.milli_cpu);
        self.memory = self.memory.saturating_add(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_add(other.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.saturating_add(other.allowed_pods);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = entry.saturating_add(*value);
        }
    }

    /// Takes `other` away in every dimension.
    pub fn subtract(&mut self, other: &Resource) {
        self.milli_cpu = self.milli_cpu.saturating_sub(other.milli_cpu);
        self.memory = self.memory.saturating_sub(other.memory);
        self.ephemeral_storage = self
            .ephemeral_storage
            .saturating_sub(other.ephemeral_storage);
        self.allowed_pods = self.allowed_pods.saturating_sub(other.allowed_pods);
        for (name, value) in &other.scalar {
            let entry = self.scalar.entry(name.clone()).or_default();
            *entry = entry.saturating_sub(*value);
        }
    }

    /// A scalar resource's amount (0 when absent).
    pub fn scalar(&self, name: &str) -> i64 {
        self.scalar.get(name).copied().unwrap_or(0)
    }

    /// Whether nothing at all is asked for (a best-effort pod).
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalar.values().all(|v| *v == 0)
    }
}

/// The cpu and memory a pod counts for when scoring: requests with 100m / 200Mi put in for
/// containers that ask for none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NonZero {
    /// Millicores.
    pub milli_cpu: i64,
    /// Bytes.
    pub memory: i64,
}

/// `resourcehelper.IsScalarResourceName`: extended resources (`example.com/gpu`), prefixed
/// native ones (`kubernetes.io/...`), hugepages and attachable volumes.
pub fn is_scalar_resource_name(name: &str) -> bool {
    let extended =
        name.contains('/') && !name.contains("kubernetes.io/") && !name.starts_with("requests.");
    extended
        || name.starts_with("hugepages-")
        || name.contains("kubernetes.io/")
        || name.starts_with("attachable-volumes-")
}

fn to_milli(list: &BTreeMap<String, Quantity>) -> BTreeMap<String, i128> {
    list.iter()
        .map(|(name, q)| (name.clone(), quantity::milli(q)))
        .collect()
}

fn add_into(sum: &mut BTreeMap<String, i128>, list: &BTreeMap<String, i128>) {
    for (name, value) in list {
        *sum.entry(name.clone()).or_default() += value;
    }
}

fn max_into(max: &mut BTreeMap<String, i128>, list: &BTreeMap<String, i128>) {
    for (name, value) in list {
        let entry = max.entry(name.clone()).or_insert(*value);
        *entry = (*entry).max(*value);
    }
}

/// A container's requests, with the scoring defaults put in for cpu and memory if asked.
fn container_requests(container: &Container, non_missing: bool) -> BTreeMap<String, i128> {
    let mut requests = container
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .map(to_milli)
        .unwrap_or_default();
    if non_missing {
        requests
            .entry(CPU.to_owned())
            .or_insert(i128::from(DEFAULT_MILLI_CPU_REQUEST));
        requests
            .entry(MEMORY.to_owned())
            .or_insert(i128::from(DEFAULT_MEMORY_REQUEST) * 1000);
    }
    requests
}

/// `resourcehelper.PodRequests`: the pod's requests in thousandths, by resource name.
fn pod_requests_milli(spec: &PodSpec, non_missing: bool) -> BTreeMap<String, i128> {
    let mut requests = BTreeMap::new();
    for container in &spec.containers {
        add_into(&mut requests, &container_requests(container, non_missing));
    }
    // Init containers run one at a time, each beside the sidecars started before it;
    // sidecars keep running, so they also add to the regular containers' sum.
    let mut sidecars = BTreeMap::new();
    let mut init_max = BTreeMap::new();
    for container in spec.init_containers.iter().flatten() {
        let own = container_requests(container, non_missing);
        let while_running = if container.restart_policy.as_deref() == Some("Always") {
            add_into(&mut requests, &own);
            add_into(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut with_sidecars = own;
            add_into(&mut with_sidecars, &sidecars);
            with_sidecars
        };
        max_into(&mut init_max, &while_running);
    }
    max_into(&mut requests, &init_max);
    if let Some(overhead) = &spec.overhead {
        add_into(&mut requests, &to_milli(overhead));
    }
    requests.remove(PODS);
    requests
}

/// What a pod asks a node for, as the NodeResourcesFit filter and a node's `requested` count it.
pub fn pod_requests(spec: &PodSpec) -> Resource {
    Resource::from_milli(&pod_requests_milli(spec, false))
}

/// The pod's cpu and memory for scoring, with defaults for containers that ask for none.
pub fn pod_non_zero_requests(spec: &PodSpec) -> NonZero {
    let requests = Resource::from_milli(&pod_requests_milli(spec, true));
    NonZero {
        milli_cpu: requests.milli_cpu,
        memory: requests.memory,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{container, pod, sidecar};

    struct Case {
        name: &'static str,
        spec: PodSpec,
        want: Resource,
        want_non_zero: NonZero,
    }

    fn cpu_mem(milli_cpu: i64, memory: i64) -> Resource {
        Resource {
            milli_cpu,
            memory,
            ..Resource::default()
        }
    }

    #[test]
    fn pod_requests_count_init_containers_sidecars_and_overhead() {
        let cases = vec![
            Case {
                name: "no requests",
                spec: pod("p").container(container(&[])).spec(),
                want: Resource::default(),
                want_non_zero: NonZero {
                    milli_cpu: 100,
                    memory: 200 * 1024 * 1024,
                },
            },
            Case {
                name: "containers are summed",
                spec: pod("p")
                    .container(container(&[("cpu", "1"), ("memory", "1Gi")]))
                    .container(container(&[("cpu", "500m")]))
                    .spec(),
                want: cpu_mem(1500, 1 << 30),
                want_non_zero: NonZero {
                    milli_cpu: 1500,
                    memory: (1 << 30) + 200 * 1024 * 1024,
                },
            },
            Case {
                // The example of computePodResourceRequest: max(sum, each init) per dimension.
                name: "init containers take the max",
                spec: pod("p")
                    .init_container(container(&[("cpu", "2"), ("memory", "1G")]))
                    .init_container(container(&[("cpu", "2"), ("memory", "3G")]))
                    .container(container(&[("cpu", "2"), ("memory", "1G")]))
                    .container(container(&[("cpu", "1"), ("memory", "1G")]))
                    .spec(),
                want: cpu_mem(3000, 3_000_000_000),
                want_non_zero: NonZero {
                    milli_cpu: 3000,
                    memory: 3_000_000_000,
                },
            },
            Case {
                name: "sidecars add to the containers and to later init containers",
                spec: pod("p")
                    .init_container(sidecar(&[("cpu", "1")]))
                    .init_container(container(&[("cpu", "3")]))
                    .container(container(&[("cpu", "1")]))
                    .spec(),
                // max(1 + 1, 3 + 1) = 4
                want: cpu_mem(4000, 0),
                want_non_zero: NonZero {
                    milli_cpu: 4000,
                    memory: 2 * 200 * 1024 * 1024,
                },
            },
            Case {
                name: "overhead is added",
                spec: pod("p")
                    .container(container(&[("cpu", "1")]))
                    .overhead(&[("cpu", "250m"), ("memory", "120Mi")])
                    .spec(),
                want: cpu_mem(1250, 120 * 1024 * 1024),
                want_non_zero: NonZero {
                    milli_cpu: 1250,
                    memory: 320 * 1024 * 1024,
                },
            },
            Case {
                name: "extended and ephemeral-storage",
                spec: pod("p")
                    .container(container(&[
                        ("example.com/gpu", "2"),
                        ("ephemeral-storage", "1Gi"),
                        ("hugepages-2Mi", "4Mi"),
                        ("unknown", "5"),
                    ]))
                    .spec(),
                want: Resource {
                    ephemeral_storage: 1 << 30,
                    scalar: [
                        ("example.com/gpu".to_owned(), 2),
                        ("hugepages-2Mi".to_owned(), 4 << 20),
                    ]
                    .into(),
                    ..Resource::default()
                },
                want_non_zero: NonZero {
                    milli_cpu: 100,
                    memory: 200 * 1024 * 1024,
                },
            },
        ];
        for case in cases {
            assert_eq!(pod_requests(&case.spec), case.want, "{}", case.name);
            assert_eq!(
                pod_non_zero_requests(&case.spec),
                case.want_non_zero,
                "{}",
                case.name
            );
        }
    }

    #[test]
    fn scalar_resource_names() {
        for (name, want) in [
            ("example.com/gpu", true),
            ("nvidia.com/gpu", true),
            ("hugepages-1Gi", true),
            ("kubernetes.io/something", true),
            ("attachable-volumes-csi-x", true),
            ("cpu", false),
            ("foo", false),
            ("requests.example.com/x", false),
        ] {
            assert_eq!(is_scalar_resource_name(name), want, "{name}");
        }
    }
}
