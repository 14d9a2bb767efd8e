//! The one grammar behind `iptables ARGS` and every iptables-restore line: a getopt_long
//! emulation over iptables' base options plus the options of each loaded extension (newest
//! loaded first, as iptables merges them), implicit protocol match loading, and the checks
//! iptables makes before talking to the kernel.

use crate::error::{Error, Result};
use crate::ext::util::{cidr_to_mask, parse_uint, split_once_byte, strtoull};
use crate::ext::{Arg, Match, OptCtx, TargetExt};
use crate::model::{Counters, Iface, IpSpec, Rule, TableKind, Target};
use crate::services;
use std::borrow::Cow;
use std::net::Ipv4Addr;

/// What `iptables --version` prints.
pub const VERSION: &str = "iptables v1.8.9 (legacy)";

/// The command of one iptables invocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    Append,
    Delete,
    DeleteNum,
    Insert,
    Replace,
    Check,
    List,
    ListRules,
    Flush,
    Zero,
    NewChain,
    DeleteChain,
    Rename,
    Policy,
}

impl Cmd {
    fn letter(self) -> char {
        match self {
            Cmd::Append => 'A',
            Cmd::Delete | Cmd::DeleteNum => 'D',
            Cmd::Insert => 'I',
            Cmd::Replace => 'R',
            Cmd::Check => 'C',
            Cmd::List => 'L',
            Cmd::ListRules => 'S',
            Cmd::Flush => 'F',
            Cmd::Zero => 'Z',
            Cmd::NewChain => 'N',
            Cmd::DeleteChain => 'X',
            Cmd::Rename => 'E',
            Cmd::Policy => 'P',
        }
    }
    /// True for commands that carry a rule specification.
    pub fn has_rule(self) -> bool {
        matches!(
            self,
            Cmd::Append | Cmd::Delete | Cmd::Insert | Cmd::Replace | Cmd::Check
        )
    }
}

/// A parsed iptables invocation.
#[derive(Clone, Debug)]
pub struct Command {
    pub table: TableKind,
    pub cmd: Cmd,
    /// `-L -Z`: zero after listing.
    pub zero_too: bool,
    /// The chain argument; empty when the command applies to all chains.
    pub chain: String,
    /// Rule number for -I/-R/-D NUM and -L/-S/-Z CHAIN NUM (0 = none).
    pub rulenum: u32,
    /// The rules of -A/-I/-D/-R/-C (several when -s/-d list several addresses).
    pub rules: Vec<Rule>,
    /// -E new name or -P policy.
    pub arg2: String,
    pub numeric: bool,
    pub verbose: bool,
    pub exact: bool,
    pub line_numbers: bool,
    /// -c given (policy counters for -P, rule counters otherwise).
    pub counters: Option<Counters>,
    /// `-j NAME` of a chain (checked against the table when applied).
    pub jump_chain: Option<String>,
    /// Warnings iptables prints on stderr without failing (weird interface names).
    pub warnings: Vec<String>,
}

// Generic option bits, in iptables' optflags order: n s d p j v x i o 0(line-numbers) c f.
const O_NUMERIC: u16 = 1 << 0;
const O_SOURCE: u16 = 1 << 1;
const O_DEST: u16 = 1 << 2;
const O_PROTO: u16 = 1 << 3;
const O_JUMP: u16 = 1 << 4;
const O_VERBOSE: u16 = 1 << 5;
const O_EXPANDED: u16 = 1 << 6;
const O_VIAIN: u16 = 1 << 7;
const O_VIAOUT: u16 = 1 << 8;
const O_LINENUMBERS: u16 = 1 << 9;
const O_COUNTERS: u16 = 1 << 10;
const O_FRAGMENT: u16 = 1 << 11;
const OPT_CHARS: [char; 12] = ['n', 's', 'd', 'p', 'j', 'v', 'x', 'i', 'o', '0', 'c', 'f'];

/// Which generic options each command refuses (iptables' commands_v_options 'x' cells).
fn illegal_options(cmd: Cmd) -> u16 {
    let rule_ok = O_NUMERIC | O_EXPANDED | O_LINENUMBERS;
    let all_but_v = !O_VERBOSE & 0x0fff;
    match cmd {
        Cmd::Insert | Cmd::Replace | Cmd::Append => rule_ok,
        Cmd::Delete | Cmd::Check => rule_ok | O_COUNTERS,
        Cmd::List => {
            O_SOURCE | O_DEST | O_PROTO | O_JUMP | O_VIAIN | O_VIAOUT | O_COUNTERS | O_FRAGMENT
        }
        Cmd::Policy => all_but_v & !O_COUNTERS,
        _ => all_but_v,
    }
}

/// A base (non-extension) option: long name, argument kind, short letter.
const BASE_OPTS: &[(&str, Arg, char)] = &[
    ("append", Arg::Required, 'A'),
    ("delete", Arg::Required, 'D'),
    ("check", Arg::Required, 'C'),
    ("insert", Arg::Required, 'I'),
    ("replace", Arg::Required, 'R'),
    ("list", Arg::Optional, 'L'),
    ("list-rules", Arg::Optional, 'S'),
    ("flush", Arg::Optional, 'F'),
    ("zero", Arg::Optional, 'Z'),
    ("new-chain", Arg::Required, 'N'),
    ("delete-chain", Arg::Optional, 'X'),
    ("rename-chain", Arg::Required, 'E'),
    ("policy", Arg::Required, 'P'),
    ("source", Arg::Required, 's'),
    ("destination", Arg::Required, 'd'),
    ("src", Arg::Required, 's'),
    ("dst", Arg::Required, 'd'),
    ("protocol", Arg::Required, 'p'),
    ("in-interface", Arg::Required, 'i'),
    ("jump", Arg::Required, 'j'),
    ("table", Arg::Required, 't'),
    ("match", Arg::Required, 'm'),
    ("numeric", Arg::None, 'n'),
    ("out-interface", Arg::Required, 'o'),
    ("verbose", Arg::None, 'v'),
    ("wait", Arg::Optional, 'w'),
    ("wait-interval", Arg::Optional, 'W'),
    ("exact", Arg::None, 'x'),
    ("fragments", Arg::None, 'f'),
    ("version", Arg::None, 'V'),
    ("help", Arg::Optional, 'h'),
    ("line-numbers", Arg::None, '0'),
    ("modprobe", Arg::Required, 'M'),
    ("set-counters", Arg::Required, 'c'),
    ("goto", Arg::Required, 'g'),
    ("ipv4", Arg::None, '4'),
    ("ipv6", Arg::None, '6'),
];

/// The [`BASE_OPTS`] entry named exactly `name`.
fn base_exact(name: &str) -> Option<&'static (&'static str, Arg, char)> {
    let i = match name {
        "append" => 0,
        "delete" => 1,
        "check" => 2,
        "insert" => 3,
        "replace" => 4,
        "list" => 5,
        "list-rules" => 6,
        "flush" => 7,
        "zero" => 8,
        "new-chain" => 9,
        "delete-chain" => 10,
        "rename-chain" => 11,
        "policy" => 12,
        "source" => 13,
        "destination" => 14,
        "src" => 15,
        "dst" => 16,
        "protocol" => 17,
        "in-interface" => 18,
        "jump" => 19,
        "table" => 20,
        "match" => 21,
        "numeric" => 22,
        "out-interface" => 23,
        "verbose" => 24,
        "wait" => 25,
        "wait-interval" => 26,
        "exact" => 27,
        "fragments" => 28,
        "version" => 29,
        "help" => 30,
        "line-numbers" => 31,
        "modprobe" => 32,
        "set-counters" => 33,
        "goto" => 34,
        "ipv4" => 35,
        "ipv6" => 36,
        _ => return None,
    };
    Some(&BASE_OPTS[i])
}

/// Short options and their argument kind (iptables' optstring).
fn short_arg(c: char) -> Option<Arg> {
    Some(match c {
        'A' | 'C' | 'D' | 'R' | 'I' | 'M' | 'N' | 'E' | 'P' | 'o' | 'p' | 's' | 'd' | 'j' | 'i'
        | 't' | 'm' | 'c' | 'g' => Arg::Required,
        'L' | 'S' | 'F' | 'Z' | 'X' | 'h' | 'w' | 'W' => Arg::Optional,
        'V' | 'f' | 'b' | 'v' | 'n' | 'x' | '4' | '6' => Arg::None,
        _ => return None,
    })
}

/// Who owns an option found by getopt.
#[derive(Clone, Copy, Debug)]
enum Owner {
    Base(char),
    Target(usize),
    Match(usize, usize),
}

/// One loaded extension instance within the rule being parsed.
struct Loaded {
    seen: u64,
}

/// The options seen of each loaded match (bit i: option i), by load position: the first
/// few inline, so a rule costs no allocation for them.
#[derive(Default)]
struct SeenBits {
    inline: [u64; 6],
    more: Vec<u64>,
}

impl SeenBits {
    fn get(&self, i: usize) -> u64 {
        match self.inline.get(i) {
            Some(&v) => v,
            None => self.more.get(i - self.inline.len()).copied().unwrap_or(0),
        }
    }
    fn add(&mut self, i: usize, bits: u64) {
        let n = self.inline.len();
        if i < n {
            self.inline[i] |= bits;
        } else {
            if self.more.len() <= i - n {
                self.more.resize(i - n + 1, 0);
            }
            self.more[i - n] |= bits;
        }
    }
}

struct Parser<'a, 't> {
    /// The arguments: slices of the restore line (or of argv), or copies where quoting
    /// joined pieces; values taken from them stay borrowed when they are.
    args: &'t [Cow<'a, str>],
    pos: usize,
    restore: bool,
    table: TableKind,
    table_set: bool,
    cmd: Option<Cmd>,
    zero_too: bool,
    chain: Cow<'a, str>,
    rulenum: u32,
    arg2: Cow<'a, str>,
    options: u16,
    ip: IpSpec,
    src_text: Option<Cow<'a, str>>,
    dst_text: Option<Cow<'a, str>>,
    proto_name: Option<Cow<'a, str>>,
    proto_used: bool,
    /// Loaded matches, in load order.
    matches: Vec<Match>,
    /// Options seen of each loaded match.
    seen: SeenBits,
    /// How many matches were loaded before the target extension (its place in the load
    /// order; meaningful while `target_ext` is set).
    target_at: usize,
    target_ext: Option<(TargetExt, Loaded)>,
    jumpto: Option<Cow<'a, str>>,
    goto: bool,
    counters: Option<Counters>,
    /// The current option's value was attached to it (`-ptcp`, `--opt=value`).
    attached: bool,
    warnings: Vec<String>,
    /// Reading the store: accept jumps to chains -E renamed to names with blanks.
    lenient: bool,
}

fn bad_arg(s: &str) -> Error {
    Error::bare(format!("Bad argument `{s}'"))
}

/// The addresses of `-s` or `-d`: one (the usual case, kept inline) or a list.
enum Addrs {
    One([(Ipv4Addr, Ipv4Addr); 1]),
    Many(Vec<(Ipv4Addr, Ipv4Addr)>),
}

impl Addrs {
    /// The addresses of an option's text; any address when the option was not given.
    fn of(text: Option<&str>) -> Result<Addrs> {
        let Some(t) = text else {
            return Ok(Addrs::One([(Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)]));
        };
        if !t.bytes().any(|b| b == b',') {
            if let Some(one) = parse_numeric_item(t) {
                return one.map(|a| Addrs::One([a]));
            }
        }
        parse_addresses(t).map(Addrs::Many)
    }
    fn as_slice(&self) -> &[(Ipv4Addr, Ipv4Addr)] {
        match self {
            Addrs::One(a) => a,
            Addrs::Many(v) => v,
        }
    }
}

/// The mask part of an `addr/mask` item.
fn parse_mask(m: &str) -> Result<Ipv4Addr> {
    if m.bytes().any(|b| b == b'.') {
        parse_dotted(m).ok_or_else(|| Error::param(format!("invalid mask `{m}' specified")))
    } else {
        let bits = parse_uint(m, 0, 32)
            .ok_or_else(|| Error::param(format!("invalid mask `{m}' specified")))?;
        Ok(cidr_to_mask(bits as u8))
    }
}

/// One `addr[/mask]` item whose address is numeric: its network and mask (or the mask's
/// error); None when the address part is a name.
fn parse_numeric_item(item: &str) -> Option<Result<(Ipv4Addr, Ipv4Addr)>> {
    let (host, mask) = match split_once_byte(item, b'/') {
        Some((h, m)) => (h, Some(m)),
        None => (item, None),
    };
    let mask = match mask {
        Some(m) => match parse_mask(m) {
            Ok(m) => m,
            Err(e) => return Some(Err(e)),
        },
        None => Ipv4Addr::BROADCAST,
    };
    let a = parse_dotted(host).or_else(|| parse_inet_aton(host))?;
    Some(Ok((Ipv4Addr::from(u32::from(a) & u32::from(mask)), mask)))
}

/// Parses `-s`/`-d` text: comma-separated `addr[/mask]` items (iptables' xtables_ipparse_multiple).
pub fn parse_addresses(text: &str) -> Result<Vec<(Ipv4Addr, Ipv4Addr)>> {
    let mut out = Vec::new();
    for item in text.split(',') {
        let (host, mask) = match item.split_once('/') {
            Some((h, m)) => {
                let mask = if m.contains('.') {
                    parse_dotted(m)
                        .ok_or_else(|| Error::param(format!("invalid mask `{m}' specified")))?
                } else {
                    let bits = parse_uint(m, 0, 32)
                        .ok_or_else(|| Error::param(format!("invalid mask `{m}' specified")))?;
                    cidr_to_mask(bits as u8)
                };
                (h, mask)
            }
            None => (item, Ipv4Addr::BROADCAST),
        };
        if let Some(a) = parse_dotted(host).or_else(|| parse_inet_aton(host)) {
            // One address (the usual case): its network, without the list below.
            out.push((Ipv4Addr::from(u32::from(a) & u32::from(mask)), mask));
            continue;
        }
        let addrs = {
            let v = crate::hosts::lookup(host);
            if v.is_empty() {
                return Err(Error::param(format!("host/network `{host}' not found")));
            }
            v
        };
        // Every list item makes its rules, repeats included (measured: `-s a,a` gives two).
        let mut mine: Vec<(Ipv4Addr, Ipv4Addr)> = Vec::new();
        for addr in addrs {
            let net = Ipv4Addr::from(u32::from(addr) & u32::from(mask));
            if !mine.contains(&(net, mask)) {
                mine.push((net, mask));
            }
        }
        out.extend(mine);
    }
    Ok(out)
}

/// xtables_numeric_to_ipaddr: one to four dot-separated numbers 0..=255 (each base 0),
/// missing trailing bytes zero (measured: `10.1` is 10.1.0.0).
fn parse_dotted(s: &str) -> Option<Ipv4Addr> {
    // The usual text, four plain decimal parts, reads the same either way: take the quick
    // path when its parts have no leading zero (a leading `0` means octal here).
    if let Some((a, false)) = crate::ext::util::dotted_quad(s) {
        return Some(a);
    }
    let bytes = s.as_bytes();
    let mut b = [0u8; 4];
    let mut start = 0;
    for (n, slot) in b.iter_mut().enumerate() {
        // Parts end at a '.' (ASCII, so the slices stay on character boundaries).
        let end = bytes[start..]
            .iter()
            .position(|&c| c == b'.')
            .map_or(bytes.len(), |k| start + k);
        let p = &s[start..end];
        *slot = match plain_decimal_byte(p) {
            Some(v) => v,
            None => parse_uint(p, 0, 255)? as u8,
        };
        if end == bytes.len() {
            return Some(Ipv4Addr::from(b));
        }
        start = end + 1;
        // A fifth part makes the text invalid.
        if n == 3 {
            return None;
        }
    }
    None
}

/// The common case of a dotted part, decided without the general base-0 parser: one to three
/// decimal digits, no leading zero (a leading `0` means octal), value at most 255. None when
/// the part is anything else (the caller then parses it the general way).
fn plain_decimal_byte(p: &str) -> Option<u8> {
    let d = p.as_bytes();
    if d.is_empty() || d.len() > 3 || (d.len() > 1 && d[0] == b'0') {
        return None;
    }
    let mut v: u32 = 0;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    u8::try_from(v).ok()
}

/// What getaddrinfo accepts as a numeric address besides a dotted quad (inet_aton's forms:
/// `a`, `a.b`, `a.b.c`, the last part filling the remaining bytes; each part base 0).
fn parse_inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let nums: Vec<u64> = parts
        .iter()
        .map(|p| crate::ext::util::strtoull(p).filter(|_| !p.starts_with(['+', '-', ' '])))
        .collect::<Option<_>>()?;
    let (last, head) = nums.split_last()?;
    if head.iter().any(|&n| n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - head.len() as u32);
    if rest_bits < 64 && *last >= 1u64 << rest_bits {
        return None;
    }
    let mut v: u32 = 0;
    for (i, &n) in head.iter().enumerate() {
        v |= (n as u32) << (24 - 8 * i as u32);
    }
    Some(Ipv4Addr::from(v | *last as u32))
}

/// xtables_parse_protocol: a number 0..=255, `all`, or a protocol name.
pub fn parse_protocol(s: &str) -> Result<u16> {
    // A name (`tcp`, the usual text) cannot read as a number: strtoul needs a digit after
    // optional blanks and sign, and a letter is none of them.
    let name = s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
    if !name {
        if let Some(v) = parse_uint(s, 0, 255) {
            return Ok(v as u16);
        }
    }
    if s == "all" {
        return Ok(0);
    }
    if let Some(n) = services::protocol_number(s) {
        return Ok(u16::from(n));
    }
    if let Some((_, n)) = services::CHAIN_PROTOS.iter().find(|(n, _)| *n == s) {
        return Ok(*n);
    }
    Err(Error::param(format!("unknown protocol \"{s}\" specified")))
}

fn parse_iface(s: &str, warnings: &mut Vec<String>) -> Result<String> {
    if s.len() >= 16 {
        return Err(Error::param(format!(
            "interface name `{s}' must be shorter than IFNAMSIZ (15)"
        )));
    }
    if s.contains(['/', ' ']) {
        warnings.push(format!(
            "Warning: weird character in interface `{s}' ('/' and ' ' are not allowed by the kernel)."
        ));
    }
    Ok(s.to_string())
}

/// iptables refuses new chain names containing blanks (measured: "Invalid chain name `a b'").
fn check_chain_name(name: &str) -> Result<()> {
    if name.chars().any(|c| c.is_ascii_whitespace() || c == '\x0b') {
        return Err(Error::param(format!("Invalid chain name `{name}'")));
    }
    Ok(())
}

fn parse_rulenumber(s: &str) -> Result<u32> {
    parse_uint(s, 1, i32::MAX as u64)
        .map(|v| v as u32)
        .ok_or_else(|| Error::param(format!("Invalid rule number `{s}'")))
}

/// sscanf("%llu"): leading blanks, optional sign, decimal digits, rest ignored.
fn scan_u64(s: &str) -> Option<u64> {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = t
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(t.len());
    if end == 0 {
        return None;
    }
    let v = t[..end].parse::<u64>().unwrap_or(u64::MAX);
    Some(if neg { v.wrapping_neg() } else { v })
}

/// The text of argument `tok` from byte `at` on (an attached value: `-ptcp`, `--opt=v`),
/// borrowed from the line when the argument is.
fn tail<'a>(tok: &Cow<'a, str>, at: usize) -> Cow<'a, str> {
    match tok {
        Cow::Borrowed(s) => Cow::Borrowed(&s[at..]),
        Cow::Owned(s) => Cow::Owned(s[at..].to_string()),
    }
}

impl<'a> Parser<'a, '_> {
    fn next_is_value(&self) -> bool {
        self.args
            .get(self.pos)
            .is_some_and(|a| !a.starts_with('-') && !a.starts_with('!'))
    }

    fn take_value(&mut self) -> Option<Cow<'a, str>> {
        if self.next_is_value() {
            self.pos += 1;
            Some(self.args[self.pos - 1].clone())
        } else {
            None
        }
    }

    fn set_command(&mut self, c: Cmd, invert: bool) -> Result<()> {
        if let Some(old) = self.cmd {
            let ok = matches!(
                (old, c),
                (Cmd::List | Cmd::ListRules, Cmd::Zero) | (Cmd::Zero, Cmd::List | Cmd::ListRules)
            );
            if !ok {
                return Err(Error::param(format!(
                    "Cannot use -{} with -{}",
                    c.letter(),
                    old.letter()
                )));
            }
            self.zero_too = true;
            if matches!(c, Cmd::List | Cmd::ListRules) {
                self.cmd = Some(c);
            }
            return Ok(());
        }
        if invert {
            return Err(Error::param("unexpected ! flag before --table"));
        }
        self.cmd = Some(c);
        Ok(())
    }

    fn set_option(&mut self, bit: u16, invert: bool, invertible: bool) -> Result<()> {
        let c = OPT_CHARS[bit.trailing_zeros() as usize];
        if self.options & bit != 0 {
            return Err(Error::param(format!("multiple -{c} flags not allowed")));
        }
        if invert && !invertible {
            return Err(Error::param(format!("cannot have ! before -{c}")));
        }
        self.options |= bit;
        Ok(())
    }

    /// The long option table as getopt sees it now, visited in order: base options, then
    /// extension options with the newest loaded extension first. Stops when `f` says so.
    fn each_long(&self, mut f: impl FnMut(&'static str, Arg, Owner) -> bool) {
        for &(n, a, c) in BASE_OPTS {
            if !f(n, a, Owner::Base(c)) {
                return;
            }
        }
        self.each_ext_long(f);
    }

    /// The extension part of [`Parser::each_long`].
    fn each_ext_long(&self, mut f: impl FnMut(&'static str, Arg, Owner) -> bool) {
        // Newest first: matches loaded after the target, the target, the matches before.
        for at in (0..=self.matches.len()).rev() {
            if at == self.target_at {
                if let Some((t, _)) = &self.target_ext {
                    for (k, o) in t.options().iter().enumerate() {
                        if !f(o.name, o.arg, Owner::Target(k)) {
                            return;
                        }
                    }
                }
            }
            if at == 0 {
                break;
            }
            let i = at - 1;
            for (k, o) in self.matches[i].options().iter().enumerate() {
                if !f(o.name, o.arg, Owner::Match(i, k)) {
                    return;
                }
            }
        }
    }

    /// Looks up a long option by exact name, else unique abbreviation (glibc getopt_long).
    fn find_long(&self, name: &str) -> Option<(Arg, Owner)> {
        // Exact names first: the base options through one `match` (they come first in the
        // table, so an exact base name wins), then the loaded extensions', newest first.
        if let Some(&(_, a, c)) = base_exact(name) {
            return Some((a, Owner::Base(c)));
        }
        let mut exact = None;
        self.each_ext_long(|n, a, o| {
            if n == name {
                exact = Some((a, o));
                return false;
            }
            true
        });
        if exact.is_some() {
            return exact;
        }
        let mut first: Option<(Arg, Owner)> = None;
        let mut ambiguous = false;
        self.each_long(|n, a, o| {
            if n.starts_with(name) {
                match first {
                    None => first = Some((a, o)),
                    Some((fa, fo)) => {
                        if fa != a || !self.same_owner(fo, o) {
                            ambiguous = true;
                            return false;
                        }
                    }
                }
            }
            true
        });
        if ambiguous {
            None
        } else {
            first
        }
    }

    /// getopt's ambiguity test: two entries are the same option when they have the same
    /// value, which for clones of one extension (`-m comment ... -m comment`) they share.
    fn same_owner(&self, a: Owner, b: Owner) -> bool {
        match (a, b) {
            (Owner::Base(x), Owner::Base(y)) => x == y,
            (Owner::Target(x), Owner::Target(y)) => x == y,
            (Owner::Match(i, x), Owner::Match(j, y)) => {
                x == y && self.matches[i].name() == self.matches[j].name()
            }
            _ => false,
        }
    }

    /// Loads the match named by `-p` when an option is unknown (iptables' load_proto).
    fn load_proto(&mut self) -> Result<bool> {
        if self.proto_used {
            return Ok(false);
        }
        let Some(p) = self.proto_name.as_deref() else {
            return Ok(false);
        };
        let name = match parse_uint(p, 0, 255) {
            Some(n) => match services::proto_to_name(n as u16, self.options & O_NUMERIC != 0) {
                Some(n) => n,
                None => return Ok(false),
            },
            None => p,
        };
        match Match::new(name) {
            Some(m) => {
                self.proto_used = true;
                self.push_match(m?);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn push_match(&mut self, m: Match) {
        self.matches.push(m);
    }

    fn ext_option(&mut self, owner: Owner, arg: &str, invert: bool) -> Result<()> {
        let (opt, ext_name, seen) = match owner {
            Owner::Match(i, k) => {
                let m = &self.matches[i];
                (m.options()[k], m.name(), self.seen.get(i))
            }
            Owner::Target(k) => {
                let (t, l) = self.target_ext.as_ref().unwrap();
                (t.options()[k], t.name(), l.seen)
            }
            Owner::Base(_) => unreachable!(),
        };
        let k = match owner {
            Owner::Match(_, k) | Owner::Target(k) => k,
            Owner::Base(_) => unreachable!(),
        };
        if invert && !opt.invert {
            return Err(Error::param(format!(
                "{ext_name}: option \"--{}\" cannot be inverted.",
                opt.name
            )));
        }
        if seen & (1 << k) != 0 && !opt.multi {
            return Err(Error::param(format!(
                "{ext_name}: option \"--{}\" can only be used once.\n",
                opt.name
            )));
        }
        let cx = OptCtx {
            ip: &self.ip,
            invert,
            seen,
            table: self.table,
        };
        match owner {
            Owner::Match(i, _) => {
                self.matches[i].parse(k, arg, &cx)?;
                self.seen.add(i, 1 << k);
            }
            Owner::Target(_) => {
                let (t, l) = self.target_ext.as_mut().unwrap();
                t.parse(k, arg, &cx)?;
                l.seen |= 1 << k;
            }
            Owner::Base(_) => unreachable!(),
        }
        Ok(())
    }

    fn base_option(&mut self, c: char, optarg: Option<Cow<'a, str>>, invert: bool) -> Result<()> {
        // Each branch takes the value once.
        let req = |o: &mut Option<Cow<'a, str>>| o.take().unwrap_or_default();
        let mut optarg = optarg;
        match c {
            'A' | 'C' => {
                self.set_command(if c == 'A' { Cmd::Append } else { Cmd::Check }, invert)?;
                self.chain = req(&mut optarg);
            }
            'D' => {
                self.set_command(Cmd::Delete, invert)?;
                self.chain = req(&mut optarg);
                if let Some(v) = self.take_value() {
                    self.rulenum = parse_rulenumber(&v)?;
                    self.cmd = Some(Cmd::DeleteNum);
                }
            }
            'R' => {
                self.set_command(Cmd::Replace, invert)?;
                self.chain = req(&mut optarg);
                match self.take_value() {
                    Some(v) => self.rulenum = parse_rulenumber(&v)?,
                    None => return Err(Error::param("-R requires a rule number")),
                }
            }
            'I' => {
                self.set_command(Cmd::Insert, invert)?;
                self.chain = req(&mut optarg);
                self.rulenum = match self.take_value() {
                    Some(v) => parse_rulenumber(&v)?,
                    None => 1,
                };
            }
            'L' | 'S' | 'Z' => {
                let cmd = match c {
                    'L' => Cmd::List,
                    'S' => Cmd::ListRules,
                    _ => Cmd::Zero,
                };
                self.set_command(cmd, invert)?;
                let chain = optarg.or_else(|| self.take_value());
                if let Some(ch) = chain {
                    self.chain = ch;
                    if let Some(v) = self.take_value() {
                        self.rulenum = parse_rulenumber(&v)?;
                    }
                }
            }
            'F' | 'X' => {
                self.set_command(
                    if c == 'F' {
                        Cmd::Flush
                    } else {
                        Cmd::DeleteChain
                    },
                    invert,
                )?;
                if let Some(ch) = optarg.or_else(|| self.take_value()) {
                    self.chain = ch;
                }
            }
            'N' => {
                self.set_command(Cmd::NewChain, invert)?;
                let name = req(&mut optarg);
                check_chain_name(&name)?;
                if name.starts_with('-') || name.starts_with('!') {
                    return Err(Error::param(format!(
                        "chain name not allowed to start with `{}'",
                        &name[..1]
                    )));
                }
                if TargetExt::NAMES.contains(&&*name)
                    || ["ACCEPT", "DROP", "QUEUE", "RETURN"].contains(&&*name)
                    || crate::ext::KNOWN_UNSUPPORTED_TARGETS.contains(&&*name)
                {
                    return Err(Error::param("chain name may not clash with target name"));
                }
                self.chain = name;
            }
            'E' => {
                self.set_command(Cmd::Rename, invert)?;
                self.chain = req(&mut optarg);
                match self.take_value() {
                    // -E accepts any new name (measured: `-E x "c d"` works).
                    Some(v) => self.arg2 = v,
                    None => {
                        return Err(Error::param(
                            "-E requires old-chain-name and new-chain-name",
                        ))
                    }
                }
            }
            'P' => {
                self.set_command(Cmd::Policy, invert)?;
                self.chain = req(&mut optarg);
                match self.take_value() {
                    Some(v) => self.arg2 = v,
                    None => return Err(Error::param("-P requires a chain and a policy")),
                }
            }
            'p' => {
                self.set_option(O_PROTO, invert, true)?;
                // 1.8.9 takes the protocol from the whole argv element, so an attached value
                // (`-ptcp`, `--protocol=tcp`) is read as the protocol "-ptcp".
                let text = if self.attached {
                    self.args[self.pos - 1].clone()
                } else {
                    req(&mut optarg)
                };
                let name = if text.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(text.to_ascii_lowercase())
                } else {
                    text
                };
                self.ip.proto = parse_protocol(&name)?;
                self.ip.inv_proto = invert;
                if self.ip.proto == 0 && invert {
                    return Err(Error::param("rule would never match protocol"));
                }
                self.proto_name = Some(name);
            }
            's' => {
                self.set_option(O_SOURCE, invert, true)?;
                self.ip.inv_src = invert;
                self.src_text = optarg;
            }
            'd' => {
                self.set_option(O_DEST, invert, true)?;
                self.ip.inv_dst = invert;
                self.dst_text = optarg;
            }
            'i' => {
                self.set_option(O_VIAIN, invert, true)?;
                self.ip.in_iface = Iface {
                    name: parse_iface(&req(&mut optarg), &mut self.warnings)?,
                    invert,
                };
            }
            'o' => {
                self.set_option(O_VIAOUT, invert, true)?;
                self.ip.out_iface = Iface {
                    name: parse_iface(&req(&mut optarg), &mut self.warnings)?,
                    invert,
                };
            }
            'f' => {
                self.set_option(O_FRAGMENT, invert, true)?;
                self.ip.fragment = true;
                self.ip.inv_fragment = invert;
            }
            'j' | 'g' => {
                self.set_option(O_JUMP, invert, false)?;
                let name = req(&mut optarg);
                if name.is_empty() {
                    return Err(Error::param("Invalid target name (too short)"));
                }
                if name.len() >= 29 {
                    return Err(Error::param(format!(
                        "Invalid target name `{name}' (28 chars max)"
                    )));
                }
                if !self.lenient && name.bytes().any(|b| b.is_ascii_whitespace()) {
                    return Err(Error::param(format!("Invalid target name `{name}'")));
                }
                self.goto = c == 'g';
                if let Some(t) = TargetExt::new(&name) {
                    self.target_ext = Some((t?, Loaded { seen: 0 }));
                    self.target_at = self.matches.len();
                } else if crate::ext::KNOWN_UNSUPPORTED_TARGETS.contains(&&*name) {
                    return Err(crate::ext::unsupported_target(&name));
                }
                self.jumpto = Some(name);
            }
            'm' => {
                if invert {
                    return Err(Error::param("unexpected ! flag before --match"));
                }
                let name = req(&mut optarg);
                match Match::new(&name) {
                    Some(m) => self.push_match(m?),
                    None if crate::ext::KNOWN_UNSUPPORTED_MATCHES.contains(&&*name) => {
                        return Err(crate::ext::unsupported_match(&name))
                    }
                    None => {
                        return Err(Error::param(format!(
                            "Couldn't load match `{name}':No such file or directory\n"
                        )))
                    }
                }
            }
            'n' => self.set_option(O_NUMERIC, invert, false)?,
            'v' => {
                if invert {
                    return Err(Error::param("cannot have ! before -v"));
                }
                self.options |= O_VERBOSE;
            }
            'x' => self.set_option(O_EXPANDED, invert, false)?,
            '0' => self.set_option(O_LINENUMBERS, invert, false)?,
            't' => {
                if invert {
                    return Err(Error::param("unexpected ! flag before --table"));
                }
                if self.restore && self.table_set {
                    return Err(Error::param(
                        "The -t option cannot be used in iptables-restore.\n",
                    ));
                }
                let name = req(&mut optarg);
                self.table = match TableKind::from_name(&name) {
                    Some(t) => t,
                    None => {
                        return Err(Error::other(format!(
                            "can't initialize iptables table `{name}': Table does not exist (do you need to insmod?)\nPerhaps iptables or your kernel needs to be upgraded."
                        )))
                    }
                };
                self.table_set = true;
            }
            'c' => {
                self.set_option(O_COUNTERS, invert, false)?;
                let p = req(&mut optarg);
                let mut b = p
                    .get(1..)
                    .and_then(|rest| rest.find(',').map(|i| Cow::Owned(p[i + 2..].to_string())));
                if b.is_none() {
                    b = self.take_value();
                }
                let Some(b) = b else {
                    return Err(Error::param("-c requires packet and byte counter"));
                };
                let packets =
                    scan_u64(&p).ok_or_else(|| Error::param("-c packet counter not numeric"))?;
                let bytes =
                    scan_u64(&b).ok_or_else(|| Error::param("-c byte counter not numeric"))?;
                self.counters = Some(Counters { packets, bytes });
            }
            'w' | 'W' => {
                if optarg.is_none()
                    && self
                        .args
                        .get(self.pos)
                        .is_some_and(|a| strtoull(a).is_some())
                {
                    self.pos += 1;
                }
            }
            '4' => {}
            '6' => {
                return Err(Error::param("This is the IPv4 version of iptables.\n"));
            }
            'M' => {}
            'V' => return Err(Error::other(VERSION)),
            'h' => return Err(Error::param("nfrs iptables: see iptables(8) for help")),
            _ => return Err(Error::param(format!("unknown option \"-{c}\""))),
        }
        Ok(())
    }

    fn run(&mut self) -> Result<()> {
        let mut invert = false;
        let mut only_args = false;
        while self.pos < self.args.len() {
            let args = self.args;
            let tok = &args[self.pos];
            let arg: &str = tok;
            self.pos += 1;
            if only_args || !arg.starts_with('-') || arg == "-" {
                if arg == "!" {
                    if invert {
                        return Err(Error::param("multiple consecutive ! not allowed"));
                    }
                    invert = true;
                    continue;
                }
                return Err(bad_arg(arg));
            }
            if arg == "--" {
                only_args = true;
                continue;
            }
            if let Some(long) = arg.strip_prefix("--") {
                let (name, inline) = match split_once_byte(long, b'=') {
                    Some((n, v)) => (n, Some(tail(tok, arg.len() - v.len()))),
                    None => (long, None),
                };
                loop {
                    match self.find_long(name) {
                        Some((a, owner)) => {
                            let optarg = match a {
                                Arg::None => {
                                    if inline.is_some() {
                                        return Err(Error::param(format!(
                                            "unknown option \"{arg}\""
                                        )));
                                    }
                                    None
                                }
                                Arg::Optional => inline.clone(),
                                Arg::Two => {
                                    let first = match inline.clone() {
                                        Some(v) => Some(v),
                                        None if self.pos < self.args.len() => {
                                            self.pos += 1;
                                            Some(self.args[self.pos - 1].clone())
                                        }
                                        None => None,
                                    };
                                    let second = self.take_value();
                                    match (first, second) {
                                        (Some(a), Some(b)) => Some(Cow::Owned(format!("{a} {b}"))),
                                        _ => {
                                            return Err(Error::param(format!(
                                                "{arg} requires two args."
                                            )))
                                        }
                                    }
                                }
                                Arg::Required => match inline.clone() {
                                    Some(v) => Some(v),
                                    None => {
                                        if self.pos >= self.args.len() {
                                            return Err(Error::param(format!(
                                                "option \"{arg}\" requires an argument"
                                            )));
                                        }
                                        self.pos += 1;
                                        Some(self.args[self.pos - 1].clone())
                                    }
                                },
                            };
                            self.attached = inline.is_some();
                            match owner {
                                Owner::Base(c) => self.base_option(c, optarg, invert)?,
                                _ => {
                                    self.ext_option(owner, optarg.as_deref().unwrap_or(""), invert)?
                                }
                            }
                            break;
                        }
                        None => {
                            if self.load_proto()? {
                                continue;
                            }
                            return Err(Error::param(format!("unknown option \"{arg}\"")));
                        }
                    }
                }
                invert = false;
                continue;
            }
            // A cluster of short options (`-nvL`, `-ptcp`).
            let cluster = &arg[1..];
            // Byte offset of the next option character in the cluster.
            let mut k = 0;
            while let Some(c) = cluster[k..].chars().next() {
                k += c.len_utf8();
                let Some(a) = short_arg(c) else {
                    // The proto match has no short options; loading it only re-reports.
                    self.load_proto()?;
                    return Err(Error::param(format!("unknown option \"-{c}\"")));
                };
                let optarg = match a {
                    Arg::None => None,
                    Arg::Optional => {
                        if k < cluster.len() {
                            let v = tail(tok, 1 + k);
                            k = cluster.len();
                            Some(v)
                        } else {
                            None
                        }
                    }
                    Arg::Required | Arg::Two => {
                        self.attached = k < cluster.len();
                        if k < cluster.len() {
                            let v = tail(tok, 1 + k);
                            k = cluster.len();
                            Some(v)
                        } else if self.pos < self.args.len() {
                            self.pos += 1;
                            Some(self.args[self.pos - 1].clone())
                        } else {
                            return Err(Error::param(format!(
                                "option \"-{c}\" requires an argument"
                            )));
                        }
                    }
                };
                self.base_option(c, optarg, invert)?;
                invert = false;
            }
        }
        if invert {
            return Err(Error::param("nothing appropriate following !"));
        }
        Ok(())
    }
}

/// Parses one iptables invocation (`args` without the program name). `restore` is true for
/// iptables-restore lines (which carry the table from `*table`).
pub fn parse_command(args: &[String], restore: bool, table: Option<TableKind>) -> Result<Command> {
    parse_command_with(args, restore, table, false).0
}

/// [`parse_command`]; `lenient` accepts what only the nfrs store can contain (a jump to a
/// chain whose name has blanks, which `-E` allows).
pub fn parse_command_with(
    args: &[String],
    restore: bool,
    table: Option<TableKind>,
    lenient: bool,
) -> (Result<Command>, Vec<String>) {
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    parse_command_strs(&strs, restore, table, lenient)
}

/// [`parse_command_with`] over borrowed arguments.
pub fn parse_command_strs(
    args: &[&str],
    restore: bool,
    table: Option<TableKind>,
    lenient: bool,
) -> (Result<Command>, Vec<String>) {
    let args: Vec<Cow<str>> = args.iter().map(|&a| Cow::Borrowed(a)).collect();
    let (parsed, warnings) = parse_args(&args, restore, table, lenient);
    (
        parsed.map(|p| {
            let mut c = p.into_command();
            c.warnings = warnings.clone();
            c
        }),
        warnings,
    )
}

/// The rules of a parsed command: one (the usual case, kept inline) or several (`-s`/`-d`
/// lists), or none (commands without a rule).
#[derive(Debug)]
pub(crate) enum Rules {
    One(Rule),
    Many(Vec<Rule>),
}

impl Rules {
    pub(crate) fn len(&self) -> usize {
        match self {
            Rules::One(_) => 1,
            Rules::Many(v) => v.len(),
        }
    }
    pub(crate) fn first(&self) -> Option<&Rule> {
        match self {
            Rules::One(r) => Some(r),
            Rules::Many(v) => v.first(),
        }
    }
    pub(crate) fn into_vec(self) -> Vec<Rule> {
        match self {
            Rules::One(r) => vec![r],
            Rules::Many(v) => v,
        }
    }
    /// Appends the rules to `to`.
    #[inline(always)]
    pub(crate) fn append_to(self, to: &mut Vec<Rule>) {
        match self {
            Rules::One(r) => to.push(r),
            Rules::Many(v) => to.extend(v),
        }
    }
}

/// A parsed invocation whose texts may still borrow from the arguments (the restore line):
/// what [`Command`] holds, without a copy of the chain name per line.
#[derive(Debug)]
pub(crate) struct Parsed<'a> {
    pub table: TableKind,
    pub cmd: Cmd,
    pub zero_too: bool,
    pub chain: Cow<'a, str>,
    pub rulenum: u32,
    pub rules: Rules,
    pub arg2: Cow<'a, str>,
    pub numeric: bool,
    pub verbose: bool,
    pub exact: bool,
    pub line_numbers: bool,
    pub counters: Option<Counters>,
}

impl Parsed<'_> {
    /// The chain a `-j`/`-g` of the rules names (all of them name the same).
    pub(crate) fn jump_chain(&self) -> Option<&str> {
        match &self.rules.first()?.target {
            Target::Jump(n) | Target::Goto(n) => Some(n),
            _ => None,
        }
    }

    /// The owned [`Command`] (without warnings).
    pub(crate) fn into_command(self) -> Command {
        let jump_chain = self.jump_chain().map(str::to_string);
        Command {
            table: self.table,
            cmd: self.cmd,
            zero_too: self.zero_too,
            chain: self.chain.into_owned(),
            rulenum: self.rulenum,
            rules: self.rules.into_vec(),
            arg2: self.arg2.into_owned(),
            numeric: self.numeric,
            verbose: self.verbose,
            exact: self.exact,
            line_numbers: self.line_numbers,
            counters: self.counters,
            jump_chain,
            warnings: Vec::new(),
        }
    }
}

/// Parses one invocation's arguments (iptables-restore's tokens or argv), keeping what it
/// can borrowed from them; also returns the warnings (printed even when parsing fails).
pub(crate) fn parse_args<'a>(
    args: &[Cow<'a, str>],
    restore: bool,
    table: Option<TableKind>,
    lenient: bool,
) -> (Result<Parsed<'a>>, Vec<String>) {
    let mut p = Parser {
        args,
        pos: 0,
        restore,
        table: table.unwrap_or(TableKind::Filter),
        table_set: table.is_some() && restore,
        cmd: None,
        zero_too: false,
        chain: Cow::Borrowed(""),
        rulenum: 0,
        arg2: Cow::Borrowed(""),
        options: 0,
        ip: IpSpec::default(),
        src_text: None,
        dst_text: None,
        proto_name: None,
        proto_used: false,
        matches: Vec::with_capacity(match_room(args)),
        seen: SeenBits::default(),
        target_at: 0,
        target_ext: None,
        jumpto: None,
        goto: false,
        counters: None,
        attached: false,
        warnings: Vec::new(),
        lenient,
    };
    let result = finish(&mut p);
    // Warnings are printed even when the command then fails (as iptables prints them while
    // parsing).
    (result, std::mem::take(&mut p.warnings))
}

/// Most matches a rule may load on the fast path ([`parse_append_fast`]).
const FAST_MATCHES: usize = 8;

/// The one address of a `-s`/`-d` value on the fast path: a numeric `addr[/mask]` without
/// a list; None for anything else (names, lists, errors), which the general path handles.
fn fast_addr(text: Option<&str>) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if let Some((a, bits)) = text.and_then(|t| plain_cidr(t.as_bytes())) {
        let mask = cidr_to_mask(bits);
        return Some((Ipv4Addr::from(a & u32::from(mask)), mask));
    }
    match text {
        None => Some((Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED)),
        Some(t) if !t.bytes().any(|b| b == b',') => {
            // The usual text, `a.b.c.d` or `a.b.c.d/N` in plain decimal, read directly; the
            // rest (octal or hex parts, short forms, dotted masks) the general way.
            let (host, bits) = match split_once_byte(t, b'/') {
                Some((h, m)) => (h, plain_decimal_byte(m).filter(|&b| b <= 32)),
                None => (t, Some(32)),
            };
            match (crate::ext::util::dotted_quad(host), bits) {
                (Some((a, false)), Some(bits)) => {
                    let mask = cidr_to_mask(bits);
                    Some((Ipv4Addr::from(u32::from(a) & u32::from(mask)), mask))
                }
                _ => parse_numeric_item(t)?.ok(),
            }
        }
        Some(_) => None,
    }
}

/// `a.b.c.d` or `a.b.c.d/N` in plain decimal (parts of one to three digits, none with a
/// leading zero, each at most 255; N at most 32), read in one pass: the address and the
/// prefix length. None for any other text (octal or hex parts, short forms, dotted masks,
/// lists, names), which the general readers take.
fn plain_cidr(t: &[u8]) -> Option<(u32, u8)> {
    let (mut addr, mut part, mut digits, mut dots) = (0u32, 0u32, 0, 0);
    let mut i = 0;
    while let Some(&c) = t.get(i) {
        match c {
            b'0'..=b'9' => {
                if digits == 3 || (digits == 1 && part == 0) {
                    return None;
                }
                part = part * 10 + u32::from(c - b'0');
                digits += 1;
            }
            b'.' if digits > 0 && part <= 255 && dots < 3 => {
                addr = addr << 8 | part;
                (part, digits, dots) = (0, 0, dots + 1);
            }
            b'/' => break,
            _ => return None,
        }
        i += 1;
    }
    if dots != 3 || digits == 0 || part > 255 {
        return None;
    }
    let bits = match t.get(i + 1..) {
        None => 32,
        Some(m) => plain_decimal_byte(std::str::from_utf8(m).ok()?).filter(|&b| b <= 32)?,
    };
    Some((addr << 8 | part, bits))
}

/// The usual restore line, `-A CHAIN` followed by `-s -d -p -i -o ! -m -j -g` and long
/// options that the extension loaded last owns by their exact name, parsed without the
/// getopt emulation: the same rule [`parse_args`] makes, or None whenever the line holds
/// anything else or anything fails (the general path then parses it and reports the error).
/// `args` may start with `--set-counters P B` (iptables-restore -c).
///
/// Why it is the same: getopt looks an exact long name up in the base options first, then
/// in the extensions newest first, so a name the base does not have and the newest
/// extension has is that extension's; every other step (option bits, `!` rules, the
/// extensions' own parsers and final checks, the address and target rules of `finish`) is
/// done here in the same order with the same functions.
pub(crate) fn parse_append_fast<'a>(args: &[Cow<'a, str>], table: TableKind) -> Option<Parsed<'a>> {
    let mut i = 0;
    let mut counters = None;
    let mut options = 0u16;
    if args.first().is_some_and(|a| a == "--set-counters") {
        // `-c P B` with plain decimal numbers (the only form iptables-restore passes on
        // that parses; sscanf's overflow reads as the largest value).
        let num = |s: &Cow<str>| {
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<u64>().unwrap_or(u64::MAX))
        };
        counters = Some(Counters {
            packets: num(args.get(1)?)?,
            bytes: num(args.get(2)?)?,
        });
        options |= O_COUNTERS;
        i = 3;
    }
    if args.get(i).map(|a| &**a) != Some("-A") {
        return None;
    }
    let chain = args.get(i + 1)?.clone();
    if chain.len() >= 29 || chain.starts_with(['-', '!']) {
        return None;
    }
    i += 2;
    let mut ip = IpSpec::default();
    let mut src_text: Option<&str> = None;
    let mut dst_text: Option<&str> = None;
    // The rule's matches, in one allocation of their number (made at the first `-m`).
    let mut matches: Vec<Match> = Vec::new();
    let mut seen = [0u64; FAST_MATCHES];
    let mut n: usize = 0;
    let mut target_ext: Option<TargetExt> = None;
    let mut target_seen = 0u64;
    let mut target_at = 0;
    let mut jumpto: Option<Cow<'a, str>> = None;
    let mut goto = false;
    let mut invert = false;
    while let Some(tok) = args.get(i) {
        i += 1;
        let t: &str = tok;
        if t == "!" {
            if invert {
                return None;
            }
            invert = true;
            continue;
        }
        if let Some(long) = t.strip_prefix("--") {
            // An extension's option, by its exact name, owned by the newest extension. (No
            // extension option is named as a base option, nor holds a `=`: tested.)
            let target_newest = target_ext.is_some() && target_at == n;
            let opts = if target_newest {
                target_ext.as_ref()?.options()
            } else {
                matches.get(n.checked_sub(1)?)?.options()
            };
            let k = opts.iter().position(|o| o.name == long)?;
            let opt = opts[k];
            let arg: &str = match opt.arg {
                Arg::None | Arg::Optional => "",
                Arg::Required => {
                    i += 1;
                    args.get(i - 1)?
                }
                Arg::Two => return None,
            };
            let done = if target_newest {
                target_seen
            } else {
                seen[n - 1]
            };
            if (invert && !opt.invert) || (done & (1 << k) != 0 && !opt.multi) {
                return None;
            }
            let cx = OptCtx {
                ip: &ip,
                invert,
                seen: done,
                table,
            };
            if target_newest {
                target_ext.as_mut()?.parse(k, arg, &cx).ok()?;
                target_seen |= 1 << k;
            } else {
                matches[n - 1].parse(k, arg, &cx).ok()?;
                seen[n - 1] |= 1 << k;
            }
            invert = false;
            continue;
        }
        // A short option on its own, with its value in the next argument.
        let b = t.as_bytes();
        if b.len() != 2 || b[0] != b'-' {
            return None;
        }
        let value = args.get(i)?;
        i += 1;
        let bit = match b[1] {
            b's' => O_SOURCE,
            b'd' => O_DEST,
            b'p' => O_PROTO,
            b'i' => O_VIAIN,
            b'o' => O_VIAOUT,
            b'j' | b'g' => O_JUMP,
            b'm' => 0,
            _ => return None,
        };
        if options & bit != 0 || (invert && matches!(b[1], b'j' | b'g' | b'm')) {
            return None;
        }
        options |= bit;
        match b[1] {
            b's' => {
                ip.inv_src = invert;
                src_text = Some(value);
            }
            b'd' => {
                ip.inv_dst = invert;
                dst_text = Some(value);
            }
            b'p' => {
                if value.bytes().any(|b| b.is_ascii_uppercase()) {
                    return None;
                }
                ip.proto = parse_protocol(value).ok()?;
                ip.inv_proto = invert;
                if ip.proto == 0 && invert {
                    return None;
                }
            }
            b'i' | b'o' => {
                if value.len() >= 16 || value.contains(['/', ' ']) {
                    return None;
                }
                let iface = Iface {
                    name: value.to_string(),
                    invert,
                };
                if b[1] == b'i' {
                    ip.in_iface = iface;
                } else {
                    ip.out_iface = iface;
                }
            }
            b'j' | b'g' => {
                if value.is_empty()
                    || value.len() >= 29
                    || value.bytes().any(|b| b.is_ascii_whitespace())
                {
                    return None;
                }
                goto = b[1] == b'g';
                if let Some(t) = TargetExt::new(value) {
                    target_ext = Some(t.ok()?);
                    target_at = n;
                } else if crate::ext::KNOWN_UNSUPPORTED_TARGETS.contains(&&**value) {
                    return None;
                }
                jumpto = Some(value.clone());
            }
            _ => {
                if n == FAST_MATCHES {
                    return None;
                }
                let m = Match::new(value)?.ok()?;
                if n == 0 {
                    matches.reserve_exact(count_match_options(&args[i..]) + 1);
                }
                matches.push(m);
                n += 1;
            }
        }
        invert = false;
    }
    if invert {
        return None;
    }
    for (m, s) in matches.iter_mut().zip(seen) {
        m.final_check(s, &ip).ok()?;
    }
    if let Some(t) = target_ext.as_mut() {
        t.final_check(target_seen, &ip).ok()?;
    }
    if (matches!(&*chain, "PREROUTING" | "INPUT") && options & O_VIAOUT != 0)
        || (matches!(&*chain, "POSTROUTING" | "OUTPUT") && options & O_VIAIN != 0)
    {
        return None;
    }
    // Without `-s`/`-d` the address and mask stay 0.0.0.0 (IpSpec's default).
    if src_text.is_some() {
        (ip.src, ip.src_mask) = fast_addr(src_text)?;
    }
    if dst_text.is_some() {
        (ip.dst, ip.dst_mask) = fast_addr(dst_text)?;
    }
    let target = match (target_ext, jumpto) {
        (Some(_), _) if goto => return None,
        (Some(t), _) => Target::Ext(t),
        (None, None) => Target::None,
        (None, Some(name)) => match &*name {
            "ACCEPT" if !goto => Target::Accept,
            "DROP" if !goto => Target::Drop,
            "RETURN" if !goto => Target::Return,
            "QUEUE" => return None,
            _ if goto => Target::Goto(name.into_owned()),
            _ => Target::Jump(name.into_owned()),
        },
    };
    Some(Parsed {
        table,
        cmd: Cmd::Append,
        zero_too: false,
        chain,
        rulenum: 0,
        rules: Rules::One(Rule {
            ip,
            matches,
            target,
            counters: counters.unwrap_or_default(),
        }),
        arg2: Cow::Borrowed(""),
        numeric: false,
        verbose: false,
        exact: false,
        line_numbers: false,
        counters,
    })
}

/// How many of `args` are `-m` (the fast path's only way to load a match).
fn count_match_options(args: &[Cow<str>]) -> usize {
    args.iter().filter(|a| a.as_bytes() == b"-m").count()
}

/// Room for the `-m` options plus the protocol's implicit match, so a rule's matches take
/// one allocation of the size they need.
fn match_room(args: &[Cow<str>]) -> usize {
    let (mut m, mut p) = (0, 0);
    for a in args {
        match a.as_bytes() {
            b"-m" | b"--match" => m += 1,
            b"-p" | b"--protocol" => p = 1,
            _ => {}
        }
    }
    m + p
}

fn finish<'a>(p: &mut Parser<'a, '_>) -> Result<Parsed<'a>> {
    p.run()?;
    let Some(cmd) = p.cmd else {
        return Err(Error::param("no command specified"));
    };
    // Extension final checks (x6_fcheck), matches then target.
    for (i, m) in p.matches.iter_mut().enumerate() {
        m.final_check(p.seen.get(i), &p.ip)?;
    }
    if let Some((t, l)) = p.target_ext.as_mut() {
        t.final_check(l.seen, &p.ip)?;
    }
    // Generic options allowed with this command.
    let bad = p.options & illegal_options(cmd);
    if bad != 0 {
        let c = OPT_CHARS[bad.trailing_zeros() as usize];
        return Err(Error::param(format!(
            "Illegal option `-{c}' with this command"
        )));
    }
    if p.chain.len() >= 29 {
        return Err(Error::param(format!(
            "chain name `{}' too long (must be under 29 chars)",
            p.chain
        )));
    }
    let mut rules = Rules::Many(Vec::new());
    if cmd.has_rule() {
        if matches!(&*p.chain, "PREROUTING" | "INPUT") && p.options & O_VIAOUT != 0 {
            return Err(Error::param(format!("Can't use -o with {}\n", p.chain)));
        }
        if matches!(&*p.chain, "POSTROUTING" | "OUTPUT") && p.options & O_VIAIN != 0 {
            return Err(Error::param(format!("Can't use -i with {}\n", p.chain)));
        }
        let srcs = Addrs::of(p.src_text.as_deref())?;
        let dsts = Addrs::of(p.dst_text.as_deref())?;
        let (srcs, dsts) = (srcs.as_slice(), dsts.as_slice());
        if (srcs.len() > 1 || dsts.len() > 1) && (p.ip.inv_src || p.ip.inv_dst) {
            return Err(Error::param(
                "! not allowed with multiple source or destination IP addresses",
            ));
        }
        if cmd == Cmd::Replace && (srcs.len() != 1 || dsts.len() != 1) {
            return Err(Error::param(
                "Replacement rule does not specify a unique address",
            ));
        }
        let target = match (&p.target_ext, &p.jumpto) {
            (Some(_), _) => {
                if p.goto {
                    return Err(Error::param(format!(
                        "goto '{}' is not a chain",
                        p.jumpto.as_deref().unwrap_or_default()
                    )));
                }
                Target::Ext(p.target_ext.take().unwrap().0)
            }
            (None, None) => Target::None,
            (None, Some(name)) => match &**name {
                "ACCEPT" if !p.goto => Target::Accept,
                "DROP" if !p.goto => Target::Drop,
                "RETURN" if !p.goto => Target::Return,
                "QUEUE" => return Err(crate::ext::unsupported_target("QUEUE")),
                _ => {
                    let name = p.jumpto.take().unwrap_or_default().into_owned();
                    if p.goto {
                        Target::Goto(name)
                    } else {
                        Target::Jump(name)
                    }
                }
            },
        };
        let matches: Vec<Match> = std::mem::take(&mut p.matches);
        let counters = p.counters.unwrap_or_default();
        if srcs.len() == 1 && dsts.len() == 1 {
            // The usual case: one rule, built without copies.
            let mut ip = std::mem::take(&mut p.ip);
            (ip.src, ip.src_mask) = srcs[0];
            (ip.dst, ip.dst_mask) = dsts[0];
            rules = Rules::One(Rule {
                ip,
                matches,
                target,
                counters,
            });
        } else {
            let mut many = Vec::with_capacity(srcs.len() * dsts.len());
            for (s, sm) in srcs {
                for (d, dm) in dsts {
                    let mut ip = p.ip.clone();
                    ip.src = *s;
                    ip.src_mask = *sm;
                    ip.dst = *d;
                    ip.dst_mask = *dm;
                    many.push(Rule {
                        ip,
                        matches: matches.clone(),
                        target: target.clone(),
                        counters,
                    });
                }
            }
            rules = Rules::Many(many);
        }
    }
    Ok(Parsed {
        table: p.table,
        cmd,
        zero_too: p.zero_too,
        chain: std::mem::take(&mut p.chain),
        rulenum: p.rulenum,
        rules,
        arg2: std::mem::take(&mut p.arg2),
        numeric: p.options & O_NUMERIC != 0,
        verbose: p.options & O_VERBOSE != 0,
        exact: p.options & O_EXPANDED != 0,
        line_numbers: p.options & O_LINENUMBERS != 0,
        counters: p.counters,
    })
}

/// Parses the rule part of `-A CHAIN ARGS` for tests and tools: returns the one rule.
pub fn parse_rule(table: TableKind, chain: &str, args: &[&str]) -> Result<Rule> {
    let mut v: Vec<String> = vec!["-A".into(), chain.into()];
    v.extend(args.iter().map(|s| s.to_string()));
    let c = parse_command(&v, false, Some(table))?;
    c.rules
        .into_iter()
        .next()
        .ok_or_else(|| Error::other("no rule"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::save::rule_save_line;

    /// Save form of `-A INPUT args`, or the error text.
    fn run(args: &str) -> std::result::Result<String, String> {
        let a: Vec<&str> = args.split_whitespace().collect();
        parse_rule(TableKind::Filter, "INPUT", &a)
            .map(|r| rule_save_line("INPUT", &r))
            .map_err(|e| e.msg)
    }

    #[test]
    fn test_base_exact_covers_the_base_table() {
        for e in BASE_OPTS {
            assert_eq!(base_exact(e.0).map(|x| x.0), Some(e.0));
        }
        for n in ["", "appen", "appendx", "dport", "Append"] {
            assert!(base_exact(n).is_none(), "{n}");
        }
    }

    #[test]
    fn test_plain_cidr_reads_as_the_general_readers() {
        // Every text the one-pass reader takes, the general one reads the same; what it
        // leaves is left to the general one.
        let parts = [
            "0", "1", "9", "10", "01", "255", "256", "099", "1000", "", "0x1", "a",
        ];
        let masks = ["", "/0", "/8", "/32", "/33", "/08", "/", "/255.0.0.0", "/x"];
        let mut taken = 0;
        for a in parts {
            for b in ["0", "10", "255", "256", "07"] {
                for m in masks {
                    for t in [
                        format!("{a}.{b}.3.{a}{m}"),
                        format!("{a}.{b}{m}"),
                        format!("{a}.1.2.3.4{m}"),
                    ] {
                        let Some((addr, bits)) = plain_cidr(t.as_bytes()) else {
                            continue;
                        };
                        taken += 1;
                        let mask = cidr_to_mask(bits);
                        let want = parse_numeric_item(&t).unwrap().unwrap();
                        assert_eq!((Ipv4Addr::from(addr & u32::from(mask)), mask), want, "{t}");
                    }
                }
            }
        }
        assert!(taken > 50, "{taken}");
        assert_eq!(plain_cidr(b"172.30.0.48"), Some((0xac1e_0030, 32)));
        assert_eq!(plain_cidr(b"10.0.0.0/8"), Some((0x0a00_0000, 8)));
        for t in [
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3",
            "1..2.3",
            "1.2.3.4,5.6.7.8",
            "1.2.3.4/",
        ] {
            assert_eq!(plain_cidr(t.as_bytes()), None, "{t}");
        }
    }

    #[test]
    fn test_no_extension_option_is_named_as_a_base_option() {
        // The fast path relies on it: an exact extension option name never means a base
        // option, and never carries an attached `=value`.
        let mut options: Vec<crate::ext::Opt> = Vec::new();
        for n in Match::NAMES {
            if let Some(Ok(m)) = Match::new(n) {
                options.extend(m.options());
            }
        }
        for n in TargetExt::NAMES {
            if let Some(Ok(t)) = TargetExt::new(n) {
                options.extend(t.options());
            }
        }
        assert!(options.len() > 100);
        for o in options {
            assert!(base_exact(o.name).is_none(), "{}", o.name);
            assert!(!o.name.is_empty() && !o.name.contains('='), "{}", o.name);
        }
    }

    // Every expectation below was measured with iptables-legacy 1.8.9 in a namespace.
    #[test]
    fn test_getopt_dispatch() {
        // An abbreviation resolves against the newest extension that has it.
        assert_eq!(
            run("-p tcp -m multiport --dport 80").unwrap(),
            "-A INPUT -p tcp -m multiport --dports 80"
        );
        assert_eq!(
            run("-p tcp --sp 22").unwrap(),
            "-A INPUT -p tcp -m tcp --sport 22"
        );
        // Implicit protocol match loaded where the first unknown option appears.
        assert_eq!(
            run("-p tcp --dport 80 -m multiport --dports 1,2").unwrap(),
            "-A INPUT -p tcp -m tcp --dport 80 -m multiport --dports 1,2"
        );
        assert_eq!(
            run("-p tcp -m comment --comment x --dport 5").unwrap(),
            "-A INPUT -p tcp -m comment --comment x -m tcp --dport 5"
        );
        assert_eq!(
            run("-p icmp --icmp echo-request").unwrap(),
            "-A INPUT -p icmp -m icmp --icmp-type 8"
        );
        assert_eq!(
            run("-p tcp --syn ! --dport 22").unwrap(),
            "-A INPUT -p tcp -m tcp ! --dport 22 --tcp-flags FIN,SYN,RST,ACK SYN"
        );
        assert_eq!(
            run("-m comment --comment a -m comment --comment b").unwrap(),
            "-A INPUT -m comment --comment a -m comment --comment b"
        );
        // Ambiguous with base options (--destination, --dst, --delete...): unknown.
        assert_eq!(run("-p tcp --d 22").unwrap_err(), "unknown option \"--d\"");
    }

    #[test]
    fn test_parse_protocol_names_and_numbers() {
        assert_eq!(parse_protocol("tcp").unwrap(), 6);
        assert_eq!(parse_protocol("udp").unwrap(), 17);
        assert_eq!(parse_protocol("icmp").unwrap(), 1);
        assert_eq!(parse_protocol("all").unwrap(), 0);
        assert_eq!(parse_protocol("17").unwrap(), 17);
        assert_eq!(
            parse_protocol("tcpx").unwrap_err().msg,
            "unknown protocol \"tcpx\" specified"
        );
    }

    #[test]
    fn test_option_repeats() {
        assert_eq!(
            run("-p tcp -m multiport --dports 1,2 --dport 80").unwrap_err(),
            "multiport: option \"--destination-ports\" can only be used once.\n"
        );
        assert_eq!(
            run("-p tcp -m multiport --sports 1 --dports 2").unwrap_err(),
            "multiport: option \"--source-ports\" cannot be used together with \"--destination-ports\".\n"
        );
        assert_eq!(
            run("-p tcp -m tcp --sport 1 --source-port 2").unwrap_err(),
            "Only one `--source-port' allowed"
        );
        assert_eq!(
            run("-p tcp --syn --tcp-flags ACK ACK").unwrap_err(),
            "Only one of `--syn' or `--tcp-flags'  allowed"
        );
        assert_eq!(
            run("-p udp -m udp --sport 1 --sport 2").unwrap_err(),
            "udp: option \"--source-port\" can only be used once.\n"
        );
    }
}
