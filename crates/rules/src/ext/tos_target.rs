//! `-j TOS --set-tos value[/mask]|Name | --and-tos | --or-tos | --xor-tos`: rewrite the IPv4
//! TOS byte as (tos & ~mask) ^ value (mangle table only).

use super::length::xt_uint;
use super::tos::{parse_tos, tos_name};
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{IpSpec, TableKind};

/// struct xt_tos_target_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TosTarget {
    pub value: u8,
    pub mask: u8,
}

const O_SET: usize = 0;
const O_AND: usize = 1;
const O_OR: usize = 2;
const O_XOR: usize = 3;

impl Extension for TosTarget {
    const NAME: &'static str = "TOS";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("set-tos"),
        Opt::req("and-tos"),
        Opt::req("or-tos"),
        Opt::req("xor-tos"),
    ];

    fn new() -> Result<Self> {
        Ok(TosTarget::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        if opt == O_SET {
            (self.value, self.mask) = parse_tos(arg)?;
            return Ok(());
        }
        let name = Self::OPTIONS[opt].name;
        let bits = xt_uint(arg, 0, 255).ok_or_else(|| {
            Error::param(format!(
                "TOS: bad value for option \"--{name}\", or out of range (0-255).\n"
            ))
        })? as u8;
        (self.value, self.mask) = match opt {
            O_AND => (0, !bits),
            O_OR => (bits, bits),
            O_XOR => (bits, 0),
            _ => unreachable!("option index out of table"),
        };
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("TOS: An action is required"));
        }
        for i in 0..4 {
            if seen & (1 << i) == 0 {
                continue;
            }
            if let Some(j) = (0..4).find(|&j| j != i && seen & (1 << j) != 0) {
                return Err(Error::param(format!(
                    "TOS: option \"--{}\" cannot be used together with \"--{}\".\n",
                    Self::OPTIONS[i].name,
                    Self::OPTIONS[j].name
                )));
            }
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: the TOS target is registered for the mangle table only.
        if cx.table != TableKind::Mangle {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(&format!(
            " --set-tos 0x{:02x}/0x{:02x}",
            self.value, self.mask
        ));
    }

    fn print(&self, _ip: &IpSpec, numeric: bool, out: &mut String) {
        let (v, m) = (self.value, self.mask);
        if numeric {
            out.push_str(&format!(" TOS set 0x{v:02x}/0x{m:02x}"));
        } else if let Some(n) = tos_name(v, m) {
            // iptables prints its " TOS set" prefix after another space, then the name.
            out.push_str(&format!("  TOS set{n}"));
        } else if v == 0 {
            out.push_str(&format!(" TOS and 0x{:02x}", !m));
        } else if v == m {
            out.push_str(&format!(" TOS or 0x{v:02x}"));
        } else if m == 0 {
            out.push_str(&format!(" TOS xor 0x{v:02x}"));
        } else {
            out.push_str(&format!(" TOS set 0x{v:02x}/0x{m:02x}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind, Target};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    /// (args, -S tail, -L text) recorded from iptables-legacy 1.8.9.
    const CASES: &[(&str, &str, &str)] = &[
        (
            "--set-tos 0x10/0xff",
            "--set-tos 0x10/0xff",
            " TOS set 0x10/0xff",
        ),
        (
            "--set-tos 0x10/0x3f",
            "--set-tos 0x10/0x3f",
            "  TOS setMinimize-Delay",
        ),
        (
            "--set-tos 0x00/0xff",
            "--set-tos 0x00/0xff",
            " TOS and 0x00",
        ),
        ("--and-tos 0xff", "--set-tos 0x00/0x00", " TOS and 0xff"),
        (
            "--set-tos normal-service",
            "--set-tos 0x00/0x3f",
            "  TOS setNormal-Service",
        ),
        (
            "--set-tos 0x1f/0x3f",
            "--set-tos 0x1f/0x3f",
            " TOS set 0x1f/0x3f",
        ),
        ("--or-tos 0", "--set-tos 0x00/0x00", " TOS and 0xff"),
    ];

    #[test]
    fn test_forms() {
        for (args, save, print) in CASES {
            let mut v = vec!["-j", "TOS"];
            v.extend(args.split_whitespace());
            let r = parse_rule(TableKind::Mangle, "PREROUTING", &v).unwrap();
            assert_eq!(
                rule_save_line("PREROUTING", &r),
                format!("-A PREROUTING -j TOS {save}")
            );
            let Target::Ext(t) = &r.target else { panic!() };
            let mut s = String::new();
            t.print(&r.ip, false, &mut s);
            assert_eq!(&s, print, "{args}");
        }
    }

    #[test]
    fn test_errors_and_table() {
        let e = parse_rule(
            TableKind::Mangle,
            "PREROUTING",
            &["-j", "TOS", "--set-tos", "0x10", "--and-tos", "1"],
        )
        .unwrap_err();
        assert_eq!(
            e.msg,
            "TOS: option \"--set-tos\" cannot be used together with \"--and-tos\".\n"
        );
        let r = parse_rule(TableKind::Filter, "INPUT", &["-j", "TOS", "--set-tos", "1"]).unwrap();
        let mut t = Table::new(TableKind::Filter);
        t.chain_mut("INPUT").unwrap().rules.push(r);
        assert!(crate::ops::validate_table(&t).is_err());
    }
}
