//! The hot path allocates nothing: established TCP flows through a MASQUERADE gateway with a
//! stateful FORWARD filter (both directions, conntrack and NAT on every packet), counted with
//! a counting global allocator once the connection and the engine's buffers are warm.

#[path = "common/counting.rs"]
mod counting;
use counting::allocs;

#[global_allocator]
static A: counting::Counting = counting::Counting;

const SCENARIO: &str = r#"
description = "gateway"
rules = '''
*nat
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -j ACCEPT
COMMIT
'''
packets = '''
0.00 lan0 tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=S seq=100 win=64240
0.01 wan0 tcp 203.0.113.9:443 > 192.0.2.1:40000 flags=SA seq=900 ack=101 win=65160
0.02 lan0 tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=A seq=101 ack=901 win=502
0.03 wan0 tcp 203.0.113.9:443 > 192.0.2.1:40000 flags=A seq=901 ack=101 win=509
'''

[sysctl]
"net.ipv4.ip_forward" = 1

[[interface]]
name = "lan0"
address = "10.0.0.1/24"

[[interface]]
name = "wan0"
address = "192.0.2.1/24"

[[route]]
to = "default"
via = "192.0.2.254"
dev = "wan0"
"#;

/// Replays `scenario`'s first three packets (the handshake), then its packets 3 and 4 (one each
/// way) 10 000 times recycling one buffer, and counts allocations during that steady state.
fn steady_state_allocations(scenario: &str) -> usize {
    let sc = nfrs_scenario::parse(scenario, std::path::Path::new("<inline>")).unwrap();
    let mut eng = nfrs_engine::replay::engine_for(&sc).unwrap();
    let mut frames = Vec::new();
    for (i, l) in sc.packet_lines().iter().enumerate() {
        let dev = eng.host.dev(&l.parsed.dev).unwrap();
        let ctx = nfrs_wire::build::FrameCtx {
            ip_id: (i + 1) as u16,
            dst_mac: nfrs_wire::ethernet::MacAddr(eng.host.ifaces()[dev].mac),
            ..Default::default()
        };
        let f = nfrs_wire::build::build_frame(&l.parsed.spec, &ctx).unwrap();
        let mut mac = [0u8; 14];
        mac.copy_from_slice(&f[..14]);
        frames.push((dev, mac, f[14..].to_vec()));
    }
    // Handshake: creates the connection and its NAT binding.
    let mut now = 0u64;
    for (dev, mac, ip) in &frames[..3] {
        now += 10_000_000;
        eng.events.clear();
        eng.receive(*dev, ip.clone(), *mac, now);
        assert_eq!(eng.events.len(), 1, "forwarded");
    }
    // Established traffic both ways, recycling one buffer.
    let mut buf: Vec<u8> = Vec::with_capacity(2048);
    let mut run = |n: usize, eng: &mut nfrs_engine::engine::Engine, now: &mut u64| {
        for k in 0..n {
            let (dev, mac, ip) = &frames[2 + (k % 2)];
            *now += 1_000_000;
            eng.events.clear();
            buf.clear();
            buf.extend_from_slice(ip);
            eng.receive(*dev, std::mem::take(&mut buf), *mac, *now);
            match eng.events.pop() {
                Some(nfrs_engine::engine::Ev::Out { ip, .. }) => buf = ip,
                other => panic!("not forwarded: {other:?}"),
            }
        }
    };
    run(100, &mut eng, &mut now);
    let before = allocs();
    run(10_000, &mut eng, &mut now);
    allocs() - before
}

#[test]
fn established_flow_through_nat_gateway_allocates_nothing() {
    assert_eq!(
        steady_state_allocations(SCENARIO),
        0,
        "allocations on the hot path"
    );
}

/// A transparent bridge (FAQ 3.3) with a stateful FORWARD filter: learned unicast frames are
/// bridged with the packet itself, no copy and no port list.
const BRIDGE: &str = r#"
description = "bridge"
rules = '''
*filter
:FORWARD DROP [0:0]
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -m physdev --physdev-in lan0 -j ACCEPT
COMMIT
'''
packets = '''
0.00 lan0 tcp 10.0.0.2:40000 > 10.0.0.3:443 flags=S seq=100 win=64240 smac=02:00:00:00:01:01 dmac=02:00:00:00:01:02
0.01 lan1 tcp 10.0.0.3:443 > 10.0.0.2:40000 flags=SA seq=900 ack=101 win=65160 smac=02:00:00:00:01:02 dmac=02:00:00:00:01:01
0.02 lan0 tcp 10.0.0.2:40000 > 10.0.0.3:443 flags=A seq=101 ack=901 win=502 smac=02:00:00:00:01:01 dmac=02:00:00:00:01:02
0.03 lan1 tcp 10.0.0.3:443 > 10.0.0.2:40000 flags=A seq=901 ack=101 win=509 smac=02:00:00:00:01:02 dmac=02:00:00:00:01:01
'''

[[interface]]
name = "lan0"

[[interface]]
name = "lan1"

[[bridge]]
name = "br0"
ports = ["lan0", "lan1"]
address = "10.0.0.1/24"
"#;

#[test]
fn established_flow_across_a_bridge_allocates_nothing() {
    assert_eq!(
        steady_state_allocations(BRIDGE),
        0,
        "allocations on the bridged path"
    );
}
