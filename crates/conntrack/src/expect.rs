//! Expectations: connections a helper (IRC DCC, FTP data...) announced, which become RELATED
//! connections of their master when they arrive (kernel `nf_conntrack_expect.c`), and their
//! listings (`conntrack -L expect`, `/proc/net/nf_conntrack_expect`). Helpers themselves (the
//! parsing of IRC/FTP payloads) live elsewhere; they call [`ConnTable::expect_add`].

use core::fmt::{self, Write};

use crate::config::{Nanos, SEC};
use crate::conn::Dir;
use crate::table::{ConnId, ConnTable};
use crate::tuple::{Addr, Tuple};

/// Helper names by id (0 = none), as `helper=` and `-m helper` name them.
pub const HELPER_NAMES: &[&str] = &[
    "", "ftp", "irc", "tftp", "sip", "h323", "pptp", "amanda", "snmp",
];

/// Id of a helper name (`None` for an unknown one).
pub fn helper_id(name: &str) -> Option<u8> {
    HELPER_NAMES
        .iter()
        .position(|n| !n.is_empty() && *n == name)
        .map(|i| i as u8)
}

/// Expectation flags (`NF_CT_EXPECT_*`).
pub mod expect_flags {
    /// Stays after matching.
    pub const PERMANENT: u8 = 1;
    /// Not matched yet (being set up).
    pub const INACTIVE: u8 = 2;
    /// Created from user space.
    pub const USERSPACE: u8 = 4;
}

/// An expected connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// The expected original tuple; bits outside `mask` are zero.
    pub tuple: Tuple,
    /// Source address and port bits that must match (destination and protocol always do).
    pub mask: Tuple,
    /// The connection that announced it.
    pub master: ConnId,
    /// Helper id of the master's helper (for the listing).
    pub helper: u8,
    /// Helper for the expected connection itself (0: none, as IRC DCC).
    pub child_helper: u8,
    /// Expectation class (the listing's `class=`).
    pub class: u8,
    /// `expect_flags::*`.
    pub flags: u8,
    /// The master direction the announcement travelled (NAT follows the master with it).
    pub dir: Dir,
    /// The port behind the NAT the helper saved (destination of the expected connection after
    /// NAT), 0 when no NAT helper changed it.
    pub saved_proto: u16,
    /// Absolute deadline.
    pub timeout: Nanos,
    /// Zone of the master.
    pub zone: u16,
}

impl Expectation {
    /// Kernel rule (nf_ct_tuple_mask_cmp): destination and protocol equal, source equal under
    /// the mask.
    pub fn matches(&self, t: &Tuple) -> bool {
        t.proto == self.tuple.proto
            && t.dst == self.tuple.dst
            && t.dst_l4 == self.tuple.dst_l4
            && t.src & self.mask.src == self.tuple.src
            && t.src_l4 & self.mask.src_l4 == self.tuple.src_l4
    }
}

/// Which expectation a new connection matched (returned by `track` in [`crate::Tracked`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The master connection.
    pub master: ConnId,
    /// See [`Expectation::dir`].
    pub dir: Dir,
    /// See [`Expectation::saved_proto`].
    pub saved_proto: u16,
}

/// The kernel refused an expectation because `nf_conntrack_expect_max` are pending
/// (`nf_ct_expect_related` fails with EMFILE; the helper then drops the packet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpectTableFull {
    /// The warning passed `net_ratelimit` (shared with the table-full message): print it.
    pub print: bool,
    /// Messages the rate limit suppressed in the window that just ended (the kernel prints
    /// `net_ratelimit: N callbacks suppressed` before this one when not 0).
    pub suppressed: u32,
}

impl fmt::Display for ExpectTableFull {
    /// The kmsg text (level 4, warning), no newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nf_conntrack: expectation table full")
    }
}

/// Listing formats for expectations.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ExpectFormat {
    /// `conntrack -L expect`.
    Conntrack,
    /// `/proc/net/nf_conntrack_expect`.
    Proc,
}

fn l4(out: &mut dyn Write, t: &Tuple, sport: u16, dport: u16) -> fmt::Result {
    if t.proto == 1 {
        write!(
            out,
            "type={} code={} id={}",
            dport >> 8,
            dport & 0xff,
            sport
        )
    } else if t.has_ports() {
        write!(out, "sport={sport} dport={dport}")
    } else {
        Ok(())
    }
}

impl ConnTable {
    /// Adds an expectation (kernel `nf_ct_expect_related`), replacing an equal one. `timeout_secs`
    /// counts from `now`.
    pub fn expect_add(&mut self, mut e: Expectation, timeout_secs: u32, now: Nanos) {
        e.timeout = now + timeout_secs as Nanos * SEC;
        e.tuple.src &= e.mask.src;
        e.tuple.src_l4 &= e.mask.src_l4;
        let exps = self.expects_mut();
        let before = exps.len();
        exps.retain(|x| !(x.tuple == e.tuple && x.mask == e.mask && x.zone == e.zone));
        exps.push(e);
        let replaced = (before + 1 - exps.len()) as u64;
        self.stats.expect_delete += replaced;
        self.stats.expect_create += 1;
    }

    /// Adds an expectation of a master whose helper allows at most `max_expected` pending ones
    /// of the expectation's class (kernel `nf_ct_expect_related`: an equal one of the same
    /// master and class is replaced; at the limit the master's oldest one of that class is
    /// evicted). `timeout_secs` counts from `now`. Kernel rule (`__nf_ct_expect_check`):
    /// after that, when `nf_conntrack_expect_max` expectations are still pending the new one
    /// is refused ([`ExpectTableFull`], its warning under `net_ratelimit`).
    pub fn expect_add_limited(
        &mut self,
        e: Expectation,
        timeout_secs: u32,
        now: Nanos,
        max_expected: usize,
    ) -> Result<(), ExpectTableFull> {
        self.expect_expire(now);
        let mut t = e.tuple;
        t.src &= e.mask.src;
        t.src_l4 &= e.mask.src_l4;
        let exps = self.expects_mut();
        let before = exps.len();
        exps.retain(|x| !(x.tuple == t && x.mask == e.mask && x.zone == e.zone));
        let mine = |x: &Expectation| x.master == e.master && x.class == e.class;
        if max_expected > 0 && exps.iter().filter(|x| mine(x)).count() >= max_expected {
            // Oldest first: the table keeps insertion order.
            if let Some(i) = exps.iter().position(mine) {
                exps.remove(i);
            }
        }
        let pending = exps.len();
        self.stats.expect_delete += (before - pending) as u64;
        if pending as u64 >= u64::from(self.config().expect_max) {
            let a = self.ratelimit_mut().allow(now);
            return Err(ExpectTableFull {
                print: a.print,
                suppressed: a.suppressed,
            });
        }
        self.expect_add(e, timeout_secs, now);
        Ok(())
    }

    /// Live expectations (not yet used, not expired at `now`).
    pub fn expectations(&self, now: Nanos) -> impl Iterator<Item = &Expectation> {
        self.expects().iter().filter(move |e| e.timeout > now)
    }

    /// Removes expectations that timed out.
    pub fn expect_expire(&mut self, now: Nanos) {
        let exps = self.expects_mut();
        let before = exps.len();
        exps.retain(|e| e.timeout > now);
        let gone = (before - exps.len()) as u64;
        self.stats.expect_delete += gone;
    }

    /// Kernel `nf_ct_find_expectation`: the first live, active expectation of a confirmed
    /// master matching `t` in `zone`; it is consumed unless PERMANENT.
    pub(crate) fn expect_take(&mut self, t: &Tuple, zone: u16, now: Nanos) -> Option<Expectation> {
        if self.expects().is_empty() {
            return None;
        }
        let i = self.expects().iter().position(|e| {
            e.timeout > now
                && e.flags & expect_flags::INACTIVE == 0
                && e.zone == zone
                && e.matches(t)
                && self.get(e.master).is_confirmed()
        })?;
        let e = self.expects()[i];
        if e.flags & expect_flags::PERMANENT == 0 {
            self.expects_mut().remove(i);
            self.stats.expect_delete += 1;
        }
        Some(e)
    }

    /// Lines of the live expectations, sorted, with or without the timeout column.
    pub fn expect_listing(&self, now: Nanos, format: ExpectFormat, timeout: bool) -> Vec<String> {
        let mut v: Vec<String> = self
            .expectations(now)
            .map(|e| {
                let mut s = String::new();
                let _ = self.write_expect(&mut s, e, now, format, timeout);
                s
            })
            .collect();
        v.sort();
        v
    }

    fn write_expect(
        &self,
        out: &mut dyn Write,
        e: &Expectation,
        now: Nanos,
        format: ExpectFormat,
        timeout: bool,
    ) -> fmt::Result {
        if timeout {
            write!(out, "{} ", e.timeout.saturating_sub(now) / SEC)?;
        }
        let t = &e.tuple;
        match format {
            ExpectFormat::Proc => {
                write!(
                    out,
                    "l3proto = 2 proto={} src={} dst={} ",
                    t.proto,
                    Addr(t.src),
                    Addr(t.dst)
                )?;
                if t.proto == 1 || t.has_ports() {
                    l4(out, t, t.src_l4, t.dst_l4)?;
                    out.write_char(' ')?;
                }
                let mut delim = "";
                for (bit, name) in [
                    (expect_flags::PERMANENT, "PERMANENT"),
                    (expect_flags::INACTIVE, "INACTIVE"),
                    (expect_flags::USERSPACE, "USERSPACE"),
                ] {
                    if e.flags & bit != 0 {
                        write!(out, "{delim}{name}")?;
                        delim = ",";
                    }
                }
                if e.helper != 0 {
                    write!(
                        out,
                        "{}{}",
                        if e.flags != 0 { " " } else { "" },
                        HELPER_NAMES[e.helper as usize % HELPER_NAMES.len()]
                    )?;
                }
                Ok(())
            }
            ExpectFormat::Conntrack => {
                write!(
                    out,
                    "proto={} src={} dst={} ",
                    t.proto,
                    Addr(t.src),
                    Addr(t.dst)
                )?;
                if t.proto == 1 || t.has_ports() {
                    l4(out, t, t.src_l4, t.dst_l4)?;
                    out.write_char(' ')?;
                }
                let m = &e.mask;
                write!(
                    out,
                    "mask-src={} mask-dst={} ",
                    Addr(m.src),
                    Addr(0xffff_ffff)
                )?;
                if t.proto == 1 || t.has_ports() {
                    l4(out, t, m.src_l4, 0xffff)?;
                    out.write_char(' ')?;
                }
                let mo = self.get(e.master).tuple[0];
                write!(
                    out,
                    "master-src={} master-dst={} ",
                    Addr(mo.src),
                    Addr(mo.dst)
                )?;
                if mo.proto == 1 || mo.has_ports() {
                    l4(out, &mo, mo.src_l4, mo.dst_l4)?;
                    out.write_char(' ')?;
                }
                write!(out, "class={}", e.class)?;
                if e.helper != 0 {
                    write!(
                        out,
                        " helper={}",
                        HELPER_NAMES[e.helper as usize % HELPER_NAMES.len()]
                    )?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CtConfig;

    fn offer(master: u32, port: u16) -> Expectation {
        Expectation {
            tuple: Tuple::ports(6, 0, 0, 0xc000_0201, port),
            mask: Tuple {
                src: 0,
                dst: u32::MAX,
                src_l4: 0,
                dst_l4: u16::MAX,
                proto: u8::MAX,
            },
            master: ConnId(master),
            helper: 2,
            child_helper: 0,
            class: 0,
            flags: 0,
            dir: Dir::Original,
            saved_proto: 0,
            timeout: 0,
            zone: 0,
        }
    }

    fn ports(ct: &ConnTable, now: Nanos) -> Vec<u16> {
        ct.expectations(now).map(|e| e.tuple.dst_l4).collect()
    }

    #[test]
    fn limit_evicts_the_masters_oldest() {
        let mut ct = ConnTable::new(CtConfig::default());
        for p in 5000..5003 {
            ct.expect_add_limited(offer(7, p), 300, 0, 2).unwrap();
        }
        // Another master's offers are not counted against master 7.
        ct.expect_add_limited(offer(8, 6000), 300, 0, 2).unwrap();
        assert_eq!(ports(&ct, 1), [5001, 5002, 6000]);
        // Re-announcing a pending offer replaces it instead of evicting another.
        ct.expect_add_limited(offer(7, 5002), 300, 0, 2).unwrap();
        assert_eq!(ports(&ct, 1), [5001, 6000, 5002]);
        // Limit 1 (FTP): the newer announcement replaces the pending one.
        ct.expect_add_limited(offer(8, 6001), 300, 0, 1).unwrap();
        assert_eq!(ports(&ct, 1), [5001, 5002, 6001]);
    }

    #[test]
    fn full_table_refuses_with_one_rate_limited_warning() {
        let mut ct = ConnTable::new(CtConfig::default());
        ct.set_sysctl("net.netfilter.nf_conntrack_expect_max", "3")
            .unwrap();
        for (m, p) in [(1, 5000), (2, 5001), (3, 5002)] {
            assert_eq!(ct.expect_add_limited(offer(m, p), 300, 0, 8), Ok(()));
        }
        // At the limit: refused, the warning printed once per rate-limit window slot.
        let r = ct.expect_add_limited(offer(4, 5003), 300, SEC, 8);
        assert_eq!(
            r,
            Err(ExpectTableFull {
                print: true,
                suppressed: 0
            })
        );
        assert_eq!(
            r.unwrap_err().to_string(),
            "nf_conntrack: expectation table full"
        );
        assert_eq!(ports(&ct, 2 * SEC), [5000, 5001, 5002]);
        // Ten warnings per 5 s, then silence; the next window reports what it swallowed.
        let printed = (0..20)
            .filter(|_| {
                ct.expect_add_limited(offer(4, 5003), 300, SEC, 8)
                    .unwrap_err()
                    .print
            })
            .count();
        assert_eq!(printed, 9);
        let next = ct.expect_add_limited(offer(4, 5003), 300, 7 * SEC, 8);
        assert_eq!(
            next,
            Err(ExpectTableFull {
                print: true,
                suppressed: 11
            })
        );
        // Re-announcing a pending offer replaces it first, so it is not refused; a master at
        // its own limit evicts its oldest before the table check.
        assert_eq!(
            ct.expect_add_limited(offer(2, 5001), 300, 8 * SEC, 8),
            Ok(())
        );
        assert_eq!(
            ct.expect_add_limited(offer(3, 5009), 300, 8 * SEC, 1),
            Ok(())
        );
        assert_eq!(ports(&ct, 9 * SEC), [5000, 5001, 5009]);
        // Expired offers free their places.
        assert_eq!(
            ct.expect_add_limited(offer(4, 5003), 300, 301 * SEC, 8),
            Ok(())
        );
        let s = ct.stats();
        assert_eq!((s.expect_create, s.expect_delete), (6, 3));
    }

    #[test]
    fn expect_max_zero_refuses_everything() {
        let mut ct = ConnTable::new(CtConfig::default());
        assert_eq!(ct.config().expect_max, 4096);
        ct.set_sysctl("nf_conntrack_expect_max", "0").unwrap();
        assert!(ct.expect_add_limited(offer(1, 5000), 300, 0, 8).is_err());
        assert_eq!(ct.expectations(0).count(), 0);
    }

    #[test]
    fn expired_offers_do_not_count() {
        let mut ct = ConnTable::new(CtConfig::default());
        ct.expect_add_limited(offer(7, 5000), 10, 0, 1).unwrap();
        ct.expect_add_limited(offer(7, 5001), 300, 11 * SEC, 2)
            .unwrap();
        ct.expect_add_limited(offer(7, 5002), 300, 11 * SEC, 2)
            .unwrap();
        assert_eq!(ports(&ct, 12 * SEC), [5001, 5002]);
    }
}
