//! Signing against a CA made here.

use std::time::Duration;

use serde_json::json;

use super::*;

fn ca() -> SigningConfig {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "keel-ca");
    let cert = params.self_signed(&key).unwrap();
    SigningConfig {
        ca_cert_pem: cert.pem(),
        ca_key_pem: key.serialize_pem(),
        duration: Duration::from_secs(3600),
    }
}

fn csr(signer: &str, sans: Vec<String>, expiration: Option<i32>) -> CertificateSigningRequest {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(sans).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "system:node:n1");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let pem = params.serialize_request(&key).unwrap().pem().unwrap();
    let mut csr: CertificateSigningRequest = serde_json::from_value(json!({
        "metadata": {"name": "c"},
        "spec": {"request": "", "signerName": signer, "usages": ["digital signature", "client auth"]}}))
    .unwrap();
    csr.spec.request = ByteString(pem.into_bytes());
    csr.spec.expiration_seconds = expiration;
    csr
}

#[test]
fn a_client_certificate_carries_the_subject_and_the_asked_lifetime() {
    let config = ca();
    let now = time::OffsetDateTime::now_utc();
    let pem = sign(&csr(KUBELET_CLIENT_SIGNER, vec![], Some(900)), &config, now).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = block.parse_x509().unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap();
    assert_eq!(cn.as_str().unwrap(), "system:node:n1");
    assert_eq!(
        cert.issuer()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "keel-ca"
    );
    let lasts = cert.validity().not_after.timestamp() - now.unix_timestamp();
    assert!((899..=900).contains(&lasts), "{lasts}");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    // Signed by the CA's key.
    let (_, ca_block) = x509_parser::pem::parse_x509_pem(config.ca_cert_pem.as_bytes()).unwrap();
    let ca = ca_block.parse_x509().unwrap();
    cert.verify_signature(Some(ca.public_key())).unwrap();
}

#[test]
fn the_lifetime_is_capped_and_client_requests_with_names_refused() {
    let config = ca();
    let asked = csr(KUBELET_CLIENT_SIGNER, vec![], Some(100_000));
    assert_eq!(lifetime(&asked, config.duration), Duration::from_secs(3600));
    assert_eq!(
        lifetime(&csr(KUBELET_CLIENT_SIGNER, vec![], None), config.duration),
        config.duration
    );
    let named = csr(KUBELET_CLIENT_SIGNER, vec!["n1.example".into()], None);
    let error = sign(&named, &config, time::OffsetDateTime::now_utc()).unwrap_err();
    assert!(error.contains("subject alternative names"), "{error}");
    let mut serving = csr(KUBELET_SERVING_SIGNER, vec!["n1.example".into()], None);
    serving.spec.usages = Some(vec!["digital signature".into(), "server auth".into()]);
    assert!(sign(&serving, &config, time::OffsetDateTime::now_utc()).is_ok());
}
