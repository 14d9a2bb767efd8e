//! `-j TEE --gateway ADDR [--oif NAME]` (xt_TEE): a copy of the packet is routed to the
//! gateway; the original goes on (XT_CONTINUE). Any table, any hook.

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::IpSpec;
use std::net::Ipv4Addr;

/// struct xt_tee_tginfo (IPv4 part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tee {
    /// The gateway the copy is routed to.
    pub gw: Ipv4Addr,
    /// Output interface for the copy (empty: the route decides); at most 15 bytes.
    pub oif: String,
}

impl Default for Tee {
    fn default() -> Self {
        Tee {
            gw: Ipv4Addr::UNSPECIFIED,
            oif: String::new(),
        }
    }
}

/// getaddrinfo's numeric IPv4 forms (inet_aton): one to four parts, each a C number (decimal,
/// `0x` hex, leading-`0` octal); the last part fills the bytes left (`1.2.3` is 1.2.0.3).
pub(crate) fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let mut parts = [0u64; 4];
    let mut n = 0;
    for p in s.split('.') {
        if n == 4
            || p.is_empty()
            || !p
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b'x' || c == b'X')
        {
            return None;
        }
        parts[n] = super::util::strtoull(p)?;
        n += 1;
    }
    let mut v: u64 = 0;
    for (i, &x) in parts[..n - 1].iter().enumerate() {
        if x > 255 {
            return None;
        }
        v |= x << (24 - 8 * i);
    }
    let last_bits = 32 - 8 * (n as u32 - 1);
    if parts[n - 1] >> last_bits != 0 {
        return None;
    }
    Some(Ipv4Addr::from((v | parts[n - 1]) as u32))
}

impl Extension for Tee {
    const NAME: &'static str = "TEE";
    const OPTIONS: &'static [Opt] = &[Opt::req("gateway"), Opt::req("oif")];

    fn new() -> Result<Self> {
        Ok(Tee::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        if opt == 0 {
            // libxtables XTTYPE_HOST: one host (numeric in inet_aton's forms, or a name),
            // no mask, no list; anything else is getaddrinfo's failure.
            let bad = || Error::param("getaddrinfo: Name or service not known\n");
            if arg.is_empty() || arg.contains(['/', ',']) {
                return Err(bad());
            }
            self.gw = match inet_aton(arg) {
                Some(a) => a,
                None => {
                    let addrs = crate::parse::parse_addresses(arg).map_err(|_| bad())?;
                    addrs.first().ok_or_else(bad)?.0
                }
            };
        } else {
            // libxtables XTTYPE_STRING into a 16-byte field: cut to 15 bytes (measured).
            let mut n = arg.len().min(15);
            while !arg.is_char_boundary(n) {
                n -= 1;
            }
            self.oif = arg[..n].to_string();
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen & 1 == 0 {
            return Err(Error::param(
                "TEE: option \"--gateway\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, _cx: &CheckCtx) -> Result<()> {
        // Kernel rule (tee_tg_check): the all-zero gateway is refused.
        if self.gw.is_unspecified() {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(&format!(" --gateway {}", self.gw));
        if !self.oif.is_empty() {
            out.push_str(&format!(" --oif {}", self.oif));
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(&format!(" TEE gw:{}", self.gw));
        if !self.oif.is_empty() {
            out.push_str(&format!(" oif={}", self.oif));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts measured with iptables-legacy 1.8.9 (ip netns, Linux 6.18).
    #[test]
    fn forms_and_errors() {
        let save = |args: &[&str]| {
            let mut v = vec!["-j", "TEE"];
            v.extend_from_slice(args);
            let r = parse_rule(TableKind::Filter, "INPUT", &v).map_err(|e| e.msg)?;
            Ok::<String, String>(rule_save_line("INPUT", &r))
        };
        assert_eq!(
            save(&["--gateway", "1.2.3.4", "--oif", "eth0"]).unwrap(),
            "-A INPUT -j TEE --gateway 1.2.3.4 --oif eth0"
        );
        assert_eq!(
            save(&["--gateway", "1.2.3.4", "--oif", "0123456789abcdefg"]).unwrap(),
            "-A INPUT -j TEE --gateway 1.2.3.4 --oif 0123456789abcde"
        );
        assert_eq!(
            save(&["--gateway", "1.2.3"]).unwrap(),
            "-A INPUT -j TEE --gateway 1.2.0.3"
        );
        assert!(save(&["--gateway", "1.2.3.4/24"])
            .unwrap_err()
            .contains("getaddrinfo"));
        assert!(save(&["--oif", "x"])
            .unwrap_err()
            .contains("TEE: option \"--gateway\" must be specified"));
        let r = parse_rule(
            TableKind::Filter,
            "INPUT",
            &["-j", "TEE", "--gateway", "0.0.0.0"],
        )
        .unwrap();
        let mut t = Table::new(TableKind::Filter);
        t.chain_mut("INPUT").unwrap().rules.push(r);
        assert!(crate::ops::validate_table(&t).is_err(), "0.0.0.0 refused");
    }
}
