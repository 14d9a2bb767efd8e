//! Workload generators: deterministic rulesets in iptables-restore format.
//!
//! - [`kube_proxy`]: the shape kube-proxy (iptables mode) writes for N services — a
//!   `KUBE-SERVICES` dispatch with comments, one `KUBE-SVC-*` chain a service balancing over its
//!   endpoints with `-m statistic --mode random --probability`, one `KUBE-SEP-*` chain an
//!   endpoint (hairpin `KUBE-MARK-MASQ` + `DNAT`), NodePorts through `KUBE-EXT-*`, and
//!   `KUBE-POSTROUTING` with `MARK`/`MASQUERADE`; services without endpoints get a filter
//!   `REJECT`. Rule text follows what kube-proxy writes (`-m comment ... -m tcp -p tcp ...`),
//!   not the canonical `iptables-save` order, so the parser sees the real input.
//! - [`acl`]: a ClassBench-style access list in filter `FORWARD` (source/destination prefixes,
//!   protocol, port ranges, `ACCEPT`/`DROP`).
//!
//! The same arguments always give the same bytes (own PRNG, no clock, no hash-map order).

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// A small deterministic PRNG (splitmix64); good enough to spread workloads, not for secrets.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        // Multiply-shift keeps the bias negligible for the small ranges used here.
        ((self.next_u64() >> 32) * n) >> 32
    }

    /// Picks an index by integer weights.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(u64::from(total)) as u32;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

/// A generated ruleset and what is in it.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The iptables-restore text.
    pub text: String,
    /// Rule lines (`-A`) over all tables.
    pub rules: usize,
    /// User-defined chains over all tables.
    pub chains: usize,
    /// Rule lines per table, in the order the tables appear.
    pub per_table: Vec<(&'static str, usize)>,
}

/// Counts rules and chains of restore text (used by the generators, and for any input file).
pub fn census(text: &str) -> (usize, usize, Vec<(&'static str, usize)>) {
    let mut rules = 0;
    let mut chains = 0;
    let mut per_table: Vec<(&'static str, usize)> = Vec::new();
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            let name = match name.trim() {
                "filter" => "filter",
                "nat" => "nat",
                "mangle" => "mangle",
                "raw" => "raw",
                _ => "other",
            };
            per_table.push((name, 0));
        } else if line.starts_with("-A ") || line.starts_with("-I ") {
            rules += 1;
            if let Some(last) = per_table.last_mut() {
                last.1 += 1;
            }
        } else if let Some(decl) = line.strip_prefix(':') {
            if decl.split_whitespace().nth(1) == Some("-") {
                chains += 1;
            }
        }
    }
    (rules, chains, per_table)
}

fn finish(text: String) -> Generated {
    let (rules, chains, per_table) = census(&text);
    Generated {
        text,
        rules,
        chains,
        per_table,
    }
}

/// 16 characters of base32 (RFC 4648 alphabet) from a name, in the spirit of kube-proxy's
/// hashed chain suffixes (it uses SHA-256; any stable spread serves a benchmark).
fn chain_suffix(name: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    // FNV-1a over the name seeds the PRNG; 16 chars need 80 bits, taken from two outputs.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut rng = Rng::new(h);
    let (a, b) = (rng.next_u64(), rng.next_u64());
    let mut out = String::with_capacity(16);
    for i in 0..16 {
        let bits = if i < 12 {
            a >> (i * 5)
        } else {
            b >> ((i - 12) * 5)
        };
        out.push(ALPHABET[(bits & 31) as usize] as char);
    }
    out
}

/// Endpoint counts cycle through this pattern (2.5 endpoints a service on average).
const ENDPOINTS: [usize; 8] = [1, 2, 3, 4, 1, 2, 3, 4];

/// One service of the kube-proxy workload.
struct Service {
    port_name: String,
    proto: &'static str,
    cluster_ip: Ipv4Addr,
    port: u16,
    target_port: u16,
    node_port: Option<u16>,
    external_ip: Option<Ipv4Addr>,
    endpoints: Vec<Ipv4Addr>,
    svc_chain: String,
    ext_chain: String,
}

fn services(n: usize) -> Vec<Service> {
    let mut out = Vec::with_capacity(n);
    let mut next_ep: u32 = 1;
    // Cluster IPs from 172.16.0.0/12, starting at 172.30.0.1 (where kube-proxy's tests put
    // them) and wrapping inside the /12: distinct for up to 2^20 - 1 services.
    let base = u32::from(Ipv4Addr::new(172, 16, 0, 0));
    let ep_base = u32::from(Ipv4Addr::new(10, 128, 0, 0));
    for i in 0..n {
        let proto = if i % 10 == 9 { "udp" } else { "tcp" };
        let (port, target_port, pname) = match (proto, i % 4) {
            ("udp", _) => (53, 53, "dns"),
            (_, 0) => (80, 8080, "http"),
            (_, 1) => (443, 8443, "https"),
            (_, 2) => (8080, 8080, "web"),
            _ => (9090, 9090, "metrics"),
        };
        let ns = format!("ns{}", i / 100);
        let port_name = format!("{ns}/svc{i}:{pname}");
        // Every 50th service has no endpoints (filter REJECT), every 5th a NodePort.
        let endpoints = if i % 50 == 47 {
            Vec::new()
        } else {
            (0..ENDPOINTS[i % ENDPOINTS.len()])
                .map(|_| {
                    let ip = Ipv4Addr::from(ep_base.wrapping_add(next_ep));
                    next_ep += 1;
                    ip
                })
                .collect()
        };
        let node_port =
            (i % 5 == 0 && !endpoints.is_empty()).then(|| 30000 + (i / 5 % 2768) as u16);
        // Every 10th service with a NodePort also has an external IP (192.0.2.0/24 onwards).
        let external_ip = (i % 10 == 0 && node_port.is_some()).then(|| {
            Ipv4Addr::from(u32::from(Ipv4Addr::new(192, 0, 2, 0)) + (i / 10 + 1) as u32 % (1 << 16))
        });
        let offset = ((14 << 16) + i as u32 + 1) % (1 << 20);
        let cluster_ip = Ipv4Addr::from(base + offset);
        let suffix = chain_suffix(&format!("{port_name}{proto}"));
        out.push(Service {
            port_name,
            proto,
            cluster_ip,
            port,
            target_port,
            node_port,
            external_ip,
            endpoints,
            svc_chain: format!("KUBE-SVC-{suffix}"),
            ext_chain: format!("KUBE-EXT-{suffix}"),
        });
    }
    out
}

/// One service of [`kube_proxy`]`(n)` as traffic sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceInfo {
    /// `tcp` or `udp`.
    pub proto: &'static str,
    pub cluster_ip: Ipv4Addr,
    pub port: u16,
    /// The endpoints' port.
    pub target_port: u16,
    /// Empty: the service REJECTs.
    pub endpoints: Vec<Ipv4Addr>,
}

/// The services [`kube_proxy`]`(n)` writes rules for, in the same order.
pub fn kube_proxy_services(n: usize) -> Vec<ServiceInfo> {
    services(n)
        .into_iter()
        .map(|s| ServiceInfo {
            proto: s.proto,
            cluster_ip: s.cluster_ip,
            port: s.port,
            target_port: s.target_port,
            endpoints: s.endpoints,
        })
        .collect()
}

/// kube-proxy's per-endpoint chain: hashed from the service port name, protocol and endpoint.
fn sep_chain(svc: &Service, ep: Ipv4Addr) -> String {
    format!(
        "KUBE-SEP-{}",
        chain_suffix(&format!(
            "{}{}{}:{}",
            svc.port_name, svc.proto, ep, svc.target_port
        ))
    )
}

/// A comment argument as kube-proxy writes it: quoted only when it holds a blank.
fn comment(s: &str) -> String {
    if s.contains(' ') {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

/// The kube-proxy-shaped ruleset (filter + nat) for `n` services; about 10 rules a service
/// (10k services give ~100k rules and ~35k chains).
pub fn kube_proxy(n: usize) -> Generated {
    let svcs = services(n);
    let mut t = String::with_capacity(n * 1100);

    // filter: the portal jumps, forwarding accept rules, REJECT for services without endpoints.
    t.push_str("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    for c in [
        "KUBE-EXTERNAL-SERVICES",
        "KUBE-FORWARD",
        "KUBE-NODEPORTS",
        "KUBE-SERVICES",
    ] {
        let _ = writeln!(t, ":{c} - [0:0]");
    }
    t.push_str("-A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS\n");
    t.push_str("-A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n");
    t.push_str("-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n");
    t.push_str("-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    t.push_str("-A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n");
    t.push_str("-A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    t.push_str("-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n");
    t.push_str("-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n");
    t.push_str("-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n");
    for s in svcs.iter().filter(|s| s.endpoints.is_empty()) {
        let _ = writeln!(
            t,
            "-A KUBE-SERVICES -m comment --comment {} -m {p} -p {p} -d {} --dport {} -j REJECT",
            comment(&format!("{} has no endpoints", s.port_name)),
            s.cluster_ip,
            s.port,
            p = s.proto
        );
    }
    t.push_str("COMMIT\n");

    // nat: chain declarations first (as kube-proxy writes them), then the rules.
    t.push_str("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n");
    for c in [
        "KUBE-SERVICES",
        "KUBE-NODEPORTS",
        "KUBE-POSTROUTING",
        "KUBE-MARK-MASQ",
    ] {
        let _ = writeln!(t, ":{c} - [0:0]");
    }
    for s in svcs.iter().filter(|s| !s.endpoints.is_empty()) {
        let _ = writeln!(t, ":{} - [0:0]", s.svc_chain);
        if s.node_port.is_some() {
            let _ = writeln!(t, ":{} - [0:0]", s.ext_chain);
        }
        for ep in &s.endpoints {
            let _ = writeln!(t, ":{} - [0:0]", sep_chain(s, *ep));
        }
    }
    t.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n",
    );
    t.push_str("-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n");
    t.push_str("-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n");
    t.push_str("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n");
    t.push_str("-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n");
    t.push_str("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE\n");
    t.push_str("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n");
    for s in svcs.iter().filter(|s| !s.endpoints.is_empty()) {
        let p = s.proto;
        let _ = writeln!(
            t,
            "-A KUBE-SERVICES -m comment --comment {} -m {p} -p {p} -d {} --dport {} -j {}",
            comment(&format!("{} cluster IP", s.port_name)),
            s.cluster_ip,
            s.port,
            s.svc_chain
        );
        if let Some(ext) = s.external_ip {
            let _ = writeln!(
                t,
                "-A KUBE-SERVICES -m comment --comment {} -m {p} -p {p} -d {ext} --dport {} -j {}",
                comment(&format!("{} external IP", s.port_name)),
                s.port,
                s.ext_chain
            );
        }
        if let Some(np) = s.node_port {
            let _ = writeln!(
                t,
                "-A KUBE-NODEPORTS -m comment --comment {} -m {p} -p {p} --dport {np} -j {}",
                comment(&s.port_name),
                s.ext_chain
            );
            let _ = writeln!(
                t,
                "-A {} -m comment --comment {} -j KUBE-MARK-MASQ",
                s.ext_chain,
                comment(&format!(
                    "masquerade traffic for {} external destinations",
                    s.port_name
                ))
            );
            let _ = writeln!(t, "-A {} -j {}", s.ext_chain, s.svc_chain);
        }
        let _ = writeln!(
            t,
            "-A {} -m comment --comment {} -m {p} -p {p} -d {} --dport {} ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ",
            s.svc_chain,
            comment(&format!("{} cluster IP", s.port_name)),
            s.cluster_ip,
            s.port
        );
        let n_ep = s.endpoints.len();
        for (k, ep) in s.endpoints.iter().enumerate() {
            let c = comment(&format!("{} -> {}:{}", s.port_name, ep, s.target_port));
            let sep = sep_chain(s, *ep);
            if k + 1 < n_ep {
                // Endpoint k of n is taken with probability 1/(n-k) among those left.
                let prob = 1.0 / (n_ep - k) as f64;
                let _ = writeln!(
                    t,
                    "-A {} -m comment --comment {c} -m statistic --mode random --probability {prob:.10} -j {sep}",
                    s.svc_chain
                );
            } else {
                let _ = writeln!(t, "-A {} -m comment --comment {c} -j {sep}", s.svc_chain);
            }
        }
        for ep in &s.endpoints {
            let sep = sep_chain(s, *ep);
            let c = comment(&s.port_name);
            let _ = writeln!(
                t,
                "-A {sep} -m comment --comment {c} -s {ep} -j KUBE-MARK-MASQ"
            );
            let _ = writeln!(
                t,
                "-A {sep} -m comment --comment {c} -m {p} -p {p} -j DNAT --to-destination {ep}:{}",
                s.target_port
            );
        }
    }
    t.push_str("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n");
    t.push_str("COMMIT\n");
    finish(t)
}

/// A prefix of `len` bits drawn from `rng`, host bits cleared (as iptables-save prints it).
fn prefix(rng: &mut Rng, len: u32) -> (Ipv4Addr, u32) {
    let addr = rng.next_u64() as u32;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (Ipv4Addr::from(addr & mask), len)
}

/// Prefix lengths and their weights, roughly the spread of ClassBench's ACL seeds (many host
/// and /24 entries, some wildcard sources, few wildcard destinations).
const PREFIX_LENS: [u32; 6] = [32, 24, 16, 8, 28, 0];
const PREFIX_WEIGHTS: [u32; 6] = [35, 25, 10, 5, 5, 20];
const DST_PREFIX_WEIGHTS: [u32; 6] = [45, 30, 10, 5, 8, 2];
const WELL_KNOWN: [u16; 10] = [22, 25, 53, 80, 110, 123, 443, 993, 3306, 8080];

/// A port match drawn ClassBench-style: a well-known port, a short random range, the
/// unprivileged range, or none.
fn port_range(rng: &mut Rng) -> Option<(u16, u16)> {
    match rng.weighted(&[40, 25, 10, 25]) {
        0 => {
            let p = WELL_KNOWN[rng.below(WELL_KNOWN.len() as u64) as usize];
            Some((p, p))
        }
        1 => {
            let lo = rng.below(65000) as u16;
            let hi = lo + 1 + rng.below(500) as u16;
            Some((lo, hi))
        }
        2 => Some((1024, 65535)),
        _ => None,
    }
}

/// One rule of the ClassBench-style ACL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclRule {
    /// Source prefix (address, length); length 0 = any.
    pub src: (Ipv4Addr, u32),
    /// Destination prefix.
    pub dst: (Ipv4Addr, u32),
    /// IP protocol (6, 17, 1), or `None` for any.
    pub proto: Option<u8>,
    /// Source port range (TCP/UDP only).
    pub sport: Option<(u16, u16)>,
    /// Destination port range (TCP/UDP only).
    pub dport: Option<(u16, u16)>,
    /// ACCEPT (else DROP).
    pub accept: bool,
}

/// A packet header as the ACL sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AclPacket {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
}

fn in_prefix(a: Ipv4Addr, (p, len): (Ipv4Addr, u32)) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a) & mask == u32::from(p) & mask
}

impl AclRule {
    /// Whether the rule matches `p` (its port ranges apply to TCP and UDP only).
    pub fn matches(&self, p: &AclPacket) -> bool {
        let in_range = |r: Option<(u16, u16)>, v: u16| r.is_none_or(|(lo, hi)| lo <= v && v <= hi);
        in_prefix(p.src, self.src)
            && in_prefix(p.dst, self.dst)
            && self.proto.is_none_or(|x| x == p.proto)
            && in_range(self.sport, p.sport)
            && in_range(self.dport, p.dport)
    }
}

/// First-match linear evaluation of `rules` (policy DROP): true for ACCEPT.
pub fn acl_verdict(rules: &[AclRule], p: &AclPacket) -> bool {
    rules
        .iter()
        .find(|r| r.matches(p))
        .is_some_and(|r| r.accept)
}

/// The rules of [`acl`]`(n, seed)`.
pub fn acl_rules(n: usize, seed: u64) -> Vec<AclRule> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let mut pick = |weights: &[u32; 6], any_ok: bool| loop {
                let len = PREFIX_LENS[rng.weighted(weights)];
                if len > 0 {
                    break prefix(&mut rng, len);
                } else if any_ok {
                    break (Ipv4Addr::UNSPECIFIED, 0);
                }
            };
            let src = pick(&PREFIX_WEIGHTS, true);
            // ACL destinations are rarely wildcards, and never together with a wildcard
            // source (a catch-all would end every packet's walk within the first rules).
            let dst = pick(&DST_PREFIX_WEIGHTS, src.1 != 0);
            let proto = [Some(6u8), Some(17), Some(1), None][rng.weighted(&[55, 30, 5, 10])];
            let (mut sport, mut dport) = (None, None);
            if matches!(proto, Some(6 | 17)) {
                if rng.below(5) == 0 {
                    sport = port_range(&mut rng);
                }
                dport = port_range(&mut rng);
            }
            let accept = rng.below(10) < 7;
            AclRule {
                src,
                dst,
                proto,
                sport,
                dport,
                accept,
            }
        })
        .collect()
}

/// The iptables-restore text of `rules` in filter FORWARD (policy DROP).
pub fn render_acl(rules: &[AclRule]) -> Generated {
    let mut t = String::with_capacity(rules.len() * 100 + 128);
    t.push_str("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n");
    let ports = |(lo, hi): (u16, u16)| {
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}:{hi}")
        }
    };
    for r in rules {
        t.push_str("-A FORWARD");
        for (flag, (a, l)) in [("-s", r.src), ("-d", r.dst)] {
            if l > 0 {
                let _ = write!(t, " {flag} {a}/{l}");
            }
        }
        let name = match r.proto {
            Some(6) => "tcp",
            Some(17) => "udp",
            Some(1) => "icmp",
            _ => "",
        };
        if !name.is_empty() {
            let _ = write!(t, " -p {name}");
        }
        if r.sport.is_some() || r.dport.is_some() {
            let _ = write!(t, " -m {name}");
        }
        if let Some(p) = r.sport {
            let _ = write!(t, " --sport {}", ports(p));
        }
        if let Some(p) = r.dport {
            let _ = write!(t, " --dport {}", ports(p));
        }
        let _ = writeln!(t, " -j {}", if r.accept { "ACCEPT" } else { "DROP" });
    }
    t.push_str("COMMIT\n");
    finish(t)
}

/// A ClassBench-style ACL of `n` rules in filter `FORWARD` (policy DROP), seeded by `seed`.
pub fn acl(n: usize, seed: u64) -> Generated {
    render_acl(&acl_rules(n, seed))
}

/// Addresses a forwarding test can use as a source arriving on the LAN: not martian (0/8,
/// 127/8, 224/3) and not one of the bench host's own addresses.
fn sane_src(a: Ipv4Addr) -> bool {
    let o = a.octets();
    o[0] != 0
        && o[0] != 127
        && o[0] < 224
        && ![[10, 0, 0, 1], [192, 0, 2, 1], [10, 255, 255, 254]].contains(&o)
}

/// Destinations routed out of the bench host's WAN: also not in 10/8 (LAN, pods) nor the WAN
/// subnet 192.0.2.0/24.
fn sane_dst(a: Ipv4Addr) -> bool {
    let o = a.octets();
    sane_src(a) && o[0] != 10 && !(o[0] == 192 && o[1] == 0 && o[2] == 2)
}

/// `m` packets drawn ClassBench-style against `rules`: each picks a rule at random and takes
/// a header inside it (addresses inside its prefixes, ports inside its ranges; any protocol
/// becomes TCP), so that rule or an earlier one matches. Rules whose prefixes leave no usable
/// address are skipped.
pub fn acl_trace(rules: &[AclRule], m: usize, seed: u64) -> Vec<AclPacket> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(m);
    let mut tries = 0;
    while out.len() < m && tries < m * 20 {
        tries += 1;
        let r = &rules[rng.below(rules.len() as u64) as usize];
        let mut inside = |(p, len): (Ipv4Addr, u32)| {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Ipv4Addr::from((u32::from(p) & mask) | (rng.next_u64() as u32 & !mask))
        };
        let (src, dst) = (inside(r.src), inside(r.dst));
        if !sane_src(src) || !sane_dst(dst) {
            continue;
        }
        let proto = r.proto.unwrap_or(6);
        let mut port = |range: Option<(u16, u16)>| match range {
            Some((lo, hi)) => lo + rng.below(u64::from(hi - lo) + 1) as u16,
            None => 1024 + rng.below(64512) as u16,
        };
        let (sport, dport) = if proto == 1 {
            (0, 0)
        } else {
            (port(r.sport), port(r.dport))
        };
        out.push(AclPacket {
            src,
            dst,
            proto,
            sport,
            dport,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn test_kube_proxy_size_10k() {
        let g = kube_proxy(10_000);
        assert!(
            (100_000..=101_000).contains(&g.rules),
            "10k services gave {} rules",
            g.rules
        );
        assert_eq!(g.per_table.len(), 2);
        assert_eq!(g.per_table[0].0, "filter");
        assert_eq!(g.per_table[1].0, "nat");
    }

    #[test]
    fn test_kube_proxy_deterministic_and_unique_chains() {
        let a = kube_proxy(500);
        let b = kube_proxy(500);
        assert_eq!(a.text, b.text);
        // No chain is declared twice within a table.
        for block in a.text.split("COMMIT\n").filter(|b| !b.is_empty()) {
            let decls: Vec<&str> = block.lines().filter(|l| l.starts_with(':')).collect();
            let unique: HashSet<&str> = decls.iter().copied().collect();
            assert_eq!(decls.len(), unique.len(), "a chain is declared twice");
        }
        let unique: HashSet<&str> = a.text.lines().filter(|l| l.starts_with(':')).collect();
        // Every jump target is declared.
        for line in a.text.lines().filter(|l| l.starts_with("-A ")) {
            let target = line.rsplit(" -j ").next().unwrap();
            let target = target.split_whitespace().next().unwrap();
            if target.starts_with("KUBE-") {
                assert!(
                    unique.contains(format!(":{target} - [0:0]").as_str()),
                    "undeclared {target}"
                );
            }
        }
    }

    #[test]
    fn test_kube_proxy_shape() {
        let g = kube_proxy(100);
        let t = &g.text;
        assert!(t.contains("-m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-"));
        assert!(t.contains("--probability 0.3333333333 -j KUBE-SEP-"));
        assert!(t.contains("-j DNAT --to-destination 10.128.0.1:8080"));
        assert!(t.contains("-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE"));
        assert!(t.contains(
            "svc47:metrics has no endpoints\" -m tcp -p tcp -d 172.30.0.48 --dport 9090 -j REJECT"
        ));
        assert!(t.contains("-A KUBE-SERVICES -m comment --comment \"ns0/svc0:http cluster IP\" -m tcp -p tcp -d 172.30.0.1 --dport 80 -j KUBE-SVC-"));
        assert!(t.contains("-m comment --comment ns0/svc9:dns -m udp -p udp -j DNAT"));
        assert!(t.contains("-A KUBE-SERVICES -m comment --comment \"ns0/svc10:web external IP\" -m tcp -p tcp -d 192.0.2.2 --dport 8080 -j KUBE-EXT-"));
        assert!(t.ends_with("COMMIT\n"));
        // Chain names fit iptables' 28-character limit.
        for l in t.lines().filter(|l| l.starts_with(':')) {
            let name = l[1..].split(' ').next().unwrap();
            assert!(name.len() <= 28, "{name}");
        }
    }

    #[test]
    fn test_cluster_ips_distinct() {
        let svcs = services(70_000);
        let ips: HashSet<Ipv4Addr> = svcs.iter().map(|s| s.cluster_ip).collect();
        assert_eq!(ips.len(), svcs.len());
        assert_eq!(svcs[0].cluster_ip, Ipv4Addr::new(172, 30, 0, 1));
    }

    #[test]
    fn test_acl_shape() {
        let g = acl(1000, 7);
        assert_eq!(g.rules, 1000);
        assert_eq!(g.text, acl(1000, 7).text);
        assert_ne!(g.text, acl(1000, 8).text);
        for l in g.text.lines().filter(|l| l.starts_with("-A")) {
            assert!(l.starts_with("-A FORWARD"), "{l}");
            assert!(l.ends_with(" -j ACCEPT") || l.ends_with(" -j DROP"), "{l}");
            if l.contains("--dport") || l.contains("--sport") {
                assert!(l.contains(" -m tcp") || l.contains(" -m udp"), "{l}");
            }
        }
        assert!(g.text.contains(":FORWARD DROP [0:0]"));
    }

    #[test]
    fn test_acl_trace_hits_rules() {
        let rules = acl_rules(300, 1);
        assert_eq!(render_acl(&rules).text, acl(300, 1).text);
        let trace = acl_trace(&rules, 500, 2);
        assert_eq!(trace.len(), 500);
        for p in &trace {
            assert!(rules.iter().any(|r| r.matches(p)), "{p:?} matches no rule");
            assert!(sane_src(p.src) && sane_dst(p.dst), "{p:?}");
        }
        let accepted = trace.iter().filter(|p| acl_verdict(&rules, p)).count();
        assert!(accepted > 0 && accepted < trace.len(), "{accepted}");
    }

    #[test]
    fn test_acl_has_no_catch_all_address_pair() {
        assert!(acl_rules(5000, 1)
            .iter()
            .all(|r| r.src.1 != 0 || r.dst.1 != 0));
    }

    #[test]
    fn test_acl_rule_matches() {
        let r = AclRule {
            src: (Ipv4Addr::new(10, 1, 0, 0), 16),
            dst: (Ipv4Addr::UNSPECIFIED, 0),
            proto: Some(6),
            sport: None,
            dport: Some((80, 90)),
            accept: true,
        };
        let p = AclPacket {
            src: Ipv4Addr::new(10, 1, 2, 3),
            dst: Ipv4Addr::new(1, 2, 3, 4),
            proto: 6,
            sport: 5,
            dport: 85,
        };
        assert!(r.matches(&p));
        assert!(!r.matches(&AclPacket { dport: 91, ..p }));
        assert!(!r.matches(&AclPacket { proto: 17, ..p }));
        assert!(!r.matches(&AclPacket {
            src: Ipv4Addr::new(10, 2, 0, 1),
            ..p
        }));
        assert!(acl_verdict(std::slice::from_ref(&r), &p));
        assert!(!acl_verdict(&[], &p), "policy DROP");
    }

    #[test]
    fn test_rng_below_range() {
        let mut r = Rng::new(1);
        for _ in 0..10_000 {
            assert!(r.below(7) < 7);
        }
        let mut counts = [0u32; 2];
        for _ in 0..10_000 {
            counts[r.weighted(&[1, 3])] += 1;
        }
        assert!(counts[1] > counts[0] * 2, "{counts:?}");
    }
}
