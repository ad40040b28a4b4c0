//! Defaulting and validation of built-in kinds, the way kube-apiserver (v1.32/1.33) does it.
//!
//! kubectl and the Python client see kube's defaults in every object they read back (a
//! Deployment's `strategy`, a container's `imagePullPolicy`, ...) and parse kube's validation
//! messages out of 422 Status responses, so both have to match kube's own output closely:
//!
//! * [`apply_defaults`] mirrors `pkg/apis/*/v1/defaults.go` with the generated `+default`
//!   markers, the create-time strategy steps that behave like defaults (a Job's generated
//!   selector, a Namespace's finalizer and name label, a Secret's `stringData`), the canonical
//!   re-serialisation of resource quantities, and the zero-valued `status` structs that Go's
//!   encoder always writes.
//! * [`validate`] mirrors `pkg/apis/*/validation` for the kinds keel serves, producing
//!   [`FieldError`]s whose reason, field path and message text are kube's, including the way
//!   Go renders bad values (`%q` for strings, `%#v` for maps and label selectors).
//! * [`validate_name`] applies the per-kind `metadata.name` rule.
//!
//! Objects are `serde_json::Value`s in Go's JSON shape. Nothing here panics on user input:
//! a field of the wrong JSON type is treated as absent, the way a lenient decoder would.

use serde_json::{json, Map, Value};
use std::cmp::Ordering;

use crate::go_format::go_quote;

type Obj = Map<String, Value>;

/// One invalid field, as a Status cause: reason e.g. `FieldValueRequired`, `FieldValueInvalid`,
/// `FieldValueNotSupported`, `FieldValueDuplicate`, `FieldValueForbidden`, `FieldValueTooLong`;
/// field e.g. `spec.containers[0].image`; message the detail kube prints after the field
/// (`Required value`, `Invalid value: "Foo": a lowercase RFC 1123 subdomain must consist of ...`,
/// `Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The Status cause type, e.g. "FieldValueInvalid".
    pub reason: &'static str,
    /// The field path, e.g. `spec.containers[0].image`.
    pub field: String,
    /// What kube prints after the field, e.g. "Required value".
    pub message: String,
}

impl FieldError {
    /// `<field>: <message>`, the way kube joins it into a Status message.
    pub fn describe(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

// ---------------------------------------------------------------------------------------------
// Building errors the way apimachinery's field package renders them.
// ---------------------------------------------------------------------------------------------

/// A bad value as Go's `ErrorBody` prints it: strings through `%q`, numbers plainly, and
/// anything else pre-rendered (usually Go's `%#v`).
enum Bad {
    Str(String),
    Int(i64),
    Raw(String),
}

impl Bad {
    fn str(s: &str) -> Bad {
        Bad::Str(s.to_owned())
    }

    fn render(&self) -> String {
        match self {
            Bad::Str(s) => go_quote(s),
            Bad::Int(i) => i.to_string(),
            Bad::Raw(s) => s.clone(),
        }
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

fn required(field: &str, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueRequired",
        field: field.to_owned(),
        message: with_detail("Required value".into(), detail),
    }
}

fn forbidden(field: &str, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueForbidden",
        field: field.to_owned(),
        message: with_detail("Forbidden".into(), detail),
    }
}

fn too_long(field: &str, max: usize) -> FieldError {
    FieldError {
        reason: "FieldValueTooLong",
        field: field.to_owned(),
        message: format!("Too long: may not be more than {max} bytes"),
    }
}

fn invalid(field: &str, bad: Bad, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: field.to_owned(),
        message: with_detail(format!("Invalid value: {}", bad.render()), detail),
    }
}

fn not_supported(field: &str, bad: Bad, supported: &[&str]) -> FieldError {
    let values: Vec<String> = supported.iter().map(|v| go_quote(v)).collect();
    FieldError {
        reason: "FieldValueNotSupported",
        field: field.to_owned(),
        message: with_detail(
            format!("Unsupported value: {}", bad.render()),
            &format!("supported values: {}", values.join(", ")),
        ),
    }
}

fn duplicate(field: &str, bad: Bad) -> FieldError {
    FieldError {
        reason: "FieldValueDuplicate",
        field: field.to_owned(),
        message: format!("Duplicate value: {}", bad.render()),
    }
}

fn not_found(field: &str, bad: Bad) -> FieldError {
    FieldError {
        reason: "FieldValueNotFound",
        field: field.to_owned(),
        message: format!("Not found: {}", bad.render()),
    }
}

fn child(base: &str, name: &str) -> String {
    if base.is_empty() {
        name.to_owned()
    } else {
        format!("{base}.{name}")
    }
}

fn index(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

fn key(base: &str, k: &str) -> String {
    format!("{base}[{k}]")
}

/// A JSON scalar as Go's `%#v` would show the string it decodes into.
fn go_scalar(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        other => go_quote(&other.to_string()),
    }
}

/// `%#v` of a `map[string]string`; Go prints map keys sorted.
fn go_string_map(map: Option<&Obj>) -> String {
    match map {
        None => "map[string]string(nil)".into(),
        Some(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_scalar(v)))
                .collect();
            format!("map[string]string{{{}}}", body.join(", "))
        }
    }
}

/// `%#v` of a `[]string`.
fn go_string_slice(list: Option<&Vec<Value>>) -> String {
    match list {
        None => "[]string(nil)".into(),
        Some(items) => {
            let body: Vec<String> = items.iter().map(go_scalar).collect();
            format!("[]string{{{}}}", body.join(", "))
        }
    }
}

/// `%#v` of a `metav1.LabelSelector`, which is how kube shows an immutable or mismatched
/// selector ("v1.LabelSelector{MatchLabels:map[string]string{...}, MatchExpressions:...}").
fn go_label_selector(selector: &Value) -> String {
    if !selector.is_object() {
        return "null".into();
    }
    let labels = go_string_map(selector.get("matchLabels").and_then(Value::as_object));
    let exprs = match selector.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_owned(),
        Some(list) => {
            let body: Vec<String> = list
                .iter()
                .map(|e| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(text(e, "key")),
                        go_quote(text(e, "operator")),
                        go_string_slice(e.get("values").and_then(Value::as_array)),
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", body.join(", "))
        }
    };
    format!("v1.LabelSelector{{MatchLabels:{labels}, MatchExpressions:{exprs}}}")
}

/// `%#v` of an `intstr.IntOrString`.
fn go_int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => {
            format!(
                "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
                go_quote(s)
            )
        }
        Some(n) => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            n.as_i64().unwrap_or(0)
        ),
        None => "intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}".into(),
    }
}

/// A bad value too big for Go's `%#v` to be worth imitating, shown as compact JSON.
fn json_bad(v: Option<&Value>) -> Bad {
    Bad::Raw(v.map_or_else(|| "null".to_owned(), Value::to_string))
}

// ---------------------------------------------------------------------------------------------
// Reading and writing JSON leniently.
// ---------------------------------------------------------------------------------------------

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn opt_text<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn int(v: &Value, k: &str) -> Option<i64> {
    let n = v.get(k)?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
            .map(|f| f as i64)
    })
}

fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn map<'a>(v: &'a Value, k: &str) -> Option<&'a Obj> {
    v.get(k).and_then(Value::as_object)
}

fn present(v: &Value, k: &str) -> bool {
    v.get(k).is_some_and(|x| !x.is_null())
}

/// The object under `k`, created when absent or null; `None` if something else is there.
fn entry_obj<'a>(m: &'a mut Obj, k: &str) -> Option<&'a mut Obj> {
    let slot = m.entry(k.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = json!({});
    }
    slot.as_object_mut()
}

fn obj_mut<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Obj> {
    entry_obj(v.as_object_mut()?, k)
}

/// Sets `k` unless it already holds something; Go's decoder treats null as absent.
fn default_field(v: &mut Value, k: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        let slot = m.entry(k.to_owned()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

fn is_blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

fn each_mut(v: &mut Value, k: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = v.get_mut(k).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

// ---------------------------------------------------------------------------------------------
// Name and identifier rules (apimachinery/pkg/util/validation).
// ---------------------------------------------------------------------------------------------

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const CONFIG_KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";
const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";
const PORT_RANGE_MSG: &str = "must be between 1 and 65535, inclusive";
const NEGATIVE_MSG: &str = "must be greater than or equal to 0";
const IMMUTABLE_MSG: &str = "field is immutable";
const SELECTOR_MISMATCH_MSG: &str = "`selector` does not match template `labels`";
const MAX_SECRET_SIZE: usize = 1024 * 1024;
const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;
const MAX_INT32: i64 = 2_147_483_647;

fn max_len_msg(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn matches_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && is_lower_alnum(b[0])
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-')
}

fn matches_dns_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns_label)
}

fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_msg(63));
    }
    if !matches_dns_label(s) {
        if matches_dns_subdomain(s) {
            errs.push("must not contain dots".into());
        } else {
            errs.push(DNS1123_LABEL_MSG.into());
        }
    }
    errs
}

fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_msg(253));
    }
    if !matches_dns_subdomain(s) {
        errs.push(DNS1123_SUBDOMAIN_MSG.into());
    }
    errs
}

fn dns1035_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_msg(63));
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && is_lower_alnum(b[b.len() - 1])
        && b.iter().all(|&c| is_lower_alnum(c) || c == b'-');
    if !ok {
        errs.push(DNS1035_LABEL_MSG.into());
    }
    errs
}

fn path_segment_name(s: &str) -> Vec<String> {
    if s == "." || s == ".." {
        return vec![format!("may not be '{s}'")];
    }
    let mut errs = Vec::new();
    for bad in ["/", "%"] {
        if s.contains(bad) {
            errs.push(format!("may not contain '{bad}'"));
        }
    }
    errs
}

fn matches_qualified_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

/// apimachinery's `IsQualifiedName`: label keys, annotation keys, finalizers, resource names.
fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".into());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_msg(63)));
    }
    if !matches_qualified_part(name) {
        errs.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errs
}

fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len_msg(63));
    }
    if !s.is_empty() && !matches_qualified_part(s) {
        errs.push(LABEL_VALUE_MSG.into());
    }
    errs
}

fn config_map_key(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_msg(253));
    }
    let ok = !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
    if !ok {
        errs.push(CONFIG_KEY_MSG.into());
    }
    if s == "." {
        errs.push("must not be '.'".into());
    } else if s == ".." {
        errs.push("must not be '..'".into());
    } else if s.starts_with("..") {
        errs.push("must not start with '..'".into());
    }
    errs
}

fn port_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 15 {
        errs.push(max_len_msg(15));
    }
    if s.is_empty() || !s.bytes().all(|c| is_lower_alnum(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".into());
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".into());
    }
    if s.contains("--") {
        errs.push("must not contain consecutive hyphens".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        errs.push("must not begin or end with a hyphen".into());
    }
    errs
}

fn valid_port(n: i64) -> bool {
    (1..=65535).contains(&n)
}

fn percent_value(s: &str) -> Option<i64> {
    let digits = s.strip_suffix('%')?;
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse::<i64>().unwrap_or(i64::MAX))
}

/// Name rules: which validation kube applies to metadata.name of `kind` — a DNS-1123 subdomain
/// for most kinds; a DNS-1123 label for Namespace and StatefulSet; a DNS-1035 label for
/// Service; path-segment rules (not "." or "..", no "/" or "%") for the RBAC kinds. CronJob
/// names are also capped at 52 characters so the Jobs they spawn stay within 63. Returns the
/// FieldErrors for field "metadata.name" (generateName prefix handling is the caller's).
pub fn validate_name(kind: &str, name: &str) -> Vec<FieldError> {
    const FIELD: &str = "metadata.name";
    if name.is_empty() {
        return vec![required(FIELD, "name or generateName is required")];
    }
    let messages = match kind {
        "Namespace" | "StatefulSet" => dns1123_label(name),
        "Service" => dns1035_label(name),
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding" => path_segment_name(name),
        _ => dns1123_subdomain(name),
    };
    let mut errs: Vec<FieldError> = messages
        .iter()
        .map(|m| invalid(FIELD, Bad::str(name), m))
        .collect();
    // The CronJob controller appends an 11-character suffix to name its Jobs.
    if kind == "CronJob" && name.len() > 52 {
        errs.push(invalid(
            FIELD,
            Bad::str(name),
            "must be no more than 52 characters",
        ));
    }
    errs
}

// ---------------------------------------------------------------------------------------------
// Resource quantities (apimachinery/pkg/api/resource), enough to parse, compare and print them
// as kube does.
// ---------------------------------------------------------------------------------------------

const QUANTITY_FORMAT_MSG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const QUANTITY_SUFFIX_MSG: &str = "unable to parse quantity's suffix";
const QUANTITY_NUMERIC_MSG: &str = "unable to parse numeric part of quantity";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QFormat {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// `(-1)^neg * mant * 10^exp`, with the format its suffix asked for. `cached` is the input
/// text when Go's parser would keep it verbatim (it already was canonical).
#[derive(Clone, Debug)]
struct Quantity {
    neg: bool,
    mant: u128,
    exp: i32,
    format: QFormat,
    cached: Option<String>,
}

fn pow10(n: u32) -> Option<u128> {
    10u128.checked_pow(n)
}

fn digit_count(mut n: u128) -> i32 {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

fn strip_tens(mut m: u128, mut e: i32) -> (u128, i32) {
    if m == 0 {
        return (0, e);
    }
    while m % 10 == 0 {
        m /= 10;
        e += 1;
    }
    (m, e)
}

/// Divides by `10^shift`, rounding away from zero.
fn div_ceil_pow10(m: u128, shift: u32) -> u128 {
    match pow10(shift) {
        Some(d) => m / d + u128::from(m % d != 0),
        None => u128::from(m != 0),
    }
}

/// Splits Go's way: sign, integer digits without leading zeros, fraction digits, suffix.
fn split_quantity(s: &str) -> Result<(bool, &str, &str, &str), &'static str> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    match b.first() {
        Some(b'-') => {
            positive = false;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok((positive, "0", "", ""));
    }
    let start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let num = if pos == start { "0" } else { &s[start..pos] };
    if pos >= end {
        return Ok((positive, num, "", ""));
    }
    let mut denom = "";
    if b[pos] == b'.' {
        pos += 1;
        let start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[start..pos];
        if pos >= end {
            return Ok((positive, num, denom, ""));
        }
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(QUANTITY_FORMAT_MSG);
    }
    Ok((positive, num, denom, &s[suffix_start..]))
}

fn interpret_suffix(suffix: &str) -> Option<(u32, i32, QFormat)> {
    let decimal = |e| Some((10, e, QFormat::DecimalSi));
    let binary = |e| Some((2, e, QFormat::BinarySi));
    match suffix {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
            let e: i64 = s[1..].parse().ok()?;
            // Far beyond anything a resource can mean; refuse rather than overflow.
            (-1000..=1000)
                .contains(&e)
                .then_some((10, e as i32, QFormat::DecimalExponent))
        }
        _ => None,
    }
}

impl Quantity {
    fn parse(input: &str) -> Result<Quantity, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err(QUANTITY_FORMAT_MSG);
        }
        let (positive, num, denom, suffix) = split_quantity(s)?;
        let (base, exponent, mut format) = interpret_suffix(suffix).ok_or(QUANTITY_SUFFIX_MSG)?;
        let digits = format!("{num}{denom}");
        let significant = digits.trim_start_matches('0');
        if significant.len() > 38 {
            return Err(QUANTITY_NUMERIC_MSG);
        }
        let mut mant: u128 = if significant.is_empty() {
            0
        } else {
            significant.parse().map_err(|_| QUANTITY_NUMERIC_MSG)?
        };
        let scale = exponent - denom.len() as i32;
        let mut exp = if base == 10 {
            scale
        } else {
            mant = mant
                .checked_mul(1u128 << exponent)
                .ok_or(QUANTITY_NUMERIC_MSG)?;
            -(denom.len() as i32)
        };

        // Go keeps the input text when its int64 fast path accepts it in canonical form.
        let mut cached = None;
        let shifted_len = num.len() + denom.len();
        match format {
            QFormat::DecimalSi | QFormat::DecimalExponent => {
                if shifted_len <= 18
                    && scale >= -9
                    && scale % 3 == 0
                    && !digits.ends_with("000")
                    && !digits.starts_with('0')
                {
                    cached = Some(s.to_owned());
                }
            }
            QFormat::BinarySi => {
                let precision = 15 - num.len() as i32 - (exponent as f32 * 3.0 / 10.0) as i32 - 1;
                let value: u128 = num.parse().unwrap_or(0);
                if denom.is_empty()
                    && precision >= 0
                    && exponent % 10 == 0
                    && value & 7 != 0
                    && value << exponent <= i64::MAX as u128
                {
                    cached = Some(s.to_owned());
                }
            }
        }

        if mant != 0 && exp < -9 {
            mant = div_ceil_pow10(mant, (-9 - exp) as u32);
            exp = -9;
        }
        if format == QFormat::BinarySi {
            let max = i64::MAX as u128;
            let over = match pow10((-exp).max(0) as u32).and_then(|d| max.checked_mul(d)) {
                Some(limit) => mant > limit,
                None => false,
            };
            if over {
                mant = max;
                exp = 0;
                cached = None;
            }
            if cached.is_none() && mant != 0 && exp < 0 {
                if let Some(one) = pow10((-exp) as u32) {
                    if mant < one {
                        format = QFormat::DecimalSi;
                    }
                }
            }
        }
        Ok(Quantity {
            neg: !positive && mant != 0,
            mant,
            exp,
            format,
            cached,
        })
    }

    /// Parses the JSON form Go accepts: a string, a bare number, or null (zero).
    fn from_json(v: &Value) -> Result<Quantity, &'static str> {
        match v {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            Value::Null => Quantity::parse("0"),
            _ => Err(QUANTITY_FORMAT_MSG),
        }
    }

    fn is_zero(&self) -> bool {
        self.mant == 0
    }

    /// `SetDefaults_ResourceList`: values are rounded up to milli precision.
    fn round_up_milli(&mut self) {
        if self.mant != 0 && self.exp < -3 {
            self.mant = div_ceil_pow10(self.mant, (-3 - self.exp) as u32);
            self.exp = -3;
            self.cached = None;
        }
    }

    fn canonical(&self) -> String {
        if let Some(c) = &self.cached {
            return c.clone();
        }
        if self.mant == 0 {
            return "0".into();
        }
        let sign = if self.neg { "-" } else { "" };
        let (mut m, mut e) = strip_tens(self.mant, self.exp);
        if self.format == QFormat::BinarySi && e >= 0 {
            if let Some(v) = pow10(e as u32).and_then(|p| m.checked_mul(p)) {
                if v >= 1024 {
                    let mut v = v;
                    let mut k = 0;
                    while v % 1024 == 0 && k < 6 {
                        v /= 1024;
                        k += 1;
                    }
                    let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][k];
                    return format!("{sign}{v}{suffix}");
                }
            }
        }
        match e % 3 {
            1 | -2 => {
                if let Some(x) = m.checked_mul(10) {
                    m = x;
                    e -= 1;
                }
            }
            2 | -1 => {
                if let Some(x) = m.checked_mul(100) {
                    m = x;
                    e -= 2;
                }
            }
            _ => {}
        }
        let suffix = match (self.format, e) {
            (QFormat::DecimalExponent, 0) => String::new(),
            (QFormat::DecimalExponent, e) => format!("e{e}"),
            (_, -9) => "n".into(),
            (_, -6) => "u".into(),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, 18) => "E".into(),
            (_, e) => format!("e{e}"),
        };
        format!("{sign}{m}{suffix}")
    }

    fn magnitude_cmp(&self, other: &Quantity) -> Ordering {
        let (am, ae) = strip_tens(self.mant, self.exp);
        let (bm, be) = strip_tens(other.mant, other.exp);
        match (am == 0, bm == 0) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let order_a = digit_count(am) + ae;
        let order_b = digit_count(bm) + be;
        if order_a != order_b {
            return order_a.cmp(&order_b);
        }
        // Same order of magnitude: scale the one with the larger exponent down to the other.
        let low = ae.min(be);
        let scaled = |m: u128, e: i32| pow10((e - low) as u32).and_then(|p| m.checked_mul(p));
        match (scaled(am, ae), scaled(bm, be)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => Ordering::Equal,
        }
    }

    fn cmp(&self, other: &Quantity) -> Ordering {
        match (self.neg && !self.is_zero(), other.neg && !other.is_zero()) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.magnitude_cmp(other),
            (true, true) => other.magnitude_cmp(self),
        }
    }

    /// Sum of two non-negative quantities; `None` when it would not fit.
    fn add(&self, other: &Quantity) -> Option<Quantity> {
        let low = self.exp.min(other.exp);
        let a = self.mant.checked_mul(pow10((self.exp - low) as u32)?)?;
        let b = other.mant.checked_mul(pow10((other.exp - low) as u32)?)?;
        Some(Quantity {
            neg: false,
            mant: a.checked_add(b)?,
            exp: low,
            format: self.format,
            cached: None,
        })
    }
}

/// Rewrites every parseable quantity in a ResourceList in kube's canonical form, rounding up to
/// milli precision first; unparseable values are left for validation to report.
fn canonicalize_resource_list(list: Option<&mut Value>) {
    let Some(Value::Object(items)) = list else {
        return;
    };
    for value in items.values_mut() {
        if let Ok(mut q) = Quantity::from_json(value) {
            q.round_up_milli();
            *value = Value::String(q.canonical());
        }
    }
}

fn canonicalize_quantity(value: Option<&mut Value>) {
    if let Some(value) = value {
        if value.is_null() {
            return;
        }
        if let Ok(q) = Quantity::from_json(value) {
            *value = Value::String(q.canonical());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Defaults (pkg/apis/*/v1/defaults.go, the generated `+default` markers, and strategy steps).
// ---------------------------------------------------------------------------------------------

/// Fills in the defaults kube-apiserver applies on create and update for `kind` (e.g. "Pod",
/// "Deployment"). Only absent (or null) fields are filled (save a Namespace's name label, which
/// kube always overwrites), so applying it twice changes nothing.
///
/// Besides `defaults.go` this also performs the create-time strategy steps whose results look
/// like defaults to clients: a Job's generated selector and labels (which need `metadata.uid`,
/// so call it after the uid is assigned, and after `generateName` is resolved so the
/// `job-name` label carries the final name), a Namespace's `kubernetes` finalizer and
/// `kubernetes.io/metadata.name` label, a Secret's `stringData` folded into `data`, a Service's
/// `clusterIPs` mirrored from `clusterIP`, a Pod's `status.phase`/`qosClass`, and the
/// zero-valued status structs Go always serialises. Quantities in resource lists are rewritten
/// in kube's canonical form (`"1000m"` → `"1"`, `"1024Mi"` → `"1Gi"`, `0.5` → `"500m"`).
pub fn apply_defaults(kind: &str, object: &mut Value) {
    if !object.is_object() {
        return;
    }
    match kind {
        "Pod" => default_pod(object),
        "PodTemplate" => default_pod_template(object.get_mut("template")),
        "ReplicationController" => default_replication_controller(object),
        "Deployment" => default_deployment(object),
        "ReplicaSet" => {
            if let Some(spec) = obj_mut(object, "spec") {
                spec.entry("replicas").or_insert(json!(1));
            }
            default_pod_template(object["spec"].get_mut("template"));
            default_status(object, json!({"replicas": 0}));
        }
        "DaemonSet" => default_daemon_set(object),
        "StatefulSet" => default_stateful_set(object),
        "Job" => default_job(object),
        "CronJob" => default_cron_job(object),
        "Service" => default_service(object),
        "Secret" => default_secret(object),
        "Namespace" => default_namespace(object),
        "Node" => default_node(object),
        "PersistentVolume" => default_persistent_volume(object),
        "PersistentVolumeClaim" => default_persistent_volume_claim(object),
        "Endpoints" => each_mut(object, "subsets", |subset| {
            each_mut(subset, "ports", |port| {
                default_field(port, "protocol", json!("TCP"))
            });
        }),
        _ => {}
    }
}

/// Adds the fields of Go's zero-valued status struct that are not `omitempty`.
fn default_status(object: &mut Value, zero: Value) {
    if let (Some(status), Value::Object(zero)) = (obj_mut(object, "status"), zero) {
        for (k, v) in zero {
            status.entry(k).or_insert(v);
        }
    }
}

fn default_pod(pod: &mut Value) {
    // Pod.spec is a struct, so even a Pod sent without one gets the PodSpec defaults.
    if obj_mut(pod, "spec").is_some() {
        default_pod_spec(&mut pod["spec"], true);
    }
    let qos = qos_class(&pod["spec"]);
    default_status(pod, json!({"phase": "Pending", "qosClass": qos}));
}

/// Defaults a PodTemplateSpec: only its pod spec has defaults.
fn default_pod_template(template: Option<&mut Value>) {
    let Some(template) = template.filter(|t| t.is_object()) else {
        return;
    };
    // PodTemplateSpec.spec is a struct, so even a missing spec gets the PodSpec defaults.
    if obj_mut(template, "spec").is_some() {
        default_pod_spec(&mut template["spec"], false);
    }
}

/// `SetDefaults_PodSpec` plus the nested defaults; `is_pod` adds what `SetDefaults_Pod` does
/// only for real Pods (not templates).
fn default_pod_spec(spec: &mut Value, is_pod: bool) {
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    let host_network = flag(spec, "hostNetwork");
    for field in ["containers", "initContainers", "ephemeralContainers"] {
        each_mut(spec, field, |c| {
            default_container(c);
            if is_pod && field != "ephemeralContainers" {
                default_requests_from_limits(c);
                if host_network {
                    each_mut(c, "ports", |p| {
                        if int(p, "hostPort").unwrap_or(0) == 0 {
                            if let Some(cp) = p.get("containerPort").cloned() {
                                p["hostPort"] = cp;
                            }
                        }
                    });
                }
            }
        });
    }
    each_mut(spec, "volumes", default_volume);
    if let Some(overhead) = spec.get_mut("overhead") {
        canonicalize_resource_list(Some(overhead));
    }
    if is_pod {
        default_field(spec, "enableServiceLinks", json!(true));
    }
}

fn default_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    if is_blank(c.get("imagePullPolicy")) {
        let policy = if image_tag(text(c, "image")).as_deref() == Some("latest") {
            "Always"
        } else {
            "IfNotPresent"
        };
        c["imagePullPolicy"] = json!(policy);
    }
    if is_blank(c.get("terminationMessagePath")) {
        c["terminationMessagePath"] = json!("/dev/termination-log");
    }
    if is_blank(c.get("terminationMessagePolicy")) {
        c["terminationMessagePolicy"] = json!("File");
    }
    // ResourceRequirements is a struct, not a pointer, so Go always writes it.
    if let Some(resources) = obj_mut(c, "resources") {
        canonicalize_resource_list(resources.get_mut("limits"));
        canonicalize_resource_list(resources.get_mut("requests"));
    }
    each_mut(c, "ports", |p| default_field(p, "protocol", json!("TCP")));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).filter(|p| p.is_object()) {
            default_field(p, "timeoutSeconds", json!(1));
            default_field(p, "periodSeconds", json!(10));
            default_field(p, "successThreshold", json!(1));
            default_field(p, "failureThreshold", json!(3));
            default_http_get(p);
        }
    }
    if let Some(lifecycle) = c.get_mut("lifecycle").filter(|l| l.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lifecycle.get_mut(hook).filter(|h| h.is_object()) {
                default_http_get(h);
            }
        }
    }
    each_mut(c, "env", |e| {
        if let Some(from) = e.get_mut("valueFrom").filter(|f| f.is_object()) {
            if let Some(field_ref) = from.get_mut("fieldRef").filter(|f| f.is_object()) {
                default_field(field_ref, "apiVersion", json!("v1"));
            }
            if let Some(resource_ref) = from.get_mut("resourceFieldRef").filter(|f| f.is_object()) {
                // A Quantity struct, never omitted: the zero divisor prints as "0".
                default_field(resource_ref, "divisor", json!("0"));
                canonicalize_quantity(resource_ref.get_mut("divisor"));
            }
        }
    });
}

fn default_http_get(handler: &mut Value) {
    if let Some(h) = handler.get_mut("httpGet").filter(|h| h.is_object()) {
        if is_blank(h.get("path")) {
            h["path"] = json!("/");
        }
        if is_blank(h.get("scheme")) {
            h["scheme"] = json!("HTTP");
        }
    }
}

/// `SetDefaults_Pod`: a container's requests default to its limits.
fn default_requests_from_limits(c: &mut Value) {
    let Some(limits) = c["resources"]
        .get("limits")
        .and_then(Value::as_object)
        .cloned()
    else {
        return;
    };
    if let Some(requests) = c.get_mut("resources").and_then(|r| obj_mut(r, "requests")) {
        for (k, v) in limits {
            requests.entry(k).or_insert(v);
        }
    }
}

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn default_volume(v: &mut Value) {
    if !v.is_object() {
        return;
    }
    if !VOLUME_SOURCES.iter().any(|s| present(v, s)) {
        v["emptyDir"] = json!({});
    }
    if let Some(e) = v.get_mut("emptyDir").filter(|e| e.is_object()) {
        canonicalize_quantity(e.get_mut("sizeLimit"));
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).filter(|s| s.is_object()) {
            default_field(s, "defaultMode", json!(420));
        }
    }
    if let Some(h) = v.get_mut("hostPath").filter(|h| h.is_object()) {
        default_field(h, "type", json!(""));
    }
    if let Some(d) = v.get_mut("downwardAPI").filter(|d| d.is_object()) {
        each_mut(d, "items", |item| {
            if let Some(f) = item.get_mut("fieldRef").filter(|f| f.is_object()) {
                default_field(f, "apiVersion", json!("v1"));
            }
        });
    }
    if let Some(p) = v.get_mut("projected").filter(|p| p.is_object()) {
        each_mut(p, "sources", |source| {
            if let Some(t) = source
                .get_mut("serviceAccountToken")
                .filter(|t| t.is_object())
            {
                default_field(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = source.get_mut("downwardAPI").filter(|d| d.is_object()) {
                each_mut(d, "items", |item| {
                    if let Some(f) = item.get_mut("fieldRef").filter(|f| f.is_object()) {
                        default_field(f, "apiVersion", json!("v1"));
                    }
                });
            }
        });
    }
    if let Some(e) = v.get_mut("ephemeral").filter(|e| e.is_object()) {
        if let Some(t) = e.get_mut("volumeClaimTemplate").filter(|t| t.is_object()) {
            if let Some(spec) = t.get_mut("spec").filter(|s| s.is_object()) {
                default_pvc_spec(spec);
            }
        }
    }
}

/// The tag `parsers.ParseImageName` finds: the explicit one, "latest" when the reference names
/// neither tag nor digest, and none when there is only a digest or the reference is invalid.
fn image_tag(image: &str) -> Option<String> {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    if !valid_repository(repo) {
        return None;
    }
    if let Some(tag) = tag {
        let ok = !tag.is_empty()
            && tag.len() <= 128
            && (tag.as_bytes()[0].is_ascii_alphanumeric() || tag.starts_with('_'))
            && tag
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        return ok.then(|| tag.to_owned());
    }
    if digest.is_some() {
        None
    } else {
        Some("latest".into())
    }
}

/// Docker's reference grammar: an optional registry host, then lowercase path components.
fn valid_repository(repo: &str) -> bool {
    if repo.is_empty() {
        return false;
    }
    let mut parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        let is_host = first.contains('.')
            || first.contains(':')
            || first == "localhost"
            || first.to_lowercase() != first;
        if is_host {
            parts.remove(0);
        }
    }
    parts.iter().all(|component| {
        let b = component.as_bytes();
        !b.is_empty()
            && is_lower_alnum(b[0])
            && is_lower_alnum(b[b.len() - 1])
            && b.iter()
                .all(|&c| is_lower_alnum(c) || c == b'.' || c == b'_' || c == b'-')
    })
}

/// The Pod's QoS class, as `qos.ComputePodQOS` derives it from cpu and memory.
fn qos_class(spec: &Value) -> &'static str {
    let mut requests: Vec<(String, Quantity)> = Vec::new();
    let mut limits: Vec<(String, Quantity)> = Vec::new();
    let mut guaranteed = true;
    let accumulate = |acc: &mut Vec<(String, Quantity)>, name: &str, q: Quantity| -> bool {
        match acc.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => match total.add(&q) {
                Some(sum) => {
                    *total = sum;
                    true
                }
                None => false,
            },
            None => {
                acc.push((name.to_owned(), q));
                true
            }
        }
    };
    for c in list(spec, "containers")
        .iter()
        .chain(list(spec, "initContainers"))
    {
        let resources = &c["resources"];
        for (name, v) in map(resources, "requests").into_iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Ok(q) = Quantity::from_json(v) {
                // Only positive requests count towards a QoS class.
                if !q.neg && !q.is_zero() && !accumulate(&mut requests, name, q) {
                    guaranteed = false;
                }
            }
        }
        let mut found = 0;
        for (name, v) in map(resources, "limits").into_iter().flatten() {
            if name != "cpu" && name != "memory" {
                continue;
            }
            if let Ok(q) = Quantity::from_json(v) {
                if !q.is_zero() && !q.neg {
                    found += 1;
                    if !accumulate(&mut limits, name, q) {
                        guaranteed = false;
                    }
                }
            }
        }
        if found < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed {
        for (name, req) in &requests {
            match limits.iter().find(|(n, _)| n == name) {
                Some((_, lim)) if lim.cmp(req) == Ordering::Equal => {}
                _ => guaranteed = false,
            }
        }
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn default_replication_controller(rc: &mut Value) {
    let labels = rc["spec"]["template"]["metadata"]
        .get("labels")
        .filter(|l| l.is_object())
        .cloned();
    let Some(spec) = obj_mut(rc, "spec") else {
        return;
    };
    spec.entry("replicas").or_insert(json!(1));
    if let Some(labels) = labels {
        if spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Obj::is_empty)
        {
            spec.insert("selector".into(), labels.clone());
        }
        if let Some(meta) = obj_mut(rc, "metadata") {
            if meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Obj::is_empty)
            {
                meta.insert("labels".into(), labels);
            }
        }
    }
    default_pod_template(rc["spec"].get_mut("template"));
    default_status(rc, json!({"replicas": 0}));
}

fn default_deployment(d: &mut Value) {
    let Some(spec) = obj_mut(d, "spec") else {
        return;
    };
    spec.entry("replicas").or_insert(json!(1));
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    spec.entry("progressDeadlineSeconds").or_insert(json!(600));
    let spec = &mut d["spec"];
    if let Some(strategy) = obj_mut(spec, "strategy") {
        let strategy_type = strategy
            .entry("type")
            .or_insert(json!("RollingUpdate"))
            .clone();
        if strategy_type == "RollingUpdate" {
            if let Some(rolling) = entry_obj(strategy, "rollingUpdate") {
                rolling.entry("maxUnavailable").or_insert(json!("25%"));
                rolling.entry("maxSurge").or_insert(json!("25%"));
            }
        }
    }
    default_pod_template(d["spec"].get_mut("template"));
    default_status(d, json!({}));
}

fn default_daemon_set(ds: &mut Value) {
    let Some(spec) = obj_mut(ds, "spec") else {
        return;
    };
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    let spec = &mut ds["spec"];
    if let Some(strategy) = obj_mut(spec, "updateStrategy") {
        let strategy_type = strategy
            .entry("type")
            .or_insert(json!("RollingUpdate"))
            .clone();
        if strategy_type == "RollingUpdate" {
            if let Some(rolling) = entry_obj(strategy, "rollingUpdate") {
                rolling.entry("maxUnavailable").or_insert(json!(1));
                rolling.entry("maxSurge").or_insert(json!(0));
            }
        }
    }
    default_pod_template(ds["spec"].get_mut("template"));
    default_status(
        ds,
        json!({
            "currentNumberScheduled": 0,
            "numberMisscheduled": 0,
            "desiredNumberScheduled": 0,
            "numberReady": 0,
        }),
    );
}

fn default_stateful_set(sts: &mut Value) {
    let Some(spec) = obj_mut(sts, "spec") else {
        return;
    };
    spec.entry("podManagementPolicy")
        .or_insert(json!("OrderedReady"));
    spec.entry("replicas").or_insert(json!(1));
    spec.entry("revisionHistoryLimit").or_insert(json!(10));
    let spec = &mut sts["spec"];
    if let Some(strategy) = obj_mut(spec, "updateStrategy") {
        // Only an unset type gets a rollingUpdate block; an explicit RollingUpdate without one
        // stays without one, as in SetDefaults_StatefulSet.
        if is_blank(strategy.get("type")) {
            strategy.insert("type".into(), json!("RollingUpdate"));
            let slot = strategy.entry("rollingUpdate").or_insert(Value::Null);
            if slot.is_null() {
                *slot = json!({});
            }
        }
        if strategy.get("type") == Some(&json!("RollingUpdate")) {
            if let Some(rolling) = strategy.get_mut("rollingUpdate").filter(|r| r.is_object()) {
                default_field(rolling, "partition", json!(0));
            }
        }
    }
    if let Some(policy) = obj_mut(spec, "persistentVolumeClaimRetentionPolicy") {
        policy.entry("whenDeleted").or_insert(json!("Retain"));
        policy.entry("whenScaled").or_insert(json!("Retain"));
    }
    each_mut(spec, "volumeClaimTemplates", |pvc| {
        if pvc.is_object() {
            default_persistent_volume_claim(pvc);
        }
    });
    default_pod_template(sts["spec"].get_mut("template"));
    default_status(sts, json!({"replicas": 0, "availableReplicas": 0}));
}

const LEGACY_JOB_NAME_LABEL: &str = "job-name";
const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";

fn default_job(job: &mut Value) {
    let name = text(&job["metadata"], "name").to_owned();
    let uid = text(&job["metadata"], "uid").to_owned();
    let Some(spec) = obj_mut(job, "spec") else {
        return;
    };
    let spec_value = Value::Object(spec.clone());
    if is_blank(spec_value.get("completions")) && is_blank(spec_value.get("parallelism")) {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    let spec = &mut job["spec"];
    default_field(spec, "parallelism", json!(1));
    let backoff = if present(spec, "backoffLimitPerIndex") {
        json!(MAX_INT32)
    } else {
        json!(6)
    };
    default_field(spec, "backoffLimit", backoff);
    default_field(spec, "completionMode", json!("NonIndexed"));
    default_field(spec, "suspend", json!(false));
    if let Some(policy) = spec.get_mut("podFailurePolicy").filter(|p| p.is_object()) {
        each_mut(policy, "rules", |rule| {
            each_mut(rule, "onPodConditions", |c| {
                default_field(c, "status", json!("True"))
            });
        });
    }
    let replacement = if present(spec, "podFailurePolicy") {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    default_field(spec, "podReplacementPolicy", json!(replacement));
    default_field(spec, "manualSelector", json!(false));

    // The Job strategy's generateSelector: pods carry the Job's name and uid, and the selector
    // picks them by uid alone.
    if !flag(spec, "manualSelector") && !uid.is_empty() {
        let labels = obj_mut(spec, "template")
            .and_then(|t| entry_obj(t, "metadata"))
            .and_then(|m| entry_obj(m, "labels"));
        if let Some(labels) = labels {
            for (k, v) in [
                (LEGACY_JOB_NAME_LABEL, &name),
                (JOB_NAME_LABEL, &name),
                (LEGACY_CONTROLLER_UID_LABEL, &uid),
                (CONTROLLER_UID_LABEL, &uid),
            ] {
                labels.entry(k).or_insert(json!(v));
            }
        }
        let match_labels = obj_mut(spec, "selector").and_then(|s| entry_obj(s, "matchLabels"));
        if let Some(match_labels) = match_labels {
            match_labels
                .entry(CONTROLLER_UID_LABEL)
                .or_insert(json!(uid));
        }
    }
    default_pod_template(job["spec"].get_mut("template"));

    // SetDefaults_Job copies the template's labels onto an unlabelled Job; kube shares the
    // map, so the Job ends up with the generated labels too.
    let template_labels = job["spec"]["template"]["metadata"]
        .get("labels")
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(meta) = obj_mut(job, "metadata") {
            if meta
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Obj::is_empty)
            {
                meta.insert("labels".into(), labels);
            }
        }
    }
    default_status(job, json!({}));
}

fn default_cron_job(cj: &mut Value) {
    let Some(spec) = obj_mut(cj, "spec") else {
        return;
    };
    spec.entry("concurrencyPolicy").or_insert(json!("Allow"));
    spec.entry("suspend").or_insert(json!(false));
    spec.entry("successfulJobsHistoryLimit").or_insert(json!(3));
    spec.entry("failedJobsHistoryLimit").or_insert(json!(1));
    if let Some(job_spec) = cj["spec"]
        .get_mut("jobTemplate")
        .and_then(|t| t.get_mut("spec"))
        .filter(|s| s.is_object())
    {
        if let Some(policy) = job_spec
            .get_mut("podFailurePolicy")
            .filter(|p| p.is_object())
        {
            each_mut(policy, "rules", |rule| {
                each_mut(rule, "onPodConditions", |c| {
                    default_field(c, "status", json!("True"))
                });
            });
        }
        default_pod_template(job_spec.get_mut("template"));
    }
    default_status(cj, json!({}));
}

/// `ExternallyAccessible` in pkg/api/v1/service.
fn externally_accessible(spec: &Value) -> bool {
    match text(spec, "type") {
        "LoadBalancer" | "NodePort" => true,
        "ClusterIP" => !list(spec, "externalIPs").is_empty(),
        _ => false,
    }
}

fn default_service(svc: &mut Value) {
    if obj_mut(svc, "spec").is_none() {
        return;
    }
    let spec = &mut svc["spec"];
    if is_blank(spec.get("sessionAffinity")) {
        spec["sessionAffinity"] = json!("None");
    }
    match text(spec, "sessionAffinity") {
        "None" => {
            if let Some(m) = spec.as_object_mut() {
                m.remove("sessionAffinityConfig");
            }
        }
        "ClientIP" => {
            let timeout = &spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"];
            if timeout.is_null() {
                spec["sessionAffinityConfig"] = json!({"clientIP": {"timeoutSeconds": 10800}});
            }
        }
        _ => {}
    }
    if is_blank(spec.get("type")) {
        spec["type"] = json!("ClusterIP");
    }
    each_mut(spec, "ports", |p| {
        if !p.is_object() {
            return;
        }
        default_field(p, "protocol", json!("TCP"));
        let target = p.get("targetPort");
        let unset = match target {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.is_empty(),
            Some(n) => n.as_i64() == Some(0),
        };
        if unset {
            if let Some(port) = p.get("port").cloned() {
                p["targetPort"] = port;
            }
        }
    });
    let service_type = text(spec, "type").to_owned();
    if externally_accessible(spec) && is_blank(spec.get("externalTrafficPolicy")) {
        spec["externalTrafficPolicy"] = json!("Cluster");
    }
    if matches!(
        service_type.as_str(),
        "NodePort" | "LoadBalancer" | "ClusterIP"
    ) {
        default_field(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if service_type == "LoadBalancer" {
        default_field(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    // The strategy keeps clusterIP and clusterIPs[0] in step.
    let cluster_ip = text(spec, "clusterIP").to_owned();
    let first_ip = list(spec, "clusterIPs")
        .first()
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (cluster_ip.is_empty(), first_ip) {
        (false, None) => spec["clusterIPs"] = json!([cluster_ip]),
        (true, Some(first)) => spec["clusterIP"] = json!(first),
        _ => {}
    }
    // The IP-family allocator's choice for a single-stack cluster; headless services without a
    // selector ask for every family.
    if service_type != "ExternalName" {
        let policy = if text(spec, "clusterIP") == "None"
            && map(spec, "selector").is_none_or(Obj::is_empty)
        {
            "RequireDualStack"
        } else {
            "SingleStack"
        };
        default_field(spec, "ipFamilyPolicy", json!(policy));
    }
    if service_type == "LoadBalancer" {
        if let Some(ingress) = svc
            .get_mut("status")
            .and_then(|s| s.get_mut("loadBalancer"))
            .and_then(|l| l.get_mut("ingress"))
            .and_then(Value::as_array_mut)
        {
            for i in ingress.iter_mut() {
                if present(i, "ip") {
                    default_field(i, "ipMode", json!("VIP"));
                }
            }
        }
    }
    default_status(svc, json!({"loadBalancer": {}}));
}

fn default_secret(secret: &mut Value) {
    default_field(secret, "type", json!("Opaque"));
    // Decoding folds stringData into data (base64-encoded); stringData is never stored.
    let string_data = secret.as_object_mut().and_then(|m| m.remove("stringData"));
    if let Some(Value::Object(entries)) = string_data {
        if let Some(data) = obj_mut(secret, "data") {
            for (k, v) in entries {
                let raw = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                data.insert(k, json!(base64_encode(raw.as_bytes())));
            }
        }
    }
}

fn default_namespace(ns: &mut Value) {
    let name = text(&ns["metadata"], "name").to_owned();
    if !name.is_empty() {
        let labels = obj_mut(ns, "metadata").and_then(|m| entry_obj(m, "labels"));
        if let Some(labels) = labels {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if let Some(spec) = obj_mut(ns, "spec") {
        spec.entry("finalizers").or_insert(json!(["kubernetes"]));
    }
    default_status(ns, json!({"phase": "Active"}));
}

fn default_node(node: &mut Value) {
    let Some(status) = node.get_mut("status").filter(|s| s.is_object()) else {
        return;
    };
    canonicalize_resource_list(status.get_mut("capacity"));
    canonicalize_resource_list(status.get_mut("allocatable"));
    if !present(status, "allocatable") {
        if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
            status["allocatable"] = capacity;
        }
    }
}

fn default_pvc_spec(spec: &mut Value) {
    default_field(spec, "volumeMode", json!("Filesystem"));
    if let Some(resources) = spec.get_mut("resources").filter(|r| r.is_object()) {
        canonicalize_resource_list(resources.get_mut("requests"));
        canonicalize_resource_list(resources.get_mut("limits"));
    }
}

fn default_persistent_volume_claim(pvc: &mut Value) {
    if obj_mut(pvc, "spec").is_some() {
        default_pvc_spec(&mut pvc["spec"]);
    }
    default_status(pvc, json!({"phase": "Pending"}));
}

fn default_persistent_volume(pv: &mut Value) {
    if let Some(spec) = obj_mut(pv, "spec") {
        spec.entry("persistentVolumeReclaimPolicy")
            .or_insert(json!("Retain"));
        spec.entry("volumeMode").or_insert(json!("Filesystem"));
        canonicalize_resource_list(pv["spec"].get_mut("capacity"));
    }
    default_status(pv, json!({"phase": "Pending"}));
}

const BASE64_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
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

// ---------------------------------------------------------------------------------------------
// Validation entry point and object metadata.
// ---------------------------------------------------------------------------------------------

/// Everything wrong with `object` of `kind` (empty = valid). `old` is the stored object on
/// update (for immutable fields), None on create. `metadata.name` is [`validate_name`]'s job
/// and `metadata.namespace` (required or forbidden) is the caller's; everything else kube's
/// `Validate`/`ValidateUpdate` would report is here, in kube's order, expecting an object that
/// has been through [`apply_defaults`] as kube's would have been.
pub fn validate(kind: &str, object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let meta = &object["metadata"];
    if let Some(old) = old {
        validate_meta_update(meta, &old["metadata"], &mut errs);
    }
    validate_meta(meta, "metadata", &mut errs);
    match kind {
        "Pod" => validate_pod(object, old, &mut errs),
        "PodTemplate" => validate_pod_template(&object["template"], "template", &mut errs),
        "ReplicationController" => validate_replication_controller(object, &mut errs),
        "Deployment" => validate_deployment(object, old, &mut errs),
        "ReplicaSet" => validate_replica_set(object, old, &mut errs),
        "DaemonSet" => validate_daemon_set(object, old, &mut errs),
        "StatefulSet" => validate_stateful_set(object, old, &mut errs),
        "Job" => validate_job(object, old, &mut errs),
        "CronJob" => validate_cron_job(object, &mut errs),
        "Service" => validate_service(object, old, &mut errs),
        "ConfigMap" => validate_config_map(object, old, &mut errs),
        "Secret" => validate_secret(object, old, &mut errs),
        "Namespace" => validate_namespace(object, &mut errs),
        _ => {}
    }
    errs
}

fn sorted_entries(m: Option<&Obj>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = m.into_iter().flatten().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn validate_labels(labels: Option<&Obj>, path: &str, errs: &mut Vec<FieldError>) {
    for (k, v) in sorted_entries(labels) {
        for m in qualified_name(k) {
            errs.push(invalid(path, Bad::str(k), &m));
        }
        let v = scalar_text(v);
        for m in label_value(&v) {
            errs.push(invalid(path, Bad::str(&v), &m));
        }
    }
}

fn validate_annotations(annotations: Option<&Obj>, path: &str, errs: &mut Vec<FieldError>) {
    let mut total = 0usize;
    for (k, v) in sorted_entries(annotations) {
        // Annotation keys are qualified names in any case.
        for m in qualified_name(&k.to_lowercase()) {
            errs.push(invalid(path, Bad::str(k), &m));
        }
        total += k.len() + scalar_text(v).len();
    }
    if total > MAX_ANNOTATIONS_SIZE {
        errs.push(too_long(path, MAX_ANNOTATIONS_SIZE));
    }
}

const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// Core's `validateKubeFinalizerName`: a qualified name, and a bare name must be a standard one.
fn kube_finalizer_errors(f: &str, path: &str, errs: &mut Vec<FieldError>) {
    let messages = qualified_name(f);
    if !messages.is_empty() {
        for m in messages {
            errs.push(invalid(path, Bad::str(f), &m));
        }
    } else if !f.contains('/') && !STANDARD_FINALIZERS.contains(&f) {
        errs.push(invalid(
            path,
            Bad::str(f),
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
}

fn validate_meta(meta: &Value, path: &str, errs: &mut Vec<FieldError>) {
    validate_labels(map(meta, "labels"), &child(path, "labels"), errs);
    validate_annotations(map(meta, "annotations"), &child(path, "annotations"), errs);

    let owners_path = child(path, "ownerReferences");
    let mut controller: Option<String> = None;
    for owner in list(meta, "ownerReferences") {
        let api_version = text(owner, "apiVersion");
        // ParseGroupVersion: "v1", "group/v1"; anything with more slashes has no version.
        let version = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] | [_, v] => *v,
            _ => "",
        };
        if version.is_empty() {
            errs.push(invalid(
                &child(&owners_path, "apiVersion"),
                Bad::str(api_version),
                "version must not be empty",
            ));
        }
        for field in ["kind", "name", "uid"] {
            if text(owner, field).is_empty() {
                errs.push(invalid(
                    &child(&owners_path, field),
                    Bad::str(""),
                    "must not be empty",
                ));
            }
        }
        if flag(owner, "controller") {
            let current = format!("{}/{}", text(owner, "kind"), text(owner, "name"));
            match &controller {
                Some(first) => errs.push(invalid(
                    &owners_path,
                    json_bad(meta.get("ownerReferences")),
                    &format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => controller = Some(current),
            }
        }
    }

    let finalizers_path = child(path, "finalizers");
    let finalizers: Vec<String> = list(meta, "finalizers").iter().map(scalar_text).collect();
    for f in &finalizers {
        for m in qualified_name(f) {
            errs.push(invalid(&finalizers_path, Bad::str(f), &m));
        }
    }
    if finalizers.iter().any(|f| f == "orphan")
        && finalizers.iter().any(|f| f == "foregroundDeletion")
    {
        errs.push(invalid(
            &finalizers_path,
            Bad::Raw(go_string_slice(
                meta.get("finalizers").and_then(Value::as_array),
            )),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    for (i, f) in finalizers.iter().enumerate() {
        kube_finalizer_errors(f, &index(&finalizers_path, i), errs);
    }
}

fn validate_meta_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    if present(old, "deletionTimestamp") {
        let old_finalizers: Vec<String> = list(old, "finalizers").iter().map(scalar_text).collect();
        let mut added: Vec<String> = list(new, "finalizers")
            .iter()
            .map(scalar_text)
            .filter(|f| !old_finalizers.contains(f))
            .collect();
        added.sort();
        added.dedup();
        if !added.is_empty() {
            let quoted: Vec<String> = added.iter().map(|f| go_quote(f)).collect();
            errs.push(forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    quoted.join(", ")
                ),
            ));
        }
    }
    for field in ["name", "namespace", "uid"] {
        let new_value = text(new, field);
        if field == "uid" && new_value.is_empty() {
            continue;
        }
        if new_value != text(old, field) {
            errs.push(invalid(
                &child("metadata", field),
                Bad::str(new_value),
                IMMUTABLE_MSG,
            ));
        }
    }
}

fn nonnegative(v: &Value, k: &str, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(n) = int(v, k) {
        if n < 0 {
            errs.push(invalid(path, Bad::Int(n), NEGATIVE_MSG));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Label selectors.
// ---------------------------------------------------------------------------------------------

/// What `metav1.LabelSelectorAsSelector` makes of a selector.
enum Selector<'a> {
    /// A nil selector selects nothing.
    Nothing,
    /// An empty selector selects everything.
    Everything,
    Parsed(&'a Value),
    /// The selector has errors; kube skips matching it.
    Invalid,
}

/// `ValidateLabelSelector` with strict label values, returning what the selector means.
fn validate_label_selector<'a>(
    selector: Option<&'a Value>,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Selector<'a> {
    let Some(selector) = selector.filter(|s| !s.is_null()) else {
        return Selector::Nothing;
    };
    let before = errs.len();
    validate_labels(
        map(selector, "matchLabels"),
        &child(path, "matchLabels"),
        errs,
    );
    let exprs_path = child(path, "matchExpressions");
    for (i, expr) in list(selector, "matchExpressions").iter().enumerate() {
        let p = index(&exprs_path, i);
        let values = list(expr, "values");
        match text(expr, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(required(
                        &child(&p, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(forbidden(
                        &child(&p, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(invalid(
                &child(&p, "operator"),
                Bad::str(op),
                "not a valid selector operator",
            )),
        }
        for m in qualified_name(text(expr, "key")) {
            errs.push(invalid(&child(&p, "key"), Bad::str(text(expr, "key")), &m));
        }
        for (j, v) in values.iter().enumerate() {
            let v = scalar_text(v);
            for m in label_value(&v) {
                errs.push(invalid(&index(&child(&p, "values"), j), Bad::str(&v), &m));
            }
        }
    }
    if errs.len() > before {
        return Selector::Invalid;
    }
    let empty = map(selector, "matchLabels").is_none_or(Obj::is_empty)
        && list(selector, "matchExpressions").is_empty();
    if empty {
        Selector::Everything
    } else {
        Selector::Parsed(selector)
    }
}

fn selector_matches(selector: &Value, labels: Option<&Obj>) -> bool {
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(scalar_text);
    let labels_ok = sorted_entries(map(selector, "matchLabels"))
        .into_iter()
        .all(|(k, v)| label(k) == Some(scalar_text(v)));
    labels_ok
        && list(selector, "matchExpressions").iter().all(|e| {
            let values: Vec<String> = list(e, "values").iter().map(scalar_text).collect();
            let current = label(text(e, "key"));
            match text(e, "operator") {
                "In" => current.is_some_and(|c| values.contains(&c)),
                "NotIn" => current.is_none_or(|c| !values.contains(&c)),
                "Exists" => current.is_some(),
                "DoesNotExist" => current.is_none(),
                _ => false,
            }
        })
}

/// Whether a (possibly nil) selector selects a pod template's labels; `Everything` and
/// `Invalid` are not checked, as in kube.
fn selector_mismatch(selector: &Selector, labels: Option<&Obj>) -> bool {
    match selector {
        Selector::Nothing => true,
        Selector::Parsed(s) => !selector_matches(s, labels),
        Selector::Everything | Selector::Invalid => false,
    }
}

fn mismatch_error(template: &Value, path: &str) -> FieldError {
    invalid(
        &child(path, "metadata.labels"),
        Bad::Raw(go_string_map(map(&template["metadata"], "labels"))),
        SELECTOR_MISMATCH_MSG,
    )
}

/// The selector immutability apps/v1 and batch/v1 strategies enforce on update.
fn immutable_selector(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    let new_selector = new["spec"].get("selector");
    if !sem_eq(new_selector, old["spec"].get("selector")) {
        errs.push(invalid(
            "spec.selector",
            Bad::Raw(new_selector.map_or_else(|| "null".into(), go_label_selector)),
            IMMUTABLE_MSG,
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Pod specs (ValidatePodSpec and the container validations).
// ---------------------------------------------------------------------------------------------

const RESTART_POLICIES: &[&str] = &["Always", "OnFailure", "Never"];
const DNS_POLICIES: &[&str] = &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"];
const PULL_POLICIES: &[&str] = &["Always", "IfNotPresent", "Never"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Validates an enum-like string: empty is Required, unknown is NotSupported.
fn enum_field(v: &Value, k: &str, path: &str, supported: &[&str], errs: &mut Vec<FieldError>) {
    let value = text(v, k);
    if value.is_empty() {
        errs.push(required(path, ""));
    } else if !supported.contains(&value) {
        errs.push(not_supported(path, Bad::str(value), supported));
    }
}

fn validate_pod_spec(spec: &Value, path: &str, is_pod: bool, errs: &mut Vec<FieldError>) {
    if !present(spec, "terminationGracePeriodSeconds") {
        errs.push(required(&child(path, "terminationGracePeriodSeconds"), ""));
    }
    let volumes = validate_volumes(spec, &child(path, "volumes"), errs);
    validate_containers(spec, path, &volumes, errs);
    validate_init_containers(spec, path, &volumes, errs);

    if flag(spec, "hostNetwork") {
        let containers_path = child(path, "containers");
        for (i, c) in list(spec, "containers").iter().enumerate() {
            for (j, port) in list(c, "ports").iter().enumerate() {
                let host = int(port, "hostPort").unwrap_or(0);
                let container = int(port, "containerPort").unwrap_or(0);
                // Templates may leave hostPort for the Pod's defaulting to fill in.
                if (is_pod || host != 0) && host != container {
                    errs.push(invalid(
                        &child(
                            &index(&child(&index(&containers_path, i), "ports"), j),
                            "hostPort",
                        ),
                        Bad::Int(host),
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    enum_field(
        spec,
        "restartPolicy",
        &child(path, "restartPolicy"),
        RESTART_POLICIES,
        errs,
    );
    enum_field(
        spec,
        "dnsPolicy",
        &child(path, "dnsPolicy"),
        DNS_POLICIES,
        errs,
    );
    validate_labels(
        map(spec, "nodeSelector"),
        &child(path, "nodeSelector"),
        errs,
    );
    if text(spec, "dnsPolicy") == "None" {
        let config = spec.get("dnsConfig").filter(|c| c.is_object());
        match config {
            None => errs.push(required(
                &child(path, "dnsConfig"),
                "must provide `dnsConfig` when `dnsPolicy` is None",
            )),
            Some(c) if list(c, "nameservers").is_empty() => errs.push(required(
                &child(path, "dnsConfig.nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            )),
            Some(_) => {}
        }
    }
    for field in ["serviceAccountName", "nodeName", "priorityClassName"] {
        let value = text(spec, field);
        if !value.is_empty() {
            for m in dns1123_subdomain(value) {
                errs.push(invalid(&child(path, field), Bad::str(value), &m));
            }
        }
    }
    if let Some(deadline) = int(spec, "activeDeadlineSeconds") {
        if !(1..=MAX_INT32).contains(&deadline) {
            errs.push(invalid(
                &child(path, "activeDeadlineSeconds"),
                Bad::Int(deadline),
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for field in ["hostname", "subdomain"] {
        let value = text(spec, field);
        if !value.is_empty() {
            for m in dns1123_label(value) {
                errs.push(invalid(&child(path, field), Bad::str(value), &m));
            }
        }
    }
    validate_tolerations(list(spec, "tolerations"), &child(path, "tolerations"), errs);
}

/// Validates the volumes and returns the names containers may mount.
fn validate_volumes(spec: &Value, path: &str, errs: &mut Vec<FieldError>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (i, vol) in list(spec, "volumes").iter().enumerate() {
        let p = index(path, i);
        let mut own = Vec::new();
        let sources: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|s| present(vol, s))
            .collect();
        match sources.as_slice() {
            [] => own.push(required(&p, "must specify a volume type")),
            [first, rest @ ..] => {
                for extra in rest {
                    own.push(forbidden(
                        &child(&p, extra),
                        "may not specify more than 1 volume type",
                    ));
                }
                let source = &vol[*first];
                let required_field = match *first {
                    "secret" => Some("secretName"),
                    "configMap" => Some("name"),
                    "persistentVolumeClaim" => Some("claimName"),
                    "hostPath" => Some("path"),
                    "nfs" => Some("server"),
                    _ => None,
                };
                if let Some(field) = required_field {
                    if text(source, field).is_empty() {
                        own.push(required(&child(&child(&p, first), field), ""));
                    }
                }
            }
        }
        let name = text(vol, "name");
        let name_path = child(&p, "name");
        if name.is_empty() {
            own.push(required(&name_path, ""));
        } else {
            for m in dns1123_label(name) {
                own.push(invalid(&name_path, Bad::str(name), &m));
            }
        }
        if names.iter().any(|n| n == name) {
            own.push(duplicate(&name_path, Bad::str(name)));
        }
        if own.is_empty() {
            names.push(name.to_owned());
        } else {
            errs.extend(own);
        }
    }
    names
}

fn validate_containers(spec: &Value, path: &str, volumes: &[String], errs: &mut Vec<FieldError>) {
    let containers_path = child(path, "containers");
    let containers = list(spec, "containers");
    if containers.is_empty() {
        errs.push(required(&containers_path, ""));
        return;
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(&containers_path, i);
        validate_container_common(c, &p, volumes, errs);
        let name = text(c, "name");
        if names.contains(&name) {
            errs.push(duplicate(&child(&p, "name"), Bad::str(name)));
        } else {
            names.push(name);
        }
        validate_lifecycle_and_probes(c, &p, errs);
        if present(c, "restartPolicy") {
            errs.push(forbidden(
                &child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    host_port_conflicts(containers, &containers_path, errs);
}

fn validate_init_containers(
    spec: &Value,
    path: &str,
    volumes: &[String],
    errs: &mut Vec<FieldError>,
) {
    let init_path = child(path, "initContainers");
    let mut names: Vec<&str> = list(spec, "containers")
        .iter()
        .map(|c| text(c, "name"))
        .collect();
    for (i, c) in list(spec, "initContainers").iter().enumerate() {
        let p = index(&init_path, i);
        validate_container_common(c, &p, volumes, errs);
        let mut restart_always = false;
        if let Some(policy) = c.get("restartPolicy").filter(|v| !v.is_null()) {
            let policy = scalar_text(policy);
            if policy != "Always" {
                errs.push(not_supported(
                    &child(&p, "restartPolicy"),
                    Bad::str(&policy),
                    &["Always"],
                ));
            }
            restart_always = policy == "Always";
        }
        let name = text(c, "name");
        if names.contains(&name) {
            errs.push(duplicate(&child(&p, "name"), Bad::str(name)));
        } else if !name.is_empty() {
            names.push(name);
        }
        // Init containers run one at a time, so only ports within one can collide; kube
        // reports those against index 0.
        host_port_conflicts(std::slice::from_ref(c), &init_path, errs);
        if restart_always {
            validate_lifecycle_and_probes(c, &p, errs);
        } else {
            for field in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if present(c, field) {
                    errs.push(forbidden(
                        &child(&p, field),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
}

fn host_port_conflicts(containers: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut seen: Vec<String> = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, port) in list(c, "ports").iter().enumerate() {
            let host_port = int(port, "hostPort").unwrap_or(0);
            if host_port == 0 {
                continue;
            }
            let key = format!(
                "{}/{}/{}",
                text(port, "protocol"),
                text(port, "hostIP"),
                host_port
            );
            if seen.contains(&key) {
                let p = child(&index(&child(&index(path, i), "ports"), j), "hostPort");
                errs.push(duplicate(&p, Bad::Str(key)));
            } else {
                seen.push(key);
            }
        }
    }
}

fn validate_container_common(c: &Value, p: &str, volumes: &[String], errs: &mut Vec<FieldError>) {
    let name = text(c, "name");
    let name_path = child(p, "name");
    if name.is_empty() {
        errs.push(required(&name_path, ""));
    } else {
        for m in dns1123_label(name) {
            errs.push(invalid(&name_path, Bad::str(name), &m));
        }
    }
    if text(c, "image").is_empty() {
        errs.push(required(&child(p, "image"), ""));
    }
    enum_field(
        c,
        "terminationMessagePolicy",
        &child(p, "terminationMessagePolicy"),
        &["File", "FallbackToLogsOnError"],
        errs,
    );
    validate_container_ports(list(c, "ports"), &child(p, "ports"), errs);
    validate_env(list(c, "env"), &child(p, "env"), errs);
    validate_volume_mounts(
        list(c, "volumeMounts"),
        &child(p, "volumeMounts"),
        volumes,
        errs,
    );
    let pull = text(c, "imagePullPolicy");
    let pull_path = child(p, "imagePullPolicy");
    if pull.is_empty() {
        errs.push(required(&pull_path, ""));
    } else if !PULL_POLICIES.contains(&pull) {
        errs.push(not_supported(&pull_path, Bad::str(pull), PULL_POLICIES));
    }
    validate_resources(&c["resources"], &child(p, "resources"), errs);
}

fn validate_container_ports(ports: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = text(port, "name");
        if !name.is_empty() {
            let messages = port_name(name);
            if !messages.is_empty() {
                for m in messages {
                    errs.push(invalid(&child(&p, "name"), Bad::str(name), &m));
                }
            } else if names.contains(&name) {
                errs.push(duplicate(&child(&p, "name"), Bad::str(name)));
            } else {
                names.push(name);
            }
        }
        let container_port = int(port, "containerPort").unwrap_or(0);
        if container_port == 0 {
            errs.push(required(&child(&p, "containerPort"), ""));
        } else if !valid_port(container_port) {
            errs.push(invalid(
                &child(&p, "containerPort"),
                Bad::Int(container_port),
                PORT_RANGE_MSG,
            ));
        }
        let host_port = int(port, "hostPort").unwrap_or(0);
        if host_port != 0 && !valid_port(host_port) {
            errs.push(invalid(
                &child(&p, "hostPort"),
                Bad::Int(host_port),
                PORT_RANGE_MSG,
            ));
        }
        let protocol = text(port, "protocol");
        if protocol.is_empty() {
            errs.push(required(&child(&p, "protocol"), ""));
        } else if !PROTOCOLS.contains(&protocol) {
            errs.push(not_supported(
                &child(&p, "protocol"),
                Bad::str(protocol),
                PROTOCOLS,
            ));
        }
    }
}

fn validate_env(env: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, e) in env.iter().enumerate() {
        let p = index(path, i);
        let name = text(e, "name");
        let name_path = child(&p, "name");
        // RelaxedEnvironmentVariableValidation is on by default from v1.32.
        if name.is_empty() {
            errs.push(required(&name_path, ""));
            errs.push(invalid(
                &name_path,
                Bad::str(""),
                "environment variable name must be non-empty",
            ));
        } else if name.chars().any(|c| !(' '..='~').contains(&c) || c == '=') {
            errs.push(invalid(
                &name_path,
                Bad::str(name),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let Some(from) = e.get("valueFrom").filter(|f| !f.is_null()) else {
            continue;
        };
        let from_path = child(&p, "valueFrom");
        let sources: Vec<&str> = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ]
        .into_iter()
        .filter(|s| present(from, s))
        .collect();
        for source in &sources {
            let s = &from[*source];
            match *source {
                "fieldRef" => {
                    if text(s, "fieldPath").is_empty() {
                        errs.push(required(&child(&from_path, "fieldRef.fieldPath"), ""));
                    }
                }
                "resourceFieldRef" => {
                    if text(s, "resource").is_empty() {
                        errs.push(required(
                            &child(&from_path, "resourceFieldRef.resource"),
                            "",
                        ));
                    }
                }
                _ => {
                    let key_path = child(&child(&from_path, source), "key");
                    let k = text(s, "key");
                    if k.is_empty() {
                        errs.push(required(&key_path, ""));
                    } else {
                        for m in config_map_key(k) {
                            errs.push(invalid(&key_path, Bad::str(k), &m));
                        }
                    }
                }
            }
        }
        if sources.is_empty() {
            errs.push(invalid(
                &from_path,
                Bad::str(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !text(e, "value").is_empty() {
            errs.push(invalid(
                &from_path,
                Bad::str(""),
                "may not be specified when `value` is not empty",
            ));
        } else if sources.len() > 1 {
            errs.push(invalid(
                &from_path,
                Bad::str(""),
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn validate_volume_mounts(
    mounts: &[Value],
    path: &str,
    volumes: &[String],
    errs: &mut Vec<FieldError>,
) {
    let mut mount_points: Vec<&str> = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = index(path, i);
        let name = text(m, "name");
        if name.is_empty() {
            errs.push(required(&child(&p, "name"), ""));
        }
        if !volumes.iter().any(|v| v == name) {
            errs.push(not_found(&child(&p, "name"), Bad::str(name)));
        }
        let mount_path = text(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(required(&child(&p, "mountPath"), ""));
        }
        if mount_points.contains(&mount_path) {
            errs.push(invalid(
                &child(&p, "mountPath"),
                Bad::str(mount_path),
                "must be unique",
            ));
        }
        mount_points.push(mount_path);
    }
}

fn validate_lifecycle_and_probes(c: &Value, p: &str, errs: &mut Vec<FieldError>) {
    if let Some(lifecycle) = c.get("lifecycle").filter(|l| l.is_object()) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lifecycle.get(hook).filter(|h| !h.is_null()) {
                validate_handler(
                    h,
                    &child(&child(p, "lifecycle"), hook),
                    &["exec", "httpGet", "tcpSocket", "sleep"],
                    errs,
                );
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(pr) = c.get(probe).filter(|v| !v.is_null()) else {
            continue;
        };
        let pp = child(p, probe);
        validate_handler(pr, &pp, &["exec", "httpGet", "tcpSocket", "grpc"], errs);
        for field in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            nonnegative(pr, field, &child(&pp, field), errs);
        }
        if let Some(grace) = int(pr, "terminationGracePeriodSeconds") {
            if grace <= 0 {
                errs.push(invalid(
                    &child(&pp, "terminationGracePeriodSeconds"),
                    Bad::Int(grace),
                    "must be greater than 0",
                ));
            }
        }
        match probe {
            "readinessProbe" => {
                if let Some(grace) = int(pr, "terminationGracePeriodSeconds") {
                    errs.push(invalid(
                        &child(&pp, "terminationGracePeriodSeconds"),
                        Bad::Int(grace),
                        "must not be set for readinessProbes",
                    ));
                }
            }
            _ => {
                let success = int(pr, "successThreshold").unwrap_or(0);
                if success != 1 {
                    errs.push(invalid(
                        &child(&pp, "successThreshold"),
                        Bad::Int(success),
                        "must be 1",
                    ));
                }
            }
        }
    }
}

fn validate_handler(h: &Value, path: &str, kinds: &[&str], errs: &mut Vec<FieldError>) {
    let mut count = 0;
    for kind in kinds {
        let Some(action) = h.get(*kind).filter(|a| !a.is_null()) else {
            continue;
        };
        let p = child(path, kind);
        if count > 0 {
            errs.push(forbidden(&p, "may not specify more than 1 handler type"));
            continue;
        }
        count += 1;
        match *kind {
            "exec" if list(action, "command").is_empty() => {
                errs.push(required(&child(&p, "command"), ""));
            }
            "httpGet" => {
                if text(action, "path").is_empty() {
                    errs.push(required(&child(&p, "path"), ""));
                }
                port_num_or_name(action.get("port"), &child(&p, "port"), errs);
                let scheme = text(action, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(not_supported(
                        &child(&p, "scheme"),
                        Bad::str(scheme),
                        &["HTTP", "HTTPS"],
                    ));
                }
            }
            "tcpSocket" => port_num_or_name(action.get("port"), &child(&p, "port"), errs),
            "grpc" => {
                let port = int(action, "port").unwrap_or(0);
                if !valid_port(port) {
                    errs.push(invalid(&child(&p, "port"), Bad::Int(port), PORT_RANGE_MSG));
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(required(path, "must specify a handler type"));
    }
}

/// `ValidatePortNumOrName` for an IntOrString port.
fn port_num_or_name(port: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    match port {
        Some(Value::String(name)) => {
            for m in port_name(name) {
                errs.push(invalid(path, Bad::str(name), &m));
            }
        }
        other => {
            let n = other.and_then(Value::as_i64).unwrap_or(0);
            if !valid_port(n) {
                errs.push(invalid(path, Bad::Int(n), PORT_RANGE_MSG));
            }
        }
    }
}

fn validate_tolerations(tolerations: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let k = text(t, "key");
        if !k.is_empty() {
            for m in qualified_name(k) {
                errs.push(invalid(&child(&p, "key"), Bad::str(k), &m));
            }
        }
        let operator = text(t, "operator");
        if k.is_empty() && operator != "Exists" {
            errs.push(invalid(
                &child(&p, "operator"),
                Bad::str(operator),
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = text(t, "effect");
        if present(t, "tolerationSeconds") && effect != "NoExecute" {
            errs.push(invalid(
                &child(&p, "effect"),
                Bad::str(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = text(t, "value");
        match operator {
            "Equal" | "" => {
                let messages = label_value(value);
                if !messages.is_empty() {
                    errs.push(invalid(
                        &child(&p, "operator"),
                        Bad::str(value),
                        &messages.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(invalid(
                        &child(&p, "operator"),
                        Bad::str(value),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(not_supported(
                &child(&p, "operator"),
                Bad::str(other),
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            errs.push(not_supported(
                &child(&p, "effect"),
                Bad::str(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
}

const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

/// `IsOvercommitAllowed`: extended resources and hugepages must request exactly their limit.
fn overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !is_hugepages(name)
}

fn container_resource_name_errors(name: &str, path: &str, errs: &mut Vec<FieldError>) {
    let messages = qualified_name(name);
    if !messages.is_empty() {
        for m in messages {
            errs.push(invalid(path, Bad::str(name), &m));
        }
    } else if !name.contains('/')
        && !STANDARD_RESOURCES.contains(&name)
        && !is_hugepages(name)
        && !name.starts_with("requests.hugepages-")
    {
        errs.push(invalid(
            path,
            Bad::str(name),
            "must be a standard resource type or fully qualified",
        ));
    }
    if !name.contains('/') {
        if !["cpu", "memory", "ephemeral-storage"].contains(&name) && !is_hugepages(name) {
            errs.push(invalid(
                path,
                Bad::str(name),
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) {
        let extended = !name.starts_with("requests.")
            && qualified_name(&format!("requests.{name}")).is_empty();
        if !extended {
            errs.push(invalid(
                path,
                Bad::str(name),
                "doesn't follow extended resource name standard",
            ));
        }
    }
}

/// Parses one entry of a ResourceList, reporting what kube would: a malformed quantity (which
/// kube rejects while decoding), a negative one, or a fractional count of an integer resource.
fn resource_quantity(
    name: &str,
    v: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) -> Option<Quantity> {
    let q = match Quantity::from_json(v) {
        Ok(q) => q,
        Err(m) => {
            errs.push(invalid(path, Bad::Str(scalar_text(v)), m));
            return None;
        }
    };
    if q.neg {
        errs.push(invalid(path, Bad::Str(q.canonical()), NEGATIVE_MSG));
    }
    // Extended resources are counted in whole units.
    if !is_native_resource(name) && !name.starts_with("requests.") {
        let mut milli = q.clone();
        milli.round_up_milli();
        let whole =
            milli.exp >= 0 || pow10((-milli.exp) as u32).is_some_and(|d| milli.mant % d == 0);
        if !whole {
            errs.push(invalid(path, Bad::Str(q.canonical()), "must be an integer"));
        }
    }
    Some(q)
}

fn validate_resources(resources: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let limits_path = child(path, "limits");
    let requests_path = child(path, "requests");
    let mut limits: Vec<(&str, Quantity)> = Vec::new();
    for (name, v) in sorted_entries(map(resources, "limits")) {
        let p = key(&limits_path, name);
        container_resource_name_errors(name, &p, errs);
        if let Some(q) = resource_quantity(name, v, &p, errs) {
            limits.push((name, q));
        }
    }
    let limit_names: Vec<&str> = sorted_entries(map(resources, "limits"))
        .into_iter()
        .map(|(k, _)| k.as_str())
        .collect();
    for (name, v) in sorted_entries(map(resources, "requests")) {
        let p = key(&requests_path, name);
        container_resource_name_errors(name, &p, errs);
        let Some(q) = resource_quantity(name, v, &p, errs) else {
            continue;
        };
        match limits.iter().find(|(n, _)| n == name) {
            Some((_, limit)) => {
                let order = q.cmp(limit);
                if order != Ordering::Equal && !overcommit_allowed(name) {
                    errs.push(invalid(
                        &requests_path,
                        Bad::Str(q.canonical()),
                        &format!("must be equal to {name} limit of {}", limit.canonical()),
                    ));
                } else if order == Ordering::Greater {
                    errs.push(invalid(
                        &requests_path,
                        Bad::Str(q.canonical()),
                        &format!(
                            "must be less than or equal to {name} limit of {}",
                            limit.canonical()
                        ),
                    ));
                }
            }
            None if !limit_names.contains(&name.as_str()) && !overcommit_allowed(name) => {
                errs.push(required(
                    &limits_path,
                    "Limit must be set for non overcommitable resources",
                ));
            }
            None => {}
        }
    }
}

/// `ValidatePodTemplateSpec`: the template's labels and annotations, its pod spec, and no
/// ephemeral containers.
fn validate_pod_template(template: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let meta = &template["metadata"];
    validate_labels(map(meta, "labels"), &child(path, "labels"), errs);
    validate_annotations(map(meta, "annotations"), &child(path, "annotations"), errs);
    let spec_path = child(path, "spec");
    validate_pod_spec(&template["spec"], &spec_path, false, errs);
    if !list(&template["spec"], "ephemeralContainers").is_empty() {
        errs.push(forbidden(
            &child(&spec_path, "ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Pods.
// ---------------------------------------------------------------------------------------------

const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn validate_pod(pod: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &pod["spec"];
    validate_pod_spec(spec, "spec", true, errs);
    // A whitespace-padded image is tolerated in templates (some tools use " " as a placeholder)
    // but not in a Pod that is about to run.
    for field in ["containers", "initContainers"] {
        for (i, c) in list(spec, field).iter().enumerate() {
            let image = text(c, "image");
            if image.trim() != image {
                errs.push(invalid(
                    &child(&index(&child("spec", field), i), "image"),
                    Bad::str(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    if let Some(old) = old {
        validate_pod_update(spec, &old["spec"], errs);
    }
}

fn validate_pod_update(new: &Value, old: &Value, errs: &mut Vec<FieldError>) {
    for field in ["containers", "initContainers"] {
        let path = child("spec", field);
        let (new_list, old_list) = (list(new, field), list(old, field));
        if new_list.len() != old_list.len() {
            errs.push(forbidden(
                &path,
                "pod updates may not add or remove containers",
            ));
            return;
        }
        for (i, c) in new_list.iter().enumerate() {
            let image = text(c, "image");
            let p = child(&index(&path, i), "image");
            if image.is_empty() {
                errs.push(required(&p, ""));
            }
            if image.trim() != image {
                errs.push(invalid(
                    &p,
                    Bad::str(image),
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    let deadline_path = "spec.activeDeadlineSeconds";
    match (
        int(new, "activeDeadlineSeconds"),
        int(old, "activeDeadlineSeconds"),
    ) {
        (Some(n), _) if !(0..=MAX_INT32).contains(&n) => {
            errs.push(invalid(
                deadline_path,
                Bad::Int(n),
                "must be between 0 and 2147483647, inclusive",
            ));
            return;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(invalid(
                deadline_path,
                Bad::Int(n),
                "must be less than or equal to previous value",
            ));
            return;
        }
        (None, Some(_)) => errs.push(invalid(
            deadline_path,
            Bad::Raw("null".into()),
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }

    // Existing tolerations may only gain tolerationSeconds changes; new ones may be added.
    let new_tolerations = list(new, "tolerations");
    for old_t in list(old, "tolerations") {
        let kept = new_tolerations.iter().any(|t| {
            ["key", "operator", "value", "effect"]
                .iter()
                .all(|f| sem_eq(t.get(*f), old_t.get(*f)))
        });
        if !kept {
            errs.push(forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    validate_tolerations(new_tolerations, "spec.tolerations", errs);

    // Everything else must be unchanged once the mutable fields are copied from the old spec.
    let mut munged = new.clone();
    for field in ["containers", "initContainers"] {
        if let Some(items) = munged.get_mut(field).and_then(Value::as_array_mut) {
            for (c, o) in items.iter_mut().zip(list(old, field)) {
                if let (Some(c), Some(image)) = (c.as_object_mut(), o.get("image")) {
                    c.insert("image".into(), image.clone());
                }
            }
        }
    }
    if let Some(m) = munged.as_object_mut() {
        for field in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match old.get(field) {
                Some(v) => m.insert(field.into(), v.clone()),
                None => m.remove(field),
            };
        }
        let old_grace = int(old, "terminationGracePeriodSeconds");
        if old_grace.is_some_and(|g| g < 0)
            && int(&munged, "terminationGracePeriodSeconds") == Some(1)
        {
            if let (Some(m), Some(g)) = (
                munged.as_object_mut(),
                old.get("terminationGracePeriodSeconds"),
            ) {
                m.insert("terminationGracePeriodSeconds".into(), g.clone());
            }
        }
    }
    if !sem_eq(Some(&munged), Some(old)) {
        let mut lines = Vec::new();
        diff_lines("spec", Some(old), Some(&munged), &mut lines);
        errs.push(forbidden(
            "spec",
            &format!("{POD_UPDATE_MSG}\n{}", lines.join("\n")),
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Workload controllers.
// ---------------------------------------------------------------------------------------------

/// `ValidatePodTemplateSpecForReplicaSet` (also used for Deployments) and the RC equivalent.
fn validate_template_for_replicas(
    template: &Value,
    selector: &Selector,
    path: &str,
    owner: &str,
    errs: &mut Vec<FieldError>,
) {
    if selector_mismatch(selector, map(&template["metadata"], "labels")) {
        errs.push(mismatch_error(template, path));
    }
    validate_pod_template(template, path, errs);
    let restart = text(&template["spec"], "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            &child(path, "spec.restartPolicy"),
            Bad::str(restart),
            &["Always"],
        ));
    }
    if present(&template["spec"], "activeDeadlineSeconds") {
        errs.push(forbidden(
            &child(path, "spec.activeDeadlineSeconds"),
            &format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
}

/// The selector checks shared by Deployment, ReplicaSet and StatefulSet.
fn required_selector<'a>(spec: &'a Value, owner: &str, errs: &mut Vec<FieldError>) -> Selector<'a> {
    let selector = spec.get("selector").filter(|s| !s.is_null());
    if selector.is_none() {
        errs.push(required("spec.selector", ""));
    }
    let parsed = validate_label_selector(selector, "spec.selector", errs);
    if let Some(s) = selector {
        if map(s, "matchLabels").is_none_or(Obj::is_empty) && list(s, "matchExpressions").is_empty()
        {
            errs.push(invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(s)),
                &format!("empty selector is invalid for {owner}"),
            ));
        }
    }
    parsed
}

fn validate_replica_set_like(spec: &Value, errs: &mut Vec<FieldError>) {
    nonnegative(spec, "replicas", "spec.replicas", errs);
    let selector = required_selector(spec, "deployment", errs);
    if matches!(selector, Selector::Invalid) {
        errs.push(invalid(
            "spec.selector",
            Bad::Raw(go_label_selector(&spec["selector"])),
            "invalid label selector",
        ));
    } else {
        validate_template_for_replicas(
            &spec["template"],
            &selector,
            "spec.template",
            "ReplicaSet",
            errs,
        );
    }
}

fn validate_deployment(d: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &d["spec"];
    validate_replica_set_like(spec, errs);
    let strategy = &spec["strategy"];
    let strategy_type = text(strategy, "type");
    match strategy_type {
        "Recreate" => {
            if present(strategy, "rollingUpdate") {
                errs.push(forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|r| !r.is_null()) {
            None => errs.push(required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(rolling) => {
                let p = "spec.strategy.rollingUpdate";
                let unavailable = rolling.get("maxUnavailable");
                let surge = rolling.get("maxSurge");
                int_or_percent(unavailable, &child(p, "maxUnavailable"), errs);
                int_or_percent(surge, &child(p, "maxSurge"), errs);
                if int_or_percent_value(unavailable) == 0 && int_or_percent_value(surge) == 0 {
                    errs.push(invalid(
                        &child(p, "maxUnavailable"),
                        Bad::Raw(go_int_or_string(unavailable)),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_over_100_percent(unavailable, &child(p, "maxUnavailable"), errs);
            }
        },
        other => {
            let rolling = if present(strategy, "rollingUpdate") {
                json_bad(strategy.get("rollingUpdate")).render()
            } else {
                "(*apps.RollingUpdateDeployment)(nil)".into()
            };
            errs.push(not_supported(
                "spec.strategy",
                Bad::Raw(format!(
                    "apps.DeploymentStrategy{{Type:{}, RollingUpdate:{rolling}}}",
                    go_quote(other)
                )),
                &["Recreate", "RollingUpdate"],
            ));
        }
    }
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(
        spec,
        "revisionHistoryLimit",
        "spec.revisionHistoryLimit",
        errs,
    );
    if let Some(deadline) = int(spec, "progressDeadlineSeconds") {
        nonnegative(
            spec,
            "progressDeadlineSeconds",
            "spec.progressDeadlineSeconds",
            errs,
        );
        if deadline <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(invalid(
                "spec.progressDeadlineSeconds",
                Bad::Int(deadline),
                "must be greater than minReadySeconds",
            ));
        }
    }
    if let Some(old) = old {
        immutable_selector(d, old, errs);
    }
}

fn validate_replica_set(rs: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &rs["spec"];
    validate_replica_set_like(spec, errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    if let Some(old) = old {
        immutable_selector(rs, old, errs);
    }
}

fn validate_replication_controller(rc: &Value, errs: &mut Vec<FieldError>) {
    let spec = &rc["spec"];
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    let selector = map(spec, "selector");
    if selector.is_none_or(Obj::is_empty) {
        errs.push(required("spec.selector", ""));
    }
    nonnegative(spec, "replicas", "spec.replicas", errs);
    let Some(template) = spec.get("template").filter(|t| t.is_object()) else {
        errs.push(required("spec.template", ""));
        return;
    };
    // An RC selector is a plain label map; an empty one selects everything.
    let as_selector = json!({"matchLabels": selector.cloned().unwrap_or_default()});
    let parsed = if selector.is_none_or(Obj::is_empty) {
        Selector::Everything
    } else {
        Selector::Parsed(&as_selector)
    };
    validate_template_for_replicas(
        template,
        &parsed,
        "spec.template",
        "ReplicationController",
        errs,
    );
}

fn int_or_percent(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    match v {
        Some(Value::String(s)) if percent_value(s).is_none() => {
            errs.push(invalid(path, Bad::Raw(go_int_or_string(v)), PERCENT_MSG));
        }
        Some(n) => {
            let n = n.as_i64().unwrap_or(0);
            if n < 0 {
                errs.push(invalid(path, Bad::Int(n), NEGATIVE_MSG));
            }
        }
        None => {}
    }
}

/// `getIntOrPercentValue`: a percentage's number, an int, or a numeric string's value.
fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::String(s)) => percent_value(s).unwrap_or_else(|| s.parse().unwrap_or(0)),
        Some(n) => n.as_i64().unwrap_or(0),
        None => 0,
    }
}

fn not_over_100_percent(v: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(Value::String(s)) = v {
        if percent_value(s).is_some_and(|p| p > 100) {
            errs.push(invalid(
                path,
                Bad::Raw(go_int_or_string(v)),
                "must not be greater than 100%",
            ));
        }
    }
}

fn validate_daemon_set(ds: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &ds["spec"];
    let selector_value = spec.get("selector").filter(|s| !s.is_null());
    let selector = validate_label_selector(selector_value, "spec.selector", errs);
    let template = &spec["template"];
    if selector_mismatch(&selector, map(&template["metadata"], "labels")) {
        errs.push(mismatch_error(template, "spec.template"));
    }
    if let Some(s) = selector_value {
        if map(s, "matchLabels").is_none_or(Obj::is_empty) && list(s, "matchExpressions").is_empty()
        {
            errs.push(invalid(
                "spec.selector",
                Bad::Raw(go_label_selector(s)),
                "empty selector is invalid for daemonset",
            ));
        }
    }
    validate_pod_template(template, "spec.template", errs);
    let restart = text(&template["spec"], "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            "spec.template.spec.restartPolicy",
            Bad::str(restart),
            &["Always"],
        ));
    }
    if present(&template["spec"], "activeDeadlineSeconds") {
        errs.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(spec, "templateGeneration", "spec.templateGeneration", errs);
    let strategy = &spec["updateStrategy"];
    match text(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => match strategy.get("rollingUpdate").filter(|r| !r.is_null()) {
            None => errs.push(required("spec.updateStrategy.rollingUpdate", "")),
            Some(rolling) => {
                let p = "spec.updateStrategy.rollingUpdate";
                let unavailable = rolling.get("maxUnavailable");
                let surge = rolling.get("maxSurge");
                int_or_percent(unavailable, &child(p, "maxUnavailable"), errs);
                int_or_percent(surge, &child(p, "maxSurge"), errs);
                not_over_100_percent(unavailable, &child(p, "maxUnavailable"), errs);
                not_over_100_percent(surge, &child(p, "maxSurge"), errs);
                let has_unavailable = int_or_percent_value(unavailable) != 0;
                let has_surge = int_or_percent_value(surge) != 0;
                if has_unavailable && has_surge {
                    errs.push(invalid(
                        &child(p, "maxSurge"),
                        Bad::Raw(go_int_or_string(surge)),
                        "may not be set when maxUnavailable is non-zero",
                    ));
                } else if !has_unavailable && !has_surge {
                    errs.push(required(&child(p, "maxUnavailable"), "cannot be 0 when maxSurge is 0"));
                }
            }
        },
        other => errs.push(not_supported(
            "spec.updateStrategy",
            Bad::Raw(format!(
                "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}}",
                go_quote(other)
            )),
            &["RollingUpdate", "OnDelete"],
        )),
    }
    nonnegative(
        spec,
        "revisionHistoryLimit",
        "spec.revisionHistoryLimit",
        errs,
    );
    if let Some(old) = old {
        immutable_selector(ds, old, errs);
    }
}

const STATEFULSET_UPDATE_MSG: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden";

fn validate_stateful_set(sts: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &sts["spec"];
    match text(spec, "podManagementPolicy") {
        "" => errs.push(required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(invalid(
            "spec.podManagementPolicy",
            Bad::str(other),
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = &spec["updateStrategy"];
    match text(strategy, "type") {
        "" => errs.push(required("spec.updateStrategy", "")),
        "OnDelete" => {
            if present(strategy, "rollingUpdate") {
                errs.push(invalid(
                    "spec.updateStrategy.rollingUpdate",
                    json_bad(strategy.get("rollingUpdate")),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(rolling) = strategy.get("rollingUpdate").filter(|r| !r.is_null()) {
                let p = "spec.updateStrategy.rollingUpdate";
                nonnegative(rolling, "partition", &child(p, "partition"), errs);
                if let Some(unavailable) = rolling.get("maxUnavailable").filter(|v| !v.is_null()) {
                    let up = child(p, "maxUnavailable");
                    int_or_percent(Some(unavailable), &up, errs);
                    if int_or_percent_value(Some(unavailable)) == 0 {
                        errs.push(invalid(&up, Bad::Raw(go_int_or_string(Some(unavailable))), "cannot be 0"));
                    }
                    not_over_100_percent(Some(unavailable), &up, errs);
                }
            }
        }
        other => errs.push(invalid(
            "spec.updateStrategy",
            Bad::Raw(format!(
                "apps.StatefulSetUpdateStrategy{{Type:{}, RollingUpdate:(*apps.RollingUpdateStatefulSetStrategy)(nil)}}",
                go_quote(other)
            )),
            "must be 'RollingUpdate' or 'OnDelete'",
        )),
    }
    if let Some(policy) = spec
        .get("persistentVolumeClaimRetentionPolicy")
        .filter(|p| !p.is_null())
    {
        for field in ["whenDeleted", "whenScaled"] {
            let value = text(policy, field);
            if value != "Retain" && value != "Delete" {
                errs.push(not_supported(
                    &child("spec.persistentVolumeClaimRetentionPolicy", field),
                    Bad::str(value),
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonnegative(spec, "replicas", "spec.replicas", errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(&spec["ordinals"], "start", "spec.ordinals.start", errs);
    let selector = required_selector(spec, "statefulset", errs);
    let template = &spec["template"];
    if matches!(selector, Selector::Invalid) {
        errs.push(invalid(
            "spec.selector",
            Bad::Raw(go_label_selector(&spec["selector"])),
            "",
        ));
    } else {
        if selector_mismatch(&selector, map(&template["metadata"], "labels")) {
            errs.push(mismatch_error(template, "spec.template"));
        }
        // v1.32/1.33 check only the template's metadata, not its pod spec (kube#131790).
        validate_labels(
            map(&template["metadata"], "labels"),
            "spec.template.labels",
            errs,
        );
        validate_annotations(
            map(&template["metadata"], "annotations"),
            "spec.template.annotations",
            errs,
        );
    }
    let restart = text(&template["spec"], "restartPolicy");
    if restart != "Always" {
        errs.push(not_supported(
            "spec.template.spec.restartPolicy",
            Bad::str(restart),
            &["Always"],
        ));
    }
    if present(&template["spec"], "activeDeadlineSeconds") {
        errs.push(forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
    if let Some(old) = old {
        let strip = |s: &Value| {
            let mut s = s.clone();
            if let Some(m) = s.as_object_mut() {
                for field in [
                    "replicas",
                    "ordinals",
                    "template",
                    "updateStrategy",
                    "persistentVolumeClaimRetentionPolicy",
                    "minReadySeconds",
                ] {
                    m.remove(field);
                }
            }
            s
        };
        if !sem_eq(Some(&strip(spec)), Some(&strip(&old["spec"]))) {
            errs.push(forbidden("spec", STATEFULSET_UPDATE_MSG));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Jobs and CronJobs.
// ---------------------------------------------------------------------------------------------

/// `validateJobSpec`: the parts shared by Jobs and CronJob job templates.
fn validate_job_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for field in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        nonnegative(spec, field, &child(path, field), errs);
    }
    if let Some(mode) = spec.get("completionMode").filter(|m| !m.is_null()) {
        let mode = scalar_text(mode);
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(not_supported(
                &child(path, "completionMode"),
                Bad::str(&mode),
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" && !present(spec, "completions") {
            errs.push(required(
                &child(path, "completions"),
                "when completion mode is Indexed",
            ));
        }
    }
    let template_path = child(path, "template");
    validate_pod_template(&spec["template"], &template_path, errs);
    let restart_path = child(&template_path, "spec.restartPolicy");
    let restart = text(&spec["template"]["spec"], "restartPolicy");
    let failure_policy = present(spec, "podFailurePolicy");
    match restart {
        "Always" | "" => errs.push(required(
            &restart_path,
            if failure_policy {
                "only \"Never\" is supported when podFailurePolicy is specified"
            } else {
                "valid values: \"OnFailure\", \"Never\""
            },
        )),
        "OnFailure" | "Never" => {
            if failure_policy && restart != "Never" {
                errs.push(invalid(
                    &restart_path,
                    Bad::str(restart),
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        other => errs.push(not_supported(
            &restart_path,
            Bad::str(other),
            &["OnFailure", "Never"],
        )),
    }
}

fn has_label(template: &Value, label: &str, expected: &str, errs: &mut Vec<FieldError>) {
    let labels = map(&template["metadata"], "labels");
    let path = key("spec.template.metadata.labels", label);
    let detail = format!("must be '{expected}'");
    match labels.and_then(|l| l.get(label)) {
        None => errs.push(required(&path, &detail)),
        Some(v) if scalar_text(v) != expected => {
            errs.push(invalid(&path, Bad::Raw(go_string_map(labels)), &detail));
        }
        Some(_) => {}
    }
}

fn validate_job(job: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &job["spec"];
    let name = text(&job["metadata"], "name");
    let uid = text(&job["metadata"], "uid");
    let selector_value = spec.get("selector").filter(|s| !s.is_null());
    if old.is_none() && !flag(spec, "manualSelector") {
        if let Some(selector) = selector_value {
            if uid.is_empty() {
                errs.push(required("metadata.uid", ""));
            }
            let template = &spec["template"];
            has_label(template, LEGACY_CONTROLLER_UID_LABEL, uid, errs);
            has_label(template, LEGACY_JOB_NAME_LABEL, name, errs);
            has_label(template, CONTROLLER_UID_LABEL, uid, errs);
            has_label(template, JOB_NAME_LABEL, name, errs);
            let mut expected = Obj::new();
            for (k, v) in [
                (LEGACY_CONTROLLER_UID_LABEL, uid),
                (LEGACY_JOB_NAME_LABEL, name),
                (CONTROLLER_UID_LABEL, uid),
                (JOB_NAME_LABEL, name),
            ] {
                expected.insert(k.into(), json!(v));
            }
            if !selector_matches(selector, Some(&expected)) {
                errs.push(invalid(
                    "spec.selector",
                    Bad::Raw(go_label_selector(selector)),
                    "`selector` not auto-generated",
                ));
            }
        }
    }
    validate_job_spec(spec, "spec", errs);
    if selector_value.is_none() {
        errs.push(required("spec.selector", ""));
    }
    let selector = validate_label_selector(selector_value, "spec.selector", errs);
    let template = &spec["template"];
    if selector_mismatch(&selector, map(&template["metadata"], "labels")) {
        errs.push(mismatch_error(template, "spec.template"));
    }
    if old.is_none() && text(spec, "completionMode") == "Indexed" {
        if let Some(completions) = int(spec, "completions").filter(|c| *c > 0) {
            // Indexed pods are named "<job>-<index>" and that must stay a DNS label.
            let hostname = format!("{name}-{}", completions - 1);
            if !dns1123_label(&hostname).is_empty() {
                errs.push(invalid(
                    "metadata.name",
                    Bad::str(name),
                    &format!("will not able to create pod with invalid DNS label: {hostname}"),
                ));
            }
        }
    }
    if let Some(old) = old {
        let old_spec = &old["spec"];
        let completions_changed = !sem_eq(spec.get("completions"), old_spec.get("completions"));
        if completions_changed {
            // Elastic indexed Jobs may scale completions together with parallelism.
            let elastic = text(spec, "completionMode") == "Indexed"
                && present(spec, "completions")
                && present(old_spec, "completions");
            if !elastic {
                errs.push(invalid(
                    "spec.completions",
                    json_bad(spec.get("completions")),
                    IMMUTABLE_MSG,
                ));
            } else if int(spec, "completions") != int(spec, "parallelism") {
                errs.push(invalid(
                    "spec.completions",
                    json_bad(spec.get("completions")),
                    "can only be modified in tandem with spec.parallelism",
                ));
            }
        }
        immutable_selector(job, old, errs);
        let mut new_template = spec.get("template").cloned().unwrap_or(Value::Null);
        let old_template = old_spec.get("template").cloned().unwrap_or(Value::Null);
        // A suspended Job that never started may still have its scheduling directives changed.
        if flag(old_spec, "suspend") && !present(&old["status"], "startTime") {
            for (section, fields) in [
                ("metadata", &["labels", "annotations"][..]),
                (
                    "spec",
                    &["nodeSelector", "affinity", "tolerations", "schedulingGates"][..],
                ),
            ] {
                for field in fields {
                    let old_value = old_template[section].get(*field).cloned();
                    if let Some(m) = new_template.get_mut(section).and_then(Value::as_object_mut) {
                        match old_value {
                            Some(v) => m.insert((*field).into(), v),
                            None => m.remove(*field),
                        };
                    }
                }
            }
        }
        if !sem_eq(Some(&new_template), Some(&old_template)) {
            errs.push(invalid(
                "spec.template",
                json_bad(spec.get("template")),
                IMMUTABLE_MSG,
            ));
        }
        if !sem_eq(spec.get("completionMode"), old_spec.get("completionMode")) {
            errs.push(invalid(
                "spec.completionMode",
                Bad::str(text(spec, "completionMode")),
                IMMUTABLE_MSG,
            ));
        }
    }
}

fn validate_cron_job(cj: &Value, errs: &mut Vec<FieldError>) {
    let spec = &cj["spec"];
    let schedule = text(spec, "schedule");
    if schedule.is_empty() {
        errs.push(required("spec.schedule", ""));
    } else {
        let tz_prefixed = schedule.starts_with("TZ=") || schedule.starts_with("CRON_TZ=");
        if !tz_prefixed {
            if let Err(e) = parse_cron(schedule) {
                errs.push(invalid("spec.schedule", Bad::str(schedule), &e));
            }
        }
        if schedule.contains("TZ") {
            errs.push(invalid(
                "spec.schedule",
                Bad::str(schedule),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    for field in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        nonnegative(spec, field, &child("spec", field), errs);
    }
    enum_field(
        spec,
        "concurrencyPolicy",
        "spec.concurrencyPolicy",
        &["Allow", "Forbid", "Replace"],
        errs,
    );
    let job_spec = &spec["jobTemplate"]["spec"];
    validate_job_spec(job_spec, "spec.jobTemplate.spec", errs);
    if let Some(selector) = job_spec.get("selector").filter(|s| !s.is_null()) {
        errs.push(invalid(
            "spec.jobTemplate.spec.selector",
            Bad::Raw(go_label_selector(selector)),
            "`selector` will be auto-generated",
        ));
    }
    if flag(job_spec, "manualSelector") {
        errs.push(not_supported(
            "spec.jobTemplate.spec.manualSelector",
            Bad::Raw("true".into()),
            &["nil", "false"],
        ));
    }
}

/// robfig/cron's standard parser (five fields or a descriptor), with its error texts.
fn parse_cron(spec: &str) -> Result<(), String> {
    if spec.starts_with('@') {
        return match spec {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            s if s.starts_with("@every ") => {
                let d = &s["@every ".len()..];
                if go_duration_ok(d) {
                    Ok(())
                } else {
                    Err(format!(
                        "failed to parse duration {s}: time: invalid duration {}",
                        go_quote(d)
                    ))
                }
            }
            _ => Err(format!("unrecognized descriptor: {spec}")),
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: &[&str] = &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(i64, i64, &[&str], i64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, first)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            cron_range(expr, min, max, names, first)?;
        }
    }
    Ok(())
}

fn cron_int(expr: &str) -> Result<i64, String> {
    let n: i64 = expr.parse().map_err(|_| {
        format!(
            "failed to parse int from {expr}: strconv.Atoi: parsing {}: invalid syntax",
            go_quote(expr)
        )
    })?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {expr}"));
    }
    Ok(n)
}

fn cron_range(expr: &str, min: i64, max: i64, names: &[&str], first: i64) -> Result<(), String> {
    let int_or_name = |s: &str| -> Result<i64, String> {
        match names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            Some(i) => Ok(i as i64 + first),
            None => cron_int(s),
        }
    };
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_and_step[0].split('-').collect();
    let (start, mut end) = if low_high[0] == "*" || low_high[0] == "?" {
        (min, max)
    } else {
        let start = int_or_name(low_high[0])?;
        match low_high.len() {
            1 => (start, start),
            2 => (start, int_or_name(low_high[1])?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = cron_int(range_and_step[1])?;
            if low_high.len() == 1 {
                end = max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

/// Whether Go's `time.ParseDuration` accepts `s` ("1h30m", "90s", "0").
fn go_duration_ok(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Services.
// ---------------------------------------------------------------------------------------------

fn cluster_ips(spec: &Value) -> Vec<String> {
    let ips: Vec<String> = list(spec, "clusterIPs").iter().map(scalar_text).collect();
    if ips.is_empty() && !text(spec, "clusterIP").is_empty() {
        vec![text(spec, "clusterIP").to_owned()]
    } else {
        ips
    }
}

fn valid_ip(s: &str) -> bool {
    s.parse::<std::net::IpAddr>().is_ok()
}

fn validate_service(svc: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let spec = &svc["spec"];
    let service_type = text(spec, "type");
    let ips = cluster_ips(spec);
    let headless = ips.first().is_some_and(|ip| ip == "None");

    if let Some(old) = old {
        let old_spec = &old["spec"];
        let old_ips = cluster_ips(old_spec);
        let old_headless = old_ips.first().is_some_and(|ip| ip == "None");
        let external_name =
            service_type == "ExternalName" || text(old_spec, "type") == "ExternalName";
        // An update that leaves clusterIP out keeps the allocated one (kube copies it over).
        if !(external_name || ips.is_empty() || (headless && old_headless)) {
            let bad = Bad::Raw(go_string_slice(Some(
                &ips.iter().map(|i| json!(i)).collect(),
            )));
            let changed = if ips.len() >= old_ips.len() {
                old_ips.iter().zip(&ips).position(|(o, n)| o != n)
            } else {
                (ips.first() != old_ips.first()).then_some(0)
            };
            if let Some(i) = changed {
                errs.push(invalid(
                    &index("spec.clusterIPs", i),
                    bad,
                    "may not change once set",
                ));
            }
        }
    }

    if list(spec, "ports").is_empty() && !headless && service_type != "ExternalName" {
        errs.push(required("spec.ports", ""));
    }
    match service_type {
        "LoadBalancer" | "NodePort" if headless => errs.push(invalid(
            "spec.clusterIPs[0]",
            Bad::str("None"),
            &format!("may not be set to 'None' for {service_type} services"),
        )),
        "ExternalName" => {
            if !list(spec, "clusterIPs").is_empty() {
                errs.push(forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !list(spec, "ipFamilies").is_empty() {
                errs.push(forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if present(spec, "ipFamilyPolicy") {
                errs.push(forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            let cname = text(spec, "externalName");
            let cname = cname.strip_suffix('.').unwrap_or(cname);
            if cname.is_empty() {
                errs.push(required("spec.externalName", ""));
            } else {
                for m in dns1123_subdomain(cname) {
                    errs.push(invalid("spec.externalName", Bad::str(cname), &m));
                }
            }
        }
        _ => {}
    }

    let ports = list(spec, "ports");
    let mut names: Vec<&str> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index("spec.ports", i);
        let name = text(port, "name");
        if ports.len() > 1 && name.is_empty() {
            errs.push(required(&child(&p, "name"), ""));
        } else if !name.is_empty() {
            for m in dns1123_label(name) {
                errs.push(invalid(&child(&p, "name"), Bad::str(name), &m));
            }
            if names.contains(&name) {
                errs.push(duplicate(&child(&p, "name"), Bad::str(name)));
            } else {
                names.push(name);
            }
        }
        let number = int(port, "port").unwrap_or(0);
        if !valid_port(number) {
            errs.push(invalid(
                &child(&p, "port"),
                Bad::Int(number),
                PORT_RANGE_MSG,
            ));
        }
        let protocol = text(port, "protocol");
        if protocol.is_empty() {
            errs.push(required(&child(&p, "protocol"), ""));
        } else if !PROTOCOLS.contains(&protocol) {
            errs.push(not_supported(
                &child(&p, "protocol"),
                Bad::str(protocol),
                PROTOCOLS,
            ));
        }
        port_num_or_name(port.get("targetPort"), &child(&p, "targetPort"), errs);
        if let Some(app) = opt_text(port, "appProtocol") {
            for m in qualified_name(app) {
                errs.push(invalid(&child(&p, "appProtocol"), Bad::str(app), &m));
            }
        }
    }
    if present(spec, "selector") {
        validate_labels(map(spec, "selector"), "spec.selector", errs);
    }
    match text(spec, "sessionAffinity") {
        "" => errs.push(required("spec.sessionAffinity", "")),
        "ClientIP" => {
            let timeout = &spec["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"];
            match timeout.as_i64() {
                None => errs.push(required(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    "when session affinity type is ClientIP",
                )),
                Some(t) if !(1..=86400).contains(&t) => errs.push(invalid(
                    "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                    Bad::Int(t),
                    "must be greater than 0 and less than 86400",
                )),
                Some(_) => {}
            }
        }
        "None" => {
            if present(spec, "sessionAffinityConfig") {
                errs.push(forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(not_supported(
            "spec.sessionAffinity",
            Bad::str(other),
            &["ClientIP", "None"],
        )),
    }
    if service_type != "ExternalName" {
        for (i, ip) in ips.iter().enumerate() {
            if !(valid_ip(ip) || (i == 0 && ip == "None")) {
                errs.push(invalid(
                    &index("spec.clusterIPs", i),
                    Bad::str(ip),
                    "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
                ));
            }
        }
    }
    for (i, ip) in list(spec, "externalIPs").iter().enumerate() {
        let ip = scalar_text(ip);
        if !valid_ip(&ip) {
            errs.push(invalid(
                &index("spec.externalIPs", i),
                Bad::str(&ip),
                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
            ));
        }
    }
    const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
    if service_type.is_empty() {
        errs.push(required("spec.type", ""));
    } else if !TYPES.contains(&service_type) {
        errs.push(not_supported("spec.type", Bad::str(service_type), TYPES));
    }
    if service_type == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int(port, "nodePort").unwrap_or(0) != 0 {
                errs.push(forbidden(
                    &child(&index("spec.ports", i), "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }
    let mut node_ports: Vec<(String, i64)> = Vec::new();
    let mut seen_ports: Vec<(String, i64)> = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = text(port, "protocol").to_owned();
        let node_port = int(port, "nodePort").unwrap_or(0);
        if node_port != 0 {
            let k = (protocol.clone(), node_port);
            if node_ports.contains(&k) {
                errs.push(duplicate(
                    &child(&index("spec.ports", i), "nodePort"),
                    Bad::Int(node_port),
                ));
            }
            node_ports.push(k);
        }
        let number = int(port, "port").unwrap_or(0);
        let k = (protocol.clone(), number);
        if seen_ports.contains(&k) {
            errs.push(duplicate(
                &index("spec.ports", i),
                Bad::Raw(format!(
                    "core.ServicePort{{Name:\"\", Protocol:{}, AppProtocol:(*string)(nil), Port:{number}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}",
                    go_quote(&protocol)
                )),
            ));
        }
        seen_ports.push(k);
    }
    if present(spec, "allocateLoadBalancerNodePorts") && service_type != "LoadBalancer" {
        errs.push(forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if service_type == "LoadBalancer" && !present(spec, "allocateLoadBalancerNodePorts") {
        // kube reports this one without the "spec." prefix.
        errs.push(required("allocateLoadBalancerNodePorts", ""));
    }
    let external_policy = text(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !external_policy.is_empty() {
            errs.push(invalid(
                "spec.externalTrafficPolicy",
                Bad::str(external_policy),
                "may only be set for externally-accessible services",
            ));
        }
    } else if external_policy.is_empty() {
        errs.push(required("spec.externalTrafficPolicy", ""));
    } else if external_policy != "Cluster" && external_policy != "Local" {
        errs.push(not_supported(
            "spec.externalTrafficPolicy",
            Bad::str(external_policy),
            &["Cluster", "Local"],
        ));
    }
    match spec.get("internalTrafficPolicy").filter(|v| !v.is_null()) {
        None => {
            if matches!(service_type, "NodePort" | "LoadBalancer" | "ClusterIP") {
                errs.push(required("spec.internalTrafficPolicy", ""));
            }
        }
        Some(policy) => {
            let policy = scalar_text(policy);
            if policy != "Cluster" && policy != "Local" {
                errs.push(not_supported(
                    "spec.internalTrafficPolicy",
                    Bad::str(&policy),
                    &["Cluster", "Local"],
                ));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ConfigMaps, Secrets, Namespaces.
// ---------------------------------------------------------------------------------------------

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

fn validate_config_map(cm: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
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

fn validate_secret(secret: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
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

fn validate_namespace(ns: &Value, errs: &mut Vec<FieldError>) {
    for f in list(&ns["spec"], "finalizers") {
        kube_finalizer_errors(&scalar_text(f), "spec.finalizers", errs);
    }
}

// ---------------------------------------------------------------------------------------------
// Semantic comparison, as apimachinery's `Semantic.DeepEqual` sees decoded Go structs: an
// absent field, null and the zero value are all the same thing.
// ---------------------------------------------------------------------------------------------

fn is_zero(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Bool(b)) => !b,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
    }
}

fn sem_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    if is_zero(a) && is_zero(b) {
        return true;
    }
    let empty = Value::Object(Obj::new());
    let (a, b) = match (a, b) {
        (Some(Value::Object(_)), None | Some(Value::Null)) => (a, Some(&empty)),
        (None | Some(Value::Null), Some(Value::Object(_))) => (Some(&empty), b),
        _ => (a, b),
    };
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            x.keys().chain(y.keys()).all(|k| sem_eq(x.get(k), y.get(k)))
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| sem_eq(Some(p), Some(q)))
        }
        (Some(Value::Number(x)), Some(Value::Number(y))) => x.as_f64() == y.as_f64(),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// One "-old"/"+new" pair per differing leaf, for the Pod update message (kube prints a
/// `cmp.Diff` of its internal structs there, which this only approximates).
fn diff_lines(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    if sem_eq(a, b) {
        return;
    }
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                diff_lines(&child(path, k), x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                diff_lines(&index(path, i), Some(p), Some(q), out);
            }
        }
        _ => {
            let show = |v: Option<&Value>| v.map_or_else(|| "null".to_owned(), Value::to_string);
            out.push(format!("- \t{path}: {}", show(a)));
            out.push(format!("+ \t{path}: {}", show(b)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(kind: &str, mut v: Value) -> Value {
        apply_defaults(kind, &mut v);
        v
    }

    /// Validation messages of a defaulted create, as "field: message" lines.
    fn create_errors(kind: &str, v: Value) -> Vec<String> {
        let v = defaulted(kind, v);
        validate(kind, &v, None)
            .iter()
            .map(FieldError::describe)
            .collect()
    }

    fn update_errors(kind: &str, old: Value, new: Value) -> Vec<String> {
        let old = defaulted(kind, old);
        let new = defaulted(kind, new);
        validate(kind, &new, Some(&old))
            .iter()
            .map(FieldError::describe)
            .collect()
    }

    fn pod(containers: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": {"containers": containers}})
    }

    fn deployment() -> Value {
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}
                }
            }
        })
    }

    fn job() -> Value {
        json!({
            "metadata": {"name": "pi", "uid": "1234"},
            "spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "pi", "image": "perl:5.34"}]
            }}}
        })
    }

    // --- FieldError and names ---------------------------------------------------------------

    #[test]
    fn describe_joins_field_and_message() {
        let e = required("spec.containers", "");
        assert_eq!(e.describe(), "spec.containers: Required value");
        assert_eq!(e.reason, "FieldValueRequired");
    }

    #[test]
    fn subdomain_names_report_kubes_message() {
        let errs = validate_name("ConfigMap", "Foo");
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, "FieldValueInvalid");
        assert_eq!(
            errs[0].describe(),
            "metadata.name: Invalid value: \"Foo\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        );
        assert!(validate_name("Pod", "web-1.example").is_empty());
        assert!(validate_name("Node", "node-1.cluster.local").is_empty());
        let long = "a".repeat(254);
        let errs = validate_name("Secret", &long);
        assert_eq!(
            errs[0].message,
            format!("Invalid value: \"{long}\": must be no more than 253 characters")
        );
    }

    #[test]
    fn namespace_and_statefulset_names_are_labels() {
        let errs = validate_name("Namespace", "team.a");
        assert_eq!(
            errs[0].message,
            "Invalid value: \"team.a\": must not contain dots"
        );
        let errs = validate_name("StatefulSet", "Web");
        assert!(errs[0]
            .message
            .contains("a lowercase RFC 1123 label must consist of"));
        assert!(errs[0].message.ends_with("(e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
        assert!(validate_name("Namespace", "kube-system").is_empty());
    }

    #[test]
    fn service_names_are_dns1035_labels() {
        let errs = validate_name("Service", "1web");
        assert_eq!(
            errs[0].message,
            "Invalid value: \"1web\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
        );
        assert!(validate_name("Service", "web").is_empty());
    }

    #[test]
    fn rbac_names_are_path_segments() {
        assert!(validate_name("ClusterRole", "system:controller:foo").is_empty());
        assert_eq!(
            validate_name("Role", "..")[0].message,
            "Invalid value: \"..\": may not be '..'"
        );
        let errs = validate_name("RoleBinding", "a/b%c");
        let messages: Vec<&str> = errs.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "Invalid value: \"a/b%c\": may not contain '/'",
                "Invalid value: \"a/b%c\": may not contain '%'"
            ]
        );
    }

    #[test]
    fn cronjob_names_leave_room_for_the_job_suffix() {
        let name = "a".repeat(53);
        let errs = validate_name("CronJob", &name);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message,
            format!("Invalid value: \"{name}\": must be no more than 52 characters")
        );
        assert!(validate_name("CronJob", &"a".repeat(52)).is_empty());
    }

    #[test]
    fn empty_name_is_required() {
        assert_eq!(
            validate_name("Pod", "")[0].describe(),
            "metadata.name: Required value: name or generateName is required"
        );
    }

    // --- Quantities ---------------------------------------------------------------------------

    #[test]
    fn quantities_print_canonically() {
        let canonical = |s: &str| Quantity::parse(s).map(|q| q.canonical());
        assert_eq!(canonical("1000m").as_deref(), Ok("1"));
        assert_eq!(canonical("1024Mi").as_deref(), Ok("1Gi"));
        assert_eq!(canonical("0.5").as_deref(), Ok("500m"));
        assert_eq!(canonical("1e3").as_deref(), Ok("1e3"));
        assert_eq!(canonical("1.5e3").as_deref(), Ok("1500"));
        assert_eq!(canonical("1.5Gi").as_deref(), Ok("1536Mi"));
        assert_eq!(canonical("100m").as_deref(), Ok("100m"));
        assert_eq!(canonical("1000").as_deref(), Ok("1k"));
        assert_eq!(canonical("512Ki").as_deref(), Ok("512Ki"));
        assert_eq!(canonical("1000Ki").as_deref(), Ok("1000Ki"));
        assert_eq!(canonical("1.1Ki").as_deref(), Ok("1126400m"));
        assert_eq!(canonical("0.5Ki").as_deref(), Ok("512"));
        assert_eq!(canonical("00").as_deref(), Ok("0"));
        assert_eq!(canonical("-250m").as_deref(), Ok("-250m"));
        assert_eq!(canonical("1.0000000001").as_deref(), Ok("1000000001n"));
    }

    #[test]
    fn malformed_quantities_are_rejected_with_kubes_messages() {
        assert_eq!(Quantity::parse("abc").err(), Some(QUANTITY_FORMAT_MSG));
        assert_eq!(Quantity::parse("1.5.5").err(), Some(QUANTITY_FORMAT_MSG));
        assert_eq!(Quantity::parse("").err(), Some(QUANTITY_FORMAT_MSG));
        assert_eq!(Quantity::parse("1kk").err(), Some(QUANTITY_SUFFIX_MSG));
        assert_eq!(Quantity::parse("1e").err(), Some(QUANTITY_SUFFIX_MSG));
    }

    #[test]
    fn quantities_compare_by_value() {
        let q = |s: &str| Quantity::parse(s).unwrap_or_else(|_| panic!("{s}"));
        assert_eq!(q("1").cmp(&q("1000m")), Ordering::Equal);
        assert_eq!(q("1Gi").cmp(&q("1G")), Ordering::Greater);
        assert_eq!(q("500m").cmp(&q("0.6")), Ordering::Less);
        assert_eq!(q("-1").cmp(&q("0")), Ordering::Less);
        assert_eq!(q("1e3").cmp(&q("1k")), Ordering::Equal);
    }

    #[test]
    fn resource_lists_round_up_to_milli_and_canonicalise() {
        let p = defaulted(
            "Pod",
            pod(json!([{"name": "c", "image": "i", "resources": {
                "requests": {"cpu": 0.0001, "memory": "1024Mi"},
                "limits": {"cpu": "1500u"}
            }}])),
        );
        let resources = &p["spec"]["containers"][0]["resources"];
        assert_eq!(resources["requests"], json!({"cpu": "1m", "memory": "1Gi"}));
        assert_eq!(resources["limits"], json!({"cpu": "2m"}));
    }

    // --- Defaults -----------------------------------------------------------------------------

    #[test]
    fn pod_defaults_match_kube() {
        let p = defaulted(
            "Pod",
            pod(json!([{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}])),
        );
        assert_eq!(
            p["spec"],
            json!({
                "containers": [{
                    "name": "web",
                    "image": "nginx",
                    "imagePullPolicy": "Always",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst",
                "enableServiceLinks": true,
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "terminationGracePeriodSeconds": 30
            })
        );
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert_eq!(defaulted("Pod", p.clone()), p, "defaulting is idempotent");
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        let policy = |image: &str| {
            let p = defaulted("Pod", pod(json!([{"name": "c", "image": image}])));
            p["spec"]["containers"][0]["imagePullPolicy"].clone()
        };
        assert_eq!(policy("nginx"), "Always");
        assert_eq!(policy("nginx:latest"), "Always");
        assert_eq!(policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(policy("localhost:5000/team/app"), "Always");
        assert_eq!(policy("registry.example.com:5000/app:v2"), "IfNotPresent");
        assert_eq!(
            policy(
                "busybox@sha256:abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
            ),
            "IfNotPresent"
        );
        // An unparseable reference has no tag at all.
        assert_eq!(policy("Nginx"), "IfNotPresent");
        let kept = defaulted(
            "Pod",
            pod(json!([{"name": "c", "image": "nginx", "imagePullPolicy": "Never"}])),
        );
        assert_eq!(kept["spec"]["containers"][0]["imagePullPolicy"], "Never");
    }

    #[test]
    fn pod_requests_default_to_limits_and_set_qos() {
        let p = defaulted(
            "Pod",
            pod(
                json!([{"name": "c", "image": "i", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}]),
            ),
        );
        assert_eq!(
            p["spec"]["containers"][0]["resources"]["requests"],
            json!({"cpu": "500m", "memory": "128Mi"})
        );
        assert_eq!(p["status"]["qosClass"], "Guaranteed");
        let burstable = defaulted(
            "Pod",
            pod(json!([{"name": "c", "image": "i", "resources": {"requests": {"cpu": "100m"}}}])),
        );
        assert_eq!(burstable["status"]["qosClass"], "Burstable");
    }

    #[test]
    fn templates_get_pod_spec_defaults_but_not_pod_only_ones() {
        let d = defaulted("Deployment", deployment());
        let spec = &d["spec"]["template"]["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert!(spec.get("enableServiceLinks").is_none());
        let with_limits = defaulted(
            "ReplicaSet",
            json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i",
                "resources": {"limits": {"cpu": "1"}}}]}}}}),
        );
        assert!(
            with_limits["spec"]["template"]["spec"]["containers"][0]["resources"]
                .get("requests")
                .is_none()
        );
    }

    #[test]
    fn probes_volumes_and_env_get_their_defaults() {
        let p = defaulted(
            "Pod",
            json!({"spec": {
                "containers": [{
                    "name": "c", "image": "i",
                    "livenessProbe": {"httpGet": {"port": 8080}},
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
                }],
                "volumes": [{"name": "scratch"}, {"name": "cfg", "configMap": {"name": "cfg"}}]
            }}),
        );
        let c = &p["spec"]["containers"][0];
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"port": 8080, "path": "/", "scheme": "HTTP"},
                   "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(p["spec"]["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(p["spec"]["volumes"][1]["configMap"]["defaultMode"], 420);
    }

    #[test]
    fn host_network_pods_default_host_ports() {
        let p = defaulted(
            "Pod",
            json!({"spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 53}]}]}}),
        );
        assert_eq!(p["spec"]["containers"][0]["ports"][0]["hostPort"], 53);
    }

    #[test]
    fn deployment_defaults_match_kube() {
        let d = defaulted("Deployment", deployment());
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        let recreate = defaulted(
            "Deployment",
            json!({"spec": {"strategy": {"type": "Recreate"}, "replicas": 3}}),
        );
        assert_eq!(recreate["spec"]["strategy"], json!({"type": "Recreate"}));
        assert_eq!(recreate["spec"]["replicas"], 3);
    }

    #[test]
    fn replica_set_daemon_set_and_stateful_set_defaults() {
        let rs = defaulted("ReplicaSet", json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);
        assert_eq!(rs["status"], json!({"replicas": 0}));

        let ds = defaulted("DaemonSet", json!({"spec": {}}));
        assert_eq!(
            ds["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(ds["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(ds["status"]["numberReady"], 0);

        let sts = defaulted(
            "StatefulSet",
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"resources": {"requests": {"storage": "1024Mi"}}}}]}}),
        );
        let spec = &sts["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        let claim = &spec["volumeClaimTemplates"][0];
        assert_eq!(claim["spec"]["volumeMode"], "Filesystem");
        assert_eq!(claim["spec"]["resources"]["requests"]["storage"], "1Gi");
        assert_eq!(claim["status"]["phase"], "Pending");

        let explicit = defaulted(
            "StatefulSet",
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate"}}}),
        );
        assert_eq!(
            explicit["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate"})
        );
    }

    #[test]
    fn job_defaults_and_generated_selector() {
        let j = defaulted("Job", job());
        let spec = &j["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["manualSelector"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}})
        );
        let labels = json!({
            "batch.kubernetes.io/controller-uid": "1234",
            "batch.kubernetes.io/job-name": "pi",
            "controller-uid": "1234",
            "job-name": "pi"
        });
        assert_eq!(spec["template"]["metadata"]["labels"], labels);
        assert_eq!(j["metadata"]["labels"], labels);
        assert!(create_errors("Job", job()).is_empty());
    }

    #[test]
    fn job_parallelism_alone_leaves_completions_unset() {
        let mut v = job();
        v["spec"]["parallelism"] = json!(3);
        v["spec"]["backoffLimitPerIndex"] = json!(1);
        let j = defaulted("Job", v);
        assert!(j["spec"].get("completions").is_none());
        assert_eq!(j["spec"]["parallelism"], 3);
        assert_eq!(j["spec"]["backoffLimit"], MAX_INT32);
    }

    #[test]
    fn manual_selector_jobs_keep_their_labels() {
        let mut v = job();
        v["spec"]["manualSelector"] = json!(true);
        v["spec"]["selector"] = json!({"matchLabels": {"run": "pi"}});
        v["spec"]["template"]["metadata"] = json!({"labels": {"run": "pi"}});
        v["metadata"]["labels"] = json!({"team": "a"});
        let j = defaulted("Job", v);
        assert_eq!(
            j["spec"]["template"]["metadata"]["labels"],
            json!({"run": "pi"})
        );
        assert_eq!(j["metadata"]["labels"], json!({"team": "a"}));
        assert_eq!(j["spec"]["selector"], json!({"matchLabels": {"run": "pi"}}));
    }

    #[test]
    fn cronjob_defaults_leave_the_job_template_alone() {
        let cj = defaulted(
            "CronJob",
            json!({"spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
        );
        let spec = &cj["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        let job_spec = &spec["jobTemplate"]["spec"];
        assert!(job_spec.get("backoffLimit").is_none());
        assert_eq!(job_spec["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        assert_eq!(
            job_spec["template"]["spec"]["containers"][0]["imagePullPolicy"],
            "Always"
        );
    }

    #[test]
    fn service_defaults_match_kube() {
        let s = defaulted(
            "Service",
            json!({"metadata": {"name": "web"}, "spec": {"selector": {"app": "web"},
                "ports": [{"port": 80}, {"port": 443, "targetPort": "https", "protocol": "TCP"}]}}),
        );
        let spec = &s["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["ports"][1]["targetPort"], "https");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(s["status"], json!({"loadBalancer": {}}));

        let lb = defaulted(
            "Service",
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}),
        );
        assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
        assert_eq!(lb["status"], json!({"loadBalancer": {}}));
        assert_eq!(
            lb["spec"]["sessionAffinityConfig"],
            json!({"clientIP": {"timeoutSeconds": 10800}})
        );

        let headless = defaulted("Service", json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");

        let external = defaulted(
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "example.com"}}),
        );
        assert!(external["spec"].get("ipFamilyPolicy").is_none());
        assert!(external["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn secret_defaults_fold_string_data() {
        let s = defaulted(
            "Secret",
            json!({"metadata": {"name": "s"}, "data": {"a": "YQ=="}, "stringData": {"b": "hello", "a": "x"}}),
        );
        assert_eq!(s["type"], "Opaque");
        assert_eq!(s["data"], json!({"a": "eA==", "b": "aGVsbG8="}));
        assert!(s.get("stringData").is_none());
        let tls = defaulted("Secret", json!({"type": "kubernetes.io/tls"}));
        assert_eq!(tls["type"], "kubernetes.io/tls");
    }

    #[test]
    fn namespace_defaults_match_kube() {
        let ns = defaulted(
            "Namespace",
            json!({"metadata": {"name": "team-a", "labels": {"x": "y"}}}),
        );
        assert_eq!(
            ns["metadata"]["labels"],
            json!({"x": "y", "kubernetes.io/metadata.name": "team-a"})
        );
        assert_eq!(ns["spec"], json!({"finalizers": ["kubernetes"]}));
        assert_eq!(ns["status"], json!({"phase": "Active"}));
    }

    #[test]
    fn kinds_without_defaults_are_untouched() {
        for kind in ["ConfigMap", "Event", "Lease", "ServiceAccount"] {
            let v = json!({"metadata": {"name": "x"}, "data": {"k": "v"}});
            assert_eq!(defaulted(kind, v.clone()), v, "{kind}");
        }
    }

    #[test]
    fn node_allocatable_defaults_to_capacity() {
        let n = defaulted(
            "Node",
            json!({"status": {"capacity": {"cpu": "4", "memory": "8192Mi"}}}),
        );
        assert_eq!(
            n["status"]["allocatable"],
            json!({"cpu": "4", "memory": "8Gi"})
        );
    }

    // --- Metadata -----------------------------------------------------------------------------

    #[test]
    fn labels_and_annotations_are_checked() {
        let errs = create_errors(
            "ConfigMap",
            json!({"metadata": {"name": "c", "labels": {"a/b/c": "ok", "app": "-bad"},
                "annotations": {"Example.com/Key": "fine", "bad key": "v"}}}),
        );
        assert_eq!(
            errs,
            [
                "metadata.labels: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                "metadata.labels: Invalid value: \"-bad\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
                "metadata.annotations: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ]
        );
    }

    #[test]
    fn annotations_are_capped_at_256_kib() {
        let big = "x".repeat(MAX_ANNOTATIONS_SIZE);
        let errs = validate(
            "ConfigMap",
            &json!({"metadata": {"name": "c", "annotations": {"k": big}}}),
            None,
        );
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].reason, "FieldValueTooLong");
        assert_eq!(
            errs[0].describe(),
            "metadata.annotations: Too long: may not be more than 262144 bytes"
        );
    }

    #[test]
    fn finalizers_must_be_standard_or_qualified() {
        let errs = create_errors(
            "ConfigMap",
            json!({"metadata": {"name": "c", "finalizers": ["kubernetes", "example.com/x", "custom"]}}),
        );
        assert_eq!(
            errs,
            [
                "metadata.finalizers[2]: Invalid value: \"custom\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
    }

    #[test]
    fn metadata_identity_is_immutable_and_deleting_objects_take_no_new_finalizers() {
        let old = json!({"metadata": {"name": "c", "uid": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["a.io/x"]}});
        let new =
            json!({"metadata": {"name": "c", "uid": "2", "finalizers": ["a.io/x", "b.io/y"]}});
        let errs: Vec<String> = validate("ConfigMap", &new, Some(&old))
            .iter()
            .map(FieldError::describe)
            .collect();
        assert_eq!(
            errs,
            [
                "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\"}",
                "metadata.uid: Invalid value: \"2\": field is immutable",
            ]
        );
    }

    // --- Pods ---------------------------------------------------------------------------------

    #[test]
    fn a_defaulted_pod_is_valid() {
        let errs = create_errors(
            "Pod",
            json!({"metadata": {"name": "p"}, "spec": {
                "containers": [{"name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": 80}],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}},
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                    "readinessProbe": {"tcpSocket": {"port": "http"}}}],
                "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
                "volumes": [{"name": "data"}],
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
            }}),
        );
        assert!(errs.is_empty(), "{errs:?}");
    }

    #[test]
    fn pods_need_containers() {
        assert_eq!(
            create_errors("Pod", pod(json!([]))),
            ["spec.containers: Required value"]
        );
        let v = defaulted("Pod", json!({"metadata": {"name": "p"}}));
        let errs = validate("Pod", &v, None);
        assert_eq!(errs[0].describe(), "spec.containers: Required value");
        assert_eq!(errs[0].reason, "FieldValueRequired");
    }

    #[test]
    fn container_names_and_images() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {
                "containers": [{"name": "Web", "image": ""}, {"image": "x"}, {"name": "app", "image": " x"}],
                "initContainers": [{"name": "app", "image": "y"}]
            }}),
        );
        assert_eq!(
            errs,
            [
                format!("spec.containers[0].name: Invalid value: \"Web\": {DNS1123_LABEL_MSG}"),
                "spec.containers[0].image: Required value".to_owned(),
                "spec.containers[1].name: Required value".to_owned(),
                "spec.initContainers[0].name: Duplicate value: \"app\"".to_owned(),
                "spec.containers[2].image: Invalid value: \" x\": must not have leading or trailing whitespace".to_owned(),
            ]
        );
    }

    #[test]
    fn container_ports_are_checked() {
        let errs = create_errors(
            "Pod",
            pod(json!([{"name": "c", "image": "i", "ports": [
                {"containerPort": 70000},
                {"containerPort": 80, "protocol": "ICMP", "name": "Http"},
                {"containerPort": 81, "hostPort": 8080},
                {"containerPort": 82, "hostPort": 8080}
            ]}])),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
                "spec.containers[0].ports[1].name: Invalid value: \"Http\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
                "spec.containers[0].ports[1].protocol: Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                "spec.containers[0].ports[3].hostPort: Duplicate value: \"TCP//8080\"",
            ]
        );
    }

    #[test]
    fn pod_enums_report_supported_values() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {"restartPolicy": "Sometimes", "dnsPolicy": "Google",
                "containers": [{"name": "c", "image": "i", "imagePullPolicy": "Often"}]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].imagePullPolicy: Unsupported value: \"Often\": supported values: \"Always\", \"IfNotPresent\", \"Never\"",
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\"",
            ]
        );
    }

    #[test]
    fn resources_must_parse_and_requests_fit_limits() {
        let errs = create_errors(
            "Pod",
            pod(json!([{"name": "c", "image": "i", "resources": {
                "requests": {"cpu": "2", "memory": "lots"},
                "limits": {"cpu": "1", "gpu": "1"}
            }}])),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
                "spec.containers[0].resources.limits[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
                "spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1",
                "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource type or fully qualified",
                "spec.containers[0].resources.requests[gpu]: Invalid value: \"gpu\": must be a standard resource for containers",
                "spec.containers[0].resources.requests[memory]: Invalid value: \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
            ]
        );
        let negative = create_errors(
            "Pod",
            pod(
                json!([{"name": "c", "image": "i", "resources": {"requests": {"memory": "-1Gi"}}}]),
            ),
        );
        assert_eq!(
            negative,
            [
                "spec.containers[0].resources.requests[memory]: Invalid value: \"-1Gi\": must be greater than or equal to 0"
            ]
        );
    }

    #[test]
    fn extended_resources_must_request_their_limit_in_whole_units() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "image": "i", "resources": {
                "requests": {"example.com/gpu": "1"}, "limits": {"example.com/gpu": "2"}}}]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2"
            ]
        );
        let errs = create_errors(
            "ReplicaSet",
            json!({"spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i", "resources": {"requests": {"example.com/gpu": "500m"}}}]}}}}),
        );
        assert_eq!(
            errs,
            [
                "spec.template.spec.containers[0].resources.requests[example.com/gpu]: Invalid value: \"500m\": must be an integer",
                "spec.template.spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources",
            ]
        );
    }

    #[test]
    fn volume_mounts_must_name_volumes() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {"volumes": [{"name": "a"}, {"name": "a"}],
                "containers": [{"name": "c", "image": "i", "volumeMounts": [{"name": "b", "mountPath": "/x"}, {"name": "a", "mountPath": "/x"}]}]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.volumes[1].name: Duplicate value: \"a\"",
                "spec.containers[0].volumeMounts[0].name: Not found: \"b\"",
                "spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/x\": must be unique",
            ]
        );
    }

    #[test]
    fn tolerations_are_checked() {
        let errs = create_errors(
            "Pod",
            json!({"spec": {"containers": [{"name": "c", "image": "i"}],
                "tolerations": [{"operator": "Equal", "value": "x"}, {"key": "k", "operator": "Exists", "value": "v", "tolerationSeconds": 5}]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.tolerations[0].operator: Invalid value: \"Equal\": operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
                "spec.tolerations[1].effect: Invalid value: \"\": effect must be 'NoExecute' when `tolerationSeconds` is set",
                "spec.tolerations[1].operator: Invalid value: \"v\": value must be empty when `operator` is 'Exists'",
            ]
        );
    }

    #[test]
    fn pod_updates_may_change_images_only() {
        let old = pod(json!([{"name": "c", "image": "nginx:1.26"}]));
        let new = pod(json!([{"name": "c", "image": "nginx:1.27"}]));
        assert!(update_errors("Pod", old.clone(), new).is_empty());

        let mut moved = pod(json!([{"name": "c", "image": "nginx:1.26"}]));
        moved["spec"]["nodeName"] = json!("node-b");
        let errs = update_errors("Pod", old.clone(), moved);
        assert_eq!(errs.len(), 1);
        assert!(
            errs[0].starts_with(&format!("spec: Forbidden: {POD_UPDATE_MSG}\n")),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains("spec.nodeName"));

        let more = pod(json!([{"name": "c", "image": "nginx:1.26"}, {"name": "d", "image": "x"}]));
        assert_eq!(
            update_errors("Pod", old, more),
            ["spec.containers: Forbidden: pod updates may not add or remove containers"]
        );
    }

    #[test]
    fn pod_update_deadlines_tolerations_and_grace_period() {
        let mut old = pod(json!([{"name": "c", "image": "i"}]));
        old["spec"]["activeDeadlineSeconds"] = json!(100);
        old["spec"]["tolerations"] = json!([{"key": "a", "operator": "Exists"}]);
        let mut lower = old.clone();
        lower["spec"]["activeDeadlineSeconds"] = json!(50);
        lower["spec"]["tolerations"] =
            json!([{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}]);
        assert!(update_errors("Pod", old.clone(), lower).is_empty());

        let mut higher = old.clone();
        higher["spec"]["activeDeadlineSeconds"] = json!(200);
        assert_eq!(
            update_errors("Pod", old.clone(), higher),
            [
                "spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value"
            ]
        );

        let mut unset = old.clone();
        unset["spec"]
            .as_object_mut()
            .map(|s| s.remove("activeDeadlineSeconds"));
        assert_eq!(
            update_errors("Pod", old.clone(), unset),
            [
                "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value"
            ]
        );

        let mut retoleration = old.clone();
        retoleration["spec"]["tolerations"] = json!([{"key": "b", "operator": "Exists"}]);
        let errs = update_errors("Pod", old.clone(), retoleration);
        assert_eq!(
            errs[0],
            "spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"
        );

        let mut negative = pod(json!([{"name": "c", "image": "i"}]));
        negative["spec"]["terminationGracePeriodSeconds"] = json!(-1);
        let mut one = negative.clone();
        one["spec"]["terminationGracePeriodSeconds"] = json!(1);
        assert!(update_errors("Pod", negative, one).is_empty());
        let mut thirty = old.clone();
        thirty["spec"]["terminationGracePeriodSeconds"] = json!(10);
        assert!(update_errors("Pod", old, thirty)[0]
            .starts_with("spec: Forbidden: pod updates may not change fields"));
    }

    // --- Workloads ----------------------------------------------------------------------------

    #[test]
    fn a_defaulted_deployment_is_valid() {
        assert!(create_errors("Deployment", deployment()).is_empty());
    }

    #[test]
    fn deployment_selector_is_required_and_must_match() {
        let mut no_selector = deployment();
        no_selector["spec"]
            .as_object_mut()
            .map(|s| s.remove("selector"));
        assert_eq!(
            create_errors("Deployment", no_selector),
            [
                "spec.selector: Required value",
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`",
            ]
        );
        let mut other = deployment();
        other["spec"]["selector"] =
            json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["api"]}]});
        assert_eq!(
            create_errors("Deployment", other),
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`"
            ]
        );
        let mut empty = deployment();
        empty["spec"]["selector"] = json!({});
        assert_eq!(
            create_errors("Deployment", empty),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment"
            ]
        );
        let mut bad_op = deployment();
        bad_op["spec"]["selector"] =
            json!({"matchExpressions": [{"key": "app", "operator": "Near"}]});
        assert_eq!(
            create_errors("Deployment", bad_op),
            [
                "spec.selector.matchExpressions[0].operator: Invalid value: \"Near\": not a valid selector operator",
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:\"app\", Operator:\"Near\", Values:[]string(nil)}}}: invalid label selector",
            ]
        );
    }

    #[test]
    fn deployment_selector_is_immutable() {
        let old = deployment();
        let mut new = deployment();
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "tier": "front"}});
        new["spec"]["template"]["metadata"]["labels"]["tier"] = json!("front");
        assert_eq!(
            update_errors("Deployment", old.clone(), new),
            [
                "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"web\", \"tier\":\"front\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
            ]
        );
        let mut scaled = deployment();
        scaled["spec"]["replicas"] = json!(5);
        assert!(update_errors("Deployment", old, scaled).is_empty());
    }

    #[test]
    fn deployment_spec_rules() {
        let mut d = deployment();
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "0%"}});
        assert_eq!(
            create_errors("Deployment", d),
            [
                "spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                "spec.template.spec.containers[0].image: Required value",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0",
            ]
        );
        let mut bad = deployment();
        bad["spec"]["strategy"] = json!({"type": "Blue"});
        bad["spec"]["progressDeadlineSeconds"] = json!(5);
        bad["spec"]["minReadySeconds"] = json!(10);
        assert_eq!(
            create_errors("Deployment", bad),
            [
                "spec.strategy: Unsupported value: apps.DeploymentStrategy{Type:\"Blue\", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: \"Recreate\", \"RollingUpdate\"",
                "spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds",
            ]
        );
        let mut percent = deployment();
        percent["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "150%", "maxSurge": "x"}});
        assert_eq!(
            create_errors("Deployment", percent),
            [
                format!("spec.strategy.rollingUpdate.maxSurge: Invalid value: intstr.IntOrString{{Type:1, IntVal:0, StrVal:\"x\"}}: {PERCENT_MSG}"),
                "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"150%\"}: must not be greater than 100%".to_owned(),
            ]
        );
    }

    #[test]
    fn replica_sets_and_replication_controllers() {
        let rs = json!({"metadata": {"name": "rs"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "c"}}, "spec": {"containers": [{"name": "c", "image": "i"}], "activeDeadlineSeconds": 5}}}});
        assert_eq!(
            create_errors("ReplicaSet", rs),
            [
                "spec.template.metadata.labels: Invalid value: map[string]string{\"a\":\"c\"}: `selector` does not match template `labels`",
                "spec.template.spec.activeDeadlineSeconds: Forbidden: activeDeadlineSeconds in ReplicaSet is not Supported",
            ]
        );
        let rc = defaulted(
            "ReplicationController",
            json!({"metadata": {"name": "rc"}, "spec": {"template": {"metadata": {"labels": {"a": "b"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        );
        assert_eq!(rc["spec"]["selector"], json!({"a": "b"}));
        assert_eq!(rc["metadata"]["labels"], json!({"a": "b"}));
        assert!(validate("ReplicationController", &rc, None).is_empty());
    }

    #[test]
    fn daemon_sets() {
        let ds = json!({"metadata": {"name": "ds"}, "spec": {"selector": {"matchLabels": {"a": "b"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 0}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        assert_eq!(
            create_errors("DaemonSet", ds.clone()),
            [
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Required value: cannot be 0 when maxSurge is 0"
            ]
        );
        let mut ok = ds.clone();
        ok["spec"]
            .as_object_mut()
            .map(|s| s.remove("updateStrategy"));
        assert!(create_errors("DaemonSet", ok.clone()).is_empty());
        let mut moved = ok.clone();
        moved["spec"]["selector"] = json!({"matchLabels": {"a": "b", "c": "d"}});
        moved["spec"]["template"]["metadata"]["labels"]["c"] = json!("d");
        assert!(update_errors("DaemonSet", ok, moved)[0]
            .starts_with("spec.selector: Invalid value: v1.LabelSelector{"));
    }

    #[test]
    fn stateful_sets_check_template_metadata_but_not_its_pod_spec() {
        let sts = json!({"metadata": {"name": "db"}, "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db"}]}}}});
        assert!(create_errors("StatefulSet", sts.clone()).is_empty());
        let mut never = sts.clone();
        never["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
        never["spec"]["podManagementPolicy"] = json!("Random");
        assert_eq!(
            create_errors("StatefulSet", never),
            [
                "spec.podManagementPolicy: Invalid value: \"Random\": must be 'OrderedReady' or 'Parallel'",
                "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\"",
            ]
        );
        let mut renamed = sts.clone();
        renamed["spec"]["serviceName"] = json!("other");
        renamed["spec"]["replicas"] = json!(3);
        assert_eq!(
            update_errors("StatefulSet", sts.clone(), renamed),
            [format!("spec: Forbidden: {STATEFULSET_UPDATE_MSG}")]
        );
        let mut scaled = sts.clone();
        scaled["spec"]["replicas"] = json!(3);
        scaled["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
        assert!(update_errors("StatefulSet", sts, scaled).is_empty());
    }

    #[test]
    fn job_templates_must_not_restart_always() {
        let mut v = job();
        v["spec"]["template"]["spec"]
            .as_object_mut()
            .map(|s| s.remove("restartPolicy"));
        assert_eq!(
            create_errors("Job", v),
            [
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
            ]
        );
        let mut sometimes = job();
        sometimes["spec"]["template"]["spec"]["restartPolicy"] = json!("Sometimes");
        assert_eq!(
            create_errors("Job", sometimes),
            [
                "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"OnFailure\", \"Never\"",
            ]
        );
    }

    #[test]
    fn job_generated_selector_is_checked_and_immutable() {
        let mut tampered = defaulted("Job", job());
        tampered["spec"]["template"]["metadata"]["labels"]["controller-uid"] = json!("other");
        let errs: Vec<String> = validate("Job", &tampered, None)
            .iter()
            .map(FieldError::describe)
            .collect();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with(
            "spec.template.metadata.labels[controller-uid]: Invalid value: map[string]string{"
        ));
        assert!(errs[0].ends_with(": must be '1234'"));

        let old = job();
        let mut new = job();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.40");
        let errs = update_errors("Job", old.clone(), new);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("spec.template: Invalid value: {"));
        assert!(errs[0].ends_with(": field is immutable"));

        let mut suspended = job();
        suspended["spec"]["suspend"] = json!(true);
        let mut relabelled = suspended.clone();
        relabelled["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
        assert!(update_errors("Job", suspended, relabelled).is_empty());

        let mut more = job();
        more["spec"]["completions"] = json!(3);
        assert_eq!(
            update_errors("Job", old, more),
            ["spec.completions: Invalid value: 3: field is immutable"]
        );
    }

    #[test]
    fn indexed_jobs_need_completions_and_short_names() {
        let mut v = job();
        v["spec"]["completionMode"] = json!("Indexed");
        v["spec"]["parallelism"] = json!(2);
        assert_eq!(
            create_errors("Job", v),
            ["spec.completions: Required value: when completion mode is Indexed"]
        );
        let mut long = job();
        let name = "a".repeat(62);
        long["metadata"]["name"] = json!(name);
        long["spec"]["completionMode"] = json!("Indexed");
        long["spec"]["completions"] = json!(10);
        let errs = create_errors("Job", long);
        assert!(errs.contains(&format!(
            "metadata.name: Invalid value: \"{name}\": will not able to create pod with invalid DNS label: {name}-9"
        )));
    }

    #[test]
    fn cron_jobs() {
        let cj = |schedule: &str, restart: &str| {
            json!({"metadata": {"name": "c"}, "spec": {"schedule": schedule, "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}}}}}})
        };
        assert!(create_errors("CronJob", cj("*/5 * * * *", "OnFailure")).is_empty());
        assert!(create_errors("CronJob", cj("0 9-17/2 * jan-jun MON-FRI", "Never")).is_empty());
        assert!(create_errors("CronJob", cj("@hourly", "Never")).is_empty());
        assert_eq!(
            create_errors("CronJob", cj("* * *", "Always")),
            [
                "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]",
                "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
            ]
        );
        assert_eq!(
            create_errors("CronJob", cj("61 * * * *", "Never")),
            [
                "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
            ]
        );
        assert_eq!(
            create_errors("CronJob", cj("x * * * *", "Never")),
            [
                "spec.schedule: Invalid value: \"x * * * *\": failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax"
            ]
        );
        assert_eq!(
            create_errors("CronJob", cj("@often", "Never")),
            ["spec.schedule: Invalid value: \"@often\": unrecognized descriptor: @often"]
        );
        assert!(create_errors("CronJob", cj("@every 1h30m", "Never")).is_empty());
    }

    // --- Services -----------------------------------------------------------------------------

    #[test]
    fn services_need_ports_unless_headless() {
        assert_eq!(
            create_errors(
                "Service",
                json!({"metadata": {"name": "s"}, "spec": {"selector": {"a": "b"}}})
            ),
            ["spec.ports: Required value"]
        );
        assert!(create_errors(
            "Service",
            json!({"metadata": {"name": "s"}, "spec": {"clusterIP": "None"}})
        )
        .is_empty());
        assert!(create_errors(
            "Service",
            json!({"spec": {"type": "ExternalName", "externalName": "db.example.com."}})
        )
        .is_empty());
    }

    #[test]
    fn service_ports_are_checked() {
        let errs = create_errors(
            "Service",
            json!({"spec": {"ports": [
                {"name": "http", "port": 80},
                {"name": "http", "port": 0, "protocol": "QUIC"},
                {"port": 81, "targetPort": "Web"}
            ]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.ports[1].name: Duplicate value: \"http\"",
                "spec.ports[1].port: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[1].protocol: Unsupported value: \"QUIC\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                // targetPort was defaulted from the bad port, so kube flags it too.
                "spec.ports[1].targetPort: Invalid value: 0: must be between 1 and 65535, inclusive",
                "spec.ports[2].name: Required value",
                "spec.ports[2].targetPort: Invalid value: \"Web\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)",
            ]
        );
    }

    #[test]
    fn service_type_and_cluster_ip_rules() {
        assert_eq!(
            create_errors(
                "Service",
                json!({"spec": {"type": "Internal", "ports": [{"port": 80}]}})
            ),
            [
                "spec.type: Unsupported value: \"Internal\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\""
            ]
        );
        assert_eq!(
            create_errors(
                "Service",
                json!({"spec": {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]}})
            ),
            [
                "spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"
            ]
        );
        assert_eq!(
            create_errors(
                "Service",
                json!({"spec": {"clusterIP": "10.0.0.300", "ports": [{"port": 80}]}})
            ),
            [
                "spec.clusterIPs[0]: Invalid value: \"10.0.0.300\": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
            ]
        );
        let old = json!({"spec": {"clusterIP": "10.0.0.5", "ports": [{"port": 80}]}});
        let moved = json!({"spec": {"clusterIP": "10.0.0.6", "ports": [{"port": 80}]}});
        assert_eq!(
            update_errors("Service", old.clone(), moved),
            ["spec.clusterIPs[0]: Invalid value: []string{\"10.0.0.6\"}: may not change once set"]
        );
        let omitted = json!({"spec": {"ports": [{"port": 8080}]}});
        assert!(update_errors("Service", old, omitted).is_empty());
        assert_eq!(
            create_errors(
                "Service",
                json!({"spec": {"ports": [{"port": 80, "nodePort": 30080}]}})
            ),
            ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]
        );
    }

    // --- ConfigMaps, Secrets, Namespaces ------------------------------------------------------

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

    #[test]
    fn namespace_finalizers_are_checked() {
        let errs = create_errors(
            "Namespace",
            json!({"metadata": {"name": "n"}, "spec": {"finalizers": ["kubernetes", "mine"]}}),
        );
        assert_eq!(
            errs,
            [
                "spec.finalizers: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"
            ]
        );
    }

    // --- Robustness ---------------------------------------------------------------------------

    #[test]
    fn odd_json_never_panics() {
        let kinds = [
            "Pod",
            "PodTemplate",
            "ReplicationController",
            "Deployment",
            "ReplicaSet",
            "DaemonSet",
            "StatefulSet",
            "Job",
            "CronJob",
            "Service",
            "Secret",
            "ConfigMap",
            "Namespace",
            "Node",
            "PersistentVolume",
            "PersistentVolumeClaim",
            "Endpoints",
            "Lease",
        ];
        let shapes = [
            json!(null),
            json!([1, 2]),
            json!("pod"),
            json!({"metadata": 5, "spec": [], "status": "x"}),
            json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80}]}, "status": "x"}),
            json!({"spec": {"type": "LoadBalancer", "hostNetwork": true, "containers": [{"ports": [7]}]},
                   "status": {"loadBalancer": 5, "capacity": [1]}}),
            json!({"metadata": {"name": 5, "labels": [1], "annotations": "x", "finalizers": {"a": 1}},
                   "spec": {"containers": {"a": 1}, "template": 7, "selector": "x", "ports": [5, null],
                            "strategy": [], "updateStrategy": 1, "jobTemplate": {"spec": 3}}}),
            json!({"spec": {"containers": [null, 3, {"name": 1, "image": [], "resources": {"limits": {"cpu": {"x": 1}}},
                "ports": [{"containerPort": "80"}], "env": [{"valueFrom": 1}]}],
                "template": {"spec": {"containers": [{"resources": {"requests": "x"}}]}, "metadata": {"labels": 4}},
                "volumes": [{"name": "v", "secret": 7}], "tolerations": [1]},
                "data": {"k": 1}, "stringData": [1], "type": 3}),
        ];
        for kind in kinds {
            for shape in &shapes {
                let mut v = shape.clone();
                apply_defaults(kind, &mut v);
                let _ = validate(kind, &v, Some(shape));
                let _ = validate(kind, shape, None);
                let _ = validate_name(kind, "x/..%");
            }
        }
        for s in [
            "",
            "-",
            "+",
            ".",
            "1e99999999999999999999",
            "9".repeat(60).as_str(),
            "1Ei",
            "99999999999999Ei",
            "0.000000000000000000001",
        ] {
            if let Ok(q) = Quantity::parse(s) {
                let _ = q.canonical();
            }
        }
    }

    #[test]
    fn go_quoting_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
        assert_eq!(go_string_map(None), "map[string]string(nil)");
        let m = json!({"b": "2", "a": "1"});
        assert_eq!(
            go_string_map(m.as_object()),
            "map[string]string{\"a\":\"1\", \"b\":\"2\"}"
        );
    }
}
