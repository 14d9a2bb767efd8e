//! `-m tcpmss [!] --mss min[:max]`: the MSS option of a TCP SYN lies in a range (needs
//! `-p tcp`).

use super::length::parse_int_range;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_tcpmss_match_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tcpmss {
    pub min: u16,
    pub max: u16,
    pub invert: bool,
}

impl Extension for Tcpmss {
    const NAME: &'static str = "tcpmss";
    const OPTIONS: &'static [Opt] = &[Opt::req("mss").inv()];

    fn new() -> Result<Self> {
        Ok(Tcpmss::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let (lo, hi) = parse_int_range("tcpmss", "mss", arg, 65535)?;
        if lo > hi {
            return Err(Error::param("tcpmss: invalid range given"));
        }
        self.min = lo as u16;
        self.max = hi as u16;
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("tcpmss: option \"--mss\" must be specified\n"));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: the match is registered for TCP only (`-p tcp`, not inverted).
        super::tcp::require_proto(cx.ip, 6)
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(" --mss ");
        self.push_range(out);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" tcpmss match ");
        if self.invert {
            out.push('!');
        }
        self.push_range(out);
    }
}

impl Tcpmss {
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
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_forms() {
        let p = |a: &[&str]| {
            let mut v = vec!["-p", "tcp", "-m", "tcpmss"];
            v.extend_from_slice(a);
            parse_rule(TableKind::Filter, "INPUT", &v)
        };
        let r = p(&["!", "--mss", "10:20"]).unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -p tcp -m tcpmss ! --mss 10:20"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " tcpmss match !10:20");
        assert_eq!(
            rule_save_line("INPUT", &p(&["--mss", "0x10"]).unwrap()),
            "-A INPUT -p tcp -m tcpmss --mss 16"
        );
        assert_eq!(
            p(&["--mss", "20:10"]).unwrap_err().msg,
            "tcpmss: invalid range given"
        );
        let r = parse_rule(
            TableKind::Filter,
            "INPUT",
            &["!", "-p", "tcp", "-m", "tcpmss", "--mss", "5"],
        )
        .unwrap();
        let mut t = Table::new(TableKind::Filter);
        t.chain_mut("INPUT").unwrap().rules.push(r);
        assert!(crate::ops::validate_table(&t).is_err());
    }
}
