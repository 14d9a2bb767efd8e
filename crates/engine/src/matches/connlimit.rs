//! `-m connlimit` (xt_connlimit over nf_conncount): per rule, lists of connection tuples keyed
//! by the masked source (or destination) address; a packet's count is the number of listed
//! connections still in the conntrack table and not closed, its own connection included.

use super::{CompileCtx, CompileError, MatchEnv, StateSlot};
use crate::pkt::PktCtx;
use nfrs_conntrack::Tuple;
use nfrs_rules::ext::connlimit::Connlimit;
use std::collections::HashMap;

/// The kernel's tick with CONFIG_HZ=250 (the lab kernel's): 4 ms. A list is garbage-collected
/// at most once per tick.
const JIFFY: u64 = 4_000_000;

/// Kernel CONNCOUNT_GC_MAX_NODES: one add stops collecting after this many evictions.
const GC_MAX: usize = 8;

/// One key's list (struct nf_conncount_list): (tuple, zone) in insertion order, and the tick
/// of the last collection.
#[derive(Clone, Debug, Default)]
struct List {
    conns: Vec<(Tuple, u16)>,
    last_gc: u64,
}

/// A rule's lists by (masked address, zone).
#[derive(Clone, Debug, Default)]
pub struct State {
    lists: HashMap<(u32, u16), List>,
}

/// Needs conntrack; claims the lists.
pub fn compile(_m: &Connlimit, cx: &mut CompileCtx) -> Result<(), CompileError> {
    cx.needs_conntrack = true;
    cx.new_slot(StateSlot::Connlimit(Box::default()));
    Ok(())
}

/// Kernel rule (connlimit_mt, count_tree, __nf_conncount_add): the key is the packet's
/// current source (destination with --connlimit-daddr) under the mask; the tuple is the
/// connection's original one (the packet's own when untracked, hotdrop when it has none);
/// lists are kept per conntrack zone too.
/// Adding walks the list once per tick: an entry whose connection is gone from the table or
/// closed is dropped; meeting the packet's own tuple again adds nothing. The count is compared
/// with the limit: above it matches (`--connlimit-upto` inverts).
pub fn eval(m: &Connlimit, p: &PktCtx, env: &mut MatchEnv) -> bool {
    let (tuple, zone) = if p.ct.tracked() {
        (p.ct.tuple[0], p.ct.zone)
    } else {
        let l4 = if p.frag_off() == 0 { p.l4() } else { &[] };
        match nfrs_conntrack::table::packet_tuple(p.src(), p.dst(), p.d.protocol, l4) {
            Some(t) => (t, 0),
            None => {
                env.hotdrop = true;
                return false;
            }
        }
    };
    let addr = if m.daddr { p.dst() } else { p.src() };
    let key = (addr & m.mask, zone);
    let tick = p.now / JIFFY;
    let Some(StateSlot::Connlimit(st)) = env.state.slots.get_mut(env.slot as usize) else {
        return false;
    };
    let count = match st.lists.get_mut(&key) {
        Some(list) if !list.conns.is_empty() => {
            let mut present = false;
            if list.last_gc != tick {
                let mut collected = 0;
                let mut i = 0;
                while i < list.conns.len() {
                    if collected > GC_MAX {
                        break;
                    }
                    let (t, z) = list.conns[i];
                    match env.host.conn_alive(&t, z, p.now) {
                        None => {
                            list.conns.remove(i);
                            collected += 1;
                            continue;
                        }
                        Some(_) if t == tuple && z == zone => {
                            present = true;
                            break;
                        }
                        Some(true) => {
                            list.conns.remove(i);
                            collected += 1;
                            continue;
                        }
                        Some(false) => i += 1,
                    }
                }
                if !present {
                    list.last_gc = tick;
                }
            }
            if !present {
                list.conns.push((tuple, zone));
            }
            list.conns.len()
        }
        _ => {
            let list = st.lists.entry(key).or_default();
            list.conns.push((tuple, zone));
            list.last_gc = tick;
            1
        }
    };
    (count as u64 > u64::from(m.limit)) ^ m.upto
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{pkt, rule_matches};
    use super::super::{compile_match, eval_match, CompileCtx, EvalState, HostInfo, MatchEnv};
    use nfrs_conntrack::Tuple;
    use nfrs_rules::{Hook, IpSpec, TableKind};
    use std::cell::RefCell;

    /// A conntrack table that holds the listed tuples (closed or not).
    struct Table(RefCell<Vec<(Tuple, bool)>>);

    impl HostInfo for Table {
        fn addr_type(&self, _addr: u32, _dev: Option<&str>) -> u8 {
            1
        }
        fn conn_alive(&self, t: &Tuple, _zone: u16, _now: u64) -> Option<bool> {
            self.0.borrow().iter().find(|e| e.0 == *t).map(|e| e.1)
        }
    }

    #[test]
    fn counts_live_connections_per_masked_source() {
        let m = rule_matches(&["-p", "tcp", "-m", "connlimit", "--connlimit-above", "2"])
            .into_iter()
            .find(|m| m.name() == "connlimit")
            .unwrap();
        let mut st = EvalState::default();
        st.slots.push(Default::default());
        let ip = IpSpec::default();
        let mut cx = CompileCtx {
            table: TableKind::Filter,
            hooks: Hook::Forward.bit(),
            ip: &ip,
            needs_conntrack: false,
            state: &mut st,
            slot: 0,
        };
        let slot = compile_match(&m, &mut cx).unwrap();
        assert!(cx.needs_conntrack);
        let table = Table(RefCell::new(Vec::new()));
        let mut now = 0;
        let mut run = |line: &str, confirm: bool, st: &mut EvalState| {
            now += 10_000_000;
            let mut p = pkt(line);
            p.now = now;
            let mut env = MatchEnv {
                state: st,
                slot,
                hotdrop: false,
                host: &table,
            };
            let r = eval_match(&m, &p, &mut env);
            if confirm {
                let t = nfrs_conntrack::table::packet_tuple(p.src(), p.dst(), 6, p.l4()).unwrap();
                table.0.borrow_mut().push((t, false));
            }
            r
        };
        assert!(!run(
            "tcp 10.0.0.2:40000 > 198.51.100.7:80 flags=S",
            true,
            &mut st
        ));
        assert!(!run(
            "tcp 10.0.0.2:40001 > 198.51.100.7:80 flags=S",
            true,
            &mut st
        ));
        assert!(
            run(
                "tcp 10.0.0.2:40002 > 198.51.100.7:80 flags=S",
                false,
                &mut st
            ),
            "third"
        );
        assert!(
            !run(
                "tcp 10.0.0.3:40000 > 198.51.100.7:80 flags=S",
                true,
                &mut st
            ),
            "other key"
        );
        // The refused third was never confirmed: forgotten at the next add.
        assert!(run(
            "tcp 10.0.0.2:40003 > 198.51.100.7:80 flags=S",
            false,
            &mut st
        ));
        // A closed connection no longer counts.
        table.0.borrow_mut()[0].1 = true;
        assert!(!run(
            "tcp 10.0.0.2:40004 > 198.51.100.7:80 flags=S",
            false,
            &mut st
        ));
        // The packet's own connection, met in the list, is not added twice.
        assert!(!run(
            "tcp 10.0.0.2:40001 > 198.51.100.7:80 flags=A",
            false,
            &mut st
        ));
    }
}
