//! `kubectl logs`, `kubectl exec` and attach through the API server to keel-agent's own HTTPS
//! API, on the `host` runtime (real processes): logs of a pod and of a Deployment, `--tail`,
//! `--timestamps`, `-f` that ends when the container exits, exec with stdout, stderr, an exit
//! code and stdin, a terminal (`tty`), `kubectl run -i --rm` (attach with stdinOnce), the
//! errors kube gives (unknown container, pod without a node, agent API refusing anyone but the
//! API server), and the Python client's `stream()` exec. (Attach to a terminal is tested on
//! the runtime: control/runtime/tests/host.rs.) Runs as root
//! (network namespaces, cgroups); skipped with a message otherwise. Everything it made is torn
//! down, also when it fails.

use std::os::unix::fs::MetadataExt as _;
use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use keel_agent::{NodeConfig, Runtimes, Timings};
use keel_runtime::host::{HostConfig, HostRuntime};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::oneshot;

use crate::kube_api::ControlPlane;
use crate::poll::eventually;

/// The node's pod network: link-local, inside namespaces this test makes.
const POD_CIDR: &str = "169.254.42.0/24";
const NODE: &str = "stream-node";

/// Removes every sandbox, the bridge and the cgroups of `host`, even when the test failed.
pub(crate) struct Teardown(pub(crate) Option<HostRuntime>);

impl Drop for Teardown {
    fn drop(&mut self) {
        let Some(host) = self.0.take() else { return };
        // The test's own runtime may be gone (a panic): a fresh one on its own thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            if let Err(e) = runtime.block_on(host.teardown_all()) {
                eprintln!("teardown of the host runtime: {e}");
            }
        })
        .join();
    }
}

pub(crate) fn is_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// kubectl as a user runs it: its exit code, stdout and stderr.
pub(crate) struct Kubectl {
    pub(crate) kubeconfig: std::path::PathBuf,
    pub(crate) cache: tempfile::TempDir,
}

pub(crate) struct Ran {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Kubectl {
    pub(crate) async fn run(&self, args: &[&str], stdin: Option<&str>) -> Ran {
        let mut child = tokio::process::Command::new("kubectl")
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("kubectl is installed");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).await.unwrap();
        }
        drop(input);
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not end"))
            .unwrap();
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let ran = self.run(args, None).await;
        assert_eq!(
            ran.code, 0,
            "kubectl {args:?} failed: {}{}",
            ran.stdout, ran.stderr
        );
        ran.stdout
    }

    /// Polls until the API server behind the kubeconfig answers kubectl.
    pub(crate) async fn wait_until_serving(&self) {
        eventually("the API server answers", || async {
            let out = self.run(&["get", "namespace", "default"], None).await;
            (out.code == 0).then_some(())
        })
        .await;
    }

    /// Polls until `kubectl get node NAME` shows the Ready condition True.
    pub(crate) async fn wait_node_ready(&self, name: &str) {
        let ready = "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}";
        eventually(&format!("node {name} Ready"), || async {
            let out = self.run(&["get", "node", name, "-o", ready], None).await;
            (out.stdout.trim() == "True").then_some(())
        })
        .await;
    }
}

fn pod(name: &str, spec: serde_json::Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
}

async fn running(pods: &Api<Pod>, name: &str) {
    eventually(&format!("pod {name} Running"), || async {
        let pod = pods.get_opt(name).await.ok()??;
        (pod.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_and_exec_reach_pods_through_the_agent() {
    if !is_root() {
        eprintln!("skipping: the host runtime needs root (network namespaces, cgroups)");
        return;
    }
    let mut cp = ControlPlane::start(1).await;
    // The scheduler and the controllers: `kubectl logs deploy/web` needs a Deployment's pods.
    cp.cluster.start_components();
    let dir = tempfile::tempdir().unwrap();
    let host = HostRuntime::new(HostConfig {
        data_dir: dir.path().join("runtime-host"),
        pod_cidr: POD_CIDR.parse().unwrap(),
        bridge: "keelit-streams".into(),
        cgroup_parent: "keel-it-streams".into(),
        shim: vec![env!("CARGO_BIN_EXE_keel").into(), "runtime-shim".into()],
    })
    .unwrap();
    let _teardown = Teardown(Some(host.clone()));
    let pki = cp.kubeconfig.parent().unwrap().join("pki");
    let client = cp.cluster.apiservers[0].client(&format!("system:node:{NODE}"), &["system:nodes"]);
    let mut config = NodeConfig::new(NODE, dir.path().join("agent"), "host");
    config.pod_cidr = Some(POD_CIDR.into());
    config.api = Some(keel::node_agent::agent_api(&pki, NODE, config.address).unwrap());
    config.timings = Timings {
        lease_renew_interval: Duration::from_millis(200),
        backoff_initial: Duration::from_millis(100),
        pod_resync: Duration::from_millis(300),
        ..Timings::default()
    };
    let runtimes = {
        let host = host.clone();
        std::sync::Arc::new(move |_: &keel_agent::RuntimeContext<'_>| {
            Ok(Runtimes::new().with(host.clone()))
        }) as keel_agent::MakeRuntimes
    };
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
    let post = PostParams::default();
    let kubectl = Kubectl {
        kubeconfig: cp.kubeconfig.clone(),
        cache: tempfile::tempdir().unwrap(),
    };

    // A pod that prints five lines and stays.
    let talker = pod(
        "talker",
        json!({"nodeName": NODE, "terminationGracePeriodSeconds": 1, "containers": [{
            "name": "app", "image": "busybox",
            "command": ["/bin/sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done; exec sleep 3600"]}]}),
    );
    pods.create(&post, &talker).await.unwrap();
    running(&pods, "talker").await;
    let all = eventually("talker's five lines", || async {
        let out = kubectl.run(&["logs", "talker"], None).await;
        (out.code == 0 && out.stdout.contains("line 5")).then_some(out.stdout)
    })
    .await;
    assert_eq!(all, "line 1\nline 2\nline 3\nline 4\nline 5\n");
    assert_eq!(
        kubectl.ok(&["logs", "talker", "--tail=2"]).await,
        "line 4\nline 5\n"
    );
    let stamped = kubectl
        .ok(&["logs", "talker", "--tail=1", "--timestamps"])
        .await;
    let (time, text) = stamped.trim_end().split_once(' ').unwrap();
    assert_eq!(text, "line 5");
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    assert!(
        time::OffsetDateTime::parse(time, rfc3339).is_ok(),
        "timestamp {time:?}"
    );
    assert_eq!(
        kubectl.ok(&["logs", "talker", "--limit-bytes=9"]).await,
        "line 1\nli"
    );

    // exec: stdout, stderr and the exit code come back; stdin goes in.
    let out = kubectl
        .run(
            &[
                "exec",
                "talker",
                "--",
                "sh",
                "-c",
                "echo hi; echo oops >&2; exit 3",
            ],
            None,
        )
        .await;
    assert_eq!(out.code, 3, "exit code: {}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout, "hi\n");
    assert!(out.stderr.contains("oops"), "stderr: {}", out.stderr);
    assert!(
        out.stderr.contains("command terminated with exit code 3"),
        "stderr: {}",
        out.stderr
    );
    let input = "some input\nand more\n";
    let out = kubectl
        .run(&["exec", "-i", "talker", "--", "cat"], Some(input))
        .await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, input),
        "{}",
        out.stderr
    );
    assert_eq!(
        kubectl.ok(&["exec", "talker", "--", "hostname"]).await,
        "talker\n"
    );

    // `logs -f` follows a container until it exits.
    let ticker = pod(
        "ticker",
        json!({"nodeName": NODE, "restartPolicy": "Never", "containers": [{
            "name": "app", "image": "busybox",
            "command": ["/bin/sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 1; done"]}]}),
    );
    pods.create(&post, &ticker).await.unwrap();
    running(&pods, "ticker").await;
    let followed = kubectl.ok(&["logs", "-f", "ticker"]).await;
    assert_eq!(followed, "tick 1\ntick 2\ntick 3\n");

    // A Deployment's logs, through the scheduler and the controllers.
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), "default");
    let web: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "terminationGracePeriodSeconds": 1,
                "containers": [{"name": "web", "image": "busybox",
                    "command": ["/bin/sh", "-c", "echo web says hi; exec sleep 3600"]}]}}}
    }))
    .unwrap();
    deployments.create(&post, &web).await.unwrap();
    eventually("the Deployment's log", || async {
        let out = kubectl.run(&["logs", "deploy/web"], None).await;
        (out.stdout == "web says hi\n").then_some(())
    })
    .await;

    // Errors, in kube's words.
    let out = kubectl.run(&["logs", "talker", "-c", "nope"], None).await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("container nope is not valid for pod talker"),
        "stderr: {}",
        out.stderr
    );
    let out = kubectl
        .run(&["exec", "talker", "-c", "nope", "--", "true"], None)
        .await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("container nope is not valid for pod talker"),
        "stderr: {}",
        out.stderr
    );
    let nowhere = pod(
        "nowhere",
        json!({"nodeSelector": {"no-such": "node"}, "containers": [{"name": "app", "image": "busybox",
            "command": ["sleep", "1"]}]}),
    );
    pods.create(&post, &nowhere).await.unwrap();
    let out = kubectl.run(&["exec", "nowhere", "--", "true"], None).await;
    assert_ne!(out.code, 0);
    assert!(
        out.stderr
            .contains("pod nowhere does not have a host assigned"),
        "stderr: {}",
        out.stderr
    );

    // The Python client's stream(): the exit code from the v4/v5 error channel.
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(PYTHON_EXEC)
        .arg(&cp.kubeconfig)
        .output()
        .await
        .expect("python3");
    assert!(
        out.status.success(),
        "python exec failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // attach: `kubectl run -i` sends stdin to the container's own stdin (stdinOnce) and
    // shows its output; --rm deletes the pod after.
    let out = kubectl
        .run(
            &[
                "run",
                "asker",
                "-i",
                "--rm",
                "--restart=Never",
                "--image=busybox",
                "--",
                "/bin/sh",
                "-c",
                "read line; echo got $line",
            ],
            Some("hello\n"),
        )
        .await;
    assert_eq!(out.code, 0, "kubectl run -i: {}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("got hello"),
        "stdout: {} stderr: {}",
        out.stdout,
        out.stderr
    );
    // Only the API server may call the agent: the admin's certificate, though signed by the
    // same CA, is refused.
    let node: k8s_openapi::api::core::v1::Node = Api::all(admin.clone()).get(NODE).await.unwrap();
    let port = node
        .status
        .unwrap()
        .daemon_endpoints
        .unwrap()
        .kubelet_endpoint
        .unwrap()
        .port;
    let refused = crate::kube_api::https(&cp, true)
        .get(format!(
            "https://127.0.0.1:{port}/containerLogs/default/talker/app"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 403);

    deployments
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    for name in ["talker", "ticker", "nowhere"] {
        pods.delete(name, &DeleteParams::default()).await.unwrap();
    }
    eventually("every pod gone", || async {
        let left = pods.list(&Default::default()).await.ok()?;
        left.items.is_empty().then_some(())
    })
    .await;
    eventually("every sandbox removed", || async {
        use keel_runtime::Runtime as _;
        host.list_sandboxes().await.ok()?.is_empty().then_some(())
    })
    .await;
    let _ = stop.send(());
    agent.await.unwrap().unwrap();
    cp.stop().await;
}

const PYTHON_EXEC: &str = r#"
import sys
from kubernetes import client, config
from kubernetes.stream import stream

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
out = stream(core.connect_get_namespaced_pod_exec, "talker", "default",
             command=["sh", "-c", "echo from python"], stderr=True, stdin=False,
             stdout=True, tty=False)
assert out == "from python\n", repr(out)
resp = stream(core.connect_get_namespaced_pod_exec, "talker", "default",
              command=["sh", "-c", "echo bye; exit 4"], stderr=True, stdin=False,
              stdout=True, tty=False, _preload_content=False)
resp.run_forever(timeout=30)
assert resp.returncode == 4, resp.returncode
# With a terminal: the command's stdin and stdout are a pty.
out = stream(core.connect_get_namespaced_pod_exec, "talker", "default",
             command=["tty"], stderr=False, stdin=False, stdout=True, tty=True)
assert out.startswith("/dev/pts/"), repr(out)
print("python exec ok")
"#;
