//! `nfrs replay`: a scenario's packet lines through the engine, into the canonical result
//! (SCENARIOS.md, "Results"), with the same masking of the kernel's random choices as the
//! kernel oracle applies (host-generated IP ids and ISNs; NAT ports picked at random).

use crate::engine::{Engine, Ev};
use crate::host::HostNet;
use nfrs_scenario::mask::mask_log_ip_id;
use nfrs_scenario::{Event, PacketResult, RunResult, Scenario};
use nfrs_wire::build::{build_frame, build_ipv4, FrameCtx};
use nfrs_wire::ethernet::MacAddr;
use nfrs_wire::print::{format_ipv4_masked, Masks};

/// What a replay produced.
#[derive(Clone, Debug, Default)]
pub struct Replay {
    /// The canonical result.
    pub result: RunResult,
    /// Per input packet, the trace lines (empty unless tracing).
    pub traces: Vec<Vec<String>>,
    /// Emitted frames in order: (time in µs, device, Ethernet frame).
    pub frames: Vec<(u64, String, Vec<u8>)>,
}

/// The engine for a scenario's host, ruleset and sysctls (no packets run yet).
pub fn engine_for(sc: &Scenario) -> Result<Engine, String> {
    let ruleset = if sc.rules.trim().is_empty() {
        nfrs_rules::Ruleset::default()
    } else {
        nfrs_rules::restore::restore_new(&sc.rules, &Default::default()).map_err(|e| {
            format!(
                "nfrs replay: {}: rules: {}",
                sc.path.display(),
                e.message.trim_end()
            )
        })?
    };
    let host = HostNet::new(&sc.host)?;
    let sysctls = sc.host.effective_sysctls();
    Engine::new(host, ruleset, &sysctls).map_err(|e| e.to_string())
}

/// Runs `sc` through the engine. `trace` records per-packet traces.
pub fn run(sc: &Scenario, trace: bool) -> Result<Replay, String> {
    run_with_progress(sc, trace, &mut |_, _| {})
}

/// [`run`], calling `progress(done, total)` after each input (for a progress bar on long
/// captures).
pub fn run_with_progress(
    sc: &Scenario,
    trace: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Replay, String> {
    run_engine(sc, trace, progress).map(|(r, _, _)| r)
}

/// [`run_with_progress`], also handing back the engine as the last input left it and the
/// scenario clock at that input (ns), for `nfrs replay --store` (final ruleset and table).
pub fn run_engine(
    sc: &Scenario,
    trace: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Replay, Engine, u64), String> {
    let mut eng = engine_for(sc)?;
    eng.tracing = trace;
    let names: Vec<String> = sc.host.interfaces.iter().map(|i| i.name.clone()).collect();
    let name_refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
    let mut out = Replay {
        result: RunResult {
            description: sc.description.clone(),
            ..RunResult::default()
        },
        ..Replay::default()
    };
    let mut last_now = 0;
    // Inputs: packet lines, or a capture's frames (Ethernet, already addressed to the host).
    let mut inputs: Vec<(String, String, u64, Input)> = Vec::new();
    if let nfrs_scenario::Input::Pcap { .. } = &sc.input {
        for f in sc.capture_frames().map_err(|e| e.to_string())? {
            inputs.push((
                f.input_text(),
                f.dev.clone(),
                f.time_us,
                Input::Frame(f.frame),
            ));
        }
    } else {
        for (i, line) in sc.packet_lines().iter().enumerate() {
            inputs.push((
                line.text.clone(),
                line.parsed.dev.clone(),
                line.parsed.time_us,
                Input::Line(i),
            ));
        }
    }
    let total = inputs.len();
    for (i, (text, devname, time_us, input)) in inputs.into_iter().enumerate() {
        progress(i, total);
        let n = (i + 1) as u16;
        let now = time_us * 1000;
        last_now = now;
        // Timers due before this input: their events are the previous input's `late` ones
        // (as the oracle sees them: whatever arrived between two packets).
        eng.events.clear();
        eng.advance(now);
        if !eng.events.is_empty() {
            let evs = std::mem::take(&mut eng.events);
            let mut late = Vec::new();
            for ev in &evs {
                if let Some(e) = convert(&eng, ev, &names, time_us, &mut out.frames) {
                    late.push(Event::Late(Box::new(e)));
                }
            }
            if let Some(prev) = out.result.packets.last_mut() {
                prev.events.extend(late);
            }
        }
        eng.events.clear();
        eng.trace.lines.clear();
        let where_ = || match input {
            Input::Line(k) => format!("{}:{}", sc.path.display(), sc.packet_lines()[k].line),
            Input::Frame(_) => format!("{}: frame {n}", sc.path.display()),
        };
        let dev = if devname == "local" {
            None
        } else {
            Some(
                eng.host
                    .dev(&devname)
                    .ok_or_else(|| format!("{}: unknown device `{devname}`", where_()))?,
            )
        };
        match (&input, dev) {
            (Input::Line(k), None) => {
                let l = &sc.packet_lines()[*k].parsed;
                let ip = build_ipv4(
                    &l.spec,
                    &FrameCtx {
                        ip_id: n,
                        ..FrameCtx::default()
                    },
                )
                .map_err(|e| format!("{}: {e}", where_()))?;
                match crate::pkt::PktCtx::new(ip) {
                    Ok(mut p) => {
                        p.now = now;
                        p.pkttype = crate::pkt::PktType::Outgoing;
                        // The oracle sends a host's packet from a socket of root's.
                        p.sock = Some(crate::pkt::SockOwner { uid: 0, gid: 0 });
                        eng.local_out(p);
                    }
                    Err(_) => eng
                        .trace
                        .lines
                        .push("not a valid IPv4 packet: not sent".into()),
                }
            }
            (Input::Line(k), Some(dev)) => {
                let l = &sc.packet_lines()[*k].parsed;
                let src_mac = l
                    .spec
                    .src
                    .and_then(|a| sc.host.neighbour_mac(&l.dev, a))
                    .unwrap_or([2, 0, 0, 0, 1, (dev + 1) as u8]);
                let ctx = FrameCtx {
                    src_mac: MacAddr(src_mac),
                    dst_mac: MacAddr(eng.host.ifaces()[dev].mac),
                    ip_id: n,
                    allow_masked: false,
                };
                let frame = build_frame(&l.spec, &ctx).map_err(|e| format!("{}: {e}", where_()))?;
                receive_frame(&mut eng, dev, &frame, now);
            }
            (Input::Frame(f), Some(dev)) => receive_frame(&mut eng, dev, f, now),
            (Input::Frame(_), None) => {
                return Err(format!("{}: a capture frame needs a device", where_()))
            }
        }
        let mut pr = PacketResult {
            input: text,
            events: Vec::new(),
        };
        let mut queued = false;
        for ev in &eng.events {
            if *ev == Ev::Queued {
                queued = true;
            } else if let Some(e) = convert(&eng, ev, &names, time_us, &mut out.frames) {
                pr.events.push(e);
            }
        }
        pr.finish(&name_refs, queued);
        out.result.packets.push(pr);
        out.traces.push(eng.trace.lines.clone());
    }
    out.result.conntrack = eng.conntrack_listing(last_now);
    out.result.expect = eng.expect_listing(last_now);
    let rs = eng.ruleset_with_counters();
    let saved = nfrs_rules::save::save(&rs, None, true);
    out.result.iptables_save = saved
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.to_string())
        .collect();
    nfrs_scenario::mask::mask_random_choices(&mut out.result, &sc.rules)?;
    Ok((out, eng, last_now))
}

/// One engine event in the result's form (None for `Queued`, which only marks the packet);
/// an emitted packet is also kept as an Ethernet frame in `frames`.
fn convert(
    eng: &Engine,
    ev: &Ev,
    names: &[String],
    time_us: u64,
    frames: &mut Vec<(u64, String, Vec<u8>)>,
) -> Option<Event> {
    Some(match ev {
        Ev::Out { dev, ip, host } => {
            let mut f = Vec::with_capacity(14 + ip.len());
            let ifc = &eng.host.ifaces()[*dev];
            let dst = u32::from_be_bytes([ip[16], ip[17], ip[18], ip[19]]);
            let nh = eng.host.lookup(dst).map(|x| x.1).unwrap_or(dst);
            f.extend_from_slice(&eng.host.neighbour_mac(*dev, nh));
            f.extend_from_slice(&ifc.mac);
            f.extend_from_slice(&[0x08, 0x00]);
            f.extend_from_slice(ip);
            frames.push((time_us, names[*dev].clone(), f));
            Event::Out {
                dev: names[*dev].clone(),
                packet: print_packet(ip, *host),
            }
        }
        Ev::Local { ip, host } => Event::Local(print_packet(ip, *host)),
        Ev::Log { text, host, .. } => {
            let t = if *host && text.contains("IN= ") && !text.contains(" ID=0 ") {
                mask_log_ip_id(text)
            } else {
                text.clone()
            };
            Event::Log(t)
        }
        Ev::Queued => return None,
    })
}

enum Input {
    /// Index into the scenario's packet lines.
    Line(usize),
    /// An Ethernet frame of a capture.
    Frame(Vec<u8>),
}

/// An Ethernet frame arriving on `dev`: IPv4 goes to the engine; anything else (ARP, IPv6)
/// meets no IPv4 hook and is left out.
fn receive_frame(eng: &mut Engine, dev: usize, frame: &[u8], now: u64) {
    if frame.len() < 14 || frame[12..14] != [0x08, 0x00] {
        eng.trace
            .lines
            .push("not an IPv4 frame: no IPv4 hook sees it".into());
        return;
    }
    let mut mac = [0u8; 14];
    mac.copy_from_slice(&frame[..14]);
    eng.receive(dev, frame[14..].to_vec(), mac, now);
}

/// A packet in the canonical form; the host's own packets print their random IP id as `*`
/// (except id 0, which RSTs carry) and a SYN-ACK's sequence number and timestamp masked.
fn print_packet(ip: &[u8], host: bool) -> String {
    let mut masks = Masks::default();
    let id = if ip.len() >= 6 {
        u16::from_be_bytes([ip[4], ip[5]])
    } else {
        0
    };
    if host && id != 0 {
        masks.ip_id = Some("*".into());
    }
    let mut s = String::new();
    format_ipv4_masked(ip, &masks, &mut s);
    let syn = ip.len() > 20
        && ip[9] == 6
        && ip
            .get(usize::from(ip[0] & 0x0f) * 4 + 13)
            .is_some_and(|f| f & 0x02 != 0);
    if host && syn {
        s = s
            .split(' ')
            .map(|t| {
                if t.starts_with("seq=") {
                    "seq=*".to_string()
                } else if let Some((_, e)) = t.strip_prefix("ts=").and_then(|v| v.split_once('/')) {
                    format!("ts=*/{e}")
                } else {
                    t.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    s
}
