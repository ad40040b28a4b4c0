//! A TCP frontend: a listener on the ClusterIP (or node address) and port; each accepted
//! connection is joined to a backend the [`Balancer`] picks, bytes copied both ways until
//! either side closes (half-closes are passed on, so a request/response protocol ends
//! cleanly). A backend that refuses or does not answer within the connect timeout is
//! skipped for the next one, as kube-proxy's userspace mode retried.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
    let mut backend = loop {
        let Some(target) = balancer.pick(peer.ip(), &refused) else {
            // No backend (left): the client sees its connection reset, as kube-proxy's REJECT
            // gives it a refusal, not an accepted connection that says nothing.
            let _ = client.set_zero_linger();
            return Err(std::io::Error::other(format!(
                "no backend answered (tried {refused:?})"
            )));
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
            Ok(Ok(stream)) => break stream,
            Ok(Err(e)) => tracing::debug!("proxy: backend {target}: {e}"),
            Err(_) => tracing::debug!("proxy: backend {target}: no answer in {CONNECT_TIMEOUT:?}"),
        }
        refused.push(target);
    };
    let _ = backend.set_nodelay(true);
    tokio::io::copy_bidirectional(&mut client, &mut backend).await?;
    Ok(())
}
