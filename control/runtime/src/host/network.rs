//! Pod networking: a node bridge, one veth pair per pod, IPs from the node's pod CIDR.
//!
//! ```text
//!   host netns                          pod netns /run/netns/keel-<sandbox>
//!   bridge <name>  <CIDR's first address>/prefix
//!     └── kv<sandbox[..12]> ──veth── eth0  <allocated IP>/prefix, default via the bridge
//!                                    lo    up
//! ```
//!
//! Links and addresses are set with iproute2's `ip` (Debian's, C), batched so a pod costs two
//! `ip` processes. The allocator is a JSON map in the data dir, written before an address is
//! handed out, so an agent restarted over the same data dir never gives an address twice.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;

/// An IPv4 network, `169.254.1.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Ipv4Cidr {
    /// Its network address.
    pub network: Ipv4Addr,
    /// Its prefix length.
    pub prefix: u8,
}

impl Ipv4Cidr {
    /// The first host address: the gateway, on the bridge.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// The addresses pods may get: after the gateway, before the broadcast address.
    fn pod_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        let base = u32::from(self.network);
        let size = 1u64 << (32 - u32::from(self.prefix));
        (2..size.saturating_sub(1)).map(move |offset| Ipv4Addr::from(base + offset as u32))
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid pod CIDR {text:?}: want an IPv4 network such as 169.254.1.0/24");
        let (address, prefix) = text.split_once('/').ok_or_else(bad)?;
        let address: Ipv4Addr = address.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(format!(
                "invalid pod CIDR {text:?}: the prefix must be 8..=30"
            ));
        }
        let mask = u32::MAX << (32 - prefix);
        if u32::from(address) & !mask != 0 {
            return Err(format!("invalid pod CIDR {text:?}: host bits are set"));
        }
        Ok(Ipv4Cidr {
            network: address,
            prefix,
        })
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The pod IP allocator, persisted as `ipam.json` (address → sandbox id).
#[derive(Debug)]
pub struct Ipam {
    path: PathBuf,
    cidr: Ipv4Cidr,
    taken: BTreeMap<Ipv4Addr, String>,
}

impl Ipam {
    /// Loads the allocator kept at `path` (empty when the file does not exist).
    pub fn load(path: PathBuf, cidr: Ipv4Cidr) -> std::io::Result<Self> {
        let taken = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(e),
        };
        Ok(Ipam { path, cidr, taken })
    }

    /// Hands the lowest free address to `owner`, persisted before it is returned.
    pub fn allocate(&mut self, owner: &str) -> std::io::Result<Ipv4Addr> {
        let free = self
            .cidr
            .pod_addresses()
            .find(|ip| !self.taken.contains_key(ip));
        let ip = free.ok_or_else(|| {
            std::io::Error::other(format!("no free pod IP left in {}", self.cidr))
        })?;
        self.taken.insert(ip, owner.to_string());
        self.save()?;
        Ok(ip)
    }

    /// Gives back every address `owner` holds.
    pub fn release(&mut self, owner: &str) -> std::io::Result<()> {
        let before = self.taken.len();
        self.taken.retain(|_, holder| holder != owner);
        if self.taken.len() != before {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> std::io::Result<()> {
        super::state::write_atomic(&self.path, &serde_json::to_vec(&self.taken)?)
    }
}

/// Runs `ip [global…] -batch -` with `commands`, one per line; an error names the output.
fn ip_batch(global: &[&str], commands: &[String]) -> std::io::Result<()> {
    let mut child = std::process::Command::new("ip")
        .args(global)
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("running ip (iproute2): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(commands.join("\n").as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(std::io::Error::other(format!(
            "ip {}: {}",
            commands.join("; "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}

/// Makes the bridge with the gateway address, unless it exists.
pub fn ensure_bridge(bridge: &str, cidr: &Ipv4Cidr) -> std::io::Result<()> {
    if Path::new("/sys/class/net").join(bridge).exists() {
        return Ok(());
    }
    ip_batch(
        &[],
        &[
            format!("link add {bridge} type bridge"),
            format!("addr add {}/{} dev {bridge}", cidr.gateway(), cidr.prefix),
            format!("link set {bridge} up"),
        ],
    )
}

/// Removes the bridge, if it exists.
pub fn remove_bridge(bridge: &str) -> std::io::Result<()> {
    if !Path::new("/sys/class/net").join(bridge).exists() {
        return Ok(());
    }
    ip_batch(&[], &[format!("link del {bridge}")])
}

/// Connects the network namespace `netns` (a name under /run/netns) to the bridge through the
/// veth `host_veth`, and gives its `eth0` the address `ip`.
pub fn attach(
    bridge: &str,
    cidr: &Ipv4Cidr,
    netns: &str,
    host_veth: &str,
    ip: Ipv4Addr,
) -> std::io::Result<()> {
    ip_batch(
        &[],
        &[
            format!("link add {host_veth} type veth peer name eth0 netns {netns}"),
            format!("link set {host_veth} master {bridge} up"),
        ],
    )?;
    ip_batch(
        &["-n", netns],
        &[
            "link set lo up".into(),
            format!("addr add {ip}/{} dev eth0", cidr.prefix),
            "link set eth0 up".into(),
            format!("route add default via {}", cidr.gateway()),
        ],
    )
}

/// Removes the host side of a pod's veth (its peer goes with it), if it exists.
pub fn detach(host_veth: &str) -> std::io::Result<()> {
    if !Path::new("/sys/class/net").join(host_veth).exists() {
        return Ok(());
    }
    ip_batch(&[], &[format!("link del {host_veth}")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parses_and_rejects() {
        let cidr: Ipv4Cidr = "169.254.7.0/24".parse().unwrap();
        assert_eq!(cidr.gateway(), Ipv4Addr::new(169, 254, 7, 1));
        assert_eq!(cidr.pod_addresses().count(), 253);
        assert!("169.254.7.1/24"
            .parse::<Ipv4Cidr>()
            .unwrap_err()
            .contains("host bits"));
        assert!("169.254.7.0".parse::<Ipv4Cidr>().is_err());
        assert!("169.254.7.0/31".parse::<Ipv4Cidr>().is_err());
    }

    #[test]
    fn ipam_survives_a_reload_and_never_hands_an_address_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ipam.json");
        let cidr: Ipv4Cidr = "169.254.7.0/30".parse().unwrap();
        let mut ipam = Ipam::load(path.clone(), cidr).unwrap();
        assert_eq!(ipam.allocate("a").unwrap(), Ipv4Addr::new(169, 254, 7, 2));
        let mut reloaded = Ipam::load(path.clone(), cidr).unwrap();
        let err = reloaded.allocate("b").unwrap_err();
        assert!(err.to_string().contains("no free pod IP"), "{err}");
        reloaded.release("a").unwrap();
        let mut again = Ipam::load(path, cidr).unwrap();
        assert_eq!(again.allocate("b").unwrap(), Ipv4Addr::new(169, 254, 7, 2));
    }
}
