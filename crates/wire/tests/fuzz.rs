//! Fuzzing on stable Rust: arbitrary bytes into every view (all accessors and setters after
//! `check_len`), the descriptor, the mangle ops, the emitters and the printer; arbitrary text
//! into the line parser. Nothing may panic. The printer's output must parse back, and rebuilding
//! it must print the same text. 256 cases by default; `NFRS_FUZZ_CASES` for longer runs.

use nfrs_wire::build::{build_ipv4, FrameCtx};
use nfrs_wire::desc::{mangle, PacketDesc};
use nfrs_wire::line::{parse_input_line, PacketSpec};
use nfrs_wire::{arp, emit, ethernet, icmp, ipv4, print, tcp, udp};
use proptest::prelude::*;
use std::net::Ipv4Addr;

fn cases() -> u32 {
    std::env::var("NFRS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn views(b: &[u8]) {
    let mut m = b.to_vec();
    if let Ok(f) = ethernet::Frame::new_checked(b) {
        let _ = (f.dst_addr(), f.src_addr(), f.ethertype(), f.payload().len());
        let mut f = ethernet::Frame::new_unchecked(&mut m[..]);
        f.set_dst_addr(ethernet::MacAddr::BROADCAST);
        f.set_src_addr(ethernet::MacAddr([2, 0, 0, 0, 0, 1]));
        f.set_ethertype(0x0800);
        let _ = f.payload_mut().len();
    }
    let mut m = b.to_vec();
    if let Ok(p) = arp::Packet::new_checked(b) {
        let _ = (
            p.operation(),
            p.sender_hw(),
            p.sender_ip(),
            p.target_hw(),
            p.target_ip(),
        );
        let mut p = arp::Packet::new_unchecked(&mut m[..]);
        p.set_ethernet_ipv4();
        p.set_operation(2);
        p.set_sender_hw(ethernet::MacAddr([1; 6]));
        p.set_sender_ip(A);
        p.set_target_hw(ethernet::MacAddr([2; 6]));
        p.set_target_ip(B);
    }
    let mut m = b.to_vec();
    if ipv4::Packet::new_unchecked(b).check_header_len().is_ok() {
        let p = ipv4::Packet::new_unchecked(b);
        let _ = (
            p.version(),
            p.header_len(),
            p.tos(),
            p.total_len(),
            p.ident(),
            p.flags_frag(),
            p.rf(),
            p.dont_frag(),
        );
        let _ = (
            p.more_frags(),
            p.frag_offset(),
            p.ttl(),
            p.protocol(),
            p.checksum(),
            p.src_addr(),
            p.dst_addr(),
        );
        let _ = (
            p.options().len(),
            p.verify_checksum(),
            p.payload().len(),
            p.is_cut(),
        );
        let mut p = ipv4::Packet::new_unchecked(&mut m[..]);
        p.update_ttl(1);
        p.update_tos(2);
        p.update_ident(3);
        p.update_flags_frag(4);
        p.update_total_len(5);
        p.update_src_addr(A);
        p.update_dst_addr(B);
        let _ = (p.options_mut().len(), p.payload_mut().len());
        p.set_tos(0);
        p.set_total_len(0);
        p.set_ident(0);
        p.set_flags_frag(0);
        p.set_ttl(0);
        p.set_protocol(0);
        p.set_src_addr(A);
        p.set_dst_addr(B);
        p.fill_checksum();
        p.set_version_and_header_len(60);
    }
    let mut m = b.to_vec();
    if let Ok(t) = tcp::Packet::new_checked(b) {
        let _ = (
            t.src_port(),
            t.dst_port(),
            t.seq_number(),
            t.ack_number(),
            t.header_len(),
            t.reserved(),
            t.flags(),
        );
        let _ = (
            t.window_len(),
            t.checksum(),
            t.urgent_at(),
            t.options().len(),
            t.payload().len(),
            t.segment_len(),
        );
        let _ = t.verify_checksum(A, B);
        for o in t.option_iter() {
            if let Ok((_, tcp::TcpOption::Sack(d))) = o {
                let _ = tcp::sack_blocks(d).count();
            }
        }
        let mut t = tcp::Packet::new_unchecked(&mut m[..]);
        t.update_src_port(1);
        t.update_dst_port(2);
        t.update_seq_number(3);
        t.update_ack_number(4);
        t.update_window_len(5);
        t.update_flags(6);
        t.update_urgent_at(7);
        t.update_pseudo_addr(A, B);
        let _ = t.update_mss(1400);
        let _ = (t.options_mut().len(), t.payload_mut().len());
        t.fill_checksum(A, B);
        t.set_header_len(20, 0);
    }
    let mut m = b.to_vec();
    if let Ok(u) = udp::Packet::new_checked(b) {
        let _ = (
            u.src_port(),
            u.dst_port(),
            u.len(),
            u.is_empty(),
            u.len_field_ok(),
            u.checksum(),
            u.payload().len(),
        );
        let _ = u.verify_checksum(A, B);
        let mut u = udp::Packet::new_unchecked(&mut m[..]);
        u.update_src_port(1);
        u.update_dst_port(2);
        u.update_pseudo_addr(A, B);
        u.fill_checksum(A, B);
        let _ = u.payload_mut().len();
    }
    let mut m = b.to_vec();
    if let Ok(i) = icmp::Packet::new_checked(b) {
        let _ = (
            i.msg_type(),
            i.msg_code(),
            i.checksum(),
            i.echo_ident(),
            i.echo_seq_no(),
            i.next_hop_mtu(),
        );
        let _ = (
            i.gateway(),
            i.pointer(),
            i.rest_of_header(),
            i.data().len(),
            i.verify_checksum(),
        );
        let mut i = icmp::Packet::new_unchecked(&mut m[..]);
        i.update_echo_ident(1);
        i.update_echo_seq_no(2);
        i.update_type_code(3, 4);
        let _ = i.update_data(0, &[1, 2, 3]);
        let _ = i.update_data(usize::MAX / 2, &[1]);
        i.fill_checksum();
    }
}

fn descriptor(b: &[u8], off: usize) {
    let mut m = b.to_vec();
    if let Ok(mut d) = PacketDesc::parse_ipv4(b, off) {
        let _ = (
            d.payload_off(),
            d.payload_len(),
            d.df(),
            d.mf(),
            d.frag_offset(),
            d.is_fragment(),
        );
        mangle::set_src_addr(&mut m, &mut d, A);
        mangle::set_dst_addr(&mut m, &mut d, B);
        mangle::set_src_port(&mut m, &mut d, 1);
        mangle::set_dst_port(&mut m, &mut d, 2);
        mangle::set_icmp_id(&mut m, &mut d, 3);
        mangle::dec_ttl(&mut m, &mut d);
        mangle::set_tos(&mut m, &mut d, 4);
        mangle::set_ip_id(&mut m, &mut d, 5);
        mangle::set_seq(&mut m, &mut d, 6);
        mangle::set_ack(&mut m, &mut d, 7);
        mangle::set_mss(&mut m, &mut d, 8);
        mangle::set_tcp_flags(&mut m, &mut d, 0x12);
        mangle::set_df(&mut m, &mut d, true);
        mangle::set_flags_frag(&mut m, &mut d, 0x2001);
        for at in [0, 9, 12, 20, 22, 58] {
            mangle::write_ip_header(&mut m, &d, at, &[1, 2, 3, 4, 5]);
        }
    }
    if let Ok(d) = PacketDesc::parse_frame(b) {
        let _ = nfrs_wire::desc::QuotedDesc::parse(b, &d);
        let _ = (d.tcp_opts_off(), d.tcp_opts_len());
    }
    if let Ok(d) = PacketDesc::parse_ipv4(b, 0) {
        let _ = nfrs_wire::desc::QuotedDesc::parse(b, &d);
    }
}

fn emitters(b: &[u8]) {
    let mut out = vec![0u8; 1600];
    let _ = emit::tcp_reset(b, emit::ResetSender::Stack, 64, &mut out);
    let _ = emit::tcp_reset(b, emit::ResetSender::Reject, 64, &mut out[..30]);
    let _ = emit::icmp_error(b, 3, 3, 0, A, 64, 0, 1500, &mut out);
    let _ = emit::icmp_error(b, 3, 3, 0, A, 64, 0, 10, &mut out[..40]);
    let _ = emit::echo_reply(b, 64, 0, &mut out);
    let _ = emit::may_answer_with_icmp_error(b);
    let _ = emit::arp_reply(b, ethernet::MacAddr([2, 0, 0, 0, 0, 1]), &mut out);
    let _ = emit::arp_reply(b, ethernet::MacAddr([2, 0, 0, 0, 0, 1]), &mut out[..41]);
    let mut m = b.to_vec();
    emit::fill_all_checksums(&mut m);
    let mut m = b.to_vec();
    let _ = emit::record_route_on_receipt(&mut m, A);
    let _ = emit::reject_is_silent(&m);
    let _ = emit::echo_options(&m, B, &mut [0u8; 40]);
    let _ = emit::ipv4_header_with_options(
        &emit::Ipv4Header {
            src: A,
            dst: B,
            protocol: 6,
            ttl: 1,
            tos: 0,
            id: 0,
            df: false,
        },
        &m[..m.len().min(40)],
        3,
        &mut out,
    );
}

/// The printed text parses; when it builds, the rebuilt packet prints the same text.
fn printer(b: &[u8]) {
    let mut s = String::new();
    print::format_frame(b, &mut s);
    let mut s = String::new();
    print::format_ipv4(b, &mut s);
    if s.starts_with("eth ") || s.starts_with("arp ") {
        return;
    }
    let spec =
        PacketSpec::parse(&s).unwrap_or_else(|e| panic!("printed text does not parse: {s}: {e}"));
    if let Ok(r) = build_ipv4(&spec, &FrameCtx::default()) {
        // TCP options are rebuilt in Linux's layout: the fixpoint is promised only for packets
        // whose options already were in that layout.
        if tcp_options(b) != tcp_options(&r) {
            return;
        }
        let mut again = String::new();
        print::format_ipv4(&r, &mut again);
        assert_eq!(again, s, "bytes {b:02x?}");
    }
}

fn tcp_options(b: &[u8]) -> Option<Vec<u8>> {
    let ip = ipv4::Packet::new_unchecked(b);
    ip.check_header_len().ok()?;
    if ip.protocol() != 6 || ip.frag_offset() > 0 {
        return None;
    }
    let pl = ip.payload();
    // The header length byte decides, even when the options run past the bytes present.
    let hl = usize::from(*pl.get(12)? >> 4) * 4;
    Some(pl.get(20..hl.max(20).min(pl.len())).unwrap_or(&[]).to_vec())
}

fn check_all(b: &[u8]) {
    views(b);
    descriptor(b, 0);
    descriptor(b, 14);
    emitters(b);
    printer(b);
}

/// Valid packets of every kind, then mutated: far better coverage than uniform bytes.
fn seed_packets() -> Vec<Vec<u8>> {
    [
        "tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=S seq=100 win=64240 mss=1460 sackok ts=1/0 wscale=7",
        "tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=A ts=1/2 sack=1-2,3-4 opt30=0102 payload=\"hi\"",
        "udp 10.0.0.3:5353 > 203.0.113.53:53 payload=\"\\x12\\x34 query\"",
        "udp 10.0.0.3:5353 > 203.0.113.53:53 nocsum len=300",
        "icmp 10.0.0.2 > 10.0.0.1 type=8 code=0 id=5 seq=9 payload=\"ping\"",
        "icmp 10.0.0.1 > 10.0.0.2 type=3 code=3 inner=\"udp 10.0.0.2:41001 > 10.0.0.1:69 len=10\"",
        "icmp 10.0.0.1 > 10.0.0.2 type=11 inner=\"tcp 10.0.0.2:1 > 10.0.0.9:2 flags=S mss=1 len=1000\"",
        "icmp 10.0.0.1 > 10.0.0.2 type=3 code=4 mtu=1400 inner=\"icmp 10.0.0.2 > 10.0.0.9 type=3 code=1 inner=\\\"udp 1.1.1.1:1 > 2.2.2.2:2\\\"\"",
        "47 10.0.0.2 > 10.0.0.1 ipopts=94040000 payload=\"gre\"",
        "udp 10.0.0.2:1 > 10.0.0.1:2 ipopts=070b04000000000000000000 len=4",
        "icmp 10.0.0.2 > 10.0.0.1 type=8 ipopts=0101070b080102030400000000000000",
        "17 10.0.0.2 > 10.0.0.1 frag=1480 mf len=16",
    ]
    .iter()
    .map(|l| build_ipv4(&PacketSpec::parse(l).unwrap(), &FrameCtx::default()).unwrap())
    .collect()
}

fn arb_mutated() -> impl Strategy<Value = Vec<u8>> {
    let seeds = seed_packets();
    (
        prop::sample::select(seeds),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(mut p, flips, cut, do_cut)| {
            for (i, v) in flips {
                let n = p.len();
                p[i.index(n)] = v;
            }
            if do_cut {
                let n = cut.index(p.len() + 1);
                p.truncate(n);
            }
            p
        })
}

fn arb_line() -> impl Strategy<Value = String> {
    let tok = prop_oneof![
        Just("0.00".to_string()),
        Just("lan0".to_string()),
        Just("tcp".to_string()),
        Just("udp".to_string()),
        Just("icmp".to_string()),
        Just("47".to_string()),
        Just("10.0.0.1:80".to_string()),
        Just("10.0.0.2".to_string()),
        Just(">".to_string()),
        Just("flags=SA".to_string()),
        Just("ts=1/2".to_string()),
        Just("sack=1-2,3-4".to_string()),
        Just("type=port-unreachable".to_string()),
        Just("code=4".to_string()),
        Just("inner=\"udp 1.1.1.1:1 > 2.2.2.2:2 len=3\"".to_string()),
        Just("payload=\"a\\x00\\\"\"".to_string()),
        Just("len=3".to_string()),
        Just("frag=8".to_string()),
        Just("mf".to_string()),
        Just("badsum=ip".to_string()),
        Just("truncated".to_string()),
        Just("hex=0102".to_string()),
        Just("ip".to_string()),
        "[a-z]{1,6}=[0-9a-fx/,\\-]{0,8}",
        "[ -~]{0,12}",
        "\\PC{0,8}",
    ];
    proptest::collection::vec(tok, 0..12).prop_map(|v| v.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..120)) {
        check_all(&b);
    }

    #[test]
    fn mutated_packets_never_panic(b in arb_mutated()) {
        check_all(&b);
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 1, 8, 0];
        f.extend_from_slice(&b);
        check_all(&f);
        f[12..14].copy_from_slice(&[8, 6]);
        check_all(&f);
    }

    #[test]
    fn arbitrary_lines_never_panic(s in arb_line()) {
        if let Ok(l) = parse_input_line(&s) {
            let _ = build_ipv4(&l.spec, &FrameCtx::default());
        }
        if let Ok(spec) = PacketSpec::parse(&s) {
            if let Ok(b) = build_ipv4(&spec, &FrameCtx { allow_masked: true, ..FrameCtx::default() }) {
                check_all(&b);
            }
        }
    }
}
