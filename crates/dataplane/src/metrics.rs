//! `nfrs run --metrics ADDR:PORT`: Prometheus text exposition (format 0.0.4) of the rule
//! counters, the conntrack figures and per-interface packet counts, served by a tiny HTTP/1.0
//! responder on its own thread (never on the packet path). The packet thread only bumps
//! relaxed atomics per frame; a scrape asks it for the counters between two packets, as
//! `iptables -L -v` does.

use nfrs_rules::Ruleset;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Per-interface counters the packet thread bumps.
#[derive(Debug, Default)]
pub struct IfCounters {
    /// Frames received (for us, broadcast or multicast).
    pub rx_packets: AtomicU64,
    /// Their bytes (Ethernet header included).
    pub rx_bytes: AtomicU64,
    /// Frames sent.
    pub tx_packets: AtomicU64,
    /// Their bytes.
    pub tx_bytes: AtomicU64,
}

impl IfCounters {
    /// Counts one received frame of `len` bytes.
    #[inline]
    pub fn rx(&self, len: usize) {
        self.rx_packets.fetch_add(1, Ordering::Relaxed);
        self.rx_bytes.fetch_add(len as u64, Ordering::Relaxed);
    }

    /// Counts one sent frame of `len` bytes.
    #[inline]
    pub fn tx(&self, len: usize) {
        self.tx_packets.fetch_add(1, Ordering::Relaxed);
        self.tx_bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
}

/// Conntrack figures at scrape time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtFigures {
    /// Conntrack runs (a rule needs it).
    pub active: bool,
    /// `nf_conntrack_count`.
    pub count: u32,
    /// `nf_conntrack_max`.
    pub max: u32,
    /// Pending expectations.
    pub expect: u32,
    /// The table's statistics (`conntrack -S`).
    pub stats: nfrs_conntrack::CtStats,
}

/// Help text of each `conntrack -S` counter (`nfrs_conntrack_<name>_total`).
fn stat_help(name: &str) -> &'static str {
    match name {
        "found" => "NAT found a tuple taken (nf_conntrack_tuple_taken).",
        "invalid" => "Packets conntrack judged INVALID.",
        "insert" => "Entries inserted from user space.",
        "insert_failed" => "Entries not confirmed because of a clash (packet dropped).",
        "drop" => "Packets dropped because the conntrack table was full.",
        "early_drop" => "Entries evicted by early drop to make room.",
        "error" => "ICMP errors conntrack could not relate.",
        "search_restart" => "Lookups restarted by a resize.",
        "clash_resolve" => "Clashes resolved at confirm.",
        "chaintoolong" => "Insertions refused for a too long hash chain.",
        "expect_new" => "New connections that matched an expectation.",
        "expect_create" => "Expectations added.",
        "expect_delete" => "Expectations removed.",
        _ => "",
    }
}

/// A label value with `\`, `"` and newlines escaped (exposition format rule).
fn label(v: &str) -> String {
    let mut o = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition text: rules (`table`, `chain`, `rule` number as `iptables -L --line-numbers`
/// counts), built-in chain policies, conntrack figures, interfaces and the packets for the
/// host that had nowhere to go.
pub fn render(
    rs: &Ruleset,
    ct: CtFigures,
    ifaces: &[(String, &IfCounters)],
    local_dropped: u64,
) -> String {
    let mut out = String::with_capacity(4096);
    let mut rules = String::new();
    let mut bytes = String::new();
    let mut pol = String::new();
    let mut polb = String::new();
    for t in &rs.tables {
        let tn = t.kind.name();
        for c in &t.chains {
            let cn = label(&c.name);
            for (i, r) in c.rules.iter().enumerate() {
                let l = format!("{{table=\"{tn}\",chain=\"{cn}\",rule=\"{}\"}}", i + 1);
                let _ = writeln!(rules, "nfrs_rule_packets_total{l} {}", r.counters.packets);
                let _ = writeln!(bytes, "nfrs_rule_bytes_total{l} {}", r.counters.bytes);
            }
            if c.is_builtin() {
                let l = format!(
                    "{{table=\"{tn}\",chain=\"{cn}\",policy=\"{}\"}}",
                    c.policy.name()
                );
                let _ = writeln!(
                    pol,
                    "nfrs_chain_policy_packets_total{l} {}",
                    c.counters.packets
                );
                let _ = writeln!(
                    polb,
                    "nfrs_chain_policy_bytes_total{l} {}",
                    c.counters.bytes
                );
            }
        }
    }
    head(
        &mut out,
        "nfrs_rule_packets_total",
        "counter",
        "Packets that matched the rule (iptables -L -v pkts).",
    );
    out.push_str(&rules);
    head(
        &mut out,
        "nfrs_rule_bytes_total",
        "counter",
        "Bytes of the packets that matched the rule.",
    );
    out.push_str(&bytes);
    head(
        &mut out,
        "nfrs_chain_policy_packets_total",
        "counter",
        "Packets that met the policy of a built-in chain.",
    );
    out.push_str(&pol);
    head(
        &mut out,
        "nfrs_chain_policy_bytes_total",
        "counter",
        "Bytes of the packets that met the policy of a built-in chain.",
    );
    out.push_str(&polb);
    head(
        &mut out,
        "nfrs_conntrack_active",
        "gauge",
        "1 when a rule needs connection tracking (it runs), else 0.",
    );
    let _ = writeln!(out, "nfrs_conntrack_active {}", u8::from(ct.active));
    head(
        &mut out,
        "nfrs_conntrack_entries",
        "gauge",
        "Connections in the table (net.netfilter.nf_conntrack_count).",
    );
    let _ = writeln!(out, "nfrs_conntrack_entries {}", ct.count);
    head(
        &mut out,
        "nfrs_conntrack_max",
        "gauge",
        "net.netfilter.nf_conntrack_max (0: no limit).",
    );
    let _ = writeln!(out, "nfrs_conntrack_max {}", ct.max);
    head(
        &mut out,
        "nfrs_conntrack_expect_entries",
        "gauge",
        "Pending expectations of conntrack helpers.",
    );
    let _ = writeln!(out, "nfrs_conntrack_expect_entries {}", ct.expect);
    for (name, v) in ct.stats.fields() {
        let metric = format!("nfrs_conntrack_{name}_total");
        head(&mut out, &metric, "counter", stat_help(name));
        let _ = writeln!(out, "{metric} {v}");
    }
    for (name, help, f) in [
        (
            "nfrs_interface_receive_packets_total",
            "Frames received on the interface (for this host, broadcast or multicast).",
            0,
        ),
        (
            "nfrs_interface_receive_bytes_total",
            "Bytes of the frames received on the interface.",
            1,
        ),
        (
            "nfrs_interface_transmit_packets_total",
            "Frames sent on the interface.",
            2,
        ),
        (
            "nfrs_interface_transmit_bytes_total",
            "Bytes of the frames sent on the interface.",
            3,
        ),
    ] {
        head(&mut out, name, "counter", help);
        for (dev, c) in ifaces {
            let v = match f {
                0 => &c.rx_packets,
                1 => &c.rx_bytes,
                2 => &c.tx_packets,
                _ => &c.tx_bytes,
            };
            let _ = writeln!(
                out,
                "{name}{{interface=\"{}\"}} {}",
                label(dev),
                v.load(Ordering::Relaxed)
            );
        }
    }
    head(
        &mut out,
        "nfrs_local_dropped_packets_total",
        "counter",
        "Packets for the host itself not delivered (no TUN device to the host stack, [live] tap, or it refused them).",
    );
    let _ = writeln!(out, "nfrs_local_dropped_packets_total {local_dropped}");
    out
}

/// Answers one HTTP connection: `GET /metrics` (or `/`) gets `body()`, other paths 404, other
/// methods 405, anything unreadable 400. HTTP/1.0, connection closed after the answer; a
/// client has 2 s to send its request head (at most 8 KiB).
pub fn answer(mut s: TcpStream, body: &mut dyn FnMut() -> String) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 8192];
    let mut n = 0;
    while n < buf.len() {
        match s.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if buf[..n].windows(4).any(|w| w == b"\r\n\r\n")
                    || buf[..n].windows(2).any(|w| w == b"\n\n")
                {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    let head = String::from_utf8_lossy(&buf[..n]);
    let first = head.lines().next().unwrap_or("");
    let mut parts = first.split_whitespace();
    let (method, path, version) = (parts.next(), parts.next(), parts.next());
    let (status, text) = match (method, path, version) {
        (Some(m), Some(p), Some(v)) if v.starts_with("HTTP/") => {
            let path = p.split('?').next().unwrap_or(p);
            match (m, path) {
                ("GET" | "HEAD", "/metrics" | "/") => ("200 OK", body()),
                ("GET" | "HEAD", _) => ("404 Not Found", "not found: try /metrics\n".to_string()),
                _ => ("405 Method Not Allowed", "only GET\n".to_string()),
            }
        }
        _ => ("400 Bad Request", "bad request\n".to_string()),
    };
    let ctype = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut resp = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len()
    );
    if method != Some("HEAD") {
        resp.push_str(&text);
    }
    let _ = s.write_all(resp.as_bytes());
    let _ = s.flush();
}

/// Serves `listener` forever, one connection at a time, each answered with [`answer`].
pub fn serve(listener: TcpListener, mut body: impl FnMut() -> String) {
    for s in listener.incoming() {
        match s {
            Ok(s) => answer(s, &mut body),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: std::net::SocketAddr, req: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(req).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    #[test]
    fn exposition_and_http() {
        let rules = "*filter\n:INPUT ACCEPT [3:120]\n:FORWARD DROP [5:400]\n:OUTPUT ACCEPT [0:0]\n:my-chain - [0:0]\n[7:700] -A FORWARD -p tcp -j ACCEPT\n[1:60] -A FORWARD -j my-chain\nCOMMIT\n";
        let opts = nfrs_rules::restore::RestoreOpts {
            counters: true,
            ..Default::default()
        };
        let rs = nfrs_rules::restore::restore_new(rules, &opts).unwrap();
        let lan = IfCounters::default();
        lan.rx(60);
        lan.rx(100);
        lan.tx(42);
        let ct = CtFigures {
            active: true,
            count: 3,
            max: 1000,
            expect: 1,
            stats: nfrs_conntrack::CtStats {
                drop: 9,
                early_drop: 2,
                invalid: 4,
                insert_failed: 1,
                ..Default::default()
            },
        };
        let text = render(&rs, ct, &[("lan0".into(), &lan)], 2);
        for want in [
            "nfrs_rule_packets_total{table=\"filter\",chain=\"FORWARD\",rule=\"1\"} 7\n",
            "nfrs_rule_bytes_total{table=\"filter\",chain=\"FORWARD\",rule=\"2\"} 60\n",
            "nfrs_chain_policy_packets_total{table=\"filter\",chain=\"FORWARD\",policy=\"DROP\"} 5\n",
            "nfrs_chain_policy_bytes_total{table=\"filter\",chain=\"INPUT\",policy=\"ACCEPT\"} 120\n",
            "nfrs_conntrack_entries 3\n",
            "nfrs_conntrack_max 1000\n",
            "nfrs_conntrack_expect_entries 1\n",
            "# TYPE nfrs_conntrack_drop_total counter\n",
            "nfrs_conntrack_drop_total 9\n",
            "nfrs_conntrack_early_drop_total 2\n",
            "nfrs_conntrack_invalid_total 4\n",
            "nfrs_conntrack_insert_failed_total 1\n",
            "nfrs_conntrack_insert_total 0\n",
            "nfrs_conntrack_expect_delete_total 0\n",
            "nfrs_interface_receive_packets_total{interface=\"lan0\"} 2\n",
            "nfrs_interface_receive_bytes_total{interface=\"lan0\"} 160\n",
            "nfrs_interface_transmit_packets_total{interface=\"lan0\"} 1\n",
            "nfrs_local_dropped_packets_total 2\n",
            "# TYPE nfrs_rule_packets_total counter\n",
        ] {
            assert!(text.contains(want), "{want}\n{text}");
        }
        // A user chain has no policy line; every sample line is `name{labels} value`.
        assert!(!text.contains("chain=\"my-chain\",policy"));
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let v = l.rsplit(' ').next().unwrap();
            assert!(v.parse::<u64>().is_ok(), "{l}");
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let t = std::thread::spawn(move || {
            let mut n = 0;
            for s in listener.incoming().take(4) {
                answer(s.unwrap(), &mut || {
                    n += 1;
                    format!("x {n}\n")
                });
            }
        });
        let ok = get(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.0 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(ok.ends_with("\r\n\r\nx 1\n"), "{ok}");
        assert!(get(addr, b"GET /nope HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 404 "));
        assert!(get(addr, b"POST /metrics HTTP/1.0\r\n\r\n").starts_with("HTTP/1.0 405 "));
        assert!(get(addr, b"\x00\xff garbage\r\n\r\n").starts_with("HTTP/1.0 400 "));
        t.join().unwrap();
    }
}
