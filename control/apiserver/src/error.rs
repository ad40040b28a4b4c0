//! Every failure a client sees, as kube-apiserver reports it: a `Status` object whose code,
//! reason and message kubectl and the client libraries print and match on.

use serde_json::{json, Value};

use crate::admission::FieldError;
use crate::storage::StorageError;

/// An API error: HTTP code, `reason`, message and optional details.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status code.
    pub code: u16,
    /// The machine-readable reason (`NotFound`, `AlreadyExists`, `Invalid`, ...).
    pub reason: &'static str,
    /// What kubectl prints after `Error from server (Reason):`.
    pub message: String,
    /// `details`: the object's name, group, kind and causes.
    pub details: Option<Value>,
    /// Seconds for a `Retry-After` header (429).
    pub retry_after: Option<u64>,
}

/// Result of a handler.
pub type Result<T> = std::result::Result<T, ApiError>;

/// Names an object in messages: `pods "x"`, `deployments.apps "web"`.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// Plural resource.
    pub resource: &'a str,
    /// API group ("" for core).
    pub group: &'a str,
    /// Object name.
    pub name: &'a str,
}

impl Target<'_> {
    /// `resource` or `resource.group`, as kube qualifies it in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self) -> Value {
        json!({"name": self.name, "group": self.group, "kind": self.resource})
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    /// 400 BadRequest.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "BadRequest", message)
    }

    /// 404 for an object.
    pub fn not_found(target: &Target<'_>) -> ApiError {
        ApiError {
            details: Some(target.details()),
            ..ApiError::new(
                404,
                "NotFound",
                format!("{} \"{}\" not found", target.qualified(), target.name),
            )
        }
    }

    /// 404 for a path the server does not serve.
    pub fn no_route() -> ApiError {
        ApiError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    /// 405 for a verb a resource does not support.
    pub fn method_not_allowed(verb: &str, resource: &str) -> ApiError {
        ApiError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({verb} {resource})"),
        )
    }

    /// 409 for a create of an existing name.
    pub fn already_exists(target: &Target<'_>) -> ApiError {
        ApiError {
            details: Some(target.details()),
            ..ApiError::new(
                409,
                "AlreadyExists",
                format!("{} \"{}\" already exists", target.qualified(), target.name),
            )
        }
    }

    /// 409 for an update that lost a race (stale resourceVersion).
    pub fn conflict(target: &Target<'_>, why: &str) -> ApiError {
        ApiError {
            details: Some(target.details()),
            ..ApiError::new(
                409,
                "Conflict",
                format!(
                    "Operation cannot be fulfilled on {} \"{}\": {why}",
                    target.qualified(),
                    target.name
                ),
            )
        }
    }

    /// The conflict every stale write gets.
    pub fn modified(target: &Target<'_>) -> ApiError {
        ApiError::conflict(
            target,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with one cause per field.
    pub fn invalid(kind: &str, group: &str, name: &str, errors: &[FieldError]) -> ApiError {
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let summary: Vec<String> = errors.iter().map(FieldError::describe).collect();
        let summary = if summary.len() == 1 {
            summary[0].clone()
        } else {
            format!("[{}]", summary.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason, "message": e.message, "field": e.field}))
            .collect();
        ApiError {
            details: Some(json!({"name": name, "group": group, "kind": kind, "causes": causes})),
            ..ApiError::new(
                422,
                "Invalid",
                format!("{qualified} \"{name}\" is invalid: {summary}"),
            )
        }
    }

    /// 403 Forbidden.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(403, "Forbidden", message)
    }

    /// 401: no credentials, or credentials that do not check out.
    pub fn unauthorized() -> ApiError {
        ApiError::new(401, "Unauthorized", "Unauthorized")
    }

    /// 410 Expired: a continue token or resourceVersion below the compacted revision.
    pub fn expired(message: impl Into<String>) -> ApiError {
        ApiError::new(410, "Expired", message)
    }

    /// 413 for a body over the limit.
    pub fn too_large(limit: usize) -> ApiError {
        ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 415 for a body format the server does not read.
    pub fn unsupported_media_type(content_type: &str) -> ApiError {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type})"),
        )
    }

    /// 429 past the in-flight limit.
    pub fn too_many_requests() -> ApiError {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            )
        }
    }

    /// 500 InternalError.
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    /// 504 Timeout.
    pub fn timeout(message: impl Into<String>) -> ApiError {
        ApiError::new(504, "Timeout", message)
    }

    /// The `Status` object for this error.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        if let Some(seconds) = self.retry_after {
            if !status["details"].is_object() {
                status["details"] = json!({});
            }
            status["details"]["retryAfterSeconds"] = json!(seconds);
        }
        status
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> ApiError {
        match error {
            StorageError::Compacted { compact_revision } => ApiError::expired(format!(
                "The resourceVersion for the provided list is too old (compacted at {compact_revision})."
            )),
            StorageError::FutureRevision => {
                ApiError::timeout("Too large resource version")
            }
            StorageError::Unavailable(why) => ApiError {
                retry_after: Some(1),
                ..ApiError::new(503, "ServiceUnavailable", why)
            },
        }
    }
}

/// A `Status` of success, as deletes of whole objects answer.
pub fn success_status(target: &Target<'_>, uid: Option<&str>) -> Value {
    let mut details = target.details();
    if let Some(uid) = uid {
        details["uid"] = json!(uid);
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_as_kubectl_prints_it() {
        let target = Target {
            resource: "deployments",
            group: "apps",
            name: "web",
        };
        let status = ApiError::not_found(&target).status();
        assert_eq!(status["message"], "deployments.apps \"web\" not found");
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["code"], 404);
        assert_eq!(status["details"]["kind"], "deployments");
    }

    #[test]
    fn invalid_lists_each_field() {
        let errors = [FieldError {
            reason: "FieldValueRequired",
            field: "spec.containers[0].image".into(),
            message: "Required value".into(),
        }];
        let status = ApiError::invalid("Pod", "", "p", &errors).status();
        assert_eq!(
            status["message"],
            "Pod \"p\" is invalid: spec.containers[0].image: Required value"
        );
        assert_eq!(
            status["details"]["causes"][0]["field"],
            "spec.containers[0].image"
        );
    }
}
