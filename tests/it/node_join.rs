//! A node joins a `keel serve --control-plane` process the kubeadm way: `keel token create`
//! prints the join command, `keel agent --join …` (hollow runtime) discovers the CA by its
//! pin, asks for its certificate with a CSR the controller manager approves and signs, runs
//! as `system:node:<name>` (Ready in `kubectl get nodes`) and rotates its certificate before
//! it expires. A wrong pin or an unknown or expired token is refused with a clear message,
//! and a bootstrap token can do no more than ask for a certificate.

use std::path::Path;
use std::process::Stdio;

use crate::agent_streams::Kubectl;
use crate::kube_api::kubectl::ProductionMember;
use crate::poll::eventually;

const NODE: &str = "joined-node";

/// `keel ARGS`, its exit code, stdout and stderr.
async fn keel(args: &[&str]) -> (i32, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A kubeconfig that authenticates with `token` only.
fn token_kubeconfig(dir: &Path, server: &str, ca: &Path, token: &str) -> std::path::PathBuf {
    let path = dir.join(format!("token-{}.kubeconfig", &token[..6]));
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority: {}\nusers:\n- name: u\n  user:\n    token: {token}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n",
        ca.display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_with_a_bootstrap_token_and_rotates_its_certificate() {
    let member = ProductionMember::prepare();
    let _serve = member.serve().spawn().expect("keel serve");
    let admin = member.kubeconfig.to_str().unwrap().to_owned();
    let kubectl = Kubectl {
        kubeconfig: member.kubeconfig.clone(),
        cache: tempfile::tempdir().unwrap(),
    };
    kubectl.wait_until_serving().await;

    // keel token create prints the whole join command.
    let (code, stdout, stderr) =
        keel(&["token", "create", "--kubeconfig", &admin, "--ttl", "1h"]).await;
    assert_eq!(code, 0, "keel token create: {stderr}");
    let words: Vec<&str> = stdout.split_whitespace().collect();
    assert_eq!(words[..3], ["keel", "agent", "--join"], "{stdout}");
    let after = |flag: &str| {
        let at = words.iter().position(|w| *w == flag).unwrap();
        words[at + 1].to_owned()
    };
    let (server, token, hash) = (after("--join"), after("--token"), after("--ca-cert-hash"));
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
    let listed = keel(&["token", "list", "--kubeconfig", &admin]).await;
    assert!(
        listed.1.contains(&format!("{}.<secret>", &token[..6])),
        "{}",
        listed.1
    );

    // A bootstrap token may ask for a certificate, and nothing more.
    let dir = member.dir.path();
    let as_token = Kubectl {
        kubeconfig: token_kubeconfig(dir, &server, &member.pki.join("ca.crt"), &token),
        cache: tempfile::tempdir().unwrap(),
    };
    let can = |args: &'static [&'static str]| {
        let as_token = &as_token;
        async move {
            let mut all = vec!["auth", "can-i"];
            all.extend_from_slice(args);
            as_token.run(&all, None).await.stdout.trim().to_owned()
        }
    };
    assert_eq!(can(&["create", "certificatesigningrequests"]).await, "yes");
    assert_eq!(can(&["list", "pods", "-A"]).await, "no");
    assert_eq!(can(&["get", "secrets", "-n", "kube-system"]).await, "no");
    assert_eq!(can(&["create", "nodes"]).await, "no");
    let denied = as_token.run(&["get", "nodes"], None).await;
    assert_ne!(denied.code, 0);
    assert!(
        denied.stderr.contains("Forbidden") || denied.stderr.contains("forbidden"),
        "{}",
        denied.stderr
    );

    let data = dir.join("agent");
    let data_arg = data.to_str().unwrap().to_owned();
    let join_args = |token: &str, hash: &str| -> Vec<String> {
        [
            "agent",
            "--join",
            &server,
            "--token",
            token,
            "--ca-cert-hash",
            hash,
            "--hollow",
            "--node-name",
            NODE,
            "--data-dir",
            &data_arg,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
    };
    let run_join = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        keel(&args).await
    };

    // A wrong pin: the agent stops before it sends the token anywhere.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let (code, _, stderr) = run_join(join_args(&token, &wrong)).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("none of the public keys"), "{stderr}");

    // An unknown token, and an expired one.
    let (code, _, stderr) = run_join(join_args("abcdef.0123456789abcdef", &hash)).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("refused the bootstrap token"), "{stderr}");
    kubectl
        .ok(&[
            "create",
            "secret",
            "generic",
            "bootstrap-token-zzzzzz",
            "-n",
            "kube-system",
            "--type",
            "bootstrap.kubernetes.io/token",
            "--from-literal=token-id=zzzzzz",
            "--from-literal=token-secret=0123456789zzzzzz",
            "--from-literal=usage-bootstrap-authentication=true",
            "--from-literal=expiration=2020-01-01T00:00:00Z",
        ])
        .await;
    let (code, _, stderr) = run_join(join_args("zzzzzz.0123456789zzzzzz", &hash)).await;
    assert_ne!(code, 0);
    assert!(stderr.contains("refused the bootstrap token"), "{stderr}");
    // The tokencleaner removes the expired token's Secret.
    eventually("the expired token's Secret is deleted", || async {
        let out = kubectl
            .run(
                &[
                    "get",
                    "secret",
                    "bootstrap-token-zzzzzz",
                    "-n",
                    "kube-system",
                ],
                None,
            )
            .await;
        (out.code != 0 && out.stderr.contains("NotFound")).then_some(())
    })
    .await;

    // The real join: a 10-minute certificate (the shortest a CSR may ask for) renewed at a
    // third of its life, which with the signer's 5-minute backdate is seconds after issue.
    let mut args = join_args(&token, &hash);
    args.extend(
        [
            "--certificate-expiration-seconds",
            "600",
            "--certificate-rotation-threshold",
            "0.34",
        ]
        .map(str::to_owned),
    );
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("keel agent --join");
    kubectl.wait_node_ready(NODE).await;
    let csrs = kubectl
        .ok(&["get", "csr", "-o", "jsonpath={range .items[*]}{.spec.username} {.status.conditions[0].type} {.status.conditions[0].reason}{\"\\n\"}{end}"])
        .await;
    let bootstrap_user = format!("system:bootstrap:{}", &token[..6]);
    assert!(
        csrs.lines()
            .any(|l| l == format!("{bootstrap_user} Approved AutoApproved")),
        "{csrs}"
    );
    let issued = kubectl.ok(&["get", "csr"]).await;
    assert!(issued.contains("Approved,Issued"), "{issued}");
    let first_cert = std::fs::read_to_string(data.join("pki/node.crt")).unwrap();
    assert!(data.join("kubeconfig").exists());

    // Rotation: the node asks again with its own credentials (selfnodeclient) and swaps.
    let node_user = format!("system:node:{NODE}");
    eventually("the node renews its certificate", || async {
        let csrs = kubectl
            .run(&["get", "csr", "-o", "jsonpath={range .items[*]}{.spec.username} {.status.conditions[0].type}{\"\\n\"}{end}"], None)
            .await
            .stdout;
        let renewed = std::fs::read_to_string(data.join("pki/node.crt")).unwrap_or_default();
        (csrs.lines().any(|l| l == format!("{node_user} Approved")) && renewed != first_cert)
            .then_some(())
    })
    .await;
    // Still Ready on the renewed certificate: its heartbeats go on.
    let renewed_at = kubectl
        .ok(&[
            "get",
            "lease",
            NODE,
            "-n",
            "kube-node-lease",
            "-o",
            "jsonpath={.spec.renewTime}",
        ])
        .await;
    eventually("the node's lease is renewed after rotation", || async {
        let now = kubectl
            .run(
                &[
                    "get",
                    "lease",
                    NODE,
                    "-n",
                    "kube-node-lease",
                    "-o",
                    "jsonpath={.spec.renewTime}",
                ],
                None,
            )
            .await
            .stdout;
        (now != renewed_at).then_some(())
    })
    .await;
    agent.kill().await.unwrap();

    // A restart reuses the kubeconfig: no new bootstrap CSR.
    let before = kubectl
        .ok(&["get", "csr", "-o", "name"])
        .await
        .lines()
        .count();
    let mut args = join_args(&token, &hash);
    args.extend(["--certificate-expiration-seconds", "600"].map(str::to_owned));
    let mut again = tokio::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(again.stdout.take().unwrap());
    let mut line = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line)
        .await
        .unwrap();
    if line.is_empty() {
        let mut stderr = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut again.stderr.take().unwrap(), &mut stderr)
            .await
            .unwrap();
        panic!("the restarted agent ended: {stderr}");
    }
    assert!(line.contains("using the credentials"), "{line}");
    let bootstrap_csrs = kubectl
        .ok(&[
            "get",
            "csr",
            "-o",
            "jsonpath={range .items[*]}{.spec.username}{\"\\n\"}{end}",
        ])
        .await;
    assert_eq!(
        bootstrap_csrs
            .lines()
            .filter(|l| *l == bootstrap_user)
            .count(),
        1,
        "{bootstrap_csrs}"
    );
    assert!(
        kubectl
            .ok(&["get", "csr", "-o", "name"])
            .await
            .lines()
            .count()
            >= before
    );
    again.kill().await.unwrap();
}
