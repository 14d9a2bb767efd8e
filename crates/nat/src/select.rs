//! NAT tuple selection as Linux 6.x `nf_nat_core.c` does it: `nf_nat_setup_info`,
//! `get_unique_tuple`, `find_best_ips_proto` (jhash of the flow) and the port/id search of
//! `nf_nat_l4proto_unique_tuple`, plus the target-specific ranges (MASQUERADE, REDIRECT,
//! NETMAP) and the null binding. Rules are restated in our own words. Not from the kernel: an
//! optional reply filter ([`RandomSource::reply_fits`], [`Steered`]) with which a flow-sharded
//! engine keeps a connection's replies on its shard; without one the choices are the kernel's.

use nfrs_conntrack::tcp::TcpState;
use nfrs_conntrack::{status, Conn, ConnId, ConnTable, Dir, Nanos, Tuple};

use crate::jhash::{addr_word, jhash2, reciprocal_scale};

/// Which side of the packet a NAT decision rewrites.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Manip {
    /// Source (POSTROUTING, INPUT: SNAT, MASQUERADE).
    Src,
    /// Destination (PREROUTING, OUTPUT: DNAT, REDIRECT).
    Dst,
}

/// `NF_NAT_RANGE_*` flags.
pub mod flags {
    /// The range maps addresses.
    pub const MAP_IPS: u32 = 1 << 0;
    /// The range names ports (or ICMP ids).
    pub const PROTO_SPECIFIED: u32 = 1 << 1;
    /// `--random`.
    pub const PROTO_RANDOM: u32 = 1 << 2;
    /// `--persistent`: address chosen from the source alone.
    pub const PERSISTENT: u32 = 1 << 3;
    /// `--random-fully`.
    pub const PROTO_RANDOM_FULLY: u32 = 1 << 4;
    /// Port offset mapping (`--to-ports` with a base).
    pub const PROTO_OFFSET: u32 = 1 << 5;
    /// Either random flag.
    pub const PROTO_RANDOM_ALL: u32 = PROTO_RANDOM | PROTO_RANDOM_FULLY;
}

/// A NAT range (`struct nf_nat_range2`), addresses and ports in host order.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct NatRange {
    /// `flags::*`.
    pub flags: u32,
    /// Lowest address.
    pub min_addr: u32,
    /// Highest address.
    pub max_addr: u32,
    /// Lowest port / id.
    pub min_proto: u16,
    /// Highest port / id.
    pub max_proto: u16,
    /// Base port for `PROTO_OFFSET`.
    pub base_proto: u16,
}

impl NatRange {
    /// A range from the kernel's fields (`flags` as `NF_NAT_RANGE_*`, host-order addresses).
    pub fn new(
        flags: u32,
        min_addr: u32,
        max_addr: u32,
        min_proto: u16,
        max_proto: u16,
    ) -> NatRange {
        NatRange {
            flags,
            min_addr,
            max_addr,
            min_proto,
            max_proto,
            base_proto: 0,
        }
    }

    /// A single address, no ports.
    pub fn addr(a: u32) -> NatRange {
        NatRange {
            flags: flags::MAP_IPS,
            min_addr: a,
            max_addr: a,
            ..NatRange::default()
        }
    }

    /// An address range, no ports.
    pub fn addrs(min: u32, max: u32) -> NatRange {
        NatRange {
            flags: flags::MAP_IPS,
            min_addr: min,
            max_addr: max,
            ..NatRange::default()
        }
    }

    /// Adds a port range.
    pub fn with_ports(mut self, min: u16, max: u16) -> NatRange {
        self.flags |= flags::PROTO_SPECIFIED;
        self.min_proto = min;
        self.max_proto = max;
        self
    }

    /// Adds flags (`--random`, `--random-fully`, `--persistent`).
    pub fn with_flags(mut self, f: u32) -> NatRange {
        self.flags |= f;
        self
    }
}

/// Where the kernel would call `get_random_u16()`. Replay injects a recorded or seeded source.
pub trait RandomSource {
    /// A uniformly random 16-bit value.
    fn random_u16(&mut self) -> u16;

    /// Flow-sharded engines only (not a kernel notion): whether a candidate binding whose
    /// reply tuple is `reply` keeps the connection's replies on this shard. Selection then
    /// takes, among the tuples the kernel's search would try, the first that fits; when none
    /// of the range fits it falls back to the kernel's unconstrained choice. Default: every
    /// tuple fits, so a single engine makes exactly the kernel's choices.
    fn reply_fits(&self, _reply: &Tuple) -> bool {
        true
    }
}

/// A reply filter of a sharded engine: true when a reply tuple steers to this shard.
pub type ReplyFilter = Box<dyn Fn(&Tuple) -> bool + Send + Sync>;

/// The random source of an engine plus its optional [`ReplyFilter`] (set by a flow-sharded
/// set of engines, none otherwise).
pub struct Steered<R> {
    /// The random source.
    pub rng: R,
    /// `None`: the kernel's exact choices.
    pub fits: Option<ReplyFilter>,
}

impl<R> Steered<R> {
    /// `rng` without a filter.
    pub fn new(rng: R) -> Steered<R> {
        Steered { rng, fits: None }
    }
}

impl<R: RandomSource> RandomSource for Steered<R> {
    fn random_u16(&mut self) -> u16 {
        self.rng.random_u16()
    }

    fn reply_fits(&self, reply: &Tuple) -> bool {
        self.fits.as_ref().is_none_or(|f| f(reply))
    }
}

impl<R: core::fmt::Debug> core::fmt::Debug for Steered<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Steered")
            .field("rng", &self.rng)
            .field("filtered", &self.fits.is_some())
            .finish()
    }
}

/// A small deterministic generator (xorshift32) for runs that need no particular values.
#[derive(Clone, Debug)]
pub struct XorShift(pub u32);

impl RandomSource for XorShift {
    fn random_u16(&mut self) -> u16 {
        let mut x = self.0.max(1);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        (x >> 16) as u16
    }
}

/// What `setup_info` decided.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct NatDecision {
    /// The tuple changed (SRC_NAT / DST_NAT set).
    pub changed: bool,
    /// The port/id came from the random source (print it masked, e.g. `rand1`).
    pub random: bool,
}

/// Kernel rule (nf_nat_initialized): has this manip been decided for the connection?
pub fn initialized(c: &Conn, m: Manip) -> bool {
    match m {
        Manip::Src => c.has(status::SRC_NAT_DONE),
        Manip::Dst => c.has(status::DST_NAT_DONE),
    }
}

fn invert(t: &Tuple) -> Tuple {
    // NAT tuples always come from tracked connections, whose tuples have an inverse.
    t.reply().unwrap_or(*t)
}

fn in_addr_range(a: u32, r: &NatRange) -> bool {
    a >= r.min_addr && a <= r.max_addr
}

/// Kernel rule (l4proto_in_range): ICMP checks the id, port protocols the manipulated port;
/// other protocols are always in range.
fn l4_in_range(t: &Tuple, m: Manip, min: u16, max: u16) -> bool {
    let v = match t.proto {
        1 => t.src_l4,
        6 | 17 | 132 | 136 => match m {
            Manip::Src => t.src_l4,
            Manip::Dst => t.dst_l4,
        },
        _ => return true,
    };
    v >= min && v <= max
}

/// Kernel rule (nf_in_range): address in range (when mapping addresses) and source port/id
/// in range (when ports are given).
fn in_range(t: &Tuple, r: &NatRange) -> bool {
    if r.flags & flags::MAP_IPS != 0 && !in_addr_range(t.src, r) {
        return false;
    }
    if r.flags & flags::PROTO_SPECIFIED == 0 {
        return true;
    }
    l4_in_range(t, Manip::Src, r.min_proto, r.max_proto)
}

/// Kernel `nf_nat_used_tuple`: would a connection with original tuple `t` have a reply tuple
/// someone else already holds?
fn used_tuple(table: &mut ConnTable, t: &Tuple, me: ConnId, now: Nanos) -> bool {
    table.tuple_taken(&invert(t), me, now)
}

/// Kernel rule (allow_clash): UDP (and UDP-Lite) may resolve clashes at confirm time.
fn allows_clash(proto: u8) -> bool {
    matches!(proto, 17 | 136)
}

/// Kernel `nf_nat_used_tuple_new`: like `used_tuple`, but a clash with an un-NATed entry that
/// is exactly our own flow seen the other way round does not count.
fn used_tuple_new(table: &mut ConnTable, t: &Tuple, me: ConnId, now: Nanos) -> bool {
    if !used_tuple(table, t, me, now) {
        return false;
    }
    if !allows_clash(t.proto) {
        return true;
    }
    let uses_nat = status::NAT_MASK | status::SEQ_ADJUST;
    let mine = *table.get(me);
    if mine.status & uses_nat != 0 {
        return true;
    }
    let zone = mine.zone;
    let found = table
        .lookup(t, zone, now)
        .or_else(|| table.lookup(&invert(t), zone, now));
    let Some((id, dir)) = found else {
        return false;
    };
    if dir != Dir::Reply {
        return true;
    }
    let other = table.get(id);
    if other.status & uses_nat != 0 {
        return true;
    }
    !(other.tuple[0] == mine.tuple[1] && other.tuple[1] == mine.tuple[0])
}

/// Last attempts of the port search (kernel `NF_NAT_HARDER_THRESH` = 128 / 4).
const HARDER_THRESH: u32 = 32;
/// Most attempts of the port search (kernel `NF_NAT_MAX_ATTEMPTS`).
const MAX_ATTEMPTS: u32 = 128;

/// Kernel `nf_nat_used_tuple_harder`: in the last attempts for a TCP SYN, a clashing
/// source-NATed connection in TIME_WAIT or later may be evicted when our sequence is ahead.
fn used_tuple_harder(table: &mut ConnTable, t: &Tuple, me: ConnId, left: u32, now: Nanos) -> bool {
    let my_state = table.get(me).tcp().map(|x| x.state());
    if left > HARDER_THRESH || t.proto != 6 || my_state != Some(TcpState::SynSent) {
        return used_tuple(table, t, me, now);
    }
    let reply = invert(t);
    let zone = table.get(me).zone;
    let Some((id, dir)) = table.lookup(&reply, zone, now) else {
        return false;
    };
    if dir == Dir::Original || id == me {
        return true;
    }
    let other = *table.get(id);
    let Some(ot) = other.tcp() else { return true };
    let may_kill = ot.state() as u8 >= TcpState::TimeWait as u8
        && other.status & (status::FIXED_TIMEOUT | status::DYING) == 0
        && other.has(status::SRC_NAT);
    if !may_kill {
        return true;
    }
    let mine_end = table.get(me).tcp().map(|x| x.seen[0].td_end).unwrap_or(0);
    if (mine_end.wrapping_sub(ot.seen[0].td_end) as i32) <= 0 {
        return true;
    }
    table.kill(id);
    false
}

/// Kernel `find_appropriate_src`: reuse the mapping of another connection from the same
/// source (address, port, protocol) when it fits the range.
fn find_appropriate_src(table: &ConnTable, orig: &Tuple, zone: u16, r: &NatRange) -> Option<Tuple> {
    let mut result = None;
    table.nat_bysource_find(orig, zone, |c| {
        let mut cand = invert(&c.tuple[1]);
        cand.dst = orig.dst;
        cand.dst_l4 = orig.dst_l4;
        if in_range(&cand, r) {
            result = Some(cand);
            true
        } else {
            false
        }
    });
    result
}

/// Kernel `find_best_ips_proto`: the address is chosen by jhash2 over the source address
/// (the 16-byte kernel address union: the IPv4 word then zeros), seeded with the destination
/// word xor the zone (0 with `--persistent`), scaled onto the range.
pub fn pick_addr(src: u32, dst: u32, zone: u16, r: &NatRange) -> u32 {
    if r.min_addr == r.max_addr {
        return r.min_addr;
    }
    let seed = if r.flags & flags::PERSISTENT != 0 {
        0
    } else {
        addr_word(dst) ^ zone as u32
    };
    let j = jhash2(&[addr_word(src), 0, 0, 0], seed);
    let dist = r.max_addr.wrapping_sub(r.min_addr).wrapping_add(1);
    r.min_addr.wrapping_add(reciprocal_scale(j, dist))
}

fn best_ips(t: &mut Tuple, zone: u16, r: &NatRange, m: Manip) {
    if r.flags & flags::MAP_IPS == 0 {
        return;
    }
    let a = pick_addr(t.src, t.dst, zone, r);
    match m {
        Manip::Src => t.src = a,
        Manip::Dst => t.dst = a,
    }
}

/// Kernel `nf_nat_l4proto_unique_tuple`: search the port/id range from a random (or, for
/// DNAT without --random, zero) offset; returns whether the random source was used.
fn unique_l4(
    table: &mut ConnTable,
    t: &mut Tuple,
    r: &NatRange,
    m: Manip,
    me: ConnId,
    rng: &mut dyn RandomSource,
    now: Nanos,
) -> bool {
    let (min, range_size): (u32, u32);
    let icmp = t.proto == 1;
    if icmp {
        if r.flags & flags::PROTO_SPECIFIED == 0 {
            min = 0;
            range_size = 65536;
        } else {
            min = r.min_proto as u32;
            range_size = (r.max_proto as u32)
                .wrapping_sub(r.min_proto as u32)
                .wrapping_add(1);
        }
    } else if matches!(t.proto, 6 | 17 | 132 | 136) {
        let key = match m {
            Manip::Src => t.src_l4,
            Manip::Dst => t.dst_l4,
        } as u32;
        if r.flags & flags::PROTO_SPECIFIED == 0 {
            if m == Manip::Dst {
                // No range and a destination rewrite: the port stays.
                return false;
            }
            // Keep the port's class: < 512, 600..1023, or 1024..65535.
            if key < 1024 {
                if key < 512 {
                    min = 1;
                    range_size = 511;
                } else {
                    min = 600;
                    range_size = 1023 - 600 + 1;
                }
            } else {
                min = 1024;
                range_size = 65535 - 1024 + 1;
            }
        } else {
            let (mut lo, mut hi) = (r.min_proto as u32, r.max_proto as u32);
            if hi < lo {
                core::mem::swap(&mut lo, &mut hi);
            }
            min = lo;
            range_size = hi - lo + 1;
        }
    } else {
        return false;
    }
    let key_now = if icmp {
        t.src_l4
    } else {
        match m {
            Manip::Src => t.src_l4,
            Manip::Dst => t.dst_l4,
        }
    };
    let mut random = false;
    let mut off: u16 = if r.flags & flags::PROTO_OFFSET != 0 {
        key_now.wrapping_sub(r.base_proto)
    } else if r.flags & flags::PROTO_RANDOM_ALL != 0 || m != Manip::Dst {
        random = true;
        rng.random_u16()
    } else {
        0
    };
    let set = |t: &mut Tuple, v: u16| {
        if icmp || m == Manip::Src {
            t.src_l4 = v;
        } else {
            t.dst_l4 = v;
        }
    };
    // Sharded mode: candidates whose reply would land on another shard are passed over (they
    // cost no attempt); if no value of the range fits, the filter is dropped.
    let mut filtered = true;
    let mut attempts = range_size.min(MAX_ATTEMPTS);
    loop {
        for i in 0..attempts {
            set(t, (min + off as u32 % range_size) as u16);
            if filtered && !rng.reply_fits(&invert(t)) {
                let mut skipped = 1u32;
                loop {
                    off = off.wrapping_add(1);
                    set(t, (min + off as u32 % range_size) as u16);
                    if rng.reply_fits(&invert(t)) {
                        break;
                    }
                    skipped += 1;
                    if skipped >= range_size {
                        filtered = false;
                        break;
                    }
                }
            }
            if !used_tuple_harder(table, t, me, attempts - i, now) {
                return random;
            }
            off = off.wrapping_add(1);
        }
        if attempts >= range_size || attempts < 16 {
            return random;
        }
        attempts /= 2;
        off = rng.random_u16();
        random = true;
    }
}

/// Kernel `get_unique_tuple`.
fn unique_tuple(
    table: &mut ConnTable,
    orig: &Tuple,
    r: &NatRange,
    me: ConnId,
    m: Manip,
    rng: &mut dyn RandomSource,
    now: Nanos,
) -> (Tuple, bool) {
    let zone = table.get(me).zone;
    // Sharded mode: a tuple kept as it is must also keep the replies on this shard.
    let fits = |rng: &dyn RandomSource, t: &Tuple| rng.reply_fits(&invert(t));
    // 1) Source NAT: keep the flow as it is when that fits, else reuse this source's mapping.
    if m == Manip::Src && r.flags & flags::PROTO_RANDOM_ALL == 0 {
        if in_range(orig, r) {
            if fits(&*rng, orig) && !used_tuple_new(table, orig, me, now) {
                return (*orig, false);
            }
        } else if let Some(t) = find_appropriate_src(table, orig, zone, r) {
            if fits(&*rng, &t) && !used_tuple(table, &t, me, now) {
                return (t, false);
            }
        }
    }
    // 2) The address by hash.
    let mut t = *orig;
    best_ips(&mut t, zone, r, m);
    // 3) Keep the port when it is in range and free.
    if r.flags & flags::PROTO_RANDOM_ALL == 0 {
        if r.flags & flags::PROTO_SPECIFIED != 0 {
            // A one-port range leaves no choice: kept even when the replies land elsewhere.
            if r.flags & flags::PROTO_OFFSET == 0
                && l4_in_range(&t, m, r.min_proto, r.max_proto)
                && (r.min_proto == r.max_proto
                    || (fits(&*rng, &t) && !used_tuple(table, &t, me, now)))
            {
                return (t, false);
            }
        } else if fits(&*rng, &t) && !used_tuple(table, &t, me, now) {
            return (t, false);
        }
    }
    let random = unique_l4(table, &mut t, r, m, me, rng, now);
    (t, random)
}

/// Kernel `nf_nat_setup_info`: decide the manip for an unconfirmed connection, record it in
/// the reply tuple, set SRC_NAT/DST_NAT and the *_DONE bit. Confirmed connections are left
/// alone.
pub fn setup_info(
    table: &mut ConnTable,
    id: ConnId,
    r: &NatRange,
    m: Manip,
    rng: &mut dyn RandomSource,
    now: Nanos,
) -> NatDecision {
    let c = *table.get(id);
    if c.is_confirmed() || initialized(&c, m) {
        return NatDecision::default();
    }
    let curr = invert(&c.tuple[1]);
    let (new, random) = unique_tuple(table, &curr, r, id, m, rng, now);
    let mut d = NatDecision::default();
    if new != curr {
        table.set_reply(id, invert(&new));
        table.get_mut(id).status |= match m {
            Manip::Src => status::SRC_NAT,
            Manip::Dst => status::DST_NAT,
        };
        d = NatDecision {
            changed: true,
            random,
        };
    }
    if m == Manip::Src {
        table.nat_bysource_add(id);
    }
    table.get_mut(id).status |= match m {
        Manip::Src => status::SRC_NAT_DONE,
        Manip::Dst => status::DST_NAT_DONE,
    };
    d
}

/// Kernel `nf_nat_alloc_null_binding`: no rule decided this manip: bind to the current
/// address (which still resolves port clashes for source NAT).
pub fn null_binding(
    table: &mut ConnTable,
    id: ConnId,
    m: Manip,
    rng: &mut dyn RandomSource,
    now: Nanos,
) -> NatDecision {
    let reply = table.get(id).tuple[1];
    let a = match m {
        Manip::Src => reply.dst,
        Manip::Dst => reply.src,
    };
    setup_info(table, id, &NatRange::addr(a), m, rng, now)
}

/// Kernel `nf_nat_follow_master`, the NAT helpers' expectation callback: the expected
/// connection's source becomes the address the master talks to (in the master direction
/// opposite to the expectation's), its destination the master's other end at the port the
/// helper saved.
pub fn follow_master(
    table: &mut ConnTable,
    id: ConnId,
    e: &nfrs_conntrack::Expected,
    rng: &mut dyn RandomSource,
    now: Nanos,
) {
    let master = *table.get(e.master);
    let t = master.tuple[1 - e.dir.index()];
    setup_info(table, id, &NatRange::addr(t.dst), Manip::Src, rng, now);
    let r = NatRange::addr(t.src).with_ports(e.saved_proto, e.saved_proto);
    setup_info(table, id, &r, Manip::Dst, rng, now);
}

/// MASQUERADE: the outgoing interface's address (chosen by the caller), the rule's ports and
/// flags. `None` when the interface has no address (the kernel drops the packet).
pub fn masquerade_range(rule: &NatRange, out_addr: Option<u32>) -> Option<NatRange> {
    let a = out_addr.filter(|&a| a != 0)?;
    Some(NatRange {
        flags: rule.flags | flags::MAP_IPS,
        min_addr: a,
        max_addr: a,
        ..*rule
    })
}

/// REDIRECT: 127.0.0.1 for locally generated packets, else the incoming interface's primary
/// address (`None`: no address, the kernel drops). Ports and flags from the rule.
pub fn redirect_range(
    rule: &NatRange,
    local_out: bool,
    in_primary: Option<u32>,
) -> Option<NatRange> {
    let a = if local_out { 0x7f00_0001 } else { in_primary? };
    Some(NatRange {
        flags: rule.flags | flags::MAP_IPS,
        min_addr: a,
        max_addr: a,
        ..*rule
    })
}

/// NETMAP: keep the host bits of `addr` (the packet's destination for DNAT, source for
/// SNAT) and take the prefix bits from the rule's range.
pub fn netmap_range(rule: &NatRange, addr: u32) -> NatRange {
    let netmask = !(rule.min_addr ^ rule.max_addr);
    let a = (addr & !netmask) | (rule.min_addr & netmask);
    NatRange {
        flags: rule.flags | flags::MAP_IPS,
        min_addr: a,
        max_addr: a,
        ..*rule
    }
}

#[cfg(test)]
mod tests;
