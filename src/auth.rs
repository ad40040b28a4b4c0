//! Who a request comes from and whether they may make it: etcd's auth model over the
//! replicated users and roles of [`keel_store::auth`].
//!
//! [`Auth::authorize`] is the one check every front end calls, with the request's
//! [`Credentials`] and the [`Access`] it needs. While auth is disabled everything is allowed.
//! Once enabled, a request is identified by its token, or else by the common name of its
//! verified client certificate, and the `root` role may do everything.
//!
//! Tokens are `user.expiry.nonce.signature`, signed with HMAC-SHA256 under the secret that
//! `auth enable` replicated to every member, so any member accepts a token any other issued
//! without sharing a token table. Each check still looks the user up, so a token dies with
//! its user, and with `--auth-token-ttl`. Passwords exist only in the request that carries
//! them: the member that receives one hashes it with bcrypt before proposing, so the log,
//! the store and the snapshots hold the hash alone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use keel_store::{AuthState, PermissionType, Store, User};
use rand::RngCore;
use sha2::Sha256;

use crate::api::error::{ApiError, Code};
use crate::identity::ClientCertificate;

/// etcd's default `--auth-token-ttl`.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(300);

/// etcd's default `--bcrypt-cost`.
pub const DEFAULT_BCRYPT_COST: u32 = 10;

/// What a request says about who sent it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The token from the `Authorization` header.
    pub token: Option<String>,
    /// The client certificate the TLS listener verified.
    pub certificate: Option<ClientCertificate>,
}

impl Credentials {
    /// Credentials from an `Authorization` header value (etcd's gateway sends the bare token;
    /// a `Bearer ` prefix is accepted too) and a verified certificate.
    pub fn new(authorization: Option<String>, certificate: Option<ClientCertificate>) -> Self {
        let token = authorization
            .map(|value| {
                let value = value.trim();
                value.strip_prefix("Bearer ").unwrap_or(value).to_owned()
            })
            .filter(|token| !token.is_empty());
        Credentials { token, certificate }
    }
}

/// Keys a request touches and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAccess {
    /// First key.
    pub key: Vec<u8>,
    /// End of the range (etcd's conventions).
    pub range_end: Vec<u8>,
    /// Read, write or both.
    pub need: PermissionType,
}

/// What a request needs to be allowed once auth is enabled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Nothing: anyone (authenticate, status).
    Open,
    /// Any user the credentials identify (lease grant, keepalive, time-to-live).
    Authenticated,
    /// The root role (maintenance, membership, auth management).
    Admin,
    /// Every listed range with the listed kind.
    Keys(Vec<KeyAccess>),
    /// Write on every key attached to the lease (revoke deletes them), as etcd checks.
    LeaseKeys(i64),
    /// The named user, or root (user get, change password).
    UserOrAdmin(String),
    /// A holder of the named role, or root (role get).
    RoleOrAdmin(String),
}

impl Access {
    /// Read on one range.
    pub fn read(key: &[u8], range_end: &[u8]) -> Access {
        Access::Keys(vec![KeyAccess::read(key, range_end)])
    }

    /// Write on one range.
    pub fn write(key: &[u8], range_end: &[u8]) -> Access {
        Access::Keys(vec![KeyAccess::delete(key, range_end, false)])
    }
}

impl KeyAccess {
    /// Read on a range (a range request, a watch, a txn compare).
    pub fn read(key: &[u8], range_end: &[u8]) -> KeyAccess {
        KeyAccess {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            need: PermissionType::Read,
        }
    }

    /// A put: write, and read too when it returns the previous value (as etcd).
    pub fn put(key: &[u8], prev_kv: bool) -> KeyAccess {
        KeyAccess {
            key: key.to_vec(),
            range_end: Vec::new(),
            need: write_or_both(prev_kv),
        }
    }

    /// A delete: write, and read too when it returns the deleted values.
    pub fn delete(key: &[u8], range_end: &[u8], prev_kv: bool) -> KeyAccess {
        KeyAccess {
            key: key.to_vec(),
            range_end: range_end.to_vec(),
            need: write_or_both(prev_kv),
        }
    }
}

fn write_or_both(prev: bool) -> PermissionType {
    if prev {
        PermissionType::ReadWrite
    } else {
        PermissionType::Write
    }
}

/// "etcdserver: permission denied" (PermissionDenied, HTTP 403).
pub fn permission_denied() -> ApiError {
    ApiError::new(Code::PermissionDenied, "etcdserver: permission denied")
}

/// "etcdserver: invalid auth token" (Unauthenticated, HTTP 401): unsigned, expired, signed
/// under another secret, or its user is gone.
pub fn invalid_token() -> ApiError {
    ApiError::new(Code::Unauthenticated, "etcdserver: invalid auth token")
}

fn user_empty() -> ApiError {
    ApiError::invalid_argument("etcdserver: user name is empty")
}

fn authentication_failed() -> ApiError {
    ApiError::invalid_argument("etcdserver: authentication failed, invalid user ID or password")
}

fn storage(e: keel_store::Error) -> ApiError {
    ApiError::from(e)
}

type Signer = Hmac<Sha256>;

/// The checks and the token issuer of one member.
pub struct Auth {
    store: Store,
    /// How long a token is accepted (etcd's `--auth-token-ttl`).
    pub token_ttl: Duration,
    /// bcrypt's cost for new password hashes (etcd's `--bcrypt-cost`, 4 to 31).
    pub bcrypt_cost: u32,
}

impl Auth {
    /// The checks over `store`'s auth state, with etcd's defaults.
    pub fn new(store: Store) -> Auth {
        Auth {
            store,
            token_ttl: DEFAULT_TOKEN_TTL,
            bcrypt_cost: DEFAULT_BCRYPT_COST,
        }
    }

    /// The replicated auth state.
    pub fn state(&self) -> Result<AuthState, ApiError> {
        self.store.auth_state().map_err(storage)
    }

    /// Whether requests are checked.
    pub fn enabled(&self) -> Result<bool, ApiError> {
        Ok(self.state()?.enabled)
    }

    /// Allows or refuses a request needing `access` from whoever `credentials` name.
    pub fn authorize(&self, credentials: &Credentials, access: &Access) -> Result<(), ApiError> {
        let state = self.state()?;
        if !state.enabled || *access == Access::Open {
            return Ok(());
        }
        let user = self.identify(&state, credentials)?;
        if user.is_root() {
            return Ok(());
        }
        let allowed = match access {
            Access::Open | Access::Authenticated => true,
            Access::Admin => false,
            Access::Keys(keys) => self.permits(&user, keys)?,
            Access::LeaseKeys(id) => match self.store.lease(*id).map_err(storage)? {
                // A missing lease is the revoke's own error to report.
                None => true,
                Some(lease) => {
                    let keys: Vec<KeyAccess> = lease
                        .keys
                        .into_iter()
                        .map(|key| KeyAccess {
                            key,
                            range_end: Vec::new(),
                            need: PermissionType::Write,
                        })
                        .collect();
                    self.permits(&user, &keys)?
                }
            },
            Access::UserOrAdmin(name) => user.name == *name,
            Access::RoleOrAdmin(role) => user.roles.iter().any(|r| r == role),
        };
        if allowed {
            Ok(())
        } else {
            Err(permission_denied())
        }
    }

    /// The user the credentials name: the token's, else the certificate's common name.
    pub fn identify(&self, state: &AuthState, credentials: &Credentials) -> Result<User, ApiError> {
        if let Some(token) = &credentials.token {
            let name = verify_token(&state.token_secret, token)?;
            return self
                .store
                .user(&name)
                .map_err(storage)?
                .ok_or_else(invalid_token);
        }
        if let Some(certificate) = &credentials.certificate {
            // etcd takes a certificate's name as given; a name no user has may do nothing.
            return self
                .store
                .user(&certificate.common_name)
                .map_err(storage)?
                .ok_or_else(permission_denied);
        }
        Err(user_empty())
    }

    fn permits(&self, user: &User, keys: &[KeyAccess]) -> Result<bool, ApiError> {
        let mut permissions = Vec::new();
        for name in &user.roles {
            // A role deleted since it was granted grants nothing.
            if let Some(role) = self.store.role(name).map_err(storage)? {
                permissions.extend(role.permissions);
            }
        }
        Ok(keys.iter().all(|access| {
            keel_store::permits(&permissions, &access.key, &access.range_end, access.need)
        }))
    }

    /// Checks `password` and issues a token for `name`.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<String, ApiError> {
        let state = self.state()?;
        if !state.enabled {
            return Err(ApiError::new(
                Code::FailedPrecondition,
                "etcdserver: authentication is not enabled",
            ));
        }
        if name.is_empty() {
            return Err(user_empty());
        }
        let user = self.store.user(name).map_err(storage)?;
        let Some(hash) = user.and_then(|user| user.password_hash) else {
            return Err(authentication_failed());
        };
        let password = password.to_owned();
        // bcrypt is deliberately slow: keep it off the async workers.
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .map_err(|e| ApiError::new(Code::Internal, format!("password check failed: {e}")))?;
        match matches {
            Ok(true) => Ok(issue_token(&state.token_secret, name, self.token_ttl)),
            _ => Err(authentication_failed()),
        }
    }

    /// The bcrypt hash of `password`, to propose instead of it.
    pub async fn hash_password(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_owned();
        let cost = self.bcrypt_cost;
        tokio::task::spawn_blocking(move || bcrypt::hash(password, cost))
            .await
            .map_err(|e| ApiError::new(Code::Internal, format!("password hashing failed: {e}")))?
            .map_err(|e| ApiError::new(Code::Internal, format!("password hashing failed: {e}")))
    }

    /// A token to forward with a request to another member: the caller's own, or for a
    /// caller known only by certificate (which the other member cannot see), a fresh one
    /// for the certificate's user.
    pub fn forwarding_token(&self, credentials: &Credentials) -> Option<String> {
        if let Some(token) = &credentials.token {
            return Some(token.clone());
        }
        let certificate = credentials.certificate.as_ref()?;
        let state = self.state().ok().filter(|state| state.enabled)?;
        Some(issue_token(
            &state.token_secret,
            &certificate.common_name,
            self.token_ttl,
        ))
    }
}

/// A fresh random token signing secret, proposed with `auth enable`.
pub fn new_token_secret() -> Vec<u8> {
    let mut secret = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    secret
}

fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

fn signature(secret: &[u8], payload: &str) -> Signer {
    let mut signer = Signer::new_from_slice(secret).expect("HMAC takes a key of any length");
    signer.update(payload.as_bytes());
    signer
}

/// A token for `user`, valid for `ttl` on every member sharing `secret`.
pub fn issue_token(secret: &[u8], user: &str, ttl: Duration) -> String {
    let expiry = now_millis() + ttl.as_millis();
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut nonce);
    let payload = format!(
        "{}.{expiry}.{}",
        URL_SAFE_NO_PAD.encode(user),
        URL_SAFE_NO_PAD.encode(nonce)
    );
    let mac = signature(secret, &payload).finalize().into_bytes();
    format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac))
}

/// The user a token names, if `secret` signed it and it has not expired.
pub fn verify_token(secret: &[u8], token: &str) -> Result<String, ApiError> {
    let (payload, mac) = token.rsplit_once('.').ok_or_else(invalid_token)?;
    let mac = URL_SAFE_NO_PAD.decode(mac).map_err(|_| invalid_token())?;
    if secret.is_empty() {
        return Err(invalid_token());
    }
    // verify_slice compares in constant time.
    signature(secret, payload)
        .verify_slice(&mac)
        .map_err(|_| invalid_token())?;
    let mut parts = payload.split('.');
    let (Some(user), Some(expiry), Some(_nonce), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid_token());
    };
    let expiry: u128 = expiry.parse().map_err(|_| invalid_token())?;
    if now_millis() >= expiry {
        return Err(invalid_token());
    }
    let user = URL_SAFE_NO_PAD.decode(user).map_err(|_| invalid_token())?;
    String::from_utf8(user).map_err(|_| invalid_token())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_under_their_secret_until_they_expire() {
        let token = issue_token(b"secret", "al.ice", Duration::from_secs(60));
        assert_eq!(verify_token(b"secret", &token).unwrap(), "al.ice");
        assert_eq!(verify_token(b"other", &token), Err(invalid_token()));
        assert_eq!(verify_token(b"", &token), Err(invalid_token()));
        let mut forged = token.clone();
        forged.replace_range(0..2, "Ym");
        assert_eq!(verify_token(b"secret", &forged), Err(invalid_token()));
        let expired = issue_token(b"secret", "alice", Duration::ZERO);
        assert_eq!(verify_token(b"secret", &expired), Err(invalid_token()));
        assert_eq!(verify_token(b"secret", "garbage"), Err(invalid_token()));
    }
}
