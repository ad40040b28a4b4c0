//! kubectl v1.32, as a user types it, against a member's API server.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::ControlPlane;

/// kubectl with its own discovery cache, pointed at a cluster's admin kubeconfig.
pub(crate) struct Kubectl {
    kubeconfig: std::path::PathBuf,
    cache: tempfile::TempDir,
}

impl Kubectl {
    pub(crate) fn new(cp: &ControlPlane) -> Kubectl {
        Kubectl {
            kubeconfig: cp.kubeconfig.clone(),
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("kubectl");
        command
            .env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.cache.path())
            .args(args);
        command
    }

    pub(super) fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.command(args);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("kubectl is installed");
        if let Some(text) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// Runs `args`, which must succeed; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    pub(super) fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Runs `args`, which must fail; returns stderr.
    pub(super) fn fails(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(!out.status.success(), "kubectl {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: c
        image: busybox:1.36
"#;

#[tokio::test]
async fn kubectl_gets_creates_replaces_scales_and_deletes() {
    let cp = ControlPlane::start(1).await;
    let kubectl = Kubectl::new(&cp);
    tokio::task::spawn_blocking(move || {
        let namespaces = kubectl.ok(&["get", "namespaces"]);
        let mut lines = namespaces.lines();
        assert_eq!(
            lines
                .next()
                .map(|l| l.split_whitespace().collect::<Vec<_>>()),
            Some(vec!["NAME", "STATUS", "AGE"])
        );
        assert!(
            namespaces.contains("kube-system") && namespaces.contains("Active"),
            "{namespaces}"
        );

        // kubectl validates -f through the server: OpenAPI v3 and fieldValidation=Strict.
        let created = kubectl.ok_with(&["create", "-f", "-"], Some(DEPLOYMENT));
        assert_eq!(created.trim(), "deployment.apps/web created");
        let again = kubectl.fails(&["create", "-f", "-"], Some(DEPLOYMENT));
        assert!(
            again.contains("Error from server (AlreadyExists)"),
            "{again}"
        );
        assert!(
            again.contains("deployments.apps \"web\" already exists"),
            "{again}"
        );

        let listed = kubectl.ok(&["get", "deploy"]);
        let header: Vec<&str> = listed.lines().next().unwrap().split_whitespace().collect();
        assert_eq!(header, ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
        assert!(listed.contains("web"));
        assert!(listed.lines().nth(1).unwrap().contains("0/2"), "{listed}");

        assert_eq!(
            kubectl.ok(&["scale", "deploy/web", "--replicas=4"]).trim(),
            "deployment.apps/web scaled"
        );
        let replicas = kubectl.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.metadata.generation}",
        ]);
        assert_eq!(replicas, "4 2");

        let replaced = DEPLOYMENT.replace("busybox:1.36", "busybox:1.37");
        assert_eq!(
            kubectl
                .ok_with(&["replace", "-f", "-"], Some(&replaced))
                .trim(),
            "deployment.apps/web replaced"
        );
        let image = kubectl.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}",
        ]);
        assert_eq!(image, "busybox:1.37");

        let labelled = kubectl.ok(&["label", "deploy", "web", "tier=front"]);
        assert_eq!(labelled.trim(), "deployment.apps/web labeled");
        let selected = kubectl.ok(&["get", "deploy", "-l", "tier in (front,back)", "-o", "name"]);
        assert_eq!(selected.trim(), "deployment.apps/web");
        let all = kubectl.ok(&["get", "all", "-A"]);
        assert!(all.contains("deployment.apps/web"), "{all}");

        let missing = kubectl.fails(&["get", "pod", "nope"], None);
        assert!(
            missing.contains("Error from server (NotFound): pods \"nope\" not found"),
            "{missing}"
        );

        assert_eq!(
            kubectl.ok(&["delete", "deploy", "web"]).trim(),
            "deployment.apps \"web\" deleted"
        );
        assert!(
            kubectl.ok(&["get", "deploy"]).trim().is_empty()
                || !kubectl.ok(&["get", "deploy", "-o", "name"]).contains("web")
        );
    })
    .await
    .unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn kubectl_apply_validates_against_the_servers_openapi() {
    let cp = ControlPlane::start(1).await;
    let kubectl = Kubectl::new(&cp);
    tokio::task::spawn_blocking(move || {
        let applied = kubectl.ok_with(&["apply", "-f", "-"], Some(DEPLOYMENT));
        assert_eq!(applied.trim(), "deployment.apps/web created");
        let last_applied = kubectl.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.metadata.annotations.kubectl\\.kubernetes\\.io/last-applied-configuration}",
        ]);
        assert!(last_applied.contains("\"replicas\":2"), "{last_applied}");

        // The second apply is a strategic merge patch computed from the last-applied annotation.
        let changed = DEPLOYMENT
            .replace("replicas: 2", "replicas: 3")
            .replace("busybox:1.36", "busybox:1.37");
        let applied = kubectl.ok_with(&["apply", "-f", "-"], Some(&changed));
        assert_eq!(applied.trim(), "deployment.apps/web configured");
        let state = kubectl.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image}",
        ]);
        assert_eq!(state, "3 busybox:1.37");
        let unchanged = kubectl.ok_with(&["apply", "-f", "-"], Some(&changed));
        assert_eq!(unchanged.trim(), "deployment.apps/web unchanged");

        // An unknown field: the server refuses it with kube's message and stores nothing.
        let typo = DEPLOYMENT
            .replace("name: web", "name: typo")
            .replace("  replicas: 2", "  replicas: 2\n  replica: 2");
        let refused = kubectl.fails(&["apply", "-f", "-"], Some(&typo));
        assert!(
            refused.contains(
                "Error from server (BadRequest): error when creating \"STDIN\": Deployment in \
                 version \"v1\" cannot be handled as a Deployment: strict decoding error: \
                 unknown field \"spec.replica\""
            ),
            "{refused}"
        );
        let missing = kubectl.fails(&["get", "deploy", "typo"], None);
        assert!(missing.contains("NotFound"), "{missing}");
        let refused = kubectl.fails(&["create", "-f", "-"], Some(&typo));
        assert!(
            refused.contains("unknown field \"spec.replica\""),
            "{refused}"
        );

        // The same field on an existing object: the patch is refused.
        let typo_on_web = changed.replace("  replicas: 3", "  replicas: 3\n  replica: 2");
        let refused = kubectl.fails(&["apply", "-f", "-"], Some(&typo_on_web));
        assert!(
            refused.contains("strict decoding error: unknown field \"spec.replica\""),
            "{refused}"
        );

        // --validate=warn: stored without the field, and kubectl prints the server's warning.
        let out = kubectl.run(&["apply", "--validate=warn", "-f", "-"], Some(&typo));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("Warning: unknown field \"spec.replica\""),
            "{stderr}"
        );
        let spec = kubectl.ok(&["get", "deploy", "typo", "-o", "jsonpath={.spec}"]);
        assert!(!spec.contains("\"replica\""), "{spec}");
        // --validate=false sends Ignore: nothing is said.
        let ignored = kubectl.run(&["replace", "--validate=false", "-f", "-"], Some(&typo));
        assert!(ignored.status.success());
        assert!(!String::from_utf8_lossy(&ignored.stderr).contains("Warning"));
    })
    .await
    .unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn kubectl_explain_reads_the_servers_schemas() {
    let cp = ControlPlane::start(1).await;
    let kubectl = Kubectl::new(&cp);
    tokio::task::spawn_blocking(move || {
        let replicas = kubectl.ok(&["explain", "deployment.spec.replicas"]);
        assert!(replicas.contains("GROUP:      apps"), "{replicas}");
        assert!(replicas.contains("KIND:       Deployment"), "{replicas}");
        assert!(replicas.contains("FIELD: replicas <integer>"), "{replicas}");
        assert!(replicas.contains("Number of desired pods."), "{replicas}");
        let template = kubectl.ok(&["explain", "deployment.spec.template"]);
        assert!(
            template.contains("FIELD: template <PodTemplateSpec>"),
            "{template}"
        );
        assert!(template.contains("spec\t<PodSpec>"), "{template}");
        let pod = kubectl.ok(&["explain", "pods"]);
        assert!(pod.contains("KIND:       Pod"), "{pod}");
        assert!(pod.contains("metadata\t<ObjectMeta>"), "{pod}");
        let missing = kubectl.fails(&["explain", "deployment.spec.nope"], None);
        assert!(
            missing.contains("field \"nope\" does not exist"),
            "{missing}"
        );
    })
    .await
    .unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn kubectl_get_watch_prints_changes() {
    let cp = ControlPlane::start(1).await;
    let kubectl = Kubectl::new(&cp);
    // kubectl runs as a child process and is read synchronously: off the runtime's thread,
    // which must keep serving it.
    tokio::task::spawn_blocking(move || watch_and_delete(&kubectl))
        .await
        .unwrap();
    cp.stop().await;
}

fn watch_and_delete(kubectl: &Kubectl) {
    let cm =
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"watched"},"data":{"a":"b"}}"#;
    kubectl.ok_with(&["create", "-f", "-"], Some(cm));
    let mut watch = kubectl
        .command(&["get", "configmaps", "-w", "--output-watch-events"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl");
    let stdout = watch.stdout.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |needle: &str| {
        let mut seen = Vec::new();
        loop {
            match lines.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("kubectl -w never printed {needle:?}; printed {seen:?}"),
            }
        }
    };
    let header = wait_for("NAME");
    assert!(header.starts_with("EVENT"), "{header}");
    let added: Vec<String> = wait_for("watched")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(added[..3], ["ADDED", "watched", "1"]);
    // The watch runs from the list's resourceVersion, so the delete arrives as an event.
    kubectl.ok(&["delete", "configmap", "watched"]);
    let deleted = wait_for("DELETED");
    assert!(deleted.contains("watched"), "{deleted}");
    let _ = watch.kill();
    let _ = watch.wait();
}

/// A one-member production control plane's files and ports: certificates from `keel pki init`
/// (member `n1` on 127.0.0.1), an admin kubeconfig from `keel pki kubeconfig`, free ports.
pub(crate) struct ProductionMember {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) pki: std::path::PathBuf,
    pub(crate) kubeconfig: std::path::PathBuf,
    client: u16,
    peer: u16,
    api: u16,
}

impl ProductionMember {
    pub(crate) fn prepare() -> ProductionMember {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        let kubeconfig = dir.path().join("admin.kubeconfig");
        let member = ProductionMember {
            pki,
            kubeconfig,
            client: crate::free_port(),
            peer: crate::free_port(),
            api: crate::free_port(),
            dir,
        };
        member.run_pki(&["init", "--nodes", "n1=127.0.0.1"]);
        let server = format!("https://127.0.0.1:{}", member.api);
        let out = member.kubeconfig.to_str().unwrap().to_owned();
        member.run_pki(&["kubeconfig", "--server", &server, "--out", &out]);
        member
    }

    /// Runs `keel pki ARGS --dir <pki>`, which must succeed.
    pub(crate) fn run_pki(&self, pki_args: &[&str]) {
        let out = Command::new(env!("CARGO_BIN_EXE_keel"))
            .arg("pki")
            .args(pki_args)
            .arg("--dir")
            .arg(&self.pki)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "keel pki {pki_args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `keel serve --control-plane` for member n1 with its certificates, quiet, killed on drop;
    /// callers add their own flags and spawn it.
    pub(crate) fn serve(&self) -> tokio::process::Command {
        let client_url = format!("http://127.0.0.1:{}", self.client);
        let peer_url = format!("http://127.0.0.1:{}", self.peer);
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_keel"));
        command
            .args(["serve", "--name", "n1", "--control-plane"])
            .arg("--data-dir")
            .arg(self.dir.path().join("n1"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--apiserver-port", &self.api.to_string()])
            .arg("--apiserver-cert-file")
            .arg(self.pki.join("n1.crt"))
            .arg("--apiserver-key-file")
            .arg(self.pki.join("n1.key"))
            .arg("--apiserver-client-ca-file")
            .arg(self.pki.join("ca.crt"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        command
    }
}

/// `keel serve --control-plane` as a production member runs it: certificates from `keel pki`,
/// a kubeconfig from `keel pki kubeconfig`, kubectl against the process.
#[tokio::test]
async fn keel_serve_control_plane_serves_kubectl() {
    let production = ProductionMember::prepare();
    let kubeconfig = production.kubeconfig.clone();
    let mut member = production.serve().spawn().expect("keel serve");
    let cache = tempfile::tempdir().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("kubectl")
                .env("KUBECONFIG", &kubeconfig)
                .arg("--cache-dir")
                .arg(cache.path())
                .args(["get", "namespace", "kube-system", "-o", "name"])
                .output()
                .unwrap();
            if out.status.success() || std::time::Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "namespace/kube-system"
    );
    member.kill().await.unwrap();
}
