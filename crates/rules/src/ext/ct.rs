//! `-j CT` (revision 2, raw table only): per-connection conntrack settings for the first packet
//! of a connection: `--notrack`, `--helper`, `--timeout`, `--ctevents`, `--expevents`,
//! `--zone`/`--zone-orig`/`--zone-reply` (a number or `mark`).

use super::length::xt_uint;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{IpSpec, TableKind};

/// Conntrack event names in bit order (IPCT_*).
pub const CT_EVENTS: &[&str] = &[
    "new",
    "related",
    "destroy",
    "reply",
    "assured",
    "protoinfo",
    "helper",
    "mark",
    "natseqinfo",
    "secmark",
];
/// Expectation event names in bit order (IPEXP_*).
pub const EXP_EVENTS: &[&str] = &["new"];

/// Flag bits (XT_CT_*).
pub const NOTRACK: u16 = 1 << 0;
pub const ZONE_DIR_ORIG: u16 = 1 << 2;
pub const ZONE_DIR_REPL: u16 = 1 << 3;
pub const ZONE_MARK: u16 = 1 << 4;

/// The longest helper name kept (16-byte field with its NUL).
pub const HELPER_MAX: usize = 15;
/// The longest timeout policy name iptables 1.8.9 keeps (measured: longer names are cut).
pub const TIMEOUT_MAX: usize = 4;

/// struct xt_ct_target_info_v1.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ct {
    pub flags: u16,
    pub zone: u16,
    pub ct_events: u32,
    pub exp_events: u32,
    pub helper: String,
    pub timeout: String,
}

const O_NOTRACK: usize = 0;
const O_HELPER: usize = 1;
const O_TIMEOUT: usize = 2;
const O_CTEVENTS: usize = 3;
const O_EXPEVENTS: usize = 4;
const O_ZONE: usize = 5;
const O_ZONE_ORIG: usize = 6;
const O_ZONE_REPLY: usize = 7;

fn parse_events(table: &[&str], arg: &str) -> Result<u32> {
    let mut mask = 0;
    for tok in arg.split(',') {
        let i = table
            .iter()
            .position(|n| *n == tok)
            .ok_or_else(|| Error::param(format!("Unknown event type \"{tok}\"")))?;
        mask |= 1 << i;
    }
    Ok(mask)
}

fn push_events(out: &mut String, what: &str, table: &[&str], mask: u32) {
    let names: Vec<&str> = table
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    out.push_str(&format!(" {what} {}", names.join(",")));
}

fn cut(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl Ct {
    /// The store's zone items: every direction flag and the mark flag and the zone number,
    /// which `--zone N` alone cannot always express.
    fn push_store_zone(&self, out: &mut String) {
        let value = |mark: bool| {
            if mark {
                "mark".to_string()
            } else {
                self.zone.to_string()
            }
        };
        let mark = self.flags & ZONE_MARK != 0;
        let mut dirs = Vec::new();
        if self.flags & ZONE_DIR_ORIG != 0 {
            dirs.push("--zone-orig");
        }
        if self.flags & ZONE_DIR_REPL != 0 {
            dirs.push("--zone-reply");
        }
        if dirs.is_empty() {
            if mark || self.zone != 0 {
                out.push_str(&format!(" --zone {}", value(mark)));
            }
            return;
        }
        out.push_str(&format!(" {} {}", dirs[0], value(mark)));
        if let Some(d) = dirs.get(1) {
            out.push_str(&format!(" {d} {}", self.zone));
        } else if mark && self.zone != 0 {
            out.push_str(&format!(" --zone {}", self.zone));
        }
    }

    fn push(&self, out: &mut String, p: &str) {
        if self.flags & NOTRACK != 0 {
            out.push_str(&format!(" {p}notrack"));
        }
        if !self.helper.is_empty() {
            out.push_str(&format!(" {p}helper {}", self.helper));
        }
        if !self.timeout.is_empty() {
            out.push_str(&format!(" {p}timeout {}", self.timeout));
        }
        if self.ct_events != 0 {
            push_events(out, &format!("{p}ctevents"), CT_EVENTS, self.ct_events);
        }
        if self.exp_events != 0 {
            push_events(out, &format!("{p}expevents"), EXP_EVENTS, self.exp_events);
        }
        let dir = match (
            self.flags & ZONE_DIR_ORIG != 0,
            self.flags & ZONE_DIR_REPL != 0,
        ) {
            (true, false) => "-orig",
            (false, true) => "-reply",
            _ => "",
        };
        if self.flags & ZONE_MARK != 0 {
            out.push_str(&format!(" {p}zone{dir} mark"));
        } else if self.zone != 0 {
            out.push_str(&format!(" {p}zone{dir} {}", self.zone));
        }
    }
}

/// Whether the kernel has helper `name` for the rule's protocol, and nfrs implements it.
/// Kernel helpers on TCP seen on 6.18: ftp, irc, sip; nfrs tracks ftp and irc.
fn helper_check(name: &str, ip: &crate::model::IpSpec) -> Result<()> {
    const TCP: u16 = 6;
    let tcp = ip.proto == TCP && !ip.inv_proto;
    match name {
        "ftp" | "irc" if tcp => Ok(()),
        "sip" if tcp => Err(Error::unsupported("conntrack helper `sip'")),
        _ => Err(Error::kernel(Errno::NoEnt)),
    }
}

impl Extension for Ct {
    const NAME: &'static str = "CT";
    const OPTIONS: &'static [Opt] = &[
        Opt::flag("notrack"),
        Opt::req("helper"),
        Opt::req("timeout"),
        Opt::req("ctevents"),
        Opt::req("expevents"),
        Opt::req("zone"),
        Opt::req("zone-orig"),
        Opt::req("zone-reply"),
    ];

    fn new() -> Result<Self> {
        Ok(Ct::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        match opt {
            O_NOTRACK => self.flags |= NOTRACK,
            O_HELPER => self.helper = cut(arg, HELPER_MAX),
            O_TIMEOUT => self.timeout = cut(arg, TIMEOUT_MAX),
            O_CTEVENTS => self.ct_events = parse_events(CT_EVENTS, arg)?,
            O_EXPEVENTS => self.exp_events = parse_events(EXP_EVENTS, arg)?,
            O_ZONE | O_ZONE_ORIG | O_ZONE_REPLY => {
                // A direction flag accumulates; `mark` sets a flag that a later number does
                // not clear (as iptables 1.8.9 does).
                if opt == O_ZONE_ORIG {
                    self.flags |= ZONE_DIR_ORIG;
                }
                if opt == O_ZONE_REPLY {
                    self.flags |= ZONE_DIR_REPL;
                }
                if arg == "mark" {
                    self.flags |= ZONE_MARK;
                } else {
                    self.zone = xt_uint(arg, 0, 65535)
                        .ok_or_else(|| Error::param(format!("Cannot parse {arg} as a zone ID")))?
                        as u16;
                }
            }
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rules: CT is a raw-table target. Unless --notrack, a helper must exist for
        // the rule's protocol (measured on 6.18: ftp/irc/sip accepted with `-p tcp`; without
        // `-p`, with another protocol or an unknown name: ENOENT), and a timeout names a
        // cttimeout policy object, which nfrs does not model (EINVAL as when it is absent).
        if cx.table != TableKind::Raw {
            return Err(Error::kernel(Errno::Inval));
        }
        if self.flags & NOTRACK == 0 {
            if !self.helper.is_empty() {
                return helper_check(&self.helper, cx.ip);
            }
            if !self.timeout.is_empty() {
                return Err(Error::kernel(Errno::Inval));
            }
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        self.push(out, "--");
    }

    /// Like save, but quoting names and keeping every zone flag.
    fn save_store(&self, _ip: &IpSpec, out: &mut String) {
        if self.flags & NOTRACK != 0 {
            out.push_str(" --notrack");
        }
        if !self.helper.is_empty() {
            out.push_str(" --helper");
            super::helper::push_save_string(out, &self.helper);
        }
        if !self.timeout.is_empty() {
            out.push_str(" --timeout");
            super::helper::push_save_string(out, &self.timeout);
        }
        if self.ct_events != 0 {
            push_events(out, "--ctevents", CT_EVENTS, self.ct_events);
        }
        if self.exp_events != 0 {
            push_events(out, "--expevents", EXP_EVENTS, self.exp_events);
        }
        self.push_store_zone(out);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" CT");
        self.push(out, "");
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind, Target};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn rule(args: &str) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-j", "CT"];
        v.extend(args.split_whitespace());
        parse_rule(TableKind::Raw, "PREROUTING", &v)
    }

    /// (args, -S tail, -L text) recorded from iptables-legacy 1.8.9.
    const CASES: &[(&str, &str, &str)] = &[
        ("", "", " CT"),
        (
            "--notrack --zone 5",
            " --notrack --zone 5",
            " CT notrack zone 5",
        ),
        ("--zone 0", "", " CT"),
        (
            "--zone-orig mark",
            " --zone-orig mark",
            " CT zone-orig mark",
        ),
        (
            "--zone-orig 2 --zone 1",
            " --zone-orig 1",
            " CT zone-orig 1",
        ),
        ("--zone-orig 2 --zone-reply 3", " --zone 3", " CT zone 3"),
        (
            "--zone-reply mark --zone 7",
            " --zone-reply mark",
            " CT zone-reply mark",
        ),
        ("--zone 0x10", " --zone 16", " CT zone 16"),
        (
            "--zone 65535 --ctevents natseqinfo,secmark",
            " --ctevents natseqinfo,secmark --zone 65535",
            " CT ctevents natseqinfo,secmark zone 65535",
        ),
        (
            "--notrack --helper abcdefghijklmnopqrstuvwxyz",
            " --notrack --helper abcdefghijklmno",
            " CT notrack helper abcdefghijklmno",
        ),
        (
            "--notrack --timeout abcdefgh",
            " --notrack --timeout abcd",
            " CT notrack timeout abcd",
        ),
        (
            "--notrack --ctevents mark,new",
            " --notrack --ctevents new,mark",
            " CT notrack ctevents new,mark",
        ),
    ];

    #[test]
    fn test_forms() {
        for (args, save, print) in CASES {
            let r = rule(args).unwrap();
            assert_eq!(
                rule_save_line("PREROUTING", &r),
                format!("-A PREROUTING -j CT{save}")
            );
            let Target::Ext(t) = &r.target else { panic!() };
            let mut s = String::new();
            t.print(&r.ip, true, &mut s);
            assert_eq!(&s, print, "{args}");
        }
    }

    #[test]
    fn test_errors() {
        let e = |a: &str| rule(a).unwrap_err().msg;
        assert_eq!(e("--ctevents new,bogus"), "Unknown event type \"bogus\"");
        assert_eq!(e("--ctevents NEW"), "Unknown event type \"NEW\"");
        assert_eq!(
            e("--expevents new,related"),
            "Unknown event type \"related\""
        );
        assert_eq!(e("--zone abc"), "Cannot parse abc as a zone ID");
    }

    #[test]
    fn test_kernel_checks() {
        let commit = |table: TableKind, chain: &str, args: &str| {
            let mut v = vec!["-j", "CT"];
            v.extend(args.split_whitespace());
            let r = parse_rule(table, chain, &v).unwrap();
            let mut t = Table::new(table);
            t.chain_mut(chain).unwrap().rules.push(r);
            crate::ops::validate_table(&t).map_err(|e| e.kind)
        };
        use crate::error::{Errno, ErrorKind};
        assert_eq!(commit(TableKind::Raw, "OUTPUT", "--notrack"), Ok(()));
        assert_eq!(
            commit(TableKind::Filter, "INPUT", "--notrack"),
            Err(ErrorKind::Kernel(Errno::Inval))
        );
        // Measured with iptables-legacy 1.8.9 on Linux 6.18 (rc 0 / rc 1 "No chain/target/match").
        assert_eq!(
            commit(TableKind::Raw, "PREROUTING", "--helper ftp"),
            Err(ErrorKind::Kernel(Errno::NoEnt))
        );
        let commit_p = |proto: &str, args: &str| {
            let mut v: Vec<&str> = vec!["-p", proto, "-j", "CT"];
            v.extend(args.split_whitespace());
            let r = parse_rule(TableKind::Raw, "PREROUTING", &v).unwrap();
            let mut t = Table::new(TableKind::Raw);
            t.chain_mut("PREROUTING").unwrap().rules.push(r);
            crate::ops::validate_table(&t).map_err(|e| e.kind)
        };
        assert_eq!(commit_p("tcp", "--helper ftp"), Ok(()));
        assert_eq!(commit_p("tcp", "--helper irc"), Ok(()));
        assert_eq!(
            commit_p("udp", "--helper ftp"),
            Err(ErrorKind::Kernel(Errno::NoEnt))
        );
        assert_eq!(
            commit_p("tcp", "--helper tftp"),
            Err(ErrorKind::Kernel(Errno::NoEnt))
        );
        assert_eq!(commit_p("tcp", "--helper sip"), Err(ErrorKind::Unsupported));
        assert_eq!(
            commit(TableKind::Raw, "PREROUTING", "--timeout test"),
            Err(ErrorKind::Kernel(Errno::Inval))
        );
    }
}
