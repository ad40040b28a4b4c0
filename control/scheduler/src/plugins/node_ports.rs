//! NodePorts: a pod's host ports must be free on the node. A port bound on `0.0.0.0`
//! conflicts with the same protocol and port on any address, as `HostPortInfo.CheckConflict`.

use crate::cache::{HostPort, NodeInfo, BIND_ALL_HOST_IP};
use crate::framework::{FilterPlugin, PodInfo, Status};

/// The filter reason.
pub const ERR_REASON: &str = "node(s) didn't have free ports for the requested pod ports";

/// The NodePorts filter.
pub struct NodePorts;

/// Whether `wanted` is taken on the node.
pub fn conflicts(wanted: &HostPort, node: &NodeInfo) -> bool {
    if wanted.port <= 0 {
        return false;
    }
    if wanted.ip == BIND_ALL_HOST_IP {
        return node
            .used_ports
            .keys()
            .any(|used| used.protocol == wanted.protocol && used.port == wanted.port);
    }
    [BIND_ALL_HOST_IP, wanted.ip.as_str()].iter().any(|ip| {
        node.used_ports.contains_key(&HostPort {
            ip: (*ip).to_owned(),
            protocol: wanted.protocol.clone(),
            port: wanted.port,
        })
    })
}

impl FilterPlugin for NodePorts {
    fn name(&self) -> &'static str {
        "NodePorts"
    }

    fn filter(&self, pod: &PodInfo, node: &NodeInfo) -> Status {
        if pod.host_ports.iter().any(|port| conflicts(port, node)) {
            Status::unschedulable(vec![ERR_REASON.to_owned()])
        } else {
            Status::success()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{node, pod, sidecar, PodBuilder};
    use k8s_openapi::api::core::v1::{Container, ContainerPort};

    fn sidecar_on(port: i32) -> Container {
        Container {
            ports: Some(vec![ContainerPort {
                container_port: port,
                host_port: Some(port),
                ..ContainerPort::default()
            }]),
            ..sidecar(&[])
        }
    }

    #[test]
    fn filter() {
        let taken = Status::unschedulable(vec![ERR_REASON.to_owned()]);
        let cases: Vec<(&str, PodBuilder, Vec<PodBuilder>, Status)> = vec![
            (
                "nothing running",
                pod("p").host_port(8080),
                vec![],
                Status::success(),
            ),
            (
                "other port",
                pod("p").host_port(8080),
                vec![pod("q").host_port(9090)],
                Status::success(),
            ),
            (
                "same port",
                pod("p").host_port(8080),
                vec![pod("q").host_port(8080)],
                taken.clone(),
            ),
            (
                "same port, other protocol",
                pod("p").host_port_on(8080, "UDP", ""),
                vec![pod("q").host_port_on(8080, "TCP", "")],
                Status::success(),
            ),
            (
                "same port on different specific addresses",
                pod("p").host_port_on(8080, "TCP", "127.0.0.1"),
                vec![pod("q").host_port_on(8080, "TCP", "127.0.0.2")],
                Status::success(),
            ),
            (
                "same port and address",
                pod("p").host_port_on(8080, "TCP", "127.0.0.1"),
                vec![pod("q").host_port_on(8080, "TCP", "127.0.0.1")],
                taken.clone(),
            ),
            (
                "all addresses wanted, one taken",
                pod("p").host_port_on(8080, "TCP", "0.0.0.0"),
                vec![pod("q").host_port_on(8080, "TCP", "127.0.0.1")],
                taken.clone(),
            ),
            (
                "one address wanted, all taken",
                pod("p").host_port_on(8080, "TCP", "127.0.0.1"),
                vec![pod("q").host_port(8080)],
                taken.clone(),
            ),
            (
                "a sidecar's host port is taken as long as the pod runs",
                pod("p").host_port(8080),
                vec![pod("q").init_container(sidecar_on(8080))],
                taken.clone(),
            ),
            (
                "an init container's host port is free again once it finished",
                pod("p").host_port(8080),
                vec![pod("q").init_container(Container {
                    restart_policy: None,
                    ..sidecar_on(8080)
                })],
                Status::success(),
            ),
            (
                "no host ports wanted",
                pod("p").req(&[("cpu", "1")]),
                vec![pod("q").host_port(8080)],
                Status::success(),
            ),
        ];
        for (name, p, running, want) in cases {
            let n = node("n").info(running.into_iter().map(|q| q.node("n").build()).collect());
            assert_eq!(NodePorts.filter(&p.info(), &n), want, "{name}");
        }
    }
}
