//! `-j MARK`: not yet run by the engine; a ruleset using it is refused when compiled.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::mark_target::MarkTarget;

/// Checks the target when the ruleset is compiled.
pub fn compile(_t: &MarkTarget, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_target("MARK"))
}

/// Never called: [`compile`] refuses.
pub fn run(_t: &MarkTarget, _p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    TVerdict::Drop
}
