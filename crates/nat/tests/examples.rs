//! Replays the shared kernel examples that exercise only conntrack and NAT (a MASQUERADE
//! gateway) through `nfrs-conntrack` + `nfrs-nat` with a minimal gateway around them, and
//! compares the rewritten packets and the final `conntrack -L` section with what Linux 6.18
//! printed. The full packet path lives in the engine; this checks the two libraries' part.

use std::path::PathBuf;

use nfrs_conntrack::{ConnTable, CtConfig, CtInfo, Hook, Packet, Style};
use nfrs_nat::hook::{action, finish, Action};
use nfrs_nat::{masquerade_range, nat_packet, setup_info, Manip, NatRange, XorShift};
use nfrs_wire::build::{build_ipv4, FrameCtx};
use nfrs_wire::line::parse_input_line;

fn shared() -> Option<PathBuf> {
    let p = match std::env::var_os("NFRS_SHARED") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    p.join("corpus").is_dir().then_some(p)
}

fn ip(s: &str) -> u32 {
    nfrs_conntrack::tuple::parse_addr(s).unwrap()
}

/// `<proto> <src> > <dst>` of a printed packet, the way results print it.
fn endpoints(b: &[u8], rand_port: Option<u16>) -> String {
    let ihl = (b[0] & 15) as usize * 4;
    let (src, dst) = (
        u32::from_be_bytes(b[12..16].try_into().unwrap()),
        u32::from_be_bytes(b[16..20].try_into().unwrap()),
    );
    let a = |x: u32| nfrs_conntrack::Addr(x).to_string();
    match b[9] {
        6 | 17 => {
            let sp = u16::from_be_bytes([b[ihl], b[ihl + 1]]);
            let dp = u16::from_be_bytes([b[ihl + 2], b[ihl + 3]]);
            let show = |p: u16| {
                if Some(p) == rand_port {
                    "rand1".to_string()
                } else {
                    p.to_string()
                }
            };
            let proto = if b[9] == 6 { "tcp" } else { "udp" };
            format!("{proto} {}:{} > {}:{}", a(src), show(sp), a(dst), show(dp))
        }
        1 => format!("icmp {} > {}", a(src), a(dst)),
        p => format!("{p} {} > {}", a(src), a(dst)),
    }
}

struct Gateway {
    t: ConnTable,
    rng: XorShift,
    stateful_forward: bool,
    rand_port: Option<u16>,
}

impl Gateway {
    /// One packet in from `dev`; returns the forwarded packet's endpoints, or None if dropped.
    fn packet(&mut self, dev: &str, mut b: Vec<u8>, now: u64) -> Option<String> {
        let ihl = (b[0] & 15) as usize * 4;
        let p = Packet {
            src: u32::from_be_bytes(b[12..16].try_into().unwrap()),
            dst: u32::from_be_bytes(b[16..20].try_into().unwrap()),
            proto: b[9],
            later_fragment: false,
            l4: &b[ihl..],
        };
        let proto = p.proto;
        let r = self.t.track(&p, 0, Hook::PreRouting, now);
        let conn = r.conn;
        // PREROUTING nat: no DNAT rules.
        let dir = r.ctinfo.dir();
        match action(r.ctinfo, conn.map(|id| self.t.get(id)), Manip::Dst, proto) {
            Action::RunRules => {
                finish(&mut self.t, conn.unwrap(), Manip::Dst, &mut self.rng, now);
                nat_packet(&mut b, self.t.get(conn.unwrap()), dir, Manip::Dst).unwrap();
            }
            Action::Apply => {
                nat_packet(&mut b, self.t.get(conn.unwrap()), dir, Manip::Dst).unwrap();
            }
            _ => {}
        }
        let dst = u32::from_be_bytes(b[16..20].try_into().unwrap());
        let out = if dst & 0xffff_ff00 == ip("10.0.0.0") {
            "lan0"
        } else {
            "wan0"
        };
        let drop = |t: &mut ConnTable| {
            if r.unconfirmed {
                t.discard(conn.unwrap());
            }
            None
        };
        // Forwarding: TTL runs out here (the host answers with Time Exceeded).
        if b[8] <= 1 {
            return drop(&mut self.t);
        }
        if self.stateful_forward {
            let ok = matches!(
                r.ctinfo,
                CtInfo::Established
                    | CtInfo::EstablishedReply
                    | CtInfo::Related
                    | CtInfo::RelatedReply
            ) || (dev == "lan0" && out == "wan0");
            if !ok {
                return drop(&mut self.t);
            }
        }
        // POSTROUTING nat: -o wan0 -j MASQUERADE.
        match action(r.ctinfo, conn.map(|id| self.t.get(id)), Manip::Src, proto) {
            Action::RunRules => {
                let id = conn.unwrap();
                if out == "wan0" {
                    let range =
                        masquerade_range(&NatRange::default(), Some(ip("192.0.2.1"))).unwrap();
                    let d = setup_info(&mut self.t, id, &range, Manip::Src, &mut self.rng, now);
                    if d.random {
                        self.rand_port = Some(self.t.get(id).tuple[1].dst_l4);
                    }
                }
                finish(&mut self.t, id, Manip::Src, &mut self.rng, now);
                nat_packet(&mut b, self.t.get(id), dir, Manip::Src).unwrap();
            }
            Action::Apply => {
                nat_packet(&mut b, self.t.get(conn.unwrap()), dir, Manip::Src).unwrap();
            }
            _ => {}
        }
        if r.unconfirmed {
            self.t.confirm(conn.unwrap(), now).unwrap();
        }
        Some(format!("{out} {}", endpoints(&b, self.rand_port)))
    }
}

fn run(name: &str, stateful_forward: bool) {
    let Some(dir) = shared() else {
        println!("skipped: ../shared/corpus absent");
        return;
    };
    let toml = std::fs::read_to_string(dir.join(format!("examples/{name}.toml"))).unwrap();
    let kernel = std::fs::read_to_string(dir.join(format!("examples/{name}.kernel.txt"))).unwrap();
    let start = toml.find("packets = '''").unwrap() + "packets = '''".len();
    let end = start + toml[start..].find("'''").unwrap();
    let mut gw = Gateway {
        t: ConnTable::new(CtConfig {
            buckets: 1024,
            ..CtConfig::default()
        }),
        rng: XorShift(7),
        stateful_forward,
        rand_port: None,
    };
    // Expected: for each input line, its "out" line's device and endpoints (or none).
    let mut expected: Vec<Option<String>> = Vec::new();
    for l in kernel.lines() {
        if l.starts_with("==") {
            break;
        }
        if l.starts_with('#') {
            continue;
        }
        if let Some(rest) = l.strip_prefix("  out ") {
            let t: Vec<&str> = rest.split_whitespace().collect();
            if t[1] == "icmp" && t[0] == "lan0" && rest.contains("type=11") {
                continue; // the host's own Time Exceeded: not a forwarded packet
            }
            *expected.last_mut().unwrap() = Some(format!("{} {} {} > {}", t[0], t[1], t[2], t[4]));
        } else if !l.starts_with(' ') {
            expected.push(None);
        }
    }
    let mut n = 0;
    let mut last = 0;
    for line in toml[start..end].lines() {
        let Ok(input) = parse_input_line(line) else {
            continue;
        };
        n += 1;
        let ctx = FrameCtx {
            ip_id: n as u16,
            ..FrameCtx::default()
        };
        let b = build_ipv4(&input.spec, &ctx).unwrap();
        last = input.time_us * 1000;
        let got = gw.packet(&input.dev, b, last);
        println!("{name} {n}: {got:?}");
        assert_eq!(got, expected[n - 1], "{name} packet {n}: {line}");
    }
    assert_eq!(n, expected.len());
    let want: Vec<&str> = kernel
        .split("== conntrack\n")
        .nth(1)
        .unwrap()
        .split("== expect")
        .next()
        .unwrap()
        .lines()
        .collect();
    let mut got = gw.t.listing(last, Style::RESULTS);
    if let Some(p) = gw.rand_port {
        for l in got.iter_mut() {
            *l = l.replace(&format!("dport={p} "), "dport=rand1 ");
        }
        got.sort();
    }
    assert_eq!(got, want, "{name}: conntrack section");
}

#[test]
fn nat_gateway_example_matches_the_kernel() {
    run("nat-gateway", true);
}

#[test]
fn port_clash_example_matches_the_kernel() {
    run("port-clash", false);
}
