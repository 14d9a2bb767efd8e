//! `nfrs replay SCENARIO [--json] [--trace] [--pcap-out FILE] [--store DIR]`: runs a scenario
//! through the engine and prints the canonical result text (SCENARIOS.md), the same as
//! `nfrs kernel-run`. With `--store` the final ruleset (with its counters), connection table
//! and expectations, and the scenario's host are left in the store, where `iptables-save -c`,
//! `conntrack -L`, `proc net/nf_conntrack` and `nfrs check` find them.

use std::io::Write;

const USAGE: &str =
    "usage: nfrs replay SCENARIO [--json] [--trace] [--pcap-out FILE] [--dev NAME] [--store DIR]";

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Entry point.
pub fn main(args: &[String]) -> i32 {
    let (store, args) = crate::ctl::take_store(args);
    let mut file = None;
    let mut json = false;
    let mut trace = false;
    let mut pcap_out = None;
    let mut dev = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--trace" => trace = true,
            "--pcap-out" => match it.next() {
                Some(f) => pcap_out = Some(f.clone()),
                None => {
                    eprintln!("nfrs replay: --pcap-out needs a file\n{USAGE}");
                    return 2;
                }
            },
            "--dev" => match it.next() {
                Some(d) => dev = Some(d.clone()),
                None => {
                    eprintln!("nfrs replay: --dev needs a device\n{USAGE}");
                    return 2;
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            s if s.starts_with('-') => {
                eprintln!("nfrs replay: unknown option `{s}`\n{USAGE}");
                return 2;
            }
            s => {
                if file.is_some() {
                    eprintln!("nfrs replay: one scenario at a time\n{USAGE}");
                    return 2;
                }
                file = Some(s.to_string());
            }
        }
    }
    let Some(file) = file else {
        eprintln!("{USAGE}");
        return 2;
    };
    let mut sc = match nfrs_scenario::load(std::path::Path::new(&file)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("nfrs replay: {e}");
            return 1;
        }
    };
    if let Some(d) = dev {
        // `--dev`: the ingress device of every frame of a classic pcap (overrides `pcap_dev`).
        match &mut sc.input {
            nfrs_scenario::Input::Pcap { dev: pd, .. } => *pd = Some(d),
            _ => {
                eprintln!("nfrs replay: --dev applies to a capture input only");
                return 2;
            }
        }
    }
    // A progress bar on a terminal for long captures.
    use std::io::IsTerminal;
    let tty = std::io::stderr().is_terminal();
    let mut last = usize::MAX;
    let mut bar = |done: usize, total: usize| {
        if !tty || total < 10_000 {
            return;
        }
        let pct = (done + 1) * 100 / total;
        if pct != last || done + 1 == total {
            last = pct;
            eprint!("\rnfrs replay: {}/{total} frames ({pct}%)", done + 1);
            if done + 1 == total {
                eprintln!();
            }
        }
    };
    let store = store.map(nfrs_rules::store::Store::at);
    if let Some(st) = &store {
        if crate::ctl::daemon_running(&st.dir) {
            eprintln!(
                "nfrs replay: an nfrs run daemon owns {}; replay into another store",
                st.dir.display()
            );
            return 1;
        }
    }
    let (rep, eng, end) = match nfrs_engine::replay::run_engine(&sc, trace, &mut bar) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    if let Some(st) = &store {
        if let Err(e) = leave_in_store(st, &sc, &eng, end) {
            eprintln!("nfrs replay: {}: {e}", st.dir.display());
            return 1;
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        let r = &rep.result;
        let _ = writeln!(out, "{{\"description\":{}}}", json_str(&r.description));
        for n in &r.notes {
            let _ = writeln!(out, "{{\"note\":{}}}", json_str(n));
        }
        for (i, p) in r.packets.iter().enumerate() {
            let evs: Vec<String> = p.events.iter().map(|e| json_str(&e.to_string())).collect();
            let tr: Vec<String> = rep.traces[i].iter().map(|t| json_str(t)).collect();
            let _ = write!(
                out,
                "{{\"input\":{},\"events\":[{}]",
                json_str(&p.input),
                evs.join(",")
            );
            if trace {
                let _ = write!(out, ",\"trace\":[{}]", tr.join(","));
            }
            let _ = writeln!(out, "}}");
        }
        for (k, v) in [
            ("conntrack", &r.conntrack),
            ("expect", &r.expect),
            ("iptables_save", &r.iptables_save),
        ] {
            let items: Vec<String> = v.iter().map(|s| json_str(s)).collect();
            let _ = writeln!(out, "{{\"{k}\":[{}]}}", items.join(","));
        }
    } else if trace {
        let text = rep.result.to_text();
        // Interleave each packet's trace after its result lines.
        let mut pi = 0usize;
        let mut in_packets = true;
        let mut pending: Option<usize> = None;
        for line in text.lines() {
            if line.starts_with("== ") {
                if let Some(k) = pending.take() {
                    for t in &rep.traces[k] {
                        let _ = writeln!(out, "    | {t}");
                    }
                }
                in_packets = false;
            }
            if in_packets && !line.starts_with('#') && !line.starts_with(' ') {
                if let Some(k) = pending.take() {
                    for t in &rep.traces[k] {
                        let _ = writeln!(out, "    | {t}");
                    }
                }
                pending = Some(pi);
                pi += 1;
            }
            let _ = writeln!(out, "{line}");
        }
    } else {
        let _ = write!(out, "{}", rep.result.to_text());
    }
    if let Some(f) = pcap_out {
        if let Err(e) = write_pcapng(&f, &sc, &rep) {
            eprintln!("nfrs replay: {f}: {e}");
            return 1;
        }
    }
    0
}

/// `--store`: the final ruleset with counters, the connection table and expectations (their
/// timeouts relative to the scenario's clock at its last packet) and the scenario's host.
fn leave_in_store(
    st: &nfrs_rules::store::Store,
    sc: &nfrs_scenario::Scenario,
    eng: &nfrs_engine::engine::Engine,
    end: u64,
) -> Result<(), String> {
    use nfrs_dataplane::ctsave;
    let _lock = st
        .lock(std::time::Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    st.save(&eng.ruleset_with_counters())
        .map_err(|e| e.to_string())?;
    match &eng.ct {
        Some(ct) => {
            let (text, _) = ctsave::save(ct, end);
            nfrs_rules::store::write_atomic(&st.dir, ctsave::FILE, text.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        None => match std::fs::remove_file(st.dir.join(ctsave::FILE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.to_string()),
            _ => {}
        },
    }
    // The host, for `nfrs check --store` (a capture given alone has no host file to keep).
    if let Ok(text) = std::fs::read_to_string(&sc.path) {
        if let Ok(host) = nfrs_dataplane::hostfile::host_part(&text, &sc.path) {
            nfrs_rules::store::write_atomic(&st.dir, crate::check::HOST_FILE, host.as_bytes())
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Emitted frames as pcapng, one interface block per host interface (named).
fn write_pcapng(
    path: &str,
    sc: &nfrs_scenario::Scenario,
    rep: &nfrs_engine::replay::Replay,
) -> std::io::Result<()> {
    let mut b: Vec<u8> = Vec::new();
    let block = |b: &mut Vec<u8>, ty: u32, body: &[u8]| {
        let pad = (4 - body.len() % 4) % 4;
        let len = (12 + body.len() + pad) as u32;
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.extend(std::iter::repeat_n(0u8, pad));
        b.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1A2B_3C4Du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut b, 0x0A0D_0D0A, &shb);
    for i in &sc.host.interfaces {
        let mut idb = Vec::new();
        idb.extend_from_slice(&1u16.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&65535u32.to_le_bytes());
        let name = i.name.as_bytes();
        idb.extend_from_slice(&2u16.to_le_bytes());
        idb.extend_from_slice(&(name.len() as u16).to_le_bytes());
        idb.extend_from_slice(name);
        idb.extend(std::iter::repeat_n(0u8, (4 - name.len() % 4) % 4));
        idb.extend_from_slice(&[0, 0, 0, 0]);
        block(&mut b, 1, &idb);
    }
    for (t, dev, f) in &rep.frames {
        let ifi = sc.host.interface_index(dev).unwrap_or(1) - 1;
        let mut epb = Vec::new();
        epb.extend_from_slice(&(ifi as u32).to_le_bytes());
        epb.extend_from_slice(&((*t >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(*t as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        epb.extend(std::iter::repeat_n(0u8, (4 - f.len() % 4) % 4));
        block(&mut b, 6, &epb);
    }
    std::fs::write(path, b)
}
