//! Bad input never panics: random transport bytes through every tracker and hook.

use nfrs_conntrack::{ConnTable, CtConfig, Hook, Packet, SEC};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn track_never_panics(
        pkts in proptest::collection::vec(
            (prop_oneof![Just(1u8), Just(6u8), Just(17u8), Just(47u8), any::<u8>()],
             any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..80)),
            1..12),
        tiny in any::<bool>(),
    ) {
        let mut t = ConnTable::new(CtConfig { buckets: 4, max: if tiny { 2 } else { 100 }, ..CtConfig::default() });
        for (i, (proto, rev, frag, l4)) in pkts.iter().enumerate() {
            let (src, dst) = if *rev { (2, 1) } else { (1, 2) };
            let p = Packet { src, dst, proto: *proto, later_fragment: *frag && i % 3 == 0, l4 };
            let hook = if i % 2 == 0 { Hook::PreRouting } else { Hook::LocalOut };
            let r = t.track(&p, 0, hook, i as u64 * SEC);
            if r.unconfirmed {
                let id = r.conn.unwrap();
                if i % 4 == 3 { t.discard(id) } else { let _ = t.confirm(id, i as u64 * SEC); }
            }
            if let Some(l) = r.log { let _ = l.to_string(); }
        }
        let _ = t.listing(100 * SEC, nfrs_conntrack::Style::RESULTS);
        t.expire(1_000_000 * SEC, &mut |_, _| {});
        prop_assert_eq!(t.count(), 0);
    }
}

#[allow(clippy::too_many_arguments)]
fn seg(
    sport: u16,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    win: u16,
    opts: &[u8],
    len: usize,
) -> Vec<u8> {
    let hl = 20 + opts.len() / 4 * 4;
    let mut b = vec![0u8; hl + len];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..8].copy_from_slice(&seq.to_be_bytes());
    b[8..12].copy_from_slice(&ack.to_be_bytes());
    b[12] = ((hl / 4) as u8) << 4;
    b[13] = flags;
    b[14..16].copy_from_slice(&win.to_be_bytes());
    b[20..hl].copy_from_slice(&opts[..hl - 20]);
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 800, ..ProptestConfig::default() })]

    /// Random but well-formed TCP conversations on one flow: every tracker path runs without
    /// panicking, whatever the flags, numbers, options and sysctls.
    #[test]
    fn tcp_conversations_never_panic(
        pkts in proptest::collection::vec(
            (any::<bool>(), prop_oneof![Just(2u8), Just(0x12), Just(0x10), Just(0x11), Just(0x04), Just(0x14), Just(0x18), Just(0x01), Just(0)],
             prop_oneof![any::<u32>(), 0u32..3000], prop_oneof![any::<u32>(), 0u32..3000], any::<u16>(),
             prop_oneof![Just(vec![]), Just(vec![1u8, 3, 3, 14]), Just(vec![4u8, 2, 1, 1]), Just(vec![1u8, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2]), proptest::collection::vec(any::<u8>(), 0..12)],
             0usize..64, 0u64..400),
            1..30),
        loose in any::<bool>(), liberal in any::<bool>(), retrans in 0u8..4,
    ) {
        let cfg = CtConfig { buckets: 8, tcp_loose: loose, tcp_be_liberal: liberal, tcp_max_retrans: retrans, ..CtConfig::default() };
        let mut t = ConnTable::new(cfg);
        let mut now = 0;
        for (rev, flags, seq, ack, win, opts, len, dt) in pkts {
            now += dt * SEC / 10;
            let (src, dst, sp, dp) = if rev { (2, 1, 80, 1000) } else { (1, 2, 1000, 80) };
            let l4 = seg(sp, dp, flags, seq, ack, win, &opts, len);
            let r = t.track(&Packet { src, dst, proto: 6, later_fragment: false, l4: &l4 }, 0, Hook::LocalOut, now);
            if r.unconfirmed {
                let _ = t.confirm(r.conn.unwrap(), now);
            }
            for m in [r.log, r.log2].into_iter().flatten() {
                let _ = m.to_string();
            }
        }
        let _ = t.listing(now, nfrs_conntrack::Style::RESULTS);
    }
}
