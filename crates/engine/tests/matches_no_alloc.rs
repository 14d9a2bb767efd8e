//! The extension matches and targets allocate nothing per packet once their state exists
//! (a known recent address, a known hashlimit flow, the nth counter, the string tables...),
//! counted with a counting global allocator.

use nfrs_engine::matches::{compile_match, eval_match, CompileCtx, EvalState, MatchEnv, NoHost};
use nfrs_engine::pkt::PktCtx;
use nfrs_engine::targets::{compile_target, run_target, Effects, TargetCtx, TargetEnv};
use nfrs_rules::ext::{Match, TargetExt};
use nfrs_rules::{Hook, IpSpec, TableKind, Target};

#[path = "common/counting.rs"]
mod counting;
use counting::allocs;

#[global_allocator]
static A: counting::Counting = counting::Counting;

const MATCHES: &[&[&str]] = &[
    &["-m", "limit", "--limit", "100/sec"],
    &["-m", "connlimit", "--connlimit-above", "2"],
    &["-m", "recent", "--set", "--name", "A"],
    &[
        "-m",
        "recent",
        "--update",
        "--seconds",
        "60",
        "--hitcount",
        "3",
        "--name",
        "A",
    ],
    &[
        "-m",
        "recent",
        "--rcheck",
        "--seconds",
        "5",
        "--reap",
        "--name",
        "A",
    ],
    &[
        "-m",
        "statistic",
        "--mode",
        "nth",
        "--every",
        "3",
        "--packet",
        "0",
    ],
    &[
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        "0.5",
    ],
    &[
        "-m",
        "hashlimit",
        "--hashlimit-upto",
        "5/sec",
        "--hashlimit-mode",
        "srcip,dstport",
        "--hashlimit-name",
        "h",
    ],
    &["-m", "string", "--algo", "bm", "--string", "needle"],
    &[
        "-m", "string", "--algo", "kmp", "--string", "needle", "--icase",
    ],
    &["-m", "addrtype", "--dst-type", "UNICAST"],
    &["-m", "connmark", "--mark", "1"],
    &["-m", "length", "--length", "40:1500"],
    &["-m", "iprange", "--src-range", "10.0.0.1-10.0.0.9"],
    &["-m", "ttl", "--ttl-gt", "1"],
    &["-m", "tos", "--tos", "0x10"],
    &["-m", "dscp", "--dscp", "10"],
    &["-m", "mac", "--mac-source", "02:00:00:00:00:01"],
    &["-m", "pkttype", "--pkt-type", "unicast"],
    &["-m", "helper", "--helper", "ftp"],
    &["-p", "tcp", "-m", "tcpmss", "--mss", "1000:1500"],
];

const TARGETS: &[&[&str]] = &[
    &["-j", "CONNMARK", "--save-mark"],
    &["-j", "TTL", "--ttl-inc", "1"],
    &["-j", "TOS", "--xor-tos", "0x10"],
    &["-j", "DSCP", "--set-dscp", "10"],
];

#[test]
fn extensions_allocate_nothing_per_packet() {
    let ip = IpSpec::default();
    let mut st = EvalState::default();
    st.slots.push(Default::default());
    let mut ms: Vec<(Match, u32)> = Vec::new();
    for args in MATCHES {
        let mut r = nfrs_rules::parse::parse_rule(TableKind::Filter, "INPUT", args).unwrap();
        let m = r.matches.pop().unwrap();
        let mut cx = CompileCtx {
            table: TableKind::Filter,
            hooks: Hook::Input.bit(),
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        let slot = compile_match(&m, &mut cx).unwrap();
        ms.push((m, slot));
    }
    let mut ts: Vec<TargetExt> = Vec::new();
    for args in TARGETS {
        let r = nfrs_rules::parse::parse_rule(TableKind::Mangle, "PREROUTING", args).unwrap();
        let Target::Ext(t) = r.target else {
            panic!("{:?}", r.target)
        };
        let mut cx = TargetCtx {
            table: TableKind::Mangle,
            hooks: Hook::PreRouting.bit(),
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        compile_target(&t, &mut cx).unwrap();
        ts.push(t);
    }
    let spec = nfrs_wire::line::PacketSpec::parse(
        "tcp 10.0.0.2:40000 > 10.0.0.1:80 flags=S mss=1460 payload=\"a needle in a haystack\"",
    )
    .unwrap();
    let buf = nfrs_wire::build::build_ipv4(&spec, &Default::default()).unwrap();
    let mut p = PktCtx::new(buf).unwrap();
    p.mac = Some([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0]);
    let mut fx = Effects::default();
    // Allocations seen while each extension ran, by its position (matches, then targets).
    let mut seen = vec![0usize; ms.len() + ts.len()];
    let mut matched = 0;
    for round in 0..2 {
        let n = if round == 0 { 50 } else { 5_000 };
        for k in 0..n {
            p.now += 1_000_000 + k % 7;
            for (i, (m, slot)) in ms.iter().enumerate() {
                let mut env = MatchEnv {
                    state: &mut st,
                    slot: *slot,
                    hotdrop: false,
                    host: &NoHost,
                };
                let before = allocs();
                matched += eval_match(m, &p, &mut env) as usize;
                if round == 1 {
                    seen[i] += allocs() - before;
                }
            }
            for (i, t) in ts.iter().enumerate() {
                fx.clear();
                let mut env = TargetEnv {
                    state: &mut st,
                    slot: 0,
                    host: &NoHost,
                    fx: &mut fx,
                };
                let before = allocs();
                run_target(t, &mut p, &mut env);
                if round == 1 {
                    seen[ms.len() + i] += allocs() - before;
                }
            }
        }
    }
    assert!(matched > 0);
    let names: Vec<String> = MATCHES.iter().chain(TARGETS).map(|a| a.join(" ")).collect();
    let bad: Vec<(String, usize)> = names
        .into_iter()
        .zip(seen)
        .filter(|(_, n)| *n != 0)
        .collect();
    assert!(
        bad.is_empty(),
        "allocations on the extension hot path: {bad:?}"
    );
}
