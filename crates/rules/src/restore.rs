//! iptables-restore: the line format (`*table`, `:CHAIN POLICY [p:b]`, rule lines, `COMMIT`,
//! `#` comments), iptables' own quoting, and per-table commits like the kernel's table replace.

use crate::error::{Errno, Error, ErrorKind, Result};
use crate::model::{Counters, Hook, Ruleset, Table, TableKind};
use crate::ops;
use crate::parse;
use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::ScopedJoinHandle;

/// Options of one iptables-restore run.
#[derive(Clone, Debug, Default)]
pub struct RestoreOpts {
    /// `-c`: use `[p:b]` counters from the input.
    pub counters: bool,
    /// `-n`: do not flush tables first.
    pub noflush: bool,
    /// `-t`: parse and check only.
    pub test: bool,
    /// `-T table`: restore only this table.
    pub only_table: Option<String>,
    /// Skip the kernel's commit checks: the input was validated when it was written (the
    /// store).
    pub trusted: bool,
    /// `-v`: print what is flushed, deleted and added.
    pub verbose: bool,
    /// Read the nfrs store's encoding: inside quotes `\n` is a newline (iptables' own
    /// format cannot carry a newline inside a quoted value).
    pub store_escapes: bool,
    /// When a table holds many rule lines and the machine has more than one core, let a
    /// second thread parse the second part of them ahead while this one works through the
    /// first; results and errors are the same either way (parsing a line depends on nothing
    /// but the line). Off by default: on the shared 2-core development VM it cost 30 % more
    /// CPU (allocations made on one thread, moved and freed on the other) and was no faster.
    pub parse_ahead: bool,
    /// Print the store's text of the restored tables on a second thread while parsing
    /// (`crate::store_text`), for `save::save_store_after_restore`: Some(true) prints every
    /// line (the restore waits for it); None and Some(false) print none (measured slower on
    /// two cores: the printing thread parses every line again and slows the restore beside
    /// it more than it saves; the store write formats the tables while a second thread writes).
    pub print_store: Option<bool>,
    /// With the printing above: the store's temporary file its lines are written to as they
    /// are printed (`store::StoreWrite::sink`), so that the store write has only the rest
    /// to write.
    pub print_sink: Option<crate::store_text::PrintSink>,
}

/// A restore failure with the exact stderr text iptables-restore prints and its exit code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreError {
    pub message: String,
    pub exit_code: i32,
}

/// Splits a rule line into arguments as iptables-restore does: blanks separate; `"` opens a
/// quote anywhere, inside quotes `\x` is `x` and the closing `"` ends the argument (even an
/// empty one); outside quotes `\` is an ordinary character; an unclosed quote runs to the end
/// of the line (newline included).
pub fn tokenize(line: &str) -> Vec<String> {
    tokenize_with(line, false)
}

/// [`tokenize`], optionally decoding the store's `\n` (inside quotes) as a newline.
pub fn tokenize_with(line: &str, store_escapes: bool) -> Vec<String> {
    let mut out = Vec::new();
    tokenize_into(line, store_escapes, &mut out);
    out.into_iter().map(Cow::into_owned).collect()
}

/// One argument being assembled by [`tokenize_into`]: a slice of the line while it is one
/// contiguous piece of it, a copy once pieces are joined (quotes inside, escapes).
#[derive(Default)]
struct Piece {
    borrowed: Option<(usize, usize)>,
    owned: Option<String>,
}

impl Piece {
    #[inline]
    fn add(&mut self, line: &str, a: usize, b: usize) {
        if a == b {
            return;
        }
        if let Some(o) = self.owned.as_mut() {
            o.push_str(&line[a..b]);
            return;
        }
        match self.borrowed {
            None => self.borrowed = Some((a, b)),
            Some((x, y)) if y == a => self.borrowed = Some((x, b)),
            Some((x, y)) => {
                let mut o = String::with_capacity(y - x + b - a);
                o.push_str(&line[x..y]);
                o.push_str(&line[a..b]);
                self.owned = Some(o);
            }
        }
    }
    fn add_char(&mut self, line: &str, c: char) {
        let o = match self.owned.as_mut() {
            Some(o) => o,
            None => {
                let prefix = self.borrowed.map_or("", |(x, y)| &line[x..y]);
                self.owned.insert(prefix.to_string())
            }
        };
        o.push(c);
    }
    fn is_empty(&self) -> bool {
        self.borrowed.is_none() && self.owned.is_none()
    }
    fn take<'a>(&mut self, line: &'a str) -> Cow<'a, str> {
        let b = self.borrowed.take();
        match self.owned.take() {
            Some(o) => Cow::Owned(o),
            None => Cow::Borrowed(b.map_or("", |(x, y)| &line[x..y])),
        }
    }
}

/// [`BYTE_CLASS`] bit: the byte ends a run outside quotes (`"`, blank, newline).
const OUTSIDE: u8 = 1;
/// [`BYTE_CLASS`] bit: the byte ends a run inside quotes (`"`, backslash).
const IN_QUOTES: u8 = 2;
/// [`BYTE_CLASS`] bit: the byte ends a line.
const NEWLINE: u8 = 4;
/// [`BYTE_CLASS`] bit: the byte is a blank of a `:CHAIN` line (space, tab, newline).
const BLANK: u8 = 8;
/// The tokenizer's special bytes.
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = OUTSIDE | IN_QUOTES;
    t[b'\\' as usize] = IN_QUOTES;
    t[b' ' as usize] = OUTSIDE | BLANK;
    t[b'\t' as usize] = OUTSIDE | BLANK;
    t[b'\n' as usize] = OUTSIDE | NEWLINE | BLANK;
    t
};

/// [`tokenize_with`] appending to `out`, borrowing from `line` every argument that is one
/// contiguous piece of it (the usual case), so a rule line costs no copy per argument.
pub fn tokenize_into<'a>(line: &'a str, store_escapes: bool, out: &mut Vec<Cow<'a, str>>) {
    tokenize_noting(line, store_escapes, out);
}

/// [`tokenize_into`], telling whether the general loop read part of the line (a quote
/// inside an argument, an unclosed quote, or a backslash inside quotes: where the store's
/// reading of `\n` differs); false when every quoted argument was taken whole.
fn tokenize_noting<'a>(line: &'a str, store_escapes: bool, out: &mut Vec<Cow<'a, str>>) -> bool {
    // The usual line has blanks between arguments and no quote until late (a comment):
    // one scan over the line eight bytes at a time, each blank ending an argument, until a
    // quote hands the rest of the line, from the argument it is in, to the general loop.
    let bytes = line.as_bytes();
    let n = bytes.len();
    // Start of the argument being read (a blank right before it).
    let mut start = 0;
    let mut w = 0;
    'scan: while w < n {
        let word = match bytes.get(w..w + 8) {
            Some(chunk) => u64::from_le_bytes(chunk.try_into().unwrap()),
            None => {
                // The last bytes, padded with 0xff (never flagged below): the line's last
                // eight bytes shifted down when it has eight (no copy to a buffer).
                let r = n - w;
                match n.checked_sub(8) {
                    Some(at) => {
                        let last = u64::from_le_bytes(bytes[at..].try_into().unwrap());
                        (last >> (8 * (8 - r))) | (u64::MAX << (8 * r))
                    }
                    None => {
                        let mut pad = [0xffu8; 8];
                        pad[..r].copy_from_slice(&bytes[w..]);
                        u64::from_le_bytes(pad)
                    }
                }
            }
        };
        // Every byte below 0x23 is flagged (higher flags may also be borrows: each flag is
        // checked against the byte's class).
        let mut hits = below(word, 0x23);
        while hits != 0 {
            let k = w + (hits.trailing_zeros() / 8) as usize;
            hits &= hits - 1;
            match bytes[k] {
                b' ' | b'\t' | b'\n' => {
                    if k > start {
                        out.push(Cow::Borrowed(&line[start..k]));
                    }
                    start = k + 1;
                }
                b'"' => {
                    // A quote opening an argument whose text has no backslash: the text
                    // up to the closing quote is the argument (even empty); the next one
                    // starts right after it.
                    if k == start {
                        let close = k + 1 + run_length(&bytes[k + 1..], IN_QUOTES);
                        if close < n && bytes[close] == b'"' {
                            out.push(Cow::Borrowed(&line[k + 1..close]));
                            start = close + 1;
                            w = start;
                            continue 'scan;
                        }
                    }
                    tokenize_from(line, start, store_escapes, out);
                    return true;
                }
                _ => {}
            }
        }
        w += 8;
    }
    if start < n {
        out.push(Cow::Borrowed(&line[start..]));
    }
    false
}

/// The general loop of [`tokenize_into`] from byte `i` on (at the start of an argument or
/// at blanks before one).
fn tokenize_from<'a>(
    line: &'a str,
    mut i: usize,
    store_escapes: bool,
    out: &mut Vec<Cow<'a, str>>,
) {
    // Byte scan: every special character is ASCII, so the runs between them are whole
    // (UTF-8 safe) slices. One argument at a time: it ends at a blank outside quotes, at a
    // closing quote, or at the end of the line.
    let bytes = line.as_bytes();
    let n = bytes.len();
    while i < n {
        if matches!(bytes[i], b' ' | b'\t' | b'\n') {
            i += 1;
            continue;
        }
        let start = i;
        i += run_length(&bytes[i..], OUTSIDE);
        if i == n || bytes[i] != b'"' {
            // No quote in it (the usual case): a slice of the line.
            out.push(Cow::Borrowed(&line[start..i]));
            continue;
        }
        // A quote opens: what came before it, then the quoted text.
        let mut cur = Piece::default();
        cur.add(line, start, i);
        i += 1;
        let mut run = i;
        loop {
            i += run_length(&bytes[i..], IN_QUOTES);
            if i == n {
                // An unclosed quote runs to the end of the line.
                cur.add(line, run, n);
                if !cur.is_empty() {
                    out.push(cur.take(line));
                }
                return;
            }
            cur.add(line, run, i);
            if bytes[i] == b'"' {
                // The closing quote ends the argument, even an empty one.
                out.push(cur.take(line));
                i += 1;
                break;
            }
            // A backslash: the next character (if any) is taken literally.
            match line[i + 1..].chars().next() {
                Some(c) => {
                    cur.add_char(line, if store_escapes && c == 'n' { '\n' } else { c });
                    i += 1 + c.len_utf8();
                }
                None => i += 1,
            }
            run = i;
        }
    }
}

/// How many leading bytes of `bytes` are ordinary for `stop` ([`OUTSIDE`], [`IN_QUOTES`],
/// [`NEWLINE`] or [`BLANK`]).
/// Eight bytes at a time: a word is tested for each special byte at once.
#[inline]
fn run_length(bytes: &[u8], stop: u8) -> usize {
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().unwrap());
        let hits = match stop {
            // The bytes ending a run outside quotes are all below 0x23 (`"` is 0x22): one
            // test finds the first byte below it, which then only needs its class checked
            // (it may be `!` or a control character, ordinary here).
            OUTSIDE => below(w, 0x23),
            // Blanks are below 0x21 (space): the same test, a lower bound.
            BLANK => below(w, 0x21),
            IN_QUOTES => zero_bytes(w ^ splat(b'"')) | zero_bytes(w ^ splat(b'\\')),
            _ => zero_bytes(w ^ splat(b'\n')),
        };
        if hits != 0 {
            // The lowest flagged byte is the first special one (flags above it may be
            // borrows, never below).
            let k = i + (hits.trailing_zeros() / 8) as usize;
            if BYTE_CLASS[usize::from(bytes[k])] & stop != 0 {
                return k;
            }
            i = k + 1;
            continue;
        }
        i += 8;
    }
    i + bytes[i..]
        .iter()
        .position(|&b| BYTE_CLASS[b as usize] & stop != 0)
        .unwrap_or(bytes.len() - i)
}

/// The length of the line at the start of `bytes` without its newline (all of `bytes` when
/// there is none), eight bytes at a time.
pub(crate) fn line_length(bytes: &[u8]) -> usize {
    run_length(bytes, NEWLINE)
}

/// The fields of `s` separated by blanks (space, tab, newline), as iptables-restore splits
/// a `:CHAIN` line; the blanks are ASCII, so the fields are whole UTF-8 slices.
fn blank_fields(s: &str) -> impl Iterator<Item = &str> {
    let b = s.as_bytes();
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\n');
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < b.len() && blank(b[i]) {
            i += 1;
        }
        if i == b.len() {
            return None;
        }
        let start = i;
        i += run_length(&b[i..], BLANK);
        Some(&s[start..i])
    })
}

/// How many of `lines` from the first on append to chain `name`, read from their text
/// alone (`[p:b] ` counters aside): `-A NAME ` at the start. (A hint for reserving room:
/// a chain name written otherwise, quoted, only costs the reservation.)
fn same_chain_run(lines: &[&str], name: &str) -> usize {
    let n = name.len();
    let appends = |l: &&&str| {
        // The line without leading `[p:b] ` counters.
        let body = if l.starts_with('[') {
            l.find("] ").map_or(0, |i| i + 2)
        } else {
            0
        };
        let b = &l.as_bytes()[body..];
        b.len() > n + 3
            && b.starts_with(b"-A ")
            && &b[3..3 + n] == name.as_bytes()
            && b[3 + n] == b' '
    };
    lines.iter().take_while(appends).count()
}

/// The high bit of the first byte of `x` below `n` (at most 0x80) set, and possibly some
/// above it; 0 when no byte is below `n`.
#[inline]
fn below(x: u64, n: u8) -> u64 {
    x.wrapping_sub(splat(n)) & !x & splat(0x80)
}

/// `b` in every byte of a word.
pub(crate) const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// The high bit of the first zero byte of `x` set (and possibly some above it); 0 when no
/// byte is zero.
#[inline]
pub(crate) fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(splat(1)) & !x & splat(0x80)
}

impl std::fmt::Display for RestoreError {
    /// The message iptables-restore prints, without its final newline.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message.trim_end_matches('\n'))
    }
}

impl std::error::Error for RestoreError {}

fn parse_counter_pair(s: &str) -> Option<Counters> {
    let inner = s.strip_prefix('[')?.strip_suffix(']')?;
    let (p, b) = inner.split_once(':')?;
    Some(Counters {
        packets: p.parse().ok()?,
        bytes: b.parse().ok()?,
    })
}

fn param_at(msg: &str, bare: bool, line: usize) -> RestoreError {
    let head = if bare {
        msg.to_string()
    } else {
        format!("iptables-restore v1.8.9 (legacy): {msg}")
    };
    RestoreError {
        message: format!(
            "{head}\nError occurred at line: {line}\nTry `iptables-restore -h' or 'iptables-restore --help' for more information.\n"
        ),
        exit_code: 2,
    }
}

fn failed_at(line: usize) -> RestoreError {
    RestoreError {
        message: format!("iptables-restore: line {line} failed\n"),
        exit_code: 1,
    }
}

fn from_error(e: &Error, line: usize) -> RestoreError {
    match e.kind {
        ErrorKind::Parameter | ErrorKind::Unsupported => param_at(&e.msg, false, line),
        ErrorKind::ParameterBare => param_at(&e.msg, true, line),
        ErrorKind::Kernel(_) => failed_at(line),
        ErrorKind::Other => RestoreError {
            message: format!("iptables-restore v1.8.9 (legacy): {}\n", e.msg),
            exit_code: 1,
        },
    }
}

/// Restores `input` into `rs`. Tables are committed one by one at their `COMMIT` (so tables
/// committed before a failure stay, as with the kernel); the caller persists `rs` as it is
/// after the call, whether or not an error is returned.
pub fn restore(
    rs: &mut Ruleset,
    input: &str,
    opts: &RestoreOpts,
) -> std::result::Result<(), RestoreError> {
    let mut sink = String::new();
    restore_with_output(rs, input, opts, &mut sink)
}

/// iptables-restore reads with fgets into a 10240-byte buffer: longer lines arrive in pieces
/// of 10239 bytes, each counted as a line.
fn fgets_lines(input: &str) -> Vec<&str> {
    // Room for lines of 40 bytes on average (rules are longer), so a big input's list is
    // not copied while it grows; what is reserved and never written costs no memory.
    let mut out = Vec::with_capacity(input.len() / 40 + 16);
    let mut rest = input;
    while !rest.is_empty() {
        // Through the next newline, or the end of the input (`memchr`: vector loads, about
        // a tenth of the word-at-a-time scan's instructions on 140-byte lines).
        let end = memchr::memchr(b'\n', rest.as_bytes()).map_or(rest.len(), |n| n + 1);
        let mut line = &rest[..end];
        rest = &rest[end..];
        while line.len() > 10239 {
            let mut cut = 10239;
            while !line.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(&line[..cut]);
            line = &line[cut..];
        }
        out.push(line);
    }
    out
}

/// The most arguments one restore line may carry, program name and `-t table` included.
const MAX_ARGC: usize = 255;

/// Like [`restore`], appending what `-v` prints to `out`.
pub fn restore_with_output(
    rs: &mut Ruleset,
    input: &str,
    opts: &RestoreOpts,
    out: &mut String,
) -> std::result::Result<(), RestoreError> {
    let mut blocks = InputBlocks::default();
    restore_noting_blocks(rs, input, opts, out, &mut blocks)
}

/// What a restore noted about its input for the store write after it
/// (`save::save_store_after_restore`): the tables it committed, and the store lines a big
/// restore printed beside its parsing (`crate::store_text`) for blocks of only `:CHAIN`
/// and plain `-A` lines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InputBlocks {
    /// What the store text printed beside the restore needs (boxed: the tools' answers
    /// carry this struct and stay small).
    pub(crate) beside: Box<Beside>,
}

/// The part of [`InputBlocks`] for the store lines printed beside the restore.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Beside {
    /// Each table committed from a block of only `:CHAIN` and plain `-A` lines that made
    /// the whole table (no `--noflush`), no host name looked up: where that block starts.
    pub(crate) plain: Vec<(TableKind, usize)>,
    /// The store lines printed beside the restore for plain blocks (`crate::store_text`).
    pub(crate) printed: Vec<crate::store_text::PrintedBlock>,
    /// Every table a block of the input was committed to (not with `--test`).
    pub(crate) committed: Vec<TableKind>,
}

impl InputBlocks {
    /// The tables the restore committed a block of the input to (replaced or changed).
    pub fn committed_tables(&self) -> &[TableKind] {
        &self.beside.committed
    }

    /// The tables whose store lines were printed beside the restore (and are used).
    pub fn printed_tables(&self) -> Vec<TableKind> {
        self.beside.printed.iter().map(|p| p.kind).collect()
    }

    /// The store lines printed beside the restore for table `kind`'s kept block.
    pub(crate) fn printed(&self, kind: TableKind) -> Option<&crate::store_text::PrintedBlock> {
        let &(_, start) = self.beside.plain.iter().find(|(k, _)| *k == kind)?;
        self.beside
            .printed
            .iter()
            .find(|p| p.kind == kind && p.start == start)
    }

    /// Table `kind` was committed from the block starting at `start` (None: not a plain one).
    fn committed_plain(&mut self, kind: TableKind, start: Option<usize>) {
        self.beside.plain.retain(|(k, _)| *k != kind);
        if let Some(s) = start {
            self.beside.plain.push((kind, s));
        }
    }
}

/// [`restore_with_output`], telling in `blocks` which tables' input text the store can
/// keep as it is ([`InputBlocks`]).
pub fn restore_noting_blocks(
    rs: &mut Ruleset,
    input: &str,
    opts: &RestoreOpts,
    out: &mut String,
    blocks: &mut InputBlocks,
) -> std::result::Result<(), RestoreError> {
    let lines = fgets_lines(input);
    let cancel = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Whatever way this returns, a helper still parsing stops at its next line.
        let _stop = StopOnDrop(&cancel);
        let printer = crate::store_text::wanted(opts).then(|| {
            let (lines, cancel) = (&lines, &cancel);
            scope.spawn(move || crate::store_text::print_blocks(input, lines, opts, cancel))
        });
        // A failed restore stops the printing (`_stop`); a good one waits for all of it.
        restore_lines(rs, input, &lines, opts, out, scope, &cancel, blocks)?;
        if let Some(p) = printer {
            match p.join() {
                Ok(printed) => blocks.beside.printed = printed,
                Err(e) => std::panic::resume_unwind(e),
            }
            // Only the plain blocks' lines are used.
            let beside = &mut *blocks.beside;
            let plain = &beside.plain;
            beside
                .printed
                .retain(|p| plain.contains(&(p.kind, p.start)));
        }
        Ok(())
    })
}

/// Whether a table block may be plain (its committed chains hold exactly the rules of its
/// `-A` lines in input order, which the lines printed beside the restore rely on): no
/// `--noflush` (the block is the whole table), `--test` or `-v`, no lines parsed ahead on
/// another thread. (Further conditions are checked line by line: only `:CHAIN` and `-A`
/// lines, no host name looked up.)
fn block_may_be_plain(opts: &RestoreOpts) -> bool {
    !opts.noflush && !opts.test && !opts.verbose && !opts.parse_ahead
}

/// Sets the flag when dropped (tells a parse-ahead helper to stop).
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Rule lines a table needs before a second thread parses part of them ahead.
const PARSE_AHEAD_MIN: usize = 4096;

/// The rule lines of one table parsed by a helper thread: results by line index, from
/// `from` on (lines before `from` are parsed on the restoring thread).
struct Ahead<'scope> {
    from: usize,
    handle: Option<ScopedJoinHandle<'scope, Vec<(usize, ParsedLine<'scope>)>>>,
    results: std::vec::IntoIter<(usize, ParsedLine<'scope>)>,
}

type ParsedLine<'a> = std::result::Result<parse::Parsed<'a>, RestoreError>;

impl<'scope> Ahead<'scope> {
    /// The helper's result for line index `idx`, if it parsed that line.
    fn take(&mut self, idx: usize) -> Option<ParsedLine<'scope>> {
        if idx < self.from {
            return None;
        }
        if let Some(h) = self.handle.take() {
            match h.join() {
                Ok(v) => self.results = v.into_iter(),
                Err(p) => std::panic::resume_unwind(p),
            }
        }
        // Results come in line order and the restoring thread visits lines in order.
        while let Some((i, _)) = self.results.as_slice().first() {
            if *i > idx {
                return None;
            }
            let (i, r) = self.results.next().unwrap();
            if i == idx {
                return Some(r);
            }
        }
        None
    }
}

/// When the table block opened at line index `open` is big enough (and more than one core
/// may run), starts a helper parsing the second part of its rule lines.
fn parse_ahead<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    lines: &'env [&'env str],
    open: usize,
    kind: TableKind,
    opts: &'env RestoreOpts,
    cancel: &'env AtomicBool,
) -> Option<Ahead<'scope>> {
    if !opts.parse_ahead {
        return None;
    }
    // The lines the restoring thread will read as rule lines, up to the block's COMMIT.
    let rule_lines: Vec<usize> = lines[open + 1..]
        .iter()
        .take_while(|l| **l != "COMMIT\n")
        .enumerate()
        .filter(|(_, l)| **l != "\n" && !l.starts_with('#') && !l.starts_with(':'))
        .map(|(k, _)| open + 1 + k)
        .collect();
    if rule_lines.len() < PARSE_AHEAD_MIN
        || std::thread::available_parallelism().map_or(1, |n| n.get()) < 2
    {
        return None;
    }
    // The restoring thread also applies every rule: the helper takes a little more.
    let mine = rule_lines[rule_lines.len() * 9 / 20..].to_vec();
    let from = mine[0];
    let handle = scope.spawn(move || {
        let mut tokens = Vec::with_capacity(32);
        let mut out = Vec::with_capacity(mine.len());
        for idx in mine {
            if cancel.load(Ordering::Relaxed) {
                break;
            }
            out.push((
                idx,
                parse_rule_line(lines[idx], idx + 1, kind, opts, &mut tokens, &mut false),
            ));
        }
        out
    });
    Some(Ahead {
        from,
        handle: Some(handle),
        results: Vec::new().into_iter(),
    })
}

/// A rule (or any iptables command) line, optionally led by [packets:bytes], parsed into
/// its command; the counters are split like strtok(":") then strtok("]") and used only
/// with -c. `tokens` is scratch space.
pub(crate) fn parse_rule_line<'a>(
    line: &'a str,
    line_no: usize,
    kind: TableKind,
    opts: &RestoreOpts,
    tokens: &mut Vec<Cow<'a, str>>,
    general: &mut bool,
) -> ParsedLine<'a> {
    let mut body = line;
    let mut counters = None;
    if let Some(inner) = line.strip_prefix('[') {
        let Some(end) = line.find(']') else {
            return Err(param_at(
                &format!("Bad line {line_no}: need ]"),
                false,
                line_no,
            ));
        };
        let (p, b) = match inner[..end - 1].split_once(':') {
            Some((p, b)) if !p.is_empty() && !b.is_empty() => (p, b),
            _ => {
                return Err(param_at(
                    &format!("Bad line {line_no}: need :"),
                    false,
                    line_no,
                ))
            }
        };
        counters = Some((p, b));
        body = &line[end + 1..];
    }
    tokens.clear();
    if opts.counters {
        if let Some((p, b)) = counters {
            tokens.extend([Cow::Borrowed("--set-counters"), p.into(), b.into()]);
        }
    }
    *general = tokenize_noting(body, opts.store_escapes, tokens);
    if tokens.len() + 3 >= MAX_ARGC {
        return Err(param_at(
            "Parser cannot handle more arguments",
            false,
            line_no,
        ));
    }
    if opts.verbose {
        tokens.push(Cow::Borrowed("-v"));
    } else if let Some(parsed) = parse::parse_append_fast(tokens, kind) {
        return Ok(parsed);
    }
    parse::parse_args(tokens, true, Some(kind), opts.store_escapes)
        .0
        .map_err(|e| from_error(&e, line_no))
}

/// The jumps found while appending (`resolved`: one (chain, target) a rule, in the order
/// the rules were appended, chains by their positions before [`Table::canonicalize_order`]
/// moved them by `order`), in table order as the commit checks want them; None when they do
/// not cover the table's rules.
fn jumps_in_table_order(
    table: &Table,
    resolved: &[(u32, u32)],
    order: Option<&[u32]>,
) -> Option<Vec<u32>> {
    let n = table.chains.len();
    let old_of = |new: usize| order.map_or(new, |o| o[new] as usize);
    let mut new_of = vec![0u32; n];
    for new in 0..n {
        new_of[old_of(new)] = new as u32;
    }
    // Where each chain's rules start in table order; rules of one chain were appended in
    // their order, so each entry goes to the next free place of its chain.
    let mut start = Vec::with_capacity(n + 1);
    let mut total = 0;
    for c in &table.chains {
        start.push(total);
        total += c.rules.len();
    }
    start.push(total);
    if resolved.len() != total {
        return None;
    }
    let mut next = start.clone();
    let mut out = vec![ops::NOT_JUMP; total];
    for &(chain, target) in resolved {
        let c = *new_of.get(chain as usize)? as usize;
        if next[c] == start[c + 1] {
            return None;
        }
        out[next[c]] = match target {
            ops::NOT_JUMP => ops::NOT_JUMP,
            t => *new_of.get(t as usize)?,
        };
        next[c] += 1;
    }
    Some(out)
}

/// How many lines ahead a `:CHAIN` line starts loading the name index's slot of the chain
/// a later `:CHAIN` line creates (a cache miss each in big tables otherwise).
const CHAIN_LOOKUP_AHEAD: usize = 4;

/// The chain name of a `:CHAIN` line as the line loop reads it (up to the first blank).
fn declared_chain(line: &str) -> Option<&str> {
    let rest = line.strip_prefix(':')?;
    Some(&rest[..run_length(rest.as_bytes(), OUTSIDE)])
}

/// The chain a rule line jumps or goes to when the line ends with `-j NAME` or `-g NAME`,
/// read from its text alone: a hint for loading the name index's slot before the line is
/// parsed (in big tables, each lookup of another target is otherwise a cache miss). Any
/// other ending gives None; a NAME the parser reads otherwise (quotes) only loads a slot
/// in vain.
fn jump_hint(line: &str) -> Option<&str> {
    let body = line.strip_suffix('\n')?.as_bytes();
    let sp = memchr::memrchr(b' ', body)?;
    if body.get(sp.checked_sub(3)?..sp)? != b" -j" && body.get(sp - 3..sp)? != b" -g" {
        return None;
    }
    Some(&line[sp + 1..body.len()])
}

/// Appends a parsed `-A` line (see `append_resolved`), recording its rules' jumps in
/// `resolved`; `run_end` and `last` as in the line loop. (Inlined: the parsed rule is
/// then not copied once more on its way into the chain.)
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn append_parsed(
    table: &mut Table,
    cmd: parse::Parsed,
    idx: usize,
    line_no: usize,
    lines: &[&str],
    resolved: &mut Vec<(u32, u32)>,
    run_end: &mut usize,
    last: &mut ops::LastChains,
) -> std::result::Result<(), RestoreError> {
    let n = cmd.rules.len();
    // Room for the run of lines appending to this chain, so its rules take one allocation
    // of their size (not the doubling Vec growth's slack).
    let room = if idx >= *run_end {
        let k = same_chain_run(&lines[idx..], &cmd.chain);
        *run_end = idx + k;
        k
    } else {
        0
    };
    let (chain, target) =
        ops::append_resolved(table, cmd, last, room).map_err(|e| from_error(&e, line_no))?;
    if n == 1 {
        resolved.push((chain as u32, target));
    } else {
        resolved.extend(std::iter::repeat_n((chain as u32, target), n));
    }
    Ok(())
}

/// The line loop of [`restore_with_output`].
#[allow(clippy::too_many_arguments)]
fn restore_lines<'scope, 'env>(
    rs: &mut Ruleset,
    input: &str,
    lines: &'env [&'env str],
    opts: &'env RestoreOpts,
    out: &mut String,
    scope: &'scope std::thread::Scope<'scope, 'env>,
    cancel: &'env AtomicBool,
    blocks: &mut InputBlocks,
) -> std::result::Result<(), RestoreError> {
    let mut current: Option<Table> = None;
    // Where the open table block starts in the input (bytes). Lines are pieces of `input`.
    let base = input.as_ptr() as usize;
    let offset = |line: &str| line.as_ptr() as usize - base;
    let mut block_start = 0;
    // Whether the block so far has only `:CHAIN` and plain `-A` lines (see `InputBlocks`).
    let mut plain = false;
    let mut names_before = 0;
    // While the current table has seen only `:CHAIN` lines and plain `-A`: each chain's
    // rules' jump targets (chain index or NOT_JUMP), found when the rules were appended, so
    // the commit checks need not look every target up again.
    let mut resolved: Option<Vec<(u32, u32)>> = None;
    let mut skipping = false;
    let mut line_no = 0;
    // The arguments of the current rule line, reused from line to line.
    let mut tokens: Vec<Cow<str>> = Vec::with_capacity(32);
    let mut ahead: Option<Ahead> = None;
    let mut last = ops::LastChains::default();
    // Lines before this index are in a run whose room was reserved already.
    let mut run_end = 0;
    for (idx, &line) in lines.iter().enumerate() {
        line_no += 1;
        if line == "\n" || line.starts_with('#') {
            continue;
        }
        if skipping {
            if line == "COMMIT\n" {
                skipping = false;
            }
            continue;
        }
        if line == "COMMIT\n" && current.is_some() {
            let mut table = current.take().unwrap();
            let order = table.canonicalize_order();
            if !opts.test {
                // Checked unless trusted; what the checks learn stays with the table.
                let targets = resolved
                    .take()
                    .and_then(|r| jumps_in_table_order(&table, &r, order.as_deref()));
                ops::commit_checks(&mut table, targets, opts.trusted)
                    .map_err(|_| failed_at(line_no))?;
                let kind = table.kind;
                *rs.table_mut(kind) = table;
                if !blocks.beside.committed.contains(&kind) {
                    blocks.beside.committed.push(kind);
                }
                let plain = plain && crate::hosts::lookups() == names_before;
                blocks.committed_plain(kind, plain.then_some(block_start));
            }
            continue;
        }
        if line.starts_with('*') && current.is_none() {
            let name = line[1..].split([' ', '\t', '\n']).find(|s| !s.is_empty());
            let Some(name) = name else {
                return Err(param_at(
                    &format!("iptables-restore: line {line_no} table name invalid"),
                    false,
                    line_no,
                ));
            };
            if opts.only_table.as_deref().is_some_and(|t| t != name) {
                skipping = true;
                continue;
            }
            let kind = match TableKind::from_name(name) {
                Some(k) => k,
                None => {
                    return Err(param_at(
                        &format!("iptables-restore: unable to initialize table '{name}'"),
                        false,
                        line_no,
                    ))
                }
            };
            // Touching the table instantiates it in the kernel (and in the table order).
            let mut table = rs.table_mut(kind).clone();
            // Policy counters restart from 0 unless a `:CHAIN POLICY [p:b]` line sets them (-c).
            for c in table.chains.iter_mut().filter(|c| c.is_builtin()) {
                c.counters = Counters::default();
            }
            if !opts.noflush {
                if opts.verbose {
                    for c in crate::save::ordered_chains(&table) {
                        out.push_str(&format!("Flushing chain `{}'\n", c.name));
                    }
                    for c in crate::save::ordered_chains(&table) {
                        if !c.is_builtin() {
                            out.push_str(&format!("Deleting chain `{}'\n", c.name));
                        }
                    }
                }
                table.chains.iter_mut().for_each(|c| c.rules.clear());
                table.chains.retain(|c| c.is_builtin());
                table.reindex();
                // One entry a rule: at most one a line (and an untouched reserve is free).
                resolved = Some(Vec::with_capacity(lines.len() - idx));
            } else {
                // Rules kept from before have no resolved jumps.
                resolved = None;
            }
            // Room for the `:CHAIN` lines that open the block (as iptables-save writes it;
            // chains declared further down only regrow the index). Not a scan of the whole
            // block: in a big one that is a cache miss a line.
            let new_chains = lines[idx + 1..]
                .iter()
                .take_while(|l| l.starts_with([':', '#']) || **l == "\n")
                .filter(|l| l.starts_with(':'))
                .count();
            table.reserve_chains(new_chains);
            ahead = parse_ahead(scope, lines, idx, kind, opts, cancel);
            current = Some(table);
            block_start = offset(line);
            plain = block_may_be_plain(opts);
            names_before = crate::hosts::lookups();
            continue;
        }
        if let (true, Some(table)) = (line.starts_with(':'), current.as_mut()) {
            if let Some(name) = lines
                .get(idx + CHAIN_LOOKUP_AHEAD)
                .and_then(|l| declared_chain(l))
            {
                table.prefetch_chain(name);
            }
            // The store quotes chain names (they may hold blanks after -E); iptables' format
            // splits the line on blanks only.
            // (In the rule lines' token buffer: no allocation a chain.)
            tokens.clear();
            if opts.store_escapes {
                tokenize_into(&line[1..], true, &mut tokens);
            } else {
                tokens.extend(blank_fields(&line[1..]).map(Cow::Borrowed));
            }
            let mut it = tokens.iter().map(|t| t.as_ref());
            let Some(chain) = it.next() else {
                return Err(param_at(
                    &format!("iptables-restore: line {line_no} chain name invalid"),
                    false,
                    line_no,
                ));
            };
            if chain.len() >= 29 {
                return Err(param_at(
                    &format!("Invalid chain name `{chain}' (28 chars max)"),
                    false,
                    line_no,
                ));
            }
            let builtin =
                Hook::from_chain_name(chain).is_some_and(|h| table.kind.hooks().contains(&h));
            if !builtin {
                if table.chain(chain).is_some() {
                    if opts.noflush {
                        table.chain_mut(chain).unwrap().rules.clear();
                        resolved = None;
                    } else {
                        return Err(param_at(
                            &format!("error creating chain '{chain}':File exists"),
                            false,
                            line_no,
                        ));
                    }
                } else {
                    ops::insert_user_chain(table, chain);
                }
            }
            let Some(policy) = it.next() else {
                return Err(param_at(
                    &format!("iptables-restore: line {line_no} policy invalid"),
                    false,
                    line_no,
                ));
            };
            if policy != "-" {
                let counters = if opts.counters {
                    match it.next().and_then(parse_counter_pair) {
                        Some(c) => Some(c),
                        None => {
                            return Err(param_at(
                                &format!("invalid policy counters for chain '{chain}'"),
                                false,
                                line_no,
                            ))
                        }
                    }
                } else {
                    Some(Counters::default())
                };
                if let Err(e) = ops::set_policy(table, chain, policy, counters) {
                    let why = match e.kind {
                        ErrorKind::Kernel(Errno::BadBuiltin) => "Bad built-in chain name",
                        _ => "Bad policy name",
                    };
                    return Err(RestoreError {
                        message: format!(
                            "iptables-restore v1.8.9 (legacy): Can't set policy `{policy}' on `{chain}' line {line_no}: {why}\n"
                        ),
                        exit_code: 1,
                    });
                }
            }
            continue;
        }
        let Some(kind) = current.as_ref().map(|t| t.kind) else {
            return Err(failed_at(line_no));
        };
        let mut general = false;
        // The next line's jump target, looked up when that line is appended: its slot in
        // the name index loads while this line is parsed.
        if let (Some(next), Some(table)) = (lines.get(idx + 1), current.as_ref()) {
            if let Some(j) = jump_hint(next) {
                table.prefetch_chain(j);
            }
        }
        let parsed = match ahead.as_mut().and_then(|a| a.take(idx)) {
            Some(parsed) => parsed,
            None => parse_rule_line(line, line_no, kind, opts, &mut tokens, &mut general),
        };
        let cmd = match parsed {
            Ok(cmd) if resolved.is_some() && cmd.cmd == parse::Cmd::Append && !cmd.verbose => {
                let (Some(t), Some(r)) = (current.as_mut(), resolved.as_mut()) else {
                    unreachable!("checked above");
                };
                append_parsed(t, cmd, idx, line_no, lines, r, &mut run_end, &mut last)?;
                continue;
            }
            other => {
                // Only plain appends keep a block plain (other commands: the commit checks
                // resolve what they did; the block's printed lines are not used).
                plain = false;
                other?
            }
        };
        let table = current.as_mut().expect("checked above");
        if cmd.cmd == parse::Cmd::List {
            continue;
        }
        // Any other command may move, rename or drop chains: resolve at commit.
        resolved = None;
        let o = ops::apply_owned(table, cmd.into_command()).map_err(|e| from_error(&e, line_no))?;
        out.push_str(&o.output);
    }
    if current.is_some() {
        return Err(RestoreError {
            message: format!(
                "iptables-restore: COMMIT expected at line {}\n",
                line_no + 1
            ),
            exit_code: 1,
        });
    }
    Ok(())
}

/// The text of an iptables-restore input file, as `nfrs iptables-restore FILE` reads it
/// (bytes that are not UTF-8 replaced, as `String::from_utf8_lossy` does).
pub struct InputText(InputRepr);

enum InputRepr {
    Owned(String),
    Mapped(BigBuffer),
}

impl std::ops::Deref for InputText {
    type Target = str;
    fn deref(&self) -> &str {
        match &self.0 {
            InputRepr::Owned(s) => s,
            // Checked to be UTF-8 when read (`read_input_file`).
            InputRepr::Mapped(b) => b.text(),
        }
    }
}

impl From<String> for InputText {
    fn from(s: String) -> InputText {
        InputText(InputRepr::Owned(s))
    }
}

/// Files at least this big are read into a [`BigBuffer`].
const BIG_INPUT: u64 = 4 << 20;

/// Reads an input file. A big regular file goes into memory backed by huge pages (its
/// 4 KiB pages would cost a page fault each: 3.5k for the 14 MB kube-proxy bench file,
/// about 9 ms of CPU on the bench machine; with huge pages about 4 ms); others into a
/// String.
pub fn read_input_file(path: &std::path::Path) -> std::io::Result<InputText> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() >= BIG_INPUT {
        if let Some(mut buf) = BigBuffer::new(meta.len() as usize + 1) {
            // One byte of room beyond the size: reading fills the buffer only when the
            // file grew, and then the rest is read the ordinary way.
            let n = buf.read_from(&mut file)?;
            if n < buf.capacity() {
                if std::str::from_utf8(buf.bytes()).is_ok() {
                    return Ok(InputText(InputRepr::Mapped(buf)));
                }
                return Ok(InputText(InputRepr::Owned(
                    String::from_utf8_lossy(buf.bytes()).into_owned(),
                )));
            }
            let mut all = buf.bytes().to_vec();
            file.read_to_end(&mut all)?;
            return Ok(InputText(InputRepr::Owned(lossy(all))));
        }
    }
    let mut all = Vec::with_capacity(meta.len() as usize + 1);
    file.read_to_end(&mut all)?;
    Ok(InputText(InputRepr::Owned(lossy(all))))
}

/// The bytes as text, invalid UTF-8 replaced.
fn lossy(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Anonymous memory of its own mapping, 2 MiB aligned and advised for transparent huge
/// pages (this machine's THP mode is `madvise`), holding `len` bytes read so far.
struct BigBuffer {
    /// The whole mapping (for munmap).
    map: *mut libc::c_void,
    map_len: usize,
    /// The aligned start, and the bytes usable from there.
    start: *mut u8,
    cap: usize,
    len: usize,
}

// The buffer is plain memory owned by one value (no sharing), like a Vec<u8>.
unsafe impl Send for BigBuffer {}
unsafe impl Sync for BigBuffer {}

const HUGE_PAGE: usize = 2 << 20;

impl BigBuffer {
    /// Room for `cap` bytes; None when the mapping fails.
    fn new(cap: usize) -> Option<BigBuffer> {
        let map_len = cap.checked_add(HUGE_PAGE)?;
        // SAFETY: a fresh private anonymous mapping (no address given, no file): it
        // aliases no memory of the program. Checked for failure below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return None;
        }
        let offset = (HUGE_PAGE - map as usize % HUGE_PAGE) % HUGE_PAGE;
        let start = map.cast::<u8>().wrapping_add(offset);
        // SAFETY: `start..start + cap` lies inside the mapping made above (offset <
        // HUGE_PAGE, map_len = cap + HUGE_PAGE). Advice only changes how the kernel backs
        // the pages; a failure leaves ordinary pages, so it is ignored.
        unsafe {
            libc::madvise(start.cast(), cap, libc::MADV_HUGEPAGE);
        }
        Some(BigBuffer {
            map,
            map_len,
            start,
            cap,
            len: 0,
        })
    }

    fn capacity(&self) -> usize {
        self.cap
    }

    /// The bytes read so far.
    fn bytes(&self) -> &[u8] {
        // SAFETY: the first `len` bytes of the mapping were written by `read_from`; the
        // mapping lives as long as `self` and is written only through `&mut self`.
        unsafe { std::slice::from_raw_parts(self.start, self.len) }
    }

    /// The bytes as text: only for a buffer whose bytes were checked to be UTF-8 and are
    /// read no more (what `InputRepr::Mapped` holds).
    fn text(&self) -> &str {
        // SAFETY: `read_input_file` makes `InputRepr::Mapped` only after
        // `str::from_utf8` accepted these bytes, and nothing writes them afterwards
        // (`read_from` needs `&mut self`, which the InputText never hands out).
        unsafe { std::str::from_utf8_unchecked(self.bytes()) }
    }

    /// Reads from `r` until the buffer is full or the input ends; the bytes read in all.
    fn read_from(&mut self, r: &mut impl std::io::Read) -> std::io::Result<usize> {
        while self.len < self.cap {
            // SAFETY: the unread rest of the mapping, inside it (len < cap), written only
            // here; anonymous memory reads as zeros, so the slice is initialized.
            let rest = unsafe {
                std::slice::from_raw_parts_mut(self.start.add(self.len), self.cap - self.len)
            };
            match r.read(rest) {
                Ok(0) => break,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.len)
    }
}

impl Drop for BigBuffer {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; no borrow of it outlives self.
        unsafe {
            libc::munmap(self.map, self.map_len);
        }
    }
}

/// Convenience for tests and tools: restore into a fresh ruleset.
pub fn restore_new(input: &str, opts: &RestoreOpts) -> std::result::Result<Ruleset, RestoreError> {
    let mut rs = Ruleset::default();
    restore(&mut rs, input, opts)?;
    Ok(rs)
}

/// Result alias re-exported for callers that only need the crate error.
pub type CrateResult<T> = Result<T>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_read_input_file_reads_as_std_does() {
        let dir = std::env::temp_dir().join(format!("nfrs-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.rules");
        let mut big = String::from("*filter\n");
        while big.len() < BIG_INPUT as usize + 12345 {
            big.push_str(
                "-A INPUT -s 10.1.2.3/32 -m comment --comment \"\u{e9}t\u{e9}\" -j ACCEPT\n",
            );
        }
        big.push_str("COMMIT\n");
        let mut invalid = big.clone().into_bytes();
        invalid[BIG_INPUT as usize + 7] = 0xff;
        for bytes in [
            big.as_bytes().to_vec(),
            invalid,
            b"*nat\nCOMMIT\n".to_vec(),
            b"\xff\xfe".to_vec(),
            Vec::new(),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            let got = read_input_file(&path).unwrap();
            assert_eq!(&*got, &*String::from_utf8_lossy(&bytes));
            assert_eq!(
                restore_new(&got, &RestoreOpts::default())
                    .map(|rs| crate::save::save(&rs, None, false)),
                restore_new(&String::from_utf8_lossy(&bytes), &RestoreOpts::default())
                    .map(|rs| crate::save::save(&rs, None, false))
            );
        }
        assert!(read_input_file(&dir.join("absent")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_tokenize_fast_scan_equals_the_general_loop() {
        // Lines of blanks, quotes, backslashes, `!`, `#` (0x23, a borrow's false flag),
        // multibyte text and plain letters, across word boundaries: the one-scan path must
        // split exactly as the general loop does.
        let alphabet = [
            " ", "\t", "\"", "\\", "a", "n", "!", "#", "é", "\n", "bc", "\x01",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 23) as usize;
            let mut line = String::new();
            let mut r = seed;
            for _ in 0..len {
                r = r
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                line.push_str(alphabet[(r >> 33) as usize % alphabet.len()]);
            }
            for esc in [false, true] {
                let (mut fast, mut general) = (Vec::new(), Vec::new());
                tokenize_into(&line, esc, &mut fast);
                tokenize_from(&line, 0, esc, &mut general);
                assert_eq!(fast, general, "{line:?}");
            }
        }
    }

    /// The fast path's answer for one rule line (after `[p:b]` as with -c), checked against
    /// the general parser: when it takes the line, the general parser gives the same
    /// command. Returns whether the fast path took it.
    fn fast_agrees(line: &str, kind: TableKind) -> bool {
        let mut body = line;
        let mut tokens: Vec<Cow<str>> = Vec::new();
        if let Some(inner) = line.strip_prefix('[') {
            if let Some((c, rest)) = inner.split_once("] ") {
                if let Some((p, b)) = c.split_once(':') {
                    tokens.extend([Cow::Borrowed("--set-counters"), p.into(), b.into()]);
                    body = rest;
                }
            }
        }
        tokenize_into(body, false, &mut tokens);
        let Some(fast) = parse::parse_append_fast(&tokens, kind) else {
            return false;
        };
        let (general, _) = parse::parse_args(&tokens, true, Some(kind), false);
        let general = general.unwrap_or_else(|e| panic!("{line:?}: fast took it, general: {e:?}"));
        assert_eq!(format!("{fast:?}"), format!("{general:?}"), "{line:?}");
        true
    }

    #[test]
    fn test_fast_path_agrees_on_corpus_lines() {
        // Every rule line of the real rulesets and of iptables' .t files (as `-A` lines of
        // each table).
        let shared = std::env::var_os("NFRS_SHARED")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
            });
        let corpus = shared.join("corpus");
        if !corpus.is_dir() {
            eprintln!("skipped: ../shared/corpus absent");
            return;
        }
        let mut files = Vec::new();
        let mut dirs = vec![corpus.join("rulesets"), corpus.join("iptables-t")];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    files.push(p);
                }
            }
        }
        let (mut lines, mut taken) = (0, 0);
        for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let t_file = f.extension().is_some_and(|e| e == "t");
            for l in text.lines() {
                let l = l.trim_start_matches("    ");
                let rule = if t_file {
                    match l.split(';').next() {
                        Some(r) if !r.starts_with([':', '#']) && !r.is_empty() => {
                            format!("-A INPUT {r}")
                        }
                        _ => continue,
                    }
                } else if l.starts_with("-A ") || l.starts_with('[') {
                    l.to_string()
                } else {
                    continue;
                };
                for kind in TableKind::ALL {
                    lines += 1;
                    taken += usize::from(fast_agrees(&rule, kind));
                }
            }
        }
        eprintln!("fast path: {taken} of {lines} corpus line runs");
        assert!(taken > 1000, "{taken}");
    }

    #[test]
    fn test_fast_path_agrees_on_generated_lines() {
        // Token soup around the shapes the fast path takes: whatever it accepts, the
        // general parser must give the same.
        let pool = [
            "-A",
            "X",
            "INPUT",
            "OUTPUT",
            "PREROUTING",
            "-s",
            "-d",
            "!",
            "-p",
            "tcp",
            "udp",
            "TCP",
            "6",
            "all",
            "0",
            "icmp",
            "-m",
            "comment",
            "--comment",
            "a b",
            "",
            "tcp",
            "--dport",
            "80",
            "http",
            "--sport",
            "1:2",
            "-j",
            "-g",
            "ACCEPT",
            "DROP",
            "RETURN",
            "QUEUE",
            "DNAT",
            "--to-destination",
            "1.2.3.4:80",
            "10.0.0.1",
            "KUBE-X",
            "statistic",
            "--mode",
            "random",
            "nth",
            "--probability",
            "0.5",
            "--every",
            "2",
            "-i",
            "-o",
            "eth0",
            "eth+",
            "a/b",
            "--set-counters",
            "5",
            "mark",
            "--mark",
            "0x4000/0x4000",
            "conntrack",
            "--ctstate",
            "NEW",
            "MASQUERADE",
            "--to-ports",
            "REJECT",
            "--reject-with",
            "tcp-reset",
            "multiport",
            "--dports",
            "1,2",
            "-c",
            "-f",
            "--syn",
            "--tcp-flags",
            "SYN,ACK",
            "SYN",
            "--source",
            "1.1.1.1,2.2.2.2",
            "1.2.3.4/32",
            "10.1/16",
            "010.0.0.1",
            "1.2.3.4/255.255.0.0",
            "-v",
            "--",
            "--dport=80",
            "--dp",
            "LOG",
            "--log-prefix",
            "udp",
            "MARK",
            "--set-xmark",
            "0x1/0xff",
            "-x",
            "SNAT",
            "--to-source",
            "--random",
            "-A",
            "Y",
            "addrtype",
            "--dst-type",
            "LOCAL",
            "state",
            "--state",
            "ESTABLISHED",
            "limit",
            "--limit",
            "3/min",
            "--match",
            "-mcomment",
            "-ptcp",
            "--protocol",
            "nosuch",
            "CT",
            "--notrack",
            "1.2.3.4.5",
            "host.invalid",
            "-12",
            "é",
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let (mut taken, mut runs) = (0, 0);
        for round in 0..60_000 {
            let mut line = String::new();
            if round % 4 != 0 {
                line.push_str(["-A X", "-A INPUT", "[1:2] -A OUTPUT", "-A PREROUTING"][next(4)]);
            }
            for _ in 0..next(12) {
                let t = pool[next(pool.len())];
                line.push(' ');
                if t.is_empty() || t.contains(' ') {
                    line.push('"');
                    line.push_str(t);
                    line.push('"');
                } else {
                    line.push_str(t);
                }
            }
            for kind in [TableKind::Filter, TableKind::Nat, TableKind::Mangle] {
                runs += 1;
                taken += usize::from(fast_agrees(line.trim_start(), kind));
            }
        }
        eprintln!("fast path took {taken} of {runs} generated lines");
        assert!(taken > 1000, "{taken}");
    }

    #[test]
    fn test_blank_fields_split_as_a_byte_loop() {
        let alphabet = [
            " ",
            "\t",
            "\n",
            "a",
            "\x01",
            "!",
            "\"",
            "é",
            "KUBE-SEP-X",
            "[0:0]",
        ];
        let mut x = 99u32;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(x % 17) {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                s.push_str(alphabet[(x >> 24) as usize % alphabet.len()]);
            }
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let want: Vec<&str> = s
                .split([' ', '\t', '\n'])
                .filter(|f| !f.is_empty())
                .collect();
            assert_eq!(blank_fields(&s).collect::<Vec<_>>(), want, "{s:?}");
        }
    }

    #[test]
    fn test_declared_chain_reads_the_name_up_to_a_blank() {
        assert_eq!(declared_chain(":KUBE-SEP-X - [0:0]\n"), Some("KUBE-SEP-X"));
        assert_eq!(declared_chain(":A\tB\n"), Some("A"));
        assert_eq!(declared_chain(":A\n"), Some("A"));
        assert_eq!(declared_chain(":"), Some(""));
        assert_eq!(declared_chain("-A X -j Y\n"), None);
    }

    #[test]
    fn test_same_chain_run_counts_lines_of_one_chain() {
        let lines = [
            "-A KUBE-SVC-X -j A\n",
            "[1:2] -A KUBE-SVC-X -j B\n",
            "-A KUBE-SVC-X -j C\n",
            "-A KUBE-SVC-XY -j C\n",
            "-A KUBE-SVC-X -j D\n",
        ];
        let x = "KUBE-SVC-X";
        assert_eq!(same_chain_run(&lines, x), 3);
        assert_eq!(same_chain_run(&lines[1..], x), 2);
        assert_eq!(same_chain_run(&lines[3..], "KUBE-SVC-XY"), 1);
        assert_eq!(same_chain_run(&lines[3..], x), 0);
        assert_eq!(same_chain_run(&["-A X\n", "-A X -j A\n"], "X"), 0);
        assert_eq!(same_chain_run(&["-I X 1 -j A\n"], "X"), 0);
        assert_eq!(same_chain_run(&[":X - [0:0]\n"], "X"), 0);
    }

    #[test]
    fn test_tokenize_quotes() {
        // Recorded with iptables-legacy-restore 1.8.9 (see crate README).
        assert_eq!(
            tokenize("-m comment --comment \"a b\"\n"),
            ["-m", "comment", "--comment", "a b"]
        );
        assert_eq!(tokenize("--comment \"a\\\"b\"\n"), ["--comment", "a\"b"]);
        assert_eq!(
            tokenize("--comment a\"b c\"d\n"),
            ["--comment", "ab c", "d"]
        );
        assert_eq!(tokenize("--comment \"\"\n"), ["--comment", ""]);
        assert_eq!(tokenize("--comment \"a\\xb\"\n"), ["--comment", "axb"]);
        assert_eq!(tokenize("--comment a\\\"b\n"), ["--comment", "a\\b\n"]);
        assert_eq!(tokenize("--comment \"ab\n"), ["--comment", "ab\n"]);
        assert_eq!(tokenize("--comment 'a b'\n"), ["--comment", "'a", "b'"]);
    }

    /// The first (character state machine) version of the tokenizer, kept as the reference
    /// the faster argument-at-a-time scan must agree with.
    fn reference_tokenize<'a>(line: &'a str, store_escapes: bool, out: &mut Vec<Cow<'a, str>>) {
        // Byte scan: every special character is ASCII, so the runs between them are whole
        // (UTF-8 safe) slices.
        let bytes = line.as_bytes();
        let mut cur = Piece::default();
        let mut quoted = false;
        // Start of the pending run of ordinary characters, not yet added to `cur`.
        let mut run = 0;
        let mut i = 0;
        while i < bytes.len() {
            // Skip ordinary characters in one tight loop.
            if quoted {
                while i < bytes.len() && !matches!(bytes[i], b'"' | b'\\') {
                    i += 1;
                }
            } else {
                while i < bytes.len() && !matches!(bytes[i], b'"' | b' ' | b'\t' | b'\n') {
                    i += 1;
                }
            }
            if i == bytes.len() {
                break;
            }
            let b = bytes[i];
            if quoted {
                match b {
                    b'\\' => {
                        cur.add(line, run, i);
                        // The next character (if any) is taken literally.
                        match line[i + 1..].chars().next() {
                            Some(c) => {
                                cur.add_char(
                                    line,
                                    if store_escapes && c == 'n' { '\n' } else { c },
                                );
                                i += 1 + c.len_utf8();
                            }
                            None => i += 1,
                        }
                        run = i;
                        continue;
                    }
                    b'"' => {
                        cur.add(line, run, i);
                        quoted = false;
                        // The closing quote ends the argument, even an empty one.
                        out.push(cur.take(line));
                        run = i + 1;
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            match b {
                b'"' => {
                    cur.add(line, run, i);
                    quoted = true;
                    run = i + 1;
                }
                b' ' | b'\t' | b'\n' => {
                    cur.add(line, run, i);
                    if !cur.is_empty() {
                        out.push(cur.take(line));
                    }
                    run = i + 1;
                }
                _ => {}
            }
            i += 1;
        }
        cur.add(line, run, bytes.len());
        if !cur.is_empty() {
            out.push(cur.take(line));
        }
    }

    /// A filter table of `n` rules (more than [`PARSE_AHEAD_MIN`] makes a helper thread
    /// parse ahead), with `bad` lines (by rule number) replaced.
    fn big_table(n: usize, bad: &[(usize, &str)]) -> String {
        let mut t = String::from("*filter\n:X - [0:0]\n:INPUT DROP [0:0]\n");
        for i in 0..n {
            if let Some((_, b)) = bad.iter().find(|(k, _)| *k == i) {
                t.push_str(b);
                t.push('\n');
                continue;
            }
            if i % 97 == 0 {
                t.push_str("# a comment\n\n");
            }
            t.push_str(&format!(
                "-A INPUT -s 10.{}.{}.0/24 -p tcp -m tcp --dport {} -m comment --comment \"r {i}\" -j {}\n",
                i / 256 % 256,
                i % 256,
                i % 65535 + 1,
                if i % 3 == 0 { "X" } else { "ACCEPT" }
            ));
        }
        t.push_str("COMMIT\n*nat\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n");
        t
    }

    fn both_ways(text: &str) -> [std::result::Result<Ruleset, RestoreError>; 2] {
        [false, true].map(|parse_ahead| {
            let opts = RestoreOpts {
                parse_ahead,
                ..Default::default()
            };
            restore_new(text, &opts)
        })
    }

    #[test]
    fn test_parse_ahead_gives_the_single_thread_result() {
        let n = 3 * PARSE_AHEAD_MIN;
        let text = big_table(n, &[]);
        // The helper does start on a machine with two cores or more.
        let lines = fgets_lines(&text);
        let opts = RestoreOpts {
            parse_ahead: true,
            ..Default::default()
        };
        let cancel = AtomicBool::new(false);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        std::thread::scope(|sc| {
            let started = parse_ahead(sc, &lines, 0, TableKind::Filter, &opts, &cancel).is_some();
            assert_eq!(started, cores > 1);
        });
        let [one, two] = both_ways(&text);
        let one = one.unwrap();
        assert_eq!(one.tables[1].chains[0].rules.len(), n);
        assert_eq!(Ok(one), two);
        // Errors in either part, parse errors and refusals when applying: the first one in
        // line order wins, with its line number, as on one thread.
        let late = n - 10;
        let early = 100;
        for bad in [
            vec![(late, "-A INPUT --bogus")],
            vec![(early, "-A INPUT --bogus"), (late, "-A INPUT -p nosuch")],
            vec![(early, "-A INPUT -j NOWHERE"), (late, "-A INPUT --bogus")],
            vec![(late, "-A INPUT -j NOWHERE")],
            vec![(late, "[1:2 -A INPUT")],
            vec![(n / 2, "-A INPUT --bogus"), (late, "-A INPUT --bogus")],
        ] {
            let [one, two] = both_ways(&big_table(n, &bad));
            assert!(one.is_err(), "{bad:?}");
            assert_eq!(one, two, "{bad:?}");
        }
    }

    #[test]
    fn test_jumps_resolved_at_append_check_as_at_commit() {
        // Each text restored as is (jumps resolved while appending) and with its comment
        // line turned into `-Z` (any command but -A makes the commit resolve every jump
        // itself): same ruleset or same error.
        let head = "*filter\n# x\n:A - [0:0]\n:B - [0:0]\n:C - [0:0]\n";
        let cases = [
            "-A INPUT -j A\n-A A -j B\n-A B -g C\n-A C -j RETURN\n-A FORWARD -j C\n-A OUTPUT -j B\n",
            "-A INPUT -j A\n-A A -j B\n-A B -j A\n",
            "-A A -j INPUT\n",
            "-A INPUT -j A\n-A A -j D\n:D - [0:0]\n",
            "-A INPUT -p tcp -j A\n-A A -s 1.1.1.1,2.2.2.2 -j C\n-A C -j LOG\n-A B -j C\n",
            "-A OUTPUT -j A\n-A A -j REJECT\n-A INPUT -g B\n-A B -j MARK --set-mark 1\n",
            // Refused by a checkentry: a table's or a hook's (owner only from OUTPUT).
            "-A INPUT -j A\n-A A -j B\n-A B -j DNAT --to-destination 1.2.3.4\n",
            "-A C -j ACCEPT\n-A INPUT -j A\n-A A -m owner --uid-owner 0 -j ACCEPT\n",
            "-A C -j ACCEPT\n-A OUTPUT -j A\n-A A -m owner --uid-owner 0 -j ACCEPT\n",
        ];
        for (k, body) in cases.into_iter().enumerate() {
            let text = format!("{head}{body}COMMIT\n*nat\n:X - [0:0]\n-A OUTPUT -j X\n-A X -j DNAT --to-destination 1.2.3.4\nCOMMIT\n");
            let with_zero = text.replacen("# x\n", "-Z\n", 1);
            let a = restore_new(&text, &RestoreOpts::default());
            let b = restore_new(&with_zero, &RestoreOpts::default());
            // The second to fourth are refused (loop, jump into a built-in, unknown target).
            assert_eq!(a.is_err(), matches!(k, 1..=3 | 6 | 7), "{body}");
            assert_eq!(a, b, "{body}");
        }
    }

    #[test]
    fn test_tokenize_agrees_with_reference() {
        // Every string over an alphabet of the special characters, up to length 6, then
        // longer pseudo-random ones.
        let alphabet = ['a', ' ', '\t', '\n', '"', '\\', 'n', 'é'];
        let check = |s: &str| {
            for esc in [false, true] {
                let mut want = Vec::new();
                reference_tokenize(s, esc, &mut want);
                let mut got = Vec::new();
                tokenize_into(s, esc, &mut got);
                assert_eq!(got, want, "{s:?} escapes {esc}");
            }
        };
        let mut stack = vec![String::new()];
        while let Some(s) = stack.pop() {
            check(&s);
            if s.chars().count() < 6 {
                for c in alphabet {
                    let mut t = s.clone();
                    t.push(c);
                    stack.push(t);
                }
            }
        }
        let mut x: u32 = 7;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..40 {
                x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                s.push(alphabet[(x >> 24) as usize % alphabet.len()]);
            }
            check(&s);
        }
    }
}
