//! `-j DSCP --set-dscp N | --set-dscp-class NAME` (xt_DSCP dscp_tg, mangle table): rewrite
//! the six DSCP bits of the TOS byte, keeping the two ECN bits (header checksum kept).

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::dscp_target::DscpTarget;
use nfrs_wire::desc::mangle;

/// Nothing to check.
pub fn compile(_t: &DscpTarget, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (dscp_tg): when the packet's code point differs, TOS = `(tos & 3) | dscp << 2`;
/// the walk continues.
pub fn run(t: &DscpTarget, p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    let tos = p.d.tos;
    if tos >> 2 != t.dscp {
        mangle::set_tos(&mut p.buf, &mut p.d, (tos & 0x03) | (t.dscp << 2));
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

    fn tos_after(args: &[&str], tos: u8) -> u8 {
        let mut v = vec!["-j", "DSCP"];
        v.extend_from_slice(args);
        let r = nfrs_rules::parse::parse_rule(TableKind::Mangle, "POSTROUTING", &v).unwrap();
        let Target::Ext(TargetExt::Dscp(t)) = r.target else {
            panic!("{:?}", r.target)
        };
        let mut p = pkt(&format!("udp 10.0.0.2:1 > 10.0.0.1:2 tos={tos}"));
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        assert_eq!(run(&t, &mut p, &mut env), TVerdict::Continue);
        assert_eq!(p.buf[1], p.d.tos);
        assert!(nfrs_wire::checksum::verify(&p.buf[..20]), "header checksum");
        p.d.tos
    }

    #[test]
    fn keeps_ecn_bits() {
        assert_eq!(tos_after(&["--set-dscp", "46"], 0x00), 0xb8);
        assert_eq!(tos_after(&["--set-dscp-class", "EF"], 0x03), 0xbb);
        // Measured on Linux 6.18 (mangle OUTPUT, captured on the peer): TOS 0xc3 left 0xbb.
        assert_eq!(tos_after(&["--set-dscp-class", "EF"], 0xc3), 0xbb);
        assert_eq!(tos_after(&["--set-dscp", "0"], 0xbb), 0x03);
        assert_eq!(
            tos_after(&["--set-dscp-class", "AF11"], 0x29),
            0x29,
            "already AF11"
        );
    }
}
