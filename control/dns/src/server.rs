//! DNS over UDP and TCP: each query decoded with hickory-proto, resolved, and answered; names
//! outside the cluster domain go to a [`Forwarder`] when one is set (none is: there is no
//! upstream here) and are REFUSED otherwise.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::serialize::binary::BinDecodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::records::{Resolution, Resolver};

/// Where names outside the cluster domain go: an upstream resolver's answer, or `None` to
/// refuse. keel ships none (no internet in its test environments); the hook is for one.
pub trait Forwarder: Send + Sync {
    /// The answer to `query`, or `None`.
    fn forward(&self, query: Message) -> BoxFuture<'_, Option<Message>>;
}

/// The largest UDP answer without EDNS (RFC 1035).
const PLAIN_UDP_LIMIT: usize = 512;

/// Answers queries from the resolver.
#[derive(Clone)]
pub struct DnsServer {
    /// The resolver.
    pub resolver: Resolver,
    /// Names outside the domain.
    pub forwarder: Option<Arc<dyn Forwarder>>,
}

fn reply_to(query: &Message, code: ResponseCode) -> Message {
    let mut reply = Message::new();
    reply
        .set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(false)
        .set_response_code(code);
    reply.add_queries(query.queries().iter().cloned());
    reply
}

impl DnsServer {
    /// The answer to one message, `None` for bytes that are not even a DNS header.
    pub async fn answer(&self, bytes: &[u8]) -> Option<Message> {
        let query = match Message::from_bytes(bytes) {
            Ok(query) => query,
            Err(_) if bytes.len() >= 12 => {
                let mut reply = Message::new();
                reply
                    .set_id(u16::from_be_bytes([bytes[0], bytes[1]]))
                    .set_message_type(MessageType::Response)
                    .set_response_code(ResponseCode::FormErr);
                return Some(reply);
            }
            Err(_) => return None,
        };
        if query.message_type() != MessageType::Query {
            return None;
        }
        if query.op_code() != OpCode::Query {
            return Some(reply_to(&query, ResponseCode::NotImp));
        }
        let [question] = query.queries() else {
            return Some(reply_to(&query, ResponseCode::FormErr));
        };
        match self
            .resolver
            .resolve(question.name(), question.query_type())
        {
            Resolution::Answer {
                code,
                answers,
                additionals,
            } => {
                let mut reply = reply_to(&query, code);
                reply.set_authoritative(true);
                reply.add_answers(answers);
                reply.add_additionals(additionals);
                Some(reply)
            }
            Resolution::NotOurs => match &self.forwarder {
                Some(forwarder) => Some(
                    forwarder
                        .forward(query.clone())
                        .await
                        .unwrap_or_else(|| reply_to(&query, ResponseCode::ServFail)),
                ),
                None => Some(reply_to(&query, ResponseCode::Refused)),
            },
        }
    }

    /// The bytes of the answer to a UDP query: truncated (TC set, no records) past 512 bytes
    /// or the client's EDNS payload size, so it retries over TCP.
    async fn udp_answer(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let reply = self.answer(bytes).await?;
        let limit = Message::from_bytes(bytes)
            .ok()
            .and_then(|q| {
                q.extensions()
                    .as_ref()
                    .map(|e| usize::from(e.max_payload()))
            })
            .unwrap_or(PLAIN_UDP_LIMIT)
            .max(PLAIN_UDP_LIMIT);
        let encoded = reply.to_vec().ok()?;
        if encoded.len() <= limit {
            return Some(encoded);
        }
        let mut truncated = reply_to(&reply, reply.response_code());
        truncated
            .set_message_type(MessageType::Response)
            .set_authoritative(reply.authoritative())
            .set_truncated(true);
        truncated.to_vec().ok()
    }

    /// Serves UDP queries on `socket` until the task is dropped.
    pub async fn serve_udp(self, socket: UdpSocket) {
        let socket = Arc::new(socket);
        let mut buffer = vec![0u8; 4096];
        loop {
            let (len, peer) = match socket.recv_from(&mut buffer).await {
                Ok(got) => got,
                Err(e) => {
                    tracing::debug!("dns udp receive: {e}");
                    continue;
                }
            };
            let query = buffer[..len].to_vec();
            let (server, socket) = (self.clone(), Arc::clone(&socket));
            tokio::spawn(async move {
                if let Some(reply) = server.udp_answer(&query).await {
                    if let Err(e) = socket.send_to(&reply, peer).await {
                        tracing::debug!(%peer, "dns udp send: {e}");
                    }
                }
            });
        }
    }

    /// Serves TCP connections on `listener` (each a stream of length-prefixed messages) until
    /// the task is dropped.
    pub async fn serve_tcp(self, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) => {
                    let server = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = server.connection(stream).await {
                            tracing::debug!(%peer, "dns tcp: {e}");
                        }
                    });
                }
                Err(e) => tracing::debug!("dns tcp accept: {e}"),
            }
        }
    }

    async fn connection(&self, mut stream: TcpStream) -> std::io::Result<()> {
        loop {
            let mut length = [0u8; 2];
            if stream.read_exact(&mut length).await.is_err() {
                return Ok(());
            }
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(length))];
            stream.read_exact(&mut query).await?;
            let Some(reply) = self.answer(&query).await else {
                return Ok(());
            };
            let bytes = reply
                .to_vec()
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let length = u16::try_from(bytes.len()).map_err(std::io::Error::other)?;
            stream.write_all(&length.to_be_bytes()).await?;
            stream.write_all(&bytes).await?;
        }
    }
}

/// Where a server listens.
pub struct Listeners {
    /// UDP.
    pub udp: UdpSocket,
    /// TCP.
    pub tcp: TcpListener,
}

impl Listeners {
    /// Binds UDP and TCP on `addr` (port 0: one free port for both, tried a few times).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Listeners> {
        let mut last = None;
        for _ in 0..16 {
            let udp = UdpSocket::bind(addr).await?;
            match TcpListener::bind(udp.local_addr()?).await {
                Ok(tcp) => return Ok(Listeners { udp, tcp }),
                Err(e) if addr.port() == 0 => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
    }

    /// The address both listen on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}
