//! Service (port) and protocol names, as iptables 1.8.9 resolves them through the C library
//! (getservbyname / getservbyport / getprotobyname / getprotobynumber). nfrs uses the bundled
//! Debian 12 netbase tables (`data/services.txt`, `data/protocols.txt`) so results do not depend
//! on the host.

use std::sync::OnceLock;

struct Service {
    name: &'static str,
    port: u16,
    proto: &'static str,
    aliases: Vec<&'static str>,
}

fn services() -> &'static [Service] {
    static TABLE: OnceLock<Vec<Service>> = OnceLock::new();
    TABLE.get_or_init(|| {
        include_str!("../data/services.txt")
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let name = it.next()?;
                let port = it.next()?.parse().ok()?;
                let proto = it.next()?;
                Some(Service {
                    name,
                    port,
                    proto,
                    aliases: it.collect(),
                })
            })
            .collect()
    })
}

struct Protocol {
    name: &'static str,
    number: u8,
    aliases: Vec<&'static str>,
}

fn protocols() -> &'static [Protocol] {
    static TABLE: OnceLock<Vec<Protocol>> = OnceLock::new();
    TABLE.get_or_init(|| {
        include_str!("../data/protocols.txt")
            .lines()
            .filter_map(|l| {
                let mut it = l.split_whitespace();
                let name = it.next()?;
                let number = it.next()?.parse().ok()?;
                Some(Protocol {
                    name,
                    number,
                    aliases: it.collect(),
                })
            })
            .collect()
    })
}

/// getservbyname(name, proto): the port of service `name` (proto `None` = any protocol).
pub fn service_port(name: &str, proto: Option<&str>) -> Option<u16> {
    services()
        .iter()
        .find(|s| {
            proto.is_none_or(|p| s.proto == p) && (s.name == name || s.aliases.contains(&name))
        })
        .map(|s| s.port)
}

/// getservbyport(port, proto): the service name of `port`.
pub fn service_name(port: u16, proto: Option<&str>) -> Option<&'static str> {
    services()
        .iter()
        .find(|s| s.port == port && proto.is_none_or(|p| s.proto == p))
        .map(|s| s.name)
}

/// getprotobyname(name).
pub fn protocol_number(name: &str) -> Option<u8> {
    // The names rules use most, answered from the table once (the first entry naming them
    // wins, as in the scan below).
    static COMMON: OnceLock<[Option<u8>; 3]> = OnceLock::new();
    let common = COMMON.get_or_init(|| ["tcp", "udp", "icmp"].map(scan_protocol_number));
    match name {
        "tcp" => common[0],
        "udp" => common[1],
        "icmp" => common[2],
        _ => scan_protocol_number(name),
    }
}

fn scan_protocol_number(name: &str) -> Option<u8> {
    protocols()
        .iter()
        .find(|p| p.name == name || p.aliases.contains(&name))
        .map(|p| p.number)
}

/// getprotobynumber(n).
pub fn protocol_name(number: u16) -> Option<&'static str> {
    // By number, the first entry of each (as the scan of the table finds it).
    static BY_NUMBER: OnceLock<[Option<&'static str>; 256]> = OnceLock::new();
    let table = BY_NUMBER.get_or_init(|| {
        let mut t = [None; 256];
        for p in protocols().iter().rev() {
            t[usize::from(p.number)] = Some(p.name);
        }
        t
    });
    table.get(usize::from(number)).copied().flatten()
}

/// iptables' own protocol names (xtables_chain_protos), used when the database has none.
pub const CHAIN_PROTOS: &[(&str, u16)] = &[
    ("tcp", 6),
    ("sctp", 132),
    ("udp", 17),
    ("udplite", 136),
    ("icmp", 1),
    ("icmpv6", 58),
    ("esp", 50),
    ("ah", 51),
    ("mh", 135),
    ("all", 0),
];

/// iptables' proto_to_name: database name unless `nolookup`, then the built-in list.
pub fn proto_to_name(proto: u16, nolookup: bool) -> Option<&'static str> {
    if proto != 0 && !nolookup {
        if let Some(n) = protocol_name(proto) {
            return Some(n);
        }
    }
    CHAIN_PROTOS
        .iter()
        .find(|(_, n)| *n == proto)
        .map(|(name, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tables_answer_as_the_scan() {
        for n in 0..=300u16 {
            let scan = protocols()
                .iter()
                .find(|p| u16::from(p.number) == n)
                .map(|p| p.name);
            assert_eq!(protocol_name(n), scan, "{n}");
        }
        for p in protocols() {
            for name in std::iter::once(&p.name).chain(p.aliases.iter()) {
                assert_eq!(protocol_number(name), scan_protocol_number(name), "{name}");
            }
        }
        assert_eq!(protocol_number("tcp"), Some(6));
        assert_eq!(protocol_number("nosuch"), None);
    }

    #[test]
    fn test_lookups() {
        assert_eq!(service_port("ssh", Some("tcp")), Some(22));
        assert_eq!(service_port("http", None), Some(80));
        assert_eq!(service_port("www", Some("tcp")), Some(80));
        assert_eq!(service_port("nosuch", Some("tcp")), None);
        assert_eq!(service_name(53, Some("udp")), Some("domain"));
        assert_eq!(protocol_number("gre"), Some(47));
        assert_eq!(protocol_number("TCP"), Some(6));
        assert_eq!(proto_to_name(47, false), Some("gre"));
        assert_eq!(proto_to_name(47, true), None);
        assert_eq!(proto_to_name(0, false), Some("all"));
    }
}
