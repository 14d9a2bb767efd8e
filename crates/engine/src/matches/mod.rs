//! Rule matches (`-m NAME`): one file per extension, each with `compile` (checks when the
//! ruleset is loaded, may claim a state slot or ask for conntrack) and `eval` (the packet path:
//! no allocation, no clock but `PktCtx::now`). [`eval_match`] dispatches with a `match` on the
//! `nfrs_rules::ext::Match` enum. See `README.md` here for the contract.

use crate::pkt::PktCtx;
use nfrs_rules::ext::Match;
use nfrs_rules::{Hook, IpSpec, TableKind};
use std::fmt;

pub mod comment;
pub mod connbytes;
pub mod connlimit;
pub mod conntrack;
pub mod icmp;
pub mod mark;
pub mod multiport;
pub mod state;
pub mod tcp;
pub mod udp;

pub mod addrtype;
pub mod connmark;
pub mod dscp;
pub mod hashlimit;
pub mod helper;
pub mod iprange;
pub mod length;
pub mod limit;
pub mod mac;
pub mod owner;
pub mod physdev;
pub mod pkttype;
pub mod recent;
pub mod rpfilter;
pub mod statistic;
pub mod string;
pub mod tcpmss;
pub mod tos;
pub mod ttl;
pub mod u32;

/// A ruleset the engine cannot run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileError(pub String);

impl CompileError {
    /// "nfrs replay: match `x` not yet supported by the engine".
    pub fn unsupported_match(name: &str) -> CompileError {
        CompileError(format!(
            "nfrs replay: match `{name}` not yet supported by the engine"
        ))
    }
    /// "nfrs replay: target `X` not yet supported by the engine".
    pub fn unsupported_target(name: &str) -> CompileError {
        CompileError(format!(
            "nfrs replay: target `{name}` not yet supported by the engine"
        ))
    }
}

impl fmt::Display for CompileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CompileError {}

/// Per-rule state of a stateful match (one slot per rule instance; see `CompileCtx::new_slot`).
#[derive(Clone, Debug, Default)]
pub enum StateSlot {
    /// No state.
    #[default]
    None,
    /// `-m limit`.
    Limit(limit::State),
    /// `-m hashlimit` (boxed, as the other large states, so that a slot stays small: the
    /// slots of many `nth` or `limit` rules then share cache lines).
    Hashlimit(Box<hashlimit::State>),
    /// `-m statistic` (`--mode nth` counter).
    Statistic(statistic::State),
    /// `-m string` (search tables built once).
    String(Box<string::State>),
    /// `-m connlimit` (nf_conncount's lists by key).
    Connlimit(Box<connlimit::State>),
}

/// State of stateful matches and targets, kept across packets (limit, hashlimit and recent run
/// on the scenario clock, `PktCtx::now`).
#[derive(Clone, Debug, Default)]
pub struct EvalState {
    /// Per-rule slots, indexed by the slot number `compile` obtained.
    pub slots: Vec<StateSlot>,
    /// `-m recent` lists by name.
    pub recent: recent::Tables,
    /// A rule needs conntrack accounting (`-m connbytes` turns `nf_conntrack_acct` on).
    pub needs_acct: bool,
    /// Random numbers for matches (`-m statistic --mode random`), seeded, never the OS's.
    pub rng: statistic::Rng,
}

/// What the host knows about addresses (for `-m addrtype`): the kernel's route types.
pub trait HostInfo {
    /// The RTN_* type of `addr` (1 unicast, 2 local, 3 broadcast, 5 multicast, 7 unreachable,
    /// ...) as the routing table sees it, restricted to device `dev` when given.
    fn addr_type(&self, addr: u32, dev: Option<&str>) -> u8;
    /// MTU of device `dev`, None when unknown.
    fn dev_mtu(&self, _dev: &str) -> Option<u32> {
        None
    }
    /// MTU of the route to `addr` (the kernel's tcpmss_reverse_mtu: a route lookup towards the
    /// packet's source), None when there is no route.
    fn route_mtu(&self, _addr: u32) -> Option<u32> {
        None
    }
    /// The kernel's fib_lookup towards `addr` (for `-m rpfilter`): the RTN_* type of the route
    /// found and its output device (None for routes through loopback), None when no route.
    fn fib_lookup(&self, _addr: u32) -> Option<(u8, Option<&crate::pkt::IfName>)> {
        None
    }
    /// What nf_conncount learns about a remembered connection (`-m connlimit`): None when no
    /// confirmed, unexpired conntrack entry has `tuple` in `zone`, else whether it is closed
    /// (TCP in TIME_WAIT or CLOSE).
    fn conn_alive(&self, _tuple: &nfrs_conntrack::Tuple, _zone: u16, _now: u64) -> Option<bool> {
        None
    }
}

/// A host that knows no addresses (tests).
pub struct NoHost;

impl HostInfo for NoHost {
    fn addr_type(&self, _addr: u32, _dev: Option<&str>) -> u8 {
        1
    }
}

/// What `eval` gets besides the packet.
pub struct MatchEnv<'a> {
    /// Stateful matches' state.
    pub state: &'a mut EvalState,
    /// This rule instance's slot (from `CompileCtx::new_slot`), 0 if none was asked for.
    pub slot: u32,
    /// Set to drop the packet at once (the kernel's `par->hotdrop`: a header that cannot be
    /// read where the match must read it).
    pub hotdrop: bool,
    /// Address knowledge of the host.
    pub host: &'a dyn HostInfo,
}

/// What `compile` gets: where the rule sits, and ways to claim state.
pub struct CompileCtx<'a> {
    /// The rule's table.
    pub table: TableKind,
    /// Hooks the rule is reachable from (bits of `Hook::bit`).
    pub hooks: u8,
    /// The rule's generic part.
    pub ip: &'a IpSpec,
    /// Set when the rule needs connection tracking (state, conntrack, helper, connmark...).
    pub needs_conntrack: bool,
    /// The state being built.
    pub state: &'a mut EvalState,
    /// The slot claimed by the match being compiled (0 = none).
    pub slot: u32,
}

impl CompileCtx<'_> {
    /// Claims a fresh state slot holding `s`; the rule's `MatchEnv::slot` will name it.
    pub fn new_slot(&mut self, s: StateSlot) -> u32 {
        self.state.slots.push(s);
        self.slot = (self.state.slots.len() - 1) as u32;
        self.slot
    }
    /// True when the rule is reachable from `hook`.
    pub fn reachable_from(&self, hook: Hook) -> bool {
        self.hooks & hook.bit() != 0
    }
}

/// Compiles one match: refuses what the engine cannot evaluate; returns the state slot
/// (0 = none).
pub fn compile_match(m: &Match, cx: &mut CompileCtx) -> Result<u32, CompileError> {
    cx.slot = 0;
    match m {
        Match::Tcp(x) => tcp::compile(x, cx),
        Match::Udp(x) => udp::compile(x, cx),
        Match::Icmp(x) => icmp::compile(x, cx),
        Match::Multiport(x) => multiport::compile(x, cx),
        Match::State(x) => state::compile(x, cx),
        Match::Conntrack(x) => conntrack::compile(x, cx),
        Match::Mark(x) => mark::compile(x, cx),
        Match::Comment(x) => comment::compile(x, cx),
        Match::Limit(x) => limit::compile(x, cx),
        Match::Hashlimit(x) => hashlimit::compile(x, cx),
        Match::Recent(x) => recent::compile(x, cx),
        Match::Iprange(x) => iprange::compile(x, cx),
        Match::Addrtype(x) => addrtype::compile(x, cx),
        Match::Length(x) => length::compile(x, cx),
        Match::Ttl(x) => ttl::compile(x, cx),
        Match::Tos(x) => tos::compile(x, cx),
        Match::Dscp(x) => dscp::compile(x, cx),
        Match::Mac(x) => mac::compile(x, cx),
        Match::Pkttype(x) => pkttype::compile(x, cx),
        Match::String(x) => string::compile(x, cx),
        Match::Statistic(x) => statistic::compile(x, cx),
        Match::Owner(x) => owner::compile(x, cx),
        Match::Physdev(x) => physdev::compile(x, cx),
        Match::Helper(x) => helper::compile(x, cx),
        Match::Tcpmss(x) => tcpmss::compile(x, cx),
        Match::Connmark(x) => connmark::compile(x, cx),
        Match::Rpfilter(x) => rpfilter::compile(x, cx),
        Match::U32(x) => u32::compile(x, cx),
        Match::Connbytes(x) => connbytes::compile(x, cx),
        Match::Connlimit(x) => connlimit::compile(x, cx),
        // Never committed: nfrs has no nfacct objects, so the rules crate refuses it.
        Match::Nfacct(_) => Err(CompileError::unsupported_match("nfacct")),
    }?;
    Ok(cx.slot)
}

/// Evaluates one match on a packet (the kernel's `xt_match.match`).
#[inline]
pub fn eval_match(m: &Match, p: &PktCtx, env: &mut MatchEnv) -> bool {
    match m {
        Match::Tcp(x) => tcp::eval(x, p, env),
        Match::Udp(x) => udp::eval(x, p, env),
        Match::Icmp(x) => icmp::eval(x, p, env),
        Match::Multiport(x) => multiport::eval(x, p, env),
        Match::State(x) => state::eval(x, p, env),
        Match::Conntrack(x) => conntrack::eval(x, p, env),
        Match::Mark(x) => mark::eval(x, p, env),
        Match::Comment(x) => comment::eval(x, p, env),
        Match::Limit(x) => limit::eval(x, p, env),
        Match::Hashlimit(x) => hashlimit::eval(x, p, env),
        Match::Recent(x) => recent::eval(x, p, env),
        Match::Iprange(x) => iprange::eval(x, p, env),
        Match::Addrtype(x) => addrtype::eval(x, p, env),
        Match::Length(x) => length::eval(x, p, env),
        Match::Ttl(x) => ttl::eval(x, p, env),
        Match::Tos(x) => tos::eval(x, p, env),
        Match::Dscp(x) => dscp::eval(x, p, env),
        Match::Mac(x) => mac::eval(x, p, env),
        Match::Pkttype(x) => pkttype::eval(x, p, env),
        Match::String(x) => string::eval(x, p, env),
        Match::Statistic(x) => statistic::eval(x, p, env),
        Match::Owner(x) => owner::eval(x, p, env),
        Match::Physdev(x) => physdev::eval(x, p, env),
        Match::Helper(x) => helper::eval(x, p, env),
        Match::Tcpmss(x) => tcpmss::eval(x, p, env),
        Match::Connmark(x) => connmark::eval(x, p, env),
        Match::Rpfilter(x) => rpfilter::eval(x, p, env),
        Match::U32(x) => u32::eval(x, p, env),
        Match::Connbytes(x) => connbytes::eval(x, p, env),
        Match::Connlimit(x) => connlimit::eval(x, p, env),
        Match::Nfacct(_) => false,
    }
}

/// Kernel rule (xt_tcpudp.c port_match): a port range test, inverted by `!`.
#[inline]
pub fn port_in(range: (u16, u16), port: u16, invert: bool) -> bool {
    (port >= range.0 && port <= range.1) ^ invert
}

#[cfg(test)]
pub(crate) mod testutil {
    use super::*;
    use crate::pkt::PktCtx;
    use nfrs_wire::build::{build_ipv4, FrameCtx};
    use nfrs_wire::line::PacketSpec;

    /// A packet context from a packet line (`tcp 1.2.3.4:5 > 6.7.8.9:10 flags=S`).
    pub fn pkt(line: &str) -> PktCtx {
        let spec = PacketSpec::parse(line).expect("packet line");
        let buf = build_ipv4(&spec, &FrameCtx::default()).expect("build");
        PktCtx::new(buf).expect("parses")
    }

    /// Evaluates `m` on `p` with fresh state; returns (matched, hotdrop).
    pub fn eval(m: &Match, p: &PktCtx) -> (bool, bool) {
        let mut st = EvalState::default();
        let ip = IpSpec::default();
        let mut cx = CompileCtx {
            table: TableKind::Filter,
            hooks: Hook::Input.bit(),
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        let slot = compile_match(m, &mut cx).expect("compiles");
        let mut env = MatchEnv {
            state: &mut st,
            slot,
            hotdrop: false,
            host: &NoHost,
        };
        let r = eval_match(m, p, &mut env);
        (r, env.hotdrop)
    }

    /// Parses `-m ...` options into the rule's matches (through nfrs-rules' own parser).
    pub fn rule_matches(args: &[&str]) -> Vec<Match> {
        let r =
            nfrs_rules::parse::parse_rule(TableKind::Filter, "INPUT", args).expect("rule parses");
        r.matches
    }
}

#[cfg(test)]
mod slot_tests {
    /// A slot is at most half a cache line (the large states are boxed): the per-rule counters
    /// of `nth` and `limit` rules, one touched for each packet that reaches such a rule, pack
    /// two or more to a line instead of one rule's slot spanning four lines.
    #[test]
    fn state_slot_is_small() {
        assert!(std::mem::size_of::<super::StateSlot>() <= 32);
    }
}
