//! Bad input never panics the extension matches and targets: mutated packets (headers,
//! options, lengths, fragment fields) through every extension, with random reassembly
//! geometry and devices.

use nfrs_engine::matches::{compile_match, eval_match, CompileCtx, EvalState, MatchEnv, NoHost};
use nfrs_engine::pkt::{IfName, PktCtx};
use nfrs_engine::targets::{compile_target, run_target, Effects, TargetCtx, TargetEnv};
use nfrs_rules::ext::{Match, TargetExt};
use nfrs_rules::{Hook, IpSpec, TableKind, Target};
use proptest::prelude::*;

const MATCHES: &[&[&str]] = &[
    &["-m", "limit", "--limit", "1/sec"],
    &["-m", "recent", "--set", "--name", "A"],
    &[
        "-m",
        "recent",
        "--update",
        "--seconds",
        "2",
        "--reap",
        "--rttl",
        "--name",
        "A",
    ],
    &["-m", "recent", "--remove", "--name", "A"],
    &[
        "-m",
        "statistic",
        "--mode",
        "nth",
        "--every",
        "2",
        "--packet",
        "1",
    ],
    &[
        "-m",
        "hashlimit",
        "--hashlimit-above",
        "1/sec",
        "--hashlimit-mode",
        "srcip,srcport,dstport",
        "--hashlimit-name",
        "h",
        "--hashlimit-htable-max",
        "4",
        "--hashlimit-htable-size",
        "4",
    ],
    &[
        "-m",
        "hashlimit",
        "--hashlimit-upto",
        "1kb/s",
        "--hashlimit-name",
        "b",
    ],
    &[
        "-m", "string", "--algo", "bm", "--string", "abcab", "--from", "3", "--to", "60",
    ],
    &[
        "-m",
        "string",
        "--algo",
        "kmp",
        "--hex-string",
        "|00 00|",
        "--icase",
    ],
    &["-m", "addrtype", "--src-type", "LOCAL", "--limit-iface-in"],
    &["-m", "connmark", "!", "--mark", "1"],
    &["-m", "length", "!", "--length", "40:1500"],
    &["-m", "iprange", "--dst-range", "10.0.0.1-10.0.0.9"],
    &["-m", "ttl", "--ttl-lt", "9"],
    &["-m", "tos", "!", "--tos", "0x10/0x3f"],
    &["-m", "dscp", "--dscp-class", "EF"],
    &["-m", "mac", "!", "--mac-source", "02:00:00:00:00:01"],
    &["-m", "pkttype", "!", "--pkt-type", "broadcast"],
    &["-m", "helper", "!", "--helper", "irc"],
    &["-m", "physdev", "--physdev-in", "p+"],
    &["-p", "tcp", "-m", "tcpmss", "!", "--mss", "0:536"],
];

const TARGETS: &[&[&str]] = &[
    &["-j", "CONNMARK", "--restore-mark", "--mask", "0xff"],
    &["-j", "TTL", "--ttl-dec", "3"],
    &["-j", "TOS", "--and-tos", "0x0f"],
    &["-j", "DSCP", "--set-dscp", "63"],
];

const SEEDS: &[&str] = &[
    "tcp 10.0.0.2:40000 > 10.0.0.1:80 flags=S mss=1460 sackok ts=1/0 wscale=7",
    "tcp 10.0.0.2:40000 > 10.0.0.1:80 flags=PA payload=\"abcabcab at the end abcab\"",
    "udp 10.0.0.2:1 > 10.0.0.5:53 payload=\"xyz\"",
    "icmp 10.0.0.2 > 10.0.0.1 type=8 code=0 id=1 seq=1",
    "udp 10.0.0.2 > 10.0.0.1 id=9 frag=16 payload=\"abcab\"",
];

struct Rig {
    st: EvalState,
    ms: Vec<(Match, u32)>,
    ts: Vec<TargetExt>,
}

fn rig() -> Rig {
    let ip = IpSpec::default();
    let mut st = EvalState::default();
    st.slots.push(Default::default());
    let mut ms = Vec::new();
    for args in MATCHES {
        let mut r = nfrs_rules::parse::parse_rule(TableKind::Filter, "FORWARD", args).unwrap();
        let m = r.matches.pop().unwrap();
        let mut cx = CompileCtx {
            table: TableKind::Filter,
            hooks: Hook::Forward.bit(),
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        let slot = compile_match(&m, &mut cx).unwrap();
        ms.push((m, slot));
    }
    let mut ts = Vec::new();
    for args in TARGETS {
        let r = nfrs_rules::parse::parse_rule(TableKind::Mangle, "FORWARD", args).unwrap();
        let Target::Ext(t) = r.target else {
            panic!("{:?}", r.target)
        };
        let mut cx = TargetCtx {
            table: TableKind::Mangle,
            hooks: Hook::Forward.bit(),
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        compile_target(&t, &mut cx).unwrap();
        ts.push(t);
    }
    // TCPMSS (its rule needs the tcp match iptables checks) is built directly.
    ts.push(TargetExt::Tcpmss(
        nfrs_rules::ext::tcpmss_target::TcpmssTarget { mss: 700 },
    ));
    ts.push(TargetExt::Tcpmss(
        nfrs_rules::ext::tcpmss_target::TcpmssTarget {
            mss: nfrs_rules::ext::tcpmss_target::CLAMP_PMTU,
        },
    ));
    Rig { st, ms, ts }
}

fn seed(i: usize) -> Vec<u8> {
    let spec = nfrs_wire::line::PacketSpec::parse(SEEDS[i % SEEDS.len()]).unwrap();
    nfrs_wire::build::build_ipv4(&spec, &Default::default()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn mutated_packets_never_panic(
        which in 0usize..5,
        edits in proptest::collection::vec((0usize..80, any::<u8>()), 0..8),
        cut in 0usize..90,
        spans in proptest::collection::vec((0usize..80, 0usize..40), 0..4),
        now in 0u64..20_000_000_000,
        mark in any::<u32>(),
        bridged in any::<bool>(),
    ) {
        let mut r = rig();
        let mut buf = seed(which);
        for (at, b) in edits {
            if at < buf.len() {
                buf[at] = b;
            }
        }
        if cut < buf.len() && cut >= 20 {
            buf.truncate(cut);
        }
        let Ok(mut p) = PktCtx::new(buf) else { return Ok(()) };
        p.hook = Hook::Forward;
        p.indev = IfName::new("lan0");
        p.outdev = IfName::new("wan0");
        p.mac = Some([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
        p.mark = mark;
        p.frag_spans = spans;
        if bridged {
            p.physindev = IfName::new("p1");
        }
        for round in 0..3u64 {
            p.now = now + round * 700_000_000;
            for (m, slot) in &r.ms {
                let mut env = MatchEnv { state: &mut r.st, slot: *slot, hotdrop: false, host: &NoHost };
                eval_match(m, &p, &mut env);
            }
            let mut fx = Effects::default();
            for t in &r.ts {
                let mut env = TargetEnv { state: &mut r.st, slot: 0, host: &NoHost, fx: &mut fx };
                run_target(t, &mut p, &mut env);
            }
        }
    }
}
