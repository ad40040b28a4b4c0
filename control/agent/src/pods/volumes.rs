//! A pod's volumes, materialised on the host for the runtime to bind-mount: each under
//! `<data-dir>/pods/<uid>/volumes/<name>` (hostPath volumes are the host's own path).
//! emptyDir, configMap, secret, downwardAPI and projected volumes (their service account
//! token through the API's TokenRequest) are written before each container start, so a
//! restarted container sees the ConfigMap's current keys. A hollow pod mounts nothing.
//!
//! A source that cannot be had fails as kubelet's volume manager reports it:
//! `MountVolume.SetUp failed for volume "config" : configmap "app" not found`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, ServiceAccount, Volume,
};
use keel_runtime::Mount;
use kube::api::{Api, PostParams};
use kube::ResourceExt as _;

use super::env::{self, Downward};
use super::NodeContext;

/// One file of a volume: its path inside the volume, contents and mode.
type VolumeFile = (String, Vec<u8>, Option<i32>);

/// The mounts of `container`, its volumes written first.
pub async fn mounts(
    node: &NodeContext,
    pod: &Pod,
    container: &Container,
    handler: &str,
    downward: &Downward,
) -> Result<Vec<Mount>, String> {
    if handler == "hollow" {
        return Ok(Vec::new());
    }
    let volumes: BTreeMap<&str, &Volume> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .map(|v| (v.name.as_str(), v))
        .collect();
    let pod_dir = node
        .config
        .data_dir
        .join("pods")
        .join(pod.uid().unwrap_or_default());
    let mut mounts = Vec::new();
    for mount in container.volume_mounts.iter().flatten() {
        let volume = volumes
            .get(mount.name.as_str())
            .ok_or_else(|| format!("volumeMount {:?} names no volume of the pod", mount.name))?;
        let dir = setup(node, pod, volume, &pod_dir, downward)
            .await
            .map_err(|e| {
                format!(
                    "MountVolume.SetUp failed for volume {:?} : {e}",
                    volume.name
                )
            })?;
        let host_path = match mount.sub_path.as_deref().filter(|p| !p.is_empty()) {
            Some(sub) => {
                let path = dir.join(sub);
                if !path.exists() {
                    std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
                }
                path
            }
            None => dir,
        };
        mounts.push(Mount {
            host_path,
            container_path: mount.mount_path.clone().into(),
            read_only: mount.read_only == Some(true),
        });
    }
    Ok(mounts)
}

/// Writes `volume`'s contents; where they are on the host.
async fn setup(
    node: &NodeContext,
    pod: &Pod,
    volume: &Volume,
    pod_dir: &Path,
    downward: &Downward,
) -> Result<PathBuf, String> {
    let io = |e: std::io::Error| e.to_string();
    if let Some(host) = &volume.host_path {
        let path = PathBuf::from(&host.path);
        match host.type_.as_deref() {
            Some("DirectoryOrCreate") => std::fs::create_dir_all(&path).map_err(io)?,
            Some("Directory") if !path.is_dir() => {
                return Err(format!(
                    "hostPath type check failed: {} is not a directory",
                    host.path
                ))
            }
            Some("File") if !path.is_file() => {
                return Err(format!(
                    "hostPath type check failed: {} is not a file",
                    host.path
                ))
            }
            _ => {}
        }
        return Ok(path);
    }
    let dir = pod_dir.join("volumes").join(&volume.name);
    std::fs::create_dir_all(&dir).map_err(io)?;
    let namespace = pod.namespace().unwrap_or_else(|| "default".to_owned());
    let mut files: Vec<VolumeFile> = Vec::new();
    let default_mode;
    if volume.empty_dir.is_some() {
        return Ok(dir);
    } else if let Some(source) = &volume.config_map {
        default_mode = source.default_mode;
        let optional = source.optional == Some(true);
        files.extend(
            config_map_files(
                node,
                &namespace,
                &source.name,
                source.items.as_deref(),
                optional,
            )
            .await?,
        );
    } else if let Some(source) = &volume.secret {
        default_mode = source.default_mode;
        let name = source.secret_name.clone().unwrap_or_default();
        let optional = source.optional == Some(true);
        files.extend(
            secret_files(node, &namespace, &name, source.items.as_deref(), optional).await?,
        );
    } else if let Some(source) = &volume.downward_api {
        default_mode = source.default_mode;
        files.extend(downward_files(
            pod,
            source.items.iter().flatten(),
            downward,
        )?);
    } else if let Some(projected) = &volume.projected {
        default_mode = projected.default_mode;
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                let optional = cm.optional == Some(true);
                files.extend(
                    config_map_files(node, &namespace, &cm.name, cm.items.as_deref(), optional)
                        .await?,
                );
            }
            if let Some(secret) = &source.secret {
                let optional = secret.optional == Some(true);
                files.extend(
                    secret_files(
                        node,
                        &namespace,
                        &secret.name,
                        secret.items.as_deref(),
                        optional,
                    )
                    .await?,
                );
            }
            if let Some(d) = &source.downward_api {
                files.extend(downward_files(pod, d.items.iter().flatten(), downward)?);
            }
            if let Some(token) = &source.service_account_token {
                let account = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.service_account_name.clone())
                    .unwrap_or_else(|| "default".to_owned());
                let request = TokenRequest {
                    spec: TokenRequestSpec {
                        audiences: token.audience.iter().cloned().collect(),
                        expiration_seconds: Some(token.expiration_seconds.unwrap_or(3600)),
                        bound_object_ref: Some(
                            k8s_openapi::api::authentication::v1::BoundObjectReference {
                                api_version: Some("v1".to_owned()),
                                kind: Some("Pod".to_owned()),
                                name: Some(pod.name_any()),
                                uid: pod.uid(),
                            },
                        ),
                    },
                    ..TokenRequest::default()
                };
                let accounts: Api<ServiceAccount> =
                    Api::namespaced(node.client.clone(), &namespace);
                let issued = accounts
                    .create_token_request(&account, &PostParams::default(), &request)
                    .await
                    .map_err(|e| format!("failed to fetch token: {e}"))?;
                let token_text = issued.status.map(|s| s.token).unwrap_or_default();
                files.push((token.path.clone(), token_text.into_bytes(), None));
            }
        }
    } else {
        return Err("unsupported volume source (emptyDir, hostPath, configMap, secret, downwardAPI and projected are)".to_owned());
    }
    for (path, contents, mode) in files {
        if path.split('/').any(|part| part == "..") || path.starts_with('/') {
            return Err(format!("invalid path {path:?} in the volume"));
        }
        let file = dir.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        std::fs::write(&file, contents).map_err(io)?;
        if let Some(mode) = mode.or(default_mode) {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode as u32 & 0o7777))
                .map_err(io)?;
        }
    }
    Ok(dir)
}

fn select(
    all: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    what: &str,
    name: &str,
) -> Result<Vec<VolumeFile>, String> {
    match items {
        None => Ok(all.into_iter().map(|(k, v)| (k, v, None)).collect()),
        Some(items) => items
            .iter()
            .map(|item| match all.get(&item.key) {
                Some(value) => Ok((item.path.clone(), value.clone(), item.mode)),
                None if what == "secret" => Err(format!(
                    "references non-existent secret key: {} in secret {name}",
                    item.key
                )),
                None => Err(format!(
                    "configmap references non-existent config key: {}",
                    item.key
                )),
            })
            .collect(),
    }
}

async fn config_map_files(
    node: &NodeContext,
    namespace: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: bool,
) -> Result<Vec<VolumeFile>, String> {
    let api: Api<ConfigMap> = Api::namespaced(node.client.clone(), namespace);
    let Some(cm) = api.get_opt(name).await.map_err(|e| e.to_string())? else {
        return if optional {
            Ok(Vec::new())
        } else {
            Err(format!("configmap {name:?} not found"))
        };
    };
    let mut all: BTreeMap<String, Vec<u8>> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    all.extend(
        cm.binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0)),
    );
    select(all, items, "configmap", name)
}

async fn secret_files(
    node: &NodeContext,
    namespace: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    optional: bool,
) -> Result<Vec<VolumeFile>, String> {
    let api: Api<Secret> = Api::namespaced(node.client.clone(), namespace);
    let Some(secret) = api.get_opt(name).await.map_err(|e| e.to_string())? else {
        return if optional {
            Ok(Vec::new())
        } else {
            Err(format!("secret {name:?} not found"))
        };
    };
    let all = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    select(all, items, "secret", name)
}

fn downward_files<'a>(
    pod: &Pod,
    items: impl Iterator<Item = &'a DownwardAPIVolumeFile>,
    downward: &Downward,
) -> Result<Vec<VolumeFile>, String> {
    let container = Container::default();
    items
        .map(|item| {
            let value = if let Some(field) = &item.field_ref {
                env::field_value(pod, &field.field_path, downward)?
            } else if let Some(resource) = &item.resource_field_ref {
                let name = resource.container_name.as_deref().unwrap_or("");
                let container = pod
                    .spec
                    .iter()
                    .flat_map(|s| s.containers.iter())
                    .find(|c| c.name == name)
                    .unwrap_or(&container);
                env::resource_value(
                    container,
                    &resource.resource,
                    resource.divisor.as_ref().map(|q| q.0.as_str()),
                    downward,
                )?
            } else {
                String::new()
            };
            Ok((item.path.clone(), value.into_bytes(), item.mode))
        })
        .collect()
}
