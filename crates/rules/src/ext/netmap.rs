//! `-j NETMAP --to ADDR[/MASK]`: one-to-one mapping of a whole network (nat table): the
//! network bits are replaced, the host bits kept.

use super::length::xt_uint;
use super::recent::inet_aton;
use super::util::{cidr_to_mask, mask_to_cidr};
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{IpSpec, TableKind};
use std::net::Ipv4Addr;

/// The range NETMAP keeps (min_ip = network, prefix length of the mask).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Netmap {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

/// `ADDR[/BITS|/DOTTED]`. iptables 1.8.9 turns a prefix above 32 or a non-contiguous mask
/// into /32 (address unmasked).
fn parse_to(arg: &str) -> Result<(Ipv4Addr, u8)> {
    let (a, m) = match arg.split_once('/') {
        Some((a, m)) => (a, Some(m)),
        None => (arg, None),
    };
    let addr = inet_aton(a).ok_or_else(|| super::recent::getaddrinfo_error(a))?;
    let prefix = match m {
        None => 32,
        Some(m) => {
            if let Some(v) = xt_uint(m, 0, u64::from(u32::MAX)) {
                v.min(32) as u8
            } else if let Some(mask) = inet_aton(m).filter(|_| m.contains('.')) {
                mask_to_cidr(mask).unwrap_or(32)
            } else {
                return Err(Error::param(
                    "NETMAP: bad value for option \"--to\", neither a valid network mask nor valid CIDR (0-32).\n",
                ));
            }
        }
    };
    let net = u32::from(addr) & u32::from(cidr_to_mask(prefix));
    Ok((Ipv4Addr::from(net), prefix))
}

impl Extension for Netmap {
    const NAME: &'static str = "NETMAP";
    const OPTIONS: &'static [Opt] = &[Opt::req("to")];

    fn new() -> Result<Self> {
        Ok(Netmap {
            network: Ipv4Addr::UNSPECIFIED,
            prefix: 0,
        })
    }

    fn parse(&mut self, _opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        (self.network, self.prefix) = parse_to(arg)?;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("NETMAP: option \"--to\" must be specified\n"));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: NETMAP is a nat-table target (all four nat hooks).
        if cx.table != TableKind::Nat {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(&format!(" --to {}/{}", self.network, self.prefix));
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(&format!(" to:{}/{}", self.network, self.prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::parse_to;
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use std::net::Ipv4Addr;

    // Expected values recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_to_forms() {
        let t = |s: &str| parse_to(s).unwrap();
        assert_eq!(t("1.2.3.4/255.255.0.0"), (Ipv4Addr::new(1, 2, 0, 0), 16));
        assert_eq!(t("1.2.3.4/255.0.255.0"), (Ipv4Addr::new(1, 2, 3, 4), 32));
        assert_eq!(t("1.2.3.4/0"), (Ipv4Addr::new(0, 0, 0, 0), 0));
        assert_eq!(t("1.2.3.4/33"), (Ipv4Addr::new(1, 2, 3, 4), 32));
        assert_eq!(t("1.2/16"), (Ipv4Addr::new(1, 0, 0, 0), 16));
        assert_eq!(t("0x01020304/8"), (Ipv4Addr::new(1, 0, 0, 0), 8));
        assert_eq!(t("1.2.3.4/0x10"), (Ipv4Addr::new(1, 2, 0, 0), 16));
        assert_eq!(t("010.1.1.1/32"), (Ipv4Addr::new(8, 1, 1, 1), 32));
        assert!(parse_to("1.2.3.4/").is_err());
        assert!(parse_to("foo").is_err());
    }

    #[test]
    fn test_tables() {
        let ok = |tk: TableKind, c: &str| {
            let r = parse_rule(tk, c, &["-j", "NETMAP", "--to", "1.2.3.0/24"]).unwrap();
            let mut t = Table::new(tk);
            t.chain_mut(c).unwrap().rules.push(r);
            crate::ops::validate_table(&t).is_ok()
        };
        for c in ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"] {
            assert!(ok(TableKind::Nat, c));
        }
        assert!(!ok(TableKind::Mangle, "PREROUTING"));
    }
}
