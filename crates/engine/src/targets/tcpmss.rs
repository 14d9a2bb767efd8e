//! `-j TCPMSS --set-mss N | --clamp-mss-to-pmtu` (xt_TCPMSS tcpmss_tg4): lower the MSS
//! option of TCP packets (SYNs, by the rule's `--tcp-flags`), or add one when a SYN carries
//! none and no data. Checksums are adjusted incrementally, as the kernel does (a packet that
//! came with a wrong checksum keeps it wrong).
//!
//! `--clamp-mss-to-pmtu` takes the MTU of the packet's output device (its route) and of the
//! route back to its source from the host (`HostInfo::dev_mtu`, `HostInfo::route_mtu`).

use super::{CompileError, TVerdict, TargetCtx, TargetEnv};
use crate::pkt::PktCtx;
use nfrs_rules::ext::tcpmss_target::{TcpmssTarget, CLAMP_PMTU};
use nfrs_wire::checksum::{update16, update32};

/// IP and TCP headers without options: what an MTU must leave room for.
const MINLEN: u32 = 40;

/// Kernel rule (tcpmss_mangle_packet, clamping): the MSS for the smaller of the route's MTU
/// and the reverse route's MTU (no route back: no limit), minus the 40 bytes of headers, cut
/// to 16 bits as the kernel stores it; None (the packet is dropped) when that MTU is 40 or
/// less.
pub fn clamp_target(dst_mtu: u32, in_mtu: u32) -> Option<u16> {
    let m = dst_mtu.min(in_mtu);
    (m > MINLEN).then(|| (m - MINLEN) as u16)
}

/// Nothing to check (nfrs-rules keeps clamping to FORWARD, OUTPUT and POSTROUTING).
pub fn compile(_t: &TcpmssTarget, _cx: &mut TargetCtx) -> Result<(), CompileError> {
    Ok(())
}

/// Kernel rule (optlen): kinds 0 and 1, and a zero length, step one byte.
fn optlen(opt: &[u8], i: usize) -> usize {
    if opt[i] <= 1 || opt[i + 1] == 0 {
        1
    } else {
        usize::from(opt[i + 1])
    }
}

/// Rewrites or inserts the MSS option for `newmss`: Ok(bytes added) or Err(()) when the
/// packet must be dropped. (The kernel checks the headers before working out the clamp;
/// both failures drop, so the order does not show.)
fn mangle(p: &mut PktCtx, newmss: u16) -> Result<usize, ()> {
    let thoff = usize::from(p.d.ihl);
    let end = p.d.l3_end().min(p.buf.len());
    // len = bytes after the IP header; the TCP header must be whole.
    let len = end.checked_sub(thoff).ok_or(())?;
    if len < 20 {
        return Err(());
    }
    let hlen = usize::from(p.buf[thoff + 12] >> 4) * 4;
    if len < hlen || hlen < 20 {
        return Err(());
    }
    let csum_at = thoff + 16;
    let read_csum = |b: &[u8]| u16::from_be_bytes([b[csum_at], b[csum_at + 1]]);
    {
        let opt = &p.buf[thoff..thoff + hlen];
        let mut i = 20;
        while i + 4 <= hlen {
            if opt[i] == 2 && opt[i + 1] == 4 {
                let old = u16::from_be_bytes([opt[i + 2], opt[i + 3]]);
                // Never raise an MSS, even with --set-mss.
                if old <= newmss {
                    return Ok(0);
                }
                let at = thoff + i + 2;
                p.buf[at..at + 2].copy_from_slice(&newmss.to_be_bytes());
                let c = update16(read_csum(&p.buf), old, newmss);
                p.buf[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
                return Ok(0);
            }
            i += optlen(opt, i);
        }
    }
    // No MSS option: add one only to a packet with no data and room in the header.
    if len > hlen || hlen >= 60 {
        return Ok(0);
    }
    // RFC 1122: a peer that sent no MSS is assumed to take 536.
    let newmss = newmss.min(536);
    let at = thoff + 20;
    let word = [2u8, 4, (newmss >> 8) as u8, newmss as u8];
    p.buf.truncate(end);
    p.buf.splice(at..at, word);
    let mut c = read_csum(&p.buf);
    // Pseudo-header length, then the new option word, then the data offset word.
    c = update16(c, len as u16, (len + 4) as u16);
    c = update32(c, 0, u32::from_be_bytes(word));
    let old_off = u16::from_be_bytes([p.buf[thoff + 12], p.buf[thoff + 13]]);
    p.buf[thoff + 12] += 1 << 4;
    let new_off = u16::from_be_bytes([p.buf[thoff + 12], p.buf[thoff + 13]]);
    c = update16(c, old_off, new_off);
    p.buf[csum_at..csum_at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(4)
}

/// Kernel rule (tcpmss_tg4): fragments after the first are left alone; a packet too short for
/// its TCP header is dropped; otherwise the MSS is lowered (or added) and the IP total
/// length and header checksum follow an added option. The walk continues.
pub fn run(t: &TcpmssTarget, p: &mut PktCtx, env: &mut TargetEnv) -> TVerdict {
    if p.frag_off() != 0 {
        return TVerdict::Continue;
    }
    let newmss = if t.mss == CLAMP_PMTU {
        let dst_mtu = env.host.dev_mtu(p.outdev.as_str()).unwrap_or(u32::MAX);
        let in_mtu = env.host.route_mtu(p.src()).unwrap_or(u32::MAX);
        match clamp_target(dst_mtu, in_mtu) {
            Some(m) => m,
            None => return TVerdict::Drop,
        }
    } else {
        t.mss
    };
    match mangle(p, newmss) {
        Err(()) => TVerdict::Drop,
        Ok(0) => {
            p.reparse();
            TVerdict::Continue
        }
        Ok(added) => {
            let old = u16::from_be_bytes([p.buf[2], p.buf[3]]);
            let new = old.wrapping_add(added as u16);
            p.buf[2..4].copy_from_slice(&new.to_be_bytes());
            let c = update16(u16::from_be_bytes([p.buf[10], p.buf[11]]), old, new);
            p.buf[10..12].copy_from_slice(&c.to_be_bytes());
            p.reparse();
            TVerdict::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Effects, TargetEnv};
    use super::*;
    use crate::matches::testutil::pkt;
    use crate::matches::{EvalState, NoHost};
    use nfrs_wire::checksum::{verify, verify_transport};

    fn go(mss: u16, line: &str) -> (TVerdict, PktCtx) {
        let t = TcpmssTarget { mss };
        let mut p = pkt(line);
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        let v = run(&t, &mut p, &mut env);
        (v, p)
    }

    fn mss_of(p: &PktCtx) -> Option<u16> {
        let th = &p.buf[20..];
        let hlen = usize::from(th[12] >> 4) * 4;
        let mut i = 20;
        while i + 4 <= hlen {
            if th[i] == 2 {
                return Some(u16::from_be_bytes([th[i + 2], th[i + 3]]));
            }
            i += optlen(th, i);
        }
        None
    }

    fn sums_ok(p: &PktCtx) -> bool {
        verify(&p.buf[..20]) && verify_transport(p.d.src, p.d.dst, 6, &p.buf[20..])
    }

    #[test]
    fn lowers_never_raises() {
        let (v, p) = go(
            1000,
            "tcp 10.0.0.2:1 > 192.0.2.9:81 flags=S mss=1460 sackok ts=1/0 wscale=7",
        );
        assert_eq!(v, TVerdict::Continue);
        assert_eq!(mss_of(&p), Some(1000));
        assert!(sums_ok(&p));
        let (_, p) = go(1000, "tcp 10.0.0.2:1 > 192.0.2.9:81 flags=S mss=536");
        assert_eq!(mss_of(&p), Some(536), "not raised");
        assert!(sums_ok(&p));
    }

    #[test]
    fn measured_add_and_lower() {
        // Measured on Linux 6.18 (mangle OUTPUT `--set-mss 1400`, captured on the peer): a
        // bare SYN left with `mss 536` (length 44), a SYN with MSS 1460 with `mss 1400`, a
        // SYN with NOP,NOP,SACK-permitted grew to 48 bytes.
        let (_, p) = go(
            1400,
            "tcp 10.9.0.1:40000 > 10.9.0.2:8001 flags=S seq=1 win=1024",
        );
        assert_eq!((mss_of(&p), p.d.total_len), (Some(536), 44));
        assert!(sums_ok(&p));
        let (_, p) = go(
            1400,
            "tcp 10.9.0.1:40000 > 10.9.0.2:8002 flags=S seq=1 win=1024 mss=1460",
        );
        assert_eq!((mss_of(&p), p.d.total_len), (Some(1400), 44));
        assert!(sums_ok(&p));
        let (_, p) = go(
            1400,
            "tcp 10.9.0.1:40000 > 10.9.0.2:8003 flags=S seq=1 win=1024 sackok",
        );
        assert_eq!(mss_of(&p), Some(536));
        assert!(sums_ok(&p));
    }

    #[test]
    fn adds_missing_option_at_most_536() {
        let (v, p) = go(1400, "tcp 10.0.0.2:1 > 192.0.2.9:81 flags=S win=1024");
        assert_eq!(v, TVerdict::Continue);
        assert_eq!(mss_of(&p), Some(536));
        assert_eq!(p.d.total_len, 44);
        assert_eq!(p.buf.len(), 44);
        assert_eq!(p.d.tcp_hlen, 24);
        assert!(sums_ok(&p));
        let (_, p) = go(500, "tcp 10.0.0.2:1 > 192.0.2.9:81 flags=S sackok");
        assert_eq!(mss_of(&p), Some(500));
        assert!(sums_ok(&p));
        // With data after the header nothing is added.
        let (_, p) = go(500, "tcp 10.0.0.2:1 > 192.0.2.9:81 flags=S payload=\"x\"");
        assert_eq!(mss_of(&p), None);
        assert_eq!(p.d.total_len, 41);
    }

    #[test]
    fn cut_header_dropped() {
        let t = TcpmssTarget { mss: 1000 };
        let mut p = pkt("tcp 10.0.0.2:1 > 192.0.2.9:81 flags=S mss=1460");
        p.buf[32] = 15 << 4; // claims 60 header bytes in 24
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &NoHost,
            fx: &mut fx,
        };
        assert_eq!(run(&t, &mut p, &mut env), TVerdict::Drop);
    }

    #[test]
    fn clamp_rule() {
        assert_eq!(clamp_target(1400, 1500), Some(1360));
        assert_eq!(clamp_target(1500, 1280), Some(1240));
        assert_eq!(clamp_target(40, 1500), None);
        assert_eq!(clamp_target(65536, u32::MAX), Some(65496));
    }

    /// wan0 has MTU 1400, the route back to 10.0.0.0/24 goes through lan0 (1500).
    struct Mtus;
    impl crate::matches::HostInfo for Mtus {
        fn addr_type(&self, _a: u32, _d: Option<&str>) -> u8 {
            1
        }
        fn dev_mtu(&self, dev: &str) -> Option<u32> {
            Some(if dev == "wan0" { 1400 } else { 1500 })
        }
        fn route_mtu(&self, addr: u32) -> Option<u32> {
            (addr >> 8 == 0x0a_0000).then_some(1500)
        }
    }

    #[test]
    fn clamp_to_route_mtus() {
        // As tests/scenarios/mangle/tcpmss-clamp records: 1460 through a 1400 link is 1360,
        // 1200 stays.
        let t = TcpmssTarget { mss: CLAMP_PMTU };
        let mut st = EvalState::default();
        let mut fx = Effects::default();
        let mut env = TargetEnv {
            state: &mut st,
            slot: 0,
            host: &Mtus,
            fx: &mut fx,
        };
        let mut p = pkt("tcp 10.0.0.2:40000 > 198.51.100.7:80 flags=S seq=1 win=1024 mss=1460");
        p.outdev = crate::pkt::IfName::new("wan0");
        assert_eq!(run(&t, &mut p, &mut env), TVerdict::Continue);
        assert_eq!(mss_of(&p), Some(1360));
        assert!(sums_ok(&p));
        let mut p = pkt("tcp 10.0.0.2:40002 > 198.51.100.7:80 flags=S seq=1 win=1024 mss=1200");
        p.outdev = crate::pkt::IfName::new("wan0");
        run(&t, &mut p, &mut env);
        assert_eq!(mss_of(&p), Some(1200));
        // A tiny link: dropped.
        let mut p = pkt("tcp 10.0.0.2:40002 > 198.51.100.7:80 flags=S mss=1200");
        p.outdev = crate::pkt::IfName::new("eth9");
        struct Tiny;
        impl crate::matches::HostInfo for Tiny {
            fn addr_type(&self, _a: u32, _d: Option<&str>) -> u8 {
                1
            }
            fn dev_mtu(&self, _dev: &str) -> Option<u32> {
                Some(40)
            }
        }
        env.host = &Tiny;
        assert_eq!(run(&t, &mut p, &mut env), TVerdict::Drop);
    }
}
