//! `-m conntrack` (revision 3, all options): --ctstate --ctproto --ctorigsrc --ctorigdst
//! --ctreplsrc --ctrepldst --ctorigsrcport --ctorigdstport --ctreplsrcport --ctrepldstport
//! --ctstatus --ctexpire --ctdir.

use super::state::{parse_names, push_names};
use super::util::{mask_to_cidr, parse_port_range_unchecked, parse_uint};
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;
use crate::parse::{parse_addresses, parse_protocol};
use std::net::Ipv4Addr;

/// Conntrack states as this match numbers them (state bits plus SNAT/DNAT).
pub const CT_STATE_NAMES: &[(&str, u32)] = &[
    ("INVALID", super::state::INVALID),
    ("NEW", super::state::NEW),
    ("RELATED", super::state::RELATED),
    ("ESTABLISHED", super::state::ESTABLISHED),
    ("UNTRACKED", super::state::UNTRACKED),
    ("SNAT", 1 << 5),
    ("DNAT", 1 << 6),
];

/// Conntrack status bits (IPS_*) the match can test.
pub const CT_STATUS_NAMES: &[(&str, u32)] = &[
    ("EXPECTED", 1),
    ("SEEN_REPLY", 2),
    ("ASSURED", 4),
    ("CONFIRMED", 8),
];

/// One address criterion (address and mask).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrMask {
    pub addr: Ipv4Addr,
    pub mask: Ipv4Addr,
}

/// struct xt_conntrack_mtinfo3; `None` = option not given; each option carries its `!`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Conntrack {
    pub state: Option<(u32, bool)>,
    pub proto: Option<(u16, bool)>,
    pub orig_src: Option<(AddrMask, bool)>,
    pub orig_dst: Option<(AddrMask, bool)>,
    pub repl_src: Option<(AddrMask, bool)>,
    pub repl_dst: Option<(AddrMask, bool)>,
    pub orig_src_port: Option<((u16, u16), bool)>,
    pub orig_dst_port: Option<((u16, u16), bool)>,
    pub repl_src_port: Option<((u16, u16), bool)>,
    pub repl_dst_port: Option<((u16, u16), bool)>,
    pub status: Option<(u32, bool)>,
    pub expire: Option<((u32, u32), bool)>,
    /// Some(true) = REPLY, Some(false) = ORIGINAL.
    pub dir_reply: Option<bool>,
}

/// `addr[/mask]`; unlike `-s`, conntrack keeps the address as given (measured: 1.8.9 saves
/// `--ctorigsrc 10.1.2.3/8`).
fn parse_addr(s: &str) -> Result<AddrMask> {
    let (_, mask) = parse_addresses(s)?[0];
    let host = s.split_once('/').map_or(s, |(h, _)| h);
    let (addr, _) = parse_addresses(host)?[0];
    Ok(AddrMask { addr, mask })
}

impl Extension for Conntrack {
    const NAME: &'static str = "conntrack";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("ctstate").inv(),
        Opt::req("ctproto").inv(),
        Opt::req("ctorigsrc").inv(),
        Opt::req("ctorigdst").inv(),
        Opt::req("ctreplsrc").inv(),
        Opt::req("ctrepldst").inv(),
        Opt::req("ctorigsrcport").inv(),
        Opt::req("ctorigdstport").inv(),
        Opt::req("ctreplsrcport").inv(),
        Opt::req("ctrepldstport").inv(),
        Opt::req("ctstatus").inv(),
        Opt::req("ctexpire").inv(),
        Opt::req("ctdir"),
    ];

    fn new() -> Result<Self> {
        Ok(Conntrack::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let inv = cx.invert;
        match opt {
            0 => self.state = Some((parse_names(arg, CT_STATE_NAMES, "ctstate")?, inv)),
            1 => self.proto = Some((parse_protocol(arg)?, inv)),
            2 => self.orig_src = Some((parse_addr(arg)?, inv)),
            3 => self.orig_dst = Some((parse_addr(arg)?, inv)),
            4 => self.repl_src = Some((parse_addr(arg)?, inv)),
            5 => self.repl_dst = Some((parse_addr(arg)?, inv)),
            6 => self.orig_src_port = Some((parse_port_range_unchecked(arg, "tcp")?, inv)),
            7 => self.orig_dst_port = Some((parse_port_range_unchecked(arg, "tcp")?, inv)),
            8 => self.repl_src_port = Some((parse_port_range_unchecked(arg, "tcp")?, inv)),
            9 => self.repl_dst_port = Some((parse_port_range_unchecked(arg, "tcp")?, inv)),
            10 => {
                let m = if arg.eq_ignore_ascii_case("NONE") {
                    0
                } else {
                    parse_names(arg, CT_STATUS_NAMES, "ctstatus")?
                };
                self.status = Some((m, inv));
            }
            11 => {
                let num = |p: &str| {
                    parse_uint(p, 0, u32::MAX as u64).map(|v| v as u32).ok_or_else(|| {
                        Error::param(format!(
                            "conntrack: bad value for option \"--ctexpire\" near \"{p}\", or out of range (0-4294967295).\n"
                        ))
                    })
                };
                let (lo, hi) = match arg.split_once(':') {
                    Some((a, b)) => (num(a)?, num(b)?),
                    None => {
                        let v = num(arg)?;
                        (v, v)
                    }
                };
                self.expire = Some(((lo, hi), inv));
            }
            12 => {
                self.dir_reply = Some(if arg.eq_ignore_ascii_case("ORIGINAL") {
                    false
                } else if arg.eq_ignore_ascii_case("REPLY") {
                    true
                } else {
                    return Err(Error::param(format!("Bad ctdir \"{arg}\"")));
                });
            }
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen == 0 {
            return Err(Error::param("conntrack: At least one option is required"));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        self.dump(out, "--ct", true, false);
    }

    fn save_store(&self, _ip: &IpSpec, out: &mut String) {
        self.dump(out, "--ct", true, true);
    }

    fn print(&self, _ip: &IpSpec, numeric: bool, out: &mut String) {
        self.dump(out, "ct", numeric, false);
    }
}

impl Conntrack {
    fn dump(&self, out: &mut String, pfx: &str, numeric: bool, lossless: bool) {
        let inv = |out: &mut String, i: bool| {
            if i {
                out.push_str(" !");
            }
        };
        if let Some((m, i)) = self.state {
            inv(out, i);
            out.push_str(&format!(" {pfx}state "));
            push_names(out, m, CT_STATE_NAMES);
        }
        if let Some((p, i)) = self.proto {
            inv(out, i);
            out.push_str(&format!(" {pfx}proto {p}"));
        }
        for (v, name) in [
            (&self.orig_src, "origsrc"),
            (&self.orig_dst, "origdst"),
            (&self.repl_src, "replsrc"),
            (&self.repl_dst, "repldst"),
        ] {
            if let Some((a, i)) = v {
                inv(out, *i);
                out.push_str(&format!(" {pfx}{name}"));
                if !numeric && a.addr.is_unspecified() {
                    out.push_str(" anywhere");
                } else {
                    out.push_str(&format!(" {}", a.addr));
                    // 1.8.9 prints a prefix length, and nothing for /32 or a
                    // non-contiguous mask (measured).
                    if lossless {
                        out.push_str(&format!("/{}", a.mask));
                    } else if let Some(b) = mask_to_cidr(a.mask).filter(|b| *b != 32) {
                        out.push_str(&format!("/{b}"));
                    }
                }
            }
        }
        for (v, name) in [
            (&self.orig_src_port, "origsrcport"),
            (&self.orig_dst_port, "origdstport"),
            (&self.repl_src_port, "replsrcport"),
            (&self.repl_dst_port, "repldstport"),
        ] {
            if let Some(((lo, hi), i)) = v {
                inv(out, *i);
                if lo == hi {
                    out.push_str(&format!(" {pfx}{name} {lo}"));
                } else {
                    out.push_str(&format!(" {pfx}{name} {lo}:{hi}"));
                }
            }
        }
        if let Some((m, i)) = self.status {
            inv(out, i);
            out.push_str(&format!(" {pfx}status "));
            if m == 0 {
                out.push_str("NONE");
            } else {
                push_names(out, m, CT_STATUS_NAMES);
            }
        }
        if let Some(((lo, hi), i)) = self.expire {
            inv(out, i);
            if lo == hi {
                out.push_str(&format!(" {pfx}expire {lo}"));
            } else {
                out.push_str(&format!(" {pfx}expire {lo}:{hi}"));
            }
        }
        if let Some(reply) = self.dir_reply {
            out.push_str(&format!(
                " {pfx}dir {}",
                if reply { "REPLY" } else { "ORIGINAL" }
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    #[test]
    fn test_addresses_keep_host_bits() {
        // Measured with iptables-legacy 1.8.9.
        let args = [
            "-m",
            "conntrack",
            "--ctrepldst",
            "9.9.9.9/255.0.255.0",
            "--ctorigsrc",
            "10.1.2.3/8",
            "!",
            "--ctreplsrc",
            "1.2.3.4/255.255.255.0",
        ];
        let r = parse_rule(TableKind::Filter, "INPUT", &args).unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m conntrack --ctorigsrc 10.1.2.3/8 ! --ctreplsrc 1.2.3.4/24 --ctrepldst 9.9.9.9"
        );
    }
}
