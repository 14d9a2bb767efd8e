//! Applying commands to a ruleset, and the kernel's checks when a table is committed
//! (replaced): jump targets exist, no loops, each extension's checkentry for the hooks that
//! reach its chain.

use crate::error::{Errno, Error, Result};
use crate::ext::CheckCtx;
use crate::model::{Chain, Counters, Policy, Rule, Ruleset, Table, Target};
use crate::parse::{Cmd, Command, Parsed};

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
    // Kernel rule: a verdict may not jump into a built-in chain (checked before loops).
    if targets
        .iter()
        .any(|&t| t < MISSING && table.chains[t as usize].is_builtin())
    {
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
            let cx = CheckCtx {
                table: table.kind,
                hooks: masks[ci],
                ip: &r.ip,
                matches: &r.matches,
            };
            for m in &r.matches {
                m.check_entry(&cx)?;
            }
            match &r.target {
                Target::Ext(t) => t.check_entry(&cx)?,
                // Jumps into built-in chains were refused above.
                Target::Jump(_) | Target::Goto(_) if t == MISSING => {
                    return Err(Error::kernel(Errno::NoEnt))
                }
                _ => {}
            }
        }
    }
    Ok(())
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
    match c.cmd {
        Cmd::Append | Cmd::Insert | Cmd::Replace | Cmd::Delete | Cmd::Check => {
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
            verbose_rules(&mut out, c);
        }
        _ => {}
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

/// With -v, iptables prints each rule of -A/-I/-R/-D/-C in its one-line form.
fn verbose_rules(out: &mut Outcome, c: &Command) {
    if c.verbose {
        for r in &c.rules {
            out.output.push_str(&crate::list::rule_line_notable(r));
            out.output.push('\n');
        }
    }
}

/// [`apply`] taking the command by value: `-A` moves its rules into the chain (the restore
/// fast path); everything else goes through [`apply`].
/// `-A` on a committed table without copying it: the rules are appended in place, the table
/// is validated, and on a refusal the appended rules are taken off again, so the table is left
/// as it was (what the copy-and-replace path of [`execute`] guarantees too).
fn append_in_place(table: &mut Table, c: &Command) -> Result<String> {
    let before = table.chain(&c.chain).map(|ch| ch.rules.len());
    let out = apply(table, c)?;
    if let Err(e) = validate_table(table) {
        if let (Some(n), Some(ch)) = (before, table.chain_mut(&c.chain)) {
            ch.rules.truncate(n);
        }
        return Err(e);
    }
    // As in execute: a table-changing command resets the policy counters.
    for ch in table.chains.iter_mut().filter(|ch| ch.is_builtin()) {
        ch.counters = Counters::default();
    }
    Ok(out.output)
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

pub fn apply_owned(table: &mut Table, c: Command) -> Result<Outcome> {
    if c.cmd != Cmd::Append || c.verbose {
        return apply(table, &c);
    }
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
pub fn execute(rs: &mut Ruleset, c: &Command) -> Result<String> {
    if c.cmd == Cmd::Append && rs.table_mut(c.table).is_canonical() {
        return append_in_place(rs.table_mut(c.table), c);
    }
    let mut table = rs.table_mut(c.table).clone();
    let out = apply(&mut table, c)?;
    if matches!(c.cmd, Cmd::Check | Cmd::ListRules) {
        // Reading commands do not replace the table (except -S -Z, zeroing).
        if c.zero_too {
            *rs.table_mut(c.table) = table;
        }
        return Ok(out.output);
    }
    table.canonicalize();
    validate_table(&table)?;
    // Measured with 1.8.9 (tests/recorded/counters/persistence.txt): every table-changing
    // command resets the built-in chains' policy counters, except what -P -c sets.
    for ch in table.chains.iter_mut().filter(|ch| ch.is_builtin()) {
        if !(c.cmd == Cmd::Policy && ch.name == c.chain && c.counters.is_some()) {
            ch.counters = Counters::default();
        }
    }
    *rs.table_mut(c.table) = table;
    Ok(out.output)
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
