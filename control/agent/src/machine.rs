//! What the node is made of, read from this machine: CPUs, memory, the data dir's disk, the
//! kernel and OS, for the Node's capacity and nodeInfo. A hollow node reports a fixed
//! machine instead (as kubemark's hollow nodes do), so a thousand of them cost no reads.

use std::path::Path;

/// A machine's size and identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Machine {
    /// Millicores.
    pub cpu_millis: u64,
    /// Bytes of memory.
    pub memory_bytes: u64,
    /// Bytes of the data dir's filesystem.
    pub ephemeral_storage_bytes: u64,
    /// `/etc/os-release`'s PRETTY_NAME.
    pub os_image: String,
    /// `uname -r`.
    pub kernel_version: String,
    /// Go's architecture names (`amd64`, `arm64`), as kube reports them.
    pub architecture: String,
    /// `/etc/machine-id`.
    pub machine_id: String,
    /// `/proc/sys/kernel/random/boot_id`.
    pub boot_id: String,
}

/// Go's name for this architecture.
pub fn architecture() -> String {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
    .to_owned()
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The `MemTotal` or `MemAvailable` line of /proc/meminfo, in bytes.
pub fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| kib * 1024)
}

/// (total, available) bytes of the filesystem holding `path`.
pub fn disk(path: &Path) -> Option<(u64, u64)> {
    let stat = rustix::fs::statvfs(path).ok()?;
    Some((stat.f_blocks * stat.f_frsize, stat.f_bavail * stat.f_frsize))
}

impl Machine {
    /// This machine, its disk measured at `data_dir`.
    pub fn read(data_dir: &Path) -> Machine {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        let os_image = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|text| {
                text.lines().find_map(|line| {
                    Some(
                        line.strip_prefix("PRETTY_NAME=")?
                            .trim_matches('"')
                            .to_owned(),
                    )
                })
            })
            .unwrap_or_else(|| "Linux".to_owned());
        Machine {
            cpu_millis: cpus * 1000,
            memory_bytes: meminfo("MemTotal").unwrap_or(0),
            ephemeral_storage_bytes: disk(data_dir).map_or(0, |(total, _)| total),
            os_image,
            kernel_version: read_trimmed("/proc/sys/kernel/osrelease"),
            architecture: architecture(),
            machine_id: read_trimmed("/etc/machine-id"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
        }
    }

    /// A hollow node's machine: 4 CPUs, 32 GiB, 100 GiB of disk (kubemark's sizes).
    pub fn hollow() -> Machine {
        Machine {
            cpu_millis: 4000,
            memory_bytes: 32 << 30,
            ephemeral_storage_bytes: 100 << 30,
            os_image: "keel hollow node".to_owned(),
            kernel_version: "hollow".to_owned(),
            architecture: architecture(),
            machine_id: String::new(),
            boot_id: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_cpus_memory_and_disk() {
        let dir = tempfile::tempdir().unwrap();
        let machine = Machine::read(dir.path());
        assert!(machine.cpu_millis >= 1000);
        assert!(machine.memory_bytes > 64 << 20);
        assert!(machine.ephemeral_storage_bytes > 0);
        assert!(!machine.kernel_version.is_empty());
    }
}
