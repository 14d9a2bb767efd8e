#![allow(clippy::field_reassign_with_default)]

use super::*;
use crate::listing::{Format, Style};
use crate::tcp::TcpState;
use crate::testutil::*;

const C: &str = "10.0.0.2";
const S: &str = "198.51.100.1";

struct Lab {
    t: ConnTable,
    now: Nanos,
}

impl Lab {
    fn new() -> Lab {
        Lab::with(CtConfig::default())
    }
    fn with(mut cfg: CtConfig) -> Lab {
        cfg.buckets = cfg.buckets.min(1024);
        Lab {
            t: ConnTable::new(cfg),
            now: 0,
        }
    }
    /// Tracks and, when new, confirms (the packet survives).
    fn pass(&mut self, src: &str, dst: &str, proto: u8, l4: &[u8]) -> Tracked {
        let p = Packet {
            src: ip(src),
            dst: ip(dst),
            proto,
            later_fragment: false,
            l4,
        };
        let r = self.t.track(&p, 0, Hook::PreRouting, self.now);
        if r.unconfirmed {
            self.t.confirm(r.conn.unwrap(), self.now).unwrap();
        }
        r
    }
    fn c2s(&mut self, flags: &str, seq: u32, ack: u32, win: u16, payload: usize) -> Tracked {
        let l4 = tcp(ip(C), 40000, ip(S), 80, flags, seq, ack, win, &[], payload);
        self.pass(C, S, 6, &l4)
    }
    fn s2c(&mut self, flags: &str, seq: u32, ack: u32, win: u16, payload: usize) -> Tracked {
        let l4 = tcp(ip(S), 80, ip(C), 40000, flags, seq, ack, win, &[], payload);
        self.pass(S, C, 6, &l4)
    }
    fn state(&self, r: &Tracked) -> TcpState {
        self.t.get(r.conn.unwrap()).tcp().unwrap().state()
    }
    fn secs(&self, r: &Tracked) -> u64 {
        self.t.get(r.conn.unwrap()).timeout_secs(self.now)
    }
    fn handshake(&mut self) -> Tracked {
        self.c2s("S", 1000, 0, 64240, 0);
        self.s2c("SA", 5000, 1001, 65160, 0);
        self.c2s("A", 1001, 5001, 502, 0)
    }
}

#[test]
fn handshake_new_reply_established_assured() {
    let mut l = Lab::new();
    // Kernel rule: original SYN in NONE -> SYN_SENT, ctinfo NEW, timeout syn_sent (120 s).
    let r = l.c2s("S", 1000, 0, 64240, 0);
    assert_eq!((r.ctinfo, r.unconfirmed), (CtInfo::New, true));
    assert_eq!((l.state(&r), l.secs(&r)), (TcpState::SynSent, 120));
    // Kernel rule: reply SYN/ACK in SYN_SENT -> SYN_RECV, timeout syn_recv (60 s).
    l.now = SEC;
    let r = l.s2c("SA", 5000, 1001, 65160, 0);
    assert_eq!(
        (r.ctinfo, l.state(&r), l.secs(&r)),
        (CtInfo::EstablishedReply, TcpState::SynRecv, 60)
    );
    assert!(l.t.get(r.conn.unwrap()).has(status::SEEN_REPLY));
    // Kernel rule: original ACK in SYN_RECV -> ESTABLISHED, and it sets ASSURED.
    let r = l.c2s("A", 1001, 5001, 502, 0);
    assert_eq!(
        (r.ctinfo, l.state(&r), l.secs(&r)),
        (CtInfo::Established, TcpState::Established, 432000)
    );
    assert!(l.t.get(r.conn.unwrap()).has(status::ASSURED));
}

#[test]
fn full_close_reaches_time_wait_and_listing_matches_kernel_line() {
    let mut l = Lab::new();
    // The recorded flow was MASQUERADEd: reply goes to the router's address.
    let syn = tcp(ip(C), 40000, ip(S), 80, "S", 1000, 0, 64240, &[], 0);
    let r = l.t.track(
        &Packet {
            src: ip(C),
            dst: ip(S),
            proto: 6,
            later_fragment: false,
            l4: &syn,
        },
        0,
        Hook::PreRouting,
        0,
    );
    let id = r.conn.unwrap();
    l.t.set_reply(id, Tuple::ports(6, ip(S), 80, ip("198.51.100.254"), 40000));
    l.t.confirm(id, 0).unwrap();
    let l4 = tcp(
        ip(S),
        80,
        ip("198.51.100.254"),
        40000,
        "SA",
        5000,
        1001,
        65160,
        &[],
        0,
    );
    l.pass(S, "198.51.100.254", 6, &l4);
    l.c2s("A", 1001, 5001, 502, 0);
    // Kernel rules: orig FIN in ESTABLISHED -> FIN_WAIT; reply ACK -> CLOSE_WAIT;
    // reply FIN -> LAST_ACK; orig ACK in LAST_ACK -> TIME_WAIT.
    let r = l.c2s("FA", 1001, 5001, 502, 0);
    assert_eq!(l.state(&r), TcpState::FinWait);
    let rep = |l: &mut Lab, f: &str, seq: u32, ack: u32| {
        let b = tcp(
            ip(S),
            80,
            ip("198.51.100.254"),
            40000,
            f,
            seq,
            ack,
            509,
            &[],
            0,
        );
        l.pass(S, "198.51.100.254", 6, &b)
    };
    let r = rep(&mut l, "A", 5001, 1002);
    assert_eq!(l.state(&r), TcpState::CloseWait);
    let r = rep(&mut l, "FA", 5001, 1002);
    assert_eq!(l.state(&r), TcpState::LastAck);
    let r = l.c2s("A", 1002, 5002, 502, 0);
    assert_eq!((l.state(&r), l.secs(&r)), (TcpState::TimeWait, 120));
    l.now = 10 * SEC - 1;
    let want = "ipv4     2 tcp      6 110 TIME_WAIT src=10.0.0.2 dst=198.51.100.1 sport=40000 dport=80 src=198.51.100.1 dst=198.51.100.254 sport=80 dport=40000 [ASSURED] mark=0 use=1";
    let recorded = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/kernel-conntrack-L-extended.txt"
    ))
    .unwrap();
    assert!(
        recorded.lines().any(|x| x == want),
        "the line is a recorded kernel line"
    );
    assert_eq!(
        l.t.listing(
            l.now,
            Style {
                format: Format::ConntrackExtended,
                timeout: true
            }
        ),
        vec![want.to_string()]
    );
}

#[test]
fn syn_ack_from_client_and_fin_before_reply_are_invalid() {
    let mut l = Lab::new();
    l.c2s("S", 1000, 0, 64240, 0);
    // Kernel rule: original SYN/ACK in SYN_SENT is invalid (client cannot send SYN then SYN/ACK).
    let r = l.c2s("SA", 1000, 1, 64240, 0);
    assert_eq!(r.ctinfo, CtInfo::Invalid);
    assert_eq!(
        r.log.unwrap().to_string(),
        "packet (index 1) in dir 0 invalid, state SYN_SENT"
    );
    // Kernel rule: original FIN in SYN_SENT is invalid (wait for the SYN/ACK first).
    let r = l.c2s("FA", 1001, 0, 64240, 0);
    assert_eq!(r.ctinfo, CtInfo::Invalid);
}

#[test]
fn reply_ack_in_syn_sent_is_ignored_not_invalid() {
    let mut l = Lab::new();
    let first = l.c2s("S", 1000, 0, 64240, 0);
    // Kernel rule: reply ACK in SYN_SENT is ignored (may be a half-open connection).
    let r = l.s2c("A", 7, 1001, 100, 0);
    assert_eq!(r.ctinfo, CtInfo::EstablishedReply);
    assert_eq!(
        r.log.unwrap().to_string(),
        "packet (index 3) in dir 1 ignored, state SYN_SENT"
    );
    assert_eq!(l.state(&first), TcpState::SynSent);
}

#[test]
fn simultaneous_open_goes_through_syn_sent2() {
    let mut l = Lab::new();
    l.c2s("S", 1000, 0, 64240, 0);
    // Kernel rule: reply SYN in SYN_SENT -> SYN_SENT2 (simultaneous open).
    let r = l.s2c("S", 5000, 0, 65160, 0);
    assert_eq!(l.state(&r), TcpState::SynSent2);
    // Kernel rule: original SYN/ACK in SYN_SENT2 -> SYN_RECV.
    let r = l.c2s("SA", 1000, 5001, 64240, 0);
    assert_eq!(l.state(&r), TcpState::SynRecv);
    // Kernel rule: in simultaneous open the reply ACK completes the handshake.
    let r = l.s2c("A", 5001, 1001, 65160, 0);
    assert_eq!(l.state(&r), TcpState::Established);
}

#[test]
fn rst_closes_with_close_timeout_and_rst_to_syn_kills() {
    let mut l = Lab::new();
    l.handshake();
    // Kernel rule: RST in ESTABLISHED -> CLOSE, timeout close (10 s).
    let r = l.s2c("R", 5001, 0, 0, 0);
    assert_eq!((l.state(&r), l.secs(&r)), (TcpState::Close, 10));

    let mut l = Lab::new();
    let syn = l.c2s("S", 1000, 0, 64240, 0);
    // Kernel rule: a RST that is the only reply deletes the connection at once.
    let r = l.s2c("RA", 0, 1001, 0, 0);
    assert_eq!(r.ctinfo, CtInfo::EstablishedReply);
    assert_eq!(r.conn, syn.conn);
    let r = l.c2s("S", 2000, 0, 64240, 0);
    assert_eq!(r.ctinfo, CtInfo::New, "a fresh connection");
}

#[test]
fn syn_on_closed_time_wait_reopens() {
    let mut l = Lab::new();
    l.handshake();
    l.c2s("FA", 1001, 5001, 502, 0);
    l.s2c("FA", 5001, 1002, 509, 0);
    let r = l.c2s("A", 1002, 5002, 502, 0);
    assert_eq!(l.state(&r), TcpState::TimeWait);
    // Kernel rule: original SYN in TIME_WAIT after a FIN close: delete and start over.
    let r = l.c2s("S", 900000, 0, 64240, 0);
    assert_eq!((r.ctinfo, l.state(&r)), (CtInfo::New, TcpState::SynSent));
    assert_eq!(l.t.count(), 1);
}

#[test]
fn stray_ack_is_picked_up_with_loose_and_invalid_without() {
    let mut l = Lab::new();
    // Kernel rule (tcp_loose=1): an ACK in NONE starts ESTABLISHED, but without a reply the
    // timeout is capped at the unacknowledged timeout (300 s).
    let r = l.c2s("A", 1001, 5001, 502, 0);
    assert_eq!(
        (r.ctinfo, l.state(&r), l.secs(&r)),
        (CtInfo::New, TcpState::Established, 300)
    );
    let mut cfg = CtConfig::default();
    cfg.tcp_loose = false;
    let mut l = Lab::with(cfg);
    let r = l.c2s("A", 1001, 5001, 502, 0);
    assert_eq!((r.ctinfo, r.log), (CtInfo::Invalid, None));
    assert_eq!(l.t.count(), 0, "the unconfirmed entry vanished");
}

#[test]
fn flag_checks_and_truncation() {
    let mut l = Lab::new();
    // Kernel rule (tcp_valid_flags): FIN alone, SYN+FIN, no flags are invalid combinations.
    for f in ["F", "SF", ""] {
        let r = l.c2s(f, 1, 0, 1, 0);
        assert_eq!(r.log, Some(Reason::TcpInvalidFlags), "{f:?}");
    }
    let mut bad = tcp(ip(C), 1, ip(S), 2, "S", 1, 0, 1, &[], 0);
    bad[12] = 0x40; // data offset 16 bytes
    let r = l.pass(C, S, 6, &bad);
    assert_eq!(r.log, Some(Reason::TcpTruncated));
    let mut bad = tcp(ip(C), 1, ip(S), 2, "S", 1, 0, 1, &[], 0);
    bad[16] ^= 0xff;
    assert_eq!(l.pass(C, S, 6, &bad).log, Some(Reason::TcpBadChecksum));
    // Checksums are only verified in PREROUTING.
    let p = Packet {
        src: ip(C),
        dst: ip(S),
        proto: 6,
        later_fragment: false,
        l4: &bad,
    };
    assert_eq!(l.t.track(&p, 0, Hook::LocalOut, 0).ctinfo, CtInfo::New);
    assert_eq!(l.t.count(), 1);
}

#[test]
fn syn_retransmission_does_not_extend_timeout() {
    let mut l = Lab::new();
    let r = l.c2s("S", 1000, 0, 64240, 0);
    l.now = 50 * SEC;
    l.c2s("S", 1000, 0, 64240, 0);
    assert_eq!(l.secs(&r), 70);
}

#[test]
fn window_upper_bound_message_and_invalid() {
    let mut l = Lab::new();
    l.handshake();
    // The server advertised 65160 from ack 1001: the client may send up to 1001 + 65160.
    // A little beyond is tolerated (ignored, remembered) as the kernel does.
    let r = l.c2s("A", 1001 + 65160 + 1, 5001, 502, 0);
    assert_eq!(
        (r.ctinfo, r.log),
        (CtInfo::Established, Some(Reason::TcpBytesMore(2)))
    );
    // Far beyond: the kernel's line (KERNEL-ORACLE-NOTES: seq 900000 against this handshake).
    let r = l.c2s("A", 900000, 5001, 502, 0);
    assert_eq!(r.ctinfo, CtInfo::Invalid);
    assert_eq!(
        r.log.unwrap().to_string(),
        "SEQ is over upper bound 66162 (over the window of the receiver)"
    );
    // be_liberal accepts it silently.
    let mut cfg = CtConfig::default();
    cfg.tcp_be_liberal = true;
    let mut l = Lab::with(cfg);
    l.handshake();
    let r = l.c2s("A", 900000, 5001, 502, 0);
    assert_eq!((r.ctinfo, r.log), (CtInfo::Established, None));
}

#[test]
fn ack_of_unseen_data_is_invalid_and_old_data_is_ignored() {
    let mut l = Lab::new();
    l.handshake();
    // Bound III: acknowledging bytes the server never sent.
    let r = l.c2s("A", 1001, 9000, 502, 0);
    assert_eq!(
        r.log.unwrap().to_string(),
        "ACK is over upper bound 5002 (ACKed data not seen yet)"
    );
    assert_eq!(r.ctinfo, CtInfo::Invalid);
    // Bound II: a segment entirely before what the receiver's window can still take.
    for i in 0..3 {
        l.c2s("PA", 1001 + i * 50000, 5001, 65535, 50000);
        l.s2c("A", 5001, 1001 + (i + 1) * 50000, 65535, 0);
    }
    let r = l.c2s("PA", 1001, 5001, 502, 10);
    assert_eq!(
        r.ctinfo,
        CtInfo::Established,
        "ignored packets keep their state"
    );
    assert!(r
        .log
        .unwrap()
        .to_string()
        .starts_with("SEQ is under lower bound "));
}

#[test]
fn window_scale_needs_both_sides() {
    let mut l = Lab::new();
    let ws = [1, 3, 3, 7];
    let syn = tcp(ip(C), 40000, ip(S), 80, "S", 1000, 0, 64240, &ws, 0);
    l.pass(C, S, 6, &syn);
    let sa = tcp(ip(S), 80, ip(C), 40000, "SA", 5000, 1001, 1000, &ws, 0);
    let r = l.pass(S, C, 6, &sa);
    let t = *l.t.get(r.conn.unwrap()).tcp().unwrap();
    assert_eq!((t.seen[0].td_scale, t.seen[1].td_scale), (7, 7));
    // A scaled window of 1000 << 7 lets the client send far beyond 1000 bytes.
    l.c2s("A", 1001, 5001, 502, 0);
    l.s2c("A", 5001, 1001, 1000, 0);
    let r = l.c2s("PA", 1001 + 100000, 5001, 502, 100);
    assert_eq!(r.ctinfo, CtInfo::Established);

    let mut l = Lab::new();
    l.pass(C, S, 6, &syn);
    let sa = tcp(ip(S), 80, ip(C), 40000, "SA", 5000, 1001, 1000, &[], 0);
    let r = l.pass(S, C, 6, &sa);
    let t = *l.t.get(r.conn.unwrap()).tcp().unwrap();
    assert_eq!((t.seen[0].td_scale, t.seen[1].td_scale), (0, 0));
}

#[test]
fn udp_unreplied_replied_and_stream() {
    let mut l = Lab::new();
    let q = udp(ip(C), 5353, ip(S), 53, 4);
    let a = udp(ip(S), 53, ip(C), 5353, 4);
    let r = l.pass(C, S, 17, &q);
    let id = r.conn.unwrap();
    assert_eq!((r.ctinfo, l.secs(&r)), (CtInfo::New, 30));
    l.now = SEC;
    let r = l.pass(S, C, 17, &a);
    assert_eq!((r.ctinfo, l.secs(&r)), (CtInfo::EstablishedReply, 30));
    l.now = 2 * SEC;
    let r = l.pass(C, S, 17, &q);
    // Replied but within 2 s of the first packet: still 30 s, not assured.
    assert_eq!((r.ctinfo, l.secs(&r)), (CtInfo::Established, 30));
    assert!(!l.t.get(id).has(status::ASSURED));
    l.now = 2 * SEC + 1;
    let r = l.pass(S, C, 17, &a);
    assert_eq!(l.secs(&r), 120);
    assert!(l.t.get(id).has(status::ASSURED));
}

#[test]
fn expiry_on_the_injected_clock_reports_and_reaps() {
    let mut l = Lab::new();
    l.pass(C, S, 17, &udp(ip(C), 1, ip(S), 2, 0));
    l.pass(C, S, 1, &icmp_echo(8, 7, 1));
    l.pass(C, S, 253, &[0u8; 8]);
    let mut gone = Vec::new();
    assert_eq!(
        l.t.expire(30 * SEC - 1, &mut |_, c| gone.push(c.tuple[0].proto)),
        0
    );
    assert_eq!(
        l.t.expire(30 * SEC, &mut |_, c| gone.push(c.tuple[0].proto)),
        2
    );
    gone.sort();
    assert_eq!(gone, vec![1, 17]);
    assert_eq!(l.t.next_deadline(), Some(600 * SEC));
    // Lazily: a lookup after the deadline does not find it and a new entry is created.
    l.now = 600 * SEC;
    let r = l.pass(C, S, 253, &[0u8; 8]);
    assert_eq!(r.ctinfo, CtInfo::New);
    assert_eq!(l.t.count(), 1);
}

#[test]
fn icmp_echo_and_answers_without_request() {
    let mut l = Lab::new();
    let r = l.pass(C, S, 1, &icmp_echo(8, 77, 1));
    assert_eq!((r.ctinfo, l.secs(&r)), (CtInfo::New, 30));
    let r = l.pass(S, C, 1, &icmp_echo(0, 77, 1));
    assert_eq!(r.ctinfo, CtInfo::EstablishedReply);
    // An echo reply that answers nothing is invalid; router advertisement (9) is untrackable.
    assert_eq!(
        l.pass(S, C, 1, &icmp_echo(0, 78, 1)).ctinfo,
        CtInfo::Invalid
    );
    assert_eq!(l.pass(S, C, 1, &icmp_echo(9, 0, 0)).ctinfo, CtInfo::Invalid);
    assert_eq!(
        l.pass(S, C, 1, &icmp_echo(19, 0, 0)).log,
        Some(Reason::IcmpInvalidType)
    );
    assert_eq!(l.t.count(), 1);
}

#[test]
fn icmp_error_is_related_to_the_quoted_connection() {
    let mut l = Lab::new();
    let q = udp(ip(C), 41001, ip(S), 69, 10);
    let id = l.pass(C, S, 17, &q).conn;
    // Port unreachable from the server quoting the client's datagram: RELATED, reply side.
    let e = icmp_error(3, 3, ip(C), ip(S), 17, &q);
    let r = l.pass(S, C, 1, &e);
    assert_eq!((r.ctinfo, r.conn), (CtInfo::RelatedReply, id));
    // Same error sent to another address: the kernel refuses it.
    let r = l.pass(S, "10.0.0.99", 1, &e);
    assert_eq!(r.ctinfo, CtInfo::Invalid);
    assert_eq!(
        r.log.unwrap().to_string(),
        "outer daddr 10.0.0.99 != inner 10.0.0.2"
    );
    // Quoting an unknown flow: invalid, no message.
    let e2 = icmp_error(3, 3, ip(C), ip(S), 17, &udp(ip(C), 1, ip(S), 2, 0));
    assert_eq!(l.pass(S, C, 1, &e2), Tracked::invalid(None));
}

#[test]
fn early_drop_evicts_unassured_entries_only() {
    let mut cfg = CtConfig::default();
    cfg.max = 2;
    cfg.buckets = 1;
    let mut l = Lab::with(cfg);
    let a = l.pass(C, S, 17, &udp(ip(C), 1, ip(S), 2, 0));
    l.pass(C, S, 17, &udp(ip(C), 3, ip(S), 4, 0));
    // Full: early drop removes the unassured entries of the (only) bucket.
    let r = l.pass(C, S, 17, &udp(ip(C), 5, ip(S), 6, 0));
    assert_eq!(r.ctinfo, CtInfo::New);
    assert_eq!(l.t.count(), 1);
    let _ = a;

    // With only assured entries nothing can go: the packet is dropped with the message.
    let mut cfg = CtConfig::default();
    cfg.max = 1;
    cfg.buckets = 1;
    let mut l = Lab::with(cfg);
    l.handshake();
    l.t.netns = Some(4026532449);
    let r = l.pass(C, S, 17, &udp(ip(C), 5, ip(S), 6, 0));
    assert!(r.drop);
    assert_eq!(r.ctinfo, CtInfo::Invalid);
    assert_eq!(
        r.table_full.unwrap().to_string(),
        "nf_conntrack: nf_conntrack: table full in netns 4026532449, dropping packet"
    );
    // Rate limited: 10 messages per 5 s.
    let printed = (0..20)
        .filter(|_| {
            l.pass(C, S, 17, &udp(ip(C), 5, ip(S), 6, 0))
                .table_full
                .is_some()
        })
        .count();
    assert_eq!(printed, 9);
}

#[test]
fn early_drop_looks_at_eight_buckets_only() {
    let mut cfg = CtConfig::default();
    cfg.max = 40;
    cfg.buckets = 64;
    let mut l = Lab::with(cfg);
    // Fill with unassured entries; find a new tuple whose 8 buckets hold none of them.
    let mut used = [false; 64];
    let mut port = 1;
    while l.t.count() < 40 {
        let t = Tuple::ports(17, ip(C), port, ip(S), 9);
        let (b0, b1) = (l.t.bucket(&t, 0), l.t.bucket(&t.reply().unwrap(), 0));
        if b0 < 32 && b1 < 32 {
            l.pass(C, S, 17, &udp(ip(C), port, ip(S), 9, 0));
            used[b0] = true;
            used[b1] = true;
        }
        port += 1;
    }
    let mut probe = 20000;
    loop {
        let t = Tuple::ports(17, ip(C), probe, ip(S), 9);
        let b = l.t.bucket(&t, 0);
        if (b..b + 8).all(|x| !used[x % 64]) {
            break;
        }
        probe += 1;
    }
    let r = l.pass(C, S, 17, &udp(ip(C), probe, ip(S), 9, 0));
    assert!(r.drop, "no victim within 8 buckets");
}

#[test]
fn unconfirmed_entries_are_invisible_and_vanish_on_discard() {
    let mut l = Lab::new();
    let q = udp(ip(C), 1, ip(S), 2, 0);
    let p = Packet {
        src: ip(C),
        dst: ip(S),
        proto: 17,
        later_fragment: false,
        l4: &q,
    };
    let r = l.t.track(&p, 0, Hook::PreRouting, 0);
    assert!(r.unconfirmed);
    assert_eq!(l.t.count(), 1);
    assert!(l
        .t
        .lookup(&Tuple::ports(17, ip(C), 1, ip(S), 2), 0, 0)
        .is_none());
    assert!(l.t.listing(0, Style::RESULTS).is_empty());
    l.t.discard(r.conn.unwrap());
    assert_eq!(l.t.count(), 0);
    // Zones separate otherwise equal tuples.
    let r = l.t.track(&p, 0, Hook::PreRouting, 0);
    l.t.confirm(r.conn.unwrap(), 0).unwrap();
    let r5 = l.t.track(&p, 5, Hook::PreRouting, 0);
    assert_eq!(r5.ctinfo, CtInfo::New);
}

#[test]
fn later_fragments_are_not_tracked() {
    let mut l = Lab::new();
    let p = Packet {
        src: ip(C),
        dst: ip(S),
        proto: 17,
        later_fragment: true,
        l4: &[1, 2, 3],
    };
    assert_eq!(
        l.t.track(&p, 0, Hook::PreRouting, 0),
        Tracked::invalid(None)
    );
}

#[test]
fn gre_unreplied_then_stream_and_assured() {
    let mut l = Lab::new();
    let v0 = [0u8, 0, 8, 0, 1, 2, 3, 4];
    let r = l.pass(C, S, 47, &v0);
    let id = r.conn.unwrap();
    assert_eq!((r.ctinfo, l.secs(&r)), (CtInfo::New, 30));
    let r = l.pass(S, C, 47, &v0);
    // The first reply still refreshes with the unreplied timeout (as measured: 29 s left).
    assert_eq!((r.ctinfo, l.secs(&r)), (CtInfo::EstablishedReply, 30));
    assert!(!l.t.get(id).has(status::ASSURED));
    let r = l.pass(C, S, 47, &v0);
    assert_eq!((r.ctinfo, l.secs(&r)), (CtInfo::Established, 180));
    assert!(l.t.get(id).has(status::ASSURED));
    // Version 1 (PPTP): the call id is the destination key; non-PPP payload is untrackable.
    let v1 = [0x30u8, 0x81, 0x88, 0x0b, 0, 0, 0x12, 0x34];
    let r = l.pass(C, S, 47, &v1);
    assert_eq!(l.t.get(r.conn.unwrap()).tuple[0].dst_l4, 0x1234);
    let bad = [0x30u8, 0x81, 0x08, 0x00, 0, 0, 0x12, 0x34];
    assert_eq!(l.pass(C, S, 47, &bad).ctinfo, CtInfo::Invalid);
}

#[test]
fn expire_follows_refreshes_and_outside_changes() {
    let mut l = Lab::new();
    let q = udp(ip(C), 1, ip(S), 2, 0);
    let id = l.pass(C, S, 17, &q).conn.unwrap();
    l.now = 20 * SEC;
    l.pass(C, S, 17, &q);
    let mut n = 0;
    assert_eq!(l.t.expire(31 * SEC, &mut |_, _| n += 1), 0);
    assert_eq!(l.t.expire(50 * SEC, &mut |_, _| n += 1), 1);
    assert_eq!(n, 1);
    let id2 = l.pass(C, S, 17, &q).conn.unwrap();
    assert_eq!(id2, id, "the slot is reused");
    l.t.get_mut(id2).timeout = 21 * SEC;
    l.t.timeout_changed(id2);
    assert_eq!(l.t.expire(21 * SEC, &mut |_, _| {}), 1);
    assert_eq!(l.t.count(), 0);
}

#[test]
fn generated_answers_are_related_the_other_way() {
    assert_eq!(CtInfo::New.attached(), CtInfo::RelatedReply);
    assert_eq!(CtInfo::Established.attached(), CtInfo::RelatedReply);
    assert_eq!(CtInfo::EstablishedReply.attached(), CtInfo::Related);
    assert_eq!(CtInfo::RelatedReply.attached(), CtInfo::Related);
}

#[test]
fn resizing_buckets_keeps_every_entry_findable() {
    let mut l = Lab::new();
    for p in 1..200u16 {
        l.pass(C, S, 17, &udp(ip(C), p, ip(S), 53, 0));
    }
    l.t.set_sysctl("net.netfilter.nf_conntrack_buckets", "7")
        .unwrap();
    for p in 1..200u16 {
        let r = l.pass(S, C, 17, &udp(ip(S), 53, ip(C), p, 0));
        assert_eq!(r.ctinfo, CtInfo::EstablishedReply, "port {p}");
    }
    assert_eq!(l.t.count(), 199);
    assert!(l
        .t
        .set_sysctl("net.netfilter.nf_conntrack_buckets", "0")
        .is_err());
}

#[test]
fn confirm_still_catches_a_clash_after_something_was_linked() {
    // Two unconfirmed entries for the same flow (as with parallel packets): the first confirm
    // wins, the second sees the clash even though its own `track` had missed the tuple.
    let mut l = Lab::new();
    let q = udp(ip(C), 1, ip(S), 2, 0);
    let p = Packet {
        src: ip(C),
        dst: ip(S),
        proto: 17,
        later_fragment: false,
        l4: &q,
    };
    let a = l.t.track(&p, 0, Hook::PreRouting, 0).conn.unwrap();
    let b = l.t.track(&p, 0, Hook::PreRouting, 0).conn.unwrap();
    assert_ne!(a, b);
    l.t.confirm(a, 0).unwrap();
    assert_eq!(l.t.confirm(b, 0), Err(ConfirmError::Clash));
    assert_eq!(l.t.count(), 1);
}

#[test]
fn find_sees_confirmed_unexpired_entries_without_reaping() {
    let mut lab = Lab::new();
    let l4 = tcp(ip(C), 40000, ip(S), 80, "S", 1000, 0, 64240, &[], 0);
    let p = Packet {
        src: ip(C),
        dst: ip(S),
        proto: 6,
        later_fragment: false,
        l4: &l4,
    };
    let orig = packet_tuple(ip(C), ip(S), 6, &l4).unwrap();
    let r = lab.t.track(&p, 0, Hook::PreRouting, 0);
    assert_eq!(
        lab.t.find(&orig, 0, 0),
        None,
        "unconfirmed: not in the table"
    );
    lab.t.confirm(r.conn.unwrap(), 0).unwrap();
    assert_eq!(
        lab.t.find(&orig, 0, 0),
        Some((r.conn.unwrap(), Dir::Original))
    );
    let reply = lab.t.get(r.conn.unwrap()).tuple[1];
    assert_eq!(
        lab.t.find(&reply, 0, 0),
        Some((r.conn.unwrap(), Dir::Reply))
    );
    assert_eq!(lab.t.find(&orig, 1, 0), None, "another zone");
    let later = 1_000 * SEC;
    assert_eq!(lab.t.find(&orig, 0, later), None, "expired");
    assert_eq!(lab.t.iter().count(), 1, "find reaps nothing");
}

#[test]
fn stats_count_where_the_kernel_counts() {
    let mut l = Lab::new();
    assert_eq!(l.t.stats(), crate::CtStats::default());
    // Established traffic bumps nothing (measured on 6.18: found and insert stay 0).
    let r = l.handshake();
    l.s2c("A", 5001, 1001, 509, 0);
    assert_eq!(l.t.stats(), crate::CtStats::default());
    // A tracker's refusal is `invalid` (SYN+FIN), an ICMP error quoting nothing is `error`.
    assert_eq!(l.c2s("SF", 1, 0, 100, 0).ctinfo, CtInfo::Invalid);
    let e = icmp_error(3, 3, ip(C), ip(S), 17, &udp(ip(C), 1, ip(S), 2, 0));
    assert_eq!(l.pass(S, C, 1, &e).ctinfo, CtInfo::Invalid);
    // An ICMP type beyond 18 is `error` too (measured: 2 after one sent over lo, OUTPUT and
    // PREROUTING).
    assert_eq!(
        l.pass(S, C, 1, &icmp_echo(40, 0, 0)).ctinfo,
        CtInfo::Invalid
    );
    let s = l.t.stats();
    assert_eq!((s.invalid, s.error), (1, 2));
    // NAT finding a taken tuple is `found`.
    let reply = l.t.get(r.conn.unwrap()).tuple[1];
    let q = udp(ip(C), 7, ip(S), 8, 0);
    let p = Packet {
        src: ip(C),
        dst: ip(S),
        proto: 17,
        later_fragment: false,
        l4: &q,
    };
    let other = l.t.track(&p, 0, Hook::PreRouting, 0).conn.unwrap();
    assert!(l.t.tuple_taken(&reply, other, 0));
    assert_eq!(l.t.stats().found, 1);
    // A confirm clash is `insert_failed`.
    let again = l.t.track(&p, 0, Hook::PreRouting, 0).conn.unwrap();
    l.t.confirm(other, 0).unwrap();
    assert_eq!(l.t.confirm(again, 0), Err(ConfirmError::Clash));
    assert_eq!(l.t.stats().insert_failed, 1);

    // Table full: early drop counts each evicted entry; `drop` counts every refused packet,
    // rate-limited message or not.
    let mut cfg = CtConfig::default();
    cfg.max = 2;
    cfg.buckets = 1;
    let mut l = Lab::with(cfg);
    l.pass(C, S, 17, &udp(ip(C), 1, ip(S), 2, 0));
    l.pass(C, S, 17, &udp(ip(C), 3, ip(S), 4, 0));
    l.pass(C, S, 17, &udp(ip(C), 5, ip(S), 6, 0));
    assert_eq!(l.t.stats().early_drop, 2);
    let mut cfg = CtConfig::default();
    cfg.max = 1;
    cfg.buckets = 1;
    let mut l = Lab::with(cfg);
    l.handshake();
    let dropped = (0..25)
        .filter(|i| l.pass(C, S, 17, &udp(ip(C), 100 + i, ip(S), 6, 0)).drop)
        .count();
    assert_eq!(dropped, 25);
    assert_eq!(l.t.stats().drop, 25);
    assert_eq!(l.t.stats().early_drop, 0);
}

#[test]
fn stats_count_expectations_used_and_gone() {
    let mut l = Lab::new();
    let m = l.handshake().conn.unwrap();
    let mut e = crate::Expectation {
        tuple: Tuple::ports(17, 0, 0, ip(C), 6000),
        mask: Tuple {
            src: 0,
            dst: u32::MAX,
            src_l4: 0,
            dst_l4: u16::MAX,
            proto: u8::MAX,
        },
        master: m,
        helper: 2,
        child_helper: 0,
        class: 0,
        flags: 0,
        dir: Dir::Original,
        saved_proto: 0,
        timeout: 0,
        zone: 0,
    };
    l.t.expect_add(e, 300, 0);
    e.tuple.dst_l4 = 6001;
    l.t.expect_add(e, 300, 0);
    let r = l.pass(S, C, 17, &udp(ip(S), 999, ip(C), 6000, 0));
    assert_eq!(r.ctinfo, CtInfo::Related);
    let s = l.t.stats();
    assert_eq!((s.expect_create, s.expect_new, s.expect_delete), (2, 1, 1));
    // The master going takes its other expectation with it.
    l.t.kill(m);
    l.pass(C, S, 17, &udp(ip(C), 1, ip(S), 2, 0));
    assert_eq!(l.t.stats().expect_delete, 2);
}

/// The 64-bit-word sum folds to what a plain 16-bit one's complement sum gives, for every
/// length (odd tails included), all-ones and all-zero data and random bytes.
#[test]
fn ones_sum_equals_the_16_bit_sum() {
    fn plain(b: &[u8]) -> u16 {
        let mut sum = 0u32;
        for c in b.chunks(2) {
            let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
            sum += u32::from(w);
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }
    let mut x = 0x1234_5678_9abc_def1u64;
    for len in 0..200usize {
        for pattern in 0..4 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| match pattern {
                    0 => 0,
                    1 => 0xff,
                    _ => {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    }
                })
                .collect();
            assert_eq!(
                fold(ones_sum(&bytes)),
                plain(&bytes),
                "len {len} pattern {pattern}"
            );
        }
    }
    // A long packet: large sums and their end-around carries.
    let big = vec![0xffu8; 65_535];
    assert_eq!(fold(ones_sum(&big)), plain(&big));
    // With the pseudo-header added as l4_checksum does.
    let seg: Vec<u8> = (0..57u8).map(|i| i.wrapping_mul(37)).collect();
    let mut with_pseudo = vec![10, 0, 0, 2, 198, 51, 100, 1, 0, 6, 0, 57];
    with_pseudo.extend_from_slice(&seg);
    assert_eq!(
        l4_checksum(0x0a00_0002, 0xc633_6401, 6, &seg),
        plain(&with_pseudo)
    );
}
