//! `-m icmp --icmp-type {any|name|type[/code]}` (loaded implicitly by `-p icmp`).

use super::tcp::require_proto;
use super::util::parse_uint;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct ipt_icmp: a type and an inclusive code range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Icmp {
    pub icmp_type: u8,
    pub code_min: u8,
    pub code_max: u8,
    pub invert: bool,
}

impl Default for Icmp {
    fn default() -> Self {
        // iptables' init: type 0xFF ("any"), all codes.
        Icmp {
            icmp_type: 0xff,
            code_min: 0,
            code_max: 0xff,
            invert: false,
        }
    }
}

/// iptables' ICMP names: (name, type, code_min, code_max), in its table order.
pub const ICMP_CODES: &[(&str, u8, u8, u8)] = &[
    ("any", 0xff, 0, 0xff),
    ("echo-reply", 0, 0, 0xff),
    ("pong", 0, 0, 0xff),
    ("destination-unreachable", 3, 0, 0xff),
    ("network-unreachable", 3, 0, 0),
    ("host-unreachable", 3, 1, 1),
    ("protocol-unreachable", 3, 2, 2),
    ("port-unreachable", 3, 3, 3),
    ("fragmentation-needed", 3, 4, 4),
    ("source-route-failed", 3, 5, 5),
    ("network-unknown", 3, 6, 6),
    ("host-unknown", 3, 7, 7),
    ("network-prohibited", 3, 9, 9),
    ("host-prohibited", 3, 10, 10),
    ("TOS-network-unreachable", 3, 11, 11),
    ("TOS-host-unreachable", 3, 12, 12),
    ("communication-prohibited", 3, 13, 13),
    ("host-precedence-violation", 3, 14, 14),
    ("precedence-cutoff", 3, 15, 15),
    ("source-quench", 4, 0, 0xff),
    ("redirect", 5, 0, 0xff),
    ("network-redirect", 5, 0, 0),
    ("host-redirect", 5, 1, 1),
    ("TOS-network-redirect", 5, 2, 2),
    ("TOS-host-redirect", 5, 3, 3),
    ("echo-request", 8, 0, 0xff),
    ("ping", 8, 0, 0xff),
    ("router-advertisement", 9, 0, 0xff),
    ("router-solicitation", 10, 0, 0xff),
    ("time-exceeded", 11, 0, 0xff),
    ("ttl-exceeded", 11, 0, 0xff),
    ("ttl-zero-during-transit", 11, 0, 0),
    ("ttl-zero-during-reassembly", 11, 1, 1),
    ("parameter-problem", 12, 0, 0xff),
    ("ip-header-bad", 12, 0, 0),
    ("required-option-missing", 12, 1, 1),
    ("timestamp-request", 13, 0, 0xff),
    ("timestamp-reply", 14, 0, 0xff),
    ("address-mask-request", 17, 0, 0xff),
    ("address-mask-reply", 18, 0, 0xff),
];

/// Parses an ICMP type: a (unique-prefix, case-insensitive) name or `type[/code]`.
pub fn parse_icmp_type(s: &str) -> Result<(u8, u8, u8)> {
    let mut found: Option<&(&str, u8, u8, u8)> = None;
    for c in ICMP_CODES {
        if c.0.len() >= s.len() && c.0[..s.len()].eq_ignore_ascii_case(s) && !s.is_empty() {
            if c.0.len() == s.len() {
                found = Some(c);
                break;
            }
            if let Some(f) = found {
                return Err(Error::param(format!(
                    "Ambiguous ICMP type `{s}': `{}' or `{}'?",
                    f.0, c.0
                )));
            }
            found = Some(c);
        }
    }
    if let Some(c) = found {
        return Ok((c.1, c.2, c.3));
    }
    let (t, code) = match s.split_once('/') {
        Some((t, c)) => (t, Some(c)),
        None => (s, None),
    };
    let ty = parse_uint(t, 0, 255)
        .ok_or_else(|| Error::param(format!("Unknown ICMP type `{s}'")))? as u8;
    match code {
        None => Ok((ty, 0, 0xff)),
        Some(c) => {
            let (lo, hi) = match c.split_once(':') {
                Some((a, b)) => (a, b),
                None => (c, c),
            };
            let lo = parse_uint(lo, 0, 255)
                .ok_or_else(|| Error::param(format!("Invalid ICMP code `{c}'")))?;
            let hi = parse_uint(hi, 0, 255)
                .ok_or_else(|| Error::param(format!("Invalid ICMP code `{c}'")))?;
            Ok((ty, lo as u8, hi as u8))
        }
    }
}

impl Extension for Icmp {
    const NAME: &'static str = "icmp";
    const OPTIONS: &'static [Opt] = &[Opt::req("icmp-type").inv()];

    fn new() -> Result<Self> {
        Ok(Icmp::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let (t, lo, hi) = parse_icmp_type(arg)?;
        self.icmp_type = t;
        self.code_min = lo;
        self.code_max = hi;
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "icmp: option \"--icmp-type\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // ipt_icmp declares .proto = ICMP.
        require_proto(cx.ip, 1)
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        if self.icmp_type == 0xff {
            out.push_str(" --icmp-type any");
        } else {
            out.push_str(&format!(" --icmp-type {}", self.icmp_type));
            if self.code_min != 0 || self.code_max != 0xff {
                out.push_str(&format!("/{}", self.code_min));
            }
        }
    }

    fn save_store(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(&format!(
            " --icmp-type {}/{}:{}",
            self.icmp_type, self.code_min, self.code_max
        ));
    }

    fn print(&self, _ip: &IpSpec, numeric: bool, out: &mut String) {
        out.push_str(" icmp");
        if !numeric {
            if let Some(c) = ICMP_CODES
                .iter()
                .find(|c| c.1 == self.icmp_type && c.2 == self.code_min && c.3 == self.code_max)
            {
                out.push_str(&format!(" {}{}", if self.invert { "!" } else { "" }, c.0));
                return;
            }
        }
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(&format!("type {}", self.icmp_type));
        if self.code_min == self.code_max {
            out.push_str(&format!(" code {}", self.code_min));
        } else if self.code_min != 0 || self.code_max != 0xff {
            out.push_str(&format!(" codes {}-{}", self.code_min, self.code_max));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expectations measured with iptables-legacy 1.8.9.
    #[test]
    fn test_names_aliases_and_prefixes() {
        assert_eq!(parse_icmp_type("pong").unwrap(), (0, 0, 0xff));
        assert_eq!(parse_icmp_type("ping").unwrap(), (8, 0, 0xff));
        assert_eq!(parse_icmp_type("ttl-exceeded").unwrap(), (11, 0, 0xff));
        assert_eq!(
            parse_icmp_type("p").unwrap_err().msg,
            "Ambiguous ICMP type `p': `pong' or `protocol-unreachable'?"
        );
        assert_eq!(
            parse_icmp_type("ec").unwrap_err().msg,
            "Ambiguous ICMP type `ec': `echo-reply' or `echo-request'?"
        );
        // -L names a type by its first table entry, not by an alias.
        let mut out = String::new();
        let pong = Icmp {
            icmp_type: 0,
            code_min: 0,
            code_max: 0xff,
            invert: false,
        };
        pong.print(&IpSpec::default(), false, &mut out);
        assert_eq!(out, " icmp echo-reply");
    }
}
