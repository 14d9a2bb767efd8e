//! `-j CHECKSUM --checksum-fill` (xt_CHECKSUM, mangle table): complete a checksum the kernel
//! left for the device to compute (CHECKSUM_PARTIAL).

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{IpSpec, TableKind};

/// struct xt_CHECKSUM_info with its single operation (XT_CHECKSUM_OP_FILL).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Checksum {
    pub fill: bool,
}

impl Extension for Checksum {
    const NAME: &'static str = "CHECKSUM";
    const OPTIONS: &'static [Opt] = &[Opt::flag("checksum-fill")];

    fn new() -> Result<Self> {
        Ok(Checksum::default())
    }

    fn parse(&mut self, _opt: usize, _arg: &str, _cx: &OptCtx) -> Result<()> {
        self.fill = true;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "CHECKSUM: option \"--checksum-fill\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule (checksum_tg_check): registered for the mangle table only.
        if cx.table != TableKind::Mangle {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(" --checksum-fill");
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" CHECKSUM fill");
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
            let mut v = vec!["-j", "CHECKSUM"];
            v.extend_from_slice(a);
            parse_rule(TableKind::Mangle, "PREROUTING", &v)
        };
        let r = p(&["--checksum-fill"]).unwrap();
        assert_eq!(
            rule_save_line("PREROUTING", &r),
            "-A PREROUTING -j CHECKSUM --checksum-fill"
        );
        assert_eq!(
            p(&[]).unwrap_err().msg,
            "CHECKSUM: option \"--checksum-fill\" must be specified\n"
        );
        assert_eq!(
            p(&["--checksum-fill", "--checksum-fill"]).unwrap_err().msg,
            "CHECKSUM: option \"--checksum-fill\" can only be used once.\n"
        );
    }
}
