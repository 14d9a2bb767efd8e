//! `-j DNAT --to-destination [ip[-ip]][:port[-port][/base]] [--random] [--persistent]`, and the
//! NAT range syntax SNAT shares.

use super::util::{parse_ipv4, parse_uint_prefix};
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{Hook, IpSpec, TableKind};
use std::net::Ipv4Addr;

/// A NAT range (struct nf_nat_range2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NatRange {
    /// Address range, when addresses are mapped.
    pub addrs: Option<(Ipv4Addr, Ipv4Addr)>,
    /// Port range, when ports are mapped.
    pub ports: Option<(u16, u16)>,
    /// `/base` port offset base (DNAT revision 2).
    pub base: Option<u16>,
    pub random: bool,
    pub random_fully: bool,
    pub persistent: bool,
}

const PORT_PROTOS: &[u16] = &[6, 17, 132, 33];

/// A number at the start of `s`, else all of `s` as a service name (iptables' NAT port
/// reading); returns the port and what follows it.
fn nat_port(s: &str, min: u64) -> Result<(u16, &str)> {
    // The usual text, plain decimal digits without a leading zero (so base 10 for strtoul
    // too), read directly; anything else the general way.
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=5).contains(&digits) && s.as_bytes()[0] != b'0' {
        let v = s.as_bytes()[..digits]
            .iter()
            .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
        if (min..=65535).contains(&v) {
            return Ok((v as u16, &s[digits..]));
        }
    }
    if let Some((v, rest)) = parse_uint_prefix(s, min, 65535) {
        return Ok((v as u16, rest));
    }
    match crate::services::service_port(s, None) {
        Some(p) if u64::from(p) >= min => Ok((p, "")),
        _ => Err(Error::param(format!("Port `{s}' not valid"))),
    }
}

/// `port[-port[/base]]`.
pub fn parse_nat_ports(s: &str) -> Result<((u16, u16), Option<u16>)> {
    let (lo, rest) = nat_port(s, 0)?;
    let rest = match rest.as_bytes().first() {
        None => return Ok(((lo, lo), None)),
        Some(b'-') => &rest[1..],
        Some(b':') => return Err(Error::param("Invalid port:port syntax - use dash")),
        Some(_) => return Err(Error::param(format!("Garbage after port value: `{rest}'"))),
    };
    let hi_text = rest;
    let (hi, rest) = nat_port(rest, 0)?;
    if hi < lo {
        // Measured text of iptables 1.8.9, naming the upper bound.
        let hi_text = &hi_text[..hi_text.len() - rest.len()];
        return Err(Error::param(format!("Port range `{hi_text}' funky")));
    }
    let base = match rest.as_bytes().first() {
        None => return Ok(((lo, hi), None)),
        Some(b'/') => &rest[1..],
        Some(_) => return Err(Error::param(format!("Garbage after port range: `{rest}'"))),
    };
    let (b, _) = nat_port(base, 1)?;
    Ok(((lo, hi), Some(b)))
}

/// Parses `ip[-ip][:port[-port][/base]]` for a rule with protocol `ip.proto`.
pub fn parse_range(arg: &str, ip: &IpSpec, target: &str) -> Result<NatRange> {
    let mut r = NatRange::default();
    // At most one `:` in all.
    let (addr_part, port_part) = match super::util::split_once_byte(arg, b':') {
        Some((_, p)) if p.contains(':') => {
            return Err(Error::param(format!("Bad IP address \"{arg}\"")));
        }
        Some((a, p)) => (a, Some(p)),
        None => (arg, None),
    };
    if let Some(p) = port_part {
        if !PORT_PROTOS.contains(&ip.proto) || ip.inv_proto {
            return Err(Error::param(
                "Need TCP, UDP, SCTP or DCCP with port specification",
            ));
        }
        let (ports, base) = parse_nat_ports(p)?;
        r.ports = Some(ports);
        r.base = base;
    }
    if !addr_part.is_empty() {
        let bad = |a: &str| Error::param(format!("Bad IP address \"{a}\""));
        // One address (the usual text, which holds no `-`) is read first.
        r.addrs = Some(match parse_ipv4(addr_part) {
            Some(one) => (one, one),
            None => match super::util::split_once_byte(addr_part, b'-') {
                Some((a, b)) => (
                    parse_ipv4(a).ok_or_else(|| bad(a))?,
                    parse_ipv4(b).ok_or_else(|| bad(b))?,
                ),
                None => return Err(bad(addr_part)),
            },
        });
    } else if port_part.is_none() {
        return Err(Error::param(format!("{target}: Bad IP address \"{arg}\"")));
    }
    Ok(r)
}

impl NatRange {
    /// Appends the range text (`1.1.1.1-1.1.1.10:1025-65535/1000`).
    pub fn push(&self, out: &mut String) {
        use crate::save::{push_ipv4, push_u64};
        if let Some((lo, hi)) = self.addrs {
            push_ipv4(out, lo);
            if lo != hi {
                out.push('-');
                push_ipv4(out, hi);
            }
        }
        if let Some((lo, hi)) = self.ports {
            out.push(':');
            push_u64(out, u64::from(lo));
            if lo != hi {
                out.push('-');
                push_u64(out, u64::from(hi));
            }
            if let Some(b) = self.base {
                out.push('/');
                push_u64(out, u64::from(b));
            }
        }
    }

    /// Appends the flag words (`random`, `random-fully`, `persistent`) with `pfx` (`" --"`/`" "`).
    pub fn push_flags(&self, out: &mut String, pfx: &str) {
        for (on, name) in [
            (self.random, "random"),
            (self.random_fully, "random-fully"),
            (self.persistent, "persistent"),
        ] {
            if on {
                out.push_str(pfx);
                out.push_str(name);
            }
        }
    }
}

/// Kernel rule for NAT targets: table nat only, and only from the given hooks.
pub fn check_nat(cx: &CheckCtx, hooks: &[Hook]) -> Result<()> {
    if cx.table != TableKind::Nat || !cx.hooks_within(hooks) {
        return Err(Error::kernel(Errno::Inval));
    }
    Ok(())
}

/// `-j DNAT`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dnat {
    pub range: NatRange,
}

impl Extension for Dnat {
    const NAME: &'static str = "DNAT";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("to-destination"),
        Opt::flag("random"),
        Opt::flag("persistent"),
    ];

    fn new() -> Result<Self> {
        Ok(Dnat::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        match opt {
            0 => {
                let r = parse_range(arg, cx.ip, "DNAT")?;
                self.range.addrs = r.addrs;
                self.range.ports = r.ports;
                self.range.base = r.base;
            }
            1 => self.range.random = true,
            _ => self.range.persistent = true,
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen & 1 == 0 {
            return Err(Error::param(
                "DNAT: option \"--to-destination\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        check_nat(cx, &[Hook::PreRouting, Hook::Output])
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(" --to-destination ");
        self.range.push(out);
        self.range.push_flags(out, " --");
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" to:");
        self.range.push(out);
        self.range.push_flags(out, " ");
    }
}
