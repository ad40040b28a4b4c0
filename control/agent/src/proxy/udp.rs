//! A UDP frontend: one socket on the ClusterIP (or node address) and port. Each client address
//! gets a session: a socket connected to the backend the [`Balancer`] picked, whose replies go
//! back to the client from the frontend's address (so a DNS resolver accepts them). A session
//! idle for [`SESSION_IDLE`] ends, as a conntrack entry would expire.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinSet;

use super::balancer::Balancer;

/// How long a client's session lives without a datagram either way.
pub const SESSION_IDLE: Duration = Duration::from_secs(10);

/// The largest datagram carried.
const MAX_DATAGRAM: usize = 65_535;

/// Relays datagrams on `socket` for service port `name` until the task is aborted (its
/// sessions end with it: they are its children).
pub async fn serve(name: String, socket: UdpSocket, balancer: Arc<Balancer>) {
    let socket = Arc::new(socket);
    let mut sessions: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
    let mut replies: JoinSet<SocketAddr> = JoinSet::new();
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let (length, client) = tokio::select! {
            received = socket.recv_from(&mut buffer) => match received {
                Ok(received) => received,
                Err(e) => {
                    tracing::debug!("proxy {name}: recv: {e}");
                    continue;
                }
            },
            Some(ended) = replies.join_next() => {
                if let Ok(client) = ended {
                    sessions.remove(&client);
                }
                continue;
            }
        };
        let upstream = match sessions.get(&client) {
            Some(upstream) => Arc::clone(upstream),
            None => {
                let Some(backend) = balancer.pick(client.ip(), &[]) else {
                    continue;
                };
                let upstream = match connect(backend).await {
                    Ok(upstream) => Arc::new(upstream),
                    Err(e) => {
                        tracing::debug!("proxy {name}: backend {backend}: {e}");
                        continue;
                    }
                };
                sessions.insert(client, Arc::clone(&upstream));
                replies.spawn(relay_replies(
                    Arc::clone(&upstream),
                    Arc::clone(&socket),
                    client,
                ));
                upstream
            }
        };
        if let Err(e) = upstream.send(&buffer[..length]).await {
            tracing::debug!("proxy {name}: to backend for {client}: {e}");
        }
    }
}

async fn connect(backend: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if backend.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(backend).await?;
    Ok(socket)
}

/// Sends the backend's replies back to `client` until the session idles out; returns the
/// client so its session can be forgotten.
async fn relay_replies(
    upstream: Arc<UdpSocket>,
    frontend: Arc<UdpSocket>,
    client: SocketAddr,
) -> SocketAddr {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        match tokio::time::timeout(SESSION_IDLE, upstream.recv(&mut buffer)).await {
            Ok(Ok(length)) => {
                let _ = frontend.send_to(&buffer[..length], client).await;
            }
            // ICMP port unreachable from a backend surfaces as an error: keep the session
            // until it idles, as conntrack would.
            Ok(Err(_)) => {}
            Err(_) => return client,
        }
    }
}
