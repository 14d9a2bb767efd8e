//! `-j REJECT --reject-with ...`: asks the engine to send the kernel's answer (a TCP RST or an
//! ICMP error about the packet as it stands) and drops the packet.

use super::{CompileError, EmitReq, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::reject::{Reject, RejectWith};

/// Nothing to check (nfrs-rules did the kernel's table/hook checks).
pub fn compile(_t: &Reject, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (reject_tg): each `--reject-with` sends its packet (echo-reply sends nothing)
/// and the verdict is always DROP.
pub fn run(t: &Reject, p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    let icmp = |code: u8| EmitReq::IcmpError { ty: 3, code };
    let req = match t.with {
        RejectWith::NetUnreachable => Some(icmp(0)),
        RejectWith::HostUnreachable => Some(icmp(1)),
        RejectWith::ProtoUnreachable => Some(icmp(2)),
        RejectWith::PortUnreachable => Some(icmp(3)),
        RejectWith::NetProhibited => Some(icmp(9)),
        RejectWith::HostProhibited => Some(icmp(10)),
        RejectWith::AdminProhibited => Some(icmp(13)),
        RejectWith::TcpReset => Some(EmitReq::TcpReset),
        RejectWith::EchoReply => None,
    };
    if let Some(r) = req {
        let end = p.d.l3_end().min(p.buf.len());
        env.fx.emits.push((r, p.buf[..end].to_vec()));
    }
    TVerdict::Drop
}
