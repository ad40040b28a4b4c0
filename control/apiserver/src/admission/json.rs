//! Reading and writing objects leniently: a field of the wrong JSON type reads as absent, and
//! null is absent, the way Go's decoder sees it. Comparison is semantic, as apimachinery's
//! `Semantic.DeepEqual` sees decoded Go structs: an absent field, null and the zero value are
//! all the same thing.

use serde_json::{json, Value};

use super::Obj;

pub(super) fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn opt_text<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

pub(super) fn int(v: &Value, k: &str) -> Option<i64> {
    let n = v.get(k)?;
    n.as_i64().or_else(|| {
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e18)
            .map(|f| f as i64)
    })
}

pub(super) fn flag(v: &Value, k: &str) -> bool {
    v.get(k).and_then(Value::as_bool).unwrap_or(false)
}

pub(super) fn list<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

pub(super) fn map<'a>(v: &'a Value, k: &str) -> Option<&'a Obj> {
    v.get(k).and_then(Value::as_object)
}

pub(super) fn present(v: &Value, k: &str) -> bool {
    v.get(k).is_some_and(|x| !x.is_null())
}

/// The object under `k`, created when absent or null; `None` if something else is there.
pub(super) fn entry_obj<'a>(m: &'a mut Obj, k: &str) -> Option<&'a mut Obj> {
    let slot = m.entry(k.to_owned()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = json!({});
    }
    slot.as_object_mut()
}

pub(super) fn obj_mut<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Obj> {
    entry_obj(v.as_object_mut()?, k)
}

/// Sets `k` unless it already holds something; Go's decoder treats null as absent.
pub(super) fn default_field(v: &mut Value, k: &str, value: Value) {
    if let Some(m) = v.as_object_mut() {
        let slot = m.entry(k.to_owned()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = value;
        }
    }
}

pub(super) fn is_blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

pub(super) fn each_mut(v: &mut Value, k: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(items) = v.get_mut(k).and_then(Value::as_array_mut) {
        items.iter_mut().for_each(&mut f);
    }
}

pub(super) fn sorted_entries(m: Option<&Obj>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = m.into_iter().flatten().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

pub(super) fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

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

pub(super) fn sem_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
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
