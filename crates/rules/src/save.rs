//! Printers in iptables' text forms: `iptables-save` blocks and `iptables -S` lines.

use crate::ext::util::mask_to_cidr;
use crate::model::{Chain, Counters, Iface, IpSpec, Rule, Ruleset, Table, Target};
use crate::services;
use std::net::Ipv4Addr;

/// A rule line's `[packets:bytes] ` as `iptables-save -c` and the store print it.
fn push_rule_counters(out: &mut String, c: &Counters) {
    if *c == Counters::default() {
        out.push_str("[0:0] ");
    } else {
        out.push('[');
        push_u64(out, c.packets);
        out.push(':');
        push_u64(out, c.bytes);
        out.push_str("] ");
    }
}

/// Appends `n` in decimal (no formatting machinery: this runs for every rule saved).
pub(crate) fn push_u64(out: &mut String, n: u64) {
    if n < 10 {
        out.push(char::from(b'0' + n as u8));
        return;
    }
    if n < 100 {
        // Two bytes of the digit table: a copy of known size, inlined.
        let n = n as usize;
        out.push_str(&DIGIT_PAIRS[2 * n..2 * n + 2]);
        return;
    }
    let mut buf = Ascii::<24>::new();
    buf.u64(n);
    buf.push_to(out);
}

/// Appends `n` in decimal with leading zeros to at least `width` digits (at most 20), as
/// printf's `%0*llu` does.
pub(crate) fn push_u64_padded(out: &mut String, n: u64, width: usize) {
    let mut buf = Ascii::<24>::new();
    let digits = n.checked_ilog10().unwrap_or(0) as usize + 1;
    for _ in digits..width.min(20) {
        buf.byte(b'0');
    }
    buf.u64(n);
    buf.push_to(out);
}

/// A short piece of ASCII text assembled on the stack and appended in one copy (instead of
/// a capacity check and a copy for every digit or word). Writing more than `N` bytes is a
/// bug of the caller: the writes panic on the bounds check.
struct Ascii<const N: usize> {
    buf: [u8; N],
    len: usize,
}

/// Room for the longest address part (` ! -s 255.255.255.255/255.255.255.255`).
type Digits = Ascii<48>;

impl<const N: usize> Ascii<N> {
    #[inline(always)]
    fn new() -> Self {
        Ascii {
            buf: [0; N],
            len: 0,
        }
    }

    /// ASCII bytes (option words, separators).
    #[inline(always)]
    fn bytes(&mut self, b: &[u8]) {
        debug_assert!(b.is_ascii());
        self.buf[self.len..self.len + b.len()].copy_from_slice(b);
        self.len += b.len();
    }

    #[inline(always)]
    fn byte(&mut self, b: u8) {
        debug_assert!(b.is_ascii());
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// A number below 256 (an octet, a prefix length): its digits stored as one 4-byte word
    /// from a table, the length advanced by its digit count.
    #[inline(always)]
    fn small(&mut self, n: u8) {
        let (digits, len) = SMALL[usize::from(n)];
        self.buf[self.len..self.len + 4].copy_from_slice(&digits);
        self.len += usize::from(len);
    }

    /// `n` in decimal: its digits written from the last, two at a time.
    #[inline(always)]
    fn u64(&mut self, mut n: u64) {
        let end = self.len + n.checked_ilog10().unwrap_or(0) as usize + 1;
        let mut i = end;
        while n >= 100 {
            let r = (n % 100) as usize;
            n /= 100;
            i -= 2;
            self.buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS.as_bytes()[2 * r..2 * r + 2]);
        }
        if n >= 10 {
            let r = n as usize;
            self.buf[i - 2..i].copy_from_slice(&DIGIT_PAIRS.as_bytes()[2 * r..2 * r + 2]);
        } else {
            self.buf[i - 1] = b'0' + n as u8;
        }
        self.len = end;
    }

    #[inline(always)]
    fn ipv4(&mut self, addr: Ipv4Addr) {
        let [a, b, c, d] = addr.octets();
        self.small(a);
        self.byte(b'.');
        self.small(b);
        self.byte(b'.');
        self.small(c);
        self.byte(b'.');
        self.small(d);
    }

    /// Appends the text to `out`: all `N` bytes copied (a copy of fixed size is a few
    /// moves, where one of the text's length is a call to memcpy), the rest cut off again.
    #[inline(always)]
    fn push_to(&self, out: &mut String) {
        debug_assert!(self.buf.is_ascii());
        // SAFETY: `buf` holds only ASCII: it starts zeroed and every writer above stores
        // ASCII digits (from `SMALL`, `DIGIT_PAIRS` or `b'0' + digit`) or ASCII separators
        // and option words. ASCII is valid UTF-8, so `out` is a valid String after each
        // step. (Measured: checking the text with `str::from_utf8` instead cost 6 % of a
        // save.)
        let v = unsafe { out.as_mut_vec() };
        let keep = v.len() + self.len;
        v.extend_from_slice(&self.buf);
        v.truncate(keep);
    }
}

/// The decimal digits of 0..=255, each padded to 4 bytes, and how many there are.
static SMALL: [([u8; 4], u8); 256] = {
    let mut t = [([0u8; 4], 0u8); 256];
    let mut n = 0;
    while n < 256 {
        let (h, te, o) = ((n / 100) as u8, ((n / 10) % 10) as u8, (n % 10) as u8);
        t[n] = if n >= 100 {
            ([b'0' + h, b'0' + te, b'0' + o, 0], 3)
        } else if n >= 10 {
            ([b'0' + te, b'0' + o, 0, 0], 2)
        } else {
            ([b'0' + o, 0, 0, 0], 1)
        };
        n += 1;
    }
    t
};

/// "00" to "99" back to back: the two digits of n start at 2n.
const DIGIT_PAIRS: &str = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";

/// Appends `n` in lower-case hexadecimal without prefix, as `{:x}` does.
pub(crate) fn push_hex(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b"0123456789abcdef"[(n & 15) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    // Only ASCII hex digits were written.
    out.push_str(std::str::from_utf8(&buf[i..]).unwrap());
}

/// Appends an address in dotted quad form, as Ipv4Addr's Display does.
pub(crate) fn push_ipv4(out: &mut String, addr: Ipv4Addr) {
    let mut buf = Ascii::<16>::new();
    buf.ipv4(addr);
    buf.push_to(out);
}

/// ` [!] FLAG ADDR/MASK`, the mask as a prefix length where it is one; nothing for an
/// address and mask that are both 0 and not inverted (no `-s`/`-d` given).
#[inline(always)]
fn push_addr(out: &mut String, flag: &[u8; 2], addr: Ipv4Addr, mask: Ipv4Addr, inv: bool) {
    if !(mask.is_unspecified() && addr.is_unspecified() && !inv) {
        push_addr_given(out, flag, addr, mask, inv);
    }
}

/// [`push_addr`] for an address that was given.
fn push_addr_given(out: &mut String, flag: &[u8; 2], addr: Ipv4Addr, mask: Ipv4Addr, inv: bool) {
    let mut buf = Digits::new();
    if inv {
        buf.bytes(b" !");
    }
    buf.byte(b' ');
    buf.bytes(flag);
    buf.byte(b' ');
    buf.ipv4(addr);
    buf.byte(b'/');
    match mask_to_cidr(mask) {
        Some(bits) => buf.small(bits),
        None => buf.ipv4(mask),
    }
    buf.push_to(out);
}

#[inline(always)]
fn push_iface(out: &mut String, flag: char, iface: &Iface, lossless: bool) {
    // Most rules name no interface: nothing to print in either form.
    if !iface.name.is_empty() {
        push_iface_given(out, flag, iface, lossless);
    }
}

/// [`push_iface`] for an interface that was given.
fn push_iface_given(out: &mut String, flag: char, iface: &Iface, lossless: bool) {
    if lossless {
        if iface.invert {
            out.push_str(" !");
        }
        out.push_str(" -");
        out.push(flag);
        crate::ext::comment::push_save_string(out, &iface.name);
        return;
    }
    // iptables prints only the masked bytes, then `+` when the name continues (wildcard).
    let prefix = iface.prefix();
    if prefix.is_empty() && iface.is_wildcard() {
        return;
    }
    if iface.invert {
        out.push_str(" !");
    }
    out.push_str(" -");
    out.push(flag);
    out.push(' ');
    out.push_str(prefix);
    if iface.is_wildcard() {
        out.push('+');
    }
}

/// Appends the generic IP part of a rule in save form (` -s ... -d ... -i ... -o ... -p ... -f`).
pub fn push_ip(out: &mut String, ip: &IpSpec) {
    push_ip_as(out, ip, false)
}

fn push_ip_as(out: &mut String, ip: &IpSpec, lossless: bool) {
    push_addr(out, b"-s", ip.src, ip.src_mask, ip.inv_src);
    push_addr(out, b"-d", ip.dst, ip.dst_mask, ip.inv_dst);
    push_iface(out, 'i', &ip.in_iface, lossless);
    push_iface(out, 'o', &ip.out_iface, lossless);
    if ip.proto != 0 || ip.inv_proto {
        if ip.inv_proto {
            out.push_str(" !");
        }
        out.push_str(" -p ");
        match services::proto_to_name(ip.proto, false) {
            Some(n) => out.push_str(n),
            None => push_u64(out, u64::from(ip.proto)),
        }
    }
    if ip.fragment {
        if ip.inv_fragment {
            out.push_str(" !");
        }
        out.push_str(" -f");
    }
}

/// The target name as iptables prints it (`ACCEPT`, chain name, extension name; "" for none).
pub fn target_name(t: &Target) -> &str {
    match t {
        Target::None => "",
        Target::Accept => "ACCEPT",
        Target::Drop => "DROP",
        Target::Return => "RETURN",
        Target::Jump(n) | Target::Goto(n) => n,
        Target::Ext(e) => e.save_name(),
    }
}

/// Appends the rule body after `-A CHAIN` (matches, optional ` -c P B`, target).
pub fn push_rule_body(out: &mut String, rule: &Rule, counters_inline: bool) {
    push_rule_body_as(out, rule, counters_inline, false)
}

/// The store's form of a rule body ([`push_rule_body_as`] lossless), clearing `canonical`
/// where it differs from iptables-save's (an interface or chain name iptables prints
/// otherwise, an extension whose store form is fuller); `scratch` is space for the
/// comparisons.
fn push_rule_body_store(out: &mut String, rule: &Rule, scratch: &mut String, canonical: &mut bool) {
    let ip = &rule.ip;
    let start = out.len();
    push_ip_as(out, ip, true);
    if *canonical && !(ip.in_iface.name.is_empty() && ip.out_iface.name.is_empty()) {
        scratch.clear();
        push_ip_as(scratch, ip, false);
        *canonical = out[start..] == **scratch;
    }
    for m in &rule.matches {
        out.push_str(" -m ");
        out.push_str(m.save_name());
        // tcp and udp (in most rules): their store form differs from iptables-save's only
        // for an inverted full port range; without one, save's text (the store form would
        // print it through a copy of the match and a String of its own).
        let full_inverted = |range: (u16, u16), inv: bool| inv && range == (0, 65535);
        match m {
            crate::ext::Match::Tcp(t)
                if !full_inverted(t.sport, t.inv_sport) && !full_inverted(t.dport, t.inv_dport) =>
            {
                m.save(ip, out);
                continue;
            }
            crate::ext::Match::Udp(u)
                if !full_inverted(u.sport, u.inv_sport) && !full_inverted(u.dport, u.inv_dport) =>
            {
                m.save(ip, out);
                continue;
            }
            _ => {}
        }
        let start = out.len();
        m.save_store(ip, out);
        if *canonical && store_form_may_differ(m.save_name()) {
            scratch.clear();
            m.save(ip, scratch);
            *canonical = out[start..] == **scratch;
        }
    }
    match &rule.target {
        Target::None => {}
        Target::Goto(n) | Target::Jump(n) => {
            out.push_str(if matches!(rule.target, Target::Goto(_)) {
                " -g"
            } else {
                " -j"
            });
            let start = out.len();
            crate::ext::comment::push_save_string(out, n);
            // Bare (one blank and the name) unless the store quoted it.
            *canonical &= out.len() - start == n.len() + 1;
        }
        t => {
            out.push_str(" -j ");
            out.push_str(target_name(t));
            if let Target::Ext(e) = t {
                let start = out.len();
                e.save_store(ip, out);
                if *canonical && store_form_may_differ(e.save_name()) {
                    scratch.clear();
                    e.save(ip, scratch);
                    *canonical = out[start..] == **scratch;
                }
            }
        }
    }
}

/// The extensions (by save name) whose store form ([`crate::ext::Extension::save_store`])
/// can differ from their iptables-save form (a test checks that no other one differs on
/// every rule of the corpus).
pub(crate) fn store_form_may_differ(name: &str) -> bool {
    matches!(
        name,
        "tcp"
            | "udp"
            | "icmp"
            | "limit"
            | "hashlimit"
            | "recent"
            | "conntrack"
            | "physdev"
            | "CT"
            | "CONNMARK"
    )
}

fn push_rule_body_as(out: &mut String, rule: &Rule, counters_inline: bool, lossless: bool) {
    push_ip_as(out, &rule.ip, lossless);
    for m in &rule.matches {
        out.push_str(" -m ");
        out.push_str(m.save_name());
        if lossless {
            m.save_store(&rule.ip, out);
        } else {
            m.save(&rule.ip, out);
        }
    }
    if counters_inline {
        out.push_str(" -c ");
        push_u64(out, rule.counters.packets);
        out.push(' ');
        push_u64(out, rule.counters.bytes);
    }
    match &rule.target {
        Target::None => {}
        Target::Goto(n) | Target::Jump(n) if lossless => {
            out.push_str(if matches!(rule.target, Target::Goto(_)) {
                " -g"
            } else {
                " -j"
            });
            crate::ext::comment::push_save_string(out, n);
        }
        Target::Goto(n) => {
            out.push_str(" -g ");
            out.push_str(n);
        }
        t => {
            out.push_str(" -j ");
            out.push_str(target_name(t));
            if let Target::Ext(e) = t {
                if lossless {
                    e.save_store(&rule.ip, out);
                } else {
                    e.save(&rule.ip, out);
                }
            }
        }
    }
}

/// One rule as iptables-save prints it, without counters: `-A CHAIN ...`.
pub fn rule_save_line(chain: &str, rule: &Rule) -> String {
    let mut s = format!("-A {chain}");
    push_rule_body(&mut s, rule, false);
    s
}

/// The chains of a table in libiptc order: built-ins by hook, then user chains by name.
pub fn ordered_chains(table: &Table) -> Vec<&Chain> {
    let mut v: Vec<&Chain> = table.chains.iter().filter(|c| c.is_builtin()).collect();
    v.sort_by_key(|c| c.hook);
    let mut users: Vec<&Chain> = table.chains.iter().filter(|c| !c.is_builtin()).collect();
    // Committed tables are already in this order: check before sorting.
    if !users
        .windows(2)
        .all(|w| w[0].name.as_bytes() <= w[1].name.as_bytes())
    {
        users.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    }
    v.extend(users);
    v
}

/// [`ordered_chains`] without sorting the user chains: they stay in the table's order
/// (name order once committed), for a caller that checks the order itself.
pub(crate) fn chains_as_stored(table: &Table) -> Vec<&Chain> {
    let mut v: Vec<&Chain> = table.chains.iter().filter(|c| c.is_builtin()).collect();
    v.sort_by_key(|c| c.hook);
    v.extend(table.chains.iter().filter(|c| !c.is_builtin()));
    v
}

/// One table block of iptables-save (`*table` ... `COMMIT`), without the comment lines.
pub fn save_table(table: &Table, counters: bool, out: &mut String) {
    save_table_as(
        table,
        Form {
            counters,
            store: false,
        },
        out,
    )
}

/// The nfrs store's text of a ruleset ([`save_store_to`]): each table block in
/// iptables-save's form with counters, or a lossless variant of it where that form loses
/// information, between a first line naming the format and a last line indexing the tables.
pub fn save_store(rs: &Ruleset) -> String {
    let mut out = Vec::new();
    save_store_to(rs, &mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("the store text is UTF-8")
}

/// The first line of a store file whose tables `iptables-save` can copy (format 2).
pub const STORE_HEAD: &str = "# nfrs store 2\n";

/// How the last line of a format 2 store file starts: the index, then for each table in
/// the file's order ` NAME START LEN FORM`: where its block (`*NAME` through `COMMIT\n`)
/// lies in the file, in bytes, and `s` when the block is exactly what `iptables-save -c`
/// prints for it (it can be copied to the output), `f` when the store had to write it in
/// its own lossless form (iptables-save's form would lose something: an inverted full port
/// range, a newline in a comment, a chain name with a blank, ...), so it must be read and
/// printed again.
pub const STORE_INDEX: &str = "# nfrs index";

/// Bytes [`save_store_to`] gathers before each write.
pub(crate) const STORE_CHUNK: usize = 256 * 1024;

/// The store's text ([`save_store`]) written to `w` in pieces of about [`STORE_CHUNK`]
/// bytes, through one small buffer instead of the whole text in memory. A `Store::load`
/// of it gives `rs` back.
pub fn save_store_to(rs: &Ruleset, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    write_store(rs, w)
}

/// [`save_store_to`]: format 2.
fn write_store(rs: &Ruleset, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let mut buf = String::with_capacity(STORE_CHUNK + 4096);
    let written = std::cell::Cell::new(0u64);
    let mut result = Ok(());
    let mut index = String::from(STORE_INDEX);
    {
        let mut flush = |buf: &mut String| {
            if result.is_ok() {
                result = w.write_all(buf.as_bytes());
            }
            written.set(written.get() + buf.len() as u64);
            buf.clear();
        };
        buf.push_str(STORE_HEAD);
        for t in &rs.tables {
            let start = written.get() + buf.len() as u64;
            let canonical = walk_table(t, Form::STORE, &mut buf, Some(&mut flush));
            let end = written.get() + buf.len() as u64;
            index.push(' ');
            index.push_str(t.kind.name());
            index.push(' ');
            push_u64(&mut index, start);
            index.push(' ');
            push_u64(&mut index, end - start);
            index.push_str(if canonical { " s" } else { " f" });
        }
        buf.push_str(&index);
        buf.push('\n');
        flush(&mut buf);
    }
    result
}

/// The first line of a store file in format 3: the rule lines a restore printed beside its
/// parsing stay in the file in input order, and the index says which byte ranges of the
/// file, joined, give each table's block (see [`STORE_RUNS`]).
pub const STORE_HEAD3: &str = "# nfrs store 3\n";

/// How each line of a format 3 file's index starts, one line a table in the order
/// `iptables-save` prints them (the order of format 2's blocks): then ` NAME FORM` (`s`
/// or `f` as in [`STORE_INDEX`]) and ` START LEN` for each byte range of the file; the
/// ranges joined are the table's block (`*NAME` through `COMMIT\n`), each made of whole
/// lines.
pub const STORE_RUNS: &str = "# nfrs runs";

/// How the last line of a format 3 file starts: then ` AT`, where its index (the first
/// [`STORE_RUNS`] line) starts.
pub const STORE_END: &str = "# nfrs end";

/// A table whose printed rule lines are in the file being written at byte `at`.
pub(crate) type PrintedAt<'p> = (
    crate::model::TableKind,
    &'p crate::store_text::PrintedBlock,
    u64,
);

/// The rest of a format 3 store file, from byte `before` of it on (what comes before: the
/// first line and the `printed` blocks' texts): each table's parts that were not printed
/// (all of it for a table not in `printed`), then the index.
pub(crate) fn write_store_runs(
    rs: &Ruleset,
    printed: &[PrintedAt<'_>],
    w: &mut dyn std::io::Write,
    before: u64,
) -> std::io::Result<()> {
    let mut buf = String::with_capacity(STORE_CHUNK + 4096);
    let written = std::cell::Cell::new(before);
    let mut result = Ok(());
    let mut index = String::new();
    let mut runs = Vec::new();
    {
        let mut flush = |buf: &mut String| {
            if result.is_ok() {
                result = w.write_all(buf.as_bytes());
            }
            written.set(written.get() + buf.len() as u64);
            buf.clear();
        };
        for t in &rs.tables {
            runs.clear();
            let from_printed = printed
                .iter()
                .find(|x| x.0 == t.kind)
                .and_then(|&(_, p, at)| {
                    p.write_table(t, at, &mut buf, &written, &mut flush, &mut runs)
                });
            let canonical = match from_printed {
                Some(c) => c,
                None => {
                    runs.clear();
                    let start = written.get() + buf.len() as u64;
                    let c = walk_table(t, Form::STORE, &mut buf, Some(&mut flush));
                    runs.push((start, written.get() + buf.len() as u64));
                    c
                }
            };
            index.push_str(STORE_RUNS);
            index.push(' ');
            index.push_str(t.kind.name());
            index.push_str(if canonical { " s" } else { " f" });
            for &(s, e) in &runs {
                index.push(' ');
                push_u64(&mut index, s);
                index.push(' ');
                push_u64(&mut index, e - s);
            }
            index.push('\n');
        }
        let index_at = written.get() + buf.len() as u64;
        buf.push_str(&index);
        buf.push_str(STORE_END);
        buf.push(' ');
        push_u64(&mut buf, index_at);
        buf.push('\n');
        flush(&mut buf);
    }
    result
}

/// [`save_store_to`] for a ruleset as a restore left it (`blocks` from
/// [`crate::restore::restore_noting_blocks`]): where a big restore printed a table's rule
/// lines beside its parsing ([`crate::store_text`]) and they are in memory, a format 3 file
/// (the printed lines first, as they are, the rest after them, an index of the ranges
/// giving each table's block); else the same text as [`save_store_to`]. Either way
/// `Store::load` of it gives `rs`, and each table's block is the same text.
pub fn save_store_after_restore(
    rs: &Ruleset,
    _input: &str,
    blocks: &crate::restore::InputBlocks,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let used: Vec<_> = rs
        .tables
        .iter()
        .filter_map(|t| blocks.printed(t.kind))
        .filter_map(|p| Some((p, p.text_in_memory()?)))
        .collect();
    if used.is_empty() {
        return write_store(rs, w);
    }
    w.write_all(STORE_HEAD3.as_bytes())?;
    let mut at = STORE_HEAD3.len() as u64;
    let mut printed = Vec::with_capacity(used.len());
    for (p, text) in used {
        w.write_all(text.as_bytes())?;
        printed.push((p.kind, p, at));
        at += text.len() as u64;
    }
    write_store_runs(rs, &printed, w, at)
}

/// [`save_table`] written to `w` in pieces of about [`STORE_CHUNK`] bytes. For big rulesets
/// this is cheaper than the whole text in one String: the small buffer stays in the CPU's
/// caches and no memory of the text's size has to be allocated and faulted in (measured:
/// 15 MB of new memory cost 8 ms in page faults on the bench machine).
pub fn save_table_to(
    table: &Table,
    counters: bool,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut buf = String::with_capacity(STORE_CHUNK + 4096);
    let form = Form {
        counters,
        store: false,
    };
    write_in_pieces(table, form, &mut buf, w)
}

/// One table block written to `w` through `buf` (empty before and after).
fn write_in_pieces(
    table: &Table,
    form: Form,
    buf: &mut String,
    w: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut result = Ok(());
    {
        let mut flush = |buf: &mut String| {
            if result.is_ok() {
                result = w.write_all(buf.as_bytes());
            }
            buf.clear();
        };
        walk_table(table, form, buf, Some(&mut flush));
        flush(buf);
    }
    result
}

/// Which text a table block is printed in.
#[derive(Clone, Copy)]
pub(crate) struct Form {
    /// `[p:b] ` before each rule line (`iptables-save -c`, the store).
    counters: bool,
    /// The store's lossless variant: full forms where iptables-save drops information
    /// (`Extension::save_store`), chain names quoted where iptables' tokenizer would split
    /// them, a newline inside a rule written `\n`.
    store: bool,
}

impl Form {
    pub(crate) const STORE: Form = Form {
        counters: true,
        store: true,
    };
}

/// One table block.
fn save_table_as(table: &Table, form: Form, out: &mut String) {
    walk_table(table, form, out, None);
}

/// One table block. With `flush`, the text is handed over whenever [`STORE_CHUNK`] bytes
/// have gathered (between chains); without, it all goes to `out` (reserved once).
fn walk_table(
    table: &Table,
    form: Form,
    out: &mut String,
    mut flush: Option<&mut dyn FnMut(&mut String)>,
) -> bool {
    let mut chains = chains_as_stored(table);
    if flush.is_none() {
        // One reservation for the whole table (chain lines, then about 160 bytes a rule)
        // instead of regrowing (each regrowth copies everything written so far).
        out.reserve(chains.len() * 48 + chains.iter().map(|c| c.rules.len()).sum::<usize>() * 160);
    }
    let start = out.len();
    let mut canonical = true;
    if !push_head(table, &chains, form, out, &mut canonical) {
        // The user chains were not in name order (a table not committed yet): sorted, the
        // chain lines again.
        out.truncate(start);
        chains = ordered_chains(table);
        canonical = true;
        push_head(table, &chains, form, out, &mut canonical);
    }
    push_chains(&chains, form, out, &mut flush, &mut canonical);
    out.push_str("COMMIT\n");
    canonical
}

/// The rule lines of `chains`, in order, into `out` (handed to `flush` in pieces if given).
fn push_chains(
    chains: &[&Chain],
    form: Form,
    out: &mut String,
    flush: &mut Option<&mut dyn FnMut(&mut String)>,
    canonical: &mut bool,
) {
    let mut head = String::new();
    let mut scratch = String::new();
    for (ci, c) in chains.iter().enumerate() {
        prefetch_ahead(|k| chains.get(k).copied(), ci);
        push_chain_rules(out, c, form, &mut head, flush, &mut scratch, canonical);
    }
}

/// `*table` and the chain lines (`:NAME POLICY [p:b]`, `:NAME - [0:0]`); false when the
/// user chains are not in name order (the lines are then printed in the order given).
/// `canonical` is cleared when the store's form quotes a chain name iptables-save does not.
pub(crate) fn push_head(
    table: &Table,
    chains: &[&Chain],
    form: Form,
    out: &mut String,
    canonical: &mut bool,
) -> bool {
    out.push('*');
    out.push_str(table.kind.name());
    out.push('\n');
    let mut sorted = true;
    let mut previous: &[u8] = &[];
    for c in chains {
        out.push(':');
        if c.is_builtin() {
            out.push_str(&c.name);
            out.push(' ');
            out.push_str(c.policy.name());
            out.push_str(" [");
            push_u64(out, c.counters.packets);
            out.push(':');
            push_u64(out, c.counters.bytes);
            out.push_str("]\n");
        } else {
            // Checked here, where the names are read anyway (one pass over them less).
            sorted &= previous <= c.name.as_bytes();
            previous = c.name.as_bytes();
            if form.store {
                let start = out.len();
                crate::ext::comment::push_save_word(out, &c.name);
                *canonical &= out.len() - start == c.name.len();
            } else {
                out.push_str(&c.name);
            }
            out.push_str(" - [0:0]\n");
        }
    }
    sorted
}

/// Appends the rule lines of one chain; `head` and `scratch` are scratch space (`head` for
/// its `-A NAME`); `flush` as in [`walk_table`]; `canonical` cleared where the store's form
/// differs from iptables-save's.
fn push_chain_rules(
    out: &mut String,
    c: &Chain,
    form: Form,
    head: &mut String,
    flush: &mut Option<&mut dyn FnMut(&mut String)>,
    scratch: &mut String,
    canonical: &mut bool,
) {
    if c.rules.is_empty() {
        return;
    }
    head.clear();
    if form.store {
        *canonical &= push_store_rule_head(head, &c.name);
    } else {
        head.push_str("-A");
        head.push(' ');
        head.push_str(&c.name);
    }
    for r in &c.rules {
        if form.store {
            push_store_rule_line(out, head, r, scratch, canonical);
            if let Some(f) = flush.as_mut() {
                if out.len() >= STORE_CHUNK {
                    f(out);
                }
            }
            continue;
        }
        if form.counters {
            push_rule_counters(out, &r.counters);
        }
        out.push_str(head);
        push_rule_body_as(out, r, false, false);
        out.push('\n');
        if let Some(f) = flush.as_mut() {
            if out.len() >= STORE_CHUNK {
                f(out);
            }
        }
    }
}

/// `-A NAME` of a chain's rule lines in the store's text (`head` empty before); false when
/// the name is quoted there (iptables-save prints it bare).
pub(crate) fn push_store_rule_head(head: &mut String, name: &str) -> bool {
    head.push_str("-A");
    // The store quotes names iptables' own tokenizer would split or unquote.
    crate::ext::comment::push_save_string(head, name);
    head.len() == name.len() + 3
}

/// One rule line of the store's text: counters, `head` (from [`push_store_rule_head`]), the
/// rule in the store's form, a newline inside it written `\n`; `canonical` cleared when the
/// line is not iptables-save's (`scratch` is space for the comparisons).
pub(crate) fn push_store_rule_line(
    out: &mut String,
    head: &str,
    r: &Rule,
    scratch: &mut String,
    canonical: &mut bool,
) {
    push_rule_counters(out, &r.counters);
    let start = out.len();
    out.push_str(head);
    push_rule_body_store(out, r, scratch, canonical);
    if has_newline(&out.as_bytes()[start..]) {
        let line = out.split_off(start);
        out.push_str(&line.replace('\n', "\\n"));
        *canonical = false;
    }
    out.push('\n');
}

/// True when `bytes` holds a newline. Every byte is looked at (no early exit), which lets
/// the compiler test many bytes per instruction: cheaper than a search on a line's length.
fn has_newline(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |seen, &b| seen | (b == b'\n'))
}

/// Starts loading what the next chains' rules will read: user chains are printed in name
/// order, which for generated names (kube-proxy's hashes) is unrelated to the order their
/// rules were parsed and allocated in, so each chain's data is a cache miss. Three steps,
/// each reading only what an earlier step fetched: the chain's name and first two rules,
/// then those rules' matches and jump targets, then their comments' texts (two rules, not
/// one: measured, save of the 100k-rule kube-proxy table about 25 % faster).
/// `chain(k)` is the k-th chain of the walk; `i` the one about to be read.
pub(crate) fn prefetch_ahead<'a>(chain: impl Fn(usize) -> Option<&'a Chain>, i: usize) {
    // The first rules of a chain (most chains have a few).
    const RULES: usize = 2;
    if let Some(c) = chain(i + 4) {
        prefetch(c.name.as_ptr());
        let r = c.rules.as_ptr();
        let bytes = std::mem::size_of::<Rule>() * c.rules.len().min(RULES);
        for line in 0..bytes.div_ceil(64) {
            prefetch(r.cast::<u8>().wrapping_add(line * 64));
        }
    }
    for r in chain(i + 2)
        .map_or(&[][..], |c| &c.rules)
        .iter()
        .take(RULES)
    {
        prefetch(r.matches.as_ptr());
        if let Target::Jump(n) | Target::Goto(n) = &r.target {
            prefetch(n.as_ptr());
        }
    }
    for r in chain(i + 1)
        .map_or(&[][..], |c| &c.rules)
        .iter()
        .take(RULES)
    {
        for m in &r.matches {
            if let crate::ext::Match::Comment(x) = m {
                prefetch(x.text.as_ptr());
            }
        }
    }
}

/// Hints the CPU to bring the cache line holding `p` closer (see [`prefetch_ahead`]).
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is only a hint: it never faults (any address, even a dangling
    // one, is allowed), reads nothing the program sees and changes no program state; SSE,
    // which provides it, is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// iptables-save output for all tables (or one), without the `# Generated`/`# Completed` lines.
pub fn save(rs: &Ruleset, only: Option<crate::model::TableKind>, counters: bool) -> String {
    let mut out = String::new();
    for t in &rs.tables {
        if only.is_none_or(|k| k == t.kind) {
            save_table(t, counters, &mut out);
        }
    }
    out
}

/// `iptables -S [CHAIN [NUM]]` output; `verbose` adds ` -c P B` (policy and rules).
pub fn list_rules(table: &Table, chain: Option<&str>, rulenum: u32, verbose: bool) -> String {
    let mut out = String::new();
    let chains = ordered_chains(table);
    for c in &chains {
        if chain.is_some_and(|n| n != c.name) {
            continue;
        }
        if rulenum != 0 {
            continue;
        }
        if c.is_builtin() {
            out.push_str(&format!("-P {} {}", c.name, c.policy.name()));
            if verbose {
                out.push_str(&format!(" -c {} {}", c.counters.packets, c.counters.bytes));
            }
            out.push('\n');
        } else {
            out.push_str(&format!("-N {}\n", c.name));
        }
    }
    for c in &chains {
        if chain.is_some_and(|n| n != c.name) {
            continue;
        }
        for (i, r) in c.rules.iter().enumerate() {
            if rulenum != 0 && rulenum as usize != i + 1 {
                continue;
            }
            out.push_str("-A ");
            out.push_str(&c.name);
            push_rule_body(&mut out, r, verbose);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::restore::{restore_new, RestoreOpts};

    #[test]
    fn test_numbers_and_addresses_print_as_display_does() {
        let mut values: Vec<u64> = (0..=1100).collect();
        for p in 1..20 {
            let t = 10u64.pow(p);
            values.extend([t - 1, t, t + 1, t * 7 + 3]);
        }
        values.extend([u64::MAX, u64::MAX - 1, u64::from(u32::MAX)]);
        for v in values {
            let mut s = String::from("x");
            push_u64(&mut s, v);
            assert_eq!(s, format!("x{v}"));
            for width in [0, 1, 2, 5, 11, 20] {
                let mut s = String::from("x");
                push_u64_padded(&mut s, v, width);
                assert_eq!(s, format!("x{v:0width$}"));
            }
        }
        for a in [
            [0, 0, 0, 0],
            [255, 255, 255, 255],
            [10, 128, 8, 232],
            [1, 20, 100, 9],
        ] {
            let a = Ipv4Addr::from(a);
            let mut s = String::new();
            push_ipv4(&mut s, a);
            assert_eq!(s, a.to_string());
        }
    }

    #[test]
    fn test_store_text_in_pieces_equals_store_text() {
        // Several chunks' worth of rules, a chain name the store quotes, a comment with a
        // newline (an unclosed quote runs to the end of its line), counters.
        let mut text = String::from("*filter\n:a\"b - [0:0]\n-A INPUT -m comment --comment \"x\n");
        for i in 0..12000 {
            text.push_str(&format!(
                "[{i}:{}] -A INPUT -s 10.0.{}.{}/32 -m comment --comment \"rule {i}\" -j \"a\\\"b\"\n",
                i * 1000,
                i / 256,
                i % 256
            ));
        }
        text.push_str("COMMIT\n*nat\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n");
        let opts = RestoreOpts {
            counters: true,
            ..Default::default()
        };
        let rs = restore_new(&text, &opts).unwrap();
        let whole = save_store(&rs);
        assert!(whole.len() > 2 * STORE_CHUNK);
        assert!(whole.contains("\n[11999:11999000] -A INPUT -s 10.0.46.223/32 "));
        let mut pieces = Vec::new();
        save_store_to(&rs, &mut pieces).unwrap();
        assert_eq!(String::from_utf8(pieces).unwrap(), whole);
        for counters in [false, true] {
            let mut whole = String::new();
            let mut pieces = Vec::new();
            for t in &rs.tables {
                save_table(t, counters, &mut whole);
                save_table_to(t, counters, &mut pieces).unwrap();
            }
            assert_eq!(String::from_utf8(pieces).unwrap(), whole);
        }
        // User chains out of name order (an uncommitted table) print sorted all the same.
        let mut table = rs.tables[1].clone();
        table.chains.push(Chain::user("0first"));
        table.chains.reverse();
        let (mut sorted, mut unsorted) = (String::new(), String::new());
        save_table(&rs.tables[1], false, &mut sorted);
        save_table(&table, false, &mut unsorted);
        assert_eq!(
            unsorted,
            sorted.replacen("\n:a", "\n:0first - [0:0]\n:a", 1)
        );
        // A writer taking a few bytes a call gets the same text.
        let mut trickled = Trickle(Vec::new());
        save_store_to(&rs, &mut trickled).unwrap();
        assert_eq!(String::from_utf8(trickled.0).unwrap(), whole);
    }

    #[test]
    fn test_store_body_equals_the_lossless_print() {
        // The store's rule body (with its shortcuts for tcp and udp) is the lossless form
        // every extension prints through `save_store`.
        let mut text = String::from("*filter\n:X - [0:0]\n");
        for l in [
            "-p tcp --dport 80",
            "-p tcp ! --dport 80:90 --sport 1",
            "-p tcp -m tcp ! --sport 0:65535",
            "-p tcp -m tcp ! --dport 0:65535 --syn",
            "-p tcp -m tcp --dport 0:65535",
            "-p tcp --tcp-flags SYN,ACK SYN ! --tcp-option 2",
            "-p tcp ! --tcp-flags FIN FIN -j X",
            "-p udp --sport 53",
            "-p udp -m udp ! --sport 0:65535 --dport 1:2",
            "-p udp -m udp ! --dport 0:65535",
            "-p udp -m udp ! --dport 7",
            "-p icmp --icmp-type 255/255",
            "-i \"a b\"",
            "! -i eth+",
            "-m limit --limit 3/min -j LOG",
        ] {
            text.push_str(&format!("-A INPUT {l}\n"));
        }
        text.push_str("COMMIT\n");
        let rs = restore_new(&text, &RestoreOpts::default()).unwrap();
        let rules = &rs.tables[0].chain("INPUT").unwrap().rules;
        assert_eq!(rules.len(), 15);
        for r in rules {
            let (mut fast, mut lossless, mut scratch) =
                (String::new(), String::new(), String::new());
            push_rule_body_store(&mut fast, r, &mut scratch, &mut true);
            push_rule_body_as(&mut lossless, r, false, true);
            assert_eq!(fast, lossless);
        }
    }

    /// A writer that takes at most 7 bytes a call (partial vectored writes).
    struct Trickle(Vec<u8>);

    impl std::io::Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(7);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}

/// The proleptic Gregorian date (year, month 1-12, day 1-31) of `days` since 1970-01-01, for
/// the time stamps the tools print (iptables-save's header, log sinks). The era/day-of-era
/// method: shift to years starting in March so the leap day ends a year.
pub fn civil_date(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod civil_date_tests {
    use super::civil_date;

    #[test]
    fn days_since_the_epoch_give_calendar_dates() {
        // Day counts from Python's datetime.date arithmetic.
        assert_eq!(civil_date(0), (1970, 1, 1));
        assert_eq!(civil_date(-1), (1969, 12, 31));
        assert_eq!(civil_date(11016), (2000, 2, 29));
        assert_eq!(civil_date(20783), (2026, 11, 26));
        assert_eq!(civil_date(47541), (2100, 3, 1));
    }
}
