//! `-m connmark [!] --mark value[/mask]`: the connection's mark, masked, equals value.

use super::util::{parse_mark_mask, push_mark_mask};
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_connmark_mtinfo1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connmark {
    pub mark: u32,
    pub mask: u32,
    pub invert: bool,
}

impl Extension for Connmark {
    const NAME: &'static str = "connmark";
    const OPTIONS: &'static [Opt] = &[Opt::req("mark").inv()];

    fn new() -> Result<Self> {
        Ok(Connmark::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let (v, m) = parse_mark_mask(arg).ok_or_else(|| {
            Error::param("connmark: bad integer value for option \"--mark\", or out of range.\n")
        })?;
        self.mark = v;
        self.mask = m;
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "connmark: option \"--mark\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(" --mark ");
        push_mark_mask(out, self.mark, self.mask);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" connmark match ");
        if self.invert {
            out.push('!');
        }
        out.push(' ');
        push_mark_mask(out, self.mark, self.mask);
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_inverted_and_numeric_forms() {
        let r = parse_rule(
            TableKind::Mangle,
            "PREROUTING",
            &["-m", "connmark", "!", "--mark", "0x10/0xff"],
        )
        .unwrap();
        assert_eq!(
            rule_save_line("PREROUTING", &r),
            "-A PREROUTING -m connmark ! --mark 0x10/0xff"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " connmark match ! 0x10/0xff");
        let r = parse_rule(
            TableKind::Mangle,
            "PREROUTING",
            &["-m", "connmark", "--mark", "16"],
        )
        .unwrap();
        assert_eq!(
            rule_save_line("PREROUTING", &r),
            "-A PREROUTING -m connmark --mark 0x10"
        );
    }
}
