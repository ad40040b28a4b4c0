//! The listeners' transport: plain TCP or TLS, HTTP/1 and HTTP/2, graceful shutdown.
//!
//! warp 0.4 has no TLS, so keel accepts connections itself: [`serve`] takes a bound
//! [`Listener`] (a `TcpListener`, optionally with a TLS acceptor), does the rustls handshake
//! when there is one, and serves any tower service through hyper-util's auto (HTTP/1 + HTTP/2)
//! connection builder. A warp filter becomes such a service with `warp::service`; a
//! content-type dispatcher in front of several services works the same way.
//!
//! When the handshake verified a client certificate (`--client-cert-auth`), every request of
//! that connection carries a [`ClientCertificate`] in its extensions.
//!
//! Outbound, [`outbound_client`] builds the `reqwest::Client` a member uses towards its peers
//! (Raft, forwarding, membership): the configured CAs as its only roots and its peer
//! certificate as its identity. reqwest and tokio-rustls share the workspace's one rustls
//! (0.23, ring provider).

use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::http;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::identity::ClientCertificate;
use crate::{Error, Result};

/// How long a client may take over its TLS handshake before the connection is dropped, so a
/// client that connects and says nothing does not hold a task (and a graceful shutdown) open.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A bound listener, plain or TLS.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl From<TcpListener> for Listener {
    fn from(tcp: TcpListener) -> Listener {
        Listener { tcp, tls: None }
    }
}

impl Listener {
    /// `tcp`, with TLS when `tls` is given.
    pub fn new(tcp: TcpListener, tls: Option<TlsAcceptor>) -> Listener {
        Listener { tcp, tls }
    }

    /// Where it listens.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// The files of one TLS listener and whether it requires client certificates, with the
/// config keys that named them (so a file that does not load is reported by its key).
#[derive(Clone, Debug)]
pub struct ServerTls {
    /// The server certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// The CA client certificates must be signed by.
    pub trusted_ca_file: Option<PathBuf>,
    /// Refuse clients without a certificate signed by `trusted_ca_file`.
    pub client_cert_auth: bool,
    /// The config keys of the three files, in that order.
    pub keys: [&'static str; 3],
}

const CLIENT_KEYS: [&str; 3] = ["cert-file", "key-file", "trusted-ca-file"];
const PEER_KEYS: [&str; 3] = ["peer-cert-file", "peer-key-file", "peer-trusted-ca-file"];

fn is_https(urls: &[String]) -> bool {
    urls.iter().any(|u| u.starts_with("https://"))
}

/// The client listener's TLS settings: `None` when `listen-client-urls` are http.
pub fn client_tls(config: &Config) -> Option<ServerTls> {
    if !is_https(&config.listen_client_urls) {
        return None;
    }
    Some(ServerTls {
        cert_file: config.cert_file.clone().unwrap_or_default(),
        key_file: config.key_file.clone().unwrap_or_default(),
        trusted_ca_file: config.trusted_ca_file.clone(),
        client_cert_auth: config.client_cert_auth,
        keys: CLIENT_KEYS,
    })
}

/// The peer listener's TLS settings: `None` when `listen-peer-urls` are http.
pub fn peer_tls(config: &Config) -> Option<ServerTls> {
    if !is_https(&config.listen_peer_urls) {
        return None;
    }
    Some(ServerTls {
        cert_file: config.peer_cert_file.clone().unwrap_or_default(),
        key_file: config.peer_key_file.clone().unwrap_or_default(),
        trusted_ca_file: config.peer_trusted_ca_file.clone(),
        client_cert_auth: config.peer_client_cert_auth,
        keys: PEER_KEYS,
    })
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(key: &'static str, path: &Path, reason: impl ToString) -> Error {
    Error::Tls {
        key,
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

fn load_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(key, path, e))?
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_error(key, path, e))?;
    if certs.is_empty() {
        return Err(tls_error(key, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn load_roots(key: &'static str, path: &Path) -> Result<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(key, path)? {
        roots
            .add(cert)
            .map_err(|e| tls_error(key, path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(roots)
}

impl ServerTls {
    /// Loads the files into an acceptor; a file that does not load is named with its key.
    pub fn acceptor(&self) -> Result<TlsAcceptor> {
        let [cert_key, key_key, ca_key] = self.keys;
        let certs = load_certs(cert_key, &self.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&self.key_file)
            .map_err(|e| tls_error(key_key, &self.key_file, e))?;
        let provider = ring();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(cert_key, &self.cert_file, e))?;
        let builder = if self.client_cert_auth {
            let ca = self.trusted_ca_file.as_deref().ok_or_else(|| {
                tls_error(
                    ca_key,
                    Path::new(""),
                    "is required for client certificate auth",
                )
            })?;
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(load_roots(ca_key, ca)?),
                provider,
            )
            .build()
            .map_err(|e| tls_error(ca_key, ca, e))?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            tls_error(
                key_key,
                &self.key_file,
                format!("does not fit the certificate: {e}"),
            )
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// `tcp` with this TLS.
    pub fn listener(&self, tcp: TcpListener) -> Result<Listener> {
        Ok(Listener::new(tcp, Some(self.acceptor()?)))
    }
}

/// The client a member talks to its peers with (Raft RPCs, forwarded requests, membership
/// look-ups): `peer-trusted-ca-file` and `trusted-ca-file` as its only roots when given (a
/// follower forwards to the leader's client URL as well as its peer URL), and the peer
/// certificate as its identity, so peers with `--peer-client-cert-auth` accept it. Plain
/// http URLs keep working: the scheme decides.
pub fn outbound_client(config: &Config) -> Result<reqwest::Client> {
    let mut builder = keel_raft::HttpNetworkFactory::client_builder();
    let cas = [
        ("peer-trusted-ca-file", &config.peer_trusted_ca_file),
        ("trusted-ca-file", &config.trusted_ca_file),
    ];
    let mut any_ca = false;
    for (key, path) in cas {
        let Some(path) = path else { continue };
        for cert in load_certs(key, path)? {
            let cert =
                reqwest::Certificate::from_der(&cert).map_err(|e| tls_error(key, path, e))?;
            builder = builder.add_root_certificate(cert);
            any_ca = true;
        }
    }
    if any_ca {
        // Only the cluster's CA vouches for its members, not every public CA.
        builder = builder.tls_built_in_root_certs(false);
    }
    if let (Some(cert), Some(key)) = (&config.peer_cert_file, &config.peer_key_file) {
        builder = builder.identity(identity("peer-cert-file", cert, "peer-key-file", key)?);
    }
    builder
        .use_rustls_tls()
        .build()
        .map_err(|e| Error::Unsupported(format!("cannot build the peer HTTP client: {e}")))
}

/// A reqwest identity from a certificate file and a key file.
pub fn identity(
    cert_key: &'static str,
    cert: &Path,
    key_key: &'static str,
    key: &Path,
) -> Result<reqwest::Identity> {
    let mut pem = std::fs::read(key).map_err(|e| tls_error(key_key, key, e))?;
    pem.push(b'\n');
    pem.extend(std::fs::read(cert).map_err(|e| tls_error(cert_key, cert, e))?);
    reqwest::Identity::from_pem(&pem).map_err(|e| tls_error(cert_key, cert, e))
}

/// Serves `service` on `listener` until `shutdown` resolves; then stops accepting and waits
/// for every open connection to finish its in-flight requests (streams must be ended by the
/// caller, as the API does through `Api::closing`).
///
/// Generic over the tower service so one port can carry several protocols: put a
/// dispatcher service in front (e.g. on the content type) and serve that.
pub async fn serve<S, B>(
    listener: impl Into<Listener>,
    service: S,
    shutdown: impl Future<Output = ()> + Send,
) where
    S: tower_service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let Listener { tcp, tls } = listener.into();
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = tcp.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let watcher = graceful.watcher();
        let service = service.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(tls) = tls else {
                return serve_connection(stream, Identified::anonymous(service), watcher).await;
            };
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!("TLS handshake with {peer} failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("TLS handshake with {peer} timed out");
                    return;
                }
            };
            // Certificates are present only when the verifier asked for and accepted them.
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|leaf| crate::pki::common_name(leaf))
                .map(|common_name| ClientCertificate { common_name });
            let service = Identified {
                inner: service,
                certificate,
            };
            serve_connection(stream, service, watcher).await
        });
    }
    drop(tcp);
    graceful.shutdown().await;
}

async fn serve_connection<I, S, B>(io: I, service: Identified<S>, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower_service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    // etcdctl 3.4 sends URLs as `:authority`, which h2 refuses (see `h2_authority`).
    if crate::h2_authority::enabled() {
        let io = crate::h2_authority::AuthorityFix::new(io);
        serve_http(io, service, watcher).await
    } else {
        serve_http(io, service, watcher).await
    }
}

async fn serve_http<I, S, B>(io: I, service: Identified<S>, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower_service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let builder = auto::Builder::new(TokioExecutor::new());
    let connection =
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service));
    if let Err(e) = watcher.watch(connection).await {
        tracing::debug!("connection ended with an error: {e}");
    }
}

/// Accept errors that concern one connection are skipped; others (out of file descriptors)
/// are logged and retried a little later, when connections may have closed.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!("cannot accept a connection: {e}");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Puts the connection's verified client certificate into each request's extensions.
#[derive(Clone)]
struct Identified<S> {
    inner: S,
    certificate: Option<ClientCertificate>,
}

impl<S> Identified<S> {
    fn anonymous(inner: S) -> Self {
        Identified {
            inner,
            certificate: None,
        }
    }
}

impl<S, B> tower_service::Service<http::Request<B>> for Identified<S>
where
    S: tower_service::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(certificate) = &self.certificate {
            request.extensions_mut().insert(certificate.clone());
        }
        self.inner.call(request)
    }
}
