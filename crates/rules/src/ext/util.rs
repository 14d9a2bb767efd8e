//! Helpers every extension uses: numbers as iptables' `xtables_strtoui` reads them (base 0:
//! decimal, `0x` hex, leading `0` octal), ports and port ranges with service names, mark/mask
//! pairs, and the common error texts.

use crate::error::{Error, Result};
use crate::services;
use std::net::Ipv4Addr;

/// strtoull(s, &end, 0) on the whole string: leading blanks and `+` allowed, base from prefix.
/// `-` wraps as in C, so it yields a number beyond any sane max and fails range checks.
pub fn strtoull(s: &str) -> Option<u64> {
    let t = s.trim_start_matches([' ', '\t', '\n']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'+') => (false, &t[1..]),
        Some(b'-') => (true, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (16, h)
    } else if t.len() > 1 && t.starts_with('0') {
        (8, &t[1..])
    } else {
        (10, t)
    };
    if digits.is_empty() {
        return None;
    }
    let v = u64::from_str_radix(digits, radix).ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// xtables_strtoui: the whole string is a number within `min..=max`.
pub fn parse_uint(s: &str, min: u64, max: u64) -> Option<u64> {
    strtoull(s).filter(|v| *v >= min && *v <= max)
}

/// Like [`parse_uint`] but for the leading number of `s` (strtoul with an end pointer: the
/// longest run of digits of the detected base); returns the value and the rest.
pub fn parse_uint_prefix(s: &str, min: u64, max: u64) -> Option<(u64, &str)> {
    let b = s.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'+') {
        i = 1;
    }
    let radix = if b.get(i) == Some(&b'0')
        && matches!(b.get(i + 1), Some(b'x' | b'X'))
        && b.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
    {
        i += 2;
        16
    } else if b.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let start = i;
    while b.get(i).is_some_and(|c| (*c as char).is_digit(radix)) {
        i += 1;
    }
    if i == start {
        return None;
    }
    let v = u64::from_str_radix(&s[start..i], radix).ok()?;
    (v >= min && v <= max).then_some((v, &s[i..]))
}

/// xtables_parse_port: a number 0..=65535 or a service name for `proto`.
pub fn parse_port(s: &str, proto: Option<&str>) -> Result<u16> {
    if let Some(v) = parse_uint(s, 0, 65535) {
        return Ok(v as u16);
    }
    services::service_port(s, proto)
        .ok_or_else(|| Error::param(format!("invalid port/service `{s}' specified")))
}

/// A `min[:max]` port range as the tcp match reads it (`:` alone = 0:65535; min > max refused).
pub fn parse_port_range(s: &str, proto: &str) -> Result<(u16, u16)> {
    let (lo, hi) = match s.split_once(':') {
        None => {
            let p = parse_port(s, Some(proto))?;
            (p, p)
        }
        Some((a, b)) => (
            if a.is_empty() {
                0
            } else {
                parse_port(a, Some(proto))?
            },
            if b.is_empty() {
                65535
            } else {
                parse_port(b, Some(proto))?
            },
        ),
    };
    if lo > hi {
        return Err(Error::param("invalid portrange (min > max)"));
    }
    Ok((lo, hi))
}

/// A `min[:max]` port range as iptables' x6 PORTRC type reads it (udp, conntrack): no
/// min <= max check, and its own error text.
pub fn parse_port_range_unchecked(s: &str, proto: &str) -> Result<(u16, u16)> {
    let one = |p: &str| -> Result<u16> {
        parse_uint(p, 0, 65535)
            .map(|v| v as u16)
            .or_else(|| services::service_port(p, Some(proto)))
            .ok_or_else(|| Error::param(format!("Port \"{p}\" does not resolve to anything.\n")))
    };
    match s.split_once(':') {
        None => {
            let p = one(s)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let lo = if a.is_empty() { 0 } else { one(a)? };
            let hi = if b.is_empty() { 65535 } else { one(b)? };
            Ok((lo, hi))
        }
    }
}

/// A port for `-L`: its service name unless numeric or unknown.
pub fn port_name(port: u16, proto: &str, numeric: bool) -> String {
    if !numeric {
        if let Some(n) = services::service_name(port, Some(proto)) {
            return n.to_string();
        }
    }
    port.to_string()
}

/// `value[/mask]` as the mark/connmark matches read it (mask defaults to 0xffffffff).
pub fn parse_mark_mask(s: &str) -> Option<(u32, u32)> {
    match s.split_once('/') {
        Some((v, m)) => Some((
            parse_uint(v, 0, u32::MAX as u64)? as u32,
            parse_uint(m, 0, u32::MAX as u64)? as u32,
        )),
        None => Some((parse_uint(s, 0, u32::MAX as u64)? as u32, u32::MAX)),
    }
}

/// Appends `0xVALUE` and `/0xMASK` unless the mask is all ones (iptables' print_mark form).
pub fn push_mark_mask(out: &mut String, value: u32, mask: u32) {
    if mask == u32::MAX {
        out.push_str(&format!("0x{value:x}"));
    } else {
        out.push_str(&format!("0x{value:x}/0x{mask:x}"));
    }
}

/// Appends " !" when `invert` (save form of an inverted option).
pub fn push_inv(out: &mut String, invert: bool) {
    if invert {
        out.push_str(" !");
    }
}

/// `s` split at the first `b` (an ASCII byte): a plain byte scan, cheaper than the
/// general pattern search on the short texts of an option.
pub fn split_once_byte(s: &str, b: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == b)?;
    Some((&s[..i], &s[i + 1..]))
}

/// Parses a dotted-quad IPv4 address as inet_aton-strict iptables accepts (`a.b.c.d`):
/// four parts of one to three decimal digits, each at most 255.
pub fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    dotted_quad(s).map(|(a, _)| a)
}

/// [`parse_ipv4`], also telling whether a part has a leading zero before another digit
/// (`010`: octal for the readers that take base 0).
pub fn dotted_quad(s: &str) -> Option<(Ipv4Addr, bool)> {
    let mut b = [0u8; 4];
    // One pass over the bytes: the part being read, its value and digit count.
    let (mut part, mut value, mut digits) = (0, 0u32, 0);
    let mut leading_zero = false;
    for &c in s.as_bytes() {
        if c.is_ascii_digit() {
            if digits == 3 {
                return None;
            }
            leading_zero |= digits == 1 && value == 0;
            value = value * 10 + u32::from(c - b'0');
            digits += 1;
        } else if c == b'.' && digits > 0 && part < 3 {
            b[part] = u8::try_from(value).ok()?;
            (part, value, digits) = (part + 1, 0, 0);
        } else {
            return None;
        }
    }
    if part != 3 || digits == 0 {
        return None;
    }
    b[3] = u8::try_from(value).ok()?;
    Some((Ipv4Addr::from(b), leading_zero))
}

/// The prefix length of a contiguous mask, or None.
pub fn mask_to_cidr(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    if m.checked_shl(ones).unwrap_or(0) == 0 {
        Some(ones as u8)
    } else {
        None
    }
}

/// The mask of a prefix length.
pub fn cidr_to_mask(bits: u8) -> Ipv4Addr {
    Ipv4Addr::from(if bits == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(bits))
    })
}

/// "option \"--X\" requires an argument"-style error for a bad value of option `opt`.
pub fn bad_value(ext: &str, opt: &str, value: &str) -> Error {
    Error::param(format!(
        "{ext}: Bad value for \"--{opt}\" option: \"{value}\""
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_strtoull_bases() {
        assert_eq!(strtoull("10"), Some(10));
        assert_eq!(strtoull("0x10"), Some(16));
        assert_eq!(strtoull("010"), Some(8));
        assert_eq!(strtoull("0"), Some(0));
        assert_eq!(strtoull(" +5"), Some(5));
        assert_eq!(strtoull(""), None);
        assert_eq!(strtoull("0x"), None);
        assert!(parse_uint("-1", 0, 65535).is_none());
        assert!(parse_uint("4294967296", 0, u32::MAX as u64).is_none());
    }

    #[test]
    fn test_port_range() {
        assert_eq!(parse_port_range("1024:", "tcp").unwrap(), (1024, 65535));
        assert_eq!(parse_port_range(":", "tcp").unwrap(), (0, 65535));
        assert_eq!(parse_port_range("ssh", "tcp").unwrap(), (22, 22));
        assert!(parse_port_range("4:3", "tcp").is_err());
        assert!(parse_port_range("65536", "tcp").is_err());
    }

    #[test]
    fn test_parse_ipv4_takes_four_decimal_parts() {
        assert_eq!(
            parse_ipv4("10.128.8.232"),
            Some(Ipv4Addr::new(10, 128, 8, 232))
        );
        assert_eq!(parse_ipv4("0.0.0.0"), Some(Ipv4Addr::UNSPECIFIED));
        assert_eq!(parse_ipv4("255.255.255.255"), Some(Ipv4Addr::BROADCAST));
        // Leading zeros are decimal here (the whole part is read base 10).
        assert_eq!(parse_ipv4("010.001.0.09"), Some(Ipv4Addr::new(10, 1, 0, 9)));
        for bad in [
            "",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.",
            ".1.2.3",
            "1..2.3",
            "256.1.1.1",
            "1.2.3.256",
            "1.2.3.0004",
            "1.2.3.4 ",
            "a.b.c.d",
            "1.2.3.-4",
            "1.2.3.4/8",
        ] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
    }

    #[test]
    fn test_dotted_quad_tells_leading_zeros() {
        assert_eq!(
            dotted_quad("10.0.0.1"),
            Some((Ipv4Addr::new(10, 0, 0, 1), false))
        );
        assert_eq!(
            dotted_quad("10.00.0.1"),
            Some((Ipv4Addr::new(10, 0, 0, 1), true))
        );
        assert_eq!(
            dotted_quad("010.0.0.1"),
            Some((Ipv4Addr::new(10, 0, 0, 1), true))
        );
        assert_eq!(
            dotted_quad("10.0.0.09"),
            Some((Ipv4Addr::new(10, 0, 0, 9), true))
        );
        assert_eq!(
            dotted_quad("100.0.0.1"),
            Some((Ipv4Addr::new(100, 0, 0, 1), false))
        );
    }

    #[test]
    fn test_masks() {
        assert_eq!(mask_to_cidr(Ipv4Addr::new(255, 255, 255, 0)), Some(24));
        assert_eq!(mask_to_cidr(Ipv4Addr::new(0, 0, 0, 0)), Some(0));
        assert_eq!(mask_to_cidr(Ipv4Addr::new(255, 255, 255, 255)), Some(32));
        assert_eq!(mask_to_cidr(Ipv4Addr::new(255, 0, 255, 0)), None);
        assert_eq!(cidr_to_mask(9), Ipv4Addr::new(255, 128, 0, 0));
    }

    #[test]
    fn test_mark_mask() {
        assert_eq!(parse_mark_mask("0x1/0xff"), Some((1, 0xff)));
        assert_eq!(parse_mark_mask("4294967295"), Some((u32::MAX, u32::MAX)));
        assert_eq!(parse_mark_mask("4294967296"), None);
        let mut s = String::new();
        push_mark_mask(&mut s, 0xfeed, 0xffff);
        assert_eq!(s, "0xfeed/0xffff");
    }
}
