//! `-m tcpmss [!] --mss min[:max]` (xt_tcpmss, TCP only): the MSS option's value.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::tcpmss::Tcpmss;

/// Nothing to check (nfrs-rules requires `-p tcp`).
pub fn compile(_m: &Tcpmss, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (tcpmss_mt): read the TCP header after the IP header (every packet, fragments
/// included); a header that is cut or shorter than 20 bytes, or options cut short, drop the
/// packet; the first well-formed MSS option (kind 2, length 4, wholly inside the options)
/// decides (`[min, max]`, inverted by `!`); without one the result is `!`'s value. Options
/// are walked one byte for kinds 0 and 1, else by their length (one byte for length 0).
pub fn eval(m: &Tcpmss, p: &PktCtx, env: &mut MatchEnv) -> bool {
    let end = p.d.l3_end().min(p.buf.len());
    let start = usize::from(p.d.ihl);
    let Some(th) = p.buf.get(start..end).filter(|t| t.len() >= 20) else {
        env.hotdrop = true;
        return false;
    };
    let hlen = usize::from(th[12] >> 4) * 4;
    if hlen < 20 {
        env.hotdrop = true;
        return false;
    }
    let Some(op) = th.get(20..hlen) else {
        env.hotdrop = true;
        return false;
    };
    let n = op.len();
    let mut i = 0;
    while i < n {
        if op[i] == 2 && n - i >= 4 && op[i + 1] == 4 {
            let mss = u16::from_be_bytes([op[i + 2], op[i + 3]]);
            return (mss >= m.min && mss <= m.max) ^ m.invert;
        }
        if op[i] < 2 {
            i += 1;
        } else {
            // The length byte may lie just past the options (the kernel reads it there).
            let len = th.get(20 + i + 1).copied().unwrap_or(0);
            i += if len == 0 { 1 } else { usize::from(len) };
        }
    }
    m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    fn m(args: &[&str]) -> nfrs_rules::ext::Match {
        let mut v = vec!["-p", "tcp", "-m", "tcpmss"];
        v.extend_from_slice(args);
        rule_matches(&v).remove(0)
    }

    #[test]
    fn mss_ranges() {
        let p = pkt("tcp 10.0.0.2:1000 > 10.0.0.1:80 flags=S mss=1460 sackok wscale=7");
        assert_eq!(eval(&m(&["--mss", "1460"]), &p), (true, false));
        assert_eq!(eval(&m(&["--mss", "1000:1459"]), &p), (false, false));
        assert_eq!(eval(&m(&["--mss", "1400:1500"]), &p), (true, false));
        assert_eq!(eval(&m(&["!", "--mss", "1400:1500"]), &p), (false, false));
        let q = pkt("tcp 10.0.0.2:1000 > 10.0.0.1:80 flags=S sackok");
        assert_eq!(
            eval(&m(&["--mss", "0:65535"]), &q),
            (false, false),
            "no MSS option"
        );
        assert_eq!(eval(&m(&["!", "--mss", "0:65535"]), &q), (true, false));
    }

    #[test]
    fn measured_walk_and_drop() {
        // Measured on Linux 6.18 (netns, OUTPUT counters, raw SYNs): NOP,NOP,SACK-permitted
        // counted on `! --mss 0:65535`; a header claiming 60 bytes in 24 was dropped (the
        // send failed with EPERM, no later rule counted it); options 01 02 04 05 (an MSS kind
        // with 3 bytes left) did not count on `--mss 1460`.
        let mut p = pkt("tcp 10.9.0.1:40000 > 10.9.0.2:8401 flags=S sackok");
        assert_eq!(eval(&m(&["!", "--mss", "0:65535"]), &p), (true, false));
        p.buf[40..44].copy_from_slice(&[1, 2, 4, 5]);
        assert_eq!(eval(&m(&["--mss", "1460"]), &p), (false, false));
        p.buf[40..44].copy_from_slice(&[2, 4, 5, 0xb4]);
        p.buf[32] = 15 << 4;
        assert_eq!(eval(&m(&["--mss", "1460"]), &p), (false, true));
    }

    #[test]
    fn cut_headers_drop() {
        let mut p = pkt("tcp 10.0.0.2:1000 > 10.0.0.1:80 flags=S mss=1460");
        // Claim 60 bytes of header in a 24-byte TCP header: options cut short.
        p.buf[20 + 12] = 15 << 4;
        assert_eq!(eval(&m(&["--mss", "1460"]), &p), (false, true));
        // Data offset below 5.
        p.buf[20 + 12] = 4 << 4;
        assert_eq!(eval(&m(&["--mss", "1460"]), &p), (false, true));
    }
}
