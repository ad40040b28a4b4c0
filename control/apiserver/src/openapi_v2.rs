//! `/openapi/v2`: the Swagger 2.0 document, made from the same group-version documents as
//! OpenAPI v3 ([`crate::openapi`]), in JSON or, as kubectl asks for it, in protobuf
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`: gnostic's
//! `openapi.v2.Document`).
//!
//! kubectl reads v2 where v3 does not answer its question: `apply -f` of a `kind: List` asks
//! v2 whether `fieldValidation` is supported for `List` and validates the items against v2's
//! definitions; client-side `apply` reads the patch strategies from it.
//!
//! From v3 to v2: `#/components/schemas/X` references become `#/definitions/X`, a described
//! reference (`allOf: [$ref]`) a `$ref` with its description, a request body a `body`
//! parameter, a parameter's `schema` its own `type`.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::protobuf::encode::{put_bytes, put_varint};

/// The media type kubectl asks v2 in.
pub const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// The v2 document in both forms.
#[derive(Debug)]
pub struct Documents {
    /// Swagger 2.0 JSON.
    pub json: Bytes,
    /// gnostic protobuf.
    pub protobuf: Bytes,
    /// The ETag (the JSON's SHA-512, as v3's).
    pub hash: String,
}

impl Documents {
    /// The v2 document of the v3 group-version documents.
    pub fn of<'a>(v3: impl IntoIterator<Item = &'a Value>) -> Documents {
        let swagger = swagger(v3);
        let json = Bytes::from(swagger.to_string());
        use sha2::Digest;
        let hash = sha2::Sha512::digest(&json)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        Documents {
            protobuf: Bytes::from(document(&swagger)),
            json,
            hash,
        }
    }
}

impl Documents {
    /// The answer to `/openapi/v2`: protobuf when Accept names it (kubectl never reads v2 as
    /// JSON), JSON otherwise; 304 when `If-None-Match` names the current ETag.
    pub fn serve(
        &self,
        accept: &str,
        if_none_match: Option<&str>,
    ) -> (u16, Bytes, &'static str, String) {
        let etag = format!("\"{}\"", self.hash);
        let (body, content_type) = if accept.contains(PROTOBUF) {
            // Go's mime parser refuses the `@` of the media type asked for, so kube-openapi
            // labels the protobuf document as plain bytes.
            (self.protobuf.clone(), "application/octet-stream")
        } else {
            (self.json.clone(), "application/json")
        };
        let unchanged = if_none_match.is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim().trim_start_matches("W/") == etag)
        });
        if unchanged {
            return (304, Bytes::new(), content_type, etag);
        }
        (200, body, content_type, etag)
    }
}

/// The Swagger 2.0 document of every group version.
pub fn swagger<'a>(v3: impl IntoIterator<Item = &'a Value>) -> Value {
    let mut paths = Map::new();
    let mut definitions = Map::new();
    for document in v3 {
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            paths.insert(path.clone(), path_item(item));
        }
        for (name, schema) in document["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
        {
            definitions.insert(name.clone(), schema_v2(schema));
        }
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": crate::server::KUBERNETES_VERSION},
        "paths": paths,
        "definitions": definitions,
    })
}

fn path_item(item: &Value) -> Value {
    let mut out = Map::new();
    for (key, value) in item.as_object().into_iter().flatten() {
        let converted = match key.as_str() {
            "parameters" => parameters(value, None),
            _ => operation(value),
        };
        out.insert(key.clone(), converted);
    }
    Value::Object(out)
}

fn operation(operation: &Value) -> Value {
    let mut out = operation.as_object().cloned().unwrap_or_default();
    let body = out.remove("requestBody");
    out.insert(
        "parameters".into(),
        parameters(&operation["parameters"], body.as_ref()),
    );
    if let Some(Value::Object(responses)) = out.get_mut("responses") {
        for response in responses.values_mut() {
            let schema = response["content"]
                .as_object()
                .and_then(|c| c.values().next())
                .map(|media| schema_v2(&media["schema"]));
            let mut converted = json!({"description": response["description"]});
            if let Some(schema) = schema {
                converted["schema"] = schema;
            }
            *response = converted;
        }
    }
    Value::Object(out)
}

fn parameters(list: &Value, body: Option<&Value>) -> Value {
    let mut out: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let mut parameter = p.as_object().cloned().unwrap_or_default();
            if let Some(Value::Object(schema)) = parameter.remove("schema") {
                parameter.extend(schema);
            }
            Value::Object(parameter)
        })
        .collect();
    if let Some(body) = body {
        let schema = body["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|media| schema_v2(&media["schema"]))
            .unwrap_or(json!({}));
        out.push(json!({"name": "body", "in": "body", "required": true, "schema": schema}));
    }
    Value::Array(out)
}

/// A v3 schema in v2's terms.
fn schema_v2(schema: &Value) -> Value {
    match schema {
        Value::Object(object) => {
            let mut out = Map::new();
            for (key, value) in object {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => {
                        out.insert(
                            key.clone(),
                            json!(r.replace("#/components/schemas/", "#/definitions/")),
                        );
                    }
                    ("allOf", Value::Array(parts))
                        if parts.len() == 1 && parts[0].get("$ref").is_some() =>
                    {
                        out.extend(
                            schema_v2(&parts[0])
                                .as_object()
                                .cloned()
                                .unwrap_or_default(),
                        );
                    }
                    ("properties", Value::Object(properties)) => {
                        let converted = properties
                            .iter()
                            .map(|(k, v)| (k.clone(), schema_v2(v)))
                            .collect();
                        out.insert(key.clone(), Value::Object(converted));
                    }
                    ("items" | "additionalProperties", value) => {
                        out.insert(key.clone(), schema_v2(value));
                    }
                    ("allOf" | "anyOf" | "oneOf", Value::Array(parts)) => {
                        out.insert(
                            key.clone(),
                            Value::Array(parts.iter().map(schema_v2).collect()),
                        );
                    }
                    // v2 has no nullable.
                    ("nullable", _) => {}
                    _ => {
                        out.insert(key.clone(), value.clone());
                    }
                }
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// gnostic's `openapi.v2.Document` of a Swagger 2.0 document.
pub fn document(swagger: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_string(&mut out, 1, &swagger["swagger"]);
    let mut info = Vec::new();
    put_string(&mut info, 1, &swagger["info"]["title"]);
    put_string(&mut info, 2, &swagger["info"]["version"]);
    put_bytes(&mut out, 2, &info);
    let mut paths = Vec::new();
    for (name, item) in swagger["paths"].as_object().into_iter().flatten() {
        put_bytes(&mut paths, 2, &named(name, &path_item_message(item)));
    }
    put_bytes(&mut out, 8, &paths);
    let mut definitions = Vec::new();
    for (name, schema) in swagger["definitions"].as_object().into_iter().flatten() {
        put_bytes(&mut definitions, 1, &named(name, &schema_message(schema)));
    }
    put_bytes(&mut out, 9, &definitions);
    out
}

/// A `Named*` message: name 1, value 2.
fn named(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, 1, name.as_bytes());
    put_bytes(&mut out, 2, value);
    out
}

fn put_string(out: &mut Vec<u8>, tag: u32, value: &Value) {
    if let Some(text) = value.as_str() {
        put_bytes(out, tag, text.as_bytes());
    }
}

/// `x-` keys as `NamedAny`, their values as YAML (JSON is YAML).
fn put_vendor_extensions(out: &mut Vec<u8>, tag: u32, object: &Map<String, Value>) {
    for (key, value) in object.iter().filter(|(k, _)| k.starts_with("x-")) {
        put_bytes(out, tag, &named(key, &any(value)));
    }
}

/// An `Any`: its YAML (field 2).
fn any(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, 2, value.to_string().as_bytes());
    out
}

fn path_item_message(item: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (6, "options"),
        (7, "head"),
        (8, "patch"),
    ] {
        if let Some(operation) = item.get(method) {
            put_bytes(&mut out, tag, &operation_message(operation));
        }
    }
    for parameter in item["parameters"].as_array().into_iter().flatten() {
        put_bytes(&mut out, 9, &parameter_message(parameter));
    }
    out
}

fn operation_message(operation: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for tag in operation["tags"].as_array().into_iter().flatten() {
        put_string(&mut out, 1, tag);
    }
    put_string(&mut out, 3, &operation["description"]);
    put_string(&mut out, 5, &operation["operationId"]);
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        put_bytes(&mut out, 8, &parameter_message(parameter));
    }
    let mut responses = Vec::new();
    for (code, response) in operation["responses"].as_object().into_iter().flatten() {
        let mut message = Vec::new();
        put_string(&mut message, 1, &response["description"]);
        if let Some(schema) = response.get("schema") {
            let mut item = Vec::new();
            put_bytes(&mut item, 1, &schema_message(schema));
            put_bytes(&mut message, 2, &item);
        }
        let mut value = Vec::new();
        put_bytes(&mut value, 1, &message);
        put_bytes(&mut responses, 1, &named(code, &value));
    }
    put_bytes(&mut out, 9, &responses);
    if let Some(object) = operation.as_object() {
        put_vendor_extensions(&mut out, 13, object);
    }
    out
}

/// A `ParametersItem` holding a `Parameter`: a body parameter, or a query or path one.
fn parameter_message(parameter: &Value) -> Vec<u8> {
    let mut message = Vec::new();
    put_string(&mut message, 4, &parameter["name"]);
    put_string(&mut message, 2, &parameter["in"]);
    put_string(&mut message, 3, &parameter["description"]);
    if parameter["required"] == json!(true) {
        put_varint(&mut message, 1, 1);
    }
    let (choice, sub) = match parameter["in"].as_str() {
        Some("body") => {
            let mut body = Vec::new();
            put_string(&mut body, 1, &parameter["description"]);
            put_string(&mut body, 2, &parameter["name"]);
            put_string(&mut body, 3, &parameter["in"]);
            put_varint(&mut body, 4, 1);
            put_bytes(&mut body, 5, &schema_message(&parameter["schema"]));
            (1, body)
        }
        Some("path") => {
            put_string(&mut message, 5, &parameter["type"]);
            let mut non_body = Vec::new();
            put_bytes(&mut non_body, 4, &message);
            (2, non_body)
        }
        _ => {
            put_string(&mut message, 6, &parameter["type"]);
            if parameter["uniqueItems"] == json!(true) {
                put_varint(&mut message, 20, 1);
            }
            let mut non_body = Vec::new();
            put_bytes(&mut non_body, 3, &message);
            (2, non_body)
        }
    };
    let mut wrapped = Vec::new();
    put_bytes(&mut wrapped, choice, &sub);
    let mut item = Vec::new();
    put_bytes(&mut item, 1, &wrapped);
    item
}

fn schema_message(schema: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    let Some(object) = schema.as_object() else {
        return out;
    };
    put_string(&mut out, 1, &schema["$ref"]);
    put_string(&mut out, 2, &schema["format"]);
    put_string(&mut out, 4, &schema["description"]);
    if let Some(default) = object.get("default") {
        put_bytes(&mut out, 5, &any(default));
    }
    for required in schema["required"].as_array().into_iter().flatten() {
        put_string(&mut out, 19, required);
    }
    for value in schema["enum"].as_array().into_iter().flatten() {
        put_bytes(&mut out, 20, &any(value));
    }
    match object.get("additionalProperties") {
        Some(Value::Bool(allowed)) => {
            let mut item = Vec::new();
            put_varint(&mut item, 2, u64::from(*allowed));
            put_bytes(&mut out, 21, &item);
        }
        Some(values) => {
            let mut item = Vec::new();
            put_bytes(&mut item, 1, &schema_message(values));
            put_bytes(&mut out, 21, &item);
        }
        None => {}
    }
    if let Some(kind) = schema["type"].as_str() {
        let mut type_item = Vec::new();
        put_bytes(&mut type_item, 1, kind.as_bytes());
        put_bytes(&mut out, 22, &type_item);
    }
    if let Some(items) = object.get("items") {
        let mut item = Vec::new();
        put_bytes(&mut item, 1, &schema_message(items));
        put_bytes(&mut out, 23, &item);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        put_bytes(&mut out, 24, &schema_message(part));
    }
    if let Some(properties) = schema["properties"].as_object() {
        let mut message = Vec::new();
        for (name, property) in properties {
            put_bytes(&mut message, 1, &named(name, &schema_message(property)));
        }
        put_bytes(&mut out, 25, &message);
    }
    put_vendor_extensions(&mut out, 31, object);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_documents_become_swagger_2() {
        let v3 = json!({
            "paths": {"/api/v1/namespaces/{namespace}/configmaps/{name}": {
                "patch": {
                    "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}}],
                    "requestBody": {"content": {"application/json-patch+json": {"schema": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}}, "required": true},
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/io.k8s.api.core.v1.ConfigMap"}}}}},
                    "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                },
                "parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}],
            }},
            "components": {"schemas": {"io.k8s.api.core.v1.ConfigMap": {
                "type": "object",
                "properties": {"metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}], "description": "meta"}},
            }}},
        });
        let swagger = swagger([&v3]);
        let item = &swagger["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"];
        assert_eq!(
            item["patch"]["parameters"],
            json!([{"name": "fieldValidation", "in": "query", "type": "string", "uniqueItems": true},
                {"name": "body", "in": "body", "required": true, "schema": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"}}])
        );
        assert_eq!(
            item["patch"]["responses"]["200"],
            json!({"description": "OK", "schema": {"$ref": "#/definitions/io.k8s.api.core.v1.ConfigMap"}})
        );
        assert_eq!(item["parameters"][0]["type"], "string");
        assert_eq!(
            swagger["definitions"]["io.k8s.api.core.v1.ConfigMap"]["properties"]["metadata"],
            json!({"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", "description": "meta"})
        );
        // gnostic's Document opens with field 1, the version, and field 2, the info.
        let wire = document(&swagger);
        assert_eq!(&wire[..5], b"\x0a\x032.0");
        assert_eq!(wire[5], 0x12);
    }
}
