//! The `Helpers` API as the engine drives it: RESUME/ACCEPT through NAT (nfrs's extension),
//! expectation lifetime, limits, errors and listings.

use nfrs_helpers::expect::flags;
use nfrs_helpers::{
    ConnId, Dir, ExpectError, ExpectFormat, ExpectPolicy, ExpectTable, Expectation, HelperConfig,
    HelperKind, Helpers, Master, Tuple, Verdict,
};

const SEC: u64 = 1_000_000_000;
const GW: u32 = 0xc000_0201; // 192.0.2.1
const SERVER: u32 = 0xc633_6407; // 198.51.100.7

fn ip(s: &str) -> u32 {
    u32::from(s.parse::<std::net::Ipv4Addr>().unwrap())
}

fn masq_master(id: u32, client: u32, sport: u16, port: u16) -> Master {
    Master {
        id: ConnId(id),
        orig: Tuple::ports(6, client, sport, SERVER, port),
        reply: Tuple::ports(6, SERVER, port, GW, sport),
        nat: true,
        zone: 0,
    }
}

fn apply(p: &[u8], r: &nfrs_helpers::HelpResult) -> Vec<u8> {
    let mut v = p.to_vec();
    if let Some(rw) = r.rewrite {
        rw.apply(&mut v);
    }
    v
}

#[test]
fn resume_and_accept_follow_a_moved_send_port() {
    let mut h = Helpers::default();
    let a = masq_master(1, ip("10.0.0.2"), 40000, 6667);
    let b = masq_master(2, ip("10.0.0.3"), 40001, 6667);
    h.assign(&a, HelperKind::Irc);
    h.assign(&b, HelperKind::Irc);
    // Both LAN clients offer port 5000 behind the same gateway address: the second offer
    // clashes and is moved (the kernel draws the port at random; here 5000 + (65535 - 5000) - 100).
    let mut pick = |r: u32| r - 100;
    let send_a = b"PRIVMSG bob :\x01DCC SEND f.txt 167772162 5000 100\x01\r\n";
    let r = h.help(&a, Dir::Original, true, 1001, send_a, 0, &mut pick);
    assert_eq!(
        apply(send_a, &r),
        b"PRIVMSG bob :\x01DCC SEND f.txt 3221225985 5000 100\x01\r\n"
    );
    let send_b = b"PRIVMSG bob :\x01DCC SEND g.txt 167772163 5000 100\x01\r\n";
    let r = h.help(&b, Dir::Original, true, 2001, send_b, 0, &mut pick);
    assert_eq!(
        apply(send_b, &r),
        b"PRIVMSG bob :\x01DCC SEND g.txt 3221225985 65435 100\x01\r\n"
    );
    let after_send = 2001 + send_b.len() as u32;

    // The peer asks B to resume on the port it was told; B's client must see its own port.
    let resume = b":bob!u@h PRIVMSG al :\x01DCC RESUME g.txt 65435 4096\x01\r\n";
    let r = h.help(&b, Dir::Reply, true, 7001, resume, SEC, &mut pick);
    assert_eq!(
        apply(resume, &r),
        b":bob!u@h PRIVMSG al :\x01DCC RESUME g.txt 5000 4096\x01\r\n"
    );
    // B's client accepts on its own port; the peer must see the port it was told.
    let accept = b"PRIVMSG bob :\x01DCC ACCEPT g.txt 5000 4096\x01\r\n";
    let r = h.help(&b, Dir::Original, true, after_send, accept, SEC, &mut pick);
    assert_eq!(
        apply(accept, &r),
        b"PRIVMSG bob :\x01DCC ACCEPT g.txt 65435 4096\x01\r\n"
    );
    // The length changes are carried by sequence adjustment: SEND +2 (address and port one
    // digit longer each), ACCEPT +1, RESUME -1 the other way.
    let adj = h.seqadj(b.id, &b.orig).unwrap();
    assert_eq!(
        adj.adjust_seq(Dir::Original, after_send + 100),
        after_send + 103
    );
    assert_eq!(adj.adjust_seq(Dir::Reply, 7001 + 200), 7001 + 199);
    assert_eq!(
        adj.adjust_ack(Dir::Reply, after_send + 103),
        after_send + 100
    );

    // A's port was not moved: its RESUME/ACCEPT pass untouched, as in the kernel.
    let resume_a = b"PRIVMSG al :\x01DCC RESUME f.txt 5000 4096\x01\r\n";
    let r = h.help(&a, Dir::Reply, true, 9001, resume_a, SEC, &mut pick);
    assert!(r.rewrite.is_none());

    // The peer's resumed connection reaches B on the port B offered.
    let syn = Tuple::ports(6, ip("198.51.100.50"), 45000, GW, 65435);
    let e = h.expect_new(&syn, 0, 2 * SEC).unwrap();
    assert_eq!(e.master, b.id);
    let n = e.nat.unwrap();
    assert_eq!(
        (n.snat_addr, n.dnat_addr, n.dnat_port),
        (SERVER, ip("10.0.0.3"), 5000)
    );
    let syn_a = Tuple::ports(6, ip("198.51.100.50"), 45001, GW, 5000);
    assert_eq!(h.expect_new(&syn_a, 0, 2 * SEC).unwrap().master, a.id);
}

#[test]
fn resume_rewriting_can_be_switched_off() {
    let mut h = Helpers::new(HelperConfig {
        irc_resume_nat: false,
        ..HelperConfig::default()
    });
    let a = masq_master(1, ip("10.0.0.2"), 40000, 6667);
    let b = masq_master(2, ip("10.0.0.3"), 40001, 6667);
    h.assign(&a, HelperKind::Irc);
    h.assign(&b, HelperKind::Irc);
    let mut pick = |_| 7;
    let send = b"PRIVMSG bob :\x01DCC SEND f 167772162 5000 1\x01\r\n";
    h.help(&a, Dir::Original, true, 1, send, 0, &mut pick);
    let send = b"PRIVMSG bob :\x01DCC SEND f 167772163 5000 1\x01\r\n";
    let r = h.help(&b, Dir::Original, true, 1, send, 0, &mut pick);
    assert!(String::from_utf8_lossy(&apply(send, &r)).contains(" 5007 "));
    let resume = b"PRIVMSG al :\x01DCC RESUME f 5007 10\x01\r\n";
    assert!(h
        .help(&b, Dir::Reply, true, 1, resume, 0, &mut pick)
        .rewrite
        .is_none());
}

#[test]
fn dcc_expectation_lifetime_and_proc_line() {
    let mut h = Helpers::default();
    // The addresses of the line in KERNEL-ORACLE-NOTES.md.
    let m = Master {
        id: ConnId(3),
        orig: Tuple::ports(6, ip("10.0.1.2"), 40000, ip("10.0.2.2"), 6667),
        reply: Tuple::ports(6, ip("10.0.2.2"), 6667, ip("10.0.2.1"), 40000),
        nat: true,
        zone: 0,
    };
    h.assign(&m, HelperKind::Irc);
    let p = b"PRIVMSG bob :\x01DCC SEND f 167772418 5000 1\x01\r\n";
    let r = h.help(&m, Dir::Original, true, 1, p, 0, &mut |_| 0);
    assert_eq!(r.verdict, Verdict::Accept);
    assert_eq!(
        h.expect_listing(SEC / 2, ExpectFormat::Proc, false),
        ["l3proto = 2 proto=6 src=0.0.0.0 dst=10.0.2.1 sport=0 dport=5000 irc"]
    );
    assert_eq!(
        h.expect_listing(SEC / 2, ExpectFormat::Proc, true),
        ["299 l3proto = 2 proto=6 src=0.0.0.0 dst=10.0.2.1 sport=0 dport=5000 irc"]
    );
    assert_eq!(h.next_deadline(), Some(300 * SEC));
    let syn = Tuple::ports(6, ip("10.0.2.2"), 45000, ip("10.0.2.1"), 5000);
    // dcc_timeout is 300 s: gone at 300 s.
    assert!(h.expect_new(&syn, 0, 300 * SEC).is_none());
    assert!(h
        .expect_listing(300 * SEC, ExpectFormat::Conntrack, true)
        .is_empty());
    h.expire(300 * SEC);
    assert!(h.expects.is_empty());
    // A new offer, used just before its end, then removed on use.
    h.help(&m, Dir::Original, true, 100, p, 400 * SEC, &mut |_| 0);
    assert!(h.expect_new(&syn, 0, 699 * SEC).is_some());
    assert!(h.expect_new(&syn, 0, 699 * SEC).is_none());
    // The master going away takes its expectations along.
    h.help(&m, Dir::Original, true, 200, p, 700 * SEC, &mut |_| 0);
    assert_eq!(h.expects.len(), 1);
    h.destroy(m.id);
    assert!(h.expects.is_empty());
    assert!(h.helper(m.id, &m.orig).is_none());
}

#[test]
fn helpers_ignore_what_the_kernel_ignores() {
    let mut h = Helpers::default();
    let m = masq_master(1, ip("10.0.0.2"), 40000, 6667);
    let p = b"PRIVMSG bob :\x01DCC SEND f 167772162 5000 1\x01\r\n";
    // No helper assigned.
    assert!(h
        .help(&m, Dir::Original, true, 1, p, 0, &mut |_| 0)
        .rewrite
        .is_none());
    h.assign(&m, HelperKind::Irc);
    assert_eq!(h.helper(m.id, &m.orig), Some(HelperKind::Irc));
    // Not established yet (NEW / RELATED ctinfo).
    assert!(h
        .help(&m, Dir::Original, false, 1, p, 0, &mut |_| 0)
        .rewrite
        .is_none());
    // A reused connection id with another tuple.
    let mut other = m;
    other.orig.src_l4 = 40001;
    assert!(h
        .help(&other, Dir::Original, true, 1, p, 0, &mut |_| 0)
        .rewrite
        .is_none());
    assert!(h.expects.is_empty());
    // Server-to-client DCC: not looked at.
    assert!(h
        .help(&m, Dir::Reply, true, 1, p, 0, &mut |_| 0)
        .rewrite
        .is_none());
    assert!(h.expects.is_empty());
    assert!(HelperKind::from_name("sip").is_none());
    assert_eq!(HelperKind::from_name("ftp").unwrap().default_port(), 21);
    assert_eq!(HelperKind::Irc.default_port(), 6667);
}

#[test]
fn all_ports_in_use_drops_with_the_kernel_message() {
    let mut h = Helpers::default();
    let a = masq_master(1, ip("10.0.0.2"), 40000, 6667);
    let b = masq_master(2, ip("10.0.0.3"), 40001, 6667);
    h.assign(&a, HelperKind::Irc);
    h.assign(&b, HelperKind::Irc);
    let p = b"PRIVMSG bob :\x01DCC SEND f 167772162 65535 1\x01\r\n";
    h.help(&a, Dir::Original, true, 1, p, 0, &mut |_| 0);
    let p = b"PRIVMSG bob :\x01DCC SEND f 167772163 65535 1\x01\r\n";
    let r = h.help(&b, Dir::Original, true, 1, p, 0, &mut |_| 0);
    assert_eq!(r.verdict, Verdict::Drop);
    assert_eq!(
        r.log.unwrap().to_string(),
        "nf_ct_irc: dropping packet: all ports in use"
    );
}

#[test]
fn ftp_without_nat_cannot_add_second_masters_port() {
    // Two routed FTP sessions from one client to one server: the second PORT with the same
    // port clashes (EBUSY) and, without NAT to move it, the helper drops the packet.
    let mut h = Helpers::default();
    let mk = |id, sport| Master {
        id: ConnId(id),
        orig: Tuple::ports(6, ip("10.0.0.2"), sport, SERVER, 21),
        reply: Tuple::ports(6, SERVER, 21, ip("10.0.0.2"), sport),
        nat: false,
        zone: 0,
    };
    let (a, b) = (mk(1, 40000), mk(2, 40001));
    for m in [&a, &b] {
        h.assign(m, HelperKind::Ftp);
        // First line unparsed (sets the newline position).
        h.help(m, Dir::Original, true, 1, b"USER a\r\n", 0, &mut |_| 0);
    }
    let p = b"PORT 10,0,0,2,19,136\r\n";
    assert_eq!(
        h.help(&a, Dir::Original, true, 9, p, 0, &mut |_| 0).verdict,
        Verdict::Accept
    );
    let r = h.help(&b, Dir::Original, true, 9, p, 0, &mut |_| 0);
    assert_eq!(r.verdict, Verdict::Drop);
    assert_eq!(
        r.log.unwrap().to_string(),
        "nf_ct_ftp: dropping packet: cannot add expectation"
    );
    // Partial match message.
    let r = h.help(&a, Dir::Original, true, 31, b"PORT x\r\n", 0, &mut |_| 0);
    assert_eq!(
        r.log.unwrap().to_string(),
        "nf_ct_ftp: dropping packet: partial matching of `PORT'"
    );
}

#[test]
fn ftp_loose_expects_the_named_address() {
    let mut h = Helpers::new(HelperConfig {
        ftp_loose: true,
        ..HelperConfig::default()
    });
    let m = Master {
        id: ConnId(1),
        orig: Tuple::ports(6, ip("10.0.0.2"), 40000, SERVER, 21),
        reply: Tuple::ports(6, SERVER, 21, ip("10.0.0.2"), 40000),
        nat: false,
        zone: 0,
    };
    h.assign(&m, HelperKind::Ftp);
    h.help(&m, Dir::Original, true, 1, b"USER a\r\n", 0, &mut |_| 0);
    h.help(
        &m,
        Dir::Original,
        true,
        9,
        b"PORT 10,0,0,3,19,136\r\n",
        0,
        &mut |_| 0,
    );
    let syn = Tuple::ports(6, SERVER, 20, ip("10.0.0.3"), 5000);
    assert!(h.expect_new(&syn, 0, 1).is_some());
}

fn exp(master: u32, src: Option<u32>, dport: u16) -> Expectation {
    let o = Tuple::ports(6, 1, 1, 2, 21);
    Expectation::tcp(
        ConnId(master),
        o,
        o.reply().unwrap(),
        HelperKind::Ftp,
        src,
        9,
        dport,
    )
}

#[test]
fn table_rules() {
    let pol = ExpectPolicy {
        max_expected: 2,
        timeout_secs: 10,
    };
    let mut t = ExpectTable::new(3);
    t.related(exp(1, None, 1), pol, 0).unwrap();
    // Same expectation, same master: replaced (still one).
    t.related(exp(1, None, 1), pol, 0).unwrap();
    assert_eq!(t.len(), 1);
    // Same tuple, other class: EALREADY.
    let mut c = exp(1, None, 1);
    c.class = 1;
    assert_eq!(t.related(c, pol, 0), Err(ExpectError::Already));
    // Another master, overlapping (wildcard vs exact source): EBUSY.
    assert_eq!(
        t.related(exp(2, Some(5), 1), pol, 0),
        Err(ExpectError::Busy)
    );
    // Over max_expected: the oldest of the master goes.
    t.related(exp(1, None, 2), pol, 1).unwrap();
    t.related(exp(1, None, 3), pol, 2).unwrap();
    let ports: Vec<u16> = {
        let mut v: Vec<u16> = t.iter().map(|e| e.tuple.dst_l4).collect();
        v.sort();
        v
    };
    assert_eq!(ports, [2, 3]);
    // Table full (nf_conntrack_expect_max = 3).
    t.related(exp(2, None, 4), pol, 2).unwrap();
    assert_eq!(
        t.related(exp(3, None, 5), pol, 2),
        Err(ExpectError::TooMany)
    );
    assert!(t.table_full);
    // Expired ones neither clash nor count.
    assert_eq!(t.expire(100 * SEC), 3);
    t.related(exp(2, Some(5), 1), pol, 100 * SEC).unwrap();
    // Exact source: another source does not match; the right one does.
    let miss = Tuple::ports(6, 6, 1000, 9, 1);
    assert!(t.take(&miss, 0, 100 * SEC).is_none());
    let hit = Tuple::ports(6, 5, 1000, 9, 1);
    assert!(t.take(&hit, 0, 100 * SEC).is_some());
    // Other zone: no match.
    t.related(exp(2, None, 7), pol, 100 * SEC).unwrap();
    assert!(t.take(&Tuple::ports(6, 5, 1, 9, 7), 1, 100 * SEC).is_none());
    // PERMANENT stays after use; INACTIVE is never matched; both listed.
    let mut p = exp(4, None, 8);
    p.flags = flags::PERMANENT;
    t.related(p, pol, 100 * SEC).unwrap();
    let mut q = exp(4, None, 9);
    q.flags = flags::INACTIVE | flags::USERSPACE;
    t.related(q, pol, 100 * SEC).unwrap();
    let t8 = Tuple::ports(6, 5, 1, 9, 8);
    assert!(t.take(&t8, 0, 100 * SEC).is_some());
    assert!(t.take(&t8, 0, 100 * SEC).is_some());
    assert!(t.take(&Tuple::ports(6, 5, 1, 9, 9), 0, 100 * SEC).is_none());
    let l = t.listing(100 * SEC, ExpectFormat::Proc, false);
    assert!(
        l.contains(
            &"l3proto = 2 proto=6 src=0.0.0.0 dst=0.0.0.9 sport=0 dport=8 PERMANENT ftp"
                .to_string()
        ),
        "{l:?}"
    );
    assert!(
        l.contains(
            &"l3proto = 2 proto=6 src=0.0.0.0 dst=0.0.0.9 sport=0 dport=9 INACTIVE,USERSPACE ftp"
                .to_string()
        ),
        "{l:?}"
    );
    let l = t.listing(100 * SEC, ExpectFormat::Conntrack, true);
    assert!(
        l.iter()
            .any(|x| x.starts_with("10 proto=6 ") && x.ends_with(" PERMANENT class=0 helper=ftp")),
        "{l:?}"
    );
    assert_eq!(t.remove_master(ConnId(4)), 2);
    // find_port walks past a clash.
    let mut t = ExpectTable::new(10);
    t.related(exp(4, None, 8), pol, 0).unwrap();
    let mut calls = 0;
    let got = t.find_port(exp(5, None, 8), pol, 8, 0, &mut |r| {
        calls += 1;
        assert_eq!(r, 65535 - 8);
        2
    });
    assert_eq!((got, calls), (Some(10), 1));
}

/// Measured on Linux 6.18 in a throwaway netns (loopback, `-t raw -A OUTPUT -p tcp --dport
/// 6667 -j CT --helper irc` and the same for ftp on 21): an IRC client sent
/// `PRIVMSG bob :\1DCC SEND f 2130706433 5000 1\1`, an FTP client `USER a` then
/// `PORT 127,0,0,1,19,137`; 1.5 s later both tools printed these lines.
#[test]
fn measured_live_listings_with_timeout() {
    let lo = ip("127.0.0.1");
    let irc = Master {
        id: ConnId(1),
        orig: Tuple::ports(6, lo, 45808, lo, 6667),
        reply: Tuple::ports(6, lo, 6667, lo, 45808),
        nat: false,
        zone: 0,
    };
    let ftp = Master {
        id: ConnId(2),
        orig: Tuple::ports(6, lo, 60876, lo, 21),
        reply: Tuple::ports(6, lo, 21, lo, 60876),
        nat: false,
        zone: 0,
    };
    let mut h = Helpers::default();
    h.assign(&irc, HelperKind::Irc);
    h.assign(&ftp, HelperKind::Ftp);
    let p = b"PRIVMSG bob :\x01DCC SEND f 2130706433 5000 1\x01\r\n";
    h.help(&irc, Dir::Original, true, 1, p, 0, &mut |_| 0);
    h.help(&ftp, Dir::Reply, true, 1, b"220 ready\r\n", 0, &mut |_| 0);
    h.help(&ftp, Dir::Original, true, 1, b"USER a\r\n", 0, &mut |_| 0);
    h.help(&ftp, Dir::Reply, true, 12, b"331 ok\r\n", 0, &mut |_| 0);
    h.help(
        &ftp,
        Dir::Original,
        true,
        9,
        b"PORT 127,0,0,1,19,137\r\n",
        0,
        &mut |_| 0,
    );
    let now = 3 * SEC / 2;
    assert_eq!(
        h.expect_listing(now, ExpectFormat::Proc, true),
        [
            "298 l3proto = 2 proto=6 src=0.0.0.0 dst=127.0.0.1 sport=0 dport=5000 irc",
            "298 l3proto = 2 proto=6 src=127.0.0.1 dst=127.0.0.1 sport=0 dport=5001 ftp",
        ]
    );
    assert_eq!(
        h.expect_listing(now, ExpectFormat::Conntrack, true),
        [
            "298 proto=6 src=0.0.0.0 dst=127.0.0.1 sport=0 dport=5000 mask-src=0.0.0.0 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=127.0.0.1 master-dst=127.0.0.1 sport=45808 dport=6667 class=0 helper=irc",
            "298 proto=6 src=127.0.0.1 dst=127.0.0.1 sport=0 dport=5001 mask-src=255.255.255.255 mask-dst=255.255.255.255 sport=0 dport=65535 master-src=127.0.0.1 master-dst=127.0.0.1 sport=60876 dport=21 class=0 helper=ftp",
        ]
    );
}
