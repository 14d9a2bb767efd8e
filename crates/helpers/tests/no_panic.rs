//! Bad input never panics: arbitrary payloads through the parsers and the rewrites, in both
//! directions.

use nfrs_helpers::irc::DccPorts;
use nfrs_helpers::{ftp, irc, Dir};
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
    fn rewrites_never_panic(ps in prop::collection::vec((payload(), any::<bool>(), any::<u16>()), 1..8)) {
        // What the engine does with a payload: the NAT text of an offer or a command, and
        // the RESUME/ACCEPT translation once a port was moved; every rewrite stays inside
        // the payload and changes its length by its delta.
        let mut moved = DccPorts::default();
        for (p, reply, port) in ps {
            let dir = if reply { Dir::Reply } else { Dir::Original };
            let mut rws = Vec::new();
            if let Some(o) = irc::find_offer(&p, 0x0a00_0002, 0xc000_0201, &mut |_, _| {}) {
                rws.push(irc::nat_rewrite(&o, 0xc000_0201, port));
                moved.remember(o.port, port);
            }
            if let ftp::FtpFound::Cmd(c) = ftp::find_command(&p, dir, 0x0a00_0002) {
                rws.push(ftp::nat_rewrite(&c, 0xc000_0201, port));
            }
            rws.extend(moved.resume_rewrite(dir, &p));
            for rw in rws {
                prop_assert!(rw.off + rw.len <= p.len());
                let mut v = p.clone();
                rw.apply(&mut v);
                prop_assert_eq!(v.len() as i64, p.len() as i64 + rw.delta() as i64);
            }
        }
    }
}
