//! `-m icmp --icmp-type` (the kernel's ip_tables icmp_match).

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::{L4Kind, PktCtx};
use nfrs_rules::ext::icmp::Icmp;

/// Nothing to check beyond what nfrs-rules checked.
pub fn compile(_m: &Icmp, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule: later fragments never match; an ICMP header shorter than 8 bytes drops the
/// packet; type 255 ("any") matches every type.
pub fn eval(m: &Icmp, p: &PktCtx, env: &mut MatchEnv) -> bool {
    if p.frag_off() != 0 {
        return false;
    }
    if p.d.l4 != L4Kind::Icmp {
        env.hotdrop = true;
        return false;
    }
    let hit = m.icmp_type == 0xff
        || (p.d.icmp_type == m.icmp_type
            && p.d.icmp_code >= m.code_min
            && p.d.icmp_code <= m.code_max);
    hit ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn types_and_codes() {
        let ping = pkt("icmp 10.0.0.2 > 10.0.0.1 type=8 code=0 id=1 seq=1");
        let m = |a: &[&str]| {
            let mut v = vec!["-p", "icmp"];
            v.extend_from_slice(a);
            rule_matches(&v).remove(0)
        };
        assert!(eval(&m(&["--icmp-type", "echo-request"]), &ping).0);
        assert!(!eval(&m(&["--icmp-type", "echo-reply"]), &ping).0);
        assert!(eval(&m(&["!", "--icmp-type", "echo-reply"]), &ping).0);
        assert!(eval(&m(&["--icmp-type", "any"]), &ping).0);
        assert!(!eval(&m(&["--icmp-type", "port-unreachable"]), &ping).0);
    }
}
