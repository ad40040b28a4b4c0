//! The Auth service: `/v3/auth/enable`, `disable`, `status`, `authenticate`,
//! `user/{add,get,list,delete,changepw,grant,revoke}` and
//! `role/{add,get,list,delete,grant,revoke}`.
//!
//! Changes are replicated writes ([`keel_store::AuthCommand`]); this layer hashes passwords
//! and draws the token secret before proposing, so the log never carries a password. Each
//! route names the [`Access`] it needs: management is root's, except that users may read
//! and re-password themselves and read the roles they hold, as in etcd.

use keel_store::{AuthCommand, Command, CommandResponse};
use warp::filters::BoxedFilter;
use warp::Filter;

use super::auth_models::{
    AuthStatusResponse, AuthenticateRequest, AuthenticateResponse, Empty, Name, RoleGetResponse,
    RoleGrantPermissionRequest, RoleListResponse, RoleName, RoleRevokePermissionRequest,
    UserAddRequest, UserChangePasswordRequest, UserGetResponse, UserGrantRoleRequest,
    UserListResponse, UserRevokeRoleRequest,
};
use super::error::ApiError;
use super::kv::{propose, unexpected};
use super::models::HeaderOnly;
use super::{blocking, guarded, Shared};
use crate::auth::{new_token_secret, Access};

pub(crate) fn admin<T>(_: &T) -> Access {
    Access::Admin
}

pub(crate) fn open<T>(_: &T) -> Access {
    Access::Open
}

/// Every `/v3/auth/...` route.
pub fn routes(api: &Shared) -> BoxedFilter<(warp::reply::Response,)> {
    guarded(api, "v3/auth/enable", "AuthEnable", admin, enable)
        .or(guarded(
            api,
            "v3/auth/disable",
            "AuthDisable",
            admin,
            disable,
        ))
        .unify()
        .or(guarded(api, "v3/auth/status", "AuthStatus", open, status))
        .unify()
        .or(guarded(
            api,
            "v3/auth/authenticate",
            "Authenticate",
            open,
            authenticate,
        ))
        .unify()
        .or(guarded(api, "v3/auth/user/add", "UserAdd", admin, user_add))
        .unify()
        .or(guarded(
            api,
            "v3/auth/user/get",
            "UserGet",
            |r: &Name| Access::UserOrAdmin(r.name.clone()),
            user_get,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/auth/user/list",
            "UserList",
            admin,
            user_list,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/auth/user/delete",
            "UserDelete",
            admin,
            user_delete,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/auth/user/changepw",
            "UserChangePassword",
            |r: &UserChangePasswordRequest| Access::UserOrAdmin(r.name.clone()),
            user_change_password,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/auth/user/grant",
            "UserGrantRole",
            admin,
            user_grant_role,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/auth/user/revoke",
            "UserRevokeRole",
            admin,
            user_revoke_role,
        ))
        .unify()
        .or(guarded(api, "v3/auth/role/add", "RoleAdd", admin, role_add))
        .unify()
        .or(guarded(
            api,
            "v3/auth/role/get",
            "RoleGet",
            |r: &RoleName| Access::RoleOrAdmin(r.role.clone()),
            role_get,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/auth/role/list",
            "RoleList",
            admin,
            role_list,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/auth/role/delete",
            "RoleDelete",
            admin,
            role_delete,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/auth/role/grant",
            "RoleGrantPermission",
            admin,
            role_grant_permission,
        ))
        .unify()
        .or(guarded(
            api,
            "v3/auth/role/revoke",
            "RoleRevokePermission",
            admin,
            role_revoke_permission,
        ))
        .unify()
        .boxed()
}

/// Proposes an auth change; answers with a header.
async fn change(api: &Shared, command: AuthCommand) -> Result<HeaderOnly, ApiError> {
    match propose(api, Command::Auth(command)).await? {
        (revision, CommandResponse::Auth { .. }) => Ok(HeaderOnly {
            header: api.header(revision),
        }),
        (_, other) => Err(unexpected(other)),
    }
}

/// Turns auth on (a `root` user with the `root` role must exist).
pub async fn enable(api: Shared, _request: Empty) -> Result<HeaderOnly, ApiError> {
    let token_secret = new_token_secret();
    change(&api, AuthCommand::Enable { token_secret }).await
}

/// Turns auth off.
pub async fn disable(api: Shared, _request: Empty) -> Result<HeaderOnly, ApiError> {
    change(&api, AuthCommand::Disable).await
}

/// Whether auth is on, and the auth revision.
pub async fn status(api: Shared, _request: Empty) -> Result<AuthStatusResponse, ApiError> {
    api.replica.read_barrier().await?;
    let state = api.auth.state()?;
    Ok(AuthStatusResponse {
        header: api.current_header(),
        enabled: state.enabled,
        auth_revision: state.revision,
    })
}

/// Checks a user's password and hands out a token every member accepts.
pub async fn authenticate(
    api: Shared,
    request: AuthenticateRequest,
) -> Result<AuthenticateResponse, ApiError> {
    // A user added a moment ago through another member must be found here too.
    api.replica.read_barrier().await?;
    let token = api
        .auth
        .authenticate(&request.name, &request.password)
        .await?;
    Ok(AuthenticateResponse {
        header: api.current_header(),
        token,
    })
}

/// Adds a user, hashing its password here so only the hash is proposed.
pub async fn user_add(api: Shared, request: UserAddRequest) -> Result<HeaderOnly, ApiError> {
    if request.name.is_empty() {
        return Err(keel_store::Error::UserEmpty.into());
    }
    let no_password = request.options.is_some_and(|o| o.no_password);
    let password_hash = if no_password {
        None
    } else {
        Some(api.auth.hash_password(&request.password).await?)
    };
    let command = AuthCommand::UserAdd {
        name: request.name,
        password_hash,
    };
    change(&api, command).await
}

/// A user's roles.
pub async fn user_get(api: Shared, request: Name) -> Result<UserGetResponse, ApiError> {
    api.replica.read_barrier().await?;
    let store = api.replica.store().clone();
    let user = blocking(move || Ok(store.user(&request.name)?)).await?;
    let user = user.ok_or(keel_store::Error::UserNotFound)?;
    Ok(UserGetResponse {
        header: api.current_header(),
        roles: user.roles,
    })
}

/// Every user's name.
pub async fn user_list(api: Shared, _request: Empty) -> Result<UserListResponse, ApiError> {
    api.replica.read_barrier().await?;
    let store = api.replica.store().clone();
    let users = blocking(move || Ok(store.users()?)).await?;
    Ok(UserListResponse {
        header: api.current_header(),
        users: users.into_iter().map(|u| u.name).collect(),
    })
}

/// Deletes a user; its tokens are refused from then on.
pub async fn user_delete(api: Shared, request: Name) -> Result<HeaderOnly, ApiError> {
    change(&api, AuthCommand::UserDelete { name: request.name }).await
}

/// Replaces a user's password (hashed here).
pub async fn user_change_password(
    api: Shared,
    request: UserChangePasswordRequest,
) -> Result<HeaderOnly, ApiError> {
    if request.name.is_empty() {
        return Err(keel_store::Error::UserEmpty.into());
    }
    let password_hash = Some(api.auth.hash_password(&request.password).await?);
    let command = AuthCommand::UserChangePassword {
        name: request.name,
        password_hash,
    };
    change(&api, command).await
}

/// Grants a role to a user.
pub async fn user_grant_role(
    api: Shared,
    request: UserGrantRoleRequest,
) -> Result<HeaderOnly, ApiError> {
    let command = AuthCommand::UserGrantRole {
        user: request.user,
        role: request.role,
    };
    change(&api, command).await
}

/// Revokes a role from a user.
pub async fn user_revoke_role(
    api: Shared,
    request: UserRevokeRoleRequest,
) -> Result<HeaderOnly, ApiError> {
    let command = AuthCommand::UserRevokeRole {
        name: request.name,
        role: request.role,
    };
    change(&api, command).await
}

/// Adds a role.
pub async fn role_add(api: Shared, request: Name) -> Result<HeaderOnly, ApiError> {
    change(&api, AuthCommand::RoleAdd { name: request.name }).await
}

/// A role's permissions.
pub async fn role_get(api: Shared, request: RoleName) -> Result<RoleGetResponse, ApiError> {
    if request.role.is_empty() {
        return Err(keel_store::Error::RoleEmpty.into());
    }
    api.replica.read_barrier().await?;
    let store = api.replica.store().clone();
    let role = blocking(move || Ok(store.role(&request.role)?)).await?;
    let role = role.ok_or(keel_store::Error::RoleNotFound)?;
    Ok(RoleGetResponse {
        header: api.current_header(),
        perm: role.permissions.into_iter().map(Into::into).collect(),
    })
}

/// Every role's name.
pub async fn role_list(api: Shared, _request: Empty) -> Result<RoleListResponse, ApiError> {
    api.replica.read_barrier().await?;
    let store = api.replica.store().clone();
    let roles = blocking(move || Ok(store.roles()?)).await?;
    Ok(RoleListResponse {
        header: api.current_header(),
        roles: roles.into_iter().map(|r| r.name).collect(),
    })
}

/// Deletes a role and takes it from every user.
pub async fn role_delete(api: Shared, request: RoleName) -> Result<HeaderOnly, ApiError> {
    change(&api, AuthCommand::RoleDelete { name: request.role }).await
}

/// Grants a permission on a key or range to a role.
pub async fn role_grant_permission(
    api: Shared,
    request: RoleGrantPermissionRequest,
) -> Result<HeaderOnly, ApiError> {
    let Some(permission) = request.perm else {
        return Err(ApiError::invalid_argument(
            "etcdserver: permission is not provided",
        ));
    };
    let command = AuthCommand::RoleGrantPermission {
        name: request.name,
        permission: permission.into(),
    };
    change(&api, command).await
}

/// Revokes the permission on exactly one range from a role.
pub async fn role_revoke_permission(
    api: Shared,
    request: RoleRevokePermissionRequest,
) -> Result<HeaderOnly, ApiError> {
    let command = AuthCommand::RoleRevokePermission {
        name: request.role,
        key: request.key,
        range_end: request.range_end,
    };
    change(&api, command).await
}
