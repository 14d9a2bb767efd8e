//! `-j DNAT --to-destination [ip[-ip]][:port[-port][/base]] [--random] [--persistent]`, and the
//! NAT range syntax SNAT shares.

use super::util::{parse_ipv4, parse_port};
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

/// Parses `ip[-ip][:port[-port][/base]]` for a rule with protocol `ip.proto`.
pub fn parse_range(arg: &str, ip: &IpSpec, target: &str) -> Result<NatRange> {
    let mut r = NatRange::default();
    let (addr_part, port_part) = match arg.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (arg, None),
    };
    if let Some(p) = port_part {
        if !PORT_PROTOS.contains(&ip.proto) || ip.inv_proto {
            return Err(Error::param(
                "Need TCP, UDP, SCTP or DCCP with port specification",
            ));
        }
        let (range, base) = match p.split_once('/') {
            Some((r, b)) => (r, Some(b)),
            None => (p, None),
        };
        let bad = || Error::param(format!("Port `{range}' not valid\n"));
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (
                parse_port(a, None).map_err(|_| bad())?,
                parse_port(b, None).map_err(|_| bad())?,
            ),
            None => {
                let v = parse_port(range, None).map_err(|_| bad())?;
                (v, v)
            }
        };
        if hi < lo {
            return Err(Error::param(format!("Port range `{range}' invalid\n")));
        }
        if lo == 0 {
            return Err(bad());
        }
        r.ports = Some((lo, hi));
        if let Some(b) = base {
            r.base = Some(parse_port(b, None).map_err(|_| bad())?);
        }
    }
    if !addr_part.is_empty() {
        let (a, b) = match addr_part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (addr_part, addr_part),
        };
        let lo = parse_ipv4(a).ok_or_else(|| Error::param(format!("Bad IP address \"{a}\"\n")))?;
        let hi = parse_ipv4(b).ok_or_else(|| Error::param(format!("Bad IP address \"{b}\"\n")))?;
        r.addrs = Some((lo, hi));
    } else if port_part.is_none() {
        return Err(Error::param(format!("{target}: Bad IP address \"{arg}\"")));
    }
    Ok(r)
}

impl NatRange {
    /// Appends the range text (`1.1.1.1-1.1.1.10:1025-65535/1000`).
    pub fn push(&self, out: &mut String) {
        if let Some((lo, hi)) = self.addrs {
            out.push_str(&lo.to_string());
            if lo != hi {
                out.push_str(&format!("-{hi}"));
            }
        }
        if let Some((lo, hi)) = self.ports {
            out.push_str(&format!(":{lo}"));
            if lo != hi {
                out.push_str(&format!("-{hi}"));
            }
            if let Some(b) = self.base {
                out.push_str(&format!("/{b}"));
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
