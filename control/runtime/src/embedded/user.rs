//! The image's `User` (or none: root) as ids, looked up in the image's own `/etc/passwd` and
//! `/etc/group` as runc does: `uid`, `uid:gid`, `name`, `name:group`; a name the files do not
//! have is an error with runc's words.

use std::path::{Path, PathBuf};

/// The ids a container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserIds {
    /// The user id.
    pub uid: u32,
    /// The primary group id.
    pub gid: u32,
    /// Supplementary groups (the user's memberships in `/etc/group`).
    pub groups: Vec<u32>,
    /// The user's home directory (`HOME` when the env sets none).
    pub home: String,
}

/// Resolves `user` against the files of `layers` (bottom first; the topmost copy of a file
/// wins, as the overlay shows it).
pub fn resolve(user: &str, layers: &[PathBuf]) -> Result<UserIds, String> {
    let passwd = read_top(layers, "etc/passwd");
    let group = read_top(layers, "etc/group");
    let (user_part, group_part) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    // passwd: name:password:uid:gid:gecos:home:shell
    let entry = passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && (f[0] == user_part || f[2] == user_part));
    let (uid, mut gid, name, home) = match (&entry, user_part.parse::<u32>()) {
        (Some(f), _) => (
            f[2].parse()
                .map_err(|_| format!("bad uid in passwd: {:?}", f[2]))?,
            f[3].parse()
                .map_err(|_| format!("bad gid in passwd: {:?}", f[3]))?,
            Some(f[0].to_owned()),
            f.get(5).copied().unwrap_or("/").to_owned(),
        ),
        (None, Ok(uid)) => (uid, 0, None, "/".to_owned()),
        (None, Err(_)) => {
            return Err(format!(
                "unable to find user {user_part}: no matching entries in passwd file"
            ))
        }
    };
    // group: name:password:gid:member,member
    let groups_file: Vec<Vec<&str>> = group
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    if let Some(group_part) = group_part {
        gid = match groups_file
            .iter()
            .find(|f| f[0] == group_part || f[2] == group_part)
        {
            Some(f) => f[2]
                .parse()
                .map_err(|_| format!("bad gid in group: {:?}", f[2]))?,
            None => group_part.parse().map_err(|_| {
                format!("unable to find group {group_part}: no matching entries in group file")
            })?,
        };
    }
    let groups = match (&name, group_part) {
        (Some(name), None) => groups_file
            .iter()
            .filter(|f| f.get(3).is_some_and(|m| m.split(',').any(|m| m == name)))
            .filter_map(|f| f[2].parse().ok())
            .collect(),
        _ => Vec::new(),
    };
    Ok(UserIds {
        uid,
        gid,
        groups,
        home,
    })
}

/// The topmost layer's copy of `path` (empty when none has it).
fn read_top(layers: &[PathBuf], path: &str) -> String {
    layers
        .iter()
        .rev()
        .map(|layer| layer.join(path))
        .find(|file| Path::new(file).is_file())
        .and_then(|file| std::fs::read_to_string(file).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers() -> (tempfile::TempDir, Vec<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let (base, top) = (dir.path().join("base"), dir.path().join("top"));
        for layer in [&base, &top] {
            std::fs::create_dir_all(layer.join("etc")).unwrap();
        }
        std::fs::write(base.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
        std::fs::write(
            top.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nweb:x:1000:1000::/home/web:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            top.join("etc/group"),
            "root:x:0:\nweb:x:1000:\nlogs:x:1500:web,other\n",
        )
        .unwrap();
        (dir, vec![base, top])
    }

    #[test]
    fn users_resolve_from_the_topmost_passwd() {
        let (_dir, layers) = layers();
        let web = resolve("web", &layers).unwrap();
        assert_eq!(
            (web.uid, web.gid, web.groups.as_slice()),
            (1000, 1000, &[1500][..])
        );
        assert_eq!(web.home, "/home/web");
        assert_eq!(resolve("", &layers).unwrap().home, "/root");
        let numeric = resolve("4242:logs", &layers).unwrap();
        assert_eq!((numeric.uid, numeric.gid), (4242, 1500));
        assert_eq!(
            resolve("nobody", &layers).unwrap_err(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert!(resolve("web:nogroup", &layers).is_err());
    }
}
