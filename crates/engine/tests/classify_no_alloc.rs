//! A walk through classified chains allocates nothing (counted with a counting global
//! allocator once the walk's scratch space is warm): jumps between classified chains, leaf
//! lookups, candidate merges.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use nfrs_engine::classify::ClassifyOpts;
use nfrs_engine::matches::{EvalState, NoHost};
use nfrs_engine::pkt::{IfName, PktCtx};
use nfrs_engine::table::CTable;
use nfrs_engine::targets::Effects;
use nfrs_rules::{Hook, TableKind};

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `System.alloc` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: `p` came from `System.alloc` with `l`.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

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
    let before = ALLOCS.with(Cell::get);
    for _ in 0..10 {
        for p in pkts.iter_mut() {
            verdicts.push(walk(&mut t, &mut st, p));
        }
    }
    let after = ALLOCS.with(Cell::get);
    assert_eq!(after - before, 0, "allocations in classified walks");
    // RETURN from svc then the INPUT policy; ACCEPT in svc; no rule for 10.0.3.1.
    assert_eq!(&verdicts[..3], [false, true, false]);
}
