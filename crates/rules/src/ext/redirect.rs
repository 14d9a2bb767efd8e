//! `-j REDIRECT [--to-ports P[-Q]] [--random]`: destination NAT to the local address of the
//! incoming interface (nat table, PREROUTING and OUTPUT only).

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{Hook, IpSpec, TableKind};
use crate::services;

/// The single range of struct nf_nat_ipv4_multi_range_compat that REDIRECT uses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Redirect {
    /// NF_NAT_RANGE_PROTO_SPECIFIED: `--to-ports` was given.
    pub ports_given: bool,
    pub min_port: u16,
    pub max_port: u16,
    /// NF_NAT_RANGE_PROTO_RANDOM.
    pub random: bool,
}

/// xtables_strtoui with an end pointer, 0..=65535.
fn strtoui_prefix(s: &str) -> Option<(u16, &str)> {
    super::length::strtoul_prefix(s, 65535).map(|(v, rest)| (v as u16, rest))
}

/// iptables' REDIRECT/MASQUERADE `--to-ports` reader: `port[-port]`, the first may be a
/// service name.
pub fn parse_to_ports(arg: &str) -> Result<(u16, u16)> {
    let not_valid = |p: &str| Error::param(format!("Port `{p}' not valid"));
    let (port, end) = match strtoui_prefix(arg) {
        Some(x) => x,
        None => match services::service_port(arg, None) {
            Some(p) => (p, ""),
            None => return Err(not_valid(arg)),
        },
    };
    match end.as_bytes().first() {
        None => Ok((port, port)),
        Some(b'-') => {
            let rest = &end[1..];
            let (max, tail) = strtoui_prefix(rest).ok_or_else(|| not_valid(rest))?;
            if max < port {
                return Err(Error::param(format!("Port range `{rest}' funky")));
            }
            match tail.as_bytes().first() {
                None => Ok((port, max)),
                Some(b'/') => Err(Error::param(
                    "Shifted portmap ranges not supported with this kernel",
                )),
                Some(_) => Err(Error::param(format!("Garbage after port range: `{tail}'"))),
            }
        }
        Some(b':') => Err(Error::param("Invalid port:port syntax - use dash")),
        Some(_) => Err(Error::param(format!("Garbage after port value: `{end}'"))),
    }
}

const O_TO_PORTS: usize = 0;
const O_RANDOM: usize = 1;

impl Extension for Redirect {
    const NAME: &'static str = "REDIRECT";
    const OPTIONS: &'static [Opt] = &[Opt::req("to-ports"), Opt::flag("random")];

    fn new() -> Result<Self> {
        Ok(Redirect::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        match opt {
            O_TO_PORTS => {
                // iptables looks at `-p` as parsed so far, ignoring its `!`.
                if !matches!(cx.ip.proto, 6 | 17 | 132 | 33 | 1) {
                    return Err(Error::param(
                        "Need TCP, UDP, SCTP or DCCP with port specification",
                    ));
                }
                let (lo, hi) = parse_to_ports(arg)?;
                self.ports_given = true;
                self.min_port = lo;
                self.max_port = hi;
            }
            O_RANDOM => self.random = true,
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: REDIRECT is a nat-table target for PREROUTING and OUTPUT only.
        if cx.table != TableKind::Nat || !cx.hooks_within(&[Hook::PreRouting, Hook::Output]) {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.ports_given {
            out.push_str(&format!(" --to-ports {}", self.min_port));
            if self.max_port != self.min_port {
                out.push_str(&format!("-{}", self.max_port));
            }
        }
        if self.random {
            out.push_str(" --random");
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        if self.ports_given {
            out.push_str(&format!(" redir ports {}", self.min_port));
            if self.max_port != self.min_port {
                out.push_str(&format!("-{}", self.max_port));
            }
        }
        if self.random {
            out.push_str(" random");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_to_ports;
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_port_forms() {
        assert_eq!(parse_to_ports("0x50").unwrap(), (80, 80));
        assert_eq!(parse_to_ports("42-0x500").unwrap(), (42, 1280));
        assert_eq!(parse_to_ports("42- 50").unwrap(), (42, 50));
        assert_eq!(parse_to_ports("http").unwrap(), (80, 80));
        let e = |a: &str| parse_to_ports(a).unwrap_err().msg;
        assert_eq!(e("80-70"), "Port range `70' funky");
        assert_eq!(e("80:90"), "Invalid port:port syntax - use dash");
        assert_eq!(e("80,90"), "Garbage after port value: `,90'");
        assert_eq!(e("080"), "Garbage after port value: `80'");
        assert_eq!(e("80-"), "Port `' not valid");
        assert_eq!(e("-80"), "Port `-80' not valid");
        assert_eq!(e("-0"), "Port `-0' not valid");
        assert_eq!(e("ssh-80"), "Port `ssh-80' not valid");
        assert_eq!(e("10-ssh"), "Port `ssh' not valid");
        assert_eq!(e("1-65536"), "Port `65536' not valid");
        assert_eq!(e("42-1234x"), "Garbage after port range: `x'");
        assert_eq!(e("80-90-100"), "Garbage after port range: `-100'");
        assert_eq!(e("42/5"), "Garbage after port value: `/5'");
        assert_eq!(
            e("80-80/2"),
            "Shifted portmap ranges not supported with this kernel"
        );
    }

    #[test]
    fn test_proto_and_hooks() {
        let p = |args: &[&str]| parse_rule(TableKind::Nat, "PREROUTING", args);
        let r = p(&["!", "-p", "tcp", "-j", "REDIRECT", "--to-ports", "80"]).unwrap();
        assert_eq!(
            rule_save_line("PREROUTING", &r),
            "-A PREROUTING ! -p tcp -j REDIRECT --to-ports 80"
        );
        assert!(p(&["-p", "icmp", "-j", "REDIRECT", "--to-ports", "80"]).is_ok());
        assert_eq!(
            p(&["-j", "REDIRECT", "--to-ports", "80", "-p", "tcp"])
                .unwrap_err()
                .msg,
            "Need TCP, UDP, SCTP or DCCP with port specification"
        );
        let commit = |table: TableKind, chain: &str| {
            let r = parse_rule(table, chain, &["-j", "REDIRECT"]).unwrap();
            let mut t = Table::new(table);
            t.chain_mut(chain).unwrap().rules.push(r);
            crate::ops::validate_table(&t).is_ok()
        };
        assert!(commit(TableKind::Nat, "OUTPUT"));
        assert!(commit(TableKind::Nat, "PREROUTING"));
        assert!(!commit(TableKind::Nat, "INPUT"));
        assert!(!commit(TableKind::Nat, "POSTROUTING"));
        assert!(!commit(TableKind::Filter, "INPUT"));
    }
}
