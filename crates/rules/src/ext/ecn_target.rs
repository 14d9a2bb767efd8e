//! `-j ECN --ecn-tcp-remove | --ecn-tcp-ece 0|1 --ecn-tcp-cwr 0|1 --ecn-ip-ect 0..3` (ipt_ECN,
//! mangle table): rewrite the ECN bits of the IP header and the ECE/CWR flags of TCP.

use super::util::parse_uint;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{IpSpec, TableKind};

/// struct ipt_ECN_info: each operation is present or not (IPT_ECN_OP_SET_*).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EcnTarget {
    /// New ECN codepoint of the IP header.
    pub ip_ect: Option<u8>,
    /// New TCP ECE flag.
    pub ece: Option<u8>,
    /// New TCP CWR flag.
    pub cwr: Option<u8>,
}

impl EcnTarget {
    /// The shape `--ecn-tcp-remove` stands for (ECE and CWR cleared, nothing else).
    fn is_remove(&self) -> bool {
        self.ip_ect.is_none() && self.ece == Some(0) && self.cwr == Some(0)
    }
}

impl Extension for EcnTarget {
    const NAME: &'static str = "ECN";
    const OPTIONS: &'static [Opt] = &[
        Opt::flag("ecn-tcp-remove"),
        Opt::req("ecn-tcp-cwr"),
        Opt::req("ecn-tcp-ece"),
        Opt::req("ecn-ip-ect"),
    ];

    fn new() -> Result<Self> {
        Ok(EcnTarget::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        let name = Self::OPTIONS[opt].name;
        let max = if opt == 3 { 3 } else { 1 };
        let value = || {
            parse_uint(arg, 0, max).map(|v| v as u8).ok_or_else(|| {
                Error::param(format!(
                    "ECN: bad value for option \"--{name}\", or out of range (0-{max}).\n"
                ))
            })
        };
        match opt {
            0 => {
                self.ece = Some(0);
                self.cwr = Some(0);
            }
            1 => self.cwr = Some(value()?),
            2 => self.ece = Some(value()?),
            _ => self.ip_ect = Some(value()?),
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        // --ecn-tcp-remove excludes the single-flag options (reported in table order).
        if seen & 1 != 0 {
            for (bit, name) in [(2, "ecn-tcp-cwr"), (4, "ecn-tcp-ece")] {
                if seen & bit != 0 {
                    return Err(Error::param(format!(
                        "ECN: option \"--ecn-tcp-remove\" cannot be used together with \"--{name}\".\n"
                    )));
                }
            }
        }
        if seen == 0 {
            return Err(Error::param("ECN target: An operation is required"));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule (ecn_tg_check): mangle only; the TCP operations need `-p tcp`.
        if cx.table != TableKind::Mangle {
            return Err(Error::kernel(Errno::Inval));
        }
        if self.ece.is_some() || self.cwr.is_some() {
            super::tcp::require_proto(cx.ip, 6)?;
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.is_remove() {
            out.push_str(" --ecn-tcp-remove");
            return;
        }
        if let Some(v) = self.ece {
            out.push_str(&format!(" --ecn-tcp-ece {v}"));
        }
        if let Some(v) = self.cwr {
            out.push_str(&format!(" --ecn-tcp-cwr {v}"));
        }
        if let Some(v) = self.ip_ect {
            out.push_str(&format!(" --ecn-ip-ect {v}"));
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" ECN");
        if self.is_remove() {
            out.push_str(" TCP remove");
            return;
        }
        if let Some(v) = self.ece {
            out.push_str(&format!(" ECE={v}"));
        }
        if let Some(v) = self.cwr {
            out.push_str(&format!(" CWR={v}"));
        }
        if let Some(v) = self.ip_ect {
            out.push_str(&format!(" ECT codepoint={v}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn p(a: &[&str]) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-p", "tcp", "-j", "ECN"];
        v.extend_from_slice(a);
        parse_rule(TableKind::Mangle, "PREROUTING", &v)
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn forms() {
        let cases = [
            (&["--ecn-tcp-cwr", "1"][..], "--ecn-tcp-cwr 1", " ECN CWR=1"),
            (
                &["--ecn-tcp-cwr", "0x1"][..],
                "--ecn-tcp-cwr 1",
                " ECN CWR=1",
            ),
            (
                &["--ecn-tcp-ece", "0", "--ecn-tcp-cwr", "0"][..],
                "--ecn-tcp-remove",
                " ECN TCP remove",
            ),
            (
                &["--ecn-ip-ect", "3"][..],
                "--ecn-ip-ect 3",
                " ECN ECT codepoint=3",
            ),
        ];
        for (args, saved, listed) in cases {
            let r = p(args).unwrap();
            assert_eq!(
                rule_save_line("PREROUTING", &r),
                format!("-A PREROUTING -p tcp -j ECN {saved}")
            );
            let mut s = String::new();
            let crate::model::Target::Ext(t) = &r.target else {
                panic!("{:?}", r.target)
            };
            t.print(&r.ip, true, &mut s);
            assert!(s.ends_with(listed), "{s:?}");
        }
    }

    #[test]
    fn errors() {
        let cases = [
            (
                &["--ecn-tcp-cwr", "2"][..],
                "ECN: bad value for option \"--ecn-tcp-cwr\", or out of range (0-1).\n",
            ),
            (
                &["--ecn-ip-ect", "4"][..],
                "ECN: bad value for option \"--ecn-ip-ect\", or out of range (0-3).\n",
            ),
            (
                &["--ecn-tcp-remove", "--ecn-tcp-cwr", "1"][..],
                "ECN: option \"--ecn-tcp-remove\" cannot be used together with \"--ecn-tcp-cwr\".\n",
            ),
            (
                &["--ecn-tcp-ece", "1", "--ecn-tcp-remove"][..],
                "ECN: option \"--ecn-tcp-remove\" cannot be used together with \"--ecn-tcp-ece\".\n",
            ),
            (&[][..], "ECN target: An operation is required"),
        ];
        for (args, msg) in cases {
            assert_eq!(p(args).unwrap_err().msg, msg, "{args:?}");
        }
    }
}
