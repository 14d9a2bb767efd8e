//! The host's own packets (`emit`) against frames captured from Linux 6.18
//! (tests/data/kernel-answers.txt, produced as tests/data/README.md says), and the printer on
//! every captured frame.

use nfrs_wire::build::{build_ipv4, FrameCtx};
use nfrs_wire::desc::{mangle, PacketDesc};
use nfrs_wire::emit::{
    echo_reply, icmp_error, record_route_on_receipt, reject_is_silent, tcp_reset, EmitError,
    ResetSender,
};
use nfrs_wire::ipv4;
use nfrs_wire::line::PacketSpec;
use nfrs_wire::print::frame_to_string;

struct Block {
    dev: String,
    sent: Vec<u8>,
    answers: Vec<Vec<u8>>,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn blocks() -> Vec<Block> {
    let text = include_str!("data/kernel-answers.txt");
    let mut out: Vec<Block> = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            [">", d, h] => out.push(Block {
                dev: d.to_string(),
                sent: hex(h),
                answers: Vec::new(),
            }),
            ["<", _, h] => out.last_mut().unwrap().answers.push(hex(h)),
            _ => {}
        }
    }
    assert!(out.len() >= 19);
    out
}

fn ip_of(frame: &[u8]) -> &[u8] {
    let ip = &frame[14..];
    let tl = usize::from(ipv4::Packet::new_checked(ip).unwrap().total_len());
    &ip[..tl]
}

#[test]
fn emitted_packets_match_the_kernel_byte_for_byte() {
    let mut compared = 0;
    let mut silent_rejects = 0;
    let mut ttl_checks = 0;
    let mut arp_replies = 0;
    for (i, b) in blocks().iter().enumerate() {
        if b.sent[12..14] == [8, 6] {
            // ARP: answered for the host's addresses, with the receiving interface's MAC.
            let tpa = std::net::Ipv4Addr::new(b.sent[38], b.sent[39], b.sent[40], b.sent[41]);
            let ours = [
                std::net::Ipv4Addr::new(10, 0, 0, 1),
                std::net::Ipv4Addr::new(192, 0, 2, 1),
            ];
            assert_eq!(
                b.answers.len(),
                usize::from(ours.contains(&tpa)),
                "block {i}"
            );
            for a in &b.answers {
                let mut out = [0u8; 64];
                let n = nfrs_wire::emit::arp_reply(
                    &b.sent,
                    nfrs_wire::ethernet::MacAddr([2, 0, 0, 0, 0, 1]),
                    &mut out,
                )
                .unwrap();
                assert_eq!(&out[..n], &a[..], "block {i}");
                arp_replies += 1;
            }
            continue;
        }
        let sent = ip_of(&b.sent);
        // The packet as the host holds it after receipt: a record-route option gets the
        // receiving interface's address (lab: lan0 10.0.0.1, wan0 192.0.2.1).
        let local = if b.dev == "lan0" {
            std::net::Ipv4Addr::new(10, 0, 0, 1)
        } else {
            std::net::Ipv4Addr::new(192, 0, 2, 1)
        };
        let mut rx = sent.to_vec();
        record_route_on_receipt(&mut rx, local);
        let sd = PacketDesc::parse_ipv4(&rx, 0).unwrap();
        let rejected = matches!((sd.protocol, sd.dport), (6, 23 | 24) | (17, 69..=71));
        for a in &b.answers {
            // Ethernet: back to the sender.
            assert_eq!(&a[..6], &b.sent[6..12], "block {i}");
            assert_eq!(&a[6..12], &b.sent[..6], "block {i}");
            let want = ip_of(a);
            let ad = PacketDesc::parse_ipv4(want, 0).unwrap();
            let ihl = usize::from(ad.ihl);
            let mut out = [0u8; 1600];
            let n = match ad.protocol {
                6 => {
                    let sender = if matches!(sd.dport, 23 | 24) {
                        ResetSender::Reject
                    } else {
                        ResetSender::Stack
                    };
                    tcp_reset(&rx, sender, ad.ttl, &mut out).unwrap()
                }
                1 if ad.icmp_type == 0 => echo_reply(&rx, ad.ttl, ad.ip_id, &mut out).unwrap(),
                1 => {
                    let mut orig = rx.clone();
                    let quoted_ttl = want[ihl + 8 + 8];
                    if quoted_ttl + 1 == sd.ttl {
                        // REJECT in FORWARD quotes the packet after the forwarding TTL decrement.
                        let mut d = sd;
                        mangle::dec_ttl(&mut orig, &mut d);
                    }
                    let rest = u32::from_be_bytes(want[ihl + 4..ihl + 8].try_into().unwrap());
                    icmp_error(
                        &orig,
                        ad.icmp_type,
                        ad.icmp_code,
                        rest,
                        ad.src,
                        ad.ttl,
                        ad.ip_id,
                        1500,
                        &mut out,
                    )
                    .unwrap()
                }
                p => panic!("block {i}: unexpected protocol {p}"),
            };
            assert_eq!(&out[..n], want, "block {i}: {}", frame_to_string(a));
            assert!(
                !(rejected && reject_is_silent(&rx)),
                "block {i}: REJECT answered"
            );
            compared += 1;
        }
        if sd.ttl == 1 {
            // Forwarding a TTL-1 packet: Time Exceeded unless icmp_send's packet rules forbid.
            assert_eq!(
                nfrs_wire::emit::may_answer_with_icmp_error(&rx),
                !b.answers.is_empty(),
                "block {i}: {}",
                frame_to_string(&b.sent)
            );
            ttl_checks += 1;
        }
        if b.answers.is_empty() {
            if rejected && reject_is_silent(&rx) {
                // REJECT after a record-route option was filled in on receipt: silent.
                silent_rejects += 1;
            } else if sd.protocol == 6 {
                // The kernel stayed silent: so must tcp_reset.
                let r = tcp_reset(&rx, ResetSender::Stack, 64, &mut [0u8; 64]);
                assert!(
                    matches!(r, Err(EmitError::IsRst | EmitError::BadChecksum)),
                    "block {i}: {r:?}"
                );
            }
        }
    }
    assert!(compared >= 27, "{compared}");
    assert_eq!(silent_rejects, 3);
    assert_eq!(arp_replies, 2);
    assert!(ttl_checks >= 16, "{ttl_checks}");
}

#[test]
fn every_captured_frame_prints_and_rebuilds() {
    let mut exact = 0;
    for b in blocks() {
        for f in std::iter::once(&b.sent).chain(b.answers.iter()) {
            let text = frame_to_string(f);
            if text.starts_with("arp ") {
                assert!(
                    text.starts_with("arp request sha=02:00:00:00:01:01 spa=10.0.0.2")
                        || text.starts_with("arp reply sha=02:00:00:00:00:01"),
                    "{text}"
                );
                continue;
            }
            let spec = PacketSpec::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let ctx = FrameCtx::default();
            let rebuilt = match build_ipv4(&spec, &ctx) {
                Ok(r) => r,
                Err(e) => {
                    // Only long data printed as a digest cannot be rebuilt.
                    assert!(text.contains("sha1="), "{text}: {e}");
                    continue;
                }
            };
            let mut again = String::new();
            nfrs_wire::print::format_ipv4(&rebuilt, &mut again);
            assert_eq!(again, text);
            // Checksum values are not printed: a spoiled or stale one rebuilds differently.
            if !text.contains("iplen=") && !text.contains("badsum") {
                assert_eq!(rebuilt, ip_of(f), "{text}");
                exact += 1;
            }
        }
    }
    assert!(exact >= 30, "{exact}");
}

#[test]
fn printed_forms_of_kernel_answers() {
    // A few answers spelled out: the printed form is what results compare.
    let bl = blocks();
    let p = |i: usize| frame_to_string(&bl[i].answers[0]);
    assert_eq!(
        p(0),
        "tcp 10.0.0.1:23 > 10.0.0.2:41000 ttl=64 tos=0x00 id=0 df flags=RA seq=0 ack=8 win=0"
    );
    assert_eq!(
        p(1),
        "tcp 10.0.0.1:8080 > 10.0.0.2:41001 ttl=64 tos=0x10 id=0 df flags=RA seq=0 ack=107 win=0"
    );
    assert_eq!(
        p(2),
        "tcp 10.0.0.1:8080 > 10.0.0.2:41002 ttl=64 tos=0x00 id=0 df flags=R seq=3000 ack=0 win=0"
    );
    assert!(p(5).contains("type=3 code=3 inner=\"udp 10.0.0.2:41005 > 10.0.0.1:9999 ttl=64 tos=0x00 id=6 iplen=1028 len=520 payload^64=\\\"x\\\\x00"));
    assert!(p(11).contains("type=3 code=4 mtu=1400 inner=\"udp 10.0.0.2:41011 > 203.0.113.9:5000 ttl=64 tos=0x00 id=12 df iplen=1428 len=520\""));
}
