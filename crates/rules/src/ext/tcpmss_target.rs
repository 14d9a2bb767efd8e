//! `-j TCPMSS --set-mss N | --clamp-mss-to-pmtu`: rewrite the MSS option of TCP SYNs (needs
//! `-p tcp`; clamping only where the route is known: FORWARD, OUTPUT, POSTROUTING).

use super::length::xt_uint;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{Hook, IpSpec};

/// XT_TCPMSS_CLAMP_PMTU: the mss value that means "clamp to path MTU".
pub const CLAMP_PMTU: u16 = 0xffff;

/// struct xt_tcpmss_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpmssTarget {
    pub mss: u16,
}

const O_SET: usize = 0;
const O_CLAMP: usize = 1;

impl Extension for TcpmssTarget {
    const NAME: &'static str = "TCPMSS";
    const OPTIONS: &'static [Opt] = &[Opt::req("set-mss"), Opt::flag("clamp-mss-to-pmtu")];

    fn new() -> Result<Self> {
        Ok(TcpmssTarget::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        // Both options may be given; the later one wins (as in iptables 1.8.9).
        self.mss = match opt {
            O_SET => xt_uint(arg, 0, 65535 - 20).ok_or_else(|| {
                Error::param(
                    "TCPMSS: bad value for option \"--set-mss\", or out of range (0-65515).\n",
                )
            })? as u16,
            O_CLAMP => CLAMP_PMTU,
            _ => unreachable!("option index out of table"),
        };
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "TCPMSS target: At least one parameter is required",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rules: TCP only, and only for SYNs: the rule needs a tcp match whose
        // --tcp-flags comparison includes SYN (not inverted); clamping needs the output route.
        super::tcp::require_proto(cx.ip, 6)?;
        let syn = cx
            .matches
            .iter()
            .any(|m| matches!(m, super::Match::Tcp(t) if t.flags_cmp & 0x02 != 0 && !t.inv_flags));
        if !syn {
            return Err(Error::kernel(Errno::Inval));
        }
        if self.mss == CLAMP_PMTU
            && !cx.hooks_within(&[Hook::Forward, Hook::Output, Hook::PostRouting])
        {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.mss == CLAMP_PMTU {
            out.push_str(" --clamp-mss-to-pmtu");
        } else {
            out.push_str(&format!(" --set-mss {}", self.mss));
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        if self.mss == CLAMP_PMTU {
            out.push_str(" TCPMSS clamp to PMTU");
        } else {
            out.push_str(&format!(" TCPMSS set {}", self.mss));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn p(c: &str, a: &[&str]) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-p", "tcp", "--syn", "-j", "TCPMSS"];
        v.extend_from_slice(a);
        parse_rule(TableKind::Mangle, c, &v)
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_forms() {
        assert_eq!(
            rule_save_line(
                "FORWARD",
                &p("FORWARD", &["--clamp-mss-to-pmtu", "--set-mss", "5"]).unwrap()
            ),
            "-A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --set-mss 5"
        );
        assert_eq!(
            rule_save_line("FORWARD", &p("FORWARD", &["--set-mss", "0x10"]).unwrap()),
            "-A FORWARD -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j TCPMSS --set-mss 16"
        );
        assert_eq!(
            p("FORWARD", &["--set-mss", "65516"]).unwrap_err().msg,
            "TCPMSS: bad value for option \"--set-mss\", or out of range (0-65515).\n"
        );
    }

    #[test]
    fn test_kernel_hooks() {
        let ok = |c: &str, a: &[&str]| {
            let mut t = Table::new(TableKind::Mangle);
            t.chain_mut(c).unwrap().rules.push(p(c, a).unwrap());
            crate::ops::validate_table(&t).is_ok()
        };
        assert!(ok("FORWARD", &["--clamp-mss-to-pmtu"]));
        assert!(!ok("PREROUTING", &["--clamp-mss-to-pmtu"]));
        assert!(ok("PREROUTING", &["--set-mss", "500"]));
        let bare = |args: &[&str]| {
            let mut v = vec!["-p", "tcp"];
            v.extend_from_slice(args);
            v.extend_from_slice(&["-j", "TCPMSS", "--set-mss", "500"]);
            let mut t = Table::new(TableKind::Mangle);
            t.chain_mut("FORWARD")
                .unwrap()
                .rules
                .push(parse_rule(TableKind::Mangle, "FORWARD", &v).unwrap());
            crate::ops::validate_table(&t).is_ok()
        };
        assert!(!bare(&[]));
        assert!(!bare(&["!", "--syn"]));
        assert!(!bare(&["--tcp-flags", "ALL", "NONE"]));
        assert!(bare(&["--tcp-flags", "SYN", "SYN"]));
    }
}
