//! One rule command applied to a running engine in place ([`Engine::patch`]): the rule
//! compiled alone and put into its chain's run of records (`CTable::insert_rule` and
//! friends), so a `-A` on a 100k-rule ruleset costs the one rule and its chain, not the
//! whole ruleset. Every other rule keeps its counters and its match state (limit buckets,
//! recent lists, statistic counters), the connection table stays. What cannot be patched
//! (no spare room left in the chain, a table or conntrack that would have to appear or go)
//! is refused with the reason, the engine untouched, and the caller compiles the ruleset
//! again as before.

use crate::engine::{hook_maps, Engine};
use nfrs_rules::{Rule, TableKind};

/// What one rule command did to one chain, positions 0-based (rule `at + 1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    /// `-A` (at = the chain's length) or `-I`: `rule` is now rule `at`.
    Insert {
        /// The new rule's position.
        at: usize,
        /// The rule as the ruleset now holds it (counters included).
        rule: Rule,
    },
    /// `-D`: rule `at` is gone.
    Delete {
        /// The removed rule's position.
        at: usize,
    },
    /// `-R`: rule `at` is `rule` now.
    Replace {
        /// The replaced rule's position.
        at: usize,
        /// The rule as the ruleset now holds it.
        rule: Rule,
    },
}

/// A change to one chain of one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleChange {
    /// The table.
    pub table: TableKind,
    /// The chain's name.
    pub chain: String,
    /// What changed.
    pub edit: Edit,
}

impl RuleChange {
    /// Applies the change to `rs` as the tool did (the table's policy counters reset with
    /// it); false, `rs` untouched, when it has no such chain or rule.
    pub fn apply(&self, rs: &mut nfrs_rules::Ruleset) -> bool {
        let Some(t) = rs.tables.iter_mut().find(|t| t.kind == self.table) else {
            return false;
        };
        let Some(ci) = t.chain_index(&self.chain) else {
            return false;
        };
        let rules = &mut t.chains[ci].rules;
        match &self.edit {
            Edit::Insert { at, rule } if *at <= rules.len() => rules.insert(*at, rule.clone()),
            Edit::Delete { at } if *at < rules.len() => {
                rules.remove(*at);
            }
            Edit::Replace { at, rule } if *at < rules.len() => rules[*at] = rule.clone(),
            _ => return false,
        }
        for ch in t.chains.iter_mut().filter(|ch| ch.is_builtin()) {
            ch.counters = Default::default();
        }
        true
    }
}

/// Why a change was not patched in (the engine is as it was: compile the ruleset again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotPatched(pub String);

impl Engine {
    /// Applies `c` to the compiled tables and to the ruleset this engine keeps, as the same
    /// command applied to that ruleset and then compiled in full would give: same verdicts,
    /// paths and counters; other rules' counters and match state and the connection table
    /// kept. Err: nothing changed, compile the changed ruleset instead.
    pub fn patch(&mut self, c: &RuleChange) -> Result<(), NotPatched> {
        let no = |why: &str| Err(NotPatched(why.to_string()));
        let Some(ti) = self.tables.iter().position(|t| t.kind == c.table) else {
            return no("the table is not in force");
        };
        let Some(src) = self.ruleset.table(c.table) else {
            return no("the table is not in force");
        };
        let Some(ci) = src.chain_index(&c.chain) else {
            return no("no such chain");
        };
        let len = src.chains[ci].rules.len();
        let chain_of = |n: &str| src.chain_index(n);
        let ct_rules: u32 = self.tables.iter().map(|t| t.ct_rules()).sum();
        let table = &mut self.tables[ti];
        let (at, new) = match &c.edit {
            Edit::Insert { at, rule } if *at <= len => (*at, Some(rule)),
            Edit::Delete { at } | Edit::Replace { at, .. } if *at < len => (
                *at,
                if let Edit::Replace { rule, .. } = &c.edit {
                    Some(rule)
                } else {
                    None
                },
            ),
            _ => return no("no such rule"),
        };
        if matches!(c.edit, Edit::Insert { .. }) && !table.has_room(ci) {
            return no("no spare room left in the chain");
        }
        if new.is_some() && table.worn() {
            return no("removed rules to clear away first");
        }
        // What the compile decides for the whole engine: conntrack started by the first rule
        // that needs it, stopped with the last (the new rule compiled aside to learn it).
        let gone_ct = !matches!(c.edit, Edit::Insert { .. }) && table.rule_needs_conntrack(ci, at);
        let new_ct = match new {
            Some(r) => match table.needs_conntrack_alone(ci, r, &chain_of) {
                Ok(ct) => ct,
                Err(e) => return Err(NotPatched(e.0)),
            },
            None => false,
        };
        if new_ct && self.ct.is_none() {
            return no("conntrack would start");
        }
        if gone_ct && !new_ct && ct_rules == 1 {
            return no("conntrack would stop");
        }
        let done = match new {
            Some(r) if matches!(c.edit, Edit::Insert { .. }) => {
                table.insert_rule(ci, at, r, &mut self.state, &chain_of)
            }
            Some(r) => table.replace_rule(ci, at, r, &mut self.state, &chain_of),
            None => Ok(table.delete_rule(ci, at)),
        };
        match done {
            Ok(true) => table.zero_policies(),
            Ok(false) => return no("the rule cannot be put in this chain in place"),
            Err(e) => return Err(NotPatched(e.0)),
        }
        // Checked above: the chain and the rule are there.
        c.apply(&mut self.ruleset);
        (self.walk_at, self.accept_only) = hook_maps(&self.tables);
        Ok(())
    }
}

impl Engine {
    /// The compiled table of kind `kind` with the match state, to walk it alone (tests and
    /// tools).
    pub fn table_mut(
        &mut self,
        kind: TableKind,
    ) -> Option<(&mut crate::table::CTable, &mut crate::matches::EvalState)> {
        let t = self.tables.iter_mut().find(|t| t.kind == kind)?;
        Some((t, &mut self.state))
    }

    /// Takes over the match state of `from`, an engine of the same ruleset laid out another
    /// way (one patched in place, one compiled in full): each rule's state slots get the
    /// state of the same rule (table, chain, number, match) there; the recent lists and the
    /// random source are copied whole. Chains whose rule counts differ keep their own.
    pub fn adopt_match_state(&mut self, from: &Engine) {
        let mut state = std::mem::take(&mut self.state);
        for t in &self.tables {
            let Some(f) = from.tables.iter().find(|f| f.kind == t.kind) else {
                continue;
            };
            for (ci, name) in t.chains.iter().enumerate() {
                let Some(fi) = f.chains.iter().position(|n| n == name) else {
                    continue;
                };
                let (mine, theirs) = (t.chain_rules(ci), f.chain_rules(fi));
                if mine.len() != theirs.len() {
                    continue;
                }
                for (a, b) in mine.iter().zip(theirs) {
                    let slots = |r: &crate::table::CRule| {
                        let mut v: Vec<u32> = r.matches.iter().map(|(_, s)| *s).collect();
                        if let crate::table::CTarget::Ext(_, s) = r.target {
                            v.push(s);
                        }
                        v
                    };
                    for (x, y) in slots(a).into_iter().zip(slots(b)) {
                        if x != 0 && y != 0 {
                            if let Some(s) = from.state.slots.get(y as usize) {
                                state.slots[x as usize] = s.clone();
                            }
                        }
                    }
                }
            }
        }
        state.recent = from.state.recent.clone();
        state.rng = from.state.rng.clone();
        self.state = state;
    }
}
