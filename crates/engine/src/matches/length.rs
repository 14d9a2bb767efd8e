//! `-m length --length min[:max]` (xt_length, IPv4): the IP total length field.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::length::Length;

/// Nothing to check.
pub fn compile(_m: &Length, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (length_mt): the header's total length (not the bytes received) within
/// `[min, max]`, inverted by `!`.
pub fn eval(m: &Length, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    let len = p.d.total_len;
    (len >= m.min && len <= m.max) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn total_length_range() {
        // 20 IP + 8 UDP + 10 payload = 38.
        let p = pkt("udp 10.0.0.2:1 > 10.0.0.1:2 len=10");
        assert_eq!(p.d.total_len, 38);
        let m = |a: &[&str]| {
            let mut v = vec!["-m", "length"];
            v.extend_from_slice(a);
            rule_matches(&v).remove(0)
        };
        assert!(eval(&m(&["--length", "38"]), &p).0);
        assert!(!eval(&m(&["--length", "39"]), &p).0);
        assert!(eval(&m(&["--length", "0:38"]), &p).0);
        assert!(eval(&m(&["--length", "38:"]), &p).0);
        assert!(!eval(&m(&["--length", "39:1500"]), &p).0);
        assert!(eval(&m(&["!", "--length", "39:1500"]), &p).0);
    }
}
