//! `conntrack` and `sysctl` against the live engine, printing what conntrack-tools 1.4.7 and
//! procps `sysctl` print (messages recorded from the real tools in a network namespace).

use crate::proto::Response;
use nfrs_conntrack::{listing, ConnId, ConnTable, CtConfig, ExpectFormat, Format, Nanos, Style};
use nfrs_engine::engine::Engine;
use std::collections::BTreeMap;
use std::fmt::Write;

const CT_PREFIX: &str = "conntrack v1.4.7 (conntrack-tools)";

/// Which entries a conntrack command selects (original-direction tuple).
#[derive(Default, Debug, PartialEq, Eq)]
struct Filter {
    proto: Option<u8>,
    src: Option<u32>,
    dst: Option<u32>,
    sport: Option<u16>,
    dport: Option<u16>,
}

/// A protocol name or number as conntrack-tools takes it.
pub(crate) fn proto_number(p: &str) -> Option<u8> {
    Some(match p {
        "tcp" => 6,
        "udp" => 17,
        "icmp" => 1,
        "gre" => 47,
        "sctp" => 132,
        "udplite" => 136,
        n => n.parse().ok()?,
    })
}

/// A dotted IPv4 address.
pub(crate) fn addr(s: &str) -> Option<u32> {
    s.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
}

#[derive(Debug, PartialEq, Eq)]
enum CtOp {
    List,
    Delete,
    Flush,
    Count,
    Stats,
}

fn ct_usage(msg: &str) -> Response {
    Response::error(2, format!("{CT_PREFIX}: {msg}"))
}

/// Counters kept beside a table (a restored snapshot's, see [`crate::ctsave::Restored`]).
pub type SavedCounters<'a> = Option<&'a crate::ctsave::Restored>;

/// Each live entry of `ct` at `now` with its line in `style`: helper, accounting counters
/// (`saved` ones first) and reference count (1, plus one per live connection it is the
/// master of) as the kernel and conntrack-tools print them. Sorted by line.
pub fn lines(
    ct: &ConnTable,
    now: Nanos,
    style: Style,
    saved: SavedCounters<'_>,
) -> Vec<(ConnId, String)> {
    let mut children: BTreeMap<ConnId, u32> = BTreeMap::new();
    for (_, c) in ct.iter().filter(|(_, c)| !c.is_expired(now)) {
        if let Some(m) = c.master() {
            *children.entry(m).or_default() += 1;
        }
    }
    let mut v: Vec<(ConnId, String)> = ct
        .iter()
        .filter(|(_, c)| !c.is_expired(now))
        .map(|(id, c)| {
            let acct = saved
                .and_then(|s| s.counters(id))
                .or_else(|| ct.counters(id));
            let refs = 1 + children.get(&id).copied().unwrap_or(0);
            let mut s = String::with_capacity(192);
            let _ = listing::write_line_refs(&mut s, c, ct.helper(id), acct, refs, now, style);
            (id, s)
        })
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

/// `/proc/net/nf_conntrack` of `ct` at `now`.
pub fn proc_conntrack(ct: &ConnTable, now: Nanos, saved: SavedCounters<'_>) -> String {
    let style = Style {
        format: Format::Proc,
        timeout: true,
    };
    let mut out = String::new();
    for (_, l) in lines(ct, now, style, saved) {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// `/proc/net/nf_conntrack_expect` of `ct` at `now`.
pub fn proc_expect(ct: &ConnTable, now: Nanos) -> String {
    let mut out = String::new();
    for l in ct.expect_listing(now, ExpectFormat::Proc, true) {
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Runs `conntrack ARGS` against `eng` at time `now`.
pub fn conntrack(eng: &mut Engine, args: &[String], now: Nanos) -> Response {
    let mut empty = None;
    let ct: &mut ConnTable = match eng.ct.as_mut() {
        Some(c) => c,
        // Conntrack is not running (no rule needs it): an empty table, as after modprobe.
        None => empty.insert(ConnTable::new(CtConfig::default())),
    };
    conntrack_table(ct, args, now, None)
}

/// Runs `conntrack ARGS` against the table `ct` at time `now` (`saved`: counters kept beside
/// a restored snapshot).
pub fn conntrack_table(
    ct: &mut ConnTable,
    args: &[String],
    now: Nanos,
    saved: SavedCounters<'_>,
) -> Response {
    let mut op = None;
    let mut f = Filter::default();
    let mut extended = false;
    let mut expect = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| ct_usage(&format!("option `{name}' requires an argument")))
        };
        let newop = match a.as_str() {
            "-L" | "--dump" => Some(CtOp::List),
            "-D" | "--delete" => Some(CtOp::Delete),
            "-F" | "--flush" => Some(CtOp::Flush),
            "-C" | "--count" => Some(CtOp::Count),
            "-S" | "--stats" => Some(CtOp::Stats),
            _ => None,
        };
        if let Some(o) = newop {
            if op.is_some() {
                return ct_usage("only one command at a time (-L, -D, -F, -C, -S)");
            }
            op = Some(o);
            continue;
        }
        let v = match a.as_str() {
            "-p" | "--proto" | "-s" | "--src" | "--orig-src" | "-d" | "--dst" | "--orig-dst"
            | "--sport" | "--orig-port-src" | "--dport" | "--orig-port-dst" | "-o" | "--output" => {
                match val(a) {
                    Ok(v) => v,
                    Err(r) => return r,
                }
            }
            "conntrack" if op.is_some() => continue,
            "expect" if op.is_some() => {
                expect = true;
                continue;
            }
            other => {
                return ct_usage(&format!(
                    "option or argument `{other}' is not supported by nfrs conntrack"
                ))
            }
        };
        let bad = || ct_usage(&format!("bad value `{v}' for `{a}'"));
        match a.as_str() {
            "-p" | "--proto" => match proto_number(&v) {
                Some(x) => f.proto = Some(x),
                None => return bad(),
            },
            "-s" | "--src" | "--orig-src" => match addr(&v) {
                Some(x) => f.src = Some(x),
                None => return bad(),
            },
            "-d" | "--dst" | "--orig-dst" => match addr(&v) {
                Some(x) => f.dst = Some(x),
                None => return bad(),
            },
            "--sport" | "--orig-port-src" => match v.parse() {
                Ok(x) => f.sport = Some(x),
                Err(_) => return bad(),
            },
            "--dport" | "--orig-port-dst" => match v.parse() {
                Ok(x) => f.dport = Some(x),
                Err(_) => return bad(),
            },
            _ => match v.as_str() {
                "extended" => extended = true,
                _ => return bad(),
            },
        }
    }
    let Some(op) = op else {
        return ct_usage("no command specified (nfrs supports -L, -D, -F, -C, -S)");
    };
    if op == CtOp::Stats {
        if f != Filter::default() || extended {
            return ct_usage("-S takes no filter nor output option");
        }
        // conntrack-tools prints one line per CPU on stdout and nothing on stderr; nfrs runs
        // on one packet thread: `cpu=0`.
        let mut out = Response::default();
        let st = ct.stats();
        let line = if expect {
            st.expect_line(0).to_string()
        } else {
            st.conntrack_line(0).to_string()
        };
        let _ = writeln!(out.stdout, "{line}");
        return out;
    }
    ct.expire(now, &mut |_, _| {});
    let mut out = Response::default();
    if expect {
        if op != CtOp::List || f != Filter::default() {
            return ct_usage(
                "nfrs conntrack supports only -L on the expect table, without filters",
            );
        }
        for l in ct.expect_listing(now, ExpectFormat::Conntrack, true) {
            let _ = writeln!(out.stdout, "{l}");
        }
        let n = ct.expectations(now).count();
        let _ = writeln!(out.stderr, "{CT_PREFIX}: {n} expectations have been shown.");
        return out;
    }
    let style = Style {
        format: if extended {
            Format::ConntrackExtended
        } else {
            Format::Conntrack
        },
        timeout: true,
    };
    let selected: Vec<(ConnId, String)> = lines(ct, now, style, saved)
        .into_iter()
        .filter(|(id, _)| {
            let t = &ct.get(*id).tuple[0];
            f.proto.is_none_or(|p| p == t.proto)
                && f.src.is_none_or(|a| a == t.src)
                && f.dst.is_none_or(|a| a == t.dst)
                && f.sport.is_none_or(|p| p == t.src_l4)
                && f.dport.is_none_or(|p| p == t.dst_l4)
        })
        .collect();
    match op {
        CtOp::List => {
            for (_, l) in &selected {
                let _ = writeln!(out.stdout, "{l}");
            }
            let _ = writeln!(
                out.stderr,
                "{CT_PREFIX}: {} flow entries have been shown.",
                selected.len()
            );
        }
        CtOp::Delete => {
            for (id, l) in &selected {
                let _ = writeln!(out.stdout, "{l}");
                ct.kill(*id);
            }
            let _ = writeln!(
                out.stderr,
                "{CT_PREFIX}: {} flow entries have been deleted.",
                selected.len()
            );
            // Recorded: conntrack -D that deletes nothing exits 1.
            out.code = i32::from(selected.is_empty());
        }
        CtOp::Flush => {
            if f != Filter::default() {
                return ct_usage("-F takes no filter (use -D)");
            }
            ct.flush(&mut |_, _| {});
            let _ = writeln!(
                out.stderr,
                "{CT_PREFIX}: connection tracking table has been emptied."
            );
        }
        CtOp::Count => {
            let _ = writeln!(out.stdout, "{}", selected.len());
        }
        // Answered above.
        CtOp::Stats => {}
    }
    out
}

/// The host sysctls (beside conntrack's) that `nfrs sysctl` knows, and which the engine reads.
pub const HOST_SYSCTLS: &[&str] = &[
    "net.ipv4.ip_forward",
    "net.ipv4.ip_default_ttl",
    "net.ipv4.icmp_echo_ignore_all",
    "net.ipv4.icmp_echo_ignore_broadcasts",
    "net.bridge.bridge-nf-call-iptables",
];

/// `net/ipv4/ip_forward` or `net.ipv4.ip_forward` → the dotted name.
pub fn dotted(name: &str) -> String {
    name.trim_start_matches("/proc/sys/").replace('/', ".")
}

/// Reads a sysctl: conntrack's from `cfg` (and the table's count), the host's from `sysctls`.
pub fn sysctl_get(
    name: &str,
    cfg: &CtConfig,
    count: u32,
    sysctls: &BTreeMap<String, String>,
) -> Option<String> {
    let n = dotted(name);
    if n == "net.netfilter.nf_conntrack_count" {
        return Some(count.to_string());
    }
    if n.starts_with("net.netfilter.") || n == "net.nf_conntrack_max" {
        let bare = n.rsplit('.').next().unwrap_or("");
        return cfg.get(bare);
    }
    if HOST_SYSCTLS.contains(&n.as_str()) {
        return Some(
            sysctls
                .get(&n)
                .cloned()
                .or_else(|| {
                    nfrs_scenario::host::LAB_SYSCTLS
                        .iter()
                        .find(|(k, _)| *k == n)
                        .map(|(_, v)| v.to_string())
                })
                .unwrap_or_else(|| match n.as_str() {
                    "net.ipv4.ip_default_ttl" => "64".into(),
                    "net.ipv4.icmp_echo_ignore_broadcasts" => "1".into(),
                    "net.bridge.bridge-nf-call-iptables" => "1".into(),
                    _ => "0".into(),
                }),
        );
    }
    None
}

/// The value a host sysctl keeps once `value` (checked) is written: bridge-nf-call-iptables
/// reads back 1 for any non-zero write (measured on Linux 6.18: `-w ...=2` prints `= 2`, then
/// reads `1`).
pub fn stored_host_value(name: &str, value: &str) -> String {
    if name == "net.bridge.bridge-nf-call-iptables" && value != "0" {
        return "1".into();
    }
    value.to_string()
}

/// Validates a host sysctl's value the way its kernel handler does (an int; TTL 1..255).
pub fn check_host_value(name: &str, value: &str) -> Option<String> {
    let v: i64 = value.trim().parse().ok()?;
    if !(i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        return None;
    }
    if name == "net.ipv4.ip_default_ttl" && !(1..=255).contains(&v) {
        return None;
    }
    Some(v.to_string())
}

/// Applies the host sysctls to the engine's host.
pub fn apply_host_sysctls(eng: &mut Engine, sysctls: &BTreeMap<String, String>) {
    let get = |n: &str| sysctls.get(n).and_then(|v| v.parse::<i64>().ok());
    if let Some(v) = get("net.ipv4.ip_forward") {
        eng.host.ip_forward = v != 0;
    }
    if let Some(v) = get("net.ipv4.ip_default_ttl") {
        eng.host.default_ttl = v.clamp(1, 255) as u8;
    }
    if let Some(v) = get("net.ipv4.icmp_echo_ignore_all") {
        eng.host.echo_ignore_all = v != 0;
    }
    if let Some(v) = get("net.ipv4.icmp_echo_ignore_broadcasts") {
        eng.host.echo_ignore_broadcasts = v != 0;
    }
    if let Some(v) = get("net.bridge.bridge-nf-call-iptables") {
        eng.host.bridge_call_iptables = v != 0;
    }
}

/// One parsed `sysctl` invocation.
#[derive(Debug, PartialEq, Eq)]
pub struct SysctlArgs {
    /// `-n`: values only.
    pub values_only: bool,
    /// `-q`: quiet on writes.
    pub quiet: bool,
    /// (name, value to write).
    pub items: Vec<(String, Option<String>)>,
}

/// Parses `sysctl [-n] [-q] [-w] NAME[=VALUE]...`.
pub fn parse_sysctl_args(args: &[String]) -> Result<SysctlArgs, String> {
    let mut s = SysctlArgs {
        values_only: false,
        quiet: false,
        items: Vec::new(),
    };
    let mut write = false;
    for a in args {
        match a.as_str() {
            "-n" | "--values" => s.values_only = true,
            "-q" | "--quiet" => s.quiet = true,
            "-w" | "--write" => write = true,
            // Bundled short options (`-qw`, `-nq`).
            o if o.len() > 2
                && !o.starts_with("--")
                && o[1..].chars().all(|c| matches!(c, 'n' | 'q' | 'w')) =>
            {
                for c in o[1..].chars() {
                    match c {
                        'n' => s.values_only = true,
                        'q' => s.quiet = true,
                        _ => write = true,
                    }
                }
            }
            o if o.starts_with('-') => {
                return Err(format!(
                    "sysctl: option `{o}' is not supported by nfrs sysctl"
                ))
            }
            item => match item.split_once('=') {
                Some((k, v)) => s.items.push((k.trim().into(), Some(v.trim().into()))),
                None if write => {
                    return Err(format!("sysctl: \"{item}\" must be of the form name=value"))
                }
                None => s.items.push((item.into(), None)),
            },
        }
    }
    if s.items.is_empty() {
        return Err("sysctl: no variables specified (nfrs sysctl does not list all)".into());
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `conntrack -S` / `conntrack -S expect` print one `cpu=0` line in conntrack-tools
    /// 1.4.7's layout (recorded in a namespace: `cpu=0   \t` then `name=value ` pairs).
    #[test]
    fn stats_lines() {
        let mut ct = ConnTable::new(CtConfig::default());
        // An ICMP port unreachable quoting no known flow (OUTPUT: no checksum check).
        let mut l4 = vec![3u8, 3, 0, 0, 0, 0, 0, 0];
        l4.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0]);
        l4.extend_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1, 0x15, 0xb3, 0x1a, 0x0a, 0, 8, 0, 0]);
        let pkt = nfrs_conntrack::Packet {
            src: u32::from_be_bytes([10, 0, 0, 1]),
            dst: u32::from_be_bytes([10, 0, 0, 2]),
            proto: 1,
            later_fragment: false,
            l4: &l4,
        };
        let r = ct.track(&pkt, 0, nfrs_conntrack::Hook::LocalOut, 0);
        assert_eq!(r.ctinfo, nfrs_conntrack::CtInfo::Invalid);
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let out = conntrack_table(&mut ct, &args(&["-S"]), 0, None);
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (0, "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=1 search_restart=0 clash_resolve=0 chaintoolong=0 \n", "")
        );
        let out = conntrack_table(&mut ct, &args(&["-S", "expect"]), 0, None);
        assert_eq!(
            out.stdout,
            "cpu=0   \texpect_new=0 expect_create=0 expect_delete=0 \n"
        );
        let out = conntrack_table(&mut ct, &args(&["-S", "-p", "tcp"]), 0, None);
        assert_eq!(out.code, 2);
    }

    #[test]
    fn sysctl_argument_forms() {
        let a =
            |v: &[&str]| parse_sysctl_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let s = a(&["-w", "net.ipv4.ip_forward=1"]).unwrap();
        assert_eq!(
            s.items,
            vec![("net.ipv4.ip_forward".into(), Some("1".into()))]
        );
        let s = a(&["-n", "net.netfilter.nf_conntrack_max"]).unwrap();
        assert!(s.values_only);
        assert_eq!(s.items[0].1, None);
        assert!(a(&["-w", "net.ipv4.ip_forward"])
            .unwrap_err()
            .contains("name=value"));
        assert!(a(&["-a"]).unwrap_err().contains("`-a'"));
        let s = a(&["-qw", "net.ipv4.ip_forward=0"]).unwrap();
        assert!(s.quiet && !s.values_only);
        assert!(a(&["-qw", "net.ipv4.ip_forward"]).is_err());
        assert!(a(&["-qa", "x"]).unwrap_err().contains("`-qa'"));
        assert!(a(&[]).is_err());
    }

    #[test]
    fn sysctl_reads() {
        let cfg = CtConfig::default();
        let mut m = BTreeMap::new();
        assert_eq!(
            sysctl_get("net.ipv4.ip_forward", &cfg, 0, &m).as_deref(),
            Some("0")
        );
        m.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
        assert_eq!(
            sysctl_get("net/ipv4/ip_forward", &cfg, 0, &m).as_deref(),
            Some("1")
        );
        assert_eq!(
            sysctl_get("net.netfilter.nf_conntrack_count", &cfg, 7, &m).as_deref(),
            Some("7")
        );
        assert_eq!(
            sysctl_get(
                "net.netfilter.nf_conntrack_tcp_timeout_established",
                &cfg,
                0,
                &m
            )
            .as_deref(),
            Some("432000")
        );
        assert_eq!(sysctl_get("net.ipv4.tcp_syncookies", &cfg, 0, &m), None);
        assert_eq!(
            sysctl_get("net.bridge.bridge-nf-call-iptables", &cfg, 0, &m).as_deref(),
            Some("1")
        );
        let b = "net.bridge.bridge-nf-call-iptables";
        assert_eq!(check_host_value(b, "2").as_deref(), Some("2"));
        assert_eq!(stored_host_value(b, "2"), "1");
        assert_eq!(stored_host_value(b, "-5"), "1");
        assert_eq!(stored_host_value(b, "0"), "0");
        assert_eq!(stored_host_value("net.ipv4.ip_default_ttl", "2"), "2");
        assert_eq!(check_host_value(b, "abc"), None);
        assert_eq!(check_host_value("net.ipv4.ip_forward", "abc"), None);
        assert_eq!(check_host_value("net.ipv4.ip_default_ttl", "0"), None);
        assert_eq!(
            check_host_value("net.ipv4.ip_default_ttl", " 63"),
            Some("63".into())
        );
    }
}
