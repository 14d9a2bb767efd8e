//! Packets the host itself emits, written into a caller's buffer without allocation: an IPv4
//! header, the TCP RST of the stack and of `REJECT --reject-with tcp-reset`, ICMP errors quoting
//! a packet (the stack's and `REJECT`'s), and the ICMP echo reply. Each builder returns the length
//! of the IPv4 packet written at the start of `out`.
//!
//! The IP id of ICMP errors and echo replies is random in Linux: the caller passes the value
//! (and prints it masked). Checked against frames captured from Linux 6.18 (see
//! `tests/data/README.md`).

use crate::ipv4::{self, protocol, FLAG_DF};
use crate::{icmp, tcp};
use std::net::Ipv4Addr;

/// Why no packet was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitError {
    /// `out` is too small.
    BufferTooSmall,
    /// The packet to answer is not a complete IPv4 packet of the needed protocol.
    Malformed,
    /// Linux sends no RST for a fragment with offset > 0.
    Fragment,
    /// Linux never answers a RST with a RST.
    IsRst,
    /// `REJECT --reject-with tcp-reset` stays silent when the segment's checksum is wrong.
    BadChecksum,
}

/// Fields of an IPv4 header the host writes (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Header {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Protocol.
    pub protocol: u8,
    /// TTL.
    pub ttl: u8,
    /// TOS byte.
    pub tos: u8,
    /// Identification.
    pub id: u16,
    /// Don't Fragment.
    pub df: bool,
}

/// Writes a 20-byte IPv4 header for `payload_len` bytes of payload, checksum filled.
pub fn ipv4_header(h: &Ipv4Header, payload_len: usize, out: &mut [u8]) -> Result<usize, EmitError> {
    ipv4_header_with_options(h, &[], payload_len, out)
}

/// Writes an IPv4 header carrying `opts` (a multiple of 4 bytes, at most 40) for `payload_len`
/// bytes of payload, checksum filled; returns the header length.
pub fn ipv4_header_with_options(
    h: &Ipv4Header,
    opts: &[u8],
    payload_len: usize,
    out: &mut [u8],
) -> Result<usize, EmitError> {
    if !opts.len().is_multiple_of(4) || opts.len() > 40 {
        return Err(EmitError::Malformed);
    }
    let hl = ipv4::MIN_HEADER_LEN + opts.len();
    let total = hl + payload_len;
    if out.len() < hl || total > 0xffff {
        return Err(EmitError::BufferTooSmall);
    }
    let mut p = ipv4::Packet::new_unchecked(&mut out[..hl]);
    p.set_version_and_header_len(hl);
    p.set_tos(h.tos);
    p.set_total_len(total as u16);
    p.set_ident(h.id);
    p.set_flags_frag(if h.df { FLAG_DF } else { 0 });
    p.set_ttl(h.ttl);
    p.set_protocol(h.protocol);
    p.set_checksum(0);
    p.set_src_addr(h.src);
    p.set_dst_addr(h.dst);
    p.options_mut().copy_from_slice(opts);
    p.fill_checksum();
    Ok(hl)
}

/// IP option kind: record route.
const OPT_RR: u8 = 7;

/// Finds the record-route option in an options area: (offset, length, pointer).
fn find_rr(opts: &[u8]) -> Option<(usize, usize, u8)> {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return None,
            1 => i += 1,
            k => {
                let len = usize::from(*opts.get(i + 1)?);
                if len < 2 || i + len > opts.len() {
                    return None;
                }
                if k == OPT_RR && len >= 3 {
                    return Some((i, len, opts[i + 2]));
                }
                i += len;
            }
        }
    }
    None
}

/// What receiving the packet did to its record-route option (Linux `ip_options_compile` on
/// input): with room left, the host's address goes into the next slot and the pointer moves
/// on by 4 — and the header checksum is left as it was, now stale (the kernel does not fix it
/// for a packet it delivers; a quote of it shows `badsum=ip`). Returns true when an address was
/// recorded. `addr` is the receiving host's address (the destination of a local packet).
pub fn record_route_on_receipt(ip: &mut [u8], addr: Ipv4Addr) -> bool {
    let Ok(p) = ipv4::Packet::new_checked(&*ip) else {
        return false;
    };
    let hl = p.header_len();
    let Some((at, len, ptr)) = find_rr(&ip[ipv4::MIN_HEADER_LEN..hl]) else {
        return false;
    };
    let ptr = usize::from(ptr);
    if ptr < 4 || ptr + 3 > len {
        return false;
    }
    let o = ipv4::MIN_HEADER_LEN + at;
    ip[o + ptr - 1..o + ptr + 3].copy_from_slice(&addr.octets());
    ip[o + 2] = (ptr + 4) as u8;
    true
}

/// The options Linux echoes in a reply to `orig` (`ip_options_echo`): a record-route option
/// is copied and, when its address was recorded on receipt and a slot is left, the reply's
/// source `src` fills the next slot. Padded to a multiple of 4; returns the length written.
/// (Timestamp and source-route options are not echoed here.)
pub fn echo_options(orig: &[u8], src: Ipv4Addr, out: &mut [u8; 40]) -> usize {
    let Ok(p) = ipv4::Packet::new_checked(orig) else {
        return 0;
    };
    let opts = p.options();
    let Some((at, len, ptr)) = find_rr(opts) else {
        return 0;
    };
    out[..len].copy_from_slice(&opts[at..at + len]);
    let ptr = usize::from(ptr);
    // Recorded on receipt (pointer past the first slot) with a slot left: fill it.
    if ptr > 4 && ptr + 3 <= len {
        out[ptr - 1..ptr + 3].copy_from_slice(&src.octets());
        out[2] = (ptr + 4) as u8;
    }
    let padded = (len + 3) & !3;
    out[len..padded].fill(0);
    padded
}

/// True when `REJECT` stays silent about `orig` as received because its IP header checksum no
/// longer verifies — measured on Linux 6.18: once a record-route option was filled in on
/// receipt (header checksum left stale), `REJECT` sent neither a RST nor an ICMP error, in
/// INPUT as in FORWARD, while the stack's own answers and Time Exceeded still went out.
pub fn reject_is_silent(orig: &[u8]) -> bool {
    match ipv4::Packet::new_checked(orig) {
        Ok(p) => !p.verify_checksum(),
        Err(_) => true,
    }
}

/// Who sends a TCP RST; they differ in the TOS byte and in echoing IP options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetSender {
    /// `REJECT --reject-with tcp-reset` (`nf_send_reset`): TOS 0.
    Reject,
    /// The stack answering a closed port (`tcp_v4_send_reset`): the segment's TOS without the
    /// ECN bits.
    Stack,
}

/// The TCP RST answering the TCP segment `orig` (an IPv4 packet), as the stack and `REJECT`
/// write it: addresses and ports swapped, window 0, IP id 0, DF set; the stack echoes a
/// record-route option ([`echo_options`]), `REJECT` writes no options. If the segment
/// carried ACK, the RST's seq is its ack and only RST is set; otherwise seq is 0 and it
/// acknowledges seq + SYN + FIN + data length with RST+ACK. No RST for a RST, a fragment, or a
/// segment whose checksum is wrong (both senders stay silent then).
pub fn tcp_reset(
    orig: &[u8],
    sender: ResetSender,
    ttl: u8,
    out: &mut [u8],
) -> Result<usize, EmitError> {
    let ip = ipv4::Packet::new_checked(orig).map_err(|_| EmitError::Malformed)?;
    if ip.protocol() != protocol::TCP {
        return Err(EmitError::Malformed);
    }
    if ip.frag_offset() > 0 {
        return Err(EmitError::Fragment);
    }
    let t = tcp::Packet::new_checked(ip.payload()).map_err(|_| EmitError::Malformed)?;
    if t.flags() & tcp::flags::RST != 0 {
        return Err(EmitError::IsRst);
    }
    if !t.verify_checksum(ip.src_addr(), ip.dst_addr()) {
        return Err(EmitError::BadChecksum);
    }
    let mut opts = [0u8; 40];
    let olen = match sender {
        ResetSender::Reject => 0,
        ResetSender::Stack => echo_options(orig, ip.dst_addr(), &mut opts),
    };
    let hl = ipv4::MIN_HEADER_LEN + olen;
    let len = hl + tcp::MIN_HEADER_LEN;
    if out.len() < len {
        return Err(EmitError::BufferTooSmall);
    }
    let h = Ipv4Header {
        src: ip.dst_addr(),
        dst: ip.src_addr(),
        protocol: protocol::TCP,
        ttl,
        tos: match sender {
            ResetSender::Reject => 0,
            ResetSender::Stack => ip.tos() & !0x03,
        },
        id: 0,
        df: true,
    };
    ipv4_header_with_options(&h, &opts[..olen], tcp::MIN_HEADER_LEN, out)?;
    let mut r = tcp::Packet::new_unchecked(&mut out[hl..len]);
    r.set_src_port(t.dst_port());
    r.set_dst_port(t.src_port());
    r.set_header_len(tcp::MIN_HEADER_LEN, 0);
    r.set_window_len(0);
    r.set_urgent_at(0);
    if t.flags() & tcp::flags::ACK != 0 {
        r.set_seq_number(t.ack_number());
        r.set_ack_number(0);
        r.set_flags(tcp::flags::RST);
    } else {
        r.set_seq_number(0);
        r.set_ack_number(t.seq_number().wrapping_add(t.segment_len()));
        r.set_flags(tcp::flags::RST | tcp::flags::ACK);
    }
    r.fill_checksum(h.src, h.dst);
    Ok(len)
}

/// Linux's ICMP error quote limit: the whole error fits in `min(mtu, 576)` bytes
/// (`icmp_send`), the outer header having no options.
pub fn quote_room(mtu: usize) -> usize {
    mtu.min(576)
        .saturating_sub(ipv4::MIN_HEADER_LEN + icmp::HEADER_LEN)
}

/// True when Linux may answer `orig` with an ICMP error at all, judging the packet alone
/// (`icmp_send`'s packet checks): not a fragment with offset > 0, and, for ICMP, only a query
/// message. (Broadcast/multicast destinations and sources are the
/// caller's routing knowledge.)
pub fn may_answer_with_icmp_error(orig: &[u8]) -> bool {
    let Ok(ip) = ipv4::Packet::new_checked(orig) else {
        return false;
    };
    if ip.frag_offset() > 0 {
        return false;
    }
    if ip.protocol() == protocol::ICMP {
        // Only the query types (echo, timestamp, information, address mask, and their
        // replies) may be answered: errors, types 1 2 6 7 9 10 and unknown types never, nor a
        // message too short to show its type (measured on 6.18: 9 10 1 6 19 got no Time
        // Exceeded, 0 8 13 17 18 did).
        return ip.payload().first().is_some_and(|&t| icmp::is_echo_like(t));
    }
    true
}

/// The ICMP error `icmp_send` writes about `orig` (an IPv4 packet as it stands when the error is
/// raised): from `src` to `orig`'s source, TOS = `orig`'s TOS bits (mask 0x1e) with precedence
/// 0xc0, no DF, a record-route option echoed ([`echo_options`]), quoting as much of `orig` as
/// fits in `min(mtu, 576)` bytes. `rest` is bytes
/// 4..8 (e.g. the next-hop MTU for type 3 code 4).
#[allow(clippy::too_many_arguments)]
pub fn icmp_error(
    orig: &[u8],
    msg_type: u8,
    code: u8,
    rest: u32,
    src: Ipv4Addr,
    ttl: u8,
    id: u16,
    mtu: usize,
    out: &mut [u8],
) -> Result<usize, EmitError> {
    let ip = ipv4::Packet::new_checked(orig).map_err(|_| EmitError::Malformed)?;
    let whole = &orig[..usize::from(ip.total_len())];
    let mut opts = [0u8; 40];
    let olen = echo_options(orig, src, &mut opts);
    // Echoed options take their room from the quote.
    let q = whole.len().min(quote_room(mtu).saturating_sub(olen));
    let hl = ipv4::MIN_HEADER_LEN + olen;
    let len = hl + icmp::HEADER_LEN + q;
    if out.len() < len {
        return Err(EmitError::BufferTooSmall);
    }
    let h = Ipv4Header {
        src,
        dst: ip.src_addr(),
        protocol: protocol::ICMP,
        ttl,
        tos: (ip.tos() & 0x1e) | 0xc0,
        id,
        df: false,
    };
    ipv4_header_with_options(&h, &opts[..olen], icmp::HEADER_LEN + q, out)?;
    let mut m = icmp::Packet::new_unchecked(&mut out[hl..len]);
    m.set_msg_type(msg_type);
    m.set_msg_code(code);
    m.set_rest_of_header(rest);
    m.data_mut().copy_from_slice(&whole[..q]);
    m.fill_checksum();
    Ok(len)
}

/// The echo reply the stack (`icmp_echo`) writes for the echo request `orig`: addresses
/// swapped, type 0, code, identifier, sequence and data copied, TOS copied, no DF, a
/// record-route option echoed ([`echo_options`]).
pub fn echo_reply(orig: &[u8], ttl: u8, id: u16, out: &mut [u8]) -> Result<usize, EmitError> {
    let ip = ipv4::Packet::new_checked(orig).map_err(|_| EmitError::Malformed)?;
    if ip.protocol() != protocol::ICMP || ip.frag_offset() > 0 {
        return Err(EmitError::Malformed);
    }
    let req = icmp::Packet::new_checked(ip.payload()).map_err(|_| EmitError::Malformed)?;
    let body = ip.payload();
    let mut opts = [0u8; 40];
    let olen = echo_options(orig, ip.dst_addr(), &mut opts);
    let hl = ipv4::MIN_HEADER_LEN + olen;
    let len = hl + body.len();
    if out.len() < len {
        return Err(EmitError::BufferTooSmall);
    }
    let h = Ipv4Header {
        src: ip.dst_addr(),
        dst: ip.src_addr(),
        protocol: protocol::ICMP,
        ttl,
        tos: ip.tos(),
        id,
        df: false,
    };
    ipv4_header_with_options(&h, &opts[..olen], body.len(), out)?;
    let m = &mut out[hl..len];
    m.copy_from_slice(body);
    let mut m = icmp::Packet::new_unchecked(m);
    m.set_msg_type(icmp::msg_type::ECHO_REPLY);
    m.set_msg_code(req.msg_code());
    m.fill_checksum();
    Ok(len)
}

/// The ARP reply Linux sends for the ARP request frame `req` (Ethernet + ARP), from the
/// receiving interface's MAC `mac`: to the requester's MAC, operation 2, the asked address as
/// sender, the requester as target; 42 bytes, not padded. Whether to answer is the caller's
/// rule (measured with `arp_ignore=0`: a request on any interface for any address of the host
/// is answered with that interface's MAC; one for another address is not). Returns the frame
/// length.
pub fn arp_reply(
    req: &[u8],
    mac: crate::ethernet::MacAddr,
    out: &mut [u8],
) -> Result<usize, EmitError> {
    use crate::{arp, ethernet};
    let f = ethernet::Frame::new_checked(req).map_err(|_| EmitError::Malformed)?;
    if f.ethertype() != ethernet::ethertype::ARP {
        return Err(EmitError::Malformed);
    }
    let a = arp::Packet::new_checked(f.payload()).map_err(|_| EmitError::Malformed)?;
    if a.operation() != arp::OP_REQUEST {
        return Err(EmitError::Malformed);
    }
    let len = ethernet::HEADER_LEN + arp::PACKET_LEN;
    if out.len() < len {
        return Err(EmitError::BufferTooSmall);
    }
    let mut o = ethernet::Frame::new_unchecked(&mut out[..len]);
    o.set_dst_addr(a.sender_hw());
    o.set_src_addr(mac);
    o.set_ethertype(ethernet::ethertype::ARP);
    let mut r = arp::Packet::new_unchecked(o.payload_mut());
    r.set_ethernet_ipv4();
    r.set_operation(arp::OP_REPLY);
    r.set_sender_hw(mac);
    r.set_sender_ip(a.target_ip());
    r.set_target_hw(a.sender_hw());
    r.set_target_ip(a.sender_ip());
    Ok(len)
}

/// Recomputes every checksum of a complete IPv4 packet from scratch (IP header, and the
/// TCP/UDP/ICMP checksum of an unfragmented packet; a UDP checksum of 0 stays 0).
pub fn fill_all_checksums(pkt: &mut [u8]) {
    let Ok(ip) = ipv4::Packet::new_checked(&*pkt) else {
        return;
    };
    let (hl, tl) = (ip.header_len(), usize::from(ip.total_len()));
    let (src, dst, proto, frag) = (
        ip.src_addr(),
        ip.dst_addr(),
        ip.protocol(),
        ip.flags_frag() & 0x3fff != 0,
    );
    ipv4::Packet::new_unchecked(&mut *pkt).fill_checksum();
    if frag {
        return;
    }
    let l4 = &mut pkt[hl..tl];
    match proto {
        protocol::TCP if l4.len() >= tcp::MIN_HEADER_LEN => {
            tcp::Packet::new_unchecked(l4).fill_checksum(src, dst)
        }
        protocol::UDP if l4.len() >= crate::udp::HEADER_LEN => {
            let mut u = crate::udp::Packet::new_unchecked(l4);
            if u.checksum() != 0 {
                u.fill_checksum(src, dst);
            }
        }
        protocol::ICMP if l4.len() >= icmp::HEADER_LEN => {
            icmp::Packet::new_unchecked(l4).fill_checksum()
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{build_ipv4, FrameCtx};
    use crate::line::PacketSpec;
    use crate::print::ipv4_to_string;

    fn ip(line: &str, id: u16) -> Vec<u8> {
        build_ipv4(
            &PacketSpec::parse(line).unwrap(),
            &FrameCtx {
                ip_id: id,
                ..FrameCtx::default()
            },
        )
        .unwrap()
    }

    // Expected texts are the kernel's, from ../shared/examples/host-answers.kernel.txt.
    #[test]
    fn rst_for_syn() {
        let syn = ip("tcp 10.0.0.2:41000 > 10.0.0.1:23 flags=S seq=7 win=512", 1);
        let mut out = [0u8; 64];
        let n = tcp_reset(&syn, ResetSender::Reject, 64, &mut out).unwrap();
        assert_eq!(
            ipv4_to_string(&out[..n]),
            "tcp 10.0.0.1:23 > 10.0.0.2:41000 ttl=64 tos=0x00 id=0 df flags=RA seq=0 ack=8 win=0"
        );
        let ack = ip(
            "tcp 10.0.0.2:41000 > 10.0.0.1:23 flags=PA seq=7 ack=99 win=512 len=10",
            1,
        );
        let n = tcp_reset(&ack, ResetSender::Stack, 64, &mut out).unwrap();
        assert!(ipv4_to_string(&out[..n]).ends_with("flags=R seq=99 ack=0 win=0"));
        let rst = ip("tcp 10.0.0.2:41000 > 10.0.0.1:23 flags=R", 1);
        assert_eq!(
            tcp_reset(&rst, ResetSender::Stack, 64, &mut out),
            Err(EmitError::IsRst)
        );
        let bad = ip("tcp 10.0.0.2:41000 > 10.0.0.1:23 flags=S badsum", 1);
        assert_eq!(
            tcp_reset(&bad, ResetSender::Reject, 64, &mut out),
            Err(EmitError::BadChecksum)
        );
        assert_eq!(
            tcp_reset(&syn, ResetSender::Reject, 64, &mut out[..39]),
            Err(EmitError::BufferTooSmall)
        );
    }

    #[test]
    fn port_unreachable_and_echo() {
        let u = ip("udp 10.0.0.2:41001 > 10.0.0.1:69 len=10", 2);
        let mut out = [0u8; 600];
        let n = icmp_error(
            &u,
            3,
            3,
            0,
            Ipv4Addr::new(10, 0, 0, 1),
            64,
            0x1234,
            1500,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            ipv4_to_string(&out[..n]),
            "icmp 10.0.0.1 > 10.0.0.2 ttl=64 tos=0xc0 ipid=4660 type=3 code=3 inner=\"udp 10.0.0.2:41001 > 10.0.0.1:69 ttl=64 tos=0x00 id=2 len=10\""
        );
        let big = ip("udp 10.0.0.2:41001 > 10.0.0.1:69 len=1000", 2);
        let n = icmp_error(
            &big,
            3,
            3,
            0,
            Ipv4Addr::new(10, 0, 0, 1),
            64,
            0,
            1500,
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 576);
        let n2 = icmp_error(
            &big,
            3,
            4,
            500,
            Ipv4Addr::new(10, 0, 0, 1),
            64,
            0,
            500,
            &mut out,
        )
        .unwrap();
        assert_eq!(n2, 500);
        assert!(!may_answer_with_icmp_error(&out[..n2]));
        let e = ip(
            "icmp 10.0.0.2 > 10.0.0.1 type=8 code=0 id=5 seq=9 payload=\"ping\"",
            7,
        );
        let n = echo_reply(&e, 64, 0, &mut out).unwrap();
        assert_eq!(
            ipv4_to_string(&out[..n]),
            "icmp 10.0.0.1 > 10.0.0.2 ttl=64 tos=0x00 ipid=0 type=0 code=0 id=5 seq=9 payload=\"ping\""
        );
        assert!(may_answer_with_icmp_error(&u));
        assert!(may_answer_with_icmp_error(&e));
        assert!(!may_answer_with_icmp_error(&ip(
            "17 1.1.1.1 > 2.2.2.2 frag=8 len=8",
            1
        )));
    }

    #[test]
    fn fill_all_matches_builder() {
        for line in [
            "tcp 1.1.1.1:1 > 2.2.2.2:2 flags=S mss=1460 payload=\"x\"",
            "udp 1.1.1.1:1 > 2.2.2.2:2 len=3",
            "udp 1.1.1.1:1 > 2.2.2.2:2 nocsum len=3",
            "icmp 1.1.1.1 > 2.2.2.2 type=8 id=1 seq=2",
        ] {
            let b = ip(line, 1);
            let mut c = b.clone();
            let l4_csum = match c[9] {
                6 => 36,
                17 => 26,
                _ => 22,
            };
            for i in [10, 11, l4_csum, l4_csum + 1] {
                if i < 12 || !line.contains("nocsum") {
                    c[i] ^= 0x55;
                }
            }
            fill_all_checksums(&mut c);
            assert_eq!(b, c, "{line}");
        }
    }
}
