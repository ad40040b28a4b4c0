//! TLS end to end: a three-member https cluster with client-cert-auth on both listeners (what
//! `keel dev --tls` runs), the certificates `keel pki` makes, and who gets refused.

use std::process::Stdio;
use std::time::{Duration, Instant};

use keel::api::models::{PutRequest, RangeRequest};
use keel::cli::dev::{DevArgs, DevCluster, DevTls};
use keel::client::{Client, Options, Tls};
use keel::identity::ClientCertificate;
use keel::pki::{self, Host, Options as PkiOptions, Validity};

const DEADLINE: Duration = Duration::from_secs(20);

async fn tls_cluster() -> (DevCluster, DevTls) {
    let args = DevArgs::on_free_ports(3);
    let cluster = DevCluster::start_with(&args, true)
        .await
        .expect("TLS cluster starts");
    let tls = cluster.tls.clone().expect("a TLS cluster has certificates");
    (cluster, tls)
}

fn endpoints(cluster: &DevCluster) -> Vec<String> {
    cluster.endpoints().split(',').map(str::to_owned).collect()
}

fn client(endpoints: &[String], tls: &Tls) -> Client {
    let options = Options {
        dial_timeout: Duration::from_secs(5),
        command_timeout: DEADLINE,
    };
    Client::with_tls(endpoints.to_vec(), options, tls).expect("client builds")
}

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

fn range(key: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        ..Default::default()
    }
}

/// A refused client gets an error, and it says why (the TLS layer's reason).
async fn assert_refused(client: &Client, what: &str) {
    let err = client
        .range(&range("k0"))
        .await
        .expect_err(&format!("{what} must be refused"))
        .to_string();
    let lower = err.to_lowercase();
    assert!(
        [
            "certificate",
            "alert",
            "tls",
            "handshake",
            "connection",
            "closed"
        ]
        .iter()
        .any(|word| lower.contains(word)),
        "{what}: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cert_auth_cluster_serves_good_certificates_and_refuses_the_rest() {
    let (cluster, tls) = tls_cluster().await;
    let all = endpoints(&cluster);
    assert!(
        all.iter().all(|e| e.starts_with("https://127.0.0.1:")),
        "{all:?}"
    );

    // Every member takes writes (followers forward them to the leader over TLS, presenting
    // their peer certificate) and serves linearizable reads.
    let good = client(&all, &tls.client_tls());
    for (i, endpoint) in all.iter().enumerate() {
        good.for_endpoint(endpoint)
            .put(&put(&format!("k{i}"), "v"))
            .await
            .unwrap_or_else(|e| panic!("put on {endpoint}: {e}"));
    }
    for endpoint in &all {
        let answer = good
            .for_endpoint(endpoint)
            .range(&range("k2"))
            .await
            .unwrap();
        assert_eq!(answer.kvs[0].value, b"v", "read on {endpoint}");
    }

    let one = &all[..1];
    // No certificate at all.
    let no_cert = Tls {
        ca_file: Some(tls.ca_file.clone()),
        ..Tls::default()
    };
    assert_refused(&client(one, &no_cert), "a client without a certificate").await;

    // A certificate from another CA (same user name).
    let other = tempfile::tempdir().unwrap();
    pki::init(
        other.path(),
        &pki::parse_nodes("n1=127.0.0.1").unwrap(),
        &PkiOptions::default(),
    )
    .unwrap();
    let stranger = pki::issue_client(other.path(), "root", &PkiOptions::default()).unwrap();
    let foreign = Tls {
        ca_file: Some(tls.ca_file.clone()),
        cert_file: Some(stranger.cert),
        key_file: Some(stranger.key),
        insecure_skip_verify: false,
    };
    assert_refused(&client(one, &foreign), "a certificate from another CA").await;

    // An expired certificate from the right CA.
    let expired = PkiOptions {
        validity: Validity::days(-1),
        ..PkiOptions::default()
    };
    let old = pki::issue_client(&tls.dir, "old", &expired).unwrap();
    let stale = Tls {
        ca_file: Some(tls.ca_file.clone()),
        cert_file: Some(old.cert),
        key_file: Some(old.key),
        insecure_skip_verify: false,
    };
    assert_refused(&client(one, &stale), "an expired certificate").await;

    // The client side checks the server too: the other CA does not vouch for the members.
    let wrong_ca = Tls {
        ca_file: Some(other.path().join("ca.crt")),
        ..tls.client_tls()
    };
    assert_refused(&client(one, &wrong_ca), "a server from an untrusted CA").await;

    // Plain http to an https port gets no answer.
    let plain = one[0].replacen("https://", "http://", 1);
    assert!(client(&[plain], &Tls::default())
        .range(&range("k0"))
        .await
        .is_err());

    // Still serving the good client after all that.
    assert_eq!(good.range(&range("k0")).await.unwrap().count, 1);
    cluster.stop().await.unwrap();
}

#[tokio::test]
async fn generated_certificates_verify_with_openssl_and_carry_the_requested_sans() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = pki::parse_nodes("n1=10.0.0.1,n1=n1.example.com,n2=10.0.0.2").unwrap();
    pki::init(dir.path(), &nodes, &PkiOptions::default()).unwrap();
    pki::issue_client(dir.path(), "alice", &PkiOptions::default()).unwrap();
    let ca = dir.path().join("ca.crt");
    for name in ["n1", "n2", "alice"] {
        let cert = dir.path().join(format!("{name}.crt"));
        let output = std::process::Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(&ca)
            .arg(&cert)
            .stderr(Stdio::piped())
            .output()
            .expect("openssl runs (scripts/install-test-deps.sh installs it)");
        assert!(
            output.status.success(),
            "openssl verify {name}: {} {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let key = dir.path().join(format!("{name}.key"));
            let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }
    let n1 = pki::describe(&dir.path().join("n1.crt")).unwrap();
    assert_eq!(
        n1.hosts,
        vec![
            Host::Ip("10.0.0.1".parse().unwrap()),
            Host::Dns("n1.example.com".into())
        ]
    );
    // openssl reads the same SANs back.
    let text = std::process::Command::new("openssl")
        .args([
            "x509",
            "-noout",
            "-ext",
            "subjectAltName,extendedKeyUsage",
            "-in",
        ])
        .arg(dir.path().join("n1.crt"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("IP Address:10.0.0.1"), "{text}");
    assert!(text.contains("DNS:n1.example.com"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");

    // Making them again is refused, naming the file, and changes nothing.
    let before = std::fs::read(&ca).unwrap();
    let err = pki::init(dir.path(), &nodes, &PkiOptions::default()).unwrap_err();
    assert!(err.to_string().contains("ca.crt already exists"), "{err}");
    assert_eq!(std::fs::read(&ca).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verified_common_name_reaches_every_request() {
    use warp::Filter as _;
    let dir = tempfile::tempdir().unwrap();
    let options = PkiOptions {
        localhost: true,
        ..PkiOptions::default()
    };
    pki::init(
        dir.path(),
        &pki::parse_nodes("n1=127.0.0.1").unwrap(),
        &options,
    )
    .unwrap();
    let alice = pki::issue_client(dir.path(), "alice", &options).unwrap();
    let server_tls = keel::transport::ServerTls {
        cert_file: dir.path().join("n1.crt"),
        key_file: dir.path().join("n1.key"),
        trusted_ca_file: Some(dir.path().join("ca.crt")),
        client_cert_auth: true,
        keys: ["cert-file", "key-file", "trusted-ca-file"],
    };
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = server_tls.listener(tcp).unwrap();
    let whoami = warp::ext::optional::<ClientCertificate>().map(|c: Option<ClientCertificate>| {
        c.map(|c| c.common_name).unwrap_or_else(|| "nobody".into())
    });
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(keel::transport::serve(
        listener,
        warp::service(whoami),
        async move {
            let _ = stopped.await;
        },
    ));
    let identity =
        keel::transport::identity("cert-file", &alice.cert, "key-file", &alice.key).unwrap();
    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.crt")).unwrap()).unwrap();
    for http2 in [false, true] {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca.clone())
            .identity(identity.clone());
        builder = if http2 {
            builder.http2_prior_knowledge()
        } else {
            builder.http1_only()
        };
        let http = builder.build().unwrap();
        let response = http
            .get(format!("https://localhost:{}/", addr.port()))
            .send()
            .await
            .unwrap();
        let version = response.version();
        assert_eq!(response.text().await.unwrap(), "alice", "over {version:?}");
        assert_eq!(version == reqwest::Version::HTTP_2, http2);
    }
    // A certificate file that does not load is named by its key.
    let broken = keel::transport::ServerTls {
        cert_file: dir.path().join("missing.crt"),
        ..server_tls
    };
    let err = broken
        .acceptor()
        .err()
        .expect("missing file refused")
        .to_string();
    assert!(
        err.contains("cert-file") && err.contains("missing.crt"),
        "{err}"
    );
    stop.send(()).unwrap();
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("graceful shutdown ends")
        .unwrap();
}

/// The leader's view of how far `member` has replicated (None: nothing yet).
fn matched(cluster: &DevCluster, leader: usize, member: u64) -> Option<u64> {
    let metrics = cluster.members[leader]
        .replica
        .node()
        .metrics()
        .borrow()
        .clone();
    metrics
        .replication
        .as_ref()
        .and_then(|r| r.get(&member).cloned().flatten())
        .map(|log_id| log_id.index)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_whose_peer_certificate_comes_from_another_ca_cannot_join() {
    let (mut cluster, tls) = tls_cluster().await;
    let all = endpoints(&cluster);
    let good = client(&all, &tls.client_tls());
    good.put(&put("before", "1")).await.unwrap();

    // Another CA issues the intruder's certificate; it trusts only that CA as well.
    let other = tempfile::tempdir().unwrap();
    pki::init(
        other.path(),
        &pki::parse_nodes("n5=127.0.0.1").unwrap(),
        &PkiOptions {
            localhost: true,
            ..PkiOptions::default()
        },
    )
    .unwrap();
    // A good fourth member, its certificate from the cluster's CA (`keel pki node`), shows
    // the leader does replicate to members added this way; the intruder is added the same way.
    pki::issue_nodes(
        &tls.dir,
        &pki::parse_nodes("n4=127.0.0.1").unwrap(),
        &PkiOptions::default(),
    )
    .unwrap();
    let mut ids = Vec::new();
    let mut data = Vec::new();
    for (name, cert, key, ca) in [
        (
            "n4",
            tls.dir.join("n4.crt"),
            tls.dir.join("n4.key"),
            tls.ca_file.clone(),
        ),
        (
            "n5",
            other.path().join("n5.crt"),
            other.path().join("n5.key"),
            other.path().join("ca.crt"),
        ),
    ] {
        let client_tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer_tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client_url = format!("https://{}", client_tcp.local_addr().unwrap());
        let peer_url = format!("https://{}", peer_tcp.local_addr().unwrap());
        let added = good
            .member_add(vec![peer_url.clone()], true)
            .await
            .unwrap_or_else(|e| panic!("member add {name}: {e}"));
        let dir = tempfile::tempdir().unwrap();
        let mut config = cluster.configs[0].clone();
        config.name = name.into();
        config.data_dir = dir.path().join(name);
        config.listen_client_urls = vec![client_url.clone()];
        config.advertise_client_urls = vec![client_url];
        config.listen_peer_urls = vec![peer_url.clone()];
        config.initial_advertise_peer_urls = vec![peer_url.clone()];
        config.initial_cluster = format!("{},{name}={peer_url}", config.initial_cluster);
        config.initial_cluster_state = keel::config::ClusterState::Existing;
        config.cert_file = Some(cert.clone());
        config.key_file = Some(key.clone());
        config.peer_cert_file = Some(cert);
        config.peer_key_file = Some(key);
        config.trusted_ca_file = Some(ca.clone());
        config.peer_trusted_ca_file = Some(ca);
        if name == "n5" {
            // The intruder cannot even learn the cluster's id: no member answers it.
            let mut first = config.clone();
            first.data_dir = dir.path().join("first-attempt");
            let (client, peer) = (
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
                tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            );
            let refused = keel::member::start(&first, client, peer).await.err();
            assert!(
                refused
                    .as_ref()
                    .is_some_and(|e| e.to_string().contains("cluster id")),
                "{refused:?}"
            );
            // Given the id some other way, it starts and asks to join; the leader must not
            // let it.
            let cluster_id =
                keel::replica::Replica::status(&*cluster.members[0].replica).cluster_id;
            std::fs::create_dir_all(&config.data_dir).unwrap();
            std::fs::write(
                config.data_dir.join(keel::member::CLUSTER_ID_FILE),
                format!("{cluster_id:x}"),
            )
            .unwrap();
        }
        let member = keel::member::start(&config, client_tcp, peer_tcp)
            .await
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        assert_eq!(member.id, added.member.id, "{name}'s id");
        ids.push(member.id);
        cluster.members.push(member);
        cluster.configs.push(config);
        data.push(dir);
    }
    let (n4, n5) = (ids[0], ids[1]);
    let leader_id = cluster.members[0]
        .wait_for_leader(DEADLINE)
        .await
        .expect("a leader");
    let leader = cluster
        .members
        .iter()
        .position(|m| m.id == leader_id)
        .expect("the leader is a member");

    // The good member catches up; by then the leader has been sending to both for a while.
    good.put(&put("after", "2")).await.unwrap();
    let start = Instant::now();
    let target = cluster.members[leader]
        .replica
        .node()
        .metrics()
        .borrow()
        .last_applied
        .map(|l| l.index)
        .unwrap_or_default();
    while matched(&cluster, leader, n4).unwrap_or_default() < target {
        assert!(
            start.elapsed() < DEADLINE,
            "the good fourth member never caught up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        matched(&cluster, leader, n5),
        None,
        "the leader replicated to a member it cannot authenticate"
    );
    let intruder = cluster.members.last().unwrap();
    assert_eq!(intruder.id, n5);
    assert_eq!(
        intruder.replica.node().metrics().borrow().last_applied,
        None,
        "the intruder applied entries"
    );
    assert_eq!(
        intruder.replica.node().metrics().borrow().current_leader,
        None
    );

    // The cluster keeps working.
    good.put(&put("still", "3")).await.unwrap();
    assert_eq!(good.range(&range("still")).await.unwrap().count, 1);
    assert_eq!(matched(&cluster, leader, n5), None);
    cluster.stop().await.unwrap();
    drop(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keelctl_needs_the_certificate_flags_against_a_tls_cluster() {
    let (cluster, tls) = tls_cluster().await;
    let endpoints = cluster.endpoints();
    let keelctl = |args: &[&str], with_certs: bool| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_keelctl"));
        command
            .arg("--endpoints")
            .arg(&endpoints)
            .args(["--command-timeout", "10s"])
            .env_remove("KEELCTL_ENDPOINTS")
            .env_remove("ETCDCTL_ENDPOINTS")
            .env_remove("ETCDCTL_CACERT")
            .env_remove("ETCDCTL_CERT")
            .env_remove("ETCDCTL_KEY")
            .kill_on_drop(true);
        if with_certs {
            command
                .arg("--cacert")
                .arg(&tls.ca_file)
                .arg("--cert")
                .arg(&tls.client.cert)
                .arg("--key")
                .arg(&tls.client.key);
        }
        command.args(args);
        async move {
            tokio::time::timeout(DEADLINE, command.output())
                .await
                .expect("keelctl finishes")
                .expect("keelctl runs")
        }
    };
    let put = keelctl(&["put", "greeting", "hello"], true).await;
    assert!(put.status.success(), "{put:?}");
    let get = keelctl(&["get", "greeting", "--print-value-only"], true).await;
    assert_eq!(String::from_utf8_lossy(&get.stdout), "hello\n", "{get:?}");

    let refused = keelctl(&["get", "greeting"], false).await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.starts_with("Error: "), "{stderr}");
    assert!(stderr.lines().count() == 1, "one line: {stderr}");
    cluster.stop().await.unwrap();
}

/// Kills the child on drop, so a failed assertion leaves no server behind.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keel_pki_and_keel_serve_binaries_bring_up_an_https_member() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    let keel = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(args)
            .output()
            .expect("keel runs")
    };
    let pki_arg = pki_dir.to_str().unwrap();
    let init = keel(&["pki", "init", "--dir", pki_arg, "--nodes", "n1=127.0.0.1"]);
    assert!(init.status.success(), "{init:?}");
    let issued = keel(&["pki", "client", "root", "--dir", pki_arg]);
    assert!(issued.status.success(), "{issued:?}");
    let again = keel(&["pki", "init", "--dir", pki_arg, "--nodes", "n1=127.0.0.1"]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("ca.crt already exists"), "{stderr}");
    let bad = keel(&[
        "pki",
        "init",
        "--dir",
        pki_arg,
        "--nodes",
        "n1=10.0.0.1,n2=not_a_host",
    ]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        !bad.status.success() && stderr.contains("n2=not_a_host"),
        "{stderr}"
    );
    let show = keel(&["pki", "show", "--dir", pki_arg]);
    let shown = String::from_utf8_lossy(&show.stdout);
    assert!(
        shown.contains("CN=root") && shown.contains("SANs     127.0.0.1"),
        "{shown}"
    );

    // The kernel picks the port; it is released and handed to the child right away.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let url = format!("https://127.0.0.1:{port}");
    let file = |name: &str| pki_dir.join(name).to_str().unwrap().to_owned();
    let _server = Server(
        std::process::Command::new(env!("CARGO_BIN_EXE_keel"))
            .args(["serve", "--single", "--name", "n1", "--data-dir"])
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args([
                "--cert-file",
                &file("n1.crt"),
                "--key-file",
                &file("n1.key"),
            ])
            .args(["--trusted-ca-file", &file("ca.crt"), "--client-cert-auth"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("keel serve starts"),
    );
    let tls = Tls {
        ca_file: Some(pki_dir.join("ca.crt")),
        cert_file: Some(pki_dir.join("root.crt")),
        key_file: Some(pki_dir.join("root.key")),
        insecure_skip_verify: false,
    };
    let good = client(std::slice::from_ref(&url), &tls);
    let start = Instant::now();
    while let Err(e) = good.put(&put("over", "tls")).await {
        assert!(
            start.elapsed() < DEADLINE,
            "the https member never answered: {e}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        good.range(&range("over")).await.unwrap().kvs[0].value,
        b"tls"
    );
    let no_cert = Tls {
        cert_file: None,
        key_file: None,
        ..tls
    };
    assert_refused(&client(&[url], &no_cert), "a client without a certificate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_forward_to_the_leader_when_clients_and_peers_have_different_cas() {
    let dir = tempfile::tempdir().unwrap();
    let (client_pki, peer_pki) = (dir.path().join("client-pki"), dir.path().join("peer-pki"));
    let nodes = pki::parse_nodes("n1=127.0.0.1,n2=127.0.0.1,n3=127.0.0.1").unwrap();
    pki::init(&client_pki, &nodes, &PkiOptions::default()).unwrap();
    pki::init(&peer_pki, &nodes, &PkiOptions::default()).unwrap();
    let root = pki::issue_client(&client_pki, "root", &PkiOptions::default()).unwrap();

    let mut listeners = Vec::new();
    for _ in 0..3 {
        let client = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let peer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listeners.push((client, peer));
    }
    let urls: Vec<(String, String)> = listeners
        .iter()
        .map(|(c, p)| {
            (
                format!("https://{}", c.local_addr().unwrap()),
                format!("https://{}", p.local_addr().unwrap()),
            )
        })
        .collect();
    let initial_cluster = urls
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("n{}={peer}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let mut members = Vec::new();
    for (i, ((client_url, peer_url), (client, peer))) in urls.iter().zip(listeners).enumerate() {
        let name = format!("n{}", i + 1);
        let config = keel::config::Config {
            name: name.clone(),
            data_dir: dir.path().join(&name),
            listen_client_urls: vec![client_url.clone()],
            advertise_client_urls: vec![client_url.clone()],
            listen_peer_urls: vec![peer_url.clone()],
            initial_advertise_peer_urls: vec![peer_url.clone()],
            initial_cluster: initial_cluster.clone(),
            cert_file: Some(client_pki.join(format!("{name}.crt"))),
            key_file: Some(client_pki.join(format!("{name}.key"))),
            trusted_ca_file: Some(client_pki.join("ca.crt")),
            client_cert_auth: true,
            peer_cert_file: Some(peer_pki.join(format!("{name}.crt"))),
            peer_key_file: Some(peer_pki.join(format!("{name}.key"))),
            peer_trusted_ca_file: Some(peer_pki.join("ca.crt")),
            peer_client_cert_auth: true,
            ..keel::config::Config::default()
        };
        members.push(keel::member::start(&config, client, peer).await.unwrap());
    }
    for member in &members {
        member.wait_for_leader(DEADLINE).await.expect("a leader");
    }
    let all: Vec<String> = urls.iter().map(|(c, _)| c.clone()).collect();
    let tls = Tls {
        ca_file: Some(client_pki.join("ca.crt")),
        cert_file: Some(root.cert),
        key_file: Some(root.key),
        insecure_skip_verify: false,
    };
    let good = client(&all, &tls);
    // Once every member's client URL is in the membership, forwarding could pick either.
    let start = Instant::now();
    loop {
        let list = until_ok("member list", || good.member_list()).await;
        if list.members.len() == 3 && list.members.iter().all(|m| !m.client_urls.is_empty()) {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "client URLs never published");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Each member alone takes a write (forwarded over Raft), and membership changes and
    // lease keepalives, which only the leader makes: a follower forwards those requests with
    // its peer certificate, which only the leader's peer listener trusts.
    // Each step is retried up to the deadline: on a loaded machine a re-election may leave a
    // member a moment without a leader to forward to, while a certificate the leader refuses
    // never stops failing.
    for (i, endpoint) in all.iter().enumerate() {
        let one = good.for_endpoint(endpoint);
        let request = put(&format!("via-{i}"), "x");
        until_ok(&format!("put on {endpoint}"), || one.put(&request)).await;
        let lease = until_ok(&format!("lease grant on {endpoint}"), || {
            one.lease_grant(60, 0)
        })
        .await;
        until_ok(&format!("keepalive on {endpoint}"), || {
            one.lease_keep_alive_once(lease.id)
        })
        .await;
        let peer_url = format!("https://127.0.0.1:{}", 1 + i);
        let added = until_ok(&format!("member add on {endpoint}"), || async {
            match one.member_add(vec![peer_url.clone()], true).await {
                Ok(added) => Ok(added.member.id),
                // An attempt whose answer was lost may have added it.
                Err(e) => match one.member_list().await {
                    Ok(list) => list
                        .members
                        .iter()
                        .find(|m| m.peer_urls.contains(&peer_url))
                        .map(|m| m.id)
                        .ok_or(e),
                    Err(_) => Err(e),
                },
            }
        })
        .await;
        until_ok(&format!("member remove on {endpoint}"), || async {
            match one.member_remove(added).await {
                Ok(_) => Ok(()),
                Err(e) => match one.member_list().await {
                    Ok(list) if list.members.iter().all(|m| m.id != added) => Ok(()),
                    _ => Err(e),
                },
            }
        })
        .await;
    }
    assert_eq!(good.range(&range("via-2")).await.unwrap().count, 1);
    for (i, member) in members.into_iter().enumerate() {
        member
            .stop()
            .await
            .unwrap_or_else(|e| panic!("stopping n{}: {e}", i + 1));
    }
}

/// `attempt` until it succeeds, failing with its last error past the deadline.
async fn until_ok<T, F, Fut>(what: &str, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, keel::client::Error>>,
{
    let start = Instant::now();
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(e) if start.elapsed() > DEADLINE => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_server_shuts_down_gracefully_with_an_open_watch() {
    use futures::StreamExt as _;
    let dir = tempfile::tempdir().unwrap();
    pki::init(
        dir.path(),
        &pki::parse_nodes("n1=127.0.0.1").unwrap(),
        &PkiOptions::default(),
    )
    .unwrap();
    let root = pki::issue_client(dir.path(), "root", &PkiOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let config = keel::config::Config {
        listen_client_urls: vec![url.clone()],
        cert_file: Some(dir.path().join("n1.crt")),
        key_file: Some(dir.path().join("n1.key")),
        trusted_ca_file: Some(dir.path().join("ca.crt")),
        client_cert_auth: true,
        ..keel::config::Config::default()
    };
    config.validate().unwrap();
    let replica = std::sync::Arc::new(keel::replica::LocalReplica::temporary().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        keel::server::run(&config, listener, replica, async {
            let _ = stopped.await;
        })
        .await
    });

    let ca =
        reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.crt")).unwrap()).unwrap();
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .identity(
            keel::transport::identity("cert-file", &root.cert, "key-file", &root.key).unwrap(),
        )
        .build()
        .unwrap();
    let (requests, response) = crate::open_watch(&http, &url, "k").await;
    let mut lines = response.bytes_stream();
    let created = tokio::time::timeout(DEADLINE, lines.next())
        .await
        .expect("the watch is created")
        .unwrap()
        .unwrap();
    assert!(String::from_utf8_lossy(&created).contains("\"created\":true"));

    stop.send(()).unwrap();
    tokio::time::timeout(DEADLINE, server)
        .await
        .expect("graceful shutdown does not wait for open watches")
        .unwrap()
        .unwrap();
    drop(requests);
}
