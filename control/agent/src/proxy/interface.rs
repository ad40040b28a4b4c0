//! The proxy's addresses in the node's network namespace: a link holding every ClusterIP as
//! a /32 (so the kernel delivers traffic for them locally, to the proxy's sockets), and an `unreachable` route for the whole service range (so a ClusterIP nobody
//! holds fails at once with "no route to host" instead of leaving the machine by its default
//! route).
//!
//! ```text
//!   host netns
//!     keel-svc (bridge, up)  169.254.64.1/32  169.254.64.7/32 …   local: the proxy listens
//!     unreachable 169.254.64.0/20                                 everything else in the range
//! ```
//!
//! The link is a bridge without ports: kube-proxy's ipvs mode uses a `dummy` link, but
//! kernels built without the dummy driver (this machine's) lack it, and every kernel the host
//! runtime works on has bridges; an admin-up bridge gets the local routes of its addresses
//! just as a dummy does, carrier or not.
//!
//! Set with iproute2's `ip` (as the host runtime sets pod links), batched: one process per
//! change. [`Interface`] removes both on [`Interface::remove`] and, as a last resort, on drop,
//! so a stopped or crashed-out proxy leaves nothing behind; a starting proxy removes what an
//! earlier one left and begins from nothing.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;

use crate::error::{Error, Result};

/// The address-holding link and the unreachable route, owned by one proxy.
#[derive(Debug)]
pub struct Interface {
    name: String,
    service_cidr: Option<String>,
    addresses: BTreeSet<Ipv4Addr>,
    removed: bool,
}

impl Interface {
    /// Makes the interface `name` afresh (removing one left by an earlier run, with its
    /// addresses) and routes `service_cidr` to nowhere.
    pub fn create(name: &str, service_cidr: Option<&str>) -> Result<Interface> {
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ']) {
            return Err(Error::Config(format!(
                "proxy interface {name:?}: a link name is 1 to 15 characters, no '/' or space"
            )));
        }
        if exists(name) {
            ip_batch(&[format!("link del {name}")])?;
        }
        let mut commands = vec![
            format!("link add {name} type bridge"),
            format!("link set {name} up"),
        ];
        if let Some(cidr) = service_cidr {
            commands.push(format!("route replace unreachable {cidr}"));
        }
        ip_batch(&commands)?;
        Ok(Interface {
            name: name.to_owned(),
            service_cidr: service_cidr.map(str::to_owned),
            addresses: BTreeSet::new(),
            removed: false,
        })
    }

    /// Gives the interface exactly `wanted`: adds the missing, removes the rest.
    pub fn set_addresses(&mut self, wanted: &BTreeSet<Ipv4Addr>) -> Result<()> {
        let mut commands = Vec::new();
        for gone in self.addresses.difference(wanted) {
            commands.push(format!("addr del {gone}/32 dev {}", self.name));
        }
        for new in wanted.difference(&self.addresses) {
            // `replace` so an address left from a failed batch does not fail this one.
            commands.push(format!("addr replace {new}/32 dev {}", self.name));
        }
        if commands.is_empty() {
            return Ok(());
        }
        let result = ip_batch(&commands);
        // A batch stops at its first failure: read back what the kernel has.
        self.addresses = match read_addresses(&self.name) {
            Ok(addresses) => addresses,
            Err(_) if result.is_ok() => wanted.clone(),
            Err(e) => return Err(e),
        };
        result
    }

    /// The addresses the interface holds now.
    pub fn addresses(&self) -> &BTreeSet<Ipv4Addr> {
        &self.addresses
    }

    /// Removes the interface (its addresses go with it) and the unreachable route.
    pub fn remove(mut self) -> Result<()> {
        self.removed = true;
        remove(&self.name, self.service_cidr.as_deref())
    }
}

impl Drop for Interface {
    fn drop(&mut self) {
        if !self.removed {
            if let Err(e) = remove(&self.name, self.service_cidr.as_deref()) {
                tracing::warn!("proxy: removing {}: {e}", self.name);
            }
        }
    }
}

fn remove(name: &str, service_cidr: Option<&str>) -> Result<()> {
    let mut commands = Vec::new();
    if exists(name) {
        commands.push(format!("link del {name}"));
    }
    if let Some(cidr) = service_cidr {
        if route_exists(cidr) {
            commands.push(format!("route del unreachable {cidr}"));
        }
    }
    if commands.is_empty() {
        return Ok(());
    }
    ip_batch(&commands)
}

/// Whether the link `name` exists.
pub fn exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// Whether an `unreachable` route for `cidr` is in the main table.
pub fn route_exists(cidr: &str) -> bool {
    let output = std::process::Command::new("ip")
        .args(["route", "show", "type", "unreachable", "exact", cidr])
        .output();
    output.is_ok_and(|o| o.status.success() && !o.stdout.trim_ascii().is_empty())
}

/// The IPv4 addresses on the link `name`.
pub fn read_addresses(name: &str) -> Result<BTreeSet<Ipv4Addr>> {
    let output = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "dev", name])
        .output()
        .map_err(|e| Error::Config(format!("running ip (iproute2): {e}")))?;
    if !output.status.success() {
        return Err(Error::Config(format!(
            "ip addr show dev {name}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    // `4: keel-svc    inet 169.254.64.7/32 scope global keel-svc\ …`
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.split('/').next()?.parse().ok()
        })
        .collect())
}

/// Runs `ip -batch -` with `commands`, one per line; an error names them and ip's output.
fn ip_batch(commands: &[String]) -> Result<()> {
    let mut child = std::process::Command::new("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Config(format!("running ip (iproute2): {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(commands.join("\n").as_bytes())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        return Err(Error::Config(format!(
            "ip {}: {}",
            commands.join("; "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(())
}
