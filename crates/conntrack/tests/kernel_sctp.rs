//! SCTP through a Linux 6.18 router (tests/data/kernel-sctp.txt): ctstate, state, timeouts,
//! log_invalid messages and listings.

use nfrs_conntrack::sctp::checksum_bytes;
use nfrs_conntrack::{ConnTable, CtConfig, CtInfo, Hook, LogPrefix, Packet, Style, Tuple, SEC};

const C: u32 = 0x0a00_0002;
const S: u32 = 0xc633_6432;

fn chunk(t: u8, flags: u8, body: &[u8]) -> Vec<u8> {
    let l = 4 + body.len();
    let mut c = vec![t, flags];
    c.extend_from_slice(&(l as u16).to_be_bytes());
    c.extend_from_slice(body);
    c.resize(l.div_ceil(4) * 4, 0);
    c
}

fn init_body(tag: u32) -> Vec<u8> {
    let mut b = tag.to_be_bytes().to_vec();
    b.extend_from_slice(&65535u32.to_be_bytes());
    b.extend_from_slice(&[0, 10, 0, 10, 0, 0, 0, 1]);
    b
}

fn data_body() -> Vec<u8> {
    let mut b = vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0];
    b.extend_from_slice(b"data");
    b
}

/// Builds the packet of a recorded line (the same bytes tests/lab/sctp.py sends).
fn build(f: &[&str]) -> (u32, u32, Vec<u8>) {
    let port: u16 = f[1].parse().unwrap();
    let vtag = u32::from_str_radix(f[3], 16).unwrap();
    let tag = f
        .get(4)
        .filter(|t| !t.starts_with("bad"))
        .map(|t| u32::from_str_radix(t, 16).unwrap())
        .unwrap_or(0);
    let body = match f[2] {
        "INIT" => chunk(1, 0, &init_body(tag)),
        "INIT_ACK" => {
            let mut b = init_body(tag);
            b.extend_from_slice(&[0, 7, 0, 8]);
            b.extend_from_slice(b"cook");
            chunk(2, 0, &b)
        }
        "COOKIE_ECHO" => chunk(10, 0, b"cook"),
        "COOKIE_ACK" => chunk(11, 0, &[]),
        "DATA" => chunk(0, 3, &data_body()),
        "SACK" => chunk(3, 0, &[0, 0, 0, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0]),
        "SHUTDOWN" => chunk(7, 0, &[0, 0, 0, 1]),
        "SHUTDOWN_ACK" => chunk(8, 0, &[]),
        "SHUTDOWN_COMPLETE" => chunk(14, 0, &[]),
        "HEARTBEAT" => chunk(4, 0, &[0, 1, 0, 8, b'b', b'e', b'a', b't']),
        "INIT+DATA" => {
            let mut c = chunk(1, 0, &init_body(tag));
            c.extend_from_slice(&chunk(0, 3, &data_body()));
            c
        }
        k => panic!("{k}"),
    };
    let (src, dst, sp, dp) = if f[0] == "c" {
        (C, S, port, 7000u16)
    } else {
        (S, C, 7000, port)
    };
    let mut p = Vec::new();
    p.extend_from_slice(&sp.to_be_bytes());
    p.extend_from_slice(&dp.to_be_bytes());
    p.extend_from_slice(&vtag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(&body);
    let mut crc = checksum_bytes(&p);
    if f.contains(&"bad") {
        crc[0] ^= 0x34;
        crc[1] ^= 0x12;
    }
    p[8..12].copy_from_slice(&crc);
    (src, dst, p)
}

#[test]
fn sctp_matches_the_kernel() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-sctp.txt"
    ))
    .unwrap();
    let (packets, listings) = data.split_once("== conntrack -L -o extended\n").unwrap();
    let mut t = ConnTable::new(CtConfig {
        buckets: 64,
        log_invalid: 255,
        ..CtConfig::default()
    });
    let mut now = 0;
    for (i, line) in packets.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let (pkt, rest) = line.split_once(" => ").unwrap();
        let (state_part, msgs) = rest.split_once(" | ").unwrap();
        let w: Vec<&str> = state_part.split_whitespace().collect();
        let f: Vec<&str> = pkt.split_whitespace().collect();
        let (src, dst, l4) = build(&f);
        now = i as u64 * SEC;
        let r = t.track(
            &Packet {
                src,
                dst,
                proto: 132,
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
            CtInfo::Invalid => "INVALID",
            _ => "ESTABLISHED",
        };
        assert_eq!(class, w[0], "line {}: {pkt}", i + 1);
        let ours: String = [r.log, r.log2]
            .iter()
            .flatten()
            .map(|m| {
                // The recording cut the line at " IN=", taking one space.
                let p = LogPrefix(*m).to_string();
                p.strip_suffix(' ').unwrap_or(&p).to_string() + "|"
            })
            .collect();
        assert_eq!(
            ours,
            msgs.trim().replace("\\x0a", "\n"),
            "line {}: {pkt}",
            i + 1
        );
        let key = Tuple::ports(132, C, f[1].parse().unwrap(), S, 7000);
        match t.lookup(&key, 0, now) {
            Some((id, _)) => {
                let line = t.listing(
                    now,
                    Style {
                        format: nfrs_conntrack::Format::ConntrackExtended,
                        timeout: true,
                    },
                );
                let mine = line
                    .iter()
                    .find(|l| l.contains(&format!("sport={} ", f[1])))
                    .unwrap();
                let v: Vec<&str> = mine.split_whitespace().collect();
                assert_eq!(v[5], w[1], "line {}: {pkt}", i + 1);
                if r.ctinfo != CtInfo::Invalid {
                    assert_eq!(
                        t.get(id).timeout_secs(now) - 1,
                        w[2].parse::<u64>().unwrap(),
                        "line {}: {pkt}",
                        i + 1
                    );
                }
            }
            None => assert_eq!(w[1], "-", "line {}: {pkt}", i + 1),
        }
    }
    let strip = |l: &str| {
        let mut v: Vec<&str> = l.split_whitespace().collect();
        v.remove(4);
        v.join(" ")
    };
    let ext: Vec<String> = listings
        .split("== /proc")
        .next()
        .unwrap()
        .lines()
        .map(strip)
        .collect();
    let mut got: Vec<String> = t
        .listing(now, Style::RESULTS)
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    got.sort();
    let mut want = ext;
    want.sort();
    assert_eq!(got, want);
}
