//! What the process itself costs: RSS and CPU time from /proc, and unit conversions.

/// A `/proc/self/status` field in KiB (0 when unreadable): the whole process, that is the
/// three members, their API servers and this client together.
pub(crate) fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU seconds (user and system) the whole process has used, from `/proc/self/stat` (0 when
/// unreadable). Its clock ticks are USER_HZ, 100 on every Linux architecture keel runs on.
pub(crate) fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |field: usize| -> u64 {
        fields
            .get(field - 3)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (ticks(14) + ticks(15)) as f64 / 100.0
}

pub(crate) fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
