use super::*;
use nfrs_conntrack::tuple::parse_addr;
use nfrs_conntrack::{CtConfig, CtInfo, Hook, Packet, SEC};

fn ip(s: &str) -> u32 {
    parse_addr(s).unwrap()
}

/// Fields of a recorded `conntrack -L -o extended` line: (orig src, orig dst, orig sport,
/// reply src, reply dst, reply dport).
fn parse(line: &str) -> (u32, u32, u16, u32, u32, u16) {
    let mut src = Vec::new();
    let mut dst = Vec::new();
    let mut sport = Vec::new();
    let mut dport = Vec::new();
    for t in line.split_whitespace() {
        if let Some((k, v)) = t.split_once('=') {
            match k {
                "src" => src.push(ip(v)),
                "dst" => dst.push(ip(v)),
                "sport" => sport.push(v.parse::<u16>().unwrap()),
                "dport" => dport.push(v.parse::<u16>().unwrap()),
                _ => {}
            }
        }
    }
    (src[0], dst[0], sport[0], src[1], dst[1], dport[1])
}

fn recorded(name: &str) -> Vec<(u32, u32, u16, u32, u32, u16)> {
    let p = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(parse)
        .collect()
}

/// Replays the recorded SNAT flows in the order they were sent (19 sources, each with one
/// source port, to 9 destinations) and compares the address chosen with the kernel's.
fn replay_snat(name: &str, r: NatRange) {
    let kernel = recorded(name);
    assert_eq!(kernel.len(), 171);
    let mut t = table();
    let mut rng = Rng(1);
    for s in 2..=20u32 {
        for d in 1..=9u32 {
            let (src, dst, sport) = (ip("10.0.0.0") + s, ip("198.51.100.0") + d, 40000 + s as u16);
            let k = kernel.iter().find(|k| k.0 == src && k.1 == dst).unwrap();
            if d == 1 {
                // A source's first flow: the hash alone decides.
                assert_eq!(pick_addr(src, dst, 0, &r), k.4, "{s}/{d}");
            }
            let (reply, random) = flow(&mut t, src, sport, dst, 5000, None, Some(r), &mut rng);
            // Later flows of the same source reuse its mapping (find_appropriate_src).
            assert_eq!(
                (reply.dst, reply.dst_l4, random),
                (k.4, sport, false),
                "{s}/{d}"
            );
        }
    }
}

#[test]
fn snat_range_address_is_the_kernels_hash_choice() {
    // Recorded: SNAT --to-source 192.0.2.10-192.0.2.12.
    replay_snat(
        "snat-range-3addr.conntrack",
        NatRange::addrs(ip("192.0.2.10"), ip("192.0.2.12")),
    );
}

#[test]
fn snat_range_crossing_an_octet() {
    replay_snat(
        "snat-range-wide.conntrack",
        NatRange::addrs(ip("192.0.2.200"), ip("192.0.3.50")),
    );
}

#[test]
fn persistent_hashes_the_source_alone() {
    let r = NatRange::addrs(ip("192.0.2.10"), ip("192.0.2.14")).with_flags(flags::PERSISTENT);
    for (src, dst, _, _, chosen, _) in recorded("snat-range-5addr-persistent.conntrack") {
        assert_eq!(pick_addr(src, dst, 0, &r), chosen);
        assert_eq!(
            pick_addr(src, 1, 0, &r),
            chosen,
            "independent of the destination"
        );
    }
}

fn udp(src: u32, sport: u16, dst: u32, dport: u16) -> Vec<u8> {
    let mut b = vec![0u8; 9];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..6].copy_from_slice(&9u16.to_be_bytes());
    let _ = (src, dst);
    b
}

struct Rng(u16);
impl RandomSource for Rng {
    fn random_u16(&mut self) -> u16 {
        self.0 = self.0.wrapping_add(7919);
        self.0
    }
}

fn table() -> ConnTable {
    ConnTable::new(CtConfig {
        buckets: 4096,
        checksum: false,
        ..CtConfig::default()
    })
}

/// Runs one new UDP flow through PREROUTING (DNAT range or none) and POSTROUTING (SNAT range or
/// null binding), then confirms it. Returns the reply tuple and whether the port was random.
#[allow(clippy::too_many_arguments)]
fn flow(
    t: &mut ConnTable,
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    dnat: Option<NatRange>,
    snat: Option<NatRange>,
    rng: &mut Rng,
) -> (Tuple, bool) {
    let l4 = udp(src, sport, dst, dport);
    let p = Packet {
        src,
        dst,
        proto: 17,
        later_fragment: false,
        l4: &l4,
    };
    let r = t.track(&p, 0, Hook::PreRouting, 0);
    assert_eq!(r.ctinfo, CtInfo::New);
    let id = r.conn.unwrap();
    let mut random = false;
    match dnat {
        Some(d) => random |= setup_info(t, id, &d, Manip::Dst, rng, 0).random,
        None => random |= null_binding(t, id, Manip::Dst, rng, 0).random,
    }
    match snat {
        Some(s) => random |= setup_info(t, id, &s, Manip::Src, rng, 0).random,
        None => random |= null_binding(t, id, Manip::Src, rng, 0).random,
    }
    t.confirm(id, 0).unwrap();
    (t.get(id).tuple[1], random)
}

#[test]
fn dnat_range_and_null_binding_clashes_match_the_kernel() {
    // Recorded: DNAT --to-destination 198.51.100.1-198.51.100.4, flows sent in this order.
    // Two flows of one client port mapped to the same server clash on the reply tuple; the
    // POSTROUTING null binding then moves the source port at random.
    let kernel = recorded("dnat-range-4addr.conntrack");
    let r = NatRange::addrs(ip("198.51.100.1"), ip("198.51.100.4"));
    let mut t = table();
    let mut rng = Rng(1);
    let mut randomized = 0;
    for s in 2..=20u32 {
        for d in 1..=9u32 {
            let (src, dst, sport) = (ip("10.0.0.0") + s, ip("203.0.113.0") + d, 40000 + s as u16);
            let (reply, random) = flow(&mut t, src, sport, dst, 5000, Some(r), None, &mut rng);
            let k = kernel.iter().find(|k| k.0 == src && k.1 == dst).unwrap();
            assert_eq!(reply.src, k.3, "server chosen for {s}/{d}");
            let kernel_random = k.5 != sport;
            assert_eq!(random, kernel_random, "port moved for {s}/{d}");
            if random {
                assert_ne!(reply.dst_l4, sport);
                assert!(reply.dst_l4 >= 1024);
                randomized += 1;
            }
        }
    }
    assert!(randomized > 20);
}

#[test]
fn snat_keeps_the_port_when_free_and_picks_in_range_on_clash() {
    // The port-clash example: two LAN hosts, same source port, same server, MASQUERADE.
    let mut t = table();
    let mut rng = Rng(3);
    let masq = masquerade_range(&NatRange::default(), Some(ip("192.0.2.1"))).unwrap();
    let server = ip("203.0.113.9");
    let (r1, rand1) = flow(
        &mut t,
        ip("10.0.0.2"),
        5000,
        server,
        5000,
        None,
        Some(masq),
        &mut rng,
    );
    assert_eq!((r1.dst, r1.dst_l4, rand1), (ip("192.0.2.1"), 5000, false));
    let (r2, rand2) = flow(
        &mut t,
        ip("10.0.0.3"),
        5000,
        server,
        5000,
        None,
        Some(masq),
        &mut rng,
    );
    assert!(rand2);
    assert_eq!(r2.dst, ip("192.0.2.1"));
    assert!(r2.dst_l4 >= 1024 && r2.dst_l4 != 5000);
    // A low port stays in its class (1..511).
    let (r3, _) = flow(
        &mut t,
        ip("10.0.0.4"),
        5000,
        server,
        5000,
        None,
        Some(masq),
        &mut rng,
    );
    assert!(r3.dst_l4 >= 1024);
    let (a, _) = flow(
        &mut t,
        ip("10.0.0.2"),
        53,
        server,
        53,
        None,
        Some(masq),
        &mut rng,
    );
    let (b, rb) = flow(
        &mut t,
        ip("10.0.0.3"),
        53,
        server,
        53,
        None,
        Some(masq),
        &mut rng,
    );
    assert_eq!(a.dst_l4, 53);
    assert!(rb && (1..=511).contains(&b.dst_l4) && b.dst_l4 != 53);
}

#[test]
fn clash_keeps_the_hashed_address() {
    // Measured on 6.18: after a clash the kernel keeps the hashed address and moves the port.
    let mut t = table();
    let mut rng = Rng(5);
    let r = NatRange::addrs(ip("192.0.2.10"), ip("192.0.2.12"));
    let server = ip("203.0.113.9");
    let (a, _) = flow(
        &mut t,
        ip("10.0.0.2"),
        5000,
        server,
        80,
        None,
        Some(r),
        &mut rng,
    );
    // Another source hashing to the same address with the same port.
    let mut other = ip("10.0.0.3");
    while pick_addr(other, server, 0, &r) != a.dst {
        other += 1;
    }
    let (b, random) = flow(&mut t, other, 5000, server, 80, None, Some(r), &mut rng);
    assert!(random);
    assert_eq!(b.dst, a.dst);
    assert_ne!(b.dst_l4, 5000);
}

#[test]
fn random_flags_always_pick_from_the_range() {
    let mut t = table();
    let mut rng = Rng(9);
    let r = NatRange::addr(ip("192.0.2.1"))
        .with_ports(30000, 30009)
        .with_flags(flags::PROTO_RANDOM_FULLY);
    let (a, random) = flow(
        &mut t,
        ip("10.0.0.2"),
        30003,
        ip("203.0.113.9"),
        80,
        None,
        Some(r),
        &mut rng,
    );
    assert!(random);
    assert!((30000..=30009).contains(&a.dst_l4));
    // Without --random a port already in range and free is kept.
    let r = NatRange::addr(ip("192.0.2.1")).with_ports(30000, 30009);
    let (b, random) = flow(
        &mut t,
        ip("10.0.0.3"),
        30004,
        ip("203.0.113.9"),
        80,
        None,
        Some(r),
        &mut rng,
    );
    assert_eq!((b.dst_l4, random), (30004, false));
    // Out of range: moved into it.
    let (c, _) = flow(
        &mut t,
        ip("10.0.0.4"),
        40000,
        ip("203.0.113.9"),
        80,
        None,
        Some(r),
        &mut rng,
    );
    assert!((30000..=30009).contains(&c.dst_l4));
}

#[test]
fn dnat_port_range_without_random_searches_from_the_start() {
    let mut t = table();
    let mut rng = Rng(11);
    let r = NatRange::addr(ip("10.0.0.80")).with_ports(8080, 8089);
    let (a, ra) = flow(
        &mut t,
        ip("198.51.100.7"),
        1111,
        ip("192.0.2.1"),
        80,
        Some(r),
        None,
        &mut rng,
    );
    assert_eq!((a.src, a.src_l4, ra), (ip("10.0.0.80"), 8080, false));
}

#[test]
fn masquerade_redirect_netmap_ranges() {
    assert_eq!(masquerade_range(&NatRange::default(), None), None);
    let r = redirect_range(&NatRange::default().with_ports(3128, 3128), true, None).unwrap();
    assert_eq!((r.min_addr, r.min_proto), (0x7f000001, 3128));
    assert_eq!(redirect_range(&NatRange::default(), false, None), None);
    let n = netmap_range(
        &NatRange::addrs(ip("192.168.5.0"), ip("192.168.5.255")),
        ip("10.1.2.77"),
    );
    assert_eq!(n.min_addr, ip("192.168.5.77"));
}

#[test]
fn the_same_source_keeps_its_mapping() {
    // find_appropriate_src: a second flow from the same address and port reuses the mapping.
    let mut t = table();
    let mut rng = Rng(13);
    let r = NatRange::addrs(ip("192.0.2.10"), ip("192.0.2.12"));
    let (a, _) = flow(
        &mut t,
        ip("10.0.0.2"),
        4444,
        ip("203.0.113.1"),
        80,
        None,
        Some(r),
        &mut rng,
    );
    for d in 2..30 {
        let (b, _) = flow(
            &mut t,
            ip("10.0.0.2"),
            4444,
            ip("203.0.113.0") + d,
            80,
            None,
            Some(r),
            &mut rng,
        );
        assert_eq!((b.dst, b.dst_l4), (a.dst, a.dst_l4));
    }
    let _ = SEC;
}

#[test]
fn exhausted_port_range_fails_at_confirm_like_the_kernel() {
    // Recorded in tests/data/masquerade-ports-exhausted.txt.
    let mut t = table();
    let mut rng = Rng(17);
    let rule = NatRange::default().with_ports(1000, 1002);
    let range = masquerade_range(&rule, Some(ip("198.51.100.254"))).unwrap();
    let server = ip("198.51.100.1");
    let mut ports = Vec::new();
    let mut failed = 0;
    let flows = [
        ("10.0.0.2", 5000),
        ("10.0.0.3", 5000),
        ("10.0.0.4", 5000),
        ("10.0.0.5", 5000),
        ("10.0.0.6", 5000),
        ("10.0.0.7", 1001),
    ];
    for (src, sport) in flows {
        let l4 = udp(ip(src), sport, server, 53);
        let p = Packet {
            src: ip(src),
            dst: server,
            proto: 17,
            later_fragment: false,
            l4: &l4,
        };
        let id = t.track(&p, 0, Hook::PreRouting, 0).conn.unwrap();
        null_binding(&mut t, id, Manip::Dst, &mut rng, 0);
        setup_info(&mut t, id, &range, Manip::Src, &mut rng, 0);
        match t.confirm(id, 0) {
            Ok(()) => ports.push(t.get(id).tuple[1].dst_l4),
            Err(e) => {
                assert_eq!(e, nfrs_conntrack::ConfirmError::Clash);
                failed += 1;
            }
        }
    }
    ports.sort();
    assert_eq!((ports, failed, t.count()), (vec![1000, 1001, 1002], 3, 3));
}

#[test]
fn expected_connection_follows_its_master() {
    // The IRC DCC run recorded in crates/conntrack/tests/data/kernel-expect-irc.txt.
    use nfrs_conntrack::{Dir, Expectation, Style};
    let mut t = table();
    let mut rng = Rng(21);
    let (cl, sv, nat) = (ip("10.0.0.2"), ip("198.51.100.1"), ip("198.51.100.254"));
    let masq = masquerade_range(&NatRange::default(), Some(nat)).unwrap();
    let tcp = |sport: u16, dport: u16, flags: u8| {
        let mut b = vec![0u8; 20];
        b[0..2].copy_from_slice(&sport.to_be_bytes());
        b[2..4].copy_from_slice(&dport.to_be_bytes());
        b[12] = 0x50;
        b[13] = flags;
        b[14] = 4;
        b
    };
    let syn = tcp(40000, 6667, 0x02);
    let p = Packet {
        src: cl,
        dst: sv,
        proto: 6,
        later_fragment: false,
        l4: &syn,
    };
    let master = t.track(&p, 0, Hook::PreRouting, 0).conn.unwrap();
    null_binding(&mut t, master, Manip::Dst, &mut rng, 0);
    setup_info(&mut t, master, &masq, Manip::Src, &mut rng, 0);
    t.confirm(master, 0).unwrap();
    let e = Expectation {
        tuple: Tuple::ports(6, 0, 0, nat, 5000),
        mask: Tuple::ports(6, 0, 0, 0, 0),
        master,
        helper: 2,
        child_helper: 0,
        class: 0,
        flags: 0,
        dir: Dir::Reply,
        saved_proto: 5000,
        timeout: 0,
        zone: 0,
    };
    t.expect_add(e, 300, 0);
    let peer = tcp(53186, 5000, 0x02);
    let p = Packet {
        src: sv,
        dst: nat,
        proto: 6,
        later_fragment: false,
        l4: &peer,
    };
    let r = t.track(&p, 0, Hook::PreRouting, SEC);
    assert_eq!(r.ctinfo, CtInfo::Related);
    let id = r.conn.unwrap();
    follow_master(&mut t, id, &r.expected.unwrap(), &mut rng, SEC);
    t.confirm(id, SEC).unwrap();
    let line = t
        .listing(SEC, Style::RESULTS)
        .into_iter()
        .find(|l| l.contains("sport=53186"))
        .unwrap();
    // As listed by the kernel (state and flags differ: here only the SYN was seen).
    assert!(
        line.contains("src=198.51.100.1 dst=198.51.100.254 sport=53186 dport=5000 [UNREPLIED] src=10.0.0.2 dst=198.51.100.1 sport=5000 dport=53186"),
        "{line}"
    );
}

#[test]
fn netmap_redirect_icmp_id_and_snat_ports_match_the_kernel() {
    use nfrs_conntrack::Style;
    let data = std::fs::read_to_string(format!(
        "{}/tests/data/nat-targets.conntrack",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut t = table();
    let mut rng = Rng(23);
    let mut masked = Vec::new();
    let new = |t: &mut ConnTable, p: Packet| {
        let r = t.track(&p, 0, Hook::PreRouting, 0);
        r.conn.unwrap()
    };
    let c = ip("10.0.0.2");
    // NETMAP in PREROUTING: prefix swapped, host part kept.
    let l4 = udp(c, 4000, ip("203.0.113.7"), 53);
    let id = new(
        &mut t,
        Packet {
            src: c,
            dst: ip("203.0.113.7"),
            proto: 17,
            later_fragment: false,
            l4: &l4,
        },
    );
    let r = netmap_range(
        &NatRange::addrs(ip("198.51.100.0"), ip("198.51.100.255")),
        ip("203.0.113.7"),
    );
    setup_info(&mut t, id, &r, Manip::Dst, &mut rng, 0);
    null_binding(&mut t, id, Manip::Src, &mut rng, 0);
    t.confirm(id, 0).unwrap();
    // REDIRECT in PREROUTING: the incoming interface's primary address.
    let l4 = udp(c, 4001, ip("198.51.100.1"), 8080);
    let id = new(
        &mut t,
        Packet {
            src: c,
            dst: ip("198.51.100.1"),
            proto: 17,
            later_fragment: false,
            l4: &l4,
        },
    );
    let r = redirect_range(
        &NatRange::default().with_ports(3128, 3128),
        false,
        Some(ip("10.0.0.1")),
    )
    .unwrap();
    setup_info(&mut t, id, &r, Manip::Dst, &mut rng, 0);
    null_binding(&mut t, id, Manip::Src, &mut rng, 0);
    t.confirm(id, 0).unwrap();
    // MASQUERADE of two pings with the same id: the second id is chosen at random.
    let masq = masquerade_range(&NatRange::default(), Some(ip("198.51.100.254"))).unwrap();
    for src in ["10.0.0.2", "10.0.0.3"] {
        let echo = [8u8, 0, 0, 0, 0x03, 0xe7, 0, 1];
        let id = new(
            &mut t,
            Packet {
                src: ip(src),
                dst: ip("198.51.100.1"),
                proto: 1,
                later_fragment: false,
                l4: &echo,
            },
        );
        null_binding(&mut t, id, Manip::Dst, &mut rng, 0);
        if setup_info(&mut t, id, &masq, Manip::Src, &mut rng, 0).random {
            masked.push(format!("id={}", t.get(id).tuple[1].src_l4));
        }
        t.confirm(id, 0).unwrap();
        // The server answered the pings (to the router's address, with the id it saw).
        let rid = t.get(id).tuple[1].src_l4.to_be_bytes();
        let reply = [0u8, 0, 0, 0, rid[0], rid[1], 0, 1];
        let r = t.track(
            &Packet {
                src: ip("198.51.100.1"),
                dst: ip("198.51.100.254"),
                proto: 1,
                later_fragment: false,
                l4: &reply,
            },
            0,
            Hook::PreRouting,
            0,
        );
        assert_eq!(r.ctinfo, CtInfo::EstablishedReply);
    }
    // SNAT to one address and two ports: two flows fit, the third fails at confirm.
    let snat = NatRange::addr(ip("192.0.2.50")).with_ports(2000, 2001);
    let mut failed = 0;
    for src in ["10.0.0.4", "10.0.0.5", "10.0.0.6"] {
        let l4 = udp(ip(src), 2000, ip("198.51.100.1"), 7);
        let id = new(
            &mut t,
            Packet {
                src: ip(src),
                dst: ip("198.51.100.1"),
                proto: 17,
                later_fragment: false,
                l4: &l4,
            },
        );
        null_binding(&mut t, id, Manip::Dst, &mut rng, 0);
        setup_info(&mut t, id, &snat, Manip::Src, &mut rng, 0);
        failed += t.confirm(id, 0).is_err() as u32;
    }
    assert_eq!(failed, 1);
    // Compare without the timeout column, random ids masked on both sides.
    let mask = |l: &str, rand: &[String]| {
        let mut v: Vec<String> = l.split_whitespace().map(str::to_string).collect();
        if v.len() > 4 && v[4].chars().all(|c| c.is_ascii_digit()) {
            v.remove(4);
        }
        let mut s = v.join(" ");
        for r in rand {
            s = s.replace(&format!("{r} mark"), "id=RAND mark");
        }
        s
    };
    let want: Vec<String> = data
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| mask(l, &["id=14361".to_string()]))
        .collect();
    let mut got: Vec<String> = t
        .listing(0, Style::RESULTS)
        .iter()
        .map(|l| mask(l, &masked))
        .collect();
    got.sort();
    let mut want = want;
    want.sort();
    // The SNAT flows' second port is 2001 on both sides only because the range has two ports.
    assert_eq!(got, want);
}

/// One UDP flow through a null DNAT binding and `snat` with any random source; reply tuple,
/// whether the port was random and whether it confirmed.
fn flow_with(
    t: &mut ConnTable,
    src: u32,
    sport: u16,
    dst: u32,
    snat: &NatRange,
    rng: &mut dyn RandomSource,
) -> (Tuple, bool, bool) {
    let l4 = udp(src, sport, dst, 53);
    let p = Packet {
        src,
        dst,
        proto: 17,
        later_fragment: false,
        l4: &l4,
    };
    let id = t.track(&p, 0, Hook::PreRouting, 0).conn.unwrap();
    null_binding(t, id, Manip::Dst, rng, 0);
    let random = setup_info(t, id, snat, Manip::Src, rng, 0).random;
    let reply = t.get(id).tuple[1];
    let ok = t.confirm(id, 0).is_ok();
    (reply, random, ok)
}

/// Clients that clash on their source port (four a port) towards two servers.
fn clashing_flows() -> Vec<(u32, u16, u32)> {
    let mut v = Vec::new();
    for i in 0..240u32 {
        let client = ip("10.0.0.2") + i;
        let sport = 20000 + (i / 4) as u16 + if i % 7 == 0 { 0 } else { 1000 };
        v.push((client, sport, ip("203.0.113.1") + i % 2));
    }
    v
}

#[test]
fn an_empty_reply_filter_keeps_the_kernels_choices() {
    let masq = masquerade_range(&NatRange::default(), Some(ip("192.0.2.1"))).unwrap();
    let (mut a, mut b) = (table(), table());
    let mut plain = Rng(31);
    let mut steered = Steered::new(Rng(31));
    let mut moved = 0;
    for (c, p, s) in clashing_flows() {
        let x = flow_with(&mut a, c, p, s, &masq, &mut plain);
        let y = flow_with(&mut b, c, p, s, &masq, &mut steered);
        assert_eq!(x, y);
        moved += usize::from(x.1);
    }
    assert!(moved > 50, "{moved}");
}

#[test]
fn a_reply_filter_picks_only_fitting_ports() {
    // A sharded engine's filter: replies to port ≡ 1 (mod 3) stay on this shard.
    let masq = masquerade_range(&NatRange::default(), Some(ip("192.0.2.1"))).unwrap();
    let mut t = table();
    let mut rng = Steered::new(Rng(37));
    rng.fits = Some(Box::new(|r: &Tuple| r.dst_l4 % 3 == 1));
    let mut kept = 0;
    for (c, p, s) in clashing_flows() {
        let (reply, random, ok) = flow_with(&mut t, c, p, s, &masq, &mut rng);
        assert!(ok);
        assert_eq!(reply.dst_l4 % 3, 1, "{reply:?}");
        assert!(reply.dst_l4 >= 1024);
        if reply.dst_l4 == p {
            assert!(!random);
            kept += 1;
        }
    }
    // A fitting free port is still kept, as the kernel keeps it.
    assert!(kept > 20, "{kept}");
    // A port range: the search passes over non-fitting ports and stays inside the range.
    let r = NatRange::addr(ip("192.0.2.9")).with_ports(30000, 30011);
    let mut ports = Vec::new();
    for i in 0..4u32 {
        let (reply, _, ok) = flow_with(
            &mut t,
            ip("10.1.0.1") + i,
            5000,
            ip("203.0.113.7"),
            &r,
            &mut rng,
        );
        assert!(ok);
        ports.push(reply.dst_l4);
    }
    ports.sort();
    assert_eq!(ports, vec![30001, 30004, 30007, 30010]);
    // The range is full of fitting ports: the next flow clashes at confirm as the kernel's would.
    let (_, _, ok) = flow_with(
        &mut t,
        ip("10.1.0.9"),
        5000,
        ip("203.0.113.7"),
        &r,
        &mut rng,
    );
    assert!(!ok);
}

#[test]
fn a_filter_no_port_satisfies_falls_back_to_the_kernels_choice() {
    let mut t = table();
    let mut rng = Steered::new(Rng(41));
    rng.fits = Some(Box::new(|r: &Tuple| r.dst_l4 == 7));
    // One port, not fitting: kept (no choice).
    let one = NatRange::addr(ip("192.0.2.9")).with_ports(30000, 30000);
    let (reply, _, ok) = flow_with(
        &mut t,
        ip("10.1.0.1"),
        5000,
        ip("203.0.113.7"),
        &one,
        &mut rng,
    );
    assert!(ok);
    assert_eq!(reply.dst_l4, 30000);
    // Several ports, none fitting: the unfiltered search still finds a free one.
    let r = NatRange::addr(ip("192.0.2.9")).with_ports(31000, 31003);
    for i in 0..4u32 {
        let (reply, _, ok) = flow_with(
            &mut t,
            ip("10.2.0.1") + i,
            5000,
            ip("203.0.113.7"),
            &r,
            &mut rng,
        );
        assert!(ok);
        assert!((31000..=31003).contains(&reply.dst_l4));
    }
}
