//! `-j DNAT --to-destination ...`: asks for a destination NAT binding.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::nat::{range_flags, NatKind, NatRange, NatRequest};
use crate::pkt::PktCtx;
use nfrs_rules::ext::dnat::{Dnat, NatRange as RuleRange};

/// Needs conntrack.
pub fn compile(t: &Dnat, cx: &mut TargetCtx) -> Result<(), CompileError> {
    if t.range.base.is_some() {
        return Err(CompileError(
            "nfrs replay: DNAT with a port shift (`/base`) not yet supported by the engine".into(),
        ));
    }
    cx.needs_conntrack = true;
    Ok(())
}

/// The engine's range from the rule's.
pub fn range(r: &RuleRange) -> NatRange {
    let mut n = NatRange::default();
    if let Some((a, b)) = r.addrs {
        n.flags |= range_flags::MAP_IPS;
        n.min_addr = u32::from(a);
        n.max_addr = u32::from(b);
    }
    if let Some((a, b)) = r.ports {
        n.flags |= range_flags::PROTO_SPECIFIED;
        n.min_proto = a;
        n.max_proto = b;
    }
    if r.random {
        n.flags |= range_flags::PROTO_RANDOM;
    }
    if r.random_fully {
        n.flags |= range_flags::PROTO_RANDOM_FULLY;
    }
    if r.persistent {
        n.flags |= range_flags::PERSISTENT;
    }
    n
}

/// Records the binding request; ACCEPT.
pub fn run(t: &Dnat, _p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    env.fx.nat = Some(NatRequest {
        kind: NatKind::Dnat,
        range: range(&t.range),
    });
    TVerdict::Accept
}
