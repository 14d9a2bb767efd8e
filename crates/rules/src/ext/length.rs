//! `-m length [!] --length min[:max]`: the IP packet's total length lies in a range. Also
//! holds libxtables' reader of `a[:b]` integer ranges (shared with tcpmss).

use super::util::push_inv;
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// xtables_strtoul with an end pointer: blanks, no minus, base 0 (0x hex, 0 octal); the value
/// (at most `max`) and the unparsed rest, None when no digits or out of range.
pub fn strtoul_prefix(s: &str, max: u64) -> Option<(u64, &str)> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let t = match t.as_bytes().first() {
        Some(b'-') => return None,
        Some(b'+') => &t[1..],
        _ => t,
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if h.bytes().next().is_some_and(|b| b.is_ascii_hexdigit()) {
            (16, h)
        } else {
            // "0x" without hex digits is the number 0 followed by "x...".
            return Some((0, &t[1..]));
        }
    } else if t.starts_with('0') {
        (8, t)
    } else {
        (10, t)
    };
    let n = digits
        .bytes()
        .take_while(|b| (*b as char).is_digit(radix))
        .count();
    if n == 0 {
        return None;
    }
    let v = u64::from_str_radix(&digits[..n], radix).ok()?;
    (v <= max).then_some((v, &digits[n..]))
}

/// xtables_strtoui over the whole string: like [`strtoul_prefix`] with nothing left over and
/// at least `min` (so `-0`, `5 `, `0x` are refused, unlike a plain strtoul).
pub fn xt_uint(s: &str, min: u64, max: u64) -> Option<u64> {
    strtoul_prefix(s, max)
        .filter(|(v, rest)| rest.is_empty() && *v >= min)
        .map(|(v, _)| v)
}

/// libxtables' multi-int reader (`a`, `a:b`, `:b`, `a:`, `:`) for option `--opt` of extension
/// `ext`, components 0..=max; a single value gives (a, a).
pub fn parse_int_range(ext: &str, opt: &str, arg: &str, max: u64) -> Result<(u64, u64)> {
    let mut vals = [0u64; 2];
    let mut n = 0;
    let mut rest = arg;
    loop {
        if n == 2 {
            return Err(Error::param(format!(
                "{ext}: Too many components for option \"--{opt}\" (max: 2)\n"
            )));
        }
        let (v, end) = if rest.is_empty() || rest.starts_with(':') {
            (if n == 1 { max } else { 0 }, rest)
        } else {
            let (v, end) = strtoul_prefix(rest, max).ok_or_else(|| {
                Error::param(format!(
                    "{ext}: bad value for option \"--{opt}\" near \"{rest}\", or out of range (0-{max}).\n"
                ))
            })?;
            if !end.is_empty() && !end.starts_with(':') {
                return Err(Error::param(format!(
                    "{ext}: Argument to \"--{opt}\" has unexpected characters near \"{end}\".\n"
                )));
            }
            (v, end)
        };
        vals[n] = v;
        n += 1;
        if end.is_empty() {
            break;
        }
        rest = &end[1..];
    }
    Ok(if n == 1 {
        (vals[0], vals[0])
    } else {
        (vals[0], vals[1])
    })
}

/// struct xt_length_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Length {
    pub min: u16,
    pub max: u16,
    pub invert: bool,
}

impl Extension for Length {
    const NAME: &'static str = "length";
    const OPTIONS: &'static [Opt] = &[Opt::req("length").inv()];

    fn new() -> Result<Self> {
        Ok(Length::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let (lo, hi) = parse_int_range("length", "length", arg, 65535)?;
        self.min = lo as u16;
        self.max = hi as u16;
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "length: option \"--length\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        push_inv(out, self.invert);
        out.push_str(" --length ");
        self.push_range(out);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" length ");
        if self.invert {
            out.push('!');
        }
        self.push_range(out);
    }
}

impl Length {
    fn push_range(&self, out: &mut String) {
        if self.min == self.max {
            out.push_str(&self.min.to_string());
        } else {
            out.push_str(&format!("{}:{}", self.min, self.max));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_int_range;
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn save(arg: &str) -> String {
        let r = parse_rule(
            TableKind::Filter,
            "INPUT",
            &["-m", "length", "--length", arg],
        )
        .unwrap();
        rule_save_line("INPUT", &r)
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_ranges() {
        assert_eq!(save("10:5"), "-A INPUT -m length --length 10:5");
        assert_eq!(save("0x10:020"), "-A INPUT -m length --length 16");
        assert_eq!(save(" 5"), "-A INPUT -m length --length 5");
        assert_eq!(save(":"), "-A INPUT -m length --length 0:65535");
    }

    #[test]
    fn test_range_errors() {
        let e = |a: &str| {
            parse_int_range("length", "length", a, 65535)
                .unwrap_err()
                .msg
        };
        assert_eq!(
            e("5:6:7"),
            "length: Too many components for option \"--length\" (max: 2)\n"
        );
        assert_eq!(
            e("abc"),
            "length: bad value for option \"--length\" near \"abc\", or out of range (0-65535).\n"
        );
        assert_eq!(
            e("5,6"),
            "length: Argument to \"--length\" has unexpected characters near \",6\".\n"
        );
        assert_eq!(
            e("5-6"),
            "length: Argument to \"--length\" has unexpected characters near \"-6\".\n"
        );
        assert_eq!(
            e("-1:65535"),
            "length: bad value for option \"--length\" near \"-1:65535\", or out of range (0-65535).\n"
        );
    }
}
