//! The pod-template hash: the `pod-template-hash` label that names a Deployment's
//! ReplicaSet (`web-5d4f8c7b9`) and keeps the ReplicaSets' selectors apart.
//!
//! kube hashes its Go structs' printed form with FNV-1a and so cannot be matched byte for
//! byte; what matters is that the hash is stable for a template and changes with it. Here
//! the template is written as canonical JSON (keys sorted, empty and null fields dropped, so
//! two clients that send the same template with and without `"args": []` agree), hashed with
//! 32-bit FNV-1a, the collision count (when set) mixed in as kube does, and the decimal
//! digits encoded with kube's `rand.SafeEncodeString` alphabet (no vowels, no 0/1/3).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// The label on a Deployment's ReplicaSets and their pods.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// kube's `SafeEncodeString` alphabet.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// 32-bit FNV-1a.
struct Fnv32a(u32);

impl Fnv32a {
    fn new() -> Fnv32a {
        Fnv32a(0x811c_9dc5)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u32::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0193);
        }
    }
}

/// `value` without nulls, empty objects and empty arrays, recursively.
pub fn normalized(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let kept: serde_json::Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| normalized(v).map(|v| (k.clone(), v)))
                .collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .map(|v| normalized(v).unwrap_or(Value::Null))
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        other => Some(other.clone()),
    }
}

/// Writes `value` as JSON with object keys in sorted order, whatever map the JSON library
/// keeps.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn template_value(template: &PodTemplateSpec) -> Value {
    serde_json::to_value(template)
        .ok()
        .and_then(|v| normalized(&v))
        .unwrap_or(Value::Null)
}

/// The hash of `template`, with `collision_count` mixed in when set (kube's `ComputeHash`).
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut text = String::new();
    write_canonical(&template_value(template), &mut text);
    let mut hasher = Fnv32a::new();
    hasher.write(text.as_bytes());
    if let Some(count) = collision_count {
        hasher.write(&(count as u32).to_le_bytes());
    }
    safe_encode(&hasher.0.to_string())
}

/// kube's `rand.SafeEncodeString`: each byte mapped into an alphabet without vowels (no bad
/// words) and without characters easily confused.
fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Whether two templates are the same apart from the `pod-template-hash` label (kube's
/// `EqualIgnoreHash`), comparing them as normalized JSON.
pub fn equal_ignoring_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH_LABEL);
        }
        template_value(&t)
    };
    strip(a) == strip(b)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_owned(), "web".to_owned())].into()),
                ..ObjectMeta::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "web".into(),
                    image: Some(image.into()),
                    ..Container::default()
                }],
                ..PodSpec::default()
            }),
        }
    }

    #[test]
    fn fnv_matches_the_reference_vectors() {
        let hash = |s: &str| {
            let mut h = Fnv32a::new();
            h.write(s.as_bytes());
            h.0
        };
        assert_eq!(hash(""), 0x811c_9dc5);
        assert_eq!(hash("a"), 0xe40c_292c);
        assert_eq!(hash("foobar"), 0xbf9c_f968);
    }

    #[test]
    fn hash_is_stable_and_follows_the_template() {
        let a = pod_template_hash(&template("nginx:1.27"), None);
        // Pinned: a change of this value renames every Deployment's ReplicaSets on upgrade.
        assert_eq!(a, pod_template_hash(&template("nginx:1.27"), None));
        assert_eq!(a, "6c8d7489d5");
        assert!(a.len() <= 10 && a.chars().all(|c| ALPHANUMS.contains(&(c as u8))));
        assert_ne!(a, pod_template_hash(&template("nginx:1.28"), None));
        assert_ne!(a, pod_template_hash(&template("nginx:1.27"), Some(1)));
        // Empty lists and absent fields hash alike.
        let mut with_empty = template("nginx:1.27");
        with_empty.spec.as_mut().unwrap().containers[0].args = Some(Vec::new());
        assert_eq!(a, pod_template_hash(&with_empty, None));
    }

    #[test]
    fn equality_ignores_only_the_hash_label() {
        let plain = template("nginx:1.27");
        let mut labeled = plain.clone();
        labeled
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(POD_TEMPLATE_HASH_LABEL.into(), "abc".into());
        assert!(equal_ignoring_hash(&plain, &labeled));
        assert!(!equal_ignoring_hash(&plain, &template("nginx:1.28")));
    }
}
