//! The CRI log format, as kubelet reads it for `kubectl logs`:
//!
//! ```text
//! 2026-12-05T19:16:34.123456789Z stdout F a whole line
//! 2026-12-05T19:16:34.2Z stderr P the first 16 KiB of a longer line…
//! ```
//!
//! The container's supervisor copies both streams (so the log outlives the agent) in one
//! `poll` loop (attach.rs, which also serves attached clients): it cannot start threads, being
//! inside a pid namespace it made for its children (the kernel refuses `CLONE_THREAD` there). Each stream is cut into lines; a line longer than
//! [`MAX_LINE`] goes out in `P`artial pieces, the last piece `F`ull, as containerd does.

use std::io::Write;

/// The longest piece written as one log line (containerd's 16 KiB).
pub const MAX_LINE: usize = 16 * 1024;

/// One stream's bytes not yet written as a line.
pub(super) struct Lines {
    stream: &'static str,
    pending: Vec<u8>,
}

impl Lines {
    pub(super) fn new(stream: &'static str) -> Self {
        Lines {
            stream,
            pending: Vec::new(),
        }
    }

    pub(super) fn feed(&mut self, bytes: &[u8], log: &mut impl Write) {
        self.pending.extend_from_slice(bytes);
        loop {
            match self.pending.iter().position(|&b| b == b'\n') {
                Some(end) if end <= MAX_LINE => {
                    let line: Vec<u8> = self.pending.drain(..=end).collect();
                    emit(log, self.stream, "F", &line[..end]);
                }
                _ if self.pending.len() >= MAX_LINE => {
                    let piece: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
                    emit(log, self.stream, "P", &piece);
                }
                _ => break,
            }
        }
    }

    pub(super) fn finish(&mut self, log: &mut impl Write) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            emit(log, self.stream, "F", &rest);
        }
    }
}

fn emit(log: &mut impl Write, stream: &str, tag: &str, content: &[u8]) {
    let mut line = format!("{} {stream} {tag} ", timestamp()).into_bytes();
    line.extend_from_slice(content);
    line.push(b'\n');
    // A full disk loses log lines, never the container.
    let _ = log.write_all(&line);
}

/// Now in RFC 3339 with nanoseconds, as Go's `time.RFC3339Nano` writes it.
pub fn timestamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_full_partial_and_unterminated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = std::fs::File::create(&path).unwrap();
        let long = "x".repeat(MAX_LINE + 3);
        let input = format!("one\ntwo\n{long}\nlast");
        let mut lines = Lines::new("stdout");
        // Fed in uneven chunks, as pipes deliver.
        for chunk in input.as_bytes().chunks(5000) {
            lines.feed(chunk, &mut log);
        }
        lines.finish(&mut log);
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed: Vec<(&str, &str, &str)> = text
            .lines()
            .map(|line| {
                let mut fields = line.splitn(4, ' ');
                let time = fields.next().unwrap();
                assert!(time::OffsetDateTime::parse(
                    time,
                    &time::format_description::well_known::Rfc3339
                )
                .is_ok());
                (
                    fields.next().unwrap(),
                    fields.next().unwrap(),
                    fields.next().unwrap(),
                )
            })
            .collect();
        assert_eq!(parsed[0], ("stdout", "F", "one"));
        assert_eq!(parsed[1], ("stdout", "F", "two"));
        assert_eq!(parsed[2], ("stdout", "P", &long[..MAX_LINE]));
        assert_eq!(parsed[3], ("stdout", "F", "xxx"));
        assert_eq!(parsed[4], ("stdout", "F", "last"));
        assert_eq!(parsed.len(), 5);
    }
}
