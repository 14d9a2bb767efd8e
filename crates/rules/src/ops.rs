//! Applying commands to a ruleset, and the kernel's checks when a table is committed
//! (replaced): jump targets exist, no loops, each extension's checkentry for the hooks that
//! reach its chain.
//!
//! The kernel checks the whole table on every replace. A committed [`Table`] keeps what that
//! check learnt ([`CheckCache`]: the table passed, and every chain's hook mask), so a rule
//! command (`-A -I -R -D`) is checked alone — the new rule, the loop its jump could close,
//! the rules its jump makes reachable from more hooks — with the answer, and the error, the
//! whole-table check would give.

use crate::error::{Errno, Error, Result};
use crate::ext::CheckCtx;
use crate::model::{Chain, Counters, Policy, Rule, Ruleset, Table, Target};
use crate::parse::{Cmd, Command, Parsed};
use std::ops::Range;

/// What the kernel's whole-table check learnt about a table, kept in the table so that a
/// rule command is checked alone ([`execute`]). A clone starts empty (code that edits
/// `chains` directly works on clones; [`apply`] empties it too).
#[derive(Default)]
pub struct CheckCache(Known);

#[derive(Default)]
enum Known {
    /// Nothing: the next command checks the whole table first.
    #[default]
    Nothing,
    /// The table passes the checks; its hook masks are to be found again (a jump was taken
    /// out, so some chains may be reachable from fewer hooks).
    Valid,
    /// The table passes the checks and `masks[i]` is chain i's hook mask ([`hook_masks`]).
    Masks(Vec<u8>),
}

impl Clone for CheckCache {
    fn clone(&self) -> CheckCache {
        CheckCache::default()
    }
}

impl std::fmt::Debug for CheckCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Known::Nothing => "CheckCache(Nothing)",
            Known::Valid => "CheckCache(Valid)",
            Known::Masks(_) => "CheckCache(Masks)",
        })
    }
}

impl CheckCache {
    /// Every chain's hook mask, when the cache holds them (for tests and benchmarks).
    pub fn masks(&self) -> Option<&[u8]> {
        match &self.0 {
            Known::Masks(m) => Some(m),
            _ => None,
        }
    }
}

impl Table {
    /// What the last checks learnt about this table (see [`CheckCache`]).
    pub fn check_cache(&self) -> &CheckCache {
        &self.checked
    }
}

/// A rule's target in [`resolve_targets`]: not a jump/goto.
pub(crate) const NOT_JUMP: u32 = u32::MAX;
/// A rule's target in [`resolve_targets`]: a jump/goto to a chain that does not exist.
const MISSING: u32 = u32::MAX - 1;

/// Every rule's jump/goto target resolved to a chain index once, in table order (chain by
/// chain, rule by rule): [`NOT_JUMP`], [`MISSING`] or the index.
fn resolve_targets(table: &Table) -> Vec<u32> {
    let total = table.chains.iter().map(|c| c.rules.len()).sum();
    let mut out = Vec::with_capacity(total);
    for c in &table.chains {
        out.extend(c.rules.iter().map(|r| match &r.target {
            Target::Jump(t) | Target::Goto(t) => table.chain_index(t).map_or(MISSING, |i| i as u32),
            _ => NOT_JUMP,
        }));
    }
    out
}

/// Hook masks per chain index: which hooks reach each chain. Err(Loop) on a jump loop.
/// Kernel rule (mark_source_chains): walking from each hook, reaching a chain that is already
/// on the current path is a loop, refused with ELOOP.
pub fn hook_masks(table: &Table) -> Result<Vec<u8>> {
    hook_masks_of(table, &resolve_targets(table))
}

/// [`hook_masks`] over targets already resolved by [`resolve_targets`].
fn hook_masks_of(table: &Table, targets: &[u32]) -> Result<Vec<u8>> {
    let n = table.chains.len();
    // The jump graph in compressed rows: the edges of chain i are edges[start[i]..start[i + 1]].
    let mut start = Vec::with_capacity(n + 1);
    let mut edges = Vec::new();
    let mut k = 0;
    for c in &table.chains {
        start.push(edges.len());
        for &t in &targets[k..k + c.rules.len()] {
            if t < MISSING {
                edges.push(t as usize);
            }
        }
        k += c.rules.len();
    }
    start.push(edges.len());
    let mut masks = vec![0u8; n];
    let mut on_path = vec![false; n];
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for (i, c) in table.chains.iter().enumerate() {
        let Some(h) = c.hook else { continue };
        // Iterative DFS keeping the current path.
        stack.clear();
        stack.push((i, start[i]));
        on_path[i] = true;
        masks[i] |= h.bit();
        while let Some(&mut (node, ref mut e)) = stack.last_mut() {
            if *e < start[node + 1] {
                let next = edges[*e];
                *e += 1;
                if on_path[next] {
                    return Err(Error::kernel(Errno::Loop));
                }
                if masks[next] & h.bit() != 0 {
                    continue; // already explored from this hook, no loop through it
                }
                masks[next] |= h.bit();
                on_path[next] = true;
                stack.push((next, start[next]));
            } else {
                on_path[node] = false;
                stack.pop();
            }
        }
    }
    Ok(masks)
}

/// The checks the kernel makes when the table is replaced.
pub fn validate_table(table: &Table) -> Result<()> {
    validate_resolved(table, &resolve_targets(table))
}

/// [`validate_table`] with every rule's jump already resolved, as [`resolve_targets`] would
/// (chain by chain, rule by rule: [`NOT_JUMP`] or the chain's index; never missing, since
/// [`append_resolved`] refused those).
pub(crate) fn validate_resolved(table: &Table, targets: &[u32]) -> Result<()> {
    checks_resolved(table, targets).map(drop)
}

/// A restore's commit checks (the kernel's at table replace), keeping what they learn in
/// the table for later commands ([`CheckCache`]). `targets`: every rule's jump resolved in
/// table order as [`validate_resolved`] takes them, when the restore has them. A `trusted`
/// table (the store's own text, checked when it was written) is not checked again; its
/// hook masks are kept when its jumps come resolved (a walk of the jump graph, no lookups).
pub(crate) fn commit_checks(
    table: &mut Table,
    targets: Option<Vec<u32>>,
    trusted: bool,
) -> Result<()> {
    let known = match (trusted, targets) {
        (false, Some(t)) => Known::Masks(checks_resolved(table, &t)?),
        (false, None) => Known::Masks(validate_masks(table)?),
        (true, Some(t)) => hook_masks_of(table, &t).map_or(Known::Valid, Known::Masks),
        (true, None) => Known::Valid,
    };
    table.checked = CheckCache(known);
    Ok(())
}

/// [`validate_table`], answering every chain's hook mask when the table passes.
pub fn validate_masks(table: &Table) -> Result<Vec<u8>> {
    checks_resolved(table, &resolve_targets(table))
}

/// [`validate_resolved`], answering the hook masks.
fn checks_resolved(table: &Table, targets: &[u32]) -> Result<Vec<u8>> {
    // Kernel rule: a verdict may not jump into a built-in chain (checked before loops).
    // (Which chains are built-in read in one pass over the chains: each jump looking at its
    // target chain is a cache miss in a big table.)
    let builtin: Vec<bool> = table.chains.iter().map(Chain::is_builtin).collect();
    if targets.iter().any(|&t| t < MISSING && builtin[t as usize]) {
        return Err(Error::kernel(Errno::Inval));
    }
    let masks = hook_masks_of(table, targets)?;
    let mut k = 0;
    for (ci, c) in table.chains.iter().enumerate() {
        // Chains are in name order, unrelated to where their rules sit in memory.
        crate::save::prefetch_ahead(|i| table.chains.get(i), ci);
        for r in &c.rules {
            let t = targets[k];
            k += 1;
            // Jumps into built-in chains were refused above.
            check_rule(table, r, masks[ci], t == MISSING)?;
        }
    }
    Ok(masks)
}

/// One rule's checkentry as the kernel runs it at replace: its matches in order, then its
/// target, with `hooks` the hook mask of its chain; `missing`: it jumps to no chain.
fn check_rule(table: &Table, r: &Rule, hooks: u8, missing: bool) -> Result<()> {
    let cx = CheckCtx {
        table: table.kind,
        hooks,
        ip: &r.ip,
        matches: &r.matches,
    };
    for m in &r.matches {
        m.check_entry(&cx)?;
    }
    match &r.target {
        Target::Ext(t) => t.check_entry(&cx),
        Target::Jump(_) | Target::Goto(_) if missing => Err(Error::kernel(Errno::NoEnt)),
        _ => Ok(()),
    }
}

/// The chain a rule jumps or goes to, by name.
fn jump_name(r: &Rule) -> Option<&str> {
    match &r.target {
        Target::Jump(n) | Target::Goto(n) => Some(n),
        _ => None,
    }
}

/// The chains rule by rule of chain `u` jumps or goes to (missing names skipped).
fn successors(table: &Table, u: usize) -> impl Iterator<Item = usize> + '_ {
    table.chains[u]
        .rules
        .iter()
        .filter_map(|r| jump_name(r).and_then(|n| table.chain_index(n)))
}

/// Whether a jump from chain `c` (reachable from hooks: `masks[c] != 0`) to chain `t`, just
/// added, makes a loop the kernel refuses: a cycle reachable from `t` (through `c` again, or a
/// cycle among chains no hook reached before). `masks` are the hook masks without the new
/// jumps, all of which leave `c`.
fn closes_loop(table: &Table, masks: &[u8], c: usize, t: usize) -> bool {
    // A chain some hook reaches whose hooks are not all c's cannot lead to c (c would have
    // its hooks) nor to an old cycle (the table had no loop): nothing to search there.
    let cleared = |u: usize| masks[u] != 0 && masks[u] & !masks[c] != 0;
    if cleared(t) {
        return false;
    }
    const NEW: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![NEW; table.chains.len()];
    // Depth-first, keeping the path: (chain, its next rule).
    let mut stack = vec![(t, 0usize)];
    state[t] = ON_PATH;
    while let Some(&mut (u, ref mut k)) = stack.last_mut() {
        let rules = &table.chains[u].rules;
        let mut next = None;
        while *k < rules.len() {
            let r = &rules[*k];
            *k += 1;
            if let Some(v) = jump_name(r).and_then(|n| table.chain_index(n)) {
                next = Some(v);
                break;
            }
        }
        match next {
            None => {
                state[u] = DONE;
                stack.pop();
            }
            Some(v) => match state[v] {
                ON_PATH => return true,
                DONE => {}
                _ if cleared(v) => state[v] = DONE,
                _ => {
                    state[v] = ON_PATH;
                    stack.push((v, 0));
                }
            },
        }
    }
    false
}

/// Adds hooks `m` to chain `t` and everything it reaches, recording each chain whose mask
/// grew with its old mask in `grown`. A chain already reached from `m` is not entered: its
/// successors were too.
fn spread(table: &Table, masks: &mut [u8], m: u8, t: usize, grown: &mut Vec<(usize, u8)>) {
    let mut stack = vec![t];
    while let Some(u) = stack.pop() {
        if masks[u] & m == m {
            continue;
        }
        grown.push((u, masks[u]));
        masks[u] |= m;
        stack.extend(successors(table, u));
    }
}

/// Checks rules `new` of chain `ci`, just put there, as the whole-table check would, given
/// that the table passed it without them with hook masks `masks`: Ok (and `masks` are the
/// table's now), or the error the whole-table check reports first (`masks` unchanged).
fn check_added(table: &Table, masks: &mut [u8], ci: usize, new: Range<usize>) -> Result<()> {
    let targets: Vec<u32> = table.chains[ci].rules[new.clone()]
        .iter()
        .filter_map(jump_name)
        .map(|n| table.chain_index(n).map_or(MISSING, |i| i as u32))
        .collect();
    // The whole-table check's order: jumps into built-in chains, then loops, then each
    // rule's checkentry in table order.
    if targets
        .iter()
        .any(|&t| t < MISSING && table.chains[t as usize].is_builtin())
    {
        return Err(Error::kernel(Errno::Inval));
    }
    let m = masks[ci];
    let mut grown = Vec::new();
    if m != 0 {
        let mut distinct: Vec<usize> = targets
            .iter()
            .filter(|&&t| t < MISSING)
            .map(|&t| t as usize)
            .collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.iter().any(|&t| closes_loop(table, masks, ci, t)) {
            return Err(Error::kernel(Errno::Loop));
        }
        for t in distinct {
            spread(table, masks, m, t, &mut grown);
        }
    }
    // Rules reached from more hooks than before are checked again, whole chains; of `ci`
    // (which cannot have grown: that would be a loop) only the new rules.
    let mut chains: Vec<usize> = grown.iter().map(|&(u, _)| u).collect();
    chains.push(ci);
    chains.sort_unstable();
    chains.dedup();
    let grew = |u: usize| grown.iter().any(|&(g, _)| g == u);
    let checked = || -> Result<()> {
        for &u in &chains {
            let rules = &table.chains[u].rules;
            let range = if u == ci && !grew(ci) {
                new.clone()
            } else {
                0..rules.len()
            };
            for r in &rules[range] {
                let missing = jump_name(r).is_some_and(|n| table.chain_index(n).is_none());
                check_rule(table, r, masks[u], missing)?;
            }
        }
        Ok(())
    };
    let res = checked();
    if res.is_err() {
        for &(u, old) in grown.iter().rev() {
            masks[u] = old;
        }
    }
    res
}

/// Adds a user chain (appended; [`Table::canonicalize`] restores libiptc's order at commit).
pub fn insert_user_chain(table: &mut Table, name: &str) {
    table.add_user_chain(name);
}

fn chain_mut<'a>(table: &'a mut Table, name: &str) -> Result<&'a mut Chain> {
    table
        .chain_mut(name)
        .ok_or_else(|| Error::kernel(Errno::NoEnt))
}

/// Checks that a `-j CHAIN` target names an existing chain (else iptables could not load it
/// as a target either).
fn check_jump(table: &Table, c: &Command) -> Result<()> {
    if let Some(j) = &c.jump_chain {
        let goto = c
            .rules
            .first()
            .is_some_and(|r| matches!(r.target, Target::Goto(_)));
        if goto && table.chain(j).is_none() {
            return Err(Error::param(format!("goto '{j}' is not a chain")));
        }
        if table.chain(j).is_none() {
            return Err(Error::param(format!(
                "Couldn't load target `{j}':No such file or directory\n"
            )));
        }
    }
    Ok(())
}

/// What a command produced besides changing the table.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Text for stdout (-S).
    pub output: String,
}

/// Applies a rule/chain command to `table` (not -L, which needs a resolver; see `list`).
/// The caller validates and commits the table afterwards.
pub fn apply(table: &mut Table, c: &Command) -> Result<Outcome> {
    let mut out = Outcome::default();
    if !matches!(
        c.cmd,
        Cmd::Check | Cmd::ListRules | Cmd::List | Cmd::Zero | Cmd::Policy
    ) {
        // What the checks learnt may not hold for the changed table.
        table.checked = CheckCache::default();
    }
    if matches!(
        c.cmd,
        Cmd::Append | Cmd::Insert | Cmd::Replace | Cmd::Delete | Cmd::Check
    ) {
        rule_prelude(table, c, &mut out)?;
    }
    match c.cmd {
        Cmd::Append => {
            let ch = chain_mut(table, &c.chain)?;
            ch.rules.extend(c.rules.iter().cloned());
        }
        Cmd::Insert => {
            let ch = chain_mut(table, &c.chain)?;
            let at = c.rulenum as usize - 1;
            if at > ch.rules.len() {
                return Err(Error::kernel(Errno::InsertIndex));
            }
            for (k, r) in c.rules.iter().enumerate() {
                ch.rules.insert(at + k, r.clone());
            }
        }
        Cmd::Replace => {
            let ch = chain_mut(table, &c.chain)?;
            let at = c.rulenum as usize - 1;
            if at >= ch.rules.len() {
                return Err(Error::kernel(Errno::ReplaceIndex));
            }
            ch.rules[at] = c.rules[0].clone();
        }
        Cmd::Delete | Cmd::Check => {
            // -C on a missing chain reports "Bad rule" (libiptc looks for the rule first).
            let ch = match table.chain_mut(&c.chain) {
                Some(ch) => ch,
                None if c.cmd == Cmd::Check => return Err(Error::kernel(Errno::BadRule)),
                None => return Err(Error::kernel(Errno::NoEnt)),
            };
            for r in &c.rules {
                let pos = ch.rules.iter().position(|x| x.same_as(r));
                match pos {
                    Some(p) if c.cmd == Cmd::Delete => {
                        ch.rules.remove(p);
                    }
                    Some(_) => {}
                    // Measured: with an extension target libiptc reports ENOENT instead.
                    None if matches!(r.target, Target::Ext(_)) => {
                        return Err(Error::kernel(Errno::NoEnt))
                    }
                    None => return Err(Error::kernel(Errno::BadRule)),
                }
            }
        }
        Cmd::DeleteNum => {
            let ch = chain_mut(table, &c.chain)?;
            let at = c.rulenum as usize - 1;
            if at >= ch.rules.len() {
                return Err(Error::kernel(Errno::DeleteIndex));
            }
            ch.rules.remove(at);
        }
        Cmd::Flush => {
            if c.chain.is_empty() {
                for ch in crate::save::ordered_chains(table) {
                    if c.verbose {
                        out.output
                            .push_str(&format!("Flushing chain `{}'\n", ch.name));
                    }
                }
                table.chains.iter_mut().for_each(|ch| ch.rules.clear());
            } else {
                chain_mut(table, &c.chain)?.rules.clear();
                if c.verbose {
                    out.output
                        .push_str(&format!("Flushing chain `{}'\n", c.chain));
                }
            }
        }
        Cmd::Zero => {
            let zero = |ch: &mut Chain, num: u32| {
                if num == 0 {
                    ch.counters = Counters::default();
                    ch.rules
                        .iter_mut()
                        .for_each(|r| r.counters = Counters::default());
                    Ok(())
                } else if let Some(r) = ch.rules.get_mut(num as usize - 1) {
                    r.counters = Counters::default();
                    Ok(())
                } else {
                    Err(Error::kernel(Errno::CounterIndex))
                }
            };
            if c.chain.is_empty() {
                if c.verbose {
                    for ch in crate::save::ordered_chains(table) {
                        out.output
                            .push_str(&format!("Zeroing chain `{}'\n", ch.name));
                    }
                }
                for ch in table.chains.iter_mut() {
                    zero(ch, 0)?;
                }
            } else {
                if c.verbose {
                    out.output
                        .push_str(&format!("Zeroing chain `{}'\n", c.chain));
                }
                zero(chain_mut(table, &c.chain)?, c.rulenum)?;
            }
        }
        Cmd::NewChain => {
            if table.chain(&c.chain).is_some() {
                return Err(Error::kernel(Errno::Exist));
            }
            insert_user_chain(table, &c.chain);
        }
        Cmd::DeleteChain => {
            let names: Vec<String> = if c.chain.is_empty() {
                crate::save::ordered_chains(table)
                    .iter()
                    .filter(|ch| !ch.is_builtin())
                    .map(|ch| ch.name.clone())
                    .collect()
            } else {
                vec![c.chain.clone()]
            };
            // iptables tries every chain and reports the last failure (nothing is committed).
            let mut last = None;
            for name in names {
                if c.verbose {
                    out.output.push_str(&format!("Deleting chain `{name}'\n"));
                }
                if let Err(e) = delete_chain(table, &name) {
                    last = Some(e);
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
        Cmd::Rename => {
            let old = table
                .chain(&c.chain)
                .ok_or_else(|| Error::kernel(Errno::NoEnt))?;
            if old.is_builtin() {
                return Err(Error::kernel(Errno::NoEnt));
            }
            if table.chain(&c.arg2).is_some() {
                return Err(Error::kernel(Errno::FileExists));
            }
            let idx = table.chain_index(&c.chain).unwrap();
            let mut ch = table.remove_chain(idx);
            ch.name = c.arg2.clone();
            let rules = std::mem::take(&mut ch.rules);
            insert_user_chain(table, &c.arg2);
            table.chain_mut(&c.arg2).unwrap().rules = rules;
            for ch in table.chains.iter_mut() {
                for r in ch.rules.iter_mut() {
                    match &mut r.target {
                        Target::Jump(n) | Target::Goto(n) if *n == c.chain => *n = c.arg2.clone(),
                        _ => {}
                    }
                }
            }
        }
        Cmd::Policy => set_policy(table, &c.chain, &c.arg2, c.counters)?,
        Cmd::ListRules => {
            if !c.chain.is_empty() && table.chain(&c.chain).is_none() {
                return Err(Error::kernel(Errno::NoEnt));
            }
            let chain = (!c.chain.is_empty()).then_some(c.chain.as_str());
            out.output = crate::save::list_rules(table, chain, c.rulenum, c.verbose);
            if c.zero_too {
                if c.verbose {
                    for ch in crate::save::ordered_chains(table) {
                        if chain.is_none_or(|n| n == ch.name) {
                            out.output
                                .push_str(&format!("Zeroing chain `{}'\n", ch.name));
                        }
                    }
                }
                zero_all(table, chain);
            }
        }
        // A listing changes nothing and is printed by `list::list`; callers that pass one here
        // get an error rather than a panic.
        Cmd::List => {
            return Err(Error::other(
                "internal: -L is printed by list::list, not executed",
            ))
        }
    }
    Ok(out)
}

/// What every rule command (-A -I -R -D -C) starts with: the jump target must exist,
/// -D/-C refuse a jump into a built-in chain, and -v prints the rules.
fn rule_prelude(table: &Table, c: &Command, out: &mut Outcome) -> Result<()> {
    check_jump(table, c)?;
    // libiptc refuses a jump into a built-in chain before looking for the rule.
    if matches!(c.cmd, Cmd::Delete | Cmd::Check)
        && c.jump_chain
            .as_deref()
            .and_then(|j| table.chain(j))
            .is_some_and(|t| t.is_builtin())
    {
        return Err(Error::kernel(Errno::Inval));
    }
    verbose_rules(out, c);
    Ok(())
}

/// With -v, iptables prints each rule of -A/-I/-R/-D/-C in its one-line form.
fn verbose_rules(out: &mut Outcome, c: &Command) {
    if c.verbose {
        for r in &c.rules {
            out.output.push_str(&crate::list::rule_line_notable(r));
            out.output.push('\n');
        }
    }
}

/// The `-A` of [`apply_owned`] (not verbose), also answering where the rules went and where
/// they jump: (chain index, index of the `-j`/`-g` chain or [`NOT_JUMP`]), so a restore
/// can hand the commit checks jumps already resolved ([`validate_resolved`]). `room`: how
/// many more rules the chain will get soon (a capacity hint).
#[inline(always)]
pub(crate) fn append_resolved(
    table: &mut Table,
    c: Parsed,
    last: &mut LastChains,
    room: usize,
) -> Result<(usize, u32)> {
    debug_assert!(c.cmd == Cmd::Append && !c.verbose);
    // Restore appends to tables it cloned or made: they hold no check cache to empty.
    debug_assert!(matches!(table.checked.0, Known::Nothing));
    // check_jump's checks and errors, with one lookup.
    let target = match c.jump_chain() {
        None => NOT_JUMP,
        Some(j) => match LastChains::find(table, &mut last.jump, j) {
            Some(i) => i as u32,
            None => {
                let goto = c
                    .rules
                    .first()
                    .is_some_and(|r| matches!(r.target, Target::Goto(_)));
                return Err(if goto {
                    Error::param(format!("goto '{j}' is not a chain"))
                } else {
                    Error::param(format!(
                        "Couldn't load target `{j}':No such file or directory\n"
                    ))
                });
            }
        },
    };
    let idx = LastChains::find(table, &mut last.chain, &c.chain)
        .ok_or_else(|| Error::kernel(Errno::NoEnt))?;
    let rules = &mut table.chains[idx].rules;
    // Exactly the room for a chain's first rules (most chains get all theirs in one run of
    // lines); later runs grow the usual way (amortized doubling).
    if rules.is_empty() {
        rules.reserve_exact(room);
    } else {
        rules.reserve(room);
    }
    c.rules.append_to(rules);
    Ok((idx, target))
}

/// The chains the previous [`append_resolved`] used: consecutive restore lines mostly
/// append to one chain and often jump to the same one, so comparing one name (with a chain
/// just touched, in cache) replaces a lookup in the name index.
#[derive(Debug, Default)]
pub(crate) struct LastChains {
    chain: Option<usize>,
    jump: Option<usize>,
}

impl LastChains {
    /// The index of chain `name`, trying `hint` first and remembering the answer there.
    fn find(table: &Table, hint: &mut Option<usize>, name: &str) -> Option<usize> {
        if let Some(i) = *hint {
            // Names are unique in a table: an equal name is the chain.
            if table.chains.get(i).is_some_and(|c| c.name == name) {
                return Some(i);
            }
        }
        let i = table.chain_index(name)?;
        *hint = Some(i);
        Some(i)
    }
}

/// [`apply`] taking the command by value: `-A` moves its rules into the chain (the restore
/// fast path); everything else goes through [`apply`].
pub fn apply_owned(table: &mut Table, c: Command) -> Result<Outcome> {
    if c.cmd != Cmd::Append || c.verbose {
        return apply(table, &c);
    }
    table.checked = CheckCache::default();
    check_jump(table, &c)?;
    chain_mut(table, &c.chain)?.rules.extend(c.rules);
    Ok(Outcome::default())
}

/// Zeroes counters of one chain or all.
pub fn zero_all(table: &mut Table, chain: Option<&str>) {
    for ch in table.chains.iter_mut() {
        if chain.is_none_or(|n| n == ch.name) {
            ch.counters = Counters::default();
            ch.rules
                .iter_mut()
                .for_each(|r| r.counters = Counters::default());
        }
    }
}

/// -X CHAIN: only empty, unreferenced user chains (EMLINK when referenced, ENOTEMPTY else).
pub fn delete_chain(table: &mut Table, name: &str) -> Result<()> {
    let idx = table
        .chain_index(name)
        .ok_or_else(|| Error::kernel(Errno::NoEnt))?;
    if table.chains[idx].is_builtin() {
        return Err(Error::kernel(Errno::Inval));
    }
    if table.references(name) > 0 {
        return Err(Error::kernel(Errno::MLink));
    }
    if !table.chains[idx].rules.is_empty() {
        return Err(Error::kernel(Errno::NotEmpty));
    }
    table.remove_chain(idx);
    Ok(())
}

/// -P CHAIN POLICY [with counters].
pub fn set_policy(
    table: &mut Table,
    chain: &str,
    policy: &str,
    counters: Option<Counters>,
) -> Result<()> {
    let ch = table
        .chain_mut(chain)
        .ok_or_else(|| Error::kernel(Errno::BadBuiltin))?;
    if !ch.is_builtin() {
        return Err(Error::kernel(Errno::BadBuiltin));
    }
    ch.policy = match policy {
        "ACCEPT" => Policy::Accept,
        "DROP" => Policy::Drop,
        _ => return Err(Error::kernel(Errno::BadPolicy)),
    };
    if let Some(c) = counters {
        ch.counters = c;
    }
    Ok(())
}

/// Runs one non-listing command against the ruleset like iptables does: take the table, change
/// it, validate as the kernel would, and replace it only when valid. Returns stdout text; for
/// -C, `Err(BadRule)` means "no such rule".
///
/// Rule, chain (-N, -X CHAIN), counter, policy and flush commands change the committed
/// table in place and are checked incrementally ([`CheckCache`]); the others (-E, -X of
/// all chains, a table whose checks are not known) change a copy that is checked whole and
/// then replaces the table.
pub fn execute(rs: &mut Ruleset, c: &Command) -> Result<String> {
    let table = rs.table_mut(c.table);
    if matches!(c.cmd, Cmd::Check | Cmd::ListRules) {
        // Reading commands change nothing (-S -Z zeroes counters only, after any error).
        return apply(table, c).map(|o| o.output);
    }
    let in_place = match c.cmd {
        Cmd::Append | Cmd::Insert | Cmd::DeleteNum | Cmd::Zero | Cmd::Policy | Cmd::Flush => true,
        Cmd::Replace | Cmd::Delete => c.rules.len() == 1,
        // -N; -X of one chain (-X of all tries each and commits none if one fails).
        Cmd::NewChain => true,
        Cmd::DeleteChain => !c.chain.is_empty(),
        _ => false,
    };
    if in_place {
        if let Some(masks) = known_masks(table) {
            return execute_in_place(table, c, masks);
        }
    }
    let mut table = table.clone();
    let out = apply(&mut table, c)?;
    table.canonicalize();
    let masks = validate_masks(&table)?;
    reset_policy_counters(&mut table, c);
    table.checked = CheckCache(Known::Masks(masks));
    *rs.table_mut(c.table) = table;
    Ok(out.output)
}

/// Measured with 1.8.9 (tests/recorded/counters/persistence.txt): every table-changing
/// command resets the built-in chains' policy counters, except what -P -c sets.
fn reset_policy_counters(table: &mut Table, c: &Command) {
    for ch in table.chains.iter_mut().filter(|ch| ch.is_builtin()) {
        if !(c.cmd == Cmd::Policy && ch.name == c.chain && c.counters.is_some()) {
            ch.counters = Counters::default();
        }
    }
}

/// The hook masks of `table` when it passes the kernel's checks as it is, from its cache
/// (taken out of it) or found now; None when unknown (a table not in libiptc's order, which
/// [`execute`]'s general path sorts first) or refused.
fn known_masks(table: &mut Table) -> Option<Vec<u8>> {
    match std::mem::take(&mut table.checked.0) {
        Known::Masks(m) if m.len() == table.chains.len() => Some(m),
        // Passed before, so no loop: only the masks are wanted.
        Known::Valid => hook_masks(table).ok(),
        _ if table.is_canonical() => validate_masks(table).ok(),
        _ => None,
    }
}

/// A command run on the committed table itself, which passes the checks with hook masks
/// `masks`: output, result and error are those of [`execute`]'s general path (copy, change,
/// check whole, replace), and after an error the table is as it was.
fn execute_in_place(table: &mut Table, c: &Command, masks: Vec<u8>) -> Result<String> {
    let mut out = Outcome::default();
    let (res, known) = match c.cmd {
        Cmd::Append | Cmd::Insert | Cmd::Replace | Cmd::Delete | Cmd::DeleteNum => {
            change_rules(table, c, masks, &mut out)
        }
        // Counters and policies move no hook mask; each refusal comes before any change.
        Cmd::Zero | Cmd::Policy | Cmd::Flush => {
            // A flushed jump may leave chains reachable from fewer hooks.
            let jumps = c.cmd == Cmd::Flush
                && table
                    .chains
                    .iter()
                    .filter(|ch| c.chain.is_empty() || ch.name == c.chain)
                    .any(|ch| ch.rules.iter().any(|r| jump_name(r).is_some()));
            match apply(table, c) {
                Ok(o) => {
                    out = o;
                    (
                        Ok(()),
                        if jumps {
                            Known::Valid
                        } else {
                            Known::Masks(masks)
                        },
                    )
                }
                Err(e) => (Err(e), Known::Masks(masks)),
            }
        }
        // A new chain is reached from no hook; a chain -X takes out had no rules and no
        // rule jumping to it. Only the chains' positions move.
        Cmd::NewChain | Cmd::DeleteChain => {
            let idx = table.chain_index(&c.chain);
            match apply(table, c) {
                Ok(o) => {
                    out = o;
                    let mut masks = masks;
                    match idx {
                        Some(i) => {
                            masks.remove(i);
                        }
                        None => masks.push(0),
                    }
                    // -N appended the chain: into libiptc's order, the masks alike.
                    if let Some(order) = table.canonicalize_order() {
                        masks = order.iter().map(|&o| masks[o as usize]).collect();
                    }
                    (Ok(()), Known::Masks(masks))
                }
                Err(e) => (Err(e), Known::Masks(masks)),
            }
        }
        _ => unreachable!("execute sends only these commands here"),
    };
    table.checked = CheckCache(known);
    res?;
    #[cfg(debug_assertions)]
    match (&table.checked.0, validate_masks(table)) {
        (Known::Masks(m), Ok(full)) => debug_assert_eq!(*m, full, "cached masks after {c:?}"),
        (Known::Valid, Ok(_)) => {}
        (_, whole) => panic!("in-place {c:?} passed; the whole table: {whole:?}"),
    }
    reset_policy_counters(table, c);
    Ok(out.output)
}

/// -A -I -R -D on the table itself (see [`execute_in_place`]): the result and what is known
/// of the table afterwards.
fn change_rules(
    table: &mut Table,
    c: &Command,
    masks: Vec<u8>,
    out: &mut Outcome,
) -> (Result<()>, Known) {
    let refuse = |e: Error, masks: Vec<u8>| (Err(e), Known::Masks(masks));
    if let Err(e) = rule_prelude(table, c, out) {
        return refuse(e, masks);
    }
    let Some(ci) = table.chain_index(&c.chain) else {
        return refuse(Error::kernel(Errno::NoEnt), masks);
    };
    let rules = &mut table.chains[ci].rules;
    let at = (c.rulenum as usize).saturating_sub(1);
    // Where the command's rules go, and the rule it takes out.
    let (at, removed) = match c.cmd {
        Cmd::Append => (rules.len(), None),
        Cmd::Insert if at > rules.len() => return refuse(Error::kernel(Errno::InsertIndex), masks),
        Cmd::Insert => (at, None),
        Cmd::Replace if at >= rules.len() => {
            return refuse(Error::kernel(Errno::ReplaceIndex), masks)
        }
        Cmd::DeleteNum if at >= rules.len() => {
            return refuse(Error::kernel(Errno::DeleteIndex), masks)
        }
        Cmd::Replace | Cmd::DeleteNum => (at, Some(rules.remove(at))),
        _ => match rules.iter().position(|x| x.same_as(&c.rules[0])) {
            Some(p) => (p, Some(rules.remove(p))),
            // Measured: with an extension target libiptc reports ENOENT instead.
            None if matches!(c.rules[0].target, Target::Ext(_)) => {
                return refuse(Error::kernel(Errno::NoEnt), masks)
            }
            None => return refuse(Error::kernel(Errno::BadRule), masks),
        },
    };
    let added: &[Rule] = match c.cmd {
        Cmd::Append | Cmd::Insert | Cmd::Replace => &c.rules,
        _ => &[],
    };
    // Taking a rule out never makes a table fail the checks (fewer rules, and no chain
    // reachable from more hooks); but a jump taken out may leave chains reachable from
    // fewer hooks, unless the chain still jumps there (or a new rule does).
    let gone = removed
        .as_ref()
        .and_then(jump_name)
        .filter(|&t| !rules.iter().chain(added).any(|r| jump_name(r) == Some(t)));
    let mut stale = gone.is_some();
    // `before`: the masks to keep if the command is refused, when `masks` are new ones.
    let (mut masks, before) = if stale && added.iter().any(|r| jump_name(r).is_some()) {
        // The new jump's checks need every mask: find them for the table without the rule
        // taken out (it passes: a part of a table that passed).
        stale = false;
        match hook_masks(table) {
            Ok(m) => (m, Some(masks)),
            Err(e) => unreachable!("a table that passed, less a rule, failed: {e:?}"),
        }
    } else {
        // Exact, or (stale) right for chain `ci`, the only one the new rules' checks read.
        (masks, None)
    };
    let rules = &mut table.chains[ci].rules;
    rules.splice(at..at, added.iter().cloned());
    if let Err(e) = check_added(table, &mut masks, ci, at..at + added.len()) {
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            validate_table(table).err().as_ref(),
            Some(&e),
            "in-place {c:?} refused; the whole table"
        );
        let rules = &mut table.chains[ci].rules;
        rules.drain(at..at + added.len());
        if let Some(r) = removed {
            rules.insert(at, r);
        }
        // check_added left `masks` as they were.
        return refuse(e, before.unwrap_or(masks));
    }
    (
        Ok(()),
        if stale {
            Known::Valid
        } else {
            Known::Masks(masks)
        },
    )
}

/// True if `rule` equals one in `chain` (for -C).
pub fn contains(table: &Table, chain: &str, rule: &Rule) -> bool {
    table
        .chain(chain)
        .is_some_and(|c| c.rules.iter().any(|r| r.same_as(rule)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Ruleset;
    use crate::parse::parse_command;

    #[test]
    fn a_listing_passed_to_execute_is_an_error_not_a_panic() {
        let mut rs = Ruleset::default();
        let c = parse_command(&["-L".to_string()], false, None).unwrap();
        let e = execute(&mut rs, &c).unwrap_err();
        assert!(e.msg.contains("list::list"), "{}", e.msg);
    }
}
