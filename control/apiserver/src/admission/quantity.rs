//! Resource quantities (apimachinery/pkg/api/resource), enough to parse, compare and print
//! them as kube does.

use serde_json::Value;
use std::cmp::Ordering;

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
pub(super) struct Quantity {
    pub(super) neg: bool,
    pub(super) mant: u128,
    pub(super) exp: i32,
    format: QFormat,
    cached: Option<String>,
}

pub(super) fn pow10(n: u32) -> Option<u128> {
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
    pub(super) fn parse(input: &str) -> Result<Quantity, &'static str> {
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
    pub(super) fn from_json(v: &Value) -> Result<Quantity, &'static str> {
        match v {
            Value::String(s) => Quantity::parse(s),
            Value::Number(n) => Quantity::parse(&n.to_string()),
            Value::Null => Quantity::parse("0"),
            _ => Err(QUANTITY_FORMAT_MSG),
        }
    }

    pub(super) fn is_zero(&self) -> bool {
        self.mant == 0
    }

    /// `SetDefaults_ResourceList`: values are rounded up to milli precision.
    pub(super) fn round_up_milli(&mut self) {
        if self.mant != 0 && self.exp < -3 {
            self.mant = div_ceil_pow10(self.mant, (-3 - self.exp) as u32);
            self.exp = -3;
            self.cached = None;
        }
    }

    pub(super) fn canonical(&self) -> String {
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

    pub(super) fn cmp(&self, other: &Quantity) -> Ordering {
        match (self.neg && !self.is_zero(), other.neg && !other.is_zero()) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.magnitude_cmp(other),
            (true, true) => other.magnitude_cmp(self),
        }
    }

    /// Sum of two non-negative quantities; `None` when it would not fit.
    pub(super) fn add(&self, other: &Quantity) -> Option<Quantity> {
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
pub(super) fn canonicalize_resource_list(list: Option<&mut Value>) {
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

pub(super) fn canonicalize_quantity(value: Option<&mut Value>) {
    if let Some(value) = value {
        if value.is_null() {
            return;
        }
        if let Ok(q) = Quantity::from_json(value) {
            *value = Value::String(q.canonical());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::fixtures::{defaulted, pod};
    use serde_json::json;

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
}
