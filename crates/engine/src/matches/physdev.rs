//! `-m physdev`: not yet evaluated by the engine; a ruleset using it is refused when compiled.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::physdev::Physdev;

/// Checks the match when the ruleset is compiled.
pub fn compile(_m: &Physdev, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_match("physdev"))
}

/// Never called: [`compile`] refuses.
pub fn eval(_m: &Physdev, _p: &PktCtx, _env: &mut MatchEnv) -> bool {
    false
}
