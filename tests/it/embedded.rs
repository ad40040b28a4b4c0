//! The `embedded` runtime end to end: the test image (scripts/build-test-image.sh, busybox-static)
//! imported with `keel image import`, a pod of it run by keel-agent through RuntimeClass
//! `embedded`, `kubectl logs` and `kubectl exec` into it, the image's env, a write that stays in
//! the container, and after deletion no mount or container directory left; an image not in the
//! store gives ErrImagePull, then ImagePullBackOff, with the way to import it. Runs as root
//! (namespaces, overlayfs, cgroups); skipped with a message otherwise. Everything it made is
//! torn down, also when it fails.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use keel_agent::{NodeConfig, Runtimes, Timings};
use keel_runtime::host::{HostConfig, HostRuntime};
use keel_runtime::image::ImageStore;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::sync::oneshot;

use crate::kube_api::ControlPlane;
use crate::poll::eventually;

/// The node's pod network: link-local, inside namespaces this test makes.
const POD_CIDR: &str = "169.254.43.0/24";
const NODE: &str = "embedded-node";
const KEEL: &str = env!("CARGO_BIN_EXE_keel");

/// Removes every sandbox, the bridge and the cgroups, even when the test failed.
struct Teardown(Option<HostRuntime>);

impl Drop for Teardown {
    fn drop(&mut self) {
        let Some(host) = self.0.take() else { return };
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            if let Err(e) = runtime.block_on(host.teardown_all()) {
                eprintln!("teardown of the runtime: {e}");
            }
        })
        .join();
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a command to its end: (exit code, stdout, stderr).
fn run(program: &str, args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let out = std::process::Command::new(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, *v)))
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Mount points, in any process's view, under `dir`.
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

fn waiting_reason(pod: &Pod) -> Option<(String, String)> {
    let status = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let waiting = status.state.as_ref()?.waiting.as_ref()?;
    Some((
        waiting.reason.clone().unwrap_or_default(),
        waiting.message.clone().unwrap_or_default(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_runs_from_an_imported_image_with_logs_exec_and_a_clean_removal() {
    if !is_root() {
        eprintln!("skipping: the embedded runtime needs root (namespaces, overlayfs, cgroups)");
        return;
    }
    let cp = ControlPlane::start(1).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("agent");
    // The image, built and imported as a user would.
    let tar = dir.path().join("busybox.tar");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/build-test-image.sh");
    let (code, _, err) = run(script.to_str().unwrap(), &[tar.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    let data_arg = data.to_str().unwrap();
    let (code, out, err) = run(
        KEEL,
        &[
            "image",
            "import",
            tar.to_str().unwrap(),
            "--data-dir",
            data_arg,
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("imported docker.io/library/busybox:latest (sha256:"),
        "{out}"
    );
    let (_, listed, _) = run(KEEL, &["image", "ls", "--data-dir", data_arg], &[]);
    assert!(
        listed
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("docker.io/library/busybox:latest"),
        "{listed}"
    );

    let host = HostRuntime::new(HostConfig {
        data_dir: dir.path().join("runtime"),
        pod_cidr: POD_CIDR.parse().unwrap(),
        bridge: "keelit-embed".into(),
        cgroup_parent: "keel-it-embedded".into(),
        shim: vec![KEEL.into(), "runtime-shim".into()],
    })
    .unwrap();
    let _teardown = Teardown(Some(host.clone()));
    let embedded = host.embedded(ImageStore::open(data.join("images")).unwrap());
    let pki = cp.kubeconfig.parent().unwrap().join("pki");
    let client = cp.cluster.apiservers[0].client(&format!("system:node:{NODE}"), &["system:nodes"]);
    let mut config = NodeConfig::new(NODE, data.clone(), "embedded");
    config.pod_cidr = Some(POD_CIDR.into());
    config.api = Some(keel::node_agent::agent_api(&pki, NODE, config.address).unwrap());
    config.timings = Timings {
        lease_renew_interval: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(100),
        pod_resync: Duration::from_millis(300),
        ..Timings::default()
    };
    let runtimes = std::sync::Arc::new(move |_: &keel_agent::RuntimeContext<'_>| {
        Ok(Runtimes::new().with(embedded.clone()).with(host.clone()))
    }) as keel_agent::MakeRuntimes;
    let (stop, stopped) = oneshot::channel::<()>();
    let agent = tokio::spawn(keel_agent::run(
        client,
        vec![config],
        runtimes,
        async move {
            let _ = stopped.await;
        },
    ));

    let admin = cp.cluster.apiservers[0].client("admin", &["system:masters"]);
    let pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    let web: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"nodeName": NODE, "runtimeClassName": "embedded", "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "app", "image": "busybox", "env": [{"name": "GREETING", "value": "hi"}],
                // args only: the image's Entrypoint (none) + these.
                "args": ["sh", "-c", "echo image=$KEEL_TEST_IMAGE greeting=$GREETING; echo kept > /root/proof; exec sleep 3600"]}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &web).await.unwrap();
    eventually("pod web Running", || async {
        let pod = pods.get_opt("web").await.ok()??;
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    let env = [("KUBECONFIG", cp.kubeconfig.as_path())];
    let logs = eventually("web's log line", || async {
        let (code, out, _) = run("kubectl", &["logs", "web"], &env);
        (code == 0 && !out.is_empty()).then_some(out)
    })
    .await;
    assert_eq!(logs, "image=busybox greeting=hi\n");
    let (code, out, err) = run(
        "kubectl",
        &[
            "exec",
            "web",
            "--",
            "sh",
            "-c",
            "cat /root/proof; echo $KEEL_TEST_IMAGE; cat /etc/hostname; ls /usr 2>&1 || true",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "kept\nbusybox\nweb\nls: /usr: No such file or directory\n"
    );
    assert!(
        !Path::new("/root/proof").exists(),
        "the container wrote to the host's root"
    );
    let (code, _, _) = run(
        "kubectl",
        &["exec", "web", "--", "sh", "-c", "exit 3"],
        &env,
    );
    assert_eq!(code, 3);
    let containers = dir.path().join("runtime/containers");
    assert!(
        !mounts_under(&containers).is_empty(),
        "the container's root is mounted"
    );

    // Deleted: no container, mount or writable layer is left.
    pods.delete("web", &DeleteParams::default()).await.unwrap();
    eventually("web gone", || async {
        pods.get_opt("web").await.ok()?.is_none().then_some(())
    })
    .await;
    eventually("no container dir or mount left", || async {
        let left = std::fs::read_dir(&containers).ok()?.count();
        (left == 0 && mounts_under(&containers).is_empty()).then_some(())
    })
    .await;

    // An image nobody imported.
    let missing: Pod = serde_json::from_value(json!({
        "metadata": {"name": "missing"},
        "spec": {"nodeName": NODE, "runtimeClassName": "embedded",
            "containers": [{"name": "app", "image": "registry.local/nosuch:2"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &missing).await.unwrap();
    // ErrImagePull lasts one sync before ImagePullBackOff replaces it, so a poll may see
    // either; both carry the store's message.
    let (_, message) = eventually("ErrImagePull", || async {
        let pod = pods.get_opt("missing").await.ok()??;
        waiting_reason(&pod)
            .filter(|(reason, _)| reason == "ErrImagePull" || reason == "ImagePullBackOff")
    })
    .await;
    assert!(
        message.ends_with(
            "image \"registry.local/nosuch:2\" is not in the local image store (no registry \
             pulls yet): import it with `keel image import FILE.tar`"
        ),
        "{message}"
    );
    let (_, message) = eventually("ImagePullBackOff", || async {
        let pod = pods.get_opt("missing").await.ok()??;
        waiting_reason(&pod).filter(|(reason, _)| reason == "ImagePullBackOff")
    })
    .await;
    assert!(
        message.starts_with("Back-off pulling image \"registry.local/nosuch:2\""),
        "{message}"
    );

    let _ = stop.send(());
    agent.await.unwrap().unwrap();
}
