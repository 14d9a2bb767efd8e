//! `-m tos [!] --tos value[/mask]|Name`: the IPv4 TOS byte, masked, equals value. Also holds
//! the TOS value reader and the symbolic names shared with the TOS target.

use super::length::strtoul_prefix;
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// The RFC 1349 names iptables knows; they stand for value/0x3f.
pub const TOS_NAMES: &[(&str, u8)] = &[
    ("Minimize-Cost", 0x02),
    ("Maximize-Reliability", 0x04),
    ("Maximize-Throughput", 0x08),
    ("Minimize-Delay", 0x10),
    ("Normal-Service", 0x00),
];

/// iptables' TOS reader: `value[/mask]` (mask defaults to 0xff) or a name (mask 0x3f).
pub fn parse_tos(s: &str) -> Result<(u8, u8)> {
    let illegal = || Error::param(format!("Illegal value: \"{s}\""));
    if let Some((v, end)) = strtoul_prefix(s, 255) {
        let (mask, end) = match end.strip_prefix('/') {
            Some(m) => strtoul_prefix(m, 255).ok_or_else(illegal)?,
            None => (255, end),
        };
        if !end.is_empty() {
            return Err(illegal());
        }
        return Ok((v as u8, mask as u8));
    }
    TOS_NAMES
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(s))
        .map(|(_, v)| (*v, 0x3f))
        .ok_or_else(|| Error::param(format!("Symbolic name \"{s}\" is unknown")))
}

/// The name of value/mask when the mask is 0x3f and the value has one.
pub fn tos_name(value: u8, mask: u8) -> Option<&'static str> {
    if mask != 0x3f {
        return None;
    }
    TOS_NAMES.iter().find(|(_, v)| *v == value).map(|(n, _)| *n)
}

/// struct xt_tos_match_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tos {
    pub value: u8,
    pub mask: u8,
    pub invert: bool,
}

impl Extension for Tos {
    const NAME: &'static str = "tos";
    const OPTIONS: &'static [Opt] = &[Opt::req("tos").inv()];

    fn new() -> Result<Self> {
        Ok(Tos::default())
    }

    fn parse(&mut self, _opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        (self.value, self.mask) = parse_tos(arg)?;
        self.invert = cx.invert;
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("tos: option \"--tos\" must be specified\n"));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(&format!(" --tos 0x{:02x}/0x{:02x}", self.value, self.mask));
    }

    fn print(&self, _ip: &IpSpec, numeric: bool, out: &mut String) {
        out.push_str(" tos match");
        if self.invert {
            out.push('!');
        }
        match tos_name(self.value, self.mask).filter(|_| !numeric) {
            Some(n) => out.push_str(&format!(" {n}")),
            None => out.push_str(&format!("0x{:02x}/0x{:02x}", self.value, self.mask)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_tos;
    use crate::model::TableKind;
    use crate::parse::parse_rule;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_values() {
        assert_eq!(parse_tos("minimize-delay").unwrap(), (0x10, 0x3f));
        assert_eq!(parse_tos("16").unwrap(), (0x10, 0xff));
        assert_eq!(
            parse_tos("256").unwrap_err().msg,
            "Symbolic name \"256\" is unknown"
        );
        for bad in ["0x10/0x100", "16x", "0x10/", "0x10/0x3f/1"] {
            assert_eq!(
                parse_tos(bad).unwrap_err().msg,
                format!("Illegal value: \"{bad}\"")
            );
        }
    }

    #[test]
    fn test_print() {
        let r = parse_rule(
            TableKind::Filter,
            "INPUT",
            &["-m", "tos", "!", "--tos", "Normal-Service"],
        )
        .unwrap();
        let (mut n, mut l) = (String::new(), String::new());
        r.matches[0].print(&r.ip, true, &mut n);
        r.matches[0].print(&r.ip, false, &mut l);
        assert_eq!(n, " tos match!0x00/0x3f");
        assert_eq!(l, " tos match! Normal-Service");
    }
}
