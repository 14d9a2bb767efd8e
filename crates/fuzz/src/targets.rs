//! The fuzz targets. Each takes one input (bytes), drives a public API of another crate, and
//! returns an outcome signature (a hash of what happened: which error, which events) that the
//! driver uses as cheap feedback: an input with a new signature joins the corpus. A panic is
//! a crash; a property broken on the way (e.g. printed packet text that does not parse back)
//! is raised as a panic whose message starts with `property:`.

use crate::fnv;
use crate::mutate::Shape;
use nfrs_engine::engine::{Engine, Ev};
use nfrs_rules::list::{self, ListFormat, Resolver};
use nfrs_rules::parse::{parse_command, Cmd};
use nfrs_rules::restore::{restore_new, RestoreOpts};
use nfrs_rules::{ops, save, Ruleset};
use nfrs_wire::build::{build_ipv4, BuildError, FrameCtx};
use nfrs_wire::line::{parse_input_line, strip_comment, PacketSpec};
use nfrs_wire::print::{format_frame, format_ipv4};
use std::path::Path;

/// A fuzz target.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Target {
    /// `nfrs_rules::restore` (iptables-restore input), then save in both forms.
    Restore,
    /// The iptables command line: one command per input line, executed in turn on a ruleset.
    Argv,
    /// `nfrs_scenario::parse`, then a replay of small parsed scenarios.
    Scenario,
    /// Ethernet frames into a NAT gateway with conntrack and MASQUERADE ([`GATEWAY`]).
    Packet,
    /// Packet lines: parse, build, print, parse the printed text again, build and print.
    Line,
    /// Control-socket messages into an in-memory `nfrs run` daemon ([`crate::control`]).
    Control,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 6] = [
        Target::Restore,
        Target::Argv,
        Target::Scenario,
        Target::Packet,
        Target::Line,
        Target::Control,
    ];

    /// The name on the command line and of the corpus directory.
    pub fn name(self) -> &'static str {
        match self {
            Target::Restore => "restore",
            Target::Argv => "argv",
            Target::Scenario => "scenario",
            Target::Packet => "packet",
            Target::Line => "line",
            Target::Control => "control",
        }
    }

    /// The target called `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Text or binary inputs.
    pub fn shape(self) -> Shape {
        match self {
            Target::Packet => Shape::Binary,
            _ => Shape::Text,
        }
    }

    /// An input running longer than this is a hang: the control target runs the store tools
    /// as processes (several per input), the others stay in memory.
    pub fn hang_limit(self) -> std::time::Duration {
        match self {
            Target::Control => std::time::Duration::from_secs(10),
            _ => std::time::Duration::from_secs(1),
        }
    }
}

/// The gateway of the `packet` target: LAN behind MASQUERADE, stateful FORWARD filter, a DNAT
/// port forward, LOG and REJECT, a listener on the host.
pub const GATEWAY: &str = r#"
description = "fuzz gateway"
rules = '''
*nat
-A PREROUTING -i wan0 -p tcp --dport 8080 -j DNAT --to-destination 10.0.0.5:80
-A PREROUTING -i wan0 -p udp --dport 5353 -j DNAT --to-destination 10.0.0.5
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
:FORWARD DROP [0:0]
-A INPUT -m conntrack --ctstate INVALID -j LOG --log-prefix "in-invalid " --log-tcp-options --log-ip-options
-A INPUT -p tcp --dport 23 -j REJECT --reject-with tcp-reset
-A INPUT -p udp --dport 69 -j REJECT
-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
-A FORWARD -m conntrack --ctstate INVALID -j LOG --log-prefix "fw-invalid " --log-tcp-sequence
-A FORWARD -i lan0 -o wan0 -j ACCEPT
-A FORWARD -i wan0 -o lan0 -d 10.0.0.5 -m conntrack --ctstate DNAT -j ACCEPT
-A FORWARD -p icmp -j REJECT --reject-with icmp-host-prohibited
COMMIT
'''
packets = '''
0.00 lan0 udp 10.0.0.2:1 > 10.0.0.1:2 len=1
'''

[sysctl]
"net.ipv4.ip_forward" = 1

[[listen]]
proto = "tcp"
port = 22

[[listen]]
proto = "udp"
port = 53

[[interface]]
name = "lan0"
address = "10.0.0.1/24"

[[interface]]
name = "wan0"
address = "192.0.2.1/24"
mtu = 576

[[route]]
to = "default"
via = "192.0.2.254"
dev = "wan0"
"#;

/// What targets share between inputs (built once per run).
pub struct State {
    gateway: nfrs_scenario::Scenario,
    argv_base: Ruleset,
    control: std::cell::OnceCell<Result<crate::control::Harness, String>>,
}

impl State {
    /// Builds the shared state (the gateway scenario, the base ruleset of `argv`).
    pub fn new() -> State {
        let gateway = nfrs_scenario::parse(GATEWAY, Path::new("<fuzz gateway>"))
            .expect("the fuzz gateway scenario parses");
        let argv_base = restore_new(
            "*filter\n:keep - [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\n-A keep -j RETURN\nCOMMIT\n\
             *nat\n-A POSTROUTING -o eth0 -j MASQUERADE\nCOMMIT\n",
            &RestoreOpts::default(),
        )
        .expect("the argv base ruleset restores");
        State {
            gateway,
            argv_base,
            control: std::cell::OnceCell::new(),
        }
    }

    /// The control target's in-memory daemon harness (set up on first use; an error when the
    /// `nfrs` binary the store tools run as is not built).
    pub fn control(&self) -> Result<&crate::control::Harness, &str> {
        self.control
            .get_or_init(crate::control::Harness::new)
            .as_ref()
            .map_err(String::as_str)
    }

    /// A fresh engine for the gateway (no packets seen).
    pub fn gateway_engine(&self) -> Engine {
        nfrs_engine::replay::engine_for(&self.gateway).expect("the fuzz gateway builds")
    }
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// Runs `input` through `target`, returning its outcome signature.
pub fn exec(target: Target, st: &State, input: &[u8]) -> u64 {
    match target {
        Target::Restore => restore_target(input),
        Target::Argv => argv_target(st, input),
        Target::Scenario => scenario_target(input),
        Target::Packet => packet_target(st, input),
        Target::Line => line_target(input),
        Target::Control => match st.control() {
            Ok(h) => h.run(input),
            Err(e) => panic!("control target unavailable: {e}"),
        },
    }
}

/// An error message with its numbers taken out (line numbers would make every input new).
pub(crate) fn shape_of(msg: &str) -> u64 {
    let s: Vec<u8> = msg
        .bytes()
        .filter(|b| !b.is_ascii_digit())
        .take(80)
        .collect();
    fnv(&s)
}

fn restore_target(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let mut sig = 0;
    for (k, opts) in [
        RestoreOpts::default(),
        RestoreOpts {
            counters: true,
            ..Default::default()
        },
    ]
    .iter()
    .enumerate()
    {
        match restore_new(&text, opts) {
            Ok(rs) => {
                let saved = save::save(&rs, None, true);
                let _ = save::save_store(&rs);
                sig ^= fnv(&[k as u8, 1]) ^ (saved.lines().count() as u64);
            }
            Err(e) => {
                if e.message.is_empty() {
                    panic!("property: a restore error without a message");
                }
                sig ^= shape_of(&e.message).rotate_left(k as u32);
            }
        }
    }
    sig
}

fn argv_target(st: &State, input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let mut rs = st.argv_base.clone();
    let mut sig = 0u64;
    for line in text.lines().take(64) {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        match parse_command(&args, false, None) {
            Ok(c) if c.cmd == Cmd::List => {
                // Listing goes through `list` (as `nfrs iptables` does), numeric only: no
                // name lookups.
                let f = ListFormat {
                    numeric: true,
                    verbose: c.verbose,
                    exact: c.exact,
                    line_numbers: c.line_numbers,
                };
                let table = rs.table_mut(c.table);
                let chain = (!c.chain.is_empty()).then_some(c.chain.as_str());
                let r = Resolver::default();
                let out = if c.zero_too {
                    list::list_and_zero(table, chain, c.rulenum, f, &r)
                } else {
                    list::list(table, chain, c.rulenum, f, &r)
                };
                sig = sig.rotate_left(5) ^ 7 ^ (out.is_empty() as u64);
            }
            Ok(c) => match ops::execute(&mut rs, &c) {
                Ok(out) => sig = sig.rotate_left(5) ^ (out.is_empty() as u64 + 1),
                Err(e) => sig = sig.rotate_left(5) ^ shape_of(&e.to_string()),
            },
            Err(e) => {
                if e.msg.is_empty() {
                    panic!("property: an argv error without a message");
                }
                sig = sig.rotate_left(5) ^ shape_of(&e.msg)
            }
        }
    }
    let _ = save::save(&rs, None, true);
    sig
}

fn scenario_target(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    match nfrs_scenario::parse(&text, Path::new("fuzz.toml")) {
        Err(e) => shape_of(&e.to_string()),
        Ok(sc) => {
            if sc.packet_lines().len() > 64 {
                return 1;
            }
            match nfrs_engine::replay::run(&sc, false) {
                Ok(r) => {
                    let mut sig = 2u64;
                    for p in &r.result.packets {
                        sig = sig.rotate_left(3) ^ p.events.len() as u64;
                    }
                    let text = r.result.to_text();
                    sig ^ (text.len() as u64)
                }
                Err(e) => 3 ^ shape_of(&e),
            }
        }
    }
}

/// The packet input: records of `[ctl][len hi][len lo][frame]`; `ctl` bit 0 is the
/// interface (lan0, wan0), bit 1 also sends the frame's IP part as a host packet, bits 2..7
/// advance the clock by that many seconds. The last record takes what is left.
pub fn packet_records(input: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut rest = input;
    while !rest.is_empty() && out.len() < 64 {
        let ctl = rest[0];
        let len = if rest.len() >= 3 {
            usize::from(u16::from_be_bytes([rest[1], rest[2]]))
        } else {
            0
        };
        let body = &rest[3.min(rest.len())..];
        let n = len.min(body.len());
        out.push((ctl, &body[..n]));
        rest = &body[n..];
    }
    out
}

/// Encodes frames as a `packet` input (the inverse of [`packet_records`]).
pub fn encode_records(recs: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ctl, f) in recs {
        out.push(*ctl);
        out.extend_from_slice(&(f.len().min(0xffff) as u16).to_be_bytes());
        out.extend_from_slice(&f[..f.len().min(0xffff)]);
    }
    out
}

fn packet_target(st: &State, input: &[u8]) -> u64 {
    let mut eng = st.gateway_engine();
    let mut now: u64 = 1_000_000_000;
    let mut sig = 0u64;
    let ndev = eng.host.ifaces().len();
    for (ctl, frame) in packet_records(input) {
        let dev = usize::from(ctl & 1) % ndev;
        now += u64::from(ctl >> 2) * 1_000_000_000 + 1000;
        eng.events.clear();
        if frame.len() >= 14 && frame[12..14] == [8, 0] {
            let mut mac = [0u8; 14];
            mac.copy_from_slice(&frame[..14]);
            eng.receive(dev, frame[14..].to_vec(), mac, now);
        }
        if ctl & 2 != 0 {
            if let Ok(mut p) = nfrs_engine::pkt::PktCtx::new(frame[14.min(frame.len())..].to_vec())
            {
                p.now = now;
                p.pkttype = nfrs_engine::pkt::PktType::Outgoing;
                eng.local_out(p);
            }
        }
        for ev in &eng.events {
            let (k, extra) = match ev {
                Ev::Out { dev, ip, .. } => (1 + *dev as u64, ip.len().min(64) as u64 / 16),
                Ev::Local { ip, .. } => (8, ip.len().min(64) as u64 / 16),
                Ev::Log { text, .. } => (9, fnv(text.split(' ').next().unwrap_or("").as_bytes())),
                Ev::Queued => (10, 0),
            };
            sig = sig.rotate_left(7) ^ k ^ (extra << 8);
        }
        // Everything the engine says about itself must render.
        if eng.events.iter().any(|e| matches!(e, Ev::Out { .. })) {
            for ev in &eng.events {
                if let Ev::Out { ip, .. } = ev {
                    let mut s = String::new();
                    format_ipv4(ip, &mut s);
                }
            }
        }
    }
    let listing = eng.conntrack_listing(now);
    let _ = save::save(&eng.ruleset_with_counters(), None, true);
    sig ^ (listing.len() as u64).rotate_left(40)
}

fn line_target(input: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(input);
    let mut sig = 0u64;
    for raw in text.lines().take(64) {
        let Some(line) = strip_comment(raw) else {
            continue;
        };
        let spec = match parse_input_line(line) {
            Ok(l) => l.spec,
            Err(_) => match PacketSpec::parse(line) {
                Ok(s) => s,
                Err(e) => {
                    sig = sig.rotate_left(3) ^ shape_of(&e.to_string());
                    continue;
                }
            },
        };
        let ctx = FrameCtx::default();
        let ip = match build_ipv4(&spec, &ctx) {
            Ok(ip) => ip,
            Err(e) => {
                sig = sig.rotate_left(3) ^ shape_of(&e.to_string()) ^ 1;
                continue;
            }
        };
        let mut printed = String::new();
        format_ipv4(&ip, &mut printed);
        sig = sig.rotate_left(3) ^ fnv(printed.split(' ').next().unwrap_or("").as_bytes());
        // The printer's text is a packet line: it parses, and rebuilds to a packet that
        // prints the same (checksums are not printed, data may be a digest).
        let again = PacketSpec::parse(&printed).unwrap_or_else(|e| {
            panic!("property: printed packet does not parse back: `{printed}` (from `{line}`): {e}")
        });
        match build_ipv4(&again, &ctx) {
            Ok(ip2) => {
                let mut printed2 = String::new();
                format_ipv4(&ip2, &mut printed2);
                if printed2 != printed {
                    panic!(
                        "property: print(build(parse(print))) differs:\n  line:   {line}\n  first:  {printed}\n  second: {printed2}"
                    );
                }
            }
            Err(BuildError::Digest) => {}
            Err(e) => panic!(
                "property: printed packet does not rebuild: `{printed}` (from `{line}`): {e}"
            ),
        }
        // The frame printer takes any bytes.
        let mut f = String::new();
        format_frame(input, &mut f);
    }
    sig
}
