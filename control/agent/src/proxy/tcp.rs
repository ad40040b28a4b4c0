//! A TCP frontend: a listener on the ClusterIP (or node address) and port; each accepted
//! connection is joined to a backend the [`Balancer`] picks, bytes copied both ways until
//! either side closes (half-closes are passed on, so a request/response protocol ends
//! cleanly). A backend that refuses or does not answer within the connect timeout is
//! skipped for the next one, as kube-proxy's userspace mode retried. A connection whose
//! backend leaves the service's endpoints ([`Balancer::left`]) is ended: the client gets a
//! FIN rather than a connection that hangs on a pod that is gone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::balancer::Balancer;

/// How long a backend has to accept before the next one is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Binds `address` for a frontend (SO_REUSEADDR, so a frontend closed and opened again does not
/// wait for its old connections' TIME_WAIT).
pub fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(1024)
}

/// Accepts connections on `listener` for service port `name` until the task is aborted.
/// Connections already joined live on in their own tasks (as established flows survive a
/// kube-proxy resync); they end when either side closes.
pub async fn serve(name: String, listener: TcpListener, balancer: Arc<Balancer>) {
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and the like: back off a little rather than spin.
                tracing::warn!("proxy {name}: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let balancer = Arc::clone(&balancer);
        let name = name.clone();
        tokio::spawn(async move {
            if let Err(e) = join(client, peer, &balancer).await {
                tracing::debug!("proxy {name}: connection from {peer}: {e}");
            }
        });
    }
}

/// Connects `client` to a backend and copies until both directions are done.
async fn join(mut client: TcpStream, peer: SocketAddr, balancer: &Balancer) -> std::io::Result<()> {
    let _ = client.set_nodelay(true);
    let mut refused = Vec::new();
    let (mut backend, target) = loop {
        let Some(target) = balancer.pick(peer.ip(), &refused) else {
            // No backend (left): the client sees its connection reset, as kube-proxy's REJECT
            // gives it a refusal, not an accepted connection that says nothing.
            let _ = client.set_zero_linger();
            return Err(std::io::Error::other(format!(
                "no backend answered (tried {refused:?})"
            )));
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(stream)) => break (stream, target),
            Ok(Err(e)) => tracing::debug!("proxy: backend {target}: {e}"),
            Err(_) => tracing::debug!("proxy: backend {target}: no answer in {CONNECT_TIMEOUT:?}"),
        }
        refused.push(target);
    };
    let _ = backend.set_nodelay(true);
    let ended = tokio::select! {
        copied = tokio::io::copy_bidirectional(&mut client, &mut backend) => Ended::Closed(copied),
        () = balancer.left(target) => Ended::EndpointLeft,
    };
    match ended {
        Ended::Closed(copied) => copied.map(drop),
        Ended::EndpointLeft => {
            tracing::debug!("proxy: {target} left the endpoints: ending {peer}'s connection");
            // FIN to the client; both sockets close as they drop.
            client.shutdown().await
        }
    }
}

/// How a joined connection ended.
enum Ended {
    /// Both sides closed (or one failed).
    Closed(std::io::Result<(u64, u64)>),
    /// The backend left the service's endpoints first.
    EndpointLeft,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt as _;

    /// A frontend on loopback over `backends`, and its address.
    async fn frontend(balancer: Arc<Balancer>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
        let listener = bind(([127, 0, 0, 1], 0).into()).unwrap();
        let address = listener.local_addr().unwrap();
        (address, tokio::spawn(serve("t".into(), listener, balancer)))
    }

    /// A joined connection: the client's end and the backend's.
    async fn joined(frontend: SocketAddr, backend: &TcpListener) -> (TcpStream, TcpStream) {
        let mut client = TcpStream::connect(frontend).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let (mut server, _) = backend.accept().await.unwrap();
        let mut hello = [0u8; 5];
        server.read_exact(&mut hello).await.unwrap();
        assert_eq!(&hello, b"hello");
        (client, server)
    }

    async fn read_to_end(stream: &mut TcpStream) -> Vec<u8> {
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
            .await
            .expect("the connection ends")
            .expect("a clean end (FIN), not a reset");
        rest
    }

    #[tokio::test]
    async fn a_backends_close_reaches_the_client_and_a_gone_endpoints_connections_end() {
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = backend.local_addr().unwrap();
        let balancer = Arc::new(Balancer::new(vec![target], None));
        let (address, task) = frontend(Arc::clone(&balancer)).await;

        // The backend ends the connection: the client reads what it sent, then the end.
        let (mut client, mut server) = joined(address, &backend).await;
        server.write_all(b"bye").await.unwrap();
        drop(server);
        assert_eq!(read_to_end(&mut client).await, b"bye");

        // Unready (no longer a backend, still listed): the connection lives on.
        let (mut client, mut server) = joined(address, &backend).await;
        balancer.update(Vec::new(), None);
        client.write_all(b"still").await.unwrap();
        let mut still = [0u8; 5];
        server.read_exact(&mut still).await.unwrap();
        assert_eq!(&still, b"still");
        // The endpoint leaves the slices while the backend holds the connection open: the
        // client sees its connection end cleanly, and so does the backend's side.
        balancer.set_listed([]);
        assert_eq!(read_to_end(&mut client).await, b"");
        assert_eq!(read_to_end(&mut server).await, b"");
        task.abort();
    }
}
