//! `keel image import`: an OCI layout tar or a docker-archive tar into the store.
//!
//! ```text
//! archive ──one pass──▶ tmp/import-<id>/<n>   every file staged with its sha256 and size;
//!                                             index.json / manifest.json kept in memory;
//!                                             symlinks and hard links kept as aliases
//! OCI layout:     index.json → (index → platform's) manifest → config + layers, by digest
//! docker-archive: manifest.json → config + layer files; an OCI manifest is written for them
//! then            referenced blobs renamed into blobs/, layers unpacked (diff ids checked),
//!                 and the staging directory removed whatever happened
//! ```
//!
//! A file under `blobs/sha256/` whose content does not hash to its name, or a blob whose size
//! or digest is not its descriptor's, fails the import before anything lands in the store.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::oci::{self, Descriptor, ImageConfig, Manifest};
use super::{io_error, layer, unique, ImageError, ImageRecord, ImageStore, Reference, Result};

/// The largest index.json or manifest.json read (they are a few KiB in practice).
const MAX_METADATA: u64 = 16 << 20;
/// How deep indexes may nest (an index of indexes of manifests is already unusual).
const MAX_INDEX_DEPTH: usize = 4;

/// A file of the archive, staged.
#[derive(Debug, Clone)]
struct Staged {
    file: PathBuf,
    digest: String,
    size: u64,
}

/// The archive's files after one pass.
#[derive(Default)]
struct Contents {
    /// Staged files by their path in the archive.
    files: BTreeMap<String, Staged>,
    /// Symlinks and hard links: path → target path.
    aliases: BTreeMap<String, String>,
    /// index.json, manifest.json, oci-layout.
    metadata: BTreeMap<String, Vec<u8>>,
    /// Staged files by digest.
    by_digest: BTreeMap<String, Staged>,
}

/// Removes the staging directory when the import ends, however it ends.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn bad(message: impl Into<String>) -> ImageError {
    ImageError::BadArchive(message.into())
}

pub(super) fn import(store: &ImageStore, archive: &Path) -> Result<Vec<ImageRecord>> {
    let file = File::open(archive).map_err(|e| bad(format!("{}: {e}", archive.display())))?;
    let staging = Staging(store.root.join("tmp").join(format!("import-{}", unique())));
    std::fs::create_dir_all(&staging.0).map_err(io_error(&staging.0))?;
    let mut contents = read_archive(file, &staging.0).map_err(|e| {
        bad(format!(
            "{}: not a valid image archive: {e}",
            archive.display()
        ))
    })?;
    let mut images = if contents.metadata.contains_key("index.json") {
        oci_layout(&contents)?
    } else if contents.metadata.contains_key("manifest.json") {
        Vec::new()
    } else {
        return Err(bad(format!(
            "{}: not an OCI image layout or docker-archive tar (it has no index.json or \
             manifest.json)",
            archive.display()
        )));
    };
    // `docker save` (25 and later) writes both; its names may be only in manifest.json.
    if images.is_empty() && contents.metadata.contains_key("manifest.json") {
        images = docker_archive(&mut contents, &staging.0)?;
    }
    if images.is_empty() {
        return Err(bad(format!(
            "{}: the archive names no image (no {} or {} annotation, no RepoTags)",
            archive.display(),
            oci::ANNOTATION_CONTAINERD_NAME,
            oci::ANNOTATION_REF_NAME
        )));
    }
    let imported = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut records = Vec::new();
    for (names, manifest_digest) in images {
        let manifest: Manifest = parse(&contents, &manifest_digest)?;
        let config: ImageConfig = parse(&contents, &manifest.config.digest)?;
        check_blob(&contents, &manifest.config)?;
        for layer in &manifest.layers {
            check_blob(&contents, layer)?;
        }
        let diff_ids = &config.rootfs.diff_ids;
        if !diff_ids.is_empty() && diff_ids.len() != manifest.layers.len() {
            return Err(bad(format!(
                "image {}: the config lists {} layers, the manifest {}",
                names[0],
                diff_ids.len(),
                manifest.layers.len()
            )));
        }
        commit_blob(store, &contents, &manifest_digest)?;
        commit_blob(store, &contents, &manifest.config.digest)?;
        for (i, layer) in manifest.layers.iter().enumerate() {
            commit_blob(store, &contents, &layer.digest)?;
            unpack_layer(store, &layer.digest, diff_ids.get(i).map(String::as_str))?;
        }
        let size =
            manifest.config.size + manifest.layers.iter().map(|layer| layer.size).sum::<u64>();
        for name in names {
            records.push(ImageRecord {
                reference: name.to_string(),
                manifest: manifest_digest.clone(),
                config: manifest.config.digest.clone(),
                size,
                imported,
            });
        }
    }
    Ok(records)
}

/// One pass over the archive (gzip-compressed or not): files staged, links and metadata kept.
fn read_archive(file: File, staging: &Path) -> std::result::Result<Contents, String> {
    let mut reader = BufReader::new(file);
    let head = reader.fill_buf().map_err(|e| e.to_string())?;
    let input: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else {
        Box::new(reader)
    };
    let mut archive = tar::Archive::new(input);
    let mut contents = Contents::default();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = normalise(&entry.path().map_err(|e| e.to_string())?.to_string_lossy());
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if ["index.json", "manifest.json", "oci-layout"].contains(&path.as_str()) {
                    if entry.size() > MAX_METADATA {
                        return Err(format!("{path} is larger than {MAX_METADATA} bytes"));
                    }
                    let mut bytes = Vec::new();
                    entry.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
                    contents.metadata.insert(path, bytes);
                } else {
                    let staged = stage(&mut entry, staging, contents.files.len())
                        .map_err(|e| format!("{path}: {e}"))?;
                    contents.add(path, staged);
                }
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(|e| e.to_string())?
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let target = if entry.header().entry_type() == tar::EntryType::Symlink {
                    let parent = path.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
                    normalise(&format!("{parent}/{target}"))
                } else {
                    normalise(&target)
                };
                contents.aliases.insert(path, target);
            }
            _ => {}
        }
    }
    Ok(contents)
}

impl Contents {
    fn add(&mut self, path: String, staged: Staged) {
        self.by_digest
            .entry(staged.digest.clone())
            .or_insert_with(|| staged.clone());
        self.files.insert(path, staged);
    }

    /// The staged file at `path`, following links.
    fn file(&self, path: &str) -> Option<&Staged> {
        let mut path = normalise(path);
        for _ in 0..16 {
            if let Some(staged) = self.files.get(&path) {
                return Some(staged);
            }
            path = self.aliases.get(&path)?.clone();
        }
        None
    }
}

/// An archive path without `./`, `..` resolved, no leading or trailing `/`.
fn normalise(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

/// Copies `reader` to a new file in `staging` (fsynced: it may be renamed into the store),
/// hashing it.
fn stage(reader: &mut impl Read, staging: &Path, n: usize) -> std::io::Result<Staged> {
    let file_path = staging.join(n.to_string());
    let mut file = File::create(&file_path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 << 10];
    let mut size = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        file.write_all(&buffer[..read])?;
        size += read as u64;
    }
    file.sync_all()?;
    Ok(Staged {
        file: file_path,
        digest: format!("sha256:{:x}", hasher.finalize()),
        size,
    })
}

/// The images of an OCI layout: each top-level descriptor with a name, resolved to a manifest
/// for this machine's platform.
fn oci_layout(contents: &Contents) -> Result<Vec<(Vec<Reference>, String)>> {
    for (path, staged) in &contents.files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            if staged.digest != format!("sha256:{hex}") {
                return Err(bad(format!(
                    "digest mismatch: {path} has digest {}",
                    staged.digest
                )));
            }
        }
    }
    let index: oci::Index = serde_json::from_slice(&contents.metadata["index.json"])
        .map_err(|e| bad(format!("index.json: {e}")))?;
    let mut images = Vec::new();
    for descriptor in &index.manifests {
        let mut names = Vec::new();
        for key in [oci::ANNOTATION_CONTAINERD_NAME, oci::ANNOTATION_REF_NAME] {
            if let Some(name) = descriptor.annotations.get(key) {
                let name = Reference::parse(name)
                    .map_err(|e| bad(format!("index.json names an image {name:?}: {e}")))?;
                if !names.contains(&name) {
                    names.push(name);
                }
                break;
            }
        }
        if names.is_empty() {
            continue;
        }
        let manifest = platform_manifest(contents, descriptor, 0)?;
        images.push((names, manifest));
    }
    Ok(images)
}

/// The manifest digest `descriptor` leads to: itself, or an index's entry for this platform.
fn platform_manifest(contents: &Contents, descriptor: &Descriptor, depth: usize) -> Result<String> {
    check_blob(contents, descriptor)?;
    let media_type = if descriptor.media_type.is_empty() {
        // Untyped descriptors: the blob says what it is.
        let value: serde_json::Value = parse(contents, &descriptor.digest)?;
        value["mediaType"].as_str().unwrap_or_default().to_owned()
    } else {
        descriptor.media_type.clone()
    };
    match media_type.as_str() {
        oci::MEDIA_INDEX | oci::MEDIA_DOCKER_LIST if depth < MAX_INDEX_DEPTH => {
            let index: oci::Index = parse(contents, &descriptor.digest)?;
            let arch = oci::host_architecture();
            let chosen = index
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == arch)
                })
                .or_else(|| index.manifests.iter().find(|m| m.platform.is_none()))
                .ok_or_else(|| {
                    bad(format!(
                        "image index {} has no manifest for linux/{arch}",
                        descriptor.digest
                    ))
                })?;
            platform_manifest(contents, chosen, depth + 1)
        }
        oci::MEDIA_INDEX | oci::MEDIA_DOCKER_LIST => {
            Err(bad("image indexes nest too deeply".to_string()))
        }
        _ => Ok(descriptor.digest.clone()),
    }
}

/// The images of a docker-archive: each `manifest.json` entry's files, under an OCI manifest
/// written for them.
fn docker_archive(
    contents: &mut Contents,
    staging: &Path,
) -> Result<Vec<(Vec<Reference>, String)>> {
    let entries: Vec<oci::DockerArchiveImage> =
        serde_json::from_slice(&contents.metadata["manifest.json"])
            .map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut images = Vec::new();
    for entry in entries {
        let names = entry
            .repo_tags
            .iter()
            .flatten()
            .map(|tag| {
                Reference::parse(tag)
                    .map_err(|e| bad(format!("manifest.json names an image {tag:?}: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        if names.is_empty() {
            continue;
        }
        let found = |path: &str| {
            contents.file(path).cloned().ok_or_else(|| {
                bad(format!(
                    "manifest.json refers to {path}, not in the archive"
                ))
            })
        };
        let config = found(&entry.config)?;
        let mut layers = Vec::new();
        for path in &entry.layers {
            let staged = found(path)?;
            let mut head = [0u8; 2];
            let gzip = File::open(&staged.file)
                .and_then(|mut f| f.read_exact(&mut head))
                .is_ok()
                && head == [0x1f, 0x8b];
            layers.push(Descriptor {
                media_type: if gzip {
                    oci::MEDIA_LAYER_GZIP
                } else {
                    oci::MEDIA_LAYER_TAR
                }
                .into(),
                digest: staged.digest,
                size: staged.size,
                platform: None,
                annotations: Default::default(),
            });
        }
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(oci::MEDIA_MANIFEST.into()),
            config: Descriptor {
                media_type: oci::MEDIA_CONFIG.into(),
                digest: config.digest,
                size: config.size,
                platform: None,
                annotations: Default::default(),
            },
            layers,
        };
        let bytes = serde_json::to_vec(&manifest).expect("a manifest serialises");
        let n = contents.files.len();
        let staged = stage(&mut &bytes[..], staging, n).map_err(io_error(staging))?;
        let digest = staged.digest.clone();
        contents.add(format!("keel-manifest-{n}"), staged);
        images.push((names, digest));
    }
    Ok(images)
}

/// Checks that the blob `descriptor` points to is in the archive with its size.
fn check_blob(contents: &Contents, descriptor: &Descriptor) -> Result<()> {
    let staged = contents
        .by_digest
        .get(&descriptor.digest)
        .ok_or_else(|| bad(format!("blob {} is not in the archive", descriptor.digest)))?;
    if staged.size != descriptor.size {
        return Err(bad(format!(
            "blob {} has {} bytes, its descriptor says {}",
            descriptor.digest, staged.size, descriptor.size
        )));
    }
    Ok(())
}

fn parse<T: serde::de::DeserializeOwned>(contents: &Contents, digest: &str) -> Result<T> {
    let staged = contents
        .by_digest
        .get(digest)
        .ok_or_else(|| bad(format!("blob {digest} is not in the archive")))?;
    if staged.size > MAX_METADATA {
        return Err(bad(format!(
            "blob {digest} is too large for a manifest or config"
        )));
    }
    let bytes = std::fs::read(&staged.file).map_err(io_error(&staged.file))?;
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("blob {digest}: {e}")))
}

/// Moves a staged blob into `blobs/` (content-addressed: one already there is the same).
fn commit_blob(store: &ImageStore, contents: &Contents, digest: &str) -> Result<()> {
    let target = store.blob_path(digest)?;
    if target.exists() {
        return Ok(());
    }
    let staged = &contents.by_digest[digest];
    // A hard link, not a rename: later lookups of this import still read the staged file.
    // (It was fsynced when staged; the link and rename need no data copy.)
    let temporary = target.with_extension(format!("{}.tmp", unique()));
    std::fs::hard_link(&staged.file, &temporary)
        .and_then(|_| std::fs::rename(&temporary, &target))
        .map_err(|e| {
            let _ = std::fs::remove_file(&temporary);
            io_error(&target)(e)
        })
}

/// Unpacks a committed layer blob into `layers/<hex>` unless it is there already.
fn unpack_layer(store: &ImageStore, digest: &str, diff_id: Option<&str>) -> Result<()> {
    let target = store.layer_dir(digest)?;
    if target.is_dir() {
        return Ok(());
    }
    let temporary = store.root.join("layers").join(format!(".{}.tmp", unique()));
    std::fs::create_dir(&temporary).map_err(io_error(&temporary))?;
    let blob = store.blob_path(digest)?;
    let result = File::open(&blob)
        .map_err(|e| e.to_string())
        .and_then(|file| layer::unpack(file, &temporary));
    let outcome = match result {
        Ok(found) if diff_id.is_some_and(|want| want != found) => Err(bad(format!(
            "layer {digest}: its uncompressed content has digest {found}, the config says {}",
            diff_id.unwrap_or_default()
        ))),
        Ok(_) => match std::fs::rename(&temporary, &target) {
            Ok(()) => Ok(()),
            // Another import unpacked the same layer first.
            Err(_) if target.is_dir() => Ok(()),
            Err(e) => Err(io_error(&target)(e)),
        },
        Err(e) => Err(bad(format!("layer {digest}: {e}"))),
    };
    if temporary.exists() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    outcome
}
