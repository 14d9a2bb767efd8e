//! Flow-sharded engines (`nfrs_engine::shard`) against one engine: random MASQUERADE gateway
//! traffic (TCP, UDP and ICMP echo flows from the LAN, their replies, unsolicited packets from
//! the WAN) gives the same events per packet, except that the NAT port or ICMP id may differ;
//! every reply steers to the shard that owns its connection; connection counts are equal.

use std::collections::HashMap;
use std::path::Path;

use nfrs_engine::engine::{Engine, Ev};
use nfrs_engine::host::HostNet;
use nfrs_engine::shard::{Sharded, Steering};
use nfrs_wire::build::{build_frame, FrameCtx};
use nfrs_wire::ethernet::MacAddr;
use nfrs_wire::line::PacketSpec;
use proptest::prelude::*;

const RULES: &str = "*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A FORWARD -i lan0 -o wan0 -j ACCEPT\nCOMMIT\n";

/// TCP to a foreign address's port range, UDP to a range of the gateway's, the rest MASQUERADE.
const SNAT_RULES: &str = "*nat\n-A POSTROUTING -o wan0 -p tcp -j SNAT --to-source 192.0.2.77:20000-20099\n-A POSTROUTING -o wan0 -p udp -j SNAT --to-source 192.0.2.1:20000-20099\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A FORWARD -i lan0 -o wan0 -j ACCEPT\nCOMMIT\n";

const WAN: &str = "192.0.2.1";

fn setup() -> (HostNet, nfrs_rules::Ruleset, Vec<(String, String)>) {
    setup_with(RULES)
}

fn setup_with(rules: &str) -> (HostNet, nfrs_rules::Ruleset, Vec<(String, String)>) {
    let text = format!(
        "description = \"sharded gateway\"\nrules = '''\n{rules}'''\npackets = '''\n'''\n\n[sysctl]\n\"net.ipv4.ip_forward\" = 1\n\n[[interface]]\nname = \"lan0\"\naddress = \"10.0.0.1/8\"\n\n[[interface]]\nname = \"wan0\"\naddress = \"{WAN}/24\"\n\n[[route]]\nto = \"default\"\nvia = \"192.0.2.254\"\ndev = \"wan0\"\n"
    );
    let sc = nfrs_scenario::parse(&text, Path::new("<shard test>")).unwrap();
    let rs = nfrs_rules::restore::restore_new(&sc.rules, &Default::default()).unwrap();
    let host = HostNet::new(&sc.host).unwrap();
    (host, rs, sc.host.effective_sysctls())
}

fn frame(host: &HostNet, dev: usize, spec: &str) -> (Vec<u8>, [u8; 14]) {
    let spec = PacketSpec::parse(spec).unwrap();
    let ctx = FrameCtx {
        src_mac: MacAddr([2, 0, 0, 0, 1, dev as u8 + 1]),
        dst_mac: MacAddr(host.ifaces()[dev].mac),
        ip_id: 1,
        allow_masked: false,
    };
    let f = build_frame(&spec, &ctx).unwrap();
    let mut mac = [0u8; 14];
    mac.copy_from_slice(&f[..14]);
    (f[14..].to_vec(), mac)
}

/// An event with what NAT may choose differently masked: out of wan0, the source port (ICMP:
/// the id) and the L4 checksum; host-made packets (random IP ids) only by device and protocol.
fn norm(e: &Ev, wan: usize) -> String {
    match e {
        Ev::Out { dev, ip, host } => {
            if *host {
                return format!("host out {dev} proto {}", ip[9]);
            }
            let mut b = ip.clone();
            let off = usize::from(b[0] & 0x0f) * 4;
            if *dev == wan && b.len() >= off + 8 {
                match b[9] {
                    6 => {
                        b[off..off + 2].fill(0);
                        b[off + 16..off + 18].fill(0);
                    }
                    17 => {
                        b[off..off + 2].fill(0);
                        b[off + 6..off + 8].fill(0);
                    }
                    1 => {
                        b[off + 2..off + 6].fill(0);
                    }
                    _ => {}
                }
            }
            format!("out {dev} {b:02x?}")
        }
        other => format!("{other:?}"),
    }
}

/// The NAT address and port (ICMP: id) of a packet that left wan0.
fn nat_key(ip: &[u8]) -> (std::net::Ipv4Addr, u16) {
    let off = usize::from(ip[0] & 0x0f) * 4;
    let a = std::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    if ip[9] == 1 {
        (a, u16::from_be_bytes([ip[off + 4], ip[off + 5]]))
    } else {
        (a, u16::from_be_bytes([ip[off], ip[off + 1]]))
    }
}

#[derive(Clone, Debug)]
struct Flow {
    proto: u8,
    client: u8,
    cport: u16,
    server: u8,
    sport: u16,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    /// The flow's next packet from the client.
    Out(usize),
    /// The server's next packet back to what left wan0.
    Back(usize),
    /// An unsolicited packet from the WAN to the gateway (port, TCP or UDP).
    Probe(u16, bool),
    /// The server's ICMP port unreachable quoting the flow's first packet as it left wan0.
    Unreach(usize),
}

fn flow_strategy() -> impl Strategy<Value = Flow> {
    (
        prop_oneof![Just(6u8), Just(17u8), Just(1u8)],
        0u8..6,
        prop_oneof![Just(1024u16), Just(5000), Just(40000), Just(53), Just(700)],
        0u8..3,
        prop_oneof![Just(80u16), Just(443), Just(53)],
    )
        .prop_map(|(proto, client, cport, server, sport)| Flow {
            proto,
            client,
            cport,
            server,
            sport,
        })
}

fn spec_out(f: &Flow, n: u32) -> String {
    let (c, s) = (
        format!("10.0.1.{}", f.client + 2),
        format!("203.0.113.{}", f.server + 1),
    );
    match f.proto {
        6 if n == 0 => format!(
            "tcp {c}:{} > {s}:{} flags=S seq=100 win=64240",
            f.cport, f.sport
        ),
        6 => format!(
            "tcp {c}:{} > {s}:{} flags=A seq=101 ack=901 win=64240",
            f.cport, f.sport
        ),
        17 => format!("udp {c}:{} > {s}:{} len=8", f.cport, f.sport),
        _ => format!("icmp {c} > {s} type=8 code=0 id={} seq={}", f.cport, n + 1),
    }
}

fn spec_back(f: &Flow, (nat, key): (std::net::Ipv4Addr, u16), n: u32) -> String {
    let s = format!("203.0.113.{}", f.server + 1);
    match f.proto {
        6 if n == 0 => format!(
            "tcp {s}:{} > {nat}:{key} flags=SA seq=900 ack=101 win=65160",
            f.sport
        ),
        6 => format!(
            "tcp {s}:{} > {nat}:{key} flags=A seq=901 ack=101 win=65160",
            f.sport
        ),
        17 => format!("udp {s}:{} > {nat}:{key} len=8", f.sport),
        _ => format!("icmp {s} > {nat} type=0 code=0 id={key} seq={}", n + 1),
    }
}

fn spec_unreach(f: &Flow, (nat, key): (std::net::Ipv4Addr, u16)) -> String {
    let s = format!("203.0.113.{}", f.server + 1);
    let inner = match f.proto {
        6 => format!(
            "tcp {nat}:{key} > {s}:{} flags=S seq=100 win=64240",
            f.sport
        ),
        17 => format!("udp {nat}:{key} > {s}:{} len=8", f.sport),
        _ => format!("icmp {nat} > {s} type=8 code=0 id={key} seq=1"),
    };
    format!("icmp {s} > {nat} type=3 code=3 inner=\"{inner}\"")
}

/// Per flow and system: how many packets each way, the NAT key seen, the owning shard.
#[derive(Default, Clone)]
struct Seen {
    outs: u32,
    backs: u32,
    key: Option<(std::net::Ipv4Addr, u16)>,
    key_sharded: Option<(std::net::Ipv4Addr, u16)>,
    owner: Option<usize>,
}

/// Runs `ops` through one engine and `n` shards; returns how many replies and how many ICMP
/// errors the sharded set forwarded to the LAN.
fn run(n: usize, flows: &[Flow], ops: &[Op]) -> Result<(usize, usize), TestCaseError> {
    run_with(RULES, n, flows, ops)
}

fn run_with(
    rules: &str,
    n: usize,
    flows: &[Flow],
    ops: &[Op],
) -> Result<(usize, usize), TestCaseError> {
    let mut home = (0, 0);
    let (host, rs, sys) = setup_with(rules);
    let mut one = Engine::new(host.clone(), rs.clone(), &sys).unwrap();
    let mut many = Sharded::new(&host, &rs, &sys, n).unwrap();
    let (lan, wan) = (host.dev("lan0").unwrap(), host.dev("wan0").unwrap());
    let mut seen: HashMap<usize, Seen> = HashMap::new();
    let mut now = 1_000_000_000u64;
    for op in ops {
        now += 1_000_000;
        let (single_pkt, sharded_pkt, dev, back_of) = match *op {
            Op::Out(i) => {
                let s = seen.entry(i).or_default();
                let spec = spec_out(&flows[i], s.outs);
                s.outs += 1;
                let p = frame(&host, lan, &spec);
                (p.clone(), p, lan, None)
            }
            Op::Back(i) => {
                let s = seen.entry(i).or_default();
                let (Some(k1), Some(k2)) = (s.key, s.key_sharded) else {
                    continue;
                };
                let a = frame(&host, wan, &spec_back(&flows[i], k1, s.backs));
                let b = frame(&host, wan, &spec_back(&flows[i], k2, s.backs));
                s.backs += 1;
                (a, b, wan, Some(i))
            }
            Op::Unreach(i) => {
                let s = seen.entry(i).or_default();
                let (Some(k1), Some(k2)) = (s.key, s.key_sharded) else {
                    continue;
                };
                let a = frame(&host, wan, &spec_unreach(&flows[i], k1));
                let b = frame(&host, wan, &spec_unreach(&flows[i], k2));
                (a, b, wan, Some(i))
            }
            Op::Probe(port, tcp) => {
                let spec = if tcp {
                    format!("tcp 198.51.100.7:4000 > {WAN}:{port} flags=S seq=5 win=512")
                } else {
                    format!("udp 198.51.100.7:4000 > {WAN}:{port} len=8")
                };
                let p = frame(&host, wan, &spec);
                (p.clone(), p, wan, None)
            }
        };
        one.receive(dev, single_pkt.0, single_pkt.1, now);
        let k = many.shard_of(&sharded_pkt.0);
        if let Some(i) = back_of {
            if let Some(owner) = seen[&i].owner {
                prop_assert_eq!(k, owner, "reply of flow {} left its shard", i);
            }
        }
        prop_assert_eq!(many.receive(dev, sharded_pkt.0, sharded_pkt.1, now), k);
        let a: Vec<String> = one.events.iter().map(|e| norm(e, wan)).collect();
        let b: Vec<String> = many.shards[k].events.iter().map(|e| norm(e, wan)).collect();
        prop_assert_eq!(&a, &b, "{:?}", op);
        for (j, e) in many.shards.iter().enumerate() {
            prop_assert!(j == k || e.events.is_empty());
        }
        let to_lan =
            matches!(many.shards[k].events.as_slice(), [Ev::Out { dev, .. }] if *dev == lan);
        match op {
            Op::Back(_) if to_lan => home.0 += 1,
            Op::Unreach(_) if to_lan => home.1 += 1,
            _ => {}
        }
        if let Op::Out(i) = *op {
            let s = seen.get_mut(&i).unwrap();
            if let (Some(Ev::Out { ip: x, .. }), Some(Ev::Out { ip: y, .. })) =
                (one.events.first(), many.shards[k].events.first())
            {
                if s.key.is_none() {
                    s.key = Some(nat_key(x));
                    s.key_sharded = Some(nat_key(y));
                    s.owner = Some(k);
                }
            }
        }
        one.events.clear();
        many.shards[k].events.clear();
    }
    // Listings expire what is due (counts are lazy until then).
    let single = one.conntrack_listing(now).len();
    prop_assert_eq!(single, many.conntrack_listing(now).len());
    prop_assert_eq!(single as u32, many.conntrack_count());
    prop_assert_eq!(many.misplaced(), 0);
    Ok(home)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn sharded_gateway_matches_one_engine(
        flows in prop::collection::vec(flow_strategy(), 1..24),
        picks in prop::collection::vec((any::<prop::sample::Index>(), 0u8..9, 1u16..2000, any::<bool>()), 1..160),
    ) {
        let ops: Vec<Op> = picks
            .iter()
            .map(|(ix, kind, port, tcp)| match kind {
                0..=3 => Op::Out(ix.index(flows.len())),
                4..=6 => Op::Back(ix.index(flows.len())),
                7 => Op::Unreach(ix.index(flows.len())),
                _ => Op::Probe(*port, *tcp),
            })
            .collect();
        run(2, &flows, &ops)?;
        run(3, &flows, &ops)?;
        // SNAT port ranges, one of them to an address the host does not own.
        run_with(SNAT_RULES, 2, &flows, &ops)?;
        run_with(SNAT_RULES, 3, &flows, &ops)?;
    }
}

#[test]
fn many_clients_one_port_stay_on_their_shards() {
    // 200 clients with the same source port to one server: half of the kernel's kept ports
    // would send replies to the wrong shard; the sharded choice keeps them all home.
    let flows: Vec<Flow> = (0..200)
        .map(|i| Flow {
            proto: if i % 3 == 0 { 17 } else { 6 },
            client: (i % 250) as u8,
            cport: 5000,
            server: 0,
            sport: 443,
        })
        .collect();
    let mut ops = Vec::new();
    for i in 0..flows.len() {
        ops.extend([
            Op::Out(i),
            Op::Back(i),
            Op::Out(i),
            Op::Back(i),
            Op::Unreach(i),
        ]);
    }
    // Every flow's two replies and its ICMP error (RELATED, translated with its quoted
    // header) reach the client on the shard that holds the connection.
    assert_eq!(run(2, &flows, &ops).unwrap(), (400, 200));
    assert_eq!(run(4, &flows, &ops).unwrap(), (400, 200));
}

#[test]
fn steering_is_symmetric_and_sends_nat_replies_by_port() {
    let (host, rs, _) = setup();
    let s = Steering::for_host(4, &host, &rs);
    let lan = host.dev("lan0").unwrap();
    let wan = host.dev("wan0").unwrap();
    let mut hit = [0usize; 4];
    for c in 2..200u32 {
        let a = frame(
            &host,
            lan,
            &format!("udp 10.0.3.{c}:999 > 10.0.9.1:53 len=8"),
        )
        .0;
        let b = frame(
            &host,
            lan,
            &format!("udp 10.0.9.1:53 > 10.0.3.{c}:999 len=8"),
        )
        .0;
        assert_eq!(s.shard_of(&a), s.shard_of(&b));
        hit[s.shard_of(&a)] += 1;
    }
    assert!(hit.iter().all(|&h| h > 20), "{hit:?}");
    // To the NAT address: the destination port moves the shard one step at a time.
    let to = |p: u16| {
        s.shard_of(
            &frame(
                &host,
                wan,
                &format!("tcp 203.0.113.9:443 > {WAN}:{p} flags=A seq=1 ack=1 win=9"),
            )
            .0,
        )
    };
    for p in 1024..1100u16 {
        assert_eq!(to(p + 1), (to(p) + 1) % 4);
    }
    // An ICMP error goes where the packet it quotes would go back.
    let quoted = frame(
        &host,
        wan,
        &format!("tcp {WAN}:1030 > 203.0.113.9:443 flags=A seq=1 ack=1 win=9"),
    )
    .0;
    let mut err = vec![0u8; 8];
    err[0] = 3;
    err[1] = 3;
    err.extend_from_slice(&quoted[..28]);
    let mut ip = quoted[..20].to_vec();
    ip[9] = 1;
    ip[12..16].copy_from_slice(&[203, 0, 113, 9]);
    ip[16..20].copy_from_slice(&[192, 0, 2, 1]);
    let total = (20 + err.len()) as u16;
    ip[2..4].copy_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&err);
    assert_eq!(s.shard_of(&ip), to(1030));
    // Fragments go by addresses, as do protocols without ports (these to shard 0).
    let mut frag = frame(&host, lan, "udp 10.0.3.7:1 > 10.0.9.1:2 len=8").0;
    let whole = frag.clone();
    frag[6] = 0x20;
    let mut other = frag.clone();
    other[20..24].copy_from_slice(&[9, 9, 9, 9]);
    assert_eq!(s.shard_of(&frag), s.shard_of(&other));
    let _ = whole;
    let mut gre = frame(&host, lan, "udp 10.0.3.7:1 > 10.0.9.1:2 len=8").0;
    gre[9] = 47;
    assert_eq!(s.shard_of(&gre), 0);
    // One shard: everything on it.
    assert_eq!(Steering::new(1).shard_of(&ip), 0);
}

#[test]
fn shards_are_send() {
    fn send<T: Send>() {}
    send::<Engine>();
    send::<Sharded>();
}

#[test]
fn dnat_port_forwards_keep_the_kernels_ports_and_are_counted_when_misplaced() {
    // A port forward: the client's source port is kept as one engine keeps it (the shard
    // filter never moves a port that cannot change the steering); replies steered by
    // addresses land on the owner shard only by chance, and misplaced() says how many do not.
    let text = format!(
        "description = \"port forward\"\nrules = '''\n*nat\n-A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80\nCOMMIT\n'''\npackets = '''\n'''\n\n[sysctl]\n\"net.ipv4.ip_forward\" = 1\n\n[[interface]]\nname = \"lan0\"\naddress = \"10.0.0.1/8\"\n\n[[interface]]\nname = \"wan0\"\naddress = \"{WAN}/24\"\n\n[[route]]\nto = \"default\"\nvia = \"192.0.2.254\"\ndev = \"wan0\"\n"
    );
    let sc = nfrs_scenario::parse(&text, Path::new("<shard test>")).unwrap();
    let rs = nfrs_rules::restore::restore_new(&sc.rules, &Default::default()).unwrap();
    let host = HostNet::new(&sc.host).unwrap();
    let sys = sc.host.effective_sysctls();
    let wan = host.dev("wan0").unwrap();
    let mut one = Engine::new(host.clone(), rs.clone(), &sys).unwrap();
    let mut many = Sharded::new(&host, &rs, &sys, 2).unwrap();
    let mut misplaced = 0;
    for i in 0..64u32 {
        let spec = format!(
            "tcp 198.51.100.{}:{} > {WAN}:8080 flags=S seq=1 win=512",
            i % 16 + 1,
            30000 + i
        );
        let (ip, mac) = frame(&host, wan, &spec);
        one.receive(wan, ip.clone(), mac, 1_000_000_000 + u64::from(i));
        let k = many.receive(wan, ip, mac, 1_000_000_000 + u64::from(i));
        assert_eq!(one.events, many.shards[k].events, "{spec}");
        let reply = frame(
            &host,
            host.dev("lan0").unwrap(),
            &format!(
                "tcp 10.0.0.5:80 > 198.51.100.{}:{} flags=SA seq=1 ack=2 win=512",
                i % 16 + 1,
                30000 + i
            ),
        );
        misplaced += usize::from(many.shard_of(&reply.0) != k);
        one.events.clear();
        many.shards[k].events.clear();
    }
    assert!(misplaced > 0);
    assert_eq!(many.misplaced(), misplaced);
}

#[test]
fn host_sent_connections_keep_their_port_and_replies_come_home() {
    // A local process connects out: its packet runs on the shard of its replies, so the
    // POSTROUTING null binding keeps the host's port (as one engine does) and the reply,
    // steered by that port, reaches the same shard and is delivered locally.
    let (host, rs, sys) = setup();
    let wan = host.dev("wan0").unwrap();
    let mut one = Engine::new(host.clone(), rs.clone(), &sys).unwrap();
    let mut many = Sharded::new(&host, &rs, &sys, 3).unwrap();
    let mut homes = [0usize; 3];
    for i in 0..60u16 {
        let out = frame(
            &host,
            wan,
            &format!("udp {WAN}:{} > 203.0.113.{}:53 len=8", 40000 + i, i % 7 + 1),
        )
        .0;
        one.send_host(out.clone(), None, 1_000_000_000, false);
        let k = many.send_host(out, 1_000_000_000);
        homes[k] += 1;
        let a: Vec<String> = one.events.iter().map(|e| norm(e, usize::MAX)).collect();
        let b: Vec<String> = many.shards[k]
            .events
            .iter()
            .map(|e| norm(e, usize::MAX))
            .collect();
        assert_eq!(a, b);
        one.events.clear();
        many.shards[k].events.clear();
        let back = frame(
            &host,
            wan,
            &format!("udp 203.0.113.{}:53 > {WAN}:{} len=8", i % 7 + 1, 40000 + i),
        );
        assert_eq!(many.receive(wan, back.0, back.1, 1_000_000_100), k);
        assert!(
            matches!(many.shards[k].events.first(), Some(Ev::Local { .. })),
            "{:?}",
            many.shards[k].events
        );
        many.shards[k].events.clear();
    }
    assert!(homes.iter().all(|&h| h > 5), "{homes:?}");
    assert_eq!(many.misplaced(), 0);
    // Each reply found its connection (none created a second one) and marked it replied.
    let list = many.conntrack_listing(1_000_000_200);
    assert_eq!(list.len(), 60);
    assert!(list.iter().all(|l| !l.contains("UNREPLIED")), "{list:?}");
}

#[test]
fn one_shard_is_exactly_one_engine() {
    // N = 1 sets no filter: NAT ports, ids and listings are the kernel's choices, unmasked.
    let (host, rs, sys) = setup();
    let (lan, wan) = (host.dev("lan0").unwrap(), host.dev("wan0").unwrap());
    let mut one = Engine::new(host.clone(), rs.clone(), &sys).unwrap();
    let mut set = Sharded::new(&host, &rs, &sys, 1).unwrap();
    for i in 0..120u32 {
        let f = Flow {
            proto: [6, 17, 1][i as usize % 3],
            client: (i % 40) as u8,
            cport: 5000,
            server: (i % 2) as u8,
            sport: 443,
        };
        let (ip, mac) = frame(&host, lan, &spec_out(&f, 0));
        one.receive(lan, ip.clone(), mac, 1_000_000_000);
        assert_eq!(set.receive(lan, ip, mac, 1_000_000_000), 0);
        assert_eq!(one.events, set.shards[0].events);
        if let Some(Ev::Out { ip, .. }) = one.events.first() {
            let (ip, mac) = frame(&host, wan, &spec_back(&f, nat_key(ip), 0));
            one.events.clear();
            set.shards[0].events.clear();
            one.receive(wan, ip.clone(), mac, 1_000_000_000);
            set.receive(wan, ip, mac, 1_000_000_000);
            assert_eq!(one.events, set.shards[0].events);
        }
        one.events.clear();
        set.shards[0].events.clear();
    }
    assert_eq!(
        one.conntrack_listing(1_000_000_000),
        set.conntrack_listing(1_000_000_000)
    );
    assert_eq!(one.randoms, set.shards[0].randoms);
    assert!(!one.randoms.is_empty());
}
