//! `-m connmark [!] --mark value[/mask]`: the connection's mark, masked, equals value.

use super::length::strtoul_prefix;
use super::util::push_mark_mask;
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// libxtables' `value[/mask]` reader for option `--opt` of extension `ext` (mask defaults to
/// all ones): a missing or bad number is a "bad integer value", anything after a good one is
/// "trailing garbage".
pub fn parse_markmask(ext: &str, opt: &str, s: &str) -> Result<(u32, u32)> {
    let max = u64::from(u32::MAX);
    let bad = || {
        Error::param(format!(
            "{ext}: bad integer value for option \"--{opt}\", or out of range.\n"
        ))
    };
    let (value, mut rest) = strtoul_prefix(s, max).ok_or_else(bad)?;
    let mut mask = max;
    if let Some(m) = rest.strip_prefix('/') {
        (mask, rest) = strtoul_prefix(m, max).ok_or_else(bad)?;
    }
    if !rest.is_empty() {
        return Err(Error::param(format!(
            "{ext}: trailing garbage after value for option \"--{opt}\".\n"
        )));
    }
    Ok((value as u32, mask as u32))
}

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
        let (v, m) = parse_markmask("connmark", "mark", arg)?;
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
