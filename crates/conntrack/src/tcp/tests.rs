use super::*;

#[test]
fn index_prefers_rst_then_syn() {
    use tcpflag::*;
    // Kernel rule (get_conntrack_index): RST wins over every other flag.
    assert_eq!(index_of(RST | SYN | ACK), Index::Rst);
    assert_eq!(index_of(SYN | ACK | FIN), Index::SynAck);
    assert_eq!(index_of(FIN | ACK), Index::Fin);
    assert_eq!(index_of(ACK | PSH), Index::Ack);
    assert_eq!(index_of(PSH), Index::None);
}

#[test]
fn valid_flag_combinations() {
    use tcpflag::*;
    for ok in [
        SYN,
        SYN | URG,
        SYN | ACK,
        RST,
        RST | ACK,
        FIN | ACK,
        FIN | ACK | URG,
        ACK,
        ACK | URG,
        ACK | PSH | ECE | CWR,
    ] {
        assert!(flags_valid(ok), "{ok:#x}");
    }
    for bad in [
        0,
        FIN,
        SYN | FIN,
        SYN | RST,
        FIN | RST | ACK,
        URG,
        PSH,
        SYN | ACK | URG,
    ] {
        assert!(!flags_valid(bad), "{bad:#x}");
    }
}

#[test]
fn options_scale_capped_and_sack_seen() {
    let mut s = TcpSide::default();
    // mss, sackok, ts, nop, wscale 15 (capped to 14)
    let o = [
        2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 15,
    ];
    parse_options(&o, &mut s);
    assert_eq!(
        (s.td_scale, s.flags),
        (14, flag::WINDOW_SCALE | flag::SACK_PERM)
    );
    // A truncated option stops parsing without reading past the end.
    let mut s = TcpSide::default();
    parse_options(&[1, 3, 3], &mut s);
    assert_eq!(s.flags, 0);
    parse_options(&[3], &mut s);
}

#[test]
fn sack_takes_highest_right_edge() {
    let mut sack = 100;
    let o = [
        1, 1, 5, 18, 0, 0, 0, 50, 0, 0, 1, 0, 0, 0, 0, 10, 0, 0, 0, 200,
    ];
    highest_sack(&o, &mut sack);
    assert_eq!(sack, 256);
    let mut sack = 100;
    highest_sack(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2], &mut sack);
    assert_eq!(sack, 100);
}

#[test]
fn segment_end_counts_syn_and_fin() {
    let mut b = [0u8; 24];
    b[12] = 0x50;
    b[4..8].copy_from_slice(&1000u32.to_be_bytes());
    b[13] = tcpflag::SYN | tcpflag::FIN;
    let s = Segment::parse(&b).unwrap();
    assert_eq!((s.payload_len, s.end()), (4, 1006));
    assert!(Segment::parse(&b[..19]).is_none());
}

#[test]
fn state_table_cells_spot_checks() {
    let c = |dir: usize, idx: Index, st: TcpState| STATE_TABLE[dir][idx as usize][st as usize];
    // Kernel rule: a reply SYN in TIME_WAIT reopens with roles switched (SYN_SENT).
    assert_eq!(
        c(1, Index::Syn, TcpState::TimeWait),
        TcpState::SynSent as u8
    );
    // Kernel rule: a reply SYN in ESTABLISHED is invalid.
    assert_eq!(c(1, Index::Syn, TcpState::Established), IV);
    // Kernel rule: an original SYN in ESTABLISHED is ignored (we may be out of sync).
    assert_eq!(c(0, Index::Syn, TcpState::Established), IG);
    // Kernel rule: a reply SYN/ACK in ESTABLISHED is ignored (late retransmission).
    assert_eq!(c(1, Index::SynAck, TcpState::Established), IG);
    // Kernel rule: an original SYN/ACK in SYN_RECV stays SYN_RECV (simultaneous open).
    assert_eq!(
        c(0, Index::SynAck, TcpState::SynRecv),
        TcpState::SynRecv as u8
    );
    // Kernel rule: an RST in NONE cannot start anything.
    assert_eq!(c(0, Index::Rst, TcpState::None), IV);
    // Kernel rule: packets without SYN/ACK/FIN/RST are invalid everywhere.
    assert!(STATE_TABLE
        .iter()
        .all(|d| d[Index::None as usize].iter().all(|&v| v == IV)));
    // Kernel rule: FIN in SYN_RECV starts the close.
    assert_eq!(c(1, Index::Fin, TcpState::SynRecv), TcpState::FinWait as u8);
    // Kernel rule: ACK in LAST_ACK is the last ACK.
    assert_eq!(
        c(0, Index::Ack, TcpState::LastAck),
        TcpState::TimeWait as u8
    );
}

/// Random TCP tracking states, mostly ESTABLISHED with window data around one another so
/// that the window bounds pass or fail by a little, met by segments that are mostly pure
/// ACKs (with PSH/URG/ECE/CWR, payload, SACK blocks or timestamps) and sometimes carry
/// SYN/FIN/RST: `tcp_packet` (with its ESTABLISHED-ACK short path) gives the result and
/// leaves the connection exactly as the full path does; the short path decides most of them.
#[test]
#[allow(clippy::field_reassign_with_default)]
fn established_ack_short_path_equals_the_full_path() {
    use crate::conn::{Conn, ProtoState};
    use crate::status;
    use crate::tuple::Tuple;
    struct R(u64);
    impl R {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn near(&mut self, base: u32, spread: u32) -> u32 {
            base.wrapping_add(self.below(u64::from(2 * spread + 1)) as u32)
                .wrapping_sub(spread)
        }
    }
    let mut r = R(0x9e37_79b9_7f4a_7c15);
    let t0 = Tuple::ports(6, 0x0a00_0002, 1000, 0xc633_6401, 443);
    let t1 = t0.reply().unwrap();
    let (mut short, mut total) = (0, 0);
    for case in 0..200_000 {
        let mut t = TcpTrack::default();
        t.state = if r.below(8) == 0 {
            r.below(10) as u8
        } else {
            ES
        };
        let base = [r.next() as u32, r.next() as u32];
        for d in 0..2 {
            let s = &mut t.seen[d];
            s.td_end = r.near(base[d], 3000);
            s.td_maxwin = match r.below(10) {
                0 => 0,
                1 => r.below(200_000) as u32,
                _ => 1 + r.below(70_000) as u32,
            };
            s.td_maxend = s.td_end.wrapping_add(r.near(s.td_maxwin, 2000));
            s.td_maxack = r.near(base[1 - d], 3000);
            s.td_scale = r.below(4) as u8;
            s.flags = r.below(256) as u8;
        }
        t.last_seq = r.next() as u32;
        t.last_ack = r.next() as u32;
        t.last_end = r.next() as u32;
        t.last_win = r.below(3) as u16;
        t.last_index = r.below(6) as u8;
        t.last_dir = r.below(2) as u8;
        t.last_flags = r.below(256) as u8;
        t.retrans = r.below(5) as u8;
        let mut conn = Conn::new(t0, t1, 0);
        conn.proto = ProtoState::Tcp(t);
        for bit in [
            status::SEEN_REPLY,
            status::ASSURED,
            status::CONFIRMED,
            status::FIXED_TIMEOUT,
        ] {
            if r.below(3) != 0 {
                conn.status |= bit;
            }
        }
        conn.timeout = r.below(1 << 40);
        let d = r.below(2) as usize;
        let dir = if d == 0 { Dir::Original } else { Dir::Reply };
        let mut flags = tcpflag::ACK;
        for f in [tcpflag::PSH, tcpflag::URG, tcpflag::ECE, tcpflag::CWR] {
            if r.below(4) == 0 {
                flags |= f;
            }
        }
        if r.below(8) == 0 {
            flags |= [tcpflag::SYN, tcpflag::FIN, tcpflag::RST][r.below(3) as usize];
        }
        if r.below(30) == 0 {
            flags &= !tcpflag::ACK;
        }
        let mut options = Vec::new();
        match r.below(4) {
            0 => {
                // SACK: one block around the other side's data.
                let left = r.near(t.seen[1 - d].td_end, 4000);
                options.extend_from_slice(&[1, 1, 5, 10]);
                options.extend_from_slice(&left.to_be_bytes());
                options.extend_from_slice(&left.wrapping_add(r.below(3000) as u32).to_be_bytes());
            }
            1 => {
                options.extend_from_slice(&[1, 1, 8, 10]);
                options.extend_from_slice(&r.next().to_be_bytes());
            }
            _ => {}
        }
        let seg = Segment {
            seq: r.near(t.seen[d].td_end, 3000),
            ack: r.near(t.seen[1 - d].td_end, 3000),
            win: r.below(65536) as u16,
            flags,
            payload_len: [0, 0, 1, 100, 1460][r.below(5) as usize],
            options: &options,
        };
        let mut cfg = CtConfig::default();
        cfg.tcp_be_liberal = r.below(10) == 0;
        cfg.tcp_max_retrans = r.below(4) as u8;
        let now = r.below(1 << 40);
        let (mut a, mut b) = (conn, conn);
        let took = established_ack(&mut a.clone(), d, &seg, &cfg, now).is_some();
        let ra = tcp_packet(&mut a, dir, &seg, &cfg, now);
        let rb = tcp_packet_full(&mut b, dir, &seg, &cfg, now);
        assert_eq!(ra, rb, "case {case}");
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "case {case}");
        short += usize::from(took);
        total += 1;
    }
    assert!(short * 4 > total, "short path taken {short} of {total}");
}
