//! `-m connbytes [!] --connbytes from[:to] --connbytes-dir original|reply|both
//! --connbytes-mode packets|bytes|avgpkt` (xt_connbytes): the connection's packet/byte count
//! (or average packet size) in a direction lies in a range.

use super::util::parse_uint;
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// XT_CONNBYTES_PKTS / BYTES / AVGPKT, by name.
pub const MODES: &[&str] = &["packets", "bytes", "avgpkt"];
/// XT_CONNBYTES_DIR_ORIGINAL / REPLY / BOTH, by name.
pub const DIRS: &[&str] = &["original", "reply", "both"];

/// struct xt_connbytes_info. `!` is stored as the kernel stores it: `from` above `to`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Connbytes {
    pub from: u64,
    pub to: u64,
    /// Index into [`MODES`].
    pub what: u8,
    /// Index into [`DIRS`].
    pub direction: u8,
}

impl Connbytes {
    fn push_range(&self, name: &str, out: &mut String) {
        let (from, to) = if self.from > self.to {
            out.push_str(" !");
            (self.to, self.from)
        } else {
            (self.from, self.to)
        };
        out.push_str(&format!(" {name} {from}"));
        if to != 0 && to < u64::MAX {
            out.push_str(&format!(":{to}"));
        }
    }
}

/// One bound of the range: empty means `dflt`; a sign or anything but a number is refused.
fn bound(part: &str, rest: &str, dflt: u64) -> Result<u64> {
    if part.is_empty() {
        return Ok(dflt);
    }
    let t = part.trim_start();
    if t.starts_with('-') {
        return Err(bad(rest));
    }
    parse_uint(part, 0, u64::MAX).ok_or_else(|| bad(rest))
}

fn bad(near: &str) -> Error {
    Error::param(format!(
        "connbytes: bad value for option \"--connbytes\" near \"{near}\", or out of range (0-18446744073709551615).\n"
    ))
}

impl Extension for Connbytes {
    const NAME: &'static str = "connbytes";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("connbytes").inv(),
        Opt::req("connbytes-dir"),
        Opt::req("connbytes-mode"),
    ];

    fn new() -> Result<Self> {
        Ok(Connbytes::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        match opt {
            0 => {
                let (from, to) = match arg.split_once(':') {
                    Some((a, b)) => (bound(a, arg, 0)?, bound(b, b, u64::MAX)?),
                    None => (bound(arg, arg, 0)?, u64::MAX),
                };
                if to < from {
                    return Err(Error::param(format!("{from} should be less than {to}")));
                }
                (self.from, self.to) = if cx.invert { (to, from) } else { (from, to) };
            }
            1 => {
                self.direction = DIRS
                    .iter()
                    .position(|d| *d == arg)
                    .ok_or_else(|| Error::param(format!("Unknown --connbytes-dir `{arg}'")))?
                    as u8;
            }
            _ => {
                self.what = MODES
                    .iter()
                    .position(|m| *m == arg)
                    .ok_or_else(|| Error::param(format!("Unknown --connbytes-mode `{arg}'")))?
                    as u8;
            }
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        for (bit, name) in [
            (1, "connbytes"),
            (2, "connbytes-dir"),
            (4, "connbytes-mode"),
        ] {
            if seen & bit == 0 {
                return Err(Error::param(format!(
                    "connbytes: option \"--{name}\" must be specified\n"
                )));
            }
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        self.push_range("--connbytes", out);
        out.push_str(" --connbytes-mode ");
        out.push_str(MODES[self.what as usize]);
        out.push_str(" --connbytes-dir ");
        out.push_str(DIRS[self.direction as usize]);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        self.push_range("connbytes", out);
        out.push_str(" connbytes mode ");
        out.push_str(MODES[self.what as usize]);
        out.push_str(" connbytes direction ");
        out.push_str(DIRS[self.direction as usize]);
    }
}

#[cfg(test)]
mod tests {
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn p(a: &[&str]) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-m", "connbytes"];
        v.extend_from_slice(a);
        parse_rule(TableKind::Filter, "INPUT", &v)
    }

    // Expected texts recorded from iptables-legacy 1.8.9 (tests/recorded/t-listings and
    // t-errors/libxt_connbytes.tsv).
    #[test]
    fn forms() {
        for (range, saved) in [
            (":", "0"),
            (":1000", "0:1000"),
            ("1000:", "1000"),
            ("1000:1000", "1000:1000"),
        ] {
            let r = p(&[
                "--connbytes",
                range,
                "--connbytes-mode",
                "packets",
                "--connbytes-dir",
                "original",
            ])
            .unwrap();
            assert_eq!(
                rule_save_line("INPUT", &r),
                format!("-A INPUT -m connbytes --connbytes {saved} --connbytes-mode packets --connbytes-dir original")
            );
        }
        let r = p(&[
            "--connbytes",
            "0:1000",
            "--connbytes-mode",
            "avgpkt",
            "--connbytes-dir",
            "both",
        ])
        .unwrap();
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(
            s,
            " connbytes 0:1000 connbytes mode avgpkt connbytes direction both"
        );
    }

    #[test]
    fn errors() {
        let tail = ["--connbytes-mode", "packets", "--connbytes-dir", "original"];
        let e = |range: &str| {
            let mut v = vec!["--connbytes", range];
            v.extend_from_slice(&tail);
            p(&v).unwrap_err().msg
        };
        assert_eq!(e("-1:0"), "connbytes: bad value for option \"--connbytes\" near \"-1:0\", or out of range (0-18446744073709551615).\n");
        assert_eq!(e("0:-1"), "connbytes: bad value for option \"--connbytes\" near \"-1\", or out of range (0-18446744073709551615).\n");
        assert_eq!(e("0:18446744073709551616"), "connbytes: bad value for option \"--connbytes\" near \"18446744073709551616\", or out of range (0-18446744073709551615).\n");
        assert_eq!(e("1000:0"), "1000 should be less than 0");
        assert_eq!(
            p(&[
                "--connbytes",
                "0:1000",
                "--connbytes-mode",
                "wrong",
                "--connbytes-dir",
                "both"
            ])
            .unwrap_err()
            .msg,
            "Unknown --connbytes-mode `wrong'"
        );
        assert_eq!(
            p(&["--connbytes", "0:1000"]).unwrap_err().msg,
            "connbytes: option \"--connbytes-dir\" must be specified\n"
        );
        assert_eq!(
            p(&["--connbytes", "0:1000", "--connbytes-dir", "original"])
                .unwrap_err()
                .msg,
            "connbytes: option \"--connbytes-mode\" must be specified\n"
        );
        assert_eq!(
            p(&[]).unwrap_err().msg,
            "connbytes: option \"--connbytes\" must be specified\n"
        );
    }
}
