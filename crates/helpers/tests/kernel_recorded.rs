//! Replays the kernel-recorded helper scenarios (tests/scenarios/helpers/*.kernel.txt, made by
//! `nfrs kernel-run --record` on Linux 6.18) through this crate alone: the control connection's
//! packets go through `Helpers::help` and sequence adjustment and must come out as the kernel
//! sent them (payload, seq, ack, SACK); each other SYN must be RELATED exactly when the kernel
//! logged it so, with the kernel's NAT; the pending expectations must list as the kernel's;
//! forged-DCC warnings must read as the kernel's.

use std::path::PathBuf;

use nfrs_helpers::{
    ConnId, Dir, ExpectFormat, HelperKind, HelperLog, Helpers, Master, Tuple, Verdict,
};

#[derive(Debug, Clone, Default)]
struct Pkt {
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    flags: String,
    seq: u32,
    ack: u32,
    sack: Vec<(u32, u32)>,
    payload: Vec<u8>,
}

fn addr_port(s: &str) -> (u32, u16) {
    let (a, p) = s.rsplit_once(':').unwrap();
    let a: std::net::Ipv4Addr = a.parse().unwrap();
    (u32::from(a), p.parse().unwrap())
}

fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            match b[i + 1] {
                b'x' => {
                    out.push(u8::from_str_radix(&s[i + 2..i + 4], 16).unwrap());
                    i += 4;
                    continue;
                }
                b'r' => out.push(b'\r'),
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                c => out.push(c),
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Parses "tcp A:p > B:q k=v ... payload="..."" (the part after the interface name).
fn parse_tcp(words: &str) -> Option<Pkt> {
    let (head, payload) = match words.find(" payload=\"") {
        Some(i) => (&words[..i], unescape(&words[i + 10..words.len() - 1])),
        None => (words, Vec::new()),
    };
    let w: Vec<&str> = head.split_whitespace().collect();
    if w.first() != Some(&"tcp") {
        return None;
    }
    let (src, sport) = addr_port(w[1]);
    let (dst, dport) = addr_port(w[3]);
    let mut p = Pkt {
        src,
        sport,
        dst,
        dport,
        payload,
        ..Pkt::default()
    };
    for kv in &w[4..] {
        if let Some((k, v)) = kv.split_once('=') {
            match k {
                "flags" => p.flags = v.to_string(),
                "seq" => p.seq = v.parse().unwrap(),
                "ack" => p.ack = v.parse().unwrap(),
                "sack" => {
                    p.sack = v
                        .split(',')
                        .map(|b| {
                            let (a, z) = b.split_once('-').unwrap();
                            (a.parse().unwrap(), z.parse().unwrap())
                        })
                        .collect()
                }
                _ => {}
            }
        }
    }
    Some(p)
}

/// A connection's first packet: SYN without ACK (ECN bits allowed).
fn syn(flags: &str) -> bool {
    flags.contains('S') && !flags.contains('A')
}

struct Step {
    time: f64,
    input: Pkt,
    out: Option<Pkt>,
    logs: Vec<String>,
}

struct Recorded {
    steps: Vec<Step>,
    expect: Vec<String>,
}

fn load(path: &PathBuf) -> Recorded {
    let text = std::fs::read_to_string(path).unwrap();
    let mut steps: Vec<Step> = Vec::new();
    let mut expect = Vec::new();
    let mut section = "";
    for line in text.lines() {
        if let Some(s) = line.strip_prefix("== ") {
            section = if s == "expect" { "expect" } else { "other" };
            continue;
        }
        if section == "expect" {
            if !line.trim().is_empty() {
                expect.push(line.to_string());
            }
            continue;
        }
        if section == "other" || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("  out ") {
            let (_, words) = rest.split_once(' ').unwrap();
            if let Some(p) = parse_tcp(words) {
                steps.last_mut().unwrap().out = Some(p);
            }
        } else if let Some(rest) = line.strip_prefix("  log ") {
            steps.last_mut().unwrap().logs.push(rest.to_string());
        } else if !line.starts_with(' ') && !line.is_empty() {
            let mut it = line.splitn(3, ' ');
            let time: f64 = it.next().unwrap().parse().unwrap();
            let _iface = it.next();
            if let Some(p) = parse_tcp(it.next().unwrap()) {
                steps.push(Step {
                    time,
                    input: p,
                    out: None,
                    logs: Vec::new(),
                });
            }
        }
    }
    Recorded { steps, expect }
}

fn sack_opts(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut o = vec![5u8, 2 + 8 * blocks.len() as u8];
    for (a, b) in blocks {
        o.extend_from_slice(&a.to_be_bytes());
        o.extend_from_slice(&b.to_be_bytes());
    }
    o
}

fn sack_blocks(o: &[u8]) -> Vec<(u32, u32)> {
    o[2..]
        .chunks(8)
        .map(|c| {
            (
                u32::from_be_bytes(c[0..4].try_into().unwrap()),
                u32::from_be_bytes(c[4..8].try_into().unwrap()),
            )
        })
        .collect()
}

fn replay(path: &PathBuf) -> usize {
    let rec = load(path);
    let mut h = Helpers::default();
    let mut master: Option<Master> = None;
    let mut seen_reply = false;
    let mut checks = 0;
    let mut now = 0;
    let id = ConnId(1);
    let mut pick = |r: u32| r / 2;
    for st in &rec.steps {
        now = (st.time * 1e9).round() as u64;
        let p = &st.input;
        let name = format!("{} at {}", path.display(), st.time);
        let control = [21u16, 6667].contains(&p.sport) || [21u16, 6667].contains(&p.dport);
        if control {
            if master.is_none() {
                assert!(
                    syn(&p.flags),
                    "{name}: scenario starts with the control SYN"
                );
                let o = st.out.as_ref().expect("SYN forwarded");
                let orig = Tuple::ports(6, p.src, p.sport, p.dst, p.dport);
                let reply = Tuple::ports(6, o.dst, o.dport, o.src, o.sport);
                let m = Master {
                    id,
                    orig,
                    reply,
                    nat: reply != Tuple::ports(6, p.dst, p.dport, p.src, p.sport),
                    zone: 0,
                };
                let kind = if p.dport == 21 {
                    HelperKind::Ftp
                } else {
                    HelperKind::Irc
                };
                h.assign(&m, kind);
                master = Some(m);
                continue;
            }
            let m = master.unwrap();
            let dir = if p.src == m.orig.src && p.sport == m.orig.src_l4 {
                Dir::Original
            } else {
                seen_reply = true;
                Dir::Reply
            };
            let established = dir == Dir::Reply || seen_reply;
            let r = h.help(&m, dir, established, p.seq, &p.payload, now, &mut pick);
            let forged: Vec<&String> = st
                .logs
                .iter()
                .filter(|l| l.starts_with("nf_conntrack_irc"))
                .collect();
            // Forged-DCC warnings go to the kernel log; the helper's "dropping packet" lines
            // only through a bound packet logger (none in these scenarios).
            match r.log {
                Some(l @ HelperLog::ForgedDcc { .. }) => {
                    assert_eq!(forged, vec![&l.to_string()], "{name}")
                }
                _ => assert!(forged.is_empty(), "{name}: kernel logged {forged:?}"),
            }
            if r.verdict == Verdict::Drop {
                assert!(st.out.is_none(), "{name}: kernel forwarded what nfrs drops");
                continue;
            }
            let o = st
                .out
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: no out line"));
            let mut payload = p.payload.clone();
            if let Some(rw) = r.rewrite {
                rw.apply(&mut payload);
            }
            let (mut seq, mut ack, mut sack) = (p.seq, p.ack, p.sack.clone());
            if let Some(a) = h.seqadj(m.id, &m.orig) {
                seq = a.adjust_seq(dir, seq);
                if p.flags.contains('A') {
                    ack = a.adjust_ack(dir, ack);
                }
                if !sack.is_empty() {
                    let mut opts = sack_opts(&sack);
                    a.adjust_sack(dir, &mut opts);
                    sack = sack_blocks(&opts);
                }
            }
            assert_eq!(
                String::from_utf8_lossy(&payload),
                String::from_utf8_lossy(&o.payload),
                "{name}: payload"
            );
            assert_eq!(
                (seq, ack, &sack),
                (o.seq, o.ack, &o.sack),
                "{name}: seq/ack/sack"
            );
            checks += 1;
        } else if syn(&p.flags) {
            let t = Tuple::ports(6, p.src, p.sport, p.dst, p.dport);
            let related = st.logs.iter().any(|l| l.starts_with("related "));
            let e = h.expect_new(&t, 0, now);
            assert_eq!(e.is_some(), related, "{name}: RELATED");
            if let (Some(e), Some(o)) = (e, st.out.as_ref()) {
                let (s, d, dp) = match e.nat {
                    Some(n) => (n.snat_addr, n.dnat_addr, n.dnat_port),
                    None => (p.src, p.dst, p.dport),
                };
                assert_eq!((s, d, dp), (o.src, o.dst, o.dport), "{name}: expected NAT");
                assert_eq!(e.master, id);
            }
            checks += 1;
        }
    }
    let listing = h.expect_listing(now, ExpectFormat::Conntrack, false);
    assert_eq!(listing, rec.expect, "{}: expectations", path.display());
    checks + 1
}

#[test]
fn kernel_recorded_helper_scenarios() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/helpers");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".kernel.txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "recorded scenarios present: {files:?}");
    let mut total = 0;
    for f in &files {
        let n = replay(f);
        println!("{}: {n} checks", f.display());
        total += n;
    }
    assert!(total > 50);
}
