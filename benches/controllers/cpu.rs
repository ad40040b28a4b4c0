//! CPU time of one thread, from /proc: the controller manager runs alone on its own thread,
//! so its CPU is that thread's.

/// The calling thread's id, from the `/proc/thread-self` link (`PID/task/TID`).
pub fn current_thread_id() -> Option<u64> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

/// CPU seconds thread `tid` of this process has used: user + system ticks from its `stat`
/// (USER_HZ, 100 on every Linux architecture keel runs on, so 10 ms steps). `schedstat`
/// would be finer, but kernels without scheduler statistics show zeros there.
pub fn thread_cpu_seconds(tid: u64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
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
