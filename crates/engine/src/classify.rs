//! The rule classifier of long chains: a cut tree over the source and destination address
//! that gives, for a packet, the ascending list of the chain's rules whose IP header part
//! (`-s`/`-d` under their masks) can match it. The walk visits only those, in order, so the
//! first match, the counters, the rule path and every stateful match's side effects are the
//! ones of the linear walk: a skipped rule is one whose header test would have failed, and
//! the kernel runs a rule's matches only after its header test passed (ipt_do_table calls
//! ip_packet_match first).
//!
//! Built at compile time for chains of at least [`ClassifyOpts::min_rules`] rules. Each tree
//! node cuts one address field (source or destination) into `2^b` equal aligned pieces; a
//! rule goes to every piece its prefix overlaps (inverted or non-prefix masks overlap them
//! all). Cutting stops at [`LEAF_RULES`] rules, when a cut no longer separates rules, or when
//! the copies would exceed a memory budget; a leaf lists rule indexes and always ends with
//! the chain's tail (its policy or implicit RETURN), which every packet reaches.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// How tables are compiled.
#[derive(Clone, Copy, Debug)]
pub struct ClassifyOpts {
    /// Build classifiers at all (false: every chain is walked rule by rule).
    pub enabled: bool,
    /// Chains with fewer rules are walked rule by rule.
    pub min_rules: usize,
}

impl Default for ClassifyOpts {
    fn default() -> Self {
        ClassifyOpts {
            enabled: !LINEAR.load(Ordering::Relaxed),
            min_rules: 32,
        }
    }
}

static LINEAR: AtomicBool = AtomicBool::new(false);

/// Makes tables compiled from now on (in this process) walk every chain rule by rule, or
/// go back to classifiers. For measuring the classifier against the linear walk (`nfrs bench`);
/// both give the same results.
pub fn set_linear(on: bool) {
    LINEAR.store(on, Ordering::Relaxed);
}

/// Rules in a leaf below which cutting stops.
pub const LEAF_RULES: usize = 6;
/// Most bits one cut takes (at most 256 children a node).
const MAX_BITS: u32 = 8;
/// A cut may at most make this many times the node's rules in copies (plus its children).
const SPACE_FACTOR: usize = 4;
/// Deepest node.
const MAX_DEPTH: u32 = 24;

/// One tree node, 8 bytes (a cache line holds 8 siblings): a cut (`mask != 0`) or a leaf
/// (`mask == 0`).
#[derive(Clone, Copy, Debug, Default)]
struct Node {
    /// Cut: first child node. Leaf: first entry in `cands`.
    first: u32,
    /// Bit 0: 0 source address, 1 destination address; [`INLINE`]: the children are lists.
    field: u8,
    /// The piece is `(addr >> shift) & mask`.
    shift: u8,
    /// `2^bits - 1` of a cut of `bits` bits (at most [`MAX_BITS`]); 0 for a leaf.
    mask: u8,
}

/// A cut whose children are leaves with lists of at most [`LINE_CANDS`] entries: child `c`'s
/// list is the line at `first + c * LINE_CANDS` in `cands` (no leaf nodes).
const INLINE: u8 = 0x80;

/// Candidates a cache line holds.
const LINE_CANDS: usize = 4;

/// Four candidates on one 64-byte cache line, so that a short list placed inside one line
/// costs one miss at most.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Line([Cand; LINE_CANDS]);

/// One cut tree.
#[derive(Clone, Debug)]
struct Tree {
    nodes: Vec<Node>,
    /// List entries used (gaps left out).
    entries: usize,
    /// Leaves' lists, one after the other, each ending with the chain's tail; entry `pos` is
    /// `cands[pos / 4].0[pos % 4]`. Identical lists are stored once; a list of at most four
    /// entries never crosses a line (the gap before it is filled with tails, never read).
    cands: Vec<Line>,
}

/// A rule in a leaf's list, with its address and protocol tests (those of the kernel's
/// ip_packet_match): a candidate failing them is passed over without reading the rule itself.
/// 16 bytes, so a leaf's list spans few cache lines: masks are kept as prefix lengths; a
/// rule whose mask is not a prefix (`-s 10.0.0.1/255.0.255.0`) keeps no test on that field
/// (it always passes here and the rule's own `IpMatch` decides, as for every visited rule).
#[derive(Clone, Copy, Debug)]
pub struct Cand {
    /// Rule index in the table.
    pub rule: u32,
    src: u32,
    dst: u32,
    /// The masks as `32 - prefix length` (0..=32): the address bits below the prefix.
    sshift: u8,
    dshift: u8,
    proto: u8,
    /// INV_SRC | INV_DST | ANY_PROTO | INV_PROTO.
    flags: u8,
}

const INV_SRC: u8 = 1;
const INV_DST: u8 = 2;
const ANY_PROTO: u8 = 4;
const INV_PROTO: u8 = 8;

/// The mask of a prefix length (0..=32), without a branch.
#[inline]
fn prefix_mask(len: u8) -> u32 {
    (u64::MAX << (32 - u32::from(len))) as u32
}

/// Whether `addr` lies in the prefix `net` (host bits zero) whose host bits are the low
/// `shift` (0..=32): the bits above them are equal. Shifted as a u64, so that 32 (a /0)
/// leaves nothing to compare.
#[inline]
fn prefix_eq(addr: u32, net: u32, shift: u8) -> bool {
    u64::from(addr ^ net) >> shift == 0
}

/// (prefix length, address under the mask, inverted) of one address test; a mask that is not
/// a prefix gives a test every address passes (length 0, not inverted).
fn compact_field(addr: u32, mask: u32, invert: bool) -> (u8, u32, bool) {
    if mask.leading_ones() + mask.trailing_zeros() == 32 {
        (mask.leading_ones() as u8, addr & mask, invert)
    } else {
        (0, 0, false)
    }
}

impl Cand {
    /// Rule `rule` testing `src`/`dst` under their masks (`!` when the flag is set) and
    /// protocol `proto` (None: any; the flag: `!`).
    pub fn new(
        rule: u32,
        (src, smsk, inv_src): (u32, u32, bool),
        (dst, dmsk, inv_dst): (u32, u32, bool),
        proto: Option<(u8, bool)>,
    ) -> Cand {
        let (slen, src, inv_src) = compact_field(src, smsk, inv_src);
        let (dlen, dst, inv_dst) = compact_field(dst, dmsk, inv_dst);
        let mut flags = 0;
        if inv_src {
            flags |= INV_SRC;
        }
        if inv_dst {
            flags |= INV_DST;
        }
        match proto {
            None => flags |= ANY_PROTO,
            Some((_, true)) => flags |= INV_PROTO,
            Some(_) => {}
        }
        Cand {
            rule,
            src,
            dst,
            sshift: 32 - slen,
            dshift: 32 - dlen,
            proto: proto.map_or(0, |p| p.0),
            flags,
        }
    }

    /// A rule every packet passes (the chain's tail).
    pub fn always(rule: u32) -> Cand {
        Cand::new(rule, (0, 0, false), (0, 0, false), None)
    }

    /// Kernel rule (ip_packet_match, its address and protocol part): false when the rule's
    /// header test fails for this packet (true may still fail there for a mask that is not a
    /// prefix; the walk checks the rule itself).
    #[inline]
    pub fn may_match(&self, src: u32, dst: u32, proto: u8) -> bool {
        (prefix_eq(src, self.src, self.sshift) ^ (self.flags & INV_SRC != 0))
            && (prefix_eq(dst, self.dst, self.dshift) ^ (self.flags & INV_DST != 0))
            && (self.flags & ANY_PROTO != 0
                || ((proto == self.proto) ^ (self.flags & INV_PROTO != 0)))
    }

    /// The address ranges this rule's test can pass: `(lo, hi)` per field.
    fn ranges(&self) -> ([u32; 2], [u32; 2]) {
        let s = RuleRange::field(
            self.src,
            prefix_mask(32 - self.sshift),
            self.flags & INV_SRC != 0,
        );
        let d = RuleRange::field(
            self.dst,
            prefix_mask(32 - self.dshift),
            self.flags & INV_DST != 0,
        );
        ([s.0, d.0], [s.1, d.1])
    }
}

/// The classifier of one chain: up to [`MAX_PARTS`] trees, each over a part of the chain's
/// rules (destination-specific, source-specific, neither), so that a rule with a wildcard
/// field is not copied into every piece of that field. A packet's candidates are the merge
/// of its leaves in the trees, in ascending order.
#[derive(Clone, Debug)]
pub struct ChainIndex {
    parts: Vec<Tree>,
    /// The chain's tail rule (ending every list).
    tail: u32,
}

/// Most trees a chain has.
pub const MAX_PARTS: usize = 3;

/// One rule as the builder sees it: its header test and the address ranges it can match.
#[derive(Clone, Copy, Debug)]
pub struct RuleRange {
    /// The rule and its test.
    pub head: Cand,
    /// Smallest and largest source and destination address the header part can match
    /// (`[src, dst]`), or the whole space.
    pub lo: [u32; 2],
    /// See `lo`.
    pub hi: [u32; 2],
}

impl RuleRange {
    /// The ranges of `head`'s test.
    pub fn of(head: Cand) -> RuleRange {
        let (lo, hi) = head.ranges();
        RuleRange { head, lo, hi }
    }

    /// The range of `addr` under `mask` (the kernel compares `packet & mask == addr`): a
    /// prefix when the mask's ones are contiguous from the top and not inverted, else all.
    pub fn field(addr: u32, mask: u32, invert: bool) -> (u32, u32) {
        if invert || mask.leading_ones() + mask.trailing_zeros() != 32 {
            (0, u32::MAX)
        } else {
            (addr & mask, (addr & mask) | !mask)
        }
    }
}

/// The region of a node: per field, the aligned block `[base, base + 2^(32-plen))`.
#[derive(Clone, Copy)]
struct Region {
    base: [u32; 2],
    plen: [u32; 2],
}

impl Region {
    fn hi(&self, f: usize) -> u32 {
        // The host bits of a /plen prefix; a /32 has none (a shift by 32 would overflow).
        self.base[f] | u32::MAX.checked_shr(self.plen[f]).unwrap_or(0)
    }
}

struct Builder<'a> {
    rules: &'a [RuleRange],
    tail: u32,
    nodes: Vec<Node>,
    cands: Vec<Cand>,
    /// Entries left for copies before every further node becomes a leaf.
    budget: usize,
    /// Where each distinct list (rule positions, tail left out) starts in `cands`.
    lists: HashMap<Vec<u32>, u32>,
    /// Entries in lists (gaps left out).
    entries: usize,
}

impl ChainIndex {
    /// Builds the classifier of a chain whose rules are `rules` (ascending) and whose tail
    /// rule is `tail`.
    pub fn build(rules: &[RuleRange], tail: u32) -> ChainIndex {
        // Bits of a field a rule fixes (32 for a single address, 0 for any).
        let fixed = |r: &RuleRange, f: usize| (r.hi[f] - r.lo[f]).leading_zeros();
        let mut groups: [Vec<RuleRange>; MAX_PARTS] = Default::default();
        for r in rules {
            let (s, d) = (fixed(r, 0), fixed(r, 1));
            let g = if s == 0 && d == 0 {
                2
            } else if d >= s {
                0
            } else {
                1
            };
            groups[g].push(*r);
        }
        let parts = groups
            .iter()
            .filter(|g| !g.is_empty())
            .map(|g| Tree::build(g, tail))
            .collect();
        ChainIndex { parts, tail }
    }

    /// How many trees (1 to [`MAX_PARTS`]).
    #[inline]
    pub fn parts(&self) -> usize {
        self.parts.len()
    }

    /// Where the list of tree `part` for a packet from `src` to `dst` starts.
    #[inline]
    pub fn leaf(&self, part: usize, src: u32, dst: u32) -> u32 {
        self.parts[part].leaf(src, dst)
    }

    /// The candidate at `pos` of tree `part` (see [`ChainIndex::leaf`]); every list ends
    /// with the chain's tail.
    #[inline]
    pub fn cand(&self, part: usize, pos: u32) -> &Cand {
        self.parts[part].cand(pos)
    }

    /// Per tree, for a packet from `src` to `dst`: the nodes read below the root (an inline
    /// cut's list counts as none), the entries of its list (tail included), and the tree's
    /// bytes (nodes, lists). For sizing and tuning (`classify_stats`).
    pub fn path(&self, src: u32, dst: u32) -> Vec<(usize, usize, usize, usize)> {
        self.parts
            .iter()
            .map(|t| {
                let (mut n, mut reads) = (t.nodes[0], 0);
                while n.mask != 0 {
                    if n.field & INLINE == 0 {
                        reads += 1;
                    }
                    n = t.step(n, src, dst);
                }
                let mut len = 1;
                while t.cand(n.first + len as u32 - 1).rule != self.tail {
                    len += 1;
                }
                (
                    reads,
                    len,
                    t.nodes.len() * std::mem::size_of::<Node>(),
                    t.cands.len() * std::mem::size_of::<Line>(),
                )
            })
            .collect()
    }

    /// Tree nodes and list entries (for tests and sizing).
    pub fn size(&self) -> (usize, usize) {
        self.parts
            .iter()
            .fold((0, 0), |(n, c), t| (n + t.nodes.len(), c + t.entries))
    }
}

impl Tree {
    fn build(rules: &[RuleRange], tail: u32) -> Tree {
        let mut b = Builder {
            rules,
            tail,
            nodes: vec![Node::default()],
            cands: Vec::new(),
            budget: rules.len() * 16 + 4096,
            lists: HashMap::new(),
            entries: 0,
        };
        let all: Vec<u32> = (0..rules.len() as u32).collect();
        let region = Region {
            base: [0, 0],
            plen: [0, 0],
        };
        b.node(0, &all, region, 0);
        let filler = Cand::always(tail);
        let cands = b
            .cands
            .chunks(LINE_CANDS)
            .map(|c| {
                let mut l = Line([filler; LINE_CANDS]);
                l.0[..c.len()].copy_from_slice(c);
                l
            })
            .collect();
        Tree {
            nodes: b.nodes,
            entries: b.entries,
            cands,
        }
    }

    /// Where the list for a packet from `src` to `dst` starts in `cands`.
    #[inline]
    fn leaf(&self, src: u32, dst: u32) -> u32 {
        let mut n = self.nodes[0];
        while n.mask != 0 {
            let v = if n.field & 1 == 0 { src } else { dst };
            let piece = (v >> n.shift) & u32::from(n.mask);
            if n.field & INLINE != 0 {
                return n.first + piece * LINE_CANDS as u32;
            }
            n = self.nodes[(n.first + piece) as usize];
        }
        n.first
    }

    /// One level down from cut `n`: the child node, or for an [`INLINE`] cut a leaf node
    /// standing for the child's list.
    #[inline]
    fn step(&self, n: Node, src: u32, dst: u32) -> Node {
        let v = if n.field & 1 == 0 { src } else { dst };
        let piece = (v >> n.shift) & u32::from(n.mask);
        if n.field & INLINE != 0 {
            Node {
                first: n.first + piece * LINE_CANDS as u32,
                ..Node::default()
            }
        } else {
            self.nodes[(n.first + piece) as usize]
        }
    }

    /// List entry `pos`.
    #[inline]
    fn cand(&self, pos: u32) -> &Cand {
        &self.cands[(pos / LINE_CANDS as u32) as usize].0[(pos % LINE_CANDS as u32) as usize]
    }
}

impl Builder<'_> {
    /// Fills node `at` for the rules `list` (positions into `rules`, ascending) in `region`.
    fn node(&mut self, at: usize, list: &[u32], region: Region, depth: u32) {
        let cut = if list.len() <= LEAF_RULES || depth >= MAX_DEPTH {
            None
        } else {
            self.choose(list, region)
        };
        let Some((f, bits)) = cut else {
            // Many pieces hold the same rules (the wildcards, and no rule at all): one list
            // for all of them, which also keeps the common lists in cache.
            let first = match self.lists.get(list) {
                Some(&s) => s,
                None => {
                    let len = list.len() + 1;
                    let off = self.cands.len() % LINE_CANDS;
                    if len <= LINE_CANDS && off + len > LINE_CANDS {
                        let gap = LINE_CANDS - off;
                        self.cands.extend((0..gap).map(|_| Cand::always(self.tail)));
                    }
                    let s = self.cands.len() as u32;
                    self.cands
                        .extend(list.iter().map(|&k| self.rules[k as usize].head));
                    self.cands.push(Cand::always(self.tail));
                    self.entries += len;
                    self.lists.insert(list.to_vec(), s);
                    s
                }
            };
            self.nodes[at] = Node {
                first,
                ..Node::default()
            };
            return;
        };
        let shift = 32 - region.plen[f] - bits;
        let n = 1usize << bits;
        let children: Vec<(Vec<u32>, Region)> = (0..n)
            .map(|c| {
                let mut r = region;
                r.plen[f] += bits;
                r.base[f] = region.base[f] | ((c as u32) << shift);
                let (lo, hi) = (r.base[f], r.hi(f));
                let child = list
                    .iter()
                    .copied()
                    .filter(|&k| {
                        let rr = &self.rules[k as usize];
                        rr.lo[f] <= hi && rr.hi[f] >= lo
                    })
                    .collect();
                (child, r)
            })
            .collect();
        let mask = ((1u32 << bits) - 1) as u8;
        // Every child a leaf whose list (tail included) fits a line: the lists take the
        // children's place, a line each, and the walk reads no leaf node. Only when the
        // lines would be at least half full (empty pieces share one list otherwise), so the
        // classifier does not outgrow the caches.
        let used: usize = children.iter().map(|(c, _)| c.len() + 1).sum();
        if children.iter().all(|(c, _)| c.len() < LINE_CANDS) && 2 * used >= n * LINE_CANDS {
            let tail = Cand::always(self.tail);
            let off = self.cands.len() % LINE_CANDS;
            if off != 0 {
                self.cands.extend((off..LINE_CANDS).map(|_| tail));
            }
            let first = self.cands.len() as u32;
            for (c, _) in &children {
                self.budget = self.budget.saturating_sub(c.len());
                self.entries += c.len() + 1;
                self.cands
                    .extend(c.iter().map(|&k| self.rules[k as usize].head));
                self.cands.extend((c.len()..LINE_CANDS).map(|_| tail));
            }
            self.nodes[at] = Node {
                first,
                field: f as u8 | INLINE,
                shift: shift as u8,
                mask,
            };
            return;
        }
        let first = self.nodes.len() as u32;
        self.nodes[at] = Node {
            first,
            field: f as u8,
            shift: shift as u8,
            mask,
        };
        self.nodes.resize(self.nodes.len() + n, Node::default());
        for (c, (child, r)) in children.iter().enumerate() {
            self.budget = self.budget.saturating_sub(child.len());
            self.node(first as usize + c, child, *r, depth + 1);
        }
    }

    /// The best cut of `region` for `list`: the field and bit count giving the smallest
    /// largest child within the space factor; None when no cut separates the rules.
    fn choose(&self, list: &[u32], region: Region) -> Option<(usize, u32)> {
        let n = list.len();
        if self.budget < n * 2 {
            return None;
        }
        // (largest child, copies a child, field, bits)
        let mut best: Option<(usize, f64, usize, u32)> = None;
        let mut counts = vec![0i64; (1 << MAX_BITS) + 1];
        for f in 0..2 {
            let room = 32 - region.plen[f];
            for bits in 1..=MAX_BITS.min(room) {
                let shift = 32 - region.plen[f] - bits;
                let pieces = 1usize << bits;
                counts[..=pieces].iter_mut().for_each(|c| *c = 0);
                let (rlo, rhi) = (region.base[f], region.hi(f));
                let mut copies = 0usize;
                for &k in list {
                    let rr = &self.rules[k as usize];
                    let lo = rr.lo[f].max(rlo);
                    let hi = rr.hi[f].min(rhi);
                    let a = ((lo - rlo) >> shift) as usize;
                    let b = ((hi - rlo) >> shift) as usize;
                    counts[a] += 1;
                    counts[b + 1] -= 1;
                    copies += b - a + 1;
                }
                if copies + pieces > SPACE_FACTOR * n || copies > self.budget {
                    break;
                }
                // No piece holds fewer rules than the node: nothing gained.
                if copies >= n * pieces {
                    continue;
                }
                let mut run = 0i64;
                let mut most = 0usize;
                for c in &counts[..pieces] {
                    run += c;
                    most = most.max(run as usize);
                }
                let avg = copies as f64 / pieces as f64;
                let better = match best {
                    None => true,
                    Some((m, a, _, _)) => most < m || (most == m && avg < a),
                };
                if better {
                    best = Some((most, avg, f, bits));
                }
            }
        }
        best.map(|(_, _, f, bits)| (f, bits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 16-byte candidate keeps the kernel's address test for prefix masks (all lengths,
    /// `!` both ways) and lets every address pass for a mask that is not a prefix.
    #[test]
    fn compact_candidate_tests_like_the_mask() {
        assert_eq!(std::mem::size_of::<Cand>(), 16);
        assert_eq!(std::mem::size_of::<Node>(), 8);
        assert_eq!(std::mem::size_of::<Line>(), 64);
        let addrs = [
            0u32,
            1,
            0x0a00_0001,
            0x0a00_00ff,
            0x0aff_0001,
            0xc0a8_0101,
            u32::MAX,
        ];
        for len in 0..=32u32 {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            for inv in [false, true] {
                for &a in &addrs {
                    let c = Cand::new(0, (a, mask, inv), (0, 0, false), None);
                    for &v in &addrs {
                        let kernel = ((v & mask) == (a & mask)) ^ inv;
                        assert_eq!(
                            c.may_match(v, 0, 6),
                            kernel,
                            "/{len} inv={inv} {a:#x} {v:#x}"
                        );
                        let c = Cand::new(0, (0, 0, false), (a, mask, inv), Some((6, false)));
                        assert_eq!(c.may_match(0, v, 6), kernel);
                        assert!(!c.may_match(0, v, 17));
                    }
                }
            }
        }
        for inv in [false, true] {
            let c = Cand::new(0, (0x0a00_0001, 0xff00_ff00, inv), (0, 0, false), None);
            assert!(c.may_match(0x0b00_0001, 0, 1) && c.may_match(0x0a00_0001, 0, 1));
            assert_eq!(c.ranges(), ([0, 0], [u32::MAX, u32::MAX]));
        }
    }

    /// A rule for the prefixes `s` and `d` given as (first, last) address.
    fn range(idx: u32, s: (u32, u32), d: (u32, u32)) -> RuleRange {
        let r = RuleRange::of(Cand::new(
            idx,
            (s.0, !(s.1 - s.0), false),
            (d.0, !(d.1 - d.0), false),
            None,
        ));
        assert_eq!((r.lo, r.hi), ([s.0, d.0], [s.1, d.1]));
        r
    }

    /// The merged candidates of every tree, tail included.
    fn leaf_list(ix: &ChainIndex, src: u32, dst: u32) -> Vec<u32> {
        let mut out = Vec::new();
        for part in 0..ix.parts() {
            let mut p = ix.leaf(part, src, dst);
            loop {
                let c = ix.cand(part, p).rule;
                if c == 1000 {
                    break;
                }
                out.push(c);
                p += 1;
            }
        }
        out.sort();
        out.push(1000);
        out
    }

    #[test]
    fn field_ranges() {
        assert_eq!(
            RuleRange::field(0x0a00_0001, 0xffff_ff00, false),
            (0x0a00_0000, 0x0a00_00ff)
        );
        assert_eq!(
            RuleRange::field(0x0a00_0001, u32::MAX, false),
            (0x0a00_0001, 0x0a00_0001)
        );
        assert_eq!(RuleRange::field(0, 0, false), (0, u32::MAX));
        // Inverted, or a mask with holes: any address may match.
        assert_eq!(RuleRange::field(0x0a00_0001, u32::MAX, true), (0, u32::MAX));
        assert_eq!(
            RuleRange::field(0x0a00_0001, 0xff00_ff00, false),
            (0, u32::MAX)
        );
    }

    #[test]
    fn leaves_hold_every_overlapping_rule_in_order() {
        // 200 /32 destinations, a few wildcards and a /8 source in between.
        let mut rules = Vec::new();
        for i in 0..200u32 {
            let d = 0x0a00_0000 + i * 7;
            rules.push(range(i, (0, u32::MAX), (d, d)));
        }
        rules.push(range(200, (0x0b00_0000, 0x0bff_ffff), (0, u32::MAX)));
        rules.push(range(201, (0, u32::MAX), (0, u32::MAX)));
        let ix = ChainIndex::build(&rules, 1000);
        let (nodes, cands) = ix.size();
        assert!(
            nodes > 1 && cands < 202 * 4,
            "{nodes} nodes, {cands} entries"
        );
        for (src, dst) in [
            (0x0b01_0203, 0x0a00_0000 + 14),
            (0x0c00_0000, 0x0a00_0000 + 14),
            (0x0c00_0000, 0x0a00_0000 + 15),
            (0x0b00_0000, 0),
        ] {
            let want: Vec<u32> = rules
                .iter()
                .filter(|r| {
                    (r.lo[0]..=r.hi[0]).contains(&src) && (r.lo[1]..=r.hi[1]).contains(&dst)
                })
                .map(|r| r.head.rule)
                .collect();
            let got = leaf_list(&ix, src, dst);
            assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
            assert!(
                want.iter().all(|w| got.contains(w)),
                "{src:x} {dst:x}: {got:?} lacks some of {want:?}"
            );
            assert!(got.len() <= LEAF_RULES + 4, "{got:?}");
        }
    }

    #[test]
    fn identical_rules_make_one_leaf() {
        let rules: Vec<RuleRange> = (0..100).map(|i| range(i, (5, 5), (0, u32::MAX))).collect();
        let ix = ChainIndex::build(&rules, 1000);
        assert_eq!(leaf_list(&ix, 5, 9).len(), 101);
        assert_eq!(leaf_list(&ix, 6, 9), [1000]);
    }
}
