//! `-j MASQUERADE [--to-ports] [--random] [--random-fully]`: source NAT to the output device's
//! address.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::nat::{range_flags, NatKind, NatRange, NatRequest};
use crate::pkt::PktCtx;
use nfrs_rules::ext::masquerade::Masquerade;

/// Needs conntrack.
pub fn compile(_t: &Masquerade, cx: &mut TargetCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    Ok(())
}

/// Records the binding request; ACCEPT.
pub fn run(t: &Masquerade, _p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    let mut r = NatRange::default();
    if let Some((a, b)) = t.ports {
        r.flags |= range_flags::PROTO_SPECIFIED;
        r.min_proto = a;
        r.max_proto = b;
    }
    if t.random {
        r.flags |= range_flags::PROTO_RANDOM;
    }
    if t.random_fully {
        r.flags |= range_flags::PROTO_RANDOM_FULLY;
    }
    env.fx.nat = Some(NatRequest {
        kind: NatKind::Masquerade,
        range: r,
    });
    TVerdict::Accept
}
