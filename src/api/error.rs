//! Every failure in the shape etcd 3.4's gateway answers with: an HTTP status derived from a
//! gRPC code, and the body `{"error": msg, "message": msg, "code": n}`.
//!
//! Handlers reject with [`ApiError`]; [`recover`] is the one place that turns any rejection,
//! warp's own included (bad method, unknown path, body too large), into that shape.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::{Rejection, Reply as _};

use crate::replica::ReplicaError;

/// The gRPC status codes etcd uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Code {
    Canceled = 1,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    OutOfRange = 11,
    Unimplemented = 12,
    Internal = 13,
    Unavailable = 14,
    DataLoss = 15,
    Unauthenticated = 16,
}

impl Code {
    /// The code of a gRPC status number (Unknown for a number etcd does not use).
    pub fn from_number(number: i32) -> Code {
        match number {
            1 => Code::Canceled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }

    /// The HTTP status grpc-gateway (v1, as in etcd 3.4) gives this code.
    pub fn http_status(self) -> StatusCode {
        match self {
            Code::Canceled => StatusCode::REQUEST_TIMEOUT,
            Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
            Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
            Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
            Code::PermissionDenied => StatusCode::FORBIDDEN,
            Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
            Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }
}

/// A failed request: a gRPC code and etcd's message for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message} (code {code:?})")]
pub struct ApiError {
    /// The gRPC code.
    pub code: Code,
    /// The message, etcd's wording where etcd has one.
    pub message: String,
    /// An HTTP status other than the code's (405 for a wrong method, as etcd answers).
    pub status: Option<StatusCode>,
    /// Where the leader serves the client API, when this member is not the leader: the
    /// request can be forwarded there.
    pub leader_url: Option<String>,
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    /// An error with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            status: None,
            leader_url: None,
        }
    }

    /// The same error answered with another HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    /// A malformed request.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        ApiError::new(Code::InvalidArgument, message)
    }

    /// The JSON body etcd's gateway writes (field order as etcd's).
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: &self.message,
            message: &self.message,
            code: self.code as i32,
        }
    }

    /// The error an etcd error body (`{"code": n, "message": ...}`) stands for, as another
    /// member's gateway answers; `None` if `body` is not one.
    pub fn from_body(body: &[u8]) -> Option<ApiError> {
        #[derive(serde::Deserialize)]
        struct Body {
            code: i32,
            message: String,
        }
        let body: Body = serde_json::from_slice(body).ok()?;
        Some(ApiError::new(Code::from_number(body.code), body.message))
    }

    /// The full HTTP response.
    pub fn into_response(self) -> warp::reply::Response {
        let status = self.status.unwrap_or(self.code.http_status());
        warp::reply::with_status(warp::reply::json(&self.body()), status).into_response()
    }
}

/// `{"error": ..., "message": ..., "code": ...}`.
#[derive(Serialize)]
pub struct ErrorBody<'a> {
    /// The message (grpc-gateway v1 writes it twice).
    pub error: &'a str,
    /// The message.
    pub message: &'a str,
    /// The gRPC code.
    pub code: i32,
}

impl From<keel_store::Error> for ApiError {
    fn from(e: keel_store::Error) -> Self {
        use keel_store::Error as E;
        let code = match &e {
            E::EmptyKey
            | E::KeyNotFound
            | E::DuplicateKey
            | E::InvalidRequest(_)
            | E::RequestTooLarge { .. } => Code::InvalidArgument,
            E::Compacted { .. } | E::FutureRevision { .. } => Code::OutOfRange,
            E::LeaseNotFound { .. } => Code::NotFound,
            E::LeaseExists { .. } => Code::FailedPrecondition,
            // etcd's only lease range error is "too large lease TTL", an OutOfRange.
            E::InvalidLease(_) => Code::OutOfRange,
            E::UserEmpty | E::RoleEmpty | E::InvalidAuthManagement => Code::InvalidArgument,
            E::UserNotFound
            | E::UserExists
            | E::RoleNotFound
            | E::RoleExists
            | E::RoleNotGranted
            | E::PermissionNotGranted
            | E::RootUserMissing
            | E::RootRoleMissing => Code::FailedPrecondition,
            E::Storage(_) => Code::Internal,
            E::Corrupt(_) => Code::DataLoss,
        };
        let message = match e {
            // etcd does not put the sizes in the message, and clients match on the text.
            E::RequestTooLarge { .. } => "etcdserver: request is too large".to_owned(),
            other => other.to_string(),
        };
        ApiError::new(code, message)
    }
}

impl From<ReplicaError> for ApiError {
    fn from(e: ReplicaError) -> Self {
        let code = match &e {
            ReplicaError::NotLeader { .. }
            | ReplicaError::NoLeader
            | ReplicaError::Timeout
            | ReplicaError::Stopped
            | ReplicaError::Fatal(_) => Code::Unavailable,
            ReplicaError::Unimplemented(_) => Code::Unimplemented,
            ReplicaError::MemberNotFound => Code::NotFound,
            ReplicaError::PeerUrlExists
            | ReplicaError::MembershipRefused(_)
            | ReplicaError::BadLeaderTransferee => Code::FailedPrecondition,
        };
        let mut error = ApiError::new(code, e.to_string());
        if let ReplicaError::NotLeader {
            leader_client_urls, ..
        } = e
        {
            error.leader_url = leader_client_urls.into_iter().next();
        }
        error
    }
}

/// Turns any rejection into etcd's error shape. Never fails.
pub async fn recover(rejection: Rejection) -> Result<warp::reply::Response, Infallible> {
    Ok(rejection_to_error(&rejection).into_response())
}

/// The [`ApiError`] a rejection stands for.
pub fn rejection_to_error(rejection: &Rejection) -> ApiError {
    if let Some(e) = rejection.find::<ApiError>() {
        return e.clone();
    }
    if rejection.is_not_found() {
        return ApiError::new(Code::NotFound, "Not Found");
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return ApiError::new(Code::Unimplemented, "Method Not Allowed")
            .with_status(StatusCode::METHOD_NOT_ALLOWED);
    }
    if let Some(e) = rejection.find::<warp::reject::PayloadTooLarge>() {
        return ApiError::new(Code::ResourceExhausted, e.to_string());
    }
    if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        return ApiError::invalid_argument(e.to_string());
    }
    if let Some(e) = rejection.find::<warp::reject::UnsupportedMediaType>() {
        return ApiError::invalid_argument(e.to_string());
    }
    tracing::warn!("unhandled rejection: {rejection:?}");
    ApiError::new(Code::Unknown, format!("{rejection:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_etcd_codes() {
        let compacted = ApiError::from(keel_store::Error::Compacted {
            compact_revision: 3,
        });
        assert_eq!(compacted.code, Code::OutOfRange);
        assert_eq!(compacted.code.http_status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            compacted.message,
            "etcdserver: mvcc: required revision has been compacted"
        );
        let lease = ApiError::from(keel_store::Error::LeaseNotFound { id: 1 });
        assert_eq!(lease.code.http_status(), StatusCode::NOT_FOUND);
        let exists = ApiError::from(keel_store::Error::LeaseExists { id: 1 });
        assert_eq!(exists.code.http_status(), StatusCode::PRECONDITION_FAILED);
        let big = ApiError::from(keel_store::Error::RequestTooLarge { size: 2, limit: 1 });
        assert_eq!(big.message, "etcdserver: request is too large");
        let no_leader = ApiError::from(ReplicaError::NoLeader);
        assert_eq!(
            (no_leader.code as i32, no_leader.code.http_status()),
            (14, StatusCode::SERVICE_UNAVAILABLE)
        );
    }

    #[test]
    fn body_has_etcds_field_order() {
        let e = ApiError::new(Code::InvalidArgument, "etcdserver: key is not provided");
        assert_eq!(
            serde_json::to_string(&e.body()).unwrap(),
            r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#
        );
    }
}
