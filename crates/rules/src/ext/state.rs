//! `-m state --state LIST` (conntrack states).

use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// State bits as the kernel defines them (XT_STATE_BIT of each ctinfo, plus UNTRACKED).
pub const INVALID: u32 = 1 << 0;
pub const ESTABLISHED: u32 = 1 << 1;
pub const RELATED: u32 = 1 << 2;
pub const NEW: u32 = 1 << 3;
pub const UNTRACKED: u32 = 1 << 4;

/// Names in the order iptables prints them.
pub const STATE_NAMES: &[(&str, u32)] = &[
    ("INVALID", INVALID),
    ("NEW", NEW),
    ("RELATED", RELATED),
    ("ESTABLISHED", ESTABLISHED),
    ("UNTRACKED", UNTRACKED),
];

/// struct xt_state_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub mask: u32,
    pub invert: bool,
}

/// Parses a comma list of names from `names` (case-insensitive); `what` names the error.
pub fn parse_names(s: &str, names: &[(&str, u32)], what: &str) -> Result<u32> {
    let mut m = 0;
    for item in s.split(',') {
        let bit = names
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(item))
            .map(|(_, b)| *b)
            .ok_or_else(|| Error::param(format!("Bad {what} \"{item}\"")))?;
        m |= bit;
    }
    Ok(m)
}

/// Appends the set bits of `mask` as a comma list.
pub fn push_names(out: &mut String, mask: u32, names: &[(&str, u32)]) {
    let mut first = true;
    for (n, b) in names {
        if mask & b != 0 {
            if !first {
                out.push(',');
            }
            out.push_str(n);
            first = false;
        }
    }
}

impl Extension for State {
    const NAME: &'static str = "state";
    const OPTIONS: &'static [Opt] = &[Opt::req("state").inv()];

    fn new() -> Result<Self> {
        Ok(State::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        self.mask = parse_names(arg, STATE_NAMES, "state")?;
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "state: option \"--state\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(" --state ");
        push_names(out, self.mask, STATE_NAMES);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(" state ");
        push_names(out, self.mask, STATE_NAMES);
    }
}
