//! Resource quantities (`"500m"`, `"4Gi"`, `"1e3"`) as numbers, the way apimachinery's
//! `resource.Quantity` reads them: a decimal number with a binary (`Ki`..`Ei`), decimal
//! (`n`..`E`) or exponent (`e3`) suffix, rounded *up* when asked for a whole unit, as
//! `Quantity.Value()` and `Quantity.MilliValue()` do.
//!
//! Sums are kept in thousandths ([`milli`]) so that adding many small requests rounds once,
//! at the end, as adding `Quantity` values does in Go.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The quantity in thousandths of its unit, rounded up; `None` when it does not parse.
pub fn parse_milli(text: &str) -> Option<i128> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    // A suffix like `e-3` starts with a letter, so the split above is right for every form.
    let (number, suffix) = text.split_at(number_end);
    let (negative, digits) = match number.as_bytes().first() {
        Some(b'-') => (true, &number[1..]),
        Some(b'+') => (false, &number[1..]),
        _ => (false, number),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Past 30 significant digits the value is beyond any resource anyway; keep i128 safe.
    let fraction = &fraction[..fraction.len().min(30)];
    let mut mantissa: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(b - b'0'))?;
    }
    let (binary_exponent, decimal_exponent) = suffix_exponents(suffix)?;
    // value * 1000 = mantissa * 2^binary * 10^(decimal + 3 - fraction digits)
    let ten_power = decimal_exponent + 3 - fraction.len() as i32;
    let scaled = mantissa.checked_mul(1i128.checked_shl(binary_exponent)?);
    let magnitude = match scaled {
        None => i128::MAX,
        Some(scaled) if ten_power >= 0 => match 10i128.checked_pow(ten_power as u32) {
            Some(power) => scaled.checked_mul(power).unwrap_or(i128::MAX),
            None if scaled == 0 => 0,
            None => i128::MAX,
        },
        Some(scaled) => match 10i128.checked_pow((-ten_power) as u32) {
            // Rounded up, away from zero for positive values, towards zero for negative ones.
            Some(power) if negative => scaled / power,
            Some(power) => (scaled + power - 1) / power,
            None if scaled == 0 || negative => 0,
            None => 1,
        },
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// The powers of two and of ten a suffix stands for.
fn suffix_exponents(suffix: &str) -> Option<(u32, i32)> {
    Some(match suffix {
        "" => (0, 0),
        "Ki" => (10, 0),
        "Mi" => (20, 0),
        "Gi" => (30, 0),
        "Ti" => (40, 0),
        "Pi" => (50, 0),
        "Ei" => (60, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        _ => {
            let exponent = suffix.strip_prefix(['e', 'E'])?;
            let exponent: i32 = exponent.parse().ok()?;
            if !(-1000..=1000).contains(&exponent) {
                return None;
            }
            (0, exponent)
        }
    })
}

/// A quantity in thousandths, 0 when it does not parse (validation rejects such objects).
pub fn milli(quantity: &Quantity) -> i128 {
    parse_milli(&quantity.0).unwrap_or(0)
}

/// Thousandths to whole units, rounded up as `Quantity.Value()` rounds.
pub fn whole_units(milli: i128) -> i64 {
    let units = milli / 1000 + i128::from(milli % 1000 > 0);
    clamp(units)
}

/// An i128 into i64's range.
pub fn clamp(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_as_apimachinery_reads_them() {
        let cases: &[(&str, Option<i128>)] = &[
            ("2", Some(2000)),
            ("500m", Some(500)),
            ("0.5", Some(500)),
            ("1.5", Some(1500)),
            ("100m", Some(100)),
            ("4Gi", Some(4 * 1024 * 1024 * 1024 * 1000)),
            ("1Ki", Some(1024 * 1000)),
            ("1k", Some(1_000_000)),
            ("1M", Some(1_000_000_000)),
            ("1e3", Some(1_000_000)),
            ("1E3", Some(1_000_000)),
            ("1.5Gi", Some(1_610_612_736_000)),
            ("1n", Some(1)),
            ("1u", Some(1)),
            ("0", Some(0)),
            ("+3", Some(3000)),
            ("-1", Some(-1000)),
            (".5", Some(500)),
            ("110", Some(110_000)),
            ("", None),
            ("abc", None),
            ("1Xi", None),
            ("1.2.3", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_milli(text), *want, "{text:?}");
        }
    }

    #[test]
    fn whole_units_round_up() {
        assert_eq!(whole_units(1), 1);
        assert_eq!(whole_units(1000), 1);
        assert_eq!(whole_units(1001), 2);
        assert_eq!(whole_units(0), 0);
        assert_eq!(whole_units(i128::MAX), i64::MAX);
    }
}
