//! `-m u32` (xt_u32): 32-bit big-endian words read at offsets from the start of the IP header,
//! combined with `&`, `<<`, `>>` and `@` (move the base by the value and read again), compared
//! with value ranges.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::u32::{U32Op, U32Test, U32};

/// Nothing to prepare.
pub fn compile(_m: &U32, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// The big-endian word at `off`, the caller having checked the bounds.
fn word(buf: &[u8], off: usize) -> u32 {
    u32::from_be_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
}

/// Kernel rule (u32_match_it): one test; any read past the packet's end fails the test (and
/// so the whole match, before inversion). Shift counts wrap at 32 as the CPU's shift does.
fn test_passes(t: &U32Test, buf: &[u8]) -> bool {
    let len = buf.len() as u32;
    if len < 4 || t.start > len - 4 {
        return false;
    }
    let mut val = word(buf, t.start as usize);
    let mut at: u32 = 0;
    for &(op, n) in &t.ops {
        match op {
            U32Op::And => val &= n,
            U32Op::Shl => val = val.wrapping_shl(n),
            U32Op::Shr => val = val.wrapping_shr(n),
            U32Op::At => {
                at = match at.checked_add(val) {
                    Some(a) => a,
                    None => return false,
                };
                match at.checked_add(4) {
                    Some(end) if end <= len && n <= len - at - 4 => {}
                    _ => return false,
                }
                val = word(buf, (at + n) as usize);
            }
        }
    }
    t.ranges.iter().any(|&(lo, hi)| lo <= val && val <= hi)
}

/// Kernel rule (u32_mt): every test must pass; `!` inverts the outcome.
pub fn eval(m: &U32, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    let buf = &p.buf[..];
    m.tests.iter().all(|t| test_passes(t, buf)) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    fn m(spec: &str) -> nfrs_rules::ext::Match {
        rule_matches(&["-m", "u32", "--u32", spec]).remove(0)
    }

    #[test]
    fn offsets_and_pointers() {
        let p = pkt("udp 10.0.0.2:5000 > 198.51.100.7:53");
        // UDP destination port through the header length pointer.
        assert!(eval(&m("0>>22&0x3C@0&0xFFFF=53"), &p).0);
        assert!(!eval(&m("0>>22&0x3C@0&0xFFFF=54"), &p).0);
        // Protocol byte 17 (UDP), a range list, and && of two tests.
        assert!(eval(&m("6&0xFF=1:3,17&&12=0x0a000002"), &p).0);
        assert!(!eval(&m("6&0xFF=1:3,17&&12=0x0a000003"), &p).0);
        // Reading past the end fails the match, and ! then matches.
        let len = p.buf.len();
        let past = format!("{}=0:0xffffffff", len - 3);
        assert!(!eval(&m(&past), &p).0);
        let inv = rule_matches(&["-m", "u32", "!", "--u32", &past]).remove(0);
        assert!(eval(&inv, &p).0);
        assert!(eval(&m(&format!("{}=0:0xffffffff", len - 4)), &p).0);
        // A pointer beyond the packet.
        assert!(!eval(&m("0@0x7fffffff=0:0xffffffff"), &p).0);
        assert!(!eval(&m("0&0@0xffffffff=0:0xffffffff"), &p).0);
        // Shift by 32 wraps to 0 as on x86 (value unchanged).
        assert!(eval(&m("8>>32&0xff000000=0x40000000:0xff000000"), &p).0);
    }
}
