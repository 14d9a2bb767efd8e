//! `-m multiport` (revision 1: ports and ranges, `--sports`/`--dports`/`--ports`).

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::multiport::{Direction, Multiport};

/// Nothing to check beyond what nfrs-rules checked.
pub fn compile(_m: &Multiport, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (xt_multiport ports_match_v1): the first listed port or range that fits decides
/// (`!` inverts); a later fragment never matches; unreadable ports drop the packet.
pub fn eval(m: &Multiport, p: &PktCtx, env: &mut MatchEnv) -> bool {
    if p.frag_off() != 0 {
        return false;
    }
    let l4 = p.l4();
    if l4.len() < 4 {
        env.hotdrop = true;
        return false;
    }
    let sp = u16::from_be_bytes([l4[0], l4[1]]);
    let dp = u16::from_be_bytes([l4[2], l4[3]]);
    for &(lo, hi) in &m.ports {
        let fits = |x: u16| x >= lo && x <= hi;
        let hit = match m.direction {
            Direction::Source => fits(sp),
            Direction::Destination => fits(dp),
            Direction::Either => fits(sp) || fits(dp),
        };
        if hit {
            return !m.invert;
        }
    }
    m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn lists_and_ranges() {
        let p = pkt("tcp 10.0.0.2:40000 > 10.0.0.1:443 flags=S");
        let m = |a: &[&str]| {
            let mut v = vec!["-p", "tcp", "-m", "multiport"];
            v.extend_from_slice(a);
            rule_matches(&v).pop().unwrap()
        };
        assert!(eval(&m(&["--dports", "80,443"]), &p).0);
        assert!(!eval(&m(&["--sports", "80,443"]), &p).0);
        assert!(eval(&m(&["--ports", "39999:40001"]), &p).0);
        assert!(!eval(&m(&["!", "--dports", "80,443"]), &p).0);
        assert!(eval(&m(&["!", "--dports", "80,8443"]), &p).0);
    }
}
