//! Accepts the HTTP/2 `:authority` etcdctl 3.4 sends, which h2 would refuse.
//!
//! etcdctl 3.4's per-endpoint calls (`endpoint status`, `endpoint hashkv`, `move-leader`)
//! dial each endpoint as given, so with `--endpoints http://127.0.0.1:2379` its gRPC client
//! sends the whole URL, `http://127.0.0.1:2379`, as the request's `:authority`. etcd (grpc-go)
//! ignores it; h2, under hyper and tonic, finds it is no URI authority and resets the stream
//! with PROTOCOL_ERROR before keel sees the request, and h2 has no option to be lenient.
//!
//! So the client port reads its connections through [`AuthorityFix`], an I/O wrapper between
//! the socket (or TLS stream) and hyper:
//!
//! ```text
//!   client bytes ──► AuthorityFix ──► hyper / h2 ──► tonic, warp
//!                    │ not HTTP/2 (no preface): passed on untouched
//!                    │ frames other than HEADERS/CONTINUATION: passed on untouched
//!                    └ header blocks: HPACK-decoded (h2's own codec) to keep the client's
//!                      compression table; passed on as they came, until one carries an
//!                      authority h2 would refuse. From then on that connection's header
//!                      blocks are re-encoded (h2's encoder, its table cleared first), with
//!                      the authority cut to what a URI authority allows.
//! ```
//!
//! Writes go straight to the socket. A connection whose first request carries a well-formed
//! authority is passed through untouched from then on (a client keeps one authority per
//! connection), so what the wrapper costs a well-formed gRPC client is one HPACK decode per
//! connection. Measured on a quiet machine with `keel bench --protocol grpc` (one release
//! binary, two `serve --single` members side by side, one with `KEEL_H2_AUTHORITY_FIX=off`,
//! alternating rounds, 64 clients on 8 connections): scanning every header block cost about
//! 10% of serializable range throughput and 13% more server CPU per range (medians of six
//! rounds, 0.90x and 1.13x); passed through after the first request, 1.02x and 1.01x: no
//! cost beyond the rounds' spread. Puts were level both times.
//!
//! h2's frame codec is reached through its `unstable` feature, pinned to one h2 version in
//! the workspace's Cargo.toml for that reason.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, BytesMut};
use futures::{FutureExt, StreamExt};
use h2::frame::{BytesStr, Frame, Headers, Kind, Pseudo};
use hyper::http::uri::{Authority, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Set to `off` to serve connections without the wrapper: an escape hatch, and how the
/// benchmark compares both in one binary.
pub const DISABLE_ENV: &str = "KEEL_H2_AUTHORITY_FIX";

/// Whether connections are read through [`AuthorityFix`] (unless [`DISABLE_ENV`] is `off`);
/// read once per process.
pub fn enabled() -> bool {
    static ENABLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var(DISABLE_ENV).map_or(true, |v| v != "off"))
}

/// HTTP/2's connection preface (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// A frame header's length.
const FRAME_HEADER: usize = 9;
/// The END_HEADERS flag of HEADERS and CONTINUATION.
const END_HEADERS: u8 = 0x4;
/// The largest frame length HTTP/2 allows; h2 enforces its own, smaller, limit after us.
const MAX_FRAME: usize = (1 << 24) - 1;
/// How much is read from the socket at a time when the wrapper buffers.
const READ_CHUNK: usize = 16 * 1024;

/// What the connection has shown itself to be so far.
#[derive(Debug, PartialEq, Eq)]
enum Mode {
    /// Fewer bytes than the preface have arrived, all matching it.
    Detecting,
    /// Not HTTP/2 with prior knowledge, or HTTP/2 whose first request had a well-formed
    /// authority: every byte goes through as is.
    Passthrough,
    /// HTTP/2: frames are scanned.
    Http2,
}

/// A connection's reading side with etcdctl's `:authority` made acceptable to h2.
pub struct AuthorityFix<I> {
    io: I,
    mode: Mode,
    /// Read but not yet scanned; always starts at a frame boundary in [`Mode::Http2`].
    stash: BytesMut,
    /// Scanned, for hyper to read.
    ready: BytesMut,
    /// Bytes of the current non-header frame's payload still to pass on unscanned.
    skip: usize,
    /// Decodes the client's header blocks, keeping its HPACK table.
    decoder: h2::Codec<Memory, bytes::Bytes>,
    /// Re-encodes them once the connection needed a fix (see the module doc).
    encoder: Option<h2::Codec<Memory, bytes::Bytes>>,
    eof: bool,
}

impl<I> AuthorityFix<I> {
    /// Wraps `io`.
    pub fn new(io: I) -> Self {
        let mut decoder = h2::Codec::with_max_recv_frame_size(Memory::default(), MAX_FRAME);
        // h2 itself bounds header lists after us; the decoder must not cut them first.
        decoder.set_max_recv_header_list_size(1 << 30);
        AuthorityFix {
            io,
            mode: Mode::Detecting,
            stash: BytesMut::new(),
            ready: BytesMut::new(),
            skip: 0,
            decoder,
            encoder: None,
            eof: false,
        }
    }

    /// Scans what is stashed, moving what can go on into `ready`; stops where more bytes are
    /// needed. Errors end the connection.
    fn scan(&mut self) -> io::Result<()> {
        loop {
            match self.mode {
                Mode::Passthrough => {
                    let all = self.stash.split();
                    self.ready.unsplit(all);
                    return Ok(());
                }
                Mode::Detecting => {
                    let n = self.stash.len().min(PREFACE.len());
                    if self.stash[..n] != PREFACE[..n] {
                        self.mode = Mode::Passthrough;
                    } else if n == PREFACE.len() {
                        let preface = self.stash.split_to(n);
                        self.ready.unsplit(preface);
                        self.mode = Mode::Http2;
                    } else {
                        return Ok(());
                    }
                }
                Mode::Http2 => {
                    if self.skip > 0 {
                        let n = self.skip.min(self.stash.len());
                        let payload = self.stash.split_to(n);
                        self.ready.unsplit(payload);
                        self.skip -= n;
                        if self.skip > 0 {
                            return Ok(());
                        }
                    }
                    let Some(frame) = frame_header(&self.stash) else {
                        return Ok(());
                    };
                    if !is_header_block(frame.kind) {
                        let header = self.stash.split_to(FRAME_HEADER);
                        self.ready.unsplit(header);
                        self.skip = frame.length;
                        continue;
                    }
                    let Some(block_len) = header_block_len(&self.stash) else {
                        return Ok(());
                    };
                    let block = self.stash.split_to(block_len);
                    let out = self.header_block(block)?;
                    self.ready.unsplit(out);
                }
            }
        }
    }

    /// One HEADERS frame and its CONTINUATION frames: decoded, and passed on as they came or
    /// re-encoded.
    fn header_block(&mut self, raw: BytesMut) -> io::Result<BytesMut> {
        self.decoder.get_mut().input.put_slice(&raw);
        let decoded = match self.decoder.next().now_or_never() {
            Some(Some(decoded)) => decoded,
            _ => return Err(broken("a complete header block did not decode")),
        };
        let headers = match decoded {
            Ok(Frame::Headers(headers)) => headers,
            // A stream error (a malformed field): h2 answers it with a reset. As they came,
            // the bytes make it do so; re-encoded, a request without a method does.
            Err(h2::proto::Error::Reset(stream, ..)) => {
                return match self.encoder.as_mut() {
                    None => Ok(raw),
                    Some(encoder) => encode(
                        encoder,
                        Headers::new(stream, Pseudo::default(), Default::default()),
                    ),
                };
            }
            // Anything else (an HPACK error, a header block h2 refuses outright): as they
            // came, h2 fails the connection just the same.
            Ok(_) | Err(_) if self.encoder.is_none() => return Ok(raw),
            Ok(_) | Err(_) => return Err(broken("undecodable header block")),
        };
        let mut headers = headers;
        let needs_fix = headers
            .pseudo_mut()
            .authority
            .as_ref()
            .is_some_and(|authority| !is_authority(authority.as_ref()));
        if needs_fix && self.encoder.is_none() {
            let mut encoder = h2::Codec::new(Memory::default());
            // h2's table holds what the client's blocks put there; empty it before the first
            // re-encoded block, so the encoder's table and h2's agree from then on.
            encoder.set_send_header_table_size(0);
            encoder.set_send_header_table_size(DEFAULT_HEADER_TABLE_SIZE);
            self.encoder = Some(encoder);
        }
        let Some(encoder) = self.encoder.as_mut() else {
            // A well-formed authority on a connection never fixed: a client keeps one
            // authority per connection (gRPC's per channel), so the rest of it goes through
            // untouched, unscanned, at no cost.
            if headers.pseudo_mut().authority.is_some() {
                self.mode = Mode::Passthrough;
            }
            return Ok(raw);
        };
        if needs_fix {
            let authority = headers.pseudo_mut().authority.take();
            headers.pseudo_mut().authority = authority.and_then(|a| fixed(a.as_ref()));
        }
        encode(encoder, headers)
    }
}

/// HPACK's default table size (RFC 7541), which h2 keeps unless told otherwise.
const DEFAULT_HEADER_TABLE_SIZE: usize = 4096;

/// `headers` as HEADERS (and CONTINUATION) frames from `encoder`.
fn encode(encoder: &mut h2::Codec<Memory, bytes::Bytes>, headers: Headers) -> io::Result<BytesMut> {
    let mut headers = headers;
    headers.set_end_headers();
    encoder
        .buffer(Frame::Headers(headers))
        .map_err(|e| broken(&format!("cannot re-encode a header block: {e:?}")))?;
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    match encoder.flush(&mut cx) {
        Poll::Ready(Ok(())) => Ok(encoder.get_mut().output.split()),
        Poll::Ready(Err(e)) => Err(e),
        Poll::Pending => Err(broken("an in-memory flush did not finish")),
    }
}

/// Whether h2 accepts `value` as a request's `:authority`.
fn is_authority(value: &[u8]) -> bool {
    Authority::try_from(value).is_ok()
}

/// The authority inside a URL such as `http://127.0.0.1:2379` (etcdctl's), or none, which h2
/// accepts too (the authority is optional in HTTP/2).
fn fixed(value: &[u8]) -> Option<BytesStr> {
    let uri = Uri::try_from(value).ok()?;
    let authority = uri.authority()?;
    BytesStr::try_from(bytes::Bytes::copy_from_slice(authority.as_str().as_bytes())).ok()
}

fn broken(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("HTTP/2 framing: {why}"))
}

/// A frame header's fields this module needs.
struct FrameHeader {
    length: usize,
    kind: u8,
    flags: u8,
}

/// The frame header at the start of `bytes`, if it has arrived.
fn frame_header(bytes: &[u8]) -> Option<FrameHeader> {
    let header = bytes.get(..FRAME_HEADER)?;
    Some(FrameHeader {
        length: usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]),
        kind: header[3],
        flags: header[4],
    })
}

fn is_header_block(kind: u8) -> bool {
    kind == Kind::Headers as u8 || kind == Kind::Continuation as u8
}

/// The length of the header block (a HEADERS frame and the CONTINUATION frames up to the one
/// with END_HEADERS) at the start of `bytes`, once all of it has arrived.
fn header_block_len(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let frame = frame_header(&bytes[at..])?;
        let end = at + FRAME_HEADER + frame.length;
        if bytes.len() < end {
            return None;
        }
        at = end;
        // A frame of another kind inside the block is the codec's error to report.
        if frame.flags & END_HEADERS != 0 || !is_header_block(frame.kind) {
            return Some(at);
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for AuthorityFix<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.stash.is_empty() && this.mode == Mode::Passthrough {
                // Not HTTP/2: hyper reads the socket as if the wrapper were not there.
                return Pin::new(&mut this.io).poll_read(cx, buf);
            }
            if this.stash.is_empty() && this.mode == Mode::Http2 && this.skip > 0 {
                // Inside a frame's payload: read it straight into hyper's buffer, no further
                // than the payload's end. Initialised first (once per buffer) so the read
                // needs no unsafe hand-over.
                let limit = this.skip.min(buf.remaining());
                let mut limited = ReadBuf::new(buf.initialize_unfilled_to(limit));
                std::task::ready!(Pin::new(&mut this.io).poll_read(cx, &mut limited))?;
                let n = limited.filled().len();
                this.skip -= n;
                buf.advance(n);
                if n == 0 {
                    this.eof = true;
                }
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            std::task::ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                // The peer is gone mid-frame: hand h2 what there is, it reports the rest.
                this.eof = true;
                let rest = this.stash.split();
                this.ready.unsplit(rest);
                continue;
            }
            this.stash.extend_from_slice(read.filled());
            this.scan()?;
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for AuthorityFix<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The in-memory connection h2's codecs run on: the decoder reads `input`, the encoder
/// writes `output`.
#[derive(Default)]
struct Memory {
    input: BytesMut,
    output: BytesMut,
}

impl AsyncRead for Memory {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.input.is_empty() {
            // Only polled once a whole header block is in: never woken, never needed.
            return Poll::Pending;
        }
        let n = this.input.len().min(buf.remaining());
        buf.put_slice(&this.input[..n]);
        this.input.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Memory {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().output.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use h2::frame::{Data, Settings, StreamId};
    use hyper::http::{HeaderMap, HeaderValue, Method};
    use tokio::io::AsyncReadExt;

    /// A client's bytes, from h2's own encoder (as a client would compress them).
    struct Client(h2::Codec<Memory, Bytes>);

    impl Client {
        fn new() -> Client {
            Client(h2::Codec::new(Memory::default()))
        }

        fn send(&mut self, frame: Frame<Bytes>) -> Vec<u8> {
            self.0.buffer(frame).unwrap();
            let waker = futures::task::noop_waker();
            let mut cx = Context::from_waker(&waker);
            assert!(self.0.flush(&mut cx).is_ready());
            self.0.get_mut().output.split().to_vec()
        }

        fn request(&mut self, stream: u32, authority: &str, header: &str) -> Vec<u8> {
            let pseudo = Pseudo {
                method: Some(Method::POST),
                scheme: Some(BytesStr::try_from(Bytes::from_static(b"http")).unwrap()),
                authority: Some(BytesStr::try_from(Bytes::from(authority.to_owned())).unwrap()),
                path: Some(
                    BytesStr::try_from(Bytes::from_static(b"/etcdserverpb.Maintenance/Status"))
                        .unwrap(),
                ),
                ..Default::default()
            };
            let mut fields = HeaderMap::new();
            fields.insert("content-type", HeaderValue::from_static("application/grpc"));
            fields.insert("x-test", HeaderValue::from_str(header).unwrap());
            self.send(Frame::Headers(Headers::new(
                StreamId::from(stream),
                pseudo,
                fields,
            )))
        }
    }

    /// A reader that hands out `step` bytes at a time, as a slow socket would.
    struct Trickle {
        bytes: Vec<u8>,
        step: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let this = self.get_mut();
            let n = this.step.min(this.bytes.len()).min(buf.remaining());
            buf.put_slice(&this.bytes[..n]);
            this.bytes.drain(..n);
            Poll::Ready(Ok(()))
        }
    }

    async fn through_fix(bytes: &[u8], step: usize) -> Vec<u8> {
        let mut fix = AuthorityFix::new(Trickle {
            bytes: bytes.to_vec(),
            step,
        });
        let mut out = Vec::new();
        fix.read_to_end(&mut out).await.unwrap();
        out
    }

    /// What a server decodes from `bytes` (after the preface): each request's stream,
    /// authority and `x-test` header, and each DATA frame's payload.
    fn decode(bytes: &[u8]) -> Vec<String> {
        assert_eq!(&bytes[..PREFACE.len()], PREFACE);
        let mut server: h2::Codec<Memory, Bytes> = h2::Codec::new(Memory::default());
        server
            .get_mut()
            .input
            .extend_from_slice(&bytes[PREFACE.len()..]);
        let mut seen = Vec::new();
        while let Some(Some(frame)) = server.next().now_or_never() {
            match frame.expect("the server decodes every frame") {
                Frame::Headers(mut headers) => {
                    let stream = u32::from(headers.stream_id());
                    let authority = headers
                        .pseudo_mut()
                        .authority
                        .as_ref()
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    let test = headers.fields()["x-test"].to_str().unwrap().to_owned();
                    seen.push(format!("{stream} {authority} {test}"));
                }
                Frame::Data(data) => {
                    seen.push(format!("data {:?}", data.payload()));
                }
                _ => {}
            }
        }
        seen
    }

    fn connection(requests: &[(u32, &str, &str)]) -> Vec<u8> {
        let mut client = Client::new();
        let mut bytes = PREFACE.to_vec();
        bytes.extend(client.send(Frame::Settings(Settings::default())));
        for &(stream, authority, header) in requests {
            bytes.extend(client.request(stream, authority, header));
            bytes.extend(client.send(Frame::Data(Data::new(
                StreamId::from(stream),
                Bytes::from(format!("body {stream}")),
            ))));
        }
        bytes
    }

    #[tokio::test]
    async fn http1_goes_through_untouched() {
        let request = b"POST /v3/kv/range HTTP/1.1\r\nhost: x\r\n\r\n{}".to_vec();
        assert_eq!(through_fix(&request, 4096).await, request);
        assert_eq!(through_fix(&request, 1).await, request);
        // Shorter than the preface, and a prefix of it: still passed on at the end.
        assert_eq!(through_fix(b"PRI * HT", 3).await, b"PRI * HT");
    }

    #[tokio::test]
    async fn well_formed_http2_goes_through_byte_for_byte() {
        let bytes = connection(&[(1, "127.0.0.1:2379", "one"), (3, "127.0.0.1:2379", "one")]);
        // After a well-formed first authority the connection is passed through unscanned: a
        // URL later on it (no client sends one) is left for h2 to refuse.
        let mixed = connection(&[(1, "127.0.0.1:2379", "one"), (3, "http://x:1", "two")]);
        assert_eq!(through_fix(&mixed, 4096).await, mixed);
        for step in [1, 7, 4096] {
            assert_eq!(through_fix(&bytes, step).await, bytes, "step {step}");
        }
    }

    #[tokio::test]
    async fn a_url_authority_is_cut_and_later_requests_still_decode() {
        // etcdctl's URL arrives in the first request and fills both HPACK tables; the later
        // requests repeat fields the client's encoder now sends as table indexes, and are
        // re-encoded whatever their authority.
        let bytes = connection(&[
            (1, "http://127.0.0.1:2379", "two"),
            (3, "localhost:2379", "one"),
            (5, "http://127.0.0.1:2379", "two"),
            (7, "localhost:2379", "one"),
        ]);
        let expected = vec![
            "1 127.0.0.1:2379 two",
            "data b\"body 1\"",
            "3 localhost:2379 one",
            "data b\"body 3\"",
            "5 127.0.0.1:2379 two",
            "data b\"body 5\"",
            "7 localhost:2379 one",
            "data b\"body 7\"",
        ];
        // Unfixed, h2's decoder sees the URL (which its server refuses).
        assert_eq!(decode(&bytes)[0], "1 http://127.0.0.1:2379 two");
        for step in [1, 5, 4096] {
            assert_eq!(
                decode(&through_fix(&bytes, step).await),
                expected,
                "step {step}"
            );
        }
    }

    #[test]
    fn authorities_h2_refuses_are_cut_to_their_host_and_port() {
        assert!(is_authority(b"127.0.0.1:2379"));
        assert!(!is_authority(b"http://127.0.0.1:2379"));
        assert!(!is_authority(b"/var/run/etcd.sock"));
        let cut = |value: &[u8]| fixed(value).map(|a| a.to_string());
        assert_eq!(
            cut(b"http://127.0.0.1:2379").as_deref(),
            Some("127.0.0.1:2379")
        );
        assert_eq!(cut(b"https://[::1]:2379/").as_deref(), Some("[::1]:2379"));
        assert_eq!(cut(b"/var/run/etcd.sock"), None);
    }
}
