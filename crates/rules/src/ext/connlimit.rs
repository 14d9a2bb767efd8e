//! `-m connlimit --connlimit-upto N | --connlimit-above N [--connlimit-mask LEN]
//! [--connlimit-saddr | --connlimit-daddr]` (xt_connlimit, revision 1): the number of
//! connections sharing the packet's masked source (or destination) address compared with a limit.

use super::length::xt_uint;
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_connlimit_info (IPv4 part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connlimit {
    /// The address mask, host order.
    pub mask: u32,
    /// The limit.
    pub limit: u32,
    /// XT_CONNLIMIT_INVERT: match when the count is at most `limit` (`--connlimit-upto`).
    pub upto: bool,
    /// XT_CONNLIMIT_DADDR: count by destination address.
    pub daddr: bool,
}

impl Default for Connlimit {
    fn default() -> Self {
        Connlimit {
            mask: u32::MAX,
            limit: 0,
            upto: false,
            daddr: false,
        }
    }
}

const O_UPTO: usize = 0;
const O_ABOVE: usize = 1;
const O_MASK: usize = 2;
const O_SADDR: usize = 3;
const O_DADDR: usize = 4;

impl Connlimit {
    /// The prefix length iptables prints (count_bits4: 32 minus the bits below the highest
    /// clear bit of the mask).
    pub fn prefix_len(&self) -> u32 {
        (!self.mask).leading_zeros()
    }
}

impl Extension for Connlimit {
    const NAME: &'static str = "connlimit";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("connlimit-upto").inv(),
        Opt::req("connlimit-above").inv(),
        Opt::req("connlimit-mask"),
        Opt::flag("connlimit-saddr"),
        Opt::flag("connlimit-daddr"),
    ];

    fn new() -> Result<Self> {
        Ok(Connlimit::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        match opt {
            O_UPTO | O_ABOVE => {
                let name = Self::OPTIONS[opt].name;
                self.limit = xt_uint(arg, 0, u64::from(u32::MAX)).ok_or_else(|| {
                    Error::param(format!(
                        "connlimit: bad value for option \"--{name}\", or out of range (0-4294967295).\n"
                    ))
                })? as u32;
                // `! --connlimit-above` is `--connlimit-upto` and the reverse.
                self.upto = (opt == O_UPTO) != cx.invert;
            }
            O_MASK => {
                // Measured (iptables-legacy 1.8.9): a number up to 32 is a prefix length;
                // anything else must read as an address: a contiguous mask gives its prefix,
                // any other address the full mask.
                let bad = || {
                    Error::param(
                        "connlimit: bad value for option \"--connlimit-mask\", neither a valid network mask nor valid CIDR (0-32).\n",
                    )
                };
                self.mask = match xt_uint(arg, 0, 32) {
                    Some(0) => 0,
                    Some(n) => u32::MAX << (32 - n),
                    None => {
                        let a = super::tee::inet_aton(arg).ok_or_else(bad)?;
                        let m = u32::from(a);
                        if m.checked_shl(m.leading_ones()).unwrap_or(0) == 0 {
                            m
                        } else {
                            u32::MAX
                        }
                    }
                };
            }
            O_SADDR => self.daddr = false,
            _ => self.daddr = true,
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen & ((1 << O_UPTO) | (1 << O_ABOVE)) == 0 {
            return Err(Error::param(
                "You must specify \"--connlimit-above\" or \"--connlimit-upto\".",
            ));
        }
        // libxtables (xtables_options_fcheck): upto/above and saddr/daddr exclude each other,
        // reported in option-table order.
        for (a, b) in [(O_UPTO, O_ABOVE), (O_SADDR, O_DADDR)] {
            if seen & (1 << a) != 0 && seen & (1 << b) != 0 {
                return Err(Error::param(format!(
                    "connlimit: option \"--{}\" cannot be used together with \"--{}\".\n",
                    Self::OPTIONS[a].name,
                    Self::OPTIONS[b].name
                )));
            }
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        let which = if self.upto { "upto" } else { "above" };
        out.push_str(&format!(
            " --connlimit-{which} {} --connlimit-mask {} --connlimit-{}",
            self.limit,
            self.prefix_len(),
            if self.daddr { "daddr" } else { "saddr" }
        ));
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(&format!(
            " #conn {}/{} {} {}",
            if self.daddr { "dst" } else { "src" },
            self.prefix_len(),
            if self.upto { "<=" } else { ">" },
            self.limit
        ));
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts measured with iptables-legacy 1.8.9 (ip netns, Linux 6.18).
    #[test]
    fn forms_and_errors() {
        let save = |args: &str| {
            let mut v = vec!["-p", "tcp", "-m", "connlimit"];
            v.extend(args.split(' '));
            let r = parse_rule(TableKind::Filter, "INPUT", &v).map_err(|e| e.msg)?;
            Ok::<String, String>(rule_save_line("INPUT", &r))
        };
        let pre = "-A INPUT -p tcp -m connlimit";
        for (args, want) in [
            (
                "--connlimit-above 2",
                "--connlimit-above 2 --connlimit-mask 32 --connlimit-saddr",
            ),
            (
                "! --connlimit-above 2",
                "--connlimit-upto 2 --connlimit-mask 32 --connlimit-saddr",
            ),
            (
                "! --connlimit-upto 2",
                "--connlimit-above 2 --connlimit-mask 32 --connlimit-saddr",
            ),
            (
                "--connlimit-upto 2 --connlimit-mask 24 --connlimit-daddr",
                "--connlimit-upto 2 --connlimit-mask 24 --connlimit-daddr",
            ),
            (
                "--connlimit-above 2 --connlimit-mask 33",
                "--connlimit-above 2 --connlimit-mask 32 --connlimit-saddr",
            ),
            (
                "--connlimit-above 2 --connlimit-mask 0",
                "--connlimit-above 2 --connlimit-mask 0 --connlimit-saddr",
            ),
            (
                "--connlimit-above 2 --connlimit-mask 31",
                "--connlimit-above 2 --connlimit-mask 31 --connlimit-saddr",
            ),
            (
                "--connlimit-above 2 --connlimit-mask 129",
                "--connlimit-above 2 --connlimit-mask 32 --connlimit-saddr",
            ),
            (
                "--connlimit-above 2 --connlimit-mask 255.255.0.0",
                "--connlimit-above 2 --connlimit-mask 16 --connlimit-saddr",
            ),
            (
                "--connlimit-above 2 --connlimit-mask 255.0.255.0",
                "--connlimit-above 2 --connlimit-mask 32 --connlimit-saddr",
            ),
            (
                "--connlimit-above 2 --connlimit-mask 0.0.0.0",
                "--connlimit-above 2 --connlimit-mask 0 --connlimit-saddr",
            ),
            (
                "--connlimit-above 0x10",
                "--connlimit-above 16 --connlimit-mask 32 --connlimit-saddr",
            ),
        ] {
            assert_eq!(save(args).unwrap(), format!("{pre} {want}"), "{args}");
        }
        for (args, err) in [
            (
                "--connlimit-above 2 --connlimit-mask x",
                "neither a valid network mask",
            ),
            (
                "--connlimit-above 2 --connlimit-mask -1",
                "neither a valid network mask",
            ),
            (
                "--connlimit-above 2 --connlimit-upto 3",
                "option \"--connlimit-upto\" cannot be used together with \"--connlimit-above\"",
            ),
            (
                "--connlimit-above 2 --connlimit-above 3",
                "can only be used once",
            ),
            (
                "--connlimit-above 2 ! --connlimit-saddr",
                "cannot be inverted",
            ),
        ] {
            assert!(save(args).unwrap_err().contains(err), "{args}");
        }
    }
}
