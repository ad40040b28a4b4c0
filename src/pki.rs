//! A small PKI for a keel cluster: a CA, one certificate per node, client certificates.
//!
//! Files use etcd's names in one directory: `ca.crt`/`ca.key`, `NAME.crt`/`NAME.key` per
//! node and per client. A node certificate carries both serverAuth and clientAuth, because a
//! member is a server to its peers and clients and a client of its peers; its SANs are the
//! node's addresses (IPs and DNS names) as given. A client certificate carries clientAuth and
//! the user name as its common name, which is what `--client-cert-auth` takes as the user.
//!
//! Keys are written with mode 0600 and fsynced; nothing is overwritten unless asked, and the
//! check happens before the first file is written, so a refused run leaves the directory as
//! it was.

use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// What went wrong making or reading certificates; every variant names its file or entry.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// An entry of `--nodes` (or a host) is not usable.
    #[error("invalid node {entry:?}: {reason}")]
    BadNode {
        /// The entry as given.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file exists and overwriting was not asked for.
    #[error("{} already exists (use --force to overwrite)", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file does not hold what it should.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// rcgen refused to make a certificate.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// The PKI's result type.
pub type Result<T, E = PkiError> = std::result::Result<T, E>;

/// A name a certificate is valid for: an IP address or a DNS name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Host {
    /// An IP address (an iPAddress SAN).
    Ip(IpAddr),
    /// A DNS name (a dNSName SAN).
    Dns(String),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Ip(ip) => write!(f, "{ip}"),
            Host::Dns(name) => f.write_str(name),
        }
    }
}

impl Host {
    /// An IP address, or else a DNS name made of letters, digits, `-` and `.` (with an
    /// optional leading `*.` wildcard).
    pub fn parse(text: &str) -> Result<Host, String> {
        let text = text.trim();
        let unbracketed = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        if text.is_empty() {
            return Err("no address given".into());
        }
        let name = text.strip_prefix("*.").unwrap_or(text);
        let labels_ok = name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        // A name of digits and dots only is a mistyped IP address, not a host name.
        let looks_numeric = name.chars().all(|c| c.is_ascii_digit() || c == '.');
        if !labels_ok || looks_numeric || text.len() > 253 {
            return Err(format!("{text:?} is neither an IP address nor a DNS name"));
        }
        Ok(Host::Dns(text.to_ascii_lowercase()))
    }

    fn san(&self) -> Result<SanType> {
        Ok(match self {
            Host::Ip(ip) => SanType::IpAddress(*ip),
            Host::Dns(name) => SanType::DnsName(name.clone().try_into()?),
        })
    }
}

/// A node to certify: its name (the certificate's CN and file name) and addresses (SANs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    /// The member's name, as in `initial-cluster`.
    pub name: String,
    /// Its addresses, in the order given.
    pub hosts: Vec<Host>,
}

/// Parses `n1=10.0.0.1,n2=host.example,n1=n1.example`: a name may repeat to add addresses.
/// An entry that is not `name=address`, a name that cannot be a file name, or an address
/// that is neither an IP nor a DNS name is named in the error.
pub fn parse_nodes(text: &str) -> Result<Vec<NodeSpec>> {
    let mut nodes: Vec<NodeSpec> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = |reason: String| PkiError::BadNode {
            entry: entry.to_owned(),
            reason,
        };
        let (name, address) = entry
            .split_once('=')
            .ok_or_else(|| bad("expected name=address".into()))?;
        check_file_name(name).map_err(bad)?;
        let host = Host::parse(address).map_err(bad)?;
        match nodes.iter_mut().find(|n| n.name == name) {
            Some(node) if node.hosts.contains(&host) => {}
            Some(node) => node.hosts.push(host),
            None => nodes.push(NodeSpec {
                name: name.to_owned(),
                hosts: vec![host],
            }),
        }
    }
    if nodes.is_empty() {
        return Err(PkiError::BadNode {
            entry: text.to_owned(),
            reason: "no nodes given (expected n1=10.0.0.1,n2=host.example)".into(),
        });
    }
    if nodes.iter().any(|n| n.name == "ca") {
        return Err(PkiError::BadNode {
            entry: "ca".into(),
            reason: "\"ca\" names the CA's own files".into(),
        });
    }
    Ok(nodes)
}

/// Names become file names (`NAME.crt`), so they stay plain.
fn check_file_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        || name.starts_with('.')
    {
        return Err(format!(
            "{name:?} may hold only letters, digits, '-', '_' and '.'"
        ));
    }
    Ok(())
}

/// When a certificate is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before.
    pub not_before: OffsetDateTime,
    /// Not valid after.
    pub not_after: OffsetDateTime,
}

impl Validity {
    /// From an hour ago (tolerating clocks a little behind) for `days` days. Zero or negative
    /// `days` make a certificate that has already expired, `-days` days ago: what a test of
    /// the refusal of expired certificates needs.
    pub fn days(days: i64) -> Validity {
        let now = OffsetDateTime::now_utc();
        if days > 0 {
            Validity {
                not_before: now - Duration::hours(1),
                not_after: now + Duration::days(days),
            }
        } else {
            let not_after = now + Duration::days(days) - Duration::hours(1);
            Validity {
                not_before: not_after - Duration::days(1),
                not_after,
            }
        }
    }
}

/// How `init` and `issue_client` make their certificates.
#[derive(Clone, Debug)]
pub struct Options {
    /// Validity of the certificates made.
    pub validity: Validity,
    /// Overwrite existing files.
    pub force: bool,
    /// Add 127.0.0.1, ::1 and localhost to every node certificate.
    pub localhost: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            validity: Validity::days(365),
            force: false,
            localhost: false,
        }
    }
}

/// The files of a certificate and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issued {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PKCS#8 PEM, mode 0600).
    pub key: PathBuf,
}

fn pair(dir: &Path, name: &str) -> Issued {
    Issued {
        cert: dir.join(format!("{name}.crt")),
        key: dir.join(format!("{name}.key")),
    }
}

/// Makes a CA in `dir` (created if missing) and a certificate per node signed by it.
/// Returns the CA's files, then each node's, in order.
pub fn init(dir: &Path, nodes: &[NodeSpec], options: &Options) -> Result<Vec<Issued>> {
    let mut files = vec![pair(dir, "ca")];
    files.extend(nodes.iter().map(|n| pair(dir, &n.name)));
    refuse_overwrite(&files, options.force)?;
    create_dir(dir)?;

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name.push(DnType::CommonName, "keel CA");
    ca.distinguished_name.push(DnType::OrganizationName, "keel");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut ca, options.validity);
    let ca_cert = ca.self_signed(&ca_key)?;
    write_pair(&files[0], &ca_cert.pem(), &ca_key.serialize_pem())?;
    let issuer = Issuer::new(ca, ca_key);

    for (node, files) in nodes.iter().zip(&files[1..]) {
        write_node(node, files, &issuer, options)?;
    }
    Ok(files)
}

/// Makes node certificates signed by the CA already in `dir` (a member added to a running
/// cluster needs one from the same CA; `init` would make a new CA).
pub fn issue_nodes(dir: &Path, nodes: &[NodeSpec], options: &Options) -> Result<Vec<Issued>> {
    let files: Vec<Issued> = nodes.iter().map(|n| pair(dir, &n.name)).collect();
    refuse_overwrite(&files, options.force)?;
    let issuer = load_issuer(dir)?;
    for (node, files) in nodes.iter().zip(&files) {
        write_node(node, files, &issuer, options)?;
    }
    Ok(files)
}

fn write_node(
    node: &NodeSpec,
    files: &Issued,
    issuer: &Issuer<'_, KeyPair>,
    options: &Options,
) -> Result<()> {
    let mut hosts = node.hosts.clone();
    if options.localhost {
        for extra in [
            Host::Ip(IpAddr::from([127, 0, 0, 1])),
            Host::Ip(IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
            Host::Dns("localhost".into()),
        ] {
            if !hosts.contains(&extra) {
                hosts.push(extra);
            }
        }
    }
    let mut params = leaf(&node.name, options.validity);
    params.subject_alt_names = hosts.iter().map(Host::san).collect::<Result<_>>()?;
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    write_pair(files, &cert.pem(), &key.serialize_pem())
}

/// Makes a client certificate for user `name` (its CN), signed by the CA in `dir`.
pub fn issue_client(dir: &Path, name: &str, options: &Options) -> Result<Issued> {
    issue_user(dir, name, name, &[], options)
}

/// Makes a client certificate in `dir/FILE.crt` for user `user` (its CN) in `groups` (its O
/// entries, which the Kubernetes API reads as groups), signed by the CA in `dir`.
pub fn issue_user(
    dir: &Path,
    file: &str,
    user: &str,
    groups: &[&str],
    options: &Options,
) -> Result<Issued> {
    check_file_name(file).map_err(|reason| PkiError::BadNode {
        entry: file.to_owned(),
        reason,
    })?;
    if file == "ca" {
        return Err(PkiError::BadNode {
            entry: file.to_owned(),
            reason: "\"ca\" names the CA's own files".into(),
        });
    }
    let files = pair(dir, file);
    refuse_overwrite(std::slice::from_ref(&files), options.force)?;
    let issuer = load_issuer(dir)?;
    let mut params = leaf(user, options.validity);
    for group in groups {
        params
            .distinguished_name
            .push(DnType::OrganizationName, *group);
    }
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    write_pair(&files, &cert.pem(), &key.serialize_pem())?;
    Ok(files)
}

fn load_issuer(dir: &Path) -> Result<Issuer<'static, KeyPair>> {
    let ca = pair(dir, "ca");
    let cert = read_text(&ca.cert)?;
    let key = read_text(&ca.key)?;
    let key = KeyPair::from_pem(&key).map_err(|e| PkiError::Invalid {
        path: ca.key.clone(),
        reason: format!("not a private key: {e}"),
    })?;
    Issuer::from_ca_cert_pem(&cert, key).map_err(|e| PkiError::Invalid {
        path: ca.cert,
        reason: format!("not a CA certificate: {e}"),
    })
}

fn leaf(common_name: &str, validity: Validity) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, validity);
    params
}

fn set_validity(params: &mut CertificateParams, validity: Validity) {
    params.not_before = validity.not_before;
    params.not_after = validity.not_after;
    // A random serial: two runs of `init` must not issue certificates that collide.
    let mut serial = [0u8; 16];
    rand::Rng::fill(&mut rand::thread_rng(), &mut serial);
    serial[0] &= 0x7f;
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
}

fn refuse_overwrite(files: &[Issued], force: bool) -> Result<()> {
    if force {
        return Ok(());
    }
    for path in files.iter().flat_map(|f| [&f.cert, &f.key]) {
        if path.exists() {
            return Err(PkiError::Exists { path: path.clone() });
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })
}

fn write_pair(files: &Issued, cert_pem: &str, key_pem: &str) -> Result<()> {
    // The key first: a certificate without its key is useless, a key alone is harmless.
    write_file(&files.key, key_pem, 0o600)?;
    write_file(&files.cert, cert_pem, 0o644)
}

/// Writes and fsyncs `path` with `mode` (also when the file existed with another mode).
fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    let io = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        open.mode(mode);
        let file = open.open(path).map_err(io)?;
        // `mode` applies only to a file created now; an overwritten one keeps its old bits.
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(io)?;
        write_synced(file, text).map_err(io)
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        write_synced(open.open(path).map_err(io)?, text).map_err(io)
    }
}

fn write_synced(mut file: std::fs::File, text: &str) -> std::io::Result<()> {
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

/// What a certificate file says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The file.
    pub path: PathBuf,
    /// The subject's common name.
    pub subject: String,
    /// The issuer's common name.
    pub issuer: String,
    /// Whether it is a CA certificate.
    pub is_ca: bool,
    /// Its subject alternative names.
    pub hosts: Vec<Host>,
    /// "server", "client" (extended key usages).
    pub usages: Vec<&'static str>,
    /// Validity start.
    pub not_before: OffsetDateTime,
    /// Validity end.
    pub not_after: OffsetDateTime,
    /// The serial number, hex.
    pub serial: String,
}

impl CertificateInfo {
    /// Whether it is past its end date now.
    pub fn is_expired(&self) -> bool {
        self.not_after < OffsetDateTime::now_utc()
    }
}

/// Reads the first certificate of a PEM file.
pub fn describe(path: &Path) -> Result<CertificateInfo> {
    let bytes = std::fs::read(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })?;
    let invalid = |reason: String| PkiError::Invalid {
        path: path.to_owned(),
        reason,
    };
    let (_, pem) = x509_parser::pem::parse_x509_pem(&bytes)
        .map_err(|e| invalid(format!("not a PEM certificate: {e}")))?;
    let cert = pem
        .parse_x509()
        .map_err(|e| invalid(format!("not an X.509 certificate: {e}")))?;
    let hosts = match cert.subject_alternative_name() {
        Ok(Some(sans)) => sans
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                x509_parser::extensions::GeneralName::DNSName(name) => {
                    Some(Host::Dns((*name).to_owned()))
                }
                x509_parser::extensions::GeneralName::IPAddress(bytes) => {
                    ip_of(bytes).map(Host::Ip)
                }
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(invalid(format!("bad subjectAltName: {e}"))),
    };
    let mut usages = Vec::new();
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        if eku.value.server_auth {
            usages.push("server");
        }
        if eku.value.client_auth {
            usages.push("client");
        }
    }
    let time = |t: &x509_parser::time::ASN1Time| {
        OffsetDateTime::from_unix_timestamp(t.timestamp())
            .map_err(|e| invalid(format!("bad validity date: {e}")))
    };
    Ok(CertificateInfo {
        path: path.to_owned(),
        subject: common_name_of(cert.subject()),
        issuer: common_name_of(cert.issuer()),
        is_ca: cert.is_ca(),
        hosts,
        usages,
        not_before: time(&cert.validity().not_before)?,
        not_after: time(&cert.validity().not_after)?,
        serial: cert.raw_serial_as_string(),
    })
}

/// Every `*.crt` of `dir`, CA first, then by name.
pub fn describe_dir(dir: &Path) -> Result<Vec<CertificateInfo>> {
    let entries = std::fs::read_dir(dir).map_err(|source| PkiError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    paths.sort_by_key(|p| (p.file_stem().is_none_or(|s| s != "ca"), p.clone()));
    paths.iter().map(|p| describe(p)).collect()
}

/// The common name of a DER certificate's subject (what `--client-cert-auth` takes as the
/// user), or `None` if it has none or does not parse.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let name = common_name_of(cert.subject());
    (!name.is_empty()).then_some(name)
}

fn common_name_of(name: &x509_parser::x509::X509Name<'_>) -> String {
    name.iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned()
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_parse_and_bad_entries_are_named() {
        let nodes = parse_nodes("n1=10.0.0.1, n2=Host.Example,n1=n1.example,n3=[::1]").unwrap();
        assert_eq!(nodes.len(), 3);
        assert_eq!(
            nodes[0].hosts,
            vec![
                Host::Ip("10.0.0.1".parse().unwrap()),
                Host::Dns("n1.example".into())
            ]
        );
        assert_eq!(nodes[1].hosts, vec![Host::Dns("host.example".into())]);
        assert_eq!(nodes[2].hosts, vec![Host::Ip("::1".parse().unwrap())]);

        for (text, named) in [
            ("n1=10.0.0.1,n2", "\"n2\""),
            ("n1=10.0.0.300", "\"n1=10.0.0.300\""),
            ("n1=bad_host", "\"n1=bad_host\""),
            ("n1=", "\"n1=\""),
            ("../x=10.0.0.1", "\"../x=10.0.0.1\""),
            ("ca=10.0.0.1", "\"ca\""),
            ("", "no nodes"),
        ] {
            let err = parse_nodes(text).unwrap_err().to_string();
            assert!(err.contains(named), "{text:?}: {err}");
        }
    }

    #[test]
    fn init_writes_a_chain_with_the_requested_sans_and_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = parse_nodes("n1=10.0.0.1,n1=n1.example,n2=10.0.0.2").unwrap();
        let files = init(dir.path(), &nodes, &Options::default()).unwrap();
        assert_eq!(files[1].cert, dir.path().join("n1.crt"));

        let ca = describe(&files[0].cert).unwrap();
        assert!(ca.is_ca);
        assert_eq!(ca.subject, "keel CA");
        let n1 = describe(&files[1].cert).unwrap();
        assert!(!n1.is_ca);
        assert_eq!((n1.subject.as_str(), n1.issuer.as_str()), ("n1", "keel CA"));
        assert_eq!(n1.hosts, nodes[0].hosts);
        assert_eq!(n1.usages, vec!["server", "client"]);
        assert!(!n1.is_expired());
        assert_ne!(n1.serial, describe(&files[2].cert).unwrap().serial);

        #[cfg(unix)]
        for issued in &files {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&issued.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", issued.key.display());
        }
        let listed = describe_dir(dir.path()).unwrap();
        let names: Vec<_> = listed.iter().map(|c| c.subject.as_str()).collect();
        assert_eq!(names, ["keel CA", "n1", "n2"]);
    }

    #[test]
    fn localhost_is_added_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = parse_nodes("n1=10.0.0.1").unwrap();
        let options = Options {
            localhost: true,
            ..Options::default()
        };
        init(dir.path(), &nodes, &options).unwrap();
        let hosts = describe(&dir.path().join("n1.crt")).unwrap().hosts;
        assert!(hosts.contains(&Host::Dns("localhost".into())), "{hosts:?}");
        assert!(hosts.contains(&Host::Ip("127.0.0.1".parse().unwrap())));
    }

    #[test]
    fn nothing_is_overwritten_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let nodes = parse_nodes("n1=10.0.0.1").unwrap();
        init(dir.path(), &nodes, &Options::default()).unwrap();
        let before = std::fs::read(dir.path().join("ca.crt")).unwrap();
        let err = init(dir.path(), &nodes, &Options::default()).unwrap_err();
        assert!(err.to_string().contains("ca.crt already exists"), "{err}");
        assert_eq!(std::fs::read(dir.path().join("ca.crt")).unwrap(), before);
        let forced = Options {
            force: true,
            ..Options::default()
        };
        init(dir.path(), &nodes, &forced).unwrap();
        assert_ne!(std::fs::read(dir.path().join("ca.crt")).unwrap(), before);

        // A node added later is signed by the same CA, and refused if it exists.
        let n2 = parse_nodes("n2=10.0.0.2").unwrap();
        issue_nodes(dir.path(), &n2, &Options::default()).unwrap();
        let info = describe(&dir.path().join("n2.crt")).unwrap();
        assert_eq!(
            (info.issuer.as_str(), info.hosts.clone()),
            ("keel CA", n2[0].hosts.clone())
        );
        let err = issue_nodes(dir.path(), &nodes, &Options::default()).unwrap_err();
        assert!(err.to_string().contains("n1.crt already exists"), "{err}");

        issue_client(dir.path(), "alice", &Options::default()).unwrap();
        let err = issue_client(dir.path(), "alice", &Options::default()).unwrap_err();
        assert!(
            err.to_string().contains("alice.crt already exists"),
            "{err}"
        );
    }

    #[test]
    fn client_certificates_carry_the_user_and_can_be_expired() {
        let dir = tempfile::tempdir().unwrap();
        init(
            dir.path(),
            &parse_nodes("n1=10.0.0.1").unwrap(),
            &Options::default(),
        )
        .unwrap();
        let alice = issue_client(dir.path(), "alice", &Options::default()).unwrap();
        let info = describe(&alice.cert).unwrap();
        assert_eq!(info.subject, "alice");
        assert_eq!(info.usages, vec!["client"]);
        assert!(info.hosts.is_empty());

        let expired = Options {
            validity: Validity::days(-1),
            ..Options::default()
        };
        let old = issue_client(dir.path(), "old", &expired).unwrap();
        assert!(describe(&old.cert).unwrap().is_expired());

        let der = rustls_pki_types::pem::PemObject::from_pem_file(&alice.cert)
            .map(|c: rustls_pki_types::CertificateDer<'static>| c.to_vec())
            .unwrap();
        assert_eq!(common_name(&der).as_deref(), Some("alice"));

        let missing = issue_client(&dir.path().join("nope"), "bob", &Options::default())
            .unwrap_err()
            .to_string();
        assert!(missing.contains("ca.crt"), "{missing}");
    }
}
