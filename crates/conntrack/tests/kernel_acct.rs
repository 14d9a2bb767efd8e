//! `nf_conntrack_acct=1`: which packets Linux 6.18 counted (tests/data/kernel-acct.txt) and where
//! the counters print.

use nfrs_conntrack::table::l4_checksum;
use nfrs_conntrack::{ConnTable, CtConfig, CtInfo, Format, Hook, Packet, Style};

const C: u32 = 0x0a00_0002;
const S: u32 = 0xc633_6432;

#[allow(clippy::too_many_arguments)]
fn tcp(
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    flags: u8,
    seq: u32,
    ack: u32,
    win: u16,
    len: usize,
) -> Vec<u8> {
    let mut b = vec![0u8; 20 + len];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..8].copy_from_slice(&seq.to_be_bytes());
    b[8..12].copy_from_slice(&ack.to_be_bytes());
    b[12] = 0x50;
    b[13] = flags;
    b[14..16].copy_from_slice(&win.to_be_bytes());
    let c = l4_checksum(src, dst, 6, &b);
    b[16..18].copy_from_slice(&c.to_be_bytes());
    b
}

fn udp(src: u32, sp: u16, dst: u32, dp: u16) -> Vec<u8> {
    let mut b = vec![0u8; 12];
    b[0..2].copy_from_slice(&sp.to_be_bytes());
    b[2..4].copy_from_slice(&dp.to_be_bytes());
    b[4..6].copy_from_slice(&12u16.to_be_bytes());
    let k = l4_checksum(src, dst, 17, &b);
    b[6..8].copy_from_slice(&k.to_be_bytes());
    b
}

#[test]
#[allow(clippy::type_complexity)]
fn counted_packets_and_listing_match_the_kernel() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-acct.txt"
    ))
    .unwrap();
    let mut t = ConnTable::new(CtConfig {
        buckets: 64,
        ..CtConfig::default()
    });
    t.set_sysctl("net.netfilter.nf_conntrack_acct", "1")
        .unwrap();
    let flag = |f: &str| {
        f.chars().fold(0u8, |a, c| {
            a | match c {
                'S' => 2,
                'A' => 16,
                'P' => 8,
                'F' => 1,
                'R' => 4,
                _ => 0,
            }
        })
    };
    let mut pkts: Vec<(u32, u32, u8, Vec<u8>)> = Vec::new();
    for l in data
        .lines()
        .filter(|l| l.starts_with("c ") || l.starts_with("s "))
    {
        let f: Vec<&str> = l.split_whitespace().collect();
        let sport: u16 = f[1].parse().unwrap();
        let (seq, ack, win) = (
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
            f[5].parse().unwrap(),
        );
        let len = f
            .get(6)
            .and_then(|o| o.strip_prefix("len="))
            .map(|v| v.parse().unwrap())
            .unwrap_or(0);
        if f[0] == "c" {
            pkts.push((
                C,
                S,
                6,
                tcp(C, sport, S, 80, flag(f[2]), seq, ack, win, len),
            ));
        } else {
            pkts.push((
                S,
                C,
                6,
                tcp(S, 80, C, sport, flag(f[2]), seq, ack, win, len),
            ));
        }
    }
    let q = udp(C, 5000, S, 53);
    pkts.push((C, S, 17, q.clone()));
    pkts.push((S, C, 17, udp(S, 53, C, 5000)));
    // The server's port unreachable for the client's datagram: RELATED, not counted.
    let mut err = vec![
        3u8, 3, 0, 0, 0, 0, 0, 0, 0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0,
    ];
    err.extend_from_slice(&C.to_be_bytes());
    err.extend_from_slice(&S.to_be_bytes());
    err.extend_from_slice(&q[..8]);
    let mut sum: u32 = err
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    err[2..4].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    pkts.push((S, C, 1, err));
    for (src, dst, proto, l4) in &pkts {
        let r = t.track(
            &Packet {
                src: *src,
                dst: *dst,
                proto: *proto,
                later_fragment: false,
                l4,
            },
            0,
            Hook::PreRouting,
            0,
        );
        if r.unconfirmed {
            t.confirm(r.conn.unwrap(), 0).unwrap();
        }
        if *proto == 1 {
            assert_eq!(r.ctinfo, CtInfo::RelatedReply);
        }
    }
    let strip = |l: &str| {
        let mut v: Vec<&str> = l.split_whitespace().collect();
        v.remove(4);
        v.join(" ")
    };
    let sections: Vec<&str> = data.split("== ").collect();
    let mut want: Vec<String> = sections[1].lines().skip(1).map(strip).collect();
    want.sort();
    let got: Vec<String> = t
        .listing(0, Style::RESULTS)
        .iter()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(got, want);
    let want_proc = strip(sections[2].lines().nth(1).unwrap());
    let procs = t.listing(
        0,
        Style {
            format: Format::Proc,
            timeout: false,
        },
    );
    assert!(
        procs
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want_proc),
        "{procs:?}"
    );
}
