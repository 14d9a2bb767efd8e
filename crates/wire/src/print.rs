//! The canonical printed form of a packet (SCENARIOS.md "Results"): the packet line syntax
//! without time and device, with every field forwarding, NAT, mangle or a helper can change.
//!
//! Rules encoded here, in print order:
//! `<proto> <src>[:port] > <dst>[:port]`, then `ttl= tos=0x.. id=` (`ipid=` on icmp), then where
//! they apply `rf df mf frag= ipopts=<hex> iplen= badsum=ip`; tcp: `flags= seq= ack= win=`
//! (`urg=`) (`res=`) and options in wire order (`mss= wscale= sackok ts=V/E sack=a-b,..
//! opt<K>=<hex> badopts=<hex>`; nop/eol not shown); udp: (`nocsum`) (`ulen=`); icmp:
//! `type= code=` then `id= seq=` (echo-like), `mtu=`, `gw=`, `ptr=` or `rest=0x..`, and
//! `inner="..."` for errors; then `badsum`; then the data (`payload="..."` up to 200 bytes, `len=N`
//! when all zeros, else `len=N payload^64="..." sha1=<12 hex>`).
//!
//! A packet shorter than its total length (a quote cut by an ICMP error) prints the bytes present
//! and `iplen=<announced total>`; its transport checksum is not judged (nor a fragment's). A
//! transport header that does not fit prints as `truncated len=N hex=...` after the IP fields,
//! an IP header that does not fit as `ip truncated len=N hex=...`. Trailing bytes past the
//! total length (Ethernet padding) are ignored.

use crate::arp;
use crate::ethernet::{self, ethertype};
use crate::icmp;
use crate::ipv4;
use crate::line::escape_into;
use crate::tcp::{self, OptionIter, TcpOption};
use crate::udp;
use std::fmt::Write;

/// Placeholders to print instead of values chosen at random by the kernel (masking policy is
/// the caller's; this only prints what it is told).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masks {
    /// Print the IP id as this (e.g. `*`).
    pub ip_id: Option<String>,
    /// Print the source port as this (e.g. `rand1`).
    pub src_port: Option<String>,
    /// Print the destination port as this.
    pub dst_port: Option<String>,
    /// Print the TCP sequence number as this (e.g. `*` for a random ISN).
    pub seq: Option<String>,
    /// Print the TCP acknowledgment number as this.
    pub ack: Option<String>,
    /// Print the TCP timestamp value as this (`ts=*/7`).
    pub ts_val: Option<String>,
    /// Print the TCP timestamp echo as this.
    pub ts_ecr: Option<String>,
    /// Print the ICMP echo identifier as this (e.g. `rand1`).
    pub icmp_id: Option<String>,
    /// Masks for the packet quoted by an ICMP error.
    pub inner: Option<Box<Masks>>,
}

/// Deepest ICMP-in-ICMP quote printed as `inner=`; deeper quotes print as data.
const MAX_DEPTH: usize = 4;
/// Data longer than this prints as a digest.
pub const MAX_PAYLOAD: usize = 200;

/// Prints an IPv4 packet in the canonical form.
pub fn format_ipv4(b: &[u8], out: &mut String) {
    fmt_ip(b, &Masks::default(), out, 0)
}

/// Prints an IPv4 packet with masked values.
pub fn format_ipv4_masked(b: &[u8], masks: &Masks, out: &mut String) {
    fmt_ip(b, masks, out, 0)
}

/// Prints an Ethernet frame: its IPv4 packet (MACs are not part of the canonical form), an ARP
/// packet, or `eth ...` for anything else.
pub fn format_frame(f: &[u8], out: &mut String) {
    format_frame_masked(f, &Masks::default(), out)
}

/// [`format_frame`] with masked values.
pub fn format_frame_masked(f: &[u8], masks: &Masks, out: &mut String) {
    let Ok(fr) = ethernet::Frame::new_checked(f) else {
        raw("eth truncated", f, out);
        return;
    };
    match fr.ethertype() {
        ethertype::IPV4 => fmt_ip(fr.payload(), masks, out, 0),
        ethertype::ARP => fmt_arp(fr.payload(), out),
        t => {
            let _ = write!(out, "eth type=0x{t:04x}");
            raw_tail(fr.payload(), out);
        }
    }
}

/// Prints an IPv4 packet into a new string.
pub fn ipv4_to_string(b: &[u8]) -> String {
    let mut s = String::new();
    format_ipv4(b, &mut s);
    s
}

/// Prints an Ethernet frame into a new string.
pub fn frame_to_string(f: &[u8]) -> String {
    let mut s = String::new();
    format_frame(f, &mut s);
    s
}

fn hex(b: &[u8], out: &mut String) {
    for x in b {
        let _ = write!(out, "{x:02x}");
    }
}

fn sha1_12(b: &[u8], out: &mut String) {
    use sha1::{Digest, Sha1};
    let d = Sha1::digest(b);
    hex(&d[..6], out);
}

fn raw_tail(b: &[u8], out: &mut String) {
    let _ = write!(out, " len={}", b.len());
    if b.len() <= MAX_PAYLOAD {
        out.push_str(" hex=");
        hex(b, out);
    } else {
        out.push_str(" hex^64=");
        hex(&b[..64], out);
        out.push_str(" sha1=");
        sha1_12(b, out);
    }
}

fn raw(what: &str, b: &[u8], out: &mut String) {
    out.push_str(what);
    raw_tail(b, out);
}

/// Appends the data rule: nothing when empty, ` len=N` when all zeros, ` payload="..."` up to
/// 200 bytes, else ` len=N payload^64="..." sha1=<first 12 hex of SHA-1>`.
pub fn format_data(d: &[u8], out: &mut String) {
    if d.is_empty() {
        return;
    }
    if d.iter().all(|&x| x == 0) {
        let _ = write!(out, " len={}", d.len());
    } else if d.len() <= MAX_PAYLOAD {
        out.push_str(" payload=\"");
        escape_into(d, out);
        out.push('"');
    } else {
        let _ = write!(out, " len={} payload^64=\"", d.len());
        escape_into(&d[..64], out);
        out.push_str("\" sha1=");
        sha1_12(d, out);
    }
}

fn fmt_arp(b: &[u8], out: &mut String) {
    let p = arp::Packet::new_unchecked(b);
    match p.check_len() {
        Err(crate::Error::Truncated) => raw("arp truncated", b, out),
        Err(_) => raw("arp malformed", b, out),
        Ok(()) => {
            match p.operation() {
                arp::OP_REQUEST => out.push_str("arp request"),
                arp::OP_REPLY => out.push_str("arp reply"),
                n => {
                    let _ = write!(out, "arp op={n}");
                }
            }
            let _ = write!(
                out,
                " sha={} spa={} tha={} tpa={}",
                p.sender_hw(),
                p.sender_ip(),
                p.target_hw(),
                p.target_ip()
            );
        }
    }
}

enum L4<'a> {
    None,
    Tcp(tcp::Packet<&'a [u8]>),
    Udp(udp::Packet<&'a [u8]>),
    Icmp(icmp::Packet<&'a [u8]>),
    Trunc,
}

fn fmt_ip(b: &[u8], masks: &Masks, out: &mut String, depth: usize) {
    let p = ipv4::Packet::new_unchecked(b);
    match p.check_header_len() {
        Ok(()) => {}
        Err(crate::Error::Truncated)
            if b.len() < ipv4::MIN_HEADER_LEN || (b[0] >> 4 == 4 && b[0] & 15 >= 5) =>
        {
            return raw("ip truncated", b, out)
        }
        Err(_) => return raw("ip malformed", b, out),
    }
    let hl = p.header_len();
    let tl = usize::from(p.total_len());
    let end = tl.clamp(hl, b.len());
    let b = &b[..end];
    let p = ipv4::Packet::new_unchecked(b);
    let pl = &b[hl..];
    let proto = p.protocol();
    let frag = p.frag_offset() > 0;
    let cut = end != tl;
    let judge = !cut && !frag && !p.more_frags();
    let l4 = if frag {
        L4::None
    } else {
        match proto {
            ipv4::protocol::TCP => tcp::Packet::new_checked(pl).map_or(L4::Trunc, L4::Tcp),
            ipv4::protocol::UDP => udp::Packet::new_checked(pl).map_or(L4::Trunc, L4::Udp),
            ipv4::protocol::ICMP => icmp::Packet::new_checked(pl).map_or(L4::Trunc, L4::Icmp),
            _ => L4::None,
        }
    };
    match proto {
        1 => out.push_str("icmp"),
        6 => out.push_str("tcp"),
        17 => out.push_str("udp"),
        n => {
            let _ = write!(out, "{n}");
        }
    }
    let (sp, dp) = match &l4 {
        L4::Tcp(t) => (Some(t.src_port()), Some(t.dst_port())),
        L4::Udp(u) => (Some(u.src_port()), Some(u.dst_port())),
        _ => (None, None),
    };
    let _ = write!(out, " {}", p.src_addr());
    endpoint_port(sp, &masks.src_port, out);
    let _ = write!(out, " > {}", p.dst_addr());
    endpoint_port(dp, &masks.dst_port, out);
    let _ = write!(
        out,
        " ttl={} tos=0x{:02x} {}=",
        p.ttl(),
        p.tos(),
        if proto == 1 { "ipid" } else { "id" }
    );
    match &masks.ip_id {
        Some(m) => out.push_str(m),
        None => {
            let _ = write!(out, "{}", p.ident());
        }
    }
    if p.rf() {
        out.push_str(" rf");
    }
    if p.dont_frag() {
        out.push_str(" df");
    }
    if p.more_frags() {
        out.push_str(" mf");
    }
    if frag {
        let _ = write!(out, " frag={}", p.frag_offset());
    }
    if !p.options().is_empty() {
        out.push_str(" ipopts=");
        hex(p.options(), out);
    }
    if cut {
        let _ = write!(out, " iplen={tl}");
    }
    if !p.verify_checksum() {
        out.push_str(" badsum=ip");
    }
    let (src, dst) = (p.src_addr(), p.dst_addr());
    match l4 {
        L4::None => format_data(pl, out),
        L4::Trunc => raw(" truncated", pl, out),
        L4::Tcp(t) => {
            fmt_tcp(&t, masks, out);
            if judge && !t.verify_checksum(src, dst) {
                out.push_str(" badsum");
            }
            format_data(t.payload(), out);
        }
        L4::Udp(u) => {
            if u.checksum() == 0 {
                out.push_str(" nocsum");
            }
            if usize::from(u.len()) != tl.saturating_sub(hl) {
                let _ = write!(out, " ulen={}", u.len());
            }
            if judge && !u.verify_checksum(src, dst) {
                out.push_str(" badsum");
            }
            format_data(u.payload(), out);
        }
        L4::Icmp(i) => {
            let t = i.msg_type();
            let _ = write!(out, " type={} code={}", t, i.msg_code());
            let rest = i.rest_of_header();
            if icmp::is_echo_like(t) {
                out.push_str(" id=");
                num_or(u32::from(i.echo_ident()), &masks.icmp_id, out);
                let _ = write!(out, " seq={}", i.echo_seq_no());
            } else if t == 3 && i.msg_code() == 4 && rest >> 16 == 0 {
                let _ = write!(out, " mtu={}", i.next_hop_mtu());
            } else if t == 5 {
                let _ = write!(out, " gw={}", i.gateway());
            } else if t == 12 && rest & 0x00ff_ffff == 0 {
                let _ = write!(out, " ptr={}", i.pointer());
            } else if rest != 0 {
                let _ = write!(out, " rest=0x{rest:08x}");
            }
            let quote = icmp::is_error(t) && depth < MAX_DEPTH && !i.data().is_empty();
            if quote {
                let mut s = String::new();
                let im = masks.inner.as_deref().cloned().unwrap_or_default();
                fmt_ip(i.data(), &im, &mut s, depth + 1);
                out.push_str(" inner=\"");
                escape_into(s.as_bytes(), out);
                out.push('"');
            }
            if judge && !i.verify_checksum() {
                out.push_str(" badsum");
            }
            if !quote {
                format_data(i.data(), out);
            }
        }
    }
}

fn endpoint_port(p: Option<u16>, mask: &Option<String>, out: &mut String) {
    if let Some(p) = p {
        match mask {
            Some(m) => {
                let _ = write!(out, ":{m}");
            }
            None => {
                let _ = write!(out, ":{p}");
            }
        }
    }
}

fn num_or(v: u32, mask: &Option<String>, out: &mut String) {
    match mask {
        Some(m) => out.push_str(m),
        None => {
            let _ = write!(out, "{v}");
        }
    }
}

fn fmt_tcp(t: &tcp::Packet<&[u8]>, masks: &Masks, out: &mut String) {
    out.push_str(" flags=");
    let f = t.flags();
    if f == 0 {
        out.push_str("none");
    }
    for (l, bit) in tcp::flags::LETTERS {
        if f & bit != 0 {
            out.push(l);
        }
    }
    out.push_str(" seq=");
    num_or(t.seq_number(), &masks.seq, out);
    out.push_str(" ack=");
    num_or(t.ack_number(), &masks.ack, out);
    let _ = write!(out, " win={}", t.window_len());
    if t.urgent_at() != 0 {
        let _ = write!(out, " urg={}", t.urgent_at());
    }
    if t.reserved() != 0 {
        let _ = write!(out, " res={}", t.reserved());
    }
    let opts = t.options();
    // Kinds already printed by name: a repeated option prints raw (`opt<K>=<hex>`).
    let mut seen = 0u32;
    for item in OptionIter::new(opts) {
        if let Ok((at, o)) = item {
            let bit = match o {
                TcpOption::Mss(_) => 1 << 2,
                TcpOption::WindowScale(_) => 1 << 3,
                TcpOption::SackPermitted => 1 << 4,
                TcpOption::Sack(d) if d.len() % 8 == 0 && !d.is_empty() => 1 << 5,
                TcpOption::Timestamp { .. } => 1 << 8,
                _ => 0,
            };
            if seen & bit != 0 {
                let d = &opts[at + 2..at + opt_len(&o)];
                let _ = write!(out, " opt{}", opts[at]);
                if !d.is_empty() {
                    out.push('=');
                    hex(d, out);
                }
                continue;
            }
            seen |= bit;
        }
        match item {
            Ok((_, o)) => match o {
                TcpOption::EndOfList | TcpOption::NoOperation => {}
                TcpOption::Mss(m) => {
                    let _ = write!(out, " mss={m}");
                }
                TcpOption::WindowScale(w) => {
                    let _ = write!(out, " wscale={w}");
                }
                TcpOption::SackPermitted => out.push_str(" sackok"),
                TcpOption::Timestamp { tsval, tsecr } => {
                    out.push_str(" ts=");
                    num_or(tsval, &masks.ts_val, out);
                    out.push('/');
                    num_or(tsecr, &masks.ts_ecr, out);
                }
                TcpOption::Sack(d) if d.len() % 8 == 0 && !d.is_empty() => {
                    out.push_str(" sack=");
                    for (i, (l, r)) in tcp::sack_blocks(d).enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{l}-{r}");
                    }
                }
                TcpOption::Sack(d) => {
                    let _ = write!(out, " opt{}=", tcp::kind::SACK);
                    hex(d, out);
                }
                TcpOption::Unknown(k, d) => {
                    let _ = write!(out, " opt{k}");
                    if !d.is_empty() {
                        out.push('=');
                        hex(d, out);
                    }
                }
            },
            Err(_) => {
                // The malformed tail: from the first byte the iterator could not read.
                let consumed = OptionIter::new(opts)
                    .take_while(|r| r.is_ok())
                    .map(|r| match r {
                        Ok((at, o)) => at + opt_len(&o),
                        Err(_) => 0,
                    });
                let from = consumed.max().unwrap_or(0);
                // Trailing zeros are padding to the data offset; the builder pads them again.
                let tail = &opts[from.min(opts.len())..];
                let end = tail.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
                out.push_str(" badopts=");
                hex(&tail[..end], out);
            }
        }
    }
}

fn opt_len(o: &TcpOption<'_>) -> usize {
    match o {
        TcpOption::EndOfList | TcpOption::NoOperation => 1,
        TcpOption::Mss(_) => 4,
        TcpOption::WindowScale(_) => 3,
        TcpOption::SackPermitted => 2,
        TcpOption::Timestamp { .. } => 10,
        TcpOption::Sack(d) | TcpOption::Unknown(_, d) => 2 + d.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{build_frame, build_ipv4, FrameCtx};
    use crate::line::PacketSpec;

    fn ip(line: &str) -> Vec<u8> {
        build_ipv4(
            &PacketSpec::parse(line).unwrap(),
            &FrameCtx {
                ip_id: 1,
                ..FrameCtx::default()
            },
        )
        .unwrap()
    }

    /// Builds, prints, and expects the text back exactly (the canonical form of the line).
    fn same(line: &str) {
        assert_eq!(ipv4_to_string(&ip(line)), line);
    }

    #[test]
    fn canonical_forms_print_back() {
        for l in [
            "tcp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=1 flags=none seq=0 ack=0 win=0",
            "tcp 1.1.1.1:1 > 2.2.2.2:2 ttl=9 tos=0x10 id=7 rf df mf flags=FSRPAUEC seq=1 ack=2 win=3 urg=4 res=5",
            "tcp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=1 flags=A seq=1 ack=2 win=3 ts=5/6 sack=10-20,30-40",
            "tcp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=1 flags=S seq=1 ack=0 win=3 mss=1 opt30=0102 opt31",
            "tcp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=1 ipopts=94040000 flags=S seq=1 ack=0 win=3 badsum",
            "udp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=1 badsum=ip nocsum ulen=9 len=3",
            "udp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=1 payload=\"a\\r\\n\\t\\\"\\\\\\x00\\x7f\\xff~ \"",
            "udp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 id=1 mf frag=1480 payload=\"x\"",
            "47 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 id=1 len=4",
            "icmp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 ipid=1 type=3 code=4 mtu=1400",
            "icmp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 ipid=1 type=5 code=1 gw=3.3.3.3",
            "icmp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 ipid=1 type=12 code=0 ptr=20",
            "icmp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 ipid=1 type=3 code=3 rest=0x00000102",
            "icmp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 ipid=1 type=9 code=0 rest=0x01020304 len=8",
            "icmp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 ipid=1 type=13 code=0 id=1 seq=2 badsum len=12",
            "icmp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 ipid=1 type=11 code=0 inner=\"tcp 2.2.2.2 > 9.9.9.9 ttl=1 tos=0x00 id=0 truncated len=8 hex=0001000200000007\"",
            "icmp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 ipid=1 type=3 code=1 inner=\"ip truncated len=4 hex=45000001\"",
            "icmp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 ipid=1 type=3 code=1 inner=\"ip malformed len=20 hex=5500001400000000400100000a0000010a000002\"",
        ] {
            same(l);
        }
    }

    #[test]
    fn data_rules() {
        let mut s = String::new();
        format_data(&[0; 300], &mut s);
        assert_eq!(s, " len=300");
        s.clear();
        format_data(&[b'A'; 200], &mut s);
        assert_eq!(s, format!(" payload=\"{}\"", "A".repeat(200)));
        s.clear();
        // SHA-1 of 300 bytes 'A' from Python's hashlib: dafa3fddc494...
        format_data(&[b'A'; 300], &mut s);
        assert_eq!(
            s,
            format!(
                " len=300 payload^64=\"{}\" sha1=dafa3fddc494",
                "A".repeat(64)
            )
        );
        s.clear();
        format_data(&[], &mut s);
        assert_eq!(s, "");
    }

    #[test]
    fn test_truncated() {
        let full = ip("tcp 1.1.1.1:1 > 2.2.2.2:2 flags=S mss=1460 payload=\"abc\"");
        assert_eq!(
            ipv4_to_string(&full[..10]),
            "ip truncated len=10 hex=4500002f000100004006"
        );
        let mut v5 = full.clone();
        v5[0] = 0x55;
        assert!(ipv4_to_string(&v5).starts_with("ip malformed len=47 hex=5500"));
        // Cut inside the TCP header: the transport part prints raw, the total length as iplen.
        assert_eq!(
            ipv4_to_string(&full[..30]),
            "tcp 1.1.1.1 > 2.2.2.2 ttl=64 tos=0x00 id=1 iplen=47 truncated len=10 hex=00010002000000000000"
        );
        // Cut inside the payload: fields, iplen, what is there; no checksum verdict.
        assert_eq!(
            ipv4_to_string(&full[..45]),
            "tcp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=1 iplen=47 flags=S seq=0 ack=0 win=0 mss=1460 payload=\"a\""
        );
        // Ethernet padding after the total length is ignored.
        let mut padded = full.clone();
        padded.extend_from_slice(&[0xee; 9]);
        assert_eq!(ipv4_to_string(&padded), ipv4_to_string(&full));
    }

    #[test]
    fn frames() {
        let spec = PacketSpec::parse("udp 1.1.1.1:1 > 2.2.2.2:2 len=1").unwrap();
        let f = build_frame(&spec, &FrameCtx::default()).unwrap();
        assert_eq!(
            frame_to_string(&f),
            "udp 1.1.1.1:1 > 2.2.2.2:2 ttl=64 tos=0x00 id=0 len=1"
        );
        assert_eq!(
            frame_to_string(&f[..5]),
            "eth truncated len=5 hex=0200000000"
        );
        let mut v6 = f.clone();
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        v6.truncate(16);
        assert_eq!(frame_to_string(&v6), "eth type=0x86dd len=2 hex=4500");
        let mut a = f[..14].to_vec();
        a[12..14].copy_from_slice(&[8, 6]);
        a.extend_from_slice(&[
            0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0, 2,
        ]);
        assert_eq!(
            frame_to_string(&a),
            "arp request sha=02:00:00:00:00:01 spa=10.0.0.1 tha=00:00:00:00:00:00 tpa=10.0.0.2"
        );
        assert_eq!(
            frame_to_string(&a[..20]),
            "arp truncated len=6 hex=000108000604"
        );
    }

    #[test]
    fn masks_and_repeats() {
        let e = ip(
            "icmp 10.0.0.1 > 10.0.0.2 type=3 code=3 inner=\"udp 10.0.0.2:5000 > 9.9.9.9:53 len=1\"",
        );
        let m = Masks {
            ip_id: Some("*".into()),
            inner: Some(Box::new(Masks {
                src_port: Some("rand1".into()),
                ..Masks::default()
            })),
            ..Masks::default()
        };
        let mut s = String::new();
        format_ipv4_masked(&e, &m, &mut s);
        assert_eq!(
            s,
            "icmp 10.0.0.1 > 10.0.0.2 ttl=64 tos=0x00 ipid=* type=3 code=3 inner=\"udp 10.0.0.2:rand1 > 9.9.9.9:53 ttl=64 tos=0x00 id=0 len=1\""
        );
        let t = ip("tcp 1.1.1.1:1 > 2.2.2.2:2 flags=SA seq=5 ack=6 ts=7/8");
        let m = Masks {
            seq: Some("*".into()),
            ts_val: Some("*".into()),
            ..Masks::default()
        };
        s.clear();
        format_ipv4_masked(&t, &m, &mut s);
        assert!(s.ends_with("flags=SA seq=* ack=6 win=0 ts=*/8"), "{s}");
        let m = Masks {
            ack: Some("a1".into()),
            ts_ecr: Some("e1".into()),
            ..Masks::default()
        };
        s.clear();
        format_ipv4_masked(&t, &m, &mut s);
        assert!(s.ends_with("flags=SA seq=5 ack=a1 win=0 ts=7/e1"), "{s}");
        let t = ip("icmp 1.1.1.1 > 2.2.2.2 id=9 seq=3");
        s.clear();
        format_ipv4_masked(
            &t,
            &Masks {
                icmp_id: Some("rand1".into()),
                ..Masks::default()
            },
            &mut s,
        );
        assert!(s.ends_with("type=8 code=0 id=rand1 seq=3"), "{s}");
        // Two MSS options: the second prints raw.
        let t = ip("tcp 1.1.1.1:1 > 2.2.2.2:2 mss=1 opt2=0005");
        assert!(ipv4_to_string(&t).ends_with("mss=1 opt2=0005"));
        // A malformed option tail prints raw, without its zero padding.
        let t = ip("tcp 1.1.1.1:1 > 2.2.2.2:2 badopts=0809");
        assert!(ipv4_to_string(&t).ends_with("win=0 badopts=0809"));
    }
}
