//! The image store on archives built here: OCI layouts and docker-archives, their errors,
//! removal and concurrent imports.

use std::io::Write;

use sha2::{Digest, Sha256};

use super::*;

fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// A layer tar of `(path, content)` files.
fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        builder.append_data(&mut header, path, *content).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An archive of `(path, content)` files plus `(path, target)` symlinks.
fn archive(files: &[(String, Vec<u8>)], links: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, path, &content[..])
            .unwrap();
    }
    for (path, target) in links {
        let mut header = tar::Header::new_gnu();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder.append_link(&mut header, path, target).unwrap();
    }
    builder.into_inner().unwrap()
}

fn config_json(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": oci::host_architecture(), "os": "linux",
        "config": {"Entrypoint": ["/bin/app"], "Cmd": ["--serve"], "Env": ["PATH=/bin", "GREETING=hi"],
                   "WorkingDir": "/srv", "User": "1000:1000"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// An OCI layout tar with one image of two gzip layers, named `name`.
fn oci_archive(name: &str) -> Vec<u8> {
    let base = layer_tar(&[("bin/app", b"app"), ("etc/motd", b"welcome")]);
    let top = layer_tar(&[("srv/data", b"data")]);
    let config = config_json(&[digest(&base), digest(&top)]);
    let (base_gz, top_gz) = (gzip(&base), gzip(&top));
    let descriptor = |media: &str, bytes: &[u8]| serde_json::json!({"mediaType": media, "digest": digest(bytes), "size": bytes.len()});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": oci::MEDIA_MANIFEST,
        "config": descriptor(oci::MEDIA_CONFIG, &config),
        "layers": [descriptor(oci::MEDIA_LAYER_GZIP, &base_gz), descriptor(oci::MEDIA_LAYER_GZIP, &top_gz)],
    }))
    .unwrap();
    let mut top_descriptor = descriptor(oci::MEDIA_MANIFEST, &manifest);
    top_descriptor["annotations"] = serde_json::json!({oci::ANNOTATION_CONTAINERD_NAME: name});
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [top_descriptor]}))
            .unwrap();
    let blob = |bytes: &[u8]| {
        (
            format!("blobs/sha256/{}", &digest(bytes)[7..]),
            bytes.to_vec(),
        )
    };
    archive(
        &[
            (
                "oci-layout".into(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            ("index.json".into(), index),
            blob(&manifest),
            blob(&config),
            blob(&base_gz),
            blob(&top_gz),
        ],
        &[],
    )
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn an_oci_layout_imports_resolves_and_is_removed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let tar = write(dir.path(), "app.tar", &oci_archive("app"));
    let records = store.import(&tar).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].reference, "docker.io/library/app:latest");
    assert_eq!(store.list().unwrap(), records);

    let image = store.resolve("app").unwrap();
    assert_eq!(image.config.entrypoint, Some(vec!["/bin/app".to_string()]));
    assert_eq!(image.config.working_dir.as_deref(), Some("/srv"));
    assert_eq!(image.config.user.as_deref(), Some("1000:1000"));
    assert_eq!(image.layers.len(), 2);
    assert_eq!(
        std::fs::read(image.layers[0].join("etc/motd")).unwrap(),
        b"welcome"
    );
    assert_eq!(
        std::fs::read(image.layers[1].join("srv/data")).unwrap(),
        b"data"
    );
    // The same image by its full name and by digest.
    assert_eq!(
        store.resolve("docker.io/library/app:latest").unwrap(),
        image
    );
    let by_digest = format!("app@{}", image.record.manifest);
    assert_eq!(store.resolve(&by_digest).unwrap().record, image.record);
    assert!(std::fs::read_dir(dir.path().join("store/tmp"))
        .unwrap()
        .next()
        .is_none());

    let removed = store.remove("app:latest").unwrap();
    assert_eq!(removed.reference, "docker.io/library/app:latest");
    assert!(store.list().unwrap().is_empty());
    for sub in ["blobs/sha256", "layers"] {
        let left: Vec<_> = std::fs::read_dir(dir.path().join("store").join(sub))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{sub} still holds {left:?}");
    }
}

#[test]
fn a_docker_archive_imports_with_its_repo_tags() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let layer = layer_tar(&[("bin/app", b"app")]);
    let config = config_json(&[digest(&layer)]);
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "abc.json", "RepoTags": ["me/app:1.0", "registry.local:5000/app:1.0"],
        "Layers": ["l1/layer.tar"],
    }]))
    .unwrap();
    // `docker save` dedupes layers with symlinks; the manifest may name the link.
    let tar = archive(
        &[
            ("manifest.json".into(), manifest),
            ("abc.json".into(), config),
            ("l0/layer.tar".into(), layer),
        ],
        &[("l1/layer.tar", "../l0/layer.tar")],
    );
    let records = store.import(&write(dir.path(), "d.tar", &tar)).unwrap();
    let names: Vec<&str> = records.iter().map(|r| r.reference.as_str()).collect();
    assert_eq!(
        names,
        ["docker.io/me/app:1.0", "registry.local:5000/app:1.0"]
    );
    let image = store.resolve("me/app:1.0").unwrap();
    assert_eq!(
        std::fs::read(image.layers[0].join("bin/app")).unwrap(),
        b"app"
    );
    assert_eq!(image.config.cmd, Some(vec!["--serve".to_string()]));
}

#[test]
fn bad_archives_are_refused_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let error = |bytes: &[u8]| {
        let path = write(dir.path(), "bad.tar", bytes);
        store.import(&path).unwrap_err().to_string()
    };
    let not_tar = error(b"this is not a tar file at all, just some text that is long enough");
    assert!(not_tar.contains("not"), "{not_tar}");
    let empty = error(&archive(&[("README".into(), b"hi".to_vec())], &[]));
    assert!(empty.contains("no index.json or manifest.json"), "{empty}");
    // A blob whose content is not its name's digest.
    let fake = archive(
        &[
            ("index.json".into(), br#"{"manifests":[]}"#.to_vec()),
            (
                format!("blobs/sha256/{}", "0".repeat(64)),
                b"not zeros".to_vec(),
            ),
        ],
        &[],
    );
    let mismatch = error(&fake);
    assert!(mismatch.contains("digest mismatch"), "{mismatch}");
    assert!(store.list().unwrap().is_empty());
    assert!(std::fs::read_dir(dir.path().join("store/tmp"))
        .unwrap()
        .next()
        .is_none());
    assert!(std::fs::read_dir(dir.path().join("store/blobs/sha256"))
        .unwrap()
        .next()
        .is_none());

    let missing = store.resolve("nosuch:1").unwrap_err().to_string();
    assert_eq!(
        missing,
        "image \"docker.io/library/nosuch:1\" is not in the local image store (no registry \
         pulls yet): import it with `keel image import FILE.tar`"
    );
    assert!(store.remove("nosuch").is_err());
    assert!(store
        .resolve("Bad Name")
        .unwrap_err()
        .to_string()
        .contains("invalid reference"));
}

#[test]
fn two_imports_at_once_both_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path().join("store")).unwrap();
    let a = write(dir.path(), "a.tar", &oci_archive("a"));
    let b = write(dir.path(), "b.tar", &oci_archive("b"));
    std::thread::scope(|scope| {
        let first = scope.spawn(|| store.import(&a));
        let second = scope.spawn(|| store.import(&b));
        first.join().unwrap().unwrap();
        second.join().unwrap().unwrap();
    });
    let names: Vec<String> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|r| r.reference)
        .collect();
    assert_eq!(
        names,
        ["docker.io/library/a:latest", "docker.io/library/b:latest"]
    );
    // Same content: one set of blobs and layers serves both; removing one keeps the other's.
    store.remove("a").unwrap();
    let image = store.resolve("b").unwrap();
    assert!(image.layers.iter().all(|layer| layer.is_dir()));
}
