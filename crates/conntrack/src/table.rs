//! The connection table: a slab of [`Conn`] entries and a bucket array of chains through
//! them (each entry sits in two chains, one per direction, like the kernel's tuplehash pair),
//! plus the per-packet entry point [`ConnTable::track`] (the kernel's `nf_conntrack_in`).
//!
//! Life of an entry: `track` creates it *unconfirmed* (counted, not findable); the caller then
//! [`ConnTable::confirm`]s it when the packet leaves POSTROUTING/INPUT, or
//! [`ConnTable::discard`]s it when the packet was dropped.

use crate::config::{CtConfig, Nanos, SEC};
use crate::conn::{status, Conn, Dir, ProtoState};
use crate::expect::{Expectation, Expected};
use crate::ratelimit::RateLimit;
use crate::reason::Reason;
use crate::stats::CtStats;
use crate::tcp::{self, Outcome, Segment};
use crate::tuple::{proto, Tuple};

const NIL: u32 = u32::MAX;

/// Kernel rule (NF_CT_EVICTION_RANGE): early drop looks at this many buckets.
pub const EVICTION_RANGE: u32 = 8;

/// Handle of an entry. Stays valid until the entry is freed (after discard, expiry, or the
/// next `track` call for an entry killed while its packet was in flight).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u32);

/// Where the packet is (only PREROUTING changes behaviour: checksums are verified there).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Hook {
    /// PREROUTING.
    PreRouting,
    /// INPUT.
    LocalIn,
    /// FORWARD.
    Forward,
    /// OUTPUT.
    LocalOut,
    /// POSTROUTING.
    PostRouting,
}

/// Connection state of a packet, as `-m conntrack --ctstate` sees it (`enum ip_conntrack_info`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CtInfo {
    /// Part of a connection that has seen both directions (original direction).
    Established,
    /// Related to a connection (ICMP error, expectation), original direction.
    Related,
    /// First packet(s) of a connection, no reply seen.
    New,
    /// Reply direction.
    EstablishedReply,
    /// Related, reply direction.
    RelatedReply,
    /// Marked NOTRACK in the raw table (the caller sets this; `track` is not called).
    Untracked,
    /// Not part of any connection: no entry attached, never NATed.
    Invalid,
}

impl CtInfo {
    /// Kernel rule (nf_conntrack_attach): a packet the host generates in answer to this one
    /// (REJECT's TCP reset) shares its connection as RELATED, in the other direction.
    pub fn attached(self) -> CtInfo {
        match self.dir() {
            Dir::Original => CtInfo::RelatedReply,
            Dir::Reply => CtInfo::Related,
        }
    }

    /// Direction for tracked states.
    pub fn dir(self) -> Dir {
        match self {
            CtInfo::EstablishedReply | CtInfo::RelatedReply => Dir::Reply,
            _ => Dir::Original,
        }
    }
}

/// One L3 packet as the tracker needs it (after reassembly).
#[derive(Clone, Copy, Debug)]
pub struct Packet<'a> {
    /// Source address, host order.
    pub src: u32,
    /// Destination address, host order.
    pub dst: u32,
    /// IP protocol.
    pub proto: u8,
    /// A non-first fragment (offset ≠ 0): the kernel cannot track it.
    pub later_fragment: bool,
    /// Transport header and payload (the IP payload, exactly its length).
    pub l4: &'a [u8],
}

/// The table-full kernel message (already rate limited).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TableFull {
    /// Network namespace inode number; `None` prints the init-namespace wording.
    pub netns: Option<u32>,
    /// Messages suppressed before this one (`net_ratelimit: N callbacks suppressed`).
    pub suppressed: u32,
}

impl core::fmt::Display for TableFull {
    /// The kmsg text as the kernel printed it (module prefix included, no newline).
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.netns {
            Some(n) => write!(
                f,
                "nf_conntrack: nf_conntrack: table full in netns {n}, dropping packet"
            ),
            None => f.write_str("nf_conntrack: nf_conntrack: table full, dropping packet"),
        }
    }
}

/// What conntrack decided about one packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Tracked {
    /// The packet's connection state.
    pub ctinfo: CtInfo,
    /// Its connection (None when INVALID).
    pub conn: Option<ConnId>,
    /// The entry is new and unconfirmed: the caller must `confirm` or `discard` it.
    pub unconfirmed: bool,
    /// Conntrack drops the packet (table full).
    pub drop: bool,
    /// Tracker message for `nf_conntrack_log_invalid` (log it when `cfg.logs_invalid(r.proto())`).
    pub log: Option<Reason>,
    /// A second tracker message.
    pub log2: Option<Reason>,
    /// The table-full message to print, if any (rate limit applied).
    pub table_full: Option<TableFull>,
    /// The new connection matched this expectation (it is RELATED to `master`); NAT helpers
    /// then call `nfrs_nat::follow_master`.
    pub expected: Option<Expected>,
}

impl Tracked {
    fn invalid(log: Option<Reason>) -> Tracked {
        Tracked {
            ctinfo: CtInfo::Invalid,
            conn: None,
            unconfirmed: false,
            drop: false,
            log,
            log2: None,
            table_full: None,
            expected: None,
        }
    }
}

/// Why an entry could not be confirmed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ConfirmError {
    /// Another confirmed entry already holds one of its tuples (the kernel drops the packet).
    Clash,
    /// The id is not an unconfirmed entry.
    NotUnconfirmed,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Slot {
    Free,
    Unconfirmed,
    Confirmed,
    /// Killed while its packet is in flight; freed at the next `track`.
    Dying,
}

/// Outcome of reaping: what the expiry callback sees.
pub type ExpiredFn<'a> = dyn FnMut(ConnId, &Conn) + 'a;

/// The connection table.
pub struct ConnTable {
    cfg: CtConfig,
    conns: Vec<Conn>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    heads: Vec<u32>,
    src_heads: Vec<u32>,
    count: u32,
    deferred: Vec<u32>,
    helpers: Vec<u8>,
    expects: Vec<Expectation>,
    /// Bumped whenever an entry is linked into the hash (a new tuple becomes findable).
    link_gen: u64,
    /// The last entry `track` created and the `link_gen` it saw: if nothing was linked since,
    /// its original tuple cannot clash at confirm.
    pending: Option<(u32, u64)>,
    /// Counters per slot (orig packets, orig bytes, reply packets, reply bytes), present only
    /// for entries created while `nf_conntrack_acct` was on; grown lazily.
    acct: Vec<[u64; 4]>,
    ratelimit: RateLimit,
    pub(crate) stats: CtStats,
    /// No confirmed entry expires before this (a lower bound that lets `expire` return at
    /// once when nothing is due).
    earliest: Nanos,
    /// Namespace number for the table-full message (None: init namespace wording).
    pub netns: Option<u32>,
}

/// Asks the CPU to bring the cache line holding `p` closer (a hint: no fault, no effect on
/// any value; a no-op off x86-64). The engine's rule walk uses it too.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: PREFETCHT0 never faults and changes no architectural state, whatever the
    // address; SSE (its target feature) is part of the x86-64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Deterministic tuple hash (a fixed-key multiply/xor mix; the kernel's is keyed at random).
fn hash_tuple(t: &Tuple, zone: u16) -> u32 {
    let a = (t.src as u64) << 32 | t.dst as u64;
    let b =
        (t.src_l4 as u64) << 48 | (t.dst_l4 as u64) << 32 | (t.proto as u64) << 16 | zone as u64;
    let mut h = a ^ b.rotate_left(29).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 31;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 29;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 32;
    h as u32
}

fn scale(h: u32, n: usize) -> usize {
    ((h as u64 * n as u64) >> 32) as usize
}

fn hash_src(t: &Tuple, zone: u16) -> u32 {
    hash_tuple(
        &Tuple {
            dst: 0,
            dst_l4: 0,
            ..*t
        },
        zone,
    )
}

/// Internet checksum of the pseudo-header and transport bytes: 0 when correct.
pub fn l4_checksum(src: u32, dst: u32, proto: u8, l4: &[u8]) -> u16 {
    let mut sum: u64 =
        (src >> 16) as u64 + (src & 0xffff) as u64 + (dst >> 16) as u64 + (dst & 0xffff) as u64;
    sum += proto as u64 + l4.len() as u64;
    sum += ones_sum(l4);
    fold(sum)
}

/// The UDP-Lite check as the kernel does it: pseudo-header with protocol 17 and the full
/// length, then the first `cov` bytes. 0 when it passes.
fn udplite_sum(src: u32, dst: u32, l4: &[u8], cov: usize) -> u16 {
    let mut sum: u64 =
        (src >> 16) as u64 + (src & 0xffff) as u64 + (dst >> 16) as u64 + (dst & 0xffff) as u64;
    sum += 17 + l4.len() as u64;
    sum += ones_sum(&l4[..cov]);
    fold(sum)
}

/// The one's complement sum of `b` as 16-bit words, up to congruence modulo 0xffff (what
/// `fold` keeps): big-endian 32-bit words are added instead (2^16 is 1 modulo 0xffff).
fn ones_sum(b: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut quads = b.chunks_exact(4);
    for q in &mut quads {
        sum += u32::from_be_bytes([q[0], q[1], q[2], q[3]]) as u64;
    }
    let mut chunks = quads.remainder().chunks_exact(2);
    for c in &mut chunks {
        sum += u16::from_be_bytes([c[0], c[1]]) as u64;
    }
    if let [last] = chunks.remainder() {
        sum += (*last as u64) << 8;
    }
    sum
}

fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Kernel rule (icmp_is_err): destination unreachable, source quench, redirect, time exceeded
/// and parameter problem quote a packet.
fn icmp_is_error(ty: u8) -> bool {
    matches!(ty, 3 | 4 | 5 | 11 | 12)
}

/// Builds the tuple of a packet (nf_ct_get_tuple); None when the transport header is too short.
pub fn packet_tuple(src: u32, dst: u32, p: u8, l4: &[u8]) -> Option<Tuple> {
    match p {
        proto::TCP | proto::UDP | proto::UDPLITE | proto::SCTP => {
            if l4.len() < 4 {
                return None;
            }
            Some(Tuple::ports(
                p,
                src,
                u16::from_be_bytes([l4[0], l4[1]]),
                dst,
                u16::from_be_bytes([l4[2], l4[3]]),
            ))
        }
        proto::ICMP => {
            if l4.len() < 8 {
                return None;
            }
            Some(Tuple::icmp(
                src,
                dst,
                l4[0],
                l4[1],
                u16::from_be_bytes([l4[4], l4[5]]),
            ))
        }
        proto::GRE => {
            // Kernel rule (gre_pkt_to_tuple): only version 1 (PPTP) carries keys: the call id
            // is the destination key (the source key comes from the PPTP helper's keymap,
            // which nfrs does not model: 0). Version 1 must carry PPP (0x880b).
            if l4.len() < 4 || l4[1] & 0x07 != 1 {
                return Some(Tuple {
                    src_l4: 0,
                    dst_l4: 0,
                    ..Tuple::generic(p, src, dst)
                });
            }
            if l4.len() < 8 {
                return Some(Tuple::generic(p, src, dst));
            }
            if u16::from_be_bytes([l4[2], l4[3]]) != 0x880b {
                return None;
            }
            Some(Tuple {
                dst_l4: u16::from_be_bytes([l4[6], l4[7]]),
                ..Tuple::generic(p, src, dst)
            })
        }
        _ => Some(Tuple::generic(p, src, dst)),
    }
}

impl ConnTable {
    /// An empty table sized by `cfg.buckets`; entries are allocated as needed (call
    /// [`ConnTable::reserve`] to avoid growth on the packet path).
    pub fn new(cfg: CtConfig) -> ConnTable {
        let nb = cfg.buckets.max(1) as usize;
        ConnTable {
            cfg,
            conns: Vec::new(),
            slots: Vec::new(),
            free: Vec::new(),
            heads: vec![NIL; nb],
            src_heads: vec![NIL; nb],
            count: 0,
            deferred: Vec::new(),
            helpers: Vec::new(),
            expects: Vec::new(),
            acct: Vec::new(),
            link_gen: 0,
            pending: None,
            ratelimit: RateLimit::default(),
            stats: CtStats::default(),
            earliest: Nanos::MAX,
            netns: None,
        }
    }

    /// Pre-allocates room for `n` entries.
    pub fn reserve(&mut self, n: usize) {
        self.conns.reserve(n);
        self.slots.reserve(n);
        self.free.reserve(n);
    }

    /// The settings in force.
    pub fn config(&self) -> &CtConfig {
        &self.cfg
    }

    /// Sets a sysctl by its Linux name (see [`CtConfig::set`]); a new bucket count rehashes.
    pub fn set_sysctl(
        &mut self,
        name: &str,
        value: &str,
    ) -> Result<(), crate::config::ConfigError> {
        let old = self.cfg.buckets;
        self.cfg.set(name, value)?;
        if self.cfg.buckets != old {
            self.rehash();
        }
        Ok(())
    }

    /// Replaces the settings (rehashing if the bucket count changed).
    pub fn set_config(&mut self, cfg: CtConfig) {
        let old = self.cfg.buckets;
        self.cfg = cfg;
        if self.cfg.buckets != old {
            self.rehash();
        }
    }

    fn rehash(&mut self) {
        let nb = self.cfg.buckets.max(1) as usize;
        self.heads = vec![NIL; nb];
        let in_src: Vec<bool> = (0..self.conns.len())
            .map(|i| self.in_bysource(i as u32))
            .collect();
        self.src_heads = vec![NIL; nb];
        for (i, &was_in_src) in in_src.iter().enumerate() {
            if self.slots[i] == Slot::Confirmed {
                self.link(i as u32);
            }
            if was_in_src {
                self.conns[i].src_next = NIL;
                self.bysource_link(i as u32);
            }
        }
    }

    /// Entries counted against `nf_conntrack_max` (unconfirmed ones included).
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The statistics so far (`conntrack -S`, `/proc/net/stat/nf_conntrack`).
    pub fn stats(&self) -> CtStats {
        self.stats
    }

    /// The kernel's `net_ratelimit` shared by conntrack's warnings (table full, expectation
    /// table full).
    pub(crate) fn ratelimit_mut(&mut self) -> &mut RateLimit {
        &mut self.ratelimit
    }

    /// The entry behind an id.
    pub fn get(&self, id: ConnId) -> &Conn {
        &self.conns[id.0 as usize]
    }

    /// Mutable access (marks, status bits set by targets). A caller that lowers `timeout`
    /// must call [`ConnTable::timeout_changed`].
    pub fn get_mut(&mut self, id: ConnId) -> &mut Conn {
        &mut self.conns[id.0 as usize]
    }

    /// Tells the table an entry's timeout was changed from outside.
    pub fn timeout_changed(&mut self, id: ConnId) {
        let c = &self.conns[id.0 as usize];
        if c.is_confirmed() {
            self.earliest = self.earliest.min(c.timeout);
        }
    }

    /// Iterates over confirmed entries (listing order is slab order; the kernel's is hash
    /// order, so callers that compare sort).
    pub fn iter(&self) -> impl Iterator<Item = (ConnId, &Conn)> {
        self.conns
            .iter()
            .enumerate()
            .filter(|(i, _)| self.slots[*i] == Slot::Confirmed)
            .map(|(i, c)| (ConnId(i as u32), c))
    }

    fn bucket(&self, t: &Tuple, zone: u16) -> usize {
        scale(hash_tuple(t, zone), self.heads.len())
    }

    /// Batch hint, first step: reads the hash bucket head where a lookup of `t` in `zone` will
    /// start, so that the cache miss of a large table overlaps with other work (a batch warms
    /// all its packets' buckets before handling the first). Returns the bucket for
    /// [`ConnTable::warm_entry`]. Reads only; any tuple is fine (a wrong guess costs a load).
    #[inline]
    pub fn warm_bucket(&self, t: &Tuple, zone: u16) -> usize {
        let b = self.bucket(t, zone);
        if let Some(h) = self.heads.get(b) {
            prefetch(h);
        }
        b
    }

    /// Batch hint, second step: reads the first entry chained at bucket `b` (both of its cache
    /// lines) and its helper byte, which the packet's lookup, tracker and confirm step touch.
    /// Reads only.
    #[inline]
    pub fn warm_entry(&self, b: usize) {
        let Some(&head) = self.heads.get(b) else {
            return;
        };
        if head == NIL {
            return;
        }
        self.warm_conn((head >> 1) as usize);
    }

    /// Prefetches entry `i` (every cache line it spans: 128 bytes at any alignment, up to
    /// three) and its helper byte.
    #[inline]
    fn warm_conn(&self, i: usize) {
        if let Some(c) = self.conns.get(i) {
            let p = (c as *const Conn).cast::<u8>();
            prefetch(p);
            prefetch(p.wrapping_add(64));
            prefetch(p.wrapping_add(std::mem::size_of::<Conn>() - 1));
        }
        if let Some(h) = self.helpers.get(i) {
            prefetch(h);
        }
    }

    /// Batch hint, third step: when the first entry at bucket `b` (warmed by
    /// [`ConnTable::warm_entry`]) is not the one `t` in `zone` will find, prefetches the next
    /// one on the chain (with more than one tuple a bucket on average, often the one). Reads
    /// only.
    #[inline]
    pub fn warm_chain(&self, b: usize, t: &Tuple, zone: u16) {
        let Some(&head) = self.heads.get(b) else {
            return;
        };
        if head == NIL {
            return;
        }
        let (i, d) = ((head >> 1) as usize, (head & 1) as usize);
        let Some(c) = self.conns.get(i) else { return };
        if c.zone == zone && c.tuple[d] == *t {
            return;
        }
        let next = c.next[d];
        if next == NIL {
            return;
        }
        self.warm_conn((next >> 1) as usize);
    }

    fn link(&mut self, idx: u32) {
        self.link_gen += 1;
        for d in 0..2 {
            let c = &self.conns[idx as usize];
            let b = self.bucket(&c.tuple[d], c.zone);
            self.conns[idx as usize].next[d] = self.heads[b];
            self.heads[b] = idx << 1 | d as u32;
        }
    }

    fn unlink(&mut self, idx: u32) {
        for d in 0..2 {
            let c = &self.conns[idx as usize];
            let b = self.bucket(&c.tuple[d], c.zone);
            let node = idx << 1 | d as u32;
            let next = c.next[d];
            if self.heads[b] == node {
                self.heads[b] = next;
            } else {
                let mut cur = self.heads[b];
                while cur != NIL {
                    let (ci, cd) = ((cur >> 1) as usize, (cur & 1) as usize);
                    if self.conns[ci].next[cd] == node {
                        self.conns[ci].next[cd] = next;
                        break;
                    }
                    cur = self.conns[ci].next[cd];
                }
            }
            self.conns[idx as usize].next[d] = NIL;
        }
    }

    fn alloc(&mut self, c: Conn) -> u32 {
        if let Some(i) = self.free.pop() {
            self.conns[i as usize] = c;
            self.slots[i as usize] = Slot::Unconfirmed;
            self.helpers[i as usize] = 0;
            i
        } else {
            self.conns.push(c);
            self.slots.push(Slot::Unconfirmed);
            self.helpers.push(0);
            (self.conns.len() - 1) as u32
        }
    }

    fn acct_init(&mut self, idx: u32) {
        let i = idx as usize;
        if self.cfg.acct {
            if self.acct.len() <= i {
                self.acct.resize(i + 1, [u64::MAX, 0, 0, 0]);
            }
            self.acct[i] = [0; 4];
        } else if i < self.acct.len() {
            self.acct[i] = [u64::MAX, 0, 0, 0];
        }
    }

    /// Packet and byte counters (orig packets, orig bytes, reply packets, reply bytes) of an
    /// entry created while `nf_conntrack_acct` was on.
    #[inline]
    pub fn counters(&self, id: ConnId) -> Option<[u64; 4]> {
        self.acct
            .get(id.0 as usize)
            .copied()
            .filter(|a| a[0] != u64::MAX)
    }

    pub(crate) fn expects(&self) -> &Vec<Expectation> {
        &self.expects
    }

    pub(crate) fn expects_mut(&mut self) -> &mut Vec<Expectation> {
        &mut self.expects
    }

    /// Assigns a helper to a connection (the raw table's `CT --helper`), by id
    /// ([`crate::expect::HELPER_NAMES`]).
    pub fn set_helper(&mut self, id: ConnId, helper: u8) {
        self.helpers[id.0 as usize] = helper;
    }

    /// The helper id of a connection (0: none).
    pub fn helper(&self, id: ConnId) -> u8 {
        self.helpers[id.0 as usize]
    }

    fn release(&mut self, idx: u32) {
        if !self.expects.is_empty() {
            // Kernel rule: a master's expectations go with it.
            let before = self.expects.len();
            self.expects.retain(|e| e.master.0 != idx);
            self.stats.expect_delete += (before - self.expects.len()) as u64;
        }
        self.bysource_unlink(idx);
        self.slots[idx as usize] = Slot::Free;
        self.free.push(idx);
        self.count -= 1;
    }

    /// Removes an entry now (unlinks and frees it). For an entry whose packet is still in
    /// flight use [`ConnTable::kill`].
    fn remove(&mut self, idx: u32) {
        if self.slots[idx as usize] == Slot::Confirmed {
            self.unlink(idx);
        }
        self.release(idx);
    }

    /// Deletes a connection (`conntrack -D`, tracker decisions): it can no longer be found;
    /// its data stays readable until the next `track` call.
    pub fn kill(&mut self, id: ConnId) {
        let i = id.0;
        match self.slots[i as usize] {
            Slot::Confirmed => {
                self.unlink(i);
                self.conns[i as usize].status |= status::DYING;
                self.slots[i as usize] = Slot::Dying;
                self.deferred.push(i);
            }
            Slot::Unconfirmed => {
                self.conns[i as usize].status |= status::DYING;
                self.slots[i as usize] = Slot::Dying;
                self.deferred.push(i);
            }
            _ => {}
        }
    }

    fn flush_deferred(&mut self) {
        while let Some(i) = self.deferred.pop() {
            if self.slots[i as usize] == Slot::Dying {
                self.release(i);
            }
        }
    }

    /// Finds a confirmed, unexpired entry by a tuple of either direction; expired entries met
    /// on the way are removed (the kernel's lazy reaping).
    pub fn lookup(&mut self, t: &Tuple, zone: u16, now: Nanos) -> Option<(ConnId, Dir)> {
        let b = self.bucket(t, zone);
        'restart: loop {
            let mut cur = self.heads[b];
            while cur != NIL {
                let (ci, cd) = ((cur >> 1) as usize, (cur & 1) as usize);
                let c = &self.conns[ci];
                if c.is_expired(now) {
                    self.remove(ci as u32);
                    continue 'restart;
                }
                if c.zone == zone && c.tuple[cd] == *t {
                    let dir = if cd == 0 { Dir::Original } else { Dir::Reply };
                    return Some((ConnId(ci as u32), dir));
                }
                cur = c.next[cd];
            }
            return None;
        }
    }

    /// [`ConnTable::lookup`] without reaping: a confirmed entry with tuple `t` (either
    /// direction) in `zone` that has not expired at `now` (nf_conntrack_find_get as a reader
    /// sees it; nf_conncount asks it about remembered connections).
    pub fn find(&self, t: &Tuple, zone: u16, now: Nanos) -> Option<(ConnId, Dir)> {
        let b = self.bucket(t, zone);
        let mut cur = self.heads[b];
        while cur != NIL {
            let (ci, cd) = ((cur >> 1) as usize, (cur & 1) as usize);
            let c = &self.conns[ci];
            if !c.is_expired(now) && c.zone == zone && c.tuple[cd] == *t {
                let dir = if cd == 0 { Dir::Original } else { Dir::Reply };
                return Some((ConnId(ci as u32), dir));
            }
            cur = c.next[cd];
        }
        None
    }

    /// Kernel `nf_conntrack_tuple_taken`: is `t` (a reply-direction tuple) held by another
    /// entry? An entry with the same original tuple as `ignored` does not count.
    pub fn tuple_taken(&mut self, t: &Tuple, ignored: ConnId, now: Nanos) -> bool {
        let zone = self.conns[ignored.0 as usize].zone;
        let ig_orig = self.conns[ignored.0 as usize].tuple[0];
        let b = self.bucket(t, zone);
        'restart: loop {
            let mut cur = self.heads[b];
            while cur != NIL {
                let (ci, cd) = ((cur >> 1) as usize, (cur & 1) as usize);
                let c = &self.conns[ci];
                let next = c.next[cd];
                if ci as u32 != ignored.0 {
                    if c.is_expired(now) {
                        self.remove(ci as u32);
                        continue 'restart;
                    }
                    if c.zone == zone && c.tuple[cd] == *t && c.tuple[0] != ig_orig {
                        self.stats.found += 1;
                        return true;
                    }
                }
                cur = next;
            }
            return false;
        }
    }

    /// Replaces the reply tuple of an unconfirmed entry (NAT decided; `nf_conntrack_alter_reply`).
    pub fn set_reply(&mut self, id: ConnId, reply: Tuple) {
        debug_assert!(self.slots[id.0 as usize] == Slot::Unconfirmed);
        self.conns[id.0 as usize].tuple[1] = reply;
    }

    fn in_bysource(&self, idx: u32) -> bool {
        let c = &self.conns[idx as usize];
        if c.src_next != NIL {
            return true;
        }
        let b = scale(hash_src(&c.tuple[0], c.zone), self.src_heads.len());
        let mut cur = self.src_heads[b];
        while cur != NIL {
            if cur == idx {
                return true;
            }
            cur = self.conns[cur as usize].src_next;
        }
        false
    }

    fn bysource_link(&mut self, idx: u32) {
        let c = &self.conns[idx as usize];
        let b = scale(hash_src(&c.tuple[0], c.zone), self.src_heads.len());
        self.conns[idx as usize].src_next = self.src_heads[b];
        self.src_heads[b] = idx;
    }

    fn bysource_unlink(&mut self, idx: u32) {
        let c = &self.conns[idx as usize];
        let b = scale(hash_src(&c.tuple[0], c.zone), self.src_heads.len());
        let next = c.src_next;
        if self.src_heads[b] == idx {
            self.src_heads[b] = next;
        } else {
            let mut cur = self.src_heads[b];
            while cur != NIL {
                if self.conns[cur as usize].src_next == idx {
                    self.conns[cur as usize].src_next = next;
                    break;
                }
                cur = self.conns[cur as usize].src_next;
            }
        }
        self.conns[idx as usize].src_next = NIL;
    }

    /// Records a source-NATed entry in the by-source index NAT uses to keep mappings stable.
    pub fn nat_bysource_add(&mut self, id: ConnId) {
        if !self.in_bysource(id.0) {
            self.bysource_link(id.0);
        }
    }

    /// Kernel `find_appropriate_src` walk: calls `f` with every live entry (confirmed or not)
    /// in the by-source index whose original source (address, port/id, protocol) and zone
    /// equal `orig`'s, until `f` returns true. Returns that entry's id.
    pub fn nat_bysource_find(
        &self,
        orig: &Tuple,
        zone: u16,
        mut f: impl FnMut(&Conn) -> bool,
    ) -> Option<ConnId> {
        let b = scale(hash_src(orig, zone), self.src_heads.len());
        let mut cur = self.src_heads[b];
        while cur != NIL {
            let c = &self.conns[cur as usize];
            let live = matches!(
                self.slots[cur as usize],
                Slot::Confirmed | Slot::Unconfirmed
            );
            if live
                && c.zone == zone
                && c.tuple[0].proto == orig.proto
                && c.tuple[0].src == orig.src
                && c.tuple[0].src_l4 == orig.src_l4
                && f(c)
            {
                return Some(ConnId(cur));
            }
            cur = c.src_next;
        }
        None
    }

    /// Kernel `early_drop`: from the new tuple's bucket, look at up to 8 buckets; in the
    /// first one holding any non-assured confirmed entries, delete all of them. Expired
    /// entries met are reaped but do not count as a drop.
    fn early_drop(&mut self, t: &Tuple, zone: u16, now: Nanos) -> bool {
        let n = self.heads.len();
        let mut b = self.bucket(t, zone);
        for _ in 0..EVICTION_RANGE.min(n as u32) {
            let mut drops = 0;
            'restart: loop {
                let mut cur = self.heads[b];
                while cur != NIL {
                    let (ci, cd) = ((cur >> 1) as usize, (cur & 1) as usize);
                    let c = &self.conns[ci];
                    if c.is_expired(now) {
                        self.remove(ci as u32);
                        continue 'restart;
                    }
                    if !c.has(status::ASSURED) {
                        self.remove(ci as u32);
                        drops += 1;
                        continue 'restart;
                    }
                    cur = c.next[cd];
                }
                break;
            }
            if drops > 0 {
                self.stats.early_drop += drops;
                return true;
            }
            b = (b + 1) % n;
        }
        false
    }

    /// Creates an unconfirmed entry (kernel `__nf_conntrack_alloc` with its limit check).
    /// `Err(message)` when the table is full; the message is `None` when rate limited.
    fn new_entry(
        &mut self,
        orig: Tuple,
        reply: Tuple,
        zone: u16,
        now: Nanos,
    ) -> Result<u32, Option<TableFull>> {
        if self.cfg.max != 0 && self.count >= self.cfg.max && !self.early_drop(&orig, zone, now) {
            let a = self.ratelimit.allow(now);
            return Err(a.print.then_some(TableFull {
                netns: self.netns,
                suppressed: a.suppressed,
            }));
        }
        self.count += 1;
        Ok(self.alloc(Conn::new(orig, reply, zone)))
    }

    /// Inserts an unconfirmed entry into the table (end of POSTROUTING / INPUT). Its timeout
    /// starts counting now.
    pub fn confirm(&mut self, id: ConnId, now: Nanos) -> Result<(), ConfirmError> {
        let i = id.0;
        if self.slots[i as usize] != Slot::Unconfirmed {
            return Err(ConfirmError::NotUnconfirmed);
        }
        let c = self.conns[i as usize];
        // Fast path: nothing became findable since `track` missed this original tuple, so it
        // cannot clash; and without NAT the reply tuple is its mirror, which that lookup
        // would have found too.
        let unchanged = self.pending == Some((i, self.link_gen));
        let first = if unchanged { 1 } else { 0 };
        let last = if unchanged && c.tuple[0].reply() == Some(c.tuple[1]) {
            1
        } else {
            2
        };
        for d in first..last {
            if let Some((other, _)) = self.lookup(&c.tuple[d], c.zone, now) {
                if other.0 != i {
                    self.discard(id);
                    self.stats.insert_failed += 1;
                    return Err(ConfirmError::Clash);
                }
            }
        }
        let c = &mut self.conns[i as usize];
        c.timeout = c.timeout.saturating_add(now);
        c.status |= status::CONFIRMED;
        self.earliest = self.earliest.min(c.timeout);
        self.slots[i as usize] = Slot::Confirmed;
        self.link(i);
        Ok(())
    }

    /// Frees an unconfirmed entry whose packet was dropped.
    pub fn discard(&mut self, id: ConnId) {
        if self.slots[id.0 as usize] == Slot::Unconfirmed {
            self.release(id.0);
        }
    }

    /// Removes every entry whose timeout has passed at `now`, calling `f` for each (for
    /// destroy events). Returns how many expired.
    /// Cheap when nothing is due (a cached lower bound); a full scan otherwise.
    pub fn expire(&mut self, now: Nanos, f: &mut ExpiredFn<'_>) -> usize {
        self.flush_deferred();
        if !self.expects.is_empty() {
            self.expect_expire(now);
        }
        if now < self.earliest {
            return 0;
        }
        let mut n = 0;
        let mut earliest = Nanos::MAX;
        for i in 0..self.conns.len() {
            if self.slots[i] != Slot::Confirmed {
                continue;
            }
            if self.conns[i].is_expired(now) {
                f(ConnId(i as u32), &self.conns[i]);
                self.remove(i as u32);
                n += 1;
            } else {
                earliest = earliest.min(self.conns[i].timeout);
            }
        }
        self.earliest = earliest;
        n
    }

    /// Deletes every confirmed entry (`conntrack -F`), calling `f` for each.
    pub fn flush(&mut self, f: &mut ExpiredFn<'_>) -> usize {
        self.flush_deferred();
        let mut n = 0;
        for i in 0..self.conns.len() {
            if self.slots[i] == Slot::Confirmed {
                f(ConnId(i as u32), &self.conns[i]);
                self.remove(i as u32);
                n += 1;
            }
        }
        self.earliest = Nanos::MAX;
        n
    }

    /// Earliest deadline among confirmed entries (for scheduling `expire`; a full scan).
    pub fn next_deadline(&self) -> Option<Nanos> {
        self.iter().map(|(_, c)| c.timeout).min()
    }

    /// Kernel `nf_conntrack_in` for one packet at hook `hook` in `zone` (byte counters assume
    /// a 20-byte IP header; see [`ConnTable::track_len`]).
    pub fn track(&mut self, pkt: &Packet<'_>, zone: u16, hook: Hook, now: Nanos) -> Tracked {
        self.track_len(pkt, 20 + pkt.l4.len() as u64, zone, hook, now)
    }

    /// [`ConnTable::track`] with the packet's IP total length (for `nf_conntrack_acct`).
    #[inline]
    pub fn track_len(
        &mut self,
        pkt: &Packet<'_>,
        ip_len: u64,
        zone: u16,
        hook: Hook,
        now: Nanos,
    ) -> Tracked {
        self.flush_deferred();
        if pkt.later_fragment {
            // No transport header to make a tuple from: counted invalid.
            self.stats.invalid += 1;
            return Tracked::invalid(None);
        }
        let check_sum = self.cfg.checksum && hook == Hook::PreRouting;
        if pkt.proto == proto::ICMP {
            let l4 = pkt.l4;
            // Kernel rule (nf_conntrack_icmpv4_error): these refusals count as `error`.
            if l4.len() < 8 {
                self.stats.error += 1;
                return Tracked::invalid(Some(Reason::IcmpShort));
            }
            if check_sum && fold(ones_sum(l4)) != 0 {
                self.stats.error += 1;
                return Tracked::invalid(Some(Reason::IcmpBadChecksum));
            }
            if l4[0] > 18 {
                self.stats.error += 1;
                return Tracked::invalid(Some(Reason::IcmpInvalidType));
            }
            if icmp_is_error(l4[0]) {
                let r = self.icmp_error(pkt, zone, now);
                if r.ctinfo == CtInfo::Invalid {
                    // An error relating to nothing (measured: `error`, not `invalid`).
                    self.stats.error += 1;
                }
                return r;
            }
        }
        let mut expected = None;
        loop {
            let Some(tuple) = packet_tuple(pkt.src, pkt.dst, pkt.proto, pkt.l4) else {
                self.stats.invalid += 1;
                return Tracked::invalid(None);
            };
            let (idx, dir, new) = match self.lookup(&tuple, zone, now) {
                Some((id, dir)) => (id.0, dir, false),
                None => match self.init_conn(&tuple, zone, now) {
                    Ok((i, e)) => {
                        expected = e;
                        (i, Dir::Original, true)
                    }
                    Err(t) => return t,
                },
            };
            let st = self.conns[idx as usize].status;
            let ctinfo = match dir {
                Dir::Reply => CtInfo::EstablishedReply,
                Dir::Original if st & status::SEEN_REPLY != 0 => CtInfo::Established,
                Dir::Original if st & status::EXPECTED != 0 => CtInfo::Related,
                Dir::Original => CtInfo::New,
            };
            let res = self.handle_packet(idx, dir, pkt, check_sum, now);
            if !new {
                self.earliest = self.earliest.min(self.conns[idx as usize].timeout);
            }
            match res.outcome {
                Outcome::Invalid => {
                    if new {
                        self.release(idx);
                    }
                    self.stats.invalid += 1;
                    return Tracked {
                        log2: res.log2,
                        ..Tracked::invalid(res.log)
                    };
                }
                Outcome::Repeat => {
                    self.remove(idx);
                    continue;
                }
                Outcome::Accept | Outcome::AcceptKill => {
                    if res.acct {
                        if let Some(a) =
                            self.acct.get_mut(idx as usize).filter(|a| a[0] != u64::MAX)
                        {
                            let d = dir.index() * 2;
                            a[d] += 1;
                            a[d + 1] += ip_len;
                        }
                    }
                    if ctinfo == CtInfo::EstablishedReply {
                        self.conns[idx as usize].status |= status::SEEN_REPLY;
                    }
                    if res.outcome == Outcome::AcceptKill {
                        self.kill(ConnId(idx));
                    }
                    return Tracked {
                        ctinfo,
                        conn: Some(ConnId(idx)),
                        unconfirmed: new,
                        drop: false,
                        log: res.log,
                        log2: res.log2,
                        table_full: None,
                        expected,
                    };
                }
            }
        }
    }

    /// Kernel `init_conntrack` for a packet whose tuple found nothing: a new unconfirmed
    /// entry (an expected connection's: RELATED to its master, with its mark and helper), or
    /// the packet's refusal. Out of line: the established packets' path stays short.
    #[inline(never)]
    fn init_conn(
        &mut self,
        tuple: &Tuple,
        zone: u16,
        now: Nanos,
    ) -> Result<(u32, Option<Expected>), Tracked> {
        let Some(reply) = tuple.reply() else {
            self.stats.invalid += 1;
            return Err(Tracked::invalid(None));
        };
        match self.new_entry(*tuple, reply, zone, now) {
            Ok(i) => {
                self.acct_init(i);
                self.pending = Some((i, self.link_gen));
                let mut expected = None;
                if let Some(e) = self.expect_take(tuple, zone, now) {
                    self.stats.expect_new += 1;
                    // Kernel init_conntrack: an expected connection is RELATED to its master
                    // and inherits its mark.
                    let mark = self.conns[e.master.0 as usize].mark;
                    let c = &mut self.conns[i as usize];
                    c.status |= status::EXPECTED;
                    c.master = e.master.0;
                    c.mark = mark;
                    self.helpers[i as usize] = e.child_helper;
                    expected = Some(Expected {
                        master: e.master,
                        dir: e.dir,
                        saved_proto: e.saved_proto,
                    });
                }
                Ok((i, expected))
            }
            Err(table_full) => {
                // Every refused packet counts, printed or rate limited.
                self.stats.drop += 1;
                Err(Tracked {
                    drop: true,
                    table_full,
                    ..Tracked::invalid(None)
                })
            }
        }
    }

    fn handle_packet(
        &mut self,
        idx: u32,
        dir: Dir,
        pkt: &Packet<'_>,
        check_sum: bool,
        now: Nanos,
    ) -> tcp::TcpResult {
        let cfg = &self.cfg;
        let conn = &mut self.conns[idx as usize];
        let l4 = pkt.l4;
        let ok = tcp::TcpResult {
            outcome: Outcome::Accept,
            log: None,
            log2: None,
            acct: true,
        };
        let bad = |r: Option<Reason>| tcp::TcpResult {
            outcome: Outcome::Invalid,
            log: r,
            log2: None,
            acct: false,
        };
        match pkt.proto {
            proto::TCP => {
                if l4.len() < 20 {
                    return bad(None);
                }
                let Some(seg) = Segment::parse(l4) else {
                    return bad(Some(Reason::TcpTruncated));
                };
                if check_sum && l4_checksum(pkt.src, pkt.dst, proto::TCP, l4) != 0 {
                    return bad(Some(Reason::TcpBadChecksum));
                }
                if !tcp::flags_valid(seg.flags) {
                    return bad(Some(Reason::TcpInvalidFlags));
                }
                if !conn.is_confirmed() {
                    if let Err(r) = tcp::tcp_new(conn, &seg, cfg) {
                        return bad(r);
                    }
                }
                tcp::tcp_packet(conn, dir, &seg, cfg, now)
            }
            proto::UDP => {
                if l4.len() < 8 {
                    return bad(Some(Reason::UdpShort));
                }
                let ulen = u16::from_be_bytes([l4[4], l4[5]]) as usize;
                if ulen > l4.len() || ulen < 8 {
                    return bad(Some(Reason::UdpTruncated));
                }
                let csum = u16::from_be_bytes([l4[6], l4[7]]);
                if csum != 0 && check_sum && l4_checksum(pkt.src, pkt.dst, proto::UDP, l4) != 0 {
                    return bad(Some(Reason::UdpBadChecksum));
                }
                udp_packet(conn, cfg, now);
                ok
            }
            proto::ICMP => {
                // Kernel rule: only query types (echo, timestamp, info, address mask) may
                // create a connection; answers without one are invalid.
                if !matches!(conn.tuple[0].icmp_type(), 8 | 13 | 15 | 17) {
                    return bad(None);
                }
                conn.refresh(cfg.icmp_timeout, now);
                ok
            }
            proto::GRE => {
                gre_packet(conn, cfg, now);
                ok
            }
            proto::SCTP => {
                if let Some(r) = crate::sctp::sctp_error(l4, check_sum) {
                    return bad(Some(r));
                }
                let r = crate::sctp::sctp_packet(conn, dir, l4, cfg, now);
                if !r.ok {
                    return bad(r.log);
                }
                tcp::TcpResult {
                    acct: r.refresh,
                    ..ok
                }
            }
            proto::UDPLITE => {
                if l4.len() < 8 {
                    return bad(Some(Reason::UdpliteShort));
                }
                let cov = match u16::from_be_bytes([l4[4], l4[5]]) as usize {
                    0 => l4.len(),
                    c if c < 8 || c > l4.len() => return bad(Some(Reason::UdpliteCoverage)),
                    c => c,
                };
                if u16::from_be_bytes([l4[6], l4[7]]) == 0 {
                    return bad(Some(Reason::UdpliteChecksumMissing));
                }
                // Kernel quirk (measured on 6.18): the partial checksum is verified with
                // UDP's protocol number in the pseudo-header.
                if check_sum && udplite_sum(pkt.src, pkt.dst, l4, cov) != 0 {
                    return bad(Some(Reason::UdpliteBadChecksum));
                }
                // Kernel nf_conntrack_udplite_packet: a reply makes it a stream at once.
                if conn.has(status::SEEN_REPLY) {
                    conn.refresh(cfg.udp_timeout_stream, now);
                    if !conn.has(status::NAT_CLASH) {
                        conn.status |= status::ASSURED;
                    }
                } else {
                    conn.refresh(cfg.udp_timeout, now);
                }
                ok
            }
            _ => {
                conn.refresh(cfg.generic_timeout, now);
                ok
            }
        }
    }

    /// Kernel `nf_conntrack_inet_error`: an ICMP error is RELATED to the connection of the
    /// packet it quotes, when the outer destination matches that connection.
    fn icmp_error(&mut self, pkt: &Packet<'_>, zone: u16, now: Nanos) -> Tracked {
        let inner = &pkt.l4[8..];
        if inner.len() < 20 {
            return Tracked::invalid(None);
        }
        let ihl = (inner[0] & 0x0f) as usize * 4;
        let frag_off = u16::from_be_bytes([inner[6], inner[7]]) & 0x1fff;
        if frag_off != 0 || ihl > inner.len() {
            return Tracked::invalid(None);
        }
        let src = u32::from_be_bytes([inner[12], inner[13], inner[14], inner[15]]);
        let dst = u32::from_be_bytes([inner[16], inner[17], inner[18], inner[19]]);
        let Some(orig) = packet_tuple(src, dst, inner[9], &inner[ihl..]) else {
            return Tracked::invalid(None);
        };
        let Some(want) = orig.reply() else {
            return Tracked::invalid(None);
        };
        let Some((id, dir)) = self.lookup(&want, zone, now) else {
            return Tracked::invalid(None);
        };
        let ct_daddr = self.conns[id.0 as usize].tuple[dir.index()].dst;
        if ct_daddr != pkt.dst {
            return Tracked::invalid(Some(Reason::IcmpOuterDaddr {
                outer: pkt.dst,
                inner: ct_daddr,
            }));
        }
        Tracked {
            ctinfo: if dir == Dir::Reply {
                CtInfo::RelatedReply
            } else {
                CtInfo::Related
            },
            conn: Some(id),
            unconfirmed: false,
            drop: false,
            log: None,
            log2: None,
            table_full: None,
            expected: None,
        }
    }
}

/// Kernel `nf_conntrack_udp_packet`: unreplied timeout until a reply; once replied and more
/// than 2 s after the first packet, the stream timeout and ASSURED.
fn udp_packet(conn: &mut Conn, cfg: &CtConfig, now: Nanos) {
    if !conn.is_confirmed() {
        conn.proto = ProtoState::Udp {
            stream_ts: now + 2 * SEC,
        };
    }
    if conn.has(status::SEEN_REPLY) {
        let stream_ts = match conn.proto {
            ProtoState::Udp { stream_ts } => stream_ts,
            _ => 0,
        };
        let mut extra = cfg.udp_timeout;
        let mut stream = false;
        if now > stream_ts {
            extra = cfg.udp_timeout_stream;
            stream = !conn.has(status::ASSURED);
        }
        conn.refresh(extra, now);
        if conn.has(status::NAT_CLASH) {
            return;
        }
        if stream {
            conn.status |= status::ASSURED;
        }
    } else {
        conn.refresh(cfg.udp_timeout, now);
    }
}

/// Kernel `gre_packet`: timeouts fixed at creation; unreplied timeout until a reply has
/// been seen, then the stream timeout and ASSURED.
fn gre_packet(conn: &mut Conn, cfg: &CtConfig, now: Nanos) {
    if !conn.is_confirmed() {
        conn.proto = ProtoState::Gre {
            timeout: cfg.gre_timeout,
            stream_timeout: cfg.gre_timeout_stream,
        };
    }
    let (timeout, stream) = match conn.proto {
        ProtoState::Gre {
            timeout,
            stream_timeout,
        } => (timeout, stream_timeout),
        _ => (cfg.gre_timeout, cfg.gre_timeout_stream),
    };
    if conn.has(status::SEEN_REPLY) {
        conn.refresh(stream, now);
        if !conn.has(status::NAT_CLASH) {
            conn.status |= status::ASSURED;
        }
    } else {
        conn.refresh(timeout, now);
    }
}

#[cfg(test)]
mod tests;
