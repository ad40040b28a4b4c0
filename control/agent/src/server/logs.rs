//! Container logs as kubelet serves them (`GET /containerLogs/{ns}/{pod}/{container}`): the
//! runtime's CRI log file read back into the container's own output.
//!
//! ```text
//! file line:  2026-12-05T19:16:34.123456789Z stdout F hello        (log.rs in keel-runtime)
//! served:     hello\n           or, with timestamps=true:  2026-12-05T19:16:34.123456789Z hello\n
//! ```
//!
//! The options are kubelet's: `tailLines` picks the last N lines of the file first, then
//! `sinceSeconds`/`sinceTime` drop older lines, `limitBytes` cuts the output, and `follow` keeps
//! reading what the container writes until it ends or the client leaves. A `P`artial line is
//! served without its newline, so the pieces of a long line join up again.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, BufReader};

/// How often a followed log is looked at again once everything written was sent.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Where the agent writes a container's log files: one file per attempt,
/// `<data-dir>/logs/<namespace>_<pod>_<uid>/<container>/<attempt>.log` (kubelet's layout
/// under /var/log/pods).
pub fn container_log_dir(
    data_dir: &Path,
    namespace: &str,
    pod: &str,
    uid: &str,
    container: &str,
) -> PathBuf {
    data_dir
        .join("logs")
        .join(format!("{namespace}_{pod}_{uid}"))
        .join(container)
}

/// What a logs request asks for (kube's PodLogOptions).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep streaming until the container ends.
    pub follow: bool,
    /// The previous (terminated) instance's log.
    pub previous: bool,
    /// Prefix each line with its RFC 3339 time.
    pub timestamps: bool,
    /// Only the last N lines.
    pub tail_lines: Option<u64>,
    /// Only lines written at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<u64>,
}

impl LogOptions {
    /// Reads the options from a query string, with kube's validation messages.
    pub fn parse(query: &[(String, String)], now: OffsetDateTime) -> Result<LogOptions, String> {
        let mut options = LogOptions::default();
        let flag = |value: &str| matches!(value, "true" | "1" | "");
        let mut since_seconds = None;
        let mut since_time = None;
        for (key, value) in query {
            match key.as_str() {
                "follow" => options.follow = flag(value),
                "previous" => options.previous = flag(value),
                "timestamps" => options.timestamps = flag(value),
                "tailLines" => {
                    let lines: i64 = value
                        .parse()
                        .map_err(|_| format!("tailLines: {value:?} is not an integer"))?;
                    if lines < 0 {
                        return Err(
                            "tailLines: Invalid value: must be greater than or equal to 0".into(),
                        );
                    }
                    options.tail_lines = Some(lines as u64);
                }
                "limitBytes" => {
                    let bytes: i64 = value
                        .parse()
                        .map_err(|_| format!("limitBytes: {value:?} is not an integer"))?;
                    if bytes < 1 {
                        return Err("limitBytes: Invalid value: must be greater than 0".into());
                    }
                    options.limit_bytes = Some(bytes as u64);
                }
                "sinceSeconds" => {
                    let seconds: i64 = value
                        .parse()
                        .map_err(|_| format!("sinceSeconds: {value:?} is not an integer"))?;
                    if seconds < 1 {
                        return Err("sinceSeconds: Invalid value: must be greater than 0".into());
                    }
                    since_seconds = Some(seconds);
                }
                "sinceTime" => {
                    since_time =
                        Some(OffsetDateTime::parse(value, &Rfc3339).map_err(|_| {
                            format!("sinceTime: {value:?} is not an RFC 3339 time")
                        })?);
                }
                _ => {}
            }
        }
        if since_seconds.is_some() && since_time.is_some() {
            return Err("at most one of `sinceTime` or `sinceSeconds` may be specified".into());
        }
        options.since = since_time.or(since_seconds.map(|s| now - time::Duration::seconds(s)));
        Ok(options)
    }
}

/// One line of a CRI log file.
#[derive(Debug, PartialEq, Eq)]
pub struct LogLine<'a> {
    /// Its time as written.
    pub timestamp: &'a str,
    /// Its time.
    pub time: OffsetDateTime,
    /// `stdout` or `stderr`.
    pub stream: &'a str,
    /// A piece of a longer line (`P`) rather than a line's end (`F`).
    pub partial: bool,
    /// The content, without the newline.
    pub content: &'a [u8],
}

/// Parses one line of a CRI log file (without its newline); `None` for a malformed one.
pub fn parse_line(line: &[u8]) -> Option<LogLine<'_>> {
    let mut fields = line.splitn(4, |&b| b == b' ');
    let timestamp = std::str::from_utf8(fields.next()?).ok()?;
    let stream = std::str::from_utf8(fields.next()?).ok()?;
    let tag = fields.next()?;
    let content = fields.next().unwrap_or(&[]);
    let time = OffsetDateTime::parse(timestamp, &Rfc3339).ok()?;
    if !matches!(stream, "stdout" | "stderr") {
        return None;
    }
    let partial = match tag {
        b"P" => true,
        b"F" => false,
        _ => return None,
    };
    Some(LogLine {
        timestamp,
        time,
        stream,
        partial,
        content,
    })
}

/// Turns log file lines into the served text, keeping count of `limitBytes`.
pub struct Renderer {
    options: LogOptions,
    sent: u64,
}

impl Renderer {
    /// A renderer for `options`.
    pub fn new(options: LogOptions) -> Renderer {
        Renderer { options, sent: 0 }
    }

    /// Appends what `line` (a file line without its newline) serves to `out`; false once
    /// `limitBytes` is reached (nothing more may be sent).
    pub fn render(&mut self, line: &[u8], out: &mut Vec<u8>) -> bool {
        if self.done() {
            return false;
        }
        let Some(parsed) = parse_line(line) else {
            return true;
        };
        if self.options.since.is_some_and(|since| parsed.time < since) {
            return true;
        }
        let start = out.len();
        if self.options.timestamps {
            out.extend_from_slice(parsed.timestamp.as_bytes());
            out.push(b' ');
        }
        out.extend_from_slice(parsed.content);
        if !parsed.partial {
            out.push(b'\n');
        }
        let added = (out.len() - start) as u64;
        if let Some(limit) = self.options.limit_bytes {
            let room = limit - self.sent;
            if added >= room {
                out.truncate(start + room as usize);
                self.sent = limit;
                return false;
            }
        }
        self.sent += added;
        true
    }

    /// Whether `limitBytes` has been reached.
    pub fn done(&self) -> bool {
        self.options
            .limit_bytes
            .is_some_and(|limit| self.sent >= limit)
    }
}

/// The offset in `file` where its last `lines` lines start (kubelet reads backwards from the
/// end in blocks, so a tail of a large file reads little of it).
pub async fn tail_offset(file: &mut tokio::fs::File, lines: u64) -> std::io::Result<u64> {
    const BLOCK: u64 = 64 * 1024;
    let len = file.metadata().await?.len();
    if lines == 0 {
        return Ok(len);
    }
    let mut end = len;
    let mut newlines = 0u64;
    let mut block = vec![0u8; BLOCK as usize];
    // A final newline ends the last line; it does not start one more.
    let mut skip_final = true;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let size = (end - start) as usize;
        file.seek(SeekFrom::Start(start)).await?;
        file.read_exact(&mut block[..size]).await?;
        for index in (0..size).rev() {
            if block[index] != b'\n' {
                skip_final = false;
                continue;
            }
            if skip_final {
                skip_final = false;
                continue;
            }
            newlines += 1;
            if newlines == lines {
                return Ok(start + index as u64 + 1);
            }
        }
        end = start;
    }
    Ok(0)
}

/// Sends the log at `path` to `out` as `options` ask; with `follow`, keeps sending what is
/// appended while `running` says the container runs. Ends when done or when `out` is closed.
pub async fn stream(
    path: &Path,
    options: LogOptions,
    out: tokio::sync::mpsc::Sender<Vec<u8>>,
    running: impl Fn() -> futures::future::BoxFuture<'static, bool>,
) -> std::io::Result<()> {
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        // No file yet: the runtime keeps none (hollow) or the container wrote nothing.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let start = match options.tail_lines {
        Some(lines) => tail_offset(&mut file, lines).await?,
        None => 0,
    };
    file.seek(SeekFrom::Start(start)).await?;
    let follow = options.follow;
    let mut renderer = Renderer::new(options);
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    loop {
        let mut chunk = Vec::new();
        // Everything there is now, a line at a time; an unfinished last line waits for its
        // end (the writer is mid-line).
        loop {
            let read = reader.read_until(b'\n', &mut line).await?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            line.pop();
            let more = renderer.render(&line, &mut chunk);
            line.clear();
            if !more {
                break;
            }
            if chunk.len() >= 32 * 1024 && out.send(std::mem::take(&mut chunk)).await.is_err() {
                return Ok(());
            }
        }
        if !chunk.is_empty() && out.send(chunk).await.is_err() {
            return Ok(());
        }
        if !follow || renderer.done() {
            return Ok(());
        }
        // The runtime writes every line before it reports the exit, so a container seen
        // ended after the read above has nothing more to give but what is left in the file.
        if !running().await {
            let mut rest = Vec::new();
            while reader.read_until(b'\n', &mut line).await? > 0 {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                renderer.render(&line, &mut rest);
                line.clear();
            }
            if !rest.is_empty() {
                let _ = out.send(rest).await;
            }
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
            _ = out.closed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const LOG: &str = "2026-12-05T10:00:00.1Z stdout F one\n\
                       2026-12-05T10:00:01.2Z stderr F two\n\
                       2026-12-05T10:00:02.3Z stdout P thr\n\
                       2026-12-05T10:00:02.4Z stdout F ee\n\
                       garbage line\n\
                       2026-12-05T10:00:03.5Z stdout F four\n";

    fn render_all(options: LogOptions) -> String {
        let mut renderer = Renderer::new(options);
        let mut out = Vec::new();
        for line in LOG.lines() {
            if !renderer.render(line.as_bytes(), &mut out) {
                break;
            }
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_parse_and_render() {
        let line = parse_line(b"2026-12-05T10:00:00.123456789Z stderr P a b c").unwrap();
        assert_eq!(line.stream, "stderr");
        assert!(line.partial);
        assert_eq!(line.content, b"a b c");
        assert_eq!(line.time.nanosecond(), 123456789);
        assert!(parse_line(b"not a time stdout F x").is_none());
        assert!(parse_line(b"2026-12-05T10:00:00Z stdin F x").is_none());
        // An empty line is written as the tag and one space.
        assert_eq!(
            parse_line(b"2026-12-05T10:00:00Z stdout F ")
                .unwrap()
                .content,
            b""
        );
        assert_eq!(render_all(LogOptions::default()), "one\ntwo\nthree\nfour\n");
        let stamped = render_all(LogOptions {
            timestamps: true,
            ..Default::default()
        });
        assert_eq!(
            stamped.lines().next().unwrap(),
            "2026-12-05T10:00:00.1Z one"
        );
    }

    #[test]
    fn since_and_limit_bytes() {
        let since = OffsetDateTime::parse("2026-12-05T10:00:01Z", &Rfc3339).unwrap();
        let options = LogOptions {
            since: Some(since),
            ..Default::default()
        };
        assert_eq!(render_all(options), "two\nthree\nfour\n");
        let options = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(render_all(options), "one\ntw");
    }

    #[test]
    fn options_parse_with_kubes_rules() {
        let now = OffsetDateTime::parse("2026-12-05T10:00:10Z", &Rfc3339).unwrap();
        let options = LogOptions::parse(
            &query(&[
                ("follow", "true"),
                ("tailLines", "10"),
                ("timestamps", "true"),
                ("sinceSeconds", "5"),
                ("container", "main"),
            ]),
            now,
        )
        .unwrap();
        assert!(options.follow && options.timestamps && !options.previous);
        assert_eq!(options.tail_lines, Some(10));
        assert_eq!(options.since, Some(now - time::Duration::seconds(5)));
        assert!(LogOptions::parse(&query(&[("tailLines", "-1")]), now).is_err());
        assert!(LogOptions::parse(&query(&[("limitBytes", "0")]), now).is_err());
        assert!(LogOptions::parse(&query(&[("sinceTime", "yesterday")]), now).is_err());
        let both = query(&[("sinceSeconds", "1"), ("sinceTime", "2026-12-05T10:00:00Z")]);
        assert_eq!(
            LogOptions::parse(&both, now).unwrap_err(),
            "at most one of `sinceTime` or `sinceSeconds` may be specified"
        );
    }

    async fn served(contents: &str, options: LogOptions) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, contents).unwrap();
        let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
        let task = tokio::spawn(async move {
            stream(&path, options, sender, || Box::pin(async { false })).await
        });
        let mut text = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            text.extend(chunk);
        }
        task.await.unwrap().unwrap();
        String::from_utf8(text).unwrap()
    }

    #[tokio::test]
    async fn tail_reads_the_last_lines() {
        let tail = |n| LogOptions {
            tail_lines: Some(n),
            ..Default::default()
        };
        assert_eq!(served(LOG, tail(1)).await, "four\n");
        // Four file lines: the two pieces of "three", the garbage (skipped) and "four".
        assert_eq!(served(LOG, tail(4)).await, "three\nfour\n");
        assert_eq!(served(LOG, tail(0)).await, "");
        assert_eq!(served(LOG, tail(100)).await, "one\ntwo\nthree\nfour\n");
        // Past one read block, with no final newline on the last line yet.
        let many: String = (0..20_000)
            .map(|i| format!("2026-12-05T10:00:00Z stdout F line {i}\n"))
            .collect();
        assert_eq!(served(&many, tail(2)).await, "line 19998\nline 19999\n");
    }

    #[tokio::test]
    async fn follow_sends_what_is_appended_until_the_container_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, "2026-12-05T10:00:00Z stdout F first\n").unwrap();
        let running = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (sender, mut receiver) = tokio::sync::mpsc::channel(4);
        let options = LogOptions {
            follow: true,
            ..Default::default()
        };
        let task = tokio::spawn({
            let path = path.clone();
            let running = running.clone();
            async move {
                stream(&path, options, sender, move || {
                    let running = running.clone();
                    Box::pin(async move { running.load(std::sync::atomic::Ordering::SeqCst) })
                })
                .await
            }
        });
        assert_eq!(receiver.recv().await.unwrap(), b"first\n");
        use std::io::Write as _;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        // Half a line, then its end: served once whole.
        file.write_all(b"2026-12-05T10:00:01Z stdout F sec")
            .unwrap();
        file.flush().unwrap();
        file.write_all(b"ond\n").unwrap();
        assert_eq!(receiver.recv().await.unwrap(), b"second\n");
        file.write_all(b"2026-12-05T10:00:02Z stdout F last\n")
            .unwrap();
        running.store(false, std::sync::atomic::Ordering::SeqCst);
        let mut rest = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            rest.extend(chunk);
        }
        assert_eq!(rest, b"last\n");
        task.await.unwrap().unwrap();
    }
}
