//! `-j TEE --gateway ADDR [--oif NAME]` (xt_TEE): records a copy of the packet as it stands
//! for the engine to route to the gateway ([`crate::engine::Engine`] carries it out through
//! OUTPUT and POSTROUTING, untracked); the original goes on with the next rule.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv, TeeReq};
use crate::pkt::{IfName, PktCtx};
use nfrs_rules::ext::tee::Tee;

/// Nothing to prepare.
pub fn compile(_t: &Tee, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (tee_tg4, nf_dup_ipv4): a packet that is itself a TEE copy is not copied again;
/// otherwise a copy is made now (the only allocation, as the kernel's pskb_copy) and the walk
/// continues with the original.
pub fn run(t: &Tee, p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    if p.tee_copy {
        return TVerdict::Continue;
    }
    let end = p.d.l3_end().min(p.buf.len());
    env.fx.tee.push(TeeReq {
        ip: p.buf[..end].to_vec(),
        gw: u32::from(t.gw),
        oif: IfName::new(&t.oif),
        log_pos: env.fx.logs.len(),
    });
    TVerdict::Continue
}

#[cfg(test)]
mod tests {
    use super::super::{run_target, Effects, TargetEnv};
    use crate::matches::{EvalState, NoHost};
    use crate::pkt::PktCtx;
    use nfrs_rules::TableKind;
    use nfrs_wire::build::{build_ipv4, FrameCtx};
    use nfrs_wire::line::PacketSpec;

    #[test]
    fn copies_once_and_continues() {
        let v = ["-j", "TEE", "--gateway", "10.0.0.99", "--oif", "lan0"];
        let r = nfrs_rules::parse::parse_rule(TableKind::Mangle, "PREROUTING", &v).unwrap();
        let spec = PacketSpec::parse("udp 10.0.0.2:5000 > 198.51.100.7:514").unwrap();
        let mut p = PktCtx::new(build_ipv4(&spec, &FrameCtx::default()).unwrap()).unwrap();
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let nfrs_rules::Target::Ext(t) = &r.target else {
            panic!("extension target")
        };
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        assert_eq!(run_target(t, &mut p, &mut env), super::TVerdict::Continue);
        assert_eq!(fx.tee.len(), 1);
        assert_eq!(fx.tee[0].gw, u32::from_be_bytes([10, 0, 0, 99]));
        assert_eq!(fx.tee[0].oif.as_str(), "lan0");
        assert_eq!(fx.tee[0].ip, p.buf);
        p.tee_copy = true;
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        run_target(t, &mut p, &mut env);
        assert_eq!(fx.tee.len(), 1, "a copy is not copied again");
    }
}
