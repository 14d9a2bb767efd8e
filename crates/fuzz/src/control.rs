//! The `control` target: hostile messages into the control protocol of `nfrs run`. Each input
//! line is one connection's bytes (its newline included; a last line without one is a client
//! that hangs up mid-message). The bytes go through the daemon's own code over a socket pair:
//! `control::serve_one` (peer check, bounded line reader, JSON decoder, reply writer) and the
//! daemon's dispatcher (`daemon::Dispatcher`: the same `Shared::handle` as the socket), on an
//! in-memory daemon (a NAT gateway with live connections) whose store is a fresh temporary
//! directory for every input. The store tools run as the real `nfrs` binary, as in the daemon.
//!
//! Properties checked after every message (a break is raised as a `property:` panic):
//! - a complete line always gets a reply, and the reply is a well-formed [`Response`];
//! - a message that does not decode gets exit code 2 and says why (malformed / too long);
//! - the packet thread is still alive (a panic in a job would end the real daemon);
//! - a valid `iptables-save -c` request still answers, with code 0, and when the hostile message
//!   was answered with an error, with exactly the ruleset (and counters) from before it — save
//!   what the real iptables-restore also leaves after an error (the tables committed before
//!   the error line; an empty table it opened) — and the live connection table is unchanged;
//! - the store and the engine in force hold the same ruleset.

use crate::fnv;
use nfrs_dataplane::control::{peer_of, serve_one};
use nfrs_dataplane::daemon::Dispatcher;
use nfrs_dataplane::proto::{self, Request, Response, MAX_MESSAGE};
use nfrs_rules::restore::{restore_new, RestoreOpts};
use nfrs_rules::save::save;
use nfrs_rules::store::Store;
use nfrs_scenario::Host;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// At most this many messages (input lines) per input.
pub const MAX_MESSAGES: usize = 6;

/// The in-memory daemon's host file: a gateway between a LAN and a WAN.
pub const HOST: &str = r#"
[[interface]]
name = "lan0"
address = "10.0.1.1/24"

[[interface]]
name = "wan0"
address = "198.51.100.2/24"

[sysctl]
"net.ipv4.ip_forward" = "1"

[live]
mode = "routed"
"#;

/// The ruleset every input starts from (conntrack on: NAT and a stateful FORWARD filter).
pub const RULES: &str = "*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -i wan0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.0.1.2:80
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:blocked - [0:0]
-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -i lan0 -o wan0 -j ACCEPT
-A FORWARD -j blocked
-A blocked -p tcp -m tcp --dport 23 -j REJECT --reject-with tcp-reset
COMMIT
";

/// Traffic the daemon has seen before the messages arrive: (interface, packet line).
pub const TRAFFIC: &[(usize, &str)] = &[
    (0, "0 lan0 udp 10.0.1.2:1000 > 198.51.100.10:53 len=20"),
    (
        0,
        "0 lan0 tcp 10.0.1.2:40000 > 198.51.100.10:80 flags=S seq=1000",
    ),
    (
        0,
        "0 lan0 icmp 10.0.1.2 > 198.51.100.10 type=echo-request id=7 seq=1",
    ),
    (
        1,
        "0 wan0 tcp 198.51.100.10:5555 > 198.51.100.2:8080 flags=S seq=9",
    ),
    (0, "0 lan0 tcp 10.0.1.3:41000 > 198.51.100.11:23 flags=S"),
];

/// The packet clock (ns) when the messages arrive; the traffic came one second earlier.
const NOW: u64 = 5_000_000_000;

/// What the control target keeps between inputs.
pub struct Harness {
    /// The temporary directory holding the stores (removed on drop).
    pub work: PathBuf,
    host: Host,
    base: nfrs_rules::Ruleset,
    frames: Vec<(usize, Vec<u8>)>,
    n: std::cell::Cell<u64>,
    /// The state of a fresh daemon (the same for every input: fixed traffic, frozen clock).
    fresh: std::cell::OnceCell<Snapshot>,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// The state a hostile message must not change when it is answered with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    /// `iptables-save -c` through the control protocol, comment lines left out.
    saved: String,
    /// The live connection table (`conntrack -L` on the packet thread).
    conns: String,
}

/// What one message did (for the outcome signature).
struct Outcome {
    code: i32,
    stderr_shape: u64,
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Whether the harness keeps this request away from the daemon: arguments that would make the
/// store tools touch files outside the temporary store (another `--store`, a path). Reported
/// to the dataplane (the daemon should refuse them itself); relative names stay in the
/// temporary directory, which is the process's working directory.
pub fn outside_store(req: &Request) -> bool {
    match req {
        Request::Tool { args, .. } => args.iter().any(|a| {
            a.contains("--store") || a.contains('/') || a.contains("..") || a.starts_with('~')
        }),
        _ => false,
    }
}

impl Harness {
    /// Sets up the work directory (and makes it the working directory) and checks that an
    /// oversized message is refused by the real reader.
    pub fn new() -> Result<Harness, String> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let work =
            std::env::temp_dir().join(format!("nfrs-fuzz-control-{}-{k}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        std::env::set_current_dir(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        let host = nfrs_dataplane::hostfile::parse(HOST, Path::new("control-fuzz.toml"))?.host;
        let base = restore_new(RULES, &RestoreOpts::default()).map_err(|e| e.message)?;
        let mut frames = Vec::new();
        for (dev, line) in TRAFFIC {
            let l = nfrs_wire::line::parse_input_line(line).map_err(|e| format!("{line}: {e}"))?;
            let ip = nfrs_wire::build::build_ipv4(&l.spec, &Default::default())
                .map_err(|e| format!("{line}: {e}"))?;
            frames.push((*dev, ip));
        }
        Ok(Harness {
            work,
            host,
            base,
            frames,
            n: std::cell::Cell::new(0),
            fresh: std::cell::OnceCell::new(),
        })
    }

    /// A fresh daemon on a fresh store holding [`RULES`], after [`TRAFFIC`].
    pub fn daemon(&self) -> Dispatcher {
        let n = self.n.get();
        self.n.set(n + 1);
        let store = self.work.join("store");
        let _ = std::fs::remove_dir_all(&store);
        // Keep the work directory clean of what relative names created last time.
        if let Ok(rd) = std::fs::read_dir(&self.work) {
            for e in rd.flatten() {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
            }
        }
        Store::at(&store)
            .save(&self.base)
            .expect("the control fuzz store is writable");
        let d = Dispatcher::new(&store, self.host.clone()).expect("the control fuzz daemon starts");
        let frames = self.frames.clone();
        d.with_live(move |l| {
            for (dev, ip) in frames {
                let mac = [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 9, dev as u8, 8, 0];
                l.engine.receive(dev, ip, mac, NOW - 1_000_000_000);
                l.engine.events.clear();
            }
            l.now = NOW;
        })
        .expect("the control fuzz packet thread runs");
        d
    }

    /// Sends `bytes` as one client connection through the daemon's socket code; the reply
    /// bytes (empty when the daemon hung up without one).
    pub fn exchange(&self, d: &Dispatcher, bytes: &[u8]) -> Vec<u8> {
        let (mut client, server) = UnixStream::pair().expect("socketpair");
        let own = peer_of(&server).map(|p| p.uid).unwrap_or(0);
        std::thread::scope(|s| {
            let c = s.spawn(move || {
                // The daemon may refuse before reading everything (too long): ignore EPIPE.
                let _ = client.write_all(bytes);
                let _ = client.shutdown(std::net::Shutdown::Write);
                let mut reply = Vec::new();
                let _ = client.read_to_end(&mut reply);
                reply
            });
            serve_one(server, own, None, &mut |r| d.handle(r));
            c.join().expect("client thread")
        })
    }

    fn request(&self, d: &Dispatcher, req: &Request) -> Response {
        let mut msg = Vec::new();
        proto::write_msg(&mut msg, req).expect("a request serializes");
        let reply = self.exchange(d, &msg);
        let line = reply.strip_suffix(b"\n").unwrap_or(&reply);
        proto::parse_response(line).unwrap_or_else(|e| {
            panic!(
                "property: no valid reply to a valid request {req:?}: {e}: {}",
                String::from_utf8_lossy(&reply)
            )
        })
    }

    fn snapshot(&self, d: &Dispatcher) -> Snapshot {
        let r = self.request(
            d,
            &Request::Tool {
                tool: "iptables-save".into(),
                args: vec!["-c".into()],
                stdin: String::new(),
            },
        );
        if r.code != 0 {
            panic!(
                "property: iptables-save through the daemon failed ({}): {}",
                r.code, r.stderr
            );
        }
        let conns = d
            .with_live(|l| {
                let r = nfrs_dataplane::cmds::conntrack(&mut l.engine, &["-L".into()], l.now);
                r.stdout
            })
            .unwrap_or_else(|| panic!("property: the packet thread is gone"));
        Snapshot {
            saved: strip_comments(&r.stdout),
            conns,
        }
    }

    /// The store on disk and the engine in force hold the same rules (counters aside).
    fn agree(&self, d: &Dispatcher) {
        let store = Store::at(self.work.join("store"));
        let on_disk = match store.load() {
            Ok(rs) => save(&rs, None, false),
            Err(e) => panic!("property: the store does not load: {e}"),
        };
        let live = d
            .with_live(|l| save(&l.engine.ruleset_with_counters(), None, false))
            .unwrap_or_else(|| panic!("property: the packet thread is gone"));
        // Chain lines carry the policy counters even without -c: counters aside, they go (a
        // listing through the daemon no longer writes the live counters to the store).
        let rules_only = |s: &str| -> String {
            strip_comments(s)
                .lines()
                .map(
                    |l| match l.strip_prefix(':').and_then(|_| l.rsplit_once(" [")) {
                        Some((head, _)) => format!("{head}\n"),
                        None => format!("{l}\n"),
                    },
                )
                .collect()
        };
        if rules_only(&on_disk) != rules_only(&live) {
            panic!("property: store and daemon disagree:\n--- store\n{on_disk}--- daemon\n{live}");
        }
    }

    /// One hostile message and the checks after it.
    fn message(&self, d: &Dispatcher, bytes: &[u8], before: &mut Snapshot) -> Outcome {
        let complete = bytes.last() == Some(&b'\n');
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let decoded = if complete && !body.contains(&b'\n') && body.len() <= MAX_MESSAGE {
            proto::parse_request(body).ok()
        } else {
            None
        };
        if decoded.as_ref().is_some_and(outside_store) {
            return Outcome {
                code: -1,
                stderr_shape: 0,
            };
        }
        let reply = self.exchange(d, bytes);
        if reply.is_empty() {
            if complete {
                panic!("property: no reply to a complete message");
            }
            // A client that hung up mid-message gets nothing; nothing may change.
            let after = self.snapshot(d);
            if after != *before {
                panic!("property: a truncated message changed the state");
            }
            return Outcome {
                code: -2,
                stderr_shape: 0,
            };
        }
        let line = reply.strip_suffix(b"\n").unwrap_or_else(|| {
            panic!(
                "property: reply without a newline: {}",
                String::from_utf8_lossy(&reply)
            )
        });
        let r = proto::parse_response(line).unwrap_or_else(|e| {
            panic!(
                "property: the reply does not parse: {e}: {}",
                String::from_utf8_lossy(&reply)
            )
        });
        if decoded.is_none() {
            if r.code != 2 || !(r.stderr.contains("malformed") || r.stderr.contains("longer than"))
            {
                panic!("property: an undecodable message got {r:?}");
            }
        } else if r.code != 0 && r.stderr.trim().is_empty() && r.stdout.trim().is_empty() {
            // conntrack -D that deletes nothing says so on stderr; every failure says something.
            panic!("property: an error reply ({}) with no message", r.code);
        }
        let after = self.snapshot(d);
        let lw = match &decoded {
            Some(Request::Tool { tool, stdin, .. }) if r.code != 0 => {
                restore_leeway(tool, stdin, &r.stderr)
            }
            _ => Leeway::default(),
        };
        if r.code != 0 && !same_within(before, &after, &lw) {
            panic!(
                "property: a refused message changed the state (code {}, {}):\n--- before\n{}{}--- after\n{}{}",
                r.code,
                r.stderr.trim_end(),
                before.saved,
                before.conns,
                after.saved,
                after.conns
            );
        }
        self.agree(d);
        *before = after;
        let first = r.stderr.lines().next().unwrap_or("");
        Outcome {
            code: r.code,
            stderr_shape: crate::targets::shape_of(first),
        }
    }

    /// Runs one input: each line a message, on a fresh daemon.
    pub fn run(&self, input: &[u8]) -> u64 {
        let d = self.daemon();
        let mut before = self.fresh.get_or_init(|| self.snapshot(&d)).clone();
        let mut sig = 0u64;
        for msg in input.split_inclusive(|&b| b == b'\n').take(MAX_MESSAGES) {
            let o = self.message(&d, msg, &mut before);
            sig = sig.rotate_left(9) ^ fnv(&o.code.to_le_bytes()) ^ o.stderr_shape;
        }
        sig
    }

    /// The oversized check: a line longer than the limit is refused with code 2 and changes
    /// nothing (run once per process: it sends 16 MiB).
    pub fn oversized(&self) -> Result<(), String> {
        let d = self.daemon();
        let before = self.snapshot(&d);
        let mut big =
            b"{\"op\":\"tool\",\"tool\":\"iptables-restore\",\"args\":[],\"stdin\":\"".to_vec();
        big.resize(MAX_MESSAGE + 16, b'x');
        big.extend_from_slice(b"\"}\n");
        let reply = self.exchange(&d, &big);
        let line = reply.strip_suffix(b"\n").unwrap_or(&reply);
        let r = proto::parse_response(line).map_err(|e| format!("oversized: reply: {e}"))?;
        if r.code != 2 || !r.stderr.contains("longer than") {
            return Err(format!("oversized: got {r:?}"));
        }
        if self.snapshot(&d) != before {
            return Err("oversized: the state changed".into());
        }
        Ok(())
    }
}

/// The ruleset of an `iptables-save` text, table by table.
fn tables(saved: &str) -> std::collections::BTreeMap<String, String> {
    let mut m = std::collections::BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for l in saved.lines() {
        if let Some(t) = l.strip_prefix('*') {
            cur = Some((t.to_string(), String::new()));
        } else if l == "COMMIT" {
            if let Some((t, body)) = cur.take() {
                m.insert(t, body);
            }
        } else if let Some((_, body)) = cur.as_mut() {
            body.push_str(l);
            body.push('\n');
        }
    }
    m
}

/// What a failed iptables-restore may still have changed: iptables-restore commits each table
/// at its COMMIT line, so the tables committed before the line the error names stay, and a
/// table it opened (`*raw`) exists from then on, empty, even when that table then fails
/// (both measured with iptables-legacy-restore 1.8.9 in a fresh namespace: `*raw ... COMMIT`
/// then a bad `*filter` leaves raw restored and exits 2; a bad rule in `*raw` leaves an empty
/// raw table). Nothing for other tools, an engine refusal (the daemon puts the store back) or
/// an error without a line number.
#[derive(Default)]
struct Leeway {
    committed: Vec<String>,
    opened: Vec<String>,
}

fn restore_leeway(tool: &str, stdin: &str, stderr: &str) -> Leeway {
    let mut lw = Leeway::default();
    if !tool.contains("restore") || stderr.contains("not swapped in") {
        return lw;
    }
    let line = stderr.lines().find_map(|l| {
        let (_, rest) = l.split_once("line")?;
        let digits: String = rest
            .trim_start_matches([':', ' '])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<usize>().ok()
    });
    let Some(line) = line else {
        return lw;
    };
    let mut table = None;
    for (i, l) in stdin.lines().enumerate() {
        if i + 1 > line {
            break;
        }
        let l = l.trim();
        if let Some(t) = l.strip_prefix('*') {
            let t = t.trim().to_string();
            lw.opened.push(t.clone());
            table = Some(t);
        } else if l == "COMMIT" && i + 1 < line {
            if let Some(t) = table.take() {
                lw.committed.push(t);
            }
        }
    }
    lw
}

/// Whether `a` and `b` hold the same connections and the same tables, within `lw`.
fn same_within(a: &Snapshot, b: &Snapshot, lw: &Leeway) -> bool {
    if a.conns != b.conns {
        return false;
    }
    if lw.committed.is_empty() && lw.opened.is_empty() {
        return a.saved == b.saved;
    }
    let (ta, tb) = (tables(&a.saved), tables(&b.saved));
    let names: std::collections::BTreeSet<String> = ta.keys().chain(tb.keys()).cloned().collect();
    names.iter().all(|n| {
        let (x, y) = (ta.get(n), tb.get(n));
        x == y
            || lw.committed.contains(n)
            || (lw.opened.contains(n)
                && x.is_none()
                && y.is_some_and(|t| t.lines().all(|l| l.starts_with(':'))))
    })
}

/// Seed messages: every request kind as the real clients send it, and malformed ones.
pub fn seeds(root: &Path) -> Vec<Vec<u8>> {
    let msg = |r: Request| {
        let mut v = Vec::new();
        proto::write_msg(&mut v, &r).expect("serializes");
        v
    };
    let tool = |t: &str, args: &[&str], stdin: &str| {
        msg(Request::Tool {
            tool: t.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: stdin.into(),
        })
    };
    let ct = |args: &[&str]| {
        msg(Request::Conntrack {
            args: args.iter().map(|s| s.to_string()).collect(),
        })
    };
    let sy = |args: &[&str]| {
        msg(Request::Sysctl {
            args: args.iter().map(|s| s.to_string()).collect(),
        })
    };
    let mut out: Vec<Vec<u8>> = vec![
        msg(Request::Ping {}),
        tool("iptables-save", &[], ""),
        tool("iptables-save", &["-c", "-t", "nat"], ""),
        tool("iptables", &["-S"], ""),
        tool("iptables", &["-L", "-n", "-v", "-x"], ""),
        tool("iptables", &["-t", "nat", "-L", "POSTROUTING", "--line-numbers"], ""),
        tool("iptables", &["-A", "FORWARD", "-p", "tcp", "--dport", "8000", "-j", "DROP"], ""),
        tool("iptables", &["-I", "FORWARD", "-p", "icmp", "-j", "LOG", "--log-prefix", "x: "], ""),
        tool("iptables", &["-D", "FORWARD", "1"], ""),
        tool("iptables", &["-F", "blocked"], ""),
        tool("iptables", &["-X", "blocked"], ""),
        tool("iptables", &["-N", "new"], ""),
        tool("iptables", &["-P", "FORWARD", "ACCEPT"], ""),
        tool("iptables", &["-Z"], ""),
        tool("iptables", &["-t", "raw", "-A", "PREROUTING", "-j", "CT", "--zone-orig", "1"], ""),
        tool("iptables", &["-t", "nat", "-A", "PREROUTING", "-p", "udp", "--dport", "53", "-j", "DNAT", "--to-destination", "10.0.1.5"], ""),
        tool("iptables-restore", &[], RULES),
        tool("iptables-restore", &["-n"], "*filter\n-A INPUT -s 10.9.9.9 -j DROP\nCOMMIT\n"),
        tool("iptables-restore", &["-c"], "*filter\n:INPUT ACCEPT [5:100]\n[1:2] -A INPUT -j ACCEPT\nCOMMIT\n"),
        tool("iptables-restore", &["-t"], "*filter\n-A INPUT -j NOPE\nCOMMIT\n"),
        tool("iptables-restore", &["-T", "nat"], RULES),
        tool("iptables-restore", &[], "*filter\n-A FORWARD -j blocked\n"),
        tool("proc", &["net/nf_conntrack"], ""),
        tool("proc", &["net/ip_tables_names"], ""),
        ct(&["-L"]),
        ct(&["-L", "-o", "extended"]),
        ct(&["-C"]),
        ct(&["-L", "-p", "tcp", "--dport", "80"]),
        ct(&["-D", "-p", "udp", "-s", "10.0.1.2"]),
        ct(&["-D", "--orig-port-dst", "9999"]),
        ct(&["-F"]),
        ct(&["-E"]),
        sy(&["net.ipv4.ip_forward"]),
        sy(&["-n", "net.netfilter.nf_conntrack_count"]),
        sy(&["-w", "net.netfilter.nf_conntrack_max=3"]),
        sy(&["-qw", "net.ipv4.ip_default_ttl=0"]),
        sy(&["-w", "net.netfilter.nf_conntrack_tcp_timeout_established=60", "net.ipv4.ip_forward=0"]),
        sy(&["net/ipv4/tcp_syncookies"]),
        b"{not json\n".to_vec(),
        b"{\"op\":\"reboot\"}\n".to_vec(),
        b"{\"op\":\"ping\",\"extra\":1}\n".to_vec(),
        b"{\"op\":\"tool\",\"tool\":\"iptables\"}\n".to_vec(),
        b"{\"op\":\"tool\",\"tool\":\"sh\",\"args\":[\"-c\",\"true\"]}\n".to_vec(),
        b"{\"op\":\"conntrack\",\"args\":\"-L\"}\n".to_vec(),
        b"{\"op\":\"sysctl\",\"args\":[1,2]}\n".to_vec(),
        b"{\"op\":\"tool\",\"tool\":\"iptables\",\"args\":[\"-A\",\"INPUT\",\"-j\",\"DROP\"],\"stdin\":null}\n".to_vec(),
        b"{\"op\":\"tool\",\"tool\":\"iptables\",\"args\":[\"-A\",\"INPUT\",\"-s\",\"\\u0000\",\"-j\",\"DROP\"]}\n".to_vec(),
        b"{\"op\":\"ping\"}{\"op\":\"ping\"}\n".to_vec(),
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\n".to_vec(),
        b"\xff\xfe{\"op\":\"ping\"}\n".to_vec(),
        b"\n".to_vec(),
        b"{\"op\":\"ping\"".to_vec(),
        b"{\"op\":\"tool\",\"tool\":\"iptables-save\",\"args\":[],\"stdin\":\"\",\"stdin\":\"\"}\n".to_vec(),
        b"{\"op\":\"sysctl\",\"args\":[\"-w\",\"net.netfilter.nf_conntrack_max=99999999999999999999\"]}\n".to_vec(),
    ];
    // Sequences: a change, then a refused change, then a listing.
    out.push(
        [
            tool(
                "iptables",
                &["-A", "FORWARD", "-s", "10.0.1.9", "-j", "DROP"],
                "",
            ),
            tool("iptables", &["-A", "FORWARD", "-j", "nonexistent"], ""),
            ct(&["-D", "-p", "icmp"]),
            tool("iptables", &["-S", "FORWARD"], ""),
        ]
        .concat(),
    );
    out.push(
        [
            sy(&["-w", "net.netfilter.nf_conntrack_max=1"]),
            ct(&["-C"]),
            b"{\"op\":".to_vec(),
        ]
        .concat(),
    );
    // Real rulesets as iptables-restore input (small ones).
    let mut paths = Vec::new();
    if let Ok(rd) = std::fs::read_dir(root.join("tests/recorded/rulesets")) {
        for e in rd.flatten() {
            paths.push(e.path().join("input.rules"));
        }
    }
    paths.sort();
    for p in paths.iter().take(40) {
        if let Ok(t) = std::fs::read_to_string(p) {
            if t.len() <= 4096 {
                out.push(tool("iptables-restore", &[], &t));
            }
        }
    }
    out
}
