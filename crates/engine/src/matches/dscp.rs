//! `-m dscp [!] --dscp N | --dscp-class NAME` (xt_dscp dscp_mt, IPv4): the six DSCP bits.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::dscp::Dscp;

/// Nothing to check.
pub fn compile(_m: &Dscp, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (dscp_mt): the TOS byte shifted right by two (ECN bits dropped) equals the
/// code point, inverted by `!`.
pub fn eval(m: &Dscp, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    ((p.d.tos >> 2) == m.dscp) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn code_points_and_classes() {
        // EF (46) with ECN CE: 46 << 2 | 3 = 0xbb.
        let p = pkt("udp 10.0.0.2:5004 > 10.0.0.1:5004 tos=0xbb");
        let m = |a: &[&str]| {
            let mut v = vec!["-m", "dscp"];
            v.extend_from_slice(a);
            eval(&rule_matches(&v).remove(0), &p).0
        };
        assert!(m(&["--dscp", "46"]));
        assert!(m(&["--dscp", "0x2e"]));
        assert!(m(&["--dscp-class", "EF"]));
        assert!(!m(&["--dscp-class", "AF41"]));
        assert!(m(&["!", "--dscp-class", "AF41"]));
        assert!(!m(&["!", "--dscp", "46"]));
    }
}
