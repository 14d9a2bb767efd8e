//! `-j DSCP --set-dscp N | --set-dscp-class NAME`: rewrite the DSCP field (mangle table only).

use super::dscp::{parse_class, parse_dscp};
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{IpSpec, TableKind};

/// struct xt_DSCP_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DscpTarget {
    pub dscp: u8,
}

const O_SET: usize = 0;
const O_CLASS: usize = 1;

impl Extension for DscpTarget {
    const NAME: &'static str = "DSCP";
    const OPTIONS: &'static [Opt] = &[Opt::req("set-dscp"), Opt::req("set-dscp-class")];

    fn new() -> Result<Self> {
        Ok(DscpTarget::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        self.dscp = match opt {
            O_SET => parse_dscp("DSCP", "set-dscp", arg)?,
            O_CLASS => parse_class(arg)?,
            _ => unreachable!("option index out of table"),
        };
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "DSCP target: Parameter --set-dscp is required",
            ));
        }
        if seen == 3 {
            return Err(Error::param(
                "DSCP: option \"--set-dscp\" cannot be used together with \"--set-dscp-class\".\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: the DSCP target is registered for the mangle table only.
        if cx.table != TableKind::Mangle {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(&format!(" --set-dscp 0x{:02x}", self.dscp));
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(&format!(" DSCP set 0x{:02x}", self.dscp));
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_forms_and_table() {
        let r = parse_rule(
            TableKind::Mangle,
            "PREROUTING",
            &["-j", "DSCP", "--set-dscp-class", "af11"],
        )
        .unwrap();
        assert_eq!(
            rule_save_line("PREROUTING", &r),
            "-A PREROUTING -j DSCP --set-dscp 0x0a"
        );
        let r = parse_rule(
            TableKind::Filter,
            "INPUT",
            &["-j", "DSCP", "--set-dscp", "1"],
        )
        .unwrap();
        let mut t = Table::new(TableKind::Filter);
        t.chain_mut("INPUT").unwrap().rules.push(r);
        assert!(crate::ops::validate_table(&t).is_err());
    }
}
