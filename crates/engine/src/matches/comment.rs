//! `-m comment`: always matches.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::comment::Comment;

/// Nothing to check.
pub fn compile(_m: &Comment, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Always true.
pub fn eval(_m: &Comment, _p: &PktCtx, _env: &mut MatchEnv) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn matches_everything() {
        let p = pkt("udp 10.0.0.2:1 > 10.0.0.1:2");
        assert!(eval(&rule_matches(&["-m", "comment", "--comment", "x"])[0], &p).0);
    }
}
