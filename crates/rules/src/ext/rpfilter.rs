//! `-m rpfilter [--loose] [--validmark] [--accept-local] [--invert]` (xt_rpfilter): a reverse
//! path check, the route back to the packet's source must leave through the interface it came in.

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{Hook, IpSpec, TableKind};

/// struct xt_rpfilter_info: the four flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rpfilter {
    /// Any route back is enough, whatever its interface.
    pub loose: bool,
    /// The route lookup uses the packet's mark.
    pub validmark: bool,
    /// A source that is one of this host's addresses passes.
    pub accept_local: bool,
    /// Match packets that fail the check.
    pub invert: bool,
}

impl Rpfilter {
    fn flags(&self) -> [(bool, &'static str); 4] {
        [
            (self.loose, "loose"),
            (self.validmark, "validmark"),
            (self.accept_local, "accept-local"),
            (self.invert, "invert"),
        ]
    }
}

impl Extension for Rpfilter {
    const NAME: &'static str = "rpfilter";
    const OPTIONS: &'static [Opt] = &[
        Opt::flag("loose"),
        Opt::flag("validmark"),
        Opt::flag("accept-local"),
        Opt::flag("invert"),
    ];

    fn new() -> Result<Self> {
        Ok(Rpfilter::default())
    }

    fn parse(&mut self, opt: usize, _arg: &str, _cx: &OptCtx) -> Result<()> {
        match opt {
            0 => self.loose = true,
            1 => self.validmark = true,
            2 => self.accept_local = true,
            _ => self.invert = true,
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: raw or mangle only, and the match is registered for PREROUTING alone.
        if !matches!(cx.table, TableKind::Raw | TableKind::Mangle)
            || !cx.hooks_within(&[Hook::PreRouting])
        {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        for (on, name) in self.flags() {
            if on {
                out.push_str(" --");
                out.push_str(name);
            }
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" rpfilter");
        for (on, name) in self.flags() {
            if on {
                out.push(' ');
                out.push_str(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn forms() {
        let p = |a: &[&str]| {
            let mut v = vec!["-m", "rpfilter"];
            v.extend_from_slice(a);
            parse_rule(TableKind::Mangle, "PREROUTING", &v)
        };
        let r = p(&["--invert", "--accept-local", "--validmark", "--loose"]).unwrap();
        assert_eq!(
            rule_save_line("PREROUTING", &r),
            "-A PREROUTING -m rpfilter --loose --validmark --accept-local --invert"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " rpfilter loose validmark accept-local invert");
        assert_eq!(
            p(&["--loose", "--loose"]).unwrap_err().msg,
            "rpfilter: option \"--loose\" can only be used once.\n"
        );
        assert!(p(&["!", "--loose"])
            .unwrap_err()
            .msg
            .contains("cannot be inverted"));
    }
}
