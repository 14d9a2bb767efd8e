//! `-m ttl`: not yet evaluated by the engine; a ruleset using it is refused when compiled.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::ttl::Ttl;

/// Checks the match when the ruleset is compiled.
pub fn compile(_m: &Ttl, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_match("ttl"))
}

/// Never called: [`compile`] refuses.
pub fn eval(_m: &Ttl, _p: &PktCtx, _env: &mut MatchEnv) -> bool {
    false
}
