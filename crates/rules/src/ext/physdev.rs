//! `-m physdev`: the bridge ports of a bridged packet (`[!] --physdev-in IF`,
//! `[!] --physdev-out IF`, `[!] --physdev-is-in`, `[!] --physdev-is-out`,
//! `[!] --physdev-is-bridged`). Interface names may end in `+` (prefix match).

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{Hook, IpSpec};

/// bitmask/invert bits (XT_PHYSDEV_OP_*).
pub const OP_IN: u8 = 0x01;
pub const OP_OUT: u8 = 0x02;
pub const OP_BRIDGED: u8 = 0x04;
pub const OP_ISIN: u8 = 0x08;
pub const OP_ISOUT: u8 = 0x10;

/// struct xt_physdev_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Physdev {
    /// Incoming bridge port name as typed (may end in `+`).
    pub in_dev: String,
    pub out_dev: String,
    pub bitmask: u8,
    pub invert: u8,
}

const O_IN: usize = 0;
const O_OUT: usize = 1;
const O_ISIN: usize = 2;
const O_ISOUT: usize = 3;
const O_BRIDGED: usize = 4;

fn parse_iface(s: &str) -> Result<String> {
    if s.len() >= 16 {
        return Err(Error::param(format!(
            "interface name `{s}' must be shorter than IFNAMSIZ (15)"
        )));
    }
    Ok(s.to_string())
}

impl Physdev {
    fn push(&self, out: &mut String) {
        self.push_as(out, false);
    }

    /// `store`: quote names that need it (iptables prints them bare, even empty or with a
    /// blank, which then do not read back).
    fn push_as(&self, out: &mut String, store: bool) {
        let name = |n: &str| {
            if store {
                let mut q = String::new();
                super::helper::push_save_string(&mut q, n);
                q
            } else {
                format!(" {n}")
            }
        };
        let inv = |f: u8| if self.invert & f != 0 { " !" } else { "" };
        if self.bitmask & OP_ISIN != 0 {
            out.push_str(&format!("{} --physdev-is-in", inv(OP_ISIN)));
        }
        if self.bitmask & OP_IN != 0 {
            out.push_str(&format!(
                "{} --physdev-in{}",
                inv(OP_IN),
                name(&self.in_dev)
            ));
        }
        if self.bitmask & OP_ISOUT != 0 {
            out.push_str(&format!("{} --physdev-is-out", inv(OP_ISOUT)));
        }
        if self.bitmask & OP_OUT != 0 {
            out.push_str(&format!(
                "{} --physdev-out{}",
                inv(OP_OUT),
                name(&self.out_dev)
            ));
        }
        if self.bitmask & OP_BRIDGED != 0 {
            out.push_str(&format!("{} --physdev-is-bridged", inv(OP_BRIDGED)));
        }
    }
}

impl Extension for Physdev {
    const NAME: &'static str = "physdev";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("physdev-in").inv(),
        Opt::req("physdev-out").inv(),
        Opt::flag("physdev-is-in").inv(),
        Opt::flag("physdev-is-out").inv(),
        Opt::flag("physdev-is-bridged").inv(),
    ];

    fn new() -> Result<Self> {
        Ok(Physdev::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let bit = match opt {
            O_IN => {
                self.in_dev = parse_iface(arg)?;
                OP_IN
            }
            O_OUT => {
                self.out_dev = parse_iface(arg)?;
                OP_OUT
            }
            O_ISIN => OP_ISIN,
            O_ISOUT => OP_ISOUT,
            O_BRIDGED => OP_BRIDGED,
            _ => unreachable!("option index out of table"),
        };
        self.bitmask |= bit;
        if cx.invert {
            self.invert |= bit;
        }
        Ok(())
    }

    fn final_check(&mut self, _seen: u64, _ip: &IpSpec) -> Result<()> {
        if self.bitmask == 0 {
            return Err(Error::param("PHYSDEV: no physdev option specified"));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: the output bridge port is not known yet for locally generated packets,
        // unless the rule only looks at bridged traffic.
        if self.bitmask & (OP_OUT | OP_ISOUT) != 0
            && (self.bitmask & OP_BRIDGED == 0 || self.invert & OP_BRIDGED != 0)
            && cx.hooks & Hook::Output.bit() != 0
        {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        self.push(out);
    }

    fn save_store(&self, _ip: &IpSpec, out: &mut String) {
        self.push_as(out, true);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" PHYSDEV match");
        self.push(out);
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn p(c: &str, a: &[&str]) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-m", "physdev"];
        v.extend_from_slice(a);
        parse_rule(TableKind::Filter, c, &v)
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_forms() {
        let r = p(
            "FORWARD",
            &["!", "--physdev-out", "eth0", "!", "--physdev-is-bridged"],
        )
        .unwrap();
        assert_eq!(
            rule_save_line("FORWARD", &r),
            "-A FORWARD -m physdev ! --physdev-out eth0 ! --physdev-is-bridged"
        );
        let r = p("FORWARD", &["--physdev-in", "eth+", "!", "--physdev-is-in"]).unwrap();
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " PHYSDEV match ! --physdev-is-in --physdev-in eth+");
        assert_eq!(
            p("FORWARD", &[]).unwrap_err().msg,
            "PHYSDEV: no physdev option specified"
        );
        assert_eq!(
            p("FORWARD", &["--physdev-in", "abcdefghijklmnop"])
                .unwrap_err()
                .msg,
            "interface name `abcdefghijklmnop' must be shorter than IFNAMSIZ (15)"
        );
    }

    #[test]
    fn test_kernel_output_check() {
        let ok = |c: &str, a: &[&str]| {
            let mut t = Table::new(TableKind::Filter);
            t.chain_mut(c).unwrap().rules.push(p(c, a).unwrap());
            crate::ops::validate_table(&t).is_ok()
        };
        assert!(ok(
            "OUTPUT",
            &["--physdev-out", "lo", "--physdev-is-bridged"]
        ));
        assert!(ok("INPUT", &["--physdev-out", "lo"]));
        assert!(!ok("OUTPUT", &["--physdev-is-out"]));
    }
}
