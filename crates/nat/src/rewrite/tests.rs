use super::*;
use nfrs_conntrack::tuple::parse_addr;
use nfrs_wire::checksum::transport_checksum;

fn ip(s: &str) -> u32 {
    parse_addr(s).unwrap()
}

fn csum(b: &[u8]) -> u16 {
    !fold(add_bytes(0, b))
}

/// An IPv4 packet around `l4` with valid header checksum; the transport checksum is computed
/// when `fill` says where it sits (offset in `l4`).
fn ipv4(src: u32, dst: u32, proto: u8, mut l4: Vec<u8>, fill: Option<usize>) -> Vec<u8> {
    if let Some(at) = fill {
        l4[at] = 0;
        l4[at + 1] = 0;
        let c = if proto == 1 {
            csum(&l4)
        } else {
            transport_checksum(src.into(), dst.into(), proto, &l4)
        };
        let c = if proto == 17 { udp_wire(c) } else { c };
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    }
    let mut b = vec![0x45, 0, 0, 0, 0, 1, 0, 0, 64, proto, 0, 0];
    let len = (20 + l4.len()) as u16;
    b[2..4].copy_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&src.to_be_bytes());
    b.extend_from_slice(&dst.to_be_bytes());
    let c = csum(&b);
    b[10..12].copy_from_slice(&c.to_be_bytes());
    b.extend_from_slice(&l4);
    b
}

fn ports(sport: u16, dport: u16, len: usize) -> Vec<u8> {
    let mut l4 = vec![0u8; len];
    l4[0..2].copy_from_slice(&sport.to_be_bytes());
    l4[2..4].copy_from_slice(&dport.to_be_bytes());
    l4
}

fn udp(src: &str, sport: u16, dst: &str, dport: u16, csum: bool) -> Vec<u8> {
    let mut l4 = ports(sport, dport, 12);
    l4[4..6].copy_from_slice(&12u16.to_be_bytes());
    l4[8..12].copy_from_slice(b"data");
    ipv4(ip(src), ip(dst), 17, l4, csum.then_some(6))
}

fn checks_ok(b: &[u8]) {
    assert_eq!(csum(&b[..20]), 0, "ip header checksum");
    let (src, dst, proto) = (rd32(b, 12), rd32(b, 16), b[9]);
    match proto {
        1 => assert_eq!(csum(&b[20..]), 0, "icmp checksum"),
        6 | 17 => {
            let c = rd16(b, 20 + if proto == 6 { 16 } else { 6 });
            if !(proto == 17 && c == 0) {
                let mut z = b[20..].to_vec();
                let at = if proto == 6 { 16 } else { 6 };
                z[at] = 0;
                z[at + 1] = 0;
                let want = transport_checksum(src.into(), dst.into(), proto, &z);
                let want = if proto == 17 { udp_wire(want) } else { want };
                assert_eq!(c, want, "transport checksum");
            }
        }
        _ => {}
    }
}

/// 10.0.0.2:5000 -> 203.0.113.9:5000, source-NATed to 192.0.2.1:33333.
fn snat_conn(proto: u8) -> Conn {
    let orig = Tuple::ports(proto, ip("10.0.0.2"), 5000, ip("203.0.113.9"), 5000);
    let reply = Tuple::ports(proto, ip("203.0.113.9"), 5000, ip("192.0.2.1"), 33333);
    let mut c = Conn::new(orig, reply, 0);
    c.status |= status::SRC_NAT | status::SRC_NAT_DONE | status::DST_NAT_DONE;
    c
}

#[test]
fn snat_rewrites_original_source_and_reply_destination() {
    let c = snat_conn(17);
    let mut p = udp("10.0.0.2", 5000, "203.0.113.9", 5000, true);
    // PREROUTING (destination manip) leaves an SNATed original packet alone.
    assert_eq!(nat_packet(&mut p, &c, Dir::Original, Manip::Dst), Ok(false));
    assert_eq!(nat_packet(&mut p, &c, Dir::Original, Manip::Src), Ok(true));
    assert_eq!(p, udp("192.0.2.1", 33333, "203.0.113.9", 5000, true));
    checks_ok(&p);
    let mut r = udp("203.0.113.9", 5000, "192.0.2.1", 33333, true);
    assert_eq!(nat_packet(&mut r, &c, Dir::Reply, Manip::Src), Ok(false));
    assert_eq!(nat_packet(&mut r, &c, Dir::Reply, Manip::Dst), Ok(true));
    assert_eq!(r, udp("203.0.113.9", 5000, "10.0.0.2", 5000, true));
}

#[test]
fn udp_without_checksum_stays_without() {
    let c = snat_conn(17);
    let mut p = udp("10.0.0.2", 5000, "203.0.113.9", 5000, false);
    nat_packet(&mut p, &c, Dir::Original, Manip::Src).unwrap();
    assert_eq!(rd16(&p, 26), 0);
    assert_eq!(p, udp("192.0.2.1", 33333, "203.0.113.9", 5000, false));
}

#[test]
fn tcp_checksum_follows_address_and_port() {
    let c = snat_conn(6);
    let mut l4 = ports(5000, 5000, 24);
    l4[12] = 0x50;
    l4[13] = 0x12;
    let mut p = ipv4(ip("10.0.0.2"), ip("203.0.113.9"), 6, l4.clone(), Some(16));
    nat_packet(&mut p, &c, Dir::Original, Manip::Src).unwrap();
    checks_ok(&p);
    l4[0..2].copy_from_slice(&33333u16.to_be_bytes());
    assert_eq!(p, ipv4(ip("192.0.2.1"), ip("203.0.113.9"), 6, l4, Some(16)));
}

#[test]
fn icmp_echo_id_is_rewritten() {
    let orig = Tuple::icmp(ip("10.0.0.2"), ip("203.0.113.9"), 8, 0, 77);
    let mut c = snat_conn(17);
    c.tuple = [
        orig,
        Tuple::icmp(ip("203.0.113.9"), ip("192.0.2.1"), 0, 0, 1000),
    ];
    let echo = |src: &str, dst: &str, ty: u8, id: u16| {
        let mut l4 = vec![ty, 0, 0, 0, 0, 0, 0, 1, b'p', b'i'];
        l4[4..6].copy_from_slice(&id.to_be_bytes());
        ipv4(ip(src), ip(dst), 1, l4, Some(2))
    };
    let mut p = echo("10.0.0.2", "203.0.113.9", 8, 77);
    nat_packet(&mut p, &c, Dir::Original, Manip::Src).unwrap();
    assert_eq!(p, echo("192.0.2.1", "203.0.113.9", 8, 1000));
    let mut r = echo("203.0.113.9", "192.0.2.1", 0, 1000);
    nat_packet(&mut r, &c, Dir::Reply, Manip::Dst).unwrap();
    assert_eq!(r, echo("203.0.113.9", "10.0.0.2", 0, 77));
}

/// An ICMP error from `src` to `dst` quoting `inner` (an IPv4 packet, cut to header + 8).
fn icmp_err(src: &str, dst: &str, inner: &[u8]) -> Vec<u8> {
    let mut l4 = vec![3, 3, 0, 0, 0, 0, 0, 0];
    l4.extend_from_slice(&inner[..28]);
    ipv4(ip(src), ip(dst), 1, l4, Some(2))
}

#[test]
fn icmp_error_translates_outer_and_quoted_headers() {
    let c = snat_conn(17);
    // The server's port unreachable for the NATed datagram, arriving from outside.
    let quoted = udp("192.0.2.1", 33333, "203.0.113.9", 5000, true);
    let mut e = icmp_err("203.0.113.9", "192.0.2.1", &quoted);
    // POSTROUTING-type (source) manip does not apply to the reply direction here.
    assert_eq!(
        translate_icmp_error(&mut e.clone(), &c, Dir::Reply, Manip::Src),
        Ok(false)
    );
    assert_eq!(
        translate_icmp_error(&mut e, &c, Dir::Reply, Manip::Dst),
        Ok(true)
    );
    checks_ok(&e);
    // Quoted header: source back to the client; its IP and UDP checksums patched
    // incrementally, which equals what the client's own datagram carried.
    let want_inner = udp("10.0.0.2", 5000, "203.0.113.9", 5000, true);
    assert_eq!(&e[28..56], &want_inner[..28]);
    assert_eq!(rd32(&e, 16), ip("10.0.0.2"));
    assert_eq!(rd32(&e, 12), ip("203.0.113.9"));
}

#[test]
fn errors_refused_the_kernel_way() {
    let c = snat_conn(17);
    let quoted = udp("192.0.2.1", 33333, "203.0.113.9", 5000, true);
    let mut e = icmp_err("203.0.113.9", "192.0.2.1", &quoted);
    e[22] ^= 1;
    assert_eq!(
        translate_icmp_error(&mut e, &c, Dir::Reply, Manip::Dst),
        Err(NatDrop::BadIcmpChecksum)
    );
    let mut l4 = vec![5, 1, 0, 0, 10, 0, 0, 1];
    l4.extend_from_slice(&quoted[..28]);
    let mut redirect = ipv4(ip("203.0.113.9"), ip("192.0.2.1"), 1, l4, Some(2));
    assert_eq!(
        translate_icmp_error(&mut redirect, &c, Dir::Reply, Manip::Dst),
        Err(NatDrop::RedirectOnNat)
    );
    let mut short = udp("10.0.0.2", 5000, "203.0.113.9", 5000, true);
    short.truncate(24);
    assert_eq!(
        nat_packet(&mut short, &c, Dir::Original, Manip::Src),
        Err(NatDrop::Truncated)
    );
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The kernel's `ip_decrease_ttl` (incremental, with its own end-around carry).
fn decrease_ttl(b: &mut [u8]) {
    let mut check = rd16(b, 10) as u32;
    check += 0x0100;
    let check = (check + (check >= 0xffff) as u32) as u16;
    wr16(b, 10, check);
    b[8] -= 1;
}

#[test]
fn icmp_error_translation_matches_frames_captured_from_the_kernel() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/icmp-error-masquerade.txt"
    ))
    .unwrap();
    let mut conns = Vec::new();
    for l in data.lines().filter(|l| l.starts_with("ipv4")) {
        let v: Vec<&str> = l.split_whitespace().collect();
        let kv = |i: usize| v[i].split_once('=').unwrap().1;
        let orig = Tuple::ports(
            17,
            ip(kv(5)),
            kv(7).parse().unwrap(),
            ip(kv(6)),
            kv(8).parse().unwrap(),
        );
        let reply = Tuple::ports(
            17,
            ip(kv(10)),
            kv(12).parse().unwrap(),
            ip(kv(11)),
            kv(13).parse().unwrap(),
        );
        let mut c = Conn::new(orig, reply, 0);
        c.status |=
            status::SRC_NAT | status::SRC_NAT_DONE | status::DST_NAT_DONE | status::CONFIRMED;
        conns.push(c);
    }
    let wan: Vec<Vec<u8>> = data
        .lines()
        .filter_map(|l| l.strip_prefix("wan "))
        .map(unhex)
        .collect();
    let lan: Vec<Vec<u8>> = data
        .lines()
        .filter_map(|l| l.strip_prefix("lan "))
        .map(unhex)
        .collect();
    assert_eq!((wan.len(), lan.len(), conns.len()), (2, 2, 2));
    for (w, l) in wan.iter().zip(&lan) {
        // The conntrack entry the quoted datagram belongs to (by its NATed source port).
        let qport = rd16(w, 48);
        let c = conns.iter().find(|c| c.tuple[1].dst_l4 == qport).unwrap();
        let mut b = w.clone();
        // PREROUTING: destination manip for the reply direction.
        assert_eq!(
            translate_icmp_error(&mut b, c, Dir::Reply, Manip::Dst),
            Ok(true)
        );
        decrease_ttl(&mut b);
        assert_eq!(&b, l, "byte for byte as Linux forwarded it");
    }
}

#[test]
fn udplite_ports_and_checksum_are_rewritten() {
    let mut c = snat_conn(136);
    c.tuple[0].proto = 136;
    let mk = |src: &str, sport: u16| {
        let mut l4 = ports(sport, 5000, 12);
        l4[4..6].copy_from_slice(&0u16.to_be_bytes());
        // UDP-Lite checksum with protocol 136 over the whole datagram (coverage 0).
        let mut b = ipv4(ip(src), ip("203.0.113.9"), 136, l4, None);
        let sum = transport_checksum(ip(src).into(), ip("203.0.113.9").into(), 136, &b[20..]);
        b[26..28].copy_from_slice(&sum.to_be_bytes());
        b
    };
    let mut p = mk("10.0.0.2", 5000);
    assert_eq!(nat_packet(&mut p, &c, Dir::Original, Manip::Src), Ok(true));
    assert_eq!(p, mk("192.0.2.1", 33333));
}

#[test]
fn sctp_port_and_crc_are_rewritten() {
    let mut c = snat_conn(132);
    c.tuple[0].proto = 132;
    let mk = |src: &str, sport: u16| {
        let mut l4 = ports(sport, 5000, 20);
        l4[12..16].copy_from_slice(&[11, 0, 0, 4]); // a COOKIE_ACK chunk
        let crc = nfrs_conntrack::sctp::checksum_bytes(&l4);
        l4[8..12].copy_from_slice(&crc);
        ipv4(ip(src), ip("203.0.113.9"), 132, l4, None)
    };
    let mut p = mk("10.0.0.2", 5000);
    assert_eq!(nat_packet(&mut p, &c, Dir::Original, Manip::Src), Ok(true));
    assert_eq!(p, mk("192.0.2.1", 33333));
}

/// The fixed-view fast path writes exactly what the general rewrite writes, or declines and
/// leaves the bytes alone: random TCP/UDP/other packets (options, short headers, UDP with and
/// without a checksum, checksums near the wrap), both manips.
#[test]
fn whole_tcp_udp_fast_path_equals_the_general_rewrite() {
    let mut x = 0x2545_f491_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut fast, mut declined) = (0, 0);
    for round in 0..20_000 {
        let proto = [6u8, 17, 1, 136][round % 4];
        let ihl = if round % 5 == 0 { 24 } else { 20 };
        let len = ihl + (next() % 48) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        b[0] = 0x40 | (ihl / 4) as u8;
        b[9] = proto;
        if round % 7 == 0 && len >= ihl + 8 {
            b[ihl + 6] = 0;
            b[ihl + 7] = 0;
        }
        if round % 11 == 0 {
            b[10] = 0xff;
            b[11] = 0xff;
        }
        let r = next();
        let target = Tuple::ports(
            proto,
            r as u32,
            (r >> 32) as u16,
            (r >> 16) as u32,
            (r >> 48) as u16,
        );
        for m in [Manip::Src, Manip::Dst] {
            let mut a = b.clone();
            let mut g = b.clone();
            let general = manip_general(&mut g, 0, &target, m);
            if manip_whole_tcp_udp(&mut a, &target, m) {
                fast += 1;
                assert_eq!(general, Ok(()));
                assert_eq!(a, g, "round {round} {m:?}");
            } else {
                declined += 1;
                assert_eq!(a, b, "declined but wrote, round {round}");
            }
        }
    }
    assert!(fast > 10_000 && declined > 10_000, "{fast} {declined}");
}
