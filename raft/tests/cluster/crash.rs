use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::fixture::{eventually, fast_config, put, Cluster};

/// The leader dies (dropped, no shutdown, nothing flushed by us) in the middle of a write
/// stream; the stream carries on with the next leader. Once the dead member is reopened from
/// its directory and caught up, every write that was acknowledged is on every member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_crashed_leader() -> anyhow::Result<()> {
    let cluster = Arc::new(Mutex::new(Cluster::start(3, fast_config()).await?));
    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (cluster, acked, stop) = (cluster.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("k{i:04}");
                // The lock is held per write only; the crash takes it between writes.
                let result = cluster.lock().await.write(put(&key, "v")).await;
                result?;
                acked.lock().unwrap().push(key);
                i += 1;
            }
            anyhow::Ok(())
        })
    };

    eventually("some writes before the crash", || async {
        (acked.lock().unwrap().len() >= 20).then_some(())
    })
    .await?;
    let crashed = {
        let mut cluster = cluster.lock().await;
        let leader = cluster.leader().await?;
        cluster.crash(leader);
        leader
    };
    let at_crash = acked.lock().unwrap().len();
    eventually("writes after the crash", || async {
        (acked.lock().unwrap().len() >= at_crash + 20).then_some(())
    })
    .await?;
    stop.store(true, Ordering::Relaxed);
    writer.await??;

    let mut cluster = Arc::into_inner(cluster)
        .expect("writer finished")
        .into_inner();
    cluster.open(crashed).await?;
    cluster.assert_converged(&cluster.ids()).await?;
    let acked = acked.lock().unwrap().clone();
    for id in cluster.ids() {
        for key in &acked {
            assert_eq!(
                cluster.get(id, key)?.as_deref(),
                Some(&b"v"[..]),
                "member {id} lost acknowledged {key}"
            );
        }
    }
    cluster.shutdown().await
}
