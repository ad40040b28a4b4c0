//! A cluster of `keel serve` processes on 127.0.0.1, each behind its own fault-injecting
//! [`proxy`](super::proxy), that the fault schedule kills, restarts, pauses, partitions and
//! reshapes. Every child is killed when the cluster is dropped (on success, failure and panic).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keel::client::{Client, Options};

use super::proxy::{self, Links};

/// The cluster token every member is started with: member ids derive from it and the URL.
const TOKEN: &str = "keel-chaos";
/// Raft timing of the members, ms: short, so faults cost little wall time.
pub const HEARTBEAT_MS: u64 = 50;
/// See [`HEARTBEAT_MS`].
pub const ELECTION_TIMEOUT_MS: u64 = 500;

/// One member: its process, ports and proxy.
pub struct Node {
    /// `n1`, `n2`, ...
    pub name: String,
    /// The Raft member id (derived from the token and the proxy's URL).
    pub id: u64,
    /// Where clients reach it directly.
    pub client_url: String,
    /// Its advertised peer URL: the proxy's.
    pub proxy_url: String,
    data_dir: PathBuf,
    log: PathBuf,
    peer_addr: SocketAddr,
    client_addr: SocketAddr,
    proxy: tokio::task::JoinHandle<()>,
    child: Option<Child>,
    /// The `--initial-cluster` and `--initial-cluster-state` it first started with, kept
    /// for restarts: a newcomer restarted as `new` could initialize a cluster of its own.
    initial: (String, &'static str),
    /// SIGSTOPped.
    pub paused: bool,
}

impl Node {
    /// Whether the process runs (it may be paused).
    pub fn is_up(&self) -> bool {
        self.child.is_some()
    }

    /// How the process ended, if it ended by itself (no member should: keel exits only when
    /// its consensus died, and that is a bug the run must report).
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// The last `lines` lines of the member's log, headed by its name, without the frames of
    /// backtraces (a panic's message is what tells).
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let is_frame = |line: &str| {
            let line = line.trim_start();
            line.starts_with("at ")
                || line
                    .split(':')
                    .next()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
        };
        let all: Vec<&str> = text.lines().filter(|l| !is_frame(l)).collect();
        let mut out = format!(
            "--- {} ({:x}), last {lines} lines of its log:\n",
            self.name, self.id
        );
        for line in &all[all.len().saturating_sub(lines)..] {
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    fn spawn(&mut self, snapshot_count: u64) {
        assert!(self.child.is_none(), "{} already runs", self.name);
        let (initial_cluster, state) = (&self.initial.0, self.initial.1);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("a log file");
        let child = Command::new(env!("CARGO_BIN_EXE_keel"))
            .arg("serve")
            .args(["--name", &self.name])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--listen-client-urls", &self.client_url])
            .args(["--advertise-client-urls", &self.client_url])
            .args(["--listen-peer-urls", &format!("http://{}", self.peer_addr)])
            .args(["--initial-advertise-peer-urls", &self.proxy_url])
            .args(["--initial-cluster", initial_cluster.as_str()])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", TOKEN])
            .args(["--heartbeat-interval", &HEARTBEAT_MS.to_string()])
            .args(["--election-timeout", &ELECTION_TIMEOUT_MS.to_string()])
            .args(["--snapshot-count", &snapshot_count.to_string()])
            // A short log behind each snapshot: a member down for a while, or a newcomer, is
            // caught up by an install-snapshot.
            .args([
                "--snapshot-catchup-entries",
                &(snapshot_count / 2).to_string(),
            ])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("keel serve starts");
        self.child = Some(child);
        self.paused = false;
    }

    /// SIGKILL: no shutdown code runs, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP (`pause = true`) or SIGCONT.
    pub fn signal_pause(&mut self, pause: bool) {
        let Some(child) = &self.child else { return };
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill(1) runs");
        assert!(status.success(), "kill {signal} {}", self.name);
        self.paused = pause;
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        self.proxy.abort();
    }
}

/// The cluster.
pub struct Cluster {
    /// Current members, in the order they joined.
    pub nodes: Vec<Node>,
    /// Members removed by a membership change (kept until the end: their logs).
    pub retired: Vec<Node>,
    /// The links the proxies obey.
    pub links: Arc<Links>,
    /// Client URLs of the current members, for the traffic's clients.
    pub endpoints: Arc<Mutex<Vec<String>>>,
    snapshot_count: u64,
    next_name: usize,
    /// Where data dirs and logs live (kept if the run panics).
    dir: Option<tempfile::TempDir>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Members first: their processes hold the files.
        self.nodes.clear();
        self.retired.clear();
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!(
                    "chaos: the members' data and logs are kept in {}",
                    dir.keep().display()
                );
            }
        }
    }
}

/// A free port on 127.0.0.1 for a child to bind (see [`crate::free_port`]): peers must know
/// each other's URLs before any of them starts.
fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::free_port()))
}

impl Cluster {
    /// Starts `size` members, each snapshotting every `snapshot_count` entries.
    pub async fn start(size: usize, snapshot_count: u64) -> Cluster {
        let mut cluster = Cluster {
            nodes: Vec::new(),
            retired: Vec::new(),
            links: Arc::default(),
            endpoints: Arc::default(),
            snapshot_count,
            next_name: 1,
            dir: Some(tempfile::tempdir().expect("a temp dir")),
        };
        for _ in 0..size {
            let node = cluster.new_node().await;
            cluster.nodes.push(node);
        }
        let initial = cluster.initial_cluster(None);
        for node in &mut cluster.nodes {
            node.initial = (initial.clone(), "new");
            node.spawn(snapshot_count);
        }
        cluster.publish_endpoints();
        cluster
    }

    async fn new_node(&mut self) -> Node {
        let name = format!("n{}", self.next_name);
        self.next_name += 1;
        // The proxy's listener stays bound by this process: no race for its port.
        let proxy_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a proxy port");
        let proxy_url = format!("http://{}", proxy_listener.local_addr().unwrap());
        let id = keel::raft_replica::member_id(TOKEN, &proxy_url);
        let (peer_addr, client_addr) = (free_addr(), free_addr());
        let proxy = proxy::spawn(proxy_listener, id, peer_addr, self.links.clone());
        Node {
            data_dir: self.dir().path().join(&name),
            log: self.dir().path().join(format!("{name}.log")),
            name,
            id,
            client_url: format!("http://{client_addr}"),
            proxy_url,
            peer_addr,
            client_addr,
            proxy,
            child: None,
            initial: (String::new(), "new"),
            paused: false,
        }
    }

    fn initial_cluster(&self, extra: Option<&Node>) -> String {
        self.nodes
            .iter()
            .chain(extra)
            .map(|n| format!("{}={}", n.name, n.proxy_url))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn dir(&self) -> &tempfile::TempDir {
        self.dir
            .as_ref()
            .expect("the dir lives as long as the cluster")
    }

    fn publish_endpoints(&self) {
        *self.endpoints.lock().unwrap() = self.nodes.iter().map(|n| n.client_url.clone()).collect();
    }

    /// Restarts member `index` from its data dir.
    pub fn restart(&mut self, index: usize) {
        let snapshot_count = self.snapshot_count;
        self.nodes[index].spawn(snapshot_count);
    }

    /// A client of one member only.
    pub fn client_of(&self, index: usize) -> Client {
        Client::new(vec![self.nodes[index].client_url.clone()], options()).unwrap()
    }

    /// A client of every member.
    pub fn client(&self) -> Client {
        Client::new(self.endpoints.lock().unwrap().clone(), options()).unwrap()
    }

    /// A client of every member that waits `command_timeout` for an answer: for the checks
    /// after the run, which may take long (a physical compaction of half the history) and have
    /// no traffic to keep moving.
    pub fn patient_client(&self, command_timeout: Duration) -> Client {
        let options = Options {
            command_timeout,
            ..options()
        };
        Client::new(self.endpoints.lock().unwrap().clone(), options).unwrap()
    }

    /// Polls the running, unpaused members until they agree on a leader among them; its index.
    /// No agreement by the deadline is a failure of the run (liveness), described, and so is
    /// a member that exited by itself.
    pub async fn leader(&mut self, deadline: Duration) -> Result<usize, String> {
        let start = Instant::now();
        loop {
            for node in &mut self.nodes {
                if let Some(status) = node.exited() {
                    return Err(format!(
                        "{} exited by itself ({status})\n{}",
                        node.name,
                        node.log_tail(40)
                    ));
                }
            }
            let mut seen = Vec::new();
            for (index, node) in self.nodes.iter().enumerate() {
                if !node.is_up() || node.paused {
                    continue;
                }
                let status = self.client_of(index).status().await;
                seen.push((node.name.as_str(), status.map(|s| s.leader).ok()));
            }
            let leaders: Vec<Option<u64>> = seen.iter().map(|(_, l)| *l).collect();
            if let Some(&Some(leader)) = leaders.first() {
                if leader != 0 && leaders.iter().all(|&l| l == Some(leader)) {
                    if let Some(index) = self.nodes.iter().position(|n| n.id == leader) {
                        return Ok(index);
                    }
                }
            }
            if start.elapsed() > deadline {
                return Err(format!(
                    "no agreed leader within {deadline:?}; each member's leader: {seen:x?} ({})",
                    self.describe()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Membership change under load: removes member `index` (stopping it), then adds a fresh
    /// member with an empty data dir as a learner, starts it and promotes it once it caught
    /// up. With the leader's log purged by snapshots, the newcomer is caught up by an
    /// install-snapshot. Returns the newcomer's id, or which step did not succeed in time.
    pub async fn replace_member(
        &mut self,
        index: usize,
        deadline: Duration,
    ) -> Result<u64, String> {
        let start = Instant::now();
        let gone = self.nodes[index].id;
        let survivors: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.id != gone)
            .map(|n| n.client_url.clone())
            .collect();
        let client = Client::new(survivors, options()).unwrap();
        // Each step is retried; an answer that was lost although the change was made shows
        // up on the retry as "already done", which is success.
        let done_already = |result: keel::client::Result<()>, says: &str| match result {
            Err(e) if e.to_string().contains(says) => Ok(()),
            other => other,
        };
        retry(start, deadline, "member remove", || async {
            done_already(
                client.member_remove(gone).await.map(drop),
                "member not found",
            )
        })
        .await?;
        let mut removed = self.nodes.remove(index);
        removed.kill();
        self.retired.push(removed);
        self.publish_endpoints();

        let mut newcomer = self.new_node().await;
        let peer_url = newcomer.proxy_url.clone();
        retry(start, deadline, "member add", || async {
            match client.member_add(vec![peer_url.clone()], true).await {
                Ok(added) if added.member.id != newcomer.id => {
                    panic!(
                        "member add gave {:x}, not the id of the URL",
                        added.member.id
                    )
                }
                result => done_already(result.map(drop), "Peer URLs already exists"),
            }
        })
        .await?;
        newcomer.initial = (self.initial_cluster(Some(&newcomer)), "existing");
        newcomer.spawn(self.snapshot_count);
        let id = newcomer.id;
        self.nodes.push(newcomer);
        retry(start, deadline, "member promote", || async {
            done_already(
                client.member_promote(id).await.map(drop),
                "can only promote a learner",
            )
        })
        .await?;
        self.publish_endpoints();
        Ok(id)
    }

    /// Where the members' logs are, for a failure report.
    pub fn logs(&self) -> Vec<PathBuf> {
        self.nodes
            .iter()
            .chain(&self.retired)
            .map(|n| n.log.clone())
            .collect()
    }

    /// The last `lines` lines of each member's log, headed by its name: what a failure prints,
    /// since CI keeps a failed test's output and not the report directory.
    pub fn log_tails(&self, lines: usize) -> String {
        self.nodes
            .iter()
            .chain(&self.retired)
            .map(|node| node.log_tail(lines))
            .collect()
    }

    /// The address of a member's client listener (for its status line in a report).
    pub fn describe(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("{}={:x}@{}", n.name, n.id, n.client_addr))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Client timeouts: short enough that a stalled member makes an operation indefinite rather
/// than stalling the run.
pub fn options() -> Options {
    Options {
        dial_timeout: Duration::from_millis(500),
        command_timeout: Duration::from_secs(2),
    }
}

/// Repeats `call` until it succeeds, or says why not at the deadline.
async fn retry<T, F, Fut>(
    start: Instant,
    deadline: Duration,
    what: &str,
    mut call: F,
) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = keel::client::Result<T>>,
{
    loop {
        match call().await {
            Ok(answer) => return Ok(answer),
            Err(e) if start.elapsed() > deadline => {
                return Err(format!("{what} did not succeed within {deadline:?}: {e}"))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
