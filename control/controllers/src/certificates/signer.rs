//! The csrsigning controller: kube-controller-manager's local CA signer. An approved request
//! for the kubelet client or kubelet serving signer gets a certificate from the cluster CA:
//! the request's key and subject (and, for serving, its DNS and IP names), the usages the spec
//! asks for, valid from five minutes ago (clock skew, as kube backdates) for
//! min(spec.expirationSeconds, the signing duration).
//!
//! A request the signer cannot honour (its PEM does not parse, a client request naming
//! SANs) gets the `Failed` condition with reason `SignerValidationFailure`, as kube's does.

use std::time::Duration;

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestStatus,
};
use k8s_openapi::ByteString;
use kube::api::PostParams;
use kube::{Api, ResourceExt as _};

use super::{
    condition, has_condition, SigningConfig, KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER,
};
use crate::error::{Error, Result};

/// How far back a certificate's validity starts (kube's backdate for clock skew).
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The CA as an rcgen issuer.
pub fn issuer(
    config: &SigningConfig,
) -> std::result::Result<rcgen::Issuer<'static, rcgen::KeyPair>, rcgen::Error> {
    let key = rcgen::KeyPair::from_pem(&config.ca_key_pem)?;
    rcgen::Issuer::from_ca_cert_pem(&config.ca_cert_pem, key)
}

/// How long a certificate for `csr` lasts: its expirationSeconds, at most `max`.
pub fn lifetime(csr: &CertificateSigningRequest, max: Duration) -> Duration {
    csr.spec
        .expiration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map(Duration::from_secs)
        .map_or(max, |asked| asked.min(max))
}

/// The certificate for `csr`, PEM, or why the signer refuses it.
pub fn sign(
    csr: &CertificateSigningRequest,
    config: &SigningConfig,
    now: time::OffsetDateTime,
) -> std::result::Result<String, String> {
    let pem = std::str::from_utf8(&csr.spec.request.0)
        .map_err(|_| "the request is not PEM text".to_owned())?;
    let mut request = rcgen::CertificateSigningRequestParams::from_pem(pem)
        .map_err(|e| format!("invalid certificate request: {e}"))?;
    let serving = csr.spec.signer_name == KUBELET_SERVING_SIGNER;
    let params = &mut request.params;
    if !serving && !params.subject_alt_names.is_empty() {
        return Err("client certificates may not have subject alternative names".into());
    }
    if serving {
        params.subject_alt_names.retain(|san| {
            matches!(
                san,
                rcgen::SanType::DnsName(_) | rcgen::SanType::IpAddress(_)
            )
        });
    }
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages.clear();
    params.extended_key_usages.clear();
    for usage in csr.spec.usages.iter().flatten() {
        match usage.as_str() {
            "digital signature" => params
                .key_usages
                .push(rcgen::KeyUsagePurpose::DigitalSignature),
            "key encipherment" => params
                .key_usages
                .push(rcgen::KeyUsagePurpose::KeyEncipherment),
            "client auth" => params
                .extended_key_usages
                .push(rcgen::ExtendedKeyUsagePurpose::ClientAuth),
            "server auth" => params
                .extended_key_usages
                .push(rcgen::ExtendedKeyUsagePurpose::ServerAuth),
            other => {
                return Err(format!(
                    "usage {other:?} is not allowed for signer {}",
                    csr.spec.signer_name
                ))
            }
        }
    }
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime(csr, config.duration);
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&random_serial());
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    let issuer = issuer(config).map_err(|e| format!("cluster signing CA: {e}"))?;
    let certificate = request
        .signed_by(&issuer)
        .map_err(|e| format!("signing: {e}"))?;
    Ok(certificate.pem())
}

/// 16 random bytes, positive as a serial must be.
fn random_serial() -> [u8; 16] {
    use std::hash::{BuildHasher, Hasher};
    // Two SipHash outputs under fresh random keys: unpredictable enough for a serial,
    // without another randomness crate.
    let mut bytes = [0u8; 16];
    for half in bytes.chunks_mut(8) {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        );
        half.copy_from_slice(&hasher.finish().to_be_bytes());
    }
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    bytes
}

/// Signs `csr` if it is approved, unsigned, and for a signer this controller serves.
pub async fn reconcile(
    client: &kube::Client,
    config: &SigningConfig,
    csr: &CertificateSigningRequest,
) -> Result<()> {
    if !has_condition(csr, "Approved") || has_condition(csr, "Failed") {
        return Ok(());
    }
    let status = csr.status.clone().unwrap_or_default();
    if status.certificate.as_ref().is_some_and(|c| !c.0.is_empty()) {
        return Ok(());
    }
    if ![KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER].contains(&csr.spec.signer_name.as_str()) {
        return Ok(());
    }
    let mut status = CertificateSigningRequestStatus { ..status };
    match sign(csr, config, time::OffsetDateTime::now_utc()) {
        Ok(pem) => status.certificate = Some(ByteString(pem.into_bytes())),
        Err(why) => {
            tracing::info!(csr = %csr.name_any(), %why, "not signed");
            status
                .conditions
                .get_or_insert_with(Vec::new)
                .push(condition("Failed", "SignerValidationFailure", &why));
        }
    }
    let updated = CertificateSigningRequest {
        metadata: kube::api::ObjectMeta {
            name: csr.metadata.name.clone(),
            resource_version: csr.metadata.resource_version.clone(),
            ..Default::default()
        },
        spec: csr.spec.clone(),
        status: Some(status),
    };
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    api.replace_status(&csr.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(Error::from)?;
    tracing::info!(csr = %csr.name_any(), "signed");
    Ok(())
}

#[cfg(test)]
mod tests;
