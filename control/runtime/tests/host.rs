//! The host runtime on this machine (root): real namespaces, veths, cgroups and processes.
//! Every test makes its own runtime (own data dir, 169.254.21x.0/24 CIDR, bridge and cgroup
//! parent) and tears it all down on the way out, also when it fails (the `Node` guard).
//!
//! Run: `cargo test -p keel-runtime --test host` (busybox-static from
//! scripts/install-test-deps.sh).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keel_runtime::host::{HostConfig, HostRuntime};
use keel_runtime::{
    ContainerConfig, ContainerId, ContainerState, ContainerStatus, Limits, Mount, Runtime,
    SandboxConfig, SandboxId,
};

const SHIM: &str = env!("CARGO_BIN_EXE_keel-runtime-shim");
const BUSYBOX: &str = "/usr/bin/busybox";

/// One agent's runtime over a temporary data dir; torn down on drop.
struct Node {
    runtime: HostRuntime,
    config: HostConfig,
    dir: tempfile::TempDir,
}

impl Node {
    fn new(n: u8) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("{}x{n}", std::process::id() % 100_000);
        let config = HostConfig {
            data_dir: dir.path().join("data"),
            pod_cidr: format!("169.254.{}.0/24", 210 + n).parse().unwrap(),
            bridge: format!("kt{tag}"),
            cgroup_parent: format!("keel-test-{tag}"),
            shim: vec![SHIM.into()],
        };
        let runtime = HostRuntime::new(config.clone()).unwrap();
        Node {
            runtime,
            config,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    async fn sandbox(&self, name: &str) -> (SandboxId, Option<IpAddr>) {
        let sandbox = self
            .runtime
            .run_sandbox(&sandbox_config(name))
            .await
            .unwrap();
        (sandbox.id, sandbox.ip)
    }

    fn container(&self, name: &str, argv: &[&str]) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            attempt: 0,
            image: "host".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            command_given: true,
            working_dir: None,
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            mounts: vec![],
            limits: Limits::default(),
            log_path: self.path(&format!("logs/{name}.log")),
            labels: BTreeMap::new(),
            stdio: Default::default(),
        }
    }

    async fn run(&self, sandbox: &SandboxId, config: &ContainerConfig) -> ContainerId {
        let id = self
            .runtime
            .create_container(sandbox, config)
            .await
            .unwrap();
        self.runtime.start_container(&id).await.unwrap();
        id
    }

    /// Waits (with a deadline, through subscribe) for the container to exit.
    async fn exited(&self, id: &ContainerId) -> (i32, String, String) {
        let mut events = self.runtime.subscribe();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.runtime.container_status(id).await.unwrap();
            if let ContainerState::Exited {
                exit_code,
                reason,
                message,
                ..
            } = status.state
            {
                return (exit_code, reason, message);
            }
            assert!(
                Instant::now() < deadline,
                "container {id:?} did not exit: {status:?}"
            );
            let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
        }
    }

    fn cgroup_dir(&self, hierarchy: &str, sandbox: &SandboxId, container: &ContainerId) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join(&self.config.cgroup_parent)
            .join(format!("pod-{}", sandbox.0))
            .join(&container.0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let runtime = self.runtime.clone();
        let done = std::thread::spawn(move || {
            let tokio = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            tokio.block_on(runtime.teardown_all())
        })
        .join();
        if !std::thread::panicking() {
            done.unwrap().unwrap();
        }
    }
}

fn sandbox_config(name: &str) -> SandboxConfig {
    SandboxConfig {
        pod_uid: format!("uid-{name}"),
        namespace: "default".into(),
        name: name.into(),
        hostname: name.into(),
        host_network: false,
        resolv_conf: Some("nameserver 169.254.20.10\nsearch default.svc.cluster.local\n".into()),
        limits: Limits::default(),
        labels: BTreeMap::new(),
    }
}

/// The (stream, tag, content) of each CRI log line, checking each timestamp.
fn log_lines(path: &Path) -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let mut fields = line.splitn(4, ' ');
            let time = fields.next().unwrap();
            time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|e| panic!("bad timestamp in {line:?}: {e}"));
            let stream = fields.next().unwrap().to_string();
            let tag = fields.next().unwrap().to_string();
            (stream, tag, fields.next().unwrap_or("").to_string())
        })
        .collect()
}

fn contents(lines: &[(String, String, String)], stream: &str) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.0 == stream)
        .map(|l| l.2.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_logs_in_cri_format_as_pid_1_with_the_pod_ip_hostname_and_exact_env() {
    let node = Node::new(0);
    let (sandbox, ip) = node.sandbox("web").await;
    let ip = ip.expect("a pod IP");
    assert_eq!(ip.to_string(), "169.254.210.2");
    let script = "echo pid=$$; busybox hostname; busybox ip -o -4 addr show dev eth0; \
                  cat /etc/resolv.conf; echo oops >&2; exit 0";
    let mut config = node.container("main", &["/bin/sh", "-c", script]);
    config.env = vec![
        ("PATH".into(), "/usr/bin:/bin".into()),
        ("GREETING".into(), "hi".into()),
    ];
    let id = node.run(&sandbox, &config).await;
    assert_eq!(
        node.exited(&id).await,
        (0, "Completed".into(), String::new())
    );
    let lines = log_lines(&config.log_path);
    let stdout = contents(&lines, "stdout");
    assert_eq!(stdout[0], "pid=1");
    assert_eq!(stdout[1], "web");
    assert!(stdout[2].contains(&format!("inet {ip}/24")), "{stdout:?}");
    assert!(
        stdout.contains(&"nameserver 169.254.20.10".to_string()),
        "{stdout:?}"
    );
    assert_eq!(contents(&lines, "stderr"), ["oops"]);
    assert!(lines.iter().all(|l| l.1 == "F"));

    // The environment is exactly the one given, nothing of the agent's.
    let env = node.container("env", &["env"]);
    let env = ContainerConfig {
        env: config.env.clone(),
        ..env
    };
    let id = node.run(&sandbox, &env).await;
    assert_eq!(node.exited(&id).await.0, 0);
    assert_eq!(
        contents(&log_lines(&env.log_path), "stdout"),
        ["PATH=/usr/bin:/bin", "GREETING=hi"]
    );

    // A working dir and a read-only mount.
    std::fs::create_dir_all(node.path("vol")).unwrap();
    std::fs::write(node.path("vol/data"), "from the volume\n").unwrap();
    let mut mounted = node.container(
        "mounted",
        &[
            "/bin/sh",
            "-c",
            "pwd; cat data; echo x > data || echo read-only",
        ],
    );
    mounted.working_dir = Some(node.path("mnt"));
    mounted.mounts = vec![Mount {
        host_path: node.path("vol"),
        container_path: node.path("mnt"),
        read_only: true,
    }];
    let id = node.run(&sandbox, &mounted).await;
    assert_eq!(node.exited(&id).await.0, 0);
    let out = contents(&log_lines(&mounted.log_path), "stdout");
    assert_eq!(
        out,
        [
            node.path("mnt").display().to_string(),
            "from the volume".into(),
            "read-only".into()
        ]
    );
    // The mount was in the container's namespace only.
    assert!(!node.path("mnt/data").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_containers_share_loopback_the_host_reaches_the_pod_ip_and_exec_joins() {
    let node = Node::new(1);
    let (sandbox, ip) = node.sandbox("pair").await;
    let ip = ip.unwrap();
    let site = node.path("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("index.html"), "hello from the pod\n").unwrap();
    let server = node.container(
        "server",
        &[
            BUSYBOX,
            "httpd",
            "-f",
            "-p",
            "8080",
            "-h",
            site.to_str().unwrap(),
        ],
    );
    let server_id = node.run(&sandbox, &server).await;
    let client = node.container(
        "client",
        &[
            "/bin/sh",
            "-c",
            "readlink /proc/self/ns/ipc; for i in $(seq 100); do busybox wget -q -O - http://127.0.0.1:8080/index.html && exit 0; \
             sleep 0.1; done; exit 1",
        ],
    );
    let client_id = node.run(&sandbox, &client).await;
    assert_eq!(node.exited(&client_id).await.0, 0);
    let client_out = contents(&log_lines(&client.log_path), "stdout");
    assert_eq!(client_out[1..], ["hello from the pod"]);
    // Both containers are in the pod's IPC namespace, not the host's.
    let ipc = node
        .runtime
        .exec_sync(
            &server_id,
            &["readlink".into(), "/proc/1/ns/ipc".into()],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(String::from_utf8(ipc.stdout).unwrap().trim(), client_out[0]);
    let host_ipc = std::fs::read_link("/proc/self/ns/ipc").unwrap();
    assert_ne!(host_ipc.display().to_string(), client_out[0]);

    // The host reaches the pod IP through the bridge.
    let response = http_get(ip, 8080).await;
    assert!(response.contains("hello from the pod"), "{response}");

    // exec_sync runs in the container's pid namespace (PID 1 is httpd), env and network.
    let exec = node
        .runtime
        .exec_sync(
            &server_id,
            &["/bin/sh".into(), "-c".into(), "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $PATH; busybox hostname; echo err >&2; exit 3".into()],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(exec.exit_code, 3);
    let stdout = String::from_utf8(exec.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{BUSYBOX} httpd -f -p 8080")),
        "{stdout}"
    );
    assert_eq!(lines[1..], ["/usr/bin:/bin", "pair"]);
    assert_eq!(exec.stderr, b"err\n");
    let timed_out = node
        .runtime
        .exec_sync(
            &server_id,
            &["sleep".into(), "30".into()],
            Duration::from_millis(300),
        )
        .await
        .unwrap_err();
    assert!(timed_out.to_string().contains("timed out"), "{timed_out}");
    let missing = node
        .runtime
        .exec_sync(&server_id, &["nosuch".into()], Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(missing.exit_code, 127);
}

async fn http_get(ip: IpAddr, port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::net::TcpStream::connect((ip, port)).await {
            Ok(mut stream) => {
                stream
                    .write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
                    .await
                    .unwrap();
                let mut response = String::new();
                stream.read_to_string(&mut response).await.unwrap();
                return response;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "connecting to {ip}:{port}: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_are_set_before_exec_and_a_memory_limit_oom_kills() {
    let node = Node::new(2);
    let (sandbox, _) = node.sandbox("limited").await;
    let mut config = node.container(
        "hog",
        &[
            "/bin/sh",
            "-c",
            "cat /proc/self/cgroup; exec busybox dd if=/dev/zero of=/dev/null bs=256M count=1",
        ],
    );
    config.limits = Limits {
        memory_bytes: Some(32 << 20),
        cpu_millis: Some(500),
        cpu_request_millis: Some(250),
        pids: Some(64),
    };
    let id = node
        .runtime
        .create_container(&sandbox, &config)
        .await
        .unwrap();
    let read = |hierarchy: &str, file: &str| {
        std::fs::read_to_string(node.cgroup_dir(hierarchy, &sandbox, &id).join(file))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(
        read("memory", "memory.limit_in_bytes"),
        (32u64 << 20).to_string()
    );
    assert_eq!(read("cpu", "cpu.cfs_quota_us"), "50000");
    assert_eq!(read("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(read("cpu", "cpu.shares"), "256");
    assert_eq!(read("pids", "pids.max"), "64");
    node.runtime.start_container(&id).await.unwrap();
    let (code, reason, _) = node.exited(&id).await;
    assert_eq!((code, reason.as_str()), (137, "OOMKilled"));
    // The very first thing the argv did was already inside the container's cgroups.
    let stdout = contents(&log_lines(&config.log_path), "stdout");
    let want = format!(
        ":memory:/{}/pod-{}/{}",
        node.config.cgroup_parent, sandbox.0, id.0
    );
    assert!(stdout.iter().any(|l| l.ends_with(&want)), "{stdout:?}");

    let mut fine = node.container("fine", &["/bin/sh", "-c", "exit 4"]);
    fine.limits.memory_bytes = Some(32 << 20);
    let id = node.run(&sandbox, &fine).await;
    assert_eq!(node.exited(&id).await, (4, "Error".into(), String::new()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_escalates_to_sigkill_after_the_grace_and_a_missing_executable_is_a_start_error() {
    let node = Node::new(3);
    let (sandbox, _) = node.sandbox("stopper").await;
    // `sleep` as PID 1 has no SIGTERM handler, so the kernel drops SIGTERM for it.
    let id = node
        .run(&sandbox, &node.container("sleeper", &["sleep", "1000"]))
        .await;
    let grace = Duration::from_millis(500);
    let began = Instant::now();
    node.runtime.stop_container(&id, grace).await.unwrap();
    assert!(
        began.elapsed() >= grace,
        "stopped before the grace: {:?}",
        began.elapsed()
    );
    assert_eq!(node.exited(&id).await, (137, "Error".into(), String::new()));

    // A process that handles SIGTERM ends with its own code.
    let polite = node.container(
        "polite",
        &[
            "/bin/sh",
            "-c",
            "trap 'exit 3' TERM; echo ready; while :; do sleep 0.05; done",
        ],
    );
    let id = node.run(&sandbox, &polite).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&polite.log_path)
        .unwrap_or_default()
        .contains("ready")
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    node.runtime
        .stop_container(&id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(node.exited(&id).await.0, 3);

    let missing = node.container("missing", &["nosuch"]);
    let id = node
        .runtime
        .create_container(&sandbox, &missing)
        .await
        .unwrap();
    let message = r#"exec: "nosuch": executable file not found in $PATH"#;
    let err = node.runtime.start_container(&id).await.unwrap_err();
    assert!(
        matches!(err, keel_runtime::RuntimeError::Start(ref m) if m == message),
        "{err:?}"
    );
    assert_eq!(
        node.exited(&id).await,
        (128, "StartError".into(), message.into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_runtime_on_the_same_data_dir_adopts_running_containers_and_learns_their_exit() {
    let node = Node::new(4);
    let flag = node.path("done");
    let script = format!(
        "while [ ! -e {} ]; do sleep 0.05; done; exit 7",
        flag.display()
    );
    // The first agent runs on its own Tokio runtime, shut down as an agent process ends.
    let config = node.container("survivor", &["/bin/sh", "-c", &script]);
    let host_config = node.config.clone();
    let (sandbox, id) = std::thread::spawn(move || {
        let tokio = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let made = tokio.block_on(async {
            let first = HostRuntime::new(host_config).unwrap();
            let sandbox = first
                .run_sandbox(&sandbox_config("survivor"))
                .await
                .unwrap()
                .id;
            let id = first.create_container(&sandbox, &config).await.unwrap();
            first.start_container(&id).await.unwrap();
            (sandbox, id)
        });
        drop(tokio);
        made
    })
    .join()
    .unwrap();
    let second = HostRuntime::new(node.config.clone()).unwrap();
    let listed: Vec<ContainerStatus> = second.list_containers().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, id);
    assert!(
        matches!(listed[0].state, ContainerState::Running { .. }),
        "{listed:?}"
    );
    let sandboxes = second.list_sandboxes().await.unwrap();
    assert_eq!(
        (sandboxes[0].id.clone(), sandboxes[0].ready),
        (sandbox, true)
    );
    let mut events = second.subscribe();
    std::fs::write(&flag, "").unwrap();
    let changed = tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(changed, id);
    let status = second.container_status(&id).await.unwrap();
    assert!(
        matches!(status.state, ContainerState::Exited { exit_code: 7, .. }),
        "{status:?}"
    );
    // `node.runtime`, opened before the sandbox existed, still tears it down (on drop).
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_sandbox_leaves_no_netns_link_cgroup_mount_or_process() {
    let node = Node::new(5);
    let (sandbox, ip) = node.sandbox("gone").await;
    assert!(ip.is_some());
    let id = node
        .run(&sandbox, &node.container("runner", &["sleep", "1000"]))
        .await;
    let init = std::fs::read_to_string(node.cgroup_dir("pids", &sandbox, &id).join("cgroup.procs"))
        .unwrap()
        .trim()
        .parse::<i32>()
        .unwrap();
    let netns = PathBuf::from(format!("/run/netns/keel-{}", sandbox.0));
    let veth = PathBuf::from(format!("/sys/class/net/kv{}", &sandbox.0[..12]));
    let pod_cgroups: Vec<PathBuf> = ["memory", "cpu", "pids"]
        .iter()
        .map(|h| {
            Path::new("/sys/fs/cgroup")
                .join(h)
                .join(&node.config.cgroup_parent)
                .join(format!("pod-{}", sandbox.0))
        })
        .collect();
    let mounted = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(&sandbox.0))
            .count()
    };
    assert!(netns.exists() && veth.exists() && pod_cgroups.iter().all(|c| c.exists()));
    assert_eq!(mounted(), 3, "net, uts and ipc namespaces are pinned");
    assert!(Path::new(&format!("/proc/{init}")).exists());

    node.runtime.stop_sandbox(&sandbox).await.unwrap();
    assert!(!node.runtime.list_sandboxes().await.unwrap()[0].ready);
    assert!(matches!(node.exited(&id).await, (137, _, _)));
    node.runtime.remove_sandbox(&sandbox).await.unwrap();
    assert!(!netns.exists(), "netns left");
    assert!(!veth.exists(), "veth left");
    for cgroup in &pod_cgroups {
        assert!(!cgroup.exists(), "cgroup {} left", cgroup.display());
    }
    assert_eq!(mounted(), 0, "mounts left");
    assert!(
        !Path::new(&format!("/proc/{init}")).exists(),
        "process {init} left"
    );
    assert!(node.runtime.list_sandboxes().await.unwrap().is_empty());
    assert!(node.runtime.list_containers().await.unwrap().is_empty());
    assert!(!node
        .config
        .data_dir
        .join("sandboxes")
        .join(&sandbox.0)
        .exists());
    // The IP is free again.
    let (again, ip_again) = node.sandbox("again").await;
    assert_eq!(ip_again, ip);
    node.runtime.remove_sandbox(&again).await.unwrap();

    node.runtime.teardown_all().await.unwrap();
    assert!(
        !Path::new("/sys/class/net")
            .join(&node.config.bridge)
            .exists(),
        "bridge left"
    );
    for hierarchy in ["memory", "cpu", "pids"] {
        let parent = Path::new("/sys/fs/cgroup")
            .join(hierarchy)
            .join(&node.config.cgroup_parent);
        assert!(!parent.exists(), "{} left", parent.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_network_pod_shares_the_nodes_network_and_hostname_but_not_its_pids() {
    let node = Node::new(6);
    let config = SandboxConfig {
        host_network: true,
        hostname: String::new(),
        resolv_conf: None,
        ..sandbox_config("hostnet")
    };
    let sandbox = node.runtime.run_sandbox(&config).await.unwrap();
    assert_eq!(sandbox.ip, None);
    let script = "echo pid=$$; busybox hostname; readlink /proc/self/ns/net";
    let config = node.container("main", &["/bin/sh", "-c", script]);
    let id = node.run(&sandbox.id, &config).await;
    assert_eq!(node.exited(&id).await.0, 0);
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let host_net = std::fs::read_link("/proc/self/ns/net").unwrap();
    assert_eq!(
        contents(&log_lines(&config.log_path), "stdout"),
        [
            "pid=1".to_string(),
            host_name.trim().to_string(),
            host_net.display().to_string()
        ]
    );
    // Stopping twice and removing twice are fine.
    node.runtime.stop_sandbox(&sandbox.id).await.unwrap();
    node.runtime.stop_sandbox(&sandbox.id).await.unwrap();
    node.runtime.remove_sandbox(&sandbox.id).await.unwrap();
    node.runtime.remove_sandbox(&sandbox.id).await.unwrap();
    node.runtime.stop_sandbox(&sandbox.id).await.unwrap();
}

/// Not a test: the start latency of a pod (run_sandbox + create_container + start_container,
/// which returns once the argv has exec'd), p50/p99 over 100 pods, printed. Run:
/// `cargo test -p keel-runtime --release --test host -- --ignored --nocapture start_latency`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn start_latency() {
    let node = Node::new(9);
    let mut sandbox_times = Vec::new();
    let mut totals = Vec::new();
    for i in 0..100 {
        let began = Instant::now();
        let (sandbox, _) = node.sandbox(&format!("p{i}")).await;
        sandbox_times.push(began.elapsed());
        let id = node
            .run(
                &sandbox,
                &node.container(&format!("c{i}"), &["sleep", "1000"]),
            )
            .await;
        totals.push(began.elapsed());
        assert!(matches!(
            node.runtime.container_status(&id).await.unwrap().state,
            ContainerState::Running { .. }
        ));
        node.runtime.remove_sandbox(&sandbox).await.unwrap();
    }
    let percentile = |times: &mut Vec<Duration>, p: usize| {
        times.sort();
        times[(times.len() * p / 100).min(times.len() - 1)]
    };
    println!(
        "sandbox: p50 {:?} p99 {:?}; sandbox+container started: p50 {:?} p99 {:?}",
        percentile(&mut sandbox_times, 50),
        percentile(&mut sandbox_times, 99),
        percentile(&mut totals, 50),
        percentile(&mut totals, 99),
    );
}

/// Reads `output` until `want` appears (at most 30 s); everything read.
async fn read_until(
    output: &mut std::pin::Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    want: &str,
) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&seen).contains(want) {
        let read = tokio::time::timeout_at(deadline, output.read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("no {want:?} in {:?}", String::from_utf8_lossy(&seen)))
            .unwrap();
        assert!(read > 0, "end of output before {want:?}: {seen:?}");
        seen.extend_from_slice(&chunk[..read]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_reaches_a_containers_own_stdin_and_terminal_and_detaching_leaves_it_running() {
    use tokio::io::AsyncWriteExt as _;
    let node = Node::new(7);
    let (sandbox, _) = node.sandbox("attach").await;

    // stdin without a terminal, stdinOnce: the container reads what the first client sends
    // and sees end-of-file when that client leaves.
    let mut cat = node.container("cat", &[BUSYBOX, "sh", "-c", "cat; echo stdin ended"]);
    cat.stdio = keel_runtime::Stdio {
        stdin: true,
        stdin_once: true,
        tty: false,
    };
    let cat_id = node.run(&sandbox, &cat).await;
    let mut session = node.runtime.attach(&cat_id, true).await.unwrap();
    let mut stdin = session.stdin.take().expect("stdin");
    stdin.write_all(b"first line\n").await.unwrap();
    assert_eq!(
        read_until(&mut session.stdout, "first line").await,
        "first line\n"
    );
    drop(stdin);
    read_until(&mut session.stdout, "stdin ended").await;
    assert_eq!((&mut session.exit).await.unwrap(), 0);
    assert_eq!(node.exited(&cat_id).await.0, 0);

    // A shell on a terminal: typed lines are echoed and run; a client that detaches leaves
    // it running, and the next one reaches the same shell.
    let mut shell = node.container("shell", &[BUSYBOX, "sh"]);
    shell.env.push(("PS1".into(), "$ ".into()));
    shell.stdio = keel_runtime::Stdio {
        stdin: true,
        stdin_once: false,
        tty: true,
    };
    let shell_id = node.run(&sandbox, &shell).await;
    let mut first = node.runtime.attach(&shell_id, true).await.unwrap();
    assert!(first.stderr.is_none(), "a terminal has one output stream");
    let resize = first.resize.as_ref().expect("a terminal resizes");
    resize(keel_runtime::TerminalSize {
        width: 91,
        height: 33,
    })
    .unwrap();
    let mut input = first.stdin.take().unwrap();
    input.write_all(b"echo sum=$((40+2))\n").await.unwrap();
    read_until(&mut first.stdout, "sum=42").await;
    input.write_all(b"stty size; tty\n").await.unwrap();
    let answer = read_until(&mut first.stdout, "/dev/pts/").await;
    assert!(answer.contains("33 91"), "{answer:?}");
    drop((input, first));
    let status = node.runtime.container_status(&shell_id).await.unwrap();
    assert!(matches!(status.state, ContainerState::Running { .. }));
    let mut second = node.runtime.attach(&shell_id, true).await.unwrap();
    let mut input = second.stdin.take().unwrap();
    input.write_all(b"exit 7\n").await.unwrap();
    assert_eq!((&mut second.exit).await.unwrap(), 7);
    assert_eq!(node.exited(&shell_id).await.0, 7);

    // A container without stdin is attached to for its output only.
    let quiet = node.container("quiet", &[BUSYBOX, "sleep", "60"]);
    let quiet_id = node.run(&sandbox, &quiet).await;
    let session = node.runtime.attach(&quiet_id, true).await.unwrap();
    assert!(session.stdin.is_none());
}
