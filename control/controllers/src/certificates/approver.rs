//! The csrapproving controller: kube-controller-manager's `sarApprover`. A kubelet client
//! request is approved when its requester is allowed to ask for one, which a
//! SubjectAccessReview of the requester on `certificatesigningrequests/nodeclient` (a new
//! node, through its bootstrap token) or `/selfnodeclient` (a node renewing its own
//! certificate) decides, so who may join is RBAC's to say.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestStatus,
};
use kube::api::PostParams;
use kube::{Api, ResourceExt as _};

use super::{condition, has_condition, KUBELET_CLIENT_SIGNER};
use crate::error::Result;

/// The subject of a request, as the approver reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct Subject {
    /// CN.
    pub common_name: String,
    /// O.
    pub organizations: Vec<String>,
    /// Whether the request names any SAN (a client certificate must not).
    pub has_alt_names: bool,
}

/// The subject of a PEM request, if it parses and its signature holds.
pub fn subject(pem: &[u8]) -> Option<Subject> {
    use x509_parser::prelude::FromDer;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let (_, request) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .ok()?;
    request.verify_signature().ok()?;
    let has_alt_names = request.requested_extensions().is_some_and(|mut e| {
        e.any(|e| {
            matches!(
                e,
                x509_parser::extensions::ParsedExtension::SubjectAlternativeName(_)
            )
        })
    });
    let name = &request.certification_request_info.subject;
    let common_name = name
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    let organizations = name
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_owned))
        .collect();
    Some(Subject {
        common_name,
        organizations,
        has_alt_names,
    })
}

/// kube's `isNodeClientCert`: the kubelet client signer, O exactly `system:nodes`, CN
/// `system:node:<name>`, no SANs, and client usages only.
pub fn is_node_client_request(csr: &CertificateSigningRequest, subject: &Subject) -> bool {
    let spec = &csr.spec;
    let usages_ok = !spec.usages.as_deref().unwrap_or_default().is_empty()
        && spec.usages.iter().flatten().all(|u| {
            matches!(
                u.as_str(),
                "digital signature" | "key encipherment" | "client auth"
            )
        })
        && spec.usages.iter().flatten().any(|u| u == "client auth");
    spec.signer_name == KUBELET_CLIENT_SIGNER
        && subject.organizations == ["system:nodes"]
        && subject.common_name.starts_with("system:node:")
        && subject.common_name.len() > "system:node:".len()
        && !subject.has_alt_names
        && usages_ok
}

/// Approves `csr` if it is a kubelet client request its requester may make.
pub async fn reconcile(client: &kube::Client, csr: &CertificateSigningRequest) -> Result<()> {
    if has_condition(csr, "Approved") || has_condition(csr, "Denied") {
        return Ok(());
    }
    if csr.spec.signer_name != KUBELET_CLIENT_SIGNER {
        return Ok(());
    }
    let Some(subject) = subject(&csr.spec.request.0) else {
        // The signer fails what cannot be parsed; the approver leaves it alone, as kube's.
        return Ok(());
    };
    if !is_node_client_request(csr, &subject) {
        return Ok(());
    }
    let own = csr.spec.username.as_deref() == Some(subject.common_name.as_str());
    let (subresource, message) = if own {
        (
            "selfnodeclient",
            "Auto approving self kubelet client certificate after SubjectAccessReview.",
        )
    } else {
        (
            "nodeclient",
            "Auto approving kubelet client certificate after SubjectAccessReview.",
        )
    };
    if !requester_may(client, csr, subresource).await? {
        tracing::info!(csr = %csr.name_any(), subresource, "requester may not; left for a person");
        return Ok(());
    }
    let mut approved = CertificateSigningRequest {
        metadata: kube::api::ObjectMeta {
            name: csr.metadata.name.clone(),
            resource_version: csr.metadata.resource_version.clone(),
            ..Default::default()
        },
        spec: csr.spec.clone(),
        status: Some(csr.status.clone().unwrap_or_default()),
    };
    let status = approved
        .status
        .get_or_insert_with(CertificateSigningRequestStatus::default);
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition("Approved", "AutoApproved", message));
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    api.replace_subresource(
        "approval",
        &csr.name_any(),
        &PostParams::default(),
        &approved,
    )
    .await?;
    tracing::info!(csr = %csr.name_any(), node = %subject.common_name, "approved");
    Ok(())
}

/// A SubjectAccessReview of the requester on `certificatesigningrequests/<subresource>`.
async fn requester_may(
    client: &kube::Client,
    csr: &CertificateSigningRequest,
    subresource: &str,
) -> Result<bool> {
    let spec = &csr.spec;
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: spec.username.clone(),
            groups: spec.groups.clone(),
            uid: spec.uid.clone(),
            extra: spec.extra.clone(),
            resource_attributes: Some(ResourceAttributes {
                group: Some("certificates.k8s.io".into()),
                resource: Some("certificatesigningrequests".into()),
                subresource: Some(subresource.into()),
                verb: Some("create".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = api.create(&PostParams::default(), &review).await?;
    Ok(answer.status.is_some_and(|s| s.allowed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(cn: &str, org: &str, san: bool) -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(if san {
            vec!["n1.example".to_owned()]
        } else {
            vec![]
        })
        .unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, org);
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn csr(pem: &str, usages: &[&str]) -> CertificateSigningRequest {
        let mut csr: CertificateSigningRequest =
            serde_json::from_value(json!({"metadata": {"name": "c"},
            "spec": {"request": "", "signerName": KUBELET_CLIENT_SIGNER, "usages": usages,
                "username": "system:bootstrap:abcdef"}}))
            .unwrap();
        csr.spec.request = k8s_openapi::ByteString(pem.as_bytes().to_vec());
        csr
    }

    #[test]
    fn only_kubelet_client_requests_are_recognised() {
        let good = request("system:node:n1", "system:nodes", false);
        let parsed = subject(good.as_bytes()).unwrap();
        assert_eq!(parsed.common_name, "system:node:n1");
        assert_eq!(parsed.organizations, ["system:nodes"]);
        assert!(is_node_client_request(
            &csr(&good, &["digital signature", "client auth"]),
            &parsed
        ));
        assert!(!is_node_client_request(
            &csr(&good, &["digital signature", "server auth"]),
            &parsed
        ));

        let masters = request("system:node:n1", "system:masters", false);
        assert!(!is_node_client_request(
            &csr(&masters, &["client auth"]),
            &subject(masters.as_bytes()).unwrap()
        ));
        let not_a_node = request("alice", "system:nodes", false);
        assert!(!is_node_client_request(
            &csr(&not_a_node, &["client auth"]),
            &subject(not_a_node.as_bytes()).unwrap()
        ));
        let with_san = request("system:node:n1", "system:nodes", true);
        assert!(!is_node_client_request(
            &csr(&with_san, &["client auth"]),
            &subject(with_san.as_bytes()).unwrap()
        ));
        assert!(subject(b"not pem").is_none());
    }
}
