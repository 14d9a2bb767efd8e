//! `-j MARK` (revision 2): --set-xmark --set-mark --and-mark --or-mark --xor-mark, all kept as
//! the kernel's (value, mask): new mark = (old & ~mask) ^ value.

use super::util::{parse_mark_mask, parse_uint};
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_mark_tginfo2.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MarkTarget {
    pub mark: u32,
    pub mask: u32,
}

impl Extension for MarkTarget {
    const NAME: &'static str = "MARK";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("set-xmark"),
        Opt::req("set-mark"),
        Opt::req("and-mark"),
        Opt::req("or-mark"),
        Opt::req("xor-mark"),
    ];

    fn new() -> Result<Self> {
        Ok(MarkTarget::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        if cx.seen != 0 {
            return Err(Error::param("MARK: --set-xmark/--set-mark/--and-mark/--or-mark/--xor-mark are mutually exclusive"));
        }
        let name = Self::OPTIONS[opt].name;
        let bad = || {
            Error::param(format!(
                "MARK: bad integer value for option \"--{name}\", or out of range.\n"
            ))
        };
        match opt {
            0 | 1 => {
                let (v, m) = parse_mark_mask(arg).ok_or_else(bad)?;
                self.mark = v;
                self.mask = if opt == 0 { m } else { v | m };
            }
            _ => {
                let v = parse_uint(arg, 0, u32::MAX as u64).ok_or_else(bad)? as u32;
                (self.mark, self.mask) = match opt {
                    2 => (0, !v),
                    3 => (v, v),
                    _ => (v, 0),
                };
            }
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "MARK: One of the --set-xmark, --{and,or,xor,set}-mark options is required",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(" --set-xmark 0x");
        crate::save::push_hex(out, u64::from(self.mark));
        out.push_str("/0x");
        crate::save::push_hex(out, u64::from(self.mask));
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        if self.mark == 0 {
            out.push_str(&format!(" MARK and 0x{:x}", !self.mask));
        } else if self.mark == self.mask {
            out.push_str(&format!(" MARK or 0x{:x}", self.mark));
        } else if self.mask == 0 {
            out.push_str(&format!(" MARK xor 0x{:x}", self.mark));
        } else if self.mask == u32::MAX {
            out.push_str(&format!(" MARK set 0x{:x}", self.mark));
        } else {
            out.push_str(&format!(" MARK xset 0x{:x}/0x{:x}", self.mark, self.mask));
        }
    }
}
