//! `-m mark --mark value[/mask]` (xt_mark mark_mt).

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::mark::Mark;

/// Nothing to check.
pub fn compile(_m: &Mark, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule: `(skb->mark & mask) == mark`, inverted by `!`.
pub fn eval(m: &Mark, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    ((p.mark & m.mask) == m.mark) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn mark_and_mask() {
        let mut p = pkt("udp 10.0.0.2:1 > 10.0.0.1:2");
        p.mark = 0x1234;
        assert!(eval(&rule_matches(&["-m", "mark", "--mark", "0x34/0xff"])[0], &p).0);
        assert!(!eval(&rule_matches(&["-m", "mark", "--mark", "0x34"])[0], &p).0);
        assert!(eval(&rule_matches(&["-m", "mark", "!", "--mark", "0x34"])[0], &p).0);
    }
}
