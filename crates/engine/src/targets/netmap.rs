//! `-j NETMAP --to ADDR/PREFIX` (xt_NETMAP netmap_tg4, nat table): map a whole network one to
//! one, keeping the host part. In PREROUTING and OUTPUT it rewrites the destination, in
//! POSTROUTING and INPUT the source; the binding is made once per connection like DNAT/SNAT.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::nat::{range_flags, NatKind, NatRange, NatRequest};
use crate::pkt::PktCtx;
use nfrs_rules::ext::netmap::Netmap;
use nfrs_rules::Hook;

/// Needs connection tracking (NAT).
pub fn compile(_t: &Netmap, cx: &mut TargetCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    Ok(())
}

/// The prefix's mask (0 for /0).
fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

/// Kernel rule (netmap_tg4): new address = the rule network's bits under the mask, the
/// packet's own bits (destination before routing/output, source after) elsewhere; asked for
/// as a one-address range of the manip type the hook implies. The verdict is ACCEPT.
pub fn run(t: &Netmap, p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    let mask = prefix_mask(t.prefix);
    let dst_side = matches!(p.hook, Hook::PreRouting | Hook::Output);
    let own = if dst_side { p.dst() } else { p.src() };
    let new = (own & !mask) | (u32::from(t.network) & mask);
    env.fx.nat = Some(NatRequest {
        kind: if dst_side {
            NatKind::Dnat
        } else {
            NatKind::Snat
        },
        range: NatRange {
            flags: range_flags::MAP_IPS,
            min_addr: new,
            max_addr: new,
            ..NatRange::default()
        },
    });
    TVerdict::Accept
}

#[cfg(test)]
mod tests {
    use super::super::{Effects, TargetEnv};
    use super::*;
    use crate::matches::testutil::pkt;
    use crate::matches::{EvalState, NoHost};
    use nfrs_rules::ext::TargetExt;
    use nfrs_rules::{TableKind, Target};

    fn req(chain: &str, hook: Hook, to: &str, line: &str) -> NatRequest {
        let r = nfrs_rules::parse::parse_rule(TableKind::Nat, chain, &["-j", "NETMAP", "--to", to])
            .unwrap();
        let Target::Ext(TargetExt::Netmap(t)) = r.target else {
            panic!("{:?}", r.target)
        };
        let mut p = pkt(line);
        p.hook = hook;
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        assert_eq!(run(&t, &mut p, &mut env), TVerdict::Accept);
        fx.nat.unwrap()
    }

    #[test]
    fn maps_host_part() {
        let r = req(
            "PREROUTING",
            Hook::PreRouting,
            "10.1.0.0/16",
            "udp 192.0.2.7:1 > 198.51.100.77:53",
        );
        assert_eq!(r.kind, NatKind::Dnat);
        assert_eq!(r.range.flags, range_flags::MAP_IPS);
        assert_eq!(
            (r.range.min_addr, r.range.max_addr),
            (0x0a01_644d, 0x0a01_644d)
        );
        let r = req(
            "POSTROUTING",
            Hook::PostRouting,
            "203.0.113.0/24",
            "udp 10.0.0.42:1 > 198.51.100.77:53",
        );
        assert_eq!(r.kind, NatKind::Snat);
        assert_eq!(r.range.min_addr, 0xcb00_712a);
        let r = req(
            "OUTPUT",
            Hook::Output,
            "192.0.2.5/32",
            "udp 10.0.0.42:1 > 198.51.100.77:53",
        );
        assert_eq!(r.kind, NatKind::Dnat);
        assert_eq!(r.range.min_addr, 0xc000_0205);
    }
}
