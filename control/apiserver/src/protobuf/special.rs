//! The messages whose JSON is not an object of their fields: a quantity is a string, a time
//! an RFC 3339 string, an int-or-string either, a raw extension or FieldsV1 the embedded JSON.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

use super::decode::Wire;
use super::encode::{put_bytes, put_varint};
use super::envelope;

/// A message with its own JSON form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// `resource.Quantity`: `{string}` is `"100m"`.
    Quantity,
    /// `meta/v1 Time`: `{seconds, nanos}` is `"2006-01-02T15:04:05Z"`; zero is null.
    Time,
    /// `meta/v1 MicroTime`: as Time, with microseconds.
    MicroTime,
    /// `meta/v1 Duration`: `{duration}` nanoseconds is Go's `"1h0m0s"`.
    Duration,
    /// `intstr.IntOrString`: `{type, intVal, strVal}` is a number or a string.
    IntOrString,
    /// `runtime.RawExtension`, `meta/v1 FieldsV1`, apiextensions `JSON`: `{raw}` is the
    /// embedded JSON document.
    Raw,
    /// `ExtraValue` (a user's extra attributes, in CSRs and reviews): `{items}` is the bare
    /// array of strings.
    ExtraValue,
}

impl Special {
    /// The special form of the message named `name`, if it has one.
    pub fn of(name: &str) -> Option<Special> {
        Some(match name {
            "apimachinery.pkg.api.resource.Quantity" => Special::Quantity,
            "apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
            "apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
            "apimachinery.pkg.apis.meta.v1.Duration" => Special::Duration,
            "apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
            "apimachinery.pkg.runtime.RawExtension"
            | "apimachinery.pkg.apis.meta.v1.FieldsV1"
            | "apiextensions_apiserver.pkg.apis.apiextensions.v1.JSON" => Special::Raw,
            "api.certificates.v1.ExtraValue"
            | "api.authentication.v1.ExtraValue"
            | "api.authorization.v1.ExtraValue" => Special::ExtraValue,
            _ => return None,
        })
    }

    /// The JSON of the message's wire fields.
    pub fn to_json(self, wire: &[(u32, Wire<'_>)]) -> Result<Value, String> {
        let varint = |tag: u32| {
            wire.iter().rev().find_map(|(t, w)| match w {
                Wire::Varint(v) if *t == tag => Some(*v),
                _ => None,
            })
        };
        let bytes = |tag: u32| {
            wire.iter().rev().find_map(|(t, w)| match w {
                Wire::Bytes(b) if *t == tag => Some(*b),
                _ => None,
            })
        };
        let text = |tag: u32| -> Result<String, String> {
            let raw = bytes(tag).unwrap_or_default();
            String::from_utf8(raw.to_vec()).map_err(|_| "proto: invalid UTF-8 in a string".into())
        };
        Ok(match self {
            Special::Quantity => Value::String(text(1)?),
            Special::Time | Special::MicroTime => {
                let seconds = varint(1).unwrap_or(0) as i64;
                let nanos = varint(2).unwrap_or(0) as i64 as i32;
                if seconds == 0 && nanos == 0 {
                    return Ok(Value::Null);
                }
                Value::String(format_time(seconds, nanos, self == Special::MicroTime)?)
            }
            Special::Duration => Value::String(go_duration(varint(1).unwrap_or(0) as i64)),
            Special::IntOrString => match varint(1).unwrap_or(0) {
                1 => Value::String(text(3)?),
                _ => Value::from(varint(2).unwrap_or(0) as i64 as i32),
            },
            Special::ExtraValue => Value::Array(
                wire.iter()
                    .filter_map(|(t, w)| match w {
                        Wire::Bytes(b) if *t == 1 => Some(b),
                        _ => None,
                    })
                    .map(|b| {
                        String::from_utf8(b.to_vec())
                            .map(Value::String)
                            .map_err(|_| "proto: invalid UTF-8 in a string".to_owned())
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Special::Raw => match bytes(1) {
                None | Some([]) => Value::Null,
                Some(raw) if raw.starts_with(envelope::MAGIC) => envelope::decode_any(raw)?,
                Some(raw) => serde_json::from_slice(raw)
                    .map_err(|e| format!("the embedded object is not JSON: {e}"))?,
            },
        })
    }

    /// Writes the message's fields for `value` (its JSON form) into `out`.
    pub fn from_json(self, value: &Value, out: &mut Vec<u8>) -> Result<(), String> {
        match (self, value) {
            (Special::Quantity, Value::String(s)) => put_bytes(out, 1, s.as_bytes()),
            (Special::Quantity, Value::Number(n)) => put_bytes(out, 1, n.to_string().as_bytes()),
            (Special::Time | Special::MicroTime, Value::String(s)) => {
                let at =
                    OffsetDateTime::parse(s, &Rfc3339).map_err(|e| format!("time {s:?}: {e}"))?;
                put_varint(out, 1, at.unix_timestamp() as u64);
                if self == Special::MicroTime && at.nanosecond() != 0 {
                    put_varint(out, 2, u64::from(at.nanosecond()));
                }
            }
            (Special::Duration, Value::String(s)) => {
                let nanos =
                    parse_go_duration(s).ok_or_else(|| format!("time: invalid duration {s:?}"))?;
                put_varint(out, 1, nanos as u64);
            }
            (Special::IntOrString, Value::String(s)) => {
                put_varint(out, 1, 1);
                put_bytes(out, 3, s.as_bytes());
            }
            (Special::IntOrString, Value::Number(n)) => {
                put_varint(out, 1, 0);
                let int = n.as_i64().ok_or_else(|| format!("{n} is not an integer"))?;
                put_varint(out, 2, int as i32 as i64 as u64);
            }
            (Special::Raw, value) => put_bytes(out, 1, value.to_string().as_bytes()),
            (Special::ExtraValue, Value::Array(items)) => {
                for item in items {
                    let text = item
                        .as_str()
                        .ok_or_else(|| format!("{item} is not a string"))?;
                    put_bytes(out, 1, text.as_bytes());
                }
            }
            (_, Value::Null) => {}
            (special, other) => return Err(format!("{other} is not a valid {special:?}")),
        }
        Ok(())
    }
}

fn format_time(seconds: i64, nanos: i32, micro: bool) -> Result<String, String> {
    let at = OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|e| format!("time out of range: {e}"))?;
    let formatted = if micro {
        let at = at + time::Duration::nanoseconds(i64::from(nanos));
        at.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
        ))
    } else {
        at.format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
    };
    formatted.map_err(|e| e.to_string())
}

const UNITS: &[(&str, i64)] = &[
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("µs", 1_000),
    ("ns", 1),
];

/// Go's `time.Duration.String()`: `1h2m3.5s`, `150ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    if n < 1_000_000_000 {
        let (unit, scale) = match n {
            n if n < 1_000 => ("ns", 1),
            n if n < 1_000_000 => ("µs", 1_000),
            _ => ("ms", 1_000_000),
        };
        return format!("{sign}{}{unit}", fraction(n, scale));
    }
    let hours = n / 3_600_000_000_000;
    let minutes = n % 3_600_000_000_000 / 60_000_000_000;
    let seconds = fraction(n % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}s"),
        (0, m) => format!("{sign}{m}m{seconds}s"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}s"),
    }
}

/// `n / scale` with its fraction, trailing zeros trimmed (Go's fmtFrac).
fn fraction(n: u64, scale: u64) -> String {
    let whole = n / scale;
    let rest = n % scale;
    if rest == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{rest:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// Go's `time.ParseDuration`, for the units Kubernetes objects use.
fn parse_go_duration(text: &str) -> Option<i64> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let (unit, scale) = UNITS
            .iter()
            .filter(|(unit, _)| rest.starts_with(unit))
            .max_by_key(|(unit, _)| unit.len())?;
        total += number * *scale as f64;
        rest = &rest[unit.len()..];
    }
    let nanos = total.round() as i64;
    Some(if negative { -nanos } else { nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_and_parse_as_go_does() {
        for (nanos, text) in [
            (0, "0s"),
            (1_500_000_000, "1.5s"),
            (3_600_000_000_000, "1h0m0s"),
            (90_000_000_000, "1m30s"),
            (150_000_000, "150ms"),
            (-2_000_000_000, "-2s"),
        ] {
            assert_eq!(go_duration(nanos), text);
            assert_eq!(parse_go_duration(text), Some(nanos), "{text}");
        }
        assert_eq!(parse_go_duration("5x"), None);
    }

    #[test]
    fn times_keep_their_precision() {
        assert_eq!(
            format_time(1_700_000_000, 0, false).unwrap(),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(
            format_time(1_700_000_000, 123_456_000, true).unwrap(),
            "2023-11-14T22:13:20.123456Z"
        );
    }
}
