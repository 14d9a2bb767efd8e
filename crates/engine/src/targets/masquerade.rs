//! `-j MASQUERADE`: not yet run by the engine; a ruleset using it is refused when compiled.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::masquerade::Masquerade;

/// Checks the target when the ruleset is compiled.
pub fn compile(_t: &Masquerade, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_target("MASQUERADE"))
}

/// Never called: [`compile`] refuses.
pub fn run(_t: &Masquerade, _p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    TVerdict::Drop
}
