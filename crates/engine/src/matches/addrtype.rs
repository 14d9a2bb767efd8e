//! `-m addrtype` (xt_addrtype revision 1): the route type (RTN_*) of the source and/or
//! destination address as the host's routing sees it (`MatchEnv::host`), optionally looked up
//! only on the input (`--limit-iface-in`) or output (`--limit-iface-out`) device.

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::addrtype::Addrtype;

/// Nothing beyond nfrs-rules' checks (both limits at once, or a limit on a hook where that
/// device is unknown, are refused there).
pub fn compile(m: &Addrtype, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    if m.limit_iface_in && m.limit_iface_out {
        return Err(CompileError(
            "nfrs replay: addrtype: --limit-iface-in and --limit-iface-out together".into(),
        ));
    }
    Ok(())
}

/// Kernel rule (match_type): the address's route type is one of the mask's bits.
#[inline]
fn type_in(env: &MatchEnv, addr: u32, dev: Option<&str>, mask: u16) -> bool {
    let t = env.host.addr_type(addr, dev);
    t < 16 && mask & (1 << t) != 0
}

/// Kernel rule (addrtype_mt_v1): the lookup device is the input device with
/// `--limit-iface-in`, the output device with `--limit-iface-out`, else any; a type set that
/// was given must hold (each inverted by its own `!`), source first.
pub fn eval(m: &Addrtype, p: &PktCtx, env: &mut MatchEnv) -> bool {
    let dev = if m.limit_iface_in {
        Some(&p.indev)
    } else if m.limit_iface_out {
        Some(&p.outdev)
    } else {
        None
    };
    // A limit naming a device the packet does not have looks up on no device (NULL).
    let dev = dev.filter(|d| !d.is_empty()).map(|d| d.as_str());
    if m.src_types != 0 && type_in(env, p.src(), dev, m.src_types) == m.inv_src {
        return false;
    }
    if m.dst_types != 0 && type_in(env, p.dst(), dev, m.dst_types) == m.inv_dst {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pkt, rule_matches};
    use super::super::{EvalState, HostInfo, MatchEnv};
    use super::*;
    use crate::pkt::IfName;

    /// 10.0.0.1 is local on eth0 only, 10.0.0.255 its broadcast, multicast and 0/8 as Linux.
    struct Host;
    impl HostInfo for Host {
        fn addr_type(&self, addr: u32, dev: Option<&str>) -> u8 {
            match addr {
                0x0a00_0001 if dev.is_none_or(|d| d == "eth0") => 2,
                0x0a00_00ff if dev.is_none_or(|d| d == "eth0") => 3,
                a if a >> 28 == 0xe => 5,
                a if a >> 24 == 0 || a == u32::MAX => 3,
                _ => 1,
            }
        }
    }

    fn ev(args: &[&str], p: &PktCtx) -> bool {
        let mut v = vec!["-m", "addrtype"];
        v.extend_from_slice(args);
        let m = match rule_matches(&v).remove(0) {
            nfrs_rules::ext::Match::Addrtype(a) => a,
            _ => unreachable!(),
        };
        let mut st = EvalState::default();
        let mut env = MatchEnv {
            state: &mut st,
            slot: 0,
            hotdrop: false,
            host: &Host,
        };
        eval(&m, p, &mut env)
    }

    #[test]
    fn types_and_inversion() {
        let mut p = pkt("udp 192.0.2.7:1 > 10.0.0.1:53");
        p.indev = IfName::new("eth0");
        assert!(ev(&["--dst-type", "LOCAL"], &p));
        assert!(!ev(&["--dst-type", "BROADCAST,MULTICAST"], &p));
        assert!(ev(&["!", "--dst-type", "BROADCAST,MULTICAST"], &p));
        assert!(ev(&["--src-type", "UNICAST", "--dst-type", "LOCAL"], &p));
        assert!(!ev(
            &["!", "--src-type", "UNICAST", "--dst-type", "LOCAL"],
            &p
        ));
        assert!(ev(&["--dst-type", "LOCAL", "--limit-iface-in"], &p));
        // Measured on Linux 6.18 (router netns): a datagram to the router's address on its
        // other interface counted on `--dst-type LOCAL`, not with `--limit-iface-in`.
        p.indev = IfName::new("eth1");
        assert!(!ev(&["--dst-type", "LOCAL", "--limit-iface-in"], &p));
        assert!(ev(&["--dst-type", "LOCAL"], &p));
        let q = pkt("udp 10.0.0.2:68 > 224.0.0.251:5353");
        assert!(ev(&["--dst-type", "MULTICAST"], &q));
        let b = pkt("udp 0.0.0.0:68 > 255.255.255.255:67");
        assert!(ev(
            &["--src-type", "BROADCAST", "--dst-type", "BROADCAST"],
            &b
        ));
    }
}
