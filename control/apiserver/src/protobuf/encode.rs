//! Stored JSON to protobuf wire bytes, driven by the message table: fields in tag order,
//! JSON fields the message does not have left out (Go's structs cannot hold them either).

use base64::Engine;
use prost::encoding::{encode_key, encode_varint, WireType};
use serde_json::Value;

use super::messages::{Field, FieldType, Label, Message, Table};
use super::special::Special;

/// Appends a varint field.
pub fn put_varint(out: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(value, out);
}

/// Appends a length-delimited field.
pub fn put_bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// The wire bytes of `value` as `message`.
pub fn message(table: &Table, message: &Message, value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if let Some(special) = Special::of(&message.name) {
        special.from_json(value, &mut out)?;
        return Ok(out);
    }
    let Value::Object(object) = value else {
        return Err(format!("{}: {value} is not an object", message.name));
    };
    for field in &message.fields {
        if field.label == Label::Inline {
            // The embedded struct's fields are the parent's own JSON fields.
            put(table, field, &field.field_type, value, &mut out)?;
            continue;
        }
        let Some(value) = object.get(&field.json).filter(|v| !v.is_null()) else {
            continue;
        };
        let at = |e: String| format!("{}: {e}", field.json);
        match field.label {
            Label::Optional | Label::Inline => {
                put(table, field, &field.field_type, value, &mut out).map_err(at)?
            }
            Label::Repeated => {
                let items = value
                    .as_array()
                    .ok_or_else(|| at(format!("{value} is not a list")))?;
                for item in items {
                    put(table, field, &field.field_type, item, &mut out).map_err(at)?;
                }
            }
            Label::Map => {
                let entries = value
                    .as_object()
                    .ok_or_else(|| at(format!("{value} is not a map")))?;
                for (key, item) in entries {
                    let mut entry = Vec::new();
                    put_bytes(&mut entry, 1, key.as_bytes());
                    let value_field = Field {
                        tag: 2,
                        ..field.clone()
                    };
                    put(table, &value_field, &field.field_type, item, &mut entry).map_err(at)?;
                    put_bytes(&mut out, field.tag, &entry);
                }
            }
        }
    }
    Ok(out)
}

fn put(
    table: &Table,
    field: &Field,
    field_type: &FieldType,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let tag = field.tag;
    let wrong = || format!("{value} is not a valid {field_type:?}");
    match field_type {
        FieldType::String => put_bytes(out, tag, value.as_str().ok_or_else(wrong)?.as_bytes()),
        FieldType::Bytes => {
            let text = value.as_str().ok_or_else(wrong)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| format!("illegal base64 data: {e}"))?;
            put_bytes(out, tag, &bytes)
        }
        FieldType::Bool => put_varint(out, tag, u64::from(value.as_bool().ok_or_else(wrong)?)),
        FieldType::Int32 | FieldType::Int64 => {
            let n = value.as_i64().ok_or_else(wrong)?;
            let n = if *field_type == FieldType::Int32 {
                n as i32 as i64
            } else {
                n
            };
            put_varint(out, tag, n as u64)
        }
        FieldType::Double => {
            encode_key(tag, WireType::SixtyFourBit, out);
            out.extend_from_slice(&value.as_f64().ok_or_else(wrong)?.to_bits().to_le_bytes());
        }
        FieldType::Message(name) => {
            let inner = table
                .message(name)
                .ok_or_else(|| format!("no message {name} in the table"))?;
            put_bytes(out, tag, &message(table, inner, value)?)
        }
    }
    Ok(())
}
