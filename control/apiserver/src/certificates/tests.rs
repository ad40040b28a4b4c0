//! Validation and the write rules of CertificateSigningRequests.

use base64::Engine;
use serde_json::{json, Value};

use super::*;

fn request_pem(common_name: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn csr(usages: Value) -> Value {
    let request = base64::engine::general_purpose::STANDARD.encode(request_pem("system:node:n1"));
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": KIND,
        "metadata": {"name": "node-csr-1"},
        "spec": {"request": request,
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": usages}})
}

fn messages(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(FieldError::describe).collect()
}

#[test]
fn a_well_formed_request_validates() {
    let errors = validate(&csr(json!(["digital signature", "client auth"])), None);
    assert!(errors.is_empty(), "{:?}", messages(&errors));
}

#[test]
fn bad_requests_are_refused_with_kubes_fields() {
    let mut object = csr(json!(["client auth", "client auth", "flying"]));
    object["spec"]["signerName"] = json!("");
    object["spec"]["expirationSeconds"] = json!(60);
    let found = messages(&validate(&object, None));
    assert!(
        found.contains(&"spec.signerName: Required value".into()),
        "{found:?}"
    );
    assert!(
        found.contains(&"spec.usages[1]: Duplicate value: \"client auth\"".into()),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.starts_with("spec.usages[2]: Unsupported value: \"flying\"")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|m| m.starts_with("spec.expirationSeconds: Invalid value: 60")),
        "{found:?}"
    );

    let mut garbled = csr(json!(["client auth"]));
    garbled["spec"]["request"] = json!(base64::engine::general_purpose::STANDARD
        .encode("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
    let found = messages(&validate(&garbled, None));
    assert!(
        found
            .iter()
            .any(|m| m.contains("PEM block type must be CERTIFICATE REQUEST")),
        "{found:?}"
    );

    let mut empty = csr(json!([]));
    empty["spec"].as_object_mut().unwrap().remove("request");
    let found = messages(&validate(&empty, None));
    assert!(
        found.contains(&"spec.request: Required value".into()),
        "{found:?}"
    );
    assert!(
        found.contains(&"spec.usages: Required value: usages must be provided".into()),
        "{found:?}"
    );
}

#[test]
fn a_tampered_request_fails_its_signature_check() {
    let pem = request_pem("system:node:n1");
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let mut der = block.contents.clone();
    // Flip a byte inside the subject's common name: the signature no longer covers it.
    let at = der.windows(4).position(|w| w == b"node").unwrap();
    der[at] = b'N';
    let tampered = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64::engine::general_purpose::STANDARD.encode(&der)
    );
    assert!(parse_request(pem.as_bytes()).is_ok());
    let error = parse_request(tampered.as_bytes()).unwrap_err();
    assert!(error.contains("signature"), "{error}");
}

#[test]
fn a_certificate_needs_an_approval_and_stays_once_issued() {
    let old = csr(json!(["client auth"]));
    let mut issued = old.clone();
    let certificate = base64::engine::general_purpose::STANDARD.encode(
        rcgen::generate_simple_self_signed(vec!["x".into()])
            .unwrap()
            .cert
            .pem(),
    );
    issued["status"] = json!({"certificate": certificate});
    let found = messages(&validate(&issued, Some(&old)));
    assert!(
        found
            .iter()
            .any(|m| m.starts_with("status.certificate: Forbidden: certificate can only be set")),
        "{found:?}"
    );

    issued["status"]["conditions"] = json!([{"type": "Approved", "status": "True"}]);
    assert!(validate(&issued, Some(&old)).is_empty());

    let mut both = issued.clone();
    both["status"]["conditions"] =
        json!([{"type": "Approved", "status": "True"}, {"type": "Denied", "status": "True"}]);
    let found = messages(&validate(&both, Some(&old)));
    assert!(
        found.iter().any(|m| m.contains("mutually exclusive")),
        "{found:?}"
    );

    let mut replaced = issued.clone();
    replaced["status"]["certificate"] = json!(base64::engine::general_purpose::STANDARD.encode(
        rcgen::generate_simple_self_signed(vec!["y".into()])
            .unwrap()
            .cert
            .pem()
    ));
    let found = messages(&validate(&replaced, Some(&issued)));
    assert!(
        found
            .iter()
            .any(|m| m.contains("may not modify existing certificate")),
        "{found:?}"
    );

    let mut unapproved = issued.clone();
    unapproved["status"]["conditions"] = json!([]);
    let found = messages(&validate(&unapproved, Some(&issued)));
    assert!(
        found
            .iter()
            .any(|m| m.contains("may not remove a condition of type \"Approved\"")),
        "{found:?}"
    );
}

#[test]
fn status_writes_keep_the_approval_and_approval_writes_keep_the_certificate() {
    let registry = crate::registry::Registry::default();
    let csrs = registry
        .find("certificates.k8s.io", "v1", "certificatesigningrequests")
        .unwrap();
    let mut old = csr(json!(["client auth"]));
    old["status"] =
        json!({"conditions": [{"type": "Approved", "status": "True", "reason": "AutoApproved"}]});
    // A status write that drops the approval and changes the spec: neither sticks.
    let mut new = old.clone();
    new["spec"]["signerName"] = json!("example.com/other");
    new["status"] =
        json!({"certificate": "Y2VydA==", "conditions": [{"type": "Failed", "status": "True"}]});
    prepare_for_update(&csrs, Part::Status, &mut new, &old);
    assert_eq!(new["spec"], old["spec"]);
    assert_eq!(new["status"]["certificate"], "Y2VydA==");
    let types: Vec<&str> = new["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["Approved", "Failed"]);
    assert!(new["status"]["conditions"][1]["lastUpdateTime"].is_string());

    // An update of the object itself keeps the spec: who asked cannot be rewritten.
    let mut forged = old.clone();
    forged["spec"]["username"] = json!("system:node:other");
    let updated = crate::object::prepare_for_update(&csrs, Part::Main, forged, &old);
    assert_eq!(updated["spec"], old["spec"]);

    // An approval write sets conditions but not the certificate.
    let mut approval = old.clone();
    approval["status"] =
        json!({"certificate": "ZXZpbA==", "conditions": [{"type": "Denied", "status": "True"}]});
    prepare_for_update(&csrs, Part::Approval, &mut approval, &old);
    assert!(approval["status"].get("certificate").is_none());
    assert_eq!(approval["status"]["conditions"][0]["type"], "Denied");
}
