//! `-m limit`: token bucket rate limit (`--limit N/unit`, `--limit-burst N`). Rates are kept as
//! the kernel keeps them: the average period between packets in 1/10000 s units.

use super::length::xt_uint;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::IpSpec;

/// XT_LIMIT_SCALE: rates are periods in 1/10000 of a second.
pub const LIMIT_SCALE: u32 = 10000;
/// Default burst (XT_LIMIT_BURST).
pub const DEFAULT_BURST: u32 = 5;

/// struct xt_rateinfo (the user-visible part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Average period between packets, in 1/LIMIT_SCALE seconds.
    pub avg: u32,
    pub burst: u32,
}

/// C atoi: leading blanks, sign, digits; the rest ignored; result truncated to int.
pub fn atoi(s: &str) -> i32 {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in t.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        // strtol saturates at LONG_MAX before atoi's cast to int.
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    let v = if neg { v.wrapping_neg() } else { v };
    v as i32
}

/// `N[/second|minute|hour|day]` (unit by case-insensitive prefix) into a period; `what` names
/// the option in errors. Err(None) means "bad rate", Err(Some(e)) another error.
pub fn parse_rate(rate: &str) -> std::result::Result<u32, Option<Error>> {
    let mut mult: u32 = 1;
    if let Some((_, unit)) = rate.split_once('/') {
        if unit.is_empty() {
            return Err(None);
        }
        let is =
            |full: &str| unit.len() <= full.len() && full[..unit.len()].eq_ignore_ascii_case(unit);
        mult = if is("second") {
            1
        } else if is("minute") {
            60
        } else if is("hour") {
            3600
        } else if is("day") {
            86400
        } else {
            return Err(None);
        };
    }
    let r = atoi(rate) as u32;
    if r == 0 {
        return Err(None);
    }
    let period = LIMIT_SCALE * mult / r;
    if period == 0 {
        return Err(Some(Error::param(format!("Rate too fast \"{rate}\""))));
    }
    Ok(period)
}

/// Appends a period as iptables prints it: ` N/unit` with the largest unit giving an exact
/// enough count (` 3/hour`, ` 10000/sec`).
pub fn push_rate(out: &mut String, period: u32) {
    const RATES: [(&str, u32); 4] = [
        ("day", LIMIT_SCALE * 86400),
        ("hour", LIMIT_SCALE * 3600),
        ("min", LIMIT_SCALE * 60),
        ("sec", LIMIT_SCALE),
    ];
    if period == 0 {
        out.push_str(" inf");
        return;
    }
    let mut i = 1;
    while i < RATES.len() {
        let m = RATES[i].1;
        if period > m || m / period < m % period {
            break;
        }
        i += 1;
    }
    let (name, m) = RATES[i - 1];
    out.push_str(&format!(" {}/{name}", m / period));
}

/// A `N/unit` that reads back as exactly `period` (u32 arithmetic as [`parse_rate`]), when
/// one exists: the store uses it where iptables' rounded print would not read back.
pub fn exact_rate(period: u32) -> Option<(u32, &'static str)> {
    if period == 0 {
        return None;
    }
    [("sec", 1u32), ("min", 60), ("hour", 3600), ("day", 86400)]
        .into_iter()
        .find_map(|(name, mu)| {
            let m = LIMIT_SCALE * mu;
            let n = m / (period + 1) + 1;
            (m / n == period).then_some((n, name))
        })
}

/// The kernel's user2credits with HZ=250 (CREDITS_PER_JIFFY = 128): the same product 32000
/// as HZ=1000, so the overflow test below holds for both.
fn user2credits(user: u32) -> u64 {
    const K: u64 = 250 * 128;
    if u64::from(user) > 0xFFFF_FFFF / K {
        (u64::from(user) / u64::from(LIMIT_SCALE)) * K
    } else {
        (u64::from(user) * K) / u64::from(LIMIT_SCALE)
    }
}

/// The kernel's limit checkentry: a zero burst, or avg*burst wrapping around 32 bits, is
/// refused with ERANGE ("Overflow, try lower").
pub fn check_rate(avg: u32, burst: u32) -> Result<()> {
    let credits = |u: u32| user2credits(u) as u32;
    if burst == 0 || credits(avg.wrapping_mul(burst)) < credits(avg) {
        // Errno::Range is requested from the framework; EINVAL keeps the exit status.
        return Err(Error::kernel(Errno::Inval));
    }
    Ok(())
}

const LIMIT: usize = 0;
const BURST: usize = 1;

impl Extension for Limit {
    const NAME: &'static str = "limit";
    const OPTIONS: &'static [Opt] = &[Opt::req("limit"), Opt::req("limit-burst")];

    fn new() -> Result<Self> {
        Ok(Limit {
            avg: LIMIT_SCALE * 3600 / 3,
            burst: DEFAULT_BURST,
        })
    }

    fn parse(&mut self, opt: usize, arg: &str, _cx: &OptCtx) -> Result<()> {
        match opt {
            LIMIT => {
                self.avg = parse_rate(arg).map_err(|e| {
                    e.unwrap_or_else(|| Error::param(format!("bad rate \"{arg}\"'")))
                })?;
            }
            BURST => {
                self.burst = xt_uint(arg, 0, 10000).ok_or_else(|| {
                    Error::param(
                        "limit: bad value for option \"--limit-burst\", or out of range (0-10000).\n",
                    )
                })? as u32;
            }
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn check_entry(&self, _cx: &CheckCtx) -> Result<()> {
        check_rate(self.avg, self.burst)
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        out.push_str(" --limit");
        push_rate(out, self.avg);
        if self.burst != DEFAULT_BURST {
            out.push_str(&format!(" --limit-burst {}", self.burst));
        }
    }

    /// iptables prints the rate rounded (`--limit 961/min` saves as `16/sec`, which reads
    /// back as another rate); the store writes a form that reads back exactly.
    fn save_store(&self, ip: &IpSpec, out: &mut String) {
        let mut printed = String::new();
        push_rate(&mut printed, self.avg);
        let reads_back = printed.trim_start().split_once('/').and_then(|(n, u)| {
            let unit = match u {
                "sec" => 1,
                "min" => 60,
                "hour" => 3600,
                _ => 86400,
            };
            let n: u32 = n.parse().ok()?;
            (n != 0).then(|| LIMIT_SCALE * unit / n)
        }) == Some(self.avg);
        match exact_rate(self.avg).filter(|_| !reads_back) {
            Some((n, unit)) => {
                out.push_str(&format!(" --limit {n}/{unit}"));
                if self.burst != DEFAULT_BURST {
                    out.push_str(&format!(" --limit-burst {}", self.burst));
                }
            }
            None => self.save(ip, out),
        }
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" limit: avg");
        push_rate(out, self.avg);
        out.push_str(&format!(" burst {}", self.burst));
    }
}

#[cfg(test)]
mod tests {
    use super::Extension;
    use crate::error::ErrorKind;
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn save(args: &[&str]) -> String {
        let mut v = vec!["-m", "limit"];
        v.extend_from_slice(args);
        let r = parse_rule(TableKind::Filter, "INPUT", &v).unwrap();
        rule_save_line("INPUT", &r)
    }

    fn err(args: &[&str]) -> String {
        let mut v = vec!["-m", "limit"];
        v.extend_from_slice(args);
        parse_rule(TableKind::Filter, "INPUT", &v).unwrap_err().msg
    }

    fn kernel_refuses(args: &[&str]) -> bool {
        let mut v = vec!["-m", "limit"];
        v.extend_from_slice(args);
        let r = parse_rule(TableKind::Filter, "INPUT", &v).unwrap();
        let mut t = Table::new(TableKind::Filter);
        t.chain_mut("INPUT").unwrap().rules.push(r);
        matches!(
            crate::ops::validate_table(&t).map_err(|e| e.kind),
            Err(ErrorKind::Kernel(_))
        )
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_rates_round_trip() {
        assert_eq!(save(&[]), "-A INPUT -m limit --limit 3/hour");
        assert_eq!(save(&["--limit", "3/m"]), "-A INPUT -m limit --limit 3/min");
        assert_eq!(save(&["--limit", "3"]), "-A INPUT -m limit --limit 3/sec");
        assert_eq!(
            save(&["--limit", "3x/s"]),
            "-A INPUT -m limit --limit 3/sec"
        );
        assert_eq!(
            save(&["--limit", "333/min"]),
            "-A INPUT -m limit --limit 333/min"
        );
        assert_eq!(
            save(&["--limit", "5/day"]),
            "-A INPUT -m limit --limit 5/day"
        );
        assert_eq!(
            save(&["--limit", "10000/sec"]),
            "-A INPUT -m limit --limit 10000/sec"
        );
        assert_eq!(
            save(&["--limit-burst", "0x10"]),
            "-A INPUT -m limit --limit 3/hour --limit-burst 16"
        );
    }

    #[test]
    fn test_bad_rates() {
        assert_eq!(err(&["--limit", "0/sec"]), "bad rate \"0/sec\"'");
        assert_eq!(err(&["--limit", "3/minutes"]), "bad rate \"3/minutes\"'");
        assert_eq!(err(&["--limit", "3/"]), "bad rate \"3/\"'");
        assert_eq!(err(&["--limit", "abc"]), "bad rate \"abc\"'");
        assert_eq!(
            err(&["--limit", "20000/sec"]),
            "Rate too fast \"20000/sec\""
        );
        assert_eq!(err(&["--limit", "-1/s"]), "Rate too fast \"-1/s\"");
        assert_eq!(
            err(&["--limit-burst", "10001"]),
            "limit: bad value for option \"--limit-burst\", or out of range (0-10000).\n"
        );
    }

    #[test]
    fn test_store_form_reads_back() {
        for rate in ["961/min", "1201/min", "3/min", "7/day", "9999/sec"] {
            let r = parse_rule(
                TableKind::Filter,
                "INPUT",
                &["-m", "limit", "--limit", rate],
            )
            .unwrap();
            let crate::ext::Match::Limit(l) = &r.matches[0] else {
                panic!()
            };
            let mut s = String::new();
            l.save_store(&r.ip, &mut s);
            let args: Vec<&str> = s.split_whitespace().collect();
            let mut v = vec!["-m", "limit"];
            v.extend(args);
            let back = parse_rule(TableKind::Filter, "INPUT", &v).unwrap();
            assert!(back.same_as(&r), "{rate}: {s}");
        }
    }

    #[test]
    fn test_kernel_overflow_check() {
        assert!(kernel_refuses(&["--limit", "1/d"]));
        assert!(kernel_refuses(&["--limit-burst", "0"]));
        assert!(kernel_refuses(&["--limit-burst", "10000"]));
        assert!(!kernel_refuses(&["--limit", "5/day"]));
        assert!(!kernel_refuses(&[
            "--limit",
            "3/min",
            "--limit-burst",
            "10"
        ]));
    }
}
