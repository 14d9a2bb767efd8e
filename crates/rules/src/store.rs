//! The store: a directory holding the ruleset between commands (later also sysctls and a
//! conntrack snapshot). The ruleset is kept as `ruleset.rules`: a first line naming the
//! format (`save::STORE_HEAD`), each table's block as `iptables-save -c` prints it in the
//! kernel's table order (in the store's lossless variant where that text would lose
//! something), and a last line indexing the blocks (`save::STORE_INDEX`), so that
//! `iptables-save` can copy them without reading the ruleset ([`Store::open_indexed`]).
//! Files written before the index still load. Every write is atomic: a temporary file is
//! written and fsynced, renamed over the old one, and the directory fsynced, so a crash
//! leaves either the old or the new ruleset, never half of one.

use crate::error::{Error, Result};
use crate::model::Ruleset;
use crate::restore::{restore, RestoreOpts};
use crate::save;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A store directory.
#[derive(Clone, Debug)]
pub struct Store {
    pub dir: PathBuf,
}

const RULESET_FILE: &str = "ruleset.rules";

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl Store {
    /// The store chosen by `--store DIR`, else `$NFRS_STORE`, else `/var/lib/nfrs` for root and
    /// `$XDG_STATE_HOME/nfrs` (or `~/.local/state/nfrs`) for other users.
    pub fn locate(explicit: Option<&str>) -> Store {
        if let Some(d) = explicit {
            return Store {
                dir: PathBuf::from(d),
            };
        }
        if let Ok(d) = std::env::var("NFRS_STORE") {
            if !d.is_empty() {
                return Store {
                    dir: PathBuf::from(d),
                };
            }
        }
        if is_root() {
            return Store {
                dir: PathBuf::from("/var/lib/nfrs"),
            };
        }
        let base = match std::env::var("XDG_STATE_HOME") {
            Ok(x) if !x.is_empty() => PathBuf::from(x),
            _ => PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into()))
                .join(".local/state"),
        };
        Store {
            dir: base.join("nfrs"),
        }
    }

    /// A store at `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Store {
        Store { dir: dir.into() }
    }

    /// Loads the ruleset; an absent store is an empty ruleset (no table used yet).
    pub fn load(&self) -> Result<Ruleset> {
        let path = self.dir.join(RULESET_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ruleset::default()),
            Err(e) => return Err(Error::other(format!("{}: {e}", path.display()))),
        };
        let corrupt = |m: &str| Error::other(format!("{}: corrupt store: {m}", path.display()));
        let text = restore_text(text).ok_or_else(|| corrupt("bad index"))?;
        read_store_text(&text).map_err(|e| corrupt(e.message.trim_end()))
    }

    /// Writes the ruleset atomically.
    pub fn save(&self, rs: &Ruleset) -> Result<()> {
        write_atomic_with(&self.dir, RULESET_FILE, |f| save::save_store_to(rs, f))
    }

    /// [`Store::save`] of the ruleset as a restore from `input` left it, with the
    /// `blocks` that restore noted ([`crate::restore::restore_noting_blocks`]).
    pub fn save_after_restore(
        &self,
        rs: &Ruleset,
        input: &str,
        blocks: &crate::restore::InputBlocks,
    ) -> Result<()> {
        write_atomic_with(&self.dir, RULESET_FILE, |f| {
            save::save_store_after_restore(rs, input, blocks, f)
        })
    }

    /// The store file opened with its index ([`save::STORE_INDEX`]), when it is in the
    /// format `iptables-save` can copy from and is as it was written (the index covers the
    /// file exactly, each block runs from `*TABLE` to `COMMIT`). None for an absent file,
    /// one written before that format, or anything unexpected: then [`Store::load`].
    pub fn open_indexed(&self) -> Option<IndexedStore> {
        let path = self.dir.join(RULESET_FILE);
        let file = File::open(&path).ok()?;
        let len = file.metadata().ok()?.len();
        let head = read_exact_at(&file, save::STORE_HEAD.len() as u64, 0)?;
        let three = head == save::STORE_HEAD3.as_bytes();
        if head != save::STORE_HEAD.as_bytes() && !three {
            return None;
        }
        // The index is the last line (a few dozen bytes a table), or in format 3 the lines
        // the last one points to.
        let tail_len = len.min(1024);
        let tail = read_exact_at(&file, tail_len, len - tail_len)?;
        let body = tail.strip_suffix(b"\n")?;
        let line_start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if line_start == 0 && tail_len < len {
            return None;
        }
        let line = std::str::from_utf8(&body[line_start..]).ok()?;
        let index_at = len - (tail.len() - line_start) as u64;
        let blocks = if three {
            let at: u64 = line
                .strip_prefix(save::STORE_END)?
                .strip_prefix(' ')?
                .parse()
                .ok()?;
            let lines = read_exact_at(&file, index_at.checked_sub(at)?, at)?;
            parse_runs(std::str::from_utf8(&lines).ok()?, head.len() as u64, at)?
        } else {
            parse_index(line, head.len() as u64, index_at)?
        };
        for b in &blocks {
            let name = b.kind.name();
            let (first, last) = (b.runs.first()?, b.runs.last()?);
            if first.1 < name.len() as u64 + 2 || last.1 < 7 {
                return None;
            }
            let open = read_exact_at(&file, name.len() as u64 + 2, first.0)?;
            let close = read_exact_at(&file, 7, last.0 + last.1 - 7)?;
            if !block_ends(&open, &close, name) {
                return None;
            }
        }
        Some(IndexedStore {
            file,
            path,
            blocks,
            whole: std::cell::OnceCell::new(),
        })
    }
}

/// The table blocks a store file's bytes hold in formats 2 and 3, each as one text (its
/// ranges joined), with whether the index marks it as iptables-save's text; None for another
/// format or an index that does not hold.
pub fn stored_blocks(file: &[u8]) -> Option<Vec<(crate::model::TableKind, bool, String)>> {
    let blocks = if file.starts_with(save::STORE_HEAD3.as_bytes()) {
        runs_of_text(file)?
    } else if file.starts_with(save::STORE_HEAD.as_bytes()) {
        let body = file.strip_suffix(b"\n")?;
        let line_start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let line = std::str::from_utf8(&body[line_start..]).ok()?;
        parse_index(line, save::STORE_HEAD.len() as u64, line_start as u64)?
    } else {
        return None;
    };
    let mut out = Vec::new();
    for b in blocks {
        let mut text = Vec::new();
        for &(s, l) in &b.runs {
            text.extend_from_slice(file.get(s as usize..(s + l) as usize)?);
        }
        out.push((b.kind, b.as_saved, String::from_utf8(text).ok()?));
    }
    Some(out)
}

/// Whether a block's first bytes (`*NAME\n`) and last seven (`COMMIT\n`) are a block's.
fn block_ends(open: &[u8], close: &[u8], name: &str) -> bool {
    open.len() == name.len() + 2
        && open[0] == b'*'
        && &open[1..=name.len()] == name.as_bytes()
        && open[name.len() + 1] == b'\n'
        && close == b"COMMIT\n"
}

/// A store file's text as restore input: in format 3 the blocks (the index's ranges
/// joined), else the text as it is (its `#` lines are comments). None for a format 3 index
/// that does not hold.
fn restore_text(text: String) -> Option<String> {
    if !text.starts_with(save::STORE_HEAD3) {
        return Some(text);
    }
    let blocks = runs_of_text(text.as_bytes())?;
    let mut joined = String::with_capacity(text.len());
    for b in &blocks {
        for &(s, l) in &b.runs {
            joined.push_str(text.get(s as usize..(s + l) as usize)?);
        }
    }
    Some(joined)
}

/// The blocks of a format 3 file's whole text, when its index is sound.
fn runs_of_text(text: &[u8]) -> Option<Vec<StoredBlock>> {
    let body = text.strip_suffix(b"\n")?;
    let line_start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let line = std::str::from_utf8(&body[line_start..]).ok()?;
    let at: usize = line
        .strip_prefix(save::STORE_END)?
        .strip_prefix(' ')?
        .parse()
        .ok()?;
    let index = std::str::from_utf8(text.get(at..line_start)?).ok()?;
    let blocks = parse_runs(index, save::STORE_HEAD3.len() as u64, at as u64)?;
    for b in &blocks {
        let name = b.kind.name();
        let (first, last) = (b.runs.first()?, b.runs.last()?);
        let open = text.get(first.0 as usize..)?.get(..name.len() + 2)?;
        let end = (last.0 + last.1) as usize;
        let close = text.get(end.checked_sub(7)?..end)?;
        if !block_ends(open, close, name) {
            return None;
        }
    }
    Some(blocks)
}

/// The blocks a format 3 index names (`lines`: its [`save::STORE_RUNS`] lines), when each
/// table comes at most once and every range lies between `first` and the index at `end`.
fn parse_runs(lines: &str, first: u64, end: u64) -> Option<Vec<StoredBlock>> {
    let mut blocks: Vec<StoredBlock> = Vec::new();
    for line in lines.split_terminator('\n') {
        let mut f = line
            .strip_prefix(save::STORE_RUNS)?
            .strip_prefix(' ')?
            .split(' ');
        let kind = crate::model::TableKind::from_name(f.next()?)?;
        let as_saved = match f.next()? {
            "s" => true,
            "f" => false,
            _ => return None,
        };
        let mut runs = Vec::new();
        while let Some(s) = f.next() {
            let s: u64 = s.parse().ok()?;
            let l: u64 = f.next()?.parse().ok()?;
            if s < first || l == 0 || s.checked_add(l)? > end {
                return None;
            }
            runs.push((s, l));
        }
        if runs.is_empty() || blocks.iter().any(|b| b.kind == kind) {
            return None;
        }
        blocks.push(StoredBlock {
            kind,
            runs,
            as_saved,
        });
    }
    lines.ends_with('\n').then_some(blocks)
}

impl Store {
    /// The ruleset for an `iptables-restore` that replaces whole tables (no `--noflush`, no
    /// `--test`): each table whose block is in iptables-save's form loaded with its chains
    /// (names, policies) but without rules, the others whole; and which tables were loaded
    /// so. A restore replaces a table it commits with the input's block, keeping only the
    /// built-in chains' policies (what is loaded), so reading its rules would be wasted; a
    /// table the restore does not commit must then be completed with
    /// [`Store::complete_after_restore`] before the ruleset is used or stored. A store
    /// without the index is loaded whole (no table listed).
    pub fn load_for_restore(&self) -> Result<(Ruleset, Vec<crate::model::TableKind>)> {
        let Some(file) = self.open_indexed() else {
            return Ok((self.load()?, Vec::new()));
        };
        let mut text = Vec::new();
        let mut heads = Vec::new();
        for b in &file.blocks {
            if b.as_saved {
                file.read_head(b, &mut text).map_err(|e| self.io_error(e))?;
                text.extend_from_slice(b"COMMIT\n");
                heads.push(b.kind);
            } else {
                file.read_block(b, &mut text)
                    .map_err(|e| self.io_error(e))?;
            }
        }
        Ok((self.read_text(text)?, heads))
    }

    /// Completes a ruleset from [`Store::load_for_restore`] after the restore: each table
    /// in `heads` the restore did not commit (`committed`: the restore's
    /// `InputBlocks::committed_tables`) gets its rules from the store again.
    pub fn complete_after_restore(
        &self,
        rs: &mut Ruleset,
        heads: &[crate::model::TableKind],
        committed: &[crate::model::TableKind],
    ) -> Result<()> {
        let missing: Vec<_> = heads.iter().filter(|k| !committed.contains(k)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let file = self
            .open_indexed()
            .ok_or_else(|| Error::other(format!("{}: the store changed", self.dir.display())))?;
        let mut text = Vec::new();
        for b in file.blocks.iter().filter(|b| missing.contains(&&b.kind)) {
            file.read_block(b, &mut text)
                .map_err(|e| self.io_error(e))?;
        }
        let whole = self.read_text(text)?;
        for t in whole.tables {
            match rs.tables.iter_mut().find(|x| x.kind == t.kind) {
                Some(slot) => *slot = t,
                None => {
                    return Err(Error::other(format!(
                        "{}: table {} went missing",
                        self.dir.display(),
                        t.kind.name()
                    )))
                }
            }
        }
        Ok(())
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        Error::other(format!("{}: {e}", self.dir.join(RULESET_FILE).display()))
    }

    /// The ruleset of store text read from the file (as [`Store::load`] reads it).
    fn read_text(&self, text: Vec<u8>) -> Result<Ruleset> {
        let path = self.dir.join(RULESET_FILE);
        let text = String::from_utf8(text)
            .map_err(|_| Error::other(format!("{}: corrupt store: not UTF-8", path.display())))?;
        read_store_text(&text).map_err(|e| {
            Error::other(format!(
                "{}: corrupt store: {}",
                path.display(),
                e.message.trim_end()
            ))
        })
    }
}

/// A table block of a store file in the indexed format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBlock {
    pub kind: crate::model::TableKind,
    /// The byte ranges of the file (start, length) that give the block joined in order: one
    /// in format 2, any number in format 3.
    pub runs: Vec<(u64, u64)>,
    /// The block is exactly `iptables-save -c`'s text of the table (`s` in the index).
    pub as_saved: bool,
}

/// A store file opened by [`Store::open_indexed`]: its table blocks in the file's order
/// (the order `iptables-save` prints them in).
pub struct IndexedStore {
    file: File,
    path: PathBuf,
    pub blocks: Vec<StoredBlock>,
    /// The whole file, once read (for blocks of many ranges).
    whole: std::cell::OnceCell<Option<crate::restore::InputText>>,
}

impl std::fmt::Debug for IndexedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "IndexedStore({}, {:?})",
            self.path.display(),
            self.blocks
        )
    }
}

/// Bytes [`IndexedStore::copy_block`] reads (and writes) at a time.
const COPY_CHUNK: usize = 256 * 1024;

/// How many ranges ahead [`IndexedStore::copy_block`] asks for a range's first bytes.
const PREFETCH_RUNS_AHEAD: usize = 8;

/// Blocks of more ranges than this are copied from the whole file read at once (one read
/// a range would cost a system call each).
const FEW_RUNS: usize = 16;

impl IndexedStore {
    /// Copies a block to `out`: as it is with `counters`, else without the `[p:b] ` that
    /// starts each rule line (`iptables-save` without `-c`). `Err(true)` for a failed read
    /// of the store, `Err(false)` for a failed write to `out`.
    pub fn copy_block(
        &self,
        block: &StoredBlock,
        counters: bool,
        out: &mut dyn Write,
    ) -> std::result::Result<(), bool> {
        use std::os::unix::fs::FileExt;
        let mut lines = DropCounters::default();
        if block.runs.len() > FEW_RUNS {
            let whole = self.whole().ok_or(true)?;
            let mut buf = Vec::with_capacity(COPY_CHUNK + 4096);
            for (k, &(s, l)) in block.runs.iter().enumerate() {
                // The ranges lie anywhere in the file (printed in input order, copied in
                // the canonical one): each one's first lines start loading a few ranges
                // ahead.
                if let Some(&(a, n)) = block.runs.get(k + PREFETCH_RUNS_AHEAD) {
                    for off in (0..n.min(256)).step_by(64) {
                        save::prefetch(whole.as_ptr().wrapping_add((a + off) as usize));
                    }
                }
                let bytes = whole.get(s as usize..(s + l) as usize).ok_or(true)?;
                if counters {
                    buf.extend_from_slice(bytes);
                } else {
                    lines.feed(bytes, &mut buf);
                }
                if buf.len() >= COPY_CHUNK {
                    out.write_all(&buf).map_err(|_| false)?;
                    buf.clear();
                }
            }
            return out.write_all(&buf).map_err(|_| false);
        }
        let most = block.runs.iter().map(|r| r.1).max().unwrap_or(0);
        let mut buf = vec![0u8; COPY_CHUNK.min(most as usize)];
        let mut stripped = Vec::with_capacity(if counters { 0 } else { buf.len() });
        for &(start, len) in &block.runs {
            let mut at = start;
            let end = start + len;
            while at < end {
                let want = buf.len().min((end - at) as usize);
                let n = match self.file.read_at(&mut buf[..want], at) {
                    Ok(0) => return Err(true),
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => return Err(true),
                };
                at += n as u64;
                if counters {
                    out.write_all(&buf[..n]).map_err(|_| false)?;
                } else {
                    stripped.clear();
                    lines.feed(&buf[..n], &mut stripped);
                    out.write_all(&stripped).map_err(|_| false)?;
                }
            }
        }
        Ok(())
    }

    /// The whole file's bytes (read once; huge pages for a big one), when it is as long as
    /// when it was opened.
    fn whole(&self) -> Option<&[u8]> {
        let text = self.whole.get_or_init(|| {
            let len = self.file.metadata().ok()?.len();
            let text = crate::restore::read_input_file(&self.path).ok()?;
            (text.len() as u64 == len).then_some(text)
        });
        text.as_deref().map(str::as_bytes)
    }

    /// Appends a whole block to `out`.
    fn read_block(&self, block: &StoredBlock, out: &mut Vec<u8>) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        if block.runs.len() > FEW_RUNS {
            let whole = self.whole().ok_or(std::io::ErrorKind::UnexpectedEof)?;
            for &(s, l) in &block.runs {
                let bytes = whole.get(s as usize..(s + l) as usize);
                out.extend_from_slice(bytes.ok_or(std::io::ErrorKind::UnexpectedEof)?);
            }
            return Ok(());
        }
        for &(s, l) in &block.runs {
            let at = out.len();
            out.resize(at + l as usize, 0);
            self.file.read_exact_at(&mut out[at..], s)?;
        }
        Ok(())
    }

    /// Appends the head of a block in iptables-save's form to `out`: its lines before the
    /// first rule line (`*table` and the chain lines; rule lines start with `[`), read a
    /// piece at a time from its first range (the head is never split: it is written in one
    /// go, and ranges that follow each other are joined).
    fn read_head(&self, block: &StoredBlock, out: &mut Vec<u8>) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let &(start, len) = block
            .runs
            .first()
            .ok_or(std::io::ErrorKind::UnexpectedEof)?;
        let end = start + len;
        let mut at = start;
        let mut at_line_start = true;
        let mut piece = vec![0u8; 64 * 1024];
        while at < end {
            let want = piece.len().min((end - at) as usize);
            let n = self.file.read_at(&mut piece[..want], at)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let bytes = &piece[..n];
            // The first `[` at a line's start ends the head (lines found eight bytes a step).
            let mut stop = None;
            let mut i = 0;
            if at_line_start && bytes[0] == b'[' {
                stop = Some(0);
            }
            while stop.is_none() {
                let nl = i + crate::restore::line_length(&bytes[i..]);
                if nl + 1 >= n {
                    break;
                }
                if bytes[nl + 1] == b'[' {
                    stop = Some(nl + 1);
                }
                i = nl + 1;
            }
            if let Some(i) = stop {
                out.extend_from_slice(&bytes[..i]);
                return Ok(());
            }
            at_line_start = bytes[n - 1] == b'\n';
            out.extend_from_slice(bytes);
            at += n as u64;
        }
        // No rule line: the range but its `COMMIT` line, if it ends the range (the caller
        // closes the block).
        if out.ends_with(b"\nCOMMIT\n") {
            out.truncate(out.len() - "COMMIT\n".len());
        }
        Ok(())
    }
}

/// Where [`DropCounters`] is in a line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum LinePart {
    /// At the first byte of a line.
    #[default]
    Start,
    /// Inside a rule line's `[p:b`.
    Counters,
    /// After the `]`: the blank before `-A`.
    Blank,
    /// In the text that is kept, up to and with the newline.
    Rest,
}

/// Removes the `[p:b] ` before each rule line of a table block given in pieces that may
/// end anywhere (only rule lines start with `[` in a block in iptables-save's form).
#[derive(Default)]
struct DropCounters {
    part: LinePart,
}

impl DropCounters {
    fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<u8>) {
        while let Some(&first) = bytes.first() {
            match self.part {
                LinePart::Start => {
                    if first == b'[' {
                        bytes = &bytes[1..];
                        self.part = LinePart::Counters;
                    } else {
                        self.part = LinePart::Rest;
                    }
                }
                LinePart::Counters => match bytes.iter().position(|&b| b == b']') {
                    Some(i) => {
                        bytes = &bytes[i + 1..];
                        self.part = LinePart::Blank;
                    }
                    None => bytes = &[],
                },
                LinePart::Blank => {
                    if first == b' ' {
                        bytes = &bytes[1..];
                    }
                    self.part = LinePart::Rest;
                }
                LinePart::Rest => {
                    let n = crate::restore::line_length(bytes);
                    if n < bytes.len() {
                        out.extend_from_slice(&bytes[..=n]);
                        bytes = &bytes[n + 1..];
                        self.part = LinePart::Start;
                    } else {
                        out.extend_from_slice(bytes);
                        bytes = &[];
                    }
                }
            }
        }
    }
}

/// `len` bytes of `file` at `at`, None when they cannot all be read.
fn read_exact_at(file: &File, len: u64, at: u64) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, at).ok()?;
    Some(buf)
}

/// The blocks an index line names, when they follow each other from `first` up to the index
/// line at `index_at`, each table at most once.
fn parse_index(line: &str, first: u64, index_at: u64) -> Option<Vec<StoredBlock>> {
    let rest = line.strip_prefix(save::STORE_INDEX)?;
    let fields: Vec<&str> = rest.split(' ').skip(1).collect();
    if rest.is_empty() {
        return (first == index_at).then(Vec::new);
    }
    if !rest.starts_with(' ') || !fields.len().is_multiple_of(4) {
        return None;
    }
    let mut blocks: Vec<StoredBlock> = Vec::new();
    let mut next = first;
    for f in fields.chunks(4) {
        let kind = crate::model::TableKind::from_name(f[0])?;
        let start: u64 = f[1].parse().ok()?;
        let len: u64 = f[2].parse().ok()?;
        let as_saved = match f[3] {
            "s" => true,
            "f" => false,
            _ => return None,
        };
        if start != next || blocks.iter().any(|b| b.kind == kind) {
            return None;
        }
        next = start.checked_add(len)?;
        blocks.push(StoredBlock {
            kind,
            runs: vec![(start, len)],
            as_saved,
        });
    }
    (next == index_at).then_some(blocks)
}

/// The ruleset a store file's text holds: read as iptables-restore input with `-c`
/// counters, the store's quoting and no checks (the text was checked when written).
fn read_store_text(text: &str) -> std::result::Result<Ruleset, crate::restore::RestoreError> {
    let mut rs = Ruleset::default();
    let opts = RestoreOpts {
        counters: true,
        store_escapes: true,
        trusted: true,
        ..Default::default()
    };
    restore(&mut rs, text, &opts)?;
    // The file lists tables newest first; restoring made the last one newest: undo that.
    rs.tables.reverse();
    Ok(rs)
}

/// Exclusive use of a store while a command loads, changes and saves it (iptables' xtables
/// lock): an advisory lock on the store's `lock` file, released when dropped (or when the
/// process dies, so a crash never leaves the store locked).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

impl Store {
    /// Takes the store's lock, waiting up to `wait` for another command to finish.
    pub fn lock(&self, wait: std::time::Duration) -> Result<StoreLock> {
        let io = |e: std::io::Error| Error::other(format!("{}: {e}", self.dir.display()));
        fs::create_dir_all(&self.dir).map_err(io)?;
        let path = self.dir.join("lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        let start = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(StoreLock { _file: file }),
                Err(fs::TryLockError::WouldBlock) => {
                    if start.elapsed() >= wait {
                        return Err(Error::other(format!(
                            "Another app is currently holding the nfrs store lock ({}).",
                            path.display()
                        )));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(fs::TryLockError::Error(e)) => return Err(io(e)),
            }
        }
    }
}

/// Writes `name` in `dir` atomically (temp file, fsync, rename, fsync of the directory).
pub fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    write_atomic_with(dir, name, |f| f.write_all(data))
}

/// [`write_atomic`] with the content written by `write` (in as many pieces as it likes).
/// The temp file gets fdatasync (its data and size, all a reader needs) before the rename;
/// it is removed when writing fails. A big text is written by a second thread while `write`
/// prints it ([`write_beside`]). (Tried: asking the kernel to start writing each MiB as
/// soon as it was written, `sync_file_range`, on the printing thread: the 14 MB store of the
/// kube-proxy bench took longer, 7-56 ms instead of 11-26. On the writing thread, every
/// 2 MiB, it helps: see the README's figures.)
pub fn write_atomic_with(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let io = |e: std::io::Error| Error::other(format!("{}: {e}", dir.display()));
    fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(temp_name(name, std::process::id()));
    let written = File::create(&tmp).and_then(|f| write_beside(&f, write));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(io(e));
    }
    commit_temp(dir, &tmp, name)
}

/// Renames the written and synced temporary file `tmp` to `name` in `dir` and syncs the
/// directory.
fn commit_temp(dir: &Path, tmp: &Path, name: &str) -> Result<()> {
    let io = |e: std::io::Error| Error::other(format!("{}: {e}", dir.display()));
    let target = dir.join(name);
    // The file being replaced, held open across the rename: the kernel frees a file's pages
    // when its last link and descriptor are gone, which for a big ruleset takes milliseconds
    // (measured 3-8 ms for 15 MB) inside rename(2) if nothing holds it. Closed afterwards on
    // a thread of its own, off the command's way.
    let replaced = File::open(&target).ok();
    fs::rename(tmp, &target).map_err(io)?;
    let synced = File::open(dir).and_then(|d| d.sync_all()).map_err(io);
    if let Some(old) = replaced {
        if old
            .metadata()
            .is_ok_and(|m| m.len() >= BACKGROUND_CLOSE_MIN)
        {
            // A thread that cannot start only means closing here.
            let _ = std::thread::Builder::new()
                .name("nfrs-store-close".into())
                .spawn(move || drop(old));
        }
    }
    synced
}

/// The temporary file name of a write of `name` by process `pid`.
fn temp_name(name: &str, pid: u32) -> String {
    format!(".{name}.tmp.{pid}")
}

/// Removes the temporary files of `name` in `dir` left by processes that no longer run (a
/// write killed before its rename, `kill -9`); a live writer's file stays.
fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = temp_name(name, 0);
    let prefix = prefix.trim_end_matches('0');
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(prefix))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// A write of the store's ruleset begun before an `iptables-restore` runs
/// ([`Store::begin_write`]): its temporary file exists from the start, the restore's
/// printing thread writes the rule lines it prints into it ([`StoreWrite::sink`] as
/// `RestoreOpts::print_sink`), and [`StoreWrite::finish_after_restore`] adds the rest (the
/// chain lines, the lines not printed, the index: format 3), syncs it and renames it over
/// the store file. Dropped unfinished (an error, a panic), it removes its file: the store
/// keeps what it had. The caller holds the store's lock from before `begin_write` to after
/// the finish. (A `kill -9` in between leaves the temporary file; the next `begin_write`
/// removes it.)
pub struct StoreWrite {
    dir: PathBuf,
    tmp: PathBuf,
    sink: crate::store_text::PrintSink,
    done: bool,
}

impl std::fmt::Debug for StoreWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StoreWrite({})", self.tmp.display())
    }
}

impl Store {
    /// Begins a write of the ruleset: creates the temporary file (removing ones left by dead
    /// processes) with the first line of format 3.
    pub fn begin_write(&self) -> Result<StoreWrite> {
        use std::os::unix::fs::FileExt;
        let io = |e: std::io::Error| Error::other(format!("{}: {e}", self.dir.display()));
        fs::create_dir_all(&self.dir).map_err(io)?;
        remove_stale_temps(&self.dir, RULESET_FILE);
        let tmp = self.dir.join(temp_name(RULESET_FILE, std::process::id()));
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io)?;
        let mut w = StoreWrite {
            dir: self.dir.clone(),
            tmp,
            sink: crate::store_text::PrintSink::new(file, 0),
            done: false,
        };
        let head = save::STORE_HEAD3.as_bytes();
        w.sink.file().write_all_at(head, 0).map_err(io)?;
        w.sink = crate::store_text::PrintSink::new(
            w.sink.file().try_clone().map_err(io)?,
            head.len() as u64,
        );
        Ok(w)
    }
}

impl StoreWrite {
    /// Where the restore's printing thread writes (`RestoreOpts::print_sink`).
    pub fn sink(&self) -> crate::store_text::PrintSink {
        self.sink.clone()
    }

    /// Completes the write with the ruleset as the restore left it (`blocks` from the
    /// restore given [`StoreWrite::sink`], or any other: lines printed to another sink or
    /// in memory are not used): the tables whose printed lines are in the file get the rest
    /// of their text and the index (format 3); with none, the file is written again as
    /// [`Store::save`] writes it. Then fdatasync, rename, directory
    /// fsync.
    pub fn finish_after_restore(
        mut self,
        rs: &Ruleset,
        blocks: &crate::restore::InputBlocks,
    ) -> Result<()> {
        use std::io::{Seek, SeekFrom};
        let io = |e: std::io::Error| Error::other(format!("{}: {e}", self.dir.display()));
        let printed: Vec<save::PrintedAt> = rs
            .tables
            .iter()
            .filter_map(|t| blocks.printed(t.kind))
            .filter_map(|p| Some((p.kind, p, p.at_in(&self.sink)?)))
            .collect();
        let mut f = self.sink.file();
        let written = if printed.is_empty() {
            f.set_len(0)
                .and_then(|()| f.seek(SeekFrom::Start(0)))
                .and_then(|_| write_beside(f, |w| save::save_store_to(rs, w)))
        } else {
            let end = self.sink.end();
            f.seek(SeekFrom::Start(end))
                .and_then(|_| save::write_store_runs(rs, &printed, &mut f, end))
                .and_then(|()| f.stream_position())
                // Bytes of a write that failed after the end (a full disk) cut off.
                .and_then(|len| f.set_len(len))
                .and_then(|()| f.sync_data())
        };
        written.map_err(io)?;
        let committed = commit_temp(&self.dir, &self.tmp, RULESET_FILE);
        // Renamed (the directory's sync may still have failed): nothing to remove.
        self.done = committed.is_ok() || !self.tmp.exists();
        committed
    }
}

impl Drop for StoreWrite {
    fn drop(&mut self) {
        if !self.done {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Bytes a store write gathers before it hands the writing to a thread of its own.
const BESIDE_MIN: usize = 256 * 1024;

/// Bytes the writing thread writes between asking the kernel to start writing them to the
/// disk (so that the final fdatasync waits for the tail only).
const START_WRITEBACK_EVERY: u64 = 2 << 20;

/// Runs `write` into `f` and fdatasyncs it. A big text (more than [`BESIDE_MIN`] bytes) is
/// written by a second thread while `write` prints the rest: its pieces are copied into
/// buffers the thread writes, asking the kernel every [`START_WRITEBACK_EVERY`] bytes to
/// start the writeback of what it wrote, so the disk works while the text is printed and
/// the fdatasync at the end waits for the last pieces only.
fn write_beside(
    f: &File,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    std::thread::scope(|scope| {
        let mut w = BesideWriter {
            file: f,
            buf: Vec::new(),
            thread: None,
            scope,
        };
        let printed = write(&mut w);
        let BesideWriter { buf, thread, .. } = w;
        match thread {
            None => printed.and_then(|()| (&mut &*f).write_all(&buf))?,
            Some(t) => {
                // Whatever `write` answered, the thread ends once its channel closes.
                let last = match printed {
                    Ok(()) => t.to_thread.send(buf).map_err(|_| stopped()),
                    Err(e) => Err(e),
                };
                drop(t.to_thread);
                let finished = t
                    .handle
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
                // The thread's own error first (a send fails only because it stopped).
                finished?;
                last?;
            }
        }
        f.sync_data()
    })
}

fn stopped() -> std::io::Error {
    std::io::Error::other("the store's writing thread stopped")
}

/// The writer [`write_beside`] hands to the text's printer.
struct BesideWriter<'scope, 'env> {
    file: &'env File,
    /// Bytes not yet handed to the thread.
    buf: Vec<u8>,
    thread: Option<WritingThread<'scope>>,
    scope: &'scope std::thread::Scope<'scope, 'env>,
}

struct WritingThread<'scope> {
    to_thread: std::sync::mpsc::SyncSender<Vec<u8>>,
    /// Buffers the thread wrote, for reuse.
    back: std::sync::mpsc::Receiver<Vec<u8>>,
    handle: std::thread::ScopedJoinHandle<'scope, std::io::Result<()>>,
}

impl BesideWriter<'_, '_> {
    fn hand_over(&mut self) -> std::io::Result<()> {
        let t = match &mut self.thread {
            Some(t) => t,
            None => {
                let (to_thread, from_writer) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
                let (give_back, back) = std::sync::mpsc::channel();
                let file = self.file;
                let handle = self.scope.spawn(move || {
                    let mut written = 0u64;
                    let mut started = 0u64;
                    for mut piece in from_writer {
                        (&mut &*file).write_all(&piece)?;
                        written += piece.len() as u64;
                        if written - started >= START_WRITEBACK_EVERY {
                            start_writeback(file, started, written - started);
                            started = written;
                        }
                        piece.clear();
                        let _ = give_back.send(piece);
                    }
                    Ok(())
                });
                self.thread.insert(WritingThread {
                    to_thread,
                    back,
                    handle,
                })
            }
        };
        let fresh = t
            .back
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.buf.capacity()));
        let full = std::mem::replace(&mut self.buf, fresh);
        t.to_thread.send(full).map_err(|_| stopped())
    }
}

impl Write for BesideWriter<'_, '_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.thread.is_none() && self.buf.is_empty() && data.len() >= 4 * BESIDE_MIN {
            // Text written all at once (`write_atomic`): nothing to overlap, no copy.
            return (&mut &*self.file).write(data);
        }
        self.buf.extend_from_slice(data);
        if self.buf.len() >= BESIDE_MIN {
            self.hand_over()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Asks the kernel to start writing `len` bytes of `file` at `at` to the disk, without
/// waiting for it (a failure only leaves that to the fdatasync).
pub(crate) fn start_writeback(file: &File, at: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range reads only its integer arguments; the descriptor is open
    // (borrowed for the call).
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            at as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// Replaced files at least this big are closed on a thread of their own (smaller ones free
/// their pages faster than a thread starts).
const BACKGROUND_CLOSE_MIN: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TableKind;
    use proptest::prelude::*;

    /// Pieces of restore lines around what decides whether a block is kept.
    const PIECES: &[&str] = &[
        "-A INPUT",
        "-A foo",
        "-A \"foo\"",
        "-N bar",
        "-A bar",
        "-I INPUT",
        "-D INPUT",
        "-j ACCEPT",
        "-j foo",
        "-g foo",
        "-s 1.2.3.4",
        "-s 1.1.1.1,2.2.2.2",
        "-p tcp",
        "--dport 22",
        "-m comment",
        "--comment",
        "\"x y\"",
        "\"a\\nb\"",
        "a\\b",
        "\"",
        "[1:2]",
        "[0:0]",
        ":foo - [0:0]",
        ":INPUT DROP [3:4]",
        ":INPUT ACCEPT [0:0]",
        ":INPUT DROP",
        ":\"q r\" - [0:0]",
        "-v",
        "#",
        "COMMIT",
        "*filter",
        "*nat",
        "-A POSTROUTING -j MASQUERADE",
        "-E foo baz",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn fuzz_store_from_input_reads_back_equal(
            lines in prop::collection::vec(prop::collection::vec(prop::sample::select(PIECES), 0..5), 0..10),
            counters in any::<bool>(),
            noflush in any::<bool>(),
            prelude in any::<bool>(),
        ) {
            let mut text = String::from("*filter\n:foo - [0:0]\n");
            for l in &lines {
                text.push_str(&l.join(" "));
                text.push('\n');
            }
            text.push_str("COMMIT\n");
            let opts = RestoreOpts { counters, noflush, ..Default::default() };
            let prelude = if prelude { "*filter\n:foo - [0:0]\n-A foo -j DROP\nCOMMIT\n*nat\nCOMMIT\n" } else { "" };
            kept_after_restore(prelude, &text, &opts);
        }
    }

    #[test]
    fn test_big_text_written_beside_reads_back_and_a_failure_leaves_the_old_file() {
        let dir = std::env::temp_dir().join(format!("nfrs-beside-test-{}", std::process::id()));
        let piece: Vec<u8> = (0..100_003u32).map(|i| b'a' + (i % 26) as u8).collect();
        let file = dir.join("f");
        for (pieces, big) in [(0, false), (1, false), (3, false), (70, false), (2, true)] {
            let mut want = Vec::new();
            write_atomic_with(&dir, "f", |w| {
                for i in 0..pieces {
                    let p = if big {
                        &piece.repeat(11)[..]
                    } else {
                        &piece[..i % 7 * 9000 + 40]
                    };
                    w.write_all(p)?;
                    want.extend_from_slice(p);
                }
                Ok(())
            })
            .unwrap();
            assert_eq!(fs::read(&file).unwrap(), want, "{pieces} {big}");
        }
        // Failing after handing pieces to the writing thread, or before: the old file stays,
        // no temporary file is left.
        let before = fs::read(&file).unwrap();
        for fail_after in [0, 1, 5, 40] {
            let r = write_atomic_with(&dir, "f", |w| {
                for _ in 0..fail_after {
                    w.write_all(&piece)?;
                }
                Err(std::io::Error::other("printing failed"))
            });
            assert!(r.unwrap_err().msg.contains("printing failed"));
            assert_eq!(fs::read(&file).unwrap(), before);
            assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_lock_excludes() {
        let dir = std::env::temp_dir().join(format!("nfrs-lock-test-{}", std::process::id()));
        let store = Store::at(&dir);
        let short = std::time::Duration::from_millis(20);
        let held = store.lock(short).unwrap();
        assert!(store.lock(short).is_err());
        drop(held);
        assert!(store.lock(short).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_store_keeps_what_save_output_loses() {
        // iptables-save prints these rules without the inversion / code range / mask; the
        // store must keep them so that a later -D with the same arguments still matches.
        let dir = std::env::temp_dir().join(format!("nfrs-lossless-{}", std::process::id()));
        let store = Store::at(&dir);
        let mut rs = Ruleset::default();
        let input =
            "*filter\n:a\"b - [0:0]\n-A INPUT -i \"a b\" -j \"a\\\"b\"\n-A \"a\\\"b\" -j ACCEPT\n\
                     -A INPUT -p tcp -m tcp ! --sport 0:65535\n-A INPUT ! -i +\n\
                     -A INPUT -p icmp -m icmp --icmp-type 255/255\n\
                     -A INPUT -m conntrack --ctrepldst 9.9.9.9/255.0.255.0\nCOMMIT\n";
        restore(&mut rs, input, &RestoreOpts::default()).unwrap();
        store.save(&rs).unwrap();
        assert_eq!(store.load().unwrap(), rs);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_replacing_a_big_store_keeps_only_the_new_ruleset() {
        // Over BACKGROUND_CLOSE_MIN: the replaced file is closed on its own thread.
        let dir = std::env::temp_dir().join(format!("nfrs-store-big-{}", std::process::id()));
        let store = Store::at(&dir);
        let mut text = String::from("*filter\n");
        for i in 0..20_000 {
            text.push_str(&format!(
                "-A INPUT -s 10.{}.{}.1/32 -m comment --comment \"rule {i}\"\n",
                i / 256,
                i % 256
            ));
        }
        text.push_str("COMMIT\n");
        let big = crate::restore::restore_new(&text, &RestoreOpts::default()).unwrap();
        let mut small = Ruleset::default();
        restore(
            &mut small,
            "*nat\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n",
            &RestoreOpts::default(),
        )
        .unwrap();
        store.save(&big).unwrap();
        assert!(fs::metadata(dir.join(RULESET_FILE)).unwrap().len() >= BACKGROUND_CLOSE_MIN);
        store.save(&small).unwrap();
        assert_eq!(store.load().unwrap(), small);
        store.save(&big).unwrap();
        store.save(&big).unwrap();
        assert_eq!(store.load().unwrap(), big);
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![RULESET_FILE]);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Restores `input` (after `prelude`, with `opts`, its store lines printed beside the
    /// restore wherever it may), then checks that the store text written with the lines
    /// printed reads back as the ruleset and equals the formatted store text. Returns the
    /// tables whose printed lines were used.
    fn kept_after_restore(prelude: &str, input: &str, opts: &RestoreOpts) -> Vec<TableKind> {
        let mut rs = Ruleset::default();
        if !prelude.is_empty() {
            restore(&mut rs, prelude, &RestoreOpts::default()).unwrap();
        }
        let opts = &RestoreOpts {
            print_store: Some(true),
            ..opts.clone()
        };
        let mut blocks = crate::restore::InputBlocks::default();
        let result = crate::restore::restore_noting_blocks(
            &mut rs,
            input,
            opts,
            &mut String::new(),
            &mut blocks,
        );
        let mut text = Vec::new();
        save::save_store_after_restore(&rs, input, &blocks, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        let back = read_store_text(&restore_text(text.clone()).unwrap())
            .unwrap_or_else(|e| panic!("{input:?} ({result:?}): {} in\n{text}", e.message));
        assert_eq!(back, rs, "{input:?}\n{text}");
        assert_eq!(
            save::save(&back, None, true),
            save::save(&rs, None, true),
            "{input:?}"
        );
        assert_eq!(
            stored_blocks(text.as_bytes()),
            stored_blocks(save::save_store(&rs).as_bytes()),
            "{input:?}"
        );
        let printed = blocks.printed_tables();
        TableKind::ALL
            .into_iter()
            .filter(|k| printed.contains(k))
            .collect()
    }

    #[test]
    fn test_store_after_restore_prints_plain_blocks_and_formats_the_rest() {
        let plain = RestoreOpts::default();
        let with_c = RestoreOpts {
            counters: true,
            ..Default::default()
        };
        let base = "*filter\n:INPUT ACCEPT [0:0]\n:X - [0:0]\n-A INPUT -s 1.2.3.4 -p tcp --dport ssh -j X\n\
                    # a comment\n\n-A X -m comment --comment \"a b\" -j ACCEPT\nCOMMIT\n";
        assert_eq!(kept_after_restore("", base, &plain), [TableKind::Filter]);
        assert_eq!(kept_after_restore("", base, &with_c), [TableKind::Filter]);
        // Tables of an earlier ruleset not named in the input are formatted.
        let nat = "*nat\n-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n";
        assert_eq!(kept_after_restore(nat, base, &plain), [TableKind::Filter]);
        // Counters (read or ignored), quoting and the tokenizer's general loop do not
        // matter to the printed lines (they are printed from the parsed rules, the whole
        // text compared with the formatted one); other commands than `-A` do.
        let cases: &[(&str, &RestoreOpts, bool)] = &[
            ("[5:10] -A INPUT -j ACCEPT\n", &plain, true),
            ("[5:10] -A INPUT -j ACCEPT\n", &with_c, true),
            (":INPUT DROP [3:4]\n", &plain, true),
            (":INPUT DROP [3:4]\n", &with_c, true),
            (":INPUT DROP [0:0]\n", &plain, true),
            (":INPUT DROP\n", &plain, true),
            (":INPUT DROP [0:0\n", &plain, true),
            ("-A INPUT -m comment --comment \"a\\nb\"\n", &plain, true),
            ("-A INPUT -m comment --comment \"a\\\"b\"\n", &plain, true),
            ("-A INPUT -m comment --comment a\\b\n", &plain, true),
            ("-A INPUT -m comment --comment a\\nb\n", &plain, true),
            ("-A INPUT -m comment --comment a\"b c\"\n", &plain, true),
            (":\"q\" - [0:0]\n", &plain, true),
            // Other commands than -A.
            ("-N Y\n-A Y -j ACCEPT\n", &plain, false),
            ("-I INPUT 1 -j DROP\n", &plain, false),
            (
                "-D INPUT -s 1.2.3.4 -p tcp --dport 22 -j X\n",
                &plain,
                false,
            ),
            ("-A INPUT -v -j ACCEPT\n", &plain, false),
            // Multiple addresses give several rules from one line: still the same reading.
            ("-A INPUT -s 1.1.1.1,2.2.2.2 -j DROP\n", &plain, true),
        ];
        for &(line, opts, keep) in cases {
            let input = base.replace("COMMIT\n", &format!("{line}COMMIT\n"));
            let kept = kept_after_restore("", &input, opts);
            assert_eq!(kept.contains(&TableKind::Filter), keep, "{line:?}");
        }
        // The whole table comes from the block: not with --noflush, --test or -v.
        for opts in [
            RestoreOpts {
                noflush: true,
                ..Default::default()
            },
            RestoreOpts {
                test: true,
                ..Default::default()
            },
            RestoreOpts {
                verbose: true,
                ..Default::default()
            },
        ] {
            assert!(kept_after_restore(nat, base, &opts).is_empty(), "{opts:?}");
        }
        // A table's last block counts: a later unkept block drops an earlier kept one,
        // a later kept block replaces it.
        let unkept = "*filter\n-N Z\nCOMMIT\n";
        assert!(kept_after_restore("", &format!("{base}{unkept}"), &plain).is_empty());
        assert_eq!(
            kept_after_restore("", &format!("{unkept}{base}{nat}"), &plain),
            [TableKind::Filter, TableKind::Nat]
        );
        // -T: only that table's block.
        let only = RestoreOpts {
            only_table: Some("nat".into()),
            ..Default::default()
        };
        assert_eq!(
            kept_after_restore("", &format!("{base}{nat}"), &only),
            [TableKind::Nat]
        );
        // A failing restore: the table committed before the failure is stored, formatted
        // (the printed lines are dropped with the error).
        let failing = format!("{nat}*filter\n-A INPUT -j NOPE\nCOMMIT\n");
        assert!(kept_after_restore("", &failing, &plain).is_empty());
        // Lines longer than iptables-restore's 10239-byte pieces read the same too.
        let long = format!(
            "*filter\n-A INPUT -m comment --comment \"{}\" -j ACCEPT\nCOMMIT\n",
            "x".repeat(10300)
        );
        let _ = kept_after_restore("", &long, &plain);
    }

    #[test]
    fn test_recorded_rulesets_store_from_input_reads_back_equal() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/recorded/rulesets");
        let Ok(entries) = fs::read_dir(&dir) else {
            eprintln!("skipped: tests/recorded/rulesets absent");
            return;
        };
        let mut kept = 0;
        for e in entries.flatten() {
            let read = |f: &str| fs::read_to_string(e.path().join(f)).ok();
            let Some(input) = read("input.rules") else {
                continue;
            };
            let prelude = read("prelude.rules").unwrap_or_default();
            for flags in [
                RestoreOpts::default(),
                RestoreOpts {
                    counters: true,
                    ..Default::default()
                },
                RestoreOpts {
                    noflush: true,
                    ..Default::default()
                },
            ] {
                kept += kept_after_restore(&prelude, &input, &flags).len();
            }
        }
        assert!(kept > 100, "{kept}");
    }

    #[test]
    fn test_round_trip_keeps_table_order_and_counters() {
        let dir = std::env::temp_dir().join(format!("nfrs-store-test-{}", std::process::id()));
        let store = Store::at(&dir);
        assert!(store.load().unwrap().tables.is_empty());
        let mut rs = Ruleset::default();
        let input = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n*filter\n:INPUT DROP [5:600]\n[3:4] -A INPUT -j ACCEPT\nCOMMIT\n";
        restore(
            &mut rs,
            input,
            &RestoreOpts {
                counters: true,
                ..Default::default()
            },
        )
        .unwrap();
        store.save(&rs).unwrap();
        let back = store.load().unwrap();
        assert_eq!(back.table_names(), vec!["filter", "nat"]);
        assert_eq!(save::save(&back, None, true), save::save(&rs, None, true));
        assert_eq!(
            back.table(TableKind::Filter).unwrap().chains[0]
                .counters
                .packets,
            5
        );
        // A newline inside a quoted value (an unterminated quote swallows the line end).
        let mut rs2 = Ruleset::default();
        let odd = "*filter\n-A INPUT -m comment --comment \"a b\nCOMMIT\n";
        restore(&mut rs2, odd, &RestoreOpts::default()).unwrap();
        store.save(&rs2).unwrap();
        assert_eq!(store.load().unwrap(), rs2);
        fs::remove_dir_all(&dir).unwrap();
    }
}
