//! Resource quantities as the quota controller adds them up: exact thousandths (every
//! quantity kube stores is rounded up to milli precision) and the format of the suffix,
//! printed back in kube's canonical form (`1500m`, `2`, `1k`, `256Mi`), as Go's
//! `resource.Quantity` sums and prints them.

/// How a quantity prints: decimal suffixes (`m`, `k`, `M`), binary ones (`Ki`, `Mi`), or an
/// exponent (`e3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `m`, `k`, `M`, ...
    DecimalSi,
    /// `Ki`, `Mi`, ...
    BinarySi,
    /// `e3`, `e6`, ...
    DecimalExponent,
}

/// A quantity in thousandths of its unit.
#[derive(Clone, Copy, Debug)]
pub struct Amount {
    /// The value times 1000, rounded up.
    pub milli: i128,
    /// How it prints.
    pub format: Format,
}

impl PartialEq for Amount {
    fn eq(&self, other: &Amount) -> bool {
        self.milli == other.milli
    }
}

impl Amount {
    /// Zero, printed `0`.
    pub const ZERO: Amount = Amount {
        milli: 0,
        format: Format::DecimalSi,
    };

    /// A count of objects.
    pub fn count(n: usize) -> Amount {
        Amount {
            milli: n as i128 * 1000,
            format: Format::DecimalSi,
        }
    }

    /// Parses kube's quantity syntax; `None` when it does not parse or does not fit.
    pub fn parse(text: &str) -> Option<Amount> {
        let text = text.trim();
        let end = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
            .unwrap_or(text.len());
        let (number, suffix) = text.split_at(end);
        let (negative, digits) = match number.as_bytes().first() {
            Some(b'-') => (true, &number[1..]),
            Some(b'+') => (false, &number[1..]),
            _ => (false, number),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if (whole.is_empty() && fraction.is_empty())
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let fraction = &fraction[..fraction.len().min(30)];
        let mut mantissa: i128 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        let (binary, decimal, format) = match suffix {
            "" => (0, 0, Format::DecimalSi),
            "n" => (0, -9, Format::DecimalSi),
            "u" => (0, -6, Format::DecimalSi),
            "m" => (0, -3, Format::DecimalSi),
            "k" => (0, 3, Format::DecimalSi),
            "M" => (0, 6, Format::DecimalSi),
            "G" => (0, 9, Format::DecimalSi),
            "T" => (0, 12, Format::DecimalSi),
            "P" => (0, 15, Format::DecimalSi),
            "E" => (0, 18, Format::DecimalSi),
            "Ki" => (10, 0, Format::BinarySi),
            "Mi" => (20, 0, Format::BinarySi),
            "Gi" => (30, 0, Format::BinarySi),
            "Ti" => (40, 0, Format::BinarySi),
            "Pi" => (50, 0, Format::BinarySi),
            "Ei" => (60, 0, Format::BinarySi),
            e if e.starts_with(['e', 'E']) => (0, e[1..].parse().ok()?, Format::DecimalExponent),
            _ => return None,
        };
        let scaled = mantissa.checked_mul(1i128.checked_shl(binary)?)?;
        let power = decimal + 3 - fraction.len() as i32;
        let magnitude = if power >= 0 {
            scaled.checked_mul(10i128.checked_pow(power as u32)?)?
        } else {
            let divisor = 10i128.checked_pow((-power) as u32)?;
            (scaled + divisor - 1) / divisor
        };
        Some(Amount {
            milli: if negative { -magnitude } else { magnitude },
            format,
        })
    }

    /// The sum, in the format of the first non-zero operand, as Go's `Add` keeps it.
    pub fn plus(self, other: Amount) -> Amount {
        Amount {
            milli: self.milli.saturating_add(other.milli),
            format: if self.milli == 0 {
                other.format
            } else {
                self.format
            },
        }
    }

    /// Kube's canonical text.
    pub fn canonical(&self) -> String {
        if self.milli == 0 {
            return "0".into();
        }
        let sign = if self.milli < 0 { "-" } else { "" };
        let magnitude = self.milli.unsigned_abs();
        let binary =
            self.format == Format::BinarySi && magnitude % 1000 == 0 && magnitude / 1000 >= 1024;
        if binary {
            let mut value = magnitude / 1000;
            let mut step = 0;
            while value % 1024 == 0 && step < 6 {
                value /= 1024;
                step += 1;
            }
            let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"][step];
            return format!("{sign}{value}{suffix}");
        }
        let (mut value, mut exponent) = (magnitude, -3);
        while value % 1000 == 0 && exponent < 18 {
            value /= 1000;
            exponent += 3;
        }
        let suffix = match (self.format, exponent) {
            (Format::DecimalExponent, 0) => String::new(),
            (Format::DecimalExponent, e) => format!("e{e}"),
            (_, -3) => "m".into(),
            (_, 0) => String::new(),
            (_, 3) => "k".into(),
            (_, 6) => "M".into(),
            (_, 9) => "G".into(),
            (_, 12) => "T".into(),
            (_, 15) => "P".into(),
            (_, _) => "E".into(),
        };
        format!("{sign}{value}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(items: &[&str]) -> String {
        items
            .iter()
            .map(|t| Amount::parse(t).unwrap())
            .fold(Amount::ZERO, Amount::plus)
            .canonical()
    }

    #[test]
    fn sums_print_as_kube_prints_them() {
        assert_eq!(sum(&["100m", "200m"]), "300m");
        assert_eq!(sum(&["500m", "500m"]), "1");
        assert_eq!(sum(&["128Mi", "128Mi"]), "256Mi");
        assert_eq!(sum(&["1", "1", "1"]), "3");
        assert_eq!(sum(&["600", "400"]), "1k");
        assert_eq!(sum(&["1.5Gi"]), "1536Mi");
        assert_eq!(sum(&[]), "0");
        assert_eq!(sum(&["0.1"]), "100m");
        assert!(Amount::parse("lots").is_none());
    }
}
