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
