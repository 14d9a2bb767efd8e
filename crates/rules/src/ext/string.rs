//! `-m string --algo bm|kmp [!] --string TEXT | [!] --hex-string "|41 42|..."` with optional
//! `--from`/`--to` offsets and `--icase` (revision 1). Patterns print as text when every byte
//! is printable ASCII (and the last is not `\`), else as a hex block.

use super::length::xt_uint;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::IpSpec;

/// XT_STRING_MAX_PATTERN_SIZE.
pub const PATTERN_MAX: usize = 128;
/// The algorithm name field holds 15 characters and a NUL.
pub const ALGO_MAX: usize = 15;

/// struct xt_string_info (revision 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StringMatch {
    pub from: u16,
    pub to: u16,
    pub algo: String,
    pub pattern: Vec<u8>,
    pub invert: bool,
    pub icase: bool,
}

const O_FROM: usize = 0;
const O_TO: usize = 1;
const O_ALGO: usize = 2;
const O_STRING: usize = 3;
const O_HEX: usize = 4;
const O_ICASE: usize = 5;

/// iptables' `--hex-string` reader: text with `|hex hex|` blocks and `\x` literal escapes.
pub fn parse_hex_string(s: &str) -> Result<Vec<u8>> {
    let b = s.as_bytes();
    let n = b.len();
    if n == 0 {
        return Err(Error::param("STRING must contain at least one char"));
    }
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut out = Vec::new();
    let (mut i, mut hex, mut literal) = (0usize, false, false);
    while i < n {
        if out.len() >= PATTERN_MAX {
            return Err(Error::param(format!("STRING too long \"{s}\"")));
        }
        if b[i] == b'\\' && !hex {
            literal = true;
        } else if b[i] == b'\\' {
            return Err(Error::param("Cannot include literals in hex data"));
        } else if b[i] == b'|' {
            if hex {
                hex = false;
            } else {
                hex = true;
                while at(i + 1) == b' ' {
                    i += 1;
                }
            }
            if i + 1 >= n {
                break;
            }
            i += 1;
        }
        if literal {
            if i + 1 >= n {
                return Err(Error::param("Bad literal placement at end of string"));
            }
            out.push(b[i + 1]);
            i += 2;
            literal = false;
        } else if hex {
            if i + 1 >= n {
                return Err(Error::param("Odd number of hex digits"));
            }
            if i + 2 >= n {
                return Err(Error::param("Invalid hex block"));
            }
            for c in [b[i], b[i + 1]] {
                if !c.is_ascii_hexdigit() {
                    return Err(Error::param(format!("Invalid hex char '{}'", c as char)));
                }
            }
            let v = u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0);
            out.push(v);
            i += if at(i + 2) == b' ' { 3 } else { 2 };
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// True when iptables prints the pattern as a hex block.
fn is_hex(p: &[u8]) -> bool {
    p.iter().any(|c| !(0x20..=0x7e).contains(c)) || p.last().is_none_or(|c| *c == b'\\')
}

fn push_pattern(out: &mut String, p: &[u8]) {
    out.push_str(" \"");
    if is_hex(p) {
        out.push('|');
        for c in p {
            out.push_str(&format!("{c:02x}"));
        }
        out.push('|');
    } else {
        for &c in p {
            if c == b'"' || c == b'\\' {
                out.push('\\');
            }
            out.push(c as char);
        }
    }
    out.push('"');
}

impl Extension for StringMatch {
    const NAME: &'static str = "string";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("from"),
        Opt::req("to"),
        Opt::req("algo"),
        Opt::req("string").inv(),
        Opt::req("hex-string").inv(),
        Opt::flag("icase"),
    ];

    fn new() -> Result<Self> {
        Ok(StringMatch {
            from: 0,
            to: u16::MAX,
            algo: String::new(),
            pattern: Vec::new(),
            invert: false,
            icase: false,
        })
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let name = Self::OPTIONS[opt].name;
        match opt {
            O_FROM | O_TO => {
                let v = xt_uint(arg, 0, 65535).ok_or_else(|| {
                    Error::param(format!(
                        "string: bad value for option \"--{name}\", or out of range (0-65535).\n"
                    ))
                })? as u16;
                if opt == O_FROM {
                    self.from = v;
                } else {
                    self.to = v;
                }
            }
            O_ALGO => {
                let mut end = arg.len().min(ALGO_MAX);
                while !arg.is_char_boundary(end) {
                    end -= 1;
                }
                self.algo = arg[..end].to_string();
            }
            O_STRING => {
                if arg.len() > PATTERN_MAX {
                    return Err(Error::param(format!("STRING too long \"{arg}\"")));
                }
                self.pattern = arg.as_bytes().to_vec();
                if cx.invert {
                    self.invert = true;
                }
            }
            O_HEX => {
                self.pattern = parse_hex_string(arg)?;
                if cx.invert {
                    self.invert = true;
                }
            }
            O_ICASE => self.icase = true,
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen & (1 << O_STRING | 1 << O_HEX) == 0 {
            return Err(Error::param(
                "STRING match: You must specify `--string' or `--hex-string'",
            ));
        }
        if seen & (1 << O_ALGO) == 0 {
            return Err(Error::param(
                "string: option \"--algo\" must be specified\n",
            ));
        }
        if seen & (1 << O_STRING) != 0 && seen & (1 << O_HEX) != 0 {
            return Err(Error::param(
                "string: option \"--string\" cannot be used together with \"--hex-string\".\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, _cx: &CheckCtx) -> Result<()> {
        // Kernel rules: the window must not be reversed, the pattern not empty, and the
        // textsearch algorithm must exist (bm and kmp; others: ENOENT).
        if self.from > self.to || self.pattern.is_empty() {
            return Err(Error::kernel(Errno::Inval));
        }
        if self.algo != "bm" && self.algo != "kmp" {
            return Err(Error::kernel(Errno::NoEnt));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(if is_hex(&self.pattern) {
            " --hex-string"
        } else {
            " --string"
        });
        push_pattern(out, &self.pattern);
        out.push_str(&format!(" --algo {}", self.algo));
        if self.from != 0 {
            out.push_str(&format!(" --from {}", self.from));
        }
        if self.to != u16::MAX {
            out.push_str(&format!(" --to {}", self.to));
        }
        if self.icase {
            out.push_str(" --icase");
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" STRING match ");
        if self.invert {
            out.push('!');
        }
        push_pattern(out, &self.pattern);
        out.push_str(&format!(" ALGO name {}", self.algo));
        if self.from != 0 {
            out.push_str(&format!(" FROM {}", self.from));
        }
        if self.to != u16::MAX {
            out.push_str(&format!(" TO {}", self.to));
        }
        if self.icase {
            out.push_str(" ICASE");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_hex_string;
    use crate::error::{Errno, ErrorKind};
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn p(a: &[&str]) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-m", "string"];
        v.extend_from_slice(a);
        parse_rule(TableKind::Filter, "INPUT", &v)
    }

    fn save(a: &[&str]) -> String {
        rule_save_line("INPUT", &p(a).unwrap())
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_text_and_hex_forms() {
        assert_eq!(
            save(&["--algo", "bm", "--hex-string", "|41 42|c\""]),
            "-A INPUT -m string --string \"ABc\\\"\" --algo bm"
        );
        assert_eq!(
            save(&["--algo", "bm", "--string", "a\"b\\\\c"]),
            "-A INPUT -m string --string \"a\\\"b\\\\\\\\c\" --algo bm"
        );
        assert_eq!(
            save(&["--algo", "bm", "--string", "ab\\\\"]),
            "-A INPUT -m string --hex-string \"|61625c5c|\" --algo bm"
        );
        assert_eq!(
            save(&["--algo", "bm", "--hex-string", "a\\\\"]),
            "-A INPUT -m string --hex-string \"|615c|\" --algo bm"
        );
        assert_eq!(
            save(&["--algo", "bm", "--string", "é"]),
            "-A INPUT -m string --hex-string \"|c3a9|\" --algo bm"
        );
        let r = p(&[
            "--algo", "kmp", "--string", "x", "--from", "10", "--to", "20", "--icase",
        ])
        .unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m string --string \"x\" --algo kmp --from 10 --to 20 --icase"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " STRING match  \"x\" ALGO name kmp FROM 10 TO 20 ICASE");
    }

    #[test]
    fn test_errors() {
        let e = |s: &str| parse_hex_string(s).unwrap_err().msg;
        assert_eq!(e("|4|"), "Invalid hex block");
        assert_eq!(e("|4g|"), "Invalid hex char 'g'");
        assert_eq!(e("|41"), "Invalid hex block");
        assert_eq!(
            p(&["--string", "x"]).unwrap_err().msg,
            "string: option \"--algo\" must be specified\n"
        );
        assert_eq!(
            p(&["--algo", "bm", "--string", "x", "--hex-string", "y"])
                .unwrap_err()
                .msg,
            "string: option \"--string\" cannot be used together with \"--hex-string\".\n"
        );
    }

    #[test]
    fn test_kernel_checks() {
        let commit = |a: &[&str]| {
            let mut t = Table::new(TableKind::Filter);
            t.chain_mut("INPUT").unwrap().rules.push(p(a).unwrap());
            crate::ops::validate_table(&t).map_err(|e| e.kind)
        };
        assert_eq!(
            commit(&["--algo", "wrong", "--string", "x"]),
            Err(ErrorKind::Kernel(Errno::NoEnt))
        );
        assert_eq!(
            commit(&["--algo", "bm", "--string", ""]),
            Err(ErrorKind::Kernel(Errno::Inval))
        );
        assert_eq!(
            commit(&["--algo", "bm", "--from", "30", "--to", "20", "--string", "x"]),
            Err(ErrorKind::Kernel(Errno::Inval))
        );
        assert_eq!(commit(&["--algo", "kmp", "--string", "x"]), Ok(()));
    }
}
