//! Feeds the IRC and FTP captures of the shared corpus (`../shared/corpus/pcaps/zeek`, real
//! traffic recorded by the Zeek project) through the helpers, without NAT, as a conntrack with
//! `CT --helper` on the control port would: every data connection the capture shows must come
//! in RELATED to its control connection, and malformed offers must create nothing. Skipped when
//! the shared folder is absent.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use nfrs_helpers::{ConnId, Dir, ExpectFormat, HelperKind, Helpers, Master, Tuple, Verdict};

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("NFRS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"));
    let z = p.join("corpus/pcaps/zeek");
    if z.is_dir() {
        Some(z)
    } else {
        println!("skipped: ../shared/corpus absent");
        None
    }
}

/// (time in ns, Ethernet frame) of every packet.
fn frames(path: &PathBuf) -> Vec<(u64, Vec<u8>)> {
    let file = std::fs::File::open(path).unwrap();
    let mut out = Vec::new();
    if path.extension().is_some_and(|e| e == "pcapng") {
        let mut r = pcap_file::pcapng::PcapNgReader::new(file).unwrap();
        while let Some(b) = r.next_block() {
            if let pcap_file::pcapng::Block::EnhancedPacket(p) = b.unwrap() {
                out.push((p.timestamp.as_nanos() as u64, p.data.into_owned()));
            }
        }
    } else {
        let mut r = pcap_file::pcap::PcapReader::new(file).unwrap();
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            out.push((p.timestamp.as_nanos() as u64, p.data.into_owned()));
        }
    }
    out
}

struct Seg<'a> {
    t: Tuple,
    flags: u8,
    seq: u32,
    payload: &'a [u8],
}

/// IPv4/TCP inside an Ethernet frame.
fn tcp(f: &[u8]) -> Option<Seg<'_>> {
    if f.len() < 14 + 20 || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &f[14..];
    let ihl = (ip[0] & 0x0f) as usize * 4;
    let total = u16::from_be_bytes([ip[2], ip[3]]) as usize;
    if ip[9] != 6 || ip.len() < total || total < ihl + 20 {
        return None;
    }
    let src = u32::from_be_bytes(ip[12..16].try_into().unwrap());
    let dst = u32::from_be_bytes(ip[16..20].try_into().unwrap());
    let th = &ip[ihl..total];
    let doff = (th[12] >> 4) as usize * 4;
    Some(Seg {
        t: Tuple::ports(
            6,
            src,
            u16::from_be_bytes([th[0], th[1]]),
            dst,
            u16::from_be_bytes([th[2], th[3]]),
        ),
        flags: th[13],
        seq: u32::from_be_bytes(th[4..8].try_into().unwrap()),
        payload: th.get(doff..)?,
    })
}

struct Outcome {
    data_syns: usize,
    related: usize,
    pending: Vec<String>,
}

fn run(path: &PathBuf) -> Outcome {
    let mut h = Helpers::default();
    // Control connections by original tuple.
    let mut masters: HashMap<Tuple, (Master, bool)> = HashMap::new();
    let mut seen_data: HashSet<Tuple> = HashSet::new();
    let mut o = Outcome {
        data_syns: 0,
        related: 0,
        pending: Vec::new(),
    };
    let fr = frames(path);
    let t0 = fr.first().map_or(0, |f| f.0);
    let mut now = 0;
    for (ts, f) in &fr {
        now = ts - t0 + 1;
        let Some(s) = tcp(f) else { continue };
        let ctl = |p: u16| p == 21 || p == 6667;
        if ctl(s.t.dst_l4) || ctl(s.t.src_l4) {
            let orig = if ctl(s.t.dst_l4) {
                s.t
            } else {
                s.t.reply().unwrap()
            };
            let dir = if orig == s.t {
                Dir::Original
            } else {
                Dir::Reply
            };
            let n = masters.len() as u32;
            let (m, seen_reply) = masters.entry(orig).or_insert_with(|| {
                let m = Master {
                    id: ConnId(n + 1),
                    orig,
                    reply: orig.reply().unwrap(),
                    nat: false,
                    zone: 0,
                };
                let kind = if orig.dst_l4 == 21 {
                    HelperKind::Ftp
                } else {
                    HelperKind::Irc
                };
                h.assign(&m, kind);
                (m, false)
            });
            if dir == Dir::Reply {
                *seen_reply = true;
            }
            let established = *seen_reply;
            let r = h.help(m, dir, established, s.seq, s.payload, now, &mut |r| r / 2);
            assert_eq!(r.verdict, Verdict::Accept, "{}", path.display());
            assert!(r.rewrite.is_none(), "no NAT, no rewrite");
        } else if s.flags & 0x12 == 0x02 && seen_data.insert(s.t) {
            o.data_syns += 1;
            if let Some(e) = h.expect_new(&s.t, 0, now) {
                assert!(e.nat.is_none());
                o.related += 1;
            }
        }
    }
    o.pending = h.expect_listing(now, ExpectFormat::Proc, false);
    o
}

#[test]
fn zeek_irc_and_ftp_captures() {
    let Some(z) = shared() else { return };
    // Captures with data connections: every one of them is RELATED.
    for f in [
        "irc-dcc-send.pcapng",
        "irc-dcc-first-command.pcap",
        "ftp/ipv4.pcap",
        "ftp/retr.pcap",
        "ftp/bigtransfer.pcap",
    ] {
        let o = run(&z.join(f));
        println!(
            "{f}: {} data connections, {} RELATED",
            o.data_syns, o.related
        );
        assert!(o.data_syns >= 1, "{f}");
        assert_eq!(o.related, o.data_syns, "{f}");
    }
    // Both offers of the IRC capture were used: nothing is left pending.
    let o = run(&z.join("irc-dcc-send.pcapng"));
    assert!(o.pending.is_empty(), "{:?}", o.pending);
    // Malformed offers (and server-sent ones): nothing expected.
    for f in [
        "irc-dcc-send-malformed-host.pcap",
        "irc-dcc-send-malformed-port.pcap",
        "irc-basic.pcap",
    ] {
        let o = run(&z.join(f));
        assert!(o.pending.is_empty(), "{f}: {:?}", o.pending);
    }
}
