//! The review kinds' protobuf bodies: kubectl's typed clients send
//! SelfSubjectAccessReview and friends as `application/vnd.kubernetes.protobuf` (the `k8s\0`
//! envelope around a `runtime.Unknown`), so the fields the reviews read are decoded here into
//! the JSON shape the rest of [`super::review`] reads. Replies go back as JSON, which kubectl
//! accepts.

use prost::Message;
use serde_json::{json, Value};

/// The envelope's magic prefix.
const MAGIC: &[u8] = b"k8s\0";

#[derive(Clone, PartialEq, Message)]
struct Unknown {
    #[prost(bytes = "vec", tag = "2")]
    raw: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct Review {
    #[prost(bytes = "vec", tag = "2")]
    spec: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
struct AccessSpec {
    #[prost(message, optional, tag = "1")]
    resource_attributes: Option<ResourceAttributes>,
    #[prost(message, optional, tag = "2")]
    non_resource_attributes: Option<NonResourceAttributes>,
    #[prost(string, tag = "3")]
    user: String,
    #[prost(string, repeated, tag = "4")]
    groups: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
struct ResourceAttributes {
    #[prost(string, tag = "1")]
    namespace: String,
    #[prost(string, tag = "2")]
    verb: String,
    #[prost(string, tag = "3")]
    group: String,
    #[prost(string, tag = "4")]
    version: String,
    #[prost(string, tag = "5")]
    resource: String,
    #[prost(string, tag = "6")]
    subresource: String,
    #[prost(string, tag = "7")]
    name: String,
}

#[derive(Clone, PartialEq, Message)]
struct NonResourceAttributes {
    #[prost(string, tag = "1")]
    path: String,
    #[prost(string, tag = "2")]
    verb: String,
}

#[derive(Clone, PartialEq, Message)]
struct RulesSpec {
    #[prost(string, tag = "1")]
    namespace: String,
}

/// Whether `body` is a protobuf envelope.
pub fn is_protobuf(body: &[u8]) -> bool {
    body.starts_with(MAGIC)
}

/// The review in `body` (a protobuf envelope) as JSON, for a review of `kind`.
pub fn decode(kind: &str, body: &[u8]) -> Result<Value, String> {
    let bad = |e: prost::DecodeError| format!("cannot decode the {kind} protobuf body: {e}");
    let unknown = Unknown::decode(&body[MAGIC.len()..]).map_err(bad)?;
    let review = Review::decode(unknown.raw.as_slice()).map_err(bad)?;
    let spec = match kind {
        "SelfSubjectReview" => json!({}),
        "SelfSubjectRulesReview" => {
            let spec = RulesSpec::decode(review.spec.as_slice()).map_err(bad)?;
            json!({"namespace": spec.namespace})
        }
        _ => {
            let spec = AccessSpec::decode(review.spec.as_slice()).map_err(bad)?;
            let mut out = json!({});
            if let Some(r) = spec.resource_attributes {
                out["resourceAttributes"] = json!({"namespace": r.namespace, "verb": r.verb,
                    "group": r.group, "version": r.version, "resource": r.resource,
                    "subresource": r.subresource, "name": r.name});
            }
            if let Some(n) = spec.non_resource_attributes {
                out["nonResourceAttributes"] = json!({"path": n.path, "verb": n.verb});
            }
            if !spec.user.is_empty() {
                out["user"] = json!(spec.user);
            }
            if !spec.groups.is_empty() {
                out["groups"] = json!(spec.groups);
            }
            out
        }
    };
    Ok(json!({"metadata": {"creationTimestamp": null}, "spec": spec}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_review_envelope_decodes() {
        let spec = AccessSpec {
            resource_attributes: Some(ResourceAttributes {
                namespace: "default".into(),
                verb: "create".into(),
                resource: "pods".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let review = Review {
            spec: spec.encode_to_vec(),
        };
        let mut body = MAGIC.to_vec();
        body.extend(
            Unknown {
                raw: review.encode_to_vec(),
            }
            .encode_to_vec(),
        );
        assert!(is_protobuf(&body));
        let decoded = decode("SelfSubjectAccessReview", &body).unwrap();
        assert_eq!(decoded["spec"]["resourceAttributes"]["verb"], "create");
        assert_eq!(
            decoded["spec"]["resourceAttributes"]["namespace"],
            "default"
        );
        assert!(decode("SelfSubjectAccessReview", b"k8s\0\xff").is_err());
    }
}
