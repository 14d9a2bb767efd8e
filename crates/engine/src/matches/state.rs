//! `-m state --state LIST` (xt_state): the packet's conntrack state bit.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::state::State;

/// Needs connection tracking (the kernel loads it for this match).
pub fn compile(_m: &State, cx: &mut CompileCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    Ok(())
}

/// Kernel rule: no connection = INVALID, NOTRACK = UNTRACKED, else the ctinfo's state.
pub fn eval(m: &State, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    (m.mask & p.ct.state_bit() != 0) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};
    use nfrs_conntrack::{ConnId, CtInfo};

    #[test]
    fn states() {
        let mut p = pkt("udp 10.0.0.2:1 > 10.0.0.1:2");
        let m = rule_matches(&["-m", "state", "--state", "ESTABLISHED,RELATED"]).remove(0);
        assert!(!eval(&m, &p).0, "no connection is INVALID");
        p.ct.id = Some(ConnId(0));
        p.ct.info = CtInfo::EstablishedReply;
        assert!(eval(&m, &p).0);
        p.ct.info = CtInfo::New;
        assert!(!eval(&m, &p).0);
        let inv = rule_matches(&["-m", "state", "!", "--state", "NEW"]).remove(0);
        assert!(!eval(&inv, &p).0);
        p.ct.info = CtInfo::Untracked;
        p.ct.id = None;
        assert!(
            eval(
                &rule_matches(&["-m", "state", "--state", "UNTRACKED"])[0],
                &p
            )
            .0
        );
    }
}
