//! The classifier of long chains (`nfrs_engine::classify`) changes nothing a packet meets:
//! random rulesets (addresses with masks and `!`, protocols, interfaces, `-f`, ports, jumps,
//! gotos, RETURN, LOG, comments, tcp/udp port and flag tests, and stateful matches: limit,
//! statistic nth, recent) walked by random packets (later fragments and cut-short headers too)
//! give the same verdicts, endings, matched-rule paths, log lines, counters and match state
//! with every chain classified (and rules decided from their hot records: port tests, comments
//! skipped) as with the plain walk, every rule visited and every match run.
//! The classified table also lays its chains out in walk order (`table::chain_order`), the
//! plain one in source order: the two are compared by rule names (chain and number), never by
//! index, over random jump graphs (chains called from several rules, in any source order,
//! gotos, RETURNs), so a layout that moved a rule or a counter fails here.

#[path = "common/side.rs"]
mod side;
use nfrs_engine::classify::ClassifyOpts;
use nfrs_engine::pkt::{IfName, PktCtx};
use nfrs_wire::build::{build_ipv4, FrameCtx};
use nfrs_wire::line::PacketSpec;
use proptest::prelude::*;
use side::Side;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// An address from a small pool, so that rules and packets meet.
fn addr(r: &mut Rng) -> String {
    match r.below(8) {
        0 => format!("192.168.{}.{}", r.below(2), r.below(4)),
        _ => format!("10.{}.{}.{}", r.below(2), r.below(4), r.below(8)),
    }
}

fn prefix(r: &mut Rng) -> String {
    let a = addr(r);
    match r.below(8) {
        0 => format!("{a}/255.0.255.0"),
        1 => format!("{a}/8"),
        2 => format!("{a}/16"),
        3 => format!("{a}/24"),
        4 => format!("{a}/30"),
        _ => format!("{a}/32"),
    }
}

const CHAINS: [&str; 7] = ["INPUT", "u0", "u1", "u2", "u3", "u4", "u5"];

/// One rule of the chain at `rank` in `ranked` (jumps only go to chains ranked later: no
/// loops; the ranking is a random order of the user chains, so a chain may call one before
/// it in source order, and one chain is called from several rules and chains).
fn rule(r: &mut Rng, ranked: &[usize], rank: usize) -> String {
    let c = ranked[rank];
    let mut s = format!("-A {}", CHAINS[c]);
    let not = |r: &mut Rng| if r.below(5) == 0 { "! " } else { "" };
    if r.below(3) > 0 {
        s += &format!(" {}-s {}", not(r), prefix(r));
    }
    if r.below(3) > 0 {
        s += &format!(" {}-d {}", not(r), prefix(r));
    }
    let frag = r.below(12) == 0;
    let mut proto = "";
    if r.below(2) == 0 {
        proto = r.pick(&["tcp", "udp", "icmp"]);
        s += &format!(" {}-p {proto}", not(r));
        if s.contains("! -p") {
            proto = "";
        }
    }
    if r.below(4) == 0 {
        let i = r.pick(&["lan0", "lan+", "wan0"]);
        s += &format!(" {}-i {i}", not(r));
    }
    if r.below(4) == 0 {
        // Comments always match: a port test after them is still the rule's first test.
        s += &format!(" -m comment --comment c{}", r.below(10));
    }
    if frag {
        s += &format!(" {}-f", not(r));
    } else if (proto == "tcp" || proto == "udp") && r.below(2) == 0 {
        // Port tests the walk decides from the hot record (ranges, `!`, both ports) and
        // tcp tests it must leave to the match (flags, options).
        let tcp_only = [" --syn", " --tcp-flags SYN,ACK ACK", " --tcp-option 2"];
        s += &format!(
            " -m {proto} {}--dport {}",
            not(r),
            r.pick(&["22", "53", "80:90"])
        );
        if r.below(3) == 0 {
            s += &format!(" {}--sport {}", not(r), r.pick(&["1000", "1001:1002"]));
        }
        if proto == "tcp" && r.below(4) == 0 {
            s += r.pick(&tcp_only);
        }
        if r.below(6) == 0 {
            s += " -m comment --comment after";
        }
    }
    match r.below(10) {
        0 => s += " -m limit --limit 2/sec --limit-burst 2",
        1 => s += " -m statistic --mode nth --every 3 --packet 1",
        2 => s += " -m recent --name seen --set",
        3 => s += " -m recent --name seen --rcheck --seconds 5",
        // Statistic alone is decided from the hot record: both modes, `!` both ways.
        4 => s += " -m statistic --mode random --probability 0.5",
        5 => s += " -m statistic --mode nth ! --every 2 --packet 1",
        _ => {}
    }
    let later = rank + 1 + r.below((CHAINS.len() - rank) as u64) as usize;
    let later = ranked.get(later).map(|&k| CHAINS[k]);
    match (r.below(9), later) {
        (0 | 1, _) => s += " -j ACCEPT",
        (2, _) => s += " -j DROP",
        (3, _) if c > 0 => s += " -j RETURN",
        (4, Some(to)) => s += &format!(" -j {to}"),
        (5, Some(to)) => s += &format!(" -g {to}"),
        (6, _) => s += &format!(" -j LOG --log-prefix \"r{}\"", r.below(100)),
        _ => {}
    }
    s
}

fn ruleset(r: &mut Rng) -> String {
    let mut s = format!(
        "*filter\n:INPUT {} [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n",
        if r.below(2) == 0 { "ACCEPT" } else { "DROP" }
    );
    for c in &CHAINS[1..] {
        s += &format!(":{c} - [0:0]\n");
    }
    // INPUT first, the user chains in a random order (Fisher-Yates).
    let mut ranked: Vec<usize> = (0..CHAINS.len()).collect();
    for k in (2..ranked.len()).rev() {
        let j = 1 + r.below(k as u64) as usize;
        ranked.swap(k, j);
    }
    for rank in 0..CHAINS.len() {
        let n = r.below(if rank == 0 { 70 } else { 30 });
        for _ in 0..n {
            s += &rule(r, &ranked, rank);
            s.push('\n');
        }
    }
    s += "COMMIT\n";
    s
}

fn packet(r: &mut Rng, now: u64) -> PktCtx {
    let (src, dst) = (addr(r), addr(r));
    let proto = ["tcp", "udp", "icmp"][r.below(3) as usize];
    let port = ["22", "53", "85", "443"][r.below(4) as usize];
    let mut short = None;
    let line = if r.below(10) == 0 {
        // A later fragment: IP fields only.
        format!("{proto} {src} > {dst} frag=8 len=8")
    } else if proto != "icmp" && r.below(12) == 0 {
        // A TCP or UDP header cut short (cut below): port matches hotdrop.
        short = Some(r.below(if proto == "tcp" { 20 } else { 8 }) as usize);
        format!("{proto} {src}:1000 > {dst}:{port}")
    } else if proto == "icmp" {
        format!("icmp {src} > {dst} type=8 code=0 id=1 seq=1")
    } else if proto == "tcp" {
        format!(
            "tcp {src}:{} > {dst}:{port} flags={} seq=1 win=512{}",
            1000 + r.below(3),
            r.pick(&["S", "A", "SA"]),
            if r.below(2) == 0 { " mss=1460" } else { "" }
        )
    } else {
        format!("udp {src}:{} > {dst}:{port}", 1000 + r.below(3))
    };
    let spec = PacketSpec::parse(&line).expect("packet line");
    let mut buf = build_ipv4(&spec, &FrameCtx::default()).expect("build");
    if let Some(n) = short {
        // Keep the 20-byte IP header and `n` bytes of the transport header.
        buf.truncate(20 + n);
        buf[2..4].copy_from_slice(&(20 + n as u16).to_be_bytes());
    }
    let mut p = PktCtx::new(buf).expect("parses");
    p.indev = IfName::new(["lan0", "lan1", "wan0"][r.below(3) as usize]);
    p.now = now;
    p
}

fn check(seed: u64, packets: usize) {
    let mut r = Rng(seed | 1);
    let text = ruleset(&mut r);
    let mut fast = Side::new(
        &text,
        ClassifyOpts {
            enabled: true,
            min_rules: 1,
        },
    );
    let mut slow = Side::new(
        &text,
        ClassifyOpts {
            enabled: false,
            min_rules: 1,
        },
    );
    assert!(fast.table.classified() || text.lines().filter(|l| l.starts_with("-A")).count() == 0);
    assert!(!slow.table.classified());
    let mut now = 0u64;
    for k in 0..packets {
        now += r.below(400_000_000);
        let p = packet(&mut r, now);
        let a = fast.walk(p.clone());
        let b = slow.walk(p);
        assert_eq!(a, b, "packet {k} differs; ruleset:\n{text}");
    }
    assert_eq!(
        fast.counters(),
        slow.counters(),
        "counters differ; ruleset:\n{text}"
    );
    assert_eq!(
        format!("{:?}", fast.state.slots),
        format!("{:?}", slow.state.slots),
        "match state differs"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn classified_walk_equals_linear_walk(seed in any::<u64>()) {
        check(seed, 60);
    }
}

#[test]
fn a_long_ruleset_with_many_packets() {
    for seed in 1..20 {
        check(seed * 7919, 500);
    }
}
