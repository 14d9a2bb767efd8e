//! Property tests: incremental checksum updates equal full recomputation.
//! Cases: 256 by default, `NFRS_FUZZ_CASES` for longer runs.

use nfrs_wire::build::{build_ipv4, FrameCtx};
use nfrs_wire::desc::{mangle, PacketDesc};
use nfrs_wire::emit::fill_all_checksums;
use nfrs_wire::line::{Data, PacketSpec, Port};
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn cases() -> u32 {
    std::env::var("NFRS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn arb_spec() -> impl Strategy<Value = PacketSpec> {
    (
        0u8..4,
        any::<[u8; 4]>(),
        any::<[u8; 4]>(),
        any::<u16>(),
        any::<u16>(),
        any::<(u8, u8, u16)>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        (any::<u32>(), any::<u32>(), any::<u8>(), any::<u16>()),
        (
            proptest::option::of(any::<u16>()),
            any::<bool>(),
            proptest::option::of((any::<u32>(), any::<u32>())),
        ),
    )
        .prop_map(
            |(
                kind,
                s,
                d,
                sp,
                dp,
                (ttl, tos, id),
                payload,
                (seq, ack, flags, win),
                (mss, sackok, ts),
            )| {
                let mut spec = PacketSpec {
                    proto: [6, 17, 17, 1][kind as usize],
                    src: Some(Ipv4Addr::from(s)),
                    dst: Some(Ipv4Addr::from(d)),
                    ttl: Some(ttl),
                    tos: Some(tos),
                    ip_id: Some(nfrs_wire::line::IpId::Num(id)),
                    data: Data::Bytes(payload),
                    ..PacketSpec::default()
                };
                match kind {
                    0 => {
                        spec.src_port = Some(Port::Num(sp));
                        spec.dst_port = Some(Port::Num(dp));
                        spec.seq = Some(seq);
                        spec.ack = Some(ack);
                        spec.tcp_flags = Some(flags);
                        spec.win = Some(win);
                        spec.mss = mss;
                        spec.sackok = sackok;
                        spec.ts = ts;
                    }
                    1 | 2 => {
                        spec.src_port = Some(Port::Num(sp));
                        spec.dst_port = Some(Port::Num(dp));
                        spec.nocsum = kind == 2;
                    }
                    _ => {
                        spec.icmp_type = Some(8);
                        spec.icmp_id = Some(sp);
                        spec.icmp_seq = Some(dp);
                    }
                }
                spec
            },
        )
}

#[derive(Debug, Clone)]
enum Op {
    Src([u8; 4]),
    Dst([u8; 4]),
    Sport(u16),
    Dport(u16),
    Ttl(u8),
    Tos(u8),
    Id(u16),
    Seq(u32),
    Ack(u32),
    Mss(u16),
    IcmpId(u16),
    Flags(u8),
    Df(bool),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(Op::Src),
        any::<[u8; 4]>().prop_map(Op::Dst),
        any::<u16>().prop_map(Op::Sport),
        any::<u16>().prop_map(Op::Dport),
        any::<u8>().prop_map(Op::Ttl),
        any::<u8>().prop_map(Op::Tos),
        any::<u16>().prop_map(Op::Id),
        any::<u32>().prop_map(Op::Seq),
        any::<u32>().prop_map(Op::Ack),
        any::<u16>().prop_map(Op::Mss),
        any::<u16>().prop_map(Op::IcmpId),
        any::<u8>().prop_map(Op::Flags),
        any::<bool>().prop_map(Op::Df),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_full(spec in arb_spec(), ops in proptest::collection::vec(arb_op(), 1..12), l3_off in 0usize..3) {
        let ip = build_ipv4(&spec, &FrameCtx::default()).unwrap();
        // Place the packet at an odd or even offset in a larger buffer.
        let mut buf = vec![0xeeu8; l3_off];
        buf.extend_from_slice(&ip);
        let mut d = PacketDesc::parse_ipv4(&buf, l3_off).unwrap();
        for op in &ops {
            match *op {
                Op::Src(a) => mangle::set_src_addr(&mut buf, &mut d, Ipv4Addr::from(a)),
                Op::Dst(a) => mangle::set_dst_addr(&mut buf, &mut d, Ipv4Addr::from(a)),
                Op::Sport(p) => { mangle::set_src_port(&mut buf, &mut d, p); }
                Op::Dport(p) => { mangle::set_dst_port(&mut buf, &mut d, p); }
                Op::Ttl(t) => mangle::set_ttl(&mut buf, &mut d, t),
                Op::Tos(t) => mangle::set_tos(&mut buf, &mut d, t),
                Op::Id(i) => mangle::set_ip_id(&mut buf, &mut d, i),
                Op::Seq(s) => { mangle::set_seq(&mut buf, &mut d, s); }
                Op::Ack(s) => { mangle::set_ack(&mut buf, &mut d, s); }
                Op::Mss(m) => { mangle::set_mss(&mut buf, &mut d, m); }
                Op::IcmpId(i) => { mangle::set_icmp_id(&mut buf, &mut d, i); }
                Op::Flags(f) => { mangle::set_tcp_flags(&mut buf, &mut d, f); }
                Op::Df(v) => mangle::set_df(&mut buf, &mut d, v),
            }
        }
        let got = buf[l3_off..].to_vec();
        let mut full = got.clone();
        fill_all_checksums(&mut full);
        prop_assert_eq!(&got, &full);
        // The descriptor kept in step with the bytes.
        prop_assert_eq!(PacketDesc::parse_ipv4(&buf, l3_off).unwrap(), d);
        if spec.nocsum {
            prop_assert_eq!(&got[26..28], &[0u8, 0][..]);
        }
    }

    #[test]
    fn rfc1624_word_update(data in proptest::collection::vec(any::<u8>(), 2..80), at in any::<prop::sample::Index>(), new in any::<u16>()) {
        use nfrs_wire::checksum::*;
        let mut d = data.clone();
        if d.len() % 2 == 1 { d.push(0); }
        // Never all zeros (the one case where +0 and -0 differ).
        d[0] |= 1;
        let c = checksum(&d);
        let i = at.index(d.len() / 2) * 2;
        let old = u16::from_be_bytes([d[i], d[i + 1]]);
        d[i..i + 2].copy_from_slice(&new.to_be_bytes());
        if d.iter().any(|&b| b != 0) {
            prop_assert_eq!(update16(c, old, new), checksum(&d));
        }
    }
}
