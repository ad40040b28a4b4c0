//! Service account tokens: JWTs (ES256) that the API server signs for a service account
//! (`serviceaccounts/NAME/token`, the TokenRequest API) and accepts as bearer tokens, naming
//! the user `system:serviceaccount:NAMESPACE:NAME` in groups `system:serviceaccounts` and
//! `system:serviceaccounts:NAMESPACE`, as kube-apiserver does.
//!
//! A token is only as good as its service account: it names the account's uid, and a token
//! whose account was deleted (or deleted and made again) is refused, as kube refuses bound
//! tokens. Every member signs with the same key, so any member accepts any member's tokens.

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{json, Value};

use crate::admission::FieldError;
use crate::auth::Identity;
use crate::error::{ApiError, Result};
use crate::object;
use crate::rest::{Api, Call, Reply};

/// The issuer and default audience of tokens, as kube-apiserver's defaults name them.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// Shortest token lifetime a TokenRequest may ask for, seconds (kube's minimum).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;

/// The signing key, and the public half tokens are checked against.
pub struct ServiceAccountKeys {
    key: EcdsaKeyPair,
    public: Vec<u8>,
    key_id: String,
}

/// What a verified token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSubject {
    /// The account's namespace.
    pub namespace: String,
    /// The account's name.
    pub name: String,
    /// The account's uid when the token was made.
    pub uid: String,
}

impl TokenSubject {
    /// The user the token authenticates as.
    pub fn identity(&self) -> Identity {
        Identity {
            user: format!("system:serviceaccount:{}:{}", self.namespace, self.name),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", self.namespace),
                "system:authenticated".into(),
            ],
        }
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

impl ServiceAccountKeys {
    /// From an ECDSA P-256 private key, PKCS#8 PEM (what `keel pki` and rcgen write).
    pub fn from_pem(pem: &[u8]) -> std::result::Result<ServiceAccountKeys, String> {
        use rustls_pki_types::pem::PemObject;
        let der = rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem)
            .map_err(|e| format!("service account key: {e}"))?;
        let key = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der.secret_pkcs8_der(),
            &SystemRandom::new(),
        )
        .map_err(|e| format!("service account key: not an ECDSA P-256 PKCS#8 key ({e})"))?;
        let public = key.public_key().as_ref().to_vec();
        let digest = ring::digest::digest(&ring::digest::SHA256, &public);
        Ok(ServiceAccountKeys {
            key,
            public,
            key_id: b64(digest.as_ref()),
        })
    }

    /// A token for `subject` valid from `now` for `seconds`, for `audiences`.
    pub fn sign(
        &self,
        subject: &TokenSubject,
        audiences: &[String],
        now: i64,
        seconds: i64,
    ) -> String {
        let header = json!({"alg": "ES256", "kid": self.key_id});
        let claims = json!({
            "aud": audiences,
            "exp": now + seconds,
            "iat": now,
            "nbf": now,
            "iss": ISSUER,
            "sub": format!("system:serviceaccount:{}:{}", subject.namespace, subject.name),
            "kubernetes.io": {
                "namespace": subject.namespace,
                "serviceaccount": {"name": subject.name, "uid": subject.uid},
            },
        });
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let signature = self
            .key
            .sign(&SystemRandom::new(), signed.as_bytes())
            .expect("ECDSA signing does not fail with a valid key");
        format!("{signed}.{}", b64(signature.as_ref()))
    }

    /// The subject of a token this key signed, if its signature holds and it is valid at `now`.
    pub fn verify(&self, token: &str, now: i64) -> Option<TokenSubject> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, claims) = signed.split_once('.')?;
        let header: Value = serde_json::from_slice(&unb64(header)?).ok()?;
        if header["alg"] != "ES256" {
            return None;
        }
        UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(signed.as_bytes(), &unb64(signature)?)
            .ok()?;
        let claims: Value = serde_json::from_slice(&unb64(claims)?).ok()?;
        if claims["iss"] != ISSUER {
            return None;
        }
        let (not_before, expires) = (claims["nbf"].as_i64()?, claims["exp"].as_i64()?);
        if now < not_before - 60 || now >= expires {
            return None;
        }
        let account = &claims["kubernetes.io"];
        Some(TokenSubject {
            namespace: account["namespace"].as_str()?.to_owned(),
            name: account["serviceaccount"]["name"].as_str()?.to_owned(),
            uid: account["serviceaccount"]["uid"].as_str()?.to_owned(),
        })
    }
}

/// Whether `token` looks like a JWT (three dot-separated parts), so a static token is not
/// parsed as one.
pub fn looks_like_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// The current time, seconds since the epoch.
fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Api {
    /// `serviceaccounts/NAME/token`: a TokenRequest answered with a signed token for the
    /// account (audiences and expirationSeconds from its spec; one hour by default).
    pub async fn token(&self, call: &Call<'_>) -> Result<Reply> {
        let keys = self.service_accounts.as_ref().ok_or_else(|| {
            ApiError::forbidden("this API server has no service account signing key")
        })?;
        let request = if call.body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            call.json_body()?
        };
        let spec = &request["spec"];
        let seconds = spec["expirationSeconds"].as_i64().unwrap_or(3600);
        if seconds < MIN_EXPIRATION_SECONDS {
            return Err(ApiError::invalid(
                "TokenRequest",
                "authentication.k8s.io",
                call.name,
                &[FieldError {
                    reason: "FieldValueInvalid",
                    field: "spec.expirationSeconds".into(),
                    message: format!(
                        "Invalid value: {seconds}: may not specify a duration less than 10 minutes"
                    ),
                }],
            ));
        }
        let audiences: Vec<String> = match spec["audiences"].as_array() {
            Some(list) if !list.is_empty() => list
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => vec![ISSUER.to_owned()],
        };
        let account = object::must_read(
            &*self.storage,
            &call.resource.key(call.namespace, call.name),
            &call.target(),
        )
        .await?;
        let subject = TokenSubject {
            namespace: call.namespace.unwrap_or_default().to_owned(),
            name: call.name.to_owned(),
            uid: object::meta_str(&account.object, "uid")
                .unwrap_or("")
                .to_owned(),
        };
        let now = now_unix();
        let token = keys.sign(&subject, &audiences, now, seconds);
        Ok(Reply::Object(
            201,
            json!({
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": call.name, "namespace": subject.namespace,
                    "creationTimestamp": object::now_rfc3339()},
                "spec": {"audiences": audiences, "expirationSeconds": seconds,
                    "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null)},
                "status": {"token": token, "expirationTimestamp": object::rfc3339_in(seconds)},
            }),
        ))
    }

    /// The identity of a service account token, if it verifies and its account still exists
    /// with the uid it names.
    pub async fn authenticate_service_account(&self, token: &str) -> Option<Identity> {
        let keys = self.service_accounts.as_ref()?;
        let subject = keys.verify(token, now_unix())?;
        let accounts = self.registry.find("", "v1", "serviceaccounts")?;
        let key = accounts.key(Some(&subject.namespace), &subject.name);
        let account = object::read(&*self.storage, &key).await.ok()??;
        (object::meta_str(&account.object, "uid") == Some(subject.uid.as_str()))
            .then(|| subject.identity())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ServiceAccountKeys {
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &SystemRandom::new(),
        )
        .unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        ServiceAccountKeys::from_pem(pem.as_bytes()).unwrap()
    }

    fn subject() -> TokenSubject {
        TokenSubject {
            namespace: "default".into(),
            name: "builder".into(),
            uid: "u-1".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let keys = keys();
        let token = keys.sign(&subject(), &[ISSUER.into()], 1000, 3600);
        assert!(looks_like_jwt(&token));
        assert_eq!(keys.verify(&token, 1000), Some(subject()));
        assert_eq!(keys.verify(&token, 4599), Some(subject()));
        assert_eq!(keys.verify(&token, 4600), None, "expired");
        let identity = subject().identity();
        assert_eq!(identity.user, "system:serviceaccount:default:builder");
        assert!(identity
            .groups
            .contains(&"system:serviceaccounts:default".to_owned()));
    }

    #[test]
    fn tampered_or_foreign_tokens_fail() {
        let keys = keys();
        let token = keys.sign(&subject(), &[], 1000, 3600);
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged_claims = b64(json!({"iss": ISSUER, "nbf": 0, "exp": 99999,
            "kubernetes.io": {"namespace": "kube-system", "serviceaccount": {"name": "admin", "uid": "x"}}})
            .to_string()
            .as_bytes());
        parts[1] = &forged_claims;
        assert_eq!(keys.verify(&parts.join("."), 1000), None);
        let other = self::keys();
        assert_eq!(other.verify(&token, 1000), None);
        assert_eq!(keys.verify("a.b", 1000), None);
    }
}
