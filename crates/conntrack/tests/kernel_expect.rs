//! Expectations as the IRC helper run on Linux 6.18 left them (tests/data/kernel-expect-irc.txt):
//! the expectation listings, `helper=` in `conntrack -L`, and the peer's connection coming in
//! RELATED to its master.

use nfrs_conntrack::table::l4_checksum;
use nfrs_conntrack::tuple::parse_addr;
use nfrs_conntrack::{
    helper_id, ConnTable, CtConfig, CtInfo, Dir, ExpectFormat, Expectation, Format, Hook, Packet,
    Style, Tuple, SEC,
};

fn ip(s: &str) -> u32 {
    parse_addr(s).unwrap()
}

fn seg(src: u32, sport: u16, dst: u32, dport: u16, flags: u8, seq: u32, ack: u32) -> Vec<u8> {
    let mut b = vec![0u8; 20];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..8].copy_from_slice(&seq.to_be_bytes());
    b[8..12].copy_from_slice(&ack.to_be_bytes());
    b[12] = 0x50;
    b[13] = flags;
    b[14..16].copy_from_slice(&1000u16.to_be_bytes());
    let c = l4_checksum(src, dst, 6, &b);
    b[16..18].copy_from_slice(&c.to_be_bytes());
    b
}

fn section<'a>(data: &'a str, name: &str) -> Vec<&'a str> {
    let start = data.find(&format!("== {name}\n")).unwrap() + name.len() + 4;
    data[start..]
        .lines()
        .take_while(|l| !l.starts_with("=="))
        .collect()
}

#[test]
fn irc_expectation_listings_and_related_peer() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-expect-irc.txt"
    ))
    .unwrap();
    let mut t = ConnTable::new(CtConfig {
        buckets: 64,
        ..CtConfig::default()
    });
    let (cl, sv, nat) = (ip("10.0.0.2"), ip("198.51.100.1"), ip("198.51.100.254"));
    let pass = |t: &mut ConnTable, src: u32, dst: u32, l4: Vec<u8>, now: u64| {
        let r = t.track(
            &Packet {
                src,
                dst,
                proto: 6,
                later_fragment: false,
                l4: &l4,
            },
            0,
            Hook::PreRouting,
            now,
        );
        if r.unconfirmed {
            let id = r.conn.unwrap();
            if src == cl {
                // MASQUERADE's decision, as nfrs-nat would record it.
                t.set_reply(id, Tuple::ports(6, dst, 6667, nat, 40000));
                t.set_helper(id, helper_id("irc").unwrap());
            }
            t.confirm(id, now).unwrap();
        }
        r
    };
    let m = pass(&mut t, cl, sv, seg(cl, 40000, sv, 6667, 0x02, 100, 0), 0);
    pass(
        &mut t,
        sv,
        nat,
        seg(sv, 6667, nat, 40000, 0x12, 900, 101),
        0,
    );
    pass(&mut t, cl, sv, seg(cl, 40000, sv, 6667, 0x10, 101, 901), 0);
    let master = m.conn.unwrap();
    // The helper saw "DCC SEND ... 5000" and expects the peer at the NAT address.
    let e = Expectation {
        tuple: Tuple::ports(6, 0, 0, nat, 5000),
        mask: Tuple::ports(6, 0, 0, 0, 0),
        master,
        helper: helper_id("irc").unwrap(),
        child_helper: 0,
        class: 0,
        flags: 0,
        dir: Dir::Original,
        saved_proto: 5000,
        timeout: 0,
        zone: 0,
    };
    t.expect_add(e, 300, 0);
    let now = SEC / 2;
    assert_eq!(
        t.expect_listing(now, ExpectFormat::Conntrack, true),
        section(&data, "conntrack -L expect")
    );
    assert_eq!(
        t.expect_listing(now, ExpectFormat::Proc, true),
        section(&data, "/proc/net/nf_conntrack_expect")
    );
    assert_eq!(
        t.listing(
            now,
            Style {
                format: Format::ConntrackExtended,
                timeout: true
            }
        ),
        section(&data, "conntrack -L -o extended")
    );
    // The results form drops the timeout column.
    let r = t.expect_listing(now, ExpectFormat::Conntrack, false);
    assert!(r[0].starts_with("proto=6 src=0.0.0.0 dst=198.51.100.254"));

    // The peer connects: RELATED, master known, expectation used up.
    let syn = seg(sv, 53186, nat, 5000, 0x02, 7, 0);
    let p = t.track(
        &Packet {
            src: sv,
            dst: nat,
            proto: 6,
            later_fragment: false,
            l4: &syn,
        },
        0,
        Hook::PreRouting,
        SEC,
    );
    assert_eq!(p.ctinfo, CtInfo::Related);
    let exp = p.expected.unwrap();
    assert_eq!((exp.master, exp.saved_proto), (master, 5000));
    assert_eq!(t.get(p.conn.unwrap()).master(), Some(master));
    assert_eq!(t.helper(p.conn.unwrap()), 0);
    assert!(t
        .expect_listing(SEC, ExpectFormat::Conntrack, true)
        .is_empty());
    t.confirm(p.conn.unwrap(), SEC).unwrap();
    // The child holds a reference on its master, a pending expectation none (recorded on
    // 6.18: tests/scenarios/helpers/irc-dcc-chat and irc-max-dcc list such masters use=2).
    t.expect_add(e, 300, SEC);
    let uses: Vec<(bool, String)> = t
        .listing(SEC, Style::RESULTS)
        .iter()
        .map(|l| {
            let u = l.rsplit(' ').next().unwrap().to_string();
            (l.contains("dport=6667 "), u)
        })
        .collect();
    assert_eq!(uses.len(), 2);
    for (is_master, u) in uses {
        assert_eq!(u, if is_master { "use=2" } else { "use=1" });
    }
    // Deleting the master takes pending expectations with it.
    t.expect_add(e, 300, SEC);
    t.kill(master);
    t.expire(SEC, &mut |_, _| {});
    assert!(t
        .expect_listing(SEC, ExpectFormat::Conntrack, true)
        .is_empty());
}

#[test]
fn zone_then_helper_in_conntrack_listing() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-expect-irc.txt"
    ))
    .unwrap();
    let want = section(
        &data,
        "a zone and a helper (conntrack -L -o extended, then /proc)",
    );
    let mut t = ConnTable::new(CtConfig {
        buckets: 64,
        ..CtConfig::default()
    });
    let (cl, sv) = (ip("10.0.0.3"), ip("198.51.100.1"));
    let l4 = seg(cl, 40001, sv, 6668, 0x02, 1, 0);
    let r = t.track(
        &Packet {
            src: cl,
            dst: sv,
            proto: 6,
            later_fragment: false,
            l4: &l4,
        },
        3,
        Hook::PreRouting,
        0,
    );
    let id = r.conn.unwrap();
    t.set_reply(id, Tuple::ports(6, sv, 6668, ip("198.51.100.254"), 40001));
    t.set_helper(id, helper_id("irc").unwrap());
    t.confirm(id, 0).unwrap();
    assert_eq!(
        t.listing(
            SEC / 2,
            Style {
                format: Format::ConntrackExtended,
                timeout: true
            }
        )[0],
        want[0]
    );
    let proc_line = t.listing(
        SEC / 2,
        Style {
            format: Format::Proc,
            timeout: true,
        },
    )[0]
    .clone();
    assert_eq!(proc_line, want[1]);
}
