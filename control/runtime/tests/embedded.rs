//! The embedded runtime on this machine (root): the test image built by
//! scripts/build-test-image.sh from busybox-static, imported into a store, run on an overlay
//! of its layer in the pod's namespaces. Each test has its own data dir, CIDR (169.254.22x.0/24),
//! bridge and cgroup parent, torn down also when it fails (the `Node` guard).
//!
//! Run: `cargo test -p keel-runtime --test embedded` (busybox-static from
//! scripts/install-test-deps.sh).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keel_runtime::host::{HostConfig, HostRuntime};
use keel_runtime::image::ImageStore;
use keel_runtime::{
    ContainerConfig, ContainerId, ContainerState, Limits, Mount, Runtime, RuntimeError,
    SandboxConfig, SandboxId,
};

const SHIM: &str = env!("CARGO_BIN_EXE_keel-runtime-shim");

/// One node's host runtime and its embedded twin over a temporary data dir; torn down on drop.
struct Node {
    host: HostRuntime,
    runtime: HostRuntime,
    store: ImageStore,
    dir: tempfile::TempDir,
}

impl Node {
    fn new(n: u8) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("{}e{n}", std::process::id() % 100_000);
        let host = HostRuntime::new(HostConfig {
            data_dir: dir.path().join("data"),
            pod_cidr: format!("169.254.{}.0/24", 220 + n).parse().unwrap(),
            bridge: format!("kt{tag}"),
            cgroup_parent: format!("keel-test-{tag}"),
            shim: vec![SHIM.into()],
        })
        .unwrap();
        let image = dir.path().join("busybox.tar");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-test-image.sh");
        let built = std::process::Command::new(script)
            .arg(&image)
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let store = ImageStore::open(dir.path().join("images")).unwrap();
        store.import(&image).unwrap();
        let runtime = host.embedded(store.clone());
        Node {
            host,
            runtime,
            store,
            dir,
        }
    }

    async fn sandbox(&self, name: &str) -> SandboxId {
        let config = SandboxConfig {
            pod_uid: format!("uid-{name}"),
            namespace: "default".into(),
            name: name.into(),
            hostname: name.into(),
            host_network: false,
            resolv_conf: Some("nameserver 169.254.20.10\n".into()),
            limits: Limits::default(),
            labels: BTreeMap::new(),
        };
        self.runtime.run_sandbox(&config).await.unwrap().id
    }

    /// A container of the test image; `command` says whether `argv` is the pod's command
    /// (else its args).
    fn container(&self, name: &str, command: bool, argv: &[&str]) -> ContainerConfig {
        ContainerConfig {
            name: name.into(),
            attempt: 0,
            image: "busybox".into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            command_given: command,
            working_dir: None,
            env: vec![("GREETING".into(), "hi".into())],
            mounts: vec![],
            limits: Limits::default(),
            log_path: self.dir.path().join(format!("logs/{name}.log")),
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
            assert!(Instant::now() < deadline, "{id:?} did not exit: {status:?}");
            let _ = tokio::time::timeout(Duration::from_millis(200), events.recv()).await;
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let runtime = self.host.clone();
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

/// The log's contents, one entry per line, without the CRI prefix.
fn log_text(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| line.splitn(4, ' ').nth(3).unwrap_or("").to_string())
        .collect()
}

/// Mount points (in any process's view) under `dir`, or whose source is under it (an
/// overlay's upperdir), each once.
fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(info) = std::fs::read_to_string(entry.path().join("mountinfo")) {
            found.extend(info.lines().filter(|l| l.contains(&dir)).map(String::from));
        }
    }
    found.sort();
    found.dedup();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_runs_in_its_image_with_the_image_env_and_leaves_nothing_behind() {
    let node = Node::new(0);
    let sandbox = node.sandbox("web").await;
    // Args only: the image has no Entrypoint, so they are the whole argv.
    let script = "echo image=$KEEL_TEST_IMAGE greeting=$GREETING home=$HOME pwd=$(pwd); \
                  cat /etc/hostname; grep nameserver /etc/resolv.conf; \
                  [ -d /usr/lib ] && echo host-root || echo image-root; \
                  echo written > /root/proof; ls /dev; id -u; echo $$";
    let config = node.container("main", false, &["sh", "-c", script]);
    let id = node.run(&sandbox, &config).await;
    assert_eq!(
        node.exited(&id).await,
        (0, "Completed".into(), String::new())
    );
    let lines = log_text(&config.log_path);
    assert_eq!(lines[0], "image=busybox greeting=hi home=/root pwd=/");
    assert_eq!(lines[1], "web");
    assert_eq!(lines[2], "nameserver 169.254.20.10");
    assert_eq!(lines[3], "image-root");
    for device in ["null", "zero", "urandom", "pts", "shm"] {
        assert!(
            lines.contains(&device.to_string()),
            "/dev lacks {device}: {lines:?}"
        );
    }
    assert_eq!(lines[lines.len() - 2], "0");
    assert_eq!(lines[lines.len() - 1], "1", "the argv is PID 1");
    // The write went to the container's own layer, not the host's root nor the image.
    assert!(!Path::new("/root/proof").exists());
    let upper = node
        .data()
        .join("containers")
        .join(&id.0)
        .join("rootfs/upper/root/proof");
    assert_eq!(std::fs::read_to_string(&upper).unwrap(), "written\n");

    node.runtime.remove_container(&id).await.unwrap();
    assert!(!node.data().join("containers").join(&id.0).exists());
    assert_eq!(
        mounts_under(&node.data().join("containers")),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_runs_in_the_containers_root_and_volumes_are_mounted() {
    let node = Node::new(1);
    let sandbox = node.sandbox("exec").await;
    let volume = node.dir.path().join("volume");
    std::fs::create_dir_all(&volume).unwrap();
    std::fs::write(volume.join("config"), "from the volume\n").unwrap();
    let mut config = node.container("main", true, &["sleep", "1000"]);
    config.working_dir = Some("/work".into());
    config.mounts = vec![Mount {
        host_path: volume.clone(),
        container_path: "/etc/app".into(),
        read_only: true,
    }];
    let id = node.run(&sandbox, &config).await;
    let exec = |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let runtime = node.runtime.clone();
        let id = id.clone();
        async move {
            let out = runtime
                .exec_sync(&id, &argv, Duration::from_secs(10))
                .await
                .unwrap();
            (
                out.exit_code,
                String::from_utf8_lossy(&out.stdout).trim().to_string(),
            )
        }
    };
    assert_eq!(
        exec(&["cat", "/etc/app/config"]).await,
        (0, "from the volume".into())
    );
    assert_eq!(
        exec(&["sh", "-c", "pwd; echo $KEEL_TEST_IMAGE"]).await,
        (0, "/work\nbusybox".into())
    );
    let (code, _) = exec(&["sh", "-c", "echo x > /etc/app/new"]).await;
    assert_ne!(code, 0, "a read-only volume took a write");
    assert_eq!(
        exec(&["sh", "-c", "ps -o pid,args | grep -c 'sleep 1000$'"])
            .await
            .1,
        "1"
    );
    let containers = node.data().join("containers");
    assert!(
        !mounts_under(&containers).is_empty(),
        "the running container's root is mounted"
    );

    // Removing the image while a container runs on it keeps the layers its overlay stacks.
    let layers = node.store.resolve("busybox").unwrap().layers;
    node.store.remove("busybox").unwrap();
    assert!(node.store.list().unwrap().is_empty());
    assert!(layers
        .iter()
        .all(|layer| layer.join("bin/busybox").exists()));
    assert_eq!(exec(&["cat", "/etc/app/config"]).await.0, 0);

    node.runtime
        .stop_container(&id, Duration::from_secs(1))
        .await
        .unwrap();
    node.runtime.remove_container(&id).await.unwrap();
    let id = ContainerId(id.0.clone());
    assert!(node.runtime.container_status(&id).await.is_err());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mounts_under(&containers).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", mounts_under(&containers));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_is_an_image_pull_error_and_sandboxes_stay_with_their_runtime() {
    let node = Node::new(2);
    let sandbox = node.sandbox("missing").await;
    let mut config = node.container("main", true, &["true"]);
    config.image = "registry.local/nosuch:1".into();
    match node.runtime.create_container(&sandbox, &config).await {
        Err(RuntimeError::ImagePull { image, message }) => {
            assert_eq!(image, "registry.local/nosuch:1");
            assert!(
                message.contains("\"registry.local/nosuch:1\" is not in the local image store")
                    && message.contains("keel image import"),
                "{message}"
            );
        }
        other => panic!("expected an image pull error, got {other:?}"),
    }
    let containers = std::fs::read_dir(node.data().join("containers"))
        .unwrap()
        .count();
    assert_eq!(containers, 0, "a failed create leaves no container dir");
    // The embedded runtime lists its sandbox; the host runtime beside it does not.
    assert_eq!(node.runtime.list_sandboxes().await.unwrap().len(), 1);
    assert!(node.host.list_sandboxes().await.unwrap().is_empty());
}
