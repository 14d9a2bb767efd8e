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
            fmt_tcp(&t, out);
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
                let _ = write!(out, " id={} seq={}", i.echo_ident(), i.echo_seq_no());
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

fn fmt_tcp(t: &tcp::Packet<&[u8]>, out: &mut String) {
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
    let _ = write!(
        out,
        " seq={} ack={} win={}",
        t.seq_number(),
        t.ack_number(),
        t.window_len()
    );
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
                    let _ = write!(out, " ts={tsval}/{tsecr}");
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
