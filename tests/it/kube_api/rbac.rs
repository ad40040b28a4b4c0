//! RBAC, access reviews, impersonation and the audit log, driven by kubectl and kube clients:
//! a Role and RoleBinding grant exactly what they say (kube's 403 text otherwise), ClusterRole
//! aggregation fills `view`, escalation is refused, a second member's authorizer sees a new
//! binding, `kubectl auth can-i` / `whoami` answer, and mutating requests are audited.

use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role, RoleBinding};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;
use serde_json::{json, Value};

use super::ControlPlane;

/// Polls `check` every 20 ms until it returns Some, for at most `seconds`.
async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn from_json<T: serde::de::DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a valid object")
}

fn forbidden_message(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 403 => status.message,
        other => panic!("expected 403, got {other:?}"),
    }
}

async fn grant_pod_listing(cp: &ControlPlane, user: &str) {
    let roles: Api<Role> = Api::namespaced(cp.client.clone(), "default");
    let role = from_json(json!({"metadata": {"name": "pod-lister"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}));
    roles.create(&PostParams::default(), &role).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(cp.client.clone(), "default");
    let binding = from_json(json!({"metadata": {"name": format!("{user}-lists-pods")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-lister"},
        "subjects": [{"kind": "User", "name": user}]}));
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_grants_what_it_says_and_nothing_else() {
    let cp = ControlPlane::start(1).await;
    let alice = cp.cluster.apiservers[0].client("alice", &[]);
    let pods: Api<Pod> = Api::namespaced(alice.clone(), "default");
    let before = forbidden_message(pods.list(&ListParams::default()).await.unwrap_err());
    assert_eq!(
        before,
        "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    grant_pod_listing(&cp, "alice").await;
    eventually(5, "alice lists pods", || {
        let pods = pods.clone();
        async move { pods.list(&ListParams::default()).await.ok() }
    })
    .await;
    // Nothing beyond the rule: not get, not another namespace, not secrets, not the cluster.
    assert_eq!(
        forbidden_message(pods.get("web").await.unwrap_err()),
        "pods \"web\" is forbidden: User \"alice\" cannot get resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let system_pods: Api<Pod> = Api::namespaced(alice.clone(), "kube-system");
    assert_eq!(
        forbidden_message(system_pods.list(&ListParams::default()).await.unwrap_err()),
        "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"kube-system\""
    );
    let secrets: Api<Secret> = Api::namespaced(alice.clone(), "default");
    assert_eq!(
        forbidden_message(secrets.list(&ListParams::default()).await.unwrap_err()),
        "secrets is forbidden: User \"alice\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""
    );
    let all_pods: Api<Pod> = Api::all(alice.clone());
    assert_eq!(
        forbidden_message(all_pods.list(&ListParams::default()).await.unwrap_err()),
        "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" at the cluster scope"
    );
    let status = kube::api::Patch::Merge(json!({"status": {"phase": "Running"}}));
    assert_eq!(
        forbidden_message(
            pods.patch_status("web", &kube::api::PatchParams::default(), &status)
                .await
                .unwrap_err()
        ),
        "pods \"web\" is forbidden: User \"alice\" cannot patch resource \"pods/status\" in API group \"\" in the namespace \"default\""
    );
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_labelled_cluster_role_is_aggregated_into_view() {
    let cp = ControlPlane::start(1).await;
    let roles: Api<ClusterRole> = Api::all(cp.client.clone());
    let widgets = from_json(json!({"metadata": {"name": "widget-viewer",
            "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get", "list"]}]}));
    roles
        .create(&PostParams::default(), &widgets)
        .await
        .unwrap();
    let has_widgets = |role: &ClusterRole| {
        role.rules
            .iter()
            .flatten()
            .any(|rule| rule.resources.as_deref() == Some(&["widgets".to_owned()][..]))
    };
    for aggregated in ["view", "edit", "admin"] {
        eventually(10, &format!("{aggregated} holds the widget rule"), || {
            let roles = roles.clone();
            async move {
                let role = roles.get(aggregated).await.ok()?;
                // Still the bootstrap rules too (pods are viewable by view, edit and admin).
                let pods = role
                    .rules
                    .iter()
                    .flatten()
                    .any(|r| r.resources.iter().flatten().any(|x| x == "pods"));
                (has_widgets(&role) && pods).then_some(())
            }
        })
        .await;
    }
    roles
        .delete("widget-viewer", &DeleteParams::default())
        .await
        .unwrap();
    eventually(10, "view loses the widget rule", || {
        let roles = roles.clone();
        async move { roles.get("view").await.ok().filter(|r| !has_widgets(r)) }
    })
    .await;
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granting_what_one_lacks_is_refused() {
    let cp = ControlPlane::start(1).await;
    // Bob may manage Roles and RoleBindings in default, and list pods there.
    let roles: Api<Role> = Api::namespaced(cp.client.clone(), "default");
    let manager = from_json(json!({"metadata": {"name": "role-manager"},
        "rules": [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                   "verbs": ["create", "get", "update", "patch"]},
                  {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}));
    roles
        .create(&PostParams::default(), &manager)
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(cp.client.clone(), "default");
    let binding = from_json(json!({"metadata": {"name": "bob-manages-roles"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "role-manager"},
        "subjects": [{"kind": "User", "name": "bob"}]}));
    bindings
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();

    let bob = cp.cluster.apiservers[0].client("bob", &["devs"]);
    let bob_roles: Api<Role> = Api::namespaced(bob.clone(), "default");
    let secret_reader: Role = from_json(json!({"metadata": {"name": "secret-reader"},
        "rules": [{"apiGroups": [""], "resources": ["secrets", "pods"], "verbs": ["get", "list"]}]}));
    let refused = eventually(5, "bob's role manager binding applies", || {
        let bob_roles = bob_roles.clone();
        let secret_reader = secret_reader.clone();
        async move {
            match bob_roles
                .create(&PostParams::default(), &secret_reader)
                .await
            {
                Err(kube::Error::Api(s)) if s.message.contains("attempting to grant") => Some(s),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.message,
        "roles.rbac.authorization.k8s.io \"secret-reader\" is forbidden: user \"bob\" (groups=[\"devs\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}"
    );
    // What bob holds, he may grant; and he may not bind admin, which holds more.
    let lister: Role = from_json(json!({"metadata": {"name": "lister"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}));
    bob_roles
        .create(&PostParams::default(), &lister)
        .await
        .unwrap();
    let bob_bindings: Api<RoleBinding> = Api::namespaced(bob.clone(), "default");
    let to_admin: RoleBinding = from_json(json!({"metadata": {"name": "carol-admin"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"kind": "User", "name": "carol"}]}));
    let message = forbidden_message(
        bob_bindings
            .create(&PostParams::default(), &to_admin)
            .await
            .unwrap_err(),
    );
    assert!(
        message.starts_with("rolebindings.rbac.authorization.k8s.io \"carol-admin\" is forbidden: user \"bob\" (groups=[\"devs\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n"),
        "{message}"
    );
    // Nothing was stored.
    assert!(roles.get_opt("secret-reader").await.unwrap().is_none());
    assert!(bindings.get_opt("carol-admin").await.unwrap().is_none());
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_member_sees_a_new_binding() {
    let cp = ControlPlane::start(2).await;
    let carol = cp.cluster.apiservers[1].client("carol", &[]);
    let pods: Api<Pod> = Api::namespaced(carol, "default");
    assert_eq!(
        forbidden_message(pods.list(&ListParams::default()).await.unwrap_err()),
        "pods is forbidden: User \"carol\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    // The binding is written through member 0; member 1's authorizer reads its own cache.
    grant_pod_listing(&cp, "carol").await;
    eventually(5, "member 1 allows carol", || {
        let pods = pods.clone();
        async move { pods.list(&ListParams::default()).await.ok() }
    })
    .await;
    cp.stop().await;
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> (bool, String, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::new("kubectl")
        .env("KUBECONFIG", &cp.kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .args(args)
        .output()
        .expect("kubectl is installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_and_whoami() {
    let cp = ControlPlane::start(1).await;
    assert_eq!(
        kubectl(&cp, &["auth", "can-i", "create", "pods"]),
        (true, "yes".into(), String::new())
    );
    assert_eq!(
        kubectl(&cp, &["auth", "can-i", "list", "pods", "--as", "alice"]).1,
        "no"
    );
    grant_pod_listing(&cp, "alice").await;
    eventually(5, "can-i sees alice's binding", || async {
        (kubectl(&cp, &["auth", "can-i", "list", "pods", "--as", "alice"]).1 == "yes").then_some(())
    })
    .await;
    let (allowed, answer, _) = kubectl(&cp, &["auth", "can-i", "delete", "pods", "--as", "alice"]);
    assert_eq!((allowed, answer.as_str()), (false, "no"));
    let (_, answer, _) = kubectl(
        &cp,
        &[
            "auth",
            "can-i",
            "list",
            "pods",
            "--as",
            "alice",
            "-n",
            "kube-system",
        ],
    );
    assert_eq!(answer, "no");
    // --list prints alice's rules in default: her Role's and the basic ones every user has.
    let (ok, list, stderr) = kubectl(&cp, &["auth", "can-i", "--list", "--as", "alice"]);
    assert!(ok, "{stderr}");
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["pods", "[]", "[]", "[list]"]),
        "{list}"
    );
    assert!(
        list.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{list}"
    );
    // Impersonation needs the impersonate verb.
    let alice = cp.cluster.apiservers[0].client("alice", &[]);
    let mut request = hyper::Request::get("/api/v1/namespaces/default/pods")
        .header("impersonate-user", "bob")
        .body(Vec::new())
        .unwrap();
    request
        .headers_mut()
        .insert("accept", "application/json".parse().unwrap());
    let error = alice.request::<Value>(request).await.unwrap_err();
    assert_eq!(
        forbidden_message(error),
        "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    let (ok, whoami, stderr) = kubectl(&cp, &["auth", "whoami", "-o", "json"]);
    assert!(ok, "{stderr}");
    let whoami: Value = serde_json::from_str(&whoami).unwrap();
    assert_eq!(whoami["status"]["userInfo"]["username"], "kubernetes-admin");
    assert_eq!(
        whoami["status"]["userInfo"]["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    let (_, as_alice, _) = kubectl(&cp, &["auth", "whoami", "--as", "alice", "-o", "json"]);
    let as_alice: Value = serde_json::from_str(&as_alice).unwrap();
    assert_eq!(as_alice["status"]["userInfo"]["username"], "alice");
    cp.stop().await;
}

fn audit_lines(cp: &ControlPlane) -> Vec<Value> {
    let path = cp.cluster.configs[0].data_dir.join("audit.log");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).expect("every audit line is JSON"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_requests_are_audited() {
    let cp = ControlPlane::start(1).await;
    let maps: Api<ConfigMap> = Api::namespaced(cp.client.clone(), "default");
    let map = from_json(json!({"metadata": {"name": "audited"}, "data": {"k": "v"}}));
    maps.create(&PostParams::default(), &map).await.unwrap();
    maps.get("audited").await.unwrap();
    maps.delete("audited", &DeleteParams::default())
        .await
        .unwrap();
    let about_it = |line: &&Value| line["objectRef"]["name"] == "audited";
    let lines = eventually(5, "the delete is audited", || async {
        let lines = audit_lines(&cp);
        lines
            .iter()
            .any(|l| about_it(&l) && l["verb"] == "delete")
            .then_some(lines)
    })
    .await;
    let ours: Vec<&Value> = lines.iter().filter(about_it).collect();
    let verbs: Vec<&str> = ours.iter().map(|l| l["verb"].as_str().unwrap()).collect();
    assert_eq!(verbs, ["create", "delete"], "{ours:?}");
    let (create, delete) = (ours[0], ours[1]);
    assert!(create["requestURI"]
        .as_str()
        .unwrap()
        .starts_with("/api/v1/namespaces/default/configmaps"));
    for line in [create, delete] {
        assert_eq!(line["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(line["kind"], "Event");
        assert_eq!(line["stage"], "ResponseComplete");
        assert_eq!(line["level"], "Metadata");
        assert_eq!(line["user"]["username"], "kubernetes-admin");
        assert_eq!(line["sourceIPs"], json!(["127.0.0.1"]));
        assert_eq!(line["objectRef"]["namespace"], "default");
        assert!(line["auditID"].as_str().is_some_and(|id| id.len() == 36));
        assert!(
            line["requestReceivedTimestamp"].as_str().unwrap()
                <= line["stageTimestamp"].as_str().unwrap()
        );
    }
    assert_eq!(create["responseStatus"]["code"], 201);
    assert_eq!(delete["responseStatus"]["code"], 200);
    assert!(!lines
        .iter()
        .any(|l| l["verb"] == "get" || l["verb"] == "list"));
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reads_only_what_its_pods_use() {
    let cp = ControlPlane::start(1).await;
    let secrets: Api<Secret> = Api::namespaced(cp.client.clone(), "default");
    for name in ["used", "unused"] {
        let secret = from_json(json!({"metadata": {"name": name}, "stringData": {"k": "v"}}));
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    let pods: Api<Pod> = Api::namespaced(cp.client.clone(), "default");
    let pod = from_json(
        json!({"metadata": {"name": "on-n1"}, "spec": {"nodeName": "n1",
        "containers": [{"name": "c", "image": "busybox"}],
        "volumes": [{"name": "s", "secret": {"secretName": "used"}}]}}),
    );
    pods.create(&PostParams::default(), &pod).await.unwrap();

    let node = |name: &str| {
        cp.cluster.apiservers[0].client(&format!("system:node:{name}"), &["system:nodes"])
    };
    let n1_secrets: Api<Secret> = Api::namespaced(node("n1"), "default");
    eventually(5, "n1 reads the secret its pod mounts", || {
        let n1_secrets = n1_secrets.clone();
        async move { n1_secrets.get("used").await.ok() }
    })
    .await;
    assert_eq!(
        forbidden_message(n1_secrets.get("unused").await.unwrap_err()),
        "secrets \"unused\" is forbidden: User \"system:node:n1\" cannot get resource \"secrets\" in API group \"\" in the namespace \"default\": no relationship found between node 'n1' and this object"
    );
    assert_eq!(
        forbidden_message(n1_secrets.list(&ListParams::default()).await.unwrap_err()),
        "secrets is forbidden: User \"system:node:n1\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\": can only get individual resources of this type"
    );
    let n2_secrets: Api<Secret> = Api::namespaced(node("n2"), "default");
    assert!(forbidden_message(n2_secrets.get("used").await.unwrap_err())
        .ends_with("no relationship found between node 'n2' and this object"));
    // Its own pods' status, not another node's.
    let status = kube::api::Patch::Merge(json!({"status": {"message": "seen"}}));
    let n1_pods: Api<Pod> = Api::namespaced(node("n1"), "default");
    n1_pods
        .patch_status("on-n1", &kube::api::PatchParams::default(), &status)
        .await
        .unwrap();
    let n2_pods: Api<Pod> = Api::namespaced(node("n2"), "default");
    assert!(forbidden_message(
        n2_pods
            .patch_status("on-n1", &kube::api::PatchParams::default(), &status)
            .await
            .unwrap_err()
    )
    .ends_with("no relationship found between node 'n2' and this object"));
    cp.stop().await;
}
