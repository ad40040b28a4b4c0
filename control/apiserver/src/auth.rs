//! Who is asking: authentication by client certificate (CN = user, O = groups, as
//! kube-apiserver reads them) or bearer token (a static token file, or a bootstrap token: a
//! `bootstrap.kubernetes.io/token` Secret in kube-system, as kubeadm's joins use). A request
//! with no credentials gets 401, except the health checks a load balancer probes and the one
//! object a joining node reads before it trusts anything ([`anonymous_allowed`]). What an
//! identity may do is [`crate::rbac`]'s to decide.

use std::collections::HashMap;
use std::path::Path;

use crate::error::ApiError;

/// The superuser group.
pub const MASTERS: &str = "system:masters";

/// The group of node agents (kubelets): user `system:node:<name>`.
pub const NODES: &str = "system:nodes";

/// The group every bootstrap token's user is in.
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";

/// The namespace bootstrap token Secrets live in.
pub const BOOTSTRAP_TOKEN_NAMESPACE: &str = "kube-system";

/// The Secret type of bootstrap tokens.
pub const BOOTSTRAP_TOKEN_TYPE: &str = "bootstrap.kubernetes.io/token";

/// The path of the `cluster-info` ConfigMap: kubeadm's discovery reads it with no
/// credentials (the joining node does not trust the server yet, and checks the CA it finds
/// against the hash it was given).
pub const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// Whether a request with no credentials may go on as `system:anonymous` (RBAC still
/// decides): only GET of `cluster-info`, as kube-apiserver's anonymous authenticator limited
/// to configured endpoints does. Everything else without credentials is 401.
pub fn anonymous_allowed(method: &str, path: &str) -> bool {
    method == "GET" && path == CLUSTER_INFO_PATH
}

/// An authenticated user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// User name.
    pub user: String,
    /// Groups, `system:authenticated` included.
    pub groups: Vec<String>,
}

impl Identity {
    fn new(user: String, mut groups: Vec<String>) -> Identity {
        groups.push("system:authenticated".into());
        Identity { user, groups }
    }

    /// The user of a request without credentials.
    pub fn anonymous() -> Identity {
        Identity {
            user: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
        }
    }

    /// The identity a verified client certificate carries.
    pub fn from_certificate(der: &[u8]) -> Option<Identity> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let subject = cert.subject();
        let user = subject.iter_common_name().next()?.as_str().ok()?.to_owned();
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect();
        Some(Identity::new(user, groups))
    }
}

/// Bearer tokens and whom they stand for.
#[derive(Clone, Debug, Default)]
pub struct Tokens(HashMap<String, Identity>);

impl Tokens {
    /// Reads kube's static token file: `token,user,uid[,"group1,group2"]` per line.
    pub fn from_file(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read token file {}: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("token file {}: {e}", path.display()))
    }

    /// Parses the token file's text.
    pub fn parse(text: &str) -> Result<Tokens, String> {
        let mut tokens = HashMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
                return Err(format!(
                    "line {}: expected token,user,uid[,\"groups\"]",
                    number + 1
                ));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            tokens.insert(fields[0].clone(), Identity::new(fields[1].clone(), groups));
        }
        Ok(Tokens(tokens))
    }

    /// Adds one token.
    pub fn insert(&mut self, token: &str, user: &str, groups: &[&str]) {
        self.0.insert(
            token.to_owned(),
            Identity::new(
                user.to_owned(),
                groups.iter().map(|g| (*g).to_owned()).collect(),
            ),
        );
    }

    /// The identity of `Authorization: Bearer TOKEN`; `Err` for a token that is not known.
    pub fn authenticate(&self, authorization: &str) -> Result<Identity, ApiError> {
        let token = authorization
            .strip_prefix("Bearer ")
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        self.0
            .get(token)
            .cloned()
            .ok_or_else(ApiError::unauthorized)
    }
}

/// A bootstrap token `<id>.<secret>` split in two, if it has that shape
/// (`[a-z0-9]{6}.[a-z0-9]{16}`).
pub fn parse_bootstrap_token(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    let allowed = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    (allowed(id, 6) && allowed(secret, 16)).then_some((id, secret))
}

/// The name of the Secret that holds bootstrap token `id`.
pub fn bootstrap_token_secret_name(id: &str) -> String {
    format!("bootstrap-token-{id}")
}

/// Why a bootstrap token Secret does not authenticate a token (logged, never told the
/// client, which gets a plain 401 as kube's authenticator gives).
#[derive(Debug, PartialEq, Eq)]
pub enum BootstrapRefusal {
    /// Not of type `bootstrap.kubernetes.io/token`, or being deleted.
    NotAToken,
    /// token-id or token-secret differ from the token's.
    WrongSecret,
    /// `usage-bootstrap-authentication` is not "true".
    NotForAuthentication,
    /// Past its `expiration`.
    Expired,
    /// A field is malformed (the expiration, an extra group).
    Malformed(String),
}

/// The identity bootstrap token `id.secret` stands for, judged against its Secret (as stored:
/// `data` base64) at `now` (unix seconds): user `system:bootstrap:<id>`, groups
/// `system:bootstrappers` and the Secret's `auth-extra-groups`.
pub fn bootstrap_token_identity(
    secret: &serde_json::Value,
    id: &str,
    token_secret: &str,
    now: i64,
) -> Result<Identity, BootstrapRefusal> {
    use base64::Engine;
    if secret["type"].as_str() != Some(BOOTSTRAP_TOKEN_TYPE)
        || !secret["metadata"]["deletionTimestamp"].is_null()
    {
        return Err(BootstrapRefusal::NotAToken);
    }
    let field = |name: &str| -> Option<String> {
        let encoded = secret["data"][name].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        String::from_utf8(bytes).ok()
    };
    let stored_secret = field("token-secret").unwrap_or_default();
    // Every byte compared, whatever differs first: the secret is a password.
    let same_secret = stored_secret.len() == token_secret.len()
        && stored_secret
            .bytes()
            .zip(token_secret.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0;
    if field("token-id").as_deref() != Some(id) || !same_secret {
        return Err(BootstrapRefusal::WrongSecret);
    }
    if field("usage-bootstrap-authentication").as_deref() != Some("true") {
        return Err(BootstrapRefusal::NotForAuthentication);
    }
    if let Some(expiration) = field("expiration") {
        let at = time::OffsetDateTime::parse(
            &expiration,
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| BootstrapRefusal::Malformed(format!("expiration {expiration:?}: {e}")))?;
        if at.unix_timestamp() <= now {
            return Err(BootstrapRefusal::Expired);
        }
    }
    let mut groups = vec![BOOTSTRAPPERS.to_owned()];
    for group in field("auth-extra-groups")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        // Only groups under system:bootstrappers: a token must not claim system:masters.
        if !group.starts_with("system:bootstrappers:") {
            return Err(BootstrapRefusal::Malformed(format!(
                "auth-extra-groups: {group:?} is not under system:bootstrappers:"
            )));
        }
        groups.push(group.to_owned());
    }
    Ok(Identity::new(format!("system:bootstrap:{id}"), groups))
}

impl crate::rest::Api {
    /// The identity of bootstrap token `token`, if its Secret in kube-system accepts it.
    pub async fn authenticate_bootstrap_token(&self, token: &str) -> Option<Identity> {
        let (id, token_secret) = parse_bootstrap_token(token)?;
        let secrets = self.registry.find("", "v1", "secrets")?;
        let key = secrets.key(
            Some(BOOTSTRAP_TOKEN_NAMESPACE),
            &bootstrap_token_secret_name(id),
        );
        let stored = crate::object::read(&*self.storage, &key).await.ok()??;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match bootstrap_token_identity(&stored.object, id, token_secret, now) {
            Ok(identity) => Some(identity),
            Err(refusal) => {
                tracing::info!(token_id = id, ?refusal, "bootstrap token refused");
                None
            }
        }
    }
}

/// Splits one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(String::new()),
            c => fields.last_mut().expect("never empty").push(c),
        }
    }
    fields.iter().map(|f| f.trim().to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines_name_user_and_groups() {
        let tokens = Tokens::parse("# comment\nabc,alice,1,\"dev,ops\"\nxyz,bob,2\n").unwrap();
        let alice = tokens.authenticate("Bearer abc").unwrap();
        assert_eq!(alice.user, "alice");
        assert_eq!(alice.groups, ["dev", "ops", "system:authenticated"]);
        assert_eq!(tokens.authenticate("Bearer nope").unwrap_err().code, 401);
        assert_eq!(tokens.authenticate("Basic abc").unwrap_err().code, 401);
        assert!(Tokens::parse("only,two").is_err());
    }

    fn token_secret(fields: &[(&str, &str)]) -> serde_json::Value {
        use base64::Engine;
        let data: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| {
                let encoded = base64::engine::general_purpose::STANDARD.encode(v);
                ((*k).to_owned(), serde_json::json!(encoded))
            })
            .collect();
        serde_json::json!({"type": BOOTSTRAP_TOKEN_TYPE,
            "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
            "data": data})
    }

    #[test]
    fn bootstrap_tokens_have_kubeadms_shape() {
        assert_eq!(
            parse_bootstrap_token("abcdef.0123456789abcdef"),
            Some(("abcdef", "0123456789abcdef"))
        );
        for bad in [
            "abcdef0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdef.x",
        ] {
            assert_eq!(parse_bootstrap_token(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bootstrap_token_secret_authenticates_until_it_expires() {
        let fields = [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-authentication", "true"),
            ("expiration", "2030-01-01T00:00:00Z"),
            (
                "auth-extra-groups",
                "system:bootstrappers:keel:default-node-token",
            ),
        ];
        let secret = token_secret(&fields);
        let before = 1_800_000_000; // 2027
        let who = bootstrap_token_identity(&secret, "abcdef", "0123456789abcdef", before).unwrap();
        assert_eq!(who.user, "system:bootstrap:abcdef");
        assert_eq!(
            who.groups,
            [
                BOOTSTRAPPERS,
                "system:bootstrappers:keel:default-node-token",
                "system:authenticated"
            ]
        );
        let after = 1_900_000_000; // 2030-03
        assert_eq!(
            bootstrap_token_identity(&secret, "abcdef", "0123456789abcdef", after),
            Err(BootstrapRefusal::Expired)
        );
        assert_eq!(
            bootstrap_token_identity(&secret, "abcdef", "0123456789abcdee", before),
            Err(BootstrapRefusal::WrongSecret)
        );
        let not_for_auth = token_secret(&fields[..2]);
        assert_eq!(
            bootstrap_token_identity(&not_for_auth, "abcdef", "0123456789abcdef", before),
            Err(BootstrapRefusal::NotForAuthentication)
        );
        let mut masters = fields;
        masters[4] = ("auth-extra-groups", "system:masters");
        assert!(matches!(
            bootstrap_token_identity(
                &token_secret(&masters),
                "abcdef",
                "0123456789abcdef",
                before
            ),
            Err(BootstrapRefusal::Malformed(_))
        ));
        let mut opaque = secret.clone();
        opaque["type"] = serde_json::json!("Opaque");
        assert_eq!(
            bootstrap_token_identity(&opaque, "abcdef", "0123456789abcdef", before),
            Err(BootstrapRefusal::NotAToken)
        );
    }
}
