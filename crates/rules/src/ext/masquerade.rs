//! `-j MASQUERADE [--to-ports p[-q]] [--random] [--random-fully]`.

use super::dnat::check_nat;
use super::util::parse_port;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::{Hook, IpSpec};

/// `-j MASQUERADE`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Masquerade {
    pub ports: Option<(u16, u16)>,
    pub random: bool,
    pub random_fully: bool,
}

impl Extension for Masquerade {
    const NAME: &'static str = "MASQUERADE";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("to-ports"),
        Opt::flag("random"),
        Opt::flag("random-fully"),
    ];

    fn new() -> Result<Self> {
        Ok(Masquerade::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        match opt {
            0 => {
                if ![6, 17, 132, 33].contains(&cx.ip.proto) || cx.ip.inv_proto {
                    return Err(Error::param(
                        "Need TCP, UDP, SCTP or DCCP with port specification",
                    ));
                }
                let one = |p: &str| {
                    parse_port(p, None).map_err(|_| Error::param(format!("Port `{p}' not valid")))
                };
                // strtoul reads a leading '-' as part of the number: "-1" is one bad port.
                let split = arg.get(1..).and_then(|r| r.find('-')).map(|i| i + 1);
                let (lo, hi) = match split.map(|i| (&arg[..i], &arg[i + 1..])) {
                    Some((a, b)) => (one(a)?, one(b)?),
                    None => {
                        let v = one(arg)?;
                        (v, v)
                    }
                };
                if hi < lo {
                    let hi_text = &arg[arg.len() - split.map_or(0, |i| arg.len() - i - 1)..];
                    return Err(Error::param(format!("Port range `{hi_text}' funky")));
                }
                self.ports = Some((lo, hi));
            }
            1 => self.random = true,
            _ => self.random_fully = true,
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        check_nat(cx, &[Hook::PostRouting])
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if let Some((lo, hi)) = self.ports {
            out.push_str(&format!(" --to-ports {lo}"));
            if lo != hi {
                out.push_str(&format!("-{hi}"));
            }
        }
        if self.random {
            out.push_str(" --random");
        }
        if self.random_fully {
            out.push_str(" --random-fully");
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        if let Some((lo, hi)) = self.ports {
            out.push_str(&format!(" masq ports: {lo}"));
            if lo != hi {
                out.push_str(&format!("-{hi}"));
            }
        }
        if self.random {
            out.push_str(" random");
        }
        if self.random_fully {
            out.push_str(" random-fully");
        }
    }
}
