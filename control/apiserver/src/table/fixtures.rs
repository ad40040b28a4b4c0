//! Test fixtures shared by the Table tests: a fixed clock and tables reduced to their
//! column names and cells.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::{to_table, IncludeObject};

pub(super) const NOW: i64 = 1_700_000_000;

pub(super) fn ago(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(NOW - seconds)
        .expect("valid time")
        .format(&Rfc3339)
        .expect("formats")
}

pub(super) fn tab(kind: &str, api_version: &str, object: Value) -> Value {
    to_table(
        kind,
        api_version,
        &[object],
        IncludeObject::None,
        NOW,
        "7",
        None,
        true,
    )
}

pub(super) fn column_names(table: &Value) -> Vec<String> {
    table["columnDefinitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub(super) fn visible_columns(table: &Value) -> Vec<String> {
    table["columnDefinitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .filter(|c| c["priority"] == 0)
        .map(|c| c["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub(super) fn cells(table: &Value) -> Vec<Value> {
    table["rows"][0]["cells"].as_array().expect("cells").clone()
}

pub(super) fn cell(kind: &str, api_version: &str, object: Value, column: &str) -> Value {
    let table = tab(kind, api_version, object);
    let index = column_names(&table)
        .iter()
        .position(|c| c == column)
        .expect("column exists");
    cells(&table)[index].clone()
}
