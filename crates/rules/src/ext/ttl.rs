//! `-m ttl`: the IPv4 TTL equals (`[!] --ttl-eq`), is below (`--ttl-lt`) or above
//! (`--ttl-gt`) a value.

use super::length::xt_uint;
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// IPT_TTL_EQ / NE / LT / GT.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TtlMode {
    #[default]
    Eq,
    Ne,
    Lt,
    Gt,
}

/// struct ipt_ttl_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ttl {
    pub mode: TtlMode,
    pub ttl: u8,
}

const O_EQ: usize = 0;
const O_LT: usize = 1;
const O_GT: usize = 2;

impl Extension for Ttl {
    const NAME: &'static str = "ttl";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("ttl-eq").inv(),
        Opt::req("ttl-lt"),
        Opt::req("ttl-gt"),
    ];

    fn new() -> Result<Self> {
        Ok(Ttl::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let name = Self::OPTIONS[opt].name;
        self.ttl = xt_uint(arg, 0, 255).ok_or_else(|| {
            Error::param(format!(
                "ttl: bad value for option \"--{name}\", or out of range (0-255).\n"
            ))
        })? as u8;
        self.mode = match opt {
            O_EQ if cx.invert => TtlMode::Ne,
            O_EQ => TtlMode::Eq,
            O_LT => TtlMode::Lt,
            O_GT => TtlMode::Gt,
            _ => unreachable!("option index out of table"),
        };
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "TTL match: You must specify one of `--ttl-eq', `--ttl-lt', `--ttl-gt",
            ));
        }
        // libxtables: --ttl-lt and --ttl-gt each exclude the other two options.
        for (o, others) in [(O_LT, [O_EQ, O_GT]), (O_GT, [O_EQ, O_LT])] {
            if seen & (1 << o) == 0 {
                continue;
            }
            if let Some(&x) = others.iter().find(|&&x| seen & (1 << x) != 0) {
                return Err(Error::param(format!(
                    "ttl: option \"--{}\" cannot be used together with \"--{}\".\n",
                    Self::OPTIONS[o].name,
                    Self::OPTIONS[x].name
                )));
            }
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        let opt = match self.mode {
            TtlMode::Eq => "--ttl-eq",
            TtlMode::Ne => "! --ttl-eq",
            TtlMode::Lt => "--ttl-lt",
            TtlMode::Gt => "--ttl-gt",
        };
        out.push_str(&format!(" {opt} {}", self.ttl));
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        let op = match self.mode {
            TtlMode::Eq => "==",
            TtlMode::Ne => "!=",
            TtlMode::Lt => "<",
            TtlMode::Gt => ">",
        };
        out.push_str(&format!(" TTL match TTL {op} {}", self.ttl));
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn p(a: &[&str]) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-m", "ttl"];
        v.extend_from_slice(a);
        parse_rule(TableKind::Filter, "INPUT", &v)
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_forms() {
        let r = p(&["--ttl-lt", "0x10"]).unwrap();
        assert_eq!(rule_save_line("INPUT", &r), "-A INPUT -m ttl --ttl-lt 16");
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " TTL match TTL < 16");
        assert_eq!(
            p(&["--ttl-eq", "5", "--ttl-lt", "4"]).unwrap_err().msg,
            "ttl: option \"--ttl-lt\" cannot be used together with \"--ttl-eq\".\n"
        );
        assert!(p(&["!", "--ttl-gt", "5"])
            .unwrap_err()
            .msg
            .contains("cannot be inverted"));
    }
}
