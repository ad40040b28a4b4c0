//! HTTP/1.1 keep-alive connections to the gateway, shared by the workers of a run.
//!
//! hyper's connection API directly, not reqwest's pool: the run must open exactly `--conns`
//! connections (reqwest opens one per concurrent request) and the generator's own CPU must
//! stay small next to the servers' on a shared machine. HTTP/1.1 carries one request at a
//! time, so workers sharing a connection take turns on it, as etcd's benchmark clients
//! sharing a gRPC connection would queue on its stream limit.

use std::net::SocketAddr;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long a request may wait for its answer's head before it counts as failed.
pub(super) const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Where a connection goes: the socket address and the `Host` header for it.
#[derive(Clone, Debug)]
pub struct Endpoint {
    address: SocketAddr,
    authority: String,
}

impl Endpoint {
    /// Resolves an endpoint URL (`http://host:port`, or etcdctl's bare `host:port`).
    pub async fn resolve(url: &str) -> anyhow::Result<Endpoint> {
        let with_scheme = if url.contains("://") {
            url.to_owned()
        } else {
            format!("http://{url}")
        };
        let parsed = url::Url::parse(&with_scheme)
            .with_context(|| format!("endpoint {url:?} is not a URL"))?;
        anyhow::ensure!(
            parsed.scheme() == "http",
            "endpoint {url:?}: keel bench speaks plain HTTP only"
        );
        let host = parsed
            .host_str()
            .with_context(|| format!("endpoint {url:?} has no host"))?;
        let port = parsed.port_or_known_default().unwrap_or(2379);
        let address = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("cannot resolve endpoint {url:?}"))?
            .next()
            .with_context(|| format!("endpoint {url:?} resolves to no address"))?;
        Ok(Endpoint {
            address,
            authority: format!("{host}:{port}"),
        })
    }
}

impl Endpoint {
    /// The resolved socket address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }
}

/// One keep-alive connection, opened on first use and again after any failure.
pub struct Connection {
    endpoint: Endpoint,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// A connection to `endpoint`, not opened yet.
    pub fn new(endpoint: Endpoint) -> Connection {
        Connection {
            endpoint,
            sender: None,
        }
    }

    async fn open(&mut self) -> Result<&mut SendRequest<Full<Bytes>>, String> {
        if let Some(sender) = &self.sender {
            if !sender.is_closed() {
                return Ok(self.sender.as_mut().expect("checked above"));
            }
        }
        let address = self.endpoint.address;
        let stream = TcpStream::connect(address)
            .await
            .map_err(|e| format!("cannot connect to {address}: {e}"))?;
        // Small requests on a keep-alive connection: Nagle would hold each one back.
        stream
            .set_nodelay(true)
            .map_err(|e| format!("{address}: {e}"))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {address}: {e}"))?;
        tokio::spawn(async move {
            // The connection ends with an error when the server closes it; the next
            // request notices through `is_closed` and reconnects.
            let _ = connection.await;
        });
        Ok(self.sender.insert(sender))
    }

    /// POSTs a JSON `body` to `path` and returns the answer's body as it streams in, on a
    /// 2xx status (a watch: the connection carries nothing else while it lasts).
    ///
    /// The request body is complete when sent: etcd 3.4's gateway answers a streaming call
    /// only once the request body has ended (and keeps the watch going after that).
    pub async fn post_streaming(&mut self, path: &str, body: Bytes) -> Result<Incoming, String> {
        let authority = self.endpoint.authority.clone();
        let response = self.send(path, body).await?;
        let status = response.status();
        if status.is_success() {
            return Ok(response.into_body());
        }
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        Err(format!(
            "{authority}{path}: HTTP {}: {}",
            status.as_u16(),
            error_message(&bytes)
        ))
    }

    async fn send(&mut self, path: &str, body: Bytes) -> Result<hyper::Response<Incoming>, String> {
        let authority = self.endpoint.authority.clone();
        let sender = self.open().await?;
        sender
            .ready()
            .await
            .map_err(|e| format!("connection to {authority}: {e}"))?;
        let request = hyper::Request::post(path)
            .header(hyper::header::HOST, &authority)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        // A request the server never answers must end as an error, not hang the run.
        let sent = match tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request)).await {
            Ok(sent) => sent.map_err(|e| format!("{authority}{path}: {e}")),
            Err(_) => Err(format!(
                "{authority}{path}: no answer within {REQUEST_TIMEOUT:?}"
            )),
        };
        if sent.is_err() {
            self.sender = None;
        }
        sent
    }

    /// POSTs a JSON `body` to `path`; the answer's body on a 2xx status, otherwise a message
    /// naming the status and the gateway's error text.
    pub async fn post(&mut self, path: &str, body: Bytes) -> Result<Bytes, String> {
        let authority = self.endpoint.authority.clone();
        let result = async {
            let response = self.send(path, body).await?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{authority}{path}: reading the answer: {e}"))?
                .to_bytes();
            if status.is_success() {
                Ok(bytes)
            } else {
                Err(format!(
                    "HTTP {}: {}",
                    status.as_u16(),
                    error_message(&bytes)
                ))
            }
        }
        .await;
        if result.is_err() {
            // Whatever state the connection is in, the next request starts on a fresh one.
            self.sender = None;
        }
        result
    }
}

/// The `message` of the gateway's error body, or the body itself.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(error) if !error.message.is_empty() => error.message,
        _ => String::from_utf8_lossy(body).chars().take(200).collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_message_prefers_the_gateways_message() {
        assert_eq!(
            super::error_message(br#"{"code":3,"message":"etcdserver: key is not provided"}"#),
            "etcdserver: key is not provided"
        );
        assert_eq!(
            super::error_message(b"404 page not found"),
            "404 page not found"
        );
    }

    #[tokio::test]
    async fn endpoints_resolve_with_or_without_a_scheme() {
        let bare = super::Endpoint::resolve("127.0.0.1:2379").await.unwrap();
        assert_eq!(bare.address.to_string(), "127.0.0.1:2379");
        let url = super::Endpoint::resolve("http://localhost:12379/")
            .await
            .unwrap();
        assert_eq!(url.address.port(), 12379);
        assert_eq!(url.authority, "localhost:12379");
        assert!(super::Endpoint::resolve("https://127.0.0.1:2379")
            .await
            .is_err());
    }
}
