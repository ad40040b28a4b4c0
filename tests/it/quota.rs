//! LimitRanges and ResourceQuotas through real clients: kubectl creates and describes a quota
//! the resourcequota controller keeps counted, a pod over it is refused with kube's message,
//! deleting a pod frees its share; LimitRange defaults appear on a pod and a pod under a
//! minimum is refused; creates racing on three API servers never take a quota past its hard
//! limit.

use std::time::Duration;

use futures::future::join_all;
use k8s_openapi::api::core::v1::{ConfigMap, LimitRange, Namespace, Pod, ResourceQuota};
use keel_controllers::ControllersConfig;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::{json, Value};

use crate::kube_api::ControlPlane;
use crate::poll::eventually;

/// kubectl as a user runs it against `cp`: whether it succeeded, its stdout and stderr.
async fn kubectl(cp: &ControlPlane, args: &[&str]) -> (bool, String, String) {
    let cache = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new("kubectl")
        .env("KUBECONFIG", &cp.kubeconfig)
        .arg("--cache-dir")
        .arg(cache.path())
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("kubectl is installed");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    )
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

fn pod(name: &str, resources: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox", "resources": resources}]}
    }))
    .unwrap()
}

/// The Status message of a refused call.
fn refusal<T: std::fmt::Debug>(result: kube::Result<T>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The quota's `status.used[name]` once the controller (or admission) has written it.
async fn used(quotas: &Api<ResourceQuota>, quota: &str, name: &str) -> Option<String> {
    let q = quotas.get(quota).await.ok()?;
    Some(q.status?.used?.get(name)?.0.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_quota_refuses_pods_past_it_and_deleting_one_frees_room() {
    let cp = ControlPlane::start(1).await;
    let apiserver = &cp.cluster.apiservers[0];
    let controller_client = apiserver.client("system:kube-controller-manager", &[]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = ControllersConfig {
        lease_duration: Duration::from_millis(1500),
        renew_deadline: Duration::from_millis(1000),
        retry_period: Duration::from_millis(100),
        ..ControllersConfig::new("quota-test")
    };
    let controllers = tokio::spawn(keel_controllers::run(controller_client, config, async {
        let _ = stopped.await;
    }));
    let client = cp.client.clone();
    create_namespace(&client, "team").await;

    let (ok, _, err) = kubectl(
        &cp,
        &[
            "create",
            "quota",
            "q",
            "-n",
            "team",
            "--hard=pods=2,requests.cpu=1",
        ],
    )
    .await;
    assert!(ok, "kubectl create quota: {err}");
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "team");
    eventually("the controller counts the quota", || async {
        (used(&quotas, "q", "pods").await.as_deref() == Some("0")).then_some(())
    })
    .await;
    let (ok, described, err) = kubectl(&cp, &["describe", "quota", "q", "-n", "team"]).await;
    assert!(ok, "kubectl describe quota: {err}");
    let rows: Vec<Vec<&str>> = described
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(rows.contains(&vec!["pods", "0", "2"]), "{described}");
    assert!(
        rows.contains(&vec!["requests.cpu", "0", "1"]),
        "{described}"
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "team");
    let pp = PostParams::default();
    let (code, message) = refusal(pods.create(&pp, &pod("greedy", json!({}))).await);
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "pods \"greedy\" is forbidden: failed quota: q: must specify requests.cpu for: app"
    );
    for (name, cpu) in [("a", "500m"), ("b", "400m")] {
        pods.create(&pp, &pod(name, json!({"requests": {"cpu": cpu}})))
            .await
            .unwrap();
    }
    assert_eq!(
        used(&quotas, "q", "requests.cpu").await.as_deref(),
        Some("900m")
    );
    let (code, message) = refusal(
        pods.create(&pp, &pod("c", json!({"requests": {"cpu": "100m"}})))
            .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "pods \"c\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );
    let (ok, _, err) = kubectl(
        &cp,
        &["run", "d", "-n", "team", "--image=busybox", "--restart=Never",
          "--overrides={\"spec\":{\"containers\":[{\"name\":\"d\",\"image\":\"busybox\",\"resources\":{\"requests\":{\"cpu\":\"50m\"}}}]}}"],
    )
    .await;
    assert!(!ok);
    assert_eq!(
        err,
        "Error from server (Forbidden): pods \"d\" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"
    );

    // A pod with no node is deleted at once; the controller gives its share back.
    pods.delete("a", &DeleteParams::default()).await.unwrap();
    eventually("the deleted pod's share freed", || async {
        (used(&quotas, "q", "pods").await.as_deref() == Some("1")).then_some(())
    })
    .await;
    assert_eq!(
        used(&quotas, "q", "requests.cpu").await.as_deref(),
        Some("400m")
    );
    pods.create(&pp, &pod("c", json!({"requests": {"cpu": "100m"}})))
        .await
        .unwrap();
    assert_eq!(
        used(&quotas, "q", "requests.cpu").await.as_deref(),
        Some("500m")
    );

    stop.send(()).unwrap();
    controllers.await.unwrap();
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_ranges_default_pods_and_refuse_them_under_the_minimum() {
    let cp = ControlPlane::start(1).await;
    let client = cp.client.clone();
    create_namespace(&client, "limited").await;
    let ranges: Api<LimitRange> = Api::namespaced(client.clone(), "limited");
    let pp = PostParams::default();
    let bad: LimitRange = serde_json::from_value(json!({
        "metadata": {"name": "bad"},
        "spec": {"limits": [{"type": "Container", "min": {"cpu": "1"}, "max": {"cpu": "500m"}}]}
    }))
    .unwrap();
    let (code, message) = refusal(ranges.create(&pp, &bad).await);
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.limits[0].min[cpu]: Invalid value: \"1\": min value 1 is greater than max value 500m"),
        "{message}"
    );
    assert!(ranges.get_opt("bad").await.unwrap().is_none());

    let manifest = r#"
apiVersion: v1
kind: LimitRange
metadata:
  name: cpu-mem
  namespace: limited
spec:
  limits:
  - type: Container
    min: {cpu: 100m}
    max: {memory: 1Gi}
    default: {cpu: 500m, memory: 512Mi}
    defaultRequest: {cpu: 200m}
"#;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), manifest).unwrap();
    let (ok, _, err) = kubectl(&cp, &["apply", "-f", file.path().to_str().unwrap()]).await;
    assert!(ok, "kubectl apply: {err}");
    let stored = ranges.get("cpu-mem").await.unwrap();
    let item = &stored.spec.unwrap().limits[0];
    // kube's defaults: the request of memory from its default limit.
    assert_eq!(item.default_request.as_ref().unwrap()["memory"].0, "512Mi");

    let pods: Api<Pod> = Api::namespaced(client.clone(), "limited");
    let created = pods.create(&pp, &pod("plain", json!({}))).await.unwrap();
    let resources = serde_json::to_value(&created.spec.unwrap().containers[0].resources).unwrap();
    assert_eq!(
        resources,
        json!({"limits": {"cpu": "500m", "memory": "512Mi"},
               "requests": {"cpu": "200m", "memory": "512Mi"}})
    );
    assert_eq!(
        created.metadata.annotations.unwrap()["kubernetes.io/limit-ranger"],
        "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app"
    );
    assert_eq!(
        created.status.unwrap().qos_class.as_deref(),
        Some("Burstable")
    );

    let (code, message) = refusal(
        pods.create(&pp, &pod("low", json!({"requests": {"cpu": "50m"}})))
            .await,
    );
    assert_eq!(code, 403);
    assert_eq!(
        message,
        "pods \"low\" is forbidden: minimum cpu usage per Container is 100m, but request is 50m"
    );
    let (ok, _, err) = kubectl(
        &cp,
        &["run", "big", "-n", "limited", "--image=busybox", "--restart=Never",
          "--overrides={\"spec\":{\"containers\":[{\"name\":\"big\",\"image\":\"busybox\",\"resources\":{\"limits\":{\"memory\":\"2Gi\"}}}]}}"],
    )
    .await;
    assert!(!ok);
    assert_eq!(
        err,
        "Error from server (Forbidden): pods \"big\" is forbidden: maximum memory usage per Container is 1Gi, but limit is 2Gi"
    );
    assert!(pods.get_opt("low").await.unwrap().is_none());
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_racing_on_three_servers_never_pass_the_quota() {
    let cp = ControlPlane::start(3).await;
    let client = cp.client.clone();
    create_namespace(&client, "race").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), "race");
    let pp = PostParams::default();
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "five"}, "spec": {"hard": {"configmaps": "5"}}
    }))
    .unwrap();
    quotas.create(&pp, &quota).await.unwrap();
    // What the controller would write: no controller runs here, so only admission counts.
    let mut counted = quotas.get("five").await.unwrap();
    counted.status =
        serde_json::from_value(json!({"hard": {"configmaps": "5"}, "used": {"configmaps": "0"}}))
            .unwrap();
    quotas.replace_status("five", &pp, &counted).await.unwrap();

    let mut clients = Vec::new();
    for i in 0..3 {
        clients.push(cp.client_of_member(i).await);
    }
    let creates = (0..15).map(|n| {
        let maps: Api<ConfigMap> = Api::namespaced(clients[n % 3].clone(), "race");
        async move {
            let map: ConfigMap =
                serde_json::from_value(json!({"metadata": {"name": format!("m{n}")}})).unwrap();
            maps.create(&PostParams::default(), &map).await
        }
    });
    let results = join_all(creates).await;
    let mut created = 0;
    for result in results {
        match result {
            Ok(_) => created += 1,
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 403, "{status:?}");
                assert!(
                    status.message.ends_with("is forbidden: exceeded quota: five, requested: configmaps=1, used: configmaps=5, limited: configmaps=5"),
                    "{}", status.message
                );
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(created, 5);
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "race");
    assert_eq!(maps.list(&Default::default()).await.unwrap().items.len(), 5);
    assert_eq!(
        used(&quotas, "five", "configmaps").await.as_deref(),
        Some("5")
    );
    cp.stop().await;
}
