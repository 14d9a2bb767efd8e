//! `-m mac`: not yet evaluated by the engine; a ruleset using it is refused when compiled.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::mac::Mac;

/// Checks the match when the ruleset is compiled.
pub fn compile(_m: &Mac, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_match("mac"))
}

/// Never called: [`compile`] refuses.
pub fn eval(_m: &Mac, _p: &PktCtx, _env: &mut MatchEnv) -> bool {
    false
}
