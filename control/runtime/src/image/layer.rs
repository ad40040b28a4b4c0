//! Unpacking a layer (a tar, gzip-compressed or not) into a directory in overlayfs form, so
//! the image's layers stack as overlay lowerdirs with no further work:
//!
//! ```text
//! in the tar                     on disk
//! dir/.wh.name                   dir/name, a character device 0/0 (overlay's whiteout)
//! dir/.wh..wh..opq               dir with xattr trusted.overlay.opaque=y (hides lower dirs)
//! anything else                  itself, with mode, owner, mtime and xattrs
//! ```
//!
//! Paths never leave the target: `..` components are refused and the tar crate's
//! `unpack_in` checks each parent against symlinks that point out of the target.

use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Unpacks the layer read from `reader` into `target` (which exists and is empty); returns
/// the sha256 of the uncompressed tar (`sha256:…`, the layer's diff id).
pub fn unpack(reader: impl Read, target: &Path) -> Result<String, String> {
    let mut reader = BufReader::new(reader);
    let head = reader.fill_buf().map_err(|e| e.to_string())?;
    let uncompressed: Box<dyn Read> = if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Err("zstd-compressed layers are not supported".into());
    } else {
        Box::new(reader)
    };
    let mut hashed = HashingReader {
        inner: uncompressed,
        hasher: Sha256::new(),
    };
    {
        let mut archive = tar::Archive::new(&mut hashed);
        archive.set_preserve_permissions(true);
        archive.set_preserve_ownerships(true);
        archive.set_preserve_mtime(true);
        archive.set_unpack_xattrs(true);
        archive.set_overwrite(true);
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| format!("reading the layer: {e}"))?;
            let path = entry
                .path()
                .map_err(|e| format!("a layer entry's path: {e}"))?
                .into_owned();
            let relative = relative(&path)?;
            let Some(name) = relative.file_name().and_then(|n| n.to_str()) else {
                continue; // the root itself
            };
            if name == OPAQUE_MARKER {
                let dir = target.join(relative.parent().unwrap_or(Path::new("")));
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                rustix::fs::setxattr(
                    &dir,
                    "trusted.overlay.opaque",
                    b"y",
                    rustix::fs::XattrFlags::empty(),
                )
                .map_err(|e| format!("marking {} opaque: {e}", dir.display()))?;
            } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
                let parent = target.join(relative.parent().unwrap_or(Path::new("")));
                std::fs::create_dir_all(&parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
                whiteout(&parent.join(hidden))?;
            } else {
                let unpacked = entry
                    .unpack_in(target)
                    .map_err(|e| format!("unpacking {}: {}", path.display(), chain(&e)))?;
                if !unpacked {
                    return Err(format!("layer entry {} leaves the layer", path.display()));
                }
            }
        }
    }
    // The tar's end (two zero blocks and any padding) is part of what the diff id covers.
    std::io::copy(&mut hashed, &mut std::io::sink()).map_err(|e| e.to_string())?;
    Ok(format!("sha256:{:x}", hashed.hasher.finalize()))
}

/// An error with its causes (the tar crate's own text names only the file).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// `path` as a path inside the layer: leading `/` and `./` dropped, `..` refused.
fn relative(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("layer entry {} leaves the layer", path.display()))
            }
        }
    }
    Ok(out)
}

/// Makes `path` an overlay whiteout (a 0/0 character device), replacing what is there.
fn whiteout(path: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    }
    .map_err(|e| format!("{}: {e}", path.display()))?;
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::empty(),
        nix::sys::stat::makedev(0, 0),
    )
    .map_err(|e| format!("whiteout {}: {e}", path.display()))
}

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    fn layer(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(0);
            match content {
                Some(bytes) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(bytes.len() as u64);
                    header.set_mode(0o750);
                    builder.append_data(&mut header, path, *bytes).unwrap();
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(0o755);
                    builder.append_data(&mut header, path, &[][..]).unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn files_unpack_with_their_mode_and_the_diff_id_is_the_tars_sha256() {
        let tar = layer(&[("./bin/", None), ("./bin/tool", Some(b"#!/bin/sh\n"))]);
        let dir = tempfile::tempdir().unwrap();
        let diff_id = unpack(&gzip(&tar)[..], dir.path()).unwrap();
        assert_eq!(diff_id, format!("sha256:{:x}", Sha256::digest(&tar)));
        let tool = dir.path().join("bin/tool");
        assert_eq!(std::fs::read(&tool).unwrap(), b"#!/bin/sh\n");
        assert_eq!(tool.metadata().unwrap().permissions().mode() & 0o777, 0o750);
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: mknod and trusted xattrs need root");
            return;
        }
        let tar = layer(&[
            ("etc/", None),
            ("etc/.wh.motd", Some(b"")),
            ("var/cache/.wh..wh..opq", Some(b"")),
        ]);
        let dir = tempfile::tempdir().unwrap();
        unpack(&tar[..], dir.path()).unwrap();
        let motd = std::fs::symlink_metadata(dir.path().join("etc/motd")).unwrap();
        assert!(motd.file_type().is_char_device());
        assert!(!dir.path().join("etc/.wh.motd").exists());
        let opaque = rustix::fs::getxattr(
            dir.path().join("var/cache"),
            "trusted.overlay.opaque",
            &mut [0u8; 4][..],
        )
        .unwrap();
        assert_eq!(opaque, 1);
    }

    #[test]
    fn entries_that_leave_the_layer_are_refused() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        // Header::set_path refuses `..`; write the name bytes directly, as a hostile tar would.
        header.as_gnu_mut().unwrap().name[..8].copy_from_slice(b"../evil\0");
        header.set_cksum();
        builder.append(&header, &b"x"[..]).unwrap();
        let tar = builder.into_inner().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("layer");
        std::fs::create_dir(&target).unwrap();
        let error = unpack(&tar[..], &target).unwrap_err();
        assert!(error.contains("leaves the layer"), "{error}");
        assert!(!dir.path().join("evil").exists());
    }
}
