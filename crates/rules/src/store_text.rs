//! The store's text of a big restore printed beside it: while the restoring thread parses
//! and commits, a second thread parses each `-A` line of the input again on its own (a rule
//! line's meaning depends on nothing but the line and its table) and prints its rules as the
//! store writes them, in input order, into the store's temporary file as it goes
//! ([`PrintSink`]) or in memory. When a block is complete it also sorts its chains by name
//! with their lines' byte ranges ([`Order`]). The store write then needs no copy of the
//! lines: its format 3 keeps them where they are and indexes, per table, the ranges that
//! joined give the table's block in iptables-save's chain order (`save::STORE_RUNS`); it
//! writes only the chain lines (from the committed table), the lines the printing had not
//! reached when the restore ended, and the index.
//!
//! Used only for a plain table block (`restore::InputBlocks`: `:CHAIN` and `-A` lines
//! only, the whole table, no `-v`/`--test`/`--noflush`, no host name looked up): its
//! committed chains hold exactly the rules of their `-A` lines in input order. Anything
//! else, and a block whose rule counts do not add up, is formatted.

use crate::model::{Table, TableKind};
use crate::parse;
use crate::restore::RestoreOpts;
use crate::save;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// No next piece.
const NONE: u32 = u32::MAX;

/// The printed rule lines of one table block of the input.
#[derive(Clone, PartialEq, Eq)]
pub struct PrintedBlock {
    /// Where the block's `*table` line starts in the input (bytes).
    pub(crate) start: usize,
    pub(crate) kind: TableKind,
    /// The store lines of the block's rule lines, in input order (with a [`PrintSink`]: the
    /// part not yet written to its file, empty once the block is done).
    text: String,
    /// With a [`PrintSink`]: where the block's text starts in the sink's file, and the
    /// sink's id.
    at: Option<(u64, u64)>,
    /// Bytes of the text already written to the sink's file.
    spilled: usize,
    /// One a rule line, in input order.
    pieces: Vec<Piece>,
    /// Each chain's slot in `slots` (emptied when `order` is made).
    chains: HashMap<Box<str>, u32>,
    /// A slot a chain: its name, its first and last piece and how many rules its pieces
    /// hold (first NONE: none yet).
    slots: Vec<(Box<str>, Run)>,
    /// The slots are in name order: the block's `:CHAIN` lines came before its first `-A`
    /// line (so the chains were known and sorted then, on this thread, while the restore
    /// parsed on), and no line named another chain afterwards.
    in_order: bool,
    /// The `:CHAIN` lines' names before the first `-A` line.
    declared: Vec<Box<str>>,
    /// The chains in name order with their lines as ranges of the text, made on the
    /// printing thread when the block is complete.
    order: Option<Order>,
    /// Every line is iptables-save's text (see `save::STORE_INDEX`).
    canonical: bool,
}

impl std::fmt::Debug for PrintedBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PrintedBlock({} at {}, {} lines, {} bytes)",
            self.kind.name(),
            self.start,
            self.pieces.len(),
            self.text.len()
        )
    }
}

/// A block's chains in name order (bytes), each with its printed lines as ranges of the
/// block's text (pieces that follow each other in the text joined): what the store write
/// needs, in the order it needs it, so that it neither looks chains up nor walks pieces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Order {
    /// The names back to back.
    names: String,
    /// By name: where its name ends in `names`, where its ranges end in `ranges`, its rules.
    chains: Vec<(usize, usize, u32)>,
    ranges: Vec<(usize, usize)>,
}

impl Order {
    fn name(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.chains[i - 1].0 };
        &self.names[start..self.chains[i].0]
    }

    fn ranges_of(&self, i: usize) -> (usize, usize) {
        let start = if i == 0 { 0 } else { self.chains[i - 1].1 };
        (start, self.chains[i].1)
    }

    fn find(&self, name: &str) -> Option<usize> {
        let (mut lo, mut hi) = (0, self.chains.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.name(mid).as_bytes().cmp(name.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(mid),
            }
        }
        None
    }
}

/// The store lines of one input line: `text[start..end]`, `rules` rules (a line with
/// several addresses gives several), and the next piece of the same chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Piece {
    start: usize,
    end: usize,
    rules: u32,
    next: u32,
}

/// A chain's pieces (or a run of them): the first, the last, how many rules they hold.
type Run = (u32, u32, u32);

/// The file a restore's printing thread writes its store lines to as it prints them
/// (`RestoreOpts::print_sink`): the store's temporary file (`store::StoreWrite`), so that at
/// the store write only the chain lines, the index and the sync are left. Each block's text
/// goes to the file in pieces of [`SPILL_EVERY`] bytes, at the end of what was written
/// before (one printing thread writes at a time), the kernel asked to start writing them to
/// the disk every 2 MiB.
#[derive(Clone)]
pub struct PrintSink {
    inner: std::sync::Arc<SinkFile>,
}

struct SinkFile {
    /// Unique among the sinks of this process (the blocks written to it name it).
    id: u64,
    file: std::fs::File,
    /// Where the next piece goes (the end of what was written).
    end: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for PrintSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrintSink(at {})", self.end())
    }
}

/// Bytes of a block's printed text gathered before they are written to a [`PrintSink`].
const SPILL_EVERY: usize = 1 << 20;

/// Bytes written to a [`PrintSink`] between two requests to the kernel to start writing them
/// to the disk.
const SINK_WRITEBACK_EVERY: u64 = 2 << 20;

impl PrintSink {
    /// A sink writing to `file` from byte `end` on.
    pub(crate) fn new(file: std::fs::File, end: u64) -> PrintSink {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        PrintSink {
            inner: std::sync::Arc::new(SinkFile {
                id: NEXT.fetch_add(1, Ordering::Relaxed),
                file,
                end: std::sync::atomic::AtomicU64::new(end),
            }),
        }
    }

    /// The end of what was written.
    pub(crate) fn end(&self) -> u64 {
        self.inner.end.load(Ordering::Acquire)
    }

    pub(crate) fn file(&self) -> &std::fs::File {
        &self.inner.file
    }

    /// Appends `bytes` at the end; false (the end unchanged) when the write failed.
    fn append(&self, bytes: &[u8]) -> bool {
        use std::os::unix::fs::FileExt;
        let end = self.end();
        if self.inner.file.write_all_at(bytes, end).is_err() {
            return false;
        }
        self.inner
            .end
            .store(end + bytes.len() as u64, Ordering::Release);
        true
    }
}

/// Whether a restore with `opts` prints its store text on a second thread: only when
/// `opts.print_store` asks for it.
pub(crate) fn wanted(opts: &RestoreOpts) -> bool {
    if opts.noflush || opts.test || opts.verbose || opts.store_escapes || opts.trusted {
        return false;
    }
    // Only when asked: on the quiet 2-core machine the printing thread, which parses every
    // line again, slowed the restore beside it (45-46 -> 54-85 ms for 100k rules) more than
    // it saved at the store write (21-22 -> 17-28 ms), and did not keep up with it; the
    // store text is formatted after the commit instead, while a second thread writes it
    // (`store::write_beside`).
    opts.print_store == Some(true)
}

/// Prints the rule lines of every table block of `lines` (iptables-restore's fgets lines of
/// `input`) in the store's form, as the restoring thread reads the same lines; stops at the
/// first line the restore would refuse, and when `cancel` is set (the restore failed; what
/// was printed is then not used).
pub(crate) fn print_blocks(
    input: &str,
    lines: &[&str],
    opts: &RestoreOpts,
    cancel: &AtomicBool,
) -> Vec<PrintedBlock> {
    print_blocks_upto(input, lines, opts, cancel, usize::MAX)
}

/// [`print_blocks`], stopping as if cancelled at line index `stop` (for tests).
fn print_blocks_upto(
    input: &str,
    lines: &[&str],
    opts: &RestoreOpts,
    cancel: &AtomicBool,
    stop: usize,
) -> Vec<PrintedBlock> {
    let base = input.as_ptr() as usize;
    let sink = opts.print_sink.as_ref();
    // What was written to the sink since the kernel was last asked to write it back.
    let mut synced_to = sink.map_or(0, PrintSink::end);
    let mut spill = |block: &mut PrintedBlock, usable: &mut bool| {
        let Some(sink) = sink else { return };
        if !*usable || block.text.is_empty() {
            return;
        }
        if !sink.append(block.text.as_bytes()) {
            // The file is not usable (a full disk...): this block is formatted at the
            // store write, which then meets the same error.
            *usable = false;
            return;
        }
        block.spilled += block.text.len();
        block.text.clear();
        let end = sink.end();
        if end - synced_to >= SINK_WRITEBACK_EVERY {
            crate::store::start_writeback(sink.file(), synced_to, end - synced_to);
            synced_to = end;
        }
    };
    let mut done = Vec::new();
    let mut current: Option<PrintedBlock> = None;
    let mut usable = true;
    let mut skipping = false;
    let mut tokens: Vec<Cow<str>> = Vec::with_capacity(32);
    let mut scratch = String::new();
    let mut head = String::new();
    let mut head_canonical = true;
    let mut head_chain = String::new();
    // The first and last piece of the current run of lines appending to `head_chain`, and
    // their rules (linked into the chain's list when the run ends: one lookup a run, not a
    // line).
    let mut run: Option<Run> = None;
    for (idx, &line) in lines.iter().enumerate() {
        if idx >= stop || cancel.load(Ordering::Relaxed) {
            // The restore is done: what was printed of the open block is used, its other
            // lines are formatted.
            if let Some(mut block) = current.take() {
                if let Some(r) = run.take() {
                    block.link_run(&head_chain, r);
                }
                spill(&mut block, &mut usable);
                if usable {
                    block.make_order();
                    done.push(block);
                }
            }
            break;
        }
        if line == "\n" || line.starts_with('#') {
            continue;
        }
        if skipping {
            skipping = line != "COMMIT\n";
            continue;
        }
        let Some(block) = current.as_mut() else {
            // Outside a block only `*table` may come (anything else fails the restore).
            let Some(name) = line
                .strip_prefix('*')
                .and_then(|l| l.split([' ', '\t', '\n']).find(|s| !s.is_empty()))
            else {
                break;
            };
            if opts.only_table.as_deref().is_some_and(|t| t != name) {
                skipping = true;
                continue;
            }
            let Some(kind) = TableKind::from_name(name) else {
                break;
            };
            current = Some(PrintedBlock {
                start: line.as_ptr() as usize - base,
                kind,
                text: String::with_capacity(if sink.is_some() {
                    SPILL_EVERY + (64 << 10)
                } else {
                    lines.len().saturating_sub(idx).min(1 << 20) * 150
                }),
                at: sink.map(|k| (k.end(), k.inner.id)),
                spilled: 0,
                pieces: Vec::with_capacity(lines.len().saturating_sub(idx)),
                chains: HashMap::new(),
                slots: Vec::new(),
                in_order: false,
                declared: Vec::new(),
                order: None,
                canonical: true,
            });
            usable = true;
            run = None;
            head.clear();
            continue;
        };
        if line == "COMMIT\n" {
            let mut block = current.take().expect("in a block");
            if let Some(r) = run.take() {
                block.link_run(&head_chain, r);
            }
            spill(&mut block, &mut usable);
            if usable {
                block.make_order();
                done.push(block);
            }
            continue;
        }
        if !usable {
            continue;
        }
        if let Some(chain) = line.strip_prefix(':') {
            // The name as iptables-restore takes it (up to a blank); a wrong guess only
            // costs speed (the store write checks every name against the committed table).
            let name = chain.split([' ', '\t', '\n']).next().unwrap_or("");
            if block.slots.is_empty() && !block.in_order {
                block.declared.push(Box::from(name));
            } else if !block.chains.contains_key(name) {
                block.add_slot(name);
            }
            continue;
        }
        if !block.in_order && block.slots.is_empty() {
            block.number_declared();
        }
        let mut general = false;
        let parsed = crate::restore::parse_rule_line(
            line,
            idx + 1,
            block.kind,
            opts,
            &mut tokens,
            &mut general,
        );
        let cmd = match parsed {
            Ok(cmd) if cmd.cmd == parse::Cmd::Append && !cmd.verbose => cmd,
            // Another command: the block is formatted (and a failing line ends the restore).
            _ => {
                usable = false;
                continue;
            }
        };
        if head_chain != *cmd.chain || head.is_empty() {
            if let Some(r) = run.take() {
                block.link_run(&head_chain, r);
            }
            head.clear();
            head_canonical = save::push_store_rule_head(&mut head, &cmd.chain);
            head_chain.clear();
            head_chain.push_str(&cmd.chain);
        }
        block.canonical &= head_canonical;
        let rules: &[crate::model::Rule] = match &cmd.rules {
            parse::Rules::One(r) => std::slice::from_ref(r),
            parse::Rules::Many(v) => v,
        };
        let start = block.spilled + block.text.len();
        for r in rules {
            save::push_store_rule_line(
                &mut block.text,
                &head,
                r,
                &mut scratch,
                &mut block.canonical,
            );
        }
        let end = block.spilled + block.text.len();
        if block.text.len() >= SPILL_EVERY {
            spill(block, &mut usable);
        }
        let i = block.pieces.len() as u32;
        if i == NONE {
            usable = false;
            continue;
        }
        block.pieces.push(Piece {
            start,
            end,
            rules: rules.len() as u32,
            next: NONE,
        });
        let n = rules.len() as u32;
        run = match run {
            Some((first, last, m)) => {
                block.pieces[last as usize].next = i;
                Some((first, i, m + n))
            }
            None => Some((i, i, n)),
        };
    }
    done
}

impl PrintedBlock {
    /// Numbers the chains of the `:CHAIN` lines read so far in name order (at the block's
    /// first `-A` line).
    fn number_declared(&mut self) {
        let mut names = std::mem::take(&mut self.declared);
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        names.dedup();
        self.chains.reserve(names.len());
        self.slots.reserve(names.len());
        for name in names {
            self.chains.insert(name.clone(), self.slots.len() as u32);
            self.slots.push((name, (NONE, NONE, 0)));
        }
        self.in_order = true;
    }

    /// A slot for a chain met after the chains were numbered (out of name order then).
    fn add_slot(&mut self, name: &str) -> u32 {
        let i = self.slots.len() as u32;
        self.chains.insert(Box::from(name), i);
        self.slots.push((Box::from(name), (NONE, NONE, 0)));
        if i > 0 {
            self.in_order &= self.slots[i as usize - 1].0.as_bytes() < name.as_bytes();
        }
        i
    }

    /// Makes `order` from the slots (in name order already, or sorted here) and empties
    /// `chains` and `slots`.
    fn make_order(&mut self) {
        if !self.in_order && self.slots.is_empty() {
            self.number_declared();
        }
        let mut by_name: Vec<u32> = (0..self.slots.len() as u32).collect();
        if !self.in_order {
            let slots = &self.slots;
            by_name.sort_unstable_by(|&a, &b| {
                slots[a as usize]
                    .0
                    .as_bytes()
                    .cmp(slots[b as usize].0.as_bytes())
            });
        }
        let mut o = Order {
            names: String::with_capacity(self.slots.iter().map(|c| c.0.len()).sum()),
            chains: Vec::with_capacity(by_name.len()),
            ranges: Vec::with_capacity(self.pieces.len().min(by_name.len() * 2)),
        };
        for s in by_name {
            let (name, (first, _, rules)) = &self.slots[s as usize];
            o.names.push_str(name);
            let from = o.ranges.len();
            let mut p = *first;
            while p != NONE {
                let piece = &self.pieces[p as usize];
                let n = o.ranges.len();
                match o.ranges.last_mut() {
                    Some(last) if n > from && last.1 == piece.start => last.1 = piece.end,
                    _ => o.ranges.push((piece.start, piece.end)),
                }
                p = piece.next;
            }
            o.chains.push((o.names.len(), o.ranges.len(), *rules));
        }
        self.order = Some(o);
        self.chains = HashMap::new();
        self.slots = Vec::new();
    }

    /// Links a run of pieces of `chain` (first, last; linked among themselves) behind the
    /// chain's earlier ones.
    fn link_run(&mut self, chain: &str, (first, last, rules): Run) {
        let i = match self.chains.get(chain) {
            Some(&i) => i,
            None => self.add_slot(chain),
        };
        let slot = &mut self.slots[i as usize].1;
        if slot.0 == NONE {
            *slot = (first, last, rules);
        } else {
            self.pieces[slot.1 as usize].next = first;
            slot.1 = last;
            slot.2 += rules;
        }
    }

    /// Where the block's text starts in the file of `sink`, when it was written there.
    pub(crate) fn at_in(&self, sink: &PrintSink) -> Option<u64> {
        self.at.filter(|a| a.1 == sink.inner.id).map(|a| a.0)
    }

    /// The text printed in memory (None once written to a sink's file).
    pub(crate) fn text_in_memory(&self) -> Option<&str> {
        self.at.is_none().then_some(self.text.as_str())
    }

    /// Writes the parts of table `t` (committed from this block) that were not printed to
    /// `out` (handing full pieces to `flush`, `written` bytes of the file before `out`'s
    /// first): its chain lines, the rule lines the printing had not reached when the
    /// restore ended, `COMMIT`; and appends to `runs` the byte ranges of the file (the
    /// printed text starting at `at`) that give the table's text in the store's form,
    /// joined in order. Whether that text is iptables-save's. None, with nothing written,
    /// when the printed lines are not each chain's first rules or would need more than
    /// [`MAX_RUNS`] ranges.
    pub(crate) fn write_table(
        &self,
        t: &Table,
        at: u64,
        out: &mut String,
        written: &std::cell::Cell<u64>,
        flush: &mut dyn FnMut(&mut String),
        runs: &mut Vec<(u64, u64)>,
    ) -> Option<bool> {
        if t.kind != self.kind {
            return None;
        }
        let chains = save::chains_as_stored(t);
        // For each chain (in `chains`' order): its printed lines' ranges of the text,
        // `ranges[from..to]`, and how many of its rules they hold (its first rules: lines
        // after where the printing stopped are formatted here).
        let mut sel: Vec<(usize, usize, usize)> = Vec::with_capacity(chains.len());
        let o = self.order.as_ref()?;
        // Built-in chains (a few) looked up, user chains (in name order when
        // committed) met in step with the printed ones.
        let builtins = chains.iter().take_while(|c| c.is_builtin()).count();
        let mut used = 0;
        let mut k = 0;
        for (i, c) in chains.iter().enumerate() {
            // Names are read a few chains ahead (each is a cache miss otherwise).
            if let Some(ahead) = chains.get(i + 8) {
                save::prefetch(ahead.name.as_ptr());
            }
            let found = if i < builtins {
                o.find(&c.name)
            } else {
                while k < o.chains.len() && chains[..builtins].iter().any(|b| b.name == o.name(k)) {
                    k += 1;
                }
                (k < o.chains.len() && o.name(k) == c.name).then(|| {
                    k += 1;
                    k - 1
                })
            };
            match found {
                Some(e) => {
                    let (from, to) = o.ranges_of(e);
                    let n = o.chains[e].2 as usize;
                    if n > c.rules.len() {
                        return None;
                    }
                    used += 1;
                    sel.push((from, to, n));
                }
                None => sel.push((0, 0, 0)),
            }
        }
        // Every printed chain is one of the table's.
        if used != o.chains.len() {
            return None;
        }
        let ranges = &o.ranges;
        if ranges.len() > MAX_RUNS {
            return None;
        }
        let start = out.len();
        let pos = |out: &String| written.get() + out.len() as u64;
        let head_at = pos(out);
        let mut canonical = self.canonical;
        if !save::push_head(t, &chains, save::Form::STORE, out, &mut canonical) {
            // User chains out of name order: not a committed table.
            out.truncate(start);
            return None;
        }
        push_run(runs, head_at, pos(out));
        let mut head = String::new();
        let mut scratch = String::new();
        let at = at as usize;
        for (c, &(from, to, done)) in chains.iter().zip(&sel) {
            for &(s, e) in &ranges[from..to] {
                push_run(runs, (at + s) as u64, (at + e) as u64);
            }
            if done < c.rules.len() {
                let s = pos(out);
                head.clear();
                canonical &= save::push_store_rule_head(&mut head, &c.name);
                for r in &c.rules[done..] {
                    save::push_store_rule_line(out, &head, r, &mut scratch, &mut canonical);
                    if out.len() >= save::STORE_CHUNK {
                        flush(out);
                    }
                }
                push_run(runs, s, pos(out));
            }
        }
        let s = pos(out);
        out.push_str("COMMIT\n");
        push_run(runs, s, pos(out));
        Some(canonical)
    }
}

/// The most byte ranges a table's text in a store file may be made of (format 3): more
/// (input lines of many chains interleaved) and the table is written in one piece.
/// Measured: `iptables-save` of a store whose 100k-rule table needs a range for each line
/// (chains alternating line by line) (see the rules README).
pub const MAX_RUNS: usize = 1 << 18;

/// Appends the range `s..e` to `runs`, joined to the last one where it follows it.
pub(crate) fn push_run(runs: &mut Vec<(u64, u64)>, s: u64, e: u64) {
    if s == e {
        return;
    }
    match runs.last_mut() {
        Some(last) if last.1 == s => last.1 = e,
        _ => runs.push((s, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::{restore_noting_blocks, InputBlocks};
    use crate::Ruleset;

    #[test]
    fn printing_stopped_anywhere_gives_the_formatted_text() {
        let mut text = String::from("*nat\n:A - [0:0]\n:B - [0:0]\n:c'd - [0:0]\n");
        for i in 0..300 {
            let chain = ["A", "B", "c'd", "PREROUTING"][i % 7 % 4];
            text.push_str(&format!(
                "[{i}:5] -A {chain} -s 10.0.0.{},10.1.0.0/16 -p udp --dport {i} -j RETURN\n",
                i % 256
            ));
        }
        text.push_str("COMMIT\n*filter\n:X - [0:0]\n-A X -j ACCEPT\n-A INPUT -j X\nCOMMIT\n");
        for counters in [false, true] {
            let opts = RestoreOpts {
                counters,
                print_store: Some(false),
                ..Default::default()
            };
            let mut rs = Ruleset::default();
            let mut blocks = InputBlocks::default();
            restore_noting_blocks(&mut rs, &text, &opts, &mut String::new(), &mut blocks).unwrap();
            assert_eq!(blocks.beside.plain.len(), 2);
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            let formatted = crate::save::save_store(&rs);
            let mut used = 0;
            for stop in (0..=lines.len())
                .step_by(7)
                .chain([5, 6, 304, 305, 306, lines.len()])
            {
                blocks.beside.printed =
                    print_blocks_upto(&text, &lines, &opts, &AtomicBool::new(false), stop);
                used += blocks.beside.printed.len();
                let mut out = Vec::new();
                crate::save::save_store_after_restore(&rs, &text, &blocks, &mut out).unwrap();
                assert_eq!(
                    crate::store::stored_blocks(&out),
                    crate::store::stored_blocks(formatted.as_bytes()),
                    "stopped at {stop}"
                );
            }
            assert!(used > 40, "{used}");
        }
    }
}
