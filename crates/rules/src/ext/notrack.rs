//! `-j NOTRACK` (raw table only): do not track the packet. iptables 1.8.9 implements it as an
//! alias of `CT --notrack`; it saves as `-j NOTRACK` and lists as `CT ... NOTRACK`.

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{IpSpec, TableKind};

/// NOTRACK has no options.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notrack {}

impl Extension for Notrack {
    const NAME: &'static str = "NOTRACK";
    const OPTIONS: &'static [Opt] = &[];

    fn new() -> Result<Self> {
        Ok(Notrack {})
    }

    fn parse(&mut self, _opt: usize, _arg: &str, _cx: &OptCtx) -> Result<()> {
        // Never called: the option table is empty, so getopt reports any option as unknown.
        Err(Error::param("NOTRACK takes no options"))
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: CT (behind NOTRACK) is a raw-table target.
        if cx.table != TableKind::Raw {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, _out: &mut String) {}

    /// iptables -L shows the real target (CT) in the target column.
    fn list_name(&self) -> &'static str {
        "CT"
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" NOTRACK");
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_save_and_table() {
        let r = parse_rule(TableKind::Raw, "PREROUTING", &["-j", "NOTRACK"]).unwrap();
        assert_eq!(rule_save_line("PREROUTING", &r), "-A PREROUTING -j NOTRACK");
        let r = parse_rule(TableKind::Mangle, "PREROUTING", &["-j", "NOTRACK"]).unwrap();
        let mut t = Table::new(TableKind::Mangle);
        t.chain_mut("PREROUTING").unwrap().rules.push(r);
        assert!(crate::ops::validate_table(&t).is_err());
        assert!(parse_rule(TableKind::Raw, "OUTPUT", &["-j", "NOTRACK", "--foo"]).is_err());
    }
}
