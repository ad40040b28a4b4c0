//! Protobuf wire bytes to the JSON Kubernetes writes for the same object, driven by the
//! message table.
//!
//! Go writes every non-pointer field, zero or not; its JSON leaves such zeros out. So zero
//! scalars and empty lists and maps are dropped, except in fields whose zero is a value
//! ([`Field::keep_zero`](super::messages::Field)); empty messages stay (`resources: {}`), as
//! Go's JSON keeps non-pointer structs.

use base64::Engine;
use serde_json::{Map, Value};

use super::messages::{Field, FieldType, Label, Message, Table};
use super::special::Special;

/// A field as it was on the wire.
#[derive(Clone, Copy, Debug)]
pub enum Wire<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: a string, bytes, a message or a packed list.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// The fields of one message, in wire order, without interpreting them.
pub fn fields(mut buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let tag = u32::try_from(key >> 3).map_err(|_| "proto: illegal tag".to_owned())?;
        if tag == 0 {
            return Err("proto: illegal tag 0 (wire type 0)".into());
        }
        let value = match key & 7 {
            0 => Wire::Varint(varint(&mut buf)?),
            1 => Wire::Fixed64(u64::from_le_bytes(take(&mut buf, 8)?.try_into().unwrap())),
            2 => {
                let len =
                    usize::try_from(varint(&mut buf)?).map_err(|_| "proto: negative length")?;
                Wire::Bytes(take(&mut buf, len)?)
            }
            5 => Wire::Fixed32(u32::from_le_bytes(take(&mut buf, 4)?.try_into().unwrap())),
            other => return Err(format!("proto: illegal wireType {other}")),
        };
        out.push((tag, value));
    }
    Ok(out)
}

fn varint(buf: &mut &[u8]) -> Result<u64, String> {
    prost::encoding::decode_varint(buf).map_err(|_| "unexpected EOF".to_owned())
}

fn take<'a>(buf: &mut &'a [u8], len: usize) -> Result<&'a [u8], String> {
    if buf.len() < len {
        return Err("unexpected EOF".into());
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

/// The JSON of `message` from its wire bytes.
pub fn message(table: &Table, message: &Message, bytes: &[u8]) -> Result<Value, String> {
    let wire = fields(bytes)?;
    if let Some(special) = Special::of(&message.name) {
        return special.to_json(&wire);
    }
    let mut object = Map::new();
    for (tag, value) in wire {
        // Fields this table does not know (newer than it) are skipped, as Go's decoder does.
        let Some(field) = message.by_tag(tag) else {
            continue;
        };
        let name = || format!("{}.{}", message.name, field.json);
        match field.label {
            Label::Optional => {
                let decoded =
                    single(table, field, value).map_err(|e| format!("{}: {e}", name()))?;
                object.insert(field.json.clone(), decoded);
            }
            Label::Repeated => {
                let list = object
                    .entry(field.json.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                let list = list.as_array_mut().expect("a list field holds a list");
                repeated(table, field, value, list).map_err(|e| format!("{}: {e}", name()))?;
            }
            Label::Inline => {
                let Value::Object(fields) =
                    single(table, field, value).map_err(|e| format!("{}: {e}", name()))?
                else {
                    return Err(format!("{}: an inline field is not an object", name()));
                };
                object.extend(fields);
            }
            Label::Map => {
                let map = object
                    .entry(field.json.clone())
                    .or_insert_with(|| Value::Object(Map::new()));
                let map = map.as_object_mut().expect("a map field holds a map");
                let (key, entry) =
                    map_entry(table, field, value).map_err(|e| format!("{}: {e}", name()))?;
                map.insert(key, entry);
            }
        }
    }
    object.retain(|json, value| {
        let field = message.fields.iter().find(|f| &f.json == json);
        // A message on the wire is a pointer that is set or a struct Go's JSON always writes
        // (an int-or-string `0` included); only a zero time (null) is left out.
        let kept =
            field.is_some_and(|f| f.keep_zero || matches!(f.field_type, FieldType::Message(_)));
        !is_omitted(value, kept)
    });
    Ok(Value::Object(object))
}

/// Whether Go's JSON leaves `value` out: null, and zero scalars or empty lists and maps
/// unless the field keeps its zero.
fn is_omitted(value: &Value, keep_zero: bool) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.is_empty(),
        Value::Object(_) => false,
        // Empty strings are dropped even from pointers: no served kind tells "" from unset.
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b && !keep_zero,
        Value::Number(n) => n.as_f64() == Some(0.0) && !keep_zero,
    }
}

fn single(table: &Table, field: &Field, value: Wire<'_>) -> Result<Value, String> {
    scalar(table, &field.field_type, value)
}

fn scalar(table: &Table, field_type: &FieldType, value: Wire<'_>) -> Result<Value, String> {
    let wrong = || format!("proto: wrong wireType for a {field_type:?} field");
    Ok(match (field_type, value) {
        (FieldType::String, Wire::Bytes(b)) => Value::String(
            std::str::from_utf8(b)
                .map_err(|_| "proto: invalid UTF-8 in a string".to_owned())?
                .to_owned(),
        ),
        (FieldType::Bytes, Wire::Bytes(b)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        (FieldType::Bool, Wire::Varint(v)) => Value::Bool(v != 0),
        // int32 is sign-extended to 64 bits on the wire.
        (FieldType::Int32, Wire::Varint(v)) => Value::from(v as i64 as i32),
        (FieldType::Int64, Wire::Varint(v)) => Value::from(v as i64),
        (FieldType::Double, Wire::Fixed64(v)) => Value::from(f64::from_bits(v)),
        (FieldType::Message(name), Wire::Bytes(b)) => {
            let inner = table
                .message(name)
                .ok_or_else(|| format!("no message {name} in the table"))?;
            message(table, inner, b)?
        }
        _ => return Err(wrong()),
    })
}

fn repeated(
    table: &Table,
    field: &Field,
    value: Wire<'_>,
    list: &mut Vec<Value>,
) -> Result<(), String> {
    match (&field.field_type, value) {
        // Numbers may come packed: one length-delimited run of varints.
        (FieldType::Int32 | FieldType::Int64 | FieldType::Bool, Wire::Bytes(mut packed)) => {
            while !packed.is_empty() {
                let v = varint(&mut packed)?;
                list.push(scalar(table, &field.field_type, Wire::Varint(v))?);
            }
        }
        (field_type, value) => list.push(scalar(table, field_type, value)?),
    }
    Ok(())
}

fn map_entry(table: &Table, field: &Field, value: Wire<'_>) -> Result<(String, Value), String> {
    let Wire::Bytes(entry) = value else {
        return Err("proto: a map entry is not length-delimited".into());
    };
    let mut key = String::new();
    let mut decoded = None;
    for (tag, part) in fields(entry)? {
        match (tag, part) {
            (1, Wire::Bytes(k)) => {
                key = std::str::from_utf8(k)
                    .map_err(|_| "proto: invalid UTF-8 in a map key".to_owned())?
                    .to_owned()
            }
            (2, part) => decoded = Some(scalar(table, &field.field_type, part)?),
            _ => {}
        }
    }
    // A missing value is the type's zero, as in Go.
    let zero = match &field.field_type {
        FieldType::Message(name) => match Special::of(name) {
            Some(special) => special.to_json(&[])?,
            None => Value::Object(Map::new()),
        },
        FieldType::Bytes | FieldType::String => Value::String(String::new()),
        _ => Value::from(0),
    };
    Ok((key, decoded.unwrap_or(zero)))
}
