//! The two ranges services draw from: an IPv4 CIDR for cluster IPs and a port range for node
//! ports, each numbered by offset so a claim can be picked at random and scanned in order.

use std::net::Ipv4Addr;

/// An IPv4 CIDR whose addresses, less the network and broadcast addresses, are cluster IPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpRange {
    network: u32,
    prefix: u8,
}

impl IpRange {
    /// Parses `a.b.c.d/n` (the host bits must be zero, as kube-apiserver's flag requires).
    /// Ranges smaller than /30 hold no usable address and are refused.
    pub fn parse(cidr: &str) -> Result<IpRange, String> {
        let (address, prefix) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr:?} is not a CIDR (a.b.c.d/n)"))?;
        let address: Ipv4Addr = address
            .parse()
            .map_err(|_| format!("{cidr:?}: {address:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 30)
            .ok_or_else(|| format!("{cidr:?}: the prefix length must be 0 to 30"))?;
        let mask = Self::mask(prefix);
        let network = u32::from(address);
        if network & !mask != 0 {
            return Err(format!("{cidr:?} has host bits set"));
        }
        Ok(IpRange { network, prefix })
    }

    fn mask(prefix: u8) -> u32 {
        if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        }
    }

    /// How many addresses can be handed out (the network and broadcast addresses cannot).
    pub fn size(&self) -> u32 {
        ((1u64 << (32 - self.prefix)) - 2) as u32
    }

    /// The address `offset` places into the usable addresses (0: the first usable one).
    pub fn nth(&self, offset: u32) -> Option<Ipv4Addr> {
        (offset < self.size()).then(|| Ipv4Addr::from(self.network + 1 + offset))
    }

    /// The offset of a usable address, `None` for one outside the range.
    pub fn offset(&self, ip: Ipv4Addr) -> Option<u32> {
        let ip = u32::from(ip);
        let offset = ip.checked_sub(self.network + 1)?;
        (ip & Self::mask(self.prefix) == self.network && offset < self.size()).then_some(offset)
    }

    /// Offsets below this are kept for clusterIPs users ask for (the `kubernetes` service's
    /// first address, DNS's tenth): dynamic allocation takes them only when the rest is full,
    /// as kube-apiserver's static subrange (KEP-3070) has it: size/16, at least 16, at most 256.
    pub fn static_band(&self) -> u32 {
        (self.size() / 16).clamp(16, 256).min(self.size())
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.network), self.prefix)
    }
}

/// An inclusive range of node ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    /// The first port.
    pub first: u16,
    /// The last port.
    pub last: u16,
}

impl PortRange {
    /// Parses `first-last` (kube-apiserver's `--service-node-port-range`).
    pub fn parse(text: &str) -> Result<PortRange, String> {
        let (first, last) = text
            .split_once('-')
            .ok_or_else(|| format!("{text:?} is not a port range (first-last)"))?;
        let parse = |p: &str| {
            p.trim()
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{text:?}: {p:?} is not a port"))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if first > last {
            return Err(format!("{text:?}: the first port is past the last"));
        }
        Ok(PortRange { first, last })
    }

    /// How many ports the range holds.
    pub fn size(&self) -> u32 {
        u32::from(self.last - self.first) + 1
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: i64) -> bool {
        (i64::from(self.first)..=i64::from(self.last)).contains(&port)
    }

    /// The port `offset` places into the range.
    pub fn nth(&self, offset: u32) -> Option<u16> {
        (offset < self.size()).then(|| self.first + offset as u16)
    }

    /// Offsets below this are kept for ports users ask for, as for IPs (KEP-3668): size/32,
    /// at least 16, at most 128.
    pub fn static_band(&self) -> u32 {
        (self.size() / 32).clamp(16, 128).min(self.size())
    }
}

impl std::fmt::Display for PortRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_range_skips_network_and_broadcast() {
        let range = IpRange::parse("169.254.64.0/20").unwrap();
        assert_eq!(range.size(), 4094);
        assert_eq!(range.nth(0), Some(Ipv4Addr::new(169, 254, 64, 1)));
        assert_eq!(range.nth(9), Some(Ipv4Addr::new(169, 254, 64, 10)));
        assert_eq!(range.nth(4093), Some(Ipv4Addr::new(169, 254, 79, 254)));
        assert_eq!(range.nth(4094), None);
        assert_eq!(range.offset(Ipv4Addr::new(169, 254, 64, 10)), Some(9));
        assert_eq!(range.offset(Ipv4Addr::new(169, 254, 64, 0)), None);
        assert_eq!(range.offset(Ipv4Addr::new(169, 254, 79, 255)), None);
        assert_eq!(range.offset(Ipv4Addr::new(169, 254, 80, 1)), None);
        assert_eq!(range.static_band(), 255);
        assert_eq!(range.to_string(), "169.254.64.0/20");
        assert!(IpRange::parse("169.254.64.1/20").is_err());
        assert!(IpRange::parse("169.254.64.0/31").is_err());
        assert!(IpRange::parse("fd00::/64").is_err());
        assert_eq!(IpRange::parse("169.254.64.0/29").unwrap().size(), 6);
    }

    #[test]
    fn a_port_range_is_inclusive() {
        let range = PortRange::parse("30000-32767").unwrap();
        assert_eq!(range.size(), 2768);
        assert!(range.contains(30000) && range.contains(32767));
        assert!(!range.contains(29999) && !range.contains(32768));
        assert_eq!(range.nth(2767), Some(32767));
        assert_eq!(range.static_band(), 86);
        assert!(PortRange::parse("32767-30000").is_err());
    }
}
