//! `-j LOG`: --log-level --log-prefix --log-tcp-sequence --log-tcp-options --log-ip-options
//! --log-uid --log-macdecode.

use super::comment::push_save_string;
use super::util::parse_uint;
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// Log flag bits (IPT_LOG_*).
pub const TCPSEQ: u8 = 0x01;
pub const TCPOPT: u8 = 0x02;
pub const IPOPT: u8 = 0x04;
pub const UID: u8 = 0x08;
pub const MACDECODE: u8 = 0x20;

/// struct ipt_log_info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Log {
    pub level: u8,
    pub flags: u8,
    /// At most 29 bytes (longer prefixes are cut, as iptables 1.8.9 does).
    pub prefix: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: 4,
            flags: 0,
            prefix: String::new(),
        }
    }
}

/// Syslog level names accepted by --log-level.
const LEVELS: &[(&str, u8)] = &[
    ("alert", 1),
    ("crit", 2),
    ("debug", 7),
    ("emerg", 0),
    ("error", 3),
    ("info", 6),
    ("notice", 5),
    ("panic", 0),
    ("warning", 4),
    ("warn", 4),
    ("err", 3),
];

/// The name `iptables -L` prints for a level.
fn level_name(l: u8) -> Option<&'static str> {
    [
        "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
    ]
    .get(l as usize)
    .copied()
}

impl Extension for Log {
    const NAME: &'static str = "LOG";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("log-level"),
        Opt::req("log-prefix"),
        Opt::flag("log-tcp-sequence"),
        Opt::flag("log-tcp-options"),
        Opt::flag("log-ip-options"),
        Opt::flag("log-uid"),
        Opt::flag("log-macdecode"),
    ];

    fn new() -> Result<Self> {
        Ok(Log::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        match opt {
            0 => {
                self.level = match parse_uint(arg, 0, 7) {
                    Some(v) => v as u8,
                    None => LEVELS
                        .iter()
                        .find(|(n, _)| *n == arg)
                        .map(|(_, l)| *l)
                        .ok_or_else(|| Error::param(format!("log level \"{arg}\" unknown\n")))?,
                }
            }
            1 => {
                if arg.is_empty() {
                    return Err(Error::param(
                        "Argument must have a minimum length of 1 characters\n",
                    ));
                }
                if arg.contains('\n') {
                    return Err(Error::param("Newlines not allowed in --log-prefix"));
                }
                let mut p = arg.to_string();
                let mut cut = p.len().min(29);
                while !p.is_char_boundary(cut) {
                    cut -= 1;
                }
                p.truncate(cut);
                self.prefix = p;
            }
            2 => self.flags |= TCPSEQ,
            3 => self.flags |= TCPOPT,
            4 => self.flags |= IPOPT,
            5 => self.flags |= UID,
            6 => self.flags |= MACDECODE,
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        if !self.prefix.is_empty() {
            out.push_str(" --log-prefix");
            push_save_string(out, &self.prefix);
        }
        if self.level != 4 {
            out.push_str(&format!(" --log-level {}", self.level));
        }
        for (bit, name) in [
            (TCPSEQ, "--log-tcp-sequence"),
            (TCPOPT, "--log-tcp-options"),
            (IPOPT, "--log-ip-options"),
            (UID, "--log-uid"),
            (MACDECODE, "--log-macdecode"),
        ] {
            if self.flags & bit != 0 {
                out.push(' ');
                out.push_str(name);
            }
        }
    }

    fn print(&self, _ip: &IpSpec, numeric: bool, out: &mut String) {
        out.push_str(" LOG");
        if numeric {
            out.push_str(&format!(" flags {} level {}", self.flags, self.level));
        } else {
            match level_name(self.level) {
                Some(n) => out.push_str(&format!(" level {n}")),
                None => out.push_str(&format!(" UNKNOWN level {}", self.level)),
            }
            for (bit, name) in [
                (TCPSEQ, "tcp-sequence"),
                (TCPOPT, "tcp-options"),
                (IPOPT, "ip-options"),
                (UID, "uid"),
                (MACDECODE, "macdecode"),
            ] {
                if self.flags & bit != 0 {
                    out.push(' ');
                    out.push_str(name);
                }
            }
        }
        if !self.prefix.is_empty() {
            out.push_str(&format!(" prefix \"{}\"", self.prefix));
        }
    }
}
