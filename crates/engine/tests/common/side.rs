//! One compiled filter table walked from INPUT, for the tests that hold a compiled walk to
//! the plain one: outcomes name rules (`filter/CHAIN rule N`) and counters are written back
//! into the source table, so the two are compared whatever memory order each lays rules out
//! in.

use nfrs_engine::classify::ClassifyOpts;
use nfrs_engine::matches::{EvalState, NoHost};
use nfrs_engine::pkt::PktCtx;
use nfrs_engine::table::{CTable, Ending};
use nfrs_engine::targets::Effects;
use nfrs_rules::restore::restore_new;
use nfrs_rules::{Hook, Table, TableKind};

pub struct Side {
    pub table: CTable,
    /// The table compiled from (its counters are written back into it to compare them).
    source: Table,
    pub state: EvalState,
    stack: Vec<u32>,
}

/// A walk's outcome with rules named (`filter/CHAIN rule N`), not indexed: the verdict, how
/// the walk ended and where, the rules matched in turn, the log lines.
pub type Outcome = (bool, &'static str, String, Vec<String>, Vec<String>);

impl Side {
    pub fn new(text: &str, opts: ClassifyOpts) -> Side {
        let rs = restore_new(text, &Default::default()).expect("restores");
        let mut state = EvalState::default();
        state.slots.push(Default::default());
        let source = rs.table(TableKind::Filter).unwrap().clone();
        let table = CTable::compile_with(&source, &mut state, opts).expect("compiles");
        Side {
            table,
            source,
            state,
            stack: Vec::new(),
        }
    }

    /// Every rule's and policy's counters, in source order, as `iptables-save -c` would
    /// read them back.
    pub fn counters(&self) -> Vec<(u64, u64)> {
        let mut t = self.source.clone();
        self.table.write_counters(&mut t);
        t.chains
            .iter()
            .flat_map(|c| {
                std::iter::once((c.counters.packets, c.counters.bytes)).chain(
                    c.rules
                        .iter()
                        .map(|r| (r.counters.packets, r.counters.bytes)),
                )
            })
            .collect()
    }

    pub fn walk(&mut self, mut p: PktCtx) -> Outcome {
        walk_named(
            &mut self.table,
            Hook::Input,
            &mut p,
            &mut self.state,
            &mut self.stack,
        )
        .0
    }
}

/// Walks `table` from `hook` and names the outcome (see [`Outcome`]); the walk's effects
/// (log lines, NAT requests) are given back too.
pub fn walk_named(
    table: &mut CTable,
    hook: Hook,
    p: &mut PktCtx,
    state: &mut EvalState,
    stack: &mut Vec<u32>,
) -> (Outcome, Effects) {
    let mut fx = Effects::default();
    let mut trace = Vec::new();
    let res = table.walk(hook, p, state, &NoHost, &mut fx, stack, Some(&mut trace));
    let (how, at) = match res.ending {
        Ending::Rule(i) => ("rule", i),
        Ending::Policy(i) => ("policy", i),
        Ending::Hotdrop(i) => ("hotdrop", i),
    };
    let outcome = (
        res.accept,
        how,
        table.describe(at),
        trace.iter().map(|s| table.describe(s.rule)).collect(),
        fx.logs.iter().map(|l| l.text.clone()).collect(),
    );
    (outcome, fx)
}
