//! Reading a scenario file (SCENARIOS.md) into a [`Scenario`].
//!
//! The standard keys keep the meaning SCENARIOS.md gives them. Keys this project adds:
//! `exclusive = true` (the scenario changes machine-wide settings such as
//! `net.netfilter.nf_conntrack_max`; the kernel oracle never runs it beside another one);
//! `[[pcap_ingress]]` with `src` (CIDR) and `dev` (frames of a capture from those sources enter on
//! that device; see [`crate::capture`]); `[[bridge]]` with `name`, `ports` (interface names),
//! `address`/`addresses`, `mac` (default `02:00:00:00:02:NN`), `ageing_time` (seconds a learned
//! MAC is kept, 1 to 1000000, default 300 as in Linux), see [`crate::host::Bridge`].
//! Any other key is refused with the file and line.

use crate::host::{
    default_bridge_mac, default_interface_mac, parse_mac, Bridge, Cidr, Host, Interface, Listen,
    ListenProto, Neighbour, Route, DEFAULT_AGEING_TIME,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// An error in a scenario file, with where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario file (or `<string>` when parsed from text).
    pub file: PathBuf,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub msg: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.file.display(), l, self.msg),
            None => write!(f, "{}: {}", self.file.display(), self.msg),
        }
    }
}

impl std::error::Error for ScenarioError {}

/// One packet line of the `packets` key.
#[derive(Clone, Debug, PartialEq)]
pub struct PacketLine {
    /// The 1-based line in the scenario file.
    pub line: usize,
    /// The line as written, trimmed (comments kept out): what results print as the input.
    pub text: String,
    /// The parsed line.
    pub parsed: nfrs_wire::line::InputLine,
}

/// Where a scenario's packets come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Packet lines, in file order.
    Lines(Vec<PacketLine>),
    /// A pcap or pcapng file (resolved path); `dev` is `pcap_dev`, the ingress of every frame of
    /// a classic pcap; `ingress` the `[[pcap_ingress]]` entries.
    Pcap {
        path: PathBuf,
        dev: Option<String>,
        ingress: Vec<crate::capture::PcapIngress>,
    },
}

/// A parsed scenario file.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// The file it was read from (`<string>` for text).
    pub path: PathBuf,
    /// The one-line description.
    pub description: String,
    /// iptables-restore input (the `rules` key, or the contents of `rules_file`); empty when
    /// absent.
    pub rules: String,
    /// The packets.
    pub input: Input,
    /// The firewall host.
    pub host: Host,
    /// Changes machine-wide settings: never run beside another scenario in the kernel.
    pub exclusive: bool,
}

impl Scenario {
    /// The packet lines (empty for a capture).
    pub fn packet_lines(&self) -> &[PacketLine] {
        match &self.input {
            Input::Lines(l) => l,
            Input::Pcap { .. } => &[],
        }
    }

    /// The frames of a capture input, each with its ingress device and addressed to the host
    /// (empty for packet lines).
    pub fn capture_frames(&self) -> Result<Vec<crate::capture::CaptureFrame>, ScenarioError> {
        let Input::Pcap { path, dev, ingress } = &self.input else {
            return Ok(Vec::new());
        };
        let err = |msg: String| ScenarioError {
            file: self.path.clone(),
            line: None,
            msg,
        };
        let bytes =
            std::fs::read(path).map_err(|e| err(format!("pcap `{}`: {e}", path.display())))?;
        let raw = crate::capture::read_capture(&bytes)
            .map_err(|e| err(format!("pcap `{}`: {e}", path.display())))?;
        crate::capture::frames_for_host(&raw, &self.host, ingress, dev.as_deref())
            .map_err(|e| err(format!("pcap `{}`: {e}", path.display())))
    }

    /// Where this scenario's recorded kernel result lives: `NAME.kernel.txt` beside `NAME.toml`.
    pub fn golden_path(&self) -> PathBuf {
        golden_path_for(&self.path)
    }
}

/// `NAME.kernel.txt` for `NAME.toml`.
pub fn golden_path_for(toml: &Path) -> PathBuf {
    let stem = toml
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    toml.with_file_name(format!("{stem}.kernel.txt"))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    description: Option<Spanned<String>>,
    rules: Option<Spanned<String>>,
    rules_file: Option<Spanned<String>>,
    packets: Option<Spanned<String>>,
    pcap: Option<Spanned<String>>,
    pcap_dev: Option<Spanned<String>>,
    exclusive: Option<bool>,
    #[serde(default)]
    interface: Vec<Spanned<RawInterface>>,
    #[serde(default)]
    route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    neighbour: Vec<Spanned<RawNeighbour>>,
    sysctl: Option<Spanned<toml::Table>>,
    #[serde(default)]
    listen: Vec<Spanned<RawListen>>,
    #[serde(default)]
    pcap_ingress: Vec<Spanned<RawPcapIngress>>,
    #[serde(default)]
    bridge: Vec<Spanned<RawBridge>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBridge {
    name: String,
    ports: Vec<String>,
    address: Option<String>,
    addresses: Option<Vec<String>>,
    mac: Option<String>,
    ageing_time: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPcapIngress {
    src: String,
    dev: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInterface {
    name: String,
    address: Option<String>,
    addresses: Option<Vec<String>>,
    mac: Option<String>,
    mtu: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    to: String,
    via: Option<String>,
    dev: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNeighbour {
    address: String,
    mac: String,
    dev: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawListen {
    proto: String,
    port: u16,
    address: Option<String>,
}

struct Ctx<'a> {
    file: &'a Path,
    src: &'a str,
}

impl Ctx<'_> {
    fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.src.len());
        self.src.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    fn err_at(&self, offset: usize, msg: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_path_buf(),
            line: Some(self.line_of(offset)),
            msg: msg.into(),
        }
    }

    fn err(&self, msg: impl Into<String>) -> ScenarioError {
        ScenarioError {
            file: self.file.to_path_buf(),
            line: None,
            msg: msg.into(),
        }
    }

    /// The file line of line `i` (0-based) inside a multi-line string that starts at `offset`.
    fn string_line(&self, offset: usize, i: usize) -> usize {
        let start = self.line_of(offset);
        // A newline right after the opening `'''` is not part of the value.
        let rest = &self.src[offset.min(self.src.len())..];
        let skip = if rest.starts_with("'''\n")
            || rest.starts_with("\"\"\"\n")
            || rest.starts_with("'''\r\n")
            || rest.starts_with("\"\"\"\r\n")
        {
            1
        } else {
            0
        };
        start + skip + i
    }
}

/// Reads and parses the scenario file at `path`.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let src = std::fs::read_to_string(path).map_err(|e| ScenarioError {
        file: path.to_path_buf(),
        line: None,
        msg: format!("cannot read: {e}"),
    })?;
    parse(&src, path)
}

/// Parses scenario text; `path` names it in errors and anchors `rules_file` and `pcap`.
pub fn parse(src: &str, path: &Path) -> Result<Scenario, ScenarioError> {
    let cx = Ctx { file: path, src };
    let raw: RawScenario = toml::from_str(src).map_err(|e| {
        let line = e.span().map(|s| cx.line_of(s.start));
        ScenarioError {
            file: path.to_path_buf(),
            line,
            msg: e.message().to_string(),
        }
    })?;
    let base = path.parent().unwrap_or(Path::new("."));

    let description = match raw.description {
        Some(d) => {
            if d.get_ref().contains('\n') {
                return Err(cx.err_at(d.span().start, "description must be one line"));
            }
            d.into_inner()
        }
        None => return Err(cx.err("missing key `description`")),
    };

    let rules = match (raw.rules, raw.rules_file) {
        (Some(_), Some(f)) => {
            return Err(cx.err_at(f.span().start, "give `rules` or `rules_file`, not both"))
        }
        (Some(r), None) => r.into_inner(),
        (None, Some(f)) => {
            let p = base.join(f.get_ref());
            std::fs::read_to_string(&p).map_err(|e| {
                cx.err_at(f.span().start, format!("rules_file `{}`: {e}", p.display()))
            })?
        }
        (None, None) => String::new(),
    };

    // Interfaces.
    let mut host = Host::default();
    for (idx, si) in raw.interface.iter().enumerate() {
        let at = si.span().start;
        let ri = si.get_ref();
        if ri.name.is_empty() || ri.name.len() > 15 || ri.name.contains(['/', ' ', ':']) {
            return Err(cx.err_at(
                at,
                format!(
                    "interface name `{}` must be 1..15 characters without '/', ':' or spaces",
                    ri.name
                ),
            ));
        }
        if ri.name == "local" || ri.name == "lo" {
            return Err(cx.err_at(at, format!("interface name `{}` is reserved", ri.name)));
        }
        if host.interface(&ri.name).is_some() {
            return Err(cx.err_at(at, format!("interface `{}` given twice", ri.name)));
        }
        let mut addresses = Vec::new();
        for a in ri.address.iter().chain(ri.addresses.iter().flatten()) {
            addresses.push(Cidr::parse(a).map_err(|m| cx.err_at(at, m))?);
        }
        let mac = match &ri.mac {
            Some(m) => parse_mac(m).map_err(|m| cx.err_at(at, m))?,
            None => default_interface_mac(idx + 1),
        };
        let mtu = ri.mtu.unwrap_or(1500);
        if !(68..=65535).contains(&mtu) {
            return Err(cx.err_at(at, format!("mtu {mtu} out of range 68..65535")));
        }
        host.interfaces.push(Interface {
            name: ri.name.clone(),
            addresses,
            mac,
            mtu,
        });
    }

    for (idx, sb) in raw.bridge.iter().enumerate() {
        let at = sb.span().start;
        let rb = sb.get_ref();
        if rb.name.is_empty() || rb.name.len() > 15 || rb.name.contains(['/', ' ', ':']) {
            return Err(cx.err_at(
                at,
                format!("bridge name `{}` is not a valid interface name", rb.name),
            ));
        }
        if host.has_device(&rb.name) || rb.name == "local" || rb.name == "lo" {
            return Err(cx.err_at(at, format!("bridge name `{}` is already taken", rb.name)));
        }
        for p in &rb.ports {
            if host.interface(p).is_none() {
                return Err(cx.err_at(at, format!("bridge port `{p}` is not an [[interface]]")));
            }
            if host.bridge_of(p).is_some() {
                return Err(cx.err_at(at, format!("interface `{p}` is a port of two bridges")));
            }
        }
        let mut addresses = Vec::new();
        for a in rb.address.iter().chain(rb.addresses.iter().flatten()) {
            addresses.push(Cidr::parse(a).map_err(|m| cx.err_at(at, m))?);
        }
        let mac = match &rb.mac {
            Some(m) => parse_mac(m).map_err(|m| cx.err_at(at, m))?,
            None => default_bridge_mac(idx + 1),
        };
        let ageing_time = match rb.ageing_time {
            None => DEFAULT_AGEING_TIME,
            Some(t) if (1..=1_000_000).contains(&t) => t as u32,
            Some(t) => {
                return Err(cx.err_at(
                    at,
                    format!("bridge ageing_time {t} is not a number of seconds from 1 to 1000000"),
                ))
            }
        };
        host.bridges.push(Bridge {
            name: rb.name.clone(),
            ports: rb.ports.clone(),
            addresses,
            mac,
            ageing_time,
        });
    }

    let parse_addr = |s: &str, at: usize| -> Result<Ipv4Addr, ScenarioError> {
        s.trim()
            .parse::<Ipv4Addr>()
            .map_err(|_| cx.err_at(at, format!("`{s}` is not an IPv4 address")))
    };
    let check_dev = |dev: &str, at: usize, host: &Host| -> Result<(), ScenarioError> {
        if !host.has_device(dev) {
            return Err(cx.err_at(at, format!("unknown interface `{dev}`")));
        }
        Ok(())
    };

    for sr in &raw.route {
        let at = sr.span().start;
        let r = sr.get_ref();
        let to = if r.to == "default" {
            None
        } else {
            Some(Cidr::parse(&r.to).map_err(|m| cx.err_at(at, m))?)
        };
        let via = match &r.via {
            Some(v) => Some(parse_addr(v, at)?),
            None => None,
        };
        check_dev(&r.dev, at, &host)?;
        host.routes.push(Route {
            to,
            via,
            dev: r.dev.clone(),
        });
    }

    for sn in &raw.neighbour {
        let at = sn.span().start;
        let n = sn.get_ref();
        check_dev(&n.dev, at, &host)?;
        host.neighbours.push(Neighbour {
            address: parse_addr(&n.address, at)?,
            mac: parse_mac(&n.mac).map_err(|m| cx.err_at(at, m))?,
            dev: n.dev.clone(),
        });
    }

    if let Some(s) = &raw.sysctl {
        flatten_sysctls(&cx, s.span().start, "", s.get_ref(), &mut host.sysctls)?;
    }

    for sl in &raw.listen {
        let at = sl.span().start;
        let l = sl.get_ref();
        let proto = match l.proto.as_str() {
            "udp" => ListenProto::Udp,
            "tcp" => ListenProto::Tcp,
            other => {
                return Err(cx.err_at(
                    at,
                    format!("listen proto `{other}`: `udp` or `tcp` expected"),
                ))
            }
        };
        let address = match &l.address {
            Some(a) => Some(parse_addr(a, at)?),
            None => None,
        };
        host.listen.push(Listen {
            proto,
            port: l.port,
            address,
        });
    }

    let exclusive = raw.exclusive.unwrap_or(false);
    let globals = host.global_sysctls();
    if !globals.is_empty() && !exclusive {
        return Err(cx.err(format!(
            "sysctl `{}` is machine-wide: the scenario must say `exclusive = true`",
            globals[0]
        )));
    }

    let input = match (raw.packets, raw.pcap) {
        (Some(_), Some(p)) => {
            return Err(cx.err_at(p.span().start, "give `packets` or `pcap`, not both"))
        }
        (Some(p), None) => {
            if let Some(d) = &raw.pcap_dev {
                return Err(cx.err_at(d.span().start, "`pcap_dev` without `pcap`"));
            }
            if let Some(g) = raw.pcap_ingress.first() {
                return Err(cx.err_at(g.span().start, "`[[pcap_ingress]]` without `pcap`"));
            }
            Input::Lines(parse_packet_lines(&cx, &p, &host)?)
        }
        (None, Some(p)) => {
            let dev = raw.pcap_dev.map(|d| d.into_inner());
            if let Some(d) = &dev {
                check_dev(d, p.span().start, &host)?;
            }
            let mut ingress = Vec::new();
            for g in &raw.pcap_ingress {
                let at = g.span().start;
                check_dev(&g.get_ref().dev, at, &host)?;
                ingress.push(crate::capture::PcapIngress {
                    src: Cidr::parse(&g.get_ref().src).map_err(|m| cx.err_at(at, m))?,
                    dev: g.get_ref().dev.clone(),
                });
            }
            Input::Pcap {
                path: base.join(p.get_ref()),
                dev,
                ingress,
            }
        }
        (None, None) => {
            if let Some(d) = &raw.pcap_dev {
                return Err(cx.err_at(d.span().start, "`pcap_dev` without `pcap`"));
            }
            if let Some(g) = raw.pcap_ingress.first() {
                return Err(cx.err_at(g.span().start, "`[[pcap_ingress]]` without `pcap`"));
            }
            Input::Lines(Vec::new())
        }
    };

    Ok(Scenario {
        path: path.to_path_buf(),
        description,
        rules,
        input,
        host,
        exclusive,
    })
}

fn flatten_sysctls(
    cx: &Ctx<'_>,
    at: usize,
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ScenarioError> {
    for (k, v) in table {
        let name = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let text = match v {
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::String(s) => s.clone(),
            toml::Value::Boolean(b) => u8::from(*b).to_string(),
            toml::Value::Table(t) => {
                // `net.ipv4.ip_forward = 1` without quotes makes nested tables: flatten them.
                flatten_sysctls(cx, at, &name, t, out)?;
                continue;
            }
            _ => {
                return Err(cx.err_at(
                    at,
                    format!("sysctl `{name}`: a number or a string expected"),
                ))
            }
        };
        if !name.starts_with("net.") {
            return Err(cx.err_at(
                at,
                format!("sysctl `{name}`: only net.* sysctls are part of the host"),
            ));
        }
        out.insert(name, text);
    }
    Ok(())
}

fn parse_packet_lines(
    cx: &Ctx<'_>,
    p: &Spanned<String>,
    host: &Host,
) -> Result<Vec<PacketLine>, ScenarioError> {
    let mut out = Vec::new();
    let mut last_time = 0u64;
    for (i, raw_line) in p.get_ref().lines().enumerate() {
        let line = cx.string_line(p.span().start, i);
        let Some(text) = nfrs_wire::line::strip_comment(raw_line) else {
            continue;
        };
        let parsed = nfrs_wire::line::parse_input_line(text).map_err(|e| ScenarioError {
            file: cx.file.to_path_buf(),
            line: Some(line),
            msg: e.to_string(),
        })?;
        if parsed.dev != "local" && host.interface(&parsed.dev).is_none() {
            return Err(ScenarioError {
                file: cx.file.to_path_buf(),
                line: Some(line),
                msg: format!(
                    "unknown device `{}` (an [[interface]] name or `local`)",
                    parsed.dev
                ),
            });
        }
        if parsed.time_us < last_time {
            return Err(ScenarioError {
                file: cx.file.to_path_buf(),
                line: Some(line),
                msg: "packet times must never decrease".into(),
            });
        }
        last_time = parsed.time_us;
        out.push(PacketLine {
            line,
            text: text.to_string(),
            parsed,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
