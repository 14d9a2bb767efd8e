//! `-m helper [!] --helper NAME`: the conntrack helper assigned to the packet's connection
//! (`ftp`, `ftp-2121`, ...). The name keeps at most 29 characters.

use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// The longest helper name kept (30-byte field with its NUL).
pub const NAME_MAX: usize = 29;

/// struct xt_helper_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Helper {
    pub name: String,
    pub invert: bool,
}

/// xtables_save_string: bare when made only of letters, digits, `_` and `-` (and not
/// empty), else double-quoted with `"`, `\` and `'` escaped.
pub fn push_save_string(out: &mut String, s: &str) {
    out.push(' ');
    let bare = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

impl Extension for Helper {
    const NAME: &'static str = "helper";
    const OPTIONS: &'static [Opt] = &[Opt::req("helper").inv()];

    fn new() -> Result<Self> {
        Ok(Helper::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let mut end = arg.len().min(NAME_MAX);
        while !arg.is_char_boundary(end) {
            end -= 1;
        }
        self.name = arg[..end].to_string();
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "helper: option \"--helper\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(" --helper");
        push_save_string(out, &self.name);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" helper match ");
        if self.invert {
            out.push_str("! ");
        }
        out.push_str(&format!("\"{}\"", self.name));
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_forms() {
        let p = |a: &[&str]| {
            let mut v = vec!["-m", "helper"];
            v.extend_from_slice(a);
            parse_rule(TableKind::Filter, "INPUT", &v).unwrap()
        };
        let cases: &[(&[&str], &str, &str)] = &[
            (
                &["!", "--helper", "ftp"],
                "! --helper ftp",
                " helper match ! \"ftp\"",
            ),
            (&["--helper", ""], "--helper \"\"", " helper match \"\""),
            (
                &["--helper", "a b"],
                "--helper \"a b\"",
                " helper match \"a b\"",
            ),
            (
                &["--helper", "a\"b"],
                "--helper \"a\\\"b\"",
                " helper match \"a\"b\"",
            ),
            (
                &["--helper", "abcdefghijklmnopqrstuvwxyzabcdefghij"],
                "--helper abcdefghijklmnopqrstuvwxyzabc",
                " helper match \"abcdefghijklmnopqrstuvwxyzabc\"",
            ),
        ];
        for (args, save, print) in cases {
            let r = p(args);
            assert_eq!(
                rule_save_line("INPUT", &r),
                format!("-A INPUT -m helper {save}")
            );
            let mut s = String::new();
            r.matches[0].print(&r.ip, true, &mut s);
            assert_eq!(&s, print);
        }
    }
}
