//! Who is asking: authentication by client certificate (CN = user, O = groups, as
//! kube-apiserver reads them) or bearer token (a static token file). A request with no
//! credentials gets 401, except the health checks a load balancer probes. What an identity
//! may do is [`crate::rbac`]'s to decide.

use std::collections::HashMap;
use std::path::Path;

use crate::error::ApiError;

/// The superuser group.
pub const MASTERS: &str = "system:masters";

/// The group of node agents (kubelets): user `system:node:<name>`.
pub const NODES: &str = "system:nodes";

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
}
