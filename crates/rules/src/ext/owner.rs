//! `-m owner` (revision 1): the local socket owning a locally generated packet
//! (`[!] --uid-owner`, `[!] --gid-owner` with `--suppl-groups`, `[!] --socket-exists`), only
//! in OUTPUT and POSTROUTING. User and group names are looked up in /etc/passwd and
//! /etc/group as iptables does (getpwnam/getgrnam), when the rule is parsed.

use super::length::strtoul_prefix;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::{Hook, IpSpec};

/// match/invert bits (XT_OWNER_*).
pub const UID: u8 = 1 << 0;
pub const GID: u8 = 1 << 1;
pub const SOCKET: u8 = 1 << 2;
pub const SUPPL_GROUPS: u8 = 1 << 3;

/// struct xt_owner_match_info.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    pub uid_min: u32,
    pub uid_max: u32,
    pub gid_min: u32,
    pub gid_max: u32,
    pub matches: u8,
    pub invert: u8,
}

const O_UID: usize = 0;
const O_GID: usize = 1;
const O_SOCKET: usize = 2;
const O_SUPPL: usize = 3;

/// Reads `name:x:id:...` lines of a passwd-style file: (name, id) pairs in file order.
fn db(path: &str) -> Vec<(String, u32)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?.parse().ok()?;
            Some((name.to_string(), id))
        })
        .collect()
}

/// getpwnam/getgrnam: the id of `name` in `path`.
fn id_of(path: &str, name: &str) -> Option<u32> {
    db(path)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, i)| i)
}

/// getpwuid/getgrgid: the first name with id `id` in `path`.
fn name_of(path: &str, id: u32) -> Option<String> {
    db(path).into_iter().find(|(_, i)| *i == id).map(|(n, _)| n)
}

/// `a[-b]` or `a[:b]`, each 0..=4294967294 (-1 is reserved).
fn parse_range(s: &str, opt: &str) -> Result<(u32, u32)> {
    let bad = || Error::param(format!("owner: Bad value for \"{opt}\" option: \"{s}\""));
    let max = u64::from(u32::MAX - 1);
    let (from, end) = strtoul_prefix(s, max).ok_or_else(bad)?;
    let (to, end) = match end.as_bytes().first() {
        Some(b'-' | b':') => strtoul_prefix(&end[1..], max).ok_or_else(bad)?,
        _ => (from, end),
    };
    if !end.is_empty() {
        return Err(bad());
    }
    Ok((from as u32, to as u32))
}

impl Owner {
    fn push_item(&self, out: &mut String, flag: u8, label: &str, numeric: bool) {
        if self.matches & flag == 0 {
            return;
        }
        if self.invert & flag != 0 {
            out.push_str(" !");
        }
        out.push_str(&format!(" {label}"));
        let (lo, hi, db) = match flag {
            UID => (self.uid_min, self.uid_max, "/etc/passwd"),
            GID => (self.gid_min, self.gid_max, "/etc/group"),
            _ => return,
        };
        if lo != hi {
            out.push_str(&format!(" {lo}-{hi}"));
        } else if let Some(n) = (!numeric).then(|| name_of(db, lo)).flatten() {
            out.push_str(&format!(" {n}"));
        } else {
            out.push_str(&format!(" {lo}"));
        }
    }
}

impl Extension for Owner {
    const NAME: &'static str = "owner";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("uid-owner").inv(),
        Opt::req("gid-owner").inv(),
        Opt::flag("socket-exists").inv(),
        Opt::flag("suppl-groups"),
    ];

    fn new() -> Result<Self> {
        Ok(Owner::default())
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let flag = match opt {
            O_UID => {
                (self.uid_min, self.uid_max) = match id_of("/etc/passwd", arg) {
                    Some(id) => (id, id),
                    None => parse_range(arg, "--uid-owner")?,
                };
                UID
            }
            O_GID => {
                (self.gid_min, self.gid_max) = match id_of("/etc/group", arg) {
                    Some(id) => (id, id),
                    None => parse_range(arg, "--gid-owner")?,
                };
                GID
            }
            O_SOCKET => SOCKET,
            O_SUPPL => {
                if self.matches & GID == 0 {
                    return Err(Error::param(
                        "owner: Bad value for \"--suppl-groups\" option: \"you need to use --gid-owner first\"",
                    ));
                }
                SUPPL_GROUPS
            }
            _ => unreachable!("option index out of table"),
        };
        self.matches |= flag;
        if cx.invert {
            self.invert |= flag;
        }
        Ok(())
    }

    fn final_check(&mut self, _seen: u64, _ip: &IpSpec) -> Result<()> {
        if self.matches & (UID | GID | SOCKET) == 0 {
            return Err(Error::param(
                "owner: At least one of --uid-owner, --gid-owner or --socket-exists is required",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, cx: &CheckCtx) -> Result<()> {
        // Kernel rules: only locally generated packets have an owning socket (OUTPUT,
        // POSTROUTING); id ranges must not be reversed.
        if !cx.hooks_within(&[Hook::Output, Hook::PostRouting])
            || (self.matches & UID != 0 && self.uid_max < self.uid_min)
            || (self.matches & GID != 0 && self.gid_max < self.gid_min)
        {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        self.push_item(out, SOCKET, "--socket-exists", true);
        self.push_item(out, UID, "--uid-owner", true);
        self.push_item(out, GID, "--gid-owner", true);
        if self.matches & SUPPL_GROUPS != 0 {
            out.push_str(" --suppl-groups");
        }
    }

    fn print(&self, _ip: &IpSpec, numeric: bool, out: &mut String) {
        self.push_item(out, SOCKET, "owner socket exists", numeric);
        self.push_item(out, UID, "owner UID match", numeric);
        self.push_item(out, GID, "owner GID match", numeric);
        if self.matches & SUPPL_GROUPS != 0 {
            out.push_str(" incl. suppl. groups");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn p(chain: &str, a: &[&str]) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-m", "owner"];
        v.extend_from_slice(a);
        parse_rule(TableKind::Mangle, chain, &v)
    }

    // Expected texts recorded from iptables-legacy 1.8.9 (names: root is 0 everywhere).
    #[test]
    fn test_forms() {
        let r = p(
            "OUTPUT",
            &[
                "--gid-owner",
                "1",
                "!",
                "--uid-owner",
                "2",
                "!",
                "--socket-exists",
            ],
        )
        .unwrap();
        assert_eq!(
            rule_save_line("OUTPUT", &r),
            "-A OUTPUT -m owner ! --socket-exists ! --uid-owner 2 --gid-owner 1"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        assert_eq!(
            s,
            " ! owner socket exists ! owner UID match 2 owner GID match 1"
        );
        let r = p(
            "OUTPUT",
            &[
                "--uid-owner",
                "root",
                "--gid-owner",
                "0:10",
                "--suppl-groups",
            ],
        )
        .unwrap();
        assert_eq!(
            rule_save_line("OUTPUT", &r),
            "-A OUTPUT -m owner --uid-owner 0 --gid-owner 0-10 --suppl-groups"
        );
        let mut s = String::new();
        r.matches[0].print(&r.ip, false, &mut s);
        assert_eq!(
            s,
            " owner UID match root owner GID match 0-10 incl. suppl. groups"
        );
    }

    #[test]
    fn test_errors() {
        let e = |a: &[&str]| p("OUTPUT", a).unwrap_err().msg;
        for bad in ["4294967295", "foo-bar-none", "1-"] {
            assert_eq!(
                e(&["--uid-owner", bad]),
                format!("owner: Bad value for \"--uid-owner\" option: \"{bad}\"")
            );
        }
        assert_eq!(
            e(&[]),
            "owner: At least one of --uid-owner, --gid-owner or --socket-exists is required"
        );
    }

    #[test]
    fn test_kernel_checks() {
        let ok = |t: TableKind, c: &str, a: &[&str]| {
            let mut v = vec!["-m", "owner"];
            v.extend_from_slice(a);
            let r = parse_rule(t, c, &v).unwrap();
            let mut tb = Table::new(t);
            tb.chain_mut(c).unwrap().rules.push(r);
            crate::ops::validate_table(&tb).is_ok()
        };
        assert!(ok(TableKind::Nat, "POSTROUTING", &["--uid-owner", "0"]));
        assert!(ok(
            TableKind::Filter,
            "OUTPUT",
            &["--uid-owner", "4294967294"]
        ));
        assert!(!ok(TableKind::Filter, "INPUT", &["--socket-exists"]));
        assert!(!ok(TableKind::Filter, "FORWARD", &["--socket-exists"]));
        assert!(!ok(TableKind::Mangle, "OUTPUT", &["--uid-owner", "5-3"]));
    }
}
