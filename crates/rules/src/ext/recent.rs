//! `-m recent` (revision 1): lists of recently seen addresses (`--set`, `--rcheck`,
//! `--update`, `--remove`; `--seconds`, `--reap`, `--hitcount`, `--rttl`, `--name`,
//! `--rsource`/`--rdest`, `--mask`).

use super::length::xt_uint;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::IpSpec;
use std::net::Ipv4Addr;

/// check_set bits (XT_RECENT_*).
pub const SET: u8 = 1 << 0;
pub const CHECK: u8 = 1 << 1;
pub const UPDATE: u8 = 1 << 2;
pub const REMOVE: u8 = 1 << 3;
pub const TTL: u8 = 1 << 4;
pub const REAP: u8 = 1 << 5;

/// The longest list name the kernel keeps (XT_RECENT_NAME_LEN 200 with the NUL).
pub const NAME_MAX: usize = 199;

/// Which address of the packet the list holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Source,
    Dest,
}

/// struct xt_recent_mtinfo_v1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recent {
    pub seconds: u32,
    pub hit_count: u32,
    pub check_set: u8,
    pub invert: bool,
    pub name: String,
    pub side: Side,
    pub mask: Ipv4Addr,
}

const O_SET: usize = 0;
const O_RCHECK: usize = 1;
const O_UPDATE: usize = 2;
const O_REMOVE: usize = 3;
const O_SECONDS: usize = 4;
const O_REAP: usize = 5;
const O_HITCOUNT: usize = 6;
const O_RTTL: usize = 7;
const O_NAME: usize = 8;
const O_RSOURCE: usize = 9;
const O_RDEST: usize = 10;
const O_MASK: usize = 11;
const ANY_OP: u64 = 1 << O_SET | 1 << O_RCHECK | 1 << O_UPDATE | 1 << O_REMOVE;

/// inet_aton: one to four parts (each decimal, 0x hex or 0 octal), the last filling the
/// remaining bytes (`1.2` = 1.0.0.2).
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut vals = Vec::with_capacity(4);
    for p in &parts {
        if p.is_empty() || !p.bytes().next().unwrap().is_ascii_digit() {
            return None;
        }
        vals.push(super::util::strtoull(p).filter(|v| *v <= u64::from(u32::MAX))?);
    }
    let last = vals.pop().unwrap();
    let mut addr: u32 = 0;
    for (i, v) in vals.iter().enumerate() {
        if *v > 255 {
            return None;
        }
        addr |= (*v as u32) << (24 - 8 * i);
    }
    let room = 32 - 8 * vals.len() as u32;
    if room < 32 && last >> room != 0 {
        return None;
    }
    Some(Ipv4Addr::from(addr | last as u32))
}

/// The error iptables reports when a host argument is not a numeric address and the name
/// lookup fails (measured in a namespace without a reachable DNS server): syntactically
/// impossible host names and all-numeric strings fail at once ("Name or service not known"),
/// other names after a DNS attempt ("Temporary failure in name resolution").
pub fn getaddrinfo_error(s: &str) -> Error {
    let valid_name = !s.is_empty()
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        && !s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    Error::param(if valid_name {
        "getaddrinfo: Temporary failure in name resolution\n"
    } else {
        "getaddrinfo: Name or service not known\n"
    })
}

impl Extension for Recent {
    const NAME: &'static str = "recent";
    const OPTIONS: &'static [Opt] = &[
        Opt::flag("set").inv(),
        Opt::flag("rcheck").inv(),
        Opt::flag("update").inv(),
        Opt::flag("remove").inv(),
        Opt::req("seconds"),
        Opt::flag("reap"),
        Opt::req("hitcount"),
        Opt::flag("rttl"),
        Opt::req("name"),
        Opt::flag("rsource"),
        Opt::flag("rdest"),
        Opt::req("mask"),
    ];

    fn new() -> Result<Self> {
        Ok(Recent {
            seconds: 0,
            hit_count: 0,
            check_set: 0,
            invert: false,
            name: "DEFAULT".to_string(),
            side: Side::Source,
            mask: Ipv4Addr::BROADCAST,
        })
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        match opt {
            O_SET | O_RCHECK | O_UPDATE | O_REMOVE => {
                self.check_set |= [SET, CHECK, UPDATE, REMOVE][opt];
                if cx.invert {
                    self.invert = true;
                }
            }
            O_SECONDS => {
                self.seconds = xt_uint(arg, 1, u64::from(u32::MAX)).ok_or_else(|| {
                    Error::param(
                        "recent: bad value for option \"--seconds\", or out of range (1-4294967295).\n",
                    )
                })? as u32;
            }
            O_HITCOUNT => {
                self.hit_count = xt_uint(arg, 0, u64::from(u32::MAX)).ok_or_else(|| {
                    Error::param(
                        "recent: bad value for option \"--hitcount\", or out of range (0-4294967295).\n",
                    )
                })? as u32;
            }
            O_REAP => self.check_set |= REAP,
            O_RTTL => self.check_set |= TTL,
            O_NAME => {
                // iptables copies the name into a 200-byte field, silently cutting it.
                let mut end = arg.len().min(NAME_MAX);
                while !arg.is_char_boundary(end) {
                    end -= 1;
                }
                self.name = arg[..end].to_string();
            }
            O_RSOURCE => self.side = Side::Source,
            O_RDEST => self.side = Side::Dest,
            O_MASK => {
                self.mask = inet_aton(arg).ok_or_else(|| getaddrinfo_error(arg))?;
            }
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        if seen & ANY_OP == 0 {
            return Err(Error::param(
                "recent: you must specify one of `--set', `--rcheck' `--update' or `--remove'",
            ));
        }
        let names = ["set", "rcheck", "update", "remove"];
        for (i, name) in names.iter().enumerate() {
            if seen & (1 << i) == 0 {
                continue;
            }
            if let Some(j) = (0..4).find(|&j| j != i && seen & (1 << j) != 0) {
                return Err(Error::param(format!(
                    "recent: option \"--{name}\" cannot be used together with \"--{}\".\n",
                    names[j]
                )));
            }
        }
        if seen & (1 << O_REAP) != 0 && seen & (1 << O_SECONDS) == 0 {
            return Err(Error::param(
                "recent: option \"--reap\" also requires \"--seconds\".\n",
            ));
        }
        if seen & (1 << O_RTTL) != 0 {
            for (o, name) in [(O_SET, "set"), (O_REMOVE, "remove")] {
                if seen & (1 << o) != 0 {
                    return Err(Error::param(format!(
                        "recent: option \"--rttl\" cannot be used together with \"--{name}\".\n"
                    )));
                }
            }
        }
        Ok(())
    }

    fn check_entry(&self, _cx: &CheckCtx) -> Result<()> {
        // Kernel rules: --set/--remove take no time, count or TTL condition; a hit count must
        // fit the 16-bit timestamp ring; the name must be a valid /proc file name (not empty, `.`, `..`, no '/').
        let inval = Err(Error::kernel(Errno::Inval));
        if self.check_set & (SET | REMOVE) != 0
            && (self.seconds != 0 || self.hit_count != 0 || self.check_set & TTL != 0)
        {
            return inval;
        }
        if self.check_set & REAP != 0 && self.seconds == 0 {
            return inval;
        }
        if self.hit_count > 65535 {
            return inval;
        }
        if self.name.is_empty() || self.name.contains('/') || self.name == "." || self.name == ".."
        {
            return inval;
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        self.push_save(out, false);
    }

    /// The store prints counts unsigned and quotes the name when needed (iptables-save prints
    /// `%d` and the bare name, which do not always read back).
    fn save_store(&self, _ip: &IpSpec, out: &mut String) {
        self.push_save(out, true);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        if self.invert {
            out.push_str(" !");
        }
        out.push_str(" recent:");
        for (bit, name) in [
            (SET, "SET"),
            (CHECK, "CHECK"),
            (UPDATE, "UPDATE"),
            (REMOVE, "REMOVE"),
        ] {
            if self.check_set & bit != 0 {
                out.push_str(&format!(" {name}"));
            }
        }
        if self.seconds != 0 {
            out.push_str(&format!(" seconds: {}", self.seconds as i32));
        }
        if self.check_set & REAP != 0 {
            out.push_str(" reap");
        }
        if self.hit_count != 0 {
            out.push_str(&format!(" hit_count: {}", self.hit_count as i32));
        }
        if self.check_set & TTL != 0 {
            out.push_str(" TTL-Match");
        }
        out.push_str(&format!(" name: {}", self.name));
        out.push_str(match self.side {
            Side::Source => " side: source",
            Side::Dest => " side: dest",
        });
        out.push_str(&format!(" mask: {}", self.mask));
    }
}

impl Recent {
    fn push_save(&self, out: &mut String, store: bool) {
        // iptables prints the counts with %d (negative from 2^31 on).
        let num = |v: u32| {
            if store {
                v.to_string()
            } else {
                (v as i32).to_string()
            }
        };
        if self.invert {
            out.push_str(" !");
        }
        for (bit, name) in [
            (SET, "set"),
            (CHECK, "rcheck"),
            (UPDATE, "update"),
            (REMOVE, "remove"),
        ] {
            if self.check_set & bit != 0 {
                out.push_str(&format!(" --{name}"));
            }
        }
        if self.seconds != 0 {
            out.push_str(&format!(" --seconds {}", num(self.seconds)));
        }
        if self.check_set & REAP != 0 {
            out.push_str(" --reap");
        }
        if self.hit_count != 0 {
            out.push_str(&format!(" --hitcount {}", num(self.hit_count)));
        }
        if self.check_set & TTL != 0 {
            out.push_str(" --rttl");
        }
        out.push_str(" --name");
        if store {
            super::helper::push_save_string(out, &self.name);
        } else {
            out.push_str(&format!(" {}", self.name));
        }
        out.push_str(&format!(" --mask {}", self.mask));
        out.push_str(match self.side {
            Side::Source => " --rsource",
            Side::Dest => " --rdest",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::inet_aton;
    use crate::error::ErrorKind;
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;
    use std::net::Ipv4Addr;

    fn rule(args: &str) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-m", "recent"];
        v.extend(args.split_whitespace());
        parse_rule(TableKind::Filter, "INPUT", &v)
    }

    fn kernel_ok(args: &str) -> bool {
        let mut t = Table::new(TableKind::Filter);
        t.chain_mut("INPUT")
            .unwrap()
            .rules
            .push(rule(args).unwrap());
        match crate::ops::validate_table(&t) {
            Ok(()) => true,
            Err(e) => {
                assert_eq!(e.kind, ErrorKind::Kernel(crate::Errno::Inval));
                false
            }
        }
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_save_and_print() {
        let r = rule("! --update --seconds 60 --reap --rttl --name x --rdest --mask 255.255.0.0")
            .unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m recent ! --update --seconds 60 --reap --rttl --name x --mask 255.255.0.0 --rdest"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(
            s,
            " ! recent: UPDATE seconds: 60 reap TTL-Match name: x side: dest mask: 255.255.0.0"
        );
        let r = rule("--set --mask 1.2 --rsource --rdest").unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m recent --set --name DEFAULT --mask 1.0.0.2 --rdest"
        );
        let long = "n".repeat(250);
        let r = rule(&format!("--set --name {long}")).unwrap();
        assert!(rule_save_line("INPUT", &r).contains(&format!(" --name {} ", "n".repeat(199))));
    }

    #[test]
    fn test_option_errors() {
        let e = |a: &str| rule(a).unwrap_err().msg;
        assert_eq!(
            e("--set --rcheck"),
            "recent: option \"--set\" cannot be used together with \"--rcheck\".\n"
        );
        assert_eq!(
            e("--rcheck --reap"),
            "recent: option \"--reap\" also requires \"--seconds\".\n"
        );
        assert_eq!(
            e("--remove --rttl"),
            "recent: option \"--rttl\" cannot be used together with \"--remove\".\n"
        );
        assert_eq!(
            e("--rcheck --seconds 0"),
            "recent: bad value for option \"--seconds\", or out of range (1-4294967295).\n"
        );
    }

    #[test]
    fn test_kernel_checks() {
        assert!(!kernel_ok("--set --seconds 5"));
        assert!(!kernel_ok("--set --name a/b"));
        assert!(!kernel_ok("--set --name ."));
        assert!(!kernel_ok("--set --name .."));
        assert!(kernel_ok("--set --name x.y"));
        assert!(kernel_ok("--rcheck --hitcount 65535"));
        assert!(!kernel_ok("--rcheck --hitcount 65536"));
        assert!(kernel_ok("--rcheck --hitcount 0"));
    }

    #[test]
    fn test_inet_aton() {
        assert_eq!(inet_aton("1.2"), Some(Ipv4Addr::new(1, 0, 0, 2)));
        assert_eq!(inet_aton("0x7f.1"), Some(Ipv4Addr::new(127, 0, 0, 1)));
        assert_eq!(
            inet_aton("255.255.0.0"),
            Some(Ipv4Addr::new(255, 255, 0, 0))
        );
        assert_eq!(inet_aton("1.256.0.0"), None);
        assert_eq!(inet_aton("foo"), None);
        assert_eq!(inet_aton("1..2"), None);
    }
}
