//! Rule targets (`-j NAME` extensions): one file per extension, each with `compile` (checks
//! when the ruleset is loaded) and `run` (the packet path). A target returns a [`TVerdict`]
//! and may change the packet (`PktCtx`: bytes through `nfrs_wire::desc::mangle`, mark,
//! conntrack snapshot) and record effects in [`Effects`] (log lines, packets the host must
//! send, a NAT binding to set up, NOTRACK), which the engine carries out after the table.

use crate::matches::{CompileError, EvalState, HostInfo};
use crate::nat::NatRequest;
use crate::pkt::{IfName, PktCtx};
use nfrs_rules::ext::TargetExt;
use nfrs_rules::{IpSpec, TableKind};

pub mod checksum;
pub mod connmark;
pub mod ct;
pub mod dnat;
pub mod dscp;
pub mod ecn;
pub mod log;
pub mod mark;
pub mod masquerade;
pub mod netmap;
pub mod notrack;
pub mod redirect;
pub mod reject;
pub mod snat;
pub mod tcpmss;
pub mod tee;
pub mod tos;
pub mod trace;
pub mod ttl;

/// What a target tells the table walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TVerdict {
    /// Go on with the next rule (XT_CONTINUE).
    Continue,
    /// NF_ACCEPT: leave this table.
    Accept,
    /// NF_DROP.
    Drop,
}

/// A packet the host sends because of a target (REJECT), built by the engine from the
/// packet as it stands when the target runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EmitReq {
    /// `--reject-with tcp-reset`.
    TcpReset,
    /// An ICMP error of this type and code quoting the packet.
    IcmpError {
        /// ICMP type.
        ty: u8,
        /// ICMP code.
        code: u8,
    },
}

/// A copy of a packet `-j TEE` routes to a gateway (nf_dup_ipv4), carried out by the engine
/// at its place among the walk's log lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeeReq {
    /// The packet bytes when the target ran.
    pub ip: Vec<u8>,
    /// The gateway.
    pub gw: u32,
    /// `--oif`, empty when not given.
    pub oif: IfName,
    /// How many of the walk's log lines come before the copy.
    pub log_pos: usize,
}

/// One kernel log line: level and text (without the `<level>` prefix and timestamp).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    /// Syslog level (0-7).
    pub level: u8,
    /// The line.
    pub text: String,
}

/// What the targets of one table walk asked for, carried out by the engine.
#[derive(Clone, Debug, Default)]
pub struct Effects {
    /// Log lines in order.
    pub logs: Vec<LogLine>,
    /// Packets to send, each with the packet bytes at the time (quoted / answered).
    pub emits: Vec<(EmitReq, Vec<u8>)>,
    /// A NAT binding to set up for the packet's connection (nat table targets).
    pub nat: Option<NatRequest>,
    /// NOTRACK / CT --notrack: leave the packet untracked.
    pub notrack: bool,
    /// `CT --helper`: the helper (index into `pkt::HELPER_NAMES`, 0 = none) for the connection
    /// the packet creates.
    pub helper: u8,
    /// `CT --zone`: the conntrack zone the packet is tracked in (0 = the default zone).
    pub zone: u16,
    /// `TEE` copies, in order.
    pub tee: Vec<TeeReq>,
}

impl Effects {
    /// Forgets everything (keeps capacity).
    #[inline]
    pub fn clear(&mut self) {
        self.logs.clear();
        self.emits.clear();
        self.nat = None;
        self.notrack = false;
        self.helper = 0;
        self.zone = 0;
        self.tee.clear();
    }
}

/// What `run` gets besides the packet.
pub struct TargetEnv<'a> {
    /// Stateful extensions' state.
    pub state: &'a mut EvalState,
    /// This rule instance's slot (from `TargetCtx::slot`), 0 if none.
    pub slot: u32,
    /// Address knowledge of the host.
    pub host: &'a dyn HostInfo,
    /// Effects to carry out.
    pub fx: &'a mut Effects,
}

/// What `compile` gets.
pub struct TargetCtx<'a> {
    /// The rule's table.
    pub table: TableKind,
    /// Hooks the rule is reachable from.
    pub hooks: u8,
    /// The rule's generic part.
    pub ip: &'a IpSpec,
    /// Set when the target needs connection tracking (NAT, CONNMARK, CT...).
    pub needs_conntrack: bool,
    /// State being built.
    pub state: &'a mut EvalState,
    /// Slot claimed (0 = none).
    pub slot: u32,
}

/// Compiles one target; returns its state slot (0 = none).
pub fn compile_target(t: &TargetExt, cx: &mut TargetCtx) -> Result<u32, CompileError> {
    cx.slot = 0;
    match t {
        TargetExt::Log(x) => log::compile(x, cx),
        TargetExt::Reject(x) => reject::compile(x, cx),
        TargetExt::Mark(x) => mark::compile(x, cx),
        TargetExt::Dnat(x) => dnat::compile(x, cx),
        TargetExt::Snat(x) => snat::compile(x, cx),
        TargetExt::Masquerade(x) => masquerade::compile(x, cx),
        TargetExt::Connmark(x) => connmark::compile(x, cx),
        TargetExt::Redirect(x) => redirect::compile(x, cx),
        TargetExt::Netmap(x) => netmap::compile(x, cx),
        TargetExt::Ct(x) => ct::compile(x, cx),
        TargetExt::Notrack(x) => notrack::compile(x, cx),
        TargetExt::Tcpmss(x) => tcpmss::compile(x, cx),
        TargetExt::Ttl(x) => ttl::compile(x, cx),
        TargetExt::Tos(x) => tos::compile(x, cx),
        TargetExt::Dscp(x) => dscp::compile(x, cx),
        TargetExt::Ecn(x) => ecn::compile(x, cx),
        TargetExt::Checksum(x) => checksum::compile(x, cx),
        TargetExt::Trace(x) => trace::compile(x, cx),
        TargetExt::Tee(x) => tee::compile(x, cx),
    }?;
    Ok(cx.slot)
}

/// Runs one target on a packet (the kernel's `xt_target.target`).
#[inline]
pub fn run_target(t: &TargetExt, p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    match t {
        TargetExt::Log(x) => log::run(x, p, env),
        TargetExt::Reject(x) => reject::run(x, p, env),
        TargetExt::Mark(x) => mark::run(x, p, env),
        TargetExt::Dnat(x) => dnat::run(x, p, env),
        TargetExt::Snat(x) => snat::run(x, p, env),
        TargetExt::Masquerade(x) => masquerade::run(x, p, env),
        TargetExt::Connmark(x) => connmark::run(x, p, env),
        TargetExt::Redirect(x) => redirect::run(x, p, env),
        TargetExt::Netmap(x) => netmap::run(x, p, env),
        TargetExt::Ct(x) => ct::run(x, p, env),
        TargetExt::Notrack(x) => notrack::run(x, p, env),
        TargetExt::Tcpmss(x) => tcpmss::run(x, p, env),
        TargetExt::Ttl(x) => ttl::run(x, p, env),
        TargetExt::Tos(x) => tos::run(x, p, env),
        TargetExt::Dscp(x) => dscp::run(x, p, env),
        TargetExt::Ecn(x) => ecn::run(x, p, env),
        TargetExt::Checksum(x) => checksum::run(x, p, env),
        TargetExt::Trace(x) => trace::run(x, p, env),
        TargetExt::Tee(x) => tee::run(x, p, env),
    }
}
