//! `-j CONNMARK`: not yet run by the engine; a ruleset using it is refused when compiled.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::connmark_target::ConnmarkTarget;

/// Checks the target when the ruleset is compiled.
pub fn compile(_t: &ConnmarkTarget, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_target("CONNMARK"))
}

/// Never called: [`compile`] refuses.
pub fn run(_t: &ConnmarkTarget, _p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    TVerdict::Drop
}
