//! Multi-core scaling (group `shard`, issue 7 goal 5): the MASQUERADE gateway of
//! [`crate::gateway`] as a flow-sharded set of engines (`nfrs_engine::shard::Sharded`), one
//! worker thread per shard, each owning its engine outright (no lock, nothing shared on the
//! packet path).
//!
//! Setup (untimed): the handshakes of N TCP flows through the sharded set, then the steering
//! step: every established packet (one duplicate ACK each way a flow) is put in the batch of
//! the shard `Sharded::shard_of` names; both packets of a flow must name the shard that
//! holds its connection. Timed: the worker threads run their batches `rounds` times; pps =
//! all packets / wall time from the threads' start to the last one's end. The same is done
//! with one shard on one thread; the figure is the ratio (goal: >= 1.8x on 2 cores).

use std::path::Path;
use std::time::Instant;

use nfrs_engine::engine::{Engine, Ev};
use nfrs_engine::host::HostNet;
use nfrs_engine::shard::Sharded;
use nfrs_wire::build::{build_frame, FrameCtx};
use nfrs_wire::ethernet::MacAddr;
use nfrs_wire::line::PacketSpec;

use crate::figures::{human_count, Config};
use crate::gateway::GATEWAY_RULES;
use crate::report::{Better, Figure, Report};

const WAN: &str = "192.0.2.1";

/// A packet ready for `Engine::receive` and the device it must leave by.
#[derive(Clone)]
struct Pkt {
    dev: usize,
    ip: Vec<u8>,
    mac: [u8; 14],
    out: usize,
}

fn build(shards: usize, flows: usize) -> Result<(Sharded, usize, usize), String> {
    let ct_max = (flows as u32).saturating_add(flows as u32 / 4).max(262_144);
    let text = format!(
        "description = \"nfrs bench sharded gateway\"\nexclusive = true\nrules = '''\n{GATEWAY_RULES}'''\npackets = '''\n'''\n\n[sysctl]\n\"net.ipv4.ip_forward\" = 1\n\"net.netfilter.nf_conntrack_max\" = {ct_max}\n\"net.netfilter.nf_conntrack_buckets\" = {ct_max}\n\n[[interface]]\nname = \"lan0\"\naddress = \"10.0.0.1/8\"\n\n[[interface]]\nname = \"wan0\"\naddress = \"{WAN}/24\"\n\n[[route]]\nto = \"default\"\nvia = \"192.0.2.254\"\ndev = \"wan0\"\n"
    );
    let sc =
        nfrs_scenario::parse(&text, Path::new("<nfrs bench shard>")).map_err(|e| e.to_string())?;
    let rs = nfrs_rules::restore::restore_new(&sc.rules, &Default::default())
        .map_err(|e| e.message.trim_end().to_string())?;
    let host = HostNet::new(&sc.host)?;
    let lan = host.dev("lan0").ok_or("no lan0")?;
    let wan = host.dev("wan0").ok_or("no wan0")?;
    let set = Sharded::new(&host, &rs, &sc.host.effective_sysctls(), shards)
        .map_err(|e| e.to_string())?;
    Ok((set, lan, wan))
}

fn frame(host: &HostNet, dev: usize, out: usize, spec: &str) -> Result<Pkt, String> {
    let spec = PacketSpec::parse(spec).map_err(|e| format!("{spec}: {e:?}"))?;
    let ctx = FrameCtx {
        src_mac: MacAddr([2, 0, 0, 0, 1, dev as u8 + 1]),
        dst_mac: MacAddr(host.ifaces()[dev].mac),
        ip_id: 1,
        allow_masked: false,
    };
    let f = build_frame(&spec, &ctx).map_err(|e| format!("{e:?}"))?;
    let mut mac = [0u8; 14];
    mac.copy_from_slice(&f[..14]);
    Ok(Pkt {
        dev,
        ip: f[14..].to_vec(),
        mac,
        out,
    })
}

/// Runs `p` on shard `k`; the packet it forwarded out of `p.out`, if that is all it caused.
fn forward(e: &mut Engine, p: &Pkt, now: u64) -> Option<Vec<u8>> {
    e.receive(p.dev, p.ip.clone(), p.mac, now);
    let out = match e.events.as_slice() {
        [Ev::Out { dev, ip, .. }] if *dev == p.out => Some(ip.clone()),
        _ => None,
    };
    e.events.clear();
    out
}

/// The timed worker loop: `rounds` times every packet of the batch; packets forwarded.
/// Not inlined, so that `--instructions`-style tools can find it.
#[inline(never)]
fn worker(e: &mut Engine, batch: &[Pkt], rounds: usize) -> usize {
    let mut now = 2_000_000_000u64;
    let mut n = 0;
    for _ in 0..rounds {
        for p in batch {
            now += 1000;
            n += usize::from(forward(e, p, now).is_some());
        }
    }
    n
}

/// The calling thread's time on a CPU and waiting for one, in ns (/proc/thread-self/schedstat);
/// zeros where it cannot be read.
fn sched_ns() -> (u64, u64) {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let mut f = s.split_whitespace().map(|x| x.parse::<u64>().unwrap_or(0));
    (f.next().unwrap_or(0), f.next().unwrap_or(0))
}

/// What one worker thread did.
struct Thread {
    /// Packets in its batch, all rounds.
    packets: usize,
    /// Of those, forwarded as expected.
    forwarded: usize,
    /// Wall time of its loop, s.
    secs: f64,
    /// Time on a CPU, s (0 when /proc cannot tell).
    cpu: f64,
    /// Time runnable but waiting for a CPU, s.
    wait: f64,
}

/// One measurement: `shards` shards on as many threads. Returns (overall pps, the threads,
/// ns a steering decision).
fn one_run(shards: usize, flows: usize, rounds: usize) -> Result<(f64, Vec<Thread>, f64), String> {
    let (mut set, lan, wan) = build(shards, flows)?;
    let host = set.shards[0].host.clone();
    let mut now = 1_000_000_000u64;
    let mut batches: Vec<Vec<Pkt>> = vec![Vec::new(); shards];
    let mut order: Vec<usize> = (0..flows).collect();
    let mut rng = crate::gen::Rng::new(5);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut pairs = Vec::with_capacity(flows);
    for i in 0..flows {
        let c = std::net::Ipv4Addr::from(0x0a00_0100u32 + i as u32);
        let s = format!("203.0.113.{}", 1 + i % 250);
        let p = 1024 + (i % 60_000) as u16;
        let syn = frame(
            &host,
            lan,
            wan,
            &format!("tcp {c}:{p} > {s}:443 flags=S seq=100 win=64240"),
        )?;
        now += 1000;
        let k = set.shard_of(&syn.ip);
        let out = forward(&mut set.shards[k], &syn, now)
            .ok_or_else(|| format!("SYN of flow {i} was not forwarded out of wan0"))?;
        let off = usize::from(out[0] & 0x0f) * 4;
        let mport = u16::from_be_bytes([out[off], out[off + 1]]);
        let synack = frame(
            &host,
            wan,
            lan,
            &format!("tcp {s}:443 > {WAN}:{mport} flags=SA seq=900 ack=101 win=65160"),
        )?;
        let ack = frame(
            &host,
            lan,
            wan,
            &format!("tcp {c}:{p} > {s}:443 flags=A seq=101 ack=901 win=64240"),
        )?;
        let back = frame(
            &host,
            wan,
            lan,
            &format!("tcp {s}:443 > {WAN}:{mport} flags=A seq=901 ack=101 win=65160"),
        )?;
        for q in [&synack, &ack] {
            now += 1000;
            if set.shard_of(&q.ip) != k {
                return Err(format!(
                    "flow {i}: a packet steered away from its shard {k}"
                ));
            }
            forward(&mut set.shards[k], q, now)
                .ok_or_else(|| format!("handshake of flow {i} was not forwarded"))?;
        }
        pairs.push((ack, back));
    }
    // The steering step: each pre-built packet to the batch of its shard.
    for &i in &order {
        let (ack, back) = &pairs[i];
        let (a, b) = (set.shard_of(&ack.ip), set.shard_of(&back.ip));
        if a != b {
            return Err(format!("flow {i}: its two directions steer to {a} and {b}"));
        }
        batches[a].push(ack.clone());
        batches[a].push(back.clone());
    }
    // What steering costs a packet (a dispatcher thread would pay it): 10 passes over all.
    let t = Instant::now();
    let mut sum = 0usize;
    for _ in 0..10 {
        for (ack, back) in &pairs {
            sum += set.shard_of(std::hint::black_box(&ack.ip));
            sum += set.shard_of(std::hint::black_box(&back.ip));
        }
    }
    std::hint::black_box(sum);
    let steer_ns = t.elapsed().as_secs_f64() * 1e9 / (20 * pairs.len()).max(1) as f64;
    let total: usize = batches.iter().map(Vec::len).sum::<usize>() * rounds;
    let t0 = Instant::now();
    let results: Vec<Thread> = std::thread::scope(|sc| {
        let handles: Vec<_> = set
            .shards
            .iter_mut()
            .zip(&batches)
            .map(|(e, b)| {
                sc.spawn(move || {
                    let (c0, w0) = sched_ns();
                    let t = Instant::now();
                    let n = worker(e, b, rounds);
                    let secs = t.elapsed().as_secs_f64();
                    let (c1, w1) = sched_ns();
                    (n, secs, c1.saturating_sub(c0), w1.saturating_sub(w0))
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(&batches)
            .map(|(h, b)| {
                let (n, secs, cpu, wait) = h.join().unwrap_or((0, 1.0, 0, 0));
                Thread {
                    packets: b.len() * rounds,
                    forwarded: n,
                    secs,
                    cpu: cpu as f64 / 1e9,
                    wait: wait as f64 / 1e9,
                }
            })
            .collect()
    });
    let secs = t0.elapsed().as_secs_f64();
    let forwarded: usize = results.iter().map(|r| r.forwarded).sum();
    if forwarded != total {
        return Err(format!(
            "only {forwarded} of {total} established packets were forwarded"
        ));
    }
    Ok((total as f64 / secs, results, steer_ns))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// The `shard` group: established-flow pps with 1 and with 2 flow-sharded worker threads.
pub fn shard_figures(cfg: &Config, report: &mut Report) {
    let flows = if cfg.quick { 200 } else { 10_000 };
    let rounds = if cfg.quick { 5 } else { 100 };
    let runs = cfg.runs.unwrap_or(if cfg.quick { 3 } else { 5 }).max(1);
    let size = human_count(flows);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    report.workloads.push(format!(
        "shard: the gateway's {size} TCP flows as 1 and as 2 flow-sharded engines, one worker thread each (no lock on the packet path); {rounds} rounds of one ACK each way a flow, steered to per-shard batches before the clock starts"
    ));
    let load_before = loadavg();
    let (mut one, mut two, mut ratios, mut cpu_ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut per = Vec::new();
    let mut steer = Vec::new();
    for _ in 0..runs {
        match (one_run(1, flows, rounds), one_run(2, flows, rounds)) {
            (Ok((a, t1, _)), Ok((b, t2, ns))) => {
                steer.push(ns);
                one.push(a / 1e6);
                two.push(b / 1e6);
                ratios.push(b / a);
                // On dedicated cores each thread would run only for its CPU time: the set's
                // rate is then bounded by the thread with the most CPU time.
                let cpu1 = t1.iter().map(|t| t.cpu).fold(0.0, f64::max);
                let cpu2 = t2.iter().map(|t| t.cpu).fold(0.0, f64::max);
                let p1: usize = t1.iter().map(|t| t.packets).sum();
                let p2: usize = t2.iter().map(|t| t.packets).sum();
                if cpu1 > 0.0 && cpu2 > 0.0 {
                    cpu_ratios.push((p2 as f64 / cpu2) / (p1 as f64 / cpu1));
                }
                let show = |t: &Thread| {
                    format!(
                        "{:.2} Mpps wall, {:.2} Mpps per CPU-s, on CPU {:.0}% / waiting {:.0}% of its {:.2} s",
                        t.packets as f64 / t.secs / 1e6,
                        t.packets as f64 / t.cpu.max(1e-9) / 1e6,
                        100.0 * t.cpu / t.secs,
                        100.0 * t.wait / t.secs,
                        t.secs
                    )
                };
                per.push(format!(
                    "1 thread [{}] | 2 threads [{}]",
                    t1.iter().map(show).collect::<Vec<_>>().join("; "),
                    t2.iter().map(show).collect::<Vec<_>>().join("; ")
                ));
            }
            (Err(e), _) | (_, Err(e)) => {
                report.warnings.push(format!("shard: {e}"));
                return;
            }
        }
    }
    let why = "anchor n/a: the kernel's multi-queue forwarding needs the veth netns lab";
    let method = format!("median of {runs}");
    let autogroup = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let load = format!(
        "this process may use {cores} core(s); load average {load_before} before, {} after (the machine is shared: other work takes the cores from the threads){}",
        loadavg(),
        if autogroup {
            "; kernel.sched_autogroup_enabled=1: on a busy machine the threads of this process share one session's CPU share, so a second thread adds little wall-clock speed (see the CPU-time figure)"
        } else {
            ""
        }
    );
    report.figures.push(Figure {
        key: "shard",
        name: format!("established-flow pps, MASQUERADE gateway, 1 worker thread, {size} flows"),
        value: median(one),
        unit: "Mpps",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: method.clone(),
        notes: vec![format!("one shard on one spawned thread; {why}")],
    });
    report.figures.push(Figure {
        key: "shard",
        name: format!(
            "established-flow pps, MASQUERADE gateway, 2 flow-sharded worker threads, {size} flows"
        ),
        value: median(two),
        unit: "Mpps",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: method.clone(),
        notes: vec![format!(
            "each thread owns one engine (half the flows); steering (Steering::shard_of, pure, no allocation) costs {:.1} ns a packet (median), untimed here as a NIC's RSS would do it; {why}",
            median(steer)
        )],
    });
    report.figures.push(Figure {
        key: "shard",
        name: format!("multi-core scaling, 2 vs 1 worker threads, {size} flows"),
        value: median(ratios),
        unit: "x",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method: method.clone(),
        notes: vec![format!(
            "wall-clock pps of 2 threads / of 1; issue 7 goal 5 asks >= 1.8x on 2 cores; {load}"
        )],
    });
    let mut notes = vec!["from each thread's CPU time (/proc/thread-self/schedstat), not the wall clock: packets / the busiest thread's CPU time with 2 threads, over packets / CPU time with 1; what 2 dedicated cores would give, whatever else runs on the machine".to_string()];
    notes.extend(
        per.into_iter()
            .enumerate()
            .map(|(i, p)| format!("run {}: {p}", i + 1)),
    );
    report.figures.push(Figure {
        key: "shard",
        name: format!(
            "multi-core scaling from thread CPU time, 2 vs 1 worker threads, {size} flows"
        ),
        value: if cpu_ratios.is_empty() {
            f64::NAN
        } else {
            median(cpu_ratios)
        },
        unit: "x",
        better: Better::Higher,
        anchor: "n/a".into(),
        anchor_value: None,
        method,
        notes,
    });
}

/// What `nfrs bench` tests call: a small run of both sizes.
pub fn smoke(flows: usize, rounds: usize) -> Result<(f64, f64), String> {
    Ok((one_run(1, flows, rounds)?.0, one_run(2, flows, rounds)?.0))
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_sharded_gateway_forwards_every_packet() {
        let (a, b) = super::smoke(300, 2).unwrap();
        assert!(a > 0.0 && b > 0.0);
    }
}
