//! Bad input never panics: random packets through the NAT rewriters.

use nfrs_conntrack::{status, Conn, Dir, Tuple};
use nfrs_nat::{nat_packet, translate_icmp_error, Manip};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn rewrites_never_panic(
        mut b in proptest::collection::vec(any::<u8>(), 0..90),
        proto in prop_oneof![Just(1u8), Just(6u8), Just(17u8), Just(47u8)],
        reply in any::<bool>(),
        src in any::<bool>(),
        ihl in 0u8..16,
    ) {
        if !b.is_empty() {
            b[0] = 0x40 | ihl;
        }
        if b.len() > 9 {
            b[9] = proto;
        }
        let orig = Tuple::ports(proto, 1, 2, 3, 4);
        let mut c = Conn::new(orig, Tuple::ports(proto, 3, 4, 9, 99), 0);
        c.status |= status::SRC_NAT | status::DST_NAT;
        let dir = if reply { Dir::Reply } else { Dir::Original };
        let m = if src { Manip::Src } else { Manip::Dst };
        let _ = nat_packet(&mut b.clone(), &c, dir, m);
        let _ = translate_icmp_error(&mut b, &c, dir, m);
    }
}
