//! kubeconfig files: what kubectl, client-go, kube-rs and the Python client read to find and
//! trust the API server and to present a user's certificate.

use std::path::Path;

use base64::Engine;

/// One cluster, one user, one context, all named `name`.
pub struct Kubeconfig<'a> {
    /// Cluster, user and context name.
    pub name: &'a str,
    /// The API server's URL (`https://127.0.0.1:6443`).
    pub server: &'a str,
    /// The CA that signed the server's certificate (PEM).
    pub ca_pem: &'a [u8],
    /// The user's client certificate (PEM).
    pub cert_pem: &'a [u8],
    /// Its key (PEM).
    pub key_pem: &'a [u8],
}

impl Kubeconfig<'_> {
    /// The file's text (YAML, as kubectl writes it).
    pub fn render(&self) -> String {
        let b64 = |pem: &[u8]| base64::engine::general_purpose::STANDARD.encode(pem);
        let name = self.name;
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: {name}
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {name}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {name}
  context:
    cluster: {name}
    user: {name}
current-context: {name}
preferences: {{}}
",
            server = self.server,
            ca = b64(self.ca_pem),
            cert = b64(self.cert_pem),
            key = b64(self.key_pem),
        )
    }

    /// Writes the file (mode 0600: it holds a private key) and fsyncs it.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let mut file = open.open(path)?;
        file.write_all(self.render().as_bytes())?;
        file.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_one_context_with_inline_data() {
        let text = Kubeconfig {
            name: "keel",
            server: "https://127.0.0.1:6443",
            ca_pem: b"ca",
            cert_pem: b"cert",
            key_pem: b"key",
        }
        .render();
        assert!(text.contains("server: https://127.0.0.1:6443"));
        assert!(text.contains("certificate-authority-data: Y2E="));
        assert!(text.contains("current-context: keel"));
    }
}
