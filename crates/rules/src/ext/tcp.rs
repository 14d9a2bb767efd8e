//! `-m tcp` (loaded implicitly by `-p tcp`): ports, `--tcp-flags`, `--syn`, `--tcp-option`.

use super::util::{parse_port_range, parse_uint, port_name, push_inv};
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// struct xt_tcp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tcp {
    pub sport: (u16, u16),
    pub dport: (u16, u16),
    pub inv_sport: bool,
    pub inv_dport: bool,
    /// TCP option kind that must be present (0 = not checked).
    pub option: u8,
    pub inv_option: bool,
    pub flags_mask: u8,
    pub flags_cmp: u8,
    pub inv_flags: bool,
}

impl Default for Tcp {
    fn default() -> Self {
        Tcp {
            sport: (0, 65535),
            dport: (0, 65535),
            inv_sport: false,
            inv_dport: false,
            option: 0,
            inv_option: false,
            flags_mask: 0,
            flags_cmp: 0,
            inv_flags: false,
        }
    }
}

/// TCP flag names in the order iptables prints them.
const FLAG_NAMES: &[(&str, u8)] = &[
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("ACK", 0x10),
    ("URG", 0x20),
    ("ALL", 0x3f),
    ("NONE", 0),
];

/// Parses a comma list of TCP flag names (case-insensitive).
pub fn parse_tcp_flags(s: &str) -> Result<u8> {
    let mut v = 0;
    for name in s.split(',') {
        let f = FLAG_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::param(format!("Unknown TCP flag `{name}'")))?;
        v |= f.1;
    }
    Ok(v)
}

/// Appends flags as iptables prints them (`FIN,SYN`, `NONE`).
pub fn push_tcp_flags(out: &mut String, mut flags: u8) {
    if flags == 0 {
        out.push_str("NONE");
        return;
    }
    let mut first = true;
    while flags != 0 {
        let (name, bit) = FLAG_NAMES
            .iter()
            .find(|(_, b)| flags & b != 0)
            .copied()
            .unwrap();
        if !first {
            out.push(',');
        }
        out.push_str(name);
        first = false;
        flags &= !bit;
    }
}

/// Appends a `-L` port item (` spt:22`, ` dpts:!1:2`) for tcp/udp.
pub fn print_ports(
    out: &mut String,
    name: &str,
    range: (u16, u16),
    inv: bool,
    proto: &str,
    numeric: bool,
) {
    if range != (0, 65535) || inv {
        let i = if inv { "!" } else { "" };
        if range.0 == range.1 {
            out.push_str(&format!(
                " {name}:{i}{}",
                port_name(range.0, proto, numeric)
            ));
        } else {
            out.push_str(&format!(
                " {name}s:{i}{}:{}",
                port_name(range.0, proto, numeric),
                port_name(range.1, proto, numeric)
            ));
        }
    }
}

/// Appends a save port item (` ! --sport 1:2`) for tcp/udp.
pub fn save_ports(out: &mut String, opt: &str, range: (u16, u16), inv: bool) {
    // 1.8.9 omits a full range even when inverted (`! --sport :` saves as nothing).
    if range != (0, 65535) {
        save_ports_store(out, opt, range, inv);
    }
}

/// [`save_ports`] for the store: an inverted full range is kept.
pub fn save_ports_store(out: &mut String, opt: &str, range: (u16, u16), inv: bool) {
    if range != (0, 65535) || inv {
        push_inv(out, inv);
        out.push_str(" --");
        out.push_str(opt);
        out.push(' ');
        crate::save::push_u64(out, u64::from(range.0));
        if range.0 != range.1 {
            out.push(':');
            crate::save::push_u64(out, u64::from(range.1));
        }
    }
}

const SPORT: usize = 0;
const SPORT2: usize = 1;
const DPORT: usize = 2;
const DPORT2: usize = 3;
const SYN: usize = 4;
const FLAGS: usize = 5;
const OPTION: usize = 6;

impl Extension for Tcp {
    const NAME: &'static str = "tcp";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("source-port").inv().multi(),
        Opt::req("sport").inv().multi(),
        Opt::req("destination-port").inv().multi(),
        Opt::req("dport").inv().multi(),
        Opt::flag("syn").inv().multi(),
        Opt::req("tcp-flags").inv().multi().two(),
        Opt::req("tcp-option").inv().multi(),
    ];

    fn new() -> Result<Self> {
        Ok(Tcp::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let once = |bits: u64, what: &str| {
            if cx.seen & bits != 0 {
                Err(Error::param(format!("Only one `--{what}' allowed")))
            } else {
                Ok(())
            }
        };
        match opt {
            SPORT | SPORT2 => {
                once(1 << SPORT | 1 << SPORT2, "source-port")?;
                self.sport = parse_port_range(arg, "tcp")?;
                self.inv_sport = cx.invert;
            }
            DPORT | DPORT2 => {
                once(1 << DPORT | 1 << DPORT2, "destination-port")?;
                self.dport = parse_port_range(arg, "tcp")?;
                self.inv_dport = cx.invert;
            }
            SYN | FLAGS => {
                if cx.seen & (1 << SYN | 1 << FLAGS) != 0 {
                    return Err(Error::param(
                        "Only one of `--syn' or `--tcp-flags'  allowed",
                    ));
                }
                if opt == SYN {
                    self.flags_mask = 0x17;
                    self.flags_cmp = 0x02;
                } else {
                    let (mask, cmp) = arg.split_once(' ').unwrap_or((arg, ""));
                    self.flags_mask = parse_tcp_flags(mask)?;
                    self.flags_cmp = parse_tcp_flags(cmp)?;
                }
                self.inv_flags = cx.invert;
            }
            OPTION => {
                once(1 << OPTION, "tcp-option")?;
                self.option = parse_uint(arg, 1, 255)
                    .ok_or_else(|| Error::param(format!("Bad TCP option \"{arg}\"")))?
                    as u8;
                self.inv_option = cx.invert;
            }
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // The kernel's xt_tcp declares .proto = TCP: the rule must say `-p tcp` (not inverted).
        require_proto(cx.ip, 6)
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        save_ports(out, "sport", self.sport, self.inv_sport);
        save_ports(out, "dport", self.dport, self.inv_dport);
        if self.option != 0 || self.inv_option {
            push_inv(out, self.inv_option);
            out.push_str(&format!(" --tcp-option {}", self.option));
        }
        if self.flags_mask != 0 || self.inv_flags {
            push_inv(out, self.inv_flags);
            out.push_str(" --tcp-flags ");
            push_tcp_flags(out, self.flags_mask);
            out.push(' ');
            push_tcp_flags(out, self.flags_cmp);
        }
    }

    fn save_store(&self, ip: &IpSpec, out: &mut String) {
        let mut rest = String::new();
        save_ports_store(out, "sport", self.sport, self.inv_sport);
        save_ports_store(out, "dport", self.dport, self.inv_dport);
        let no_ports = Tcp {
            sport: (0, 65535),
            dport: (0, 65535),
            inv_sport: false,
            inv_dport: false,
            ..self.clone()
        };
        no_ports.save(ip, &mut rest);
        out.push_str(&rest);
    }

    fn print(&self, _ip: &IpSpec, numeric: bool, out: &mut String) {
        out.push_str(" tcp");
        print_ports(out, "spt", self.sport, self.inv_sport, "tcp", numeric);
        print_ports(out, "dpt", self.dport, self.inv_dport, "tcp", numeric);
        if self.option != 0 || self.inv_option {
            out.push_str(&format!(
                " option={}{}",
                if self.inv_option { "!" } else { "" },
                self.option
            ));
        }
        if self.flags_mask != 0 || self.inv_flags {
            out.push_str(" flags:");
            if self.inv_flags {
                out.push('!');
            }
            if numeric {
                out.push_str(&format!(
                    "0x{:02X}/0x{:02X}",
                    self.flags_mask, self.flags_cmp
                ));
            } else {
                push_tcp_flags(out, self.flags_mask);
                out.push('/');
                push_tcp_flags(out, self.flags_cmp);
            }
        }
    }
}

/// The kernel's per-match protocol check (xt_check_match: match.proto must equal the rule's
/// `-p`, and `-p` must not be inverted).
pub fn require_proto(ip: &IpSpec, proto: u16) -> Result<()> {
    if ip.proto != proto || ip.inv_proto {
        Err(Error::kernel(crate::error::Errno::Inval))
    } else {
        Ok(())
    }
}
