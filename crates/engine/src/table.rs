//! Compiled tables, flat as the kernel's `ipt_do_table` walks them: one rule array per table,
//! each chain a run of rules ending with its policy (built-in chains) or an implicit RETURN
//! (user chains); jumps and gotos are indexes into the array; a hook starts at its chain's
//! first rule. Counters are written back for `iptables-save -c`.
//! The chains sit in the array in walk order ([`chain_order`]: the built-in chains, then
//! depth first the chains they call), so a chain called from one place sits with its callees;
//! in a big table a jump asks the CPU for the callee's run of records at once ([`WARM_SHIFT`]).
//! Each rule is split in two: a 64-byte hot record ([`Hot`], one cache line, in rule order,
//! holding the header test, a tcp/udp port range test or a lone statistic match, the target
//! kind (DNAT's range index), the chain's classifier and the counters) and the cold [`CRule`]
//! (interfaces, matches, extension target), which the walk reads only when the hot record
//! cannot decide alone.
//! Chains of 32 rules or more get a classifier (`crate::classify`): the walk goes from one
//! rule whose address/protocol test can pass to the next, skipping only rules the kernel
//! would have passed over at their header test, so results are those of the linear walk.

use crate::classify::{Cand, ChainIndex, ClassifyOpts, RuleRange, MAX_PARTS};
use crate::matches::{
    compile_match, eval_match, CompileCtx, CompileError, EvalState, HostInfo, MatchEnv,
};
use crate::nat::{NatKind, NatRange, NatRequest};
use crate::pkt::{IfName, L4Kind, PktCtx};
use crate::targets::{compile_target, run_target, Effects, TVerdict, TargetCtx, TargetEnv};
use nfrs_conntrack::table::prefetch;
use nfrs_rules::ext::{Match, TargetExt};
use nfrs_rules::{Counters, Hook, Iface, Policy, Rule, Table, TableKind, Target};

/// The generic IP part of a rule, ready for the packet path (struct ipt_ip).
#[derive(Clone, Debug)]
pub struct IpMatch {
    src: u32,
    smsk: u32,
    inv_src: bool,
    dst: u32,
    dmsk: u32,
    inv_dst: bool,
    in_iface: IfaceMatch,
    out_iface: IfaceMatch,
    proto: u8,
    any_proto: bool,
    inv_proto: bool,
    frag: bool,
    inv_frag: bool,
}

#[derive(Clone, Debug)]
struct IfaceMatch {
    /// None: not given.
    name: Option<IfName>,
    wildcard: bool,
    invert: bool,
}

impl IfaceMatch {
    fn new(i: &Iface) -> IfaceMatch {
        IfaceMatch {
            name: if i.name.is_empty() {
                None
            } else {
                Some(IfName::new(i.prefix()))
            },
            wildcard: i.is_wildcard(),
            invert: i.invert,
        }
    }

    /// Kernel rule (ifname_compare_aligned): exact name, or the bytes before `+`; `!` inverts.
    fn ok(&self, dev: &IfName) -> bool {
        let Some(n) = &self.name else { return true };
        let hit = if self.wildcard {
            dev.as_bytes().starts_with(n.as_bytes())
        } else {
            dev.as_bytes() == n.as_bytes()
        };
        hit ^ self.invert
    }
}

impl IpMatch {
    /// The kernel's `unconditional()`: the generic part is all zero (no address, interface,
    /// protocol or fragment test).
    fn unconditional(&self) -> bool {
        self.src == 0
            && self.smsk == 0
            && !self.inv_src
            && self.dst == 0
            && self.dmsk == 0
            && !self.inv_dst
            && self.in_iface.name.is_none()
            && !self.in_iface.invert
            && self.out_iface.name.is_none()
            && !self.out_iface.invert
            && self.proto == 0
            && !self.inv_proto
            && !self.frag
            && !self.inv_frag
    }

    fn new(ip: &nfrs_rules::IpSpec) -> IpMatch {
        let smsk = u32::from(ip.src_mask);
        let dmsk = u32::from(ip.dst_mask);
        IpMatch {
            src: u32::from(ip.src) & smsk,
            smsk,
            inv_src: ip.inv_src,
            dst: u32::from(ip.dst) & dmsk,
            dmsk,
            inv_dst: ip.inv_dst,
            in_iface: IfaceMatch::new(&ip.in_iface),
            out_iface: IfaceMatch::new(&ip.out_iface),
            proto: ip.proto as u8,
            any_proto: ip.proto == 0,
            inv_proto: ip.inv_proto,
            frag: ip.fragment,
            inv_frag: ip.inv_fragment,
        }
    }

    /// The device part of [`IpMatch::ok`] alone.
    #[inline]
    fn ifaces_ok(&self, p: &PktCtx) -> bool {
        self.in_iface.ok(&p.indev) && self.out_iface.ok(&p.outdev)
    }

    /// Whether the rule tests a device at all.
    fn has_iface(&self) -> bool {
        self.in_iface.name.is_some() || self.out_iface.name.is_some()
    }

    /// Kernel rule (ip_packet_match): addresses under masks, devices, protocol (0 = any),
    /// `-f` = later fragments only; each inverted by its `!`.
    #[inline]
    pub fn ok(&self, p: &PktCtx) -> bool {
        if ((p.src() & self.smsk) != self.src) ^ self.inv_src {
            return false;
        }
        if ((p.dst() & self.dmsk) != self.dst) ^ self.inv_dst {
            return false;
        }
        if !self.in_iface.ok(&p.indev) || !self.out_iface.ok(&p.outdev) {
            return false;
        }
        if !self.any_proto && ((p.d.protocol != self.proto) ^ self.inv_proto) {
            return false;
        }
        if self.frag && ((p.frag_off() == 0) ^ self.inv_frag) {
            return false;
        }
        true
    }
}

/// What a rule does, with chains resolved to rule indexes.
#[derive(Clone, Debug)]
pub enum CTarget {
    /// Count only.
    None,
    /// ACCEPT (also a built-in chain's policy).
    Accept,
    /// DROP.
    Drop,
    /// RETURN (also the implicit end of a user chain).
    Return,
    /// Call the chain starting at this index.
    Jump(u32),
    /// Go to the chain starting at this index.
    Goto(u32),
    /// An extension target with its state slot.
    Ext(TargetExt, u32),
}

/// The hot part of a rule, one cache line: everything the walk needs for a rule whose header
/// or port test fails, and for a rule with no match beyond comments and one tcp/udp port
/// test whose target is standard (ACCEPT, DROP, RETURN, a jump or goto, none).
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(64))]
struct Hot {
    /// Addresses under their masks (struct ipt_ip).
    src: u32,
    smsk: u32,
    dst: u32,
    dmsk: u32,
    /// Port ranges of the rule's first non-comment match (with [`PORTS_TCP`]/[`PORTS_UDP`]).
    sport: [u16; 2],
    dport: [u16; 2],
    /// The rule's counters.
    packets: u64,
    bytes: u64,
    /// Jump or goto: the chain's first rule.
    jump: u32,
    /// The classifier of the rule's chain (index into `CTable::index`), `u32::MAX` for none.
    chain_ix: u32,
    /// The rule index of the chain's tail; in a classified chain, the tail the classifier was
    /// built for (rules appended since sit after it, walked one by one, see
    /// [`CTable::insert_rule`]).
    chain_end: u32,
    /// The matches to run: `CTable::mats[mstart..mstart + mlen]`.
    mstart: u32,
    /// `H_*` bits.
    flags: u32,
    mlen: u16,
    proto: u8,
    /// `K_*`: the target.
    kind: u8,
}

const H_INV_SRC: u32 = 1;
const H_INV_DST: u32 = 1 << 1;
const H_ANY_PROTO: u32 = 1 << 2;
const H_INV_PROTO: u32 = 1 << 3;
const H_FRAG: u32 = 1 << 4;
const H_INV_FRAG: u32 = 1 << 5;
/// A device test (`-i`/`-o`): the cold `IpMatch` decides it.
const H_IFACE: u32 = 1 << 6;
/// Matches to run (beyond comments, which always match and change nothing).
const H_MATCHES: u32 = 1 << 7;
// (`mlen` is their number; the flag keeps the test on the first line of the record.)
/// The first non-comment match is `-m tcp` / `-m udp`: its port test is in `sport`/`dport`.
const PORTS_TCP: u32 = 1 << 8;
const PORTS_UDP: u32 = 1 << 9;
const H_INV_SPORT: u32 = 1 << 10;
const H_INV_DPORT: u32 = 1 << 11;
/// The matches are comments and that one port test alone: once the ports pass, they all do.
const H_COVERED: u32 = 1 << 12;
/// The chain's tail of a built-in chain (its policy).
const H_POLICY: u32 = 1 << 13;
/// The rule's one match (beyond comments) is `-m statistic`: its value (probability scaled or
/// `every - 1`) is `sport`, its state slot `dport` (as two halves each; no port test here).
const H_STAT: u32 = 1 << 14;
/// With [`H_STAT`] or [`H_CTSTATE`]: `!`.
const H_STAT_INV: u32 = 1 << 15;
/// With [`H_STAT`]: random mode (the bit of [`H_INV_SPORT`], unused without a port test).
const H_STAT_RANDOM: u32 = H_INV_SPORT;
/// The rule's one match (beyond comments) tests the conntrack state only (`-m state`, or
/// `-m conntrack --ctstate` alone): the state mask is `sport` (two halves), decided by
/// `matches::conntrack::state_ok`, the function both matches' own test is.
const H_CTSTATE: u32 = 1 << 16;

/// A u32 as two u16 halves (high first) and back, for the port fields' other use.
fn halves(v: u32) -> [u16; 2] {
    [(v >> 16) as u16, v as u16]
}

#[inline]
fn whole(h: [u16; 2]) -> u32 {
    u32::from(h[0]) << 16 | u32::from(h[1])
}

/// Bits 24-31 of `Hot::flags`, for a jump or goto: how many hot records from the target on
/// to ask the CPU for at once (the target chain and the chains laid out after it that it
/// calls, see [`chain_order`]), 0 for none (a classified target, a small table, the plain
/// walk).
const WARM_SHIFT: u32 = 24;

/// Most hot records a jump asks for ahead (16 lines, 1 KiB): a kube-proxy service chain with
/// the endpoint chains it calls is 4n + 2 records for n endpoints.
const WARM_MAX: u32 = 16;

/// Tables of fewer hot records (256 KiB) stay in the caches between packets: their jumps ask
/// for nothing ahead (the prefetches would cost instructions and find every line there).
const WARM_TABLE_MIN: u32 = 4096;

const K_NONE: u8 = 0;
const K_ACCEPT: u8 = 1;
const K_DROP: u8 = 2;
const K_RETURN: u8 = 3;
const K_JUMP: u8 = 4;
const K_GOTO: u8 = 5;
const K_EXT: u8 = 6;
/// DNAT, its range in `CTable::nat[jump]`: the walk asks for the binding without reading the
/// cold rule and the target's boxed range (two cache lines a new kube-proxy connection).
const K_DNAT: u8 = 7;

/// What the walk reads of the packet once (again after a target may have rewritten it).
#[derive(Clone, Copy)]
struct Keys {
    src: u32,
    dst: u32,
    proto: u8,
    /// Fragment offset is zero.
    first: bool,
    /// Which complete transport header the ports come from (`PORTS_TCP`/`PORTS_UDP`), 0: none.
    ports: u32,
    sport: u16,
    dport: u16,
}

impl Keys {
    #[inline]
    fn of(p: &PktCtx) -> Keys {
        let first = p.frag_off() == 0;
        // Kernel rule (xt_tcpudp): a later fragment matches no port, a header that cannot be
        // read hotdrops; only a complete header of a first fragment is tested here.
        let ports = match p.d.l4 {
            L4Kind::Tcp if first => PORTS_TCP,
            L4Kind::Udp if first => PORTS_UDP,
            _ => 0,
        };
        Keys {
            src: p.src(),
            dst: p.dst(),
            proto: p.d.protocol,
            first,
            ports,
            sport: p.d.sport,
            dport: p.d.dport,
        }
    }
}

impl Hot {
    fn new(r: &CRule, reference: bool) -> Hot {
        let ip = &r.ip;
        let mut flags = 0;
        for (on, bit) in [
            (ip.inv_src, H_INV_SRC),
            (ip.inv_dst, H_INV_DST),
            (ip.any_proto, H_ANY_PROTO),
            (ip.inv_proto, H_INV_PROTO),
            (ip.frag, H_FRAG),
            (ip.inv_frag, H_INV_FRAG),
            (ip.has_iface(), H_IFACE),
            (r.num == 0 && !matches!(r.target, CTarget::Return), H_POLICY),
        ] {
            if on {
                flags |= bit;
            }
        }
        let mut h = Hot {
            src: ip.src,
            smsk: ip.smsk,
            dst: ip.dst,
            dmsk: ip.dmsk,
            flags,
            proto: ip.proto,
            chain_ix: u32::MAX,
            ..Hot::default()
        };
        (h.kind, h.jump) = match r.target {
            CTarget::None => (K_NONE, 0),
            CTarget::Accept => (K_ACCEPT, 0),
            CTarget::Drop => (K_DROP, 0),
            CTarget::Return => (K_RETURN, 0),
            CTarget::Jump(j) => (K_JUMP, j),
            CTarget::Goto(j) => (K_GOTO, j),
            CTarget::Ext(..) => (K_EXT, 0),
        };
        if reference {
            // The plain walk: every match run, nothing decided here.
            if !r.matches.is_empty() {
                h.flags |= H_MATCHES;
            }
            return h;
        }
        let mut rest = r
            .matches
            .iter()
            .filter(|(m, _)| !matches!(m, Match::Comment(_)));
        let Some((first, slot)) = rest.next() else {
            return h;
        };
        h.flags |= H_MATCHES;
        let only = rest.next().is_none();
        if let (Match::Statistic(st), true) = (first, only) {
            let (random, value) = crate::matches::statistic::params(st);
            h.flags |= H_STAT;
            if random {
                h.flags |= H_STAT_RANDOM;
            }
            if st.invert {
                h.flags |= H_STAT_INV;
            }
            h.sport = halves(value);
            h.dport = halves(*slot);
            return h;
        }
        let ctstate = match (first, only) {
            (Match::Conntrack(c), true) => crate::matches::conntrack::state_only(c),
            // (`-m state` masks hold no SNAT/DNAT bit: `state_ok` is its test too.)
            (Match::State(st), true) if st.mask & !0x1f == 0 => Some((st.mask, st.invert)),
            _ => None,
        };
        if let Some((mask, inv)) = ctstate {
            h.flags |= H_CTSTATE;
            if inv {
                h.flags |= H_STAT_INV;
            }
            h.sport = halves(mask);
            return h;
        }
        let ports = match first {
            Match::Tcp(t) => Some((
                PORTS_TCP,
                t.sport,
                t.inv_sport,
                t.dport,
                t.inv_dport,
                t.flags_mask == 0 && t.flags_cmp == 0 && !t.inv_flags && t.option == 0,
            )),
            Match::Udp(u) => Some((PORTS_UDP, u.sport, u.inv_sport, u.dport, u.inv_dport, true)),
            _ => None,
        };
        if let Some((kind, sp, inv_sp, dp, inv_dp, ports_only)) = ports {
            h.flags |= kind;
            h.sport = [sp.0, sp.1];
            h.dport = [dp.0, dp.1];
            if inv_sp {
                h.flags |= H_INV_SPORT;
            }
            if inv_dp {
                h.flags |= H_INV_DPORT;
            }
            if only && ports_only {
                h.flags |= H_COVERED;
            }
        }
        h
    }

    /// Kernel rule (ip_packet_match without the devices): addresses under masks, protocol
    /// (0 = any), `-f` = later fragments only; each inverted by its `!`.
    #[inline]
    fn header_ok(&self, k: &Keys) -> bool {
        let f = self.flags;
        if ((k.src & self.smsk) != self.src) ^ (f & H_INV_SRC != 0) {
            return false;
        }
        if ((k.dst & self.dmsk) != self.dst) ^ (f & H_INV_DST != 0) {
            return false;
        }
        if f & H_ANY_PROTO == 0 && ((k.proto != self.proto) ^ (f & H_INV_PROTO != 0)) {
            return false;
        }
        if f & H_FRAG != 0 && (k.first ^ (f & H_INV_FRAG != 0)) {
            return false;
        }
        true
    }

    /// Kernel rule (xt_tcpudp port_match): both ranges, each inverted by its `!`.
    #[inline]
    fn ports_ok(&self, k: &Keys) -> bool {
        let f = self.flags;
        ((k.sport >= self.sport[0] && k.sport <= self.sport[1]) ^ (f & H_INV_SPORT != 0))
            && ((k.dport >= self.dport[0] && k.dport <= self.dport[1]) ^ (f & H_INV_DPORT != 0))
    }
}

/// One compiled rule (its cold part; see [`Hot`]).
#[derive(Clone, Debug)]
pub struct CRule {
    /// Generic part.
    pub ip: IpMatch,
    /// Matches with their state slots.
    pub matches: Vec<(Match, u32)>,
    /// Target.
    pub target: CTarget,
    /// Index of its chain in the source table.
    pub chain: u16,
    /// 1-based position in its chain; 0 for the policy / implicit return; [`SPARE`] for a
    /// spare record after the tail.
    pub num: u32,
    /// The rule needs connection tracking.
    pub ct: bool,
}

/// [`CRule::num`] of a spare record: room after a chain's tail for rules inserted later
/// ([`CTable::insert_rule`]); never reached by a walk (the tail before it always ends one).
pub const SPARE: u32 = u32::MAX;

/// Spare records given to a chain of `len` rules at compile time.
fn slack(len: u32) -> u32 {
    1 + len / 8
}

impl CRule {
    /// A spare record of chain `ci` (also the start of a chain's tail).
    fn spare(ci: usize) -> CRule {
        CRule {
            ip: IpMatch::new(&nfrs_rules::IpSpec::default()),
            matches: Vec::new(),
            target: CTarget::Return,
            chain: ci as u16,
            num: SPARE,
            ct: false,
        }
    }
}

/// Compiles rule `ri` (0-based) of chain `ci`, reachable from `hooks`; `find` gives a chain's
/// first record.
fn compile_rule(
    kind: TableKind,
    hooks: u8,
    r: &Rule,
    ci: usize,
    ri: usize,
    state: &mut EvalState,
    find: &dyn Fn(&str) -> Result<u32, CompileError>,
) -> Result<CRule, CompileError> {
    let mut ct = false;
    let mut ms = Vec::with_capacity(r.matches.len());
    for m in &r.matches {
        let mut cx = CompileCtx {
            table: kind,
            hooks,
            ip: &r.ip,
            needs_conntrack: false,
            state,
            slot: 0,
        };
        let slot = compile_match(m, &mut cx)?;
        ct |= cx.needs_conntrack;
        ms.push((m.clone(), slot));
    }
    let target = match &r.target {
        Target::None => CTarget::None,
        Target::Accept => CTarget::Accept,
        Target::Drop => CTarget::Drop,
        Target::Return => CTarget::Return,
        Target::Jump(n) => CTarget::Jump(find(n)?),
        Target::Goto(n) => CTarget::Goto(find(n)?),
        Target::Ext(x) => {
            let mut cx = TargetCtx {
                table: kind,
                hooks,
                ip: &r.ip,
                needs_conntrack: false,
                state,
                slot: 0,
            };
            let slot = compile_target(x, &mut cx)?;
            ct |= cx.needs_conntrack;
            CTarget::Ext(x.clone(), slot)
        }
    };
    Ok(CRule {
        ip: IpMatch::new(&r.ip),
        matches: ms,
        target,
        chain: ci as u16,
        num: ri as u32 + 1,
        ct,
    })
}

/// A compiled table.
#[derive(Clone, Debug)]
pub struct CTable {
    /// Which table.
    pub kind: TableKind,
    /// All rules, chain after chain: each chain one run ending with its tail, the chains in
    /// the order of [`chain_order`] (source order for the plain reference walk).
    pub rules: Vec<CRule>,
    /// Hot records, one per rule (with the counters).
    hot: Vec<Hot>,
    /// The matches each rule runs, rule after rule (comments left out unless `reference`),
    /// so that a rule's matches are one read away from its hot record and neighbours'
    /// matches share lines.
    mats: Vec<(Match, u32)>,
    /// Walk every rule with the plain linear walk: every match run from the cold rule (the
    /// reference the classifier and the hot records are checked against).
    reference: bool,
    /// First rule of each hook's chain, `u32::MAX` when the table lacks the hook.
    pub entry: [u32; 5],
    /// Chain names (source order).
    pub chains: Vec<String>,
    /// First rule of each chain (by the chain's index in the source table).
    pub chain_start: Vec<u32>,
    /// Some rule needs connection tracking.
    pub needs_conntrack: bool,
    /// Per chain: its classifier in `index`, or `u32::MAX` (walked rule by rule).
    chain_ix: Vec<u32>,
    /// Classifiers of long chains (`crate::classify`).
    index: Vec<ChainIndex>,
    /// The ranges of DNAT rules (`K_DNAT`), as `targets::dnat::run` would build them.
    nat: Vec<NatRange>,
    /// Per chain: one past its last spare record.
    room_end: Vec<u32>,
    /// Per chain: the hooks it is reachable from (bits of `Hook::bit`).
    hooks: Vec<u8>,
    /// The classifier options compiled with.
    opts: ClassifyOpts,
    /// Jumps ask for their callee's records ahead ([`WARM_TABLE_MIN`]).
    big: bool,
    /// How many rules need connection tracking.
    ct_rules: u32,
    /// Per chain: its tail.
    tails: Vec<u32>,
    /// Per chain: the tail its classifier was built for (`u32::MAX`: none).
    ix_tail: Vec<u32>,
    /// Matches and DNAT ranges of rules deleted or replaced since the compile
    /// ([`CTable::worn`]).
    stale: u32,
}

/// Entries removed rules may leave behind before [`CTable::worn`] asks for a compile, however
/// small the table.
const STALE_MIN: usize = 4096;

/// Rules appended to a classified chain after its classifier was built, walked one by one,
/// before the classifier is built again.
const APPENDED_MAX: u32 = 32;

/// The order chains are laid out in a compiled table: the built-in chains as in the source,
/// then depth first from each of them the user chains (in rule order, each chain one of its
/// rules jumps or goes to that has no place yet, followed by all it calls), then the chains no
/// hook reaches, in source order. Rule order within a chain is untouched; only memory order
/// changes. A chain called from one rule sits
/// just after its caller's chain or its caller's earlier callees, so a packet's path through
/// such chains (kube-proxy's KUBE-SVC-* and the KUBE-SEP-* they call) reads neighbouring
/// lines where source order (user chains sorted by name) scattered them over the table.
pub fn chain_order(t: &Table) -> Vec<usize> {
    chain_layout(t).0
}

/// [`chain_order`], and for each chain (by source index) where the chains laid out in its
/// visit end: `order[pos..end]` are the chain itself (at `pos`) and every chain placed while
/// it was laid out, which it calls directly or not, one run in memory. A built-in chain's run
/// is itself alone (the user chains follow all built-in ones).
fn chain_layout(t: &Table) -> (Vec<usize>, Vec<usize>) {
    let n = t.chains.len();
    let mut placed = vec![false; n];
    let mut order: Vec<usize> = (0..n).filter(|&c| t.chains[c].hook.is_some()).collect();
    let mut ends = vec![0; n];
    for (k, &c) in order.iter().enumerate() {
        placed[c] = true;
        ends[c] = k + 1;
    }
    // (chain, next rule to look at) for every chain being laid out, innermost last.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let builtin = order.clone();
    let user = (0..n).filter(|&c| t.chains[c].hook.is_none());
    for root in builtin.into_iter().chain(user) {
        // Built-in chains are placed already but still lay out what they call.
        if !placed[root] {
            placed[root] = true;
            order.push(root);
        } else if t.chains[root].hook.is_none() {
            continue;
        }
        stack.push((root, 0));
        while let Some(top) = stack.last_mut() {
            let rules = &t.chains[top.0].rules;
            let mut callee = None;
            while callee.is_none() && top.1 < rules.len() {
                if let Target::Jump(name) | Target::Goto(name) = &rules[top.1].target {
                    callee = t.chain_index(name).filter(|&j| !placed[j]);
                }
                top.1 += 1;
            }
            match callee {
                Some(j) => {
                    placed[j] = true;
                    order.push(j);
                    stack.push((j, 0));
                }
                None => {
                    if let Some((c, _)) = stack.pop() {
                        if t.chains[c].hook.is_none() {
                            ends[c] = order.len();
                        }
                    }
                }
            }
        }
    }
    (order, ends)
}

/// Where the walk is in a classified chain: the chain, the position in its leaf's list and
/// the rule index last asked for.
#[derive(Clone, Copy)]
struct Cursor {
    /// The classifier (index into `CTable::index`), `u32::MAX` for none.
    ix: u32,
    /// The chain's tail rule.
    end: u32,
    /// Position in each tree's list.
    pos: [u32; MAX_PARTS],
    at: u32,
}

impl Cursor {
    const NONE: Cursor = Cursor {
        ix: u32::MAX,
        end: 0,
        pos: [0; MAX_PARTS],
        at: 0,
    };
}

/// Why a table walk ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// A rule's verdict (index into `rules`).
    Rule(u32),
    /// The policy of the hook's chain (index of the policy rule).
    Policy(u32),
    /// A match could not read a header it needed (kernel hotdrop) at this rule.
    Hotdrop(u32),
}

/// The verdict of a table walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalkResult {
    /// Accept (true) or drop.
    pub accept: bool,
    /// Where it was decided.
    pub ending: Ending,
}

/// One step of a traced walk: a rule that matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceStep {
    /// Rule index.
    pub rule: u32,
}

impl CTable {
    /// Compiles `t`, refusing matches and targets the engine cannot run; long chains get a
    /// classifier ([`ClassifyOpts::default`]).
    pub fn compile(t: &Table, state: &mut EvalState) -> Result<CTable, CompileError> {
        CTable::compile_with(t, state, ClassifyOpts::default())
    }

    /// [`CTable::compile`] with explicit classifier options.
    pub fn compile_with(
        t: &Table,
        state: &mut EvalState,
        opts: ClassifyOpts,
    ) -> Result<CTable, CompileError> {
        let hooks = nfrs_rules::ops::hook_masks(t).map_err(|e| CompileError(e.to_string()))?;
        // Chains in walk order (the plain reference walk keeps the source order); each chain
        // is still one run of rules ending with its tail.
        let (order, ends) = if opts.enabled {
            chain_layout(t)
        } else {
            ((0..t.chains.len()).collect(), Vec::new())
        };
        // Each chain's run: its rules, its tail, then spare records ([`slack`]) that
        // `CTable::insert_rule` fills without moving any other chain.
        let mut chain_start = vec![0u32; t.chains.len()];
        let mut room_end = vec![0u32; t.chains.len()];
        let mut n = 0u32;
        let mut real = 0u32;
        for &ci in &order {
            let len = t.chains[ci].rules.len() as u32;
            chain_start[ci] = n;
            n += len + 1 + slack(len);
            room_end[ci] = n;
            real += len + 1;
        }
        let find = |name: &str| -> Result<u32, CompileError> {
            t.chain_index(name)
                .map(|i| chain_start[i])
                .ok_or_else(|| CompileError(format!("nfrs replay: no chain `{name}`")))
        };
        // What a jump to each chain asks for ahead: its run of chains (laid out in walk
        // order), unless the chain has a classifier (the walk then reads a few of its rules)
        // or the table is small.
        let big = real >= WARM_TABLE_MIN;
        let warm: Vec<u32> = (0..ends.len())
            .map(|c| {
                let run_end = order.get(ends[c]).map_or(n, |&d| chain_start[d]);
                let classified = t.chains[c].rules.len() >= opts.min_rules.max(1);
                if classified || !big {
                    0
                } else {
                    (run_end - chain_start[c]).min(WARM_MAX)
                }
            })
            .collect();
        // Compiled chain by chain in source order (so state slots are claimed in the same
        // order whatever the layout), then laid out in `order`.
        let mut by_chain: Vec<Vec<(CRule, Counters)>> = Vec::with_capacity(t.chains.len());
        // Kernel rule (measured): a nat table alone does not start conntrack; NAT targets and
        // conntrack matches do.
        let mut ct_rules = 0u32;
        let mut entry = [u32::MAX; 5];
        for (ci, c) in t.chains.iter().enumerate() {
            if let Some(h) = c.hook {
                entry[h as usize] = chain_start[ci];
            }
            let hmask = hooks.get(ci).copied().unwrap_or(0);
            let mut out = Vec::with_capacity(c.rules.len() + 1);
            for (ri, r) in c.rules.iter().enumerate() {
                let rule = compile_rule(t.kind, hmask, r, ci, ri, state, &find)?;
                ct_rules += u32::from(rule.ct);
                out.push((rule, r.counters));
            }
            let (target, cnt) = if c.is_builtin() {
                (
                    match c.policy {
                        Policy::Accept => CTarget::Accept,
                        Policy::Drop => CTarget::Drop,
                    },
                    c.counters,
                )
            } else {
                (CTarget::Return, Counters::default())
            };
            let mut tail = CRule::spare(ci);
            tail.target = target;
            tail.num = 0;
            out.push((tail, cnt));
            by_chain.push(out);
        }
        let mut rules = Vec::with_capacity(n as usize);
        let mut counters = Vec::with_capacity(n as usize);
        for &ci in &order {
            for (r, c) in std::mem::take(&mut by_chain[ci]) {
                rules.push(r);
                counters.push(c);
            }
            for _ in rules.len() as u32..room_end[ci] {
                rules.push(CRule::spare(ci));
                counters.push(Counters::default());
            }
        }
        let tails = (0..t.chains.len())
            .map(|c| chain_start[c] + t.chains[c].rules.len() as u32)
            .collect();
        let mut ct = CTable {
            kind: t.kind,
            rules,
            hot: Vec::with_capacity(n as usize),
            mats: Vec::new(),
            reference: !opts.enabled,
            entry,
            chains: t.chains.iter().map(|c| c.name.clone()).collect(),
            chain_start,
            needs_conntrack: ct_rules > 0,
            chain_ix: vec![u32::MAX; t.chains.len()],
            index: Vec::new(),
            nat: Vec::new(),
            room_end,
            hooks,
            opts,
            big,
            ct_rules,
            tails,
            ix_tail: vec![u32::MAX; t.chains.len()],
            stale: 0,
        };
        for (i, &cnt) in counters.iter().enumerate() {
            let r = &ct.rules[i];
            let callee = match r.target {
                CTarget::Jump(j) | CTarget::Goto(j) => {
                    Some(usize::from(ct.rules[j as usize].chain))
                }
                _ => None,
            };
            // (Nothing for the plain walk: `warm` is empty there.)
            let w = callee.and_then(|c| warm.get(c).copied()).unwrap_or(0);
            let ch = usize::from(r.chain);
            let end = ct.chain_start[ch] + t.chains[ch].rules.len() as u32;
            let h = ct.hot_record(i, cnt, w, end)?;
            ct.hot.push(h);
        }
        for ci in 0..t.chains.len() {
            ct.classify_chain(ci);
        }
        Ok(ct)
    }

    /// The hot record of rule `i` (its matches appended to `mats`, a DNAT range to `nat`):
    /// `warm` records to ask for ahead at a jump, `end` the chain's tail. Its classifier is
    /// set by [`CTable::classify_chain`].
    fn hot_record(
        &mut self,
        i: usize,
        counters: Counters,
        warm: u32,
        end: u32,
    ) -> Result<Hot, CompileError> {
        let reference = self.reference;
        let r = &self.rules[i];
        let mut h = Hot::new(r, reference);
        if matches!(r.target, CTarget::Jump(_) | CTarget::Goto(_)) {
            h.flags |= warm << WARM_SHIFT;
        }
        if let (false, CTarget::Ext(TargetExt::Dnat(d), _)) = (reference, &r.target) {
            h.kind = K_DNAT;
            h.jump = u32::try_from(self.nat.len())
                .map_err(|_| CompileError("nfrs replay: too many DNAT rules".into()))?;
            self.nat.push(crate::targets::dnat::range(&d.range));
        }
        h.mstart = u32::try_from(self.mats.len())
            .map_err(|_| CompileError("nfrs replay: too many matches".into()))?;
        self.mats.extend(
            r.matches
                .iter()
                .filter(|(m, _)| reference || !matches!(m, Match::Comment(_)))
                .cloned(),
        );
        h.mlen = u16::try_from(self.mats.len() - h.mstart as usize)
            .map_err(|_| CompileError("nfrs replay: too many matches in one rule".into()))?;
        h.packets = counters.packets;
        h.bytes = counters.bytes;
        h.chain_end = end;
        Ok(h)
    }

    /// Gives chain `ci` a classifier when it is long enough (a new one, or its old one built
    /// again from its rules as they are now), or takes it away when it is not; the chain's
    /// records name it.
    fn classify_chain(&mut self, ci: usize) {
        let first = self.chain_start[ci];
        let tail = self.tails[ci];
        let len = (tail - first) as usize;
        let wanted = self.opts.enabled && len > 0 && len >= self.opts.min_rules;
        let mut ix = self.chain_ix[ci];
        if wanted {
            let ranges: Vec<RuleRange> = (first..tail)
                .map(|i| {
                    let ip = &self.rules[i as usize].ip;
                    RuleRange::of(Cand::new(
                        i,
                        (ip.src, ip.smsk, ip.inv_src),
                        (ip.dst, ip.dmsk, ip.inv_dst),
                        (!ip.any_proto).then_some((ip.proto, ip.inv_proto)),
                    ))
                })
                .collect();
            let built = ChainIndex::build(&ranges, tail);
            if ix == u32::MAX {
                ix = self.index.len() as u32;
                self.index.push(built);
            } else {
                self.index[ix as usize] = built;
            }
            self.ix_tail[ci] = tail;
        } else {
            // (A classifier given up stays in `index`, unused, until the next compile.)
            ix = u32::MAX;
            self.ix_tail[ci] = u32::MAX;
        }
        self.chain_ix[ci] = ix;
        self.relink(ci);
    }

    /// Sets each record of chain `ci` to its classifier and the tail it walks to: the
    /// classifier's tail up to it; after it (rules appended since), no classifier and the
    /// chain's tail. Every list of the classifier ends with its tail, a candidate any packet
    /// may match: the walk meets the first appended rule there (or the chain's tail when
    /// there is none), then goes on one rule at a time.
    fn relink(&mut self, ci: usize) {
        let (first, tail) = self.extent(ci);
        let (ix, ix_tail) = (self.chain_ix[ci], self.ix_tail[ci]);
        for (k, h) in self.hot[first..=tail].iter_mut().enumerate() {
            let i = (first + k) as u32;
            (h.chain_ix, h.chain_end) = if ix != u32::MAX && i <= ix_tail {
                (ix, ix_tail)
            } else {
                (u32::MAX, tail as u32)
            };
        }
    }

    /// Whether a change at record `pos` of chain `ci` leaves its classifier right: at or
    /// after the classifier's tail (rules appended since it was built, up to
    /// [`APPENDED_MAX`]), or no classifier and none due.
    fn classifier_holds(&self, ci: usize, pos: usize, new_len: usize) -> bool {
        let wanted = self.opts.enabled && new_len > 0 && new_len >= self.opts.min_rules;
        if self.chain_ix[ci] == u32::MAX {
            return !wanted;
        }
        let t = self.ix_tail[ci];
        let tail = self.chain_start[ci] as usize + new_len;
        wanted && pos >= t as usize && tail as u32 - t <= APPENDED_MAX
    }

    /// The records of chain `ci`: its first and its tail.
    fn extent(&self, ci: usize) -> (usize, usize) {
        let first = self.chain_start[ci] as usize;
        (first, self.tails[ci] as usize)
    }

    /// Compiles `r` alone for a place in chain `ci` (its state slots claimed at the end of
    /// `state`, the others untouched). `chain_of` names the source index of a chain.
    fn compile_alone(
        &self,
        ci: usize,
        r: &Rule,
        state: &mut EvalState,
        chain_of: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<CRule, CompileError> {
        let hooks = self.hooks[ci];
        let find = |name: &str| -> Result<u32, CompileError> {
            chain_of(name)
                .map(|c| self.chain_start[c])
                .ok_or_else(|| CompileError(format!("nfrs replay: no chain `{name}`")))
        };
        compile_rule(self.kind, hooks, r, ci, 0, state, &find)
    }

    /// A jump or goto at record `pos` makes its callee, and every chain that one reaches,
    /// reachable from its chain's hooks too (the hook masks the next patched rules are
    /// compiled with; compiled rules do not depend on them, the tool checked the rules).
    fn spread_hooks(&mut self, pos: usize) {
        let (CTarget::Jump(j) | CTarget::Goto(j)) = self.rules[pos].target else {
            return;
        };
        let mask = self.hooks[usize::from(self.rules[pos].chain)];
        let mut todo = vec![usize::from(self.rules[j as usize].chain)];
        while let Some(c) = todo.pop() {
            if self.hooks[c] | mask == self.hooks[c] {
                continue;
            }
            self.hooks[c] |= mask;
            let (first, tail) = self.extent(c);
            for r in &self.rules[first..tail] {
                if let CTarget::Jump(k) | CTarget::Goto(k) = r.target {
                    todo.push(usize::from(self.rules[k as usize].chain));
                }
            }
        }
    }

    /// What a jump in rule `rule` asks for ahead (see [`WARM_SHIFT`]).
    fn warm_of(&self, rule: &CRule) -> u32 {
        let (CTarget::Jump(j) | CTarget::Goto(j)) = rule.target else {
            return 0;
        };
        let callee = usize::from(self.rules[j as usize].chain);
        if self.reference || !self.big || self.chain_ix[callee] != u32::MAX {
            return 0;
        }
        (self.room_end[callee] - j).min(WARM_MAX)
    }

    /// Inserts `r` (its counters with it) as rule `at` (0-based) of chain `ci` (source
    /// index), as `iptables -I CHAIN at+1` (`at` = the chain's length: `-A`) changes the
    /// table this was compiled from: the rule compiled alone, the chain's later rules moved
    /// one record on into its spare room, its classifier built again. Nothing else moves:
    /// jumps, other chains, counters and state slots stay. `Ok(false)`, the table untouched:
    /// no room left or the rule cannot be patched in (compile the table again).
    pub fn insert_rule(
        &mut self,
        ci: usize,
        at: usize,
        r: &Rule,
        state: &mut EvalState,
        chain_of: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<bool, CompileError> {
        let Some(&room) = self.room_end.get(ci) else {
            return Ok(false);
        };
        let (first, tail) = self.extent(ci);
        if at > tail - first || tail + 1 >= room as usize || self.worn() {
            return Ok(false);
        }
        let mut rule = self.compile_alone(ci, r, state, chain_of)?;
        let pos = first + at;
        rule.num = at as u32 + 1;
        let ct = rule.ct;
        // The spare record after the tail comes to `pos`, the rest one record on.
        self.rules[pos..=tail + 1].rotate_right(1);
        self.hot[pos..=tail + 1].rotate_right(1);
        self.rules[pos] = rule;
        let warm = self.warm_of(&self.rules[pos]);
        self.hot[pos] = self.hot_record(pos, r.counters, warm, 0)?;
        for k in pos + 1..=tail {
            self.rules[k].num += 1;
        }
        self.tails[ci] += 1;
        self.spread_hooks(pos);
        self.ct_rules += u32::from(ct);
        self.needs_conntrack |= ct;
        if self.classifier_holds(ci, pos, tail + 1 - first) {
            self.relink(ci);
        } else {
            self.classify_chain(ci);
        }
        Ok(true)
    }

    /// Deletes rule `at` (0-based) of chain `ci`, as `iptables -D CHAIN at+1`: the later
    /// rules move one record back, the freed record becomes spare room. Its state slots
    /// stay claimed (unused) until the next compile. `false`: no such rule.
    pub fn delete_rule(&mut self, ci: usize, at: usize) -> bool {
        if ci >= self.chain_start.len() {
            return false;
        }
        let (first, tail) = self.extent(ci);
        if at >= tail - first {
            return false;
        }
        let pos = first + at;
        self.leave_behind(pos);
        self.ct_rules -= u32::from(self.rules[pos].ct);
        self.needs_conntrack = self.ct_rules > 0;
        self.rules[pos..=tail].rotate_left(1);
        self.hot[pos..=tail].rotate_left(1);
        self.rules[tail] = CRule::spare(ci);
        self.hot[tail] = Hot::new(&self.rules[tail], self.reference);
        self.hot[tail].chain_ix = u32::MAX;
        for k in pos..tail - 1 {
            self.rules[k].num -= 1;
        }
        self.tails[ci] -= 1;
        if self.classifier_holds(ci, pos, tail - 1 - first) {
            self.relink(ci);
        } else {
            self.classify_chain(ci);
        }
        true
    }

    /// Replaces rule `at` (0-based) of chain `ci` by `r` (its counters with it), as
    /// `iptables -R CHAIN at+1`. `Ok(false)`, the table untouched: no such rule, or the rule
    /// cannot be patched in.
    pub fn replace_rule(
        &mut self,
        ci: usize,
        at: usize,
        r: &Rule,
        state: &mut EvalState,
        chain_of: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<bool, CompileError> {
        if ci >= self.chain_start.len() {
            return Ok(false);
        }
        let (first, tail) = self.extent(ci);
        if at >= tail - first || self.worn() {
            return Ok(false);
        }
        let mut rule = self.compile_alone(ci, r, state, chain_of)?;
        let pos = first + at;
        rule.num = at as u32 + 1;
        self.leave_behind(pos);
        self.ct_rules = self.ct_rules - u32::from(self.rules[pos].ct) + u32::from(rule.ct);
        self.needs_conntrack = self.ct_rules > 0;
        self.rules[pos] = rule;
        let warm = self.warm_of(&self.rules[pos]);
        self.hot[pos] = self.hot_record(pos, r.counters, warm, tail as u32)?;
        self.spread_hooks(pos);
        if self.classifier_holds(ci, pos, tail - first) {
            self.relink(ci);
        } else {
            self.classify_chain(ci);
        }
        Ok(true)
    }

    /// Whether `r` would need connection tracking in chain `ci` (compiled aside, with state
    /// slots of its own).
    pub fn needs_conntrack_alone(
        &self,
        ci: usize,
        r: &Rule,
        chain_of: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<bool, CompileError> {
        let mut scratch = EvalState::default();
        scratch.slots.push(Default::default());
        Ok(self.compile_alone(ci, r, &mut scratch, chain_of)?.ct)
    }

    /// Notes what the rule at record `pos`, about to be deleted or replaced, leaves behind
    /// until the next compile: its matches in `mats`, its DNAT range in `nat`.
    fn leave_behind(&mut self, pos: usize) {
        let h = &self.hot[pos];
        self.stale += u32::from(h.mlen) + u32::from(h.kind == K_DNAT);
    }

    /// Whether removed rules have left so much behind ([`CTable::leave_behind`]) that no more
    /// rules are patched in: the table is then compiled again, which starts afresh (a script
    /// replacing one rule for ever would otherwise grow the table without bound).
    pub fn worn(&self) -> bool {
        self.stale as usize > STALE_MIN.max(self.mats.len() / 2)
    }

    /// Whether rule `at` (0-based) of chain `ci` needs connection tracking.
    pub fn rule_needs_conntrack(&self, ci: usize, at: usize) -> bool {
        self.rules
            .get(self.chain_start[ci] as usize + at)
            .is_some_and(|r| r.ct)
    }

    /// How many rules need connection tracking.
    pub fn ct_rules(&self) -> u32 {
        self.ct_rules
    }

    /// The rules of chain `ci` (source index), its tail left out.
    pub fn chain_rules(&self, ci: usize) -> &[CRule] {
        let (first, tail) = self.extent(ci);
        &self.rules[first..tail]
    }

    /// Zeroes the policy counters of every built-in chain: measured with iptables 1.8.9,
    /// every command that changes a table resets them (the tool does it to the ruleset).
    pub fn zero_policies(&mut self) {
        for e in self.entry {
            if let Some(first) = self.rules.get(e as usize) {
                let tail = self.tails[usize::from(first.chain)] as usize;
                let h = &mut self.hot[tail];
                h.packets = 0;
                h.bytes = 0;
            }
        }
    }

    /// Whether chain `ci` has spare room for one more rule.
    pub fn has_room(&self, ci: usize) -> bool {
        ci < self.chain_start.len() && self.extent(ci).1 + 1 < self.room_end[ci] as usize
    }

    /// Whether some chain has a classifier.
    pub fn classified(&self) -> bool {
        !self.index.is_empty()
    }

    /// The number of rules of chain `chain` (index in `chains`) a packet from `src` to `dst`
    /// is checked against, its tail included: the chain's length plus one when it has no
    /// classifier. For tests and sizing.
    pub fn candidates(&self, chain: usize, src: u32, dst: u32) -> usize {
        let ix = self.chain_ix[chain];
        let (first, tail) = self.extent(chain);
        if ix == u32::MAX {
            return tail + 1 - first;
        }
        let index = &self.index[ix as usize];
        // The classifier's tail (in every list), then the rules appended after it.
        let t = self.ix_tail[chain];
        let mut n = 1 + (tail - t as usize);
        for part in 0..index.parts() {
            let mut pos = index.leaf(part, src, dst);
            while index.cand(part, pos).rule != t {
                pos += 1;
                n += 1;
            }
        }
        n
    }

    /// Tree nodes and candidate list entries of every classifier (sizing).
    pub fn classifier_size(&self) -> (usize, usize) {
        self.index
            .iter()
            .map(|i| i.size())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// The first rule at or after `i`, in `i`'s chain, whose header part may match `p`: `i`
    /// itself in a chain walked rule by rule. Positions asked for in one visit of a chain
    /// only grow, so the cursor moves forward through the packet's leaf.
    #[inline]
    fn skip(&self, i: u32, p: &PktCtx, cur: &mut Cursor) -> u32 {
        let (src, dst, proto) = (p.src(), p.dst(), p.d.protocol);
        // Still in the classified chain of the last position, further on: keep the cursor
        // (every position the walk reaches comes through here, so `cur` is that chain's).
        if cur.ix == u32::MAX || i < cur.at || i > cur.end {
            let h = &self.hot[i as usize];
            let ix = h.chain_ix;
            if ix == u32::MAX {
                cur.ix = u32::MAX;
                return i;
            }
            cur.ix = ix;
            cur.end = h.chain_end;
            let index = &self.index[ix as usize];
            for part in 0..index.parts() {
                cur.pos[part] = index.leaf(part, src, dst);
            }
        }
        let index = &self.index[cur.ix as usize];
        let parts = index.parts();
        cur.at = i;
        // Each list's head: its first rule at or after `i` whose address and protocol test
        // passes (a failing one never passes during this walk: the cursor is dropped when a
        // target may have rewritten the packet). Every list ends with the chain's tail, at
        // or after any position in the chain, which every packet passes.
        let mut next = u32::MAX;
        for part in 0..parts {
            let pos = &mut cur.pos[part];
            let mut c = index.cand(part, *pos);
            while c.rule < i || !c.may_match(src, dst, proto) {
                *pos += 1;
                c = index.cand(part, *pos);
            }
            next = next.min(c.rule);
        }
        next
    }

    /// Asks the CPU for the `n` hot records from `at` on at once (see [`WARM_SHIFT`]): the walk
    /// then meets them arriving together instead of waiting for one after the other as each
    /// rule sends it to the next (measured: kube-proxy 10k services, CPU time a new
    /// connection).
    #[inline]
    fn warm(&self, at: u32, n: u32) {
        // The first record is read next anyway; `n` never runs past the table (compiled from
        // the chains' extents), and a prefetch of any address is harmless.
        let first: *const Hot = self.hot.as_ptr().wrapping_add(at as usize);
        for k in 1..n as usize {
            prefetch(first.wrapping_add(k));
        }
    }

    /// Whether the table has a chain at `hook`.
    pub fn has_hook(&self, hook: Hook) -> bool {
        self.entry[hook as usize] != u32::MAX
    }

    /// The policy rule of `hook`'s chain when the chain holds nothing but an ACCEPT policy:
    /// a walk there only counts the packet on it and accepts ([`CTable::count`]).
    pub fn accept_policy_only(&self, hook: Hook) -> Option<u32> {
        let start = *self.entry.get(hook as usize)?;
        let h = self.hot.get(start as usize)?;
        (h.flags & H_POLICY != 0 && h.kind == K_ACCEPT).then_some(start)
    }

    /// Counts a packet of `len` bytes on rule `i`, as the walk does on the rule that decides.
    #[inline]
    pub fn count(&mut self, i: u32, len: u64) {
        let h = &mut self.hot[i as usize];
        h.packets += 1;
        h.bytes += len;
    }

    /// The counters of rule `i` (policy counters on the policy rule).
    pub fn counter(&self, i: usize) -> Counters {
        let h = &self.hot[i];
        Counters {
            packets: h.packets,
            bytes: h.bytes,
        }
    }

    /// The counters of every rule, in rule order.
    pub fn counters(&self) -> Vec<Counters> {
        (0..self.hot.len()).map(|i| self.counter(i)).collect()
    }

    /// Copies the counters back into `t` (the table this was compiled from).
    pub fn write_counters(&self, t: &mut Table) {
        for (i, r) in self.rules.iter().enumerate() {
            if r.num == SPARE {
                continue;
            }
            let c = &mut t.chains[r.chain as usize];
            if r.num == 0 {
                if c.is_builtin() {
                    c.counters = self.counter(i);
                }
            } else {
                c.rules[r.num as usize - 1].counters = self.counter(i);
            }
        }
    }

    /// `table/CHAIN rule N` or `table/CHAIN policy` for a rule index (traces).
    pub fn describe(&self, i: u32) -> String {
        let r = &self.rules[i as usize];
        let chain = &self.chains[r.chain as usize];
        if r.num == 0 {
            let builtin = Hook::from_chain_name(chain).is_some();
            if builtin {
                format!("{}/{} policy", self.kind.name(), chain)
            } else {
                format!("{}/{} end (return)", self.kind.name(), chain)
            }
        } else {
            format!("{}/{} rule {}", self.kind.name(), chain, r.num)
        }
    }

    /// Walks the table from `hook`'s chain (the kernel's `ipt_do_table`). `stack` is scratch
    /// space for jumps (kept between calls to avoid allocation); matched rules are appended to
    /// `trace` when given.
    #[allow(clippy::too_many_arguments)]
    pub fn walk(
        &mut self,
        hook: Hook,
        p: &mut PktCtx,
        state: &mut EvalState,
        host: &dyn HostInfo,
        fx: &mut Effects,
        stack: &mut Vec<u32>,
        mut trace: Option<&mut Vec<TraceStep>>,
    ) -> WalkResult {
        let start = self.entry[hook as usize];
        stack.clear();
        p.hook = hook;
        p.table = self.kind;
        let len = p.d.total_len as u64;
        let classified = self.classified();
        let mut cur = Cursor::NONE;
        let mut k = Keys::of(p);
        let mut i = start;
        loop {
            if classified {
                i = self.skip(i, p, &mut cur);
            }
            let h = &self.hot[i as usize];
            let flags = h.flags;
            let pass = if self.reference {
                self.rules[i as usize].ip.ok(p)
            } else {
                h.header_ok(&k) && (flags & H_IFACE == 0 || self.rules[i as usize].ip.ifaces_ok(p))
            };
            if !pass {
                i += 1;
                continue;
            }
            // The port test of a leading tcp/udp match, when the packet has that complete
            // header: failing, the rule fails with no match run (the matches before it are
            // comments); passing a rule that tests nothing else, the rule matches.
            let mut run = flags & H_MATCHES != 0;
            if flags & k.ports != 0 {
                if !h.ports_ok(&k) {
                    i += 1;
                    continue;
                }
                run = flags & H_COVERED == 0;
            }
            // A statistic match alone (kube-proxy's endpoint choice): decided from the record,
            // exactly as `matches::statistic::eval` decides it, without reading the match.
            if flags & H_STAT != 0 {
                let ok = crate::matches::statistic::step(
                    flags & H_STAT_RANDOM != 0,
                    whole(h.sport),
                    flags & H_STAT_INV != 0,
                    state,
                    whole(h.dport),
                );
                if !ok {
                    i += 1;
                    continue;
                }
                run = false;
            }
            if flags & H_CTSTATE != 0 {
                if !crate::matches::conntrack::state_ok(whole(h.sport), flags & H_STAT_INV != 0, p)
                {
                    i += 1;
                    continue;
                }
                run = false;
            }
            if run {
                let mut all = true;
                let (ms, ml) = (h.mstart as usize, h.mlen as usize);
                for (m, slot) in &self.mats[ms..ms + ml] {
                    let mut env = MatchEnv {
                        state,
                        slot: *slot,
                        hotdrop: false,
                        host,
                    };
                    let ok = eval_match(m, p, &mut env);
                    if env.hotdrop {
                        return WalkResult {
                            accept: false,
                            ending: Ending::Hotdrop(i),
                        };
                    }
                    if !ok {
                        all = false;
                        break;
                    }
                }
                if !all {
                    i += 1;
                    continue;
                }
            }
            let h = &mut self.hot[i as usize];
            h.packets += 1;
            h.bytes += len;
            let (kind, jump, warm) = (h.kind, h.jump, flags >> WARM_SHIFT);
            if let Some(t) = trace.as_deref_mut() {
                t.push(TraceStep { rule: i });
            }
            if p.nf_trace {
                self.trace_log(i, p, fx);
            }
            let ending = if flags & H_POLICY != 0 {
                Ending::Policy(i)
            } else {
                Ending::Rule(i)
            };
            match kind {
                K_NONE => i += 1,
                K_ACCEPT => {
                    return WalkResult {
                        accept: true,
                        ending,
                    }
                }
                K_DROP => {
                    return WalkResult {
                        accept: false,
                        ending,
                    }
                }
                K_RETURN => match stack.pop() {
                    Some(back) => i = back,
                    None => {
                        // Kernel rule: RETURN in a built-in chain goes to its policy.
                        i = self.policy_of(start);
                    }
                },
                K_JUMP => {
                    stack.push(i + 1);
                    i = jump;
                    self.warm(jump, warm);
                }
                K_GOTO => {
                    i = jump;
                    self.warm(jump, warm);
                }
                K_DNAT => {
                    // What `targets::dnat::run` does: record the request, ACCEPT.
                    fx.nat = Some(NatRequest {
                        kind: NatKind::Dnat,
                        range: self.nat[jump as usize],
                    });
                    return WalkResult {
                        accept: true,
                        ending,
                    };
                }
                _ => {
                    let CTarget::Ext(t, slot) = &self.rules[i as usize].target else {
                        unreachable!("hot record of an extension target");
                    };
                    let mut env = TargetEnv {
                        state,
                        slot: *slot,
                        host,
                        fx,
                    };
                    match run_target(t, p, &mut env) {
                        TVerdict::Continue => {
                            // A target may have rewritten the packet: read it again and find
                            // its leaf again.
                            cur = Cursor::NONE;
                            k = Keys::of(p);
                            i += 1
                        }
                        TVerdict::Accept => {
                            return WalkResult {
                                accept: true,
                                ending,
                            }
                        }
                        TVerdict::Drop => {
                            return WalkResult {
                                accept: false,
                                ending,
                            }
                        }
                    }
                }
            }
        }
    }

    /// Kernel rule (ipt_do_table's trace_packet): a traced packet logs each rule it matches,
    /// before the rule's target runs, as `TRACE: table:chain:kind:N ` followed by the LOG
    /// body with the default flags (TCP sequence and options, IP options, UID). N counts the
    /// chain's entries from 1, its tail included; the tail, and any rule without conditions
    /// whose target is ACCEPT, DROP or RETURN, is `policy` in a built-in chain and `return`
    /// in a user chain; everything else is `rule`.
    fn trace_log(&self, i: u32, p: &PktCtx, fx: &mut Effects) {
        let r = &self.rules[i as usize];
        let chain = &self.chains[r.chain as usize];
        let mut start = i as usize;
        while start > 0 && self.rules[start - 1].chain == r.chain {
            start -= 1;
        }
        let num = i as usize - start + 1;
        let standard_verdict =
            matches!(r.target, CTarget::Accept | CTarget::Drop | CTarget::Return);
        let kind =
            if r.num == 0 || (r.ip.unconditional() && r.matches.is_empty() && standard_verdict) {
                if Hook::from_chain_name(chain).is_some() {
                    "policy"
                } else {
                    "return"
                }
            } else {
                "rule"
            };
        let prefix = format!("TRACE: {}:{}:{}:{} ", self.kind.name(), chain, kind, num);
        let cx = crate::logfmt::LogCtx {
            prefix: &prefix,
            flags: crate::logfmt::TCPSEQ
                | crate::logfmt::TCPOPT
                | crate::logfmt::IPOPT
                | crate::logfmt::UID,
            indev: p.indev,
            outdev: p.outdev,
            physindev: p.physindev,
            physoutdev: p.physoutdev,
            mac: p.mac,
            mark: p.mark,
            sock: p.sock,
        };
        let mut text = String::with_capacity(200);
        let end = p.d.l3_end().min(p.buf.len());
        crate::logfmt::format(&cx, &p.buf[..end], &mut text);
        // LOGLEVEL_WARNING.
        fx.logs.push(crate::targets::LogLine { level: 4, text });
    }

    /// The policy rule of the chain starting at `start`.
    fn policy_of(&self, start: u32) -> u32 {
        let ci = self.rules[start as usize].chain;
        let mut i = start;
        while !(self.rules[i as usize].chain == ci && self.rules[i as usize].num == 0) {
            i += 1;
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matches::NoHost;
    use nfrs_rules::restore::restore_new;

    fn walk_one(rules: &str, pkt: &str, hook: Hook) -> (CTable, WalkResult, Vec<TraceStep>) {
        let rs = restore_new(rules, &Default::default()).expect("restores");
        let mut st = EvalState::default();
        st.slots.push(Default::default());
        let mut t = CTable::compile(rs.table(TableKind::Filter).unwrap(), &mut st).unwrap();
        let mut p = crate::matches::testutil::pkt(pkt);
        p.indev = IfName::new("lan0");
        let mut fx = Effects::default();
        let mut stack = Vec::new();
        let mut trace = Vec::new();
        let r = t.walk(
            hook,
            &mut p,
            &mut st,
            &NoHost,
            &mut fx,
            &mut stack,
            Some(&mut trace),
        );
        (t, r, trace)
    }

    /// Replacing one rule over and over leaves its old matches behind until the table asks
    /// for a compile ([`CTable::worn`]): what the patches leave stays bounded, and a fresh
    /// compile starts clean.
    #[test]
    fn replaced_rules_leave_a_bounded_remainder() {
        let text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport 22 -m limit --limit 5/sec -j ACCEPT\nCOMMIT\n";
        let rs = restore_new(text, &Default::default()).expect("restores");
        let table = rs.table(TableKind::Filter).unwrap();
        let rule = table.chains[0].rules[0].clone();
        let mut st = EvalState::default();
        st.slots.push(Default::default());
        let mut t = CTable::compile(table, &mut st).unwrap();
        let (mats, slots) = (t.mats.len(), st.slots.len());
        let chain_of = |n: &str| table.chain_index(n);
        let mut replaced = 0;
        while t.replace_rule(0, 0, &rule, &mut st, &chain_of).unwrap() {
            replaced += 1;
            assert!(replaced < 100_000, "never asked for a compile");
        }
        assert!(t.worn());
        assert!(replaced >= STALE_MIN / 2, "asked too early: {replaced}");
        assert!(t.mats.len() <= mats + 2 * STALE_MIN + 2, "{}", t.mats.len());
        assert!(!t.delete_rule(0, 1));
        let mut st2 = EvalState::default();
        st2.slots.push(Default::default());
        let fresh = CTable::compile(table, &mut st2).unwrap();
        assert!(!fresh.worn());
        assert_eq!((fresh.mats.len(), st2.slots.len()), (mats, slots));
    }

    /// The TRACE prefixes of a traced packet walking `rules` (filter INPUT).
    fn trace_prefixes(rules: &str, pkt: &str) -> Vec<String> {
        let rs = restore_new(rules, &Default::default()).expect("restores");
        let mut st = EvalState::default();
        st.slots.push(Default::default());
        let mut t = CTable::compile(rs.table(TableKind::Filter).unwrap(), &mut st).unwrap();
        let mut p = crate::matches::testutil::pkt(pkt);
        p.indev = IfName::new("lan0");
        p.nf_trace = true;
        let mut fx = Effects::default();
        t.walk(
            Hook::Input,
            &mut p,
            &mut st,
            &NoHost,
            &mut fx,
            &mut Vec::new(),
            None,
        );
        fx.logs
            .iter()
            .map(|l| {
                assert_eq!(l.level, 4);
                l.text.split(" IN=").next().unwrap().to_string()
            })
            .collect()
    }

    #[test]
    fn trace_names_rules_returns_and_policies() {
        let rules = "*filter\n:INPUT DROP [0:0]\n:u - [0:0]\n\
            -A INPUT -p tcp -j u\n-A INPUT -p udp -j ACCEPT\n-A INPUT -j ACCEPT\n\
            -A u -p tcp --dport 1 -j DROP\nCOMMIT\n";
        // Into the user chain, off its end (its tail is entry 2, "return"), then an
        // unconditional ACCEPT counts as "policy" although it is rule 3.
        assert_eq!(
            trace_prefixes(rules, "tcp 10.0.0.2:1 > 10.0.0.1:22"),
            [
                "TRACE: filter:INPUT:rule:1",
                "TRACE: filter:u:return:2",
                "TRACE: filter:INPUT:policy:3"
            ]
        );
        assert_eq!(
            trace_prefixes(rules, "udp 10.0.0.2:1 > 10.0.0.1:22"),
            ["TRACE: filter:INPUT:rule:2"]
        );
        let policy = "*filter\n:INPUT DROP [0:0]\n-A INPUT -p udp -j ACCEPT\nCOMMIT\n";
        assert_eq!(
            trace_prefixes(policy, "tcp 10.0.0.2:1 > 10.0.0.1:22"),
            ["TRACE: filter:INPUT:policy:2"]
        );
    }

    const RULES: &str = "*filter\n:INPUT DROP [0:0]\n:a - [0:0]\n:b - [0:0]\n\
        -A INPUT -p tcp -j a\n-A INPUT -p udp -g b\n-A INPUT -p icmp -j ACCEPT\n\
        -A a -p tcp --dport 22 -j ACCEPT\n-A a -j RETURN\n\
        -A b -p udp --dport 53 -j ACCEPT\nCOMMIT\n";

    #[test]
    fn jump_return_goto_and_policy() {
        // Jump into `a`, accepted there.
        let (t, r, tr) = walk_one(RULES, "tcp 10.0.0.2:1 > 10.0.0.1:22", Hook::Input);
        assert!(r.accept);
        assert_eq!(t.describe(tr[0].rule), "filter/INPUT rule 1");
        assert_eq!(t.describe(tr[1].rule), "filter/a rule 1");
        // Jump into `a`, RETURN, then the INPUT policy (DROP) after the other rules.
        let (t, r, _) = walk_one(RULES, "tcp 10.0.0.2:1 > 10.0.0.1:80", Hook::Input);
        assert!(!r.accept);
        assert!(matches!(r.ending, Ending::Policy(i) if t.describe(i) == "filter/INPUT policy"));
        // Goto `b`: falling off its end returns to INPUT's policy, not to INPUT rule 3.
        let (t, r, tr) = walk_one(RULES, "udp 10.0.0.2:1 > 10.0.0.1:54", Hook::Input);
        assert!(!r.accept);
        assert!(tr
            .iter()
            .all(|s| t.describe(s.rule) != "filter/INPUT rule 3"));
        let (_, r, _) = walk_one(
            RULES,
            "icmp 10.0.0.2 > 10.0.0.1 type=8 code=0 id=1 seq=1",
            Hook::Input,
        );
        assert!(r.accept);
    }

    #[test]
    fn counters_count_ip_total_length() {
        let (t, _, _) = walk_one(RULES, "tcp 10.0.0.2:1 > 10.0.0.1:80 len=10", Hook::Input);
        // INPUT rule 1 (jump), a rule 2 (RETURN), the policy: 50 bytes each.
        let hits: Vec<(String, Counters)> = t
            .rules
            .iter()
            .enumerate()
            .filter(|(i, _)| t.counter(*i).packets > 0)
            .map(|(i, _)| (t.describe(i as u32), t.counter(i)))
            .collect();
        let names: Vec<&str> = hits.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "filter/INPUT rule 1",
                "filter/INPUT policy",
                "filter/a rule 2"
            ]
        );
        assert!(hits.iter().all(|(_, c)| c.packets == 1 && c.bytes == 50));
    }

    #[test]
    fn hot_record_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Hot>(), 64);
        assert_eq!(std::mem::align_of::<Hot>(), 64);
    }

    /// A walk of filter INPUT over a frame given as IP bytes.
    fn walk_bytes(rules: &str, buf: Vec<u8>) -> (CTable, WalkResult, EvalState) {
        let rs = restore_new(rules, &Default::default()).expect("restores");
        let mut st = EvalState::default();
        st.slots.push(Default::default());
        let mut t = CTable::compile(rs.table(TableKind::Filter).unwrap(), &mut st).unwrap();
        let mut p = PktCtx::new(buf).unwrap();
        p.indev = IfName::new("lan0");
        let mut fx = Effects::default();
        let r = t.walk(
            Hook::Input,
            &mut p,
            &mut st,
            &NoHost,
            &mut fx,
            &mut Vec::new(),
            None,
        );
        (t, r, st)
    }

    #[test]
    fn port_tests_from_the_hot_record() {
        // Rule 1 is decided by its ports alone (comment first); rule 2's port test fails
        // before its nth counter moves; rule 3 needs its flag test run.
        let rules = "*filter\n:INPUT ACCEPT [0:0]\n\
            -A INPUT -p tcp -m comment --comment x -m tcp --dport 22 -j DROP\n\
            -A INPUT -p tcp -m tcp ! --sport 1000:2000 -m statistic --mode nth --every 2 --packet 0 -j DROP\n\
            -A INPUT -p tcp -m tcp --dport 80 --tcp-flags SYN,ACK SYN -j DROP\nCOMMIT\n";
        let build = |line: &str| {
            let spec = nfrs_wire::line::PacketSpec::parse(line).unwrap();
            nfrs_wire::build::build_ipv4(&spec, &Default::default()).unwrap()
        };
        let rule = |t: &CTable, r: WalkResult| match r.ending {
            Ending::Rule(i) | Ending::Policy(i) | Ending::Hotdrop(i) => t.describe(i),
        };
        let (t, r, _) = walk_bytes(rules, build("tcp 10.0.0.2:1500 > 10.0.0.1:22 flags=S"));
        assert!(!r.accept);
        assert_eq!(rule(&t, r), "filter/INPUT rule 1");
        // Source port 1500 is in 1000:2000: rule 2 fails at its port test; rule 3 at its flags.
        let (t, r, _) = walk_bytes(rules, build("tcp 10.0.0.2:1500 > 10.0.0.1:80 flags=A"));
        assert!(r.accept);
        assert_eq!(rule(&t, r), "filter/INPUT policy");
        assert_eq!(
            t.counters()[..4]
                .iter()
                .map(|c| c.packets)
                .collect::<Vec<_>>(),
            [0, 0, 0, 1]
        );
        let (t, r, _) = walk_bytes(rules, build("tcp 10.0.0.2:1500 > 10.0.0.1:80 flags=S"));
        assert_eq!(rule(&t, r), "filter/INPUT rule 3");
        // Source port 3000: rule 2's nth match runs (the first packet it sees matches).
        let (t, r, _) = walk_bytes(rules, build("tcp 10.0.0.2:3000 > 10.0.0.1:80 flags=A"));
        assert_eq!(rule(&t, r), "filter/INPUT rule 2");
        // A TCP header cut short: the port test cannot be read, the match hotdrops.
        let mut cut = build("tcp 10.0.0.2:1500 > 10.0.0.1:22 flags=S");
        cut.truncate(30);
        cut[2..4].copy_from_slice(&30u16.to_be_bytes());
        let (t, r, _) = walk_bytes(rules, cut);
        assert_eq!(r.ending, Ending::Hotdrop(0));
        assert_eq!(t.counter(0).packets, 0);
    }

    /// DNAT rules answered from `CTable::nat` ask for the binding the target itself asks for
    /// (the plain walk runs `targets::dnat::run`), with each rule's own range.
    #[test]
    fn dnat_from_the_table_asks_what_the_target_asks() {
        let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:sep - [0:0]\n\
            -A PREROUTING -d 10.9.0.1/32 -p tcp -j DNAT --to-destination 10.1.0.1:8080\n\
            -A PREROUTING -d 10.9.0.2/32 -p tcp -j sep\n\
            -A PREROUTING -d 10.9.0.3/32 -j DNAT --to-destination 10.1.0.3-10.1.0.9 --random\n\
            -A PREROUTING -d 10.9.0.4/32 -p udp -j DNAT --to-destination 10.1.0.4:53-60 --persistent\n\
            -A sep -s 10.0.0.9/32 -j MARK --set-mark 1\n\
            -A sep -p tcp -j DNAT --to-destination 10.1.0.2:443\nCOMMIT\n";
        let rs = restore_new(rules, &Default::default()).expect("restores");
        let nat = rs.table(TableKind::Nat).unwrap();
        let opts = |enabled| ClassifyOpts {
            enabled,
            min_rules: 1,
        };
        let mut st = EvalState::default();
        st.slots.push(Default::default());
        let mut fast = CTable::compile_with(nat, &mut st, opts(true)).unwrap();
        let mut plain = CTable::compile_with(nat, &mut st, opts(false)).unwrap();
        assert_eq!(fast.nat.len(), 4);
        assert!(plain.nat.is_empty());
        let mut asked = Vec::new();
        for pkt in [
            "tcp 10.0.0.2:1 > 10.9.0.1:80",
            "tcp 10.0.0.2:1 > 10.9.0.2:80",
            "tcp 10.0.0.9:1 > 10.9.0.2:80",
            "udp 10.0.0.2:1 > 10.9.0.3:80",
            "udp 10.0.0.2:1 > 10.9.0.4:80",
            "udp 10.0.0.2:1 > 10.9.0.5:80",
        ] {
            let mut got = Vec::new();
            for t in [&mut fast, &mut plain] {
                let mut p = crate::matches::testutil::pkt(pkt);
                p.indev = IfName::new("lan0");
                let mut fx = Effects::default();
                let r = t.walk(
                    Hook::PreRouting,
                    &mut p,
                    &mut st,
                    &NoHost,
                    &mut fx,
                    &mut Vec::new(),
                    None,
                );
                // Rules by name: the two tables lay their chains out differently.
                let (Ending::Rule(at) | Ending::Policy(at) | Ending::Hotdrop(at)) = r.ending;
                got.push((r.accept, t.describe(at), fx.nat, p.mark));
            }
            assert_eq!(got[0], got[1], "{pkt}");
            asked.push(got[0].2.map(|n| n.range.min_addr));
        }
        assert_eq!(
            asked,
            [
                Some(0x0a01_0001),
                Some(0x0a01_0002),
                Some(0x0a01_0002),
                Some(0x0a01_0003),
                Some(0x0a01_0004),
                None
            ]
        );
    }

    /// Chains laid out depth first from the hooks: a service chain with its endpoint chains
    /// after it, a chain called twice placed once, unreachable chains last; the walk and the
    /// counters written back are those of the source order.
    #[test]
    fn chains_laid_out_in_walk_order() {
        let rules = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
            :POSTROUTING ACCEPT [0:0]\n:MASQ - [0:0]\n:SEP-A - [0:0]\n:SEP-B - [0:0]\n\
            :SEP-C - [0:0]\n:SERVICES - [0:0]\n:SVC-X - [0:0]\n:SVC-Y - [0:0]\n:unused - [0:0]\n\
            -A PREROUTING -j SERVICES\n-A OUTPUT -j SERVICES\n\
            -A SERVICES -d 10.96.0.2/32 -p tcp -j SVC-Y\n\
            -A SERVICES -d 10.96.0.1/32 -p tcp -j SVC-X\n\
            -A SVC-X -m statistic --mode nth --every 2 --packet 0 -j SEP-C\n\
            -A SVC-X -g SEP-A\n-A SVC-Y -j SEP-B\n\
            -A SEP-A -s 10.1.0.1/32 -j MASQ\n\
            -A SEP-A -p tcp -j DNAT --to-destination 10.1.0.1:80\n\
            -A SEP-B -p tcp -j DNAT --to-destination 10.1.0.2:80\n\
            -A SEP-C -s 10.1.0.3/32 -j MASQ\n\
            -A SEP-C -p tcp -j DNAT --to-destination 10.1.0.3:80\n\
            -A MASQ -j MARK --or-mark 0x4000\n-A unused -j RETURN\nCOMMIT\n";
        let rs = restore_new(rules, &Default::default()).expect("restores");
        let nat = rs.table(TableKind::Nat).unwrap();
        let names: Vec<&str> = chain_order(nat)
            .into_iter()
            .map(|c| nat.chains[c].name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "PREROUTING",
                "INPUT",
                "OUTPUT",
                "POSTROUTING",
                "SERVICES",
                "SVC-Y",
                "SEP-B",
                "SVC-X",
                "SEP-C",
                "MASQ",
                "SEP-A",
                "unused"
            ]
        );
        let mut st = EvalState::default();
        st.slots.push(Default::default());
        let opts = |enabled| ClassifyOpts {
            enabled,
            min_rules: 1,
        };
        let mut fast = CTable::compile_with(nat, &mut st, opts(true)).unwrap();
        let mut plain = CTable::compile_with(nat, &mut st, opts(false)).unwrap();
        // SVC-X's rules, tail and spare record, then SEP-C's, in one run.
        let at = |t: &CTable, chain: &str| t.chain_start[nat.chain_index(chain).unwrap()];
        assert_eq!(at(&fast, "SEP-C"), at(&fast, "SVC-X") + 3 + slack(2));
        assert_ne!(at(&plain, "SEP-C"), at(&plain, "SVC-X") + 3 + slack(2));
        let mut counted = Vec::new();
        for t in [&mut fast, &mut plain] {
            let mut path = Vec::new();
            for pkt in [
                "tcp 10.1.0.3:1 > 10.96.0.1:80",
                "tcp 10.1.0.3:1 > 10.96.0.1:80",
                "tcp 10.0.0.2:1 > 10.96.0.2:80",
                "udp 10.0.0.2:1 > 10.96.0.2:80",
            ] {
                let mut p = crate::matches::testutil::pkt(pkt);
                let mut fx = Effects::default();
                let mut trace = Vec::new();
                let r = t.walk(
                    Hook::PreRouting,
                    &mut p,
                    &mut st,
                    &NoHost,
                    &mut fx,
                    &mut Vec::new(),
                    Some(&mut trace),
                );
                let steps: Vec<String> = trace.iter().map(|s| t.describe(s.rule)).collect();
                path.push((r.accept, steps, fx.nat.map(|n| n.range.min_addr), p.mark));
            }
            let mut back = nat.clone();
            t.write_counters(&mut back);
            counted.push(back);
            assert_eq!(
                path[0].1,
                [
                    "nat/PREROUTING rule 1",
                    "nat/SERVICES rule 2",
                    "nat/SVC-X rule 1",
                    "nat/SEP-C rule 1",
                    "nat/MASQ rule 1",
                    "nat/MASQ end (return)",
                    "nat/SEP-C rule 2"
                ]
            );
            assert_eq!(path[1].1[2..], ["nat/SVC-X rule 2", "nat/SEP-A rule 2"]);
            assert_eq!(path[2].2, Some(0x0a01_0002));
            assert_eq!(
                path[3].1,
                [
                    "nat/PREROUTING rule 1",
                    "nat/SERVICES end (return)",
                    "nat/PREROUTING policy"
                ]
            );
        }
        let flat = |t: &Table| -> Vec<(String, u32, Counters)> {
            t.chains
                .iter()
                .flat_map(|c| {
                    let rules = c.rules.iter().enumerate();
                    std::iter::once((c.name.clone(), 0, c.counters))
                        .chain(rules.map(|(k, r)| (c.name.clone(), k as u32 + 1, r.counters)))
                })
                .collect()
        };
        assert_eq!(flat(&counted[0]), flat(&counted[1]));
        let hit = |t: &Table, chain: &str, num: usize| {
            t.chains[t.chain_index(chain).unwrap()].rules[num - 1]
                .counters
                .packets
        };
        assert_eq!(hit(&counted[0], "SERVICES", 2), 2);
        assert_eq!(hit(&counted[0], "SEP-C", 2), 1);
        assert_eq!(hit(&counted[0], "SEP-A", 1), 0);
    }

    /// In a big table a jump asks for its callee's run ahead (the chain and the chains it
    /// calls, laid out after it), never past the table, nothing for a classified callee; in
    /// a small table nothing at all.
    #[test]
    fn jumps_warm_their_callees_run() {
        let mut text =
            String::from("*nat\n:PREROUTING ACCEPT [0:0]\n:pad - [0:0]\n:SERVICES - [0:0]\n");
        for k in 0..40 {
            text += &format!(":SVC-{k} - [0:0]\n:SEP-{k}-a - [0:0]\n:SEP-{k}-b - [0:0]\n");
        }
        text += "-A PREROUTING -j SERVICES\n";
        for k in 0..40 {
            text += &format!("-A SERVICES -d 10.96.0.{k}/32 -p tcp -j SVC-{k}\n");
            text +=
                &format!("-A SVC-{k} -m statistic --mode nth --every 2 --packet 0 -j SEP-{k}-a\n");
            text += &format!("-A SVC-{k} -j SEP-{k}-b\n");
            for e in ["a", "b"] {
                text += &format!("-A SEP-{k}-{e} -s 10.1.0.{k}/32 -j RETURN\n");
                text += &format!("-A SEP-{k}-{e} -p tcp -j DNAT --to-destination 10.1.0.{k}:80\n");
            }
        }
        let small = text.clone() + "COMMIT\n";
        for _ in 0..WARM_TABLE_MIN {
            text += "-A pad -j RETURN\n";
        }
        text += "COMMIT\n";
        let warms = |text: &str| {
            let rs = restore_new(text, &Default::default()).expect("restores");
            let nat = rs.table(TableKind::Nat).unwrap();
            let mut st = EvalState::default();
            st.slots.push(Default::default());
            let opts = ClassifyOpts {
                enabled: true,
                min_rules: 32,
            };
            let t = CTable::compile_with(nat, &mut st, opts).unwrap();
            let mut out = Vec::new();
            for (i, h) in t.hot.iter().enumerate() {
                if matches!(h.kind, K_JUMP | K_GOTO) {
                    let warm = h.flags >> WARM_SHIFT;
                    assert!(h.jump as usize + warm as usize <= t.hot.len());
                    let callee = &t.chains[t.rules[h.jump as usize].chain as usize];
                    out.push((t.describe(i as u32), callee.clone(), warm));
                }
            }
            out
        };
        let big = warms(&text);
        assert_eq!(big.len(), 1 + 40 + 80);
        for (rule, callee, warm) in &big {
            let want = if callee == "SERVICES" {
                0
            } else if callee.starts_with("SVC-") {
                // Each chain: two rules, its tail and its spare room.
                3 * (3 + slack(2))
            } else {
                3 + slack(2)
            };
            assert_eq!(*warm, want, "{rule} -> {callee}");
        }
        assert!(warms(&small).iter().all(|(_, _, w)| *w == 0));
    }

    #[test]
    fn interface_and_address_tests() {
        let rules =
            "*filter\n-A INPUT -i lan+ -s 10.0.0.0/24 ! -d 10.0.0.9 -p udp -j DROP\nCOMMIT\n";
        let (_, r, _) = walk_one(rules, "udp 10.0.0.2:1 > 10.0.0.1:2", Hook::Input);
        assert!(!r.accept);
        let (_, r, _) = walk_one(rules, "udp 10.0.0.2:1 > 10.0.0.9:2", Hook::Input);
        assert!(r.accept);
        let (_, r, _) = walk_one(rules, "udp 10.0.1.2:1 > 10.0.0.1:2", Hook::Input);
        assert!(r.accept);
        let rules = "*filter\n-A INPUT ! -i lan0 -j DROP\n-A INPUT -f -j DROP\nCOMMIT\n";
        let (_, r, _) = walk_one(rules, "udp 10.0.0.2:1 > 10.0.0.1:2", Hook::Input);
        assert!(r.accept);
        let (_, r, _) = walk_one(rules, "udp 10.0.0.2 > 10.0.0.1 frag=8 len=8", Hook::Input);
        assert!(!r.accept);
    }
}
