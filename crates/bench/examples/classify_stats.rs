//! The classifier on the ClassBench-style ACL, outside the engine: candidates a packet is
//! checked against, and the time of `CTable::walk` alone (10 rules, N rules classified, N
//! rules linear). `cargo run --release -p nfrs-bench --example classify_stats [N]`.
use nfrs_engine::classify::{Cand, ChainIndex, ClassifyOpts, RuleRange};
use nfrs_engine::matches::{EvalState, NoHost};
use nfrs_engine::pkt::{IfName, PktCtx};
use nfrs_engine::table::CTable;
use nfrs_engine::targets::Effects;
use nfrs_rules::{Hook, TableKind};

fn table(rules: &[nfrs_bench::gen::AclRule], opts: ClassifyOpts) -> (CTable, EvalState) {
    let g = nfrs_bench::gen::render_acl(rules);
    let rs = nfrs_rules::restore::restore_new(&g.text, &Default::default()).unwrap();
    let mut st = EvalState::default();
    st.slots.push(Default::default());
    let t = CTable::compile_with(rs.table(TableKind::Filter).unwrap(), &mut st, opts).unwrap();
    (t, st)
}

fn packets(trace: &[nfrs_bench::gen::AclPacket]) -> Vec<PktCtx> {
    trace
        .iter()
        .map(|p| {
            let line = match p.proto {
                6 => format!(
                    "tcp {}:{} > {}:{} flags=S seq=1 win=1024",
                    p.src, p.sport, p.dst, p.dport
                ),
                17 => format!("udp {}:{} > {}:{}", p.src, p.sport, p.dst, p.dport),
                _ => format!("icmp {} > {} type=8 code=0 id=1 seq=1", p.src, p.dst),
            };
            let spec = nfrs_wire::line::PacketSpec::parse(&line).unwrap();
            let buf = nfrs_wire::build::build_ipv4(&spec, &Default::default()).unwrap();
            let mut c = PktCtx::new(buf).unwrap();
            c.indev = IfName::new("lan0");
            c.outdev = IfName::new("wan0");
            c
        })
        .collect()
}

fn time_walks(t: &mut CTable, st: &mut EvalState, pk: &mut [PktCtx]) -> f64 {
    let mut fx = Effects::default();
    let mut stack = Vec::new();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t0 = std::time::Instant::now();
        for p in pk.iter_mut() {
            let r = t.walk(Hook::Forward, p, st, &NoHost, &mut fx, &mut stack, None);
            std::hint::black_box(r);
        }
        best = best.min(t0.elapsed().as_secs_f64() * 1e9 / pk.len() as f64);
    }
    best
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(10_000, |a| a.parse().unwrap());
    let on = ClassifyOpts {
        enabled: true,
        min_rules: 32,
    };
    let off = ClassifyOpts {
        enabled: false,
        min_rules: 32,
    };
    let rules = nfrs_bench::gen::acl_rules(n, 1);
    let trace = nfrs_bench::gateway::acl_trace_mixed(&rules, 20_000, 2);
    let t0 = std::time::Instant::now();
    let (mut t, mut st) = table(&rules, on);
    println!(
        "compile {:?}, classifier (nodes, entries) {:?}",
        t0.elapsed(),
        t.classifier_size()
    );
    let fwd = t.chains.iter().position(|c| c == "FORWARD").unwrap();
    let mut c: Vec<usize> = trace
        .iter()
        .map(|p| t.candidates(fwd, u32::from(p.src), u32::from(p.dst)))
        .collect();
    c.sort();
    let sum: usize = c.iter().sum();
    println!(
        "candidates: mean {:.1}, median {}, p90 {}, max {}",
        sum as f64 / c.len() as f64,
        c[c.len() / 2],
        c[c.len() * 9 / 10],
        c[c.len() - 1]
    );
    // Rules before (and including) the first match whose address and protocol test passes
    // (each one's record is read when the leaf's entries test only that), and of those the
    // ones whose ports fail too.
    let (mut head, mut port_fail) = (0usize, 0usize);
    for p in &trace {
        for r in &rules {
            let mut h = r.clone();
            h.sport = None;
            h.dport = None;
            if h.matches(p) {
                head += 1;
                if r.matches(p) {
                    break;
                }
                port_fail += 1;
            }
        }
    }
    println!(
        "header (address, protocol) passes a packet, up to the match: {:.2}, of which ports fail {:.2}",
        head as f64 / trace.len() as f64,
        port_fail as f64 / trace.len() as f64
    );
    // The classifier of the same rules built directly: per tree, nodes read and list entries
    // a packet, and bytes.
    let ranges: Vec<RuleRange> = rules
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let m = |l: u32| if l == 0 { 0 } else { u32::MAX << (32 - l) };
            RuleRange::of(Cand::new(
                i as u32,
                (u32::from(r.src.0), m(r.src.1), false),
                (u32::from(r.dst.0), m(r.dst.1), false),
                r.proto.map(|p| (p, false)),
            ))
        })
        .collect();
    let ix = ChainIndex::build(&ranges, rules.len() as u32);
    let mut sums = vec![(0usize, 0usize); ix.parts()];
    let mut bytes = vec![(0usize, 0usize); ix.parts()];
    for p in &trace {
        for (k, (reads, len, nb, lb)) in ix
            .path(u32::from(p.src), u32::from(p.dst))
            .into_iter()
            .enumerate()
        {
            sums[k].0 += reads;
            sums[k].1 += len;
            bytes[k] = (nb, lb);
        }
    }
    for (k, (s, b)) in sums.iter().zip(&bytes).enumerate() {
        println!(
            "tree {k}: nodes read {:.2}, list entries {:.2} a packet; {} KiB nodes, {} KiB lists",
            s.0 as f64 / trace.len() as f64,
            s.1 as f64 / trace.len() as f64,
            b.0 / 1024,
            b.1 / 1024
        );
    }
    let mut pk = packets(&trace);
    let big = time_walks(&mut t, &mut st, &mut pk);
    let (mut tl, mut stl) = table(&rules, off);
    let lin = time_walks(&mut tl, &mut stl, &mut pk);
    let small_rules = nfrs_bench::gen::acl_rules(10, 1);
    let mut spk = packets(&nfrs_bench::gateway::acl_trace_mixed(
        &small_rules,
        20_000,
        2,
    ));
    let (mut ts, mut sts) = table(&small_rules, on);
    let small = time_walks(&mut ts, &mut sts, &mut spk);
    println!(
        "accepted: {n} rules {:.2}, 10 rules {:.2}",
        accept_share(&rules, &trace),
        accept_share(
            &small_rules,
            &nfrs_bench::gateway::acl_trace_mixed(&small_rules, 20_000, 2)
        )
    );
    println!("walk ns/packet: 10 rules {small:.0}, {n} classified {big:.0}, {n} linear {lin:.0}");
    // Compile time with and without the classifier (the restore is outside the timing).
    let g = nfrs_bench::gen::render_acl(&rules);
    let rs = nfrs_rules::restore::restore_new(&g.text, &Default::default()).unwrap();
    for (name, opts) in [("classified", on), ("linear", off)] {
        let mut st = EvalState::default();
        st.slots.push(Default::default());
        let t0 = std::time::Instant::now();
        let t = CTable::compile_with(rs.table(TableKind::Filter).unwrap(), &mut st, opts).unwrap();
        println!("compile {name}: {:?}", t0.elapsed());
        std::hint::black_box(t);
    }
    let mut few: Vec<PktCtx> = pk.iter().take(64).cloned().collect();
    let hot = time_walks(&mut t, &mut st, &mut few);
    println!("classified, 64 packets (caches warm): {hot:.0} ns/packet");
    println!(
        "size_of CRule {}, IpMatch {}, CTarget {}, Counters {}, Match {}, TargetExt {}, StateSlot {}",
        std::mem::size_of::<nfrs_engine::table::CRule>(),
        std::mem::size_of::<nfrs_engine::table::IpMatch>(),
        std::mem::size_of::<nfrs_engine::table::CTarget>(),
        std::mem::size_of::<nfrs_rules::Counters>(),
        std::mem::size_of::<nfrs_rules::ext::Match>(),
        std::mem::size_of::<nfrs_rules::ext::TargetExt>(),
        std::mem::size_of::<nfrs_engine::matches::StateSlot>()
    );
}

#[allow(dead_code)]
fn accept_share(rules: &[nfrs_bench::gen::AclRule], trace: &[nfrs_bench::gen::AclPacket]) -> f64 {
    trace
        .iter()
        .filter(|p| nfrs_bench::gen::acl_verdict(rules, p))
        .count() as f64
        / trace.len() as f64
}
