//! etcd's gRPC API driven by an independent client, the `etcd-client` crate: every service
//! keel serves, against an in-process three-member cluster (each member asked directly, so
//! followers must forward to the leader as the gateway does) and against a single member
//! served by `keel::server::run`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, MemberAddOptions, PutOptions, Txn, TxnOp,
    WatchOptions, WatchResponse, WatchStream,
};
use keel::cli::dev::DevCluster;
use sha2::Digest as _;

/// Any single answer taking longer than this is a failure.
const DEADLINE: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {DEADLINE:?}"))
}

/// A client of exactly one member (the crate would balance over several otherwise).
async fn client(addr: std::net::SocketAddr) -> Client {
    within("connect", Client::connect([format!("http://{addr}")], None))
        .await
        .expect("connects")
}

async fn clients(cluster: &DevCluster) -> Vec<Client> {
    let mut all = Vec::new();
    for member in &cluster.members {
        all.push(client(member.client_addr).await);
    }
    all
}

/// The gRPC status inside a client error.
fn status(error: etcd_client::Error) -> tonic::Status {
    match error {
        etcd_client::Error::GRpcStatus(status) => status,
        other => panic!("expected a gRPC status, got {other:?}"),
    }
}

async fn next(stream: &mut WatchStream) -> WatchResponse {
    within("watch response", stream.message())
        .await
        .expect("watch stream stays healthy")
        .expect("watch stream stays open")
}

fn value_of(response: &etcd_client::GetResponse) -> Option<&[u8]> {
    response.kvs().first().map(|kv| kv.value())
}

#[tokio::test]
async fn kv_txn_and_compaction_through_every_member() {
    let cluster = DevCluster::start_on_free_ports(3).await.unwrap();
    let mut c = clients(&cluster).await;

    let first = c[1].put("a", "1", None).await.unwrap();
    let first_revision = first.header().unwrap().revision();
    // A linearizable read on another member sees the write at once.
    let got = c[2].get("a", None).await.unwrap();
    assert_eq!(value_of(&got), Some(&b"1"[..]));
    let second = c[0]
        .put("a", "2", Some(PutOptions::new().with_prev_key()))
        .await
        .unwrap();
    assert_eq!(second.prev_key().unwrap().value(), b"1");
    assert_eq!(second.header().unwrap().revision(), first_revision + 1);

    let swap = Txn::new()
        .when([Compare::value("a", CompareOp::Equal, "2")])
        .and_then([TxnOp::put("a", "3", None)])
        .or_else([TxnOp::get("a", None)]);
    assert!(c[2].txn(swap.clone()).await.unwrap().succeeded());
    let refused = c[1].txn(swap).await.unwrap();
    assert!(!refused.succeeded(), "the value is 3 now");
    match &refused.op_responses()[0] {
        etcd_client::TxnOpResponse::Get(get) => assert_eq!(value_of(get), Some(&b"3"[..])),
        other => panic!("the failure branch's get answers: {other:?}"),
    }

    c[0].put("p/1", "x", None).await.unwrap();
    c[0].put("p/2", "y", None).await.unwrap();
    let listed = c[1]
        .get(
            "p/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .unwrap();
    assert_eq!(listed.count(), 2);
    let deleted = c[2]
        .delete(
            "p/",
            Some(
                etcd_client::DeleteOptions::new()
                    .with_prefix()
                    .with_prev_key(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(deleted.deleted(), 2);
    assert_eq!(deleted.prev_kvs().len(), 2);

    let latest = c[0]
        .get("a", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    c[1].compact(latest, None).await.unwrap();
    let old = c[2]
        .get("a", Some(GetOptions::new().with_revision(first_revision)))
        .await
        .unwrap_err();
    let old = status(old);
    assert_eq!(old.code(), tonic::Code::OutOfRange);
    assert_eq!(
        old.message(),
        "etcdserver: mvcc: required revision has been compacted"
    );
    let empty = status(c[0].put("", "v", None).await.unwrap_err());
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert_eq!(empty.message(), "etcdserver: key is not provided");
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn a_watch_stream_carries_several_watches_cancels_and_compaction() {
    let cluster = DevCluster::start_on_free_ports(3).await.unwrap();
    let mut c = clients(&cluster).await;
    // Watch on one member, write through another: events arrive by replication.
    let mut stream = c[0].watch("w/a", None).await.unwrap();
    let created = next(&mut stream).await;
    assert!(created.created());
    let watch_a = created.watch_id();
    stream
        .watch(
            "w/b/",
            Some(WatchOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .unwrap();
    let created = next(&mut stream).await;
    assert!(created.created());
    let watch_b = created.watch_id();
    assert_ne!(watch_a, watch_b);

    c[1].put("w/a", "1", None).await.unwrap();
    c[1].put("w/b/x", "2", None).await.unwrap();
    let on_a = next(&mut stream).await;
    assert_eq!(on_a.watch_id(), watch_a);
    assert_eq!(on_a.events()[0].kv().unwrap().value(), b"1");
    let on_b = next(&mut stream).await;
    assert_eq!(on_b.watch_id(), watch_b);
    assert_eq!(on_b.events()[0].kv().unwrap().key(), b"w/b/x");

    stream.cancel(watch_a).await.unwrap();
    let canceled = next(&mut stream).await;
    assert!(canceled.canceled());
    assert_eq!(canceled.watch_id(), watch_a);
    c[2].put("w/a", "ignored", None).await.unwrap();
    c[2].delete("w/b/x", None).await.unwrap();
    let after = next(&mut stream).await;
    assert_eq!(after.watch_id(), watch_b, "the canceled watch is silent");
    let event = &after.events()[0];
    assert_eq!(event.event_type(), EventType::Delete);
    assert_eq!(event.prev_kv().unwrap().value(), b"2");

    stream.request_progress().await.unwrap();
    let progress = next(&mut stream).await;
    assert!(progress.events().is_empty());
    assert_eq!(
        progress.header().unwrap().revision(),
        after.header().unwrap().revision()
    );

    let latest = after.header().unwrap().revision();
    c[1].compact(latest, None).await.unwrap();
    // A linearizable read on the watching member: it has applied the compaction too.
    c[0].get("w/a", None).await.unwrap();
    stream
        .watch("w/a", Some(WatchOptions::new().with_start_revision(1)))
        .await
        .unwrap();
    let mut refused = next(&mut stream).await;
    if refused.created() && !refused.canceled() {
        refused = next(&mut stream).await;
    }
    assert!(refused.canceled(), "{refused:?}");
    assert_eq!(refused.compact_revision(), latest);
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn leases_through_a_follower_with_a_keepalive_stream() {
    let cluster = DevCluster::start_on_free_ports(3).await.unwrap();
    let mut c = clients(&cluster).await;
    let leader = c[0].status().await.unwrap().leader();
    let follower = cluster
        .members
        .iter()
        .position(|m| m.id != leader)
        .expect("a follower");
    let c = &mut c[follower];

    let lease = c.lease_grant(60, None).await.unwrap();
    assert_eq!(lease.ttl(), 60);
    let id = lease.id();
    c.put("leased", "v", Some(PutOptions::new().with_lease(id)))
        .await
        .unwrap();

    let (mut keeper, mut answers) = c.lease_keep_alive(id).await.unwrap();
    for _ in 0..3 {
        keeper.keep_alive().await.unwrap();
        let answer = within("keepalive answer", answers.message())
            .await
            .unwrap()
            .expect("the keepalive stream stays open");
        assert_eq!((answer.id(), answer.ttl()), (id, 60));
    }

    let ttl = c
        .lease_time_to_live(
            id,
            Some(etcd_client::LeaseTimeToLiveOptions::new().with_keys()),
        )
        .await
        .unwrap();
    assert_eq!(ttl.granted_ttl(), 60);
    assert!(ttl.ttl() > 0 && ttl.ttl() <= 60);
    assert_eq!(ttl.keys(), [b"leased".to_vec()]);
    let leases = c.leases().await.unwrap();
    assert!(leases.leases().iter().any(|l| l.id() == id));

    c.lease_revoke(id).await.unwrap();
    assert!(c.get("leased", None).await.unwrap().kvs().is_empty());
    assert_eq!(c.lease_time_to_live(id, None).await.unwrap().ttl(), -1);
    // Renewing a lease that is gone answers TTL 0, as etcd does, not an error.
    keeper.keep_alive().await.unwrap();
    let gone = within("keepalive answer", answers.message())
        .await
        .unwrap()
        .expect("the keepalive stream stays open");
    assert_eq!(gone.ttl(), 0);
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn member_list_add_update_promote_remove() {
    let cluster = DevCluster::start_on_free_ports(3).await.unwrap();
    let mut c = clients(&cluster).await;
    let mut ids: Vec<u64> = cluster.members.iter().map(|m| m.id).collect();
    ids.sort();
    for client in &mut c {
        let listed = client.member_list().await.unwrap();
        let mut listed_ids: Vec<u64> = listed.members().iter().map(|m| m.id()).collect();
        listed_ids.sort();
        assert_eq!(listed_ids, ids);
    }

    // Nothing listens on the new member's port; three of four voters still make a quorum.
    let added = c[1]
        .member_add(
            ["http://127.0.0.1:9".to_owned()],
            Some(MemberAddOptions::new().with_is_learner()),
        )
        .await
        .unwrap();
    let new = added.member().expect("the new member").clone();
    assert!(new.is_learner());
    assert_eq!(added.member_list().len(), 4);
    let updated = c[2]
        .member_update(new.id(), ["http://127.0.0.1:10".to_owned()])
        .await
        .unwrap();
    let entry = updated
        .members()
        .iter()
        .find(|m| m.id() == new.id())
        .unwrap();
    assert_eq!(entry.peer_urls(), ["http://127.0.0.1:10"]);
    let promoted = c[0].member_promote(new.id()).await.unwrap();
    let entry = promoted
        .members()
        .iter()
        .find(|m| m.id() == new.id())
        .unwrap();
    assert!(!entry.is_learner(), "promoted to a voter");
    let removed = c[2].member_remove(new.id()).await.unwrap();
    assert_eq!(removed.members().len(), 3);
    let unknown = status(c[0].member_remove(new.id()).await.unwrap_err());
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn maintenance_status_hashes_snapshot_and_move_leader() {
    let cluster = DevCluster::start_on_free_ports(3).await.unwrap();
    let mut c = clients(&cluster).await;
    c[0].put("m", "v", None).await.unwrap();

    let mut leaders = Vec::new();
    let mut hashes = Vec::new();
    for client in &mut c {
        // A linearizable read first, so every member has applied the put.
        let revision = client
            .get("m", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        let status = client.status().await.unwrap();
        assert_eq!(status.version(), "3.4.0", "{status:?}");
        assert!(status.db_size() > 0);
        leaders.push(status.leader());
        hashes.push(client.hash_kv(revision).await.unwrap().hash());
        assert_ne!(client.hash().await.unwrap().hash(), 0);
        client.defragment().await.unwrap();
        let alarms = client
            .alarm(
                etcd_client::AlarmAction::Get,
                etcd_client::AlarmType::None,
                None,
            )
            .await
            .unwrap();
        assert!(alarms.alarms().is_empty());
    }
    assert!(
        leaders.iter().all(|l| *l == leaders[0] && *l != 0),
        "{leaders:?}"
    );
    assert!(hashes.iter().all(|h| *h == hashes[0]), "{hashes:?}");

    let mut snapshot = c[1].snapshot().await.unwrap();
    let mut blobs = Vec::new();
    while let Some(chunk) = within("snapshot chunk", snapshot.message()).await.unwrap() {
        blobs.push(chunk.blob().to_vec());
    }
    // etcd's framing: the database in whole 512-byte pages, then its SHA-256 alone.
    let digest = blobs.pop().expect("a digest message");
    let data: Vec<u8> = blobs.concat();
    assert_eq!(data.len() % 512, 0);
    assert_eq!(digest, sha2::Sha256::digest(&data).to_vec());
    let restored = keel_store::Store::temporary(Default::default()).unwrap();
    restored.import(&mut &data[..]).unwrap();
    let range = restored
        .range(&keel_store::RangeRequest {
            key: b"m".to_vec(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(range.kvs[0].value, b"v");

    let leader = leaders[0];
    let target = cluster
        .members
        .iter()
        .map(|m| m.id)
        .find(|id| *id != leader)
        .unwrap();
    let asked = cluster
        .members
        .iter()
        .position(|m| m.id != leader && m.id != target)
        .unwrap();
    // Asked of a follower, which hands the request to the leader.
    c[asked].move_leader(target).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if c[0].status().await.map(|s| s.leader()).ok() == Some(target) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{target} never led");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn a_single_member_serves_grpc_and_json_on_one_port_and_shutdown_ends_watches() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let replica = Arc::new(keel::replica::LocalReplica::temporary().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = keel::config::Config::default();
    let server = tokio::spawn(async move {
        keel::server::run(&config, listener, replica, async {
            let _ = stopped.await;
        })
        .await
    });
    let mut c = client(addr).await;
    c.put("k", "grpc", None).await.unwrap();
    // The JSON gateway on the same port sees the same keyspace.
    let json: serde_json::Value = reqwest::Client::new()
        .post(format!("http://{addr}/v3/kv/range"))
        .body(serde_json::json!({"key": crate::b64("k")}).to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["kvs"][0]["value"], crate::b64("grpc"));

    let mut stream = c.watch("k", None).await.unwrap();
    assert!(next(&mut stream).await.created());
    stop.send(()).unwrap();
    // The server ends the open watch instead of waiting for the client to leave.
    let ended = within("watch end at shutdown", stream.message()).await;
    assert!(!matches!(ended, Ok(Some(_))), "{ended:?}");
    within("server shutdown", server).await.unwrap().unwrap();
}

#[tokio::test]
async fn auth_over_grpc_checks_the_token_etcd_clients_send() {
    let cluster = DevCluster::start_on_free_ports(1).await.unwrap();
    let addr = cluster.members[0].client_addr;
    let mut c = client(addr).await;
    c.user_add("root", "rootpw", None).await.unwrap();
    c.user_grant_role("root", "root").await.unwrap();
    c.user_add("alice", "alicepw", None).await.unwrap();
    c.role_add("app").await.unwrap();
    let perm = etcd_client::Permission::read_write("app/").with_prefix();
    c.role_grant_permission("app", perm).await.unwrap();
    c.user_grant_role("alice", "app").await.unwrap();
    c.auth_enable().await.unwrap();

    // Without a token: refused with etcd's code.
    let anonymous = status(c.put("app/x", "1", None).await.unwrap_err());
    assert_eq!(
        anonymous.code(),
        tonic::Code::InvalidArgument,
        "{anonymous:?}"
    );
    // etcd-client authenticates and sends the token as `authorization` metadata.
    let options = etcd_client::ConnectOptions::new().with_user("alice", "alicepw");
    let mut alice = within(
        "connect as alice",
        Client::connect([format!("http://{addr}")], Some(options)),
    )
    .await
    .unwrap();
    alice.put("app/x", "1", None).await.unwrap();
    let denied = status(alice.put("other", "1", None).await.unwrap_err());
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert_eq!(denied.message(), "etcdserver: permission denied");
    // Root still manages users once auth is on.
    let options = etcd_client::ConnectOptions::new().with_user("root", "rootpw");
    let mut root = Client::connect([format!("http://{addr}")], Some(options))
        .await
        .unwrap();
    let users = root.user_list().await.unwrap();
    assert_eq!(users.users(), ["alice", "root"]);
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn hash_kv_at_a_past_revision_hashes_that_revision() {
    let cluster = DevCluster::start_on_free_ports(1).await.unwrap();
    let mut c = client(cluster.members[0].client_addr).await;
    c.put("h", "1", None).await.unwrap();
    let past = c
        .put("h", "2", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    let then = c.hash_kv(0).await.unwrap();
    assert_eq!(then.hash_revision(), past, "0 hashes the current revision");
    c.put("h", "3", None).await.unwrap();
    let current = c
        .put("h", "4", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();

    // etcd: the revision hashed is the one asked for; the header is the current one.
    let again = c.hash_kv(past).await.unwrap();
    assert_eq!(again.hash_revision(), past);
    assert_eq!(again.header().unwrap().revision(), current);
    assert_eq!(
        again.hash(),
        then.hash(),
        "later writes leave a past hash alone"
    );
    let now = c.hash_kv(0).await.unwrap();
    assert_eq!(now.hash_revision(), current);
    assert_ne!(now.hash(), then.hash());

    c.compact(past, None).await.unwrap();
    let compacted = c.hash_kv(current).await.unwrap();
    assert_eq!(compacted.compact_version(), past);
    assert_eq!(compacted.hash_revision(), current);
    let gone = status(c.hash_kv(past - 1).await.unwrap_err());
    assert_eq!(gone.code(), tonic::Code::OutOfRange, "{gone:?}");
    let future = status(c.hash_kv(current + 1).await.unwrap_err());
    assert_eq!(future.code(), tonic::Code::OutOfRange, "{future:?}");
    cluster.stop().await.unwrap();
}
