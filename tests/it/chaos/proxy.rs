//! The fault-injecting proxy between members: one per member, on loopback. A member's
//! advertised peer URL is its proxy's, so every peer request to it (append, vote,
//! install-snapshot, forward, read-index, campaign) passes through the proxy, which forwards it
//! to the member's real peer listener unless the link from the sender is cut.
//!
//! The sender is the member id keel-raft names in [`keel_raft::network::SENDER_HEADER`]; a
//! request without it (a member asking another for its client URL) is never cut. A cut link
//! answers 503 at once, which the sender sees as a network error (never as an answer), the way
//! a refused connection would look; a dropped packet would only be slower to say the same.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use keel_raft::network::SENDER_HEADER;
use warp::http::{HeaderMap, StatusCode};
use warp::Filter as _;

/// The links between members, shared by every proxy of a cluster. Members are named by id.
#[derive(Default)]
pub struct Links {
    cut: Mutex<HashSet<(u64, u64)>>,
    /// Install-snapshot requests that reached each member and were answered 200.
    snapshot_chunks: Mutex<HashMap<u64, u64>>,
}

impl Links {
    /// Cuts every link between a member of `one` and a member of `other`, both ways.
    pub fn partition(&self, one: &[u64], other: &[u64]) {
        let mut cut = self.cut.lock().expect("no proxy panics");
        for &a in one {
            for &b in other {
                cut.insert((a, b));
                cut.insert((b, a));
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.cut.lock().expect("no proxy panics").clear();
    }

    fn is_cut(&self, from: u64, to: u64) -> bool {
        self.cut
            .lock()
            .expect("no proxy panics")
            .contains(&(from, to))
    }

    /// How many snapshot chunks `member` accepted.
    pub fn snapshot_chunks(&self, member: u64) -> u64 {
        let chunks = self.snapshot_chunks.lock().expect("no proxy panics");
        chunks.get(&member).copied().unwrap_or(0)
    }
}

/// Serves the proxy of member `owner` on `listener`, forwarding to `target` (its real peer
/// listener), until the task is aborted.
pub fn spawn(
    listener: tokio::net::TcpListener,
    owner: u64,
    target: SocketAddr,
    links: Arc<Links>,
) -> tokio::task::JoinHandle<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(8)
        .tcp_nodelay(true)
        .build()
        .expect("a proxy client");
    let route = warp::method()
        .and(warp::path::full())
        .and(warp::header::headers_cloned())
        .and(warp::body::bytes())
        .then(
            move |method: warp::http::Method,
                  path: warp::path::FullPath,
                  headers: HeaderMap,
                  body: Bytes| {
                let (http, links) = (http.clone(), links.clone());
                async move {
                    let from = headers
                        .get(SENDER_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok());
                    if from.is_some_and(|from| links.is_cut(from, owner)) {
                        return warp::reply::with_status(
                            b"partitioned by the chaos proxy".to_vec(),
                            StatusCode::SERVICE_UNAVAILABLE,
                        );
                    }
                    let mut request = http
                        .request(method, format!("http://{target}{}", path.as_str()))
                        .body(body);
                    for (name, value) in &headers {
                        if name != "host" && name != "content-length" {
                            request = request.header(name, value);
                        }
                    }
                    let answer = match request.send().await {
                        Ok(answer) => answer,
                        // The member is down (killed): the sender sees a broken exchange.
                        Err(e) => {
                            return warp::reply::with_status(
                                e.to_string().into_bytes(),
                                StatusCode::BAD_GATEWAY,
                            )
                        }
                    };
                    let status = answer.status();
                    let bytes = match answer.bytes().await {
                        Ok(bytes) => bytes.to_vec(),
                        Err(e) => {
                            return warp::reply::with_status(
                                e.to_string().into_bytes(),
                                StatusCode::BAD_GATEWAY,
                            )
                        }
                    };
                    if status.is_success() && path.as_str() == "/raft/install-snapshot" {
                        *links
                            .snapshot_chunks
                            .lock()
                            .expect("no proxy panics")
                            .entry(owner)
                            .or_default() += 1;
                    }
                    let status =
                        StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
                    warp::reply::with_status(bytes, status)
                }
            },
        );
    tokio::spawn(warp::serve(route).incoming(listener).run())
}
