//! Applying a connection's NAT to packet bytes, both ways (kernel `nf_nat_packet`,
//! `nf_nat_ipv4_manip_pkt` and the per-protocol manips), and translating ICMP errors together
//! with the header they quote (`nf_nat_icmp_reply_translation`). Checksums are fixed
//! incrementally (RFC 1624, as the kernel's csum_replace does), UDP's zero rule included.
//!
//! Buffers start at the IPv4 header and end at its total length. Nothing allocates.

use nfrs_conntrack::{status, Conn, Dir, Tuple};
use nfrs_wire::checksum::{add_bytes, fold, udp_wire, update16, update32, update_addr_port};

use crate::select::Manip;

/// Why NAT drops a packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NatDrop {
    /// The headers to rewrite are not all there.
    Truncated,
    /// An ICMP redirect on a NATed connection (the kernel drops those).
    RedirectOnNat,
    /// The ICMP error's checksum is wrong.
    BadIcmpChecksum,
}

fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn wr16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn wr32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn invert(t: &Tuple) -> Tuple {
    t.reply().unwrap_or(*t)
}

/// Kernel `nf_nat_ipv4_manip_pkt`: rewrite the transport part for `target.proto`, then the
/// address, of the IPv4 header at `ip` in `buf`.
#[inline]
fn manip_pkt(buf: &mut [u8], ip: usize, target: &Tuple, m: Manip) -> Result<(), NatDrop> {
    if ip == 0 && buf.len() >= 20 && manip_whole_tcp_udp(buf, target, m) {
        return Ok(());
    }
    manip_general(buf, ip, target, m)
}

/// [`manip_pkt`] for every protocol and for quoted headers.
fn manip_general(buf: &mut [u8], ip: usize, target: &Tuple, m: Manip) -> Result<(), NatDrop> {
    if buf.len() < ip + 20 {
        return Err(NatDrop::Truncated);
    }
    let ihl = (buf[ip] & 0x0f) as usize * 4;
    let l4 = ip + ihl;
    let (addr_at, new_addr) = match m {
        Manip::Src => (ip + 12, target.src),
        Manip::Dst => (ip + 16, target.dst),
    };
    let old_addr = rd32(buf, addr_at);
    let port_at = match m {
        Manip::Src => l4,
        Manip::Dst => l4 + 2,
    };
    let new_port = match m {
        Manip::Src => target.src_l4,
        Manip::Dst => target.dst_l4,
    };
    match target.proto {
        6 => {
            // Inside an ICMP error only 8 bytes may be there: ports change, checksum cannot.
            if buf.len() < l4 + 8 {
                return Err(NatDrop::Truncated);
            }
            let full = buf.len() >= l4 + 20;
            let old_port = rd16(buf, port_at);
            wr16(buf, port_at, new_port);
            if full {
                let c = rd16(buf, l4 + 16);
                let c = update16(update32(c, old_addr, new_addr), old_port, new_port);
                wr16(buf, l4 + 16, c);
            }
        }
        17 | 136 => {
            if buf.len() < l4 + 8 {
                return Err(NatDrop::Truncated);
            }
            let old_port = rd16(buf, port_at);
            wr16(buf, port_at, new_port);
            let c = rd16(buf, l4 + 6);
            // UDP-Lite always carries a checksum; UDP's zero means none.
            if c != 0 || target.proto == 136 {
                // A zero checksum means "none" and stays zero; a result of zero is sent as ones.
                let c = update16(update32(c, old_addr, new_addr), old_port, new_port);
                wr16(buf, l4 + 6, udp_wire(c));
            }
        }
        132 => {
            if buf.len() < l4 + 8 {
                return Err(NatDrop::Truncated);
            }
            wr16(buf, port_at, new_port);
            // SCTP's CRC32c cannot be patched: recomputed over what is there (a quoted header
            // shorter than 12 bytes keeps its old value).
            if buf.len() >= l4 + 12 {
                let c = nfrs_conntrack::sctp::checksum_bytes(&buf[l4..]);
                buf[l4 + 8..l4 + 12].copy_from_slice(&c);
            }
        }
        1 => {
            if buf.len() < l4 + 8 {
                return Err(NatDrop::Truncated);
            }
            // Only query/answer messages carry an id to rewrite.
            if matches!(buf[l4], 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) {
                let old = rd16(buf, l4 + 4);
                let c = update16(rd16(buf, l4 + 2), old, target.src_l4);
                wr16(buf, l4 + 4, target.src_l4);
                wr16(buf, l4 + 2, c);
            }
        }
        _ => {}
    }
    let c = update32(rd16(buf, ip + 10), old_addr, new_addr);
    wr32(buf, addr_at, new_addr);
    wr16(buf, ip + 10, c);
    Ok(())
}

/// [`manip_pkt`]'s common case, a packet (not a quoted header) with a whole TCP header or a
/// UDP header with a checksum: the same rewrite on fixed-size views of the two headers (one
/// bounds check each). False, with nothing written, for anything else.
#[inline]
fn manip_whole_tcp_udp(buf: &mut [u8], target: &Tuple, m: Manip) -> bool {
    let tcp = match target.proto {
        6 => true,
        17 => false,
        _ => return false,
    };
    let ihl = (buf[0] & 0x0f) as usize * 4;
    if ihl < 20 || buf.len() < ihl + if tcp { 20 } else { 8 } {
        return false;
    }
    let (head, rest) = buf.split_at_mut(ihl);
    let (ports, tail) = rest.split_at_mut(8);
    let (Ok(h), Ok(t)) = (
        <&mut [u8; 20]>::try_from(&mut head[..20]),
        <&mut [u8; 8]>::try_from(ports),
    ) else {
        return false;
    };
    // TCP's checksum is at 16 (in `tail` from 8), UDP's at 6.
    let c = if tcp {
        u16::from_be_bytes([tail[8], tail[9]])
    } else {
        u16::from_be_bytes([t[6], t[7]])
    };
    if !tcp && c == 0 {
        // UDP without a checksum: the general path keeps the zero.
        return false;
    }
    let (a, port_at, new_addr, new_port) = match m {
        Manip::Src => (12, 0, target.src, target.src_l4),
        Manip::Dst => (16, 2, target.dst, target.dst_l4),
    };
    let old_addr = u32::from_be_bytes([h[a], h[a + 1], h[a + 2], h[a + 3]]);
    let old_port = u16::from_be_bytes([t[port_at], t[port_at + 1]]);
    t[port_at..port_at + 2].copy_from_slice(&new_port.to_be_bytes());
    let c = update_addr_port(c, old_addr, new_addr, old_port, new_port);
    if tcp {
        tail[8..10].copy_from_slice(&c.to_be_bytes());
    } else {
        t[6..8].copy_from_slice(&udp_wire(c).to_be_bytes());
    }
    let ic = update32(u16::from_be_bytes([h[10], h[11]]), old_addr, new_addr);
    h[a..a + 4].copy_from_slice(&new_addr.to_be_bytes());
    h[10..12].copy_from_slice(&ic.to_be_bytes());
    true
}

/// The status bit that says manip `m` applies to packets going direction `dir` (when it is
/// clear, [`nat_packet`] changes nothing).
#[inline]
pub fn applies(conn: &Conn, dir: Dir, m: Manip) -> bool {
    let mut bit = match m {
        Manip::Src => status::SRC_NAT,
        Manip::Dst => status::DST_NAT,
    };
    if dir == Dir::Reply {
        bit ^= status::NAT_MASK;
    }
    conn.status & bit != 0
}

/// Kernel `nf_nat_packet`: at a NAT hook of kind `m`, rewrite a packet of `conn` travelling
/// `dir` so it matches the other direction's tuple. Returns whether anything changed.
#[inline]
pub fn nat_packet(buf: &mut [u8], conn: &Conn, dir: Dir, m: Manip) -> Result<bool, NatDrop> {
    if !applies(conn, dir, m) {
        return Ok(false);
    }
    let target = invert(&conn.tuple[1 - dir.index()]);
    manip_pkt(buf, 0, &target, m)?;
    Ok(true)
}

/// Kernel `nf_nat_icmp_reply_translation`, for ICMP packets whose ctinfo is RELATED or
/// RELATED_REPLY (`dir` from the ctinfo): the quoted header gets the reverse manip, the ICMP
/// checksum is recomputed, then the outer header is rewritten like any packet of that
/// direction. Non-error ICMP is left alone. Returns whether anything changed.
pub fn translate_icmp_error(
    buf: &mut [u8],
    conn: &Conn,
    dir: Dir,
    m: Manip,
) -> Result<bool, NatDrop> {
    if buf.len() < 20 {
        return Err(NatDrop::Truncated);
    }
    let ihl = (buf[0] & 0x0f) as usize * 4;
    if buf.len() < ihl + 8 + 20 {
        return Err(NatDrop::Truncated);
    }
    if fold(add_bytes(0, &buf[ihl..])) != 0xffff {
        return Err(NatDrop::BadIcmpChecksum);
    }
    let ty = buf[ihl];
    if !matches!(ty, 3 | 4 | 5 | 11 | 12) {
        return Ok(false);
    }
    if ty == 5 && conn.status & status::NAT_MASK != 0 {
        return Err(NatDrop::RedirectOnNat);
    }
    if !applies(conn, dir, m) {
        return Ok(false);
    }
    let other = conn.tuple[1 - dir.index()];
    let back = match m {
        Manip::Src => Manip::Dst,
        Manip::Dst => Manip::Src,
    };
    manip_pkt(buf, ihl + 8, &other, back)?;
    wr16(buf, ihl + 2, 0);
    let c = !fold(add_bytes(0, &buf[ihl..]));
    wr16(buf, ihl + 2, c);
    let mut target = invert(&other);
    target.proto = 1;
    manip_pkt(buf, 0, &target, m)?;
    Ok(true)
}

#[cfg(test)]
mod tests;
