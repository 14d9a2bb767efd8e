//! `-m tcp`: ports, `--tcp-flags`/`--syn`, `--tcp-option` (the kernel's xt_tcpudp tcp_mt).

use super::{port_in, CompileCtx, CompileError, MatchEnv};
use crate::pkt::{L4Kind, PktCtx};
use nfrs_rules::ext::tcp::Tcp;

/// Nothing to check beyond what nfrs-rules checked.
pub fn compile(_m: &Tcp, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule: a later fragment never matches (offset 8 bytes drops at once: it could
/// rewrite the header); a header too short to read drops the packet.
pub fn eval(m: &Tcp, p: &PktCtx, env: &mut MatchEnv) -> bool {
    if p.frag_off() != 0 {
        if p.frag_off() == 8 {
            env.hotdrop = true;
        }
        return false;
    }
    if p.d.l4 != L4Kind::Tcp {
        // The rule's `-p tcp` was checked by the IP part; a short header is a hotdrop.
        env.hotdrop = true;
        return false;
    }
    if !port_in(m.sport, p.d.sport, m.inv_sport) || !port_in(m.dport, p.d.dport, m.inv_dport) {
        return false;
    }
    if ((p.d.tcp_flags & m.flags_mask) == m.flags_cmp) == m.inv_flags {
        return false;
    }
    if m.option != 0 {
        if p.d.tcp_hlen < 20 {
            env.hotdrop = true;
            return false;
        }
        let l4 = p.l4();
        let Some(opts) = l4.get(20..p.d.tcp_hlen as usize) else {
            env.hotdrop = true;
            return false;
        };
        if !find_option(opts, m.option, m.inv_option) {
            return false;
        }
    }
    true
}

/// Kernel rule (tcp_find_option): walk kinds, 0 and 1 are one byte, others skip their length
/// (a zero length steps one byte).
fn find_option(opts: &[u8], kind: u8, invert: bool) -> bool {
    let mut i = 0;
    while i < opts.len() {
        if opts[i] == kind {
            return !invert;
        }
        if opts[i] < 2 {
            i += 1;
        } else {
            let l = opts.get(i + 1).copied().unwrap_or(0) as usize;
            i += if l == 0 { 1 } else { l };
        }
    }
    invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn ports_flags_options() {
        let syn = pkt("tcp 10.0.0.2:40000 > 10.0.0.1:22 flags=S mss=1460");
        let ack = pkt("tcp 10.0.0.2:40000 > 10.0.0.1:22 flags=A");
        let m = &rule_matches(&["-p", "tcp", "--dport", "22", "--syn"])[0];
        assert_eq!(eval(m, &syn), (true, false));
        assert_eq!(eval(m, &ack), (false, false));
        let m = &rule_matches(&["-p", "tcp", "!", "--dport", "20:30"])[0];
        assert!(!eval(m, &syn).0);
        let m = &rule_matches(&["-p", "tcp", "--sport", "40000:40001", "--tcp-option", "2"])[0];
        assert!(eval(m, &syn).0);
        assert!(!eval(m, &ack).0);
        let m = &rule_matches(&["-p", "tcp", "!", "--tcp-option", "2"])[0];
        assert!(eval(m, &ack).0);
    }

    #[test]
    fn fragments_and_short_headers() {
        let m = &rule_matches(&["-p", "tcp", "--dport", "22"])[0];
        let frag8 = pkt("tcp 10.0.0.2 > 10.0.0.1 frag=8 len=20");
        assert_eq!(eval(m, &frag8), (false, true));
        let frag16 = pkt("tcp 10.0.0.2 > 10.0.0.1 frag=16 len=20");
        assert_eq!(eval(m, &frag16), (false, false));
    }
}
