//! `nfrs conntrack -E`: connection events streamed from the daemon as conntrack-tools 1.4.7
//! prints them (`    [NEW] tcp      6 120 SYN_SENT src=...`, ` [UPDATE] ...`, `[DESTROY] ...`).
//!
//! The engine reports no events itself, so the packet thread derives them: while someone
//! listens, after each IPv4 packet it looks up the packet's connection and compares it with
//! the state last seen (TCP/SCTP state, SEEN_REPLY, ASSURED, mark, reply tuple): new → NEW,
//! changed → UPDATE; the expiry pass reports DESTROY; entries that vanished otherwise (a
//! tracker's kill, early drop, `conntrack -D/-F`) are found by a sweep once a second and after
//! each `conntrack` command. Each listener has a bounded queue: the packet path never waits —
//! when a queue is full the event is dropped and counted, and the listener is told how many
//! were lost (as conntrack-tools warns on ENOBUFS). Nothing of this runs while nobody listens.
//! Known gaps: a connection changed by a packet that is not its own (an ICMP error, a
//! REJECT answer) shows its change at that connection's next packet; zones other than 0 are
//! looked up in zone 0.

use crate::proto::Response;
use nfrs_conntrack::listing::{write_event_line, EventKind};
use nfrs_conntrack::{status, Conn, ConnTable, Nanos, ProtoState, Tuple};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;

/// Events a listener holds before new ones are dropped.
pub const QUEUE: usize = 4096;
/// Listeners at a time (each queue is allocated in full).
pub const MAX_LISTENERS: usize = 16;

/// What one listener asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// NEW, UPDATE, DESTROY (all when none given).
    pub new: bool,
    /// See `new`.
    pub update: bool,
    /// See `new`.
    pub destroy: bool,
    /// `-o extended`.
    pub extended: bool,
    /// `-p`.
    pub proto: Option<u8>,
    /// `-s` (original source).
    pub src: Option<u32>,
    /// `-d` (original destination).
    pub dst: Option<u32>,
    /// `--sport`.
    pub sport: Option<u16>,
    /// `--dport`.
    pub dport: Option<u16>,
}

const PREFIX: &str = "conntrack v1.4.7 (conntrack-tools)";

fn usage(msg: &str) -> Response {
    Response::error(2, format!("{PREFIX}: {msg}"))
}

/// Parses `conntrack -E [-e NEW,UPDATE,DESTROY] [-o extended] [-p P] [-s A] [-d A]
/// [--sport N] [--dport N]`.
pub fn parse_args(args: &[String]) -> Result<Wanted, Response> {
    let mut w = Wanted::default();
    let mut it = args.iter();
    let mut saw_e = false;
    while let Some(a) = it.next() {
        if matches!(a.as_str(), "-E" | "--event") {
            saw_e = true;
            continue;
        }
        if a == "conntrack" && saw_e {
            continue;
        }
        let v = match a.as_str() {
            "-e" | "--event-mask" | "-o" | "--output" | "-p" | "--proto" | "-s" | "--src"
            | "--orig-src" | "-d" | "--dst" | "--orig-dst" | "--sport" | "--orig-port-src"
            | "--dport" | "--orig-port-dst" => it
                .next()
                .ok_or_else(|| usage(&format!("option `{a}' requires an argument")))?,
            other => {
                return Err(usage(&format!(
                    "option or argument `{other}' is not supported by nfrs conntrack -E"
                )))
            }
        };
        let bad = || usage(&format!("bad value `{v}' for `{a}'"));
        match a.as_str() {
            "-e" | "--event-mask" => {
                for e in v.split(',') {
                    match e {
                        "NEW" => w.new = true,
                        "UPDATE" => w.update = true,
                        "DESTROY" => w.destroy = true,
                        "ALL" => (w.new, w.update, w.destroy) = (true, true, true),
                        _ => return Err(bad()),
                    }
                }
            }
            "-o" | "--output" => match v.as_str() {
                "extended" => w.extended = true,
                _ => return Err(bad()),
            },
            "-p" | "--proto" => w.proto = Some(crate::cmds::proto_number(v).ok_or_else(bad)?),
            "-s" | "--src" | "--orig-src" => w.src = Some(crate::cmds::addr(v).ok_or_else(bad)?),
            "-d" | "--dst" | "--orig-dst" => w.dst = Some(crate::cmds::addr(v).ok_or_else(bad)?),
            "--sport" | "--orig-port-src" => w.sport = Some(v.parse().map_err(|_| bad())?),
            _ => w.dport = Some(v.parse().map_err(|_| bad())?),
        }
    }
    if !saw_e {
        return Err(usage("-E expected"));
    }
    if !(w.new || w.update || w.destroy) {
        (w.new, w.update, w.destroy) = (true, true, true);
    }
    Ok(w)
}

impl Wanted {
    fn wants(&self, kind: EventKind, c: &Conn) -> bool {
        let k = match kind {
            EventKind::New => self.new,
            EventKind::Update => self.update,
            EventKind::Destroy | EventKind::DestroyUser(_) => self.destroy,
        };
        let t = &c.tuple[0];
        k && self.proto.is_none_or(|p| p == t.proto)
            && self.src.is_none_or(|a| a == t.src)
            && self.dst.is_none_or(|a| a == t.dst)
            && self.sport.is_none_or(|p| p == t.src_l4)
            && self.dport.is_none_or(|p| p == t.dst_l4)
    }
}

/// One listener: its queue, what it wants, and how many events it lost.
pub struct Listener {
    tx: SyncSender<Response>,
    wanted: Wanted,
    /// Events dropped because the queue was full.
    pub lost: Arc<AtomicU64>,
    reported: u64,
    /// Set when the reader is gone.
    pub closed: Arc<std::sync::atomic::AtomicBool>,
}

impl Listener {
    /// A listener sending into `tx`.
    pub fn new(tx: SyncSender<Response>, wanted: Wanted) -> Listener {
        Listener {
            tx,
            wanted,
            lost: Arc::new(AtomicU64::new(0)),
            reported: 0,
            closed: Default::default(),
        }
    }
}

/// The part of a connection an UPDATE event is about.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Seen {
    state: u8,
    bits: u16,
    mark: u32,
    reply: Tuple,
}

fn seen_of(c: &Conn) -> Seen {
    let state = match &c.proto {
        ProtoState::Tcp(t) => t.state() as u8,
        ProtoState::Sctp(s) => s.state,
        _ => 0,
    };
    Seen {
        state,
        bits: c.status & (status::SEEN_REPLY | status::ASSURED),
        mark: c.mark,
        reply: c.tuple[1],
    }
}

/// The event state of the packet thread.
#[derive(Default)]
pub struct Events {
    listeners: Vec<Listener>,
    /// Connections as last reported, by original tuple and zone.
    known: HashMap<(Tuple, u16), (Seen, Conn)>,
    line: String,
}

impl Events {
    /// Whether anyone listens (the packet path does nothing more otherwise).
    #[inline]
    pub fn active(&self) -> bool {
        !self.listeners.is_empty()
    }

    /// Listeners now.
    pub fn listeners(&self) -> usize {
        self.listeners.len()
    }

    /// Adds a listener; the first one takes note of the table as it is (no events for it).
    pub fn subscribe(&mut self, l: Listener, ct: Option<&ConnTable>, now: Nanos) {
        if self.listeners.is_empty() {
            self.known.clear();
            if let Some(ct) = ct {
                for (_, c) in ct.iter().filter(|(_, c)| !c.is_expired(now)) {
                    self.known.insert((c.tuple[0], c.zone), (seen_of(c), *c));
                }
            }
        }
        self.listeners.push(l);
    }

    fn emit(&mut self, kind: EventKind, c: &Conn, now: Nanos) {
        self.line.clear();
        for ext in [false, true] {
            if !self
                .listeners
                .iter()
                .any(|l| l.wanted.extended == ext && l.wanted.wants(kind, c))
            {
                continue;
            }
            self.line.clear();
            let _ = write_event_line(&mut self.line, c, kind, ext, now);
            self.line.push('\n');
            for l in &mut self.listeners {
                if l.wanted.extended != ext || !l.wanted.wants(kind, c) {
                    continue;
                }
                let mut msg = Response {
                    code: 0,
                    stdout: self.line.clone(),
                    stderr: String::new(),
                };
                let lost = l.lost.load(Ordering::Relaxed);
                if lost > l.reported {
                    msg.stderr = format!(
                        "{PREFIX}: WARNING: nfrs dropped {} events for a slow reader\n",
                        lost - l.reported
                    );
                }
                match l.tx.try_send(msg) {
                    Ok(()) => l.reported = lost,
                    Err(TrySendError::Full(_)) => {
                        l.lost.fetch_add(1, Ordering::Relaxed);
                    }
                    // Gone: removed below.
                    Err(TrySendError::Disconnected(_)) => l.lost.store(u64::MAX, Ordering::Relaxed),
                }
            }
        }
        let before = self.listeners.len();
        self.listeners
            .retain(|l| l.lost.load(Ordering::Relaxed) != u64::MAX);
        if before != self.listeners.len() && self.listeners.is_empty() {
            self.known = HashMap::new();
        }
    }

    /// After a packet whose tuple (as received) is `t`: NEW or UPDATE for its connection.
    pub fn after_packet(&mut self, ct: &mut ConnTable, t: &Tuple, now: Nanos) {
        let Some((id, _)) = ct.lookup(t, 0, now) else {
            return;
        };
        let c = *ct.get(id);
        let s = seen_of(&c);
        match self.known.get_mut(&(c.tuple[0], c.zone)) {
            Some((old, copy)) => {
                *copy = c;
                if *old != s {
                    *old = s;
                    self.emit(EventKind::Update, &c, now);
                }
            }
            None => {
                self.known.insert((c.tuple[0], c.zone), (s, c));
                self.emit(EventKind::New, &c, now);
            }
        }
    }

    /// An entry the expiry pass removed.
    pub fn expired(&mut self, c: &Conn, now: Nanos) {
        if self.known.remove(&(c.tuple[0], c.zone)).is_some() {
            self.emit(EventKind::Destroy, c, now);
        }
    }

    /// Reports entries that left the table since they were seen (`userspace`: deleted by a
    /// `conntrack` command, with port id `portid`).
    pub fn sweep(&mut self, ct: Option<&mut ConnTable>, now: Nanos, userspace: Option<u32>) {
        // Readers that went away are forgotten (and with the last one, what was seen).
        let before = self.listeners.len();
        self.listeners.retain(|l| !l.closed.load(Ordering::Relaxed));
        if before != self.listeners.len() && self.listeners.is_empty() {
            self.known = HashMap::new();
        }
        if !self.active() {
            return;
        }
        let mut gone = Vec::new();
        match ct {
            Some(ct) => {
                for (k, (_, c)) in &self.known {
                    if ct
                        .lookup(&k.0, k.1, now)
                        .is_none_or(|(id, _)| ct.get(id).tuple[0] != k.0)
                    {
                        gone.push(*c);
                    }
                }
            }
            None => gone.extend(self.known.values().map(|(_, c)| *c)),
        }
        gone.sort_by_key(|c| (c.tuple[0].proto, c.tuple[0].src, c.tuple[0].src_l4));
        for c in gone {
            self.known.remove(&(c.tuple[0], c.zone));
            // Without a command: expired (found by a lookup) or killed by a tracker.
            let kind = userspace.map_or(EventKind::Destroy, EventKind::DestroyUser);
            self.emit(kind, &c, now);
        }
    }
}

/// The original tuple an IPv4 packet (`ip`: from its header on) is looked up by, as conntrack
/// builds it; `None` for what conntrack does not key by ports it can read (later fragments,
/// short headers, ICMP errors).
pub fn packet_tuple(ip: &[u8]) -> Option<Tuple> {
    if ip.len() < 20 || ip[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    if ihl < 20 || ip.len() < ihl || u16::from_be_bytes([ip[6], ip[7]]) & 0x1fff != 0 {
        return None;
    }
    let src = u32::from_be_bytes([ip[12], ip[13], ip[14], ip[15]]);
    let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
    let l4 = &ip[ihl..];
    let proto = ip[9];
    match proto {
        6 | 17 | 132 | 136 if l4.len() >= 4 => Some(Tuple::ports(
            proto,
            src,
            u16::from_be_bytes([l4[0], l4[1]]),
            dst,
            u16::from_be_bytes([l4[2], l4[3]]),
        )),
        1 if l4.len() >= 8 && matches!(l4[0], 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) => Some(
            Tuple::icmp(src, dst, l4[0], l4[1], u16::from_be_bytes([l4[4], l4[5]])),
        ),
        6 | 17 | 132 | 136 | 1 => None,
        // GRE version 1 (PPTP) keys by call id; version 0 like the generic tracker.
        47 if l4.len() >= 2 && l4[1] & 0x07 == 1 => None,
        p => Some(Tuple::generic(p, src, dst)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nfrs_conntrack::{CtConfig, Hook, Packet, SEC};
    use std::sync::mpsc;

    const RECORDED: &str = include_str!("../tests/data/conntrack-E-userspace-delete.txt");
    const EXPIRY: &str = include_str!("../tests/data/conntrack-E-expiry.txt");
    const LO: u32 = 0x7f00_0001;

    fn tcp(sp: u16, dp: u16, flags: u8, seq: u32, ack: u32, data: &[u8]) -> Vec<u8> {
        let mut l4 = vec![0u8; 20];
        l4[0..2].copy_from_slice(&sp.to_be_bytes());
        l4[2..4].copy_from_slice(&dp.to_be_bytes());
        l4[4..8].copy_from_slice(&seq.to_be_bytes());
        l4[8..12].copy_from_slice(&ack.to_be_bytes());
        l4[12] = 5 << 4;
        l4[13] = flags;
        l4[14..16].copy_from_slice(&65000u16.to_be_bytes());
        l4.extend_from_slice(data);
        l4
    }

    /// One packet through the table (confirmed at once) and the event machinery.
    fn step(ev: &mut Events, ct: &mut ConnTable, proto: u8, l4: &[u8], now: Nanos) {
        let p = Packet {
            src: LO,
            dst: LO,
            proto,
            later_fragment: false,
            l4,
        };
        let t = ct.track(&p, 0, Hook::LocalOut, now);
        if t.unconfirmed {
            let id = t.conn.unwrap();
            ct.get_mut(id).mark = 5;
            ct.confirm(id, now).unwrap();
        }
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0];
        ip.extend_from_slice(&LO.to_be_bytes());
        ip.extend_from_slice(&LO.to_be_bytes());
        ip.extend_from_slice(l4);
        ev.after_packet(ct, &packet_tuple(&ip).unwrap(), now);
    }

    fn lines(rx: &mpsc::Receiver<Response>) -> Vec<String> {
        rx.try_iter()
            .map(|r| r.stdout.trim_end().to_string())
            .collect()
    }

    #[test]
    fn a_tcp_connection_and_a_udp_datagram_as_the_kernel_reports_them() {
        let cfg = CtConfig {
            udp_timeout: 2,
            icmp_timeout: 1,
            ..CtConfig::default()
        };
        let mut ct = ConnTable::new(cfg);
        let mut ev = Events::default();
        let (tx, rx) = mpsc::sync_channel(64);
        let all = parse_args(&["-E".into()]).unwrap();
        ev.subscribe(Listener::new(tx, all), Some(&ct), 0);
        let t = SEC;
        // The recorded session: a UDP datagram to 5353, then TCP 50772 -> 8080.
        let mut udp = vec![0u8; 9];
        udp[0..2].copy_from_slice(&56700u16.to_be_bytes());
        udp[2..4].copy_from_slice(&5353u16.to_be_bytes());
        udp[4..6].copy_from_slice(&9u16.to_be_bytes());
        step(&mut ev, &mut ct, 17, &udp, t);
        let (c, s) = (50772, 8080);
        step(&mut ev, &mut ct, 6, &tcp(c, s, 0x02, 100, 0, b""), t);
        step(&mut ev, &mut ct, 6, &tcp(s, c, 0x12, 900, 101, b""), t);
        step(&mut ev, &mut ct, 6, &tcp(c, s, 0x10, 101, 901, b""), t);
        step(&mut ev, &mut ct, 6, &tcp(c, s, 0x18, 101, 901, b"x"), t);
        step(&mut ev, &mut ct, 6, &tcp(s, c, 0x10, 901, 102, b""), t);
        step(&mut ev, &mut ct, 6, &tcp(c, s, 0x11, 102, 901, b""), t);
        step(&mut ev, &mut ct, 6, &tcp(s, c, 0x11, 901, 103, b""), t);
        step(&mut ev, &mut ct, 6, &tcp(c, s, 0x10, 103, 902, b""), t);
        // conntrack -D -p tcp, 0.5 s later.
        let id = ct
            .iter()
            .find(|(_, c)| c.tuple[0].proto == 6)
            .map(|(id, _)| id)
            .unwrap();
        ct.kill(id);
        ev.sweep(Some(&mut ct), t + SEC / 2, Some(4019542520));
        let got = lines(&rx);
        let want: Vec<&str> = RECORDED
            .lines()
            .filter(|l| l.contains('[') && !l.contains("icmp") && !l.starts_with('#'))
            .collect();
        assert_eq!(got, want);
        // Expiry: a DESTROY without the timeout column.
        let (tx, rx) = mpsc::sync_channel(64);
        let mut ev = Events::default();
        let mut ct = ConnTable::new(CtConfig {
            icmp_timeout: 1,
            ..CtConfig::default()
        });
        ev.subscribe(Listener::new(tx, all_of()), Some(&ct), 0);
        let echo = [8u8, 0, 0, 0, 0x69, 0x19, 0, 1];
        let reply = [0u8, 0, 0, 0, 0x69, 0x19, 0, 1];
        let plain = |ev: &mut Events, ct: &mut ConnTable, l4: &[u8]| {
            let p = Packet {
                src: LO,
                dst: LO,
                proto: 1,
                later_fragment: false,
                l4,
            };
            let tr = ct.track(&p, 0, Hook::LocalOut, t);
            if tr.unconfirmed {
                ct.confirm(tr.conn.unwrap(), t).unwrap();
            }
            let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
            ip.extend_from_slice(&LO.to_be_bytes());
            ip.extend_from_slice(&LO.to_be_bytes());
            ip.extend_from_slice(l4);
            ev.after_packet(ct, &packet_tuple(&ip).unwrap(), t);
        };
        plain(&mut ev, &mut ct, &echo);
        plain(&mut ev, &mut ct, &reply);
        ct.expire(3 * SEC, &mut |_, c| ev.expired(c, 3 * SEC));
        let got = lines(&rx);
        let want: Vec<&str> = EXPIRY
            .lines()
            .filter(|l| l.contains("icmp") && !l.starts_with('#'))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn the_extended_form_as_recorded() {
        const EXT: &str = include_str!("../tests/data/conntrack-E-extended.txt");
        let mut ct = ConnTable::new(CtConfig::default());
        let mut ev = Events::default();
        let (tx, rx) = mpsc::sync_channel(16);
        let w = parse_args(&["-E".into(), "-o".into(), "extended".into()]).unwrap();
        ev.subscribe(Listener::new(tx, w), Some(&ct), 0);
        let t = SEC;
        for l4 in [
            [8u8, 0, 0, 0, 0x04, 0x3f, 0, 1],
            [0u8, 0, 0, 0, 0x04, 0x3f, 0, 1],
        ] {
            let p = Packet {
                src: LO,
                dst: LO,
                proto: 1,
                later_fragment: false,
                l4: &l4,
            };
            let tr = ct.track(&p, 0, Hook::LocalOut, t);
            if tr.unconfirmed {
                ct.confirm(tr.conn.unwrap(), t).unwrap();
            }
            let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
            ip.extend_from_slice(&LO.to_be_bytes());
            ip.extend_from_slice(&LO.to_be_bytes());
            ip.extend_from_slice(&l4);
            ev.after_packet(&mut ct, &packet_tuple(&ip).unwrap(), t);
        }
        let id = ct.iter().next().unwrap().0;
        ct.kill(id);
        ev.sweep(Some(&mut ct), t + 3 * SEC / 10, Some(2679021143));
        let want: Vec<&str> = EXT.lines().filter(|l| l.contains("ipv4")).collect();
        assert_eq!(lines(&rx), want);
    }

    fn all_of() -> Wanted {
        parse_args(&["-E".into()]).unwrap()
    }

    #[test]
    fn a_slow_reader_loses_events_never_the_packet_path() {
        let mut ct = ConnTable::new(CtConfig::default());
        let mut ev = Events::default();
        let (tx, rx) = mpsc::sync_channel(2);
        let l = Listener::new(tx, all_of());
        let lost = l.lost.clone();
        ev.subscribe(l, Some(&ct), 0);
        let mut udp = vec![0u8; 8];
        udp[4..6].copy_from_slice(&8u16.to_be_bytes());
        for port in 1..=5u16 {
            udp[0..2].copy_from_slice(&port.to_be_bytes());
            udp[2..4].copy_from_slice(&53u16.to_be_bytes());
            step(&mut ev, &mut ct, 17, &udp, SEC);
        }
        assert_eq!(lost.load(Ordering::Relaxed), 3);
        assert_eq!(lines(&rx).len(), 2);
        // The next event that fits carries the warning with the count.
        udp[0..2].copy_from_slice(&9u16.to_be_bytes());
        step(&mut ev, &mut ct, 17, &udp, SEC);
        let r = rx.try_recv().unwrap();
        assert!(r.stderr.contains("dropped 3 events"), "{r:?}");
        assert!(r.stdout.starts_with("    [NEW] udp      17 30 "));
        // A listener that went away is forgotten at the next event; nothing runs after.
        drop(rx);
        udp[0..2].copy_from_slice(&10u16.to_be_bytes());
        step(&mut ev, &mut ct, 17, &udp, SEC);
        assert!(!ev.active());
        // One whose reader left while nothing happened goes at the next sweep.
        let (tx, _rx) = mpsc::sync_channel(2);
        let l = Listener::new(tx, all_of());
        let closed = l.closed.clone();
        ev.subscribe(l, Some(&ct), SEC);
        ev.sweep(Some(&mut ct), SEC, None);
        assert_eq!(ev.listeners(), 1);
        closed.store(true, Ordering::Relaxed);
        ev.sweep(Some(&mut ct), SEC, None);
        assert!(!ev.active());
    }

    #[test]
    fn arguments_and_filters() {
        let a = |v: &[&str]| parse_args(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let w = a(&["-E", "-e", "NEW,DESTROY", "-o", "extended", "-p", "tcp"]).unwrap();
        assert!(w.new && !w.update && w.destroy && w.extended);
        assert_eq!(w.proto, Some(6));
        assert!(a(&["-E", "-e", "BOGUS"])
            .unwrap_err()
            .stderr
            .contains("BOGUS"));
        assert!(a(&["-E", "--zone", "1"])
            .unwrap_err()
            .stderr
            .contains("--zone"));
        assert!(a(&["-L"]).is_err());
        let mut ct = ConnTable::new(CtConfig::default());
        let mut ev = Events::default();
        let (tx, rx) = mpsc::sync_channel(16);
        ev.subscribe(
            Listener::new(tx, a(&["-E", "-o", "extended", "--dport", "53"]).unwrap()),
            Some(&ct),
            0,
        );
        let mut udp = vec![0u8; 8];
        udp[4..6].copy_from_slice(&8u16.to_be_bytes());
        for dport in [53u16, 54] {
            udp[0..2].copy_from_slice(&1000u16.to_be_bytes());
            udp[2..4].copy_from_slice(&dport.to_be_bytes());
            step(&mut ev, &mut ct, 17, &udp, SEC);
        }
        let got = lines(&rx);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("    [NEW] ipv4     2 udp      17 30 src=127.0.0.1 "));
        assert!(got[0].ends_with(
            " dport=53 [UNREPLIED] src=127.0.0.1 dst=127.0.0.1 sport=53 dport=1000 mark=5"
        ));
    }
}
