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
