//! `etcdserverpb.Auth` over the gateway's auth handlers, with the same guards: Authenticate
//! and AuthStatus are open, a user may read itself and change its password, a role holder
//! may read its role, the rest is root's once auth is enabled.

use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::{unary, Rpc};
use crate::api::auth::{self, admin, open};
use crate::api::auth_models as a;
use crate::api::Shared;
use crate::auth::Access;

/// The Auth service.
pub struct AuthService {
    api: Shared,
}

impl AuthService {
    /// Auth over `api`.
    pub fn new(api: &Shared) -> Self {
        AuthService { api: api.clone() }
    }
}

/// The Auth service's RPCs: each request converted to the gateway's model, checked and
/// answered as the gateway's route `$path` does. `try` marks a request whose conversion can
/// fail. (One macro emits the whole impl, so `async_trait` sees the expanded methods.)
macro_rules! auth_service {
    ($($name:ident($message:ident => $model:ty) -> $answer:ident,
       $path:literal, $method:literal, $access:expr, $handler:path $(, $try:ident)?;)+) => {
        #[tonic::async_trait]
        impl pb::auth_server::Auth for AuthService {
            $(async fn $name(
                &self,
                request: Request<pb::$message>,
            ) -> Result<Response<pb::$answer>, Status> {
                let credentials = super::credentials(&request);
                let request = auth_service!(@convert $model, request.into_inner() $(, $try)?);
                let rpc = Rpc {
                    path: $path,
                    method: $method,
                    on_leader: false,
                    access: $access,
                };
                unary(&self.api, rpc, credentials, request, $handler).await
            })+
        }
    };
    (@convert $model:ty, $message:expr) => {
        <$model>::from($message)
    };
    (@convert $model:ty, $message:expr, try) => {
        <$model>::try_from($message)?
    };
}

auth_service! {
    auth_enable(AuthEnableRequest => a::Empty) -> AuthEnableResponse,
        "v3/auth/enable", "AuthEnable", admin, auth::enable;
    auth_disable(AuthDisableRequest => a::Empty) -> AuthDisableResponse,
        "v3/auth/disable", "AuthDisable", admin, auth::disable;
    auth_status(AuthStatusRequest => a::Empty) -> AuthStatusResponse,
        "v3/auth/status", "AuthStatus", open, auth::status;
    authenticate(AuthenticateRequest => a::AuthenticateRequest) -> AuthenticateResponse,
        "v3/auth/authenticate", "Authenticate", open, auth::authenticate;
    user_add(AuthUserAddRequest => a::UserAddRequest) -> AuthUserAddResponse,
        "v3/auth/user/add", "UserAdd", admin, auth::user_add;
    user_get(AuthUserGetRequest => a::Name) -> AuthUserGetResponse,
        "v3/auth/user/get", "UserGet", |r: &a::Name| Access::UserOrAdmin(r.name.clone()),
        auth::user_get;
    user_list(AuthUserListRequest => a::Empty) -> AuthUserListResponse,
        "v3/auth/user/list", "UserList", admin, auth::user_list;
    user_delete(AuthUserDeleteRequest => a::Name) -> AuthUserDeleteResponse,
        "v3/auth/user/delete", "UserDelete", admin, auth::user_delete;
    user_change_password(AuthUserChangePasswordRequest => a::UserChangePasswordRequest)
        -> AuthUserChangePasswordResponse, "v3/auth/user/changepw", "UserChangePassword",
        |r: &a::UserChangePasswordRequest| Access::UserOrAdmin(r.name.clone()),
        auth::user_change_password;
    user_grant_role(AuthUserGrantRoleRequest => a::UserGrantRoleRequest)
        -> AuthUserGrantRoleResponse, "v3/auth/user/grant", "UserGrantRole", admin,
        auth::user_grant_role;
    user_revoke_role(AuthUserRevokeRoleRequest => a::UserRevokeRoleRequest)
        -> AuthUserRevokeRoleResponse, "v3/auth/user/revoke", "UserRevokeRole", admin,
        auth::user_revoke_role;
    role_add(AuthRoleAddRequest => a::Name) -> AuthRoleAddResponse,
        "v3/auth/role/add", "RoleAdd", admin, auth::role_add;
    role_get(AuthRoleGetRequest => a::RoleName) -> AuthRoleGetResponse,
        "v3/auth/role/get", "RoleGet", |r: &a::RoleName| Access::RoleOrAdmin(r.role.clone()),
        auth::role_get;
    role_list(AuthRoleListRequest => a::Empty) -> AuthRoleListResponse,
        "v3/auth/role/list", "RoleList", admin, auth::role_list;
    role_delete(AuthRoleDeleteRequest => a::RoleName) -> AuthRoleDeleteResponse,
        "v3/auth/role/delete", "RoleDelete", admin, auth::role_delete;
    role_grant_permission(AuthRoleGrantPermissionRequest => a::RoleGrantPermissionRequest)
        -> AuthRoleGrantPermissionResponse, "v3/auth/role/grant", "RoleGrantPermission", admin,
        auth::role_grant_permission, try;
    role_revoke_permission(AuthRoleRevokePermissionRequest => a::RoleRevokePermissionRequest)
        -> AuthRoleRevokePermissionResponse, "v3/auth/role/revoke", "RoleRevokePermission", admin,
        auth::role_revoke_permission;
}
