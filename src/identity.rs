//! Who a request comes from, as far as the transport can tell.
//!
//! The TLS listener verifies a client certificate against the trusted CA and puts a
//! [`ClientCertificate`] into the request's extensions; the auth layer reads it with
//! `warp::ext::optional::<ClientCertificate>()` and, as etcd does with
//! `--client-cert-auth`, takes its common name as the user when no token is given.
//! The type lives here, apart from both, so neither layer depends on the other.

/// A client certificate the transport verified against the trusted CA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate subject's common name (etcd's user name for certificate auth).
    pub common_name: String,
}
