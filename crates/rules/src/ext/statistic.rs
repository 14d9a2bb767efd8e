//! `-m statistic`: match randomly (`--mode random --probability P`) or every n-th packet
//! (`--mode nth --every N --packet P`), each invertible.

use super::length::xt_uint;
use super::{Extension, Opt, OptCtx};
use crate::error::{Error, Result};
use crate::model::IpSpec;

/// XT_STATISTIC_MODE_*.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Random,
    Nth,
}

/// struct xt_statistic_info. `value` is the kernel's union: the probability scaled to 2^31 in
/// random mode, `every - 1` in nth mode (iptables parses both into the same word).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statistic {
    pub mode: Mode,
    pub invert: bool,
    pub value: u32,
    pub packet: u32,
}

impl Statistic {
    /// Random mode: match when a 31-bit random number is below this.
    pub fn probability_scaled(&self) -> u32 {
        self.value
    }
    /// Nth mode: the counter wraps after `every_minus_one + 1` packets.
    pub fn every_minus_one(&self) -> u32 {
        self.value
    }
    /// Nth mode: the counter's start value (`every - 1 - packet`), as iptables computes it.
    pub fn initial_count(&self) -> u32 {
        self.value.wrapping_sub(self.packet)
    }
}

const O_MODE: usize = 0;
const O_PROBABILITY: usize = 1;
const O_EVERY: usize = 2;
const O_PACKET: usize = 3;

/// strtod over the whole string: blanks, sign, decimal or hex (`0x.8`, `0x1p-1`) forms,
/// `inf`/`nan`; None when anything is left over.
fn parse_double(s: &str) -> Option<f64> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        parse_hex_float(h)?
    } else {
        if body.starts_with(['+', '-']) {
            return None;
        }
        body.parse::<f64>().ok()?
    };
    Some(if neg { -v } else { v })
}

/// The part of a C hex float after `0x`: hex digits, optional `.` and hex digits (at least one
/// digit in all), optional `p` and a decimal exponent.
fn parse_hex_float(h: &str) -> Option<f64> {
    let (mant, exp) = match h.find(['p', 'P']) {
        Some(i) => (&h[..i], Some(&h[i + 1..])),
        None => (h, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let e: i32 = e.parse().ok()?;
        v *= 2f64.powi(e);
    }
    Some(v)
}

impl Extension for Statistic {
    const NAME: &'static str = "statistic";
    const OPTIONS: &'static [Opt] = &[
        Opt::req("mode"),
        Opt::req("probability").inv(),
        Opt::req("every").inv(),
        Opt::req("packet"),
    ];

    fn new() -> Result<Self> {
        Ok(Statistic {
            mode: Mode::Random,
            invert: false,
            value: 0,
            packet: 0,
        })
    }

    fn parse(&mut self, opt: usize, arg: &str, cx: &OptCtx) -> Result<()> {
        if cx.invert {
            self.invert = true;
        }
        match opt {
            O_MODE => {
                self.mode = match arg {
                    "random" => Mode::Random,
                    "nth" => Mode::Nth,
                    _ => return Err(Error::param(format!("Bad mode \"{arg}\""))),
                }
            }
            O_PROBABILITY => {
                // NaN passes iptables' range test (and rounds to 0), infinities do not.
                let p = parse_double(arg).filter(|p| !(*p < 0.0 || *p > 1.0)).ok_or_else(|| {
                    Error::param(
                        "statistic: bad value for option \"--probability\", or out of range (0-1).\n",
                    )
                })?;
                // lround: halves away from zero, as f64::round.
                self.value = if p.is_nan() {
                    0
                } else {
                    (p * 2147483648.0).round() as u32
                };
            }
            O_EVERY => {
                let v = xt_uint(arg, 1, u64::from(u32::MAX)).ok_or_else(|| {
                    Error::param(
                        "statistic: bad value for option \"--every\", or out of range (1-4294967295).\n",
                    )
                })?;
                self.value = v as u32 - 1;
            }
            O_PACKET => {
                self.packet = xt_uint(arg, 0, u64::from(u32::MAX)).ok_or_else(|| {
                    Error::param(
                        "statistic: bad value for option \"--packet\", or out of range (0-4294967295).\n",
                    )
                })? as u32;
            }
            _ => unreachable!("option index out of table"),
        }
        Ok(())
    }

    fn final_check(&mut self, seen: u64, _ip: &IpSpec) -> Result<()> {
        let has = |o: usize| seen & (1 << o) != 0;
        if self.mode == Mode::Random && !has(O_PROBABILITY) {
            return Err(Error::param(
                "--probability must be specified when using random mode",
            ));
        }
        if self.mode == Mode::Nth && !has(O_EVERY) && !has(O_PACKET) {
            return Err(Error::param(
                "--every and --packet must be specified when using nth mode",
            ));
        }
        if self.packet > self.value {
            return Err(Error::param("the --packet p must be 0 <= p <= n-1"));
        }
        if !has(O_MODE) {
            return Err(Error::param(
                "statistic: option \"--mode\" must be specified\n",
            ));
        }
        let excl = |a: &str, b: &str| {
            Err(Error::param(format!(
                "statistic: option \"--{a}\" cannot be used together with \"--{b}\".\n"
            )))
        };
        let also = |a: &str, b: &str| {
            Err(Error::param(format!(
                "statistic: option \"--{a}\" also requires \"--{b}\".\n"
            )))
        };
        if has(O_PROBABILITY) && has(O_EVERY) {
            return excl("probability", "every");
        }
        if has(O_PROBABILITY) && has(O_PACKET) {
            return excl("probability", "packet");
        }
        if has(O_EVERY) && !has(O_PACKET) {
            return also("every", "packet");
        }
        if has(O_PACKET) && !has(O_EVERY) {
            return also("packet", "every");
        }
        Ok(())
    }

    fn save(&self, _ip: &IpSpec, out: &mut String) {
        self.push(out, "--");
    }

    fn print(&self, _ip: &IpSpec, _numeric: bool, out: &mut String) {
        out.push_str(" statistic");
        self.push(out, "");
    }
}

/// Appends `value / 2^31` with 11 decimals as printf's `%.11f` does (exact value, ties to
/// even), in integers: the quotient is exact in binary, so no float rounding is involved.
fn push_probability(out: &mut String, value: u32) {
    const SCALE: u64 = 100_000_000_000;
    let num = u128::from(value) * u128::from(SCALE);
    let mut q = (num >> 31) as u64;
    let rem = num & ((1 << 31) - 1);
    let half = 1u128 << 30;
    if rem > half || (rem == half && q & 1 == 1) {
        q += 1;
    }
    crate::save::push_u64(out, q / SCALE);
    out.push('.');
    crate::save::push_u64_padded(out, q % SCALE, 11);
}

impl Statistic {
    /// The shared body of save (prefix `--`) and -L (no prefix).
    fn push(&self, out: &mut String, prefix: &str) {
        let inv = if self.invert { " !" } else { "" };
        match self.mode {
            Mode::Random => {
                out.push(' ');
                out.push_str(prefix);
                out.push_str("mode random");
                out.push_str(inv);
                out.push(' ');
                out.push_str(prefix);
                out.push_str("probability ");
                push_probability(out, self.value);
            }
            Mode::Nth => {
                out.push_str(&format!(
                    " {prefix}mode nth{inv} {prefix}every {}",
                    self.value.wrapping_add(1)
                ));
                if self.packet != 0 || !prefix.is_empty() {
                    out.push_str(&format!(" {prefix}packet {}", self.packet));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::push_probability;
    use crate::model::TableKind;
    use crate::parse::parse_rule;
    use crate::save::rule_save_line;

    fn rule(args: &str) -> crate::error::Result<crate::model::Rule> {
        let mut v = vec!["-m", "statistic"];
        v.extend(args.split_whitespace());
        parse_rule(TableKind::Filter, "INPUT", &v)
    }

    fn save(args: &str) -> String {
        rule_save_line("INPUT", &rule(args).unwrap())
    }

    fn print(args: &str) -> String {
        let r = rule(args).unwrap();
        let mut s = String::new();
        r.matches[0].print(&r.ip, false, &mut s);
        s
    }

    #[test]
    fn test_probability_digits_equal_float_formatting() {
        // The integer printer against the float formatter it replaces (both round the exact
        // value half to even): every tie below 2^32 and a spread of other values.
        let check = |v: u32| {
            let mut s = String::new();
            push_probability(&mut s, v);
            assert_eq!(
                s,
                format!("{:.11}", f64::from(v) / 2147483648.0),
                "value {v}"
            );
        };
        for j in 0..(1u32 << 13) {
            check((2 * j + 1) << 19);
        }
        let mut x: u32 = 1;
        for _ in 0..200_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            check(x);
        }
        for v in [0, 1, 2, u32::MAX, 1 << 31, (1 << 31) - 1, (1 << 31) + 1] {
            check(v);
        }
    }

    // Expected texts recorded from iptables-legacy 1.8.9.
    #[test]
    fn test_probability_rounding() {
        let p = |x: &str| save(&format!("--mode random --probability {x}"));
        assert_eq!(
            p("0.1"),
            "-A INPUT -m statistic --mode random --probability 0.10000000009"
        );
        assert_eq!(
            p("1"),
            "-A INPUT -m statistic --mode random --probability 1.00000000000"
        );
        assert_eq!(
            p("0"),
            "-A INPUT -m statistic --mode random --probability 0.00000000000"
        );
        assert_eq!(
            p("0.333333333333"),
            "-A INPUT -m statistic --mode random --probability 0.33333333349"
        );
        assert_eq!(
            p("1e-3"),
            "-A INPUT -m statistic --mode random --probability 0.00100000016"
        );
        assert_eq!(
            print("--mode random --probability 0.1"),
            " statistic mode random probability 0.10000000009"
        );
    }

    #[test]
    fn test_nth() {
        assert_eq!(
            save("--mode nth --every 3 --packet 0"),
            "-A INPUT -m statistic --mode nth --every 3 --packet 0"
        );
        assert_eq!(
            print("--mode nth --every 3 --packet 0"),
            " statistic mode nth every 3"
        );
        assert_eq!(
            print("--mode nth --every 3 --packet 1"),
            " statistic mode nth every 3 packet 1"
        );
    }

    #[test]
    fn test_errors() {
        let e = |a: &str| rule(a).unwrap_err().msg;
        assert_eq!(
            e("--mode nth --probability 0.5"),
            "--every and --packet must be specified when using nth mode"
        );
        assert_eq!(e("--mode foo"), "Bad mode \"foo\"");
        assert_eq!(
            e("--mode random --every 2 --packet 1"),
            "--probability must be specified when using random mode"
        );
        assert_eq!(
            e("--mode random --probability 0.5 --every 2 --packet 1"),
            "statistic: option \"--probability\" cannot be used together with \"--every\".\n"
        );
        assert_eq!(
            e("--mode nth --packet 2"),
            "the --packet p must be 0 <= p <= n-1"
        );
        assert_eq!(
            e("--mode nth --every 0 --packet 0"),
            "statistic: bad value for option \"--every\", or out of range (1-4294967295).\n"
        );
        assert_eq!(
            e("--mode random --probability .5x"),
            "statistic: bad value for option \"--probability\", or out of range (0-1).\n"
        );
    }
}
