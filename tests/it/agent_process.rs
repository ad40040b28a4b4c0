//! `keel serve --control-plane` and `keel agent` as separate processes, wired as production
//! runs them: certificates from `keel pki`, the API server's `--kubelet-client-*` files and the
//! agent's `--tls-cert-file`, `--tls-private-key-file`, `--client-ca-file`. `kubectl logs` and
//! `kubectl exec` reach a pod through them. Runs as root (the host runtime); skipped otherwise.

use std::process::Stdio;

use crate::agent_streams::{is_root, Kubectl, Teardown};
use crate::kube_api::kubectl::ProductionMember;
use crate::poll::eventually;

const NODE: &str = "proc-node";
/// The node's pods, and the cluster's pod and service ranges: link-local.
const POD_CIDR: &str = "169.254.44.0/24";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_logs_and_exec_through_keel_serve_and_keel_agent() {
    if !is_root() {
        eprintln!("skipping: the host runtime needs root (network namespaces, cgroups)");
        return;
    }
    let keel = env!("CARGO_BIN_EXE_keel");
    let member = ProductionMember::prepare();
    member.run_pki(&["client", "kube-apiserver-kubelet-client"]);
    let (pki, kubeconfig) = (&member.pki, &member.kubeconfig);
    let agent_port = crate::free_port();

    let data = member.dir.path().join("agent");
    let host_config = keel::node_agent::host_config(
        &data,
        NODE,
        POD_CIDR,
        vec![keel.into(), "runtime-shim".into()],
    )
    .unwrap();
    // Declared before the processes, so it runs after they are killed.
    let _teardown = Teardown(Some(
        keel_runtime::host::HostRuntime::new(host_config).unwrap(),
    ));
    let _member = member
        .serve()
        .args(["--cluster-cidr", "169.254.0.0/18"])
        .args(["--service-cluster-ip-range", "169.254.64.0/20"])
        .arg("--kubelet-client-certificate")
        .arg(pki.join("kube-apiserver-kubelet-client.crt"))
        .arg("--kubelet-client-key")
        .arg(pki.join("kube-apiserver-kubelet-client.key"))
        .arg("--kubelet-certificate-authority")
        .arg(pki.join("ca.crt"))
        .spawn()
        .expect("keel serve");
    let kubectl = Kubectl {
        kubeconfig: kubeconfig.clone(),
        cache: tempfile::tempdir().unwrap(),
    };
    kubectl.wait_until_serving().await;
    let _agent = tokio::process::Command::new(keel)
        .arg("agent")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--node-name",
            NODE,
            "--runtime",
            "host",
            "--pod-cidr",
            POD_CIDR,
        ])
        .arg("--data-dir")
        .arg(&data)
        .arg("--tls-cert-file")
        .arg(pki.join("n1.crt"))
        .arg("--tls-private-key-file")
        .arg(pki.join("n1.key"))
        .arg("--client-ca-file")
        .arg(pki.join("ca.crt"))
        .args(["--port", &agent_port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("keel agent");

    kubectl.wait_node_ready(NODE).await;
    kubectl
        .ok(&[
            "run",
            "talker",
            "--image=busybox",
            "--restart=Never",
            "--command",
            "--",
            "/bin/sh",
            "-c",
            "echo hello from the agent; exec sleep 3600",
        ])
        .await;
    let logs = eventually("talker's log through the agent API", || async {
        let out = kubectl.run(&["logs", "talker"], None).await;
        (out.code == 0 && !out.stdout.is_empty()).then_some(out.stdout)
    })
    .await;
    assert_eq!(logs, "hello from the agent\n");
    assert_eq!(
        kubectl
            .ok(&["exec", "talker", "--", "/bin/sh", "-c", "echo exec works"])
            .await,
        "exec works\n"
    );
    // The agent's port is the one asked for, as the Node reports it.
    let port = kubectl
        .ok(&[
            "get",
            "node",
            NODE,
            "-o",
            "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}",
        ])
        .await;
    assert_eq!(port, agent_port.to_string());
    kubectl
        .ok(&["delete", "pod", "talker", "--grace-period=1"])
        .await;
}
