//! `-m mac [!] --mac-source XX:XX:XX:XX:XX:XX` (xt_mac): the Ethernet source address of a
//! received frame.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::mac::Mac;

/// Nothing to check (nfrs-rules keeps it to PREROUTING, INPUT and FORWARD).
pub fn compile(_m: &Mac, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (mac_mt): a packet without a received Ethernet header, or received on a
/// device that is not Ethernet (`lo` is ARPHRD_LOOPBACK), never matches, even with `!`;
/// otherwise the header's source address equals the rule's, inverted by `!`.
pub fn eval(m: &Mac, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    if p.indev.as_bytes() == b"lo" {
        return false;
    }
    match &p.mac {
        Some(h) => (h[6..12] == m.addr) ^ m.invert,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};

    #[test]
    fn source_address() {
        let mut p = pkt("udp 10.0.0.2:1 > 10.0.0.1:2");
        let yes = rule_matches(&["-m", "mac", "--mac-source", "02:00:00:00:00:0a"]).remove(0);
        let not = rule_matches(&["-m", "mac", "!", "--mac-source", "02:00:00:00:00:0a"]).remove(0);
        assert!(!eval(&yes, &p).0);
        assert!(
            !eval(&not, &p).0,
            "no Ethernet header: no match even inverted"
        );
        let mut h = [0u8; 14];
        h[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        h[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0x0a]);
        h[12] = 8;
        p.mac = Some(h);
        assert!(eval(&yes, &p).0);
        assert!(!eval(&not, &p).0);
        h[11] = 0x0b;
        p.mac = Some(h);
        assert!(!eval(&yes, &p).0);
        assert!(eval(&not, &p).0);
        // Measured on Linux 6.18: a datagram to 127.0.0.1 counted in INPUT on neither
        // `--mac-source 00:00:00:00:00:00` nor `! --mac-source 00:00:00:00:00:01`.
        p.indev = crate::pkt::IfName::new("lo");
        p.mac = Some([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 0]);
        let zero = rule_matches(&["-m", "mac", "--mac-source", "00:00:00:00:00:00"]).remove(0);
        let not1 = rule_matches(&["-m", "mac", "!", "--mac-source", "00:00:00:00:00:01"]).remove(0);
        assert!(!eval(&zero, &p).0);
        assert!(!eval(&not1, &p).0);
    }
}
