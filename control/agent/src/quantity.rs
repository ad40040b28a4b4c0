//! Kubernetes quantities the agent reads and writes: CPU in millicores, memory and storage in
//! bytes (`128Mi`, `1G`, `500m`, `2`).

/// A quantity in thousandths (`500m` → 500, `2` → 2000, `1k` → 1,000,000), rounded up.
pub fn millis(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(number) = text.strip_suffix('m') {
        return number.parse::<u64>().ok();
    }
    let value = bytes_f64(text)?;
    Some((value * 1000.0).ceil() as u64)
}

/// A quantity as a whole number (`128Mi` → 134217728), rounded up.
pub fn bytes(text: &str) -> Option<u64> {
    let text = text.trim();
    if let Some(number) = text.strip_suffix('m') {
        return number.parse::<u64>().ok().map(|m| m.div_ceil(1000));
    }
    bytes_f64(text).map(|v| v.ceil() as u64)
}

fn bytes_f64(text: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix) {
            return number
                .parse::<f64>()
                .ok()
                .filter(|n| *n >= 0.0)
                .map(|n| n * factor);
        }
    }
    text.parse::<f64>().ok().filter(|n| *n >= 0.0)
}

/// Bytes as kube writes a node's memory: in Ki when whole kibibytes (`16384Ki`).
pub fn format_bytes(bytes: u64) -> String {
    if bytes % 1024 == 0 && bytes > 0 {
        format!("{}Ki", bytes / 1024)
    } else {
        bytes.to_string()
    }
}

/// Millicores as kube writes CPU: whole cores plainly (`2`), else `1500m`.
pub fn format_millis(millis: u64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_convert() {
        assert_eq!(millis("500m"), Some(500));
        assert_eq!(millis("2"), Some(2000));
        assert_eq!(millis("0.5"), Some(500));
        assert_eq!(bytes("128Mi"), Some(128 << 20));
        assert_eq!(bytes("1G"), Some(1_000_000_000));
        assert_eq!(bytes("-1"), None);
        assert_eq!(format_bytes(2048), "2Ki");
        assert_eq!(format_millis(1500), "1500m");
        assert_eq!(format_millis(4000), "4");
    }
}
