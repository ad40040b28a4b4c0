//! Protobuf bodies: the `kubectl create` commands that send them (namespace, configmap,
//! secret, deployment, service) read back what they sent, and a client asking for protobuf
//! gets objects, watch frames and errors in kube's framing.

use std::time::Duration;

use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message as _;
use serde_json::{json, Value};

use super::kubectl::Kubectl;
use super::{https, ControlPlane};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// `kubectl get -o json` of one object.
fn get_json(kubectl: &Kubectl, args: &[&str]) -> Value {
    let mut all = vec!["get", "-o", "json"];
    all.extend_from_slice(args);
    serde_json::from_str(&kubectl.ok(&all)).expect("kubectl prints JSON")
}

/// Runs a `kubectl create` at `-v=8`, which logs its request headers: it must have sent
/// protobuf, and succeeded. Returns stdout.
fn create_in_protobuf(kubectl: &Kubectl, args: &[&str]) -> String {
    let mut all = vec!["create", "-v=8"];
    all.extend_from_slice(args);
    let out = kubectl.run(&all, None);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "kubectl {all:?} failed: {stdout}{log}"
    );
    assert!(
        log.contains(&format!("Content-Type: {PROTOBUF}")),
        "kubectl {all:?} did not send protobuf: {log}"
    );
    stdout
}

#[tokio::test]
async fn kubectl_create_sends_protobuf_and_gets_back_what_it_sent() {
    let cp = ControlPlane::start(1).await;
    let kubectl = Kubectl::new(&cp);
    let binary = tempfile::NamedTempFile::new().unwrap();
    let bytes: Vec<u8> = vec![0, 1, 2, 0xfe, 0xff, b'\n', b'k'];
    std::fs::write(binary.path(), &bytes).unwrap();
    let binary_arg = format!("--from-file=blob={}", binary.path().display());
    tokio::task::spawn_blocking(move || {
        let out = create_in_protobuf(&kubectl, &["namespace", "proto"]);
        assert_eq!(out.trim(), "namespace/proto created");
        let ns = get_json(&kubectl, &["namespace", "proto"]);
        assert_eq!(ns["status"]["phase"], "Active", "{ns}");

        let out = create_in_protobuf(
            &kubectl,
            &[
                "-n",
                "proto",
                "configmap",
                "settings",
                "--from-literal=mode=fast",
                "--from-literal=empty=",
            ],
        );
        assert_eq!(out.trim(), "configmap/settings created");
        let cm = get_json(&kubectl, &["-n", "proto", "configmap", "settings"]);
        assert_eq!(cm["data"], json!({"mode": "fast", "empty": ""}), "{cm}");

        let out = create_in_protobuf(
            &kubectl,
            &[
                "-n",
                "proto",
                "secret",
                "generic",
                "creds",
                "--from-literal=password=p@ss w0rd",
                &binary_arg,
            ],
        );
        assert_eq!(out.trim(), "secret/creds created");
        let secret = get_json(&kubectl, &["-n", "proto", "secret", "creds"]);
        use base64::Engine;
        let decode = |v: &Value| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap())
                .unwrap()
        };
        assert_eq!(decode(&secret["data"]["password"]), b"p@ss w0rd");
        assert_eq!(
            decode(&secret["data"]["blob"]),
            bytes,
            "every byte round-trips"
        );
        assert_eq!(secret["type"], "Opaque");

        // replicas 0 is a pointer's zero, which must survive protobuf's zeros being dropped.
        let out = create_in_protobuf(
            &kubectl,
            &[
                "-n",
                "proto",
                "deployment",
                "web",
                "--image=nginx:1.27",
                "--replicas=0",
                "--port=8080",
            ],
        );
        assert_eq!(out.trim(), "deployment.apps/web created");
        let deployment = get_json(&kubectl, &["-n", "proto", "deployment", "web"]);
        let spec = &deployment["spec"];
        assert_eq!(spec["replicas"], 0, "{deployment}");
        assert_eq!(spec["selector"], json!({"matchLabels": {"app": "web"}}));
        let container = &spec["template"]["spec"]["containers"][0];
        assert_eq!(container["name"], "nginx");
        assert_eq!(container["image"], "nginx:1.27");
        assert_eq!(
            container["ports"],
            json!([{"containerPort": 8080, "protocol": "TCP"}])
        );
        assert_eq!(container["resources"], json!({}));
        assert_eq!(
            spec["template"]["metadata"]["labels"],
            json!({"app": "web"})
        );

        let out = create_in_protobuf(
            &kubectl,
            &[
                "-n",
                "proto",
                "service",
                "clusterip",
                "web",
                "--tcp=80:8080",
            ],
        );
        assert_eq!(out.trim(), "service/web created");
        let service = get_json(&kubectl, &["-n", "proto", "service", "web"]);
        assert_eq!(
            service["spec"]["ports"],
            json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]),
            "{service}"
        );
        assert_eq!(service["spec"]["selector"], json!({"app": "web"}));

        let out = create_in_protobuf(&kubectl, &["-n", "proto", "serviceaccount", "robot"]);
        assert_eq!(out.trim(), "serviceaccount/robot created");
        // A TokenRequest goes in protobuf and its reply, with the token, comes back in it.
        let token = create_in_protobuf(
            &kubectl,
            &["-n", "proto", "token", "robot", "--duration=10m"],
        );
        assert_eq!(token.trim().split('.').count(), 3, "a JWT: {token}");

        let out = create_in_protobuf(
            &kubectl,
            &[
                "-n",
                "proto",
                "cronjob",
                "tick",
                "--image=busybox",
                "--schedule=*/5 * * * *",
                "--",
                "date",
            ],
        );
        assert_eq!(out.trim(), "cronjob.batch/tick created");
        let cronjob = get_json(&kubectl, &["-n", "proto", "cronjob", "tick"]);
        assert_eq!(cronjob["spec"]["schedule"], "*/5 * * * *");
        let job_spec = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(
            job_spec["containers"][0]["command"],
            json!(["date"]),
            "{cronjob}"
        );
        assert_eq!(job_spec["restartPolicy"], "OnFailure");

        // describe reads the object with a protobuf-first Accept.
        let described = kubectl.ok(&["-n", "proto", "describe", "deployment", "web"]);
        assert!(described.contains("nginx:1.27"), "{described}");
    })
    .await
    .unwrap();
    cp.stop().await;
}

#[tokio::test]
async fn protobuf_replies_watch_frames_and_errors_follow_kubes_framing() {
    let cp = ControlPlane::start(1).await;
    let client = https(&cp, true);
    let base = cp.server(0);
    let configmaps = format!("{base}/api/v1/namespaces/default/configmaps");

    // A JSON create answered in protobuf: the envelope, then the ConfigMap message.
    let response = client
        .post(&configmaps)
        .header("accept", format!("{PROTOBUF}, */*"))
        .json(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "framed"}, "data": {"k": "v"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["content-type"], PROTOBUF);
    let body = response.bytes().await.unwrap();
    let config_map: core::ConfigMap = unwrap_envelope(&body, "ConfigMap");
    assert_eq!(config_map.data["k"], "v");
    let metadata = config_map.metadata.unwrap();
    assert_eq!(metadata.name.as_deref(), Some("framed"));
    assert!(metadata.creation_timestamp.unwrap().seconds.unwrap() > 0);

    // A list.
    let body = client
        .get(&configmaps)
        .header("accept", PROTOBUF)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let list: core::ConfigMapList = unwrap_envelope(&body, "ConfigMapList");
    assert!(list
        .items
        .iter()
        .any(|c| c.metadata.as_ref().unwrap().name.as_deref() == Some("framed")));

    // A watch: length-prefixed WatchEvents, each object enveloped.
    let mut watch = client
        .get(format!(
            "{configmaps}?watch=true&fieldSelector=metadata.name%3Dframed"
        ))
        .header("accept", PROTOBUF)
        .send()
        .await
        .unwrap();
    assert_eq!(
        watch.headers()["content-type"],
        "application/vnd.kubernetes.protobuf;stream=watch"
    );
    let mut buffer = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while buffer.len() < 4
        || buffer.len() < 4 + u32::from_be_bytes(buffer[..4].try_into().unwrap()) as usize
    {
        let chunk = tokio::time::timeout_at(deadline, watch.chunk())
            .await
            .expect("a watch frame in time");
        buffer.extend_from_slice(&chunk.unwrap().expect("the watch stays open"));
    }
    let length = u32::from_be_bytes(buffer[..4].try_into().unwrap()) as usize;
    let event = meta::WatchEvent::decode(&buffer[4..4 + length]).unwrap();
    assert_eq!(event.r#type.as_deref(), Some("ADDED"));
    let watched: core::ConfigMap =
        unwrap_envelope(event.object.unwrap().raw.as_deref().unwrap(), "ConfigMap");
    assert_eq!(watched.metadata.unwrap().name.as_deref(), Some("framed"));

    // An error is a Status, in protobuf when protobuf is preferred.
    let response = client
        .get(format!("{configmaps}/missing"))
        .header("accept", PROTOBUF)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let status: meta::Status = unwrap_envelope(&response.bytes().await.unwrap(), "Status");
    assert_eq!(status.reason.as_deref(), Some("NotFound"));
    assert_eq!(
        status.message.as_deref(),
        Some("configmaps \"missing\" not found")
    );
    assert_eq!(status.code, Some(404));

    // A protobuf body that does not decode: 400, nothing stored.
    let (code, status) = super::call(
        client
            .post(&configmaps)
            .header("content-type", PROTOBUF)
            .body(b"k8s\0\x0a\x05\x0a\x02v1".to_vec()),
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["reason"], "BadRequest");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .starts_with("the object provided is unrecognized (must be of type ConfigMap): "),
        "{status}"
    );
    // A media type the server does not read: 415, naming the ones it does.
    let (code, status) = super::call(
        client
            .post(&configmaps)
            .header("content-type", "text/plain")
            .body("name: x"),
    )
    .await;
    assert_eq!(code, 415, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("application/vnd.kubernetes.protobuf"),
        "{status}"
    );
    cp.stop().await;
}

/// The message inside a `k8s\0` envelope, checking the envelope names `kind`.
fn unwrap_envelope<M: prost::Message + Default>(body: &[u8], kind: &str) -> M {
    let inner = body.strip_prefix(b"k8s\0").expect("the protobuf magic");
    let unknown = Unknown::decode(inner).expect("a runtime.Unknown");
    assert_eq!(unknown.type_meta.unwrap().kind.as_deref(), Some(kind));
    M::decode(unknown.raw.unwrap_or_default().as_slice()).expect("the kind's message")
}
