//! The JSON bodies of etcd's Auth service (`etcdserverpb.Auth*` and `authpb.Permission`), in
//! the same proto3 JSON mapping as [`super::models`]: proto field names, int64 as strings,
//! bytes as base64, enums by name, defaults left out (so a READ permission has no `permType`).

use keel_store as store;
use serde::{Deserialize, Serialize};

use super::models::proto::{self, is_default, proto_enum};
use super::models::ResponseHeader;

proto_enum! {
    /// `authpb.Permission.Type`.
    PermissionType as "authpb.Permission_Type" { Read = 0 => "READ", Write = 1 => "WRITE", ReadWrite = 2 => "READWRITE" }
}

impl From<PermissionType> for store::PermissionType {
    fn from(kind: PermissionType) -> Self {
        match kind {
            PermissionType::Read => store::PermissionType::Read,
            PermissionType::Write => store::PermissionType::Write,
            PermissionType::ReadWrite => store::PermissionType::ReadWrite,
        }
    }
}

impl From<store::PermissionType> for PermissionType {
    fn from(kind: store::PermissionType) -> Self {
        match kind {
            store::PermissionType::Read => PermissionType::Read,
            store::PermissionType::Write => PermissionType::Write,
            store::PermissionType::ReadWrite => PermissionType::ReadWrite,
        }
    }
}

/// `authpb.Permission`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Permission {
    /// Read, write or both.
    #[serde(rename = "permType", skip_serializing_if = "is_default")]
    pub perm_type: PermissionType,
    /// First key.
    #[serde(with = "proto::bytes", skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<u8>,
    /// End of the range.
    #[serde(
        with = "proto::bytes",
        alias = "rangeEnd",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub range_end: Vec<u8>,
}

impl From<Permission> for store::Permission {
    fn from(p: Permission) -> Self {
        store::Permission {
            perm_type: p.perm_type.into(),
            key: p.key,
            range_end: p.range_end,
        }
    }
}

impl From<store::Permission> for Permission {
    fn from(p: store::Permission) -> Self {
        Permission {
            perm_type: p.perm_type.into(),
            key: p.key,
            range_end: p.range_end,
        }
    }
}

/// Requests without fields (`AuthEnableRequest`, `AuthStatusRequest`, the list requests).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `AuthStatusResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthStatusResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Whether auth is enabled.
    #[serde(skip_serializing_if = "is_default")]
    pub enabled: bool,
    /// Bumped by every auth change.
    #[serde(with = "proto::uint64", skip_serializing_if = "is_default")]
    pub auth_revision: u64,
}

/// `AuthenticateRequest`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthenticateRequest {
    /// The user.
    pub name: String,
    /// The password.
    pub password: String,
}

// Hand-written so a password never reaches a log through `{:?}`.
impl std::fmt::Debug for AuthenticateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticateRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `AuthenticateResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthenticateResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Send this as the `Authorization` header.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub token: String,
}

/// `authpb.UserAddOptions`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserAddOptions {
    /// A user without a password, identified by client certificate only.
    #[serde(alias = "noPassword", skip_serializing_if = "is_default")]
    pub no_password: bool,
}

/// `AuthUserAddRequest`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserAddRequest {
    /// The new user.
    pub name: String,
    /// Its password.
    pub password: String,
    /// Options.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<UserAddOptions>,
}

impl std::fmt::Debug for UserAddRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserAddRequest")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// `AuthUserChangePasswordRequest`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserChangePasswordRequest {
    /// The user.
    pub name: String,
    /// The new password.
    pub password: String,
}

impl std::fmt::Debug for UserChangePasswordRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserChangePasswordRequest")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// `AuthUserGetRequest`, `AuthUserDeleteRequest`, `AuthRoleAddRequest`: a name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Name {
    /// The user or role.
    pub name: String,
}

/// `AuthRoleGetRequest`, `AuthRoleDeleteRequest`: a role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleName {
    /// The role.
    pub role: String,
}

/// `AuthUserGrantRoleRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserGrantRoleRequest {
    /// The user.
    pub user: String,
    /// The role.
    pub role: String,
}

/// `AuthUserRevokeRoleRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserRevokeRoleRequest {
    /// The user.
    pub name: String,
    /// The role.
    pub role: String,
}

/// `AuthUserGetResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserGetResponse {
    /// The header.
    pub header: ResponseHeader,
    /// The user's roles, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `AuthUserListResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserListResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Every user name, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
}

/// `AuthRoleListResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleListResponse {
    /// The header.
    pub header: ResponseHeader,
    /// Every role name, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `AuthRoleGetResponse`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleGetResponse {
    /// The header.
    pub header: ResponseHeader,
    /// The role's permissions, sorted by range.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub perm: Vec<Permission>,
}

/// `AuthRoleGrantPermissionRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleGrantPermissionRequest {
    /// The role.
    pub name: String,
    /// The permission.
    pub perm: Option<Permission>,
}

/// `AuthRoleRevokePermissionRequest`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoleRevokePermissionRequest {
    /// The role.
    pub role: String,
    /// First key of the permission's range.
    #[serde(with = "proto::bytes")]
    pub key: Vec<u8>,
    /// End of the permission's range.
    #[serde(with = "proto::bytes", alias = "rangeEnd")]
    pub range_end: Vec<u8>,
}
