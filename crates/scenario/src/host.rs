//! The host model: the firewall host's interfaces, routes, neighbours, sysctls and listening
//! sockets, as a scenario file describes them (SCENARIOS.md, "Tables").
//!
//! Plain data shared by replay (the engine) and the live daemon. Defaults are applied when the
//! model is built, so a consumer never has to know them: every interface has its MAC and MTU,
//! every sysctl lookup falls back to the lab value of SCENARIOS.md.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 address with a prefix length (`10.0.0.1/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    /// The address as written (host bits kept).
    pub addr: Ipv4Addr,
    /// The prefix length, 0..=32.
    pub prefix: u8,
}

impl Cidr {
    /// Parses `A.B.C.D/N` (or a bare address, meaning /32).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: Ipv4Addr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an IPv4 address (CIDR expected)"))?;
        let prefix = match p {
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= 32 => n,
                _ => return Err(format!("`{s}`: prefix length must be 0..32")),
            },
            None => 32,
        };
        Ok(Cidr { addr, prefix })
    }

    /// The netmask as a host-order integer.
    pub fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The directed broadcast address of the subnet.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    /// Whether `a` lies inside this subnet.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr) & self.mask()
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A MAC address.
pub type Mac = [u8; 6];

/// Formats a MAC as `02:00:00:00:00:01`.
pub fn format_mac(m: &Mac) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Parses `02:00:00:00:00:01`.
pub fn parse_mac(s: &str) -> Result<Mac, String> {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!(
            "`{s}` is not a MAC address (aa:bb:cc:dd:ee:ff expected)"
        ));
    }
    for (i, p) in parts.iter().enumerate() {
        if p.is_empty() || p.len() > 2 {
            return Err(format!("`{s}` is not a MAC address"));
        }
        m[i] = u8::from_str_radix(p, 16).map_err(|_| format!("`{s}` is not a MAC address"))?;
    }
    Ok(m)
}

/// One interface of the firewall host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Its name (`lan0`), at most 15 bytes as Linux wants.
    pub name: String,
    /// Its addresses in file order; the first is the primary one.
    pub addresses: Vec<Cidr>,
    /// Its MAC; default `02:00:00:00:00:NN`, NN the 1-based index in file order.
    pub mac: Mac,
    /// Its MTU; default 1500.
    pub mtu: u32,
}

/// The default MAC of the interface at 1-based `index`: `02:00:00:00:00:NN`.
pub fn default_interface_mac(index: usize) -> Mac {
    [0x02, 0, 0, 0, 0, index as u8]
}

/// The MAC of any neighbour without an entry on the interface at 1-based `index`:
/// `02:00:00:00:01:NN`.
pub fn default_neighbour_mac(index: usize) -> Mac {
    [0x02, 0, 0, 0, 0x01, index as u8]
}

/// A bridge of the host (a project key, `[[bridge]]`): its ports are `[[interface]]`s; it may
/// carry addresses itself. Frames between its ports are bridged; with
/// `net.bridge.bridge-nf-call-iptables` (1 in a new namespace) they also cross iptables FORWARD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bridge {
    /// Its name (`br0`).
    pub name: String,
    /// Its ports, `[[interface]]` names, in file order.
    pub ports: Vec<String>,
    /// Its addresses.
    pub addresses: Vec<Cidr>,
    /// Its MAC; default `02:00:00:00:02:NN`, NN the 1-based bridge index in file order.
    pub mac: Mac,
    /// Seconds a learned MAC is kept without a frame from it (`ageing_time`; Linux's default,
    /// [`DEFAULT_AGEING_TIME`], when not given).
    pub ageing_time: u32,
}

/// A new Linux bridge's ageing time in seconds (`ip -d link show` prints `ageing_time 30000`,
/// in hundredths of a second).
pub const DEFAULT_AGEING_TIME: u32 = 300;

/// The default MAC of the bridge at 1-based `index`: `02:00:00:00:02:NN`.
pub fn default_bridge_mac(index: usize) -> Mac {
    [0x02, 0, 0, 0, 0x02, index as u8]
}

/// A route beside the connected ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// The destination; `None` is `default` (0.0.0.0/0).
    pub to: Option<Cidr>,
    /// The gateway, if any.
    pub via: Option<Ipv4Addr>,
    /// The output interface.
    pub dev: String,
}

impl Route {
    /// The destination as a CIDR (`default` is 0.0.0.0/0).
    pub fn dest(&self) -> Cidr {
        self.to.unwrap_or(Cidr {
            addr: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
        })
    }
}

/// A static neighbour entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Neighbour {
    /// The neighbour's IPv4 address.
    pub address: Ipv4Addr,
    /// Its MAC.
    pub mac: Mac,
    /// The interface it sits on.
    pub dev: String,
}

/// The transport of a listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenProto {
    /// A UDP socket bound to the port.
    Udp,
    /// A TCP socket listening on the port.
    Tcp,
}

impl fmt::Display for ListenProto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListenProto::Udp => "udp",
            ListenProto::Tcp => "tcp",
        })
    }
}

/// A socket open on the host itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// udp or tcp.
    pub proto: ListenProto,
    /// The local port.
    pub port: u16,
    /// The local address; `None` is any address.
    pub address: Option<Ipv4Addr>,
}

/// The sysctls the lab sets before the scenario's own `[sysctl]` (SCENARIOS.md, "Conventions").
/// Both the kernel oracle and replay start from these values.
pub const LAB_SYSCTLS: &[(&str, &str)] = &[
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
    ("net.ipv4.ip_forward", "0"),
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.all.send_redirects", "0"),
    ("net.ipv4.conf.default.send_redirects", "0"),
    ("net.ipv4.conf.all.log_martians", "0"),
    ("net.ipv4.conf.default.log_martians", "0"),
    ("net.ipv4.icmp_ratemask", "0"),
    ("net.ipv4.tcp_synack_retries", "0"),
];

/// Sysctls that are machine-wide (or read-only inside a child namespace): a scenario that sets
/// one changes the whole machine and must say `exclusive = true`.
pub const GLOBAL_SYSCTLS: &[&str] = &[
    "net.netfilter.nf_conntrack_max",
    "net.nf_conntrack_max",
    "net.netfilter.nf_conntrack_buckets",
    // Read-only in a child namespace (measured on 6.18, like the two above).
    "net.netfilter.nf_conntrack_expect_max",
];

/// The firewall host of a scenario.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Host {
    /// Interfaces in file order (their order is the order of `out` lines in results).
    pub interfaces: Vec<Interface>,
    /// Routes beside the connected ones, in file order.
    pub routes: Vec<Route>,
    /// Static neighbours.
    pub neighbours: Vec<Neighbour>,
    /// The scenario's own sysctls by Linux name (values as text), without the lab defaults.
    pub sysctls: BTreeMap<String, String>,
    /// Sockets open on the host.
    pub listen: Vec<Listen>,
    /// Bridges over some of the interfaces (project key `[[bridge]]`).
    pub bridges: Vec<Bridge>,
}

impl Host {
    /// The interface called `name`.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The 1-based index of the interface called `name` (its position in file order).
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces
            .iter()
            .position(|i| i.name == name)
            .map(|p| p + 1)
    }

    /// The bridge called `name`.
    pub fn bridge(&self, name: &str) -> Option<&Bridge> {
        self.bridges.iter().find(|b| b.name == name)
    }

    /// The bridge interface `port` belongs to, if any.
    pub fn bridge_of(&self, port: &str) -> Option<&Bridge> {
        self.bridges
            .iter()
            .find(|b| b.ports.iter().any(|p| p == port))
    }

    /// Whether `dev` names an interface or a bridge of the host.
    pub fn has_device(&self, dev: &str) -> bool {
        self.interface(dev).is_some() || self.bridge(dev).is_some()
    }

    /// The layer-3 device (an interface, or the bridge it is a port of) whose connected subnet
    /// holds `a`, longest prefix first, then file order (interfaces before bridges).
    pub fn connected_device(&self, a: Ipv4Addr) -> Option<&str> {
        let mut best: Option<(&str, u8)> = None;
        let devs = self
            .interfaces
            .iter()
            .map(|i| (i.name.as_str(), &i.addresses))
            .chain(self.bridges.iter().map(|b| (b.name.as_str(), &b.addresses)));
        for (name, addrs) in devs {
            for c in addrs {
                let better = match best {
                    Some((_, p)) => c.prefix > p,
                    None => true,
                };
                if c.contains(a) && better {
                    best = Some((name, c.prefix));
                }
            }
        }
        best.map(|(n, _)| n)
    }

    /// The addresses of device `dev` (interface or bridge).
    pub fn device_addresses(&self, dev: &str) -> &[Cidr] {
        if let Some(i) = self.interface(dev) {
            return &i.addresses;
        }
        self.bridge(dev)
            .map(|b| b.addresses.as_slice())
            .unwrap_or(&[])
    }

    /// A sysctl's value: the scenario's, else the lab default, else `None` (the kernel default).
    pub fn sysctl(&self, name: &str) -> Option<&str> {
        if let Some(v) = self.sysctls.get(name) {
            return Some(v.as_str());
        }
        LAB_SYSCTLS
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }

    /// Every sysctl the host runs with: the lab defaults, then the scenario's (which win), in
    /// the order they are to be applied.
    pub fn effective_sysctls(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = LAB_SYSCTLS
            .iter()
            .filter(|(k, _)| !self.sysctls.contains_key(*k))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        out.extend(self.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// Whether `a` is one of the host's own addresses (interfaces and bridges).
    pub fn is_local_address(&self, a: Ipv4Addr) -> bool {
        self.interfaces
            .iter()
            .any(|i| i.addresses.iter().any(|c| c.addr == a))
            || self
                .bridges
                .iter()
                .any(|b| b.addresses.iter().any(|c| c.addr == a))
    }

    /// The interface whose connected subnet holds `a` (first match in file order, longest
    /// prefix first).
    pub fn connected_interface(&self, a: Ipv4Addr) -> Option<&Interface> {
        let mut best: Option<(&Interface, u8)> = None;
        for i in &self.interfaces {
            for c in &i.addresses {
                let better = match best {
                    Some((_, p)) => c.prefix > p,
                    None => true,
                };
                if c.contains(a) && better {
                    best = Some((i, c.prefix));
                }
            }
        }
        best.map(|(i, _)| i)
    }

    /// The MAC of neighbour `a` on device `dev`: its `[[neighbour]]` entry, else
    /// `02:00:00:00:01:NN` with NN the interface's index (for a bridge: its first port's).
    /// `None` if `dev` is unknown.
    pub fn neighbour_mac(&self, dev: &str, a: Ipv4Addr) -> Option<Mac> {
        if let Some(n) = self
            .neighbours
            .iter()
            .find(|n| n.dev == dev && n.address == a)
        {
            return Some(n.mac);
        }
        if let Some(b) = self.bridge(dev) {
            return b
                .ports
                .first()
                .and_then(|p| self.interface_index(p))
                .map(default_neighbour_mac);
        }
        self.interface_index(dev).map(default_neighbour_mac)
    }

    /// The sysctls a scenario sets that act machine-wide.
    pub fn global_sysctls(&self) -> Vec<&str> {
        self.sysctls
            .keys()
            .filter(|k| GLOBAL_SYSCTLS.contains(&k.as_str()))
            .map(|k| k.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_and_contains() {
        let c = Cidr::parse("10.0.0.1/24").unwrap();
        assert_eq!(c.network(), Ipv4Addr::new(10, 0, 0, 0));
        assert_eq!(c.broadcast(), Ipv4Addr::new(10, 0, 0, 255));
        assert!(c.contains(Ipv4Addr::new(10, 0, 0, 200)));
        assert!(!c.contains(Ipv4Addr::new(10, 0, 1, 1)));
        assert_eq!(Cidr::parse("1.2.3.4").unwrap().prefix, 32);
        assert!(Cidr::parse("1.2.3.4/33").is_err());
        assert!(Cidr::parse("1.2.3/8").is_err());
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().mask(), 0);
    }

    #[test]
    fn mac_roundtrip() {
        let m = parse_mac("02:00:00:00:01:0a").unwrap();
        assert_eq!(m, [2, 0, 0, 0, 1, 10]);
        assert_eq!(format_mac(&m), "02:00:00:00:01:0a");
        assert!(parse_mac("02:00:00:00:01").is_err());
        assert!(parse_mac("02:00:00:00:01:zz").is_err());
    }

    #[test]
    fn sysctl_defaults_and_override() {
        let mut h = Host::default();
        assert_eq!(h.sysctl("net.ipv4.ip_forward"), Some("0"));
        h.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        assert_eq!(h.sysctl("net.ipv4.ip_forward"), Some("1"));
        assert_eq!(h.sysctl("net.netfilter.nf_conntrack_udp_timeout"), None);
        let eff = h.effective_sysctls();
        assert_eq!(
            eff.iter()
                .filter(|(k, _)| k == "net.ipv4.ip_forward")
                .count(),
            1
        );
        assert_eq!(eff.last().unwrap().1, "1");
    }
}
