//! `-m iprange` (revision 1): source and/or destination address within an inclusive range
//! (`[!] --src-range a[-b]`, `[!] --dst-range a[-b]`). Also holds iptables' numeric address
//! reader (`xtables_numeric_to_ipaddr`), shared with NETMAP.

use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;
use std::net::Ipv4Addr;

/// xtables_numeric_to_ipaddr: up to four dot-separated bytes (each decimal, 0x hex or 0
/// octal); fewer than four parts complete a network address with zeros (`1.2` = 1.2.0.0).
/// Only the first 19 characters are looked at, as iptables copies into a 20-byte buffer.
pub fn numeric_to_ipaddr(s: &str) -> Option<Ipv4Addr> {
    let mut end = s.len().min(19);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let s = &s[..end];
    let byte = |p: &str| {
        super::length::strtoul_prefix(p, 255)
            .filter(|(_, rest)| rest.is_empty())
            .map(|(v, _)| v as u8)
    };
    let mut b = [0u8; 4];
    let mut rest = s;
    for slot in b.iter_mut().take(3) {
        match rest.split_once('.') {
            None => {
                *slot = byte(rest)?;
                return Some(Ipv4Addr::from(b));
            }
            Some((p, r)) => {
                *slot = byte(p)?;
                rest = r;
            }
        }
    }
    b[3] = byte(rest)?;
    Some(Ipv4Addr::from(b))
}

/// struct xt_iprange_mtinfo (IPv4 part) with its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Iprange {
    /// Some((from, to)) when `--src-range` was given.
    pub src: Option<(Ipv4Addr, Ipv4Addr)>,
    pub inv_src: bool,
    pub dst: Option<(Ipv4Addr, Ipv4Addr)>,
    pub inv_dst: bool,
}

const O_SRC: usize = 0;
const O_DST: usize = 1;

fn parse_range(opt: &str, arg: &str) -> Result<(Ipv4Addr, Ipv4Addr)> {
    let bad = |v: &str| {
        Error::param(format!(
            "iprange: Bad value for \"--{opt}\" option: \"{v}\""
        ))
    };
    let (a, b) = arg.split_once('-').unwrap_or((arg, arg));
    let from = numeric_to_ipaddr(a).ok_or_else(|| bad(a))?;
    let to = numeric_to_ipaddr(b).ok_or_else(|| bad(b))?;
    Ok((from, to))
}

impl Extension for Iprange {
    const NAME: &'static str = "iprange";
    const OPTIONS: &'static [Opt] = &[Opt::req("src-range").inv(), Opt::req("dst-range").inv()];

    fn new() -> Result<Self> {
        Ok(Iprange {
            src: None,
            inv_src: false,
            dst: None,
            inv_dst: false,
        })
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        match opt {
            O_SRC => {
                self.src = Some(parse_range("src-range", arg)?);
                self.inv_src = cx.invert;
            }
            O_DST => {
                self.dst = Some(parse_range("dst-range", arg)?);
                self.inv_dst = cx.invert;
            }
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param(
                "iprange match: You must specify `--src-range' or `--dst-range'",
            ));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        for (r, inv, opt) in [
            (self.src, self.inv_src, "src-range"),
            (self.dst, self.inv_dst, "dst-range"),
        ] {
            if let Some((a, b)) = r {
                if inv {
                    out.push_str(" !");
                }
                out.push_str(&format!(" --{opt} {a}-{b}"));
            }
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        for (r, inv, what) in [
            (self.src, self.inv_src, "source"),
            (self.dst, self.inv_dst, "destination"),
        ] {
            if let Some((a, b)) = r {
                out.push_str(&format!(" {what} IP range "));
                if inv {
                    out.push_str("! ");
                }
                out.push_str(&format!("{a}-{b}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::numeric_to_ipaddr;
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;
    use std::net::Ipv4Addr;

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_address_forms() {
        assert_eq!(numeric_to_ipaddr("1.2"), Some(Ipv4Addr::new(1, 2, 0, 0)));
        assert_eq!(
            numeric_to_ipaddr("0x1.1.1.1"),
            Some(Ipv4Addr::new(1, 1, 1, 1))
        );
        assert_eq!(
            numeric_to_ipaddr("01.1.1.1"),
            Some(Ipv4Addr::new(1, 1, 1, 1))
        );
        assert_eq!(
            numeric_to_ipaddr(" 1.1.1.1"),
            Some(Ipv4Addr::new(1, 1, 1, 1))
        );
        assert_eq!(numeric_to_ipaddr("1.1.1.256"), None);
        assert_eq!(numeric_to_ipaddr("1.1.1.1/24"), None);
        assert_eq!(numeric_to_ipaddr(""), None);
        assert_eq!(numeric_to_ipaddr("foo"), None);
    }

    #[test]
    fn test_save_and_errors() {
        let p = |a: &[&str]| {
            let mut v = vec!["-m", "iprange"];
            v.extend_from_slice(a);
            parse_rule(TableKind::Filter, "INPUT", &v)
        };
        let r = p(&["--src-range", "1.2-1.3", "!", "--dst-range", "2.2.2.2"]).unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m iprange --src-range 1.2.0.0-1.3.0.0 ! --dst-range 2.2.2.2-2.2.2.2"
        );
        assert_eq!(
            p(&["--src-range", "1.1.1.1-"]).unwrap_err().msg,
            "iprange: Bad value for \"--src-range\" option: \"\""
        );
        assert_eq!(
            p(&["--src-range", "foo-1.1.1.1"]).unwrap_err().msg,
            "iprange: Bad value for \"--src-range\" option: \"foo\""
        );
    }
}
