//! Leader election on a Lease (keel-lease) between in-process components of one control
//! plane: exactly one leads; a released lease passes at once, a dead leader's after it expires.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use keel_lease::{run_while_leader, Config};

use super::ControlPlane;

fn config(identity: &str) -> Config {
    Config {
        lease_duration: Duration::from_millis(1500),
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(100),
        ..Config::new("kube-system", "test-leader", identity)
    }
}

/// Starts candidate `identity`; while it leads, `leaders` holds its name.
fn candidate(
    client: kube::Client,
    identity: &'static str,
    leaders: Arc<Mutex<Vec<&'static str>>>,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_while_leader(
        client,
        config(identity),
        move || {
            let leaders = Arc::clone(&leaders);
            async move {
                let _leading = Leading::new(identity, leaders);
                futures::future::pending::<()>().await;
            }
        },
        async move {
            let _ = stopped.await;
        },
    ));
    (task, stop)
}

/// Marks a candidate as leading for as long as it lives (the work is dropped on losing).
struct Leading(&'static str, Arc<Mutex<Vec<&'static str>>>);

impl Leading {
    fn new(identity: &'static str, leaders: Arc<Mutex<Vec<&'static str>>>) -> Leading {
        leaders.lock().unwrap().push(identity);
        Leading(identity, leaders)
    }
}

impl Drop for Leading {
    fn drop(&mut self) {
        self.1.lock().unwrap().retain(|l| *l != self.0);
    }
}

async fn wait_for_leader(
    leaders: &Arc<Mutex<Vec<&'static str>>>,
    not: Option<&str>,
) -> &'static str {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        {
            let now = leaders.lock().unwrap().clone();
            assert!(now.len() <= 1, "two leaders at once: {now:?}");
            if let Some(leader) = now.first().filter(|l| Some(**l) != not) {
                return leader;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no leader in time");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_candidate_leads_and_the_other_takes_over() {
    let cp = ControlPlane::start(1).await;
    let apiserver = &cp.cluster.apiservers[0];
    let leaders = Arc::new(Mutex::new(Vec::new()));
    let (a_task, a_stop) = candidate(
        apiserver.client("a", &["system:masters"]),
        "a",
        Arc::clone(&leaders),
    );
    let first = wait_for_leader(&leaders, None).await;
    assert_eq!(first, "a");
    let (b_task, b_stop) = candidate(
        apiserver.client("b", &["system:masters"]),
        "b",
        Arc::clone(&leaders),
    );
    // b stays a follower while a renews.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(*leaders.lock().unwrap(), ["a"]);
    let leases: kube::Api<Lease> = kube::Api::namespaced(cp.client.clone(), "kube-system");
    let lease = leases.get("test-leader").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("a"));

    // A clean stop releases the lease: b leads without waiting it out.
    a_stop.send(()).unwrap();
    a_task.await.unwrap();
    assert_eq!(wait_for_leader(&leaders, Some("a")).await, "b");
    let lease = leases.get("test-leader").await.unwrap().spec.unwrap();
    assert_eq!(lease.holder_identity.as_deref(), Some("b"));
    assert_eq!(lease.lease_transitions, Some(1));

    // A leader that dies without releasing is replaced once the lease expires.
    let (c_task, c_stop) = candidate(
        apiserver.client("c", &["system:masters"]),
        "c",
        Arc::clone(&leaders),
    );
    b_task.abort();
    let _ = b_task.await;
    assert_eq!(wait_for_leader(&leaders, Some("b")).await, "c");
    drop(b_stop);
    c_stop.send(()).unwrap();
    c_task.await.unwrap();
    cp.stop().await;
}
