//! `-m connmark --mark value[/mask]` (xt_connmark connmark_mt): the connection's mark.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::connmark::Connmark;

/// Needs connection tracking (the kernel loads conntrack for connmark).
pub fn compile(_m: &Connmark, cx: &mut CompileCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    Ok(())
}

/// Kernel rule: no connection (untracked, invalid) never matches, even with `!`; otherwise
/// `(ctmark & mask) == mark`, inverted by `!`.
pub fn eval(m: &Connmark, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    if !p.ct.tracked() {
        return false;
    }
    ((p.ct.mark & m.mask) == m.mark) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};
    use nfrs_conntrack::{ConnId, CtInfo};

    #[test]
    fn ctmark_with_mask_and_no_connection() {
        let mut p = pkt("tcp 10.0.0.2:1000 > 10.0.0.1:22 flags=A");
        let yes = rule_matches(&["-m", "connmark", "--mark", "0x10/0xf0"]).remove(0);
        let not = rule_matches(&["-m", "connmark", "!", "--mark", "0x10/0xf0"]).remove(0);
        assert!(!eval(&yes, &p).0);
        assert!(!eval(&not, &p).0, "no connection: no match even inverted");
        p.ct.id = Some(ConnId(1));
        p.ct.info = CtInfo::Established;
        p.ct.mark = 0x1234_5617;
        assert!(eval(&yes, &p).0);
        assert!(!eval(&not, &p).0);
        p.ct.mark = 0x20;
        assert!(!eval(&yes, &p).0);
        assert!(eval(&not, &p).0);
        p.ct.info = CtInfo::Untracked;
        assert!(!eval(&not, &p).0);
    }
}
