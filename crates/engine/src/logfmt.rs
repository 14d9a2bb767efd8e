//! The kernel's packet log line (`LOG` target and conntrack's invalid-packet messages), byte for
//! byte as Linux 6.18's nf_log_syslog prints an IPv4 packet: `IN= OUT=`, physdevs, the MAC part
//! (raw or decoded), the IP header, the transport header, one level of ICMP quote, UID, MARK.
//! Every item ends with a space. Allocation here is fine: a line is output.

use crate::pkt::{IfName, SockOwner};
use std::fmt::Write;

/// `--log-tcp-sequence`.
pub const TCPSEQ: u8 = 0x01;
/// `--log-tcp-options`.
pub const TCPOPT: u8 = 0x02;
/// `--log-ip-options`.
pub const IPOPT: u8 = 0x04;
/// `--log-uid`.
pub const UID: u8 = 0x08;
/// `--log-macdecode`.
pub const MACDECODE: u8 = 0x20;

/// What the line is about besides the packet bytes.
#[derive(Clone, Copy, Debug)]
pub struct LogCtx<'a> {
    /// Text before `IN=`.
    pub prefix: &'a str,
    /// LOG flags (above).
    pub flags: u8,
    /// Input device (none: `IN=`), also decides whether the MAC part is printed.
    pub indev: IfName,
    /// Output device.
    pub outdev: IfName,
    /// Bridge ports.
    pub physindev: IfName,
    /// Bridge ports.
    pub physoutdev: IfName,
    /// The received Ethernet header (`MAC=` shows it; without one `MAC= `).
    pub mac: Option<[u8; 14]>,
    /// skb->mark (`MARK=0x..` when non-zero).
    pub mark: u32,
    /// Socket owner (`--log-uid`).
    pub sock: Option<SockOwner>,
}

/// Formats the log line for the IPv4 packet `ip` (its bytes as they stand; `ip.len()` is the
/// kernel's skb->len).
pub fn format(cx: &LogCtx, ip: &[u8], out: &mut String) {
    let _ = write!(
        out,
        "{}IN={} OUT={} ",
        cx.prefix,
        cx.indev.as_str(),
        cx.outdev.as_str()
    );
    if !cx.physindev.is_empty() && cx.physindev != cx.indev {
        let _ = write!(out, "PHYSIN={} ", cx.physindev.as_str());
    }
    if !cx.physoutdev.is_empty() && cx.physoutdev != cx.outdev {
        let _ = write!(out, "PHYSOUT={} ", cx.physoutdev.as_str());
    }
    if !cx.indev.is_empty() {
        mac_part(cx, out);
    }
    ipv4(cx, ip, 0, out);
}

/// Kernel rule (dump_mac_header): decoded for Ethernet with `--log-macdecode`, else the raw
/// header bytes colon-separated (nothing between `MAC=` and the space when there is none).
fn mac_part(cx: &LogCtx, out: &mut String) {
    if cx.flags & MACDECODE != 0 {
        if let Some(m) = cx.mac {
            let _ = write!(out, "MACSRC=");
            push_mac(&m[6..12], out);
            out.push_str(" MACDST=");
            push_mac(&m[0..6], out);
            let _ = write!(out, " MACPROTO={:02x}{:02x} ", m[12], m[13]);
        }
        return;
    }
    out.push_str("MAC=");
    if let Some(m) = cx.mac {
        for (i, b) in m.iter().enumerate() {
            if i > 0 {
                out.push(':');
            }
            let _ = write!(out, "{b:02x}");
        }
    }
    out.push(' ');
}

fn push_mac(m: &[u8], out: &mut String) {
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{b:02x}");
    }
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

fn addr(b: &[u8], at: usize) -> std::net::Ipv4Addr {
    std::net::Ipv4Addr::from(be32(b, at).unwrap_or(0))
}

/// Kernel rule (dump_ipv4_packet): `off` is where this IP header starts in `skb`; a quoted
/// packet (off > 0) is dumped once, without UID and MARK.
fn ipv4(cx: &LogCtx, skb: &[u8], off: usize, out: &mut String) {
    let Some(ih) = skb.get(off..off + 20) else {
        out.push_str("TRUNCATED");
        return;
    };
    let _ = write!(out, "SRC={} DST={} ", addr(ih, 12), addr(ih, 16));
    let tot = u16::from_be_bytes([ih[2], ih[3]]);
    let tos = ih[1];
    let frag = u16::from_be_bytes([ih[6], ih[7]]);
    let _ = write!(
        out,
        "LEN={} TOS=0x{:02X} PREC=0x{:02X} TTL={} ID={} ",
        tot,
        tos & 0x1e,
        tos & 0xe0,
        ih[8],
        u16::from_be_bytes([ih[4], ih[5]])
    );
    if frag & 0x8000 != 0 {
        out.push_str("CE ");
    }
    if frag & 0x4000 != 0 {
        out.push_str("DF ");
    }
    if frag & 0x2000 != 0 {
        out.push_str("MF ");
    }
    let fragoff = frag & 0x1fff;
    if fragoff != 0 {
        let _ = write!(out, "FRAG:{fragoff} ");
    }
    let ihl = ((ih[0] & 0x0f) as usize) * 4;
    if cx.flags & IPOPT != 0 && ihl > 20 {
        let Some(op) = skb.get(off + 20..off + ihl) else {
            out.push_str("TRUNCATED");
            return;
        };
        out.push_str("OPT (");
        for b in op {
            let _ = write!(out, "{b:02X}");
        }
        out.push_str(") ");
    }
    let l4 = off + ihl;
    let rest = skb.len().saturating_sub(l4);
    let proto = ih[9];
    match proto {
        6 => {
            out.push_str("PROTO=TCP ");
            if fragoff == 0 {
                let Some(th) = skb.get(l4..l4 + 20) else {
                    let _ = write!(out, "INCOMPLETE [{rest} bytes] ");
                    return;
                };
                let _ = write!(
                    out,
                    "SPT={} DPT={} ",
                    u16::from_be_bytes([th[0], th[1]]),
                    u16::from_be_bytes([th[2], th[3]])
                );
                if cx.flags & TCPSEQ != 0 {
                    let _ = write!(
                        out,
                        "SEQ={} ACK={} ",
                        be32(th, 4).unwrap_or(0),
                        be32(th, 8).unwrap_or(0)
                    );
                }
                let _ = write!(out, "WINDOW={} ", u16::from_be_bytes([th[14], th[15]]));
                // RES: the three reserved bits below the data offset (bits 22-24 of the flag
                // word), and the AE bit is printed as a flag.
                let word = u32::from_be_bytes([th[12], th[13], th[14], th[15]]);
                let _ = write!(out, "RES=0x{:02x} ", ((word & 0x0e00_0000) >> 22) as u8);
                let fl = th[13];
                if th[12] & 0x01 != 0 {
                    out.push_str("AE ");
                }
                for (bit, name) in [
                    (0x80, "CWR "),
                    (0x40, "ECE "),
                    (0x20, "URG "),
                    (0x10, "ACK "),
                    (0x08, "PSH "),
                    (0x04, "RST "),
                    (0x02, "SYN "),
                    (0x01, "FIN "),
                ] {
                    if fl & bit != 0 {
                        out.push_str(name);
                    }
                }
                let _ = write!(out, "URGP={} ", u16::from_be_bytes([th[18], th[19]]));
                let doff = ((th[12] >> 4) as usize) * 4;
                if cx.flags & TCPOPT != 0 && doff > 20 {
                    let Some(op) = skb.get(l4 + 20..l4 + doff) else {
                        out.push_str("OPT (TRUNCATED)");
                        return;
                    };
                    out.push_str("OPT (");
                    for b in op {
                        let _ = write!(out, "{b:02X}");
                    }
                    out.push_str(") ");
                }
            }
        }
        17 | 136 => {
            out.push_str(if proto == 17 {
                "PROTO=UDP "
            } else {
                "PROTO=UDPLITE "
            });
            if fragoff == 0 {
                let Some(uh) = skb.get(l4..l4 + 8) else {
                    let _ = write!(out, "INCOMPLETE [{rest} bytes] ");
                    return;
                };
                let _ = write!(
                    out,
                    "SPT={} DPT={} LEN={} ",
                    u16::from_be_bytes([uh[0], uh[1]]),
                    u16::from_be_bytes([uh[2], uh[3]]),
                    u16::from_be_bytes([uh[4], uh[5]])
                );
            }
        }
        1 => {
            out.push_str("PROTO=ICMP ");
            if fragoff == 0 {
                icmp(cx, skb, off, l4, rest, out);
            }
        }
        51 => {
            if fragoff == 0 {
                out.push_str("PROTO=AH ");
                match be32(skb, l4 + 4) {
                    Some(spi) if skb.len() >= l4 + 12 => {
                        let _ = write!(out, "SPI=0x{spi:x} ");
                    }
                    _ => {
                        let _ = write!(out, "INCOMPLETE [{rest} bytes] ");
                    }
                }
            }
        }
        50 => {
            out.push_str("PROTO=ESP ");
            if fragoff == 0 {
                match be32(skb, l4) {
                    Some(spi) if skb.len() >= l4 + 8 => {
                        let _ = write!(out, "SPI=0x{spi:x} ");
                    }
                    _ => {
                        let _ = write!(out, "INCOMPLETE [{rest} bytes] ");
                    }
                }
            }
        }
        p => {
            let _ = write!(out, "PROTO={p} ");
        }
    }
    if off == 0 {
        if cx.flags & UID != 0 {
            if let Some(s) = cx.sock {
                let _ = write!(out, "UID={} GID={} ", s.uid, s.gid);
            }
        }
        if cx.mark != 0 {
            let _ = write!(out, "MARK=0x{:x} ", cx.mark);
        }
    }
}

/// Kernel rule: bytes an ICMP type needs before its fields are printed.
fn icmp_required(t: u8) -> usize {
    match t {
        0 | 8 => 4,
        3 | 4 | 5 | 11 | 12 => 28,
        13 | 14 => 20,
        17 | 18 => 12,
        _ => 0,
    }
}

fn icmp(cx: &LogCtx, skb: &[u8], off: usize, l4: usize, rest: usize, out: &mut String) {
    let Some(ich) = skb.get(l4..l4 + 8) else {
        let _ = write!(out, "INCOMPLETE [{rest} bytes] ");
        return;
    };
    let (t, c) = (ich[0], ich[1]);
    let _ = write!(out, "TYPE={t} CODE={c} ");
    let need = icmp_required(t);
    if need != 0 && rest < need {
        let _ = write!(out, "INCOMPLETE [{rest} bytes] ");
        return;
    }
    match t {
        0 | 8 => {
            let _ = write!(
                out,
                "ID={} SEQ={} ",
                u16::from_be_bytes([ich[4], ich[5]]),
                u16::from_be_bytes([ich[6], ich[7]])
            );
        }
        12 => {
            let _ = write!(out, "PARAMETER={} ", ich[4]);
        }
        3 | 4 | 5 | 11 => {
            if t == 5 {
                let _ = write!(out, "GATEWAY={} ", addr(ich, 4));
            }
            if off == 0 {
                out.push('[');
                ipv4(cx, skb, l4 + 8, out);
                out.push_str("] ");
            }
            if t == 3 && c == 4 {
                let _ = write!(out, "MTU={} ", u16::from_be_bytes([ich[6], ich[7]]));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfrs_wire::build::{build_ipv4, FrameCtx};
    use nfrs_wire::line::PacketSpec;

    fn ip(line: &str) -> Vec<u8> {
        build_ipv4(&PacketSpec::parse(line).unwrap(), &FrameCtx::default()).unwrap()
    }

    fn cx<'a>(prefix: &'a str, flags: u8, indev: &str, outdev: &str) -> LogCtx<'a> {
        LogCtx {
            prefix,
            flags,
            indev: IfName::new(indev),
            outdev: IfName::new(outdev),
            physindev: IfName::NONE,
            physoutdev: IfName::NONE,
            mac: Some([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 1, 2, 8, 0]),
            mark: 0,
            sock: None,
        }
    }

    // Expected lines: examples/nat-gateway.kernel.txt and KERNEL-ORACLE-NOTES.md (recorded
    // from Linux 6.18).
    #[test]
    fn forward_syn_as_recorded() {
        let p = ip("tcp 203.0.113.66:5555 > 10.0.0.2:22 ttl=63 id=8 flags=S seq=1 win=1024");
        let mut s = String::new();
        format(&cx("fwd drop: ", 0, "wan0", "lan0"), &p, &mut s);
        assert_eq!(s, "fwd drop: IN=wan0 OUT=lan0 MAC=02:00:00:00:00:02:02:00:00:00:01:02:08:00 SRC=203.0.113.66 DST=10.0.0.2 LEN=40 TOS=0x00 PREC=0x00 TTL=63 ID=8 PROTO=TCP SPT=5555 DPT=22 WINDOW=1024 RES=0x00 SYN URGP=0 ");
    }

    #[test]
    fn tcp_options_seq_and_icmp_quote() {
        let p = ip("tcp 10.0.1.2:1234 > 10.0.1.1:80 tos=0x10 id=1 df flags=S seq=1 win=8192 mss=1460 sackok ts=1/0 wscale=7");
        let mut s = String::new();
        let mut c = cx("ALL ", TCPOPT, "lan0", "");
        c.mac = None;
        format(&c, &p, &mut s);
        assert_eq!(s, "ALL IN=lan0 OUT= MAC= SRC=10.0.1.2 DST=10.0.1.1 LEN=60 TOS=0x10 PREC=0x00 TTL=64 ID=1 DF PROTO=TCP SPT=1234 DPT=80 WINDOW=8192 RES=0x00 SYN URGP=0 OPT (020405B40402080A000000010000000001030307) ");
        let p = ip("icmp 10.0.2.2 > 10.0.1.2 ipid=5 type=3 code=3 inner=\"udp 10.0.2.2:53 > 10.0.1.2:5353 id=1 len=0\"");
        let mut s = String::new();
        format(&cx("", 0, "", "lan0"), &p, &mut s);
        assert_eq!(s, "IN= OUT=lan0 SRC=10.0.2.2 DST=10.0.1.2 LEN=56 TOS=0x00 PREC=0x00 TTL=64 ID=5 PROTO=ICMP TYPE=3 CODE=3 [SRC=10.0.2.2 DST=10.0.1.2 LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=UDP SPT=53 DPT=5353 LEN=8 ] ");
        let p = ip("udp 10.0.0.1:1 > 10.0.0.2:2 id=777 mf len=92");
        let mut s = String::new();
        let mut c = cx("", TCPSEQ, "", "lan0");
        c.mark = 0x2a;
        format(&c, &p, &mut s);
        assert_eq!(s, "IN= OUT=lan0 SRC=10.0.0.1 DST=10.0.0.2 LEN=120 TOS=0x00 PREC=0x00 TTL=64 ID=777 MF PROTO=UDP SPT=1 DPT=2 LEN=100 MARK=0x2a ");
    }
}
