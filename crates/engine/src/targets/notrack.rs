//! `-j NOTRACK` (raw table; iptables 1.8.9 sends it as `CT --notrack`): the packet stays
//! untracked (state UNTRACKED, no entry, no NAT).

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::notrack::Notrack;

/// Nothing to check. The kernel's xt_CT does not load conntrack for `--notrack` (it returns
/// before nf_ct_netns_get), so neither does this.
pub fn compile(_t: &Notrack, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (xt_ct_target with no template): a packet that already carries a connection
/// (or was already marked untracked, e.g. looped back from this host) is left alone;
/// otherwise it is marked untracked. The walk continues.
pub fn run(_t: &Notrack, p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    mark_untracked(p, env);
    TVerdict::Continue
}

/// True when the packet already has its conntrack reference (skb->_nfct set).
pub fn has_nfct(p: &PktCtx) -> bool {
    p.ct.id.is_some() || p.ct.info == nfrs_conntrack::CtInfo::Untracked
}

/// Marks the packet untracked unless it already has a conntrack reference.
pub fn mark_untracked(p: &PktCtx, env: &mut TargetEnv) {
    if !has_nfct(p) {
        env.fx.notrack = true;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Effects, TargetEnv};
    use super::*;
    use crate::matches::testutil::pkt;
    use crate::matches::{EvalState, NoHost};
    use nfrs_conntrack::ConnId;

    #[test]
    fn marks_untracked_unless_attached() {
        let mut p = pkt("udp 10.0.0.2:1000 > 10.0.0.1:53");
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        assert_eq!(run(&Notrack {}, &mut p, &mut env), TVerdict::Continue);
        assert!(env.fx.notrack);
        env.fx.clear();
        p.ct.id = Some(ConnId(4));
        run(&Notrack {}, &mut p, &mut env);
        assert!(!env.fx.notrack, "looped-back packet keeps its connection");
    }
}
