//! Feeds the IRC and FTP captures of the shared corpus (`../shared/corpus/pcaps/zeek`, real
//! traffic recorded by the Zeek project) through the parsers, without NAT, as the engine runs
//! them for a connection with `CT --helper` on the control port: every data connection the
//! capture shows must go to an address and port a parsed offer or command announced, and
//! malformed offers must announce nothing. (Whether the data connections are then RELATED is
//! the engine's part: tests/scenarios/helpers/pcap-*, recorded from the kernel, replay three of
//! these captures through it.) Skipped when the shared folder is absent.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use nfrs_conntrack::Tuple;
use nfrs_helpers::ftp::{self, FtpInfo};
use nfrs_helpers::{irc, Dir};

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
    announced_and_used: usize,
    /// Announced (address, port) pairs no data connection used.
    pending: Vec<(u32, u16)>,
}

/// One control connection as the helpers see it (no NAT).
struct Control {
    orig: Tuple,
    seen_reply: bool,
    ftp: FtpInfo,
}

/// Runs the parsers over every control-connection packet as the engine does (IRC: the
/// client's packets once established; FTP: packets starting right after a newline, the address
/// the sender's own) and collects the (address, port) pairs they announce; a data connection's
/// SYN uses the pair it goes to.
fn run(path: &PathBuf) -> Outcome {
    let mut controls: HashMap<Tuple, Control> = HashMap::new();
    let mut announced: Vec<(u32, u16)> = Vec::new();
    let mut seen_data: HashSet<Tuple> = HashSet::new();
    let mut o = Outcome {
        data_syns: 0,
        announced_and_used: 0,
        pending: Vec::new(),
    };
    for (_, f) in &frames(path) {
        let Some(s) = tcp(f) else { continue };
        let ctl = |p: u16| p == ftp::FTP_PORT || p == irc::IRC_PORT;
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
            let c = controls.entry(orig).or_insert(Control {
                orig,
                seen_reply: false,
                ftp: FtpInfo::default(),
            });
            if dir == Dir::Reply {
                c.seen_reply = true;
            }
            if !c.seen_reply || s.payload.is_empty() {
                continue;
            }
            let sender = if dir == Dir::Original {
                c.orig.src
            } else {
                c.orig.dst
            };
            if c.orig.dst_l4 == irc::IRC_PORT {
                if dir == Dir::Original {
                    let offer = irc::find_offer(s.payload, sender, sender, &mut |_, _| {});
                    announced.extend(offer.map(|d| (sender, d.port)));
                }
                continue;
            }
            if c.ftp.after_newline(dir, s.seq) {
                match ftp::find_command(s.payload, dir, sender) {
                    ftp::FtpFound::Cmd(cmd) if cmd.ip == sender => {
                        announced.push((cmd.ip, cmd.port))
                    }
                    ftp::FtpFound::Partial(k) => panic!("{}: partial {k:?}", path.display()),
                    _ => {}
                }
            }
            if s.payload.last() == Some(&b'\n') {
                let next = s.seq.wrapping_add(s.payload.len() as u32);
                c.ftp.record_newline(dir, next);
            }
        } else if s.flags & 0x12 == 0x02 && seen_data.insert(s.t) {
            o.data_syns += 1;
            if let Some(i) = announced.iter().position(|&a| a == (s.t.dst, s.t.dst_l4)) {
                announced.remove(i);
                o.announced_and_used += 1;
            }
        }
    }
    o.pending = announced;
    o
}

#[test]
fn zeek_irc_and_ftp_captures() {
    let Some(z) = shared() else { return };
    // Captures with data connections: every one of them was announced.
    for f in [
        "irc-dcc-send.pcapng",
        "irc-dcc-first-command.pcap",
        "ftp/ipv4.pcap",
        "ftp/retr.pcap",
        "ftp/bigtransfer.pcap",
    ] {
        let o = run(&z.join(f));
        println!(
            "{f}: {} data connections, {} announced by a parsed command",
            o.data_syns, o.announced_and_used
        );
        assert!(o.data_syns >= 1, "{f}");
        assert_eq!(o.announced_and_used, o.data_syns, "{f}");
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
