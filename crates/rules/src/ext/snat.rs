//! `-j SNAT --to-source [ip[-ip]][:port[-port]] [--random] [--random-fully] [--persistent]`.

use super::dnat::{check_nat, parse_range, NatRange};
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::{Hook, IpSpec};

/// `-j SNAT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snat {
    pub range: NatRange,
}

impl Extension for Snat {
    const NAME: &'static str = "SNAT";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("to-source"),
        Opt::flag("random"),
        Opt::flag("random-fully"),
        Opt::flag("persistent"),
    ];

    fn new() -> Result<Self> {
        Ok(Snat::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        match opt {
            0 => {
                let r = parse_range(arg, cx.ip, "SNAT")?;
                if r.base.is_some() {
                    return Err(Error::param(format!("Port `{arg}' not valid\n")));
                }
                self.range.addrs = r.addrs;
                self.range.ports = r.ports;
            }
            1 => self.range.random = true,
            2 => self.range.random_fully = true,
            _ => self.range.persistent = true,
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen & 1 == 0 {
            return Err(Error::param(
                "SNAT: option \"--to-source\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        check_nat(cx, &[Hook::PostRouting, Hook::Input])
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(" --to-source ");
        self.range.push(out);
        self.range.push_flags(out, " --");
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" to:");
        self.range.push(out);
        self.range.push_flags(out, " ");
    }
}
