use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Mutex;

use crate::fixture::{eventually, fast_config, put, Cluster};

/// The leader is dropped (no shutdown, nothing flushed by keel) in the middle of a write
/// stream; the stream carries on with the next leader. Once the dropped member is reopened from
/// its directory and caught up, every write that was acknowledged is on every member.
///
/// sled flushes when its last handle drops, so this exercises failover and reopening, not lost
/// buffers; `acknowledged_writes_survive_kill_9` is the one that loses them.
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

const CHILD_DIR: &str = "KEEL_RAFT_CRASH_CHILD_DIR";

/// The child half of `acknowledged_writes_survive_kill_9`: a 3-member cluster in the directory
/// named by the environment, written to by 16 concurrent writers until it is killed, printing
/// `ACK <key>` after each acknowledged write. Does nothing when run on its own.
///
/// Concurrent writers fill entries with many puts, so the keyspaces spend much of their time
/// inside a run of single writes, and a kill often leaves one of them torn (rebuilt on open).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by acknowledged_writes_survive_kill_9 in a child process"]
async fn child_writes_until_killed() -> anyhow::Result<()> {
    use std::io::Write;
    const WRITERS: usize = 16;
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return Ok(());
    };
    let cluster = Arc::new(Cluster::start_in(std::path::Path::new(&dir), 3, fast_config()).await?);
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("k{writer:02}-{i:06}");
                    cluster.write(put(&key, "v")).await?;
                    let mut stdout = std::io::stdout().lock();
                    writeln!(stdout, "ACK {key}")?;
                    stdout.flush()?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for writer in writers {
        writer.await??;
    }
    Ok(())
}

/// Every member dies at once (SIGKILL of the process holding all three, so sled's in-memory
/// buffers are lost) in the middle of a write stream. Reopened from their directories, the
/// members hold every write that was acknowledged before the kill.
///
/// What it cannot show: that the fsync before an acknowledgement is there. The OS page cache
/// survives a killed process, and removing the flush from `LogStore::append` does not make this
/// test fail; only a power cut would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() -> anyhow::Result<()> {
    use std::io::BufRead;
    let dir = tempfile::TempDir::new()?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args([
            "crash::child_writes_until_killed",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    // Read acknowledgements on a thread (the pipe is blocking); kill after 2000 of them.
    let reader = std::thread::spawn(move || {
        let mut acked = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(key) = line.strip_prefix("ACK ") {
                acked.push(key.to_string());
                if acked.len() == 2000 {
                    // SIGKILL: no destructor runs, nothing is flushed.
                    let _ = std::process::Command::new("kill")
                        .args(["-9", &child.id().to_string()])
                        .status();
                }
            }
        }
        let _ = child.wait();
        acked
    });
    let acked = tokio::task::spawn_blocking(move || reader.join().expect("reader thread")).await?;
    anyhow::ensure!(
        acked.len() >= 2000,
        "child stopped after {} writes",
        acked.len()
    );

    let cluster = Cluster::reopen_in(dir.path(), &[1, 2, 3], fast_config()).await?;
    cluster.leader().await?;
    cluster.write(put("after", "kill")).await?;
    cluster.assert_converged(&cluster.ids()).await?;
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

/// A keyspace that a crash left part-way through an entry (its writes go into sled one key at
/// a time) is rebuilt when its state machine opens: from the current snapshot if there is one,
/// else from nothing. openraft then applies the log after it again, and the member ends where
/// one that never crashed does.
#[tokio::test]
async fn a_keyspace_cut_short_mid_entry_is_rebuilt_from_the_snapshot_and_the_log(
) -> anyhow::Result<()> {
    use crate::fixture::{open_state_machine as open, put_entries as puts};
    use keel_raft::StateMachine;
    use openraft::storage::RaftStateMachine as _;
    use openraft::RaftSnapshotBuilder as _;

    let value = |machine: &StateMachine, key: &str| -> anyhow::Result<Option<Vec<u8>>> {
        let response = machine.store().range(&keel_store::RangeRequest {
            key: key.into(),
            ..Default::default()
        })?;
        Ok(response.kvs.into_iter().next().map(|kv| kv.value))
    };
    let cut_short = |dir: &std::path::Path| -> anyhow::Result<()> {
        let store = keel_store::Store::open(dir.join("kv"), keel_store::Config::default())?;
        store.cut_short_for_tests(b"k3", b"half-written")?;
        anyhow::ensure!(store.torn()?, "the keyspace is not torn");
        Ok(())
    };
    let reference = tempfile::TempDir::new()?;
    let mut uninterrupted = open(reference.path())?;
    uninterrupted.apply(puts(1..=8)).await?;
    let expected = uninterrupted.store().hash_kv(0)?;

    // With a snapshot at 5: rebuilt to it, then 6..=8 applied again.
    let dir = tempfile::TempDir::new()?;
    {
        let mut machine = open(dir.path())?;
        machine.apply(puts(1..=5)).await?;
        machine
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await?;
        machine.apply(puts(6..=8)).await?;
    }
    cut_short(dir.path())?;
    let mut machine = open(dir.path())?;
    assert!(!machine.store().torn()?);
    let (applied, _) = machine.applied_state().await?;
    assert_eq!(applied.map(|id| id.index), Some(5));
    assert_eq!(value(&machine, "k3")?, Some(b"v3".to_vec()));
    assert_eq!(value(&machine, "k6")?, None);
    machine.apply(puts(6..=8)).await?;
    assert_eq!(machine.store().hash_kv(0)?, expected);
    drop(machine);

    // Without a snapshot: emptied, then everything applied again.
    let dir = tempfile::TempDir::new()?;
    {
        let mut machine = open(dir.path())?;
        machine.apply(puts(1..=8)).await?;
    }
    cut_short(dir.path())?;
    let mut machine = open(dir.path())?;
    assert!(!machine.store().torn()?);
    assert_eq!(machine.applied_state().await?.0, None);
    assert_eq!(value(&machine, "k3")?, None);
    machine.apply(puts(1..=8)).await?;
    assert_eq!(machine.store().hash_kv(0)?, expected);
    Ok(())
}
