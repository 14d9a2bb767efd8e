//! The packet descriptor: an IPv4 packet parsed once into a plain `Copy` struct of offsets and
//! header values that the engine passes along the hot path, and the header writes on a packet
//! described by it. Every write fixes the IP and transport checksums incrementally (RFC 1624),
//! keeping UDP's zero-checksum rule. No allocation.

use crate::ethernet::{self, ethertype};
use crate::ipv4::{self, protocol};
use crate::{icmp, tcp, udp, Error, Result};
use std::net::Ipv4Addr;

/// What follows the IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4Kind {
    /// A fragment with offset > 0, or a protocol nfrs does not decode.
    None,
    /// A complete TCP header (options included).
    Tcp,
    /// A complete UDP header.
    Udp,
    /// A complete ICMP header.
    Icmp,
    /// TCP/UDP/ICMP whose header does not fit in the IP payload.
    Truncated,
}

/// An IPv4 packet parsed once. Offsets are absolute in the buffer it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketDesc {
    /// Offset of the IP header (0 for a bare IP packet, 14 in an Ethernet frame).
    pub l3_off: u16,
    /// IP header length in bytes (with options).
    pub ihl: u8,
    /// IP total length.
    pub total_len: u16,
    /// TOS byte.
    pub tos: u8,
    /// TTL.
    pub ttl: u8,
    /// IP protocol.
    pub protocol: u8,
    /// IP identification.
    pub ip_id: u16,
    /// Flags and fragment offset word as on the wire.
    pub flags_frag: u16,
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Offset of the transport header (absolute).
    pub l4_off: u16,
    /// What the transport header is.
    pub l4: L4Kind,
    /// TCP/UDP source port (0 otherwise).
    pub sport: u16,
    /// TCP/UDP destination port (0 otherwise).
    pub dport: u16,
    /// TCP flags.
    pub tcp_flags: u8,
    /// TCP sequence number.
    pub seq: u32,
    /// TCP acknowledgment number.
    pub ack: u32,
    /// TCP window (unscaled).
    pub win: u16,
    /// TCP header length (options end at `l4_off + tcp_hlen`).
    pub tcp_hlen: u8,
    /// ICMP type.
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// ICMP echo identifier (echo-like types).
    pub icmp_id: u16,
    /// ICMP echo sequence (echo-like types).
    pub icmp_seq: u16,
}

impl PacketDesc {
    /// Parses the Ethernet frame's IPv4 packet.
    pub fn parse_frame(frame: &[u8]) -> Result<PacketDesc> {
        let f = ethernet::Frame::new_checked(frame)?;
        if f.ethertype() != ethertype::IPV4 {
            return Err(Error::Malformed);
        }
        Self::parse_ipv4(frame, ethernet::HEADER_LEN)
    }

    /// Parses the IPv4 packet at `l3_off`; the whole datagram (total length) must be present.
    /// The same checks as `ipv4::Packet::new_checked` and `tcp::Packet::new_checked`, read
    /// from fixed-size header copies (one length test each instead of one a field: this runs
    /// for every packet, and again after NAT rewrites it).
    #[inline]
    pub fn parse_ipv4(buf: &[u8], l3_off: usize) -> Result<PacketDesc> {
        let b = buf.get(l3_off..).ok_or(Error::Truncated)?;
        let h: &[u8; 20] = b
            .get(..ipv4::MIN_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(Error::Truncated)?;
        let hl = usize::from(h[0] & 0x0f) * 4;
        if h[0] >> 4 != 4 || hl < ipv4::MIN_HEADER_LEN {
            return Err(Error::Malformed);
        }
        if b.len() < hl {
            return Err(Error::Truncated);
        }
        let total_len = u16::from_be_bytes([h[2], h[3]]);
        let tl = usize::from(total_len);
        if tl < hl {
            return Err(Error::Malformed);
        }
        if b.len() < tl {
            return Err(Error::Truncated);
        }
        // Offsets are kept as u16: the transport header must start within 64 KiB.
        if l3_off + hl > usize::from(u16::MAX) {
            return Err(Error::Malformed);
        }
        let flags_frag = u16::from_be_bytes([h[6], h[7]]);
        let mut d = PacketDesc {
            l3_off: l3_off as u16,
            ihl: hl as u8,
            total_len,
            tos: h[1],
            ttl: h[8],
            protocol: h[9],
            ip_id: u16::from_be_bytes([h[4], h[5]]),
            flags_frag,
            src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            l4_off: (l3_off + hl) as u16,
            l4: L4Kind::None,
            sport: 0,
            dport: 0,
            tcp_flags: 0,
            seq: 0,
            ack: 0,
            win: 0,
            tcp_hlen: 0,
            icmp_type: 0,
            icmp_code: 0,
            icmp_id: 0,
            icmp_seq: 0,
        };
        if flags_frag & 0x1fff != 0 {
            return Ok(d);
        }
        let pl = &b[hl..tl];
        match d.protocol {
            protocol::TCP => {
                let t: Option<&[u8; 20]> = pl
                    .get(..tcp::MIN_HEADER_LEN)
                    .and_then(|t| t.try_into().ok());
                let thl = t.map_or(0, |t| usize::from(t[12] >> 4) * 4);
                match t {
                    Some(t) if thl >= tcp::MIN_HEADER_LEN && pl.len() >= thl => {
                        d.l4 = L4Kind::Tcp;
                        d.sport = u16::from_be_bytes([t[0], t[1]]);
                        d.dport = u16::from_be_bytes([t[2], t[3]]);
                        d.seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
                        d.ack = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
                        d.tcp_flags = t[13];
                        d.win = u16::from_be_bytes([t[14], t[15]]);
                        d.tcp_hlen = thl as u8;
                    }
                    _ => d.l4 = L4Kind::Truncated,
                }
            }
            protocol::UDP => match udp::Packet::new_checked(pl) {
                Ok(u) => {
                    d.l4 = L4Kind::Udp;
                    d.sport = u.src_port();
                    d.dport = u.dst_port();
                }
                Err(_) => d.l4 = L4Kind::Truncated,
            },
            protocol::ICMP => match icmp::Packet::new_checked(pl) {
                Ok(i) => {
                    d.l4 = L4Kind::Icmp;
                    d.icmp_type = i.msg_type();
                    d.icmp_code = i.msg_code();
                    if icmp::is_echo_like(d.icmp_type) {
                        d.icmp_id = i.echo_ident();
                        d.icmp_seq = i.echo_seq_no();
                    }
                }
                Err(_) => d.l4 = L4Kind::Truncated,
            },
            _ => {}
        }
        Ok(d)
    }

    /// Don't Fragment.
    pub fn df(&self) -> bool {
        self.flags_frag & ipv4::FLAG_DF != 0
    }

    /// More Fragments.
    pub fn mf(&self) -> bool {
        self.flags_frag & ipv4::FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_frag & 0x1fff) << 3
    }

    /// True for any fragment (MF set or offset > 0).
    pub fn is_fragment(&self) -> bool {
        self.flags_frag & 0x3fff != 0
    }

    /// End of the IP packet (absolute offset).
    pub fn l3_end(&self) -> usize {
        usize::from(self.l3_off) + usize::from(self.total_len)
    }

    /// Offset of the transport payload (absolute): after the TCP header with options, the UDP
    /// or ICMP header, or the IP header for anything else.
    pub fn payload_off(&self) -> usize {
        let l4 = usize::from(self.l4_off);
        match self.l4 {
            L4Kind::Tcp => l4 + usize::from(self.tcp_hlen),
            L4Kind::Udp => l4 + udp::HEADER_LEN,
            L4Kind::Icmp => l4 + icmp::HEADER_LEN,
            L4Kind::None | L4Kind::Truncated => l4,
        }
    }

    /// Transport payload length.
    pub fn payload_len(&self) -> usize {
        self.l3_end().saturating_sub(self.payload_off())
    }

    /// Offset of the TCP options (absolute; meaningful for [`L4Kind::Tcp`]).
    pub fn tcp_opts_off(&self) -> usize {
        usize::from(self.l4_off) + tcp::MIN_HEADER_LEN
    }

    /// Length of the TCP options (0 unless [`L4Kind::Tcp`]).
    pub fn tcp_opts_len(&self) -> usize {
        usize::from(self.tcp_hlen).saturating_sub(tcp::MIN_HEADER_LEN)
    }

    /// True for an ICMP error type (3 4 5 11 12) with a complete ICMP header.
    pub fn is_icmp_error(&self) -> bool {
        self.l4 == L4Kind::Icmp && icmp::is_error(self.icmp_type)
    }

    fn ip<'a>(&self, buf: &'a mut [u8]) -> ipv4::Packet<&'a mut [u8]> {
        ipv4::Packet::new_unchecked(&mut buf[usize::from(self.l3_off)..self.l3_end()])
    }

    fn l4_buf<'a>(&self, buf: &'a mut [u8]) -> &'a mut [u8] {
        &mut buf[usize::from(self.l4_off)..self.l3_end()]
    }

    fn fix_pseudo(&self, buf: &mut [u8], old: Ipv4Addr, new: Ipv4Addr) {
        match self.l4 {
            L4Kind::Tcp => {
                tcp::Packet::new_unchecked(self.l4_buf(buf)).update_pseudo_addr(old, new)
            }
            L4Kind::Udp => {
                udp::Packet::new_unchecked(self.l4_buf(buf)).update_pseudo_addr(old, new)
            }
            _ => {}
        }
    }
}

/// The packet an ICMP error quotes, parsed once: what conntrack needs to find the connection
/// the error is RELATED to and NAT needs to translate it. The quote must hold the inner IP
/// header and at least the first 8 bytes of its payload (ports, or ICMP type/code/id) — the
/// kernel ignores an error quoting less.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotedDesc {
    /// Offset of the quoted IP header (absolute).
    pub l3_off: u16,
    /// Its header length.
    pub ihl: u8,
    /// Its total length as announced (may exceed what is quoted).
    pub total_len: u16,
    /// Bytes of it present in the quote.
    pub present_len: u16,
    /// Its protocol.
    pub protocol: u8,
    /// Its flags/fragment word.
    pub flags_frag: u16,
    /// Its source.
    pub src: Ipv4Addr,
    /// Its destination.
    pub dst: Ipv4Addr,
    /// Offset of its transport header (absolute).
    pub l4_off: u16,
    /// TCP/UDP source port.
    pub sport: u16,
    /// TCP/UDP destination port.
    pub dport: u16,
    /// ICMP type (quoted ICMP).
    pub icmp_type: u8,
    /// ICMP code.
    pub icmp_code: u8,
    /// ICMP echo identifier (quoted echo-like ICMP).
    pub icmp_id: u16,
}

impl QuotedDesc {
    /// Parses the quote of the ICMP error `d` (parsed from `buf`).
    pub fn parse(buf: &[u8], d: &PacketDesc) -> Result<QuotedDesc> {
        if !d.is_icmp_error() {
            return Err(Error::Malformed);
        }
        let start = usize::from(d.l4_off) + icmp::HEADER_LEN;
        let q = buf.get(start..d.l3_end()).ok_or(Error::Truncated)?;
        let ip = ipv4::Packet::new_unchecked(q);
        ip.check_header_len()?;
        let hl = ip.header_len();
        let l4 = q.get(hl..hl + 8).ok_or(Error::Truncated)?;
        let mut r = QuotedDesc {
            l3_off: u16::try_from(start).map_err(|_| Error::Malformed)?,
            ihl: hl as u8,
            total_len: ip.total_len(),
            present_len: u16::try_from(q.len()).map_err(|_| Error::Malformed)?,
            protocol: ip.protocol(),
            flags_frag: ip.flags_frag(),
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            l4_off: u16::try_from(start + hl).map_err(|_| Error::Malformed)?,
            sport: 0,
            dport: 0,
            icmp_type: 0,
            icmp_code: 0,
            icmp_id: 0,
        };
        match r.protocol {
            protocol::TCP | protocol::UDP => {
                r.sport = u16::from_be_bytes([l4[0], l4[1]]);
                r.dport = u16::from_be_bytes([l4[2], l4[3]]);
            }
            protocol::ICMP => {
                r.icmp_type = l4[0];
                r.icmp_code = l4[1];
                if icmp::is_echo_like(r.icmp_type) {
                    r.icmp_id = u16::from_be_bytes([l4[4], l4[5]]);
                }
            }
            _ => {}
        }
        Ok(r)
    }
}

/// Header writes on a packet described by a [`PacketDesc`] parsed from the same buffer. Each
/// fixes the IP header checksum and the transport checksum (pseudo header included)
/// incrementally and keeps the descriptor in step.
///
/// pre: `buf` is the buffer `d` was parsed from, unchanged in length since.
pub mod mangle {
    use super::*;

    /// Rewrites the source address (SNAT).
    pub fn set_src_addr(buf: &mut [u8], d: &mut PacketDesc, a: Ipv4Addr) {
        d.ip(buf).update_src_addr(a);
        d.fix_pseudo(buf, d.src, a);
        d.src = a;
    }

    /// Rewrites the destination address (DNAT).
    pub fn set_dst_addr(buf: &mut [u8], d: &mut PacketDesc, a: Ipv4Addr) {
        d.ip(buf).update_dst_addr(a);
        d.fix_pseudo(buf, d.dst, a);
        d.dst = a;
    }

    /// Rewrites the TCP/UDP source port; false (nothing written) for other packets.
    pub fn set_src_port(buf: &mut [u8], d: &mut PacketDesc, p: u16) -> bool {
        match d.l4 {
            L4Kind::Tcp => tcp::Packet::new_unchecked(d.l4_buf(buf)).update_src_port(p),
            L4Kind::Udp => udp::Packet::new_unchecked(d.l4_buf(buf)).update_src_port(p),
            _ => return false,
        }
        d.sport = p;
        true
    }

    /// Rewrites the TCP/UDP destination port; false (nothing written) for other packets.
    pub fn set_dst_port(buf: &mut [u8], d: &mut PacketDesc, p: u16) -> bool {
        match d.l4 {
            L4Kind::Tcp => tcp::Packet::new_unchecked(d.l4_buf(buf)).update_dst_port(p),
            L4Kind::Udp => udp::Packet::new_unchecked(d.l4_buf(buf)).update_dst_port(p),
            _ => return false,
        }
        d.dport = p;
        true
    }

    /// Rewrites the ICMP echo identifier; false for other packets.
    pub fn set_icmp_id(buf: &mut [u8], d: &mut PacketDesc, id: u16) -> bool {
        if d.l4 != L4Kind::Icmp || !icmp::is_echo_like(d.icmp_type) {
            return false;
        }
        icmp::Packet::new_unchecked(d.l4_buf(buf)).update_echo_ident(id);
        d.icmp_id = id;
        true
    }

    /// Sets the TTL.
    pub fn set_ttl(buf: &mut [u8], d: &mut PacketDesc, ttl: u8) {
        d.ip(buf).update_ttl(ttl);
        d.ttl = ttl;
    }

    /// Forwarding's TTL decrement; false (nothing written) when the TTL is already 0 or 1 and
    /// the packet must be answered with Time Exceeded instead.
    #[inline]
    pub fn dec_ttl(buf: &mut [u8], d: &mut PacketDesc) -> bool {
        if d.ttl <= 1 {
            return false;
        }
        // The same RFC 1624 update `set_ttl` makes, on a fixed-size view of the header (one
        // bounds check instead of one per field).
        let l3 = usize::from(d.l3_off);
        let Some(h) = buf
            .get_mut(l3..l3 + crate::ipv4::MIN_HEADER_LEN)
            .and_then(|h| <&mut [u8; 20]>::try_from(h).ok())
        else {
            set_ttl(buf, d, d.ttl - 1);
            return true;
        };
        let ttl = d.ttl - 1;
        let old = u16::from_be_bytes([h[8], h[9]]);
        let new = u16::from_be_bytes([ttl, h[9]]);
        let c = crate::checksum::update16(u16::from_be_bytes([h[10], h[11]]), old, new);
        h[8] = ttl;
        h[10..12].copy_from_slice(&c.to_be_bytes());
        d.ttl = ttl;
        true
    }

    /// Sets the TOS byte.
    pub fn set_tos(buf: &mut [u8], d: &mut PacketDesc, tos: u8) {
        d.ip(buf).update_tos(tos);
        d.tos = tos;
    }

    /// Sets the IP identification.
    pub fn set_ip_id(buf: &mut [u8], d: &mut PacketDesc, id: u16) {
        d.ip(buf).update_ident(id);
        d.ip_id = id;
    }

    /// Sets the IP flags/fragment-offset word (e.g. DF).
    pub fn set_flags_frag(buf: &mut [u8], d: &mut PacketDesc, v: u16) {
        d.ip(buf).update_flags_frag(v);
        d.flags_frag = v;
    }

    /// Sets or clears DF.
    pub fn set_df(buf: &mut [u8], d: &mut PacketDesc, df: bool) {
        let v = if df {
            d.flags_frag | ipv4::FLAG_DF
        } else {
            d.flags_frag & !ipv4::FLAG_DF
        };
        set_flags_frag(buf, d, v);
    }

    /// Sets the TCP flags byte (e.g. the ECN target clearing ECE/CWR); false for other packets.
    pub fn set_tcp_flags(buf: &mut [u8], d: &mut PacketDesc, flags: u8) -> bool {
        if d.l4 != L4Kind::Tcp {
            return false;
        }
        tcp::Packet::new_unchecked(d.l4_buf(buf)).update_flags(flags);
        d.tcp_flags = flags;
        true
    }

    /// Sets the TCP sequence number; false for other packets.
    pub fn set_seq(buf: &mut [u8], d: &mut PacketDesc, v: u32) -> bool {
        if d.l4 != L4Kind::Tcp {
            return false;
        }
        tcp::Packet::new_unchecked(d.l4_buf(buf)).update_seq_number(v);
        d.seq = v;
        true
    }

    /// Sets the TCP acknowledgment number; false for other packets.
    pub fn set_ack(buf: &mut [u8], d: &mut PacketDesc, v: u32) -> bool {
        if d.l4 != L4Kind::Tcp {
            return false;
        }
        tcp::Packet::new_unchecked(d.l4_buf(buf)).update_ack_number(v);
        d.ack = v;
        true
    }

    /// Writes up to 12 bytes into the IP header at `at` (from the header's start; e.g. a
    /// record-route or timestamp option being filled in), fixing the header checksum
    /// incrementally. False (nothing written) when the run leaves the header, touches the
    /// checksum field, or is longer than 12 bytes. The descriptor's cached fields are not
    /// updated: use the dedicated writers for those.
    pub fn write_ip_header(buf: &mut [u8], d: &PacketDesc, at: usize, bytes: &[u8]) -> bool {
        let end = at + bytes.len();
        if bytes.len() > 12 || end > usize::from(d.ihl) || (at < 12 && end > 10) {
            return false;
        }
        let l3 = usize::from(d.l3_off);
        let hdr = &mut buf[l3..l3 + usize::from(d.ihl)];
        crate::checksum::patch(hdr, 10, at, bytes);
        true
    }

    /// Rewrites the TCP MSS option (TCPMSS); returns the old value, `None` without one.
    pub fn set_mss(buf: &mut [u8], d: &mut PacketDesc, mss: u16) -> Option<u16> {
        if d.l4 != L4Kind::Tcp {
            return None;
        }
        tcp::Packet::new_unchecked(d.l4_buf(buf)).update_mss(mss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{build_frame, FrameCtx};
    use crate::line::PacketSpec;
    use crate::print::frame_to_string;

    fn frame(line: &str) -> Vec<u8> {
        build_frame(
            &PacketSpec::parse(line).unwrap(),
            &FrameCtx {
                ip_id: 1,
                ..FrameCtx::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn parse_once() {
        let f = frame(
            "tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=S seq=100 win=64240 mss=1460 df len=5",
        );
        let d = PacketDesc::parse_frame(&f).unwrap();
        assert_eq!(
            (d.l3_off, d.ihl, d.total_len, d.protocol, d.l4_off),
            (14, 20, 49, 6, 34)
        );
        assert_eq!(
            (
                d.sport,
                d.dport,
                d.seq,
                d.ack,
                d.win,
                d.tcp_flags,
                d.tcp_hlen
            ),
            (40000, 443, 100, 0, 64240, 2, 24)
        );
        assert!(d.df() && !d.mf() && !d.is_fragment());
        assert_eq!((d.payload_off(), d.payload_len()), (58, 5));
        let f = frame("icmp 10.0.0.2 > 10.0.0.1 type=8 id=5 seq=9 payload=\"ping\"");
        let d = PacketDesc::parse_frame(&f).unwrap();
        assert_eq!(
            (d.l4, d.icmp_type, d.icmp_id, d.icmp_seq, d.payload_len()),
            (L4Kind::Icmp, 8, 5, 9, 4)
        );
        let f = frame("17 10.0.0.2 > 10.0.0.1 frag=8 mf len=8");
        let d = PacketDesc::parse_frame(&f).unwrap();
        assert_eq!(
            (d.l4, d.frag_offset(), d.mf(), d.payload_len()),
            (L4Kind::None, 8, true, 8)
        );
        let f = frame("tcp 10.0.0.2 > 10.0.0.1 truncated len=4 hex=01020304");
        assert_eq!(PacketDesc::parse_frame(&f).unwrap().l4, L4Kind::Truncated);
        assert_eq!(
            PacketDesc::parse_frame(&f[..30]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(
            PacketDesc::parse_frame(&f[..10]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn record_route_filled_in() {
        // The kernel forwarding this packet out of wan0 (192.0.2.1) wrote its address into the
        // record-route option and moved the pointer (tests/scenarios/hostile/ip-options).
        let mut f =
            frame("udp 10.0.0.2:5000 > 198.51.100.7:53 len=8 ipopts=070b04000000000000000000");
        let mut d = PacketDesc::parse_frame(&f).unwrap();
        assert!(mangle::dec_ttl(&mut f, &mut d));
        assert!(mangle::write_ip_header(&mut f, &d, 22, &[8, 192, 0, 2, 1]));
        assert_eq!(
            frame_to_string(&f),
            "udp 10.0.0.2:5000 > 198.51.100.7:53 ttl=63 tos=0x00 id=1 ipopts=070b08c00002010000000000 len=8"
        );
        assert!(!mangle::write_ip_header(&mut f, &d, 9, &[1, 2]));
        assert!(!mangle::write_ip_header(&mut f, &d, 30, &[1, 2, 3]));
        assert!(mangle::write_ip_header(&mut f, &d, 12, &[10, 0, 0, 3]));
    }

    #[test]
    fn quoted_packet() {
        let f = frame(
            r#"icmp 10.0.0.1 > 10.0.0.2 type=3 code=3 inner="udp 10.0.0.2:41001 > 10.0.0.1:69 ttl=1 len=10""#,
        );
        let d = PacketDesc::parse_frame(&f).unwrap();
        assert!(d.is_icmp_error());
        let q = QuotedDesc::parse(&f, &d).unwrap();
        assert_eq!(
            (q.l3_off, q.ihl, q.total_len, q.present_len, q.protocol),
            (42, 20, 38, 38, 17)
        );
        assert_eq!(
            (q.src, q.dst, q.sport, q.dport, q.l4_off),
            (
                Ipv4Addr::new(10, 0, 0, 2),
                Ipv4Addr::new(10, 0, 0, 1),
                41001,
                69,
                62
            )
        );
        let f = frame(
            r#"icmp 10.0.0.1 > 10.0.0.2 type=11 inner="icmp 10.0.0.2 > 8.8.8.8 type=8 id=77 seq=1""#,
        );
        let d = PacketDesc::parse_frame(&f).unwrap();
        let q = QuotedDesc::parse(&f, &d).unwrap();
        assert_eq!((q.icmp_type, q.icmp_id), (8, 77));
        // A quote shorter than header + 8 bytes is refused.
        let f =
            frame(r#"icmp 10.0.0.1 > 10.0.0.2 type=11 inner="ip truncated len=4 hex=45000000""#);
        let d = PacketDesc::parse_frame(&f).unwrap();
        assert_eq!(QuotedDesc::parse(&f, &d).unwrap_err(), Error::Truncated);
        let f = frame("icmp 10.0.0.1 > 10.0.0.2 type=8");
        let d = PacketDesc::parse_frame(&f).unwrap();
        assert_eq!(QuotedDesc::parse(&f, &d).unwrap_err(), Error::Malformed);
        let f = frame("tcp 1.1.1.1:1 > 2.2.2.2:2 mss=1 ts=1/2");
        let d = PacketDesc::parse_frame(&f).unwrap();
        assert_eq!((d.tcp_opts_off(), d.tcp_opts_len()), (54, 16));
        // The largest IP packet, in a frame; an IP header too far into a buffer is refused.
        let f = frame("udp 1.1.1.1:1 > 2.2.2.2:2 len=65507");
        let d = PacketDesc::parse_frame(&f).unwrap();
        assert_eq!(
            (d.total_len, d.payload_len(), d.l3_end()),
            (65535, 65507, 65549)
        );
        let mut far = vec![0u8; 65520];
        far.extend_from_slice(&f[14..]);
        assert_eq!(
            PacketDesc::parse_ipv4(&far, 65520).unwrap_err(),
            Error::Malformed
        );
    }

    #[test]
    fn nat_rewrites_keep_checksums() {
        let mut f = frame("tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=S seq=100 win=64240 mss=1460 sackok ts=1/0 wscale=7");
        let mut d = PacketDesc::parse_frame(&f).unwrap();
        assert!(mangle::dec_ttl(&mut f, &mut d));
        mangle::set_src_addr(&mut f, &mut d, Ipv4Addr::new(192, 0, 2, 1));
        assert!(mangle::set_src_port(&mut f, &mut d, 1024));
        assert_eq!(mangle::set_mss(&mut f, &mut d, 1400), Some(1460));
        assert!(mangle::set_tcp_flags(
            &mut f,
            &mut d,
            crate::tcp::flags::SYN | crate::tcp::flags::ECE
        ));
        assert!(mangle::set_tcp_flags(
            &mut f,
            &mut d,
            crate::tcp::flags::SYN
        ));
        assert_eq!(
            frame_to_string(&f),
            "tcp 192.0.2.1:1024 > 203.0.113.9:443 ttl=63 tos=0x00 id=1 flags=S seq=100 ack=0 win=64240 mss=1400 sackok ts=1/0 wscale=7"
        );
        assert_eq!(PacketDesc::parse_frame(&f).unwrap(), d);
        let mut f = frame("udp 10.0.0.3:5353 > 203.0.113.53:53 nocsum len=4");
        let mut d = PacketDesc::parse_frame(&f).unwrap();
        mangle::set_dst_addr(&mut f, &mut d, Ipv4Addr::new(10, 9, 9, 9));
        mangle::set_dst_port(&mut f, &mut d, 99);
        assert_eq!(
            frame_to_string(&f),
            "udp 10.0.0.3:5353 > 10.9.9.9:99 ttl=64 tos=0x00 id=1 nocsum len=4"
        );
        let mut f = frame("icmp 10.0.0.2 > 203.0.113.9 type=8 id=77 seq=1");
        let mut d = PacketDesc::parse_frame(&f).unwrap();
        assert!(mangle::set_icmp_id(&mut f, &mut d, 1000));
        assert!(!mangle::set_src_port(&mut f, &mut d, 1));
        mangle::set_tos(&mut f, &mut d, 0x10);
        mangle::set_ip_id(&mut f, &mut d, 7);
        mangle::set_df(&mut f, &mut d, true);
        assert!(!mangle::set_tcp_flags(&mut f, &mut d, 1));
        assert_eq!(
            frame_to_string(&f),
            "icmp 10.0.0.2 > 203.0.113.9 ttl=64 tos=0x10 ipid=7 df type=8 code=0 id=1000 seq=1"
        );
        let mut d1 = d;
        d1.ttl = 1;
        assert!(!mangle::dec_ttl(&mut f, &mut d1));
    }

    /// dec_ttl's fixed-size path writes exactly what set_ttl(ttl - 1) writes (bytes and
    /// descriptor), for every TTL and a spread of checksums and protocols.
    #[test]
    fn dec_ttl_equals_set_ttl_minus_one() {
        let base = frame("tcp 10.0.0.2:1234 > 203.0.113.9:443 flags=A seq=5 ack=7 win=100");
        for ttl in 2..=255u8 {
            for (proto, csum) in [(6u8, 0u16), (17, 0xffff), (1, 0x00ff), (6, 0xfeff)] {
                let mut a = base.clone();
                a[14 + 8] = ttl;
                a[14 + 9] = proto;
                a[14 + 10..14 + 12].copy_from_slice(&csum.to_be_bytes());
                let mut b = a.clone();
                let mut da = PacketDesc::parse_frame(&a).unwrap();
                let mut db = da;
                assert!(mangle::dec_ttl(&mut a, &mut da));
                mangle::set_ttl(&mut b, &mut db, ttl - 1);
                assert_eq!(a, b, "ttl {ttl} proto {proto} csum {csum:#x}");
                assert_eq!(da, db);
            }
        }
    }
}
