//! Tables of custom objects: a Name column, then the CRD version's `additionalPrinterColumns`
//! (or Age when it declares none), each cell read with the JSONPath subset kube's printer
//! columns use: `.a.b`, `[n]`, `['key']`, `[*]` and filters `[?(@.type=="Ready")]`.
//! Several results join with `,`; no result is a `null` cell (kubectl's `<none>`); a `date`
//! column prints as an age, as kube's does.

use serde_json::{json, Value};

use crate::registry::Resource;
use crate::table::{self, IncludeObject};

/// One step of a path.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    /// `[?(@.<path>=="value")]` (or `!=`).
    Filter(Vec<String>, bool, Value),
}

/// A parsed printer-column path.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses `.spec.replicas`, `{.spec.replicas}` and the subset above; the message says what
    /// is wrong otherwise.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let text = text.trim();
        let text = text
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(text);
        let mut rest = text.strip_prefix('$').unwrap_or(text);
        let mut steps = Vec::new();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(['.', '[']).unwrap_or(after.len());
                let name = &after[..end];
                if name.is_empty() {
                    return Err(format!("invalid JSONPath {text:?}: empty field name"));
                }
                steps.push(Step::Field(name.to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let end = after
                    .find(']')
                    .ok_or_else(|| format!("invalid JSONPath {text:?}: unclosed ["))?;
                let inside = &after[..end];
                rest = &after[end + 1..];
                steps.push(
                    parse_bracket(inside).ok_or_else(|| {
                        format!("invalid JSONPath {text:?}: unsupported [{inside}]")
                    })?,
                );
            } else {
                return Err(format!("invalid JSONPath {text:?}: expected . or ["));
            }
        }
        Ok(JsonPath(steps))
    }

    /// The values the path reaches in `object`.
    pub fn find<'a>(&self, object: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![object];
        for step in &self.0 {
            let mut next = Vec::new();
            for value in current {
                match step {
                    Step::Field(name) => next.extend(value.get(name)),
                    Step::Index(i) => next.extend(value.get(*i)),
                    Step::All => match value {
                        Value::Array(items) => next.extend(items.iter()),
                        Value::Object(map) => next.extend(map.values()),
                        _ => {}
                    },
                    Step::Filter(path, equal, wanted) => {
                        for item in value.as_array().into_iter().flatten() {
                            let mut found = Some(item);
                            for field in path {
                                found = found.and_then(|f| f.get(field));
                            }
                            if (found == Some(wanted)) == *equal {
                                next.push(item);
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

fn parse_bracket(inside: &str) -> Option<Step> {
    let inside = inside.trim();
    if inside == "*" {
        return Some(Step::All);
    }
    if let Ok(i) = inside.parse::<usize>() {
        return Some(Step::Index(i));
    }
    if let Some(key) = inside
        .strip_prefix('\'')
        .and_then(|k| k.strip_suffix('\''))
        .or_else(|| inside.strip_prefix('"').and_then(|k| k.strip_suffix('"')))
    {
        return Some(Step::Field(key.to_owned()));
    }
    let filter = inside.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (left, equal, right) = match filter.split_once("==") {
        Some((l, r)) => (l, true, r),
        None => {
            let (l, r) = filter.split_once("!=")?;
            (l, false, r)
        }
    };
    let path: Vec<String> = left
        .trim()
        .strip_prefix("@.")?
        .split('.')
        .map(str::to_owned)
        .collect();
    let right = right.trim();
    let wanted = match right
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| right.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
    {
        Some(text) => json!(text),
        None => serde_json::from_str(right).ok()?,
    };
    Some(Step::Filter(path, equal, wanted))
}

/// A Table of `objects` of `resource`: kube's printer for custom resources, the built-in
/// printers for the others.
#[allow(clippy::too_many_arguments)]
pub fn to_table<O: std::borrow::Borrow<Value>>(
    resource: &Resource,
    objects: &[O],
    include: IncludeObject,
    now_unix: i64,
    resource_version: &str,
    continue_token: Option<&str>,
    with_definitions: bool,
) -> Value {
    let Some(custom) = &resource.custom else {
        return table::to_table(
            resource.kind,
            &resource.api_version(),
            objects,
            include,
            now_unix,
            resource_version,
            continue_token,
            with_definitions,
        );
    };
    // Built-in printing gives the Name and Age columns and the rows' objects; the custom
    // columns replace the cells after Name.
    let mut table = table::to_table(
        "",
        &resource.api_version(),
        objects,
        include,
        now_unix,
        resource_version,
        continue_token,
        with_definitions,
    );
    if custom.columns.is_empty() {
        return table;
    }
    let columns: Vec<(&Value, Option<JsonPath>)> = custom
        .columns
        .iter()
        .map(|c| {
            (
                c,
                JsonPath::parse(c["jsonPath"].as_str().unwrap_or("")).ok(),
            )
        })
        .collect();
    if with_definitions {
        let mut definitions = vec![table["columnDefinitions"][0].clone()];
        definitions.extend(columns.iter().map(|(c, _)| {
            let kind = c["type"].as_str().unwrap_or("string");
            json!({"name": c["name"], "type": if kind == "date" { "date" } else { kind },
                "format": c["format"].as_str().unwrap_or(""),
                "description": c["description"].as_str().unwrap_or(""),
                "priority": c["priority"].as_i64().unwrap_or(0)})
        }));
        table["columnDefinitions"] = Value::Array(definitions);
    }
    if let Some(rows) = table["rows"].as_array_mut() {
        for (row, object) in rows.iter_mut().zip(objects) {
            let object: &Value = object.borrow();
            let mut cells = vec![row["cells"][0].clone()];
            cells.extend(
                columns
                    .iter()
                    .map(|(c, path)| cell(c, path.as_ref(), object, now_unix)),
            );
            row["cells"] = Value::Array(cells);
        }
    }
    table
}

fn cell(column: &Value, path: Option<&JsonPath>, object: &Value, now_unix: i64) -> Value {
    let Some(path) = path else {
        return Value::Null;
    };
    let found = path.find(object);
    let kind = column["type"].as_str().unwrap_or("string");
    match (found.as_slice(), kind) {
        ([], _) => Value::Null,
        ([one], "date") => one
            .as_str()
            .and_then(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| json!(table::human_duration(now_unix - t.unix_timestamp())))
            .unwrap_or(Value::Null),
        ([one], "integer" | "number" | "boolean") if !one.is_string() => (*one).clone(),
        ([one], _) => match one {
            Value::String(s) => json!(s),
            other => json!(compact(other)),
        },
        (many, _) => json!(many
            .iter()
            .map(|v| compact(v))
            .collect::<Vec<_>>()
            .join(",")),
    }
}

fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_reach_what_printer_columns_name() {
        let object = json!({"spec": {"replicas": 3, "items": [{"name": "a"}, {"name": "b"}]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}});
        let find = |p: &str| -> Vec<Value> {
            JsonPath::parse(p)
                .unwrap()
                .find(&object)
                .into_iter()
                .cloned()
                .collect()
        };
        assert_eq!(find(".spec.replicas"), [json!(3)]);
        assert_eq!(find("{.spec.items[1].name}"), [json!("b")]);
        assert_eq!(find(".spec.items[*].name"), [json!("a"), json!("b")]);
        assert_eq!(
            find(".status.conditions[?(@.type==\"Ready\")].status"),
            [json!("True")]
        );
        assert_eq!(find(".spec['replicas']"), [json!(3)]);
        assert!(find(".spec.missing").is_empty());
        assert!(JsonPath::parse("spec").is_err());
        assert!(JsonPath::parse(".spec[").is_err());
    }
}
