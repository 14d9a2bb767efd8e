//! The canonical result text (SCENARIOS.md, "Results"): the model both producers (the kernel
//! oracle and replay) fill, its printer and parser, and the comparison that tells where two
//! results first part ways.
//!
//! Placeholders for random choices (`rand1`, `rand2`, ... for NAT ports, `*` for IP ids of
//! packets the host generated) match any value on the other side, provided every use of one
//! `randN` stands for the same value and different `randN` for different values.

use std::collections::HashMap;
use std::fmt;

/// One thing an input packet caused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A frame the host emitted on `dev`, printed in the packet syntax.
    Out { dev: String, packet: String },
    /// A packet delivered to the host itself (after INPUT), as delivered.
    Local(String),
    /// A kernel log line, verbatim, without its timestamp.
    Log(String),
    /// Nothing happened.
    Dropped,
    /// A fragment the host holds for reassembly.
    Queued,
    /// Caused by a timer between this packet and the next.
    Late(Box<Event>),
}

impl Event {
    /// Rank in the canonical order of one packet's events: out, local, log, then the markers,
    /// then late events.
    fn rank(&self) -> u8 {
        match self {
            Event::Out { .. } => 0,
            Event::Local(_) => 1,
            Event::Log(_) => 2,
            Event::Dropped | Event::Queued => 3,
            Event::Late(_) => 4,
        }
    }

    /// Whether this is an `out`, `local` or `log` event of the packet itself.
    pub fn is_direct(&self) -> bool {
        matches!(self, Event::Out { .. } | Event::Local(_) | Event::Log(_))
    }

    fn parse(s: &str) -> Result<Event, String> {
        if s == "(dropped)" {
            return Ok(Event::Dropped);
        }
        if s == "(queued for reassembly)" {
            return Ok(Event::Queued);
        }
        if let Some(rest) = s.strip_prefix("late ") {
            let inner = Event::parse(rest)?;
            if !inner.is_direct() {
                return Err(format!("`late` takes out/local/log, got `{rest}`"));
            }
            return Ok(Event::Late(Box::new(inner)));
        }
        if let Some(rest) = s.strip_prefix("out ") {
            let (dev, packet) = rest
                .split_once(' ')
                .ok_or_else(|| format!("`out` needs a device and a packet: `{s}`"))?;
            return Ok(Event::Out {
                dev: dev.to_string(),
                packet: packet.to_string(),
            });
        }
        if let Some(rest) = s.strip_prefix("local ") {
            return Ok(Event::Local(rest.to_string()));
        }
        if let Some(rest) = s.strip_prefix("log ") {
            return Ok(Event::Log(rest.to_string()));
        }
        Err(format!("unknown event `{s}`"))
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Out { dev, packet } => write!(f, "out {dev} {packet}"),
            Event::Local(p) => write!(f, "local {p}"),
            Event::Log(l) => write!(f, "log {l}"),
            Event::Dropped => f.write_str("(dropped)"),
            Event::Queued => f.write_str("(queued for reassembly)"),
            Event::Late(e) => write!(f, "late {e}"),
        }
    }
}

/// One input packet and what it caused.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PacketResult {
    /// The input line as written (trimmed), or a capture's frame decoded with its time.
    pub input: String,
    /// Its events in canonical order (see [`PacketResult::finish`]).
    pub events: Vec<Event>,
}

impl PacketResult {
    /// Puts the events in canonical order and adds the marker when nothing direct happened:
    /// `out` lines in interface order (`interfaces`, the host's file order; frames of one
    /// interface in emission order), then `local`, then `log` (each in order of occurrence),
    /// then `(queued for reassembly)` if `queued` else `(dropped)` when the packet neither left
    /// nor was delivered (no `out`, no `local`; a `log` line may precede the marker), then `late`
    /// events in order of occurrence.
    pub fn finish(&mut self, interfaces: &[&str], queued: bool) {
        self.events
            .retain(|e| !matches!(e, Event::Dropped | Event::Queued));
        let pos = |d: &str| {
            interfaces
                .iter()
                .position(|i| *i == d)
                .unwrap_or(usize::MAX)
        };
        // A stable sort keeps the order of occurrence inside each class.
        self.events.sort_by_key(|e| match e {
            Event::Out { dev, .. } => (0u8, pos(dev)),
            other => (other.rank(), 0),
        });
        // The packet went nowhere (log lines alone do not count: the kernel logs and drops).
        if !self
            .events
            .iter()
            .any(|e| matches!(e, Event::Out { .. } | Event::Local(_)))
        {
            let at = self
                .events
                .iter()
                .position(|e| matches!(e, Event::Late(_)))
                .unwrap_or(self.events.len());
            self.events.insert(
                at,
                if queued {
                    Event::Queued
                } else {
                    Event::Dropped
                },
            );
        }
    }
}

/// A whole result: what one run of a scenario produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunResult {
    /// The scenario's description.
    pub description: String,
    /// `# note:` lines (without the prefix).
    pub notes: Vec<String>,
    /// One entry per input packet, in input order.
    pub packets: Vec<PacketResult>,
    /// `conntrack -L -o extended` lines, timeout column removed, sorted.
    pub conntrack: Vec<String>,
    /// `conntrack -L expect` lines, timeout column removed, sorted.
    pub expect: Vec<String>,
    /// `iptables-save -c` lines without comment lines.
    pub iptables_save: Vec<String>,
}

/// An error reading result text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ResultParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.msg)
    }
}

impl std::error::Error for ResultParseError {}

impl RunResult {
    /// The canonical text.
    pub fn to_text(&self) -> String {
        self.to_string()
    }

    /// Reads canonical text back.
    pub fn parse(text: &str) -> Result<RunResult, ResultParseError> {
        #[derive(PartialEq)]
        enum Sec {
            Packets,
            Conntrack,
            Expect,
            Save,
        }
        let mut r = RunResult::default();
        let mut sec = Sec::Packets;
        let mut saw_description = false;
        for (i, line) in text.lines().enumerate() {
            let err = |msg: String| ResultParseError { line: i + 1, msg };
            match line {
                "== conntrack" => {
                    sec = Sec::Conntrack;
                    continue;
                }
                "== expect" => {
                    sec = Sec::Expect;
                    continue;
                }
                "== iptables-save -c" => {
                    sec = Sec::Save;
                    continue;
                }
                _ => {}
            }
            match sec {
                Sec::Conntrack => r.conntrack.push(line.to_string()),
                Sec::Expect => r.expect.push(line.to_string()),
                Sec::Save => r.iptables_save.push(line.to_string()),
                Sec::Packets => {
                    if i == 0 {
                        let d = line
                            .strip_prefix("# ")
                            .or_else(|| line.strip_prefix('#'))
                            .ok_or_else(|| err("first line must be `# <description>`".into()))?;
                        r.description = d.to_string();
                        saw_description = true;
                    } else if let Some(n) = line.strip_prefix("# note: ") {
                        if !r.packets.is_empty() {
                            return Err(err("`# note:` lines come before the packets".into()));
                        }
                        r.notes.push(n.to_string());
                    } else if let Some(ev) = line.strip_prefix("  ") {
                        let p = r
                            .packets
                            .last_mut()
                            .ok_or_else(|| err("an event before any input packet".into()))?;
                        p.events.push(Event::parse(ev).map_err(err)?);
                    } else if line.is_empty() || line.starts_with(' ') || line.starts_with("==") {
                        return Err(err(format!("unexpected line `{line}`")));
                    } else {
                        r.packets.push(PacketResult {
                            input: line.to_string(),
                            events: Vec::new(),
                        });
                    }
                }
            }
        }
        if !saw_description {
            return Err(ResultParseError {
                line: 1,
                msg: "empty result".into(),
            });
        }
        if sec != Sec::Save {
            return Err(ResultParseError {
                line: text.lines().count(),
                msg: "missing `== conntrack`, `== expect` or `== iptables-save -c` section".into(),
            });
        }
        Ok(r)
    }
}

impl fmt::Display for RunResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "# {}", self.description)?;
        for n in &self.notes {
            writeln!(f, "# note: {n}")?;
        }
        for p in &self.packets {
            writeln!(f, "{}", p.input)?;
            for e in &p.events {
                writeln!(f, "  {e}")?;
            }
        }
        writeln!(f, "== conntrack")?;
        for l in &self.conntrack {
            writeln!(f, "{l}")?;
        }
        writeln!(f, "== expect")?;
        for l in &self.expect {
            writeln!(f, "{l}")?;
        }
        writeln!(f, "== iptables-save -c")?;
        for l in &self.iptables_save {
            writeln!(f, "{l}")?;
        }
        Ok(())
    }
}

/// Where two results part ways, ready to print for a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// A readable account: the first divergent packet (its input line, expected and actual
    /// events) or the first divergent section.
    pub report: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.report)
    }
}

impl std::error::Error for Mismatch {}

/// Placeholder bindings built up while comparing: `randN` of the expected side to the value
/// (or placeholder) on the actual side, and back.
#[derive(Default)]
struct Bindings {
    fwd: HashMap<String, String>,
    back: HashMap<String, String>,
}

/// Splits a token into (prefix, placeholder, suffix) when it holds a placeholder: `randN`
/// (N digits) or a `*` standing alone or after `=`, `:`, `"` (and not followed by a letter or
/// digit, so `*nat` is no placeholder).
fn split_placeholder(tok: &str) -> Option<(&str, &str, &str)> {
    let b = tok.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let boundary = i == 0 || matches!(b[i - 1], b'=' | b':' | b'"');
        if boundary && tok[i..].starts_with("rand") {
            let mut j = i + 4;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let ends = j == b.len() || !b[j].is_ascii_alphanumeric();
            if j > i + 4 && ends {
                return Some((&tok[..i], &tok[i..j], &tok[j..]));
            }
        }
        let star_ends = i + 1 == b.len() || !b[i + 1].is_ascii_alphanumeric();
        if boundary && b[i] == b'*' && star_ends {
            return Some((&tok[..i], &tok[i..i + 1], &tok[i + 1..]));
        }
        i += 1;
    }
    None
}

fn is_value(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

fn is_rand(s: &str) -> bool {
    s.len() > 4 && s.starts_with("rand") && is_value(&s[4..])
}

impl Bindings {
    fn token_matches(&mut self, exp: &str, act: &str) -> bool {
        if exp == act {
            // Placeholders written identically on both sides still have to be consistent.
            if let Some((_, ph, _)) = split_placeholder(exp) {
                if is_rand(ph) {
                    return self.bind(ph, ph);
                }
            }
            return true;
        }
        let Some((pre, ph, suf)) = split_placeholder(exp) else {
            // The actual side may hold the placeholder (an expected value against a masked
            // actual): check symmetrically.
            if let Some((pre, ph, suf)) = split_placeholder(act) {
                return match_masked(act, exp, pre, ph, suf, true, self);
            }
            return false;
        };
        match_masked(exp, act, pre, ph, suf, false, self)
    }

    fn bind(&mut self, exp: &str, act: &str) -> bool {
        match self.fwd.get(exp) {
            Some(v) => v == act,
            None => {
                if let Some(e) = self.back.get(act) {
                    if e != exp {
                        return false;
                    }
                }
                self.fwd.insert(exp.to_string(), act.to_string());
                self.back.insert(act.to_string(), exp.to_string());
                true
            }
        }
    }
}

fn match_masked(
    _masked: &str,
    other: &str,
    pre: &str,
    ph: &str,
    suf: &str,
    swapped: bool,
    b: &mut Bindings,
) -> bool {
    if other.len() < pre.len() + suf.len() || !other.starts_with(pre) || !other.ends_with(suf) {
        return false;
    }
    let val = &other[pre.len()..other.len() - suf.len()];
    if ph == "*" {
        return is_value(val) || val == "*";
    }
    if !(is_value(val) || is_rand(val)) {
        return false;
    }
    if swapped {
        b.bind(val, ph)
    } else {
        b.bind(ph, val)
    }
}

/// Whether line `exp` matches line `act` token by token under the placeholder rules.
fn line_matches(exp: &str, act: &str, b: &mut Bindings) -> bool {
    if exp == act && split_placeholder_any(exp).is_none() {
        return true;
    }
    let e: Vec<&str> = exp.split(' ').collect();
    let a: Vec<&str> = act.split(' ').collect();
    e.len() == a.len() && e.iter().zip(&a).all(|(x, y)| b.token_matches(x, y))
}

fn split_placeholder_any(line: &str) -> Option<()> {
    line.split(' ')
        .any(|t| split_placeholder(t).is_some())
        .then_some(())
}

fn events_text(events: &[Event]) -> String {
    let mut s = String::new();
    for e in events {
        s.push_str("    ");
        s.push_str(&e.to_string());
        s.push('\n');
    }
    if events.is_empty() {
        s.push_str("    (nothing)\n");
    }
    s
}

fn section_mismatch(
    name: &str,
    exp: &[String],
    act: &[String],
    b: &mut Bindings,
) -> Option<String> {
    let n = exp.len().max(act.len());
    for i in 0..n {
        let (e, a) = (exp.get(i), act.get(i));
        let ok = match (e, a) {
            (Some(e), Some(a)) => line_matches(e, a, b),
            _ => false,
        };
        if !ok {
            let mut s = format!("section `{name}` differs at its line {}:\n", i + 1);
            s.push_str(&format!(
                "  expected: {}\n",
                e.map(String::as_str).unwrap_or("(no line)")
            ));
            s.push_str(&format!(
                "  actual:   {}\n",
                a.map(String::as_str).unwrap_or("(no line)")
            ));
            s.push_str("expected section:\n");
            for l in exp {
                s.push_str(&format!("    {l}\n"));
            }
            s.push_str("actual section:\n");
            for l in act {
                s.push_str(&format!("    {l}\n"));
            }
            return Some(s);
        }
    }
    None
}

/// Compares an expected result (usually the kernel's golden) with an actual one. On a mismatch
/// the report names the first divergent packet (input line, expected and actual events) or the
/// first divergent section.
pub fn compare(expected: &RunResult, actual: &RunResult) -> Result<(), Mismatch> {
    let mut b = Bindings::default();
    let fail = |report: String| Err(Mismatch { report });
    if expected.description != actual.description {
        return fail(format!(
            "description differs:\n  expected: {}\n  actual:   {}\n",
            expected.description, actual.description
        ));
    }
    let n = expected.packets.len().max(actual.packets.len());
    for i in 0..n {
        let (Some(e), Some(a)) = (expected.packets.get(i), actual.packets.get(i)) else {
            return fail(format!(
                "packet count differs: expected {} packets, actual {}\n",
                expected.packets.len(),
                actual.packets.len()
            ));
        };
        let same_input = e.input == a.input;
        let same_events = e.events.len() == a.events.len()
            && e.events
                .iter()
                .zip(&a.events)
                .all(|(x, y)| line_matches(&x.to_string(), &y.to_string(), &mut b));
        if !same_input || !same_events {
            let mut s = format!("first divergent packet: #{}\n  {}\n", i + 1, e.input);
            if !same_input {
                s.push_str(&format!("  (actual input line: {})\n", a.input));
            }
            s.push_str("  expected:\n");
            s.push_str(&events_text(&e.events));
            s.push_str("  actual:\n");
            s.push_str(&events_text(&a.events));
            return fail(s);
        }
    }
    for (name, e, a) in [
        ("conntrack", &expected.conntrack, &actual.conntrack),
        ("expect", &expected.expect, &actual.expect),
        (
            "iptables-save -c",
            &expected.iptables_save,
            &actual.iptables_save,
        ),
    ] {
        if let Some(s) = section_mismatch(name, e, a, &mut b) {
            return fail(s);
        }
    }
    if let Some(s) = section_mismatch("notes", &expected.notes, &actual.notes, &mut b) {
        return fail(s);
    }
    Ok(())
}

/// [`compare`] on texts; a text that does not parse is a mismatch saying why.
pub fn compare_text(expected: &str, actual: &str) -> Result<(), Mismatch> {
    let e = RunResult::parse(expected).map_err(|e| Mismatch {
        report: format!("expected result does not parse: {e}\n"),
    })?;
    let a = RunResult::parse(actual).map_err(|e| Mismatch {
        report: format!("actual result does not parse: {e}\n"),
    })?;
    compare(&e, &a)
}

#[cfg(test)]
mod tests;
