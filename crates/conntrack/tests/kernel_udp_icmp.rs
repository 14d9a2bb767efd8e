//! UDP, ICMP (queries, answers, errors) and protocol-253 packets sent through a Linux 6.18
//! router, with the ctstate the kernel gave each and the entry count after it
//! (tests/data/kernel-udp-icmp-ctstate.txt), replayed through the tracker; the final listing
//! is compared too.

use nfrs_conntrack::table::l4_checksum;
use nfrs_conntrack::{ConnTable, CtConfig, CtInfo, Hook, LogPrefix, Packet, Style, SEC};

const C: u32 = 0x0a00_0002; // 10.0.0.2
const S: u32 = 0xc633_6432; // 198.51.100.50

fn csum(b: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in b.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn icmp(t: u8, c: u8, rest: [u8; 4], data: &[u8]) -> Vec<u8> {
    let mut b = vec![t, c, 0, 0];
    b.extend_from_slice(&rest);
    b.extend_from_slice(data);
    let k = csum(&b);
    b[2..4].copy_from_slice(&k.to_be_bytes());
    b
}

fn iph(src: u32, dst: u32, proto: u8, plen: u16) -> Vec<u8> {
    let mut h = vec![0x45, 0];
    h.extend_from_slice(&(20 + plen).to_be_bytes());
    h.extend_from_slice(&[0, 0, 0x40, 0, 64, proto, 0, 0]);
    h.extend_from_slice(&src.to_be_bytes());
    h.extend_from_slice(&dst.to_be_bytes());
    let k = csum(&h);
    h[10..12].copy_from_slice(&k.to_be_bytes());
    h
}

fn udp(src: u32, sp: u16, dst: u32, dp: u16) -> Vec<u8> {
    let mut b = vec![0u8; 12];
    b[0..2].copy_from_slice(&sp.to_be_bytes());
    b[2..4].copy_from_slice(&dp.to_be_bytes());
    b[4..6].copy_from_slice(&12u16.to_be_bytes());
    b[8..12].copy_from_slice(b"ping");
    let k = l4_checksum(src, dst, 17, &b);
    b[6..8].copy_from_slice(&k.to_be_bytes());
    b
}

/// Builds (src, dst, proto, transport bytes) for a recorded line.
fn build(l: &[&str]) -> (u32, u32, u8, Vec<u8>) {
    let (me, peer) = if l[0] == "c" { (C, S) } else { (S, C) };
    let num = |i: usize| l[i].parse::<u32>().unwrap();
    match l[1] {
        "udp" => {
            let (cp, sp) = (num(2) as u16, num(3) as u16);
            if l[0] == "c" {
                (C, S, 17, udp(C, cp, S, sp))
            } else {
                (S, C, 17, udp(S, sp, C, cp))
            }
        }
        "icmp" => {
            let mut rest = [0u8; 4];
            rest[0..2].copy_from_slice(&(num(4) as u16).to_be_bytes());
            rest[2..4].copy_from_slice(&(num(5) as u16).to_be_bytes());
            (me, peer, 1, icmp(num(2) as u8, num(3) as u8, rest, b"abcd"))
        }
        "icmperr" => {
            let mut to = peer;
            for o in &l[5..] {
                if let Some(a) = o.strip_prefix("to=") {
                    to = u32::from(a.parse::<std::net::Ipv4Addr>().unwrap());
                }
            }
            let q = if l[4] == "udp" {
                let (cp, sp) = (num(5) as u16, num(6) as u16);
                let mut u = vec![0u8; 8];
                let (qs, qd, a, b) = if l.contains(&"rev") {
                    (S, C, sp, cp)
                } else {
                    (C, S, cp, sp)
                };
                u[0..2].copy_from_slice(&a.to_be_bytes());
                u[2..4].copy_from_slice(&b.to_be_bytes());
                u[4..6].copy_from_slice(&12u16.to_be_bytes());
                let mut q = iph(qs, qd, 17, 12);
                q.extend_from_slice(&u);
                q
            } else {
                let mut rest = [0u8; 4];
                rest[0..2].copy_from_slice(&(num(6) as u16).to_be_bytes());
                rest[2..4].copy_from_slice(&1u16.to_be_bytes());
                let mut q = iph(C, S, 1, 12);
                q.extend_from_slice(&icmp(num(5) as u8, 0, rest, &[]));
                q
            };
            (me, to, 1, icmp(num(2) as u8, num(3) as u8, [0; 4], &q))
        }
        "proto" => (me, peer, num(2) as u8, b"hello".to_vec()),
        k => panic!("kind {k}"),
    }
}

#[test]
fn ctstate_and_entries_match_the_kernel() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-udp-icmp-ctstate.txt"
    ))
    .unwrap();
    let (packets, listing) = data.split_once("== conntrack -L -o extended\n").unwrap();
    // The messages the kernel logged for each packet with nf_conntrack_log_invalid=255.
    let logs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-log-invalid.txt"
    ))
    .unwrap();
    let logs: Vec<(&str, &str)> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("other.txt "))
        .map(|l| l.split_once(" =>").unwrap())
        .collect();
    let mut t = ConnTable::new(CtConfig {
        buckets: 64,
        ..CtConfig::default()
    });
    let mut now = 0;
    for (i, line) in packets.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let (pkt, want) = line.split_once(" => ").unwrap();
        let f: Vec<&str> = pkt.split_whitespace().collect();
        let (src, dst, proto, l4) = build(&f);
        now = i as u64 * SEC / 20;
        let r = t.track(
            &Packet {
                src,
                dst,
                proto,
                later_fragment: false,
                l4: &l4,
            },
            0,
            Hook::PreRouting,
            now,
        );
        if r.unconfirmed {
            t.confirm(r.conn.unwrap(), now).unwrap();
        }
        let class = match r.ctinfo {
            CtInfo::New => "NEW",
            CtInfo::Established | CtInfo::EstablishedReply => "ESTABLISHED",
            CtInfo::Related | CtInfo::RelatedReply => "RELATED",
            CtInfo::Invalid => "INVALID",
            CtInfo::Untracked => "UNTRACKED",
        };
        assert_eq!(
            format!("{class} {}", t.count()),
            want,
            "line {}: {pkt} (log: {:?})",
            i + 1,
            r.log.map(|l| l.to_string())
        );
        let (logged_pkt, logged) = logs[i];
        assert_eq!(logged_pkt, pkt);
        let ours: String = [r.log, r.log2]
            .iter()
            .flatten()
            .map(|m| LogPrefix(*m).to_string().trim_end().to_string() + "|")
            .collect();
        assert_eq!(
            ours,
            logged.trim(),
            "log_invalid message for line {}: {pkt}",
            i + 1
        );
    }
    let strip = |l: &str| {
        // Drop the timeout column.
        let mut v: Vec<&str> = l.split_whitespace().collect();
        v.remove(4);
        v.join(" ")
    };
    let want: Vec<String> = listing.lines().map(strip).collect();
    let mut got: Vec<String> = t
        .listing(now, Style::RESULTS)
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    got.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted);
}
