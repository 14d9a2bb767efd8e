//! `-j SNAT --to-source ...`: asks for a source NAT binding (decided once per connection).

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::nat::{NatKind, NatRequest};
use crate::pkt::PktCtx;
use nfrs_rules::ext::snat::Snat;

/// Needs conntrack.
pub fn compile(_t: &Snat, cx: &mut TargetCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    Ok(())
}

/// Records the binding request; the verdict is ACCEPT (NF_ACCEPT after nf_nat_setup_info).
pub fn run(t: &Snat, _p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    env.fx.nat = Some(NatRequest {
        kind: NatKind::Snat,
        range: super::dnat::range(&t.range),
    });
    TVerdict::Accept
}
