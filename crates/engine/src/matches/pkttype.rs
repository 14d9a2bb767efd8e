//! `-m pkttype [!] --pkt-type unicast|broadcast|multicast|otherhost` (xt_pkttype): the
//! link-layer class of the packet (skb->pkt_type).

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::{PktCtx, PktType};
use nfrs_rules::ext::pkttype::Pkttype;

/// Nothing to check.
pub fn compile(_m: &Pkttype, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// The PACKET_* value of the packet. A packet this host sends carries PACKET_HOST (0): the
/// kernel never sets the type on the output path, whatever the destination (measured: in
/// OUTPUT a local unicast, broadcast and multicast datagram all count as `unicast`).
fn packet_type(t: PktType) -> u8 {
    match t {
        PktType::Host | PktType::Outgoing => 0,
        PktType::Broadcast => 1,
        PktType::Multicast => 2,
        PktType::OtherHost => 3,
    }
}

/// Kernel rule (pkttype_mt): the packet's type equals the rule's, inverted by `!`.
pub fn eval(m: &Pkttype, p: &PktCtx, _env: &mut MatchEnv) -> bool {
    (packet_type(p.pkttype) == m.pkt_type) ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{eval, pkt, rule_matches};
    use crate::pkt::PktType;

    #[test]
    fn types() {
        let mut p = pkt("udp 10.0.0.2:68 > 255.255.255.255:67");
        let m = |a: &[&str]| {
            let mut v = vec!["-m", "pkttype"];
            v.extend_from_slice(a);
            rule_matches(&v).remove(0)
        };
        let bc = m(&["--pkt-type", "broadcast"]);
        let uc = m(&["--pkt-type", "unicast"]);
        let not_uc = m(&["!", "--pkt-type", "unicast"]);
        p.pkttype = PktType::Broadcast;
        assert!(eval(&bc, &p).0);
        assert!(!eval(&uc, &p).0);
        assert!(eval(&not_uc, &p).0);
        p.pkttype = PktType::Multicast;
        assert!(eval(&m(&["--pkt-type", "multicast"]), &p).0);
        p.pkttype = PktType::OtherHost;
        assert!(eval(&m(&["--pkt-type", "otherhost"]), &p).0);
        p.pkttype = PktType::Outgoing;
        assert!(eval(&uc, &p).0, "locally sent: PACKET_HOST");
        assert!(!eval(&bc, &p).0);
    }
}
