//! The ruleset model: flat, one to one with iptables-save. A ruleset holds tables in the order
//! the kernel lists them (newest first, /proc/net/ip_tables_names); a table holds its chains
//! (built-ins first in kernel hook order, then user chains sorted by name, as libiptc keeps them); a chain holds its
//! rules in order. Rules are plain data: the generic IP part, a list of matches, a target.

use crate::ext::{Match, TargetExt};
use std::collections::HashMap;
use std::net::Ipv4Addr;

/// The four IPv4 tables nfrs models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TableKind {
    Filter,
    Nat,
    Mangle,
    Raw,
    /// The `security` table (iptable_security: INPUT, FORWARD, OUTPUT, after filter).
    Security,
}

impl TableKind {
    /// All tables.
    pub const ALL: [TableKind; 5] = [
        TableKind::Filter,
        TableKind::Nat,
        TableKind::Mangle,
        TableKind::Raw,
        TableKind::Security,
    ];

    /// The table's name as iptables spells it.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Filter => "filter",
            TableKind::Nat => "nat",
            TableKind::Mangle => "mangle",
            TableKind::Raw => "raw",
            TableKind::Security => "security",
        }
    }

    /// Parses a table name.
    pub fn from_name(name: &str) -> Option<TableKind> {
        TableKind::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The built-in chains (hooks) of this table, in kernel hook order.
    pub fn hooks(self) -> &'static [Hook] {
        use Hook::*;
        match self {
            TableKind::Filter => &[Input, Forward, Output],
            TableKind::Nat => &[PreRouting, Input, Output, PostRouting],
            TableKind::Mangle => &[PreRouting, Input, Forward, Output, PostRouting],
            TableKind::Raw => &[PreRouting, Output],
            TableKind::Security => &[Input, Forward, Output],
        }
    }
}

/// The five netfilter IPv4 hooks, numbered as the kernel does (NF_INET_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    PreRouting = 0,
    Input = 1,
    Forward = 2,
    Output = 3,
    PostRouting = 4,
}

impl Hook {
    /// All hooks in kernel order.
    pub const ALL: [Hook; 5] = [
        Hook::PreRouting,
        Hook::Input,
        Hook::Forward,
        Hook::Output,
        Hook::PostRouting,
    ];

    /// The built-in chain name of this hook.
    pub fn chain_name(self) -> &'static str {
        match self {
            Hook::PreRouting => "PREROUTING",
            Hook::Input => "INPUT",
            Hook::Forward => "FORWARD",
            Hook::Output => "OUTPUT",
            Hook::PostRouting => "POSTROUTING",
        }
    }

    /// The hook's bit in a hook mask.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The hook whose built-in chain is called `name`.
    pub fn from_chain_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.chain_name() == name)
    }
}

/// Packet and byte counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub packets: u64,
    pub bytes: u64,
}

/// An interface name as given (`eth0`, `eth+` for a prefix; `+` alone matches any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Iface {
    /// The name as typed, including a trailing `+`; empty when not given.
    pub name: String,
    pub invert: bool,
}

impl Iface {
    /// True when the name ends in `+` (prefix match).
    pub fn is_wildcard(&self) -> bool {
        self.name.ends_with('+')
    }
    /// The bytes that must match: the name without a trailing `+`.
    pub fn prefix(&self) -> &str {
        self.name.strip_suffix('+').unwrap_or(&self.name)
    }
    /// True when the rule constrains the interface at all (kernel mask non-empty).
    pub fn is_set(&self) -> bool {
        !self.prefix().is_empty() || (!self.name.is_empty() && !self.is_wildcard())
    }
}

/// The generic IPv4 part of a rule (struct ipt_ip).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpSpec {
    pub src: Ipv4Addr,
    pub src_mask: Ipv4Addr,
    pub inv_src: bool,
    pub dst: Ipv4Addr,
    pub dst_mask: Ipv4Addr,
    pub inv_dst: bool,
    pub in_iface: Iface,
    pub out_iface: Iface,
    /// IP protocol number, 0 = any.
    pub proto: u16,
    pub inv_proto: bool,
    /// `-f`: match second and further fragments only.
    pub fragment: bool,
    pub inv_fragment: bool,
}

impl Default for IpSpec {
    fn default() -> Self {
        IpSpec {
            src: Ipv4Addr::UNSPECIFIED,
            src_mask: Ipv4Addr::UNSPECIFIED,
            inv_src: false,
            dst: Ipv4Addr::UNSPECIFIED,
            dst_mask: Ipv4Addr::UNSPECIFIED,
            inv_dst: false,
            in_iface: Iface::default(),
            out_iface: Iface::default(),
            proto: 0,
            inv_proto: false,
            fragment: false,
            inv_fragment: false,
        }
    }
}

/// What a rule does when it matches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// No `-j`: the rule only counts.
    None,
    Accept,
    Drop,
    Return,
    /// `-j CHAIN`: call a user chain.
    Jump(String),
    /// `-g CHAIN`: go to a user chain (no return here).
    Goto(String),
    /// An extension target (LOG, REJECT, DNAT, ...).
    Ext(TargetExt),
}

/// One rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub ip: IpSpec,
    pub matches: Vec<Match>,
    pub target: Target,
    pub counters: Counters,
}

impl Rule {
    /// Equality as iptables -D/-C compares rules: everything but the counters.
    pub fn same_as(&self, other: &Rule) -> bool {
        self.ip == other.ip && self.matches == other.matches && self.target == other.target
    }
}

/// The policy of a built-in chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    Accept,
    Drop,
}

impl Policy {
    /// The name iptables prints.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Accept => "ACCEPT",
            Policy::Drop => "DROP",
        }
    }
}

/// A chain: built-in (with a policy) or user-defined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// Built-in chains have a hook and a policy.
    pub hook: Option<Hook>,
    pub policy: Policy,
    /// Policy counters (built-in chains).
    pub counters: Counters,
    pub rules: Vec<Rule>,
}

impl Chain {
    /// A built-in chain with policy ACCEPT and zero counters.
    pub fn builtin(hook: Hook) -> Chain {
        Chain {
            name: hook.chain_name().to_string(),
            hook: Some(hook),
            policy: Policy::Accept,
            counters: Counters::default(),
            rules: Vec::new(),
        }
    }
    /// An empty user chain.
    pub fn user(name: &str) -> Chain {
        Chain {
            name: name.to_string(),
            hook: None,
            policy: Policy::Accept,
            counters: Counters::default(),
            rules: Vec::new(),
        }
    }
    /// True for a built-in chain.
    pub fn is_builtin(&self) -> bool {
        self.hook.is_some()
    }
}

/// A table: its built-in chains then its user chains. Committed tables keep libiptc's order
/// (built-ins by hook, then user chains sorted by name, see [`Table::canonicalize`]); while a
/// restore builds a table, new user chains are appended. Lookups by name go through an index
/// (verified on use; after renaming chains in place call [`Table::reindex`]).
#[derive(Clone, Debug)]
pub struct Table {
    pub kind: TableKind,
    pub chains: Vec<Chain>,
    index: ChainIndex,
    /// What the kernel's checks learnt about this table, so `ops` can check one rule
    /// command alone (empty in a clone: whoever edits `chains` directly starts without it).
    pub(crate) checked: crate::ops::CheckCache,
}

/// The name index of a table: open addressing over the names' hashes. A slot holds a tag
/// (bits of the hash) and the chain's position + 1 (0 = empty); names are compared with
/// `chains` itself, so the index holds no copy of them and cloning it is one memcpy.
#[derive(Clone, Debug, Default)]
struct ChainIndex {
    slots: Vec<(u32, u32)>,
    /// Chains indexed.
    len: usize,
}

/// What the index says about a name.
enum Lookup {
    Found(usize),
    /// No entry has the name's tag: absent, if the index covers every chain.
    Missing,
    /// An entry with the name's tag points at a chain of another name: `chains` was edited
    /// directly (or two names share a tag), so only a scan can answer.
    Stale,
}

fn name_hash(name: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = Fnv::default();
    h.write(name.as_bytes());
    h.finish()
}

impl ChainIndex {
    fn build(chains: &[Chain]) -> ChainIndex {
        ChainIndex::build_for(chains, chains.len())
    }

    /// [`ChainIndex::build`] with room for `room` chains in all.
    fn build_for(chains: &[Chain], room: usize) -> ChainIndex {
        let mut ix = ChainIndex {
            slots: vec![(0, 0); (room.max(chains.len()) * 2).next_power_of_two().max(16)],
            len: 0,
        };
        for (i, c) in chains.iter().enumerate() {
            ix.put(&c.name, i);
        }
        ix
    }

    /// [`ChainIndex::build`] from the names' hashes (`hashes[i]`: chain i's), for a caller
    /// that has them already.
    fn from_hashes(hashes: &[u64]) -> ChainIndex {
        let mut ix = ChainIndex {
            slots: vec![(0, 0); ChainIndex::size_for(hashes.len())],
            len: 0,
        };
        for (i, &h) in hashes.iter().enumerate() {
            ix.put_hash(h, i);
        }
        ix
    }

    /// The slots [`ChainIndex::from_hashes`] makes for `n` chains.
    fn size_for(n: usize) -> usize {
        (n * 2).next_power_of_two().max(16)
    }

    /// Slot number and tag of a hash for the current size.
    fn place(&self, h: u64) -> (usize, u32) {
        let bits = self.slots.len().trailing_zeros();
        // The multiply-rotate hash mixes best into its high bits: slot from the top, tag
        // from the middle.
        let slot = (h >> (64 - bits)) as usize;
        (slot, (h >> 16) as u32)
    }

    fn put(&mut self, name: &str, pos: usize) {
        self.put_hash(name_hash(name), pos);
    }

    fn put_hash(&mut self, h: u64, pos: usize) {
        let mask = self.slots.len() - 1;
        let (mut i, tag) = self.place(h);
        while self.slots[i].1 != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (tag, pos as u32 + 1);
        self.len += 1;
    }

    /// Adds chain `pos` of `chains` (already pushed there), growing at half full.
    fn insert(&mut self, chains: &[Chain], pos: usize) {
        if self.slots.is_empty() || (self.len + 1) * 2 > self.slots.len() {
            *self = ChainIndex::build(chains);
        } else {
            self.put(&chains[pos].name, pos);
        }
    }

    fn get(&self, chains: &[Chain], name: &str) -> Lookup {
        if self.slots.is_empty() {
            return Lookup::Missing;
        }
        let mask = self.slots.len() - 1;
        let (mut i, tag) = self.place(name_hash(name));
        let mut stale = false;
        loop {
            let (t, p) = self.slots[i];
            if p == 0 {
                return if stale {
                    Lookup::Stale
                } else {
                    Lookup::Missing
                };
            }
            if t == tag {
                let pos = p as usize - 1;
                match chains.get(pos) {
                    Some(c) if c.name == name => return Lookup::Found(pos),
                    _ => stale = true,
                }
            }
            i = (i + 1) & mask;
        }
    }
}

impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        self.kind == other.kind && self.chains == other.chains
    }
}

impl Eq for Table {}

impl Table {
    /// A fresh table as the kernel creates it: built-ins with ACCEPT policy, no rules.
    pub fn new(kind: TableKind) -> Table {
        let mut t = Table {
            kind,
            chains: kind.hooks().iter().map(|&h| Chain::builtin(h)).collect(),
            index: ChainIndex::default(),
            checked: Default::default(),
        };
        t.reindex();
        t
    }
    /// Rebuilds the name index (after editing `chains` directly).
    pub fn reindex(&mut self) {
        self.index = ChainIndex::build(&self.chains);
    }
    /// Puts the chains in libiptc's order (built-ins by hook, user chains by name) and reindexes.
    pub fn canonicalize(&mut self) {
        self.canonicalize_order();
    }
    /// [`Table::canonicalize`], telling how chains moved: `order[new] = old` position, or
    /// None when they were in order already.
    pub fn canonicalize_order(&mut self) -> Option<Vec<u32>> {
        // Sort keys read from each name once: comparing them needs no trip to the names
        // (scattered in memory), only equal keys compare the names themselves. The names'
        // hashes for the new index are taken in the same visit.
        let mut hashes = Vec::with_capacity(self.chains.len());
        let mut keys: Vec<(u128, u32)> = Vec::with_capacity(self.chains.len());
        for (i, c) in self.chains.iter().enumerate() {
            hashes.push(name_hash(&c.name));
            keys.push((order_key(c), i as u32));
        }
        let chains = &self.chains;
        let by_key = |a: &(u128, u32), b: &(u128, u32)| {
            a.0.cmp(&b.0)
                .then_with(|| chain_order(&chains[a.1 as usize], &chains[b.1 as usize]))
        };
        if keys.windows(2).all(|w| by_key(&w[0], &w[1]).is_le()) {
            self.index = ChainIndex::from_hashes(&hashes);
            return None;
        }
        // Names are unique in a table (and built-ins have distinct hooks): no ties, so
        // the unstable sort gives the one canonical order.
        keys.sort_unstable_by(by_key);
        let order: Vec<u32> = keys.into_iter().map(|(_, i)| i).collect();
        permute_in_place(&mut self.chains, &order);
        let moved: Vec<u64> = order.iter().map(|&o| hashes[o as usize]).collect();
        if self.index.slots.len() == ChainIndex::size_for(moved.len()) {
            // The same size: refill the slots already in memory (no new pages).
            self.index.slots.fill((0, 0));
            self.index.len = 0;
            for (i, &h) in moved.iter().enumerate() {
                self.index.put_hash(h, i);
            }
        } else {
            self.index = ChainIndex::from_hashes(&moved);
        }
        Some(order)
    }
    /// True when the chains are in libiptc's order and the name index covers them all (as
    /// every committed table is), so the table can be changed in place.
    pub fn is_canonical(&self) -> bool {
        self.index.len == self.chains.len()
            && self
                .chains
                .windows(2)
                .all(|w| chain_order(&w[0], &w[1]).is_le())
    }
    /// Makes room for `more` chains (added with [`Table::add_user_chain`]) at once: no
    /// regrowing of the chain array and the name index while they come.
    pub fn reserve_chains(&mut self, more: usize) {
        self.chains.reserve(more);
        if (self.index.len + more) * 2 > self.index.slots.len() {
            self.index = ChainIndex::build_for(&self.chains, self.chains.len() + more);
        }
    }
    /// Appends an empty user chain (the caller checked that the name is free).
    pub fn add_user_chain(&mut self, name: &str) {
        self.chains.push(Chain::user(name));
        self.index.insert(&self.chains, self.chains.len() - 1);
    }
    /// Removes the chain at `idx`.
    pub fn remove_chain(&mut self, idx: usize) -> Chain {
        let c = self.chains.remove(idx);
        self.reindex();
        c
    }
    /// The chain called `name`.
    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.chain_index(name).map(|i| &self.chains[i])
    }
    /// The chain called `name`, mutable.
    pub fn chain_mut(&mut self, name: &str) -> Option<&mut Chain> {
        self.chain_index(name).map(|i| &mut self.chains[i])
    }
    /// Index of the chain called `name`.
    pub fn chain_index(&self, name: &str) -> Option<usize> {
        match self.index.get(&self.chains, name) {
            Lookup::Found(i) => Some(i),
            // A miss is trusted while the index covers every chain; otherwise `chains` was
            // edited directly and a scan is the safe answer.
            Lookup::Missing if self.index.len == self.chains.len() => None,
            _ => self.chains.iter().position(|c| c.name == name),
        }
    }
    /// Starts loading the name index's slot for `name` into the cache (a hint, no effect
    /// on results): a restore calls it some lines before looking the name up, because in a
    /// big table each lookup of a new name is otherwise a cache miss on the index.
    pub fn prefetch_chain(&self, name: &str) {
        if let Some(slot) = self.index.slots.get(self.index.place(name_hash(name)).0) {
            crate::save::prefetch(slot);
        }
    }
    /// How many rules jump or go to `name` (the `(N references)` of iptables -L).
    pub fn references(&self, name: &str) -> usize {
        self.chains
            .iter()
            .flat_map(|c| c.rules.iter())
            .filter(|r| matches!(&r.target, Target::Jump(n) | Target::Goto(n) if n == name))
            .count()
    }
    /// Reference counts of every chain at once (for listings of big tables).
    pub fn all_references(&self) -> HashMap<&str, usize> {
        let mut m = HashMap::new();
        for r in self.chains.iter().flat_map(|c| c.rules.iter()) {
            if let Target::Jump(n) | Target::Goto(n) = &r.target {
                *m.entry(n.as_str()).or_insert(0) += 1;
            }
        }
        m
    }
}

/// A small fast hash for chain names, word at a time (multiply-rotate in the manner of
/// rustc's Fx hash; the index is rebuilt often and SipHash's DoS resistance buys nothing for
/// names the user typed). Kept under its old name `Fnv` for callers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fnv(u64);

impl Fnv {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::K);
    }
}

impl std::hash::Hasher for Fnv {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().unwrap()));
        }
        let r = chunks.remainder().len();
        if r != 0 {
            // The last bytes zero-padded to a word: the input's last eight bytes shifted
            // down when there are eight (no copy to a buffer), else byte by byte.
            let word = match bytes.len().checked_sub(8) {
                Some(at) => u64::from_le_bytes(bytes[at..].try_into().unwrap()) >> (8 * (8 - r)),
                None => bytes
                    .iter()
                    .rev()
                    .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
            };
            self.add(word);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

/// Builds [`Fnv`] hashers.
pub type BuildFnv = std::hash::BuildHasherDefault<Fnv>;

/// A key ordering chains as [`chain_order`] does wherever two keys differ: built-ins by
/// hook (below any user chain's key), user chains by the first 15 bytes of their name.
/// Equal keys say nothing: compare the chains then.
fn order_key(c: &Chain) -> u128 {
    match c.hook {
        Some(h) => h as u128,
        None => {
            // The name's first bytes, big-endian, zero-padded: bytewise order wherever
            // two keys differ (a shorter name pads with zeros, the lowest byte); the top
            // byte of 1 puts every user chain after the built-ins.
            let mut b = [0u8; 16];
            b[0] = 1;
            let n = c.name.len().min(15);
            b[1..=n].copy_from_slice(&c.name.as_bytes()[..n]);
            u128::from_be_bytes(b)
        }
    }
}

/// Reorders `v` so that `v[new]` is the old `v[order[new]]` (`order` a permutation of the
/// positions), by following its cycles with swaps: no second array.
fn permute_in_place<T>(v: &mut [T], order: &[u32]) {
    let mut done = vec![false; v.len()];
    for start in 0..v.len() {
        // Position k takes the element at order[k]; the one it holds moves on to there.
        let mut k = start;
        while !done[k] {
            done[k] = true;
            let src = order[k] as usize;
            if src == start {
                break;
            }
            v.swap(k, src);
            k = src;
        }
    }
}

/// libiptc's chain order: built-ins by hook first, then user chains by name (bytewise).
fn chain_order(a: &Chain, b: &Chain) -> std::cmp::Ordering {
    match (a.hook, b.hook) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.name.as_bytes().cmp(b.name.as_bytes()),
    }
}

/// All tables, newest first (the order of /proc/net/ip_tables_names and iptables-save).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub tables: Vec<Table>,
}

impl Ruleset {
    /// The table of kind `kind` if it was ever used.
    pub fn table(&self, kind: TableKind) -> Option<&Table> {
        self.tables.iter().find(|t| t.kind == kind)
    }
    /// The table of kind `kind`, creating it when absent, as the kernel does when a table
    /// module is loaded: the newest table goes FIRST (the kernel lists tables newest first in
    /// /proc/net/ip_tables_names, and iptables-save follows that order).
    pub fn table_mut(&mut self, kind: TableKind) -> &mut Table {
        if let Some(i) = self.tables.iter().position(|t| t.kind == kind) {
            &mut self.tables[i]
        } else {
            self.tables.insert(0, Table::new(kind));
            &mut self.tables[0]
        }
    }
    /// The names for /proc/net/ip_tables_names (newest first).
    pub fn table_names(&self) -> Vec<&'static str> {
        self.tables.iter().map(|t| t.kind.name()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_name_hash_pads_the_last_word_with_zeros() {
        // The hash of every length against words built from a zero-padded buffer.
        let text = "KUBE-SEP-ABCDEFGHIJKLMNOPQRSTUVWXYZ-é-0123456789";
        for end in (0..=text.len()).filter(|&e| text.is_char_boundary(e)) {
            let bytes = &text.as_bytes()[..end];
            let mut want = Fnv::default();
            for c in bytes.chunks(8) {
                let mut buf = [0u8; 8];
                buf[..c.len()].copy_from_slice(c);
                want.add(u64::from_le_bytes(buf));
            }
            assert_eq!(name_hash(&text[..end]), want.0, "{end}");
        }
    }

    #[test]
    fn test_permute_in_place_moves_as_the_order_says() {
        let mut x = 12345u32;
        for n in 0..60 {
            // A pseudo-random permutation of n positions.
            let mut order: Vec<u32> = (0..n).collect();
            for i in (1..n as usize).rev() {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                order.swap(i, (x >> 8) as usize % (i + 1));
            }
            let old: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
            let mut v = old.clone();
            permute_in_place(&mut v, &order);
            let want: Vec<String> = order.iter().map(|&o| old[o as usize].clone()).collect();
            assert_eq!(v, want, "{order:?}");
        }
    }

    #[test]
    fn test_canonical_order_is_bytewise_name_order() {
        // Names sharing long prefixes (beyond the 15 bytes the sort keys hold), prefixes of
        // each other, bytes above ASCII, and built-ins.
        let names = [
            "KUBE-SEP-CGHVVX7NBDPP32RB",
            "KUBE-SEP-CGHVVX7NBDPP32RA",
            "KUBE-SEP-CGHVVX7",
            "KUBE-SEP-CGHVVX",
            "KUBE-SEP-CGHVVX7N",
            "KUBE-SVC-A",
            "a",
            "A",
            "Z\u{e9}",
            "Z",
            "0",
            "-",
        ];
        let mut t = Table::new(TableKind::Nat);
        for n in names {
            t.add_user_chain(n);
        }
        let order = t.canonicalize_order().expect("not in order before");
        let got: Vec<&str> = t.chains.iter().map(|c| c.name.as_str()).collect();
        let mut want: Vec<&str> = names.to_vec();
        want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let builtins = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];
        assert_eq!(got[..4], builtins);
        assert_eq!(got[4..], want[..]);
        // order[new] = old position; the index follows the chains.
        for (new, &old) in order.iter().enumerate() {
            let old_name = if (old as usize) < 4 {
                builtins[old as usize]
            } else {
                names[old as usize - 4]
            };
            assert_eq!(t.chains[new].name, old_name);
            assert_eq!(t.chain_index(old_name), Some(new));
        }
        assert!(t.canonicalize_order().is_none());
    }
}
