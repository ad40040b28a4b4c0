//! The codec against the served kinds' schemas (a sample of every kind, every field set,
//! round-trips), against bodies built with k8s-pb's own prost messages (as kubectl's
//! Go code writes them, zeros included), and the errors and negotiation kube has.

use std::collections::BTreeMap;

use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use prost::Message as _;
use serde_json::{json, Map, Value};

use super::envelope::{self, DecodeError};
use super::{preferred, request_to_json};
use crate::registry::Registry;
use crate::schema::{ref_name, subresource_kind, Gvk, Schemas};

/// A value for every field of `schema`, none of them zero (zeros are what Go's JSON drops,
/// tested on their own below), following references but not into a type already on the path.
fn sample(schemas: &Schemas, schema: &Value, path: &mut Vec<String>) -> Option<Value> {
    let named =
        ref_name(schema).or_else(|| schema.get("allOf")?.as_array()?.first().and_then(ref_name));
    if let Some(name) = named {
        match name {
            "io.k8s.apimachinery.pkg.api.resource.Quantity" => return Some(json!("250m")),
            "io.k8s.apimachinery.pkg.apis.meta.v1.Time" => {
                return Some(json!("2024-05-06T07:08:09Z"))
            }
            "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime" => {
                return Some(json!("2024-05-06T07:08:09.123456Z"))
            }
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString" => return Some(json!("http")),
            "io.k8s.apimachinery.pkg.runtime.RawExtension"
            | "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1" => {
                return Some(json!({"f:data": {".": {}}, "n": 1}))
            }
            _ if path.iter().any(|seen| seen == name) => return None,
            _ => {}
        }
        path.push(name.to_owned());
        let value = sample(schemas, schemas.resolve(schema), path);
        path.pop();
        return value;
    }
    if schema.get("x-kubernetes-int-or-string").is_some() {
        return Some(json!(8080));
    }
    let value = match schema.get("type").and_then(Value::as_str) {
        Some("string") => match schema.get("format").and_then(Value::as_str) {
            Some("byte") => json!("AP8Ba2V5"),
            Some("date-time") => json!("2024-05-06T07:08:09Z"),
            _ => json!("text"),
        },
        Some("integer") => json!(7),
        Some("number") => json!(1.5),
        Some("boolean") => json!(true),
        Some("array") => json!([sample(schemas, &schema["items"], path)?]),
        _ => {
            let mut object = Map::new();
            // A kind's apiVersion and kind travel in the envelope, not in its message: an
            // embedded kind (an Eviction's DeleteOptions) has none on the wire.
            // TypeMeta's fields are known by their description.
            let typed = schema["properties"]["apiVersion"]["description"]
                .as_str()
                .is_some_and(|d| d.starts_with("APIVersion defines the versioned schema"));
            if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
                for (name, property) in properties {
                    if typed && (name == "apiVersion" || name == "kind") {
                        continue;
                    }
                    if let Some(value) = sample(schemas, property, path) {
                        object.insert(name.clone(), value);
                    }
                }
            } else if let Some(values) = schema.get("additionalProperties") {
                object.insert("key".into(), sample(schemas, values, path)?);
            }
            Value::Object(object)
        }
    };
    Some(value)
}

fn kind_sample(schemas: &Schemas, gvk: Gvk) -> Value {
    let schema = schemas.kind(gvk).expect("a served kind has a schema");
    let mut object = sample(schemas, schema, &mut vec![]).unwrap();
    let api_version = if gvk.group.is_empty() {
        gvk.version.to_owned()
    } else {
        format!("{}/{}", gvk.group, gvk.version)
    };
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(gvk.kind);
    object
}

/// The first place `want` and `got` differ: its path and both values.
fn difference(want: &Value, got: &Value, path: String) -> Option<String> {
    match (want, got) {
        (Value::Object(a), Value::Object(b)) => a.keys().chain(b.keys()).find_map(|k| {
            difference(
                &a.get(k).cloned().unwrap_or(Value::Null),
                &b.get(k).cloned().unwrap_or(Value::Null),
                format!("{path}.{k}"),
            )
        }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (a, b))| difference(a, b, format!("{path}[{i}]"))),
        (a, b) if a == b => None,
        (a, b) => Some(format!("{path}: sent {a}, got back {b}")),
    }
}

#[test]
fn every_served_kind_round_trips_with_every_field_set() {
    let registry = Registry::default();
    let schemas = Schemas::of(&registry);
    let mut kinds = Vec::new();
    for resource in registry.resources() {
        let main = Gvk::of(&resource);
        kinds.push(main);
        kinds.extend(
            resource
                .subresources
                .iter()
                .filter(|s| !s.is_stream())
                .map(|s| subresource_kind(*s, main)),
        );
    }
    for gvk in kinds {
        let object = kind_sample(&schemas, gvk);
        let wire =
            envelope::encode(&object).unwrap_or_else(|| panic!("{gvk:?} has no protobuf form"));
        assert!(wire.starts_with(b"k8s\0"));
        let back = envelope::decode(&wire).unwrap_or_else(|e| panic!("{gvk:?}: {e:?}"));
        assert_eq!(
            difference(&object, &back, String::new()),
            None,
            "{gvk:?} changed on its way through protobuf"
        );
    }
}

#[test]
fn lists_and_statuses_round_trip() {
    let list = json!({"apiVersion": "v1", "kind": "ConfigMapList",
        "metadata": {"resourceVersion": "42", "continue": "abc", "remainingItemCount": 0},
        "items": [{"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v", "empty": ""}}]});
    assert_eq!(
        envelope::decode(&envelope::encode(&list).unwrap()).unwrap(),
        list
    );
    let status = json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "message": "pods \"x\" not found", "reason": "NotFound",
        "details": {"name": "x", "kind": "pods"}, "code": 404});
    assert_eq!(
        envelope::decode(&envelope::encode(&status).unwrap()).unwrap(),
        status
    );
}

fn enveloped(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// ObjectMeta as Go writes it: every non-pointer field present, zero or not.
fn go_meta(name: &str) -> meta::ObjectMeta {
    meta::ObjectMeta {
        name: Some(name.into()),
        generate_name: Some(String::new()),
        namespace: Some(String::new()),
        self_link: Some(String::new()),
        uid: Some(String::new()),
        resource_version: Some(String::new()),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    }
}

#[test]
fn a_secret_from_kubectl_keeps_its_bytes_and_drops_gos_zeros() {
    let secret = core::Secret {
        metadata: Some(go_meta("creds")),
        immutable: None,
        data: BTreeMap::from([("key".into(), vec![0, 255, 1, b'k'])]),
        string_data: BTreeMap::new(),
        r#type: Some("Opaque".into()),
    };
    let body = enveloped("v1", "Secret", secret.encode_to_vec());
    let json: Value = serde_json::from_slice(&request_to_json(&body, "Secret").unwrap()).unwrap();
    assert_eq!(
        json,
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
            "data": {"key": "AP8Baw=="}, "type": "Opaque"})
    );
}

#[test]
fn a_deployment_keeps_pointer_zeros_and_empty_structs() {
    let container = core::Container {
        name: Some("web".into()),
        image: Some("nginx".into()),
        ports: vec![core::ContainerPort {
            container_port: Some(80),
            host_port: Some(0),
            protocol: Some(String::new()),
            ..Default::default()
        }],
        resources: Some(core::ResourceRequirements {
            limits: BTreeMap::from([(
                "cpu".into(),
                Quantity {
                    string: Some("500m".into()),
                },
            )]),
            ..Default::default()
        }),
        stdin: Some(false),
        ..Default::default()
    };
    let deployment = apps::Deployment {
        metadata: Some(go_meta("web")),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            min_ready_seconds: Some(0),
            strategy: Some(apps::DeploymentStrategy {
                r#type: Some("RollingUpdate".into()),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString {
                        r#type: Some(0),
                        int_val: Some(0),
                        str_val: Some(String::new()),
                    }),
                    max_surge: Some(IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("25%".into()),
                    }),
                }),
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(go_meta("")),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    termination_grace_period_seconds: Some(0),
                    host_network: Some(false),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    let body = enveloped("apps/v1", "Deployment", deployment.encode_to_vec());
    let json: Value =
        serde_json::from_slice(&request_to_json(&body, "Deployment").unwrap()).unwrap();
    assert_eq!(
        json,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 0,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                "template": {"metadata": {}, "spec": {
                    "containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                        "resources": {"limits": {"cpu": "500m"}}}],
                    "terminationGracePeriodSeconds": 0}}},
            "status": {}})
    );
}

#[test]
fn responses_decode_with_k8s_pb_as_client_go_would() {
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", "resourceVersion": "7",
            "creationTimestamp": "2024-05-06T07:08:09Z", "labels": {"app": "web"}},
        "data": {"a": "1"}});
    let wire = envelope::encode(&object).unwrap();
    let unknown = Unknown::decode(&wire[4..]).unwrap();
    assert_eq!(
        unknown.type_meta.as_ref().unwrap().kind.as_deref(),
        Some("ConfigMap")
    );
    let config_map = core::ConfigMap::decode(unknown.raw.as_deref().unwrap()).unwrap();
    let metadata = config_map.metadata.unwrap();
    assert_eq!(metadata.name.as_deref(), Some("cm"));
    assert_eq!(metadata.resource_version.as_deref(), Some("7"));
    assert_eq!(
        metadata.creation_timestamp.unwrap().seconds,
        Some(1_714_979_289)
    );
    assert_eq!(metadata.labels["app"], "web");
    assert_eq!(config_map.data["a"], "1");
}

#[test]
fn watch_frames_are_length_prefixed_watch_events() {
    let event = json!({"type": "ADDED", "object": {"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "ns1"}, "status": {"phase": "Active"}}});
    let frame = envelope::watch_frame(&event).unwrap();
    let length = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(length, frame.len() - 4);
    let decoded = meta::WatchEvent::decode(&frame[4..]).unwrap();
    assert_eq!(decoded.r#type.as_deref(), Some("ADDED"));
    let object = envelope::decode(decoded.object.unwrap().raw.as_deref().unwrap()).unwrap();
    assert_eq!(object, event["object"]);
}

#[test]
fn bodies_that_do_not_decode_get_kubes_messages() {
    let error = request_to_json(b"{\"kind\":\"Secret\"}", "Secret").unwrap_err();
    assert_eq!(error.code, 400);
    assert_eq!(
        error.message,
        "the object provided is unrecognized (must be of type Secret): provided data does not \
         appear to be a protobuf message, expected prefix [107 56 115 0] ({\"kind\":\"Secret\"})"
    );
    let unknown_kind = enveloped("v1", "Gadget", vec![]);
    assert_eq!(
        request_to_json(&unknown_kind, "ConfigMap")
            .unwrap_err()
            .message,
        "Gadget in version \"v1\" cannot be handled as a ConfigMap: no kind \"Gadget\" is \
         registered for version \"v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
    );
    // A ConfigMap whose metadata claims 100 bytes it does not have.
    let truncated = enveloped("v1", "ConfigMap", vec![0x0a, 100, 1, 2]);
    let error = request_to_json(&truncated, "ConfigMap").unwrap_err();
    assert_eq!(
        error.message,
        "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: unexpected EOF"
    );
    assert!(matches!(
        envelope::decode(b"k8s\0\xff"),
        Err(DecodeError::NotProtobuf(_))
    ));
}

#[test]
fn accept_headers_choose_protobuf_as_kube_does() {
    assert!(preferred("application/vnd.kubernetes.protobuf, */*"));
    assert!(preferred(
        "application/vnd.kubernetes.protobuf,application/json"
    ));
    assert!(preferred(
        "application/json;q=0.5, application/vnd.kubernetes.protobuf"
    ));
    assert!(!preferred(
        "application/json, application/vnd.kubernetes.protobuf"
    ));
    assert!(!preferred("application/json"));
    assert!(!preferred("*/*"));
    assert!(!preferred(""));
    assert!(!preferred(
        "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"
    ));
}
