//! `-j TTL --ttl-set N | --ttl-inc N | --ttl-dec N` (xt_HL ttl_tg, mangle table): rewrite
//! the IPv4 TTL (header checksum kept).

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::ttl_target::{TtlOp, TtlTarget};
use nfrs_wire::desc::mangle;

/// Nothing to check (nfrs-rules keeps it to the mangle table).
pub fn compile(_t: &TtlTarget, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (ttl_tg): set, or add / subtract with the result held within 0..=255; the
/// header is written only when the value changes; the walk continues. (A TTL lowered to 0
/// here is not answered: only forwarding's own decrement sends Time Exceeded.)
pub fn run(t: &TtlTarget, p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    let old = p.d.ttl;
    let new = match t.op {
        TtlOp::Set => t.ttl,
        TtlOp::Inc => old.saturating_add(t.ttl),
        TtlOp::Dec => old.saturating_sub(t.ttl),
    };
    if new != old {
        mangle::set_ttl(&mut p.buf, &mut p.d, new);
    }
    TVerdict::Continue
}

#[cfg(test)]
mod tests {
    use super::super::{Effects, TargetEnv};
    use super::*;
    use crate::matches::testutil::pkt;
    use crate::matches::{EvalState, NoHost};
    use nfrs_rules::ext::TargetExt;
    use nfrs_rules::{TableKind, Target};
    use nfrs_wire::desc::PacketDesc;

    fn ttl_after(args: &[&str], ttl: u8) -> u8 {
        let mut v = vec!["-j", "TTL"];
        v.extend_from_slice(args);
        let r = nfrs_rules::parse::parse_rule(TableKind::Mangle, "PREROUTING", &v).unwrap();
        let Target::Ext(TargetExt::Ttl(t)) = r.target else {
            panic!("{:?}", r.target)
        };
        let mut p = pkt(&format!("udp 10.0.0.2:1 > 10.0.0.1:2 ttl={ttl}"));
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        assert_eq!(run(&t, &mut p, &mut env), TVerdict::Continue);
        // The bytes carry it, with a valid header checksum.
        let d = PacketDesc::parse_ipv4(&p.buf, 0).unwrap();
        assert_eq!(d.ttl, p.d.ttl);
        assert!(nfrs_wire::checksum::verify(&p.buf[..20]), "header checksum");
        d.ttl
    }

    #[test]
    fn set_inc_dec_clamped() {
        assert_eq!(ttl_after(&["--ttl-set", "128"], 64), 128);
        assert_eq!(ttl_after(&["--ttl-inc", "1"], 64), 65);
        // Measured on Linux 6.18 (mangle OUTPUT, captured on the peer): 64 + 250 left as 255,
        // 64 - 100 as 0.
        assert_eq!(ttl_after(&["--ttl-inc", "250"], 64), 255);
        assert_eq!(ttl_after(&["--ttl-inc", "200"], 64), 255);
        assert_eq!(ttl_after(&["--ttl-dec", "10"], 64), 54);
        assert_eq!(ttl_after(&["--ttl-dec", "100"], 64), 0);
    }
}
