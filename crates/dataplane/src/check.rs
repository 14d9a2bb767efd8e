//! `nfrs check PACKET`: what a packet written in the scenario packet syntax would meet right
//! now — its verdict, NAT, the rule path (as `nfrs replay --trace` prints it) and what it would
//! do to the connection table — without changing anything. The packet runs through a scratch
//! engine built from the ruleset in force (counters included) and a copy of the connection
//! table (through the conntrack snapshot) and of the stateful matches' state (`limit` and
//! `hashlimit` buckets, `recent` lists, `statistic` counters, `connlimit` lists); the live
//! engine is only read. A check against a stored ruleset (no daemon) starts those fresh.

use crate::cmds;
use crate::ctsave;
use nfrs_conntrack::{ConnTable, CtConfig, Format, Nanos, Style};
use nfrs_engine::engine::{Engine, Ev};
use nfrs_engine::host::HostNet;
use nfrs_engine::matches::EvalState;
use nfrs_rules::Ruleset;
use nfrs_scenario::{Event, Host, PacketResult};
use nfrs_wire::build::{build_frame, build_ipv4, FrameCtx};
use nfrs_wire::ethernet::MacAddr;
use std::fmt::Write;

/// What a check needs from the live state, taken in one go (cheap: a ruleset clone and the
/// table as snapshot text), so the rest runs away from the packet path.
#[derive(Clone, Debug)]
pub struct State {
    /// The ruleset in force, with its counters.
    pub ruleset: Ruleset,
    /// The connection table as a snapshot, with its settings and namespace number (`None`:
    /// the settings the host's sysctls give).
    pub table: Option<(String, Option<CtConfig>, Option<u32>)>,
    /// The clock the snapshot was taken at.
    pub now: Nanos,
    /// A TUN device hands local packets to the kernel's stack (`[live] tap`): the modelled
    /// stack does not answer them.
    pub external_stack: bool,
    /// The live engine's stateful matches (limit, hashlimit, recent, statistic, connlimit), so
    /// the check meets the buckets and lists as they are now.
    pub matches: Option<EvalState>,
}

impl State {
    /// Reads the state of `eng` at `now` (changes nothing).
    pub fn of(eng: &Engine, now: Nanos) -> State {
        State {
            ruleset: eng.ruleset_with_counters(),
            table: eng
                .ct
                .as_ref()
                .map(|ct| (ctsave::save(ct, now).0, Some(ct.config().clone()), ct.netns)),
            now,
            external_stack: eng.external_stack,
            matches: Some(eng.match_state().clone()),
        }
    }
}

fn listing(ct: Option<&ConnTable>, now: Nanos, saved: cmds::SavedCounters<'_>) -> Vec<String> {
    let style = Style {
        format: Format::Conntrack,
        timeout: true,
    };
    ct.map(|ct| {
        cmds::lines(ct, now, style, saved)
            .into_iter()
            .map(|(_, l)| l)
            .collect()
    })
    .unwrap_or_default()
}

/// Checks one packet line (`DEV PROTO SRC > DST [fields]`, a leading time is allowed) against
/// `state` on `host`. Returns the report, or an error for a bad line.
pub fn check(state: &State, host: &Host, line: &str) -> Result<String, String> {
    let line = line.trim();
    let first = line.split_whitespace().next().unwrap_or("");
    let timed = first.parse::<f64>().is_ok();
    let text = if timed {
        line.to_string()
    } else {
        format!("0 {line}")
    };
    let l = nfrs_wire::line::parse_input_line(&text).map_err(|e| e.to_string())?;
    let shown = if timed {
        line.split_once(char::is_whitespace)
            .map(|x| x.1.trim())
            .unwrap_or(line)
    } else {
        line
    };
    let hn = HostNet::new(host)?;
    let mut eng = Engine::new(hn, state.ruleset.clone(), &host.effective_sysctls())
        .map_err(|e| e.to_string())?;
    eng.external_stack = state.external_stack;
    if let Some(m) = &state.matches {
        // The same ruleset compiles to the same slots; a mismatch is a bug worth reporting.
        eng.set_match_state(m.clone())
            .map_err(|e| format!("nfrs check: copying the match state: {e}"))?;
    }
    let now = state.now;
    let mut saved = None;
    // Only when the ruleset runs conntrack (as the live engine would).
    if let (Some((text, cfg, netns)), Some(own)) = (&state.table, eng.ct.as_ref()) {
        let mut ct = ConnTable::new(cfg.clone().unwrap_or_else(|| own.config().clone()));
        ct.netns = netns.or(own.netns);
        let r = ctsave::restore(&mut ct, text, now);
        if let Some(e) = r.errs.first() {
            return Err(format!("nfrs check: copying the connection table: {e}"));
        }
        eng.ct = Some(ct);
        saved = Some(r);
    }
    let before = listing(eng.ct.as_ref(), now, saved.as_ref());
    eng.tracing = true;
    eng.events.clear();
    let input_ip;
    if l.dev == "local" {
        let ip = build_ipv4(&l.spec, &FrameCtx::default()).map_err(|e| e.to_string())?;
        input_ip = ip.clone();
        let mut p = nfrs_engine::pkt::PktCtx::new(ip).map_err(|e| e.to_string())?;
        p.now = now;
        p.pkttype = nfrs_engine::pkt::PktType::Outgoing;
        p.sock = Some(nfrs_engine::pkt::SockOwner { uid: 0, gid: 0 });
        eng.local_out(p);
    } else {
        let dev = eng
            .host
            .dev(&l.dev)
            .ok_or_else(|| format!("nfrs check: unknown device `{}`", l.dev))?;
        let src_mac = l
            .spec
            .src
            .and_then(|a| host.neighbour_mac(&l.dev, a))
            .unwrap_or([2, 0, 0, 0, 1, (dev + 1) as u8]);
        let ctx = FrameCtx {
            src_mac: MacAddr(src_mac),
            dst_mac: MacAddr(eng.host.ifaces()[dev].mac),
            ip_id: 1,
            allow_masked: false,
        };
        let frame = build_frame(&l.spec, &ctx).map_err(|e| e.to_string())?;
        let mut mac = [0u8; 14];
        mac.copy_from_slice(&frame[..14]);
        input_ip = frame[14..].to_vec();
        eng.receive(dev, frame[14..].to_vec(), mac, now);
    }
    let names: Vec<&str> = host.interfaces.iter().map(|i| i.name.as_str()).collect();
    let mut pr = PacketResult {
        input: shown.to_string(),
        events: Vec::new(),
    };
    let mut queued = false;
    for ev in &eng.events {
        match ev {
            Ev::Out { dev, ip, .. } => {
                let mut s = String::new();
                nfrs_wire::print::format_ipv4_masked(ip, &Default::default(), &mut s);
                pr.events.push(Event::Out {
                    dev: names.get(*dev).copied().unwrap_or("?").to_string(),
                    packet: s,
                });
            }
            Ev::Local { ip, .. } => {
                let mut s = String::new();
                nfrs_wire::print::format_ipv4_masked(ip, &Default::default(), &mut s);
                pr.events.push(Event::Local(s));
            }
            Ev::Log { text, .. } => pr.events.push(Event::Log(text.clone())),
            Ev::Queued => queued = true,
        }
    }
    pr.finish(&names, queued);
    let mut out = String::new();
    let _ = writeln!(out, "{}", pr.input);
    for e in &pr.events {
        let _ = writeln!(out, "  {e}");
    }
    for t in &eng.trace.lines {
        let _ = writeln!(out, "    | {t}");
    }
    let _ = writeln!(out, "  verdict: {}", verdict(&input_ip, &eng, &names));
    // What the packet would leave in the table (an entry is confirmed when the packet leaves).
    let after = listing(eng.ct.as_ref(), now, saved.as_ref());
    for l in after.iter().filter(|l| !before.contains(l)) {
        let _ = writeln!(out, "  conntrack would hold: {l}");
    }
    for l in before.iter().filter(|l| !after.contains(l)) {
        let _ = writeln!(out, "  conntrack would lose: {l}");
    }
    Ok(out)
}

/// `A:port` (the port for protocols that have one).
fn endpoint(addr: u32, port: u16, proto: u8) -> String {
    let a = std::net::Ipv4Addr::from(addr);
    if matches!(proto, 6 | 17 | 132 | 136) {
        format!("{a}:{port}")
    } else {
        a.to_string()
    }
}

/// One line: where the packet ends and what NAT did to it.
fn verdict(input: &[u8], eng: &Engine, names: &[&str]) -> String {
    let name = |d: usize| names.get(d).copied().unwrap_or("?");
    let before = crate::events::packet_tuple(input);
    for ev in &eng.events {
        if let Ev::Out {
            dev,
            ip,
            host: false,
        } = ev
        {
            let mut v = format!("forwarded out {}", name(*dev));
            if let (Some(a), Some(b)) = (before, crate::events::packet_tuple(ip)) {
                if (a.src, a.src_l4) != (b.src, b.src_l4) {
                    let _ = write!(
                        v,
                        ", source NAT {} -> {}",
                        endpoint(a.src, a.src_l4, a.proto),
                        endpoint(b.src, b.src_l4, b.proto)
                    );
                }
                if (a.dst, a.dst_l4) != (b.dst, b.dst_l4) {
                    let _ = write!(
                        v,
                        ", destination NAT {} -> {}",
                        endpoint(a.dst, a.dst_l4, a.proto),
                        endpoint(b.dst, b.dst_l4, b.proto)
                    );
                }
            }
            return v;
        }
    }
    let answers: Vec<&str> = eng
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Out {
                dev, host: true, ..
            } => Some(name(*dev)),
            _ => None,
        })
        .collect();
    let mut v = if eng.events.iter().any(|e| matches!(e, Ev::Local { .. })) {
        if eng.external_stack {
            "delivered to the host (its kernel, through the TUN device)".to_string()
        } else {
            "delivered to the host".to_string()
        }
    } else if eng.events.iter().any(|e| matches!(e, Ev::Queued)) {
        "held for reassembly".to_string()
    } else {
        match eng.trace.lines.iter().rev().find(|t| t.contains("dropped")) {
            Some(t) => format!("dropped ({})", t.trim()),
            None => "dropped".to_string(),
        }
    };
    if let Some(d) = answers.first() {
        let _ = write!(v, "; the host answers out {d}");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const HOST: &str = "[[interface]]\nname = \"lan0\"\naddress = \"10.0.0.1/24\"\n[[interface]]\nname = \"wan0\"\naddress = \"192.0.2.1/24\"\n[[route]]\nto = \"default\"\nvia = \"192.0.2.254\"\ndev = \"wan0\"\n[sysctl]\n\"net.ipv4.ip_forward\" = \"1\"\n";
    const RULES: &str = "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -o wan0 -j MASQUERADE\nCOMMIT\n*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -p udp --dport 53 -j ACCEPT\n-A FORWARD -p udp -j DROP\nCOMMIT\n";

    fn send(e: &mut Engine, host: &Host, line: &str, now: Nanos) {
        let l = nfrs_wire::line::parse_input_line(line).unwrap();
        let dev = e.host.dev(&l.dev).unwrap();
        let ctx = FrameCtx {
            src_mac: MacAddr([2, 0, 0, 0, 1, 1]),
            dst_mac: MacAddr(e.host.ifaces()[dev].mac),
            ip_id: 1,
            allow_masked: false,
        };
        let f = build_frame(&l.spec, &ctx).unwrap();
        let mut mac = [0u8; 14];
        mac.copy_from_slice(&f[..14]);
        e.receive(dev, f[14..].to_vec(), mac, now);
        let _ = host;
    }

    /// Everything a check could touch, as text.
    fn snapshot(e: &Engine, now: Nanos) -> (String, Vec<String>, u32) {
        let rs = e.ruleset_with_counters();
        let ct = e.ct.as_ref().unwrap();
        (
            nfrs_rules::save::save(&rs, None, true),
            listing(Some(ct), now, None),
            ct.count(),
        )
    }

    #[test]
    fn check_answers_and_changes_nothing() {
        let h = crate::hostfile::parse(HOST, Path::new("h.toml"))
            .unwrap()
            .host;
        let rs = nfrs_rules::restore::restore_new(RULES, &Default::default()).unwrap();
        let mut e = Engine::new(HostNet::new(&h).unwrap(), rs, &h.effective_sysctls()).unwrap();
        let t = nfrs_conntrack::SEC;
        send(&mut e, &h, "0 lan0 udp 10.0.0.2:1000 > 198.51.100.7:53", t);
        let before = snapshot(&e, 2 * t);
        assert_eq!(before.2, 1);
        let state = State::of(&e, 2 * t);
        // The known flow's next packet: forwarded (established), NATed.
        let out = check(&state, &h, "lan0 udp 10.0.0.2:1000 > 198.51.100.7:53").unwrap();
        assert!(
            out.contains("  out wan0 udp 192.0.2.1:1000 > 198.51.100.7:53 "),
            "{out}"
        );
        assert!(
            out.contains(
                "  verdict: forwarded out wan0, source NAT 10.0.0.2:1000 -> 192.0.2.1:1000\n"
            ),
            "{out}"
        );
        // A new flow to port 53: accepted, and it would create an entry.
        let out = check(&state, &h, "0.5 lan0 udp 10.0.0.3:1000 > 198.51.100.7:53").unwrap();
        assert!(
            out.starts_with("lan0 udp 10.0.0.3:1000 > 198.51.100.7:53\n"),
            "{out}"
        );
        assert!(out.contains("accepted by filter/FORWARD rule 1"), "{out}");
        assert!(
            out.contains("  conntrack would hold: udp      17 30 src=10.0.0.3 "),
            "{out}"
        );
        // Dropped: the verdict and the rule say so; nothing would be kept.
        let out = check(&state, &h, "lan0 udp 10.0.0.2:1 > 198.51.100.7:9").unwrap();
        assert!(out.contains("  (dropped)\n"), "{out}");
        assert!(out.contains("dropped by filter/FORWARD rule 2"), "{out}");
        assert!(
            out.contains("  verdict: dropped (dropped by filter/FORWARD rule 2)\n"),
            "{out}"
        );
        assert!(!out.contains("conntrack would"), "{out}");
        // To the host itself: delivered, and its stack answers (port unreachable).
        let out = check(&state, &h, "lan0 udp 10.0.0.2:1 > 10.0.0.1:9").unwrap();
        assert!(
            out.contains("  verdict: delivered to the host; the host answers out lan0\n"),
            "{out}"
        );
        // With the TUN device the kernel answers, not the model.
        let tun = State {
            external_stack: true,
            ..State::of(&e, 2 * t)
        };
        let out = check(&tun, &h, "lan0 udp 10.0.0.2:1 > 10.0.0.1:9").unwrap();
        assert!(
            out.contains("  verdict: delivered to the host (its kernel, through the TUN device)\n"),
            "{out}"
        );
        assert!(check(&state, &h, "eth9 udp 1.2.3.4:1 > 5.6.7.8:2").is_err());
        assert!(check(&state, &h, "lan0 udp 1.2.3.4:1 >").is_err());
        // The live engine is as it was: counters, table, count.
        assert_eq!(snapshot(&e, 2 * t), before);
    }

    #[test]
    fn check_meets_the_live_limit_bucket() {
        let h = crate::hostfile::parse(HOST, Path::new("h.toml"))
            .unwrap()
            .host;
        let rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
            -A FORWARD -p udp -m limit --limit 1/hour --limit-burst 1 -j ACCEPT\nCOMMIT\n";
        let rs = nfrs_rules::restore::restore_new(rules, &Default::default()).unwrap();
        let mut e = Engine::new(HostNet::new(&h).unwrap(), rs, &h.effective_sysctls()).unwrap();
        let t = nfrs_conntrack::SEC;
        let probe = "lan0 udp 10.0.0.2:2000 > 198.51.100.7:53";
        // Before any packet the one-packet burst is there: the check would be accepted.
        let fresh = check(&State::of(&e, t), &h, probe).unwrap();
        assert!(
            fresh.contains("accepted by filter/FORWARD rule 1"),
            "{fresh}"
        );
        // A live packet takes the burst; the check now meets the empty bucket and the policy.
        send(&mut e, &h, "0 lan0 udp 10.0.0.2:1000 > 198.51.100.7:53", t);
        let state = State::of(&e, 2 * t);
        let spent = check(&state, &h, probe).unwrap();
        assert!(spent.contains("  (dropped)\n"), "{spent}");
        // Without the live match state (a stored ruleset), the bucket starts full again.
        let stored = State {
            matches: None,
            ..state.clone()
        };
        let out = check(&stored, &h, probe).unwrap();
        assert!(out.contains("accepted by filter/FORWARD rule 1"), "{out}");
        // The check took nothing from the live bucket: a second check answers the same.
        assert_eq!(check(&state, &h, probe).unwrap(), spent);
        // Another ruleset's engine refuses the state (its slots differ).
        let other = nfrs_rules::restore::restore_new(RULES, &Default::default()).unwrap();
        let mut o = Engine::new(HostNet::new(&h).unwrap(), other, &h.effective_sysctls()).unwrap();
        assert!(o.set_match_state(e.match_state().clone()).is_err());
    }
}
