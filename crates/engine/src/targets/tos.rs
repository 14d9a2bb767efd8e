//! `-j TOS --set-tos v[/m] | --and-tos | --or-tos | --xor-tos` (xt_DSCP tos_tg revision 1,
//! mangle table): rewrite the IPv4 TOS byte (header checksum kept).

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::tos_target::TosTarget;
use nfrs_wire::desc::mangle;

/// Nothing to check.
pub fn compile(_t: &TosTarget, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (tos_tg): new TOS = `(tos & ~mask) ^ value` (iptables turns and/or/xor into a
/// value and mask), written only when it changes; the walk continues.
pub fn run(t: &TosTarget, p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    let old = p.d.tos;
    let new = (old & !t.mask) ^ t.value;
    if new != old {
        mangle::set_tos(&mut p.buf, &mut p.d, new);
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
        let mut v = vec!["-j", "TOS"];
        v.extend_from_slice(args);
        let r = nfrs_rules::parse::parse_rule(TableKind::Mangle, "OUTPUT", &v).unwrap();
        let Target::Ext(TargetExt::Tos(t)) = r.target else {
            panic!("{:?}", r.target)
        };
        let mut p = pkt(&format!("tcp 10.0.0.2:1 > 10.0.0.1:22 flags=S tos={tos}"));
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
    fn set_and_or_xor() {
        assert_eq!(tos_after(&["--set-tos", "0x10"], 0x03), 0x10, "full mask");
        assert_eq!(tos_after(&["--set-tos", "0x10/0x3f"], 0xc3), 0xd0);
        assert_eq!(
            tos_after(&["--set-tos", "Minimize-Delay"], 0xc3),
            0xd0,
            "name: /0x3f"
        );
        assert_eq!(tos_after(&["--and-tos", "0x0f"], 0xff), 0x0f);
        assert_eq!(tos_after(&["--or-tos", "0x10"], 0x01), 0x11);
        assert_eq!(tos_after(&["--xor-tos", "0x11"], 0x10), 0x01);
    }
}
