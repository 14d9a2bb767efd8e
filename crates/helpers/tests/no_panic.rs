//! Bad input never panics: arbitrary payloads through the parsers and the whole helper, with
//! and without NAT, in both directions.

use nfrs_helpers::{ftp, irc, ConnId, Dir, HelperKind, Helpers, Master, Tuple};
use proptest::prelude::*;

fn payload() -> impl Strategy<Value = Vec<u8>> {
    let words = prop::sample::select(vec![
        &b"PRIVMSG "[..],
        b" :",
        b"\x01DCC ",
        b"SEND ",
        b"CHAT ",
        b"RESUME ",
        b"ACCEPT ",
        b"167772162",
        b" ",
        b"5000",
        b"\r\n",
        b"PORT ",
        b"EPRT ",
        b"|1|",
        b"227 ",
        b"229 (",
        b"|||",
        b",",
        b".",
        b"|",
        b"\x01",
        b"x",
    ]);
    prop::collection::vec(
        prop_oneof![
            words.prop_map(|w| w.to_vec()),
            prop::collection::vec(any::<u8>(), 0..4)
        ],
        0..24,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn parsers_never_panic(p in payload()) {
        let _ = irc::find_offer(&p, 0x0a00_0002, 0xc000_0201, &mut |_, _| {});
        let _ = irc::find_resume(&p);
        let _ = ftp::find_command(&p, Dir::Original, 1);
        let _ = ftp::find_command(&p, Dir::Reply, 1);
    }

    #[test]
    fn helpers_never_panic(ps in prop::collection::vec((payload(), any::<bool>(), any::<u32>()), 1..8), nat in any::<bool>()) {
        let mut h = Helpers::default();
        let mk = |id, port| Master {
            id: ConnId(id),
            orig: Tuple::ports(6, 0x0a00_0002, 40000, 0xc633_6407, port),
            reply: Tuple::ports(6, 0xc633_6407, port, if nat { 0xc000_0201 } else { 0x0a00_0002 }, 40000),
            nat,
            zone: 0,
        };
        let (irc_m, ftp_m) = (mk(1, 6667), mk(2, 21));
        h.assign(&irc_m, HelperKind::Irc);
        h.assign(&ftp_m, HelperKind::Ftp);
        let mut seq = 1u32;
        for (p, reply, r) in ps {
            let dir = if reply { Dir::Reply } else { Dir::Original };
            for m in [&irc_m, &ftp_m] {
                let res = h.help(m, dir, true, seq, &p, 0, &mut |range| r % range.max(1));
                if let Some(rw) = res.rewrite {
                    let mut v = p.clone();
                    rw.apply(&mut v);
                    prop_assert_eq!(v.len() as i64, p.len() as i64 + rw.delta() as i64);
                }
            }
            seq = seq.wrapping_add(p.len() as u32);
        }
    }
}
