//! `kubectl get csr`'s columns, as kube's printer has them: name, age, signer, requestor,
//! requested duration, and the condition (`Pending`, `Approved,Issued`, `Denied`, …).

use serde_json::Value;

use super::cells::{age, name};
use super::{col, human_duration, Column, AGE, NAME};

pub(super) const CSR_COLUMNS: &[Column] = &[
    NAME,
    AGE,
    col(
        "SignerName",
        "string",
        "Only one signer is allowed per CSR.",
    ),
    col(
        "Requestor",
        "string",
        "Name of the user who made the request.",
    ),
    col(
        "RequestedDuration",
        "string",
        "The duration the certificate was asked to be valid for.",
    ),
    col(
        "Condition",
        "string",
        "The request's approval and issuance.",
    ),
];

/// kube's CSR condition text: the conditions' types joined by commas, `Issued` added once
/// a certificate is there, `Pending` for none.
pub(super) fn condition(object: &Value) -> String {
    let mut parts: Vec<String> = object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str().map(str::to_owned))
        .collect();
    if object["status"]["certificate"]
        .as_str()
        .is_some_and(|c| !c.is_empty())
    {
        parts.push("Issued".into());
    }
    if parts.is_empty() {
        "Pending".into()
    } else {
        parts.join(",")
    }
}

pub(super) fn csr_cells(object: &Value, now: i64) -> Vec<Value> {
    let text = |field: &str| Value::from(object["spec"][field].as_str().unwrap_or(""));
    let duration = object["spec"]["expirationSeconds"]
        .as_i64()
        .map_or_else(|| "<none>".to_owned(), human_duration);
    vec![
        name(object),
        age(object, now),
        text("signerName"),
        text("username"),
        Value::from(duration),
        Value::from(condition(object)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_condition_reads_as_kubectl_shows_it() {
        assert_eq!(condition(&json!({})), "Pending");
        let approved = json!({"status": {"conditions": [{"type": "Approved"}]}});
        assert_eq!(condition(&approved), "Approved");
        let issued =
            json!({"status": {"conditions": [{"type": "Approved"}], "certificate": "Y2VydA=="}});
        assert_eq!(condition(&issued), "Approved,Issued");
    }
}
