//! The live host file: the scenario format's host tables (`[[interface]]`, `[[route]]`,
//! `[[neighbour]]`, `[sysctl]`, `[[listen]]`, parsed by nfrs-scenario so replay and live share
//! one host model) plus a `[live]` table of daemon settings.

use nfrs_scenario::Host;
use std::path::Path;

/// The daemon's own settings (`[live]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveOpts {
    /// `mode`: `"routed"` (the default) or `"bridge"` (which asks for at least one
    /// `[[bridge]]`). Either way the ports of a `[[bridge]]` are bridged and the other
    /// interfaces routed.
    pub mode: String,
    /// `control_group`: a group (name or number) whose members may use the control socket
    /// beside root.
    pub control_group: Option<u32>,
    /// `log = "stderr" | "syslog" | "journald" | "auto" | "/path/to/file"`, `log_facility =
    /// "kern"` (syslog, journald, auto), `log_socket` (syslog: `/dev/log`, journald:
    /// `/run/systemd/journal/socket`): where the kernel log lines go.
    pub log: crate::logsink::Sink,
    /// `tap = "nfrs0"`: a TUN device of that name carries locally delivered packets to the
    /// kernel's own stack and its packets back through OUTPUT (default: none, the engine's
    /// modelled stack answers and other local packets are dropped).
    pub tap: Option<String>,
    /// `tap_original_dst = true | false` (default true, only with `tap`): a REDIRECTed or
    /// DNATed TCP connection to a local process gets an entry in the kernel's conntrack table
    /// before its SYN enters the TUN, so `SO_ORIGINAL_DST` answers (see [`crate::origdst`]).
    pub tap_original_dst: bool,
    /// `io = "auto" | "xdp" | "packet" | "recv"`: the packet I/O (default `auto`: AF_XDP
    /// where the interface takes it, else AF_PACKET); `NFRS_PACKET_IO` overrides it.
    pub io: crate::packet::IoChoice,
    /// `ct_save_interval = N` (seconds, default 30; 0 turns it off): how often the daemon
    /// writes its conntrack table to the store (besides a graceful stop), so a `kill -9`
    /// loses at most that much.
    pub ct_save_interval: u64,
}

/// The default `[live] ct_save_interval` (seconds).
pub const CT_SAVE_INTERVAL: u64 = 30;

/// A parsed host file.
#[derive(Clone, Debug)]
pub struct HostFile {
    /// The host.
    pub host: Host,
    /// The `[live]` settings.
    pub live: LiveOpts,
}

/// Looks a group up by name in /etc/group (or takes a number).
pub fn group_id(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let text = std::fs::read_to_string("/etc/group").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        (f.next()? == name).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

/// Parses host file text; `path` names it in errors.
pub fn parse(text: &str, path: &Path) -> Result<HostFile, String> {
    let err = |m: String| format!("{}: {m}", path.display());
    let mut table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| err(e.message().to_string()))?;
    for k in [
        "packets",
        "pcap",
        "pcap_dev",
        "pcap_ingress",
        "rules",
        "rules_file",
    ] {
        if table.contains_key(k) {
            return Err(err(format!(
                "`{k}` has no meaning in a live host file (rules live in the store)"
            )));
        }
    }
    let mut live = LiveOpts {
        mode: "routed".into(),
        control_group: None,
        log: crate::logsink::Sink::Stderr,
        tap: None,
        tap_original_dst: true,
        io: crate::packet::IoChoice::Auto,
        ct_save_interval: CT_SAVE_INTERVAL,
    };
    let (mut log, mut facility, mut socket) = (None, None, None);
    let mut original_dst_given = false;
    if let Some(v) = table.remove("live") {
        let toml::Value::Table(t) = v else {
            return Err(err("`live` must be a table".into()));
        };
        for (k, v) in t {
            match (k.as_str(), v) {
                ("mode", toml::Value::String(m)) => {
                    if m != "routed" && m != "bridge" {
                        return Err(err(format!(
                            "[live] mode `{m}` is not supported (`routed` or `bridge`)"
                        )));
                    }
                    live.mode = m;
                }
                ("control_group", toml::Value::String(g)) => {
                    live.control_group = Some(
                        group_id(&g).ok_or_else(|| err(format!("[live] unknown group `{g}`")))?,
                    );
                }
                ("control_group", toml::Value::Integer(g))
                    if (0..=u32::MAX as i64).contains(&g) =>
                {
                    live.control_group = Some(g as u32)
                }
                ("io", toml::Value::String(m)) => {
                    live.io = crate::packet::IoChoice::parse(&m).ok_or_else(|| {
                        err(format!(
                            "[live] io `{m}` is not supported (`auto`, `xdp`, `packet` or `recv`)"
                        ))
                    })?;
                }
                ("tap", toml::Value::String(n)) => {
                    if n.is_empty() || n.len() >= 16 || n.contains(['/', ' ']) {
                        return Err(err(format!(
                            "[live] tap = `{n}`: not an interface name (1 to 15 bytes)"
                        )));
                    }
                    live.tap = Some(n);
                }
                ("tap_original_dst", toml::Value::Boolean(b)) => {
                    live.tap_original_dst = b;
                    original_dst_given = true;
                }
                ("ct_save_interval", toml::Value::Integer(n)) if (0..=86_400).contains(&n) => {
                    live.ct_save_interval = n as u64
                }
                ("ct_save_interval", v) => {
                    return Err(err(format!(
                        "[live] ct_save_interval = {v}: expected whole seconds from 0 (off) to 86400"
                    )))
                }
                ("log", toml::Value::String(l)) => log = Some(l),
                ("log_facility", toml::Value::String(f)) => {
                    facility = Some(crate::logsink::facility(&f).ok_or_else(|| {
                        err(format!("[live] unknown log_facility `{f}` (kern, user, daemon, local0..local7, ...)"))
                    })?)
                }
                ("log_socket", toml::Value::String(p)) => socket = Some(p),
                (k, v) => return Err(err(format!("[live] unknown key or bad value `{k} = {v}`"))),
            }
        }
    }
    live.log = match log.as_deref() {
        None | Some("stderr") => crate::logsink::Sink::Stderr,
        Some("syslog") => crate::logsink::Sink::Syslog {
            path: socket.clone().unwrap_or_else(|| "/dev/log".into()).into(),
            facility: facility.unwrap_or(0),
        },
        Some("journald") => crate::logsink::Sink::Journald {
            path: socket
                .clone()
                .unwrap_or_else(|| crate::logsink::JOURNAL_SOCKET.into())
                .into(),
            facility: facility.unwrap_or(0),
        },
        Some("auto") if socket.is_none() => crate::logsink::auto_sink(
            Path::new(crate::logsink::JOURNAL_SOCKET),
            Path::new(crate::logsink::DEV_LOG),
            facility.unwrap_or(0),
        ),
        Some("auto") => {
            return Err(err(
                "[live] log_socket needs log = \"syslog\" or \"journald\" (auto picks the socket)"
                    .into(),
            ))
        }
        Some(p) if p.starts_with('/') => crate::logsink::Sink::File(p.into()),
        Some(other) => {
            return Err(err(format!(
                "[live] log = `{other}`: expected \"stderr\", \"syslog\", \"journald\", \"auto\" or an absolute file path"
            )))
        }
    };
    if (facility.is_some() || socket.is_some())
        && !matches!(log.as_deref(), Some("syslog" | "journald" | "auto"))
    {
        return Err(err(
            "[live] log_facility and log_socket need log = \"syslog\", \"journald\" or \"auto\""
                .into(),
        ));
    }
    if !table.contains_key("description") {
        table.insert("description".into(), "live host".into());
    }
    let text = toml::to_string(&table).map_err(|e| err(e.to_string()))?;
    let sc = nfrs_scenario::parse(&text, path).map_err(|e| {
        // Line numbers refer to the re-serialised text; the message names the key.
        format!("{}: {}", path.display(), e.msg)
    })?;
    if sc.host.interfaces.is_empty() {
        return Err(err("no [[interface]]: nfrs run needs at least one".into()));
    }
    if let Some(t) = &live.tap {
        let taken = sc.host.interfaces.iter().any(|i| i.name == *t)
            || sc.host.bridges.iter().any(|b| b.name == *t);
        if taken {
            return Err(err(format!(
                "[live] tap = `{t}` names an interface or bridge nfrs owns (the TUN device needs a name of its own)"
            )));
        }
    }
    if original_dst_given && live.tap.is_none() {
        return Err(err(
            "[live] tap_original_dst needs tap (the TUN device to local processes)".into(),
        ));
    }
    if live.mode == "bridge" && sc.host.bridges.is_empty() {
        return Err(err(
            "[live] mode = \"bridge\" needs a [[bridge]] (name, ports)".into(),
        ));
    }
    Ok(HostFile {
        host: sc.host,
        live,
    })
}

/// The host part of a scenario file's text (its `packets`, `rules`, capture and description
/// keys taken away), as a host file: what `nfrs replay --store` leaves in the store for
/// `nfrs check --store`.
pub fn host_part(scenario: &str, path: &Path) -> Result<String, String> {
    let mut table: toml::Table = scenario
        .parse()
        .map_err(|e: toml::de::Error| format!("{}: {}", path.display(), e.message()))?;
    for k in [
        "packets",
        "pcap",
        "pcap_dev",
        "pcap_ingress",
        "rules",
        "rules_file",
        "description",
    ] {
        table.remove(k);
    }
    toml::to_string(&table).map_err(|e| format!("{}: {e}", path.display()))
}

/// Reads and parses a host file.
pub fn load(path: &Path) -> Result<HostFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse(&text, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW: &str = r#"
[[interface]]
name = "lan0"
address = "10.0.1.1/24"

[[interface]]
name = "wan0"
address = "198.51.100.2/24"

[[route]]
to = "default"
via = "198.51.100.1"
dev = "wan0"

[sysctl]
"net.ipv4.ip_forward" = "1"

[live]
mode = "routed"
control_group = 0
"#;

    #[test]
    fn host_tables_and_live_keys() {
        let h = parse(GW, Path::new("gw.toml")).unwrap();
        assert_eq!(h.host.interfaces.len(), 2);
        assert_eq!(h.host.interfaces[1].name, "wan0");
        assert_eq!(h.host.routes.len(), 1);
        assert_eq!(h.host.sysctl("net.ipv4.ip_forward"), Some("1"));
        assert_eq!(h.live.control_group, Some(0));
        assert_eq!(h.live.mode, "routed");
        assert_eq!(h.live.log, crate::logsink::Sink::Stderr);
        assert_eq!(h.live.io, crate::packet::IoChoice::Auto);
        let with = |extra: &str| parse(&format!("{GW}{extra}"), Path::new("gw.toml")).unwrap();
        assert_eq!(
            with("log = \"syslog\"\nlog_facility = \"local3\"\n")
                .live
                .log,
            crate::logsink::Sink::Syslog {
                path: "/dev/log".into(),
                facility: 19
            }
        );
        assert_eq!(
            with("log = \"/var/log/nfrs.log\"\n").live.log,
            crate::logsink::Sink::File("/var/log/nfrs.log".into())
        );
        assert_eq!(
            with("log = \"journald\"\n").live.log,
            crate::logsink::Sink::Journald {
                path: "/run/systemd/journal/socket".into(),
                facility: 0
            }
        );
        assert_eq!(
            with("log = \"journald\"\nlog_socket = \"/tmp/j\"\nlog_facility = \"daemon\"\n")
                .live
                .log,
            crate::logsink::Sink::Journald {
                path: "/tmp/j".into(),
                facility: 3
            }
        );
        assert_eq!(with("io = \"xdp\"\n").live.io, crate::packet::IoChoice::Xdp);
        assert_eq!(h.live.tap, None);
        assert_eq!(with("tap = \"nfrs0\"\n").live.tap.as_deref(), Some("nfrs0"));
        assert!(with("tap = \"nfrs0\"\n").live.tap_original_dst);
        assert!(
            !with("tap = \"nfrs0\"\ntap_original_dst = false\n")
                .live
                .tap_original_dst
        );
        assert_eq!(h.live.ct_save_interval, 30);
        assert_eq!(with("ct_save_interval = 0\n").live.ct_save_interval, 0);
        assert_eq!(with("ct_save_interval = 5\n").live.ct_save_interval, 5);
        assert_eq!(
            with("io = \"packet\"\n").live.io,
            crate::packet::IoChoice::Packet
        );
    }

    #[test]
    fn bridge_host_file() {
        let text = "[[interface]]\nname = \"p0\"\n[[interface]]\nname = \"p1\"\n[[bridge]]\nname = \"br0\"\nports = [\"p0\", \"p1\"]\naddress = \"10.0.0.1/24\"\n[live]\nmode = \"bridge\"\n";
        let h = parse(text, Path::new("br.toml")).unwrap();
        assert_eq!(h.live.mode, "bridge");
        let b = h.host.bridge("br0").unwrap();
        assert_eq!(b.ports, vec!["p0".to_string(), "p1".to_string()]);
        assert_eq!(h.host.bridge_of("p1").unwrap().name, "br0");
    }

    #[test]
    fn a_scenarios_host_part_is_a_host_file() {
        let sc = format!("description = \"x\"\nrules = \"*filter\\nCOMMIT\\n\"\npackets = \"0 lan0 icmp 10.0.1.2 > 10.0.1.1 type=8\"\n{}", GW.replace("[live]\nmode = \"routed\"\ncontrol_group = 0\n", ""));
        let h = host_part(&sc, Path::new("s.toml")).unwrap();
        assert!(!h.contains("packets") && !h.contains("rules"), "{h}");
        let f = parse(&h, Path::new("host.toml")).unwrap();
        assert_eq!(f.host.interfaces.len(), 2);
        assert_eq!(f.host.sysctl("net.ipv4.ip_forward"), Some("1"));
    }

    #[test]
    fn refusals_name_the_key() {
        let cases = [
            ("packets = \"x\"\n", "`packets`"),
            ("[live]\nmode = \"switch\"\n", "mode `switch`"),
            (
                "[[interface]]\nname = \"p0\"\n[live]\nmode = \"bridge\"\n",
                "needs a [[bridge]]",
            ),
            ("[live]\nspeed = 3\n", "`speed = 3`"),
            (
                "[live]\ncontrol_group = \"no-such-group-xyz\"\n",
                "unknown group",
            ),
            (
                "[[interface]]\nname = \"p0\"\n[[bridge]]\nname = \"br0\"\nports = [\"p9\"]\n",
                "bridge port `p9`",
            ),
            ("[[interface]]\nname = \"a\"\ncolour = 1\n", "colour"),
            ("x = [\n", "gw.toml"),
            ("[sysctl]\n", "no [[interface]]"),
            ("[live]\nlog = \"journal\"\n", "log = `journal`"),
            ("[live]\ntap = \"\"\n", "tap = ``: not an interface name"),
            (
                "[[interface]]\nname = \"lan0\"\n[live]\ntap = \"lan0\"\n",
                "names an interface or bridge nfrs owns",
            ),
            (
                "[live]\ntap = \"a-very-long-name0\"\n",
                "not an interface name",
            ),
            ("[live]\nio = \"dpdk\"\n", "io `dpdk` is not supported"),
            (
                "[[interface]]\nname = \"a\"\n[live]\ntap_original_dst = true\n",
                "tap_original_dst needs tap",
            ),
            ("[live]\nlog_facility = \"nope\"\n", "unknown log_facility"),
            (
                "[live]\nct_save_interval = -1\n",
                "ct_save_interval = -1: expected",
            ),
            (
                "[live]\nct_save_interval = 1.5\n",
                "ct_save_interval = 1.5: expected",
            ),
            (
                "[live]\nct_save_interval = \"30\"\n",
                "ct_save_interval = \"30\": expected",
            ),
            (
                "[live]\nct_save_interval = 86401\n",
                "from 0 (off) to 86400",
            ),
            (
                "[live]\nlog_facility = \"local0\"\n",
                "need log = \"syslog\"",
            ),
            (
                "[live]\nlog = \"auto\"\nlog_socket = \"/x\"\n",
                "auto picks the socket",
            ),
        ];
        for (text, want) in cases {
            let e = parse(text, Path::new("gw.toml")).unwrap_err();
            assert!(e.contains(want), "{text:?}: {e}");
        }
    }
}
