//! Joining a node with a bootstrap token, as kubeadm's discovery and kubelet's TLS bootstrap
//! do it (`keel agent --join URL --token ID.SECRET --ca-cert-hash sha256:HEX`):
//!
//! ```text
//!  1. GET cluster-info (kube-public) with no credentials and without trusting the server;
//!     the CA in it must hash (SHA-256 of its SubjectPublicKeyInfo) to --ca-cert-hash
//!  2. from now on trust only that CA: with the bootstrap token, create a CSR
//!     (CN system:node:<name>, O system:nodes, signer kube-apiserver-client-kubelet) for a
//!     key made here, which never leaves the node
//!  3. the controller manager approves and signs it; write <data-dir>/kubeconfig and run as
//!     system:node:<name> (a restart finds that kubeconfig and skips 1 and 2)
//!  4. rotation: at 70–90% of the certificate's life (jittered, as kubelet's), a new CSR with
//!     the node's own credentials; the kubeconfig is rewritten and the agent's client swapped
//!     under it, with no restart
//! ```
//!
//! The token is only ever sent to a server whose certificate the pinned CA signed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use sha2::Digest as _;

/// The signer of kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// How long a join waits for its certificate before giving up.
pub const CERTIFICATE_WAIT: Duration = Duration::from_secs(300);

/// What `keel agent --join` was given.
#[derive(Clone, Debug)]
pub struct JoinConfig {
    /// The API server's URL.
    pub server: String,
    /// The bootstrap token, `<id>.<secret>`.
    pub token: String,
    /// `sha256:<hex>` of the cluster CA's SubjectPublicKeyInfo.
    pub ca_cert_hash: String,
    /// The node's name.
    pub node_name: String,
    /// Where the kubeconfig (and the node's key, inside it) is written.
    pub data_dir: PathBuf,
    /// The certificate lifetime asked for (`spec.expirationSeconds`); None: the signer's.
    pub expiration_seconds: Option<i32>,
    /// When to renew, as a share of the certificate's lifetime; None: kubelet's jittered
    /// 70–90%.
    pub rotation_threshold: Option<f64>,
}

impl JoinConfig {
    /// `<data-dir>/kubeconfig`.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.data_dir.join("kubeconfig")
    }
}

/// kubeadm's CA pin: `sha256:` and the hex SHA-256 of the certificate's
/// SubjectPublicKeyInfo (DER).
pub fn ca_cert_hash(ca_pem: &[u8]) -> anyhow::Result<String> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(ca_pem).map_err(|e| anyhow!("CA certificate: {e}"))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| anyhow!("CA certificate: {e}"))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    let digest = sha2::Sha256::digest(spki);
    Ok(format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// A kube client for `server` trusting `ca_pem`, with a bearer token or a client certificate.
async fn client_for(
    server: &str,
    ca_pem: Option<&[u8]>,
    user: &str,
) -> anyhow::Result<kube::Client> {
    let b64 = |pem: &[u8]| base64::engine::general_purpose::STANDARD.encode(pem);
    let cluster = match ca_pem {
        Some(ca) => format!("certificate-authority-data: {}", b64(ca)),
        None => "insecure-skip-tls-verify: true".to_owned(),
    };
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: keel\n  cluster:\n    server: {server}\n    {cluster}\nusers:\n- name: keel\n  user:\n{user}contexts:\n- name: keel\n  context:\n    cluster: keel\n    user: keel\ncurrent-context: keel\n"
    );
    let file = kube::config::Kubeconfig::from_yaml(&text).context("kubeconfig")?;
    let config =
        kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
            .await
            .context("kubeconfig")?;
    Ok(kube::Client::try_from(config)?)
}

/// Step 1: the cluster CA from `cluster-info`, checked against the pin.
pub async fn discover_ca(server: &str, pin: &str) -> anyhow::Result<Vec<u8>> {
    if !pin.starts_with("sha256:") || pin.len() != "sha256:".len() + 64 {
        bail!(
            "--ca-cert-hash {pin:?}: expected sha256:<64 hex digits> (keel token create prints it)"
        );
    }
    // No credentials and no trust yet: what comes back is checked against the pin.
    let anonymous = client_for(server, None, "    {}\n").await?;
    let info = Api::<ConfigMap>::namespaced(anonymous, "kube-public")
        .get("cluster-info")
        .await
        .map_err(|e| {
            anyhow!("cannot read the cluster-info ConfigMap (kube-public) from {server}: {e} — has `keel token create` run on this cluster?")
        })?;
    let kubeconfig = info
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .ok_or_else(|| anyhow!("the cluster-info ConfigMap has no kubeconfig"))?;
    let file =
        kube::config::Kubeconfig::from_yaml(kubeconfig).context("cluster-info's kubeconfig")?;
    let ca_data = file
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.certificate_authority_data.clone())
        .ok_or_else(|| anyhow!("cluster-info's kubeconfig names no certificate-authority-data"))?;
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(ca_data.trim())
        .context("cluster-info's certificate-authority-data")?;
    let found = ca_cert_hash(&ca_pem)?;
    if found != pin.to_ascii_lowercase() {
        bail!("cluster CA found in cluster-info ConfigMap is invalid: none of the public keys \"{found}\" are pinned (--ca-cert-hash {pin})");
    }
    Ok(ca_pem)
}

/// A key and a CSR (PEM) for node `name`.
fn key_and_request(name: &str) -> anyhow::Result<(rcgen::KeyPair, String)> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("system:node:{name}"));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let request = params.serialize_request(&key)?.pem()?;
    Ok((key, request))
}

/// Creates a CSR for a new key with `client` and waits for its certificate (PEM).
async fn request_certificate(
    client: &kube::Client,
    config: &JoinConfig,
) -> anyhow::Result<(String, String)> {
    let (key, request) = key_and_request(&config.node_name)?;
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("node-csr-".into()),
            ..ObjectMeta::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: KUBELET_CLIENT_SIGNER.into(),
            usages: Some(vec!["digital signature".into(), "client auth".into()]),
            expiration_seconds: config.expiration_seconds,
            ..CertificateSigningRequestSpec::default()
        },
        status: None,
    };
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let created = api
        .create(&PostParams::default(), &csr)
        .await
        .map_err(|e| match &e {
            kube::Error::Api(status) if status.code == 401 => anyhow!(
                "the API server refused the bootstrap token (unknown, expired, or not for authentication): {e}"
            ),
            _ => anyhow!("cannot create the node's CertificateSigningRequest: {e}"),
        })?;
    let name = created.metadata.name.clone().unwrap_or_default();
    tracing::info!(csr = %name, "waiting for the node's certificate");
    let issued = |csr: Option<&CertificateSigningRequest>| {
        let status = csr.and_then(|c| c.status.as_ref());
        let done = status.is_some_and(|s| {
            s.certificate.as_ref().is_some_and(|c| !c.0.is_empty())
                || s.conditions
                    .iter()
                    .flatten()
                    .any(|c| (c.type_ == "Denied" || c.type_ == "Failed") && c.status == "True")
        });
        done
    };
    let done = tokio::time::timeout(
        CERTIFICATE_WAIT,
        kube::runtime::wait::await_condition(api, &name, issued),
    )
    .await
    .map_err(|_| {
        anyhow!("CertificateSigningRequest {name} was neither approved nor signed within {CERTIFICATE_WAIT:?}")
    })?
    .with_context(|| format!("watching CertificateSigningRequest {name}"))?
    .ok_or_else(|| anyhow!("CertificateSigningRequest {name} was deleted"))?;
    let status = done.status.unwrap_or_default();
    if let Some(refused) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Denied" || c.type_ == "Failed")
    {
        bail!(
            "CertificateSigningRequest {name}: {} ({}: {})",
            refused.type_,
            refused.reason.as_deref().unwrap_or(""),
            refused.message.as_deref().unwrap_or("")
        );
    }
    let certificate = String::from_utf8(status.certificate.unwrap_or_default().0)
        .context("the issued certificate is not PEM")?;
    tracing::info!(csr = %name, "certificate issued");
    Ok((certificate, key.serialize_pem()))
}

/// The validity of a PEM certificate, unix seconds.
fn validity(cert_pem: &[u8]) -> anyhow::Result<(i64, i64)> {
    let (_, pem) =
        x509_parser::pem::parse_x509_pem(cert_pem).map_err(|e| anyhow!("certificate: {e}"))?;
    let cert = pem.parse_x509().map_err(|e| anyhow!("certificate: {e}"))?;
    let v = cert.validity();
    Ok((v.not_before.timestamp(), v.not_after.timestamp()))
}

/// The node's credentials: the CA, its certificate and key (PEM).
#[derive(Clone)]
struct Credentials {
    ca: Vec<u8>,
    cert: String,
    key: String,
}

impl Credentials {
    /// Writes `<data-dir>/kubeconfig` and the same credentials as files in `<data-dir>/pki`
    /// (what a restart reads back).
    fn write(&self, config: &JoinConfig) -> anyhow::Result<()> {
        let dir = config.data_dir.join("pki");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, text, mode) in [
            ("ca.crt", &self.ca[..], 0o644),
            ("node.crt", self.cert.as_bytes(), 0o644),
            ("node.key", self.key.as_bytes(), 0o600),
        ] {
            write_replacing(&dir.join(name), text, mode)?;
        }
        // Written beside, then renamed: a crash never leaves half a kubeconfig.
        let path = config.kubeconfig_path();
        let partial = path.with_extension("partial");
        crate::kubeconfig::Kubeconfig {
            name: "keel",
            server: &config.server,
            ca_pem: &self.ca,
            cert_pem: self.cert.as_bytes(),
            key_pem: self.key.as_bytes(),
        }
        .write(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
        std::fs::rename(&partial, &path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(())
    }

    /// What an earlier join left, if its certificate is still valid.
    fn read(config: &JoinConfig) -> Option<Credentials> {
        let dir = config.data_dir.join("pki");
        let ca = std::fs::read(dir.join("ca.crt")).ok()?;
        let cert = std::fs::read_to_string(dir.join("node.crt")).ok()?;
        let key = std::fs::read_to_string(dir.join("node.key")).ok()?;
        let (_, not_after) = validity(cert.as_bytes()).ok()?;
        (not_after > now()).then_some(Credentials { ca, cert, key })
    }

    async fn client(&self, server: &str) -> anyhow::Result<kube::Client> {
        let b64 = |pem: &[u8]| base64::engine::general_purpose::STANDARD.encode(pem);
        let user = format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64(self.cert.as_bytes()),
            b64(self.key.as_bytes())
        );
        client_for(server, Some(&self.ca), &user).await
    }
}

/// Writes `path` by a rename, so a crash never leaves half a file.
fn write_replacing(path: &Path, text: &[u8], mode: u32) -> anyhow::Result<()> {
    use std::io::Write as _;
    let partial = path.with_extension("partial");
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, mode);
    let mut file = open
        .open(&partial)
        .with_context(|| format!("cannot write {}", partial.display()))?;
    file.write_all(text)?;
    file.sync_all()?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Joins (or, after a restart, finds the earlier join's kubeconfig) and returns the node's
/// client, which rotation keeps current for as long as the process runs.
pub async fn join(config: JoinConfig) -> anyhow::Result<kube::Client> {
    let credentials = match Credentials::read(&config) {
        Some(found) => {
            println!(
                "keel agent: using the credentials in {}",
                config.kubeconfig_path().display()
            );
            found
        }
        None => {
            let ca = discover_ca(&config.server, &config.ca_cert_hash).await?;
            let user = format!("    token: {}\n", config.token);
            let bootstrap = client_for(&config.server, Some(&ca), &user).await?;
            let (cert, key) = request_certificate(&bootstrap, &config).await?;
            let credentials = Credentials { ca, cert, key };
            credentials.write(&config)?;
            println!(
                "keel agent: joined as system:node:{}; credentials in {}",
                config.node_name,
                config.kubeconfig_path().display()
            );
            credentials
        }
    };
    let current = Arc::new(RwLock::new(credentials.client(&config.server).await?));
    tokio::spawn(rotate(config, credentials, Arc::clone(&current)));
    Ok(swappable(current))
}

/// A client whose every request goes through whichever client `current` holds, so rotation
/// swaps the node's certificate under running watches and loops.
fn swappable(current: Arc<RwLock<kube::Client>>) -> kube::Client {
    let service = tower::service_fn(move |request: hyper::Request<kube::client::Body>| {
        let client = current.read().expect("never poisoned").clone();
        async move { client.send(request).await }
    });
    kube::Client::new(service, "default")
}

/// When to renew a certificate valid from `not_before` to `not_after`: at `threshold` of its
/// life, or at a random point in 70–90% (kubelet's jitter, so a fleet does not renew at once).
pub fn renewal_time(not_before: i64, not_after: i64, threshold: Option<f64>) -> i64 {
    use rand::Rng as _;
    let share = threshold.unwrap_or_else(|| rand::thread_rng().gen_range(0.7..0.9));
    let life = (not_after - not_before).max(0) as f64;
    not_before + (life * share) as i64
}

/// Renews the certificate before it expires, for as long as the process runs.
async fn rotate(
    config: JoinConfig,
    mut credentials: Credentials,
    current: Arc<RwLock<kube::Client>>,
) {
    loop {
        let at = match validity(credentials.cert.as_bytes()) {
            Ok((not_before, not_after)) => {
                renewal_time(not_before, not_after, config.rotation_threshold)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot read the node's certificate; no rotation");
                return;
            }
        };
        let wait = (at - now()).max(0) as u64;
        tokio::time::sleep(Duration::from_secs(wait)).await;
        let client = current.read().expect("never poisoned").clone();
        match request_certificate(&client, &config).await {
            Ok((cert, key)) => {
                credentials = Credentials {
                    cert,
                    key,
                    ..credentials
                };
                if let Err(e) = credentials.write(&config) {
                    tracing::error!(error = %e, "cannot write the rotated kubeconfig");
                }
                match credentials.client(&config.server).await {
                    Ok(fresh) => {
                        *current.write().expect("never poisoned") = fresh;
                        println!("keel agent: rotated the node's client certificate");
                    }
                    Err(e) => tracing::error!(error = %e, "rotated client"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "certificate rotation failed; retrying");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_hash_is_the_sha256_of_its_public_key_info() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let hash = ca_cert_hash(cert.pem().as_bytes()).unwrap();
        let expected = sha2::Sha256::digest(rcgen::PublicKeyData::subject_public_key_info(&key));
        assert_eq!(
            hash,
            format!(
                "sha256:{}",
                expected
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>()
            )
        );
        // A second certificate for the same key pins the same.
        let again = params.self_signed(&key).unwrap();
        assert_eq!(ca_cert_hash(again.pem().as_bytes()).unwrap(), hash);
    }

    #[test]
    fn renewal_falls_in_kubelets_window() {
        for _ in 0..100 {
            let at = renewal_time(1000, 2000, None);
            assert!((1700..=1900).contains(&at), "{at}");
        }
        assert_eq!(renewal_time(1000, 2000, Some(0.5)), 1500);
    }
}
