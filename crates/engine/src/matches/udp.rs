//! `-m udp`: source and destination port ranges (the kernel's xt_tcpudp udp_mt).

use super::{port_in, CompileCtx, CompileError, MatchEnv};
use crate::pkt::{L4Kind, PktCtx};
use nfrs_rules::ext::udp::Udp;

/// Nothing to check beyond what nfrs-rules checked.
pub fn compile(_m: &Udp, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule: later fragments never match; a header that cannot be read drops the packet.
pub fn eval(m: &Udp, p: &PktCtx, env: &mut MatchEnv) -> bool {
    if p.frag_off() != 0 {
        return false;
    }
    if p.d.l4 != L4Kind::Udp {
        env.hotdrop = true;
        return false;
    }
    port_in(m.sport, p.d.sport, m.inv_sport) && port_in(m.dport, p.d.dport, m.inv_dport)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn ports() {
        let p = pkt("udp 10.0.0.2:5353 > 10.0.0.1:53 len=4");
        assert!(eval(&rule_matches(&["-p", "udp", "--dport", "53"])[0], &p).0);
        assert!(!eval(&rule_matches(&["-p", "udp", "--sport", "53"])[0], &p).0);
        assert!(eval(&rule_matches(&["-p", "udp", "!", "--sport", "53"])[0], &p).0);
        let frag = pkt("udp 10.0.0.2 > 10.0.0.1 frag=8 len=4");
        assert_eq!(
            eval(&rule_matches(&["-p", "udp", "--dport", "53"])[0], &frag),
            (false, false)
        );
    }
}
