//! The configuration of `keel serve`: one serde tree, read from a TOML file whose keys are
//! etcd's flag names, then overridden by flags, then checked by [`Config::validate`].
//!
//! `keel.conf.toml` at the repository root is the commented template; a test proves it
//! parses and equals [`Config::default`].

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

/// A configuration problem, named after the key that has it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this tree.
    #[error("cannot parse config file {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A value is out of range or inconsistent with another.
    #[error("invalid {key}: {reason}")]
    Invalid {
        /// The key, spelled as in the file.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// Whether this member starts a new cluster or joins a running one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClusterState {
    /// Bootstrap a new cluster from `initial-cluster`.
    #[default]
    New,
    /// Join an existing cluster (the member was added with `member add` first).
    Existing,
}

/// How automatic compaction decides what to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompactionMode {
    /// Keep a time window (`auto-compaction-retention` is a duration, or hours).
    #[default]
    Periodic,
    /// Keep a number of revisions.
    Revision,
}

/// Everything `keel serve` needs. Every key has a default, so a file may set only some.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "kebab-case", deny_unknown_fields)]
pub struct Config {
    /// This member's name; must appear in `initial-cluster`.
    pub name: String,
    /// Where the keyspace (and the Raft log) live.
    pub data_dir: PathBuf,
    /// URLs to accept client requests on.
    pub listen_client_urls: Vec<String>,
    /// Client URLs told to other members and clients.
    pub advertise_client_urls: Vec<String>,
    /// URLs to accept peer traffic on.
    pub listen_peer_urls: Vec<String>,
    /// Peer URLs told to other members.
    pub initial_advertise_peer_urls: Vec<String>,
    /// The bootstrap membership, `name=url,name=url,...` (a name may repeat for several URLs).
    pub initial_cluster: String,
    /// `new` or `existing`.
    pub initial_cluster_state: ClusterState,
    /// Mixed into the cluster id, so two clusters bootstrapped from the same URLs differ.
    pub initial_cluster_token: String,
    /// Applied entries between Raft snapshots.
    pub snapshot_count: u64,
    /// Entries kept in the log before the last snapshot, so a slow follower catches up from
    /// the log; one further behind is sent the snapshot (etcd's flag of the same name).
    pub snapshot_catchup_entries: u64,
    /// Largest database size before the space alarm, bytes (etcd default: 2 GiB).
    pub quota_backend_bytes: u64,
    /// `periodic` or `revision`.
    pub auto_compaction_mode: CompactionMode,
    /// How much history auto-compaction keeps: "0" disables it; a duration ("1h", "30m") or
    /// hours ("1") for periodic, a revision count for revision mode.
    pub auto_compaction_retention: String,
    /// Largest client request, bytes (etcd default: 1.5 MiB).
    pub max_request_bytes: usize,
    /// The most memory the keyspace's page cache holds, bytes; the rest is read from disk
    /// when used (keel's own key: etcd leaves its cache to the operating system).
    pub backend_cache_bytes: u64,
    /// Raft heartbeat interval, milliseconds.
    pub heartbeat_interval: u64,
    /// Raft election timeout, milliseconds.
    pub election_timeout: u64,
    /// The client listener's certificate (PEM); required by https `listen-client-urls`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The CA that client certificates must be signed by (with `client-cert-auth`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trusted_ca_file: Option<PathBuf>,
    /// Refuse clients without a certificate signed by `trusted-ca-file`.
    pub client_cert_auth: bool,
    /// The peer listener's certificate (PEM), also presented to other members as a client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_key_file: Option<PathBuf>,
    /// The CA that other members' certificates must be signed by.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Refuse peers without a certificate signed by `peer-trusted-ca-file`.
    pub peer_client_cert_auth: bool,
    /// How long an auth token is accepted, seconds (etcd's `--auth-token-ttl`).
    pub auth_token_ttl: u64,
    /// bcrypt's cost for password hashes, 4 to 31 (etcd's `--bcrypt-cost`).
    pub bcrypt_cost: u32,
    /// Serve the Kubernetes API (keel-apiserver) on this member too.
    pub control_plane: bool,
    /// The API server's HTTPS port, on the host of the first `listen-client-urls`.
    pub apiserver_port: u16,
    /// The API server's certificate (PEM; SANs for every address clients use); defaults to
    /// `cert-file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apiserver_cert_file: Option<PathBuf>,
    /// Its key; defaults to `key-file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apiserver_key_file: Option<PathBuf>,
    /// The CA whose client certificates identify API users (CN user, O groups); defaults to
    /// `trusted-ca-file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apiserver_client_ca_file: Option<PathBuf>,
    /// kube's static token file (`token,user,uid,"group1,group2"` per line) for bearer tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apiserver_token_file: Option<PathBuf>,
    /// The ECDSA P-256 key (PKCS#8 PEM) service account tokens are signed and checked with;
    /// the same file on every member. Unset: no service account tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apiserver_service_account_key_file: Option<PathBuf>,
    /// The audit log of mutating API requests (kube's `--audit-log-path`). Unset: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apiserver_audit_log_path: Option<PathBuf>,
    /// The client certificate the API server presents to node agents for `pods/log`, `exec`
    /// (kube's `--kubelet-client-certificate`; CN `kube-apiserver-kubelet-client`, which agents
    /// allow). Unset: those answer 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_client_certificate: Option<PathBuf>,
    /// Its key (kube's `--kubelet-client-key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_client_key: Option<PathBuf>,
    /// The CA agents' serving certificates must be signed by (kube's
    /// `--kubelet-certificate-authority`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet_certificate_authority: Option<PathBuf>,
    /// The scheduler's KubeSchedulerConfiguration (YAML; kube-scheduler's `--config`):
    /// profiles, plugins, weights. Unset: kube-scheduler's default profile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduler_config: Option<PathBuf>,
    /// The pods' network: the controller manager gives every node its own /24 of it
    /// (`spec.podCIDR`), as kube-controller-manager's `--cluster-cidr`.
    pub cluster_cidr: String,
    /// The CIDR Services' cluster IPs come from (kube's `--service-cluster-ip-range`); its
    /// first address is the `kubernetes` service's, its tenth cluster DNS's.
    pub service_cluster_ip_range: String,
    /// The range Services' node ports come from (kube's `--service-node-port-range`).
    pub service_node_port_range: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            name: "default".into(),
            data_dir: PathBuf::from("default.keel"),
            listen_client_urls: vec!["http://127.0.0.1:2379".into()],
            advertise_client_urls: vec!["http://127.0.0.1:2379".into()],
            listen_peer_urls: vec!["http://127.0.0.1:2380".into()],
            initial_advertise_peer_urls: vec!["http://127.0.0.1:2380".into()],
            initial_cluster: "default=http://127.0.0.1:2380".into(),
            initial_cluster_state: ClusterState::New,
            initial_cluster_token: "keel-cluster".into(),
            snapshot_count: 100_000,
            snapshot_catchup_entries: 1000,
            quota_backend_bytes: 2 * 1024 * 1024 * 1024,
            auto_compaction_mode: CompactionMode::Periodic,
            auto_compaction_retention: "0".into(),
            max_request_bytes: 1536 * 1024,
            backend_cache_bytes: keel_store::DEFAULT_CACHE_CAPACITY_BYTES,
            heartbeat_interval: 100,
            election_timeout: 1000,
            cert_file: None,
            key_file: None,
            trusted_ca_file: None,
            client_cert_auth: false,
            peer_cert_file: None,
            peer_key_file: None,
            peer_trusted_ca_file: None,
            peer_client_cert_auth: false,
            auth_token_ttl: 300,
            bcrypt_cost: 10,
            control_plane: false,
            apiserver_port: 6443,
            apiserver_cert_file: None,
            apiserver_key_file: None,
            apiserver_client_ca_file: None,
            apiserver_token_file: None,
            apiserver_service_account_key_file: None,
            apiserver_audit_log_path: None,
            kubelet_client_certificate: None,
            kubelet_client_key: None,
            kubelet_certificate_authority: None,
            scheduler_config: None,
            cluster_cidr: "10.244.0.0/16".into(),
            service_cluster_ip_range: "10.96.0.0/12".into(),
            service_node_port_range: "30000-32767".into(),
        }
    }
}

/// One member of `initial-cluster`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitialMember {
    /// Its name.
    pub name: String,
    /// Its peer URLs, in the order given.
    pub peer_urls: Vec<Url>,
}

impl Config {
    /// Reads a TOML file (without validating: flags may still fix it).
    pub fn from_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Parses `initial-cluster` into members, merging repeated names.
    pub fn initial_members(&self) -> Result<Vec<InitialMember>, ConfigError> {
        let mut members: Vec<InitialMember> = Vec::new();
        for entry in self.initial_cluster.split(',').map(str::trim) {
            if entry.is_empty() {
                continue;
            }
            let (name, url) = entry
                .split_once('=')
                .ok_or_else(|| invalid("initial-cluster", format!("{entry:?} is not name=url")))?;
            if name.is_empty() {
                return Err(invalid("initial-cluster", format!("{entry:?} has no name")));
            }
            let url = peer_url("initial-cluster", url)?;
            match members.iter_mut().find(|m| m.name == name) {
                Some(member) => member.peer_urls.push(url),
                None => members.push(InitialMember {
                    name: name.to_owned(),
                    peer_urls: vec![url],
                }),
            }
        }
        if members.is_empty() {
            return Err(invalid("initial-cluster", "is empty"));
        }
        let mut seen = std::collections::HashSet::new();
        for url in members.iter().flat_map(|m| &m.peer_urls) {
            if !seen.insert(url.as_str()) {
                return Err(invalid(
                    "initial-cluster",
                    format!("{url} is given for two members"),
                ));
            }
        }
        Ok(members)
    }

    /// The socket addresses of `listen-client-urls`.
    pub fn client_listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.listen_client_urls
            .iter()
            .map(|u| socket_addr("listen-client-urls", u))
            .collect()
    }

    /// The socket addresses of `listen-peer-urls`.
    pub fn peer_listen_addrs(&self) -> Result<Vec<SocketAddr>, ConfigError> {
        self.listen_peer_urls
            .iter()
            .map(|u| socket_addr("listen-peer-urls", u))
            .collect()
    }

    /// The shortest lease TTL, seconds: 1.5 election timeouts rounded up, as etcd's
    /// `minLeaseTTL`, so a lease survives the election that follows a leader's loss.
    pub fn min_lease_ttl(&self) -> i64 {
        (self.election_timeout * 3 / 2).div_ceil(1000).max(1) as i64
    }

    /// The service ranges the API server allocates from.
    pub fn service_network(
        &self,
    ) -> Result<keel_apiserver::allocator::ServiceNetwork, ConfigError> {
        use keel_apiserver::allocator::{IpRange, PortRange, ServiceNetwork};
        Ok(ServiceNetwork {
            cluster_ip_range: IpRange::parse(&self.service_cluster_ip_range)
                .map_err(|e| invalid("service-cluster-ip-range", &e))?,
            node_port_range: PortRange::parse(&self.service_node_port_range)
                .map_err(|e| invalid("service-node-port-range", &e))?,
            ..ServiceNetwork::default()
        })
    }

    /// Checks every key and their consistency; the message names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.name.is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data-dir", "must not be empty"));
        }
        self.service_network()?;
        if self.listen_client_urls.is_empty() {
            return Err(invalid("listen-client-urls", "needs at least one URL"));
        }
        self.client_listen_addrs()?;
        for url in &self.advertise_client_urls {
            peer_url("advertise-client-urls", url)?;
        }
        for url in &self.listen_peer_urls {
            socket_addr("listen-peer-urls", url)?;
        }
        let members = self.initial_members()?;
        if self.initial_cluster_state == ClusterState::New {
            let me = members
                .iter()
                .find(|m| m.name == self.name)
                .ok_or_else(|| {
                    invalid(
                        "initial-cluster",
                        format!("has no member named {:?} (the name key)", self.name),
                    )
                })?;
            let mut advertised = self
                .initial_advertise_peer_urls
                .iter()
                .map(|u| peer_url("initial-advertise-peer-urls", u))
                .collect::<Result<Vec<_>, _>>()?;
            let mut listed = me.peer_urls.clone();
            advertised.sort();
            listed.sort();
            if advertised != listed {
                return Err(invalid(
                    "initial-advertise-peer-urls",
                    format!(
                        "{:?} differ from {:?}, this member's URLs in initial-cluster",
                        self.initial_advertise_peer_urls,
                        listed.iter().map(Url::as_str).collect::<Vec<_>>()
                    ),
                ));
            }
        }
        if self.snapshot_count == 0 {
            return Err(invalid("snapshot-count", "must be positive"));
        }
        if self.quota_backend_bytes == 0 {
            return Err(invalid("quota-backend-bytes", "must be positive"));
        }
        if self.max_request_bytes == 0 {
            return Err(invalid("max-request-bytes", "must be positive"));
        }
        if self.backend_cache_bytes == 0 {
            return Err(invalid("backend-cache-bytes", "must be positive"));
        }
        self.compaction_retention()?;
        if self.auth_token_ttl == 0 {
            return Err(invalid("auth-token-ttl", "must be positive"));
        }
        // bcrypt's own bounds (the crate refuses others, but only when a password is hashed).
        if !(4..=31).contains(&self.bcrypt_cost) {
            return Err(invalid(
                "bcrypt-cost",
                format!("{} is outside 4..=31", self.bcrypt_cost),
            ));
        }
        if self.heartbeat_interval == 0 {
            return Err(invalid("heartbeat-interval", "must be positive"));
        }
        // etcd's rule: an election timeout under 5 heartbeats makes spurious elections likely.
        if self.election_timeout < 5 * self.heartbeat_interval {
            return Err(invalid(
                "election-timeout",
                format!(
                    "{} ms must be at least 5 heartbeat intervals ({} ms)",
                    self.election_timeout,
                    5 * self.heartbeat_interval
                ),
            ));
        }
        self.validate_tls()
    }

    /// https URLs need certificate files, and certificate auth needs a CA to check against.
    /// The API server's certificate, key and client CA, each falling back to the client
    /// listener's; an error names the first one missing.
    pub fn apiserver_tls(&self) -> Result<[PathBuf; 3], ConfigError> {
        let pick = |key: &'static str, own: &Option<PathBuf>, fallback: &Option<PathBuf>| {
            own.clone().or_else(|| fallback.clone()).ok_or_else(|| {
                invalid(
                    key,
                    "is required by control-plane (the Kubernetes API is served over https only)",
                )
            })
        };
        Ok([
            pick(
                "apiserver-cert-file",
                &self.apiserver_cert_file,
                &self.cert_file,
            )?,
            pick(
                "apiserver-key-file",
                &self.apiserver_key_file,
                &self.key_file,
            )?,
            pick(
                "apiserver-client-ca-file",
                &self.apiserver_client_ca_file,
                &self.trusted_ca_file,
            )?,
        ])
    }

    /// The API server's client of node agents: all three `kubelet-*` files, or none.
    pub fn kubelet_client(&self) -> Result<Option<[PathBuf; 3]>, ConfigError> {
        let files = [
            (
                "kubelet-client-certificate",
                &self.kubelet_client_certificate,
            ),
            ("kubelet-client-key", &self.kubelet_client_key),
            (
                "kubelet-certificate-authority",
                &self.kubelet_certificate_authority,
            ),
        ];
        if files.iter().all(|(_, file)| file.is_none()) {
            return Ok(None);
        }
        if let Some((key, _)) = files.iter().find(|(_, file)| file.is_none()) {
            return Err(invalid(
                key,
                "is required: the kubelet-client-certificate, kubelet-client-key and \
                 kubelet-certificate-authority go together",
            ));
        }
        Ok(Some(
            files.map(|(_, file)| file.clone().expect("checked above")),
        ))
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        if self.control_plane {
            self.apiserver_tls()?;
        }
        self.kubelet_client()?;
        let https = |urls: &[String]| urls.iter().any(|u| u.starts_with("https://"));
        let sides = [
            (
                https(&self.listen_client_urls),
                "listen-client-urls",
                [("cert-file", &self.cert_file), ("key-file", &self.key_file)],
                ("client-cert-auth", self.client_cert_auth),
                ("trusted-ca-file", &self.trusted_ca_file),
            ),
            (
                https(&self.listen_peer_urls),
                "listen-peer-urls",
                [
                    ("peer-cert-file", &self.peer_cert_file),
                    ("peer-key-file", &self.peer_key_file),
                ],
                ("peer-client-cert-auth", self.peer_client_cert_auth),
                ("peer-trusted-ca-file", &self.peer_trusted_ca_file),
            ),
        ];
        for (is_https, urls_key, files, (auth_key, auth), (ca_key, ca)) in sides {
            if is_https {
                for (key, file) in files {
                    if file.is_none() {
                        return Err(invalid(key, format!("is required: {urls_key} uses https")));
                    }
                }
            }
            if auth && ca.is_none() {
                return Err(invalid(ca_key, format!("is required by {auth_key}")));
            }
            if auth && !is_https {
                return Err(invalid(
                    auth_key,
                    format!("needs https {urls_key}: plain http carries no certificate"),
                ));
            }
        }
        let peer_cert = (&self.peer_cert_file, &self.peer_key_file);
        if peer_cert.0.is_some() != peer_cert.1.is_some() {
            return Err(invalid(
                "peer-key-file",
                "peer-cert-file and peer-key-file go together",
            ));
        }
        Ok(())
    }

    /// The parsed `auto-compaction-retention`: `None` when disabled.
    pub fn compaction_retention(&self) -> Result<Option<Retention>, ConfigError> {
        let text = self.auto_compaction_retention.trim();
        let key = "auto-compaction-retention";
        if text.is_empty() || text == "0" {
            return Ok(None);
        }
        match self.auto_compaction_mode {
            CompactionMode::Revision => text
                .parse::<u64>()
                .map(|n| Some(Retention::Revisions(n)))
                .map_err(|_| invalid(key, format!("{text:?} is not a revision count"))),
            CompactionMode::Periodic => {
                if let Ok(hours) = text.parse::<u64>() {
                    return Ok(Some(Retention::Period(std::time::Duration::from_secs(
                        hours * 3600,
                    ))));
                }
                parse_duration(text)
                    .map(|d| Some(Retention::Period(d)))
                    .ok_or_else(|| invalid(key, format!("{text:?} is not a duration like 1h30m")))
            }
        }
    }
}

/// What auto-compaction keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retention {
    /// History newer than this.
    Period(std::time::Duration),
    /// This many revisions.
    Revisions(u64),
}

/// Parses Go-style durations ("1h30m", "90s", "500ms"), the form etcd's flag takes.
fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let mut total = std::time::Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        let number: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let millis = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        total += std::time::Duration::from_millis(number.checked_mul(millis)?);
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn peer_url(key: &'static str, text: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(text).map_err(|e| invalid(key, format!("{text:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() || url.port().is_none() {
        return Err(invalid(
            key,
            format!("{text:?} must be http(s)://host:port"),
        ));
    }
    Ok(url)
}

fn socket_addr(key: &'static str, text: &str) -> Result<SocketAddr, ConfigError> {
    let url = peer_url(key, text)?;
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port().unwrap_or_default();
    let ip = if host == "localhost" {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        host.parse().map_err(|_| {
            invalid(
                key,
                format!("{text:?}: listen on an IP address, not {host:?}"),
            )
        })?
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_and_equals_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("keel.conf.toml");
        let config = Config::from_file(&path).unwrap();
        assert_eq!(config, Config::default());
        config.validate().unwrap();
    }

    #[test]
    fn kubelet_client_files_go_together() {
        let one = Config {
            kubelet_client_certificate: Some("c.crt".into()),
            ..Config::default()
        };
        let err = one.validate().unwrap_err().to_string();
        assert!(err.contains("kubelet-client-key"), "{err}");
        let all = Config {
            kubelet_client_key: Some("c.key".into()),
            kubelet_certificate_authority: Some("ca.crt".into()),
            ..one
        };
        all.validate().unwrap();
        assert!(all.kubelet_client().unwrap().is_some());
        assert_eq!(Config::default().kubelet_client().unwrap(), None);
    }

    #[test]
    fn initial_cluster_is_parsed_and_checked() {
        let config = Config {
            name: "n2".into(),
            initial_cluster: "n1=http://127.0.0.1:2380,n2=http://127.0.0.1:2381".into(),
            initial_advertise_peer_urls: vec!["http://127.0.0.1:2381".into()],
            ..Config::default()
        };
        config.validate().unwrap();
        let members = config.initial_members().unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[1].peer_urls[0].as_str(), "http://127.0.0.1:2381/");

        let wrong_name = Config {
            name: "n3".into(),
            ..config.clone()
        };
        let err = wrong_name.validate().unwrap_err().to_string();
        assert!(err.contains("no member named \"n3\""), "{err}");

        let bad = Config {
            initial_cluster: "n1=ftp://x".into(),
            ..config.clone()
        };
        let err = bad.validate().unwrap_err().to_string();
        assert!(err.starts_with("invalid initial-cluster"), "{err}");
        let dup = Config {
            initial_cluster: "n1=http://a:1,n2=http://a:1".into(),
            ..config
        };
        let err = dup.initial_members().unwrap_err().to_string();
        assert!(err.contains("two members"), "{err}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        assert!(toml::from_str::<Config>("nmae = \"x\"").is_err());
        let config: Config = toml::from_str("election-timeout = 200").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("election-timeout"), "{err}");
        let config: Config = toml::from_str("backend-cache-bytes = 0").unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("backend-cache-bytes"), "{err}");
        let config: Config = toml::from_str(
            "auto-compaction-mode = \"periodic\"\nauto-compaction-retention = \"1h30m\"",
        )
        .unwrap();
        assert_eq!(
            config.compaction_retention().unwrap(),
            Some(Retention::Period(std::time::Duration::from_secs(5400)))
        );
    }

    #[test]
    fn https_urls_need_certificate_files() {
        let https = Config {
            listen_client_urls: vec!["https://127.0.0.1:2379".into()],
            ..Config::default()
        };
        let err = https.validate().unwrap_err().to_string();
        assert!(err.contains("invalid cert-file: is required"), "{err}");
        let with_files = Config {
            cert_file: Some("n1.crt".into()),
            key_file: Some("n1.key".into()),
            client_cert_auth: true,
            ..https
        };
        let err = with_files.validate().unwrap_err().to_string();
        assert!(err.contains("invalid trusted-ca-file"), "{err}");
        Config {
            trusted_ca_file: Some("ca.crt".into()),
            ..with_files
        }
        .validate()
        .unwrap();

        let config: Config = toml::from_str(
            "listen-peer-urls = [\"https://127.0.0.1:2380\"]\npeer-cert-file = \"n1.crt\"",
        )
        .unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("invalid peer-key-file"), "{err}");
        let plain_auth: Config = toml::from_str("peer-client-cert-auth = true").unwrap();
        let err = plain_auth.validate().unwrap_err().to_string();
        assert!(err.contains("peer-trusted-ca-file"), "{err}");
    }

    #[test]
    fn min_lease_ttl_follows_the_election_timeout() {
        assert_eq!(Config::default().min_lease_ttl(), 2);
    }
}
