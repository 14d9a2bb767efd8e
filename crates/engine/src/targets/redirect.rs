//! `-j REDIRECT [--to-ports p[-q]] [--random]` (nat PREROUTING/OUTPUT): destination NAT to
//! the host itself. The engine carries out the binding (nf_nat_redirect_ipv4: the input
//! device's first address, 127.0.0.1 for locally generated packets, DROP when the device has
//! no address); this file turns the rule into the request.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::nat::{range_flags, NatKind, NatRange, NatRequest};
use crate::pkt::PktCtx;
use nfrs_rules::ext::redirect::Redirect;

/// Needs connection tracking (NAT).
pub fn compile(_t: &Redirect, cx: &mut TargetCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    Ok(())
}

/// The request's range: ports when `--to-ports` was given, the random flag; the address is
/// the engine's to fill (MAP_IPS is always set by the kernel for the chosen address).
pub fn range(t: &Redirect) -> NatRange {
    let mut r = NatRange::default();
    if t.ports_given {
        r.flags |= range_flags::PROTO_SPECIFIED;
        r.min_proto = t.min_port;
        r.max_proto = t.max_port;
    }
    if t.random {
        r.flags |= range_flags::PROTO_RANDOM;
    }
    r
}

/// Records the binding request; the verdict is the one of nf_nat_setup_info (ACCEPT; the
/// engine drops when no address can be found).
pub fn run(t: &Redirect, _p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    env.fx.nat = Some(NatRequest {
        kind: NatKind::Redirect,
        range: range(t),
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

    fn req(args: &[&str]) -> NatRequest {
        let mut v = vec!["-p", "tcp", "-j", "REDIRECT"];
        v.extend_from_slice(args);
        let r = nfrs_rules::parse::parse_rule(TableKind::Nat, "PREROUTING", &v).unwrap();
        let Target::Ext(TargetExt::Redirect(t)) = r.target else {
            panic!("{:?}", r.target)
        };
        let mut p = pkt("tcp 10.0.0.2:1000 > 10.0.0.1:80 flags=S");
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
    fn ports_and_flags() {
        let r = req(&["--to-ports", "8080"]);
        assert_eq!(r.kind, NatKind::Redirect);
        assert_eq!(
            r.range,
            NatRange {
                flags: range_flags::PROTO_SPECIFIED,
                min_proto: 8080,
                max_proto: 8080,
                ..NatRange::default()
            }
        );
        let r = req(&["--to-ports", "3000-3010", "--random"]);
        assert_eq!(
            r.range.flags,
            range_flags::PROTO_SPECIFIED | range_flags::PROTO_RANDOM
        );
        assert_eq!((r.range.min_proto, r.range.max_proto), (3000, 3010));
        assert_eq!(req(&[]).range, NatRange::default());
    }
}
