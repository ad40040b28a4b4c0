//! The certificate controllers of kube-controller-manager, for nodes joining with a bootstrap
//! token (kubelet TLS bootstrap):
//!
//! ```text
//!  CSR created by system:bootstrap:<id> or system:node:<name>
//!     │  approver: a kubelet client request (CN system:node:<name>, O system:nodes, client
//!     │  usages) whose requester may create certificatesigningrequests/nodeclient (or
//!     │  /selfnodeclient for a node renewing its own) by a SubjectAccessReview
//!     ▼
//!  Approved ──► signer: a certificate from the cluster CA for the request's key and subject,
//!               valid min(expirationSeconds, the signing duration), written to
//!               status.certificate
//! ```
//!
//! Both run as kube-rs Controllers over one watch of CSRs each and only ever speak the API.
//! Nothing runs without a [`SigningConfig`]: a controller manager without the CA's key does
//! not approve what it cannot sign either.

pub mod approver;
pub mod signer;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, ResourceExt as _};

use crate::error::Error;

/// The signer of kubelets' client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The signer of kubelets' serving certificates.
pub const KUBELET_SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";

/// The cluster CA the signer signs with (`--cluster-signing-cert-file`,
/// `--cluster-signing-key-file`) and how long what it signs lasts.
#[derive(Clone, Debug)]
pub struct SigningConfig {
    /// The CA certificate, PEM.
    pub ca_cert_pem: String,
    /// The CA's private key, PEM.
    pub ca_key_pem: String,
    /// The longest a certificate lasts, and what it lasts when the request does not say
    /// (`--cluster-signing-duration`, a year).
    pub duration: Duration,
}

impl SigningConfig {
    /// Reads the CA's certificate and key files.
    pub fn from_files(
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> std::result::Result<SigningConfig, String> {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        };
        let config = SigningConfig {
            ca_cert_pem: read(cert)?,
            ca_key_pem: read(key)?,
            duration: DEFAULT_SIGNING_DURATION,
        };
        signer::issuer(&config).map_err(|e| format!("cluster signing CA: {e}"))?;
        Ok(config)
    }
}

/// kube-controller-manager's `--cluster-signing-duration` default: one year.
pub const DEFAULT_SIGNING_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// Whether the request carries a true condition of `kind`.
pub fn has_condition(csr: &CertificateSigningRequest, kind: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == kind && c.status == "True"))
}

/// A condition of `kind` with `reason` and `message`, set now.
pub(crate) fn condition(
    kind: &str,
    reason: &str,
    message: &str,
) -> CertificateSigningRequestCondition {
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    CertificateSigningRequestCondition {
        type_: kind.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

/// Runs the approver and the signer until the future is dropped.
pub async fn run(client: kube::Client, signing: SigningConfig) {
    let signing = Arc::new(signing);
    let approving = controller(client.clone(), "csrapproving", {
        let client = client.clone();
        move |csr| {
            let client = client.clone();
            async move { approver::reconcile(&client, &csr).await }
        }
    });
    let signing_loop = controller(client.clone(), "csrsigning", move |csr| {
        let client = client.clone();
        let signing = Arc::clone(&signing);
        async move { signer::reconcile(&client, &signing, &csr).await }
    });
    futures::join!(approving, signing_loop);
}

/// One kube-rs Controller over every CSR, calling `reconcile`.
fn controller<F, Fut>(
    client: kube::Client,
    name: &'static str,
    reconcile: F,
) -> impl Future<Output = ()>
where
    F: Fn(Arc<CertificateSigningRequest>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let reconcile = Arc::new(reconcile);
    Controller::new(api, watcher::Config::default())
        .run(
            move |csr, reconcile: Arc<Arc<F>>| {
                let fut = reconcile(csr);
                async move { fut.await.map(|()| Action::await_change()) }
            },
            move |csr, error: &Error, _| {
                tracing::info!(csr = %csr.name_any(), %error, "{name} reconcile failed");
                Action::requeue(Duration::from_secs(1))
            },
            Arc::new(reconcile),
        )
        .for_each(|_| futures::future::ready(()))
}
