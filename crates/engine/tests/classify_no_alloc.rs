//! A walk through classified chains allocates nothing (counted with a counting global
//! allocator once the walk's scratch space is warm): jumps between classified chains, leaf
//! lookups, candidate merges.

use nfrs_engine::classify::ClassifyOpts;
use nfrs_engine::matches::{EvalState, NoHost};
use nfrs_engine::pkt::{IfName, PktCtx};
use nfrs_engine::table::CTable;
use nfrs_engine::targets::Effects;
use nfrs_rules::{Hook, TableKind};

#[path = "common/counting.rs"]
mod counting;
use counting::allocs;

#[global_allocator]
static A: counting::Counting = counting::Counting;

fn pkt(line: &str) -> PktCtx {
    let spec = nfrs_wire::line::PacketSpec::parse(line).unwrap();
    let buf = nfrs_wire::build::build_ipv4(&spec, &Default::default()).unwrap();
    let mut p = PktCtx::new(buf).unwrap();
    p.indev = IfName::new("lan0");
    p
}

#[test]
fn classified_walk_allocates_nothing() {
    let mut text = String::from("*filter\n:INPUT DROP [0:0]\n:svc - [0:0]\n");
    for i in 0..500u32 {
        text += &format!(
            "-A INPUT -d 10.0.{}.{}/32 -p tcp -m tcp --dport 80 -j svc\n",
            i / 200,
            i % 200
        );
    }
    for i in 0..100u32 {
        text += &format!("-A svc -s 192.168.{i}.0/24 -j RETURN\n");
    }
    text += "-A svc -j ACCEPT\nCOMMIT\n";
    let rs = nfrs_rules::restore::restore_new(&text, &Default::default()).unwrap();
    let mut st = EvalState::default();
    st.slots.push(Default::default());
    let mut t = CTable::compile_with(
        rs.table(TableKind::Filter).unwrap(),
        &mut st,
        ClassifyOpts {
            enabled: true,
            min_rules: 32,
        },
    )
    .unwrap();
    assert!(t.classified());
    let mut pkts = [
        pkt("tcp 192.168.7.1:1000 > 10.0.1.50:80 flags=S seq=1 win=512"),
        pkt("tcp 172.16.0.1:1000 > 10.0.2.99:80 flags=S seq=1 win=512"),
        pkt("tcp 172.16.0.1:1000 > 10.0.3.1:80 flags=S seq=1 win=512"),
    ];
    let mut fx = Effects::default();
    let mut stack = Vec::with_capacity(8);
    let mut verdicts = Vec::with_capacity(64);
    let mut walk = |t: &mut CTable, st: &mut EvalState, p: &mut PktCtx| {
        fx.clear();
        t.walk(Hook::Input, p, st, &NoHost, &mut fx, &mut stack, None)
            .accept
    };
    for p in pkts.iter_mut() {
        walk(&mut t, &mut st, p);
    }
    let before = allocs();
    for _ in 0..10 {
        for p in pkts.iter_mut() {
            verdicts.push(walk(&mut t, &mut st, p));
        }
    }
    let after = allocs();
    assert_eq!(after - before, 0, "allocations in classified walks");
    // RETURN from svc then the INPUT policy; ACCEPT in svc; no rule for 10.0.3.1.
    assert_eq!(&verdicts[..3], [false, true, false]);
}
