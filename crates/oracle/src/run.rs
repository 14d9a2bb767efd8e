//! Running one scenario through the real kernel and turning what it did into a [`RunResult`].
//!
//! Per packet, under a machine-wide lock (kernel log lines of parallel runs would interleave):
//! inject the frame on its wire (or send it as the host through a raw socket), then inject an
//! ARP probe for the DUT's address as a barrier and read the wires until its answer comes back.
//! With this thread pinned to one CPU, veth delivery is one FIFO per CPU, so every frame, NFLOG
//! message and log line the packet caused has arrived by then. No sleep is ever used to wait for
//! the kernel; sleeps only pace packets to their scenario times.

use crate::lab::{run_cmd, Lab};
use crate::nflog::{self, NflogReader};
use crate::sys::{self, FileLock, PacketSocket, RawIpSocket};
use nfrs_scenario::host::Host;
use nfrs_scenario::mask::mask_random_choices;
use nfrs_scenario::result::{Event, PacketResult, RunResult};
use nfrs_scenario::{Input, Scenario};
use nfrs_wire::build::{build_frame, FrameCtx};
use nfrs_wire::ethernet::MacAddr;
use nfrs_wire::print::{format_frame_masked, Masks};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

/// Which iptables the rules are loaded with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `iptables-legacy-restore` / `iptables-legacy-save`.
    Legacy,
    /// `iptables-nft-restore` / `iptables-nft-save`.
    Nft,
}

impl Backend {
    fn restore(self) -> &'static str {
        match self {
            Backend::Legacy => "iptables-legacy-restore",
            Backend::Nft => "iptables-nft-restore",
        }
    }
    fn save(self) -> &'static str {
        match self {
            Backend::Legacy => "iptables-legacy-save",
            Backend::Nft => "iptables-nft-save",
        }
    }
}

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The iptables flavour.
    pub backend: Backend,
    /// Print per-packet counter deltas (which rules each packet met) to stderr.
    pub trace: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            backend: Backend::Legacy,
            trace: false,
        }
    }
}

/// The lock held around send-and-collect of one packet (the kernel log is machine-wide).
pub const KMSG_LOCK: &str = "/run/nfrs-kernel-run.kmsg.lock";
/// Held shared by every run, exclusively by a run that changes machine-wide settings.
pub const EXCLUSIVE_LOCK: &str = "/run/nfrs-kernel-run.exclusive.lock";

/// How long the barrier's answer may take before the run is declared broken.
const BARRIER_TIMEOUT: Duration = Duration::from_secs(3);

struct Wire {
    dev: String,
    sock: PacketSocket,
}

struct Prepared {
    text: String,
    dev: String,
    frame: Vec<u8>,
    time_us: u64,
    ip_id: u16,
    proto: u8,
    icmp_type: Option<u8>,
}

fn err<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Every IPv4 address a scenario mentions (packets, quoted packets, rules, routes): the peers
/// the DUT must reach without ARP.
fn mentioned_addresses(sc: &Scenario, prepared: &[Prepared]) -> Vec<Ipv4Addr> {
    let mut set = BTreeSet::new();
    let mut scan = |s: &str| {
        for tok in s.split(|c: char| !(c.is_ascii_digit() || c == '.')) {
            if let Ok(a) = tok.parse::<Ipv4Addr>() {
                set.insert(a);
            }
        }
    };
    scan(&sc.rules);
    for p in prepared {
        scan(&p.text);
    }
    for r in &sc.host.routes {
        if let Some(v) = r.via {
            set.insert(v);
        }
    }
    for n in &sc.host.neighbours {
        set.insert(n.address);
    }
    // Address ranges in rules (`--to-source a-b`): add their ends only; the middle of a range
    // is reached through the same neighbour MAC rule if ever used.
    set.into_iter().collect()
}

fn prepare(sc: &Scenario) -> Result<Vec<Prepared>, String> {
    let host = &sc.host;
    let mut out = Vec::new();
    if let Input::Pcap { .. } = sc.input {
        for f in sc.capture_frames().map_err(|e| e.to_string())? {
            let (proto, ip_id, icmp_type) = match ip_facts(&f.frame) {
                Some((p, id, t, _)) => (p, id, t),
                None => (0, 0, None),
            };
            out.push(Prepared {
                text: f.input_text(),
                dev: f.dev.clone(),
                time_us: f.time_us,
                frame: f.frame,
                ip_id,
                proto,
                icmp_type,
            });
        }
        return Ok(out);
    }
    for (i, p) in sc.packet_lines().iter().enumerate() {
        let l = &p.parsed;
        let n = (i + 1) as u16;
        let (src_mac, dst_mac) = if l.dev == "local" {
            ([0u8; 6], [0u8; 6])
        } else {
            let ifc = host
                .interface(&l.dev)
                .ok_or_else(|| format!("line {}: unknown device {}", p.line, l.dev))?;
            let src = l
                .spec
                .src
                .and_then(|a| host.neighbour_mac(&l.dev, a))
                .or_else(|| {
                    host.interface_index(&l.dev)
                        .map(nfrs_scenario::host::default_neighbour_mac)
                })
                .unwrap_or([2, 0, 0, 0, 1, 0]);
            (src, ifc.mac)
        };
        let ctx = FrameCtx {
            src_mac: MacAddr(src_mac),
            dst_mac: MacAddr(dst_mac),
            ip_id: n,
            allow_masked: false,
        };
        let frame = build_frame(&l.spec, &ctx).map_err(|e| {
            format!(
                "{}:{}: cannot build the packet: {e}",
                sc.path.display(),
                p.line
            )
        })?;
        let ip = &frame[14..];
        let ip_id = if ip.len() >= 6 {
            u16::from_be_bytes([ip[4], ip[5]])
        } else {
            n
        };
        let proto = ip.get(9).copied().unwrap_or(l.spec.proto);
        let ihl = ip.first().map(|b| usize::from(b & 0x0f) * 4).unwrap_or(20);
        let icmp_type = if proto == 1 {
            ip.get(ihl).copied()
        } else {
            None
        };
        out.push(Prepared {
            text: p.text.clone(),
            dev: l.dev.clone(),
            frame,
            time_us: l.time_us,
            ip_id,
            proto,
            icmp_type,
        });
    }
    Ok(out)
}

/// A frame's IPv4 fields that decide whether the host generated it: (proto, id, icmp type, df).
fn ip_facts(frame: &[u8]) -> Option<(u8, u16, Option<u8>, bool)> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &frame[14..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let proto = ip[9];
    let id = u16::from_be_bytes([ip[4], ip[5]]);
    let df = ip[6] & 0x40 != 0;
    let icmp_type = if proto == 1 {
        ip.get(ihl).copied()
    } else {
        None
    };
    Some((proto, id, icmp_type, df))
}

/// Whether a frame emitted after `input` is the input itself (forwarded, NATed, mangled) rather
/// than a packet the host made: the same protocol and IP id (and ICMP type) means the same
/// packet, since forwarding and NAT keep the id.
fn is_host_generated(frame: &[u8], input: &Prepared) -> bool {
    match ip_facts(frame) {
        Some((proto, id, icmp_type, _)) => {
            !(proto == input.proto && id == input.ip_id && icmp_type == input.icmp_type)
        }
        None => false,
    }
}

/// The ARP probe used as a barrier: "who has `target`", from 0.0.0.0, sender MAC `mac`.
fn arp_probe(mac: [u8; 6], target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(42);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06]);
    f.extend_from_slice(&[0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0, 0, 0, 0]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f
}

/// The MAC prefix of barrier probes (02:fe:00:00:xx:xx), reserved to the oracle.
const BARRIER_PREFIX: [u8; 4] = [0x02, 0xfe, 0, 0];

/// Whether a captured frame belongs to the barrier machinery (a probe a bridge flooded to
/// another port, or an answer to one): never part of a result.
fn is_barrier_frame(frame: &[u8]) -> bool {
    frame.len() >= 12 && (frame[6..10] == BARRIER_PREFIX || frame[0..4] == BARRIER_PREFIX)
}

fn is_barrier_reply(frame: &[u8], mac: [u8; 6]) -> bool {
    frame.len() >= 42
        && frame[0..6] == mac
        && frame[12..14] == [0x08, 0x06]
        && frame[20..22] == [0, 2]
        && frame[32..38] == mac
}

/// Whether a kernel log record is netfilter's: a LOG line (it always holds `IN=` and `OUT=`) or
/// a conntrack message. Other kernel chatter (other namespaces' links coming up) is not ours.
fn is_netfilter_log(pri: u32, msg: &str) -> bool {
    // Facility 0 (kern): priority values 0..7.
    pri < 8
        && ((msg.contains("IN=") && msg.contains(" OUT="))
            || msg.starts_with("nf_conntrack")
            || msg.starts_with("nf_ct_"))
}

/// Whether a log line's `IN=`/`OUT=` (and `PHYSIN=`/`PHYSOUT=`) name only devices of this host;
/// lines without them (conntrack's table-full message) pass.
fn names_our_devices(msg: &str, devices: &[&str]) -> bool {
    let mut any = false;
    for tok in msg.split(' ') {
        for key in ["IN=", "OUT=", "PHYSIN=", "PHYSOUT="] {
            if let Some(v) = tok.strip_prefix(key) {
                if !v.is_empty() {
                    if !devices.contains(&v) {
                        return false;
                    }
                    any = true;
                }
            }
        }
    }
    any || !msg.contains("IN=")
}

fn snmp_reasm(fd: &OwnedFd) -> Result<(u64, u64, u64), String> {
    let text = sys::pread_all(fd).map_err(err("reading /proc/net/snmp"))?;
    let mut lines = text.lines().filter(|l| l.starts_with("Ip:"));
    let names: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let vals: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let get = |k: &str| -> u64 {
        names
            .iter()
            .position(|n| *n == k)
            .and_then(|i| vals.get(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok((get("ReasmReqds"), get("ReasmOKs"), get("ReasmFails")))
}

/// Removes the timeout column (the fifth field) of a `conntrack -L` line.
pub fn strip_conntrack_timeout(line: &str) -> String {
    // Fields are separated by runs of spaces; find the fifth field and drop it with one space.
    let b = line.as_bytes();
    let mut field = 0;
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && b[i] == b' ' {
            i += 1;
        }
        let start = i;
        while i < b.len() && b[i] != b' ' {
            i += 1;
        }
        if start == i {
            break;
        }
        field += 1;
        if field == 5 && line[start..i].bytes().all(|c| c.is_ascii_digit()) {
            let end = if i < b.len() { i + 1 } else { i };
            return format!("{}{}", &line[..start], &line[end..]);
        }
    }
    line.to_string()
}

/// Removes the leading timeout of a `conntrack -L expect` line.
pub fn strip_expect_timeout(line: &str) -> String {
    match line.split_once(' ') {
        Some((t, rest)) if t.bytes().all(|c| c.is_ascii_digit()) => rest.to_string(),
        _ => line.to_string(),
    }
}

/// Runs `sc` in the kernel and returns its result. Needs root.
pub fn run(sc: &Scenario, opts: &Options) -> Result<RunResult, String> {
    // SAFETY: geteuid has no arguments and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Err("kernel-run needs root (network namespaces)".into());
    }
    crate::signals::install();
    let prepared = prepare(sc)?;
    let host = &sc.host;
    // The barrier asks for an address of the host on a wire that reaches it: an interface's
    // own, or its bridge's.
    let barrier = host
        .interfaces
        .iter()
        .enumerate()
        .find_map(|(i, ifc)| {
            ifc.addresses
                .first()
                .or_else(|| host.bridge_of(&ifc.name).and_then(|b| b.addresses.first()))
                .map(|a| (i, a.addr))
        })
        .ok_or("kernel-run needs an interface (or bridge) with an address (for the barrier)")?;

    let _excl = FileLock::acquire(EXCLUSIVE_LOCK, sc.exclusive).map_err(err("exclusive lock"))?;
    // LOG in a child namespace reaches the kernel log only with this machine-wide switch.
    if crate::lab::read_sysctl("net.netfilter.nf_log_all_netns")? != "1" {
        crate::lab::write_sysctl("net.netfilter.nf_log_all_netns", "1")?;
    }
    let lab = Lab::build(host, &mentioned_addresses(sc, &prepared))?;

    // Rules, then the local-delivery observer.
    if !sc.rules.trim().is_empty() {
        lab.dut_cmd(&[opts.backend.restore(), "-w"], Some(&sc.rules))?;
    }
    lab.dut_cmd(&["nft", "-f", "-"], Some(&nflog::nft_script()))?;

    // Sockets inside the DUT: listeners, NFLOG, raw IP, /proc/net/snmp.
    let mut listeners = Vec::new();
    let (mut nflog, raw, snmp) = sys::in_netns(&lab.home, lab.dut(), || {
        for l in &host.listen {
            let a = l.address.unwrap_or(Ipv4Addr::UNSPECIFIED);
            listeners.push(sys::listen_socket(
                l.proto == nfrs_scenario::ListenProto::Tcp,
                a,
                l.port,
            )?);
        }
        let nflog = NflogReader::open()?;
        let raw = RawIpSocket::open()?;
        let snmp = sys::open_ro("/proc/self/net/snmp")?;
        Ok((nflog, raw, snmp))
    })
    .map_err(err("DUT sockets"))?;
    let mut wires = Vec::new();
    for (i, fd) in lab.wire_fds.iter().enumerate() {
        let sock = sys::in_netns(&lab.home, fd, || {
            let idx = sys::if_index(crate::lab::WIRE_IF)?;
            PacketSocket::open(idx)
        })
        .map_err(err("wire socket"))?;
        wires.push(Wire {
            dev: host.interfaces[i].name.clone(),
            sock,
        });
    }
    let kmsg = sys::open_kmsg().map_err(err("/dev/kmsg"))?;
    sys::pin_to_current_cpu().map_err(err("pinning to a CPU"))?;

    let iface_names: Vec<&str> = host.interfaces.iter().map(|i| i.name.as_str()).collect();
    // Log lines of other namespaces (nf_log_all_netns is machine-wide) name other devices.
    let mut devices: Vec<&str> = iface_names.clone();
    devices.extend(host.bridges.iter().map(|b| b.name.as_str()));
    devices.push("lo");
    let mut result = RunResult {
        description: sc.description.clone(),
        ..RunResult::default()
    };
    let mut buf = vec![0u8; 70000];
    let mut barrier_no: u16 = 0;
    let mut last_save: Option<String> = None;
    if opts.trace {
        last_save = Some(save(&lab, opts)?);
    }
    let t0 = Instant::now();
    for (pi, p) in prepared.iter().enumerate() {
        // Pace to the packet's time.
        let due = t0 + Duration::from_micros(p.time_us);
        loop {
            if crate::signals::interrupted() {
                return Err("interrupted".into());
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            std::thread::sleep((due - now).min(Duration::from_millis(100)));
        }
        // Anything that arrived since the last barrier was caused by a timer: late events of the
        // previous packet.
        if pi > 0 {
            let mut late = Vec::new();
            drain_wires(&wires, &mut buf, &mut late, &prepared[pi - 1])?;
            for pkt in nflog.drain().map_err(err("NFLOG"))? {
                late.push(local_event(&pkt, &prepared[pi - 1]));
            }
            let prev = result.packets.last_mut().expect("previous packet");
            for e in late {
                prev.events.push(Event::Late(Box::new(e)));
            }
        }

        let _lock = FileLock::acquire(KMSG_LOCK, true).map_err(err("kmsg lock"))?;
        sys::kmsg_seek_end(&kmsg).map_err(err("/dev/kmsg"))?;
        let before = snmp_reasm(&snmp)?;
        if p.dev == "local" {
            let ip = &p.frame[14..];
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            // A packet OUTPUT drops makes the sending call fail with EPERM: that is a result,
            // not an error.
            match raw.send(ip, dst) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
                Err(e) => return Err(format!("sending as the host: {e}")),
            }
        } else {
            let w = wires
                .iter()
                .find(|w| w.dev == p.dev)
                .ok_or_else(|| format!("no wire for {}", p.dev))?;
            w.sock.send(&p.frame).map_err(err("injecting"))?;
        }
        // The barrier.
        barrier_no = barrier_no.wrapping_add(1);
        let bmac = [
            BARRIER_PREFIX[0],
            BARRIER_PREFIX[1],
            BARRIER_PREFIX[2],
            BARRIER_PREFIX[3],
            (barrier_no >> 8) as u8,
            barrier_no as u8,
        ];
        let bw = &wires[barrier.0];
        bw.sock
            .send(&arp_probe(bmac, barrier.1))
            .map_err(err("barrier"))?;
        let mut events = Vec::new();
        let deadline = Instant::now() + BARRIER_TIMEOUT;
        let mut done = false;
        while !done {
            if crate::signals::interrupted() {
                return Err("interrupted".into());
            }
            let now = Instant::now();
            if now > deadline {
                return Err(format!(
                    "packet {} ({}): the barrier's ARP answer never came",
                    pi + 1,
                    p.text
                ));
            }
            sys::poll_readable(bw.sock.raw(), deadline - now).map_err(err("poll"))?;
            while let Some(n) = bw.sock.try_recv(&mut buf).map_err(err("capture"))? {
                if is_barrier_reply(&buf[..n], bmac) {
                    done = true;
                    break;
                }
                if !is_barrier_frame(&buf[..n]) {
                    events.push(out_event(&bw.dev, &buf[..n], p));
                }
            }
        }
        // The barrier's wire was read up to the answer; the others are read whole.
        for w in &wires {
            if w.dev == bw.dev {
                continue;
            }
            while let Some(n) = w.sock.try_recv(&mut buf).map_err(err("capture"))? {
                if !is_barrier_frame(&buf[..n]) {
                    events.push(out_event(&w.dev, &buf[..n], p));
                }
            }
        }
        for pkt in nflog.drain().map_err(err("NFLOG"))? {
            events.push(local_event(&pkt, p));
        }
        for (pri, msg) in sys::kmsg_read_all(&kmsg).map_err(err("/dev/kmsg"))? {
            if is_netfilter_log(pri, &msg) && names_our_devices(&msg, &devices) {
                events.push(Event::Log(mask_log_line(&msg, p)));
            }
        }
        drop(_lock);
        let after = snmp_reasm(&snmp)?;
        let queued = after.0 > before.0 && after.1 == before.1 && after.2 == before.2;
        let mut pr = PacketResult {
            input: p.text.clone(),
            events,
        };
        pr.finish(&iface_names, queued);
        result.packets.push(pr);
        if opts.trace {
            let now = save(&lab, opts)?;
            eprintln!("trace: packet {}: {}", pi + 1, p.text);
            for d in counter_deltas(last_save.as_deref().unwrap_or(""), &now) {
                eprintln!("trace:   {d}");
            }
            last_save = Some(now);
        }
    }
    // Whatever a timer caused after the last barrier, up to now.
    if let Some(last) = prepared.last() {
        let mut late = Vec::new();
        drain_wires(&wires, &mut buf, &mut late, last)?;
        for pkt in nflog.drain().map_err(err("NFLOG"))? {
            late.push(local_event(&pkt, last));
        }
        if let Some(prev) = result.packets.last_mut() {
            for e in late {
                prev.events.push(Event::Late(Box::new(e)));
            }
        }
    }

    // The final state.
    let ct = lab.dut_cmd(&["conntrack", "-L", "-o", "extended"], None)?;
    let mut ct: Vec<String> = ct
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(strip_conntrack_timeout)
        .collect();
    ct.sort();
    result.conntrack = ct;
    let ex = lab.dut_cmd(&["conntrack", "-L", "expect"], None)?;
    let mut ex: Vec<String> = ex
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(strip_expect_timeout)
        .collect();
    ex.sort();
    result.expect = ex;
    result.iptables_save = save(&lab, opts)?
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    drop(listeners);
    mask_random_choices(&mut result, &sc.rules)?;
    Ok(result)
}

fn save(lab: &Lab, opts: &Options) -> Result<String, String> {
    lab.dut_cmd(&[opts.backend.save(), "-c"], None)
}

/// Rule and policy lines whose counters changed between two `iptables-save -c` outputs.
fn counter_deltas(before: &str, after: &str) -> Vec<String> {
    let parse = |l: &str| -> Option<(u64, u64, String)> {
        if let Some(rest) = l.strip_prefix('[') {
            let (c, rule) = rest.split_once("] ")?;
            let (p, b) = c.split_once(':')?;
            return Some((p.parse().ok()?, b.parse().ok()?, rule.to_string()));
        }
        if l.starts_with(':') {
            let (head, c) = l.rsplit_once(" [")?;
            let (p, b) = c.trim_end_matches(']').split_once(':')?;
            return Some((p.parse().ok()?, b.parse().ok()?, head.to_string()));
        }
        None
    };
    let mut table = String::new();
    let mut old = std::collections::HashMap::new();
    for l in before.lines() {
        if let Some(t) = l.strip_prefix('*') {
            table = t.to_string();
        } else if let Some((p, _, r)) = parse(l) {
            old.insert(format!("{table} {r}"), p);
        }
    }
    let mut out = Vec::new();
    for l in after.lines() {
        if let Some(t) = l.strip_prefix('*') {
            table = t.to_string();
        } else if let Some((p, _, r)) = parse(l) {
            let k = format!("{table} {r}");
            let was = old.get(&k).copied().unwrap_or(0);
            if p > was {
                out.push(format!("+{} {k}", p - was));
            }
        }
    }
    out
}

/// A packet delivered to the host (from NFLOG, an IP packet): masked like an emitted frame when
/// the host generated it itself (it sent to its own address).
fn local_event(pkt: &[u8], input: &Prepared) -> Event {
    let mut frame = vec![0u8; 14];
    frame[12] = 0x08;
    frame.extend_from_slice(pkt);
    match out_event("", &frame, input) {
        Event::Out { packet, .. } => Event::Local(packet),
        other => other,
    }
}

fn out_event(dev: &str, frame: &[u8], input: &Prepared) -> Event {
    let mut masks = Masks::default();
    if is_host_generated(frame, input) {
        if let Some((_, id, _, _)) = ip_facts(frame) {
            // The host's own packets carry a random IP id, except those sent with id 0
            // (RST replies with DF).
            if id != 0 {
                masks.ip_id = Some("*".into());
            }
        }
    }
    let mut s = String::new();
    format_frame_masked(frame, &masks, &mut s);
    if is_host_generated(frame, input) && is_tcp_syn(frame) {
        // The host's SYN-ACK (a listening socket) starts at a random sequence number, and its
        // timestamp clock at a random offset.
        s = mask_isn(&s);
    }
    Event::Out {
        dev: dev.to_string(),
        packet: s,
    }
}

fn is_tcp_syn(frame: &[u8]) -> bool {
    match ip_facts(frame) {
        Some((6, _, _, _)) => {
            let ihl = usize::from(frame[14] & 0x0f) * 4;
            frame.get(14 + ihl + 13).is_some_and(|f| f & 0x02 != 0)
        }
        _ => false,
    }
}

/// Masks `seq=N` and the timestamp value of `ts=V/E` in a printed TCP packet.
fn mask_isn(s: &str) -> String {
    s.split(' ')
        .map(|t| {
            if t.starts_with("seq=") {
                "seq=*".to_string()
            } else if let Some(v) = t.strip_prefix("ts=") {
                match v.split_once('/') {
                    Some((_, e)) => format!("ts=*/{e}"),
                    None => t.to_string(),
                }
            } else {
                t.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A LOG line about a packet the host generated itself (no `IN=`, another id than the input's)
/// shows a random IP id: mask it.
fn mask_log_line(msg: &str, input: &Prepared) -> String {
    // "table full in netns <inode>": the namespace's inode number differs on every run.
    if let Some(at) = msg.find(" in netns ") {
        let start = at + " in netns ".len();
        let end = msg[start..]
            .find(|c: char| !c.is_ascii_digit())
            .map_or(msg.len(), |e| start + e);
        if end > start {
            return format!("{}*{}", &msg[..start], &msg[end..]);
        }
    }
    if !msg.contains("IN= ") {
        return msg.to_string();
    }
    let id = msg
        .split(' ')
        .find_map(|t| t.strip_prefix("ID="))
        .and_then(|v| v.parse::<u16>().ok());
    match id {
        Some(v) if v != input.ip_id && v != 0 => nfrs_scenario::mask::mask_log_ip_id(msg),
        _ => msg.to_string(),
    }
}

fn drain_wires(
    wires: &[Wire],
    buf: &mut [u8],
    events: &mut Vec<Event>,
    input: &Prepared,
) -> Result<(), String> {
    for w in wires {
        while let Some(n) = w.sock.try_recv(buf).map_err(err("capture"))? {
            if !is_barrier_frame(&buf[..n]) {
                events.push(out_event(&w.dev, &buf[..n], input));
            }
        }
    }
    Ok(())
}

/// Runs `iptables-save` once to check the tools exist; a clear error otherwise.
pub fn check_tools(opts: &Options) -> Result<(), String> {
    for t in ["ip", "ethtool", "conntrack", "nft", opts.backend.restore()] {
        run_cmd(&["sh", "-c", &format!("command -v {t}")], None)
            .map_err(|_| format!("`{t}` is not installed (apt-get install iproute2 ethtool conntrack nftables iptables)"))?;
    }
    Ok(())
}

/// The interfaces of `host` in file order (the order of `out` lines).
pub fn interface_order(host: &Host) -> Vec<&str> {
    host.interfaces.iter().map(|i| i.name.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conntrack_timeout_column_is_removed() {
        assert_eq!(
            strip_conntrack_timeout(
                "ipv4     2 tcp      6 431999 ESTABLISHED src=1.1.1.1 dst=2.2.2.2"
            ),
            "ipv4     2 tcp      6 ESTABLISHED src=1.1.1.1 dst=2.2.2.2"
        );
        assert_eq!(
            strip_conntrack_timeout("ipv4     2 udp      17 29 src=10.0.0.2 dst=203.0.113.9"),
            "ipv4     2 udp      17 src=10.0.0.2 dst=203.0.113.9"
        );
        assert_eq!(
            strip_expect_timeout("296 proto=6 src=10.0.2.2 dst=10.0.2.1"),
            "proto=6 src=10.0.2.2 dst=10.0.2.1"
        );
    }

    #[test]
    fn host_generated_frames_are_told_from_forwarded_ones() {
        let input = Prepared {
            text: String::new(),
            dev: "lan0".into(),
            frame: Vec::new(),
            time_us: 0,
            ip_id: 7,
            proto: 17,
            icmp_type: None,
        };
        let mut f = vec![0u8; 14];
        f[12] = 0x08;
        let mut ip = vec![
            0x45, 0, 0, 28, 0, 7, 0, 0, 64, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, 1,
        ];
        ip.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&ip);
        assert!(!is_host_generated(&f, &input));
        f[14 + 9] = 1;
        assert!(is_host_generated(&f, &input));
        assert!(!is_host_generated(&[0u8; 10], &input));
    }

    #[test]
    fn netfilter_log_lines_are_told_from_kernel_chatter() {
        assert!(is_netfilter_log(4, "fw: IN=lan0 OUT=wan0 SRC=1.2.3.4 "));
        assert!(is_netfilter_log(
            4,
            "nf_conntrack: nf_conntrack: table full in netns 1, dropping packet"
        ));
        assert!(!is_netfilter_log(
            6,
            "br0: port 1(lan0) entered forwarding state"
        ));
        assert!(!is_netfilter_log(12, "fw: IN=lan0 OUT=wan0 "));
        let input = Prepared {
            text: String::new(),
            dev: "lan0".into(),
            frame: Vec::new(),
            time_us: 0,
            ip_id: 3,
            proto: 1,
            icmp_type: Some(8),
        };
        assert_eq!(
            mask_log_line(
                "nf_conntrack: nf_conntrack: table full in netns 4026532384, dropping packet",
                &input
            ),
            "nf_conntrack: nf_conntrack: table full in netns *, dropping packet"
        );
        assert_eq!(
            mask_log_line("out IN= OUT=lan0 SRC=a DST=b LEN=28 TTL=64 ID=4242 PROTO=ICMP TYPE=0 CODE=0 ID=1 SEQ=1 ", &input),
            "out IN= OUT=lan0 SRC=a DST=b LEN=28 TTL=64 ID=* PROTO=ICMP TYPE=0 CODE=0 ID=1 SEQ=1 "
        );
        let same = "out IN= OUT=lan0 SRC=a DST=b LEN=28 TTL=64 ID=3 PROTO=ICMP ";
        assert_eq!(mask_log_line(same, &input), same);
    }

    #[test]
    fn log_lines_of_other_namespaces_are_left_out() {
        let d = ["lan0", "wan0", "lo"];
        assert!(names_our_devices("x IN=lan0 OUT=wan0 SRC=1.1.1.1 ", &d));
        assert!(names_our_devices("x IN= OUT=lo SRC=1.1.1.1 ", &d));
        assert!(!names_our_devices("x IN=eth0 OUT= SRC=1.1.1.1 ", &d));
        assert!(!names_our_devices("x IN=lan0 OUT=veth7 SRC=1.1.1.1 ", &d));
        assert!(names_our_devices(
            "nf_conntrack: nf_conntrack: table full in netns 1, dropping packet",
            &d
        ));
    }

    #[test]
    fn barrier_frames() {
        let mac = [2, 0xfe, 0, 0, 0, 1];
        let f = arp_probe(mac, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(f.len(), 42);
        let mut reply = f.clone();
        reply[0..6].copy_from_slice(&mac);
        reply[21] = 2;
        reply[32..38].copy_from_slice(&mac);
        assert!(is_barrier_reply(&reply, mac));
        assert!(!is_barrier_reply(&f, mac));
    }

    #[test]
    fn counter_deltas_name_the_rules_hit() {
        let a = "*filter\n:INPUT ACCEPT [0:0]\n[0:0] -A INPUT -j DROP\nCOMMIT\n";
        let b = "*filter\n:INPUT ACCEPT [0:0]\n[1:40] -A INPUT -j DROP\nCOMMIT\n";
        assert_eq!(counter_deltas(a, b), vec!["+1 filter -A INPUT -j DROP"]);
    }
}
