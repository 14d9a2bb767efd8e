//! Seeds from real inputs in the repository: recorded rulesets (restore, argv), scenario files
//! (scenario), their packet lines (line) and the frames they and their captures put on the
//! wire (packet); the corpus directories and the dictionaries built from the seeds.

use crate::fnv;
use crate::targets::{encode_records, Target};
use nfrs_wire::build::{build_frame, FrameCtx};
use nfrs_wire::ethernet::MacAddr;
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, name_ok: &dyn Fn(&Path) -> bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, name_ok, out);
        } else if name_ok(&p) {
            out.push(p);
        }
    }
}

/// The recorded rulesets' `input.rules` (smallest first), at most `max`.
fn rulesets(root: &Path, max: usize) -> Vec<String> {
    let mut paths = Vec::new();
    files_under(
        &root.join("tests/recorded/rulesets"),
        &|p| p.file_name().is_some_and(|n| n == "input.rules"),
        &mut paths,
    );
    let mut texts: Vec<String> = paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect();
    texts.sort_by_key(|t| t.len());
    texts.dedup();
    // Spread over sizes: every k-th, smallest first.
    let k = (texts.len() / max.max(1)).max(1);
    texts.into_iter().step_by(k).take(max).collect()
}

/// Scenario files (`tests/scenarios/**/*.toml`).
pub fn scenario_paths(root: &Path) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    files_under(
        &root.join("tests/scenarios"),
        &|p| p.extension().is_some_and(|e| e == "toml"),
        &mut paths,
    );
    paths
}

/// A ruleset's rules as iptables command lines (`-t table -N chain`, `-t table -A ...`).
fn argv_lines(rules: &str) -> Vec<String> {
    let mut table = "filter".to_string();
    let mut out = Vec::new();
    for l in rules.lines() {
        if let Some(t) = l.strip_prefix('*') {
            table = t.trim().to_string();
        } else if let Some(c) = l.strip_prefix(':') {
            let name = c.split_whitespace().next().unwrap_or("");
            let policy = c.split_whitespace().nth(1).unwrap_or("-");
            if policy == "-" {
                out.push(format!("-t {table} -N {name}"));
            } else {
                out.push(format!("-t {table} -P {name} {policy}"));
            }
        } else if l.starts_with("-A ") || l.starts_with("-I ") {
            out.push(format!("-t {table} {l}"));
        }
    }
    out
}

/// Seed inputs for `target`, built from the repository at `root`.
pub fn seeds(target: Target, root: &Path) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    match target {
        Target::Restore => {
            for t in rulesets(root, 60) {
                if t.len() <= 16 * 1024 {
                    out.push(t.into_bytes());
                }
            }
            for p in scenario_paths(root) {
                if let Ok(sc) = nfrs_scenario::load(&p) {
                    if !sc.rules.trim().is_empty() {
                        out.push(sc.rules.into_bytes());
                    }
                }
            }
        }
        Target::Argv => {
            for t in rulesets(root, 60) {
                let lines = argv_lines(&t);
                for chunk in lines.chunks(12) {
                    out.push(chunk.join("\n").into_bytes());
                }
            }
            for p in scenario_paths(root) {
                if let Ok(sc) = nfrs_scenario::load(&p) {
                    let lines = argv_lines(&sc.rules);
                    if !lines.is_empty() {
                        out.push(lines.join("\n").into_bytes());
                    }
                }
            }
        }
        Target::Scenario => {
            for p in scenario_paths(root) {
                if let Ok(b) = std::fs::read(&p) {
                    out.push(b);
                }
            }
        }
        Target::Line => {
            for p in scenario_paths(root) {
                if let Ok(sc) = nfrs_scenario::load(&p) {
                    let lines: Vec<&str> =
                        sc.packet_lines().iter().map(|l| l.text.as_str()).collect();
                    for chunk in lines.chunks(8) {
                        out.push(chunk.join("\n").into_bytes());
                    }
                }
            }
        }
        Target::Control => {}
        Target::Packet => {
            let gw = crate::targets::State::new().gateway_engine();
            let macs: Vec<[u8; 6]> = gw.host.ifaces().iter().map(|i| i.mac).collect();
            for p in scenario_paths(root) {
                let Ok(sc) = nfrs_scenario::load(&p) else {
                    continue;
                };
                let mut recs: Vec<(u8, Vec<u8>)> = Vec::new();
                for l in sc.packet_lines() {
                    if l.parsed.dev == "local" {
                        continue;
                    }
                    // Sources in 10/8 come from the LAN, anything else from the WAN.
                    let lan = l.parsed.spec.src.is_some_and(|a| a.octets()[0] == 10);
                    let dev = usize::from(!lan);
                    let ctx = FrameCtx {
                        src_mac: MacAddr([2, 0, 0, 0, 9, dev as u8]),
                        dst_mac: MacAddr(macs[dev.min(macs.len() - 1)]),
                        ip_id: recs.len() as u16 + 1,
                        allow_masked: true,
                    };
                    if let Ok(f) = build_frame(&l.parsed.spec, &ctx) {
                        recs.push((dev as u8 | 4, f));
                    }
                }
                if let Ok(frames) = sc.capture_frames() {
                    for f in frames.into_iter().take(24) {
                        recs.push((4, f.frame));
                    }
                }
                for chunk in recs.chunks(16) {
                    out.push(encode_records(chunk));
                }
            }
        }
    }
    if target == Target::Control {
        out = crate::control::seeds(root);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert(fnv(s)));
    out
}

/// Words for token insertion: the distinct words of the text seeds (most frequent first), or
/// for binary targets the 2- and 4-byte values that mean something in IPv4/TCP headers.
pub fn dictionary(target: Target, corpus: &[Vec<u8>]) -> Vec<Vec<u8>> {
    if target == Target::Packet {
        let mut d: Vec<Vec<u8>> = vec![
            vec![0x08, 0x00],
            vec![0x45, 0x00],
            vec![0x46, 0x00],
            vec![0x4f, 0x00],
            vec![0x20, 0x00],
            vec![0x3f, 0xff],
            vec![0x40, 0x00],
            vec![0xff, 0xff],
            vec![0x00, 0x00],
            vec![0x00, 0x14],
            vec![0x05, 0xdc],
            vec![0x02, 0x04, 0x05, 0xb4],
            vec![0x01, 0x03, 0x03, 0x07],
            vec![0x04, 0x02],
            vec![0x08, 0x0a],
            vec![0x44, 0x04, 0x05, 0x00],
            vec![0x83, 0x03, 0x04],
            vec![10, 0, 0, 2],
            vec![10, 0, 0, 5],
            vec![192, 0, 2, 1],
            vec![198, 51, 100, 7],
            vec![0x1f, 0x90],
            vec![0x00, 0x50],
            vec![0x00, 0x35],
            vec![0x14, 0xe9],
            vec![0x00, 0x17],
            vec![0x03, 0x03],
            vec![0x0b, 0x00],
            vec![0x08, 0x00, 0x00, 0x00],
        ];
        d.push(vec![6]);
        d.push(vec![17]);
        d.push(vec![1]);
        return d;
    }
    let mut counts: std::collections::HashMap<&[u8], usize> = std::collections::HashMap::new();
    // JSON messages: their strings and punctuation are the words.
    let json = target == Target::Control;
    for s in corpus {
        for w in s.split(|&c| c.is_ascii_whitespace() || (json && b"\"[]{},:".contains(&c))) {
            if !w.is_empty() && w.len() <= 48 {
                *counts.entry(w).or_default() += 1;
            }
        }
    }
    let mut words: Vec<(&[u8], usize)> = counts.into_iter().collect();
    words.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut d: Vec<Vec<u8>> = words
        .into_iter()
        .take(1500)
        .map(|(w, _)| w.to_vec())
        .collect();
    for extra in [
        "!",
        "\"",
        "\"\"",
        "'",
        "\\",
        "--",
        "-",
        "=",
        "0",
        "-1",
        "4294967296",
        "65536",
        "0xffffffff",
        "COMMIT",
        "*filter",
        "*nat",
        "*raw",
        "*mangle",
        "*security",
        "\n",
        "[0:0]",
        "[",
        "]",
        "#",
        "/",
        "/33",
        ":",
        ",",
        "[[interface]]",
        "[[route]]",
        "[sysctl]",
        "'''",
        "flags=",
        "len=",
        "frag=",
        "mf",
        "df",
        "opts=",
        "inner=\"",
        "ttl=0",
        "ihl=15",
    ] {
        d.push(extra.as_bytes().to_vec());
    }
    if json {
        for extra in [
            "{\"op\":\"tool\",\"tool\":\"iptables\",\"args\":[",
            "{\"op\":\"conntrack\",\"args\":[",
            "{\"op\":\"sysctl\",\"args\":[",
            "{\"op\":\"ping\"}",
            ",\"stdin\":\"",
            "\\n",
            "\\u0000",
            "\\ud800",
            "\\\"",
            "null",
            "true",
            "1e999",
            "-0",
            "[[[[[[[[",
            "\"args\":[]",
            "\"-w\"",
            "\"-D\"",
            "\"-F\"",
            "\"-X\"",
            "\"-Z\"",
        ] {
            d.push(extra.as_bytes().to_vec());
        }
    }
    d
}

/// The corpus directory of `target` in this crate.
pub fn corpus_dir(target: Target) -> PathBuf {
    crate::crate_dir().join("corpus").join(target.name())
}

/// Reads every file of a corpus directory (sorted by name, so runs are repeatable).
pub fn load_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths = Vec::new();
    files_under(dir, &|_| true, &mut paths);
    paths
        .into_iter()
        .filter_map(|p| std::fs::read(p).ok())
        .collect()
}

/// Writes `input` into `dir` named by its hash; returns the path.
pub fn save_input(dir: &Path, input: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let p = dir.join(format!("{:016x}", fnv(input)));
    std::fs::write(&p, input)?;
    Ok(p)
}
