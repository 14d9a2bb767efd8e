//! `-m tos [!] --tos value[/mask]` (xt_dscp's tos_mt, revision 1, IPv4): the TOS byte.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::tos::Tos;

/// Nothing to check.
pub fn compile(_m: &Tos, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (tos_mt): `(tos & mask) == value`, inverted by `!` (a symbolic name stands
/// for value/0x3f, so the two top precedence bits are ignored).
pub fn eval(m: &Tos, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    ((p.d.tos & m.mask) == m.value) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn value_mask_and_names() {
        let p = pkt("tcp 10.0.0.2:1 > 10.0.0.1:22 flags=S tos=0x11");
        let m = |a: &[&str]| {
            let mut v = vec!["-m", "tos"];
            v.extend_from_slice(a);
            eval(&rule_matches(&v).remove(0), &p).0
        };
        assert!(m(&["--tos", "0x11"]));
        assert!(!m(&["--tos", "0x10"]), "full mask by default");
        assert!(m(&["--tos", "0x10/0xf0"]));
        assert!(!m(&["--tos", "Minimize-Delay"]), "0x11 & 0x3f is not 0x10");
        assert!(m(&["!", "--tos", "Minimize-Delay"]));
        let q = pkt("tcp 10.0.0.2:1 > 10.0.0.1:22 flags=S tos=0xd0");
        let n = rule_matches(&["-m", "tos", "--tos", "Minimize-Delay"]).remove(0);
        assert!(eval(&n, &q).0, "0xd0 & 0x3f = 0x10");
    }
}
