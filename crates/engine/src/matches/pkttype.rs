//! `-m pkttype`: not yet evaluated by the engine; a ruleset using it is refused when compiled.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::pkttype::Pkttype;

/// Checks the match when the ruleset is compiled.
pub fn compile(_m: &Pkttype, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_match("pkttype"))
}

/// Never called: [`compile`] refuses.
pub fn eval(_m: &Pkttype, _p: &PktCtx, _env: &mut MatchEnv) -> bool {
    false
}
