//! The node's local image store: what `keel image import` fills and the `embedded` runtime
//! runs containers from.
//!
//! ```text
//! <store>/blobs/sha256/<hex>   content, named by its sha256 (manifests, configs, layers)
//! <store>/layers/<hex>/        layer <hex> unpacked in overlayfs form (layer.rs): a lowerdir
//! <store>/images.json          normalised reference → manifest digest (and config digest)
//! <store>/tmp/                 imports being staged (removed when they end)
//! <store>/gc.lock              imports hold it shared, `rm`'s garbage collection exclusive
//! <store>/index.lock           held exclusive while images.json is rewritten
//! ```
//!
//! An import (import.rs) streams the archive once, hashing each file as it is staged; only
//! blobs the images reference, with the digests and sizes their descriptors give, move into
//! `blobs/`, then each layer is unpacked into a temporary directory renamed into `layers/`,
//! and last the references are written. Every file lands by write, fsync, rename: a crash
//! leaves the store as before or after, never half of a file. Two imports at once are safe:
//! content-addressed names make their renames agree, and images.json is rewritten under
//! `index.lock`. `rm` drops references, then (holding `gc.lock` exclusive, so no import is
//! half-way) removes blobs and layers no image references.

mod import;
pub mod layer;
pub mod oci;
pub mod reference;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use oci::RunConfig;
pub use reference::Reference;

/// Why an image store call failed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The reference names no image in the store.
    #[error(
        "image {0:?} is not in the local image store (no registry pulls yet): import it with \
         `keel image import FILE.tar`"
    )]
    NotFound(String),
    /// The reference does not parse.
    #[error("{0}")]
    InvalidReference(String),
    /// The archive is not an image archive, or its content does not match its own digests.
    #[error("{0}")]
    BadArchive(String),
    /// The store's own files.
    #[error("image store {path}: {error}")]
    Io {
        /// Which file or directory.
        path: PathBuf,
        /// What went wrong.
        error: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, ImageError>;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |error| ImageError::Io {
        path: path.to_owned(),
        error,
    }
}

/// An image as the store lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageRecord {
    /// Its normalised reference.
    pub reference: String,
    /// Its manifest's digest.
    pub manifest: String,
    /// Its config's digest (Docker's image id).
    pub config: String,
    /// The size of its blobs (config and compressed layers) in bytes.
    pub size: u64,
    /// When it was imported, seconds since the epoch.
    pub imported: u64,
}

/// An image ready to run: its run-time defaults and its unpacked layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedImage {
    /// The store's record of it.
    pub record: ImageRecord,
    /// Entrypoint, Cmd, Env, WorkingDir, User.
    pub config: RunConfig,
    /// The unpacked layers' directories, bottom first.
    pub layers: Vec<PathBuf>,
}

/// The store's index file.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct IndexFile {
    images: BTreeMap<String, ImageRecord>,
}

/// A local image store over a directory. Cheap to clone; several processes may share one
/// directory (the agents of `keel dev` and `keel image import` do).
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
}

impl ImageStore {
    /// Opens (making if needed) the store in `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ImageStore> {
        let root = root.into();
        for dir in ["blobs/sha256", "layers", "tmp"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(io_error(&path))?;
        }
        Ok(ImageStore { root })
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Imports every image of an OCI layout tar or a docker-archive tar (`docker save`),
    /// gzip-compressed or not; returns the images it named.
    pub fn import(&self, archive: &Path) -> Result<Vec<ImageRecord>> {
        let _gc = self.lock("gc.lock", false)?;
        let images = import::import(self, archive)?;
        let _index = self.lock("index.lock", true)?;
        let mut index = self.read_index()?;
        for image in &images {
            index.images.insert(image.reference.clone(), image.clone());
        }
        self.write_index(&index)?;
        Ok(images)
    }

    /// Every image, by reference.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.read_index()?.images.into_values().collect())
    }

    /// Finds `reference` (normalised first: `busybox` is `docker.io/library/busybox:latest`;
    /// `name@sha256:…` matches that name's image with that manifest digest).
    pub fn find(&self, reference: &str) -> Result<ImageRecord> {
        let parsed = Reference::parse(reference).map_err(ImageError::InvalidReference)?;
        let index = self.read_index()?;
        if let Some(record) = index.images.get(&parsed.to_string()) {
            return Ok(record.clone());
        }
        if let Some(digest) = &parsed.digest {
            let name = parsed.name();
            let found = index.images.values().find(|record| {
                &record.manifest == digest
                    && Reference::parse(&record.reference).is_ok_and(|r| r.name() == name)
            });
            if let Some(record) = found {
                return Ok(record.clone());
            }
        }
        Err(ImageError::NotFound(parsed.to_string()))
    }

    /// `reference`'s run-time defaults and unpacked layers.
    pub fn resolve(&self, reference: &str) -> Result<ResolvedImage> {
        let record = self.find(reference)?;
        let manifest: oci::Manifest = self.read_json(&record.manifest)?;
        let config: oci::ImageConfig = self.read_json(&record.config)?;
        let mut layers = Vec::new();
        for layer in &manifest.layers {
            let dir = self.layer_dir(&layer.digest)?;
            if !dir.is_dir() {
                return Err(ImageError::BadArchive(format!(
                    "layer {} of {} is missing from the store; import the image again",
                    layer.digest, record.reference
                )));
            }
            layers.push(dir);
        }
        Ok(ResolvedImage {
            record,
            config: config.config,
            layers,
        })
    }

    /// Removes `reference`, then every blob and layer no remaining image uses; returns the
    /// removed record.
    pub fn remove(&self, reference: &str) -> Result<ImageRecord> {
        let record = {
            let _index = self.lock("index.lock", true)?;
            let record = self.find(reference)?;
            let mut index = self.read_index()?;
            index.images.remove(&record.reference);
            self.write_index(&index)?;
            record
        };
        self.collect_garbage()?;
        Ok(record)
    }

    /// Removes blobs and unpacked layers that no image references (a layer a running
    /// container's overlay still stacks is kept for a later collection), and what crashed
    /// imports left in `tmp/` (no import runs while `gc.lock` is held exclusive).
    fn collect_garbage(&self) -> Result<()> {
        let _gc = self.lock("gc.lock", true)?;
        let index = self.read_index()?;
        let mut used = layers_in_use(&self.root.join("layers"));
        for record in index.images.values() {
            used.insert(record.manifest.clone());
            used.insert(record.config.clone());
            let manifest: oci::Manifest = self.read_json(&record.manifest)?;
            used.extend(manifest.layers.into_iter().map(|layer| layer.digest));
        }
        let used_hex: BTreeSet<&str> = used
            .iter()
            .filter_map(|digest| digest.strip_prefix("sha256:"))
            .collect();
        for dir in ["blobs/sha256", "layers", "tmp"] {
            let path = self.root.join(dir);
            for entry in std::fs::read_dir(&path).map_err(io_error(&path))? {
                let entry = entry.map_err(io_error(&path))?;
                let name = entry.file_name();
                if used_hex.contains(name.to_string_lossy().as_ref()) {
                    continue;
                }
                let doomed = entry.path();
                let removed = if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    std::fs::remove_dir_all(&doomed)
                } else {
                    std::fs::remove_file(&doomed)
                };
                removed.map_err(io_error(&doomed))?;
            }
        }
        Ok(())
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = reference::check_digest(digest).map_err(ImageError::BadArchive)?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    fn layer_dir(&self, digest: &str) -> Result<PathBuf> {
        let hex = reference::check_digest(digest).map_err(ImageError::BadArchive)?;
        Ok(self.root.join("layers").join(hex))
    }

    fn read_json<T: serde::de::DeserializeOwned>(&self, digest: &str) -> Result<T> {
        let path = self.blob_path(digest)?;
        let bytes = std::fs::read(&path).map_err(io_error(&path))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::BadArchive(format!("blob {digest}: {e}")))
    }

    fn read_index(&self) -> Result<IndexFile> {
        let path = self.root.join("images.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ImageError::Io {
                path: path.clone(),
                error: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IndexFile::default()),
            Err(e) => Err(io_error(&path)(e)),
        }
    }

    fn write_index(&self, index: &IndexFile) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(index).expect("the index serialises");
        write_durably(&self.root.join("images.json"), &bytes)
    }

    /// Takes `name`'s advisory lock (exclusive or shared) until the returned file is dropped.
    fn lock(&self, name: &str, exclusive: bool) -> Result<File> {
        let path = self.root.join(name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let operation = if exclusive {
            rustix::fs::FlockOperation::LockExclusive
        } else {
            rustix::fs::FlockOperation::LockShared
        };
        rustix::fs::flock(&file, operation).map_err(|e| io_error(&path)(e.into()))?;
        Ok(file)
    }
}

/// The layers (as `sha256:<hex>`) under `layers` that some process's mount table shows as an
/// overlay lowerdir: a container's root is mounted in its own mount namespace, which only
/// `/proc/<pid>/mountinfo` of its processes shows.
fn layers_in_use(layers: &Path) -> BTreeSet<String> {
    let prefix = format!("{}/", layers.display());
    let mut used = BTreeSet::new();
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return used;
    };
    for process in processes.flatten() {
        let Ok(info) = std::fs::read_to_string(process.path().join("mountinfo")) else {
            continue;
        };
        for line in info.lines().filter(|line| line.contains(" - overlay ")) {
            for (at, _) in line.match_indices(&prefix) {
                let hex: String = line[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_hexdigit())
                    .collect();
                if hex.len() == 64 {
                    used.insert(format!("sha256:{hex}"));
                }
            }
        }
    }
    used
}

/// Writes `bytes` to `path` by a temporary file, fsync and rename (and fsyncs the directory),
/// so readers and a crash see the old or the new content whole.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("a file in the store");
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().unwrap().to_string_lossy(),
        unique()
    ));
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)?;
        File::open(dir)?.sync_all()
    };
    write().map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        ImageError::Io {
            path: path.to_owned(),
            error,
        }
    })
}

/// A name no other process or thread uses at the same time.
fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests;
