//! A UDP frontend: one socket on the ClusterIP (or node address) and port. Each client address
//! gets a session: a socket connected to the backend the [`Balancer`] picked, whose replies go
//! back to the client from the frontend's address (so a DNS resolver accepts them). A session
//! idle for [`SESSION_IDLE`] ends, as a conntrack entry would expire; one whose backend is no
//! longer ready ends at the client's next datagram, which goes to a ready backend instead (as
//! kube-proxy deletes a UDP endpoint's conntrack entries when it leaves: a resolver must
//! not keep asking a DNS pod that is gone).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::{AbortHandle, JoinSet};

use super::balancer::Balancer;

/// How long a client's session lives without a datagram either way.
pub const SESSION_IDLE: Duration = Duration::from_secs(10);

/// The largest datagram carried.
const MAX_DATAGRAM: usize = 65_535;

/// One client's session: its socket to the backend, and the task relaying the replies.
struct Session {
    backend: SocketAddr,
    upstream: Arc<UdpSocket>,
    relay: AbortHandle,
    /// Tells this session's relay from a later one of the same client.
    id: u64,
}

/// Relays datagrams on `socket` for service port `name` until the task is aborted (its
/// sessions end with it: they are its children).
pub async fn serve(name: String, socket: UdpSocket, balancer: Arc<Balancer>) {
    let socket = Arc::new(socket);
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut replies: JoinSet<(SocketAddr, u64)> = JoinSet::new();
    let mut next_id = 0u64;
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
                // An idle session ended (an aborted one was replaced already).
                if let Ok((client, id)) = ended {
                    if sessions.get(&client).is_some_and(|s| s.id == id) {
                        sessions.remove(&client);
                    }
                }
                continue;
            }
        };
        if let Some(stale) = sessions
            .get(&client)
            .filter(|s| !balancer.contains(s.backend))
        {
            stale.relay.abort();
            sessions.remove(&client);
        }
        let upstream = match sessions.get(&client) {
            Some(session) => Arc::clone(&session.upstream),
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
                next_id += 1;
                let relay = replies.spawn(relay_replies(
                    Arc::clone(&upstream),
                    Arc::clone(&socket),
                    client,
                    next_id,
                ));
                sessions.insert(
                    client,
                    Session {
                        backend,
                        upstream: Arc::clone(&upstream),
                        relay,
                        id: next_id,
                    },
                );
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
/// client and the session's id so the session can be forgotten.
async fn relay_replies(
    upstream: Arc<UdpSocket>,
    frontend: Arc<UdpSocket>,
    client: SocketAddr,
    id: u64,
) -> (SocketAddr, u64) {
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        match tokio::time::timeout(SESSION_IDLE, upstream.recv(&mut buffer)).await {
            Ok(Ok(length)) => {
                let _ = frontend.send_to(&buffer[..length], client).await;
            }
            // ICMP port unreachable from a backend surfaces as an error: keep the session
            // until it idles, as conntrack would.
            Ok(Err(_)) => {}
            Err(_) => return (client, id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A backend answering each datagram with `tag`.
    async fn backend(tag: &'static [u8]) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut buffer = [0u8; 512];
            while let Ok((_, from)) = socket.recv_from(&mut buffer).await {
                let _ = socket.send_to(tag, from).await;
            }
        });
        (address, task)
    }

    async fn ask(client: &UdpSocket) -> Vec<u8> {
        client.send(b"?").await.unwrap();
        let mut buffer = [0u8; 512];
        let length = tokio::time::timeout(Duration::from_secs(10), client.recv(&mut buffer))
            .await
            .expect("an answer")
            .unwrap();
        buffer[..length].to_vec()
    }

    #[tokio::test]
    async fn a_session_leaves_a_backend_that_is_no_longer_ready() {
        let (one, one_task) = backend(b"one").await;
        let (two, two_task) = backend(b"two").await;
        let balancer = Arc::new(Balancer::new(vec![one], None));
        let frontend = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = frontend.local_addr().unwrap();
        let serving = tokio::spawn(serve("t".into(), frontend, Arc::clone(&balancer)));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.connect(address).await.unwrap();
        assert_eq!(ask(&client).await, b"one");
        // A second ready backend: the client's session stays where it is.
        balancer.update(vec![one, two], None);
        assert_eq!(ask(&client).await, b"one");
        // Its backend leaves: the very next datagram goes to the other.
        balancer.update(vec![two], None);
        assert_eq!(ask(&client).await, b"two");
        assert_eq!(ask(&client).await, b"two");
        for task in [serving, one_task, two_task] {
            task.abort();
        }
    }
}
