//! `-j TRACE` (xt_TRACE, raw table): marks the packet so every rule it then meets in any table
//! is logged (`TRACE: table:chain:rule|return|policy:N ...`).

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{IpSpec, TableKind};

/// No options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace;

impl Extension for Trace {
    const NAME: &'static str = "TRACE";
    const OPTIONS: &'static [Opt] = &[];

    fn new() -> Result<Self> {
        Ok(Trace)
    }

    fn parse(&mut self, _opt: usize, _arg: &str, _cx: &OptCtx) -> Result<()> {
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: the TRACE target is registered for the raw table only.
        if cx.table != TableKind::Raw {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, _out: &mut String) {}

    fn print(&self, _ip: &IpSpec, _numeric: bool, _out: &mut String) {}
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected text recorded from iptables-legacy 1.8.9.
    #[test]
    fn forms() {
        let r = parse_rule(TableKind::Raw, "PREROUTING", &["-j", "TRACE"]).unwrap();
        assert_eq!(rule_save_line("PREROUTING", &r), "-A PREROUTING -j TRACE");
        assert!(parse_rule(TableKind::Raw, "PREROUTING", &["-j", "TRACE", "--x"]).is_err());
    }
}
