//! certificates.k8s.io/v1 CertificateSigningRequests, as kube-apiserver serves them:
//!
//! ```text
//!  create ──► spec.username/groups/uid from the requester (never from the body)
//!             validation: the PEM request parses and its signature holds, signerName,
//!             usages, expirationSeconds
//!  update ──► metadata only (spec and status kept)
//!  /approval ► conditions only (Approved, Denied), and only by who may `approve` the
//!             signerName (`signers` resource) — the CertificateApproval admission plugin
//!  /status ──► status, Approved/Denied kept as they were; a certificate only once approved,
//!             and only by who may `sign` the signerName — CertificateSigning
//! ```
//!
//! Who is creating a request is known to the server, not to the storage path; the server
//! runs each resource request inside [`REQUESTER`]'s scope so the create can read it without
//! every internal call having to pass an identity along.

use serde_json::{json, Value};

use crate::admission::FieldError;
use crate::auth::Identity;
use crate::error::{ApiError, Result};
use crate::object::Part;
use crate::rbac::authorizer::ResourceAttributes;
use crate::rbac::{Attributes, Authorizer};
use crate::request::{ResourceRequest, Verb};

tokio::task_local! {
    /// The authenticated user of the request being served (after impersonation).
    pub static REQUESTER: Identity;
}

/// The kind.
pub const KIND: &str = "CertificateSigningRequest";

/// The key usages kube accepts in `spec.usages`.
pub const USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// Shortest `spec.expirationSeconds` kube accepts (ten minutes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;

fn is_csr(resource: &crate::registry::Resource) -> bool {
    resource.group == "certificates.k8s.io" && resource.kind == KIND
}

/// On create: the requester's name and groups into the spec, whatever the body said.
pub fn fill_requester(resource: &crate::registry::Resource, object: &mut Value) {
    if !is_csr(resource) {
        return;
    }
    let Ok(who) = REQUESTER.try_with(Identity::clone) else {
        // An internal create (no request): nothing to record.
        return;
    };
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("username".into(), json!(who.user));
        spec.insert("groups".into(), json!(who.groups));
        spec.remove("uid");
        spec.remove("extra");
    }
}

/// What a write of `part` keeps from `old`: the main resource changes metadata only, the
/// status subresource keeps the approval conditions, the approval subresource only the
/// conditions (not the certificate).
pub fn prepare_for_update(
    resource: &crate::registry::Resource,
    part: Part,
    new: &mut Value,
    old: &Value,
) {
    if !is_csr(resource) {
        return;
    }
    new["spec"] = old["spec"].clone();
    let approval = |c: &&Value| matches!(c["type"].as_str(), Some("Approved" | "Denied"));
    match part {
        Part::Status => {
            let mut conditions: Vec<Value> = old["status"]["conditions"]
                .as_array()
                .map(|c| c.iter().filter(approval).cloned().collect())
                .unwrap_or_default();
            if let Some(asked) = new["status"]["conditions"].as_array() {
                conditions.extend(asked.iter().filter(|c| !approval(c)).cloned());
            }
            set_conditions(new, conditions);
        }
        Part::Approval => {
            let conditions = new["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut status = old["status"].clone();
            if !status.is_object() {
                status = json!({});
            }
            new["status"] = status;
            set_conditions(new, conditions);
        }
        _ => {}
    }
    stamp_conditions(new);
}

fn set_conditions(object: &mut Value, conditions: Vec<Value>) {
    if !object["status"].is_object() {
        object["status"] = json!({});
    }
    if conditions.is_empty() {
        if let Some(status) = object["status"].as_object_mut() {
            status.remove("conditions");
        }
    } else {
        object["status"]["conditions"] = Value::Array(conditions);
    }
}

/// Conditions without times get now, as kube's strategy sets lastUpdateTime and
/// lastTransitionTime.
fn stamp_conditions(object: &mut Value) {
    let Some(conditions) = object["status"]["conditions"].as_array_mut() else {
        return;
    };
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    for condition in conditions {
        for field in ["lastUpdateTime", "lastTransitionTime"] {
            if condition[field].as_str().unwrap_or("").is_empty() {
                condition[field] = json!(now);
            }
        }
    }
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        reason: "FieldValueInvalid",
        field: field.into(),
        message: message.into(),
    }
}

fn required(field: &str, detail: &str) -> FieldError {
    FieldError {
        reason: "FieldValueRequired",
        field: field.into(),
        message: if detail.is_empty() {
            "Required value".into()
        } else {
            format!("Required value: {detail}")
        },
    }
}

/// The DER of a PEM `CERTIFICATE REQUEST` whose signature holds, or why not.
pub fn parse_request(pem: &[u8]) -> std::result::Result<Vec<u8>, String> {
    use x509_parser::prelude::FromDer;
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_owned())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    let (_, request) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
            .map_err(|e| format!("x509: malformed certificate request: {e}"))?;
    request
        .verify_signature()
        .map_err(|_| "x509: signature check failed on the certificate request".to_owned())?;
    Ok(block.contents)
}

/// kube's ValidateCertificateSigningRequest{Create,Update,StatusUpdate,ApprovalUpdate} in one:
/// the spec on every write (it never changes after the create), the status's conditions and
/// certificate against the old object's.
pub fn validate(object: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = &object["spec"];
    match spec["request"].as_str() {
        None | Some("") => errs.push(required("spec.request", "")),
        Some(encoded) => {
            use base64::Engine;
            match base64::engine::general_purpose::STANDARD.decode(encoded) {
                Err(e) => errs.push(invalid(
                    "spec.request",
                    format!("Invalid value: \"<request>\": {e}"),
                )),
                Ok(pem) => {
                    if let Err(e) = parse_request(&pem) {
                        errs.push(invalid(
                            "spec.request",
                            format!("Invalid value: \"<request>\": {e}"),
                        ))
                    }
                }
            }
        }
    }
    match spec["signerName"].as_str() {
        None | Some("") => errs.push(required("spec.signerName", "")),
        Some(signer) => {
            let (domain, path) = signer.split_once('/').unwrap_or((signer, ""));
            if path.is_empty() || domain.is_empty() || domain.contains('*') {
                errs.push(invalid(
                    "spec.signerName",
                    format!("Invalid value: \"{signer}\": must be a fully qualified domain and path of the form 'example.com/signer-name'"),
                ));
            }
        }
    }
    if let Some(seconds) = spec.get("expirationSeconds").filter(|v| !v.is_null()) {
        match seconds.as_i64() {
            Some(s) if s >= MIN_EXPIRATION_SECONDS => {}
            _ => errs.push(invalid(
                "spec.expirationSeconds",
                format!("Invalid value: {seconds}: may not specify a duration less than 600 seconds (10 minutes)"),
            )),
        }
    }
    let usages: Vec<&Value> = spec["usages"]
        .as_array()
        .map(|u| u.iter().collect())
        .unwrap_or_default();
    if usages.is_empty() {
        errs.push(required("spec.usages", "usages must be provided"));
    }
    let mut seen = Vec::new();
    for (i, usage) in usages.iter().enumerate() {
        let text = usage.as_str().unwrap_or("");
        if !USAGES.contains(&text) {
            errs.push(FieldError {
                reason: "FieldValueNotSupported",
                field: format!("spec.usages[{i}]"),
                message: format!(
                    "Unsupported value: {usage}: supported values: {}",
                    USAGES
                        .iter()
                        .map(|u| format!("\"{u}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        } else if seen.contains(&text) {
            errs.push(FieldError {
                reason: "FieldValueDuplicate",
                field: format!("spec.usages[{i}]"),
                message: format!("Duplicate value: \"{text}\""),
            });
        }
        seen.push(text);
    }
    validate_status(object, old, &mut errs);
    errs
}

fn condition_true(object: &Value, kind: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == kind && c["status"] == "True"))
}

fn validate_status(object: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let conditions = object["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    for (i, condition) in conditions.iter().enumerate() {
        let field = format!("status.conditions[{i}]");
        let kind = condition["type"].as_str().unwrap_or("");
        if kind.is_empty() {
            errs.push(required(&format!("{field}.type"), ""));
            continue;
        }
        let status = condition["status"].as_str().unwrap_or("");
        if matches!(kind, "Approved" | "Denied" | "Failed") {
            if seen.iter().any(|k| k == kind) {
                errs.push(FieldError {
                    reason: "FieldValueDuplicate",
                    field: format!("{field}.type"),
                    message: format!("Duplicate value: \"{kind}\""),
                });
            }
            if status != "True" {
                errs.push(FieldError {
                    reason: "FieldValueNotSupported",
                    field: format!("{field}.status"),
                    message: format!("Unsupported value: \"{status}\": supported values: \"True\""),
                });
            }
        } else if !matches!(status, "True" | "False" | "Unknown") {
            errs.push(FieldError {
                reason: "FieldValueNotSupported",
                field: format!("{field}.status"),
                message: format!("Unsupported value: \"{status}\": supported values: \"False\", \"True\", \"Unknown\""),
            });
        }
        seen.push(kind.to_owned());
    }
    if condition_true(object, "Approved") && condition_true(object, "Denied") {
        errs.push(invalid(
            "status.conditions",
            "Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive",
        ));
    }
    let certificate = object["status"]["certificate"].as_str().unwrap_or("");
    let old_certificate = old
        .and_then(|o| o["status"]["certificate"].as_str())
        .unwrap_or("");
    if let Some(old) = old {
        for kind in ["Approved", "Denied"] {
            if condition_true(old, kind) && !condition_true(object, kind) {
                errs.push(invalid(
                    "status.conditions",
                    format!("Forbidden: updates may not remove a condition of type \"{kind}\""),
                ));
            }
        }
        if !old_certificate.is_empty() && certificate != old_certificate {
            errs.push(invalid(
                "status.certificate",
                "Forbidden: updates may not modify existing certificate content",
            ));
        }
    }
    if !certificate.is_empty() && certificate != old_certificate {
        if !condition_true(object, "Approved")
            || condition_true(object, "Denied")
            || condition_true(object, "Failed")
        {
            errs.push(invalid(
                "status.certificate",
                "Forbidden: certificate can only be set if the Approved condition is present and Failed and Denied are not",
            ));
        }
        use base64::Engine;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(certificate)
            .unwrap_or_default();
        let parses = x509_parser::pem::Pem::iter_from_buffer(&pem)
            .next()
            .is_some_and(|p| p.is_ok_and(|p| p.label == "CERTIFICATE" && p.parse_x509().is_ok()));
        if !parses {
            errs.push(invalid(
                "status.certificate",
                "Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block",
            ));
        }
    }
}

/// The CertificateApproval and CertificateSigning admission plugins: an `/approval` write
/// needs `approve` on `signers` for the request's signerName, a `/status` write that sets the
/// certificate needs `sign`. `Ok(())` for every other request.
pub async fn authorize_signer(
    api: &crate::rest::Api,
    authorizer: &Authorizer,
    identity: &Identity,
    request: &ResourceRequest,
    body: &[u8],
) -> Result<()> {
    if request.group != "certificates.k8s.io"
        || request.resource != "certificatesigningrequests"
        || !matches!(request.verb, Verb::Update | Verb::Patch)
    {
        return Ok(());
    }
    let (verb, what) = match request.subresource.as_deref() {
        Some("approval") => ("approve", "approve"),
        Some("status") => ("sign", "sign"),
        _ => return Ok(()),
    };
    let Some(name) = &request.name else {
        return Ok(());
    };
    let Some(resource) =
        api.registry
            .find("certificates.k8s.io", "v1", "certificatesigningrequests")
    else {
        return Ok(());
    };
    let Some(current) = crate::object::read(&*api.storage, &resource.key(None, name)).await? else {
        // The write itself answers 404.
        return Ok(());
    };
    if verb == "sign" {
        // Only a write that changes the certificate signs.
        let asked: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let new = asked["status"]["certificate"].as_str().unwrap_or("");
        let old = current.object["status"]["certificate"]
            .as_str()
            .unwrap_or("");
        if new.is_empty() || new == old {
            return Ok(());
        }
    }
    let signer = current.object["spec"]["signerName"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let domain = signer.split('/').next().unwrap_or("");
    let allowed = [signer.clone(), format!("{domain}/*")]
        .into_iter()
        .any(|name| {
            authorizer.allows(
                identity,
                &Attributes {
                    verb: verb.into(),
                    resource: Some(ResourceAttributes {
                        group: "certificates.k8s.io".into(),
                        resource: "signers".into(),
                        name,
                        ..ResourceAttributes::default()
                    }),
                    path: String::new(),
                },
            )
        });
    if allowed {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "certificatesigningrequests.certificates.k8s.io \"{name}\" is forbidden: user not permitted to {what} requests with signerName \"{signer}\""
        )))
    }
}

#[cfg(test)]
mod tests;
