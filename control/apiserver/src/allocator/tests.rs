//! The allocator against an in-memory store with etcd's compare-and-swap rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::json;

use super::*;
use crate::storage::{Page, StorageResult, StoredValue, WatchBatch, Written};

/// Keys with their mod revisions; enough of etcd for claims.
#[derive(Default)]
struct MemoryStore {
    state: Mutex<(i64, BTreeMap<Vec<u8>, StoredValue>)>,
}

impl MemoryStore {
    fn write(&self, key: Vec<u8>, value: Vec<u8>, expected: Option<i64>) -> Written {
        let mut state = self.state.lock().unwrap();
        let current = state.1.get(&key).cloned();
        let matches = match expected {
            None => current.is_none(),
            Some(revision) => current.as_ref().is_some_and(|c| c.mod_revision == revision),
        };
        if !matches {
            return Written::Conflict { current };
        }
        state.0 += 1;
        let revision = state.0;
        state.1.insert(
            key.clone(),
            StoredValue {
                key,
                value,
                mod_revision: revision,
            },
        );
        Written::Done { revision }
    }
}

impl Storage for MemoryStore {
    fn range(
        &self,
        start: Vec<u8>,
        end: Vec<u8>,
        _revision: i64,
        limit: i64,
    ) -> BoxFuture<'_, StorageResult<Page>> {
        let state = self.state.lock().unwrap();
        let items: Vec<StoredValue> = if end.is_empty() {
            state.1.get(&start).cloned().into_iter().collect()
        } else {
            state.1.range(start..end).map(|(_, v)| v.clone()).collect()
        };
        let limit = if limit == 0 {
            usize::MAX
        } else {
            limit as usize
        };
        let page = Page {
            more: items.len() > limit,
            items: items.into_iter().take(limit).collect(),
            revision: state.0,
        };
        Box::pin(async move { Ok(page) })
    }

    fn create(&self, key: Vec<u8>, value: Vec<u8>) -> BoxFuture<'_, StorageResult<Written>> {
        let written = self.write(key, value, None);
        Box::pin(async move { Ok(written) })
    }

    fn update(
        &self,
        key: Vec<u8>,
        value: Vec<u8>,
        expected: i64,
    ) -> BoxFuture<'_, StorageResult<Written>> {
        let written = self.write(key, value, Some(expected));
        Box::pin(async move { Ok(written) })
    }

    fn delete(&self, key: Vec<u8>, expected: i64) -> BoxFuture<'_, StorageResult<Written>> {
        let mut state = self.state.lock().unwrap();
        let current = state.1.get(&key).cloned();
        let written = if current.as_ref().is_some_and(|c| c.mod_revision == expected) {
            state.0 += 1;
            state.1.remove(&key);
            Written::Done { revision: state.0 }
        } else {
            Written::Conflict { current }
        };
        Box::pin(async move { Ok(written) })
    }

    fn watch(
        &self,
        _start: Vec<u8>,
        _end: Vec<u8>,
        _revision: i64,
    ) -> BoxFuture<'_, StorageResult<BoxStream<'static, WatchBatch>>> {
        Box::pin(async { Err(crate::storage::StorageError::Unavailable("no watch".into())) })
    }
}

fn allocator(cidr: &str, ports: &str) -> ServiceAllocator {
    ServiceAllocator::new(ServiceNetwork {
        cluster_ip_range: IpRange::parse(cidr).unwrap(),
        node_port_range: PortRange::parse(ports).unwrap(),
        repair_grace: Duration::ZERO,
    })
}

fn service(name: &str, spec: Value) -> Value {
    json!({"metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": spec})
}

fn message(e: ApiError) -> String {
    e.message
}

#[tokio::test]
async fn cluster_ips_are_handed_out_once_and_requested_ones_are_checked() {
    let store = MemoryStore::default();
    let alloc = allocator("169.254.64.0/28", "30000-30002");
    let mut seen = Vec::new();
    for i in 0..14 {
        let mut svc = service(
            &format!("s{i}"),
            json!({"type": "ClusterIP", "ports": [{"port": 80}]}),
        );
        let held = alloc.allocate(&store, &mut svc, None, false).await.unwrap();
        let ip = svc["spec"]["clusterIP"].as_str().unwrap().to_owned();
        assert_eq!(svc["spec"]["clusterIPs"], json!([ip]));
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
        assert_eq!(held.ips, vec![ip.parse::<Ipv4Addr>().unwrap()]);
        assert!(!seen.contains(&ip), "{ip} handed out twice");
        seen.push(ip);
    }
    let mut full = service(
        "full",
        json!({"type": "ClusterIP", "ports": [{"port": 80}]}),
    );
    let e = alloc
        .allocate(&store, &mut full, None, false)
        .await
        .unwrap_err();
    assert_eq!(e.code, 500);
    assert_eq!(
        message(e),
        "Internal error occurred: failed to allocate a serviceIP: range is full"
    );

    let store = MemoryStore::default();
    let mut first = service(
        "a",
        json!({"clusterIP": "169.254.64.10", "ports": [{"port": 53}]}),
    );
    alloc
        .allocate(&store, &mut first, None, false)
        .await
        .unwrap();
    let mut again = service(
        "b",
        json!({"clusterIP": "169.254.64.10", "ports": [{"port": 53}]}),
    );
    let e = alloc
        .allocate(&store, &mut again, None, false)
        .await
        .unwrap_err();
    assert_eq!(e.code, 422);
    assert_eq!(
        message(e),
        "Service \"b\" is invalid: spec.clusterIPs: Invalid value: []string{\"169.254.64.10\"}: failed to allocate IP 169.254.64.10: provided IP is already allocated"
    );
    let mut outside = service(
        "c",
        json!({"clusterIP": "169.254.65.1", "ports": [{"port": 53}]}),
    );
    assert_eq!(
        message(alloc.allocate(&store, &mut outside, None, false).await.unwrap_err()),
        "Service \"c\" is invalid: spec.clusterIPs: Invalid value: []string{\"169.254.65.1\"}: failed to allocate IP 169.254.65.1: the provided IP (169.254.65.1) is not in the valid range. The range of valid IPs is 169.254.64.0/28"
    );
    // A dry run checks without claiming.
    let mut dry = service(
        "d",
        json!({"clusterIP": "169.254.64.11", "ports": [{"port": 53}]}),
    );
    alloc.allocate(&store, &mut dry, None, true).await.unwrap();
    assert!(!IPS.is_claimed(&store, "169.254.64.11").await.unwrap());
}

#[tokio::test]
async fn dynamic_picks_leave_the_static_band_until_the_rest_is_full() {
    let store = MemoryStore::default();
    let alloc = allocator("169.254.64.0/20", "30000-32767");
    for i in 0..50 {
        let mut svc = service(&format!("s{i}"), json!({"ports": [{"port": 80}]}));
        alloc.allocate(&store, &mut svc, None, false).await.unwrap();
        let ip: Ipv4Addr = svc["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
        let offset = alloc.network.cluster_ip_range.offset(ip).unwrap();
        assert!(
            offset >= alloc.network.cluster_ip_range.static_band(),
            "{ip}"
        );
    }
}

#[tokio::test]
async fn node_ports_are_allocated_checked_and_shared_across_protocols() {
    let store = MemoryStore::default();
    let alloc = allocator("169.254.64.0/24", "30000-30019");
    let mut web = service(
        "web",
        json!({"type": "NodePort", "ports": [
            {"name": "tcp", "port": 53, "protocol": "TCP"},
            {"name": "udp", "port": 53, "protocol": "UDP"},
            {"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30005}]}),
    );
    let held = alloc.allocate(&store, &mut web, None, false).await.unwrap();
    let ports = &web["spec"]["ports"];
    assert_eq!(ports[0]["nodePort"], ports[1]["nodePort"]);
    assert_eq!(ports[2]["nodePort"], 30005);
    assert_eq!(held.node_ports.len(), 2);
    let mut taken = service(
        "other",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30005}]}),
    );
    assert_eq!(
        message(alloc.allocate(&store, &mut taken, None, false).await.unwrap_err()),
        "Service \"other\" is invalid: spec.ports[0].nodePort: Invalid value: 30005: provided port is already allocated"
    );
    // The failed create gave back the cluster IP it had claimed first.
    assert_eq!(IPS.list(&store).await.unwrap().len(), 1);
    let mut outside = service(
        "far",
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}),
    );
    assert_eq!(
        message(alloc.allocate(&store, &mut outside, None, false).await.unwrap_err()),
        "Service \"far\" is invalid: spec.ports[0].nodePort: Invalid value: 31000: provided port is not in the valid range. The range of valid ports is 30000-30019"
    );
    // An update that keeps its ports claims nothing new; one to ClusterIP frees them.
    let mut same = web.clone();
    assert!(alloc
        .allocate(&store, &mut same, Some(&web), false)
        .await
        .unwrap()
        .is_empty());
    let mut cluster_ip = web.clone();
    cluster_ip["spec"]["type"] = json!("ClusterIP");
    ServiceAllocator::drop_type_dependent_fields(&mut cluster_ip, &web);
    assert!(cluster_ip["spec"]["ports"][2].get("nodePort").is_none());
    let freed = Held::of(&web).minus(&Held::of(&cluster_ip));
    assert_eq!(freed.node_ports.len(), 2);
    assert!(freed.ips.is_empty());
    alloc.release(&store, &Holder::of(&web), &freed).await;
    assert!(NODE_PORTS.list(&store).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_release_frees_only_the_holders_claim() {
    let store = MemoryStore::default();
    let alloc = allocator("169.254.64.0/24", "30000-30019");
    let mut svc = service(
        "a",
        json!({"clusterIP": "169.254.64.20", "ports": [{"port": 80}]}),
    );
    let held = alloc.allocate(&store, &mut svc, None, false).await.unwrap();
    let stranger = Holder {
        uid: "someone-else".into(),
        ..Holder::of(&svc)
    };
    alloc.release(&store, &stranger, &held).await;
    assert!(IPS.is_claimed(&store, "169.254.64.20").await.unwrap());
    alloc.release(&store, &Holder::of(&svc), &held).await;
    assert!(!IPS.is_claimed(&store, "169.254.64.20").await.unwrap());
}

#[tokio::test]
async fn dual_stack_asks_are_refused_on_a_single_stack_cluster() {
    let store = MemoryStore::default();
    let alloc = allocator("169.254.64.0/24", "30000-30019");
    let mut v6 = service(
        "v6",
        json!({"ipFamilies": ["IPv6"], "ports": [{"port": 80}]}),
    );
    assert_eq!(
        message(alloc.allocate(&store, &mut v6, None, false).await.unwrap_err()),
        "Service \"v6\" is invalid: spec.ipFamilies[0]: Invalid value: \"IPv6\": not configured on this cluster"
    );
    let mut dual = service(
        "d",
        json!({"ipFamilyPolicy": "RequireDualStack", "ports": [{"port": 80}]}),
    );
    assert_eq!(
        message(alloc.allocate(&store, &mut dual, None, false).await.unwrap_err()),
        "Service \"d\" is invalid: spec.ipFamilyPolicy: Invalid value: \"RequireDualStack\": this cluster is not configured for dual-stack services"
    );
    let mut headless = service(
        "h",
        json!({"clusterIP": "None", "ipFamilyPolicy": "RequireDualStack"}),
    );
    assert!(alloc
        .allocate(&store, &mut headless, None, false)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4"]));
}

#[tokio::test]
async fn concurrent_allocations_never_share_an_address() {
    let store = Arc::new(MemoryStore::default());
    let alloc = Arc::new(allocator("169.254.64.0/25", "30000-30199"));
    let tasks: Vec<_> = (0..120)
        .map(|i| {
            let (store, alloc) = (Arc::clone(&store), Arc::clone(&alloc));
            tokio::spawn(async move {
                let mut svc = service(
                    &format!("s{i}"),
                    json!({"type": "NodePort", "ports": [{"port": 80}]}),
                );
                alloc
                    .allocate(&*store, &mut svc, None, false)
                    .await
                    .unwrap();
                svc
            })
        })
        .collect();
    let mut ips = std::collections::HashSet::new();
    let mut ports = std::collections::HashSet::new();
    for task in tasks {
        let svc = task.await.unwrap();
        assert!(ips.insert(svc["spec"]["clusterIP"].as_str().unwrap().to_owned()));
        assert!(ports.insert(svc["spec"]["ports"][0]["nodePort"].as_i64().unwrap()));
    }
}

#[tokio::test]
async fn repair_restores_missing_claims_and_reclaims_leaks() {
    let store = MemoryStore::default();
    let alloc = allocator("169.254.64.0/24", "30000-30019");
    // A service stored without claims (as before claims existed).
    let svc = service(
        "old",
        json!({"type": "NodePort", "clusterIP": "169.254.64.30",
        "clusterIPs": ["169.254.64.30"], "ports": [{"port": 80, "nodePort": 30001}]}),
    );
    store
        .create(
            b"/registry/services/default/old".to_vec(),
            serde_json::to_vec(&svc).unwrap(),
        )
        .await
        .unwrap();
    // A claim whose service is gone.
    let gone = Holder {
        namespace: "default".into(),
        name: "gone".into(),
        uid: "x".into(),
    };
    IPS.claim(&store, "169.254.64.40", &gone).await.unwrap();
    let report = alloc.repair(&store).await.unwrap();
    assert_eq!(
        report,
        repair::RepairReport {
            restored: 2,
            reclaimed: 1,
            conflicts: 0
        }
    );
    assert!(IPS.is_claimed(&store, "169.254.64.30").await.unwrap());
    assert!(NODE_PORTS.is_claimed(&store, "30001").await.unwrap());
    assert!(!IPS.is_claimed(&store, "169.254.64.40").await.unwrap());
    // So the restored address is not handed out again.
    let mut wants = service(
        "new",
        json!({"clusterIP": "169.254.64.30", "ports": [{"port": 80}]}),
    );
    assert_eq!(
        alloc
            .allocate(&store, &mut wants, None, false)
            .await
            .unwrap_err()
            .code,
        422
    );
    // A second pass finds nothing to do; a young leak is left alone.
    let patient = ServiceAllocator::new(ServiceNetwork {
        repair_grace: Duration::from_secs(600),
        ..alloc.network.clone()
    });
    IPS.claim(&store, "169.254.64.41", &gone).await.unwrap();
    assert_eq!(
        patient.repair(&store).await.unwrap(),
        repair::RepairReport::default()
    );
    assert!(IPS.is_claimed(&store, "169.254.64.41").await.unwrap());
}
