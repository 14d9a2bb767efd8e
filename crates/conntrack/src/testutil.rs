//! Packet builders for the tests (transport bytes with correct checksums).

use crate::table::l4_checksum;
use crate::tuple::parse_addr;

pub fn ip(s: &str) -> u32 {
    parse_addr(s).unwrap()
}

/// A TCP segment: header (with options) plus `payload` zero bytes.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    flags: &str,
    seq: u32,
    ack: u32,
    win: u16,
    opts: &[u8],
    payload: usize,
) -> Vec<u8> {
    let mut o = opts.to_vec();
    while !o.len().is_multiple_of(4) {
        o.push(0);
    }
    let hl = 20 + o.len();
    let mut b = vec![0u8; hl + payload];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..8].copy_from_slice(&seq.to_be_bytes());
    b[8..12].copy_from_slice(&ack.to_be_bytes());
    b[12] = ((hl / 4) as u8) << 4;
    let mut f = 0u8;
    for c in flags.chars() {
        f |= match c {
            'F' => 0x01,
            'S' => 0x02,
            'R' => 0x04,
            'P' => 0x08,
            'A' => 0x10,
            'U' => 0x20,
            'E' => 0x40,
            'C' => 0x80,
            _ => panic!("flag {c}"),
        };
    }
    b[13] = f;
    b[14..16].copy_from_slice(&win.to_be_bytes());
    b[20..hl].copy_from_slice(&o);
    let c = l4_checksum(src, dst, 6, &b);
    b[16..18].copy_from_slice(&c.to_be_bytes());
    b
}

/// A UDP datagram with `payload` zero bytes.
pub fn udp(src: u32, sport: u16, dst: u32, dport: u16, payload: usize) -> Vec<u8> {
    let mut b = vec![0u8; 8 + payload];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..6].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    let c = l4_checksum(src, dst, 17, &b);
    b[6..8].copy_from_slice(&c.to_be_bytes());
    b
}

fn icmp_fix(mut b: Vec<u8>) -> Vec<u8> {
    b[2] = 0;
    b[3] = 0;
    let mut sum: u32 = 0;
    for c in b.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = !(sum as u16);
    b[2..4].copy_from_slice(&c.to_be_bytes());
    b
}

/// An ICMP query/answer message.
pub fn icmp_echo(ty: u8, id: u16, seq: u16) -> Vec<u8> {
    let mut b = vec![ty, 0, 0, 0];
    b.extend_from_slice(&id.to_be_bytes());
    b.extend_from_slice(&seq.to_be_bytes());
    icmp_fix(b)
}

/// An ICMP error quoting an IPv4 header (src, dst, proto) and the first 8 transport bytes.
pub fn icmp_error(ty: u8, code: u8, src: u32, dst: u32, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut b = vec![ty, code, 0, 0, 0, 0, 0, 0];
    let mut iph = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
    iph.extend_from_slice(&src.to_be_bytes());
    iph.extend_from_slice(&dst.to_be_bytes());
    b.extend_from_slice(&iph);
    b.extend_from_slice(&l4[..l4.len().min(8)]);
    icmp_fix(b)
}
