//! `-j ECN` (ipt_ECN, mangle table): sets the IP ECN codepoint and/or the TCP ECE/CWR flags,
//! keeping both checksums right.

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::ecn_target::EcnTarget;
use nfrs_wire::checksum::update16;
use nfrs_wire::desc::mangle;

/// TCP header flag bits (byte 13).
const ECE: u8 = 0x40;
const CWR: u8 = 0x80;

/// Nothing to prepare (the rules crate enforces mangle and `-p tcp`).
pub fn compile(_t: &EcnTarget, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (ecn_tg): the IP codepoint is written when it differs; then, for TCP, ECE/CWR
/// are written when one differs (the TCP header is read right after the IP header, and a
/// packet too short for 20 bytes of it is dropped). The walk continues.
pub fn run(t: &EcnTarget, p: &mut PktCtx, _env: &mut TargetEnv) -> TVerdict {
    if let Some(ect) = t.ip_ect {
        let tos = p.d.tos;
        if tos & 3 != ect & 3 {
            mangle::set_tos(&mut p.buf, &mut p.d, (tos & !3) | (ect & 3));
        }
    }
    if (t.ece.is_some() || t.cwr.is_some()) && p.d.protocol == 6 {
        let ihl = usize::from(p.buf[0] & 0x0f) * 4;
        let end = (p.d.total_len as usize).min(p.buf.len());
        if end < ihl + 20 {
            return TVerdict::Drop;
        }
        let old = p.buf[ihl + 13];
        let mut new = old;
        for (want, bit) in [(t.ece, ECE), (t.cwr, CWR)] {
            match want {
                Some(0) => new &= !bit,
                Some(_) => new |= bit,
                None => {}
            }
        }
        if new != old {
            let word = |f: u8, b: &[u8]| u16::from_be_bytes([b[ihl + 12], f]);
            let (w_old, w_new) = (word(old, &p.buf), word(new, &p.buf));
            let c = u16::from_be_bytes([p.buf[ihl + 16], p.buf[ihl + 17]]);
            let c = update16(c, w_old, w_new);
            p.buf[ihl + 13] = new;
            p.buf[ihl + 16..ihl + 18].copy_from_slice(&c.to_be_bytes());
            if p.frag_off() == 0 {
                p.d.tcp_flags = new;
            }
        }
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
    use nfrs_wire::checksum::verify_transport;

    fn after(args: &[&str], spec: &str) -> (TVerdict, PktCtx) {
        let mut v = vec!["-p", "tcp", "-j", "ECN"];
        v.extend_from_slice(args);
        let r = nfrs_rules::parse::parse_rule(TableKind::Mangle, "FORWARD", &v).unwrap();
        let Target::Ext(TargetExt::Ecn(t)) = r.target else {
            panic!("{:?}", r.target)
        };
        let mut p = pkt(spec);
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        (run(&t, &mut p, &mut env), p)
    }

    fn tcp_ok(p: &PktCtx) -> bool {
        verify_transport(p.d.src, p.d.dst, 6, p.l4())
    }

    #[test]
    fn remove_and_set() {
        let spec = "tcp 10.0.0.2:40000 > 198.51.100.7:80 flags=SEC seq=1 win=1024 tos=0x02";
        let (v, p) = after(&["--ecn-tcp-remove"], spec);
        assert_eq!(v, TVerdict::Continue);
        assert_eq!(p.d.tcp_flags & (ECE | CWR), 0);
        assert_eq!(p.d.tcp_flags & 0x02, 0x02, "SYN kept");
        assert_eq!(p.d.tos, 0x02, "IP codepoint untouched by remove");
        assert!(tcp_ok(&p));
        let (_, p) = after(
            &["--ecn-tcp-cwr", "1", "--ecn-ip-ect", "1"],
            "tcp 1.2.3.4:5 > 6.7.8.9:10 flags=S tos=0xfc",
        );
        assert_eq!(p.d.tcp_flags, 0x02 | CWR);
        assert_eq!(p.d.tos, 0xfd);
        assert_eq!(p.buf[1], 0xfd);
        assert!(nfrs_wire::checksum::verify(&p.buf[..20]));
        assert!(tcp_ok(&p));
    }
}
