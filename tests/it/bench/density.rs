//! `keel bench density` and the API server's metrics it reads: the binary runs a tiny density
//! test (5 hollow nodes, 10 pods) on its own in-process control plane and prints one JSON
//! report whose shape and counts are checked, with no errors; kubectl scrapes `/metrics` in
//! kube-apiserver's names, which RBAC keeps from users not granted it. No timing is asserted:
//! speed is what the benchmark reports.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::PostParams;
use serde_json::Value;

use crate::kube_api::kubectl::Kubectl;
use crate::kube_api::ControlPlane;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_density_run_reports_every_pod_and_no_errors() {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["bench", "density", "--nodes", "5", "--pods-per-node", "2"])
        .args([
            "--pods-per-deployment",
            "4",
            "--qps",
            "50",
            "--timeout",
            "120",
        ])
        .args(["-w", "json"])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("keel bench density finishes")
        .expect("keel bench density runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(report["errors"], 0, "{report:#}");
    assert_eq!(
        (report["nodes"].as_u64(), report["pods"].as_u64()),
        (Some(5), Some(10))
    );
    assert_eq!(
        report["deployments"], 3,
        "10 pods in deployments of 4, 4 and 2"
    );
    let startup = &report["pod_startup_ms"];
    assert_eq!(
        startup["count"], 10,
        "every pod watched from created to Running"
    );
    let p = |q: &str| {
        startup[q]
            .as_f64()
            .unwrap_or_else(|| panic!("no {q} in {startup}"))
    };
    assert!(
        0.0 < p("p50") && p("p50") <= p("p90") && p("p90") <= p("p99"),
        "{startup}"
    );
    for phase in ["create_to_schedule_ms", "schedule_to_running_ms"] {
        assert_eq!(report[phase]["count"], 10, "{phase}: {report:#}");
    }
    // The server side comes from the API servers' own metrics: the ReplicaSet controller
    // made the 10 pods, the scheduler bound them, the run made its 3 deployments.
    let served = |verb: &str, resource: &str| {
        report["api_server"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["verb"] == verb && c["resource"] == resource)
            .and_then(|c| c["count"].as_u64())
            .unwrap_or(0)
    };
    assert_eq!(served("POST", "pods"), 10, "{:#}", report["api_server"]);
    assert_eq!(served("POST", "pods/binding"), 10);
    assert_eq!(served("POST", "deployments"), 3);
    let client_posts = report["api_client"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["verb"] == "POST" && c["resource"] == "deployments")
        .expect("the run's creates, timed");
    assert_eq!(client_posts["count"], 3);
    let members = report["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert!(members
        .iter()
        .all(|m| m["keys"].as_i64() > Some(0) && m["db_bytes"].as_u64() > Some(0)));
    assert_eq!(report["watch_lag"]["watchers"], 3);
    assert!(report["scheduler"]["peak_pods_per_s"].as_u64() > Some(0));
    assert!(report["process"]["whole_control_plane"].as_bool().unwrap());
    assert!(report["process"]["peak_rss_mib"].as_f64() > Some(0.0));
    assert!(report["slo"]["met"].is_boolean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scrapes_the_api_servers_metrics_in_kubes_names() {
    let cp = ControlPlane::start(1).await;
    let configmaps = kube::Api::<ConfigMap>::namespaced(cp.client.clone(), "default");
    for i in 0..3 {
        let cm: ConfigMap =
            serde_json::from_value(serde_json::json!({"metadata": {"name": format!("m{i}")}}))
                .unwrap();
        configmaps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    let kubectl = Kubectl::new(&cp);
    let text = tokio::task::spawn_blocking(move || kubectl.ok(&["get", "--raw", "/metrics"]))
        .await
        .unwrap();
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
            .to_owned()
    };
    let value = |l: String| l.rsplit_once(' ').unwrap().1.parse::<f64>().unwrap();
    let created = line("apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"configmaps\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"}");
    assert_eq!(value(created), 3.0);
    let series = "component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"configmaps\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"";
    assert_eq!(
        value(line(&format!(
            "apiserver_request_duration_seconds_bucket{{{series},le=\"+Inf\"}}"
        ))),
        3.0
    );
    assert_eq!(
        value(line(&format!(
            "apiserver_request_duration_seconds_count{{{series}}}"
        ))),
        3.0
    );
    assert!(text.contains("# TYPE apiserver_request_duration_seconds histogram"));
    assert!(value(line("apiserver_storage_objects{resource=\"configmaps\"}")) >= 3.0);
    assert!(
        value(line(
            "apiserver_storage_objects{resource=\"clusterroles.rbac.authorization.k8s.io\"}"
        )) > 0.0
    );
    // kubectl's own GET of /metrics is in flight while it is rendered.
    assert!(
        value(line(
            "apiserver_current_inflight_requests{request_kind=\"readOnly\"}"
        )) >= 0.0
    );
    assert!(text.contains("apiserver_current_inflight_requests{request_kind=\"mutating\"}"));

    // A user nothing grants /metrics to gets kube's 403.
    let nobody = cp.cluster.apiservers[0].client("nobody", &[]);
    let request = hyper::Request::get("/metrics").body(Vec::new()).unwrap();
    match nobody.request_text(request).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
            assert!(
                status.message.contains("\"/metrics\""),
                "{}",
                status.message
            );
        }
        other => panic!("nobody scraped /metrics: {other:?}"),
    }
    cp.cluster.stop().await.unwrap();
}
