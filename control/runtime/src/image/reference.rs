//! Image references, normalised as Docker and containerd name images:
//!
//! ```text
//! busybox                         → docker.io/library/busybox:latest
//! me/app:1.0                      → docker.io/me/app:1.0
//! registry.local:5000/app         → registry.local:5000/app:latest
//! busybox@sha256:<64 hex>         → docker.io/library/busybox@sha256:<64 hex>
//! ```
//!
//! The first path component is a registry when it has a `.` or a `:` or is `localhost`
//! (Docker's rule); otherwise the image is on Docker Hub, whose one-word names live under
//! `library/`. Errors use Docker's words (`invalid reference format`).

use std::fmt;

/// Docker Hub's domain as normalised names spell it.
const DOCKER_HUB: &str = "docker.io";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// The registry (`docker.io`, `registry.local:5000`).
    pub domain: String,
    /// The repository path under it (`library/busybox`).
    pub path: String,
    /// The tag; `latest` when neither a tag nor a digest is given.
    pub tag: Option<String>,
    /// The manifest digest (`sha256:…`), when pinned by one.
    pub digest: Option<String>,
}

impl Reference {
    /// Parses and normalises `text`.
    pub fn parse(text: &str) -> Result<Reference, String> {
        let invalid = || format!("invalid reference format: {text:?}");
        if text.is_empty() || text.len() > 255 + 64 + 8 {
            return Err(invalid());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => {
                check_digest(digest).map_err(|e| format!("{}: {e}", invalid()))?;
                (rest, Some(digest.to_owned()))
            }
            None => (text, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a port's ':' does not).
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            let valid = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
                && !tag.starts_with(['.', '-']);
            if !valid {
                return Err(invalid());
            }
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, path))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first != first.to_lowercase() =>
            {
                (first.to_owned(), path.to_owned())
            }
            _ => (DOCKER_HUB.to_owned(), name.to_owned()),
        };
        let domain = if domain == "index.docker.io" {
            DOCKER_HUB.to_owned()
        } else {
            domain
        };
        if path != path.to_lowercase() {
            return Err(format!(
                "invalid reference format: repository name ({path}) must be lowercase"
            ));
        }
        if path.is_empty() || !path.split('/').all(valid_component) {
            return Err(invalid());
        }
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The repository's full name (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// A repository path component: lowercase letters and digits, separated by `.`, `_`, `__` or
/// runs of `-`.
fn valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Checks a `sha256:<64 lowercase hex>` digest (the only algorithm the store keeps).
pub fn check_digest(digest: &str) -> Result<&str, String> {
    match digest.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        Some((algorithm, _)) if algorithm != "sha256" => {
            Err(format!("unsupported digest algorithm {algorithm:?}"))
        }
        _ => Err(format!("invalid digest {digest:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(text: &str) -> String {
        Reference::parse(text).unwrap().to_string()
    }

    #[test]
    fn names_normalise_as_docker_does() {
        assert_eq!(normal("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(normal("busybox:1.35"), "docker.io/library/busybox:1.35");
        assert_eq!(normal("me/app"), "docker.io/me/app:latest");
        assert_eq!(normal("index.docker.io/me/app:v1"), "docker.io/me/app:v1");
        assert_eq!(
            normal("registry.local:5000/team/app"),
            "registry.local:5000/team/app:latest"
        );
        assert_eq!(normal("localhost/app:dev"), "localhost/app:dev");
        assert_eq!(
            normal("registry.k8s.io/pause:3.6"),
            "registry.k8s.io/pause:3.6"
        );
        let digest = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            normal(&format!("busybox@{digest}")),
            format!("docker.io/library/busybox@{digest}")
        );
        assert_eq!(
            normal(&format!("busybox:1@{digest}")),
            format!("docker.io/library/busybox:1@{digest}")
        );
    }

    #[test]
    fn bad_references_are_refused_with_dockers_words() {
        for bad in [
            "",
            "Busybox",
            "a//b",
            "app:",
            "app:-x",
            "-app",
            "a@sha256:12",
            "a b",
        ] {
            let error = Reference::parse(bad).unwrap_err();
            assert!(
                error.starts_with("invalid reference format"),
                "{bad}: {error}"
            );
        }
        assert!(Reference::parse("me/App")
            .unwrap_err()
            .contains("must be lowercase"));
        assert!(Reference::parse(&format!("a@md5:{}", "0".repeat(32)))
            .unwrap_err()
            .contains("unsupported digest algorithm"));
    }
}
