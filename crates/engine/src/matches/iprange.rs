//! `-m iprange --src-range a-b --dst-range a-b` (xt_iprange revision 1, IPv4).

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::iprange::Iprange;
use std::net::Ipv4Addr;

/// Nothing to check.
pub fn compile(_m: &Iprange, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule: an address is outside when below `from` or above `to` (host order; a range
/// with `from > to` holds nothing); each range is inverted by its own `!`.
fn outside(a: u32, r: (Ipv4Addr, Ipv4Addr), inv: bool) -> bool {
    (a < u32::from(r.0) || a > u32::from(r.1)) ^ inv
}

/// Kernel rule (iprange_mt4): source range then destination range, each must hold.
pub fn eval(m: &Iprange, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    if let Some(r) = m.src {
        if outside(p.src(), r, m.inv_src) {
            return false;
        }
    }
    if let Some(r) = m.dst {
        if outside(p.dst(), r, m.inv_dst) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn ranges_and_inversion() {
        let p = pkt("tcp 192.168.1.50:1000 > 10.0.0.9:80 flags=S");
        let m = |a: &[&str]| {
            let mut v = vec!["-m", "iprange"];
            v.extend_from_slice(a);
            rule_matches(&v).remove(0)
        };
        assert!(eval(&m(&["--src-range", "192.168.1.1-192.168.1.100"]), &p).0);
        assert!(eval(&m(&["--src-range", "192.168.1.50-192.168.1.50"]), &p).0);
        assert!(!eval(&m(&["--src-range", "192.168.1.51-192.168.1.100"]), &p).0);
        assert!(eval(&m(&["!", "--src-range", "192.168.1.51-192.168.1.100"]), &p).0);
        assert!(!eval(&m(&["--src-range", "192.168.1.100-192.168.1.1"]), &p).0);
        assert!(
            eval(
                &m(&[
                    "--src-range",
                    "192.168.0.0-192.168.255.255",
                    "--dst-range",
                    "10.0.0.1-10.0.0.9"
                ]),
                &p
            )
            .0
        );
        assert!(
            !eval(
                &m(&[
                    "--src-range",
                    "192.168.0.0-192.168.255.255",
                    "!",
                    "--dst-range",
                    "10.0.0.1-10.0.0.9"
                ]),
                &p
            )
            .0
        );
    }
}
