//! `-m rpfilter` (xt_rpfilter): the reverse path check. The route back to the packet's source
//! must be a unicast route (or local with `--accept-local`) leaving through the interface the
//! packet came in on (any interface with `--loose`).

use super::{CompileCtx, CompileError, MatchEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::rpfilter::Rpfilter;

/// Nothing to prepare (the rules crate enforces raw/mangle PREROUTING).
pub fn compile(_m: &Rpfilter, _cx: &mut CompileCtx) -> Result<(), CompileError> {
    Ok(())
}

/// RTN_UNICAST / RTN_LOCAL.
const RTN_UNICAST: u8 = 1;
const RTN_LOCAL: u8 = 2;

/// Kernel rule (rpfilter_mt): packets from loopback pass; a 0.0.0.0 source passes towards
/// 255.255.255.255 or 224.0.0.0/24 (DHCP, IGMP); otherwise the reverse lookup decides. The
/// result is then inverted by `--invert`. (`--validmark` only changes which policy-routing
/// rule applies; this host model has a single routing table, so it changes nothing.)
pub fn eval(m: &Rpfilter, p: &PktCtx, env: &mut MatchEnv) -> bool {
    if p.indev.as_bytes() == b"lo" {
        return !m.invert;
    }
    let (src, dst) = (p.src(), p.dst());
    if src >> 24 == 0 && (dst == u32::MAX || dst >> 8 == 0xe0_0000) {
        return !m.invert;
    }
    let ok = match env.host.fib_lookup(src) {
        None => false,
        Some((ty, dev)) => {
            if ty != RTN_UNICAST && !(ty == RTN_LOCAL && m.accept_local) {
                false
            } else {
                m.loose || dev.is_some_and(|d| *d == p.indev)
            }
        }
    };
    ok ^ m.invert
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pkt, rule_matches};
    use super::super::{EvalState, HostInfo, MatchEnv};
    use crate::pkt::IfName;

    /// lan0 10.0.0.0/24, default route through wan0, own address 10.0.0.1.
    struct Net {
        lan: IfName,
        wan: IfName,
    }
    impl HostInfo for Net {
        fn addr_type(&self, _a: u32, _d: Option<&str>) -> u8 {
            1
        }
        fn fib_lookup(&self, a: u32) -> Option<(u8, Option<&IfName>)> {
            if a == 0x0a00_0001 {
                Some((2, None))
            } else if a >> 8 == 0x0a_0000 {
                Some((1, Some(&self.lan)))
            } else {
                Some((1, Some(&self.wan)))
            }
        }
    }

    fn run(args: &[&str], spec: &str, indev: &str) -> bool {
        let mut v = vec!["-m", "rpfilter"];
        v.extend_from_slice(args);
        let m = rule_matches(&v).remove(0);
        let mut p = pkt(spec);
        p.indev = IfName::new(indev);
        let net = Net {
            lan: IfName::new("lan0"),
            wan: IfName::new("wan0"),
        };
        let mut st = EvalState::default();
        let mut env = MatchEnv {
            state: &mut st,
            slot: 0,
            hotdrop: false,
            host: &net,
        };
        super::super::eval_match(&m, &p, &mut env)
    }

    #[test]
    fn reverse_path() {
        let spoofed = "udp 10.0.0.9:5000 > 198.51.100.7:53";
        assert!(!run(&[], spoofed, "wan0"));
        assert!(run(&["--invert"], spoofed, "wan0"));
        assert!(run(&[], spoofed, "lan0"));
        assert!(run(&["--loose"], spoofed, "wan0"));
        assert!(run(&[], "udp 203.0.113.5:1 > 10.0.0.2:53", "wan0"));
        assert!(!run(&[], "udp 203.0.113.5:1 > 10.0.0.2:53", "lan0"));
        // Own address as source: only with --accept-local (and then the device must match,
        // which a local route never does unless --loose).
        let own = "udp 10.0.0.1:1 > 10.0.0.2:53";
        assert!(!run(&["--loose"], own, "lan0"));
        assert!(run(&["--loose", "--accept-local"], own, "lan0"));
        assert!(run(&[], own, "lo"));
        assert!(run(&[], "udp 0.0.0.0:68 > 255.255.255.255:67", "wan0"));
        assert!(run(&[], "udp 0.0.0.0:68 > 224.0.0.22:67", "wan0"));
    }
}
