//! What a name in the cluster domain answers, from the Services and EndpointSlices watched,
//! as the Kubernetes DNS specification (and CoreDNS's `kubernetes` plugin) lays it out:
//!
//! ```text
//! <svc>.<ns>.svc.<domain>                    A      the cluster IP; headless: ready endpoints
//!                                            CNAME  an ExternalName service's name
//! _<port>._<proto>.<svc>.<ns>.svc.<domain>   SRV    one per port (headless: per endpoint)
//! <hostname>.<svc>.<ns>.svc.<domain>         A      a headless service's endpoint by hostname
//! <a-b-c-d>.<svc>.<ns>.svc.<domain>          A      ... or by its dashed address
//! <a-b-c-d>.<ns>.pod.<domain>                A      a.b.c.d
//! d.c.b.a.in-addr.arpa                       PTR    the service holding cluster IP a.b.c.d
//! ```
//!
//! Unknown names in the domain are NXDOMAIN; known names without records of the type asked
//! are NOERROR with no answer; names outside the domain are not ours ([`Resolution::NotOurs`]).

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, CNAME, PTR, SRV};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{ObjectRef, Store};

/// The label naming an EndpointSlice's service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The watched objects the answers come from.
#[derive(Clone)]
pub struct Catalog {
    /// Every Service.
    pub services: Store<Service>,
    /// Every EndpointSlice.
    pub slices: Store<EndpointSlice>,
}

/// How a query resolved.
#[derive(Debug, PartialEq)]
pub enum Resolution {
    /// An answer from the cluster domain (NOERROR with records or none, or NXDOMAIN).
    Answer {
        /// NOERROR or NXDOMAIN.
        code: ResponseCode,
        /// The answer section.
        answers: Vec<Record>,
        /// The additional section (addresses of SRV targets).
        additionals: Vec<Record>,
    },
    /// A name outside the cluster domain: forwarded, or refused without a forwarder.
    NotOurs,
}

impl Resolution {
    fn records(answers: Vec<Record>) -> Resolution {
        Resolution::Answer {
            code: ResponseCode::NoError,
            answers,
            additionals: Vec::new(),
        }
    }

    fn nxdomain() -> Resolution {
        Resolution::Answer {
            code: ResponseCode::NXDomain,
            answers: Vec::new(),
            additionals: Vec::new(),
        }
    }
}

/// One ready endpoint of a headless service.
struct Endpoint {
    ip: Ipv4Addr,
    hostname: Option<String>,
    ports: Vec<(String, String, u16)>,
}

impl Endpoint {
    /// Its label under the service: the hostname, else the dashed address.
    fn label(&self) -> String {
        self.hostname
            .clone()
            .unwrap_or_else(|| self.ip.to_string().replace('.', "-"))
    }
}

/// The resolver: the catalog, the domain and the TTL.
#[derive(Clone)]
pub struct Resolver {
    /// The watched objects.
    pub catalog: Catalog,
    /// The cluster domain, lower case, without dots at either end (`cluster.local`).
    pub domain: String,
    /// The TTL of every record, seconds.
    pub ttl: u32,
}

fn parse_dashed(label: &str) -> Option<Ipv4Addr> {
    Ipv4Addr::from_str(&label.replace('-', ".")).ok()
}

impl Resolver {
    /// Answers `name` of type `qtype`.
    pub fn resolve(&self, name: &Name, qtype: RecordType) -> Resolution {
        let text = name.to_lowercase().to_ascii();
        let text = text.trim_end_matches('.');
        if let Some(reverse) = text.strip_suffix(".in-addr.arpa") {
            return self.reverse(name, reverse, qtype);
        }
        let rest = if text == self.domain {
            ""
        } else {
            match text.strip_suffix(&format!(".{}", self.domain)) {
                Some(rest) => rest,
                None => return Resolution::NotOurs,
            }
        };
        let labels: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('.').collect()
        };
        match labels.as_slice() {
            [] | ["svc"] | ["pod"] | [_, "svc"] | [_, "pod"] => Resolution::records(Vec::new()),
            [service, namespace, "svc"] => self.service(name, namespace, service, qtype),
            [port, protocol, service, namespace, "svc"]
                if port.starts_with('_') && protocol.starts_with('_') =>
            {
                self.srv(name, namespace, service, &port[1..], &protocol[1..], qtype)
            }
            [endpoint, service, namespace, "svc"] => {
                self.endpoint(name, namespace, service, endpoint, qtype)
            }
            [dashed, _namespace, "pod"] => match parse_dashed(dashed) {
                Some(ip) => Resolution::records(self.a_if(name, ip, qtype)),
                None => Resolution::nxdomain(),
            },
            _ => Resolution::nxdomain(),
        }
    }

    fn record(&self, name: &Name, data: RData) -> Record {
        Record::from_rdata(name.clone(), self.ttl, data)
    }

    fn a_if(&self, name: &Name, ip: Ipv4Addr, qtype: RecordType) -> Vec<Record> {
        if matches!(qtype, RecordType::A | RecordType::ANY) {
            vec![self.record(name, RData::A(A(ip)))]
        } else {
            Vec::new()
        }
    }

    fn find_service(&self, namespace: &str, name: &str) -> Option<Arc<Service>> {
        self.catalog
            .services
            .get(&ObjectRef::new(name).within(namespace))
    }

    fn service_fqdn(&self, namespace: &str, service: &str) -> Option<Name> {
        Name::from_ascii(format!("{service}.{namespace}.svc.{}.", self.domain)).ok()
    }

    /// The ready endpoints of a service (all of them when it publishes not-ready addresses).
    fn endpoints(&self, namespace: &str, service: &Service) -> Vec<Endpoint> {
        let name = service.metadata.name.as_deref().unwrap_or("");
        let publish_not_ready = service
            .spec
            .as_ref()
            .and_then(|s| s.publish_not_ready_addresses)
            .unwrap_or(false);
        let mut found = Vec::new();
        for slice in self.catalog.slices.state() {
            let labels = slice.metadata.labels.as_ref();
            if slice.metadata.namespace.as_deref() != Some(namespace)
                || labels
                    .and_then(|l| l.get(SERVICE_NAME_LABEL))
                    .map(String::as_str)
                    != Some(name)
                || slice.address_type != "IPv4"
            {
                continue;
            }
            let ports: Vec<(String, String, u16)> = slice
                .ports
                .iter()
                .flatten()
                .filter_map(|p| {
                    let number = u16::try_from(p.port?).ok()?;
                    Some((
                        p.name.clone().unwrap_or_default(),
                        p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                        number,
                    ))
                })
                .collect();
            for endpoint in &slice.endpoints {
                // kube: an unknown readiness counts as ready.
                let ready = endpoint
                    .conditions
                    .as_ref()
                    .and_then(|c| c.ready)
                    .unwrap_or(true);
                if !ready && !publish_not_ready {
                    continue;
                }
                for address in &endpoint.addresses {
                    if let Ok(ip) = address.parse() {
                        found.push(Endpoint {
                            ip,
                            hostname: endpoint.hostname.clone(),
                            ports: ports.clone(),
                        });
                    }
                }
            }
        }
        found.sort_by_key(|e| e.ip);
        found.dedup_by_key(|e| e.ip);
        found
    }

    fn service(
        &self,
        name: &Name,
        namespace: &str,
        service: &str,
        qtype: RecordType,
    ) -> Resolution {
        let Some(svc) = self.find_service(namespace, service) else {
            return Resolution::nxdomain();
        };
        let spec = svc.spec.clone().unwrap_or_default();
        if spec.type_.as_deref() == Some("ExternalName") {
            let target = spec
                .external_name
                .as_deref()
                .and_then(|n| Name::from_ascii(format!("{}.", n.trim_end_matches('.'))).ok());
            return Resolution::records(match target {
                Some(target) if qtype != RecordType::SRV => {
                    vec![self.record(name, RData::CNAME(CNAME(target)))]
                }
                _ => Vec::new(),
            });
        }
        match spec.cluster_ip.as_deref() {
            Some("None") => {
                let answers = self
                    .endpoints(namespace, &svc)
                    .iter()
                    .flat_map(|e| self.a_if(name, e.ip, qtype))
                    .collect();
                Resolution::records(answers)
            }
            Some(ip) => match ip.parse() {
                Ok(ip) => Resolution::records(self.a_if(name, ip, qtype)),
                Err(_) => Resolution::records(Vec::new()),
            },
            None => Resolution::records(Vec::new()),
        }
    }

    fn srv(
        &self,
        name: &Name,
        namespace: &str,
        service: &str,
        port: &str,
        protocol: &str,
        qtype: RecordType,
    ) -> Resolution {
        let Some(svc) = self.find_service(namespace, service) else {
            return Resolution::nxdomain();
        };
        let spec = svc.spec.clone().unwrap_or_default();
        let matches = |p_name: &str, p_protocol: &str| {
            p_name.eq_ignore_ascii_case(port) && p_protocol.eq_ignore_ascii_case(protocol)
        };
        let Some(fqdn) = self.service_fqdn(namespace, service) else {
            return Resolution::nxdomain();
        };
        let wants_srv = matches!(qtype, RecordType::SRV | RecordType::ANY);
        let mut answers = Vec::new();
        let mut additionals = Vec::new();
        if spec.cluster_ip.as_deref() == Some("None") {
            for endpoint in self.endpoints(namespace, &svc) {
                let Some(&(_, _, number)) = endpoint.ports.iter().find(|(n, p, _)| matches(n, p))
                else {
                    continue;
                };
                let Ok(target) =
                    Name::from_ascii(endpoint.label()).and_then(|l| l.append_domain(&fqdn))
                else {
                    continue;
                };
                if wants_srv {
                    answers.push(
                        self.record(name, RData::SRV(SRV::new(0, 100, number, target.clone()))),
                    );
                    additionals.push(self.record(&target, RData::A(A(endpoint.ip))));
                }
            }
        } else {
            let number = spec
                .ports
                .iter()
                .flatten()
                .find(|p| {
                    matches(
                        p.name.as_deref().unwrap_or(""),
                        p.protocol.as_deref().unwrap_or("TCP"),
                    )
                })
                .and_then(|p| u16::try_from(p.port).ok());
            let Some(number) = number else {
                return Resolution::nxdomain();
            };
            if wants_srv {
                answers.push(self.record(name, RData::SRV(SRV::new(0, 100, number, fqdn.clone()))));
                if let Some(Ok(ip)) = spec.cluster_ip.as_deref().map(str::parse::<Ipv4Addr>) {
                    additionals.push(self.record(&fqdn, RData::A(A(ip))));
                }
            }
        }
        if answers.is_empty() && wants_srv {
            return Resolution::nxdomain();
        }
        Resolution::Answer {
            code: ResponseCode::NoError,
            answers,
            additionals,
        }
    }

    fn endpoint(
        &self,
        name: &Name,
        namespace: &str,
        service: &str,
        label: &str,
        qtype: RecordType,
    ) -> Resolution {
        let Some(svc) = self.find_service(namespace, service) else {
            return Resolution::nxdomain();
        };
        let found = self
            .endpoints(namespace, &svc)
            .into_iter()
            .find(|e| e.label() == label || parse_dashed(label) == Some(e.ip));
        match found {
            Some(endpoint) => Resolution::records(self.a_if(name, endpoint.ip, qtype)),
            None => Resolution::nxdomain(),
        }
    }

    /// PTR for a cluster IP; other addresses are not ours.
    fn reverse(&self, name: &Name, reverse: &str, qtype: RecordType) -> Resolution {
        let mut octets: Vec<&str> = reverse.split('.').collect();
        octets.reverse();
        let Ok(ip) = octets.join(".").parse::<Ipv4Addr>() else {
            return Resolution::NotOurs;
        };
        let ip = ip.to_string();
        let holder = self.catalog.services.state().into_iter().find(|s| {
            s.spec.as_ref().and_then(|spec| spec.cluster_ip.as_deref()) == Some(ip.as_str())
        });
        let Some(holder) = holder else {
            return Resolution::NotOurs;
        };
        let namespace = holder.metadata.namespace.as_deref().unwrap_or("");
        let service = holder.metadata.name.as_deref().unwrap_or("");
        let Some(target) = self.service_fqdn(namespace, service) else {
            return Resolution::NotOurs;
        };
        if matches!(qtype, RecordType::PTR | RecordType::ANY) {
            Resolution::records(vec![self.record(name, RData::PTR(PTR(target)))])
        } else {
            Resolution::records(Vec::new())
        }
    }
}

#[cfg(test)]
mod tests;
