//! `-m addrtype` (revision 1): the routing type of the source/destination address
//! (`--src-type`, `--dst-type` as comma lists, each invertible) optionally looked up only on
//! the incoming or outgoing interface (`--limit-iface-in` / `--limit-iface-out`).

use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{Hook, IpSpec};

/// Route types in kernel order (RTN_UNSPEC = bit 0 ... RTN_XRESOLVE = bit 11).
pub const TYPE_NAMES: [&str; 12] = [
    "UNSPEC",
    "UNICAST",
    "LOCAL",
    "BROADCAST",
    "ANYCAST",
    "MULTICAST",
    "BLACKHOLE",
    "UNREACHABLE",
    "PROHIBIT",
    "THROW",
    "NAT",
    "XRESOLVE",
];

/// struct xt_addrtype_info_v1: type bit sets (bit i = TYPE_NAMES[i]) and flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Addrtype {
    pub src_types: u16,
    pub dst_types: u16,
    pub inv_src: bool,
    pub inv_dst: bool,
    /// Look the address up only on the input interface.
    pub limit_iface_in: bool,
    /// Look the address up only on the output interface.
    pub limit_iface_out: bool,
}

const SRC: usize = 0;
const DST: usize = 1;
const LIMIT_IN: usize = 2;
const LIMIT_OUT: usize = 3;

/// One type name: iptables compares case-insensitively over the typed length, so a prefix
/// selects the first type it begins (`loc` = LOCAL, `u` = UNSPEC).
fn parse_type(name: &str) -> Option<u16> {
    if name.is_empty() {
        return None;
    }
    TYPE_NAMES
        .iter()
        .position(|t| t.len() >= name.len() && t[..name.len()].eq_ignore_ascii_case(name))
        .map(|i| 1 << i)
}

/// A comma list of types; errors quote the rest of the list from the failing item on.
fn parse_types(arg: &str) -> Result<u16> {
    let mut mask = 0;
    let mut rest = arg;
    while let Some(i) = rest.find(',') {
        match parse_type(&rest[..i]) {
            Some(b) if i > 0 => mask |= b,
            _ => return Err(Error::param(format!("addrtype: bad type `{rest}'"))),
        }
        rest = &rest[i + 1..];
    }
    match parse_type(rest) {
        Some(b) => Ok(mask | b),
        None => Err(Error::param(format!("addrtype: bad type \"{rest}\""))),
    }
}

fn push_types(out: &mut String, mask: u16) {
    let names: Vec<&str> = (0..12)
        .filter(|i| mask & (1 << i) != 0)
        .map(|i| TYPE_NAMES[i])
        .collect();
    out.push_str(&names.join(","));
}

impl Extension for Addrtype {
    const NAME: &'static str = "addrtype";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("src-type").inv(),
        Opt::req("dst-type").inv(),
        Opt::flag("limit-iface-in"),
        Opt::flag("limit-iface-out"),
    ];

    fn new() -> Result<Self> {
        Ok(Addrtype::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        match opt {
            SRC => {
                self.src_types = parse_types(arg)?;
                self.inv_src = cx.invert;
            }
            DST => {
                self.dst_types = parse_types(arg)?;
                self.inv_dst = cx.invert;
            }
            LIMIT_IN => self.limit_iface_in = true,
            LIMIT_OUT => self.limit_iface_out = true,
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen & (1 << SRC | 1 << DST) == 0 {
            return Err(Error::param(
                "addrtype: you must specify --src-type or --dst-type",
            ));
        }
        if self.limit_iface_in && self.limit_iface_out {
            return Err(Error::param(
                "addrtype: option \"--limit-iface-in\" cannot be used together with \"--limit-iface-out\".\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rule: the input interface is unknown after routing of locally generated
        // packets and at POSTROUTING; the output interface is unknown before routing.
        if self.limit_iface_in && !cx.hooks_within(&[Hook::PreRouting, Hook::Input, Hook::Forward])
        {
            return Err(Error::kernel(Errno::Inval));
        }
        if self.limit_iface_out
            && !cx.hooks_within(&[Hook::Forward, Hook::Output, Hook::PostRouting])
        {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if self.src_types != 0 {
            if self.inv_src {
                out.push_str(" !");
            }
            out.push_str(" --src-type ");
            push_types(out, self.src_types);
        }
        if self.dst_types != 0 {
            if self.inv_dst {
                out.push_str(" !");
            }
            out.push_str(" --dst-type ");
            push_types(out, self.dst_types);
        }
        if self.limit_iface_in {
            out.push_str(" --limit-iface-in");
        }
        if self.limit_iface_out {
            out.push_str(" --limit-iface-out");
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" ADDRTYPE match");
        if self.src_types != 0 {
            out.push_str(" src-type ");
            if self.inv_src {
                out.push('!');
            }
            push_types(out, self.src_types);
        }
        if self.dst_types != 0 {
            out.push_str(" dst-type ");
            if self.inv_dst {
                out.push('!');
            }
            push_types(out, self.dst_types);
        }
        if self.limit_iface_in {
            out.push_str(" limit-in");
        }
        if self.limit_iface_out {
            out.push_str(" limit-out");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn save(args: &[&str]) -> String {
        let r = parse_rule(TableKind::Filter, "INPUT", args).unwrap();
        rule_save_line("INPUT", &r)
    }

    fn err(args: &[&str]) -> String {
        parse_rule(TableKind::Filter, "INPUT", args)
            .unwrap_err()
            .msg
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_types_prefix_case_and_order() {
        assert_eq!(
            save(&["-m", "addrtype", "--src-type", "loc"]),
            "-A INPUT -m addrtype --src-type LOCAL"
        );
        assert_eq!(
            save(&[
                "-m", "addrtype", "!", "--src-type", "LOCAL,UNICAST", "!", "--dst-type",
                "multicast,broadcast,unspec"
            ]),
            "-A INPUT -m addrtype ! --src-type UNICAST,LOCAL ! --dst-type UNSPEC,BROADCAST,MULTICAST"
        );
    }

    #[test]
    fn test_bad_lists() {
        assert_eq!(
            err(&["-m", "addrtype", "--src-type", "LOCAL,,UNICAST"]),
            "addrtype: bad type `,UNICAST'"
        );
        assert_eq!(
            err(&["-m", "addrtype", "--src-type", ",LOCAL"]),
            "addrtype: bad type `,LOCAL'"
        );
        assert_eq!(
            err(&["-m", "addrtype", "--src-type", "LOCAL,"]),
            "addrtype: bad type \"\""
        );
    }

    #[test]
    fn test_print() {
        let r = parse_rule(
            TableKind::Filter,
            "INPUT",
            &[
                "-m",
                "addrtype",
                "!",
                "--src-type",
                "LOCAL,UNICAST",
                "--dst-type",
                "nat",
            ],
        )
        .unwrap();
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(s, " ADDRTYPE match src-type !UNICAST,LOCAL dst-type NAT");
    }
}
