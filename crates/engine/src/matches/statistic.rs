//! `-m statistic`: not yet evaluated by the engine; a ruleset using it is refused when compiled.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::statistic::Statistic;

/// Per-rule state of `-m statistic` (one per rule using it, kept in `EvalState::slots`).
#[derive(Clone, Debug, Default)]
pub struct State {}

/// Checks the match when the ruleset is compiled.
pub fn compile(_m: &Statistic, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Err(CompileError::unsupported_match("statistic"))
}

/// Never called: [`compile`] refuses.
pub fn eval(_m: &Statistic, _p: &PktCtx, _env: &mut MatchEnv) -> bool {
    false
}
