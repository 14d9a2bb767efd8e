//! `-m dscp [!] --dscp N | [!] --dscp-class NAME`: the DSCP field (upper six bits of the TOS
//! byte). Also holds the DiffServ class names shared with the DSCP target.

use super::length::xt_uint;
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// DiffServ class names and their code points.
pub const DSCP_CLASSES: &[(&str, u8)] = &[
    ("CS0", 0x00),
    ("CS1", 0x08),
    ("CS2", 0x10),
    ("CS3", 0x18),
    ("CS4", 0x20),
    ("CS5", 0x28),
    ("CS6", 0x30),
    ("CS7", 0x38),
    ("BE", 0x00),
    ("AF11", 0x0a),
    ("AF12", 0x0c),
    ("AF13", 0x0e),
    ("AF21", 0x12),
    ("AF22", 0x14),
    ("AF23", 0x16),
    ("AF31", 0x1a),
    ("AF32", 0x1c),
    ("AF33", 0x1e),
    ("AF41", 0x22),
    ("AF42", 0x24),
    ("AF43", 0x26),
    ("EF", 0x2e),
];

/// A class name (case-insensitive) to its code point.
pub fn parse_class(s: &str) -> Result<u8> {
    DSCP_CLASSES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v)| *v)
        .ok_or_else(|| Error::param(format!("Invalid DSCP value `{s}'")))
}

/// A `--dscp`-style number 0..=63 for extension `ext`, option `opt`.
pub fn parse_dscp(ext: &str, opt: &str, s: &str) -> Result<u8> {
    xt_uint(s, 0, 63).map(|v| v as u8).ok_or_else(|| {
        Error::param(format!(
            "{ext}: bad value for option \"--{opt}\", or out of range (0-63).\n"
        ))
    })
}

/// struct xt_dscp_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dscp {
    pub dscp: u8,
    pub invert: bool,
}

const O_DSCP: usize = 0;
const O_CLASS: usize = 1;

impl Extension for Dscp {
    const NAME: &'static str = "dscp";
    const OPTIONS: &'static [Opt] = &[Opt::req("dscp").inv(), Opt::req("dscp-class").inv()];

    fn new() -> Result<Self> {
        Ok(Dscp::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        self.dscp = match opt {
            O_DSCP => parse_dscp("dscp", "dscp", arg)?,
            O_CLASS => parse_class(arg)?,
            _ => unreachable!("option index out of table"),
        };
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("DSCP match: Parameter --dscp is required"));
        }
        if seen == 3 {
            return Err(Error::param(
                "dscp: option \"--dscp\" cannot be used together with \"--dscp-class\".\n",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(&format!(" --dscp 0x{:02x}", self.dscp));
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" DSCP match ");
        if self.invert {
            out.push('!');
        }
        out.push_str(&format!("0x{:02x}", self.dscp));
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
            let mut v = vec!["-m", "dscp"];
            v.extend_from_slice(a);
            parse_rule(TableKind::Filter, "INPUT", &v)
        };
        let r = p(&["!", "--dscp-class", "af41"]).unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m dscp ! --dscp 0x22"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " DSCP match !0x22");
        for (c, v) in [("CS7", "0x38"), ("AF43", "0x26"), ("cs1", "0x08")] {
            let r = p(&["--dscp-class", c]).unwrap();
            assert_eq!(
                rule_save_line("INPUT", &r),
                format!("-A INPUT -m dscp --dscp {v}")
            );
        }
        assert_eq!(
            p(&["--dscp-class", "foo"]).unwrap_err().msg,
            "Invalid DSCP value `foo'"
        );
    }
}
