//! `-j DNAT`: not yet run by the engine; a ruleset using it is refused when compiled.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::dnat::Dnat;

/// Checks the target when the ruleset is compiled.
pub fn compile(_t: &Dnat, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_target("DNAT"))
}

/// Never called: [`compile`] refuses.
pub fn run(_t: &Dnat, _p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    TVerdict::Drop
}
