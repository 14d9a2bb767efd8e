//! The forwarding lab (group `lab`, root only; issue 5 item 10, issue 7 goal 6): packets a
//! second forwarded by `nfrs run` against the kernel's own forwarding, with the same ruleset,
//! in the same network-namespace lab, in one run.
//!
//! Lab: namespace `gen` (veth `g0`) — `lan0` in namespace `gw` `wan0` — (veth `s0`) namespace
//! `sink`; every veth with offloads off (AF_PACKET wants whole frames with real checksums; the
//! kernel gets the same frames). A fresh lab is built for every measurement and deleted after.
//!
//! - Generator: [`blast`] (`nfrs bench --blast`, run inside `gen` with `nsenter`): UDP frames
//!   of 60 bytes of `flows` 5-tuples (10.1.0.2+ :1024+ → 203.0.113.1-250:9), built once,
//!   sent as fast as it goes on an AF_PACKET socket with `sendmmsg` (batches of 64, qdisc
//!   bypass), straight to `lan0`'s MAC.
//! - Ruleset (both sides): the gateway group's, [`crate::gateway::gateway_rules`]: N FORWARD
//!   rules no packet matches (`-s 198.18.x.y/32 -p tcp --dport 8443 -j DROP`) before
//!   `-m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT` and `-i lan0 -o wan0 -j ACCEPT`,
//!   policy DROP, and nat `POSTROUTING -o wan0 -j MASQUERADE`. The flows are one-way, so their
//!   packets stay NEW in conntrack and every packet walks the N rules.
//! - Kernel: `gw` has the addresses (lan0 10.1.0.1/16, wan0 192.0.2.1/24, default via
//!   192.0.2.254), `ip_forward=1`, the ruleset loaded with `iptables-legacy-restore`.
//! - nfrs: `gw`'s veth ends have no address, ARP off, `ip_forward=0`, an nftables netdev
//!   ingress chain with policy drop (the kernel's stack never sees their frames; nfrs's
//!   socket still does, packet taps run before the ingress hook); `nfrs run --store DIR
//!   --host HOST.toml` in `gw` (same addresses and route in the host file), the ruleset
//!   loaded with `nfrs iptables-restore` through the daemon. Once with `NFRS_PACKET_IO=packet`
//!   (the TPACKET_V3 ring), once with `NFRS_PACKET_IO=xdp`, each only when the daemon's
//!   startup report names that method for lan0.
//! - Sink: the next hop 192.0.2.254 is a static neighbour with a MAC nobody has, so the sink's
//!   kernel drops every frame as not its own at once (no answers flow back); forwarded packets
//!   are `s0`'s receive counter plus its receive drops (`ip -s -j link`: frames `wan0` sent
//!   that the receive backlog refused, forwarded all the same).
//! - CPUs (2 or more): the generator pinned to the first CPU; everything `gw` does gets the
//!   second: RPS on `lan0` moves its receive work there on both sides (without it the kernel
//!   would forward inside the generator's own send calls, and nfrs's ring copy or XDP program
//!   would run on the generator's CPU), `nfrs run` is pinned there with `taskset`, its AF_XDP
//!   in generic mode (a veth runs native XDP on the sending CPU, before RPS).
//! - Two workloads. Existing flows: the generator sends its 1000 flows round and round, so
//!   after each flow's first packet every packet finds its connection (a conntrack hit; still
//!   NEW in state, one-way, so it walks the N rules). New connections: [`NEW_FLOWS`] frames
//!   of distinct 5-tuples sent once each ([`new_flow_frame`]), each a conntrack miss, a rule
//!   walk, a MASQUERADE tuple and an insert, at N = 10; the rate is the sink's between 10 %
//!   and 90 % of its final count, and the forwarder's connection count is checked after.
//! - Measure: rounds alternate kernel and nfrs (the machine's load drifts), each a fresh lab,
//!   a warm-up and consecutive windows; a window's figure is what the sink got over its
//!   length; the median window is reported, with the offered rate (what `g0` sent, counted
//!   the same way) and the CPU the forwarder got in the notes, so a reader sees when the
//!   generator or the machine's other work was the limit. A second row divides by the CPU
//!   time the forwarder used (see [`lab_figures`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::figures::Config;
use crate::kernel;
use crate::report::{Better, Figure, Report};

/// UDP 5-tuples of the generator.
pub const FLOWS: usize = 1000;
/// The next hop's MAC: nobody's, so the sink drops forwarded frames as "other host".
const NEXT_HOP_MAC: &str = "02:00:00:00:00:fe";
/// Frames a `sendmmsg` call.
const BATCH: usize = 64;

/// Timing of one measurement.
#[derive(Clone, Copy, Debug)]
struct Timing {
    warmup: Duration,
    window: Duration,
    windows: usize,
}

/// One frame of flow `i` (Ethernet + IPv4 + UDP + 18 bytes: 60 bytes, the minimum frame).
pub fn flow_frame(i: usize, src: [u8; 6], dst: [u8; 6]) -> Result<Vec<u8>, String> {
    use nfrs_wire::build::{build_frame, FrameCtx};
    use nfrs_wire::ethernet::MacAddr;
    let client = std::net::Ipv4Addr::from(0x0a01_0002u32 + i as u32);
    let server = format!("203.0.113.{}", 1 + i % 250);
    let line = format!(
        "udp {client}:{} > {server}:9 len=18",
        1024 + (i % 60_000) as u16
    );
    let spec = nfrs_wire::line::PacketSpec::parse(&line).map_err(|e| format!("{line}: {e:?}"))?;
    let ctx = FrameCtx {
        src_mac: MacAddr(src),
        dst_mac: MacAddr(dst),
        ip_id: 1,
        allow_masked: false,
    };
    build_frame(&spec, &ctx).map_err(|e| format!("{line}: {e:?}"))
}

/// Flow `i` of the new-connection mode: a 5-tuple no other `i` below 65000 * 60000 has
/// (source 10.1.0.2 + i mod 65000, inside lan0's /16; source port 1024 + i / 65000;
/// destination 203.0.113.(1 + i mod 250):9), written into `template` (a [`flow_frame`]).
pub fn new_flow_frame(template: &[u8], i: usize) -> Vec<u8> {
    let client = 0x0a01_0002u32 + (i % 65_000) as u32;
    let sport = 1024 + ((i / 65_000) % 60_000) as u16;
    let server = u32::from_be_bytes([203, 0, 113, 1 + (i % 250) as u8]);
    retuple(template, client, sport, server)
}

/// `frame` (Ethernet + IPv4 without options + UDP) with another source address, source port
/// and destination address, both checksums recomputed.
fn retuple(frame: &[u8], client: u32, sport: u16, server: u32) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[26..30].copy_from_slice(&client.to_be_bytes());
    f[30..34].copy_from_slice(&server.to_be_bytes());
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[24..26].copy_from_slice(&[0, 0]);
    let ip = !ones_sum(&f[14..34], 0);
    f[24..26].copy_from_slice(&ip.to_be_bytes());
    let udp_len = u16::from_be_bytes([f[38], f[39]]) as usize;
    f[40..42].copy_from_slice(&[0, 0]);
    // The UDP checksum covers a pseudo header: addresses, protocol, UDP length (RFC 768).
    let mut pseudo = [0u8; 12];
    pseudo[..8].copy_from_slice(&f[26..34]);
    pseudo[9] = 17;
    pseudo[10..12].copy_from_slice(&(udp_len as u16).to_be_bytes());
    let sum = ones_sum(&f[34..34 + udp_len], ones_sum(&pseudo, 0) as u32);
    // A computed zero is sent as all ones (zero means "no checksum" in UDP over IPv4).
    let udp = match !sum {
        0 => 0xffff,
        c => c,
    };
    f[40..42].copy_from_slice(&udp.to_be_bytes());
    f
}

/// The folded one's-complement sum of `data` (16-bit big-endian words) added to `start`.
fn ones_sum(data: &[u8], start: u32) -> u16 {
    let mut sum = start;
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let mut m = [0u8; 6];
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return Err(format!("bad MAC `{s}`"));
    }
    for (d, p) in m.iter_mut().zip(parts) {
        *d = u8::from_str_radix(p, 16).map_err(|_| format!("bad MAC `{s}`"))?;
    }
    Ok(m)
}

/// Pins the calling thread (and what it starts later) to `cpu`.
fn pin_to(cpu: usize) -> Result<(), String> {
    // SAFETY: cpu_set_t is plain data (a bit array); zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes a bit inside `set`; `cpu` is below CPU_SETSIZE (checked).
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(format!("cpu {cpu} out of range"));
    }
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: the pointer and size describe `set`, alive for the call; pid 0 is this thread.
    let r = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
    if r != 0 {
        return Err(format!(
            "sched_setaffinity({cpu}): {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// `nfrs bench --blast DEV SRCMAC DSTMAC FLOWS SECS [CPU|-] [new]`: sends the flows' frames
/// on `DEV` (in the caller's network namespace) as fast as it can for `SECS` seconds, pinned
/// to `CPU` if given; returns `sent N secs S errors E`. With `new`, FLOWS frames of distinct
/// 5-tuples ([`new_flow_frame`]), each sent once (every frame opens a connection), then it
/// stops (or at SECS).
pub fn blast(args: &[String]) -> Result<String, String> {
    let usage = "--blast DEV SRCMAC DSTMAC FLOWS SECS [CPU|-] [new]";
    if args.len() < 5 {
        return Err(format!("usage: nfrs bench {usage}"));
    }
    let dev = &args[0];
    let src = parse_mac(&args[1])?;
    let dst = parse_mac(&args[2])?;
    let flows: usize = args[3]
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or("FLOWS must be a positive number")?;
    let secs: f64 = args[4]
        .parse()
        .ok()
        .filter(|s: &f64| *s > 0.0)
        .ok_or("SECS must be a positive number")?;
    let once = match args.get(6).map(String::as_str) {
        None => false,
        Some("new") => true,
        Some(m) => return Err(format!("unknown mode `{m}`: usage: nfrs bench {usage}")),
    };
    if args.len() > 7 {
        return Err(format!("usage: nfrs bench {usage}"));
    }
    match args.get(5).map(String::as_str) {
        None | Some("-") => {}
        Some(c) => pin_to(c.parse().map_err(|_| "CPU must be a number or -")?)?,
    }
    let frames: Vec<Vec<u8>> = if once {
        let template = flow_frame(0, src, dst)?;
        (0..flows).map(|i| new_flow_frame(&template, i)).collect()
    } else {
        (0..flows)
            .map(|i| flow_frame(i, src, dst))
            .collect::<Result<_, _>>()?
    };
    let (sent, errors, took) = send_frames(dev, &frames, Duration::from_secs_f64(secs), once)?;
    Ok(format!("sent {sent} secs {took:.3} errors {errors}"))
}

/// An AF_PACKET socket on `dev` sending `frames` round and round with `sendmmsg` until
/// `dur` has passed (`once`: each frame once, then it stops): (frames sent, failed calls,
/// seconds).
fn send_frames(
    dev: &str,
    frames: &[Vec<u8>],
    dur: Duration,
    once: bool,
) -> Result<(u64, u64, f64), String> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let cname = std::ffi::CString::new(dev.as_bytes()).map_err(|_| "bad device name")?;
    // SAFETY: `cname` is a NUL-terminated string alive for the call.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        return Err(format!("no interface `{dev}` in this namespace"));
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2) call; the result is checked before use.
    let raw = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(proto),
        )
    };
    if raw < 0 {
        return Err(format!(
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `raw` is a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    // Protocol 0: this socket only sends, it receives nothing.
    sll.sll_protocol = 0;
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: the pointer and length describe `sll`, alive for the call.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r != 0 {
        return Err(format!(
            "bind to {dev}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let one: libc::c_int = 1;
    // Best effort: straight to the driver, no qdisc (a veth has none anyway).
    // SAFETY: the pointer and length describe `one`, alive for the call.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_QDISC_BYPASS,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    // A send buffer far larger than the frames in flight: a veth keeps a sent frame charged
    // to this socket until the far side frees it, so the default (about 270 small frames)
    // would make the generator wait for the forwarder; with this, an overloaded forwarder
    // drops at its receive backlog instead, as a NIC's ring overflows. Best effort (root).
    let sndbuf: libc::c_int = 64 << 20;
    // SAFETY: the pointer and length describe `sndbuf`, alive for the call.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUFFORCE,
            &sndbuf as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        )
    };
    // One iovec a frame; the message array repeats the first BATCH frames at its end so any
    // BATCH consecutive messages from any start below `frames.len()` are contiguous.
    let mut iovs: Vec<libc::iovec> = frames
        .iter()
        .map(|f| libc::iovec {
            iov_base: f.as_ptr() as *mut libc::c_void,
            iov_len: f.len(),
        })
        .collect();
    let n = frames.len();
    let mut msgs: Vec<libc::mmsghdr> = (0..n + BATCH)
        .map(|i| {
            // SAFETY: msghdr/mmsghdr are plain data; zeroed is a valid value.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = &mut iovs[i % n] as *mut libc::iovec;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let (mut sent, mut errors, mut at) = (0u64, 0u64, 0usize);
    let t0 = Instant::now();
    while t0.elapsed() < dur && !(once && sent >= n as u64) {
        let count = if once { BATCH.min(n - at) } else { BATCH };
        // SAFETY: msgs[at..at + count] exist (at < n, count <= BATCH, msgs has n + BATCH
        // entries); each points at an iovec of `iovs`, which points into `frames`; all outlive
        // the call and are not moved while the kernel reads them (the kernel writes only
        // msg_len).
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs[at..].as_mut_ptr(), count as u32, 0) };
        if r > 0 {
            sent += r as u64;
            at = (at + r as usize) % n;
        } else {
            errors += 1;
        }
    }
    // The messages point into `iovs`: both live until here.
    drop(msgs);
    drop(iovs);
    Ok((sent, errors, t0.elapsed().as_secs_f64()))
}

/// The nfrs binary for `nfrs run` and `nfrs iptables-restore`: `$NFRS_BIN`, this process when
/// it is `nfrs`, else `nfrs` next to it or one directory up (a cargo example's place).
pub fn nfrs_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("NFRS_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    if exe.file_name().is_some_and(|n| n == "nfrs") {
        return Ok(exe);
    }
    let dir = exe.parent().ok_or("no parent directory")?;
    for cand in [dir.join("nfrs"), dir.join("../nfrs")] {
        if cand.is_file() {
            return Ok(cand);
        }
    }
    Err("the nfrs binary was not found (run `nfrs bench`, or set NFRS_BIN)".into())
}

/// The argv that runs `--blast` with this build's code: this process when it is `nfrs` or
/// the `bench` example, else the nfrs binary.
fn blaster_argv() -> Result<Vec<String>, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let name = exe
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let s = |p: &Path| p.to_string_lossy().into_owned();
    Ok(match name.as_str() {
        "nfrs" => vec![s(&exe), "bench".into(), "--blast".into()],
        "bench" => vec![s(&exe), "--blast".into()],
        _ => vec![s(&nfrs_binary()?), "bench".into(), "--blast".into()],
    })
}

/// Why the lab cannot run here, or `Ok` with the nfrs binary.
pub fn availability() -> Result<PathBuf, String> {
    tools_available()?;
    nfrs_binary()
}

/// Root and the tools the lab itself needs (not the nfrs binary).
fn tools_available() -> Result<(), String> {
    if !kernel::is_root() {
        return Err(
            "not root (namespaces, veths, iptables and nfrs run need CAP_NET_ADMIN)".into(),
        );
    }
    for tool in [
        "ip",
        "nsenter",
        "ethtool",
        "iptables-legacy-restore",
        "taskset",
        "nft",
    ]
    .iter()
    .chain(if rt_requested() { &["chrt"][..] } else { &[] })
    {
        if kernel::find_tool(tool).is_none() {
            return Err(format!("`{tool}` not found on PATH"));
        }
    }
    Ok(())
}

/// Runs `f` on a thread that has entered network namespace `ns` (setns affects only the
/// calling thread; the thread ends with `f`). The figures run the generator as a process
/// (`nfrs bench --blast`); the tests use this to need no binary.
#[cfg(test)]
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{ns}");
    let file = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns(2) on an open namespace file; it changes only this thread's
            // network namespace, and this thread runs nothing else than `f`.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            if r != 0 {
                return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
            }
            Ok(f())
        })
        .join()
        .map_err(|_| "the namespace thread panicked".to_string())?
    })
}

/// Runs `argv`, `Err` with its stderr unless it exits 0; returns stdout.
fn sh(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", argv.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The three namespaces of one measurement, deleted (with whatever runs in them) on drop.
struct Lab {
    gen: String,
    gw: String,
    sink: String,
    /// The daemon, when nfrs forwards.
    daemon: Option<Child>,
    work: PathBuf,
    lock: PathBuf,
}

/// Deletes namespaces `nfrs-bench-<pid>-lab-*` left by runs whose process is gone.
fn clean_stale() {
    let Ok(list) = sh(&["ip", "netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("nfrs-bench-") else {
            continue;
        };
        let Some((pid, _)) = rest.split_once("-lab-") else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = sh(&["ip", "netns", "del", name]);
            // A run killed during a real-time kernel round may have left a ksoftirqd at
            // SCHED_FIFO: they are all SCHED_OTHER normally.
            for cpu in cpus() {
                if let Ok(rt) = RtSoftirq::raise_to(cpu, None) {
                    std::mem::forget(rt);
                }
            }
        }
    }
}

impl Lab {
    /// gen — gw — sink with the veths up and offloads off; nothing else configured.
    fn build() -> Result<Lab, String> {
        clean_stale();
        let pid = std::process::id();
        let name = |r: &str| format!("nfrs-bench-{pid}-lab-{r}");
        let work = std::env::temp_dir().join(format!("nfrs-bench-{pid}-lab"));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
        let lab = Lab {
            gen: name("gen"),
            gw: name("gw"),
            sink: name("sink"),
            daemon: None,
            lock: work.join("xtables.lock"),
            work,
        };
        for ns in [&lab.gen, &lab.gw, &lab.sink] {
            let _ = sh(&["ip", "netns", "del", ns]);
            sh(&["ip", "netns", "add", ns])?;
            lab.exec(ns, &["ip", "link", "set", "lo", "up"])?;
            lab.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", "1")?;
            lab.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", "1")?;
        }
        for (ns, dev, gwdev) in [(&lab.gen, "g0", "lan0"), (&lab.sink, "s0", "wan0")] {
            sh(&[
                "ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", gwdev,
                "netns", &lab.gw,
            ])?;
            for (n, d) in [(ns.as_str(), dev), (lab.gw.as_str(), gwdev)] {
                let _ = lab.exec(
                    n,
                    &[
                        "ethtool", "-K", d, "tx", "off", "rx", "off", "tso", "off", "gso", "off",
                        "gro", "off",
                    ],
                );
                lab.exec(n, &["ip", "link", "set", d, "up"])?;
            }
        }
        Ok(lab)
    }

    /// Runs `argv` inside namespace `ns` (nsenter: the namespace's network, the host's /sys).
    fn exec(&self, ns: &str, argv: &[&str]) -> Result<String, String> {
        let netns = format!("--net=/run/netns/{ns}");
        let mut v = vec!["nsenter", netns.as_str()];
        v.extend_from_slice(argv);
        let out = Command::new(v[0])
            .args(&v[1..])
            .env("XTABLES_LOCKFILE", &self.lock)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run nsenter: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`{}` in {ns} failed: {}",
                argv.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Writes a sysctl of namespace `ns` (/proc/sys/net is the reader's namespace's).
    fn sysctl(&self, ns: &str, name: &str, value: &str) -> Result<(), String> {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        self.exec(ns, &["sh", "-c", &format!("echo {value} > {path}")])
            .map(|_| ())
    }

    /// Writes a file of namespace `ns`'s sysfs (`ip netns exec` mounts the namespace's /sys).
    fn sysfs_write(&self, ns: &str, path: &str, value: &str) -> Result<(), String> {
        sh(&[
            "ip",
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            &format!("echo {value} > {path}"),
        ])
        .map(|_| ())
    }

    fn mac(&self, ns: &str, dev: &str) -> Result<String, String> {
        let out = sh(&["ip", "-n", ns, "-j", "link", "show", "dev", dev])?;
        let v: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| format!("ip -j link: {e}"))?;
        v[0]["address"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no MAC for {dev} in {ns}"))
    }

    /// (tx packets + tx dropped, rx packets + rx dropped) of `dev` in `ns`, and when they were
    /// read. On a veth, rx dropped counts the frames its peer sent that the receive backlog
    /// refused: the sink's rx drops are still frames the forwarder forwarded.
    fn counters(&self, ns: &str, dev: &str) -> Result<(u64, u64, Instant), String> {
        let out = sh(&["ip", "-n", ns, "-s", "-j", "link", "show", "dev", dev])?;
        let at = Instant::now();
        let v: serde_json::Value =
            serde_json::from_str(&out).map_err(|e| format!("ip -s -j link: {e}"))?;
        let s = &v[0]["stats64"];
        let get = |dir: &str, k: &str| s[dir][k].as_u64().unwrap_or(0);
        Ok((
            get("tx", "packets") + get("tx", "dropped"),
            get("rx", "packets") + get("rx", "dropped"),
            at,
        ))
    }

    /// The gateway's neighbour and route, as both forwarders see them.
    fn gw_host_toml(&self) -> String {
        format!(
            "[[interface]]\nname = \"lan0\"\naddress = \"10.1.0.1/16\"\n\n[[interface]]\nname = \"wan0\"\naddress = \"192.0.2.1/24\"\n\n[[route]]\nto = \"default\"\nvia = \"192.0.2.254\"\ndev = \"wan0\"\n\n[[neighbour]]\naddress = \"192.0.2.254\"\nmac = \"{NEXT_HOP_MAC}\"\ndev = \"wan0\"\n\n[sysctl]\n\"net.ipv4.ip_forward\" = \"1\"\n\n[live]\nmode = \"routed\"\n"
        )
    }

    /// The kernel forwards: addresses, route, static next hop, ip_forward, the ruleset.
    fn kernel_gateway(&self, rules: &Path, rps_cpu: Option<usize>) -> Result<(), String> {
        let gw = self.gw.as_str();
        sh(&["ip", "-n", gw, "addr", "add", "10.1.0.1/16", "dev", "lan0"])?;
        sh(&["ip", "-n", gw, "addr", "add", "192.0.2.1/24", "dev", "wan0"])?;
        sh(&[
            "ip",
            "-n",
            gw,
            "route",
            "add",
            "default",
            "via",
            "192.0.2.254",
            "dev",
            "wan0",
        ])?;
        sh(&[
            "ip",
            "-n",
            gw,
            "neigh",
            "replace",
            "192.0.2.254",
            "lladdr",
            NEXT_HOP_MAC,
            "dev",
            "wan0",
            "nud",
            "permanent",
        ])?;
        self.sysctl(gw, "net.ipv4.ip_forward", "1")?;
        if let Some(cpu) = rps_cpu {
            self.sysfs_write(
                gw,
                "/sys/class/net/lan0/queues/rx-0/rps_cpus",
                &format!("{:x}", 1u64 << cpu),
            )?;
        }
        let f = std::fs::File::open(rules).map_err(|e| format!("{}: {e}", rules.display()))?;
        let out = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{gw}"))
            .args(["iptables-legacy-restore", "-w"])
            .env("XTABLES_LOCKFILE", &self.lock)
            .stdin(f)
            .output()
            .map_err(|e| format!("cannot run iptables-legacy-restore: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "iptables-legacy-restore: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }

    /// nfrs forwards: the kernel of `gw` silent on lan0/wan0, `nfrs run` started there (pinned
    /// to `cpu`), the ruleset restored through it. Returns the daemon's lan0 report line.
    fn nfrs_gateway(
        &mut self,
        nfrs: &Path,
        rules: &Path,
        io: Option<&str>,
        cpu: Option<usize>,
    ) -> Result<String, String> {
        let gw = self.gw.clone();
        for d in ["lan0", "wan0"] {
            sh(&["ip", "-n", &gw, "link", "set", d, "arp", "off"])?;
        }
        // The kernel's own IP stack kept off the interfaces nfrs owns, as a user-space data
        // plane is deployed: an nftables netdev ingress chain with policy drop on both. Frames
        // reach nfrs's socket first (packet taps run before the ingress hook), then the kernel
        // drops them, where it would otherwise look each one up in its routing table (a route
        // entry made and freed per frame) only to drop it (ip_forward=0).
        let ingress = "table netdev nfrs_off {\n chain lan0 { type filter hook ingress device lan0 priority 0; policy drop; }\n chain wan0 { type filter hook ingress device wan0 priority 0; policy drop; }\n}\n";
        let nft = self.work.join("ingress.nft");
        std::fs::write(&nft, ingress).map_err(|e| format!("{}: {e}", nft.display()))?;
        self.exec(&gw, &["nft", "-f", &nft.to_string_lossy()])?;
        self.sysctl(&gw, "net.ipv4.ip_forward", "0")?;
        // As for the kernel: lan0's receive work (the copy into the ring, the XDP program) on
        // the forwarder's CPU, not the generator's.
        {
            if let Some(cpu) = cpu {
                self.sysfs_write(
                    &gw,
                    "/sys/class/net/lan0/queues/rx-0/rps_cpus",
                    &format!("{:x}", 1u64 << cpu),
                )?;
            }
        }
        let store = self.work.join("store");
        let host = self.work.join("gw.toml");
        std::fs::write(&host, self.gw_host_toml()).map_err(|e| e.to_string())?;
        let log_path = self.work.join("daemon.log");
        let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
        // `ip netns exec`: the daemon reads the namespace's /sys (interface indexes, MACs).
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &gw]);
        if rt_requested() {
            c.args(["chrt", "-f", "1"]);
        }
        if let Some(cpu) = cpu {
            c.args(["taskset", "-c", &cpu.to_string()]);
        }
        c.arg(nfrs)
            .arg("run")
            .arg("--store")
            .arg(&store)
            .arg("--host")
            .arg(&host)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        match io {
            Some(io) => c.env("NFRS_PACKET_IO", io),
            None => c.env_remove("NFRS_PACKET_IO"),
        };
        // A veth runs a native XDP program in its NAPI poll, on the sending CPU (the
        // generator's), before RPS; generic XDP runs after RPS, on the forwarder's CPU.
        if io == Some("xdp") && cpu.is_some() {
            c.env("NFRS_XDP_MODE", "generic");
        }
        self.daemon = Some(
            c.spawn()
                .map_err(|e| format!("cannot start nfrs run: {e}"))?,
        );
        let t0 = Instant::now();
        let text = loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.contains("mode; control socket") {
                break text;
            }
            if let Some(Ok(Some(st))) = self.daemon.as_mut().map(|d| d.try_wait()) {
                return Err(format!("nfrs run exited at start ({st}): {}", text.trim()));
            }
            if t0.elapsed() > Duration::from_secs(15) {
                return Err(format!("nfrs run did not start: {}", text.trim()));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let f = std::fs::File::open(rules).map_err(|e| format!("{}: {e}", rules.display()))?;
        let out = Command::new(nfrs)
            .arg("iptables-restore")
            .env("NFRS_STORE", &store)
            .stdin(f)
            .output()
            .map_err(|e| format!("cannot run nfrs iptables-restore: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "nfrs iptables-restore through the daemon: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let line = text
            .lines()
            .find(|l| l.starts_with("nfrs run: lan0 "))
            .unwrap_or("nfrs run: lan0: (no report)")
            .to_string();
        Ok(line)
    }

    /// Starts the generator in `gen`, measures `t`, returns the windows' (forwarded pps,
    /// offered pps) and `snap` taken when the first window starts and the last one ends, then
    /// waits for the generator to finish.
    fn measure(
        &self,
        t: Timing,
        gen_cpu: Option<usize>,
        snap: &dyn Fn() -> Snap,
    ) -> Result<Measured, String> {
        let src = self.mac(&self.gen, "g0")?;
        let dst = self.mac(&self.gw, "lan0")?;
        let secs = t.warmup + t.window * t.windows as u32 + Duration::from_millis(500);
        let mut argv = blaster_argv()?;
        argv.extend([
            "g0".to_string(),
            src,
            dst,
            FLOWS.to_string(),
            format!("{:.3}", secs.as_secs_f64()),
        ]);
        if let Some(c) = gen_cpu {
            argv.push(c.to_string());
        }
        let mut child = self.spawn_generator(&argv)?;
        std::thread::sleep(t.warmup);
        let mut out = Vec::with_capacity(t.windows);
        let first = snap();
        let mut prev = (
            self.counters(&self.gen, "g0")?,
            self.counters(&self.sink, "s0")?,
        );
        for _ in 0..t.windows {
            std::thread::sleep(t.window);
            let now = (
                self.counters(&self.gen, "g0")?,
                self.counters(&self.sink, "s0")?,
            );
            let offered = (now.0 .0 - prev.0 .0) as f64 / (now.0 .2 - prev.0 .2).as_secs_f64();
            let forwarded = (now.1 .1 - prev.1 .1) as f64 / (now.1 .2 - prev.1 .2).as_secs_f64();
            out.push((forwarded, offered));
            prev = now;
        }
        let last = snap();
        let ran = child
            .0
            .take()
            .expect("spawned")
            .wait_with_output()
            .map_err(|e| format!("waiting for the generator: {e}"))?;
        if !ran.status.success() {
            return Err(format!(
                "the generator failed: {}",
                String::from_utf8_lossy(&ran.stderr).trim()
            ));
        }
        Ok((out, first, last))
    }
}

impl Lab {
    /// The packets the ruleset's `-i lan0 -o wan0 -j ACCEPT` counted (iptables-save -c of
    /// the forwarder in charge).
    fn forward_accepts(&self, nfrs: &Path, fwd: Forwarder) -> Result<u64, String> {
        self.forward_counters(nfrs, fwd).map(|(a, _)| a)
    }

    /// [`Lab::forward_accepts`] and the FORWARD policy and accept lines of the listing (for a
    /// failure report).
    fn forward_counters(&self, nfrs: &Path, fwd: Forwarder) -> Result<(u64, String), String> {
        let saved = match fwd {
            Forwarder::Kernel => {
                self.exec(&self.gw, &["iptables-legacy-save", "-c", "-t", "filter"])?
            }
            Forwarder::Nfrs(_) => {
                let out = Command::new(nfrs)
                    .args(["iptables-save", "-c", "-t", "filter"])
                    .env("NFRS_STORE", self.work.join("store"))
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run nfrs iptables-save: {e}"))?;
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
        };
        let accepted = accept_count(&saved)
            .ok_or_else(|| format!("no lan0 -> wan0 ACCEPT counter in:\n{saved}"))?;
        let lines: Vec<&str> = saved
            .lines()
            .filter(|l| l.starts_with(":FORWARD") || l.contains("ACCEPT"))
            .collect();
        Ok((accepted, lines.join(" | ")))
    }

    /// Connections in the forwarder's table: the kernel's nf_conntrack_count in `gw`, or
    /// `nfrs conntrack -C` through the daemon.
    fn conntrack_count(&self, nfrs: &Path, fwd: Forwarder) -> Result<u64, String> {
        let text = match fwd {
            Forwarder::Kernel => self.exec(
                &self.gw,
                &["cat", "/proc/sys/net/netfilter/nf_conntrack_count"],
            )?,
            Forwarder::Nfrs(_) => {
                let out = Command::new(nfrs)
                    .args(["conntrack", "-C"])
                    .env("NFRS_STORE", self.work.join("store"))
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| format!("cannot run nfrs conntrack -C: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "nfrs conntrack -C: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                String::from_utf8_lossy(&out.stdout).into_owned()
            }
        };
        text.trim()
            .parse()
            .map_err(|_| format!("connection count: not a number: `{}`", text.trim()))
    }

    /// Starts the frame generator in gen's namespace with `argv` (nsenter, output piped);
    /// killed when the handle drops.
    fn spawn_generator(&self, argv: &[String]) -> Result<KillOnDrop, String> {
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.gen))
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start the generator: {e}"))?;
        Ok(KillOnDrop(Some(child)))
    }

    /// The new-connection blast: `flows` frames of distinct 5-tuples, each sent once. The
    /// sink's counter is sampled every 2 ms until it settles; the rate is taken between the
    /// moments it passed 10 % and 90 % of its final count (the steady middle: no start-up, no
    /// draining of queued frames after the generator stopped). Returns (forwarded connections
    /// a second, offered a second, frames sent, frames the sink got).
    fn measure_new(
        &self,
        flows: usize,
        gen_cpu: Option<usize>,
    ) -> Result<(f64, f64, u64, u64), String> {
        let src = self.mac(&self.gen, "g0")?;
        let dst = self.mac(&self.gw, "lan0")?;
        // A process in the sink's namespace: /proc/PID/net/dev is that namespace's, read
        // without starting a tool per sample.
        let reader = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.sink))
            .args(["sleep", "120"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the sink reader: {e}"))?;
        let reader = KillOnDrop(Some(reader));
        let dev_file = format!("/proc/{}/net/dev", reader.0.as_ref().map_or(0, |c| c.id()));
        let sunk = || {
            std::fs::read_to_string(&dev_file)
                .ok()
                .and_then(|t| net_dev_received(&t, "s0"))
        };
        let t0 = Instant::now();
        // nsenter enters the namespace before it starts sleep.
        let base = loop {
            if let Some(c) = sunk() {
                break c;
            }
            if t0.elapsed() > Duration::from_secs(5) {
                return Err("the sink reader never saw s0".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut argv = blaster_argv()?;
        argv.extend([
            "g0".to_string(),
            src,
            dst,
            flows.to_string(),
            "10".to_string(),
            gen_cpu.map_or("-".to_string(), |c| c.to_string()),
            "new".to_string(),
        ]);
        let mut child = self.spawn_generator(&argv)?;
        let t0 = Instant::now();
        let mut samples: Vec<(f64, u64)> = Vec::with_capacity(16_384);
        let (mut last, mut changed, mut done) = (0u64, t0, None::<Instant>);
        let settle = Duration::from_millis(200);
        loop {
            let c = sunk()
                .ok_or("the sink reader is gone")?
                .saturating_sub(base);
            let now = Instant::now();
            samples.push(((now - t0).as_secs_f64(), c));
            if c != last {
                (last, changed) = (c, now);
            }
            if done.is_none() {
                if let Some(Ok(Some(_))) = child.0.as_mut().map(|c| c.try_wait()) {
                    done = Some(now);
                }
            }
            if done.is_some_and(|d| now - d > settle) && now - changed > settle {
                break;
            }
            if now - t0 > Duration::from_secs(20) {
                return Err("the new-connection blast did not end within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let ran = child
            .0
            .take()
            .expect("spawned")
            .wait_with_output()
            .map_err(|e| format!("waiting for the generator: {e}"))?;
        let said = String::from_utf8_lossy(&ran.stdout).into_owned();
        if !ran.status.success() {
            return Err(format!(
                "the generator failed: {}",
                String::from_utf8_lossy(&ran.stderr).trim()
            ));
        }
        let (sent, secs) = parse_blast(&said).ok_or_else(|| format!("generator said `{said}`"))?;
        let rate = middle_rate(&samples, last)
            .ok_or_else(|| format!("too few frames reached the sink ({last} of {sent})"))?;
        Ok((rate, sent as f64 / secs, sent, last))
    }
}

/// Frames received (packets + dropped: see [`Lab::counters`]) by `dev` in /proc/net/dev text.
fn net_dev_received(text: &str, dev: &str) -> Option<u64> {
    let line = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(dev)?.strip_prefix(':'))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .take(4)
        .filter_map(|x| x.parse().ok())
        .collect();
    // receive: bytes packets errs drop
    Some(v.get(1)? + v.get(3)?)
}

/// (sent, seconds) from the generator's `sent N secs S errors E`.
fn parse_blast(s: &str) -> Option<(u64, f64)> {
    let w: Vec<&str> = s.split_whitespace().collect();
    match w.as_slice() {
        ["sent", n, "secs", t, ..] => Some((n.parse().ok()?, t.parse().ok()?)),
        _ => None,
    }
}

/// The rate of a rising count between the first samples at 10 % and at 90 % of `total`
/// ((seconds, count) samples in time order); `None` for fewer than 1000 or no time between.
fn middle_rate(samples: &[(f64, u64)], total: u64) -> Option<f64> {
    if total < 1000 {
        return None;
    }
    let at = |share: u64| samples.iter().find(|s| s.1 * 10 >= total * share);
    let (lo, hi) = (at(1)?, at(9)?);
    (hi.0 > lo.0).then(|| (hi.1 - lo.1) as f64 / (hi.0 - lo.0))
}

/// One new-connection measurement: forwarded connections a second (the blast's middle),
/// offered a second, frames sent, frames the sink got, connections in the forwarder's table.
struct NewRun {
    rate: f64,
    offered: f64,
    sent: u64,
    sunk: u64,
    entries: u64,
}

/// Frames of the new-connection blast: below nf_conntrack_max (262144, the kernel's default
/// here and nfrs's), so no connection is early-dropped and each stays for the count.
pub const NEW_FLOWS: usize = 200_000;

fn run_new(
    nfrs: &Path,
    rules: &Path,
    fwd: Forwarder,
    cpus: (Option<usize>, Option<usize>),
) -> Result<NewRun, String> {
    let (mut lab, _) = open_lab(nfrs, rules, fwd, cpus)?;
    let _rt = match (fwd, cpus.1) {
        (Forwarder::Kernel, Some(c)) if rt_requested() => Some(RtSoftirq::raise(c)?),
        _ => None,
    };
    let (rate, offered, sent, sunk) = lab.measure_new(NEW_FLOWS, cpus.0)?;
    if let Some(d) = lab.daemon.as_mut() {
        if let Ok(Some(st)) = d.try_wait() {
            return Err(format!("nfrs run exited during the measurement ({st})"));
        }
    }
    let accepted = lab.forward_accepts(nfrs, fwd)?;
    let entries = lab.conntrack_count(nfrs, fwd)?;
    // Every frame the sink got passed the accept and is a connection of its own, confirmed
    // in the table before it was sent on; every connection came from a frame sent.
    if sunk > accepted || sunk > entries || entries > sent {
        return Err(format!(
            "inconsistent counts: sent {sent}, FORWARD accept {accepted}, connections {entries}, the sink got {sunk}"
        ));
    }
    Ok(NewRun {
        rate,
        offered,
        sent,
        sunk,
        entries,
    })
}

/// A moment of a measurement: when, the forwarder CPU's ticks (busy, softirq, total), the
/// daemon's CPU ticks.
type Snap = (Instant, Option<(u64, u64, u64)>, Option<u64>);

/// The windows' (forwarded pps, offered pps), and the moments the windows start and end.
type Measured = (Vec<(f64, f64)>, Snap, Snap);

/// A child killed and reaped when dropped (an error path must not leave the generator).
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            // SIGTERM: the daemon saves and exits; SIGKILL if it does not within 5 s.
            // SAFETY: kill(2) on our own child's pid (not yet reaped, so not reused).
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = d.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = d.kill();
            let _ = d.wait();
        }
        for ns in [&self.gen, &self.gw, &self.sink] {
            if sh(&["ip", "netns", "del", ns]).is_err() {
                eprintln!("nfrs bench: warning: could not delete network namespace {ns} (run `ip netns del {ns}`)");
            }
        }
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Which forwarder a measurement runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Forwarder {
    Kernel,
    /// `nfrs run` with this `NFRS_PACKET_IO`.
    Nfrs(&'static str),
}

/// One measurement's windows: (forwarded pps, offered pps) each; the forwarder CPU's time
/// (busy, softirq) and the daemon's CPU time over the windows, as fractions of one CPU; the
/// daemon's lan0 report line.
struct Run {
    windows: Vec<(f64, f64)>,
    cpu: Option<(f64, f64)>,
    daemon_cpu: Option<f64>,
    io_line: Option<String>,
    /// Packets the FORWARD lan0 -> wan0 accept counted, and frames the sink got, in the lab's
    /// whole life (warm-up and generator tail included).
    accepted: (u64, u64),
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// CPUs this process may use, in order.
fn cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer and size describe `set`, writable for the call.
    let r = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if r != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET reads a bit of `set` below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// (busy, softirq, total) ticks of CPU `cpu` from /proc/stat (busy: all but idle and iowait).
fn cpu_ticks(cpu: usize) -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let tag = format!("cpu{cpu}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(tag.as_str()))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((total - idle, *v.get(6)?, total))
}

/// User + system ticks of process `pid` (all its threads).
fn proc_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// `NFRS_BENCH_RT=1`: both forwarders run at real-time priority (SCHED_FIFO 1) on their
/// CPU, so the machine's other work cannot take it: `nfrs run` under `chrt`, and for the
/// kernel's rounds that CPU's `ksoftirqd` (where the kernel's forwarding goes once softirq
/// work is long), put back to SCHED_OTHER after. Opt-in: for the time of a measurement the
/// forwarder's CPU is the forwarder's alone (the kernel's real-time throttling keeps 5 %).
fn rt_requested() -> bool {
    std::env::var("NFRS_BENCH_RT").as_deref() == Ok("1")
}

/// `ksoftirqd/CPU` at SCHED_FIFO 1 while this lives.
struct RtSoftirq(u32);

impl RtSoftirq {
    fn raise(cpu: usize) -> Result<RtSoftirq, String> {
        RtSoftirq::raise_to(cpu, Some(1))
    }

    /// `ksoftirqd/CPU` at SCHED_FIFO `prio`, or SCHED_OTHER for `None`.
    fn raise_to(cpu: usize, prio: Option<u8>) -> Result<RtSoftirq, String> {
        let want = format!("ksoftirqd/{cpu}");
        let dir = std::fs::read_dir("/proc").map_err(|e| format!("/proc: {e}"))?;
        let pid = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == want)
            })
            .ok_or_else(|| format!("no {want} thread"))?;
        match prio {
            Some(p) => sh(&["chrt", "-f", "-p", &p.to_string(), &pid.to_string()])?,
            None => sh(&["chrt", "-o", "-p", "0", &pid.to_string()])?,
        };
        Ok(RtSoftirq(pid))
    }
}

impl Drop for RtSoftirq {
    fn drop(&mut self) {
        let pid = self.0.to_string();
        if sh(&["chrt", "-o", "-p", "0", &pid]).is_err() {
            eprintln!("nfrs bench: warning: could not put ksoftirqd (pid {pid}) back to SCHED_OTHER (run `chrt -o -p 0 {pid}`)");
        }
    }
}

/// A fresh lab with `fwd` forwarding through `rules`; for nfrs, the daemon's lan0 report line
/// (checked to name the method asked for).
fn open_lab(
    nfrs: &Path,
    rules: &Path,
    fwd: Forwarder,
    cpus: (Option<usize>, Option<usize>),
) -> Result<(Lab, Option<String>), String> {
    let mut lab = Lab::build()?;
    let io_line = match fwd {
        Forwarder::Kernel => {
            lab.kernel_gateway(rules, cpus.1)?;
            None
        }
        Forwarder::Nfrs(io) => {
            let line = lab.nfrs_gateway(nfrs, rules, Some(io), cpus.1)?;
            // The daemon names its method after the interface: `...): AF_XDP (...)` or
            // `...): AF_PACKET, TPACKET_V3 receive ring ...`.
            let want = if io == "xdp" {
                "): AF_XDP"
            } else {
                "): AF_PACKET, TPACKET_V3"
            };
            if !line.contains(want) {
                return Err(format!(
                    "the daemon did not report `{}`: {line}",
                    &want[3..]
                ));
            }
            Some(line)
        }
    };
    Ok((lab, io_line))
}

fn run_one(
    nfrs: &Path,
    rules: &Path,
    fwd: Forwarder,
    t: Timing,
    cpus: (Option<usize>, Option<usize>),
) -> Result<Run, String> {
    let (mut lab, io_line) = open_lab(nfrs, rules, fwd, cpus)?;
    let _rt = match (fwd, cpus.1) {
        (Forwarder::Kernel, Some(c)) if rt_requested() => Some(RtSoftirq::raise(c)?),
        _ => None,
    };
    let daemon_pid = lab.daemon.as_ref().map(|d| d.id());
    let windows = lab.measure(t, cpus.0, &|| {
        (
            Instant::now(),
            cpus.1.and_then(cpu_ticks),
            daemon_pid.and_then(proc_ticks),
        )
    })?;
    if let Some(d) = lab.daemon.as_mut() {
        if let Ok(Some(st)) = d.try_wait() {
            return Err(format!("nfrs run exited during the measurement ({st})"));
        }
    }
    let (w, first, last) = windows;
    let secs = (last.0 - first.0).as_secs_f64();
    let cpu = match (first.1, last.1) {
        (Some(a), Some(b)) if b.2 > a.2 => {
            let tot = (b.2 - a.2) as f64;
            Some(((b.0 - a.0) as f64 / tot, (b.1 - a.1) as f64 / tot))
        }
        _ => None,
    };
    let daemon_cpu = match (first.2, last.2) {
        (Some(a), Some(b)) if secs > 0.0 => Some((b - a) as f64 / clock_ticks() / secs),
        _ => None,
    };
    if median(w.iter().map(|x| x.0).collect()) <= 0.0 {
        return Err("nothing reached the sink".into());
    }
    // Every frame the sink got must have passed the ruleset's lan0 -> wan0 accept: the sink
    // is read first (frames still on their way are counted by the rule before they arrive).
    std::thread::sleep(Duration::from_millis(100));
    let (_, sunk, _) = lab.counters(&lab.sink, "s0")?;
    let (accepted, listing) = lab.forward_counters(nfrs, fwd)?;
    if sunk > accepted {
        // What each side of gw saw, to tell a frame nfrs sent uncounted from one the sink or
        // the counters invented: lan0's frames in, wan0's out (kernel counters), gw's own
        // neighbour table (a frame of its kernel would need one).
        let (gw_tx, _, _) = lab.counters(&lab.gw, "wan0")?;
        let (_, gw_rx, _) = lab.counters(&lab.gw, "lan0")?;
        let (gen_tx, _, _) = lab.counters(&lab.gen, "g0")?;
        let neigh = sh(&["ip", "-n", &lab.gw, "neigh", "show"]).unwrap_or_default();
        return Err(format!(
            "the sink got {sunk} frames but the FORWARD accept counted {accepted} (the generator sent {gen_tx}, lan0 got {gw_rx}, wan0 sent {gw_tx}; {listing}; gw neighbours: {})",
            neigh.trim().replace('\n', ", ")
        ));
    }
    Ok(Run {
        windows: w,
        cpu,
        daemon_cpu,
        io_line,
        accepted: (accepted, sunk),
    })
}

/// Whether a measurement's error says the daemon could not use the method asked for (see
/// [`open_lab`]), as opposed to a failure of that round.
fn lacks_backend(e: &str) -> bool {
    e.starts_with("the daemon did not report") || e.contains("(xdp forced)")
}

/// The packet counter of `[p:b] -A FORWARD -i lan0 -o wan0 -j ACCEPT` in iptables-save -c text.
fn accept_count(saved: &str) -> Option<u64> {
    let line = saved
        .lines()
        .find(|l| l.ends_with("-A FORWARD -i lan0 -o wan0 -j ACCEPT"))?;
    let counters = line.strip_prefix('[')?.split(']').next()?;
    counters.split(':').next()?.parse().ok()
}

/// Measurements of one forwarder at one size, over the rounds.
#[derive(Default)]
struct Acc {
    windows: Vec<(f64, f64)>,
    cpu: Vec<(f64, f64)>,
    daemon_cpu: Vec<f64>,
    /// Forwarded packets a second of forwarder CPU time, one value a run.
    per_cpu: Vec<f64>,
    io_line: Option<String>,
    accepted: Option<(u64, u64)>,
    error: Option<String>,
}

impl Acc {
    fn add(&mut self, r: Result<Run, String>) {
        match r {
            Ok(r) => {
                // The forwarder's CPU: the softirq share of its CPU (the kernel's forwarding
                // and, on both sides, the sink's receive of what was forwarded) plus the
                // daemon's own time.
                if let Some((_, soft)) = r.cpu {
                    // Tick accounting charges a softirq that interrupts the daemon to both the
                    // CPU's softirq column and the daemon's system time: count the overlap
                    // once, taking the two as independent (d + s - d*s).
                    let d = r.daemon_cpu.unwrap_or(0.0);
                    let used = (d + soft - d * soft).min(1.0);
                    let fwd = median(r.windows.iter().map(|w| w.0).collect());
                    if used > 0.0 {
                        self.per_cpu.push(fwd / used);
                    }
                }
                self.windows.extend(r.windows);
                self.cpu.extend(r.cpu);
                self.daemon_cpu.extend(r.daemon_cpu);
                self.io_line = self.io_line.take().or(r.io_line);
                self.accepted = Some(r.accepted);
            }
            Err(e) => self.error = Some(e),
        }
    }

    fn per_cpu(&self) -> Option<f64> {
        (!self.per_cpu.is_empty()).then(|| median(self.per_cpu.clone()))
    }

    fn forwarded(&self) -> Option<f64> {
        (!self.windows.is_empty()).then(|| median(self.windows.iter().map(|w| w.0).collect()))
    }

    /// "offered X Mpps (generator), forwarded Y Mpps; CPU n: busy a %, softirq b %[; nfrs
    /// run c % of a CPU]".
    fn describe(&self, cpu: Option<usize>) -> String {
        let mut s = format!(
            "offered {:.3} Mpps (generator), forwarded {:.3} Mpps",
            median(self.windows.iter().map(|w| w.1).collect()) / 1e6,
            self.forwarded().unwrap_or(0.0) / 1e6
        );
        if let (Some(c), false) = (cpu, self.cpu.is_empty()) {
            s.push_str(&format!(
                "; forwarder CPU {c} busy {:.0} %, softirq {:.0} %",
                median(self.cpu.iter().map(|x| x.0).collect()) * 100.0,
                median(self.cpu.iter().map(|x| x.1).collect()) * 100.0
            ));
        }
        if let Some((a, k)) = self.accepted {
            s.push_str(&format!(
                "; last round: FORWARD lan0->wan0 ACCEPT counted {a} packets, the sink got {k}"
            ));
        }
        if !self.daemon_cpu.is_empty() {
            s.push_str(&format!(
                "; nfrs run used {:.0} % of a CPU",
                median(self.daemon_cpu.clone()) * 100.0
            ));
        }
        s
    }
}

/// The figures of the lab (see the module doc). Without root or tools every row is printed
/// with `n/a` and the reason.
pub fn lab_figures(cfg: &Config, report: &mut Report) {
    // Rounds alternate kernel and nfrs (a shared machine's load drifts); each round is a
    // fresh lab, a warm-up and `windows` windows.
    let (t, rounds) = if cfg.quick {
        let t = Timing {
            warmup: Duration::from_millis(300),
            window: Duration::from_millis(500),
            windows: 2,
        };
        (t, cfg.runs.unwrap_or(1))
    } else {
        let t = Timing {
            warmup: Duration::from_secs(1),
            window: Duration::from_millis(1500),
            windows: 2,
        };
        (t, cfg.runs.unwrap_or(3))
    };
    let sizes = [10usize, 10_000];
    report.workloads.push(format!(
        "lab: netns gen -- gw -- sink over veths; {FLOWS} one-way UDP flows of 60-byte frames from an AF_PACKET sendmmsg generator; FORWARD: N unmatched rules, ESTABLISHED accept, lan0->wan0 accept (policy DROP, conntrack on, MASQUERADE), N = {}; kernel (iptables-legacy) vs nfrs run, {rounds} alternating rounds",
        sizes.map(|n| n.to_string()).join(" and ")
    ));
    let ours: [(Forwarder, &str); 2] = [
        (Forwarder::Nfrs("packet"), "ring"),
        (Forwarder::Nfrs("xdp"), "AF_XDP"),
    ];
    let method = |w: usize| {
        format!(
            "median of {w} windows of {:.1} s ({rounds} rounds)",
            t.window.as_secs_f64()
        )
    };
    let figure = |n: usize, io: &str| {
        Figure {
        key: "lab",
        name: format!(
            "forwarded pps, netns lab, existing flows (conntrack hit), {} unmatched FORWARD rules, nfrs run ({io})",
            crate::figures::human_count(n)
        ),
        value: f64::NAN,
        unit: "Mpps",
        better: Better::Higher,
        anchor: "kernel forwarding, iptables-legacy (netns)".into(),
        anchor_value: None,
        method: "not measured".into(),
        notes: Vec::new(),
    }
    };
    let new_figure = |io: &str| {
        Figure {
        key: "lab",
        name: format!(
            "new connections/s, netns lab, every frame a new UDP flow (conntrack miss, {NEW_RULES} unmatched FORWARD rules, MASQUERADE, insert), nfrs run ({io})"
        ),
        value: f64::NAN,
        unit: "M/s",
        better: Better::Higher,
        anchor: "kernel forwarding, iptables-legacy (netns)".into(),
        anchor_value: None,
        method: "not measured".into(),
        notes: Vec::new(),
    }
    };
    let unavailable = if cfg.quick && cfg.only.is_none() {
        Err("skipped by --quick (about 30 s; `nfrs bench --quick --only lab` runs it)".to_string())
    } else if !cfg.kernel {
        Err(
            "kernel anchor not requested (--no-kernel); the lab runs both sides or none"
                .to_string(),
        )
    } else {
        availability()
    };
    let nfrs = match unavailable {
        Ok(p) => p,
        Err(why) => {
            for n in sizes {
                for (_, io) in &ours {
                    let mut f = figure(n, io);
                    f.anchor = "n/a".into();
                    report.figures.push(f.clone());
                    f.name = format!(
                        "forwarded packets per forwarder CPU-second, netns lab, existing flows (conntrack hit), {} unmatched FORWARD rules, nfrs run ({io})",
                        crate::figures::human_count(n)
                    );
                    f.unit = "Mpps/CPU";
                    report.figures.push(f);
                }
            }
            for (_, io) in &ours {
                let mut f = new_figure(io);
                f.anchor = "n/a".into();
                report.figures.push(f);
            }
            if let Some(f) = report.figures.last_mut() {
                f.notes.push(format!("lab n/a: {why}"));
            }
            return;
        }
    };
    let all = cpus();
    let (gen_cpu, fwd_cpu) = if all.len() >= 2 {
        (Some(all[0]), Some(all[1]))
    } else {
        (None, None)
    };
    for n in sizes {
        let rules = match crate::figures::TempFile::write(
            &format!("lab-{n}.rules"),
            &crate::gateway::gateway_rules(n),
        ) {
            Ok(f) => f,
            Err(e) => {
                report.warnings.push(format!("lab: {e}"));
                return;
            }
        };
        let mut kernel = Acc::default();
        let mut acc: [Acc; 2] = Default::default();
        for _ in 0..rounds {
            kernel.add(run_one(
                &nfrs,
                rules.path(),
                Forwarder::Kernel,
                t,
                (gen_cpu, fwd_cpu),
            ));
            for (a, (fwd, _)) in acc.iter_mut().zip(&ours) {
                // A backend the daemon lacks is not retried every round (another failure is).
                if !(a.windows.is_empty() && a.error.as_deref().is_some_and(lacks_backend)) {
                    a.add(run_one(&nfrs, rules.path(), *fwd, t, (gen_cpu, fwd_cpu)));
                }
            }
        }
        if let Some(e) = &kernel.error {
            report
                .warnings
                .push(format!("lab, {n} rules: kernel forwarding failed: {e}"));
        }
        for (a, (fwd, io)) in acc.iter().zip(&ours) {
            let mut f = figure(n, io);
            match kernel.forwarded() {
                Some(k) => {
                    f.anchor_value = Some(k / 1e6);
                    if *io == "ring" {
                        f.notes.push(format!(
                            "lab, {n} rules, kernel: {}",
                            kernel.describe(fwd_cpu)
                        ));
                    }
                }
                None => f.anchor = "n/a".into(),
            }
            match (a.forwarded(), &a.error) {
                (Some(v), _) => {
                    f.value = v / 1e6;
                    f.method = method(a.windows.len());
                    f.notes.push(format!(
                        "lab, {n} rules, nfrs run ({io}): {}; {}",
                        a.describe(fwd_cpu),
                        a.io_line.as_deref().unwrap_or("")
                    ));
                    if let Some(e) = &a.error {
                        report
                            .warnings
                            .push(format!("lab, {n} rules: nfrs run ({io}) failed once: {e}"));
                    }
                }
                (None, Some(e)) if *fwd == Forwarder::Nfrs("xdp") => {
                    f.notes
                        .push(format!("lab, {n} rules, nfrs run ({io}): n/a: {e}"));
                }
                (None, e) => report.warnings.push(format!(
                    "lab, {n} rules: nfrs run ({io}) failed: {}",
                    e.as_deref().unwrap_or("no measurement")
                )),
            }
            report.figures.push(f);
            let mut c = figure(n, io);
            c.name = format!(
                "forwarded packets per forwarder CPU-second, netns lab, existing flows (conntrack hit), {} unmatched FORWARD rules, nfrs run ({io})",
                crate::figures::human_count(n)
            );
            c.unit = "Mpps/CPU";
            c.anchor = "kernel forwarding (softirq CPU time)".into();
            c.anchor_value = kernel.per_cpu().map(|k| k / 1e6);
            if let Some(v) = a.per_cpu() {
                c.value = v / 1e6;
                c.method = format!("median of {} rounds", a.per_cpu.len());
            }
            if *io == "ring" {
                c.notes.push(format!(
                    "lab, {n} rules: forwarded pps / CPU used on gw's CPU: the kernel: that CPU's softirq share (tick-sampled); nfrs: the daemon's CPU time d and the softirq share s (lan0's receive, the sink's receive of what was sent), overlap counted once as d + s - d*s — an estimate of what a dedicated core would give"
                ));
            }
            report.figures.push(c);
        }
    }
    new_connection_figures(
        &nfrs,
        rounds,
        (gen_cpu, fwd_cpu),
        &ours,
        &new_figure,
        report,
    );
    let rt = if rt_requested() {
        "; NFRS_BENCH_RT=1: both forwarders at SCHED_FIFO 1 (nfrs run under chrt; the kernel: that CPU's ksoftirqd), the generator at normal priority"
    } else {
        "; normal priority (NFRS_BENCH_RT=1 gives both forwarders SCHED_FIFO 1)"
    };
    let pin = match (gen_cpu, fwd_cpu) {
        (Some(g), Some(w)) => format!(
            "generator pinned to CPU {g}; gw's work on CPU {w} (RPS on lan0 on both sides; nfrs run: taskset, AF_XDP generic){rt}"
        ),
        _ => "fewer than 2 CPUs: nothing pinned".into(),
    };
    if let Some(f) = report.figures.iter_mut().rev().find(|f| f.key == "lab") {
        f.notes.push(format!("lab: {pin}"));
    }
}

/// FORWARD rules no packet matches in the new-connection measurement.
const NEW_RULES: usize = 10;

/// The new-connection rows: rounds alternate the kernel and nfrs run's methods, each a fresh
/// lab and one blast of [`NEW_FLOWS`] new flows; the median rate of each is reported.
fn new_connection_figures(
    nfrs: &Path,
    rounds: usize,
    cpus: (Option<usize>, Option<usize>),
    ours: &[(Forwarder, &str)],
    new_figure: &dyn Fn(&str) -> Figure,
    report: &mut Report,
) {
    let rules = match crate::figures::TempFile::write(
        "lab-new.rules",
        &crate::gateway::gateway_rules(NEW_RULES),
    ) {
        Ok(f) => f,
        Err(e) => {
            report.warnings.push(format!("lab: {e}"));
            return;
        }
    };
    let mut runs: Vec<(Vec<NewRun>, Option<String>)> =
        (0..=ours.len()).map(|_| (Vec::new(), None)).collect();
    let fwds: Vec<Forwarder> = std::iter::once(Forwarder::Kernel)
        .chain(ours.iter().map(|o| o.0))
        .collect();
    for _ in 0..rounds {
        for (r, fwd) in runs.iter_mut().zip(&fwds) {
            // A backend the daemon lacks is not retried every round (another failure is).
            if r.0.is_empty() && r.1.as_deref().is_some_and(lacks_backend) {
                continue;
            }
            match run_new(nfrs, rules.path(), *fwd, cpus) {
                Ok(n) => r.0.push(n),
                Err(e) => r.1 = Some(e),
            }
        }
    }
    let summary = |v: &[NewRun]| -> Option<(f64, String)> {
        if v.is_empty() {
            return None;
        }
        let rate = median(v.iter().map(|n| n.rate).collect());
        let last = v.last()?;
        Some((
            rate,
            format!(
                "offered {:.3} M/s (generator), forwarded {:.3} M/s (median of {}); last round: {} frames sent, the sink got {}, {} connections in the table after",
                median(v.iter().map(|n| n.offered).collect()) / 1e6,
                rate / 1e6,
                v.len(),
                last.sent,
                last.sunk,
                last.entries
            ),
        ))
    };
    let kernel = summary(&runs[0].0);
    if let Some(e) = &runs[0].1 {
        report.warnings.push(format!(
            "lab, new connections: kernel forwarding failed: {e}"
        ));
    }
    for (i, (_, io)) in ours.iter().enumerate() {
        let mut f = new_figure(io);
        match &kernel {
            Some((k, text)) => {
                f.anchor_value = Some(k / 1e6);
                if i == 0 {
                    f.notes
                        .push(format!("lab, new connections, kernel: {text}"));
                }
            }
            None => f.anchor = "n/a".into(),
        }
        let (v, err) = &runs[i + 1];
        match summary(v) {
            Some((rate, text)) => {
                f.value = rate / 1e6;
                f.method = format!(
                    "median of {} blasts of {NEW_FLOWS} new flows; rate between the sink's 10 % and 90 % counts",
                    v.len()
                );
                f.notes
                    .push(format!("lab, new connections, nfrs run ({io}): {text}"));
                if let Some(e) = err {
                    report.warnings.push(format!(
                        "lab, new connections: nfrs run ({io}) failed once: {e}"
                    ));
                }
            }
            None => match err {
                Some(e) if ours[i].0 == Forwarder::Nfrs("xdp") => f
                    .notes
                    .push(format!("lab, new connections, nfrs run ({io}): n/a: {e}")),
                e => report.warnings.push(format!(
                    "lab, new connections: nfrs run ({io}) failed: {}",
                    e.as_deref().unwrap_or("no measurement")
                )),
            },
        }
        if i == 0 {
            f.notes.push(format!(
                "lab, new connections: the generator sends {NEW_FLOWS} frames once each, every one a 5-tuple of its own (10.1.x.y:port -> 203.0.113.z:9), so each is a conntrack miss, a walk of the {NEW_RULES} rules, a MASQUERADE tuple and an insert; checked per round: the sink's count <= the FORWARD accept's count, and <= the connections in the forwarder's table (nf_conntrack_count / nfrs conntrack -C) <= frames sent"
            ));
        }
        report.figures.push(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_flow_frame_is_minimum_udp_frame() {
        let f = flow_frame(3, [2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).unwrap();
        assert_eq!(f.len(), 60);
        assert_eq!(&f[0..6], &[2, 0, 0, 0, 0, 2]);
        assert_eq!(&f[6..12], &[2, 0, 0, 0, 0, 1]);
        assert_eq!(f[14 + 9], 17, "UDP");
        assert_eq!(&f[26..30], &[10, 1, 0, 5]);
        assert_eq!(&f[30..34], &[203, 0, 113, 4]);
        assert_eq!(u16::from_be_bytes([f[34], f[35]]), 1027);
        assert_eq!(u16::from_be_bytes([f[36], f[37]]), 9);
    }

    /// Root only: the kernel side of the lab forwards the generator's frames to the sink
    /// through the 10-rule ruleset, and its FORWARD accept counts them.
    #[test]
    fn test_lab_kernel_forwards() {
        if let Err(why) = tools_available() {
            eprintln!("skipped: {why}");
            return;
        }
        let lab = Lab::build().unwrap();
        let rules =
            crate::figures::TempFile::write("lab-test.rules", &crate::gateway::gateway_rules(10))
                .unwrap();
        lab.kernel_gateway(rules.path(), None).unwrap();
        let src = parse_mac(&lab.mac(&lab.gen, "g0").unwrap()).unwrap();
        let dst = parse_mac(&lab.mac(&lab.gw, "lan0").unwrap()).unwrap();
        let frames: Vec<Vec<u8>> = (0..50).map(|i| flow_frame(i, src, dst).unwrap()).collect();
        let (sent, _, _) = in_netns(&lab.gen, || {
            send_frames("g0", &frames, Duration::from_millis(200), false)
        })
        .unwrap()
        .unwrap();
        assert!(sent > 0);
        std::thread::sleep(Duration::from_millis(200));
        let (_, forwarded, _) = lab.counters(&lab.sink, "s0").unwrap();
        assert!(forwarded > 0, "nothing reached the sink of {sent} frames");
        assert!(forwarded <= sent + 10, "{forwarded} forwarded of {sent}");
        let listed = lab
            .exec(
                &lab.gw,
                &[
                    "iptables-legacy",
                    "-w",
                    "-t",
                    "filter",
                    "-L",
                    "FORWARD",
                    "-n",
                    "-v",
                    "-x",
                ],
            )
            .unwrap();
        let accepted: u64 = listed
            .lines()
            .find(|l| l.contains("ACCEPT") && l.contains("lan0") && l.contains("wan0"))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{listed}"));
        assert!(accepted >= forwarded, "{listed}");
        let masq = lab
            .exec(
                &lab.gw,
                &[
                    "iptables-legacy",
                    "-w",
                    "-t",
                    "nat",
                    "-L",
                    "POSTROUTING",
                    "-n",
                    "-v",
                    "-x",
                ],
            )
            .unwrap();
        assert!(masq.contains("MASQUERADE"), "{masq}");
        let names = [lab.gen.clone(), lab.gw.clone(), lab.sink.clone()];
        drop(lab);
        let list = sh(&["ip", "netns", "list"]).unwrap();
        for n in names {
            assert!(!list.contains(&n), "{n} left behind");
        }
    }

    #[test]
    fn test_accept_count() {
        let saved = "*filter\n:FORWARD DROP [5:300]\n[0:0] -A FORWARD -s 198.18.0.0/32 -p tcp -m tcp --dport 8443 -j DROP\n[7:420] -A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n[123456:7407360] -A FORWARD -i lan0 -o wan0 -j ACCEPT\nCOMMIT\n";
        assert_eq!(accept_count(saved), Some(123456));
        assert_eq!(accept_count("*filter\nCOMMIT\n"), None);
    }

    #[test]
    fn test_new_flow_frames_are_well_formed_and_distinct() {
        let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
        let template = flow_frame(0, a, b).unwrap();
        // Rewriting the template with flow 7's tuple gives the frame the builder makes for it
        // (both checksums included).
        let seven = flow_frame(7, a, b).unwrap();
        assert_eq!(
            retuple(
                &template,
                0x0a01_0009,
                1031,
                u32::from_be_bytes([203, 0, 113, 8])
            ),
            seven
        );
        assert_eq!(new_flow_frame(&template, 0), template);
        let mut seen = std::collections::HashSet::new();
        for i in (0..200_000)
            .step_by(997)
            .chain([64_999, 65_000, 65_001, 199_999])
        {
            let f = new_flow_frame(&template, i);
            assert_eq!(f.len(), 60);
            // Inside lan0's 10.1.0.0/16.
            assert_eq!(&f[26..28], &[10, 1], "flow {i}");
            assert!(seen.insert(f[26..38].to_vec()), "flow {i} repeats a tuple");
            // The IPv4 header sums to all ones.
            assert_eq!(ones_sum(&f[14..34], 0), 0xffff, "flow {i}");
        }
    }

    #[test]
    fn test_sink_counts_and_rates() {
        let dev = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n    s0: 6000000  100000    0   25    0     0          0         0        0       0    0    0    0     0       0          0\n";
        assert_eq!(net_dev_received(dev, "s0"), Some(100_025));
        assert_eq!(net_dev_received(dev, "lo"), Some(0));
        assert_eq!(net_dev_received(dev, "s"), None);
        assert_eq!(
            parse_blast("sent 200000 secs 0.812 errors 0"),
            Some((200_000, 0.812))
        );
        assert_eq!(parse_blast("nonsense"), None);
        // 1000 a second after a slow start and before a drained tail: the middle rate.
        let mut v = vec![(0.0, 0), (0.5, 0), (0.6, 10)];
        v.extend((1..=100).map(|k| (0.6 + k as f64 * 0.01, 10 + k * 10)));
        v.push((2.0, 1010));
        v.push((3.0, 1010));
        let r = middle_rate(&v, 1010).unwrap();
        assert!((r - 1000.0).abs() < 1.0, "{r}");
        assert_eq!(middle_rate(&v[..3], 10), None);
    }

    #[test]
    fn test_only_a_missing_backend_stops_retries() {
        assert!(lacks_backend(
            "the daemon did not report `AF_XDP`: nfrs run: lan0 (...): AF_PACKET"
        ));
        assert!(lacks_backend(
            "nfrs run exited at start (exit status: 1): AF_XDP on `lan0` (xdp forced): EPERM"
        ));
        assert!(!lacks_backend(
            "the sink got 10 frames but the FORWARD accept counted 9"
        ));
        assert!(!lacks_backend("nothing reached the sink"));
    }

    #[test]
    fn test_parse_mac() {
        assert_eq!(
            parse_mac("02:00:0a:ff:00:fe").unwrap(),
            [2, 0, 10, 255, 0, 254]
        );
        assert!(parse_mac("02:00").is_err());
        assert!(parse_mac("02:00:0a:ff:00:zz").is_err());
    }

    #[test]
    fn test_blast_refuses_bad_arguments() {
        assert!(blast(&[]).is_err());
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(blast(&a(&["g0", "02:00:00:00:00:01", "x", "10", "1"])).is_err());
        assert!(blast(&a(&[
            "g0",
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            "0",
            "1"
        ]))
        .is_err());
        assert!(blast(&a(&[
            "g0",
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            "10",
            "1",
            "-",
            "old"
        ]))
        .unwrap_err()
        .contains("unknown mode `old`"));
        assert!(blast(&a(&[
            "no-such-dev-nfrs",
            "02:00:00:00:00:01",
            "02:00:00:00:00:02",
            "10",
            "0.01"
        ]))
        .is_err());
    }
}
