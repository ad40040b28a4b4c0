//! TEMPORARY STUB
#![allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub reason: &'static str,
    pub field: String,
    pub message: String,
}
impl FieldError {
    pub fn describe(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}
pub fn apply_defaults(_kind: &str, _object: &mut serde_json::Value) {}
pub fn validate(
    _kind: &str,
    _object: &serde_json::Value,
    _old: Option<&serde_json::Value>,
) -> Vec<FieldError> {
    vec![]
}
pub fn validate_name(_kind: &str, _name: &str) -> Vec<FieldError> {
    vec![]
}
