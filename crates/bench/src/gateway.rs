//! Packet-path figures (group `gateway`), through nfrs-engine's public API: the MASQUERADE
//! gateway of issue 7 (nat POSTROUTING MASQUERADE out of wan0, filter FORWARD policy DROP with
//! an ESTABLISHED,RELATED accept and a lan0 -> wan0 accept), N TCP flows from the LAN.
//!
//! - `new connections/s`: the first SYN of every flow (conntrack miss, FORWARD rules,
//!   MASQUERADE tuple selection, confirm), each forwarded out of wan0.
//! - `established-flow pps`: after the handshakes, duplicate ACKs of every flow in both
//!   directions in a shuffled flow order, each forwarded (reply direction de-NATed).
//!
//! Frames are built before the clock starts. The engine's `receive` takes the packet's buffer
//! by value and hands it back in its `Out` event; the loops copy each frame into a buffer
//! recycled from the previous packets' events, as the live daemon does with its socket reads,
//! so the timed loops allocate nothing per packet (the copy of the frame's bytes is counted).
//! The 1M-flow figure feeds the engine batches (`Engine::receive_batch`, which reads the
//! packets' conntrack buckets and entries ahead); a one-by-one figure is printed beside it.
//! Time is passed to the engine explicitly (1 µs a packet); the engine never reads a clock.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Instant;

use nfrs_engine::engine::{Engine, Ev, RxFrame};
use nfrs_engine::host::HostNet;
use nfrs_wire::build::{build_frame, FrameCtx};
use nfrs_wire::ethernet::MacAddr;
use nfrs_wire::line::PacketSpec;

use crate::figures::{human_count, Config};
use crate::report::{Better, Figure, Report};

/// The gateway ruleset (the shared nat-gateway example's, without its LOG rule).
pub const GATEWAY_RULES: &str = "*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT\n-A FORWARD -i lan0 -o wan0 -j ACCEPT\nCOMMIT\n";

const WAN_ADDR: &str = "192.0.2.1";

/// The gateway ruleset with `extra` FORWARD rules first that no packet of the workload
/// matches (sources from 198.18.0.0/15, the benchmarking range): every packet walks them all,
/// as a first-match linear evaluation must.
pub fn gateway_rules(extra: usize) -> String {
    let mut filter = String::from("*filter\n:FORWARD DROP [0:0]\n");
    for i in 0..extra {
        let a = std::net::Ipv4Addr::from(0xc612_0000u32 + i as u32 % (1 << 17));
        filter.push_str(&format!(
            "-A FORWARD -s {a}/32 -p tcp -m tcp --dport 8443 -j DROP\n"
        ));
    }
    let base = GATEWAY_RULES
        .split_once("*filter\n:FORWARD DROP [0:0]\n")
        .map(|(nat, rest)| format!("{nat}{filter}{rest}"));
    base.unwrap_or_else(|| GATEWAY_RULES.to_string())
}

fn scenario_text(rules: &str, ct_max: u32) -> String {
    format!(
        "description = \"nfrs bench MASQUERADE gateway\"\nexclusive = true\nrules = '''\n{rules}'''\npackets = '''\n'''\n\n[sysctl]\n\"net.ipv4.ip_forward\" = 1\n\"net.netfilter.nf_conntrack_max\" = {ct_max}\n\"net.netfilter.nf_conntrack_buckets\" = {ct_max}\n\n[[interface]]\nname = \"lan0\"\naddress = \"10.0.0.1/8\"\n\n[[interface]]\nname = \"wan0\"\naddress = \"{WAN_ADDR}/24\"\n\n[[interface]]\nname = \"pods0\"\naddress = \"10.255.255.254/9\"\n\n[[route]]\nto = \"default\"\nvia = \"192.0.2.254\"\ndev = \"wan0\"\n"
    )
}

/// A packet ready for `Engine::receive`.
#[derive(Clone)]
struct Frame {
    dev: usize,
    ip: Vec<u8>,
    mac: [u8; 14],
}

/// The engine with the gateway host and ruleset, and its two devices.
struct Lab {
    eng: Engine,
    lan: usize,
    wan: usize,
    now: u64,
    /// Packet buffers handed back by the engine's events, reused for the next frames.
    pool: Vec<Vec<u8>>,
    /// The batch being filled (established loop with batches).
    batch: Vec<RxFrame>,
}

/// Buffers kept for reuse (a batch's worth and some).
const POOL_MAX: usize = 256;

impl Lab {
    fn new(extra_rules: usize, flows: usize) -> Result<Lab, String> {
        Lab::with_rules(&gateway_rules(extra_rules), flows)
    }

    /// The lab with `rules`, conntrack sized for `flows` connections (at least the default).
    fn with_rules(rules: &str, flows: usize) -> Result<Lab, String> {
        let ct_max = (flows as u32).saturating_add(flows as u32 / 4).max(262_144);
        let text = scenario_text(rules, ct_max);
        let sc = nfrs_scenario::parse(&text, Path::new("<nfrs bench gateway>"))
            .map_err(|e| e.to_string())?;
        let rs = nfrs_rules::restore::restore_new(&sc.rules, &Default::default())
            .map_err(|e| e.message.trim_end().to_string())?;
        let host = HostNet::new(&sc.host)?;
        let eng = Engine::new(host, rs, &sc.host.effective_sysctls()).map_err(|e| e.to_string())?;
        let lan = eng.host.dev("lan0").ok_or("no lan0")?;
        let wan = eng.host.dev("wan0").ok_or("no wan0")?;
        Ok(Lab {
            eng,
            lan,
            wan,
            now: 1_000_000_000,
            pool: Vec::with_capacity(POOL_MAX),
            batch: Vec::with_capacity(64),
        })
    }

    fn frame(&self, dev: usize, spec: &str) -> Result<Frame, String> {
        let spec = PacketSpec::parse(spec).map_err(|e| format!("{spec}: {e:?}"))?;
        let ctx = FrameCtx {
            src_mac: MacAddr([2, 0, 0, 0, 1, dev as u8 + 1]),
            dst_mac: MacAddr(self.eng.host.ifaces()[dev].mac),
            ip_id: 1,
            allow_masked: false,
        };
        let f = build_frame(&spec, &ctx).map_err(|e| format!("{e:?}"))?;
        let mut mac = [0u8; 14];
        mac.copy_from_slice(&f[..14]);
        Ok(Frame {
            dev,
            ip: f[14..].to_vec(),
            mac,
        })
    }

    /// A copy of `ip` in a recycled buffer (allocated only until the pool has filled).
    #[inline]
    fn buffer(&mut self, ip: &[u8]) -> Vec<u8> {
        let mut b = self.pool.pop().unwrap_or_else(|| Vec::with_capacity(2048));
        b.clear();
        b.extend_from_slice(ip);
        b
    }

    /// Clears the engine's events, keeping the packet buffers they carry for reuse.
    #[inline]
    fn recycle(&mut self) {
        while let Some(e) = self.eng.events.pop() {
            if let Ev::Out { ip, .. } | Ev::Local { ip, .. } = e {
                if self.pool.len() < POOL_MAX {
                    self.pool.push(ip);
                }
            }
        }
    }

    /// Feeds one frame; returns the packet forwarded out of `out_dev`, if that is all it caused.
    fn forward(&mut self, f: &Frame, out_dev: usize) -> Option<Vec<u8>> {
        self.now += 1000;
        let ip = self.buffer(&f.ip);
        self.eng.receive(f.dev, ip, f.mac, self.now);
        // The packet that left is moved out (not copied): its buffer is the caller's now.
        let out = match self.eng.events.as_slice() {
            [Ev::Out { dev, .. }] if *dev == out_dev => match self.eng.events.pop() {
                Some(Ev::Out { ip, .. }) => Some(ip),
                _ => None,
            },
            _ => None,
        };
        self.recycle();
        out
    }

    /// Feeds one frame; true when all it caused was one packet out of `out_dev` (the
    /// established loop's check, without copying the packet out).
    #[inline]
    fn forwarded(&mut self, f: &Frame, out_dev: usize) -> bool {
        self.now += 1000;
        let ip = self.buffer(&f.ip);
        self.eng.receive(f.dev, ip, f.mac, self.now);
        let ok = matches!(self.eng.events.as_slice(), [Ev::Out { dev, .. }] if *dev == out_dev);
        self.recycle();
        ok
    }

    /// Adds a frame to the batch being filled (its bytes copied into a recycled buffer).
    #[inline]
    fn push_batch(&mut self, f: &Frame) {
        self.now += 1000;
        let ip = self.buffer(&f.ip);
        let now = self.now;
        self.batch.push(RxFrame {
            dev: f.dev,
            ip,
            mac: f.mac,
            now,
            events_end: 0,
        });
    }

    /// Runs the batch; counts the frames whose only event was one packet out of the device
    /// in `want` (by position: `want[i]` for the batch's i-th frame).
    #[inline]
    fn run_batch(&mut self, want: &[usize]) -> usize {
        self.eng.receive_batch(&mut self.batch);
        let mut ok = 0;
        let mut start = 0;
        for (f, &out_dev) in self.batch.iter().zip(want) {
            let evs = &self.eng.events[start..f.events_end];
            ok += usize::from(matches!(evs, [Ev::Out { dev, .. }] if *dev == out_dev));
            start = f.events_end;
        }
        // The frames' buffers moved into the events (their `ip` is empty now).
        self.batch.clear();
        self.recycle();
        ok
    }
}

/// Source port of a TCP/UDP IPv4 packet.
fn src_port(ip: &[u8]) -> Option<u16> {
    let off = usize::from(ip.first()? & 0x0f) * 4;
    Some(u16::from_be_bytes([*ip.get(off)?, *ip.get(off + 1)?]))
}

/// Client address, client port and server address of flow `i` (distinct ports: no NAT clash).
fn flow(i: usize) -> (String, u16, String) {
    let c = 0x0a00_0100u32 + i as u32; // from 10.0.1.0
    let client = std::net::Ipv4Addr::from(c).to_string();
    let server = format!("203.0.113.{}", 1 + i % 250);
    (client, 1024 + (i % 60_000) as u16, server)
}

struct Measured {
    new_per_sec: f64,
    pps: f64,
    /// Established packets a second of the thread's own CPU time (less swayed by other
    /// processes on a loaded machine than the wall clock; printed by `gateway_probe`).
    cpu_pps: f64,
}

/// CPU time this thread has used, in seconds (CLOCK_THREAD_CPUTIME_ID).
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer to a local.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if r != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The timed new-connection loop: one SYN a flow; the source port of each packet that left
/// `out_dev` alone (the masquerading port), its buffer back into the lab's pool (kept, every
/// SYN would take a fresh 2 KiB buffer and its page faults under the clock).
/// Not inlined: `nfrs bench --instructions` counts the instructions run inside it.
#[inline(never)]
fn syn_loop(lab: &mut Lab, syns: &[Frame], out_dev: usize) -> Vec<Option<u16>> {
    syns.iter()
        .map(|f| {
            let ip = lab.forward(f, out_dev)?;
            let port = src_port(&ip);
            if lab.pool.len() < POOL_MAX {
                lab.pool.push(ip);
            }
            port
        })
        .collect()
}

/// The timed established loop: `rounds` times, one packet each way for every flow in `order`;
/// returns how many were forwarded. Not inlined, for `nfrs bench --instructions`.
#[inline(never)]
fn established_loop(
    lab: &mut Lab,
    est: &[(Frame, Frame)],
    order: &[usize],
    rounds: usize,
) -> usize {
    let (lan, wan) = (lab.lan, lab.wan);
    let mut forwarded = 0usize;
    for _ in 0..rounds {
        for &i in order {
            let (out, back) = &est[i];
            forwarded += usize::from(lab.forwarded(out, wan));
            forwarded += usize::from(lab.forwarded(back, lan));
        }
    }
    forwarded
}

/// [`established_loop`] through `Engine::receive_batch`, `batch` packets a call (the same
/// packets in the same order). Not inlined, for `nfrs bench --instructions`.
#[inline(never)]
fn established_batch_loop(
    lab: &mut Lab,
    est: &[(Frame, Frame)],
    order: &[usize],
    rounds: usize,
    batch: usize,
) -> usize {
    let (lan, wan) = (lab.lan, lab.wan);
    let pairs = (batch / 2).max(1);
    // Out of wan0, then back out of lan0, for every pair of the batch.
    let want: Vec<usize> = (0..pairs).flat_map(|_| [wan, lan]).collect();
    let mut forwarded = 0usize;
    for _ in 0..rounds {
        for group in order.chunks(pairs) {
            for &i in group {
                let (out, back) = &est[i];
                lab.push_batch(out);
                lab.push_batch(back);
            }
            forwarded += lab.run_batch(&want);
        }
    }
    forwarded
}

/// The workload `nfrs bench --instructions` runs under callgrind: `flows` new connections and
/// `rounds` established rounds, once one by one and once in batches; returns (SYNs sent
/// through `syn_loop` in all, established packets of each established loop).
pub fn probe_workload(flows: usize, rounds: usize) -> Result<(usize, usize), String> {
    one_run(flows, rounds, 0)?;
    // The same packets again through `Engine::receive_batch` (counted apart, as
    // `established_batch_loop`). Both runs open their flows in `syn_loop`: twice the SYNs.
    run_with(flows, rounds, 0, BATCH).map(|_| (2 * flows, flows * rounds * 2))
}

/// The gateway workload once, for profilers (`--example gateway_probe`): `flows` new
/// connections, then `rounds` established rounds; returns (new connections/s, packets/s).
pub fn gateway_probe(flows: usize, rounds: usize) -> Result<(f64, f64), String> {
    one_run(flows, rounds, 0).map(|m| (m.new_per_sec, m.pps))
}

/// [`gateway_probe`] with the established packets fed `batch` a call to
/// `Engine::receive_batch` (0: one by one).
/// Returns (new connections/s, packets/s, packets per CPU second).
pub fn gateway_probe_batch(
    flows: usize,
    rounds: usize,
    batch: usize,
) -> Result<(f64, f64, f64), String> {
    run_with(flows, rounds, 0, batch).map(|m| (m.new_per_sec, m.pps, m.cpu_pps))
}

fn one_run(flows: usize, rounds: usize, extra_rules: usize) -> Result<Measured, String> {
    run_with(flows, rounds, extra_rules, 0)
}

/// Packets a batch in the batched figures (`Engine::receive_batch`).
pub const BATCH: usize = 32;

/// The gateway workload; established packets one by one (`batch` 0) or `batch` a call.
fn run_with(
    flows: usize,
    rounds: usize,
    extra_rules: usize,
    batch: usize,
) -> Result<Measured, String> {
    let mut lab = Lab::new(extra_rules, flows)?;
    let (lan, wan) = (lab.lan, lab.wan);
    let mut syns = Vec::with_capacity(flows);
    for i in 0..flows {
        let (c, p, s) = flow(i);
        syns.push(lab.frame(
            lan,
            &format!("tcp {c}:{p} > {s}:443 flags=S seq=100 win=64240"),
        )?);
    }
    // Room for every connection before the clock starts (as in the kube figures): the new
    // connections are timed without the table's array growing by doubling under them (a
    // gateway that has run a while has its table grown already).
    if let Some(ct) = lab.eng.ct.as_mut() {
        ct.reserve(flows);
    }
    // New connections: every SYN creates an entry and is masqueraded out of wan0.
    let t0 = Instant::now();
    let mports = syn_loop(&mut lab, &syns, wan);
    let new_secs = t0.elapsed().as_secs_f64();
    let mut est = Vec::with_capacity(flows * 2);
    for (i, m) in mports.iter().enumerate() {
        let mport = m.ok_or_else(|| format!("SYN of flow {i} was not forwarded out of wan0"))?;
        let (c, p, s) = flow(i);
        let synack = lab.frame(
            wan,
            &format!("tcp {s}:443 > {WAN_ADDR}:{mport} flags=SA seq=900 ack=101 win=65160"),
        )?;
        let ack = lab.frame(
            lan,
            &format!("tcp {c}:{p} > {s}:443 flags=A seq=101 ack=901 win=64240"),
        )?;
        lab.forward(&synack, lan)
            .ok_or_else(|| format!("SYN-ACK of flow {i} was not forwarded out of lan0"))?;
        lab.forward(&ack, wan)
            .ok_or_else(|| format!("ACK of flow {i} was not forwarded out of wan0"))?;
        let back = lab.frame(
            wan,
            &format!("tcp {s}:443 > {WAN_ADDR}:{mport} flags=A seq=901 ack=101 win=65160"),
        )?;
        est.push((ack, back));
    }
    let mut order: Vec<usize> = (0..flows).collect();
    let mut rng = crate::gen::Rng::new(5);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    // The frames laid out in the order they are sent, as a receive ring holds them: the flows
    // (and so their connections) come in shuffled order, the frames' own bytes are read
    // front to back.
    let est: Vec<(Frame, Frame)> = order.iter().map(|&i| est[i].clone()).collect();
    let order: Vec<usize> = (0..flows).collect();
    let c0 = thread_cpu_secs();
    let t0 = Instant::now();
    let forwarded = if batch == 0 {
        established_loop(&mut lab, &est, &order, rounds)
    } else {
        established_batch_loop(&mut lab, &est, &order, rounds, batch)
    };
    let est_secs = t0.elapsed().as_secs_f64();
    let cpu_secs = thread_cpu_secs() - c0;
    let sent = rounds * flows * 2;
    if forwarded != sent {
        return Err(format!(
            "only {forwarded} of {sent} established packets were forwarded"
        ));
    }
    Ok(Measured {
        new_per_sec: flows as f64 / new_secs,
        pps: sent as f64 / est_secs,
        cpu_pps: if cpu_secs > 0.0 {
            sent as f64 / cpu_secs
        } else {
            0.0
        },
    })
}

/// Runs `f` with the engine's tables compiled for the linear walk (`linear`) or with the
/// classifier of long chains (the default), then restores the default. Both give the same
/// results; the linear walk is the "before" of issue 7 goal 2's figures.
fn walk_mode<T>(linear: bool, f: impl FnOnce() -> T) -> T {
    nfrs_engine::classify::set_linear(linear);
    let r = f();
    nfrs_engine::classify::set_linear(false);
    r
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The `gateway` group.
pub fn gateway_figures(cfg: &Config, report: &mut Report) {
    let flows = if cfg.quick { 200 } else { 10_000 };
    let rounds = if cfg.quick { 5 } else { 20 };
    let runs = cfg.runs.unwrap_or(if cfg.quick { 3 } else { 5 }).max(1);
    let size = human_count(flows);
    report.workloads.push(format!(
        "gateway: {size} TCP flows lan0 10.0.1.0+ -> 203.0.113.0/24:443 through MASQUERADE out of wan0, FORWARD policy DROP + ESTABLISHED accept; {rounds} rounds of one ACK each way a flow; the connection table reserved for the flows before the clock starts"
    ));
    let mut new_rates = Vec::new();
    let mut pps = Vec::new();
    for _ in 0..runs {
        match one_run(flows, rounds, 0) {
            Ok(m) => {
                new_rates.push(m.new_per_sec / 1e6);
                pps.push(m.pps / 1e6);
            }
            Err(e) => {
                report.warnings.push(format!("gateway: {e}"));
                return;
            }
        }
    }
    let why = "anchor n/a here: the kernel's forwarding rate beside nfrs run is the lab group (root, `--only lab`)";
    report.figures.push(Figure {
        key: "gateway",
        name: format!("established-flow pps, MASQUERADE gateway, {size} flows"),
        value: median(pps),
        unit: "Mpps",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec![format!("{why}; one packet a receive call, each frame copied into a recycled buffer (no allocation a packet)")],
    });
    report.figures.push(Figure {
        key: "gateway",
        name: format!("new connections/s, MASQUERADE gateway, {size} flows"),
        value: median(new_rates),
        unit: "M/s",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec![format!(
            "first SYN of each flow: conntrack miss, FORWARD rules, MASQUERADE, confirm; {why}"
        )],
    });

    // The same flows fed in batches (`Engine::receive_batch`).
    let mut batch_pps = Vec::new();
    for _ in 0..runs {
        match run_with(flows, rounds, 0, BATCH) {
            Ok(m) => batch_pps.push(m.pps / 1e6),
            Err(e) => {
                report.warnings.push(format!("gateway (batches): {e}"));
                return;
            }
        }
    }
    report.figures.push(Figure {
        key: "gateway",
        name: format!("established-flow pps, MASQUERADE gateway, {size} flows, batches of {BATCH}"),
        value: median(batch_pps),
        unit: "Mpps",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec![format!("Engine::receive_batch: conntrack buckets and entries read ahead {} packets at a time; {why}", nfrs_engine::engine::WARM_AHEAD)],
    });

    // The same with 1M flows: the connection table no longer fits in the caches. Batches
    // (the figure's name is unchanged), and one by one beside them.
    let huge = if cfg.quick { 1_000 } else { 1_000_000 };
    let huge_runs = cfg.runs.unwrap_or(1).max(1);
    let mut huge_pps = Vec::new();
    let mut huge_single = Vec::new();
    for _ in 0..huge_runs {
        match (run_with(huge, 2, 0, BATCH), run_with(huge, 2, 0, 0)) {
            (Ok(b), Ok(m)) => {
                huge_pps.push(b.pps / 1e6);
                huge_single.push(m.pps / 1e6);
            }
            (Err(e), _) | (_, Err(e)) => {
                report.warnings.push(format!("gateway ({huge} flows): {e}"));
                return;
            }
        }
    }
    report.figures.push(Figure {
        key: "gateway",
        name: format!(
            "established-flow pps, MASQUERADE gateway, {} flows",
            human_count(huge)
        ),
        value: median(huge_pps),
        unit: "Mpps",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {huge_runs}"),
        notes: vec![format!(
            "2 rounds over all flows after their handshakes, batches of {BATCH} (Engine::receive_batch reads conntrack buckets and entries ahead); {why}"
        )],
    });
    report.figures.push(Figure {
        key: "gateway",
        name: format!(
            "established-flow pps, MASQUERADE gateway, {} flows, one by one",
            human_count(huge)
        ),
        value: median(huge_single),
        unit: "Mpps",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {huge_runs}"),
        notes: vec![format!(
            "the same packets, one receive call each (no read-ahead); {why}"
        )],
    });

    // Cost in rule count: the same flows with 10 and with 10k unmatched FORWARD rules first.
    let big = if cfg.quick { 500 } else { 10_000 };
    let (flows, rounds) = if cfg.quick { (100, 2) } else { (2_000, 2) };
    let runs = cfg.runs.unwrap_or(if cfg.quick { 1 } else { 3 }).max(1);
    let mut ratios = Vec::new();
    let mut big_pps = Vec::new();
    let mut lin_ratios = Vec::new();
    for _ in 0..runs {
        let small = one_run(flows, rounds, 10);
        let large = one_run(flows, rounds, big);
        let linear = walk_mode(true, || one_run(flows, rounds, big));
        match (small, large, linear) {
            (Ok(s), Ok(l), Ok(lin)) => {
                ratios.push(s.pps / l.pps);
                big_pps.push(l.pps / 1e6);
                lin_ratios.push(s.pps / lin.pps);
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                report.warnings.push(format!("gateway (rule count): {e}"));
                return;
            }
        }
    }
    let big_size = human_count(big);
    report.figures.push(Figure {
        key: "gateway",
        name: format!("established-flow pps, {big_size} unmatched FORWARD rules first, {} flows", human_count(flows)),
        value: median(big_pps),
        unit: "Mpps",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec![format!("{big_size} FORWARD rules that cannot match (sources in 198.18.0.0/15) come before the ESTABLISHED accept; the classifier skips them, the linear walk visits them all; {why}")],
    });
    report.figures.push(Figure {
        key: "gateway",
        name: format!("per-packet cost, {big_size} vs 10 unmatched FORWARD rules"),
        value: median(ratios),
        unit: "x",
        better: Better::Lower,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec!["time a packet with the large rule set / with the small one, same flows and packets (issue 7 goal 2: <= 1.5x)".into()],
    });
    report.figures.push(Figure {
        key: "gateway",
        name: format!("per-packet cost, {big_size} vs 10 unmatched FORWARD rules, linear walk"),
        value: median(lin_ratios),
        unit: "x",
        better: Better::Lower,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec!["the same with the classifier off (nfrs_engine::classify::set_linear): every rule visited in turn, as before the classifier".into()],
    });
}

/// New connections through the kube-proxy ruleset of `services` services: one SYN from the LAN
/// to a cluster IP (services in turn, TCP ones with endpoints), which nat PREROUTING
/// KUBE-SERVICES -> KUBE-SVC-* (statistic) -> KUBE-SEP-* DNATs to an endpoint on pods0.
/// Returns connections a second; every SYN must leave pods0 to one of its service's endpoints.
fn kube_run(services: usize, conns: usize) -> Result<f64, String> {
    let g = crate::gen::kube_proxy(services);
    let mut lab = Lab::with_rules(&random_to_nth(&g.text), conns)?;
    let lan = lab.lan;
    let pods = lab.eng.host.dev("pods0").ok_or("no pods0")?;
    let svcs: Vec<crate::gen::ServiceInfo> = crate::gen::kube_proxy_services(services)
        .into_iter()
        .filter(|s| s.proto == "tcp" && !s.endpoints.is_empty())
        .collect();
    if svcs.is_empty() {
        return Err("no TCP service with endpoints".into());
    }
    let mut syns = Vec::with_capacity(conns);
    for i in 0..conns {
        let s = &svcs[i % svcs.len()];
        let (c, p, _) = flow(i);
        syns.push(lab.frame(
            lan,
            &format!(
                "tcp {c}:{p} > {}:{} flags=S seq=100 win=64240",
                s.cluster_ip, s.port
            ),
        )?);
    }
    // Room for every connection before the clock starts, in both runs. Growing the table
    // while timing was not the same work in both: glibc raises its mmap threshold after the
    // large ruleset's build buffers are freed, so with 10k services the entries grew in the
    // heap by copying (about 4 cache misses a connection), with 10 in a mapping by mremap.
    if let Some(ct) = lab.eng.ct.as_mut() {
        ct.reserve(conns);
    }
    let mut outs = Vec::with_capacity(conns);
    // The thread's CPU time, not the wall clock: on a loaded machine the wall time of a run
    // of a few milliseconds swings up to 3x with other processes' time slices (the 10-rule
    // ACL read 1.7 or 5.8 Mpps run to run), which made the 10k/10 ratio noise.
    let c0 = thread_cpu_secs();
    for f in &syns {
        outs.push(forward_dst(&mut lab, f, pods));
    }
    let secs = thread_cpu_secs() - c0;
    for (i, o) in outs.iter().enumerate() {
        let s = &svcs[i % svcs.len()];
        let (dst, dport) = o.ok_or_else(|| {
            format!(
                "SYN {i} to {}:{} did not leave pods0 alone",
                s.cluster_ip, s.port
            )
        })?;
        if !s.endpoints.contains(&dst) || dport != s.target_port {
            return Err(format!(
                "SYN {i} to {}:{} was sent to {dst}:{dport}, not an endpoint",
                s.cluster_ip, s.port
            ));
        }
    }
    Ok(conns as f64 / secs)
}

/// The kube workload alone (for profilers, `--example kube_probe`): `conns` new connections
/// through the kube-proxy ruleset of `services` services; connections a second.
pub fn kube_probe(services: usize, conns: usize) -> Result<f64, String> {
    kube_run(services, conns)
}

/// kube-proxy's endpoint choice `-m statistic --mode random --probability 1/m` made
/// deterministic as `--mode nth --every m --packet 0`, so that every run (and the linear-walk
/// comparison) meets the same endpoints; same chains, same rule count, same walk.
fn random_to_nth(rules: &str) -> String {
    let mut out = String::with_capacity(rules.len());
    for line in rules.lines() {
        let key = "-m statistic --mode random --probability ";
        match line.split_once(key) {
            Some((head, rest)) => {
                let (prob, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let every = prob
                    .parse::<f64>()
                    .map(|p| (1.0 / p).round().max(1.0) as u32)
                    .unwrap_or(1);
                out.push_str(&format!(
                    "{head}-m statistic --mode nth --every {every} --packet 0 {tail}"
                ));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The `kube` group: new connections through kube-proxy rulesets of 10k and of 10 services.
pub fn kube_figures(cfg: &Config, report: &mut Report) {
    let big = cfg.services.unwrap_or(if cfg.quick { 100 } else { 10_000 });
    let conns = if cfg.quick { 200 } else { 20_000 };
    let runs = cfg.runs.unwrap_or(if cfg.quick { 1 } else { 3 }).max(1);
    let mut big_rates = Vec::new();
    let mut ratios = Vec::new();
    let mut lin_ratios = Vec::new();
    for _ in 0..runs {
        let linear = walk_mode(true, || kube_run(big, conns));
        match (kube_run(10, conns), kube_run(big, conns), linear) {
            (Ok(small), Ok(large), Ok(lin)) => {
                big_rates.push(large / 1e6);
                ratios.push(small / large);
                lin_ratios.push(small / lin);
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) if e.contains("not supported") => {
                // A feature the engine refuses on purpose is a gap to list, not a failure.
                report.pending.push(crate::report::Pending {
                    name: format!(
                        "new connections/s through the kube-proxy ruleset, {} vs 10 services (issue 7 goal 2)",
                        human_count(big)
                    ),
                    why: format!("the engine refuses the ruleset: {e}"),
                });
                return;
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                report.warnings.push(format!("kube: {e}"));
                return;
            }
        }
    }
    report.workloads.push(format!(
        "kube: {conns} new TCP connections from lan0 to cluster IPs (services in turn) through the kube-proxy ruleset of {big} and of 10 services (statistic random as nth, so every run meets the same endpoints), DNATed to endpoints on pods0 (10.128.0.0/9); the connection table reserved for all of them before the clock starts in both runs"
    ));
    let size = human_count(big);
    report.figures.push(Figure {
        key: "kube",
        name: format!("new connections/s, kube-proxy {size} services"),
        value: median(big_rates),
        unit: "M/s",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec!["SYN -> nat PREROUTING KUBE-SERVICES -> KUBE-SVC (statistic) -> KUBE-SEP DNAT -> filter FORWARD -> out pods0, each checked; connections per CPU second of the bench thread; anchor n/a here: the kernel's forwarding beside nfrs run is the lab group (root, `--only lab`)".into()],
    });
    report.figures.push(Figure {
        key: "kube",
        name: format!("per-connection cost, kube-proxy {size} vs 10 services"),
        value: median(ratios),
        unit: "x",
        better: Better::Lower,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec!["CPU time of the bench thread a new connection with the large ruleset / with 10 services (issue 7 goal 2: <= 1.5x); CPU time: the wall time of these short runs swings up to 3x on a loaded machine".into()],
    });
    report.figures.push(Figure {
        key: "kube",
        name: format!("per-connection cost, kube-proxy {size} vs 10 services, linear walk"),
        value: median(lin_ratios),
        unit: "x",
        better: Better::Lower,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec!["the same with the classifier off (nfrs_engine::classify::set_linear): every rule visited in turn, as before the classifier".into()],
    });
}

/// The ACL as the FORWARD classifier: `trace` sent in from lan0, each checked against
/// first-match linear evaluation (ACCEPT: out of wan0; DROP: nothing). Returns packets a second.
/// The timed loop of the classifier figures: `syn_loop` under its own names, so that
/// `nfrs bench --instructions` can count the 10-rule, the classified 10k-rule and the linear
/// 10k-rule runs apart.
type ForwardLoop = fn(&mut Lab, &[Frame], usize) -> Vec<Option<(Ipv4Addr, u16)>>;

/// What left: see [`forward_dst`].
type Left = Vec<Option<(Ipv4Addr, u16)>>;

/// Capacity of the buffer that replaces a dropped packet's in the pool (room for the bench's
/// packets; within glibc's per-thread cache, which serves up to 1032 bytes).
const DROPPED_BUF: usize = 512;

/// [`Lab::forward`] for the timed loops of the classify and kube figures: the destination
/// address and port (bytes 2-3 of the transport header; 0 when cut short) of the packet that
/// left `out_dev` alone, and its buffer back into the lab's pool. Kept by the caller, each
/// forwarded packet's buffer would leave the pool empty and every packet would take a fresh
/// 2 KiB allocation (and its page faults) under the clock: a cost of the bench, the same with
/// 10 and with 10k rules, that would blur the ratio. A dropped packet's buffer goes with the
/// engine (freed there); a small fresh one takes its place in the pool, so that the next
/// packet's allocation and that free are served by the allocator's per-thread cache. A 2 KiB
/// buffer, too large for that cache, went through the heap's bins, whose cost depended on the
/// free chunks the ruleset's build had left (callgrind, 30% of the ACL packets dropped: malloc
/// and free 76 instructions a packet with 10 rules, 180 with 10k), not on the packet's walk.
#[inline]
fn forward_dst(lab: &mut Lab, f: &Frame, out_dev: usize) -> Option<(Ipv4Addr, u16)> {
    let Some(ip) = lab.forward(f, out_dev) else {
        if lab.pool.len() < POOL_MAX {
            lab.pool.push(Vec::with_capacity(DROPPED_BUF));
        }
        return None;
    };
    let dst = Ipv4Addr::new(*ip.get(16)?, ip[17], ip[18], ip[19]);
    let off = usize::from(ip[0] & 0x0f) * 4;
    let port = ip
        .get(off + 2..off + 4)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    if lab.pool.len() < POOL_MAX {
        lab.pool.push(ip);
    }
    Some((dst, port))
}

/// The timed loop of `classify_run`.
#[inline(never)]
fn acl_loop(lab: &mut Lab, frames: &[Frame], out_dev: usize) -> Left {
    frames
        .iter()
        .map(|f| forward_dst(lab, f, out_dev))
        .collect()
}

#[inline(never)]
fn acl_loop_small(lab: &mut Lab, frames: &[Frame], out_dev: usize) -> Left {
    frames
        .iter()
        .map(|f| forward_dst(lab, f, out_dev))
        .collect()
}

#[inline(never)]
fn acl_loop_big(lab: &mut Lab, frames: &[Frame], out_dev: usize) -> Left {
    frames
        .iter()
        .map(|f| forward_dst(lab, f, out_dev))
        .collect()
}

#[inline(never)]
fn acl_loop_linear(lab: &mut Lab, frames: &[Frame], out_dev: usize) -> Left {
    frames
        .iter()
        .map(|f| forward_dst(lab, f, out_dev))
        .collect()
}

/// What `nfrs bench --probe` runs for the classifier's instruction counts: the ACL of 10
/// rules, of `big` rules classified and of `big` rules walked linearly, `packets` packets each.
pub fn classify_instr_probe(big: usize, packets: usize) -> Result<(), String> {
    let small = crate::gen::acl_rules(10, 1);
    classify_run_with(&small, &acl_trace_mixed(&small, packets, 2), acl_loop_small)?;
    let rules = crate::gen::acl_rules(big, 1);
    let trace = acl_trace_mixed(&rules, packets, 2);
    classify_run_with(&rules, &trace, acl_loop_big)?;
    walk_mode(true, || classify_run_with(&rules, &trace, acl_loop_linear))?;
    Ok(())
}

/// Share of accepted packets in every ACL trace of the classify figures (the generator's
/// rules accept with this probability).
const ACCEPT_SHARE: f64 = 0.7;

/// `packets` packets drawn against `rules` (as `gen::acl_trace`), of which [`ACCEPT_SHARE`]
/// are accepted: an accepted packet goes on to routing, POSTROUTING and transmission, a
/// dropped one ends in FORWARD, so the 10-rule and the 10k-rule figures compare the same mix
/// (drawn freely, the 10-rule ACL of seed 1 accepted 56% of its packets, the 10k one 71%).
pub fn acl_trace_mixed(
    rules: &[crate::gen::AclRule],
    packets: usize,
    seed: u64,
) -> Vec<crate::gen::AclPacket> {
    let want_acc = (packets as f64 * ACCEPT_SHARE).round() as usize;
    let want = [packets - want_acc, want_acc];
    let mut have = [0usize; 2];
    let mut out = Vec::with_capacity(packets);
    // Draws of twice the length until both shares are full (a few at most; bounded in case
    // an ACL cannot give one of the verdicts).
    for round in 0..16 {
        for p in crate::gen::acl_trace(rules, packets * 2, seed + round * 0x1_0000) {
            let v = usize::from(crate::gen::acl_verdict(rules, &p));
            if have[v] < want[v] {
                have[v] += 1;
                out.push(p);
            }
        }
        if out.len() == packets {
            break;
        }
    }
    out
}

fn classify_run(
    rules: &[crate::gen::AclRule],
    trace: &[crate::gen::AclPacket],
) -> Result<f64, String> {
    classify_run_with(rules, trace, acl_loop)
}

fn classify_run_with(
    rules: &[crate::gen::AclRule],
    trace: &[crate::gen::AclPacket],
    run: ForwardLoop,
) -> Result<f64, String> {
    let g = crate::gen::render_acl(rules);
    let mut lab = Lab::with_rules(&g.text, 0)?;
    let (lan, wan) = (lab.lan, lab.wan);
    let mut frames = Vec::with_capacity(trace.len());
    for p in trace {
        let spec = match p.proto {
            6 => format!(
                "tcp {}:{} > {}:{} flags=S seq=1 win=1024",
                p.src, p.sport, p.dst, p.dport
            ),
            17 => format!("udp {}:{} > {}:{} len=8", p.src, p.sport, p.dst, p.dport),
            _ => format!("icmp {} > {} type=8 code=0 id=1 seq=1", p.src, p.dst),
        };
        frames.push(lab.frame(lan, &spec)?);
    }
    // The thread's CPU time (see `kube_run`).
    let c0 = thread_cpu_secs();
    let outs = run(&mut lab, &frames, wan);
    let secs = thread_cpu_secs() - c0;
    for (p, o) in trace.iter().zip(&outs) {
        let expected = crate::gen::acl_verdict(rules, p);
        if o.is_some() != expected {
            return Err(format!(
                "{p:?}: linear evaluation says {}, the engine {}",
                if expected { "ACCEPT" } else { "DROP" },
                if o.is_some() {
                    "forwarded it"
                } else {
                    "did not forward it alone"
                }
            ));
        }
    }
    Ok(trace.len() as f64 / secs)
}

/// The classifier workload alone (for profiling by hand, e.g. under cachegrind): the ACL of
/// `rules` rules (seed 1) with `packets` packets drawn against it; packets a second.
pub fn classify_probe(rules: usize, packets: usize) -> Result<f64, String> {
    let rules = crate::gen::acl_rules(rules, 1);
    let trace = acl_trace_mixed(&rules, packets, 2);
    classify_run(&rules, &trace)
}

/// The `classify` group: the ClassBench-style ACL as FORWARD classifier, 10k vs 10 rules, with
/// traffic drawn against each ACL and every verdict checked against linear evaluation.
pub fn classify_figures(cfg: &Config, report: &mut Report) {
    let big = if cfg.quick { 500 } else { 10_000 };
    let packets = if cfg.quick { 500 } else { 20_000 };
    let runs = cfg.runs.unwrap_or(if cfg.quick { 1 } else { 3 }).max(1);
    let big_rules = crate::gen::acl_rules(big, 1);
    let small_rules = crate::gen::acl_rules(10, 1);
    let big_trace = acl_trace_mixed(&big_rules, packets, 2);
    let small_trace = acl_trace_mixed(&small_rules, packets, 2);
    report.workloads.push(format!(
        "classify: ClassBench-style ACL of {big} and of 10 rules in FORWARD (policy DROP), {packets} packets each drawn against its ACL, 70% of them accepted in both (an accepted packet is forwarded, a dropped one ends in FORWARD), sent lan0 -> wan0; every verdict checked against first-match linear evaluation"
    ));
    let mut big_pps = Vec::new();
    let mut ratios = Vec::new();
    let mut lin_pps = Vec::new();
    let mut lin_ratios = Vec::new();
    for _ in 0..runs {
        match (
            classify_run(&small_rules, &small_trace),
            classify_run(&big_rules, &big_trace),
            walk_mode(true, || classify_run(&big_rules, &big_trace)),
        ) {
            (Ok(s), Ok(l), Ok(lin)) => {
                big_pps.push(l / 1e6);
                ratios.push(s / l);
                lin_pps.push(lin / 1e6);
                lin_ratios.push(s / lin);
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                report.warnings.push(format!("classify: {e}"));
                return;
            }
        }
    }
    let size = human_count(big);
    let why = "anchor n/a here: the kernel's forwarding beside nfrs run is the lab group (root, `--only lab`)";
    report.figures.push(Figure {
        key: "classify",
        name: format!("classifier pps, ClassBench ACL {size} rules"),
        value: median(big_pps),
        unit: "Mpps",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec![format!(
            "no conntrack (the ACL needs none): each packet is classified by FORWARD alone; packets per CPU second of the bench thread; {why}"
        )],
    });
    report.figures.push(Figure {
        key: "classify",
        name: format!("per-packet cost, ClassBench ACL {size} vs 10 rules"),
        value: median(ratios),
        unit: "x",
        better: Better::Lower,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec!["CPU time of the bench thread a packet with the large ACL and its traffic / with the 10-rule ACL and its traffic (issue 7 goal 2: <= 1.5x); CPU time: the wall time of these short runs swings up to 3x on a loaded machine".into()],
    });
    let before = "with the classifier off (nfrs_engine::classify::set_linear): every rule visited in turn, as before the classifier";
    report.figures.push(Figure {
        key: "classify",
        name: format!("classifier pps, ClassBench ACL {size} rules, linear walk"),
        value: median(lin_pps),
        unit: "Mpps",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec![before.into()],
    });
    report.figures.push(Figure {
        key: "classify",
        name: format!("per-packet cost, ClassBench ACL {size} vs 10 rules, linear walk"),
        value: median(lin_ratios),
        unit: "x",
        better: Better::Lower,
        anchor: "n/a".into(),
        anchor_value: None,
        method: format!("median of {runs}"),
        notes: vec![before.into()],
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_gateway_batches_forward_every_packet() {
        // run_with checks that every established packet left by the right device alone.
        for batch in [1, 2, 7, BATCH] {
            assert!(run_with(25, 3, 0, batch).unwrap().pps > 0.0);
        }
    }

    #[test]
    fn test_gateway_forwards_and_masquerades() {
        let m = one_run(20, 2, 0).unwrap();
        let m10 = one_run(20, 2, 10).unwrap();
        assert!(m10.pps > 0.0);
        assert!(m.pps > 0.0 && m.new_per_sec > 0.0);
    }

    #[test]
    fn test_acl_traces_share_their_verdict_mix() {
        for n in [10, 300] {
            let rules = crate::gen::acl_rules(n, 1);
            let trace = acl_trace_mixed(&rules, 1000, 2);
            assert_eq!(trace.len(), 1000);
            let acc = trace
                .iter()
                .filter(|p| crate::gen::acl_verdict(&rules, p))
                .count();
            assert_eq!(acc, 700, "{n} rules");
        }
    }

    #[test]
    fn test_kube_connections_reach_endpoints() {
        // Also under the linear walk: both must send every SYN to one of its endpoints.
        assert!(kube_run(30, 60).unwrap() > 0.0);
        assert!(walk_mode(true, || kube_run(30, 60)).unwrap() > 0.0);
    }

    #[test]
    fn test_random_to_nth() {
        let r = "-A KUBE-SVC-X -m comment --comment x -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-Y\n-A KUBE-SVC-X -j KUBE-SEP-Z\n";
        assert_eq!(
            random_to_nth(r),
            "-A KUBE-SVC-X -m comment --comment x -m statistic --mode nth --every 3 --packet 0 -j KUBE-SEP-Y\n-A KUBE-SVC-X -j KUBE-SEP-Z\n"
        );
    }

    #[test]
    fn test_classifier_verdicts_match_linear_evaluation() {
        let rules = crate::gen::acl_rules(200, 3);
        let trace = crate::gen::acl_trace(&rules, 300, 4);
        assert!(classify_run(&rules, &trace).unwrap() > 0.0);
    }

    #[test]
    fn test_gateway_rules_prefix() {
        let r = gateway_rules(2);
        assert!(r.starts_with("*nat\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n:FORWARD DROP [0:0]\n-A FORWARD -s 198.18.0.0/32 -p tcp -m tcp --dport 8443 -j DROP\n-A FORWARD -s 198.18.0.1/32 "));
        assert!(r.ends_with("-A FORWARD -i lan0 -o wan0 -j ACCEPT\nCOMMIT\n"));
        assert_eq!(gateway_rules(0), GATEWAY_RULES);
    }

    #[test]
    fn test_syn_leaves_masqueraded() {
        let mut lab = Lab::new(3, 10).unwrap();
        let (lan, wan) = (lab.lan, lab.wan);
        let syn = lab
            .frame(
                lan,
                "tcp 10.0.1.5:1029 > 203.0.113.6:443 flags=S seq=100 win=64240",
            )
            .unwrap();
        let out = lab.forward(&syn, wan).unwrap();
        assert_eq!(&out[12..16], &[192, 0, 2, 1], "source not masqueraded");
        assert_eq!(&out[16..20], &[203, 0, 113, 6]);
        assert_eq!(src_port(&out), Some(1029));
        // An unsolicited inbound SYN is dropped by the FORWARD policy.
        let inbound = lab
            .frame(
                wan,
                "tcp 203.0.113.6:443 > 10.0.1.5:22 flags=S seq=1 win=1024",
            )
            .unwrap();
        assert!(lab.forward(&inbound, lan).is_none());
    }
}
