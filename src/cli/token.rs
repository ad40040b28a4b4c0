//! `keel token`: bootstrap tokens for joining nodes, as `kubeadm token` makes them.
//!
//! ```sh
//! keel token create --kubeconfig admin.kubeconfig            # valid 24h; prints the join command
//! keel token create --kubeconfig admin.kubeconfig --ttl 0    # never expires
//! keel token list --kubeconfig admin.kubeconfig
//! keel token delete abcdef --kubeconfig admin.kubeconfig
//! ```
//!
//! A token is a Secret `kube-system/bootstrap-token-<id>` of type
//! `bootstrap.kubernetes.io/token`. `create` also publishes what a joining node reads before
//! it trusts anything: the `cluster-info` ConfigMap in kube-public (the server's URL and the
//! cluster CA), readable by `system:anonymous` through a Role, as kubeadm's bootstrap-token
//! phase does; the join command pins that CA by its public key's hash.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::Api;
use rand::Rng as _;

/// The namespace of token Secrets.
const NAMESPACE: &str = "kube-system";
/// Their type.
const TOKEN_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The group every token made here adds (kubeadm's `system:bootstrappers:kubeadm:default-node-token`).
pub const DEFAULT_GROUP: &str = "system:bootstrappers:keel:default-node-token";
/// The Role and RoleBinding that let anonymous clients read cluster-info.
const CLUSTER_INFO_ROLE: &str = "keel:bootstrap-signer-clusterinfo";

/// `keel token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print the `keel agent --join` command that uses it.
    Create(CreateArgs),
    /// List the tokens: id, time left, expiry, usages, groups.
    List(ClusterArgs),
    /// Delete tokens by id (or whole token).
    Delete(DeleteArgs),
}

/// How to reach the cluster (as its admin).
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The admin kubeconfig (default: $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
}

/// Flags of `keel token create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// How long the token lasts: `24h`, `30m`, `90s`, `7d`; `0` never expires.
    #[arg(long, default_value = "24h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// The URL joining nodes reach the API server at (default: the kubeconfig's).
    #[arg(long)]
    pub server: Option<String>,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Flags of `keel token delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Token ids (`abcdef`) or whole tokens (`abcdef.0123456789abcdef`).
    #[arg(required = true)]
    pub tokens: Vec<String>,
    /// The cluster.
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// `24h`, `30m`, `90s`, `7d`, `1h30m`, or `0`.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0u64;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => {
                return Err(format!(
                    "{text:?}: expected a duration such as 24h, 30m, 90s or 0"
                ))
            }
        };
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{text:?}: a number must come before {c:?}"))?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() {
        return Err(format!("{text:?}: give a unit (s, m, h, d)"));
    }
    Ok(Duration::from_secs(total))
}

/// A fresh token `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn generate_token() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let id = pick(6);
    format!("{id}.{}", pick(16))
}

impl TokenCommand {
    /// Runs the subcommand.
    pub async fn execute(self) -> anyhow::Result<()> {
        match self {
            TokenCommand::Create(args) => create(args).await,
            TokenCommand::List(args) => list(args).await,
            TokenCommand::Delete(args) => delete(args).await,
        }
    }
}

/// The admin's client config and the CA it trusts (DER).
async fn admin(cluster: &ClusterArgs) -> anyhow::Result<kube::Config> {
    match &cluster.kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            Ok(kube::Config::from_custom_kubeconfig(
                file,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .with_context(|| path.display().to_string())?)
        }
        None => Ok(kube::Config::infer().await?),
    }
}

fn pem_of(der: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

async fn create(args: CreateArgs) -> anyhow::Result<()> {
    let config = admin(&args.cluster).await?;
    let server = args.server.clone().unwrap_or_else(|| {
        config
            .cluster_url
            .to_string()
            .trim_end_matches('/')
            .to_owned()
    });
    let ca_der = config
        .root_cert
        .as_ref()
        .and_then(|certs| certs.first())
        .cloned()
        .ok_or_else(|| {
            anyhow!(
                "the kubeconfig names no certificate-authority: joining nodes need the cluster CA"
            )
        })?;
    let ca_pem = pem_of(&ca_der);
    let client = kube::Client::try_from(config)?;
    publish_cluster_info(&client, &server, &ca_pem).await?;

    let token = generate_token();
    let (id, secret) = token.split_once('.').expect("made with a dot");
    let mut data = std::collections::BTreeMap::from([
        ("token-id".to_owned(), id.to_owned()),
        ("token-secret".to_owned(), secret.to_owned()),
        (
            "usage-bootstrap-authentication".to_owned(),
            "true".to_owned(),
        ),
        ("usage-bootstrap-signing".to_owned(), "true".to_owned()),
        ("auth-extra-groups".to_owned(), DEFAULT_GROUP.to_owned()),
        (
            "description".to_owned(),
            "Bootstrap token made by `keel token create`.".to_owned(),
        ),
    ]);
    if !args.ttl.is_zero() {
        let expires = k8s_openapi::jiff::Timestamp::now()
            + k8s_openapi::jiff::SignedDuration::from_secs(args.ttl.as_secs() as i64);
        data.insert(
            "expiration".to_owned(),
            expires.round(k8s_openapi::jiff::Unit::Second)?.to_string(),
        );
    }
    let object = Secret {
        metadata: ObjectMeta {
            name: Some(format!("bootstrap-token-{id}")),
            namespace: Some(NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        type_: Some(TOKEN_TYPE.into()),
        string_data: Some(data),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client, NAMESPACE)
        .create(&PostParams::default(), &object)
        .await
        .context("cannot create the token's Secret")?;
    let hash = crate::node_join::ca_cert_hash(ca_pem.as_bytes())?;
    println!("keel agent --join {server} --token {token} --ca-cert-hash {hash}");
    Ok(())
}

/// cluster-info (server and CA) in kube-public, and the Role that lets anyone read it.
async fn publish_cluster_info(
    client: &kube::Client,
    server: &str,
    ca_pem: &str,
) -> anyhow::Result<()> {
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    server: {server}\n    certificate-authority-data: {}\ncontexts: []\nusers: []\ncurrent-context: \"\"\npreferences: {{}}\n",
        base64::engine::general_purpose::STANDARD.encode(ca_pem)
    );
    let info = ConfigMap {
        metadata: ObjectMeta {
            name: Some("cluster-info".into()),
            namespace: Some("kube-public".into()),
            ..ObjectMeta::default()
        },
        data: Some([("kubeconfig".to_owned(), kubeconfig)].into()),
        ..ConfigMap::default()
    };
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "kube-public");
    match maps.get_opt("cluster-info").await? {
        Some(found) if found.data == info.data => {}
        Some(found) => {
            let info = ConfigMap {
                metadata: ObjectMeta {
                    resource_version: found.metadata.resource_version,
                    ..info.metadata
                },
                ..info
            };
            maps.replace("cluster-info", &PostParams::default(), &info)
                .await
                .context("cannot update kube-public/cluster-info")?;
        }
        None => {
            maps.create(&PostParams::default(), &info)
                .await
                .context("cannot create kube-public/cluster-info")?;
        }
    }
    let meta = ObjectMeta {
        name: Some(CLUSTER_INFO_ROLE.into()),
        namespace: Some("kube-public".into()),
        ..ObjectMeta::default()
    };
    let role = Role {
        metadata: meta.clone(),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            resource_names: Some(vec!["cluster-info".into()]),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: CLUSTER_INFO_ROLE.into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: "system:anonymous".into(),
            namespace: None,
        }]),
    };
    let exists = |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 409);
    let roles: Api<Role> = Api::namespaced(client.clone(), "kube-public");
    if let Err(e) = roles.create(&PostParams::default(), &role).await {
        if !exists(&e) {
            return Err(e).context("cannot create the cluster-info Role");
        }
    }
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "kube-public");
    if let Err(e) = bindings.create(&PostParams::default(), &binding).await {
        if !exists(&e) {
            return Err(e).context("cannot create the cluster-info RoleBinding");
        }
    }
    Ok(())
}

async fn list(args: ClusterArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_from(admin(&args).await?)?;
    let secrets = Api::<Secret>::namespaced(client, NAMESPACE)
        .list(&ListParams::default().fields(&format!("type={TOKEN_TYPE}")))
        .await?;
    println!(
        "{:<24}{:<26}{:<32}EXTRA GROUPS",
        "TOKEN", "EXPIRES", "USAGES"
    );
    for secret in secrets {
        let data = secret.data.unwrap_or_default();
        let field = |k: &str| {
            data.get(k)
                .map(|v| String::from_utf8_lossy(&v.0).into_owned())
                .unwrap_or_default()
        };
        let usages: Vec<&str> = ["authentication", "signing"]
            .into_iter()
            .filter(|u| field(&format!("usage-bootstrap-{u}")) == "true")
            .collect();
        let expires = match field("expiration") {
            e if e.is_empty() => "<never>".to_owned(),
            e => e,
        };
        println!(
            "{:<24}{:<26}{:<32}{}",
            format!("{}.<secret>", field("token-id")),
            expires,
            usages.join(","),
            field("auth-extra-groups")
        );
    }
    Ok(())
}

async fn delete(args: DeleteArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_from(admin(&args.cluster).await?)?;
    let api = Api::<Secret>::namespaced(client, NAMESPACE);
    for token in &args.tokens {
        let id = token.split('.').next().unwrap_or("");
        if id.len() != 6 {
            bail!("{token:?}: expected a token id (6 characters) or a whole token");
        }
        let name = format!("bootstrap-token-{id}");
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => println!("bootstrap token {id:?} deleted"),
            Err(kube::Error::Api(s)) if s.code == 404 => bail!("bootstrap token {id:?} not found"),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_and_tokens_have_kubeadms_shapes() {
        assert_eq!(parse_ttl("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_ttl("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_ttl("0"), Ok(Duration::ZERO));
        assert!(parse_ttl("12").is_err());
        assert!(parse_ttl("1y").is_err());
        for _ in 0..20 {
            let token = generate_token();
            assert!(
                keel_apiserver::auth::parse_bootstrap_token(&token).is_some(),
                "{token}"
            );
        }
    }
}
