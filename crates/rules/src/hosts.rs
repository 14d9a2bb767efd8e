//! Host and network names without the C library: `/etc/hosts` and `/etc/networks` (or the files
//! named by `$NFRS_HOSTS` / `$NFRS_NETWORKS`), read when needed. No DNS query is ever made, so a
//! name lookup can never stall; what these files do not name stays numeric (for `-L`) or is
//! "not found" (for `-s name`).

use std::net::Ipv4Addr;
use std::path::PathBuf;

fn path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The hosts file in use.
pub fn hosts_path() -> PathBuf {
    path("NFRS_HOSTS", "/etc/hosts")
}

/// The networks file in use.
pub fn networks_path() -> PathBuf {
    path("NFRS_NETWORKS", "/etc/networks")
}

/// Parses hosts-file text into (address, names) lines, in file order.
pub fn parse_hosts(text: &str) -> Vec<(Ipv4Addr, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut it = line.split_whitespace();
            let addr = it.next()?.parse::<Ipv4Addr>().ok()?;
            let names: Vec<String> = it.map(str::to_string).collect();
            (!names.is_empty()).then_some((addr, names))
        })
        .collect()
}

/// How many host names the calling thread has looked up so far. A restore uses it to see
/// whether a table's rules (parsed on its own thread) depended on the hosts file, whose answer
/// may differ later; lookups on other threads (the store printer parsing the same lines again,
/// a daemon listing, another test) say nothing about that table and are not counted.
pub fn lookups() -> u64 {
    LOOKUPS.with(|n| n.get())
}

thread_local! {
    static LOOKUPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Every IPv4 address the hosts file gives `name` (any of a line's names), in file order.
pub fn lookup(name: &str) -> Vec<Ipv4Addr> {
    LOOKUPS.with(|n| n.set(n.get() + 1));
    let text = std::fs::read_to_string(hosts_path()).unwrap_or_default();
    let mut out = Vec::new();
    for (addr, names) in parse_hosts(&text) {
        if names.iter().any(|n| n == name) && !out.contains(&addr) {
            out.push(addr);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_hosts() {
        let h = parse_hosts("127.0.0.1 localhost\n# x\n10.9.9.8 dual # c\n::1 ip6\n");
        assert_eq!(h.len(), 2);
        assert_eq!(h[1], (Ipv4Addr::new(10, 9, 9, 8), vec!["dual".to_string()]));
    }
}
