//! `-j MARK` (revision 2): new mark = (old & ~mask) ^ value.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::mark_target::MarkTarget;

/// Nothing to check (nfrs-rules checked the table: mangle... any table is allowed for MARK v2).
pub fn compile(_t: &MarkTarget, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (mark_tg): `skb->mark = (skb->mark & ~mask) ^ mark`, then continue.
pub fn run(t: &MarkTarget, p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    p.mark = (p.mark & !t.mask) ^ t.mark;
    TVerdict::Continue
}
