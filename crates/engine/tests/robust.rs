//! Bad input never panics: mutated and random frames (and packets the host sends) through a
//! gateway whose ruleset exercises every hook, conntrack, NAT, LOG and REJECT.

use proptest::prelude::*;

const SCENARIO: &str = r#"
description = "robustness"
rules = '''
*raw
-A PREROUTING -p udp --dport 7 -j LOG --log-prefix "raw " --log-tcp-options --log-ip-options
COMMIT
*mangle
-A PREROUTING -j MARK --set-mark 1
COMMIT
*nat
-A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
-A INPUT -p tcp --dport 23 -j REJECT --reject-with tcp-reset
-A INPUT -p udp --dport 69 -j REJECT
-A FORWARD -m state --state INVALID -j LOG --log-prefix "inv " --log-tcp-sequence
-A FORWARD -p tcp -m multiport --dports 25,26 -j REJECT --reject-with tcp-reset
-A FORWARD -p icmp --icmp-type echo-request -j LOG
-A FORWARD -p udp --dport 53 -j REJECT --reject-with icmp-net-prohibited
COMMIT
'''
packets = '''
0.00 lan0 udp 10.0.0.2:1 > 10.0.0.1:2 len=1
'''

[sysctl]
"net.ipv4.ip_forward" = 1

[[listen]]
proto = "tcp"
port = 22

[[interface]]
name = "lan0"
address = "10.0.0.1/24"

[[interface]]
name = "wan0"
address = "192.0.2.1/24"
mtu = 300

[[route]]
to = "default"
via = "192.0.2.254"
dev = "wan0"
"#;

const SEEDS: &[&str] = &[
    "tcp 10.0.0.2:40000 > 203.0.113.9:25 flags=S seq=1 win=5 mss=1460 sackok ts=1/0 wscale=7",
    "tcp 10.0.0.2:40000 > 10.0.0.1:22 flags=S seq=1 win=5 mss=1460 sackok ts=1/0 wscale=7",
    "udp 10.0.0.2:5000 > 203.0.113.9:53 len=400",
    "udp 10.0.0.2:5000 > 10.0.0.1:69 ipopts=070b04000000000000000000 len=8",
    "icmp 10.0.0.2 > 203.0.113.9 type=8 code=0 id=1 seq=1 len=500",
    "icmp 203.0.113.9 > 192.0.2.1 type=3 code=3 inner=\"udp 192.0.2.1:5000 > 203.0.113.9:53 len=4\"",
    "tcp 10.0.0.2:1 > 203.0.113.9:2 id=7 mf len=16",
    "udp 10.0.0.2 > 203.0.113.9 id=7 frag=16 len=16",
];

fn engine() -> (nfrs_engine::engine::Engine, Vec<Vec<u8>>) {
    let sc = nfrs_scenario::parse(SCENARIO, std::path::Path::new("<inline>")).unwrap();
    let eng = nfrs_engine::replay::engine_for(&sc).unwrap();
    let seeds = SEEDS
        .iter()
        .map(|s| {
            let spec = nfrs_wire::line::PacketSpec::parse(s).unwrap();
            nfrs_wire::build::build_frame(&spec, &Default::default()).unwrap()
        })
        .collect();
    (eng, seeds)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn mutated_frames_never_panic(
        picks in proptest::collection::vec((0usize..8, 0usize..2, proptest::collection::vec((0usize..600, any::<u8>()), 0..6), 0usize..700), 1..12)
    ) {
        let (mut eng, seeds) = engine();
        let mut now = 0u64;
        for (k, dev, flips, cut) in picks {
            let mut f = seeds[k].clone();
            for (at, v) in flips {
                if !f.is_empty() {
                    let n = f.len();
                    f[at % n] = v;
                }
            }
            f.truncate(cut.max(14));
            now += 1_000_000;
            eng.events.clear();
            if f.len() >= 14 && f[12..14] == [8, 0] {
                let mut mac = [0u8; 14];
                mac.copy_from_slice(&f[..14]);
                mac[..6].copy_from_slice(&eng.host.ifaces()[dev].mac);
                eng.receive(dev, f[14..].to_vec(), mac, now);
            }
            if let Ok(p) = nfrs_engine::pkt::PktCtx::new(f[14.min(f.len())..].to_vec()) {
                eng.local_out(p);
            }
        }
        let _ = eng.conntrack_listing(now);
    }
}
