//! `-j TRACE` (xt_TRACE, raw table): sets the packet's trace flag; the table walk
//! ([`crate::table::CTable::walk`]) then logs every rule the packet meets.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::trace::Trace;

/// Nothing to prepare.
pub fn compile(_t: &Trace, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (trace_tg): skb->nf_trace = 1, and the walk continues.
pub fn run(_t: &Trace, p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    p.nf_trace = true;
    TVerdict::Continue
}
