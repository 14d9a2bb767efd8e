//! `-m recent`: not yet evaluated by the engine; a ruleset using it is refused when compiled.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::recent::Recent;

/// The named address lists of `-m recent`, shared by every rule naming the same list
/// (kept in `EvalState::recent`).
#[derive(Clone, Debug, Default)]
pub struct Tables {}

/// Checks the match when the ruleset is compiled.
pub fn compile(_m: &Recent, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_match("recent"))
}

/// Never called: [`compile`] refuses.
pub fn eval(_m: &Recent, _p: &PktCtx, _env: &mut MatchEnv) -> bool {
    false
}
