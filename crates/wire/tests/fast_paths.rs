//! The hot path's shortcuts agree with the plain readings: `PacketDesc::parse_ipv4` (fixed-size
//! header copies) with the field accessors of `ipv4::Packet` / `tcp::Packet`, and
//! `checksum::add_bytes` (32-bit words) with a 16-bit word sum, on random bytes.

use nfrs_wire::checksum::{add_bytes, fold};
use nfrs_wire::desc::{L4Kind, PacketDesc};
use nfrs_wire::{ipv4, tcp};
use proptest::prelude::*;

/// The RFC 1071 sum the slow way: one 16-bit word at a time.
fn word_sum(start: u32, data: &[u8]) -> u16 {
    let mut sum = u64::from(start);
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from(c[0]) << 8
        };
        sum += u64::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// The descriptor read through the checked views, field by field.
fn slow_parse(buf: &[u8]) -> Option<PacketDesc> {
    let ip = ipv4::Packet::new_checked(buf).ok()?;
    let hl = ip.header_len();
    let mut d = PacketDesc {
        l3_off: 0,
        ihl: hl as u8,
        total_len: ip.total_len(),
        tos: ip.tos(),
        ttl: ip.ttl(),
        protocol: ip.protocol(),
        ip_id: ip.ident(),
        flags_frag: ip.flags_frag(),
        src: ip.src_addr(),
        dst: ip.dst_addr(),
        l4_off: hl as u16,
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
    if ip.frag_offset() > 0 || d.protocol != 6 {
        return Some(d);
    }
    match tcp::Packet::new_checked(ip.payload()) {
        Ok(t) => {
            d.l4 = L4Kind::Tcp;
            d.sport = t.src_port();
            d.dport = t.dst_port();
            d.seq = t.seq_number();
            d.ack = t.ack_number();
            d.tcp_flags = t.flags();
            d.win = t.window_len();
            d.tcp_hlen = t.header_len() as u8;
        }
        Err(_) => d.l4 = L4Kind::Truncated,
    }
    Some(d)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn add_bytes_folds_like_a_word_sum(start in any::<u32>(), data in proptest::collection::vec(any::<u8>(), 0..200)) {
        prop_assert_eq!(fold(add_bytes(start, &data)), word_sum(start, &data));
    }

    #[test]
    fn parse_ipv4_reads_what_the_views_read(
        ihl in 0u8..16,
        ver in prop_oneof![Just(4u8), 0u8..16],
        tl_delta in -8i32..8,
        frag in prop_oneof![Just(0u16), Just(0x4000u16), any::<u16>()],
        proto in prop_oneof![Just(6u8), Just(17u8), any::<u8>()],
        doff in 0u8..16,
        body in proptest::collection::vec(any::<u8>(), 0..120),
        extra in 0usize..8,
    ) {
        let mut b = body;
        b.resize(b.len().max(20), 0);
        b[0] = ver << 4 | ihl;
        let hl = usize::from(ihl) * 4;
        let tl = (b.len() as i32 - extra as i32 + tl_delta).clamp(0, 65535) as u16;
        b[2..4].copy_from_slice(&tl.to_be_bytes());
        b[6..8].copy_from_slice(&frag.to_be_bytes());
        b[9] = proto;
        if b.len() > hl + 12 {
            b[hl + 12] = doff << 4 | (b[hl + 12] & 0x0f);
        }
        let fast = PacketDesc::parse_ipv4(&b, 0).ok();
        let slow = slow_parse(&b);
        if proto == 6 || fast.is_none() || slow.is_none() {
            prop_assert_eq!(fast, slow);
        } else {
            // Other protocols: the IP part agrees.
            let (f, s) = (fast.unwrap(), slow.unwrap());
            prop_assert_eq!((f.ihl, f.total_len, f.src, f.dst, f.flags_frag, f.ttl, f.tos, f.ip_id), (s.ihl, s.total_len, s.src, s.dst, s.flags_frag, s.ttl, s.tos, s.ip_id));
        }
    }
}
