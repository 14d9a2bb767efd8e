//! `-m u32 [!] --u32 tests` (xt_u32): reads 32-bit big-endian words at offsets of the packet
//! (from the IP header), shifts/masks them, follows `@` pointers, and compares the result with
//! value ranges. Up to 10 tests joined by `&&`, each with up to 10 numbers and 10 ranges.

use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// XT_U32_MAXSIZE: tests per rule, numbers per location, ranges per test.
pub const MAX: usize = 10;

/// The operator before a location number (XT_U32_AND/LEFTSH/RIGHTSH/AT).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum U32Op {
    And,
    Shl,
    Shr,
    At,
}

/// One test: `location = ranges`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct U32Test {
    /// The first offset.
    pub start: u32,
    /// Then operators with their numbers.
    pub ops: Vec<(U32Op, u32)>,
    /// Inclusive value ranges; the test passes when the value falls in one.
    pub ranges: Vec<(u32, u32)>,
}

/// struct xt_u32.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct U32 {
    pub tests: Vec<U32Test>,
    pub invert: bool,
}

fn err(msg: String) -> Error {
    Error::param(format!("u32: {msg}"))
}

/// xtables_strtoui at byte `i` of `s` (base 0, leading blanks and a sign allowed as strtoull
/// allows them); returns the value and the index after it. `pos` is the position reported.
fn number(s: &[u8], i: usize, pos: usize) -> Result<(u32, usize)> {
    let bad = || err(format!("at char {pos}: not a number or out of range"));
    let mut j = i;
    while j < s.len() && s[j].is_ascii_whitespace() {
        j += 1;
    }
    let mut neg = false;
    if j < s.len() && (s[j] == b'+' || s[j] == b'-') {
        neg = s[j] == b'-';
        j += 1;
    }
    let (radix, digits_from) = if s.get(j) == Some(&b'0')
        && matches!(s.get(j + 1), Some(b'x' | b'X'))
        && s.get(j + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        (16, j + 2)
    } else if s.get(j) == Some(&b'0') {
        (8, j)
    } else {
        (10, j)
    };
    let mut k = digits_from;
    let mut v: u64 = 0;
    let mut overflow = false;
    while let Some(d) = s.get(k).and_then(|&c| (c as char).to_digit(radix)) {
        v = match v
            .checked_mul(radix as u64)
            .and_then(|v| v.checked_add(d as u64))
        {
            Some(v) => v,
            None => {
                overflow = true;
                u64::MAX
            }
        };
        k += 1;
    }
    if k == digits_from {
        return Err(bad());
    }
    // A negated non-zero value wraps to a huge unsigned one: out of range.
    if overflow || (neg && v != 0) || v > u32::MAX as u64 {
        return Err(bad());
    }
    Ok((v as u32, k))
}

/// libxt_u32's parser: state 0 reads the location, state 1 the value ranges.
fn parse_tests(arg: &str) -> Result<Vec<U32Test>> {
    let s = arg.as_bytes();
    let mut tests = Vec::new();
    let mut cur = U32Test::default();
    let mut nloc = 0usize;
    let mut reading_values = false;
    let mut i = 0usize;
    loop {
        while i < s.len() && s[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= s.len() {
            if !reading_values {
                return Err(err("abrupt end of input after location specifier".into()));
            }
            if cur.ranges.is_empty() {
                return Err(err("test ended with no value specified".into()));
            }
            tests.push(cur);
            if tests.len() > MAX {
                return Err(err(format!("at char {i}: too many \"&&\"s")));
            }
            return Ok(tests);
        }
        if !reading_values {
            if s[i] == b'=' {
                if nloc == 0 {
                    return Err(err(format!("at char {i}: location spec missing")));
                }
                i += 1;
                reading_values = true;
                continue;
            }
            let mut op = None;
            if nloc != 0 {
                op = Some(match s[i] {
                    b'&' => U32Op::And,
                    b'@' => U32Op::At,
                    c @ (b'<' | b'>') => {
                        i += 1;
                        if s.get(i) != Some(&c) {
                            return Err(err(format!(
                                "at char {i}: a second '{}' was expected",
                                c as char
                            )));
                        }
                        if c == b'<' {
                            U32Op::Shl
                        } else {
                            U32Op::Shr
                        }
                    }
                    _ => return Err(err(format!("at char {i}: operator expected"))),
                });
                i += 1;
            }
            let (n, next) = number(s, i, i)?;
            i = next;
            match op {
                None => cur.start = n,
                Some(op) => cur.ops.push((op, n)),
            }
            nloc += 1;
            if nloc > MAX {
                return Err(err(format!("at char {i}: too many operators")));
            }
        } else if s[i] == b'&' {
            i += 1;
            if s.get(i) != Some(&b'&') {
                return Err(err(format!("at char {i}: a second '&' was expected")));
            }
            if cur.ranges.is_empty() {
                return Err(err(format!("at char {i}: value spec missing")));
            }
            tests.push(std::mem::take(&mut cur));
            if tests.len() > MAX {
                return Err(err(format!("at char {i}: too many \"&&\"s")));
            }
            i += 1;
            reading_values = false;
            nloc = 0;
        } else {
            if !cur.ranges.is_empty() {
                if s[i] != b',' {
                    return Err(err(format!("at char {i}: expected \",\" or \"&&\"")));
                }
                i += 1;
            }
            let (lo, next) = number(s, i, i)?;
            i = next;
            while i < s.len() && s[i].is_ascii_whitespace() {
                i += 1;
            }
            let hi = if s.get(i) == Some(&b':') {
                i += 1;
                let (hi, next) = number(s, i, i)?;
                i = next;
                hi
            } else {
                lo
            };
            cur.ranges.push((lo, hi));
            if cur.ranges.len() > MAX {
                return Err(err(format!("at char {i}: too many \",\"s")));
            }
        }
    }
}

impl U32 {
    fn dump(&self, out: &mut String) {
        out.push_str(" \"");
        for (t, test) in self.tests.iter().enumerate() {
            if t > 0 {
                out.push_str("&&");
            }
            out.push_str(&format!("0x{:x}", test.start));
            for &(op, n) in &test.ops {
                out.push_str(match op {
                    U32Op::And => "&",
                    U32Op::Shl => "<<",
                    U32Op::Shr => ">>",
                    U32Op::At => "@",
                });
                out.push_str(&format!("0x{n:x}"));
            }
            out.push('=');
            for (k, &(lo, hi)) in test.ranges.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                if lo == hi {
                    out.push_str(&format!("0x{lo:x}"));
                } else {
                    out.push_str(&format!("0x{lo:x}:0x{hi:x}"));
                }
            }
        }
        out.push('"');
    }
}

impl Extension for U32 {
    const NAME: &'static str = "u32";
    const OPTIONS: &'static [Opt] = &[Opt::req("u32").inv()];

    fn new() -> Result<Self> {
        Ok(U32::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        self.invert = cx.invert;
        self.tests = parse_tests(arg)?;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("u32: option \"--u32\" must be specified\n"));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(" --u32");
        self.dump(out);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" u32");
        if self.invert {
            out.push_str(" !");
        }
        self.dump(out);
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn p(a: &[&str]) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-m", "u32"];
        v.extend_from_slice(a);
        parse_rule(TableKind::Filter, "INPUT", &v)
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn forms() {
        let cases = [
            (
                "0>>22&0x3C@0&0xFFFF=53",
                "-A INPUT -m u32 --u32 \"0x0>>0x16&0x3c@0x0&0xffff=0x35\"",
            ),
            (
                " 6 & 0xFF = 1:3 , 17 && 4&0x3FFF=0",
                "-A INPUT -m u32 --u32 \"0x6&0xff=0x1:0x3,0x11&&0x4&0x3fff=0x0\"",
            ),
            (
                "0@1@2@3@4@5@6@7@8@9=1",
                "-A INPUT -m u32 --u32 \"0x0@0x1@0x2@0x3@0x4@0x5@0x6@0x7@0x8@0x9=0x1\"",
            ),
            (
                "0=1,2,3,4,5,6,7,8,9,10",
                "-A INPUT -m u32 --u32 \"0x0=0x1,0x2,0x3,0x4,0x5,0x6,0x7,0x8,0x9,0xa\"",
            ),
        ];
        for (arg, saved) in cases {
            let r = p(&["--u32", arg]).unwrap();
            assert_eq!(rule_save_line("INPUT", &r), saved, "{arg}");
        }
        let r = p(&["!", "--u32", "0=1"]).unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m u32 ! --u32 \"0x0=0x1\""
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " u32 ! \"0x0=0x1\"");
    }

    #[test]
    fn errors() {
        let cases = [
            ("0=1:2:3", "u32: at char 5: expected \",\" or \"&&\""),
            ("0=", "u32: test ended with no value specified"),
            ("=5", "u32: at char 0: location spec missing"),
            (
                "0@1@2@3@4@5@6@7@8@9@10=1",
                "u32: at char 22: too many operators",
            ),
            (
                "0=1,2,3,4,5,6,7,8,9,10,11",
                "u32: at char 25: too many \",\"s",
            ),
            ("x=1", "u32: at char 0: not a number or out of range"),
            ("0<1=2", "u32: at char 2: a second '<' was expected"),
            (
                "0=99999999999",
                "u32: at char 2: not a number or out of range",
            ),
            ("0&&1=2", "u32: at char 2: not a number or out of range"),
            ("0=1&&", "u32: abrupt end of input after location specifier"),
            (
                "1=1&&2=2&&3=3&&4=4&&5=5&&6=6&&7=7&&8=8&&9=9&&10=10&&11=11",
                "u32: at char 57: too many \"&&\"s",
            ),
            ("0=5x", "u32: at char 3: expected \",\" or \"&&\""),
            ("0 0=1", "u32: at char 2: operator expected"),
        ];
        for (arg, msg) in cases {
            assert_eq!(p(&["--u32", arg]).unwrap_err().msg, msg, "{arg}");
        }
    }
}
