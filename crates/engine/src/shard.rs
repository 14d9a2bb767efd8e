//! Flow-sharded engines (issue 7 goal 5): N independent [`Engine`]s, each with its own
//! compiled tables, conntrack table (`nf_conntrack_max / N` entries) and state, and a pure
//! steering function that sends every packet of a connection, both ways, to the shard that
//! owns it. Nothing is shared on the packet path: a worker thread can own one shard.
//!
//! Not a kernel notion (Linux shares one conntrack table between CPUs); results per packet
//! are the single engine's, except that a NAT port (or ICMP id) may differ: sharded NAT picks,
//! among the bindings the kernel's search would try, one whose replies steer back here.
//!
//! # Steering ([`Steering::shard_of`])
//! - N = 1: always shard 0.
//! - Protocols without ports or ids (anything but TCP, UDP, UDP-Lite, SCTP and ICMP): shard 0,
//!   so their NAT needs no choice.
//! - Fragments (MF set or an offset): by the protocol and the unordered address pair, as are
//!   packets too short to show their ports.
//! - ICMP errors: as the reverse of the packet they quote (the connection's other direction),
//!   one level deep; an error quoting an error goes by addresses.
//! - Packets the host itself sends ([`Steering::shard_of_local`], [`Sharded::send_host`]): on
//!   the shard of their reverse, where the replies will arrive.
//! - A packet to a *NAT address* (the host's own addresses and the ruleset's SNAT ranges) with
//!   a destination port (ICMP queries: their id): `(port + mix(protocol, source)) mod N`. That
//!   is where a source-NATed connection's replies arrive, and the port is the one NAT chose.
//! - Anything else: by the protocol and the unordered address pair (the same both ways).
//!
//! # The NAT rule
//! Each shard's engine gets a reply filter ([`Engine::set_nat_reply_filter`],
//! [`Steering::nat_may_take`]): a binding fits when [`Steering::shard_of_tuple`] of its reply
//! tuple is this shard, or when the replies come from the host itself, or when their steering
//! does not depend on the port (then no port would help: the kernel's choice stands, so a null
//! binding never moves a port the kernel would keep). With the rule above a
//! MASQUERADEd connection from `c` to `s:p` lives on `pair(c, s)`; its replies `s:p -> nat:q`
//! come back on `(q + mix(s)) mod N`, so NAT takes a `q` that makes the two equal (one port in
//! N of the range fits; the kernel's kept port is kept when it fits).
//!
//! # Limitations (documented, not hidden)
//! - DNAT to a forwarded address (port forwards, service VIPs): the original direction goes by
//!   the NAT-address rule (or the pair of addresses), the replies by the pair of the new
//!   addresses, so they meet only by chance ([`Sharded::misplaced`] counts such connections;
//!   a reply landing elsewhere is judged there as a packet of no known connection). Port
//!   forwards need a single engine. REDIRECT (to the host) is fine: the host answers.
//! - SNAT to an address not in the NAT set (add it with [`Steering::add_nat_range`]), a port
//!   range with fewer than N fitting ports, or `--random` ranges too small: the kernel's
//!   unconstrained choice, counted as misplaced.
//! - Fragments of replies to a NAT address carry no port: they go by addresses, so a NATed
//!   flow whose replies arrive fragmented is reassembled on another shard.
//! - Per-shard state: limit, hashlimit, recent, connlimit, quota and `statistic --mode nth`
//!   count per shard; conntrack helpers (FTP, IRC) only relate expected connections that steer
//!   to the master's shard; rule counters are summed by [`Sharded::ruleset_with_counters`].
//! - Capacity is split: each shard holds `nf_conntrack_max / N` connections (a shard's table
//!   can be full while another has room), and only one port in N of a NAT range keeps the
//!   replies on a given shard, so a shard runs out of NAT ports at about range / N
//!   connections to one destination, where one engine would use the whole range.
//! - Bridges are refused (each shard would learn its own forwarding table).

use std::sync::Arc;

use nfrs_conntrack::{CtConfig, Nanos, Tuple};
use nfrs_rules::ext::TargetExt;
use nfrs_rules::{Ruleset, Target};

use crate::engine::Engine;
use crate::host::HostNet;
use crate::matches::CompileError;

/// Protocols whose tuples have ports (those NAT can move).
fn has_ports(proto: u8) -> bool {
    matches!(proto, 6 | 17 | 132 | 136)
}

/// ICMP types with an id (queries and their answers).
fn icmp_query(ty: u8) -> bool {
    matches!(ty, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18)
}

/// ICMP error types that quote the packet they are about.
fn icmp_error(ty: u8) -> bool {
    matches!(ty, 3 | 4 | 5 | 11 | 12)
}

/// A 32-bit finaliser (murmur3's): every input bit reaches every output bit.
fn mix(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

/// The steering function: which shard a packet (or a tuple) belongs to.
#[derive(Clone, Debug)]
pub struct Steering {
    shards: u32,
    /// NAT addresses as inclusive ranges (host order), sorted by start.
    nat: Vec<(u32, u32)>,
}

impl Steering {
    /// `shards` shards (at least 1) and no NAT address yet.
    pub fn new(shards: usize) -> Steering {
        Steering {
            shards: shards.clamp(1, 1 << 16) as u32,
            nat: Vec::new(),
        }
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.shards as usize
    }

    /// Adds the addresses `lo..=hi` to the NAT addresses (where source-NATed replies arrive).
    pub fn add_nat_range(&mut self, lo: u32, hi: u32) {
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        self.nat.push((lo, hi));
        self.nat.sort_unstable();
    }

    /// Whether `a` is a NAT address.
    pub fn is_nat_addr(&self, a: u32) -> bool {
        let i = self.nat.partition_point(|&(lo, _)| lo <= a);
        self.nat[..i].iter().rev().any(|&(_, hi)| a <= hi)
    }

    /// The NAT addresses: every address of the host's interfaces and every SNAT
    /// `--to-source` range of the ruleset.
    pub fn for_host(shards: usize, host: &HostNet, rules: &Ruleset) -> Steering {
        let mut s = Steering::new(shards);
        for i in host.ifaces() {
            for &(a, _) in &i.addrs {
                s.add_nat_range(a, a);
            }
        }
        for t in &rules.tables {
            for c in &t.chains {
                for r in &c.rules {
                    if let Target::Ext(TargetExt::Snat(x)) = &r.target {
                        if let Some((lo, hi)) = x.range.addrs {
                            s.add_nat_range(u32::from(lo), u32::from(hi));
                        }
                    }
                }
            }
        }
        s
    }

    /// Whether the replies of a connection with reply tuple `reply` reach shard `k`: they
    /// steer there, or the host itself sends them (from a NAT address: a connection to the
    /// host, answered by the shard that owns it, is never steered back).
    pub fn reply_on(&self, reply: &Tuple, k: usize) -> bool {
        self.is_nat_addr(reply.src) || self.shard_of_tuple(reply) == k
    }

    /// Whether the steering of `t` follows its destination port (or ICMP id).
    fn port_steered(&self, t: &Tuple) -> bool {
        let keyed = has_ports(t.proto) || (t.proto == 1 && icmp_query((t.dst_l4 >> 8) as u8));
        self.shards > 1 && keyed && self.is_nat_addr(t.dst)
    }

    /// The NAT reply filter of shard `k`: a binding is refused only when its replies would
    /// steer elsewhere *because of the port* NAT is choosing; replies steered by addresses
    /// alone (a DNAT to a forwarded address) are no port's fault, so NAT keeps the kernel's
    /// choice for them (and [`Sharded::misplaced`] counts the connection if they land away).
    pub fn nat_may_take(&self, reply: &Tuple, k: usize) -> bool {
        !self.port_steered(reply) || self.reply_on(reply, k)
    }

    /// The shard of a packet of protocol `proto` from `src` to `dst`; `key` is the destination
    /// port (ICMP queries: the id) when the packet shows one.
    fn pick(&self, proto: u8, src: u32, dst: u32, key: Option<u16>) -> usize {
        if self.shards == 1 || !(has_ports(proto) || proto == 1) {
            return 0;
        }
        if let Some(k) = key {
            if self.is_nat_addr(dst) {
                let h = mix(src ^ (u32::from(proto) << 24).rotate_left(7));
                return ((u32::from(k) + h % self.shards) % self.shards) as usize;
            }
        }
        let (a, b) = (src.min(dst), src.max(dst));
        let h = mix(a.wrapping_mul(0x9e37_79b9) ^ mix(b ^ u32::from(proto)));
        (h % self.shards) as usize
    }

    /// The shard a packet with tuple `t` steers to (what NAT asks of a candidate reply).
    pub fn shard_of_tuple(&self, t: &Tuple) -> usize {
        let key = match t.proto {
            1 => icmp_query((t.dst_l4 >> 8) as u8).then_some(t.src_l4),
            p if has_ports(p) => Some(t.dst_l4),
            _ => None,
        };
        self.pick(t.proto, t.src, t.dst, key)
    }

    /// The shard of an IPv4 packet (`ip` from its IP header on). Pure and cheap: a few loads
    /// and one or two hashes, no allocation. Anything malformed goes to shard 0.
    pub fn shard_of(&self, ip: &[u8]) -> usize {
        if self.shards == 1 {
            return 0;
        }
        self.shard_in(ip, 0)
    }

    /// The shard of a packet the host itself sends (a local process's connection): the shard
    /// its replies steer to, i.e. that of the packet's reverse. The host's own port then
    /// needs no NAT move to keep the replies home.
    pub fn shard_of_local(&self, ip: &[u8]) -> usize {
        if self.shards == 1 {
            return 0;
        }
        let Some(h) = Ip::parse(ip) else { return 0 };
        let l4 = &ip[h.ihl..];
        let key = if h.fragment {
            None
        } else if has_ports(h.proto) && l4.len() >= 2 {
            Some(u16::from_be_bytes([l4[0], l4[1]]))
        } else if h.proto == 1 && l4.len() >= 6 && icmp_query(l4[0]) {
            Some(u16::from_be_bytes([l4[4], l4[5]]))
        } else {
            None
        };
        self.pick(h.proto, h.dst, h.src, key)
    }

    fn shard_in(&self, ip: &[u8], depth: u8) -> usize {
        let Some(h) = Ip::parse(ip) else { return 0 };
        if h.fragment {
            return self.pick(h.proto, h.src, h.dst, None);
        }
        let l4 = &ip[h.ihl..];
        match h.proto {
            1 if l4.len() >= 8 && icmp_query(l4[0]) => {
                self.pick(1, h.src, h.dst, Some(u16::from_be_bytes([l4[4], l4[5]])))
            }
            1 if depth == 0 && l4.len() >= 8 && icmp_error(l4[0]) => {
                // The quoted packet went the other way: steer as its reverse would.
                let Some(q) = Ip::parse(&l4[8..]) else {
                    return self.pick(1, h.src, h.dst, None);
                };
                let ql4 = &l4[8 + q.ihl..];
                let key = if q.fragment {
                    None
                } else if has_ports(q.proto) && ql4.len() >= 2 {
                    // The reverse's destination port is the quoted source port.
                    Some(u16::from_be_bytes([ql4[0], ql4[1]]))
                } else if q.proto == 1 && ql4.len() >= 6 && icmp_query(ql4[0]) {
                    Some(u16::from_be_bytes([ql4[4], ql4[5]]))
                } else {
                    None
                };
                self.pick(q.proto, q.dst, q.src, key)
            }
            p if has_ports(p) && l4.len() >= 4 => {
                self.pick(p, h.src, h.dst, Some(u16::from_be_bytes([l4[2], l4[3]])))
            }
            p => self.pick(p, h.src, h.dst, None),
        }
    }
}

/// The IPv4 header fields steering reads.
struct Ip {
    ihl: usize,
    proto: u8,
    src: u32,
    dst: u32,
    fragment: bool,
}

impl Ip {
    fn parse(b: &[u8]) -> Option<Ip> {
        if b.len() < 20 || b[0] >> 4 != 4 {
            return None;
        }
        let ihl = usize::from(b[0] & 0x0f) * 4;
        if ihl < 20 || b.len() < ihl {
            return None;
        }
        let frag = u16::from_be_bytes([b[6], b[7]]);
        Some(Ip {
            ihl,
            proto: b[9],
            src: u32::from_be_bytes([b[12], b[13], b[14], b[15]]),
            dst: u32::from_be_bytes([b[16], b[17], b[18], b[19]]),
            fragment: frag & 0x3fff != 0,
        })
    }
}

/// N engines and their steering.
pub struct Sharded {
    /// The shards; shard `k` owns the connections that steer to `k`.
    pub shards: Vec<Engine>,
    steering: Arc<Steering>,
}

/// `net.netfilter.nf_conntrack_max` as `sysctls` set it (last wins), else the default.
fn ct_max(sysctls: &[(String, String)]) -> u32 {
    sysctls
        .iter()
        .rev()
        .find(|(k, _)| k == "net.netfilter.nf_conntrack_max")
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(CtConfig::default().max)
}

impl Sharded {
    /// `n` engines for `host` and `ruleset`, each with `nf_conntrack_max / n` entries (rounded
    /// up) and a NAT reply filter for its shard. Refuses hosts with bridges when `n > 1`.
    pub fn new(
        host: &HostNet,
        ruleset: &Ruleset,
        sysctls: &[(String, String)],
        n: usize,
    ) -> Result<Sharded, CompileError> {
        let n = n.clamp(1, 1 << 16);
        if n > 1 && host.ifaces().iter().any(|i| !i.ports.is_empty()) {
            return Err(CompileError(
                "nfrs: sharded mode does not support bridges (each shard would learn its own forwarding table)".into(),
            ));
        }
        let steering = Arc::new(Steering::for_host(n, host, ruleset));
        let mut sys = sysctls.to_vec();
        let max = ct_max(sysctls);
        if n > 1 {
            sys.push((
                "net.netfilter.nf_conntrack_max".into(),
                max.div_ceil(n as u32).to_string(),
            ));
        }
        let mut shards = Vec::with_capacity(n);
        for k in 0..n {
            let mut e = Engine::new(host.clone(), ruleset.clone(), &sys)?;
            if n > 1 {
                let s = Arc::clone(&steering);
                e.set_nat_reply_filter(Some(Box::new(move |r: &Tuple| s.nat_may_take(r, k))));
            }
            shards.push(e);
        }
        Ok(Sharded { shards, steering })
    }

    /// The steering function.
    pub fn steering(&self) -> &Steering {
        &self.steering
    }

    /// The shard a packet (IPv4, from its header on) steers to.
    pub fn shard_of(&self, ip: &[u8]) -> usize {
        self.steering.shard_of(ip)
    }

    /// Steers a frame received on `dev` to its shard and runs it there (its events are in
    /// `self.shards[k].events`); returns `k`.
    pub fn receive(&mut self, dev: usize, ip: Vec<u8>, mac: [u8; 14], now: Nanos) -> usize {
        let k = self.shard_of(&ip);
        self.shards[k].receive(dev, ip, mac, now);
        k
    }

    /// A packet the host sends (OUTPUT onwards) on the shard its replies steer to; returns it.
    pub fn send_host(&mut self, ip: Vec<u8>, now: Nanos) -> usize {
        let k = self.steering.shard_of_local(&ip);
        self.shards[k].send_host(ip, None, now, false);
        k
    }

    /// Runs every shard's timers.
    pub fn advance(&mut self, now: Nanos) {
        for e in &mut self.shards {
            e.advance(now);
        }
    }

    /// Connections in all shards.
    pub fn conntrack_count(&self) -> u32 {
        self.shards
            .iter()
            .filter_map(|e| e.ct.as_ref())
            .map(|t| t.count())
            .sum()
    }

    /// Every shard's `conntrack -L` lines, sorted.
    pub fn conntrack_listing(&mut self, now: Nanos) -> Vec<String> {
        let mut v: Vec<String> = self
            .shards
            .iter_mut()
            .flat_map(|e| e.conntrack_listing(now))
            .collect();
        v.sort();
        v
    }

    /// Connections whose replies steer to another shard than the one holding them (the
    /// limitations above); 0 in a MASQUERADE gateway.
    pub fn misplaced(&self) -> usize {
        let mut n = 0;
        for (k, e) in self.shards.iter().enumerate() {
            if let Some(t) = e.ct.as_ref() {
                n += t
                    .iter()
                    .filter(|(_, c)| !self.steering.reply_on(&c.tuple[1], k))
                    .count();
            }
        }
        n
    }

    /// The ruleset with every shard's counters summed.
    pub fn ruleset_with_counters(&self) -> Ruleset {
        let mut sum = self.shards[0].ruleset_with_counters();
        for e in &self.shards[1..] {
            let rs = e.ruleset_with_counters();
            for (t, u) in sum.tables.iter_mut().zip(&rs.tables) {
                for (c, d) in t.chains.iter_mut().zip(&u.chains) {
                    c.counters.packets += d.counters.packets;
                    c.counters.bytes += d.counters.bytes;
                    for (r, s) in c.rules.iter_mut().zip(&d.rules) {
                        r.counters.packets += s.counters.packets;
                        r.counters.bytes += s.counters.bytes;
                    }
                }
            }
        }
        sum
    }
}
