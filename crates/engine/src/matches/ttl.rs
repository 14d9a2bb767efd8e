//! `-m ttl --ttl-eq|--ttl-lt|--ttl-gt N` (ipt_ttl): the IPv4 TTL as the packet carries it at
//! this hook (ip_forward lowers it before the FORWARD hook, so FORWARD and POSTROUTING see
//! the decremented value).

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::ttl::{Ttl, TtlMode};

/// Nothing to check.
pub fn compile(_m: &Ttl, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (ttl_mt): compare the header's TTL; `! --ttl-eq` is the NE mode.
pub fn eval(m: &Ttl, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    let t = p.d.ttl;
    match m.mode {
        TtlMode::Eq => t == m.ttl,
        TtlMode::Ne => t != m.ttl,
        TtlMode::Lt => t < m.ttl,
        TtlMode::Gt => t > m.ttl,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn modes() {
        let p = pkt("udp 10.0.0.2:1 > 10.0.0.1:2 ttl=5");
        let m = |a: &[&str]| {
            let mut v = vec!["-m", "ttl"];
            v.extend_from_slice(a);
            eval(&rule_matches(&v).remove(0), &p).0
        };
        assert!(m(&["--ttl-eq", "5"]));
        assert!(!m(&["--ttl-eq", "6"]));
        assert!(m(&["!", "--ttl-eq", "6"]));
        assert!(!m(&["!", "--ttl-eq", "5"]));
        assert!(m(&["--ttl-lt", "6"]));
        assert!(!m(&["--ttl-lt", "5"]));
        assert!(m(&["--ttl-gt", "4"]));
        assert!(!m(&["--ttl-gt", "5"]));
    }
}
