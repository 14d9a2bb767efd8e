//! UDP-Lite through a Linux 6.18 router (tests/data/kernel-udplite.txt): ctstate, messages and
//! listings, including the kernel's checksum quirk (pseudo-header protocol 17).

use nfrs_conntrack::{ConnTable, CtConfig, CtInfo, Format, Hook, LogPrefix, Packet, Style, SEC};

const C: u32 = 0x0a00_0002;
const S: u32 = 0xc633_6432;

fn lite(c_side: bool, cov: u16, pseudo_proto: u8, good: bool) -> (u32, u32, Vec<u8>) {
    let (src, dst, sp, dp) = if c_side {
        (C, S, 6000u16, 7000u16)
    } else {
        (S, C, 7000, 6000)
    };
    let mut b = Vec::new();
    b.extend_from_slice(&sp.to_be_bytes());
    b.extend_from_slice(&dp.to_be_bytes());
    b.extend_from_slice(&cov.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(b"litedata");
    let covered = if cov == 0 {
        b.len()
    } else {
        (cov as usize).min(b.len())
    };
    let mut sum: u32 = (src >> 16)
        + (src & 0xffff)
        + (dst >> 16)
        + (dst & 0xffff)
        + pseudo_proto as u32
        + b.len() as u32;
    for c in b[..covered].chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let mut k = !(sum as u16);
    if !good {
        k ^= 0x5555;
    }
    b[6..8].copy_from_slice(&k.to_be_bytes());
    (src, dst, b)
}

#[test]
fn udplite_matches_the_kernel() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-udplite.txt"
    ))
    .unwrap();
    let (packets, rest) = data.split_once("== conntrack -L -o extended\n").unwrap();
    let (ext, procl) = rest.split_once("== /proc/net/nf_conntrack\n").unwrap();
    let mut t = ConnTable::new(CtConfig {
        buckets: 16,
        ..CtConfig::default()
    });
    for (i, line) in packets.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let (pkt, want) = line.split_once(" => ").unwrap();
        let f: Vec<&str> = pkt.split_whitespace().collect();
        let (src, dst, l4) = lite(
            f[0] == "c",
            f[1].parse().unwrap(),
            f[2].parse().unwrap(),
            f[3] == "good",
        );
        let r = t.track(
            &Packet {
                src,
                dst,
                proto: 136,
                later_fragment: false,
                l4: &l4,
            },
            0,
            Hook::PreRouting,
            0,
        );
        if r.unconfirmed {
            t.confirm(r.conn.unwrap(), 0).unwrap();
        }
        let class = match r.ctinfo {
            CtInfo::New => "NEW",
            CtInfo::Invalid => "INVALID",
            _ => "ESTABLISHED",
        };
        let msg: String = r
            .log
            .iter()
            .map(|m| LogPrefix(*m).to_string().trim_end().to_string() + "|")
            .collect();
        assert_eq!(
            format!("{class} {msg}").trim_end(),
            want.trim_end(),
            "line {}: {pkt}",
            i + 1
        );
    }
    let now = 4 * SEC - 1; // 26 s left, as listed
    assert_eq!(
        t.listing(
            now,
            Style {
                format: Format::ConntrackExtended,
                timeout: true
            }
        ),
        vec![ext.trim_end().to_string()]
    );
    assert_eq!(
        t.listing(
            now,
            Style {
                format: Format::Proc,
                timeout: true
            }
        ),
        vec![procl.trim_end().to_string()]
    );
}
