//! TCP packets sent through a Linux 6.18 router, with the ctstate the kernel gave each and
//! the entry's state afterwards (tests/data/kernel-tcp-ctstate.txt, recorded from iptables
//! rule counters and `conntrack -L`), replayed through the tracker.

use nfrs_conntrack::table::l4_checksum;
use nfrs_conntrack::{ConnTable, CtConfig, CtInfo, Hook, LogPrefix, Packet, Tuple, SEC};

const CLIENT: u32 = 0x0a00_0002; // 10.0.0.2
const SERVER: u32 = 0xc633_6432; // 198.51.100.50

#[allow(clippy::too_many_arguments)]
fn segment(
    src: u32,
    sport: u16,
    dst: u32,
    dport: u16,
    flags: &str,
    seq: u32,
    ack: u32,
    win: u16,
    opts: &[(&str, u32)],
) -> Vec<u8> {
    let mut o = Vec::new();
    let mut len = 0;
    for (k, v) in opts {
        match *k {
            "ws" => o.extend_from_slice(&[1, 3, 3, *v as u8]),
            "len" => len = *v as usize,
            _ => panic!("option {k}"),
        }
    }
    let hl = 20 + o.len();
    let mut b = vec![0u8; hl + len];
    b[0..2].copy_from_slice(&sport.to_be_bytes());
    b[2..4].copy_from_slice(&dport.to_be_bytes());
    b[4..8].copy_from_slice(&seq.to_be_bytes());
    b[8..12].copy_from_slice(&ack.to_be_bytes());
    b[12] = ((hl / 4) as u8) << 4;
    b[13] = flags.chars().fold(0, |f, c| {
        f | match c {
            'F' => 1,
            'S' => 2,
            'R' => 4,
            'P' => 8,
            'A' => 16,
            'U' => 32,
            _ => panic!("flag {c}"),
        }
    });
    b[14..16].copy_from_slice(&win.to_be_bytes());
    b[20..hl].copy_from_slice(&o);
    let c = l4_checksum(src, dst, 6, &b);
    b[16..18].copy_from_slice(&c.to_be_bytes());
    b
}

#[test]
fn ctstate_and_tcp_state_match_the_kernel_packet_by_packet() {
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-tcp-ctstate.txt"
    ))
    .unwrap();
    // The messages the kernel logged for each packet with nf_conntrack_log_invalid=255.
    let logs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-log-invalid.txt"
    ))
    .unwrap();
    let logs: Vec<(&str, &str)> = logs
        .lines()
        .filter_map(|l| l.strip_prefix("tcpseq.txt "))
        .map(|l| l.split_once(" =>").unwrap())
        .collect();
    let mut t = ConnTable::new(CtConfig {
        buckets: 64,
        ..CtConfig::default()
    });
    let mut n = 0;
    for (i, line) in data.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let (pkt, want) = line.split_once(" => ").unwrap();
        let f: Vec<&str> = pkt.split_whitespace().collect();
        let sport: u16 = f[1].parse().unwrap();
        let opts: Vec<(&str, u32)> = f[6..]
            .iter()
            .map(|kv| kv.split_once('=').unwrap())
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
        let (seq, ack, win) = (
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
            f[5].parse().unwrap(),
        );
        let (src, dst, l4) = if f[0] == "c" {
            (
                CLIENT,
                SERVER,
                segment(CLIENT, sport, SERVER, 80, f[2], seq, ack, win, &opts),
            )
        } else {
            (
                SERVER,
                CLIENT,
                segment(SERVER, 80, CLIENT, sport, f[2], seq, ack, win, &opts),
            )
        };
        let now = i as u64 * SEC / 20;
        let r = t.track(
            &Packet {
                src,
                dst,
                proto: 6,
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
        let key = Tuple::ports(6, CLIENT, sport, SERVER, 80);
        let state = match t.lookup(&key, 0, now) {
            Some((id, _)) if t.get(id).tuple[0] == key => t.get(id).tcp().unwrap().state().name(),
            _ => "-",
        };
        assert_eq!(
            format!("{class} {state}"),
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
        n += 1;
    }
    assert_eq!(n, 41);
}

#[test]
fn packetdrill_situations_match_the_kernel() {
    // The kernel selftests' conntrack packetdrill situations, replayed on Linux 6.18.
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-tcp-ctstate-2.txt"
    ))
    .unwrap();
    let mut t = ConnTable::new(CtConfig {
        buckets: 64,
        ..CtConfig::default()
    });
    let mut now = 0;
    for (i, line) in data.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let (pkt, want) = line.split_once(" => ").unwrap();
        let f: Vec<&str> = pkt.split_whitespace().collect();
        let sport: u16 = f[1].parse().unwrap();
        let opts: Vec<(&str, u32)> = f[6..]
            .iter()
            .map(|kv| kv.split_once('=').unwrap())
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
        let (seq, ack, win) = (
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
            f[5].parse().unwrap(),
        );
        let (src, dst, l4) = if f[0] == "c" {
            (
                CLIENT,
                SERVER,
                segment(CLIENT, sport, SERVER, 80, f[2], seq, ack, win, &opts),
            )
        } else {
            (
                SERVER,
                CLIENT,
                segment(SERVER, 80, CLIENT, sport, f[2], seq, ack, win, &opts),
            )
        };
        now = i as u64 * SEC / 20;
        let r = t.track(
            &Packet {
                src,
                dst,
                proto: 6,
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
        let key = Tuple::ports(6, CLIENT, sport, SERVER, 80);
        let state = match t.lookup(&key, 0, now) {
            Some((id, _)) if t.get(id).tuple[0] == key => t.get(id).tcp().unwrap().state().name(),
            _ => "-",
        };
        assert_eq!(format!("{class} {state}"), want, "line {}: {pkt}", i + 1);
    }
    // The last connection ends assured with 1 byte unacknowledged: the 300 s timeout (299 listed).
    let (id, _) = t
        .lookup(&Tuple::ports(6, CLIENT, 41003, SERVER, 80), 0, now)
        .unwrap();
    assert_eq!(t.get(id).timeout_secs(now), 300);
}

#[test]
fn timeout_choices_match_the_kernel() {
    // Retransmissions (max_retrans), zero window, unacknowledged data, closing states: the seconds
    // Linux 6.18 listed right after each packet (one less than the full timeout) and its messages.
    let data = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-tcp-timeouts.txt"
    ))
    .unwrap();
    let mut t = ConnTable::new(CtConfig {
        buckets: 64,
        log_invalid: 6,
        ..CtConfig::default()
    });
    for (i, line) in data.lines().filter(|l| !l.starts_with('#')).enumerate() {
        let (pkt, rest) = line.split_once(" => ").unwrap();
        let (state_part, msgs) = rest.split_once(" | ").unwrap();
        let w: Vec<&str> = state_part.split_whitespace().collect();
        let f: Vec<&str> = pkt.split_whitespace().collect();
        let sport: u16 = f[1].parse().unwrap();
        let opts: Vec<(&str, u32)> = f[6..]
            .iter()
            .map(|kv| kv.split_once('=').unwrap())
            .map(|(k, v)| (k, v.parse().unwrap()))
            .collect();
        let (seq, ack, win) = (
            f[3].parse().unwrap(),
            f[4].parse().unwrap(),
            f[5].parse().unwrap(),
        );
        let (src, dst, l4) = if f[0] == "c" {
            (
                CLIENT,
                SERVER,
                segment(CLIENT, sport, SERVER, 80, f[2], seq, ack, win, &opts),
            )
        } else {
            (
                SERVER,
                CLIENT,
                segment(SERVER, 80, CLIENT, sport, f[2], seq, ack, win, &opts),
            )
        };
        let now = i as u64 * SEC;
        let r = t.track(
            &Packet {
                src,
                dst,
                proto: 6,
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
        let id = r.conn;
        let class = if r.ctinfo == CtInfo::New {
            "NEW"
        } else if r.ctinfo == CtInfo::Invalid {
            "INVALID"
        } else {
            "ESTABLISHED"
        };
        assert_eq!(class, w[0], "line {}: {pkt}", i + 1);
        let ours: String = [r.log, r.log2]
            .iter()
            .flatten()
            .map(|m| LogPrefix(*m).to_string().trim_end().to_string() + "|")
            .collect();
        assert_eq!(ours, msgs.trim(), "line {}: {pkt}", i + 1);
        // Invalid packets leave the entry alone, unless the timeout was lowered.
        let key = Tuple::ports(6, CLIENT, sport, SERVER, 80);
        let id = id.or_else(|| t.lookup(&key, 0, now).map(|(id, _)| id));
        if let Some(id) = id {
            let c = t.get(id);
            assert_eq!(
                c.tcp().unwrap().state().name(),
                w[1],
                "line {}: {pkt}",
                i + 1
            );
            let kernel_secs: u64 = w[2].parse().unwrap();
            if r.ctinfo != CtInfo::Invalid || msgs.contains("lower timeout") {
                assert_eq!(
                    c.timeout_secs(now) - 1,
                    kernel_secs,
                    "line {}: {pkt}",
                    i + 1
                );
            }
        }
    }
}
