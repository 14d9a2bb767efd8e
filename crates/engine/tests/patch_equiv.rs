//! Rule commands patched into a running engine (`Engine::patch`) leave it exactly as a
//! compile of the changed ruleset would: random rulesets (filter walked from INPUT, nat from
//! PREROUTING with DNAT) take random sequences of `-A`, `-I`, `-D NUM` and `-R` (jumps,
//! gotos, RETURN, LOG, DNAT, addresses, ports, limit / statistic / recent / state matches)
//! applied by the iptables tool to the ruleset and patched into one engine; after each step
//! a second engine compiled from the changed ruleset (the match state of each rule taken
//! over from the first, so stateful matches start equal) walks the same random packets:
//! verdicts, endings, matched-rule paths (by rule name), log lines and NAT requests must be
//! equal, and so must every counter written back (the untouched rules' carried over from
//! the step before, the new rule's from zero). A change that cannot be patched (no spare
//! room, conntrack starting or stopping) is
//! compiled in full, as the daemon does; most changes must patch.

use nfrs_engine::engine::Engine;
use nfrs_engine::host::HostNet;
use nfrs_engine::patch::{Edit, RuleChange};
use nfrs_engine::pkt::{IfName, PktCtx};
use nfrs_rules::{Hook, Ruleset, TableKind};
use nfrs_wire::build::{build_ipv4, FrameCtx};
use nfrs_wire::line::PacketSpec;
use proptest::prelude::*;

#[path = "common/rng.rs"]
mod rng;
#[path = "common/side.rs"]
#[allow(dead_code)] // only its named walk is used here
mod side;
use rng::Rng;

fn addr(r: &mut Rng) -> String {
    format!("10.{}.{}.{}", r.below(2), r.below(3), r.below(6))
}

const USER: [&str; 5] = ["u0", "u1", "u2", "u3", "u4"];

/// Which table a case works on.
#[derive(Clone, Copy)]
struct Kind {
    nat: bool,
}

impl Kind {
    fn table(self) -> TableKind {
        if self.nat {
            TableKind::Nat
        } else {
            TableKind::Filter
        }
    }
    fn hook(self) -> Hook {
        if self.nat {
            Hook::PreRouting
        } else {
            Hook::Input
        }
    }
    fn base(self) -> &'static str {
        if self.nat {
            "PREROUTING"
        } else {
            "INPUT"
        }
    }
}

/// A rule's arguments after `-A CHAIN` (no quoting needed).
fn rule_args(r: &mut Rng, k: Kind, chain: &str, conntrack: bool) -> Vec<String> {
    let mut a: Vec<String> = Vec::new();
    let mut push = |s: &str| a.extend(s.split(' ').map(String::from));
    if r.below(3) > 0 {
        let not = if r.below(6) == 0 { "! " } else { "" };
        push(&format!(
            "{not}-s {}/{}",
            addr(r),
            r.pick(&["32", "24", "16", "8"])
        ));
    }
    if r.below(3) > 0 {
        push(&format!("-d {}/{}", addr(r), r.pick(&["32", "30", "24"])));
    }
    let proto = match r.below(3) {
        0 => "tcp",
        1 => "udp",
        _ => "",
    };
    if !proto.is_empty() {
        push(&format!("-p {proto}"));
        if r.below(2) == 0 {
            push(&format!(
                "-m {proto} --dport {}",
                r.pick(&["22", "53", "80:90"])
            ));
        }
    } else if r.below(8) == 0 {
        push("-p icmp");
    }
    if r.below(6) == 0 {
        push(&format!("-i {}", r.pick(&["lan0", "lan+", "wan0"])));
    }
    match r.below(12) {
        0 => push("-m limit --limit 3/sec --limit-burst 2"),
        1 => push("-m statistic --mode nth --every 3 --packet 1"),
        2 => push("-m statistic --mode random --probability 0.5"),
        3 => push("-m recent --name seen --set"),
        4 => push("-m recent --name seen --rcheck --seconds 5"),
        5 if conntrack || r.below(4) == 0 => push("-m state --state NEW,ESTABLISHED"),
        6 => push("-m comment --comment c1"),
        _ => {}
    }
    let other = USER[r.below(USER.len() as u64) as usize];
    match r.below(10) {
        0 | 1 => push("-j ACCEPT"),
        2 if !k.nat => push("-j DROP"),
        3 if chain.starts_with('u') => push("-j RETURN"),
        4 | 5 if other != chain => push(&format!("-j {other}")),
        6 if other != chain => push(&format!("-g {other}")),
        7 => push(&format!("-j LOG --log-prefix r{}", r.below(50))),
        8 if k.nat => push(&format!("-j DNAT --to-destination 10.9.0.{}", r.below(9))),
        _ => {}
    }
    a
}

fn ruleset(r: &mut Rng, k: Kind, conntrack: bool) -> Ruleset {
    let mut rs = Ruleset::default();
    let run = |rs: &mut Ruleset, args: Vec<String>| {
        nfrs_rules::tool::run("iptables", &args, "", rs).code == 0
    };
    let t = if k.nat { "nat" } else { "filter" };
    let s = |x: &str| x.to_string();
    for c in USER {
        assert!(run(&mut rs, vec![s("-t"), s(t), s("-N"), s(c)]));
    }
    if !k.nat && r.below(2) == 0 {
        assert!(run(&mut rs, vec![s("-P"), s("INPUT"), s("DROP")]));
    }
    let chains: Vec<&str> = std::iter::once(k.base()).chain(USER).collect();
    for (ci, c) in chains.iter().enumerate() {
        // Long enough for the base chain to get a classifier (32 rules).
        let n = if ci == 0 {
            28 + r.below(40)
        } else {
            r.below(8)
        };
        for _ in 0..n {
            let mut args = vec![s("-t"), s(t), s("-A"), s(c)];
            args.extend(rule_args(r, k, c, conntrack));
            // A loop the tool refuses is simply left out.
            run(&mut rs, args);
        }
    }
    rs
}

fn packet(r: &mut Rng, now: u64) -> PktCtx {
    let (src, dst) = (addr(r), addr(r));
    let line = match r.below(3) {
        0 => format!("icmp {src} > {dst} type=8 code=0 id=1 seq=1"),
        1 => format!(
            "tcp {src}:{} > {dst}:{} flags=S seq=1 win=512",
            1000 + r.below(3),
            r.pick(&["22", "53", "85", "443"])
        ),
        _ => format!("udp {src}:1000 > {dst}:{}", r.pick(&["22", "53", "85"])),
    };
    let spec = PacketSpec::parse(&line).expect("packet line");
    let buf = build_ipv4(&spec, &FrameCtx::default()).expect("build");
    let mut p = PktCtx::new(buf).expect("parses");
    p.indev = IfName::new(["lan0", "lan1", "wan0"][r.below(3) as usize]);
    p.now = now;
    p
}

type Outcome = (bool, &'static str, String, Vec<String>, Vec<String>, String);

fn walk(e: &mut Engine, k: Kind, mut p: PktCtx) -> Outcome {
    let (t, state) = e.table_mut(k.table()).expect("table");
    let ((accept, how, at, path, logs), fx) =
        side::walk_named(t, k.hook(), &mut p, state, &mut Vec::new());
    (accept, how, at, path, logs, format!("{:?}", fx.nat))
}

fn engine(rs: Ruleset) -> Engine {
    Engine::new(HostNet::new(&Default::default()).unwrap(), rs, &[]).expect("compiles")
}

/// One random command on `rs` through the tool, and the change it made (None: refused).
fn command(r: &mut Rng, k: Kind, rs: &mut Ruleset) -> Option<RuleChange> {
    let t = if k.nat { "nat" } else { "filter" };
    let chain = if r.below(3) == 0 {
        k.base()
    } else {
        USER[r.below(USER.len() as u64) as usize]
    };
    let len = rs.table(k.table())?.chain(chain)?.rules.len();
    let s = |x: &str| x.to_string();
    let mut args = vec![s("-t"), s(t)];
    let (op, at) = match r.below(4) {
        0 => ("-A", len),
        1 => ("-I", r.below(len as u64 + 1) as usize),
        2 if len > 0 => ("-D", r.below(len as u64) as usize),
        3 if len > 0 => ("-R", r.below(len as u64) as usize),
        _ => ("-A", len),
    };
    args.push(s(op));
    args.push(s(chain));
    if op != "-A" {
        args.push((at + 1).to_string());
    }
    if op != "-D" {
        args.extend(rule_args(r, k, chain, false));
    }
    if nfrs_rules::tool::run("iptables", &args, "", rs).code != 0 {
        return None;
    }
    let now = &rs.table(k.table())?.chain(chain)?.rules;
    let edit = match op {
        "-D" => Edit::Delete { at },
        "-R" => Edit::Replace {
            at,
            rule: now[at].clone(),
        },
        _ => Edit::Insert {
            at,
            rule: now[at].clone(),
        },
    };
    Some(RuleChange {
        table: k.table(),
        chain: chain.to_string(),
        edit,
    })
}

/// Returns (changes patched, changes compiled in full).
fn check(seed: u64, k: Kind, steps: usize, packets: usize) -> (usize, usize) {
    let mut r = Rng(seed | 1);
    let conntrack = r.below(2) == 0;
    let mut model = ruleset(&mut r, k, conntrack);
    let mut live = engine(model.clone());
    let mut now = 1u64;
    let (mut patched, mut full) = (0, 0);
    for step in 0..steps {
        let Some(change) = command(&mut r, k, &mut model) else {
            continue;
        };
        match live.patch(&change) {
            Ok(()) => patched += 1,
            Err(_) => {
                // As the daemon: the changed ruleset compiled, the counters carried over.
                full += 1;
                let fresh = engine(model.clone());
                live = fresh;
            }
        }
        let mut fresh = engine(model.clone());
        fresh.adopt_match_state(&live);
        for n in 0..packets {
            now += r.below(300_000_000);
            let p = packet(&mut r, now);
            let a = walk(&mut live, k, p.clone());
            let b = walk(&mut fresh, k, p);
            assert_eq!(
                a, b,
                "seed {seed} step {step} ({change:?}) packet {n} differs"
            );
        }
        let (a, b) = (live.ruleset_with_counters(), fresh.ruleset_with_counters());
        assert_eq!(a, b, "seed {seed} step {step}: rulesets or counters differ");
        // The next command sees the counters the packets left.
        model = b;
    }
    (patched, full)
}

#[test]
fn patched_filter_tables_walk_as_compiled_ones() {
    let (mut p, mut f) = (0, 0);
    for seed in 0..40u64 {
        let (a, b) = check(seed * 7919 + 1, Kind { nat: false }, 25, 40);
        p += a;
        f += b;
    }
    eprintln!("{p} patched, {f} compiled in full");
    assert!(p > 4 * f, "{p} patched, {f} compiled in full");
}

#[test]
fn patched_nat_tables_walk_as_compiled_ones() {
    let (mut p, mut f) = (0, 0);
    for seed in 0..40u64 {
        let (a, b) = check(seed * 104_729 + 3, Kind { nat: true }, 25, 40);
        p += a;
        f += b;
    }
    eprintln!("{p} patched, {f} compiled in full");
    assert!(p > 4 * f, "{p} patched, {f} compiled in full");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn patched_tables_walk_as_compiled_ones(seed in any::<u64>(), nat in any::<bool>()) {
        check(seed, Kind { nat }, 15, 30);
    }
}
