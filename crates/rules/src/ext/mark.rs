//! `-m mark --mark value[/mask]`.

use super::util::{parse_mark_mask, push_inv, push_mark_mask};
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_mark_mtinfo1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mark {
    pub mark: u32,
    pub mask: u32,
    pub invert: bool,
}

impl Extension for Mark {
    const NAME: &'static str = "mark";
    const OPTIONS: &'static [Opt] = &[Opt::req("mark").inv()];

    fn new() -> Result<Self> {
        Ok(Mark::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let (v, m) = parse_mark_mask(arg).ok_or_else(|| {
            Error::param("mark: bad integer value for option \"--mark\", or out of range.\n")
        })?;
        self.mark = v;
        self.mask = m;
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("mark: option \"--mark\" must be specified\n"));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        push_inv(out, self.invert);
        out.push_str(" --mark ");
        push_mark_mask(out, self.mark, self.mask);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" mark match ");
        if self.invert {
            out.push_str("! ");
        }
        push_mark_mask(out, self.mark, self.mask);
    }
}
