//! ConfigMaps and Secrets: keys, sizes, immutability, and the base64 that Secret data is
//! written in (encoded for `stringData`, checked for `data`).

use serde_json::Value;

use super::field::{forbidden, invalid, key, required, too_long, Bad, IMMUTABLE_MSG};
use super::json::{flag, map, scalar_text, sem_eq, sorted_entries, text};
use super::names::config_map_key;
use super::FieldError;

const MAX_SECRET_SIZE: usize = 1024 * 1024;

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(super) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64_ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The decoded length of standard base64, or the offset Go's decoder would complain about.
fn base64_decoded_len(s: &str) -> Result<usize, usize> {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        // Go reports the first byte past the last complete quantum.
        let valid = b
            .iter()
            .position(|&c| !(c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'='));
        return Err(valid.unwrap_or(b.len() - b.len() % 4));
    }
    let mut padding = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'=' {
            if i + 2 < b.len() {
                return Err(i);
            }
            padding += 1;
        } else if padding > 0 || !(c.is_ascii_alphanumeric() || c == b'+' || c == b'/') {
            return Err(i);
        }
    }
    Ok(b.len() / 4 * 3 - padding)
}

fn immutable_when_set(new: &Value, old: &Value, fields: &[&str], errs: &mut Vec<FieldError>) {
    if !flag(old, "immutable") {
        return;
    }
    const MSG: &str = "field is immutable when `immutable` is set";
    if !flag(new, "immutable") {
        errs.push(forbidden("immutable", MSG));
    }
    for field in fields {
        if !sem_eq(new.get(*field), old.get(*field)) {
            errs.push(forbidden(field, MSG));
        }
    }
}

pub(super) fn validate_config_map(cm: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    if let Some(old) = old {
        immutable_when_set(cm, old, &["data", "binaryData"], errs);
    }
    let mut total = 0usize;
    let binary = map(cm, "binaryData");
    for (k, v) in sorted_entries(map(cm, "data")) {
        let p = key("data", k);
        for m in config_map_key(k) {
            errs.push(invalid(&p, Bad::str(k), &m));
        }
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(invalid(
                &p,
                Bad::str(k),
                "duplicate of key present in binaryData",
            ));
        }
        total += scalar_text(v).len();
    }
    for (k, v) in sorted_entries(binary) {
        for m in config_map_key(k) {
            errs.push(invalid(&key("binaryData", k), Bad::str(k), &m));
        }
        total += base64_decoded_len(&scalar_text(v)).unwrap_or(0);
    }
    if total > MAX_SECRET_SIZE {
        // kube reports the size against the whole object, with an empty field path.
        errs.push(too_long("", MAX_SECRET_SIZE));
    }
}

pub(super) fn validate_secret(secret: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let secret_type = text(secret, "type");
    if let Some(old) = old {
        if secret_type != text(old, "type") {
            errs.push(invalid("type", Bad::str(secret_type), IMMUTABLE_MSG));
        }
        immutable_when_set(secret, old, &["data"], errs);
    }
    let data = map(secret, "data");
    let mut total = 0usize;
    for (k, v) in sorted_entries(data) {
        let p = key("data", k);
        for m in config_map_key(k) {
            errs.push(invalid(&p, Bad::str(k), &m));
        }
        match base64_decoded_len(&scalar_text(v)) {
            Ok(n) => total += n,
            Err(at) => errs.push(invalid(
                &p,
                Bad::str("<secret contents redacted>"),
                &format!("illegal base64 data at input byte {at}"),
            )),
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(too_long("data", MAX_SECRET_SIZE));
    }
    let has = |k: &str| data.is_some_and(|d| d.contains_key(k));
    match secret_type {
        "kubernetes.io/service-account-token"
            if text(
                &secret["metadata"]["annotations"],
                "kubernetes.io/service-account.name",
            )
            .is_empty() =>
        {
            errs.push(required(
                "metadata.annotations[kubernetes.io/service-account.name]",
                "",
            ));
        }
        "kubernetes.io/dockercfg" if !has(".dockercfg") => {
            errs.push(required("data[.dockercfg]", ""));
        }
        "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => {
            errs.push(required("data[.dockerconfigjson]", ""));
        }
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required("data[username]", ""));
            errs.push(required("data[password]", ""));
        }
        "kubernetes.io/ssh-auth"
            if data
                .and_then(|d| d.get("ssh-privatekey"))
                .is_none_or(|v| scalar_text(v).is_empty()) =>
        {
            errs.push(required("data[ssh-privatekey]", ""));
        }
        "kubernetes.io/tls" => {
            for k in ["tls.crt", "tls.key"] {
                if !has(k) {
                    errs.push(required(&key("data", k), ""));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{create_errors, update_errors};
    use crate::admission::names::CONFIG_KEY_MSG;
    use crate::admission::validate;
    use serde_json::json;

    #[test]
    fn config_map_keys_and_size() {
        let errs = create_errors(
            "ConfigMap",
            json!({"metadata": {"name": "c"}, "data": {"good.key": "v", "bad/key": "v", "..x": "v"}}),
        );
        assert_eq!(
            errs,
            [
                "data[..x]: Invalid value: \"..x\": must not start with '..'",
                format!("data[bad/key]: Invalid value: \"bad/key\": {CONFIG_KEY_MSG}").as_str(),
            ]
        );
        let big = "x".repeat(MAX_SECRET_SIZE + 1);
        let errs = validate(
            "ConfigMap",
            &json!({"metadata": {"name": "c"}, "data": {"k": big}}),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].field, "");
        assert_eq!(
            errs[0].message,
            "Too long: may not be more than 1048576 bytes"
        );
        let dup = create_errors(
            "ConfigMap",
            json!({"data": {"k": "v"}, "binaryData": {"k": "dg=="}}),
        );
        assert_eq!(
            dup,
            ["data[k]: Invalid value: \"k\": duplicate of key present in binaryData"]
        );
    }

    #[test]
    fn immutable_config_maps_and_secrets_stay_put() {
        let old = json!({"metadata": {"name": "c"}, "immutable": true, "data": {"k": "v"}});
        let new = json!({"metadata": {"name": "c"}, "data": {"k": "w"}});
        assert_eq!(
            update_errors("ConfigMap", old, new),
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set",
            ]
        );
        let old = json!({"metadata": {"name": "s"}, "type": "Opaque", "data": {"k": "dg=="}});
        let new = json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        assert_eq!(
            update_errors("Secret", old, new),
            ["type: Invalid value: \"kubernetes.io/tls\": field is immutable"]
        );
    }

    #[test]
    fn secrets_are_checked() {
        let errs = create_errors(
            "Secret",
            json!({"metadata": {"name": "s"}, "type": "kubernetes.io/tls", "data": {"tls.crt": "not base64!", "a b": "YQ=="}}),
        );
        assert_eq!(
            errs,
            [
                format!("data[a b]: Invalid value: \"a b\": {CONFIG_KEY_MSG}"),
                "data[tls.crt]: Invalid value: \"<secret contents redacted>\": illegal base64 data at input byte 3".to_owned(),
                "data[tls.key]: Required value".to_owned(),
            ]
        );
        let big = base64_encode(&vec![0u8; MAX_SECRET_SIZE + 3]);
        let errs = create_errors("Secret", json!({"data": {"blob": big}}));
        assert_eq!(errs, ["data: Too long: may not be more than 1048576 bytes"]);
        let errs = create_errors("Secret", json!({"type": "kubernetes.io/basic-auth"}));
        assert_eq!(
            errs,
            [
                "data[username]: Required value",
                "data[password]: Required value"
            ]
        );
    }
}
