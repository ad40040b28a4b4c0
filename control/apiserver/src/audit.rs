//! The audit log: one JSON line per mutating request, an `audit.k8s.io/v1` Event at the
//! Metadata level (who, what, when, from where, with what result), as kube-apiserver's
//! `--audit-log-path` writes them.
//!
//! Requests never wait for the disk: each event goes into a bounded channel that a writer
//! thread drains; when the channel is full the event is dropped and counted
//! ([`AuditLog::dropped`]). The writer starts a new file when the current one passes its size
//! limit, keeping the previous ones as `PATH.1` (newest) to `PATH.N`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::auth::Identity;
use crate::request::ResourceRequest;

/// Events that may wait for the writer before new ones are dropped.
pub const QUEUE: usize = 10_000;

/// Where and how the log is written.
#[derive(Clone, Debug)]
pub struct AuditConfig {
    /// The log file.
    pub path: PathBuf,
    /// Size past which the file is rotated (kube's `--audit-log-maxsize`, in bytes here).
    pub max_size_bytes: u64,
    /// Rotated files kept (`--audit-log-maxbackup`).
    pub max_backups: usize,
}

impl AuditConfig {
    /// A log at `path` rotated at 100 MiB, keeping 3 old files.
    pub fn at(path: PathBuf) -> AuditConfig {
        AuditConfig {
            path,
            max_size_bytes: 100 * 1024 * 1024,
            max_backups: 3,
        }
    }
}

/// The sending side of the log; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<Value>,
    dropped: Arc<AtomicU64>,
}

impl AuditLog {
    /// Opens (appends to) the log and starts its writer thread, which ends once every
    /// `AuditLog` clone is dropped and the queue is written.
    pub fn open(config: AuditConfig) -> std::io::Result<AuditLog> {
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_append(&config.path)?;
        let size = file.metadata()?.len();
        let (sender, receiver) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || write_events(config, file, size, receiver))?;
        Ok(AuditLog {
            sender,
            dropped: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues one event; drops (and counts) it when the writer is behind.
    pub fn record(&self, event: Value) {
        if self.sender.try_send(event).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

fn backup(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Renames PATH to PATH.1 (PATH.1 to PATH.2, ...), dropping the oldest, and opens a new PATH.
fn rotate(config: &AuditConfig) -> std::io::Result<File> {
    if config.max_backups == 0 {
        std::fs::remove_file(&config.path)?;
    } else {
        for n in (1..config.max_backups).rev() {
            let from = backup(&config.path, n);
            if from.exists() {
                std::fs::rename(&from, backup(&config.path, n + 1))?;
            }
        }
        std::fs::rename(&config.path, backup(&config.path, 1))?;
    }
    open_append(&config.path)
}

fn write_events(
    config: AuditConfig,
    file: File,
    mut size: u64,
    mut receiver: mpsc::Receiver<Value>,
) {
    let mut out = BufWriter::new(file);
    while let Some(event) = receiver.blocking_recv() {
        let mut pending = vec![event];
        while let Ok(more) = receiver.try_recv() {
            pending.push(more);
        }
        for event in pending {
            let mut line = event.to_string();
            line.push('\n');
            if size > 0 && size + line.len() as u64 > config.max_size_bytes {
                let _ = out.flush();
                match rotate(&config) {
                    Ok(file) => {
                        out = BufWriter::new(file);
                        size = 0;
                    }
                    Err(e) => {
                        tracing::warn!("audit log: cannot rotate {}: {e}", config.path.display())
                    }
                }
            }
            if let Err(e) = out.write_all(line.as_bytes()) {
                tracing::warn!("audit log: cannot write {}: {e}", config.path.display());
            }
            size += line.len() as u64;
        }
        // Flushed whenever the queue is empty, so a line is on disk soon after its request.
        let _ = out.flush();
    }
}

/// RFC 3339 with microseconds, as kube's audit timestamps are.
pub fn micro_timestamp(at: time::OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.microsecond()
    )
}

/// What one request was, for its event.
pub struct Request<'a> {
    /// The path and query.
    pub uri: &'a str,
    /// The routed resource request.
    pub resource: &'a ResourceRequest,
    /// Who authenticated.
    pub user: &'a Identity,
    /// Whom they impersonated, if anyone.
    pub impersonated: Option<&'a Identity>,
    /// The client's address.
    pub source_ip: Option<String>,
    /// `User-Agent`.
    pub user_agent: Option<&'a str>,
    /// When it arrived.
    pub received: time::OffsetDateTime,
}

/// The Metadata-level Event of a finished request answered with `code` (and, for a failure,
/// the Status `failure`: reason and message).
pub fn event(request: &Request<'_>, code: u16, failure: Option<(&str, &str)>) -> Value {
    let r = request.resource;
    let user = |identity: &Identity| json!({"username": identity.user, "groups": identity.groups});
    let mut object_ref =
        json!({"resource": r.resource, "apiGroup": r.group, "apiVersion": r.version});
    if let Some(ns) = &r.namespace {
        object_ref["namespace"] = json!(ns);
    }
    if let Some(name) = &r.name {
        object_ref["name"] = json!(name);
    }
    if let Some(sub) = &r.subresource {
        object_ref["subresource"] = json!(sub);
    }
    let mut status = json!({"metadata": {}, "code": code});
    if let Some((reason, message)) = failure {
        status["status"] = json!("Failure");
        status["reason"] = json!(reason);
        status["message"] = json!(message);
    }
    let mut event = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Metadata",
        "auditID": crate::object::new_uid(),
        "stage": "ResponseComplete",
        "requestURI": request.uri,
        "verb": r.verb.as_str(),
        "user": user(request.user),
        "sourceIPs": request.source_ip.iter().collect::<Vec<_>>(),
        "objectRef": object_ref,
        "responseStatus": status,
        "requestReceivedTimestamp": micro_timestamp(request.received),
        "stageTimestamp": micro_timestamp(time::OffsetDateTime::now_utc()),
    });
    if let Some(agent) = request.user_agent {
        event["userAgent"] = json!(agent);
    }
    if let Some(impersonated) = request.impersonated {
        event["impersonatedUser"] = user(impersonated);
    }
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_rotates_by_size_and_keeps_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.log");
        let log = AuditLog::open(AuditConfig {
            path: path.clone(),
            max_size_bytes: 200,
            max_backups: 2,
        })
        .unwrap();
        for i in 0..20 {
            log.record(json!({"n": i, "pad": "x".repeat(40)}));
        }
        drop(log);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let all_written = || std::fs::read_to_string(&path).is_ok_and(|t| t.contains("\"n\":19"));
        while !all_written() {
            assert!(
                std::time::Instant::now() < deadline,
                "the last event was not written"
            );
            std::thread::yield_now();
        }
        for file in [path.clone(), backup(&path, 1), backup(&path, 2)] {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(text.len() <= 200, "{}", file.display());
            for line in text.lines() {
                serde_json::from_str::<Value>(line).unwrap();
            }
        }
        assert!(!backup(&path, 3).exists());
    }

    #[test]
    fn timestamps_have_microseconds() {
        let at = time::macros::datetime!(2026-12-05 19:15:18.123456789 UTC);
        assert_eq!(micro_timestamp(at), "2026-12-05T19:15:18.123456Z");
    }
}
