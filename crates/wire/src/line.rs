//! The packet line syntax of SCENARIOS.md: parsing input lines and printed packets into a
//! [`PacketSpec`]. Building bytes from a spec is [`crate::build`]; printing bytes is
//! [`crate::print`]. This is test-input tooling: it allocates freely and is not on the packet path.
//!
//! ```text
//! <time> <dev> <proto> <src>[:port] > <dst>[:port] [field[=value]]...
//! ```
//!
//! Errors name the offending token; callers add the file and line number.

use crate::ethernet::MacAddr;
use std::fmt;
use std::net::Ipv4Addr;

/// A parse error: the token at fault and what was wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// The offending token (or the whole line when it is too short).
    pub token: String,
    /// What was expected.
    pub msg: String,
}

impl LineError {
    fn new(token: &str, msg: impl Into<String>) -> LineError {
        LineError {
            token: token.to_string(),
            msg: msg.into(),
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.token, self.msg)
    }
}

impl std::error::Error for LineError {}

/// A port as written: a number, or a placeholder such as `rand1` printed for a masked value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Port {
    /// A real port.
    Num(u16),
    /// A placeholder (masked random choice).
    Masked(String),
}

/// An IP id as written: a number or a placeholder such as `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpId {
    /// A real id.
    Num(u16),
    /// A placeholder (masked random choice).
    Masked(String),
}

/// The data part of a packet.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Data {
    /// No data.
    #[default]
    None,
    /// `len=N`: N zero bytes.
    Zeros(usize),
    /// `payload="..."`.
    Bytes(Vec<u8>),
    /// The printed digest of long data: `len=N payload^64="..." sha1=<12 hex>`. Cannot be built.
    Digest {
        /// Total length.
        len: usize,
        /// The first bytes shown.
        head: Vec<u8>,
        /// First 12 hex digits of the SHA-1 of the data.
        sha1: String,
    },
}

/// One packet as the line syntax describes it (input line without time and device, or a
/// printed packet). `None` means "not written": the builder applies SCENARIOS.md's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PacketSpec {
    /// IP protocol number (1 icmp, 6 tcp, 17 udp, or any other).
    pub proto: u8,
    /// Source address.
    pub src: Option<Ipv4Addr>,
    /// Source port (tcp/udp).
    pub src_port: Option<Port>,
    /// Destination address.
    pub dst: Option<Ipv4Addr>,
    /// Destination port (tcp/udp).
    pub dst_port: Option<Port>,
    /// `ttl=` (default 64).
    pub ttl: Option<u8>,
    /// `tos=` (default 0).
    pub tos: Option<u8>,
    /// `id=` (`ipid=` on icmp).
    pub ip_id: Option<IpId>,
    /// `rf`: the reserved IP flag.
    pub rf: bool,
    /// `df`
    pub df: bool,
    /// `mf`
    pub mf: bool,
    /// `frag=` offset in bytes (a multiple of 8).
    pub frag: u16,
    /// `ipopts=<hex>` (a multiple of 4 bytes, at most 40).
    pub ipopts: Vec<u8>,
    /// `iplen=`: the IP total length when it differs from the bytes present (a cut quote).
    pub iplen: Option<u16>,
    /// `badsum=ip`
    pub badsum_ip: bool,
    /// `badsum` / `badsum=l4`
    pub badsum_l4: bool,
    /// `smac=`
    pub smac: Option<MacAddr>,
    /// `dmac=`
    pub dmac: Option<MacAddr>,
    /// TCP `flags=` (bits of [`crate::tcp::flags`]).
    pub tcp_flags: Option<u8>,
    /// TCP `seq=`
    pub seq: Option<u32>,
    /// TCP `ack=`
    pub ack: Option<u32>,
    /// TCP `win=`
    pub win: Option<u16>,
    /// TCP `urg=` (urgent pointer).
    pub urg: Option<u16>,
    /// TCP `res=` (the 4 reserved bits).
    pub tcp_res: Option<u8>,
    /// TCP `mss=`
    pub mss: Option<u16>,
    /// TCP `wscale=`
    pub wscale: Option<u8>,
    /// TCP `sackok`
    pub sackok: bool,
    /// TCP `ts=VAL/ECR`
    pub ts: Option<(u32, u32)>,
    /// TCP `sack=a-b,c-d`
    pub sack: Vec<(u32, u32)>,
    /// TCP `opt<K>=<hex>`: options of other kinds, in order.
    pub other_opts: Vec<(u8, Vec<u8>)>,
    /// TCP `badopts=<hex>`: raw bytes appended to the options (a malformed tail).
    pub bad_opts: Vec<u8>,
    /// UDP `nocsum`
    pub nocsum: bool,
    /// UDP `ulen=`: the UDP length field when it is not the datagram's length.
    pub ulen: Option<u16>,
    /// ICMP `type=`
    pub icmp_type: Option<u8>,
    /// ICMP `code=`
    pub icmp_code: Option<u8>,
    /// ICMP `id=` (echo-like)
    pub icmp_id: Option<u16>,
    /// ICMP `seq=` (echo-like)
    pub icmp_seq: Option<u16>,
    /// ICMP `mtu=` (type 3 code 4)
    pub mtu: Option<u16>,
    /// ICMP `gw=` (type 5)
    pub gw: Option<Ipv4Addr>,
    /// ICMP `ptr=` (type 12)
    pub ptr: Option<u8>,
    /// ICMP `rest=0xHHHHHHHH`: bytes 4..8 for other types.
    pub rest: Option<u32>,
    /// ICMP error: the quoted packet.
    pub inner: Option<Box<PacketSpec>>,
    /// `truncated len=N hex=...`: raw bytes in place of the transport header and data (or, with
    /// proto `ip`, of the whole IP packet).
    pub raw_l4: Option<Vec<u8>>,
    /// `ip truncated` / `ip malformed`: the whole IP packet is the raw bytes.
    pub raw_ip: bool,
    /// The data.
    pub data: Data,
    /// Values written as placeholders (`seq=*`, `ts=*/7`, icmp `id=rand1`): the numeric field
    /// then holds 0.
    pub masked: SpecMasks,
}

/// Placeholders written in place of values the kernel chose at random (beside `ip_id` and the
/// ports, which carry their own).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpecMasks {
    /// TCP `seq=`
    pub seq: Option<String>,
    /// TCP `ack=`
    pub ack: Option<String>,
    /// TCP `ts=` value part
    pub ts_val: Option<String>,
    /// TCP `ts=` echo part
    pub ts_ecr: Option<String>,
    /// ICMP echo `id=`
    pub icmp_id: Option<String>,
}

impl SpecMasks {
    /// True when nothing is masked.
    pub fn is_empty(&self) -> bool {
        *self == SpecMasks::default()
    }

    /// The first placeholder, for error messages.
    pub fn first(&self) -> Option<&str> {
        [
            &self.seq,
            &self.ack,
            &self.ts_val,
            &self.ts_ecr,
            &self.icmp_id,
        ]
        .into_iter()
        .flatten()
        .next()
        .map(String::as_str)
    }
}

/// A parsed input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputLine {
    /// Time from the scenario's start in microseconds (exact).
    pub time_us: u64,
    /// Ingress device, or `local`.
    pub dev: String,
    /// The packet.
    pub spec: PacketSpec,
}

/// Strips a `#` comment (outside double quotes) and surrounding blanks; `None` for a line with
/// nothing left.
pub fn strip_comment(line: &str) -> Option<&str> {
    let mut in_q = false;
    let mut esc = false;
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if in_q {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_q = false;
            }
        } else if c == '"' {
            in_q = true;
        } else if c == '#' {
            end = i;
            break;
        }
    }
    let t = line[..end].trim();
    if t.is_empty() {
        None
    } else {
        Some(t)
    }
}

/// Parses `<time> <dev> <packet>` (comment and blanks already stripped, see [`strip_comment`]).
pub fn parse_input_line(line: &str) -> Result<InputLine, LineError> {
    let toks = tokenize(line)?;
    if toks.len() < 2 {
        return Err(LineError::new(
            line,
            "expected `<time> <dev> <proto> <src> > <dst> [fields]`",
        ));
    }
    let time_us = parse_time(toks[0])?;
    let dev = toks[1];
    if dev.is_empty() || dev.contains(['=', '"']) {
        return Err(LineError::new(dev, "expected a device name or `local`"));
    }
    let spec = PacketSpec::parse_tokens(&toks[2..], line)?;
    Ok(InputLine {
        time_us,
        dev: dev.to_string(),
        spec,
    })
}

/// Parses seconds with up to 6 decimals into microseconds.
pub fn parse_time(t: &str) -> Result<u64, LineError> {
    let bad = || {
        LineError::new(
            t,
            "expected a time in seconds (e.g. 0.010, at most 6 decimals)",
        )
    };
    let (int, frac) = match t.split_once('.') {
        Some((i, f)) => (i, f),
        None => (t, ""),
    };
    if int.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 6
    {
        return Err(bad());
    }
    let secs: u64 = int.parse().map_err(|_| bad())?;
    let mut us: u64 = 0;
    for i in 0..6 {
        us = us * 10 + frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
    }
    secs.checked_mul(1_000_000)
        .and_then(|s| s.checked_add(us))
        .ok_or_else(bad)
}

/// Splits on blanks, keeping `"..."` (with backslash escapes) inside one token.
fn tokenize(line: &str) -> Result<Vec<&str>, LineError> {
    let mut out = Vec::new();
    let b = line.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        let mut in_q = false;
        while i < b.len() {
            let c = b[i];
            if in_q {
                if c == b'\\' {
                    i += 1;
                } else if c == b'"' {
                    in_q = false;
                }
            } else if c == b'"' {
                in_q = true;
            } else if c.is_ascii_whitespace() {
                break;
            }
            i += 1;
        }
        let end = i.min(b.len());
        let tok = &line[start..end];
        if in_q {
            return Err(LineError::new(tok, "unterminated quoted value"));
        }
        out.push(tok);
    }
    Ok(out)
}

/// Decodes a quoted value: `"..."` with the C escapes `\r \n \t \" \\` and `\xHH`.
pub fn unquote(tok: &str) -> Result<Vec<u8>, LineError> {
    let inner = tok
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .filter(|_| tok.len() >= 2)
        .ok_or_else(|| LineError::new(tok, "expected a double-quoted value"))?;
    let b = inner.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            return Err(LineError::new(tok, "unescaped `\"` inside a quoted value"));
        }
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = b.get(i + 1).copied();
        match e {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'"') => out.push(b'"'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let h = b
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match h.and_then(|h| {
                    if h.bytes().all(|x| x.is_ascii_hexdigit()) {
                        u8::from_str_radix(h, 16).ok()
                    } else {
                        None
                    }
                }) {
                    Some(v) => out.push(v),
                    None => return Err(LineError::new(tok, "`\\x` needs exactly two hex digits")),
                }
                i += 4;
                continue;
            }
            _ => {
                return Err(LineError::new(
                    tok,
                    "unknown escape (use \\r \\n \\t \\\" \\\\ or \\xHH)",
                ));
            }
        }
        i += 2;
    }
    Ok(out)
}

/// Encodes bytes as the canonical quoted form (without the surrounding quotes): printable ASCII
/// as is, `\r \n \t \" \\`, anything else `\xHH` (lowercase).
pub fn escape_into(data: &[u8], out: &mut String) {
    use fmt::Write;
    for &c in data {
        match c {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
}

/// Parses lowercase or uppercase hex digits (even count).
pub fn parse_hex(tok: &str, s: &str) -> Result<Vec<u8>, LineError> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LineError::new(tok, "expected an even number of hex digits"));
    }
    Ok((0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
        .collect())
}

fn num<T: TryFrom<u64>>(tok: &str, v: &str) -> Result<T, LineError> {
    let n = if let Some(h) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        if h.is_empty() || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            None
        } else {
            u64::from_str_radix(h, 16).ok()
        }
    } else if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse::<u64>().ok()
    } else {
        None
    };
    n.and_then(|n| T::try_from(n).ok())
        .ok_or_else(|| LineError::new(tok, format!("expected a number in range, got `{v}`")))
}

fn parse_ip(tok: &str, s: &str) -> Result<Ipv4Addr, LineError> {
    // Ipv4Addr's parser rejects leading zeros and anything but four decimal parts.
    s.parse::<Ipv4Addr>()
        .map_err(|_| LineError::new(tok, format!("expected an IPv4 address, got `{s}`")))
}

/// A placeholder for a masked value: `*`, or lowercase letters then digits (`rand1`).
fn is_placeholder(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let letters = s.bytes().take_while(u8::is_ascii_lowercase).count();
    let digits = s.len() - letters;
    letters > 0
        && digits > 0
        && s.len() <= 16
        && s.bytes().skip(letters).all(|b| b.is_ascii_digit())
}

fn parse_endpoint(tok: &str) -> Result<(Ipv4Addr, Option<Port>), LineError> {
    match tok.split_once(':') {
        None => Ok((parse_ip(tok, tok)?, None)),
        Some((a, p)) => {
            let ip = parse_ip(tok, a)?;
            let port = if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                Port::Num(num(tok, p)?)
            } else if is_placeholder(p) && p != "*" {
                Port::Masked(p.to_string())
            } else {
                return Err(LineError::new(
                    tok,
                    "expected a port number (0-65535) or a placeholder like rand1",
                ));
            };
            Ok((ip, Some(port)))
        }
    }
}

/// Maps an iptables ICMP type name to (type, code if the name implies one).
pub fn icmp_name(name: &str) -> Option<(u8, Option<u8>)> {
    Some(match name {
        "echo-reply" | "pong" => (0, None),
        "destination-unreachable" => (3, None),
        "network-unreachable" => (3, Some(0)),
        "host-unreachable" => (3, Some(1)),
        "protocol-unreachable" => (3, Some(2)),
        "port-unreachable" => (3, Some(3)),
        "fragmentation-needed" => (3, Some(4)),
        "source-route-failed" => (3, Some(5)),
        "network-unknown" => (3, Some(6)),
        "host-unknown" => (3, Some(7)),
        "network-prohibited" => (3, Some(9)),
        "host-prohibited" => (3, Some(10)),
        "TOS-network-unreachable" => (3, Some(11)),
        "TOS-host-unreachable" => (3, Some(12)),
        "communication-prohibited" => (3, Some(13)),
        "host-precedence-violation" => (3, Some(14)),
        "precedence-cutoff" => (3, Some(15)),
        "source-quench" => (4, None),
        "redirect" => (5, None),
        "network-redirect" => (5, Some(0)),
        "host-redirect" => (5, Some(1)),
        "TOS-network-redirect" => (5, Some(2)),
        "TOS-host-redirect" => (5, Some(3)),
        "echo-request" | "ping" => (8, None),
        "router-advertisement" => (9, None),
        "router-solicitation" => (10, None),
        "time-exceeded" | "ttl-exceeded" => (11, None),
        "ttl-zero-during-transit" => (11, Some(0)),
        "ttl-zero-during-reassembly" => (11, Some(1)),
        "parameter-problem" => (12, None),
        "ip-header-bad" => (12, Some(0)),
        "required-option-missing" => (12, Some(1)),
        "timestamp-request" => (13, None),
        "timestamp-reply" => (14, None),
        "address-mask-request" => (17, None),
        "address-mask-reply" => (18, None),
        _ => return None,
    })
}

fn parse_flags(tok: &str, v: &str) -> Result<u8, LineError> {
    if v == "none" {
        return Ok(0);
    }
    if v.is_empty() {
        return Err(LineError::new(
            tok,
            "expected flag letters from FSRPAUEC or `none`",
        ));
    }
    let mut bits = 0u8;
    for c in v.chars() {
        let b = crate::tcp::flags::LETTERS
            .iter()
            .find(|(l, _)| *l == c)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                LineError::new(tok, format!("unknown TCP flag `{c}` (letters FSRPAUEC)"))
            })?;
        if bits & b != 0 {
            return Err(LineError::new(tok, format!("TCP flag `{c}` given twice")));
        }
        bits |= b;
    }
    Ok(bits)
}

/// A number, or a placeholder (`*`, `rand1`) recorded in `mask` with 0 as the value.
fn num_or_mask<T: TryFrom<u64> + Default>(
    tok: &str,
    v: &str,
    mask: &mut Option<String>,
) -> Result<T, LineError> {
    if is_placeholder(v) && !v.bytes().all(|b| b.is_ascii_digit()) && !v.starts_with("0x") {
        *mask = Some(v.to_string());
        return Ok(T::default());
    }
    num(tok, v)
}

fn parse_pair(tok: &str, v: &str, sep: char) -> Result<(u32, u32), LineError> {
    let (a, b) = v
        .split_once(sep)
        .ok_or_else(|| LineError::new(tok, format!("expected two numbers separated by `{sep}`")))?;
    Ok((num(tok, a)?, num(tok, b)?))
}

impl PacketSpec {
    /// Parses `<proto> <src>[:port] > <dst>[:port] [fields]` (a printed packet, or an input line
    /// without its time and device).
    pub fn parse(s: &str) -> Result<PacketSpec, LineError> {
        let toks = tokenize(s)?;
        Self::parse_tokens(&toks, s)
    }

    fn parse_tokens(toks: &[&str], whole: &str) -> Result<PacketSpec, LineError> {
        let Some(&proto_tok) = toks.first() else {
            return Err(LineError::new(
                whole,
                "expected `<proto> <src> > <dst> [fields]`",
            ));
        };
        let mut spec = PacketSpec::default();
        if proto_tok == "ip" {
            return Self::parse_raw_ip(toks, whole);
        }
        spec.proto = match proto_tok {
            "tcp" => 6,
            "udp" => 17,
            "icmp" => 1,
            p => num(p, p).map_err(|_| {
                LineError::new(p, "expected tcp, udp, icmp or an IP protocol number")
            })?,
        };
        if toks.len() < 4 || toks[2] != ">" {
            return Err(LineError::new(
                whole,
                "expected `<proto> <src>[:port] > <dst>[:port]`",
            ));
        }
        let (src, sport) = parse_endpoint(toks[1])?;
        let (dst, dport) = parse_endpoint(toks[3])?;
        spec.src = Some(src);
        spec.dst = Some(dst);
        spec.src_port = sport;
        spec.dst_port = dport;
        let is_tcp = spec.proto == 6;
        let is_udp = spec.proto == 17;
        let is_icmp = spec.proto == 1;
        let mut seen: Vec<&str> = Vec::new();
        let mut data_len: Option<usize> = None;
        let mut payload: Option<Vec<u8>> = None;
        let mut head: Option<Vec<u8>> = None;
        let mut sha1: Option<String> = None;
        let mut truncated = false;
        let mut raw_head: Option<Vec<u8>> = None;
        for &tok in &toks[4..] {
            let (name, val) = match tok.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (tok, None),
            };
            let key = if name.starts_with("opt")
                && name[3..].bytes().all(|b| b.is_ascii_digit())
                && name.len() > 3
            {
                "opt"
            } else {
                name
            };
            if key != "opt" && key != "sack" {
                // `badsum` and `badsum=ip` are two different fields.
                let id = if name == "badsum" && val == Some("ip") {
                    tok
                } else {
                    name
                };
                if seen.contains(&id) {
                    return Err(LineError::new(tok, format!("field `{name}` given twice")));
                }
                seen.push(id);
            }
            let need =
                || val.ok_or_else(|| LineError::new(tok, format!("field `{name}` needs a value")));
            let flag = |spec_ok: bool| -> Result<(), LineError> {
                if val.is_some() {
                    return Err(LineError::new(
                        tok,
                        format!("field `{name}` takes no value"),
                    ));
                }
                if !spec_ok {
                    return Err(LineError::new(
                        tok,
                        format!("field `{name}` does not apply to this protocol"),
                    ));
                }
                Ok(())
            };
            let only = |ok: bool| -> Result<(), LineError> {
                if ok {
                    Ok(())
                } else {
                    Err(LineError::new(
                        tok,
                        format!("field `{name}` does not apply to this protocol"),
                    ))
                }
            };
            match key {
                "ttl" => spec.ttl = Some(num(tok, need()?)?),
                "tos" => spec.tos = Some(num(tok, need()?)?),
                "id" if !is_icmp => spec.ip_id = Some(parse_ipid(tok, need()?)?),
                "ipid" if is_icmp => spec.ip_id = Some(parse_ipid(tok, need()?)?),
                "rf" => {
                    flag(true)?;
                    spec.rf = true;
                }
                "df" => {
                    flag(true)?;
                    spec.df = true;
                }
                "mf" => {
                    flag(true)?;
                    spec.mf = true;
                }
                "frag" => {
                    let f: u16 = num(tok, need()?)?;
                    if !f.is_multiple_of(8) || f > 0x1fff * 8 {
                        return Err(LineError::new(
                            tok,
                            "fragment offset must be a multiple of 8 up to 65528",
                        ));
                    }
                    spec.frag = f;
                }
                "ipopts" => {
                    let v = parse_hex(tok, need()?)?;
                    if v.len() % 4 != 0 || v.len() > 40 {
                        return Err(LineError::new(
                            tok,
                            "IP options must be a multiple of 4 bytes, at most 40",
                        ));
                    }
                    spec.ipopts = v;
                }
                "iplen" => spec.iplen = Some(num(tok, need()?)?),
                "badsum" => match val {
                    None | Some("l4") => spec.badsum_l4 = true,
                    Some("ip") => spec.badsum_ip = true,
                    Some(_) => {
                        return Err(LineError::new(
                            tok,
                            "expected `badsum`, `badsum=l4` or `badsum=ip`",
                        ))
                    }
                },
                "smac" => {
                    spec.smac = Some(MacAddr::parse(need()?).ok_or_else(|| {
                        LineError::new(tok, "expected a MAC address aa:bb:cc:dd:ee:ff")
                    })?)
                }
                "dmac" => {
                    spec.dmac = Some(MacAddr::parse(need()?).ok_or_else(|| {
                        LineError::new(tok, "expected a MAC address aa:bb:cc:dd:ee:ff")
                    })?)
                }
                "flags" => {
                    only(is_tcp)?;
                    spec.tcp_flags = Some(parse_flags(tok, need()?)?);
                }
                "seq" if is_tcp => {
                    spec.seq = Some(num_or_mask(tok, need()?, &mut spec.masked.seq)?)
                }
                "ack" => {
                    only(is_tcp)?;
                    spec.ack = Some(num_or_mask(tok, need()?, &mut spec.masked.ack)?);
                }
                "win" => {
                    only(is_tcp)?;
                    spec.win = Some(num(tok, need()?)?);
                }
                "urg" => {
                    only(is_tcp)?;
                    spec.urg = Some(num(tok, need()?)?);
                }
                "res" => {
                    only(is_tcp)?;
                    let r: u8 = num(tok, need()?)?;
                    if r > 15 {
                        return Err(LineError::new(tok, "TCP reserved bits are 0..15"));
                    }
                    spec.tcp_res = Some(r);
                }
                "mss" => {
                    only(is_tcp)?;
                    spec.mss = Some(num(tok, need()?)?);
                }
                "wscale" => {
                    only(is_tcp)?;
                    spec.wscale = Some(num(tok, need()?)?);
                }
                "sackok" => {
                    flag(is_tcp)?;
                    spec.sackok = true;
                }
                "ts" => {
                    only(is_tcp)?;
                    let v = need()?;
                    let (a, b) = v
                        .split_once('/')
                        .ok_or_else(|| LineError::new(tok, "expected `ts=VAL/ECR`"))?;
                    let a = num_or_mask(tok, a, &mut spec.masked.ts_val)?;
                    let b = num_or_mask(tok, b, &mut spec.masked.ts_ecr)?;
                    spec.ts = Some((a, b));
                }
                "sack" => {
                    only(is_tcp)?;
                    if !spec.sack.is_empty() {
                        return Err(LineError::new(tok, "field `sack` given twice"));
                    }
                    for b in need()?.split(',') {
                        spec.sack.push(parse_pair(tok, b, '-')?);
                    }
                    if spec.sack.len() > 4 {
                        return Err(LineError::new(tok, "at most 4 SACK blocks"));
                    }
                }
                "opt" => {
                    only(is_tcp)?;
                    let k: u8 = num(tok, &name[3..])?;
                    let d = match val {
                        Some(v) => parse_hex(tok, v)?,
                        None => Vec::new(),
                    };
                    if k <= 1 || d.len() > 38 {
                        return Err(LineError::new(
                            tok,
                            "option kind must be 2..255 with at most 38 data bytes",
                        ));
                    }
                    spec.other_opts.push((k, d));
                }
                "badopts" => {
                    only(is_tcp)?;
                    spec.bad_opts = parse_hex(tok, need()?)?;
                }
                "nocsum" => {
                    flag(is_udp)?;
                    spec.nocsum = true;
                }
                "ulen" => {
                    only(is_udp)?;
                    spec.ulen = Some(num(tok, need()?)?);
                }
                "type" => {
                    only(is_icmp)?;
                    let v = need()?;
                    if let Some((t, c)) = icmp_name(v) {
                        spec.icmp_type = Some(t);
                        if let Some(c) = c {
                            if spec.icmp_code.is_some_and(|x| x != c) {
                                return Err(LineError::new(
                                    tok,
                                    "ICMP type name disagrees with `code=`",
                                ));
                            }
                            spec.icmp_code = Some(c);
                        }
                    } else {
                        let t: u8 = num(tok, v).map_err(|_| {
                            LineError::new(
                                tok,
                                "expected an ICMP type number or iptables name (e.g. echo-request)",
                            )
                        })?;
                        if spec.icmp_type.is_some_and(|x| x != t) {
                            return Err(LineError::new(
                                tok,
                                "ICMP type disagrees with the name given in `code=`",
                            ));
                        }
                        spec.icmp_type = Some(t);
                    }
                }
                "code" => {
                    only(is_icmp)?;
                    let v = need()?;
                    if let Some((t, c)) = icmp_name(v) {
                        let c = c.ok_or_else(|| {
                            LineError::new(tok, "this ICMP name names a type, not a code")
                        })?;
                        if spec.icmp_type.is_some_and(|x| x != t) {
                            return Err(LineError::new(
                                tok,
                                "ICMP code name disagrees with `type=`",
                            ));
                        }
                        if spec.icmp_code.is_some_and(|x| x != c) {
                            return Err(LineError::new(
                                tok,
                                "ICMP code disagrees with the type name",
                            ));
                        }
                        spec.icmp_type = Some(t);
                        spec.icmp_code = Some(c);
                    } else {
                        let c: u8 = num(tok, v).map_err(|_| LineError::new(tok, "expected an ICMP code number or iptables name (e.g. port-unreachable)"))?;
                        if spec.icmp_code.is_some_and(|x| x != c) {
                            return Err(LineError::new(
                                tok,
                                "ICMP code disagrees with the type name",
                            ));
                        }
                        spec.icmp_code = Some(c);
                    }
                }
                "id" => spec.icmp_id = Some(num_or_mask(tok, need()?, &mut spec.masked.icmp_id)?),
                "seq" => {
                    only(is_icmp)?;
                    spec.icmp_seq = Some(num(tok, need()?)?);
                }
                "mtu" => {
                    only(is_icmp)?;
                    spec.mtu = Some(num(tok, need()?)?);
                }
                "gw" => {
                    only(is_icmp)?;
                    spec.gw = Some(parse_ip(tok, need()?)?);
                }
                "ptr" => {
                    only(is_icmp)?;
                    spec.ptr = Some(num(tok, need()?)?);
                }
                "rest" => {
                    only(is_icmp)?;
                    spec.rest = Some(num(tok, need()?)?);
                }
                "inner" => {
                    only(is_icmp)?;
                    let text = unquote(need()?).map_err(|e| LineError::new(tok, e.msg))?;
                    let text = String::from_utf8(text)
                        .map_err(|_| LineError::new(tok, "inner packet text is not UTF-8"))?;
                    let inner = PacketSpec::parse(&text)
                        .map_err(|e| LineError::new(tok, format!("in inner packet: {e}")))?;
                    spec.inner = Some(Box::new(inner));
                }
                "len" => data_len = Some(usize::from(num::<u16>(tok, need()?)?)),
                "payload" => {
                    payload = Some(unquote(need()?).map_err(|e| LineError::new(tok, e.msg))?)
                }
                "payload^64" => {
                    head = Some(unquote(need()?).map_err(|e| LineError::new(tok, e.msg))?)
                }
                "sha1" => sha1 = Some(parse_sha1(tok, need()?)?),
                "hex^64" => raw_head = Some(parse_hex(tok, need()?)?),
                "truncated" => {
                    flag(true)?;
                    truncated = true;
                }
                "hex" => spec.raw_l4 = Some(parse_hex(tok, need()?)?),
                _ => {
                    return Err(LineError::new(
                        tok,
                        format!("unknown field `{name}` for {}", proto_name(spec.proto)),
                    ));
                }
            }
        }
        // Data: plain payload, zeros, or the printed digest of long data.
        if let (true, Some(h), Some(s), Some(n)) = (truncated, &raw_head, &sha1, data_len) {
            // A long truncated transport part printed as a digest; it cannot be rebuilt.
            if spec.raw_l4.is_some() || payload.is_some() || head.is_some() || h.len() > n {
                return Err(LineError::new(whole, "a truncated part is `truncated len=N hex=...` or `truncated len=N hex^64=... sha1=...`"));
            }
            spec.data = Data::Digest {
                len: n,
                head: h.clone(),
                sha1: s.clone(),
            };
            spec.src_port = None;
            spec.dst_port = None;
            return Ok(spec);
        }
        if raw_head.is_some() {
            return Err(LineError::new(
                whole,
                "`hex^64=` belongs to `truncated len=N hex^64=... sha1=...`",
            ));
        }
        if truncated || spec.raw_l4.is_some() {
            let Some(raw) = &spec.raw_l4 else {
                return Err(LineError::new(whole, "`truncated` needs `len=N hex=...`"));
            };
            if !truncated || data_len != Some(raw.len()) || payload.is_some() || head.is_some() {
                return Err(LineError::new(
                    whole,
                    "a truncated transport header is written `truncated len=N hex=<N bytes>`",
                ));
            }
            if spec.src_port.is_some() || spec.dst_port.is_some() {
                return Err(LineError::new(
                    whole,
                    "a truncated transport header has no ports",
                ));
            }
            return Ok(spec);
        }
        spec.data = match (data_len, payload, head, sha1) {
            (None, None, None, None) => Data::None,
            (Some(n), None, None, None) => Data::Zeros(n),
            (None, Some(p), None, None) => Data::Bytes(p),
            (Some(n), Some(mut p), None, None) if n >= p.len() => {
                // `len=N payload="..."`: the payload, then zeros up to N bytes.
                p.resize(n, 0);
                Data::Bytes(p)
            }
            (Some(n), None, Some(h), Some(s)) if h.len() <= n => Data::Digest {
                len: n,
                head: h,
                sha1: s,
            },
            _ => return Err(LineError::new(
                whole,
                "data is `len=N`, `payload=\"...\"`, or `len=N payload^64=\"...\" sha1=<12 hex>`",
            )),
        };
        if spec.inner.is_some() && spec.data != Data::None {
            return Err(LineError::new(
                whole,
                "an ICMP error carries `inner=` or data, not both",
            ));
        }
        let l4_ports = (is_tcp || is_udp) && spec.frag == 0;
        if l4_ports && (spec.src_port.is_none() || spec.dst_port.is_none()) {
            return Err(LineError::new(
                whole,
                format!(
                    "{} needs ports: <src>:<port> > <dst>:<port>",
                    proto_name(spec.proto)
                ),
            ));
        }
        if !l4_ports && (spec.src_port.is_some() || spec.dst_port.is_some()) {
            return Err(LineError::new(
                whole,
                "ports only apply to tcp/udp packets without a fragment offset",
            ));
        }
        if spec.frag > 0 {
            let l4_field = spec.tcp_flags.is_some()
                || spec.seq.is_some()
                || spec.ack.is_some()
                || spec.win.is_some()
                || spec.mss.is_some()
                || spec.wscale.is_some()
                || spec.sackok
                || spec.ts.is_some()
                || spec.icmp_type.is_some()
                || spec.icmp_code.is_some()
                || spec.icmp_id.is_some()
                || spec.inner.is_some()
                || spec.nocsum
                || spec.badsum_l4;
            if l4_field {
                return Err(LineError::new(
                    whole,
                    "a fragment with frag>0 carries no transport header: only IP fields and data",
                ));
            }
        }
        Ok(spec)
    }

    fn parse_raw_ip(toks: &[&str], whole: &str) -> Result<PacketSpec, LineError> {
        // `ip truncated len=N hex=...` / `ip malformed len=N hex=...`
        let bad = || {
            LineError::new(
                whole,
                "expected `ip truncated|malformed len=N hex=<N bytes>`",
            )
        };
        if !(4..=5).contains(&toks.len()) || !matches!(toks[1], "truncated" | "malformed") {
            return Err(bad());
        }
        let n: usize = num(toks[2], toks[2].strip_prefix("len=").ok_or_else(bad)?)?;
        if let [_, _, _, h, s] = toks {
            // The digest of a long packet: `hex^64=<first 64 bytes> sha1=<12 hex>`.
            let head = parse_hex(h, h.strip_prefix("hex^64=").ok_or_else(bad)?)?;
            let sha1 = parse_sha1(s, s.strip_prefix("sha1=").ok_or_else(bad)?)?;
            if head.len() > n {
                return Err(LineError::new(h, "more bytes shown than len"));
            }
            let data = Data::Digest { len: n, head, sha1 };
            return Ok(PacketSpec {
                raw_ip: true,
                data,
                ..PacketSpec::default()
            });
        }
        let hex = parse_hex(toks[3], toks[3].strip_prefix("hex=").ok_or_else(bad)?)?;
        if hex.len() != n {
            return Err(LineError::new(toks[2], "len does not match the hex bytes"));
        }
        Ok(PacketSpec {
            raw_ip: true,
            raw_l4: Some(hex),
            ..PacketSpec::default()
        })
    }
}

fn parse_sha1(tok: &str, v: &str) -> Result<String, LineError> {
    if v.len() != 12 || !v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(LineError::new(tok, "expected 12 lowercase hex digits"));
    }
    Ok(v.to_string())
}

fn parse_ipid(tok: &str, v: &str) -> Result<IpId, LineError> {
    if is_placeholder(v) && !v.bytes().all(|b| b.is_ascii_digit()) && !v.starts_with("0x") {
        Ok(IpId::Masked(v.to_string()))
    } else {
        Ok(IpId::Num(num(tok, v)?))
    }
}

/// `tcp`, `udp`, `icmp` or the number.
pub fn proto_name(p: u8) -> String {
    match p {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_is_exact() {
        assert_eq!(parse_time("0.010").unwrap(), 10_000);
        assert_eq!(parse_time("1").unwrap(), 1_000_000);
        assert_eq!(parse_time("12.000001").unwrap(), 12_000_001);
        assert!(parse_time("0.0000001").is_err());
        assert!(parse_time("-1").is_err());
        assert!(parse_time("1e3").is_err());
        assert!(parse_time(".5").is_err());
    }

    #[test]
    fn input_line() {
        let l = parse_input_line("0.00 lan0 tcp 10.0.0.2:40000 > 203.0.113.9:443 flags=S seq=100 win=64240 mss=1460 sackok ts=1/0 wscale=7").unwrap();
        assert_eq!(l.time_us, 0);
        assert_eq!(l.dev, "lan0");
        let s = l.spec;
        assert_eq!(s.proto, 6);
        assert_eq!(s.src, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(s.src_port, Some(Port::Num(40000)));
        assert_eq!(s.tcp_flags, Some(crate::tcp::flags::SYN));
        assert_eq!(
            (s.seq, s.ack, s.win, s.mss, s.wscale, s.sackok, s.ts),
            (
                Some(100),
                None,
                Some(64240),
                Some(1460),
                Some(7),
                true,
                Some((1, 0))
            )
        );
    }

    #[test]
    fn payload_escapes() {
        let s = PacketSpec::parse(
            r#"udp 10.0.0.3:5353 > 203.0.113.53:53 payload="\x12\x34 query\r\n\t\"\\""#,
        )
        .unwrap();
        assert_eq!(s.data, Data::Bytes(b"\x12\x34 query\r\n\t\"\\".to_vec()));
        let mut out = String::new();
        escape_into(b"\x12\x34 query\r\n\t\"\\\x7f\xff", &mut out);
        assert_eq!(out, r#"\x124 query\r\n\t\"\\\x7f\xff"#);
        for bad in [
            r#"payload="\x1""#,
            r#"payload="\q""#,
            r#"payload="a"b""#,
            r#"payload="abc"#,
        ] {
            let e = PacketSpec::parse(&format!("udp 1.2.3.4:1 > 5.6.7.8:2 {bad}")).unwrap_err();
            assert!(e.token == bad || e.token.starts_with("udp"), "{e}");
        }
    }

    #[test]
    fn icmp_names_and_inner() {
        let s = PacketSpec::parse(r#"icmp 10.0.0.1 > 10.0.0.2 ttl=64 tos=0xc0 ipid=* type=port-unreachable inner="udp 10.0.0.2:41001 > 10.0.0.1:69 ttl=64 tos=0x00 id=2 len=10""#).unwrap();
        assert_eq!((s.icmp_type, s.icmp_code), (Some(3), Some(3)));
        assert_eq!(s.ip_id, Some(IpId::Masked("*".into())));
        assert_eq!(s.tos, Some(0xc0));
        let inner = s.inner.unwrap();
        assert_eq!(inner.proto, 17);
        assert_eq!(inner.ip_id, Some(IpId::Num(2)));
        assert_eq!(inner.data, Data::Zeros(10));
        let s = PacketSpec::parse("icmp 1.1.1.1 > 2.2.2.2 type=destination-unreachable code=fragmentation-needed mtu=1400").unwrap();
        assert_eq!(
            (s.icmp_type, s.icmp_code, s.mtu),
            (Some(3), Some(4), Some(1400))
        );
        assert!(PacketSpec::parse(
            "icmp 1.1.1.1 > 2.2.2.2 type=echo-request code=port-unreachable"
        )
        .is_err());
        assert!(PacketSpec::parse("icmp 1.1.1.1 > 2.2.2.2 type=bogus").is_err());
    }

    #[test]
    fn errors_name_the_token() {
        let cases = [
            ("tcp 10.0.0.1:1 > 10.0.0.2:2 flags=SX", "flags=SX"),
            ("tcp 10.0.0.1:1 > 10.0.0.2:2 seq=abc", "seq=abc"),
            ("tcp 10.0.0.1:1 > 10.0.0.2:99999", "10.0.0.2:99999"),
            ("tcp 10.0.0.1:1 > 10.0.0.256:2", "10.0.0.256:2"),
            ("udp 10.0.0.1:1 > 10.0.0.2:2 flags=S", "flags=S"),
            ("udp 10.0.0.1:1 > 10.0.0.2:2 bogus=1", "bogus=1"),
            ("udp 10.0.0.1:1 > 10.0.0.2:2 ttl=300", "ttl=300"),
            ("udp 10.0.0.1:1 > 10.0.0.2:2 ttl=1 ttl=2", "ttl=2"),
            ("icmp 10.0.0.1 > 10.0.0.2 id=1 ipid=zz!", "ipid=zz!"),
            ("foo 10.0.0.1 > 10.0.0.2", "foo"),
            ("udp 10.0.0.1:1 > 10.0.0.2:2 frag=3", "frag=3"),
        ];
        for (line, tok) in cases {
            let e = PacketSpec::parse(line).unwrap_err();
            assert_eq!(e.token, tok, "{line}: {e}");
        }
        assert!(PacketSpec::parse("tcp 10.0.0.1 > 10.0.0.2").is_err());
        assert!(PacketSpec::parse("udp 10.0.0.1:1 > 10.0.0.2:2 len=1 payload=\"ab\"").is_err());
        let s = PacketSpec::parse("udp 10.0.0.1:1 > 10.0.0.2:2 len=3 payload=\"ab\"").unwrap();
        assert_eq!(s.data, Data::Bytes(b"ab\0".to_vec()));
        assert!(parse_input_line("0.0 lan0").is_err());
    }

    #[test]
    fn placeholders_and_digest() {
        let s =
            PacketSpec::parse("udp 192.0.2.1:rand1 > 203.0.113.9:5000 ttl=63 tos=0x00 id=2 len=8")
                .unwrap();
        assert_eq!(s.src_port, Some(Port::Masked("rand1".into())));
        let s = PacketSpec::parse(
            r#"udp 1.2.3.4:1 > 5.6.7.8:2 len=300 payload^64="ab" sha1=0123456789ab"#,
        )
        .unwrap();
        assert!(matches!(s.data, Data::Digest { len: 300, .. }));
    }

    #[test]
    fn masked_values() {
        let s =
            PacketSpec::parse("tcp 10.0.0.1:8080 > 10.0.0.2:40000 flags=SA seq=* ack=101 ts=*/7")
                .unwrap();
        assert_eq!((s.seq, s.ts), (Some(0), Some((0, 7))));
        assert_eq!(s.masked.seq.as_deref(), Some("*"));
        assert_eq!(s.masked.ts_val.as_deref(), Some("*"));
        assert_eq!(s.masked.first(), Some("*"));
        let s = PacketSpec::parse("icmp 192.0.2.1 > 198.51.100.7 ipid=3 type=8 id=rand1 seq=1")
            .unwrap();
        assert_eq!(s.masked.icmp_id.as_deref(), Some("rand1"));
        assert!(PacketSpec::parse("tcp 1.1.1.1:1 > 2.2.2.2:2 seq=abc").is_err());
        assert!(PacketSpec::parse("tcp 1.1.1.1:rand > 2.2.2.2:2").is_err());
        let b = crate::build::build_ipv4(&s, &crate::build::FrameCtx::default());
        assert_eq!(b, Err(crate::build::BuildError::Masked("rand1".into())));
    }

    #[test]
    fn comments() {
        assert_eq!(strip_comment("  # x"), None);
        assert_eq!(
            strip_comment(r##"0 lan0 udp 1.2.3.4:1 > 5.6.7.8:2 payload="#no" # yes"##),
            Some(r##"0 lan0 udp 1.2.3.4:1 > 5.6.7.8:2 payload="#no""##)
        );
    }
}
