//! The real `keelctl` binary managing users, roles and auth on a live three-member cluster,
//! then acting as those users with `--user`.

use keel::cli::dev::{DevArgs, DevCluster};

use crate::keelctl::{must, run};

/// Runs keelctl and insists it fails; returns stderr.
async fn must_fail(endpoints: &str, args: &[&str]) -> String {
    let output = run(endpoints, args, None).await;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "keelctl {args:?} succeeded: {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keelctl_manages_users_roles_and_auth() {
    let args = DevArgs::on_free_ports(3);
    let cluster = DevCluster::start_tuned(&args, false, |config| config.bcrypt_cost = 4)
        .await
        .expect("cluster starts");
    let e = cluster.endpoints();
    let e = e.as_str();

    let refused = must_fail(e, &["auth", "enable"]).await;
    assert!(
        refused.contains("etcdserver: root user does not exist"),
        "{refused}"
    );
    assert_eq!(
        must(e, &["user", "add", "root:rootpw"], None).await,
        "User root created\n"
    );
    must(e, &["user", "grant-role", "root", "root"], None).await;
    assert_eq!(
        must(e, &["role", "add", "app"], None).await,
        "Role app created\n"
    );
    assert_eq!(
        must(
            e,
            &[
                "role",
                "grant-permission",
                "app",
                "read",
                "/app/",
                "--prefix"
            ],
            None
        )
        .await,
        "Role app updated\n"
    );
    must(
        e,
        &["role", "grant-permission", "app", "readwrite", "/app/rw"],
        None,
    )
    .await;
    assert_eq!(
        must(e, &["role", "get", "app"], None).await,
        "Role app\nKV Read:\n\t[/app/, /app0) (prefix /app/)\n\t/app/rw\nKV Write:\n\t/app/rw\n"
    );
    // The password from stdin: no prompt, nothing on the command line.
    must(e, &["user", "add", "alice"], Some("alicepw\n")).await;
    assert_eq!(
        must(e, &["user", "grant-role", "alice", "app"], None).await,
        "Role app is granted to user alice\n"
    );
    assert_eq!(
        must(e, &["user", "get", "alice"], None).await,
        "User: alice\nRoles: app\n"
    );
    assert_eq!(must(e, &["user", "list"], None).await, "alice\nroot\n");
    assert_eq!(must(e, &["role", "list"], None).await, "app\n");
    must(e, &["put", "/app/x", "1"], None).await;
    must(e, &["put", "/other", "2"], None).await;
    assert_eq!(
        must(e, &["auth", "enable"], None).await,
        "Authentication Enabled\n"
    );

    // Now every command needs a user.
    let anonymous = must_fail(e, &["get", "/app/x"]).await;
    assert!(anonymous.contains("user name is empty"), "{anonymous}");
    let status = must(e, &["auth", "status"], None).await;
    assert!(
        status.starts_with("Authentication Status: true\nAuthRevision: "),
        "{status}"
    );
    assert_eq!(
        must(
            e,
            &[
                "--user",
                "alice:alicepw",
                "get",
                "/app/x",
                "--print-value-only"
            ],
            None
        )
        .await,
        "1\n"
    );
    assert_eq!(
        must(
            e,
            &[
                "--user",
                "alice",
                "--password",
                "alicepw",
                "put",
                "/app/rw",
                "v"
            ],
            None
        )
        .await,
        "OK\n"
    );
    let denied = must_fail(e, &["--user", "alice:alicepw", "put", "/app/x", "2"]).await;
    assert!(denied.contains("etcdserver: permission denied"), "{denied}");
    let denied = must_fail(e, &["--user", "alice:alicepw", "get", "/other"]).await;
    assert!(denied.contains("etcdserver: permission denied"), "{denied}");
    let denied = must_fail(e, &["--user", "alice:alicepw", "member", "list"]).await;
    assert!(denied.contains("etcdserver: permission denied"), "{denied}");
    let wrong = must_fail(e, &["--user", "alice:nope", "get", "/app/x"]).await;
    assert!(wrong.contains("authentication failed"), "{wrong}");
    must(e, &["--user", "root:rootpw", "member", "list"], None).await;

    // A user changes its own password.
    assert_eq!(
        must(
            e,
            &[
                "--user",
                "alice:alicepw",
                "user",
                "passwd",
                "alice",
                "--new-user-password",
                "new"
            ],
            None
        )
        .await,
        "Password updated\n"
    );
    must(e, &["--user", "alice:new", "get", "/app/x"], None).await;

    let root = ["--user", "root:rootpw"];
    let as_root =
        |args: &[&'static str]| -> Vec<&'static str> { root.iter().chain(args).copied().collect() };
    assert_eq!(
        must(
            e,
            &as_root(&["role", "revoke-permission", "app", "/app/", "--prefix"]),
            None
        )
        .await,
        "Permission of range [/app/, /app0) (prefix /app/) is revoked from role app\n"
    );
    let denied = must_fail(e, &["--user", "alice:new", "get", "/app/x"]).await;
    assert!(denied.contains("permission denied"), "{denied}");
    must(e, &as_root(&["user", "revoke-role", "alice", "app"]), None).await;
    assert_eq!(
        must(e, &as_root(&["user", "delete", "alice"]), None).await,
        "User alice deleted\n"
    );
    let gone = must_fail(e, &["--user", "alice:new", "get", "/app/x"]).await;
    assert!(gone.contains("authentication failed"), "{gone}");
    assert_eq!(
        must(e, &as_root(&["role", "delete", "app"]), None).await,
        "Role app deleted\n"
    );
    assert_eq!(
        must(e, &as_root(&["auth", "disable"]), None).await,
        "Authentication Disabled\n"
    );
    must(e, &["get", "/other"], None).await;
    cluster.stop().await.expect("cluster stops");
}
