//! `-m hashlimit` (revision 3): per-flow token buckets kept in a named hash table
//! (`--hashlimit-upto`/`--hashlimit-above` in packets or bytes per time unit, burst, mode,
//! masks, table sizing, rate-match). Rates are kept as the kernel keeps them: packet mode as a
//! period in 1/1000000 s, byte mode as a cost per byte.

use super::length::strtoul_prefix;
use super::length::xt_uint;
use super::limit::atoi;
use super::{CheckCtx, Extension, Opt, OptCtx};
use crate::error::{Errno, Error, Result};
use crate::model::IpSpec;

/// XT_HASHLIMIT_SCALE_v2: packet rates are periods in microseconds.
pub const SCALE: u64 = 1_000_000;
/// Default burst.
pub const DEFAULT_BURST: u64 = 5;
/// Largest packet burst iptables accepts.
pub const BURST_MAX: u64 = 1_000_000;
/// Default garbage collection interval (ms).
pub const DEFAULT_GC_INTERVAL: u32 = 1000;
/// The longest table name kept.
pub const NAME_MAX: usize = 254;
/// Bytes are counted in 16-byte units (XT_HASHLIMIT_BYTE_SHIFT).
pub const BYTE_SHIFT: u32 = 4;

/// Mode bits (XT_HASHLIMIT_*).
pub const HASH_DIP: u32 = 0x01;
pub const HASH_DPT: u32 = 0x02;
pub const HASH_SIP: u32 = 0x04;
pub const HASH_SPT: u32 = 0x08;
pub const INVERT: u32 = 0x10;
pub const BYTES: u32 = 0x20;
pub const RATE_MATCH: u32 = 0x40;

/// struct xt_hashlimit_mtinfo3 (user-visible part).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashlimit {
    pub name: String,
    pub mode: u32,
    /// Packet mode: period in 1/SCALE s; byte mode: cost of one byte unit.
    pub avg: u64,
    pub burst: u64,
    pub size: u32,
    pub max: u32,
    pub gc_interval: u32,
    pub expire: u32,
    pub srcmask: u8,
    pub dstmask: u8,
    pub interval: u32,
    /// Seconds per unit of the typed rate (iptables' udata), only used until final_check.
    unit_secs: u32,
}

const O_UPTO: usize = 0;
const O_ABOVE: usize = 1;
const O_LIMIT: usize = 2;
const O_SRCMASK: usize = 3;
const O_DSTMASK: usize = 4;
const O_BURST: usize = 5;
const O_SIZE: usize = 6;
const O_MAX: usize = 7;
const O_GCINT: usize = 8;
const O_EXPIRE: usize = 9;
const O_MODE: usize = 10;
const O_NAME: usize = 11;
const O_RATEMATCH: usize = 12;
const O_INTERVAL: usize = 13;
/// `--hashlimit` is the old name of `--hashlimit-upto` (same option id in iptables).
const SEEN_UPTO: u64 = 1 << O_UPTO | 1 << O_LIMIT;

/// Bytes per second that a cost stands for.
pub fn cost_to_bytes(cost: u64) -> u64 {
    let r = u64::from(u32::MAX)
        .checked_div(cost)
        .unwrap_or(u64::from(u32::MAX));
    r.wrapping_sub(1) << BYTE_SHIFT
}

/// The cost of one byte unit for a rate in bytes per second.
pub fn bytes_to_cost(bytes: u64) -> u64 {
    let r = (bytes >> BYTE_SHIFT) as u32;
    u64::from(u32::MAX) / (u64::from(r) + 1)
}

fn factor(c: Option<u8>) -> u64 {
    match c {
        Some(b'm') => 1024 * 1024,
        Some(b'k') => 1024,
        _ => 1,
    }
}

/// C atoll (decimal prefix, saturating like strtoll).
fn atoll(s: &str) -> i64 {
    let t = s.trim_start();
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let mut v: i64 = 0;
    for b in t.bytes().take_while(u8::is_ascii_digit) {
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

/// `N[k|m]b/s`: Ok(Some(cost)) in byte mode, Ok(None) when not a byte rate.
fn parse_bytes(rate: &str) -> Result<Option<u64>> {
    let Some(pos) = rate.find("b/s") else {
        return Ok(None);
    };
    if pos == 0 {
        return Ok(None);
    }
    let r = atoll(rate) as u64;
    if r == 0 {
        return Ok(None);
    }
    let bytes = r.wrapping_mul(factor(rate.as_bytes().get(pos - 1).copied()));
    let cost = bytes_to_cost(bytes);
    if cost == 0 {
        return Err(Error::param(format!("Rate too high \"{rate}\"")));
    }
    Ok(Some(cost))
}

/// `N[/unit]` into a period in microseconds and the unit's seconds; Ok(None) = bad value.
fn parse_rate(rate: &str) -> Result<Option<(u64, u32)>> {
    let mut mult: u32 = 1;
    if let Some((_, unit)) = rate.split_once('/') {
        if unit.is_empty() {
            return Ok(None);
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
            return Ok(None);
        };
    }
    let r = atoll(rate) as u64;
    if r == 0 {
        return Ok(None);
    }
    let period = SCALE * u64::from(mult) / r;
    if period == 0 {
        return Err(Error::param(format!("Rate too fast \"{rate}\"")));
    }
    Ok(Some((period, mult)))
}

/// Appends ` N/unit` for a period and returns the unit in milliseconds (iptables' quantum).
fn push_rate(out: &mut String, period: u64) -> u64 {
    const RATES: [(&str, u64); 4] = [
        ("day", SCALE * 86400),
        ("hour", SCALE * 3600),
        ("min", SCALE * 60),
        ("sec", SCALE),
    ];
    if period == 0 {
        out.push_str(" inf");
        return 0;
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
    m / SCALE * 1000
}

/// Appends a byte rate (and burst) and returns the default expiry (ms) it implies.
fn push_bytes(out: &mut String, avg: u64, burst: u64, prefix: &str) -> u64 {
    const UNITS: [(&str, u64); 3] = [("m", 1024 * 1024), ("k", 1024), ("", 1)];
    let mut r = cost_to_bytes(avg);
    let mut i = 0;
    while i < UNITS.len() - 1 {
        let t = UNITS[i].1;
        if r >= t && bytes_to_cost(r & !(t - 1)) == avg {
            break;
        }
        i += 1;
    }
    out.push_str(&format!(" {}{}b/s", r / UNITS[i].1, UNITS[i].0));
    if burst == 0 {
        return 15 * 1000;
    }
    r = r.wrapping_mul(burst);
    out.push_str(&format!(" {prefix}"));
    let mut i = 0;
    while i < UNITS.len() - 1 && r < UNITS[i].1 {
        i += 1;
    }
    out.push_str(&format!("burst {}{}b", r / UNITS[i].1, UNITS[i].0));
    60 * 1000
}

fn push_mode(out: &mut String, mode: u32, sep: char) {
    let names: Vec<&str> = [
        (HASH_SIP, "srcip"),
        (HASH_SPT, "srcport"),
        (HASH_DIP, "dstip"),
        (HASH_DPT, "dstport"),
    ]
    .iter()
    .filter(|(b, _)| mode & b != 0)
    .map(|(_, n)| *n)
    .collect();
    out.push(' ');
    out.push_str(&names.join(&sep.to_string()));
}

/// The kernel's user2credits for revision 2+ with HZ=250 (CREDITS_PER_JIFFY 2^39): user
/// times 137438953, wrapping at 64 bits as the kernel's u64 does.
fn user2credits(user: u64) -> u64 {
    const FACTOR: u64 = 250 * (1u64 << 39) / SCALE;
    user.wrapping_mul(FACTOR)
}

impl Extension for Hashlimit {
    const NAME: &'static str = "hashlimit";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("hashlimit-upto").inv(),
        Opt::req("hashlimit-above").inv(),
        Opt::req("hashlimit").inv(),
        Opt::req("hashlimit-srcmask"),
        Opt::req("hashlimit-dstmask"),
        Opt::req("hashlimit-burst"),
        Opt::req("hashlimit-htable-size"),
        Opt::req("hashlimit-htable-max"),
        Opt::req("hashlimit-htable-gcinterval"),
        Opt::req("hashlimit-htable-expire"),
        Opt::req("hashlimit-mode"),
        Opt::req("hashlimit-name"),
        Opt::flag("hashlimit-rate-match"),
        Opt::req("hashlimit-rate-interval"),
    ];

    fn new() -> Result<Self> {
        Ok(Hashlimit {
            name: String::new(),
            mode: 0,
            avg: 0,
            burst: DEFAULT_BURST,
            size: 0,
            max: 0,
            gc_interval: DEFAULT_GC_INTERVAL,
            expire: 0,
            srcmask: 32,
            dstmask: 32,
            interval: 0,
            unit_secs: 0,
        })
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        let name = Self::OPTIONS[opt].name;
        let bad = || {
            Error::param(format!(
                "hashlimit: Bad value for \"--{name}\" option: \"{arg}\""
            ))
        };
        let u32_opt = || {
            xt_uint(arg, 0, u64::from(u32::MAX))
                .map(|v| v as u32)
                .ok_or_else(|| {
                    Error::param(format!(
                        "hashlimit: bad value for option \"--{name}\", or out of range (0-4294967295).\n"
                    ))
                })
        };
        match opt {
            O_UPTO | O_ABOVE | O_LIMIT => {
                if opt == O_LIMIT && cx.seen & (1 << O_UPTO) != 0
                    || opt == O_UPTO && cx.seen & (1 << O_LIMIT) != 0
                {
                    // libxtables names the first table entry of the shared option id.
                    return Err(Error::param(
                        "hashlimit: option \"--hashlimit-upto\" can only be used once.\n",
                    ));
                }
                // `--hashlimit-above` is an inverted `--hashlimit-upto` (and `!` flips it).
                if (opt == O_ABOVE) != cx.invert {
                    self.mode |= INVERT;
                }
                if let Some(cost) = parse_bytes(arg)? {
                    self.avg = cost;
                    self.mode |= BYTES;
                    self.unit_secs = 15;
                } else {
                    let (period, mult) = parse_rate(arg)?.ok_or_else(bad)?;
                    self.avg = period;
                    self.unit_secs = mult;
                }
            }
            O_SRCMASK | O_DSTMASK => {
                // A prefix length or a dotted mask. iptables passes lengths above 32 and
                // non-contiguous masks on and the kernel refuses them: kept as 255.
                let v = if let Some(v) = xt_uint(arg, 0, u64::from(u32::MAX)) {
                    if v <= 32 {
                        v as u8
                    } else {
                        255
                    }
                } else if let Some(m) =
                    super::iprange::numeric_to_ipaddr(arg).filter(|_| arg.contains('.'))
                {
                    super::util::mask_to_cidr(m).unwrap_or(255)
                } else {
                    return Err(Error::param(format!(
                        "hashlimit: bad value for option \"--{name}\", neither a valid network mask nor valid CIDR (0-32).\n"
                    )));
                };
                if opt == O_SRCMASK {
                    self.srcmask = v;
                } else {
                    self.dstmask = v;
                }
            }
            O_BURST => {
                let burst_err = || {
                    Error::param(format!(
                        "bad value for option \"--hashlimit-burst\", or out of range (1-{BURST_MAX})."
                    ))
                };
                let (v, end) = strtoul_prefix(arg, u64::MAX)
                    .filter(|(v, _)| *v >= 1)
                    .ok_or_else(burst_err)?;
                if end.is_empty() && v > BURST_MAX {
                    return Err(burst_err());
                }
                self.burst = v.wrapping_mul(factor(end.as_bytes().first().copied()));
            }
            O_SIZE => self.size = u32_opt()?,
            O_MAX => self.max = u32_opt()?,
            O_GCINT => self.gc_interval = u32_opt()?,
            O_EXPIRE => self.expire = u32_opt()?,
            O_MODE => {
                for tok in arg.split([',', '|']).filter(|t| !t.is_empty()) {
                    self.mode |= match tok {
                        "dstip" => HASH_DIP,
                        "srcip" => HASH_SIP,
                        "srcport" => HASH_SPT,
                        "dstport" => HASH_DPT,
                        _ => return Err(bad()),
                    };
                }
            }
            O_NAME => {
                if arg.is_empty() {
                    return Err(Error::param(
                        "Argument must have a minimum length of 1 characters\n",
                    ));
                }
                // The name field holds NAME_MAX (255) bytes with the NUL: longer names are
                // cut to 254 bytes.
                let mut end = arg.len().min(NAME_MAX);
                while !arg.is_char_boundary(end) {
                    end -= 1;
                }
                self.name = arg[..end].to_string();
            }
            O_RATEMATCH => self.mode |= RATE_MATCH,
            O_INTERVAL => {
                let r = atoi(arg);
                if r <= 0 {
                    return Err(bad());
                }
                self.interval = r as u32;
            }
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        let has = |o: usize| seen & (1 << o) != 0;
        if seen & (SEEN_UPTO | 1 << O_ABOVE) == 0 {
            return Err(Error::param("You have to specify --hashlimit"));
        }
        if !has(O_EXPIRE) {
            self.expire = self.unit_secs * 1000;
        }
        if self.mode & BYTES != 0 {
            let mut burst = 0;
            if has(O_BURST) {
                let unit = cost_to_bytes(self.avg);
                if self.burst < unit {
                    return Err(Error::param(format!(
                        "burst cannot be smaller than {unit}b"
                    )));
                }
                burst = self.burst.div_ceil(unit.max(1));
                if !has(O_EXPIRE) {
                    self.expire = 60 * 1000;
                }
            }
            self.burst = burst;
        } else if self.burst > BURST_MAX {
            return Err(Error::param(format!(
                "bad value for option \"--hashlimit-burst\", or out of range (1-{BURST_MAX})."
            )));
        }
        if has(O_RATEMATCH) {
            if self.mode & BYTES == 0 {
                self.avg /= u64::from(self.unit_secs.max(1));
            }
            if self.interval == 0 {
                self.interval = if self.mode & BYTES != 0 {
                    1
                } else {
                    self.unit_secs
                };
            }
        }
        self.unit_secs = 0;
        // libxtables' generic checks: upto and above exclude each other; a name is required.
        if seen & SEEN_UPTO != 0 && has(O_ABOVE) {
            return Err(Error::param(
                "hashlimit: option \"--hashlimit-upto\" cannot be used together with \"--hashlimit-above\".\n",
            ));
        }
        if !has(O_NAME) {
            return Err(Error::param(
                "hashlimit: option \"--hashlimit-name\" must be specified\n",
            ));
        }
        Ok(())
    }

    fn check_entry(&self, _cx: &CheckCtx) -> Result<()> {
        // Kernel rules: timers must be non-zero, masks at most 32 bits, the name a valid /proc
        // file name (no '/', not `.` or `..`); a packet rate whose
        // burst overflows the credit arithmetic is refused (ERANGE, reported as EINVAL until
        // the framework has Errno::Range).
        if self.gc_interval == 0
            || self.expire == 0
            || self.srcmask > 32
            || self.dstmask > 32
            || self.name.contains('/')
            || self.name == "."
            || self.name == ".."
        {
            return Err(Error::kernel(Errno::Inval));
        }
        if self.mode & BYTES == 0
            && (self.burst == 0
                || user2credits(self.avg.wrapping_mul(self.burst)) < user2credits(self.avg))
        {
            return Err(Error::kernel(Errno::Inval));
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        self.push_save(out, false);
    }

    /// Quotes the name when needed and keeps a rate interval without rate-match.
    fn save_store(&self, _ip: &IpSpec, out: &mut String) {
        self.push_save(out, true);
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        self.push_print(out);
    }
}

impl Hashlimit {
    fn push_save(&self, out: &mut String, store: bool) {
        out.push_str(if self.mode & INVERT != 0 {
            " --hashlimit-above"
        } else {
            " --hashlimit-upto"
        });
        let quantum = if self.mode & BYTES != 0 {
            if store && self.burst != 0 {
                // iptables rounds the byte burst down to its unit, which may read back as a
                // smaller burst; the store writes the exact byte count.
                push_bytes(out, self.avg, 0, "");
                let bytes = cost_to_bytes(self.avg).wrapping_mul(self.burst);
                out.push_str(&format!(" --hashlimit-burst {bytes}b"));
                60 * 1000
            } else {
                push_bytes(out, self.avg, self.burst, "--hashlimit-")
            }
        } else {
            let exact = if store { self.exact_rate() } else { None };
            let q = match exact {
                Some((n, unit, secs)) => {
                    out.push_str(&format!(" {n}/{unit}"));
                    u64::from(secs) * 1000
                }
                None => push_rate(out, self.avg),
            };
            out.push_str(&format!(" --hashlimit-burst {}", self.burst));
            q
        };
        if self.mode & (HASH_SIP | HASH_SPT | HASH_DIP | HASH_DPT) != 0 {
            out.push_str(" --hashlimit-mode");
            push_mode(out, self.mode, ',');
        }
        out.push_str(" --hashlimit-name");
        if store {
            super::helper::push_save_string(out, &self.name);
        } else {
            out.push_str(&format!(" {}", self.name));
        }
        self.push_tail(out, quantum, "--hashlimit-");
        // With rate-match an interval left out reads back as the unit's seconds: explicit.
        if store && self.mode & RATE_MATCH != 0 && self.interval == 1 {
            out.push_str(" --hashlimit-rate-interval 1");
        }
        // The kernel keeps a rate interval given without --hashlimit-rate-match (it shows
        // in -L); iptables-save drops it, the store keeps it.
        if store && self.mode & RATE_MATCH == 0 && self.interval != 0 {
            out.push_str(&format!(" --hashlimit-rate-interval {}", self.interval));
        }
    }

    /// A packet rate `N/unit` (and the unit's seconds) that reads back as exactly this avg,
    /// also through rate-match's division by the unit, when one exists.
    fn exact_rate(&self) -> Option<(u64, &'static str, u32)> {
        let rm = self.mode & RATE_MATCH != 0;
        [("sec", 1u32), ("min", 60), ("hour", 3600), ("day", 86400)]
            .into_iter()
            .find_map(|(name, mu)| {
                let m = SCALE * u64::from(mu);
                let div = if rm { u64::from(mu) } else { 1 };
                // floor(m / n) must land in [avg * div, avg * div + div - 1].
                let hi = self.avg.checked_mul(div)?.checked_add(div - 1)?;
                let n = m / (hi + 1) + 1;
                let got = m / n / div;
                (got == self.avg).then_some((n, name, mu))
            })
    }

    fn push_print(&self, out: &mut String) {
        out.push_str(if self.mode & INVERT != 0 {
            " limit: above"
        } else {
            " limit: up to"
        });
        let quantum = if self.mode & BYTES != 0 {
            push_bytes(out, self.avg, self.burst, "")
        } else {
            let mut period = self.avg;
            if self.interval != 0 {
                period = period.wrapping_mul(u64::from(self.interval));
            }
            let q = push_rate(out, period);
            out.push_str(&format!(" burst {}", self.burst));
            q
        };
        if self.mode & (HASH_SIP | HASH_SPT | HASH_DIP | HASH_DPT) != 0 {
            out.push_str(" mode");
            push_mode(out, self.mode, '-');
        }
        self.push_tail(out, quantum, "");
    }
}

impl Hashlimit {
    /// Table sizing, masks and rate-match items shared by save (`--hashlimit-` prefix) and -L.
    fn push_tail(&self, out: &mut String, quantum: u64, p: &str) {
        if self.size != 0 {
            out.push_str(&format!(" {p}htable-size {}", self.size));
        }
        if self.max != 0 {
            out.push_str(&format!(" {p}htable-max {}", self.max));
        }
        if self.gc_interval != DEFAULT_GC_INTERVAL {
            out.push_str(&format!(" {p}htable-gcinterval {}", self.gc_interval));
        }
        if u64::from(self.expire) != quantum {
            out.push_str(&format!(" {p}htable-expire {}", self.expire));
        }
        if self.srcmask != 32 {
            out.push_str(&format!(" {p}srcmask {}", self.srcmask));
        }
        if self.dstmask != 32 {
            out.push_str(&format!(" {p}dstmask {}", self.dstmask));
        }
        if self.mode & RATE_MATCH != 0 {
            out.push_str(&format!(" {p}rate-match"));
            if self.interval != 1 {
                out.push_str(&format!(" {p}rate-interval {}", self.interval));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{Table, TableKind};
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn rule(args: &str) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-m", "hashlimit"];
        v.extend(args.split_whitespace());
        parse_rule(TableKind::Filter, "INPUT", &v)
    }

    fn both(args: &str) -> (String, String) {
        let r = rule(args).unwrap();
        let mut s = String::new();
        r.matches[0].print(&r.ip, true, &mut s);
        (rule_save_line("INPUT", &r), s)
    }

    fn kernel_ok(args: &str) -> bool {
        let mut t = Table::new(TableKind::Filter);
        t.chain_mut("INPUT")
            .unwrap()
            .rules
            .push(rule(args).unwrap());
        crate::ops::validate_table(&t).is_ok()
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_forms() {
        assert_eq!(
            both("--hashlimit-upto 3/min --hashlimit-name a --hashlimit-rate-match"),
            (
                "-A INPUT -m hashlimit --hashlimit-upto 3/sec --hashlimit-burst 5 --hashlimit-name a --hashlimit-htable-expire 60000 --hashlimit-rate-match --hashlimit-rate-interval 60".into(),
                " limit: up to 4320/day burst 5 htable-expire 60000 rate-match rate-interval 60".into()
            )
        );
        assert_eq!(
            both("! --hashlimit-above 5/s --hashlimit-name a").0,
            "-A INPUT -m hashlimit --hashlimit-upto 5/sec --hashlimit-burst 5 --hashlimit-name a"
        );
        assert_eq!(
            both("--hashlimit 5 --hashlimit-name a --hashlimit-mode srcip,dstport,srcport,dstip --hashlimit-srcmask 24 --hashlimit-dstmask 16 --hashlimit-htable-size 100"),
            (
                "-A INPUT -m hashlimit --hashlimit-upto 5/sec --hashlimit-burst 5 --hashlimit-mode srcip,srcport,dstip,dstport --hashlimit-name a --hashlimit-htable-size 100 --hashlimit-srcmask 24 --hashlimit-dstmask 16".into(),
                " limit: up to 5/sec burst 5 mode srcip-srcport-dstip-dstport htable-size 100 srcmask 24 dstmask 16".into()
            )
        );
        assert_eq!(
            both("--hashlimit-upto 5 --hashlimit-name a --hashlimit-burst 5k").0,
            "-A INPUT -m hashlimit --hashlimit-upto 5/sec --hashlimit-burst 5120 --hashlimit-name a"
        );
        assert_eq!(
            both("--hashlimit-upto 1mb/s --hashlimit-name a"),
            (
                "-A INPUT -m hashlimit --hashlimit-upto 1mb/s --hashlimit-name a".into(),
                " limit: up to 1mb/s".into()
            )
        );
        assert_eq!(
            both("--hashlimit-upto 5 --hashlimit-name a --hashlimit-rate-interval 5"),
            (
                "-A INPUT -m hashlimit --hashlimit-upto 5/sec --hashlimit-burst 5 --hashlimit-name a".into(),
                " limit: up to 1/sec burst 5".into()
            )
        );
    }

    #[test]
    fn test_errors() {
        let e = |a: &str| rule(a).unwrap_err().msg;
        assert_eq!(
            e("--hashlimit-upto 5 --hashlimit-name a --hashlimit-mode foo"),
            "hashlimit: Bad value for \"--hashlimit-mode\" option: \"foo\""
        );
        assert_eq!(
            e("--hashlimit-upto 5 --hashlimit-name a --hashlimit-burst 1000001"),
            "bad value for option \"--hashlimit-burst\", or out of range (1-1000000)."
        );
        assert_eq!(
            e("--hashlimit-upto 1kb/s --hashlimit-name a --hashlimit-burst 100"),
            "burst cannot be smaller than 1024b"
        );
        assert_eq!(
            e("--hashlimit-upto 5/s --hashlimit-above 4/s --hashlimit-name a"),
            "hashlimit: option \"--hashlimit-upto\" cannot be used together with \"--hashlimit-above\".\n"
        );
        assert_eq!(
            e("--hashlimit-upto 5/x --hashlimit-name a"),
            "hashlimit: Bad value for \"--hashlimit-upto\" option: \"5/x\""
        );
        assert_eq!(
            e("--hashlimit-upto 2000000/s --hashlimit-name a"),
            "Rate too fast \"2000000/s\""
        );
    }

    #[test]
    fn test_kernel_checks() {
        assert!(!kernel_ok("--hashlimit-upto 1/day --hashlimit-name a"));
        assert!(kernel_ok(
            "--hashlimit-upto 1/day --hashlimit-burst 1 --hashlimit-name a"
        ));
        assert!(!kernel_ok(
            "--hashlimit-upto 5 --hashlimit-name a --hashlimit-htable-expire 0"
        ));
        assert!(!kernel_ok(
            "--hashlimit-upto 5 --hashlimit-name a --hashlimit-srcmask 33"
        ));
        let r = parse_rule(
            TableKind::Filter,
            "INPUT",
            &[
                "-m",
                "hashlimit",
                "--hashlimit-upto",
                "5",
                "--hashlimit-name",
                "a",
                "--hashlimit-mode",
                "",
            ],
        )
        .unwrap();
        assert_eq!(
            rule_save_line("INPUT", &r),
            "-A INPUT -m hashlimit --hashlimit-upto 5/sec --hashlimit-burst 5 --hashlimit-name a"
        );
    }
}
