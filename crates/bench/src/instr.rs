//! Instruction counts of the hot paths (group `instructions`, run with `--instructions`), for
//! machines too noisy for timings (and this one has no hardware counters). The bench binary
//! runs itself again under valgrind's callgrind with collection switched on only inside one
//! timed loop (`--collect-atstart=no --toggle-collect=<loop>`), on a fixed small workload
//! (`--probe`), and divides the instructions counted by the operations that loop performed.
//! Counts barely move between runs of one build (randomly seeded hash maps cause well under
//! 1 %): a change of several % is a code change, not machine noise.

use std::path::Path;
use std::process::Command;

use crate::figures::{Config, TempFile};
use crate::kernel::find_tool;
use crate::report::{Better, Figure, Report};

/// Flows and rounds of the probe workload.
const PROBE_FLOWS: usize = 200;
const PROBE_ROUNDS: usize = 5;
/// Services of the probe's kube-proxy ruleset restore.
const PROBE_SERVICES: usize = 100;
/// Rules of the probe's large ClassBench-style ACL, and packets sent through each ACL.
const PROBE_ACL: usize = 10_000;
const PROBE_ACL_PACKETS: usize = 2_000;

/// What `--probe` runs and prints: `syn=N est=N rules=N` (operations of each counted loop).
pub fn probe() -> Result<String, String> {
    let (syn, est) = crate::gateway::probe_workload(PROBE_FLOWS, PROBE_ROUNDS)?;
    let g = crate::gen::kube_proxy(PROBE_SERVICES);
    restore_probe(&g.text)?;
    crate::gateway::classify_instr_probe(PROBE_ACL, PROBE_ACL_PACKETS)?;
    Ok(format!(
        "syn={syn} est={est} rules={} acl={PROBE_ACL_PACKETS}",
        g.rules
    ))
}

/// The restore the probe counts (not inlined, so callgrind can switch on inside it).
#[inline(never)]
fn restore_probe(text: &str) -> Result<(), String> {
    nfrs_rules::restore::restore_new(text, &Default::default())
        .map(|rs| drop(std::hint::black_box(rs)))
        .map_err(|e| e.message)
}

/// Reads `key=N` from the probe's output.
fn ops(out: &str, key: &str) -> Option<u64> {
    out.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// The total instructions (`Ir`) of a callgrind output file.
pub fn callgrind_total(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.strip_prefix("summary:")
            .or_else(|| l.strip_prefix("totals:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// Runs the probe under callgrind counting only inside functions matching `pattern`.
fn count(exe: &Path, via_nfrs: bool, pattern: &str) -> Result<(u64, String), String> {
    let out_file = TempFile::write("callgrind.out", "")?;
    let mut c = Command::new("valgrind");
    c.arg("--tool=callgrind")
        .arg(format!(
            "--callgrind-out-file={}",
            out_file.path().display()
        ))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={pattern}"))
        .arg(exe);
    if via_nfrs {
        c.arg("bench");
    }
    c.arg("--probe");
    let out = c
        .output()
        .map_err(|e| format!("cannot run valgrind: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "valgrind --tool=callgrind failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ));
    }
    let text = std::fs::read_to_string(out_file.path())
        .map_err(|e| format!("cannot read callgrind output: {e}"))?;
    let total = callgrind_total(&text).ok_or("no totals in callgrind output")?;
    if total == 0 {
        return Err(format!(
            "callgrind counted nothing inside `{pattern}` (symbols stripped?)"
        ));
    }
    Ok((total, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// The `instructions` group (only with `--instructions`).
pub fn instruction_figures(cfg: &Config, report: &mut Report) {
    if !cfg.instructions {
        return;
    }
    if find_tool("valgrind").is_none() {
        report
            .warnings
            .push("instructions: `valgrind` not found on PATH".into());
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            report.warnings.push(format!("instructions: {e}"));
            return;
        }
    };
    // Run through the same front door: `nfrs bench --probe` or the bench example's `--probe`.
    let via_nfrs = std::env::args().nth(1).as_deref() == Some("bench");
    let probes = [
        (
            "*established_loop*",
            "est",
            "instructions per established packet, MASQUERADE gateway",
            "instr/packet",
        ),
        (
            "*established_batch_loop*",
            "est",
            "instructions per established packet, MASQUERADE gateway, batches",
            "instr/packet",
        ),
        (
            "*syn_loop*",
            "syn",
            "instructions per new connection, MASQUERADE gateway",
            "instr/conn",
        ),
        (
            "*restore_probe*",
            "rules",
            "instructions per rule, kube-proxy ruleset restore",
            "instr/rule",
        ),
        (
            "*acl_loop_small*",
            "acl",
            "instructions per packet, ClassBench ACL 10 rules",
            "instr/packet",
        ),
        (
            "*acl_loop_big*",
            "acl",
            "instructions per packet, ClassBench ACL 10k rules",
            "instr/packet",
        ),
        (
            "*acl_loop_linear*",
            "acl",
            "instructions per packet, ClassBench ACL 10k rules, linear walk",
            "instr/packet",
        ),
    ];
    report.workloads.push(format!(
        "instructions: callgrind on the gateway workload ({PROBE_FLOWS} flows, {PROBE_ROUNDS} rounds), the restore of the {PROBE_SERVICES}-service kube-proxy ruleset, and {PROBE_ACL_PACKETS} packets through the ClassBench-style ACL of 10 and of {PROBE_ACL} rules (classified, then linear)"
    ));
    for (pattern, key, name, unit) in probes {
        match count(&exe, via_nfrs, pattern) {
            Ok((total, out)) => match ops(&out, key) {
                Some(n) if n > 0 => report.figures.push(Figure {
                    key: "instructions",
                    name: name.to_string(),
                    value: total as f64 / n as f64,
                    unit,
                    better: Better::Lower,
                    anchor: "n/a".into(),
                    anchor_value: None,
                    method: format!("callgrind, {total} Ir / {n}"),
                    notes: Vec::new(),
                }),
                _ => report.warnings.push(format!(
                    "instructions: the probe printed no `{key}=` count: {out:?}"
                )),
            },
            Err(e) => report.warnings.push(format!("instructions: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_callgrind_total_and_ops() {
        let text = "events: Ir\nfn=x\n1 5\nsummary: 123456\ntotals: 123456\n";
        assert_eq!(callgrind_total(text), Some(123456));
        assert_eq!(callgrind_total("events: Ir\n"), None);
        assert_eq!(ops("syn=200 est=2000 rules=1017\n", "est"), Some(2000));
        assert_eq!(ops("syn=200 est=2000\n", "rules"), None);
    }

    #[test]
    fn test_probe_runs() {
        let out = probe().unwrap();
        // Two runs (one by one, then batches) each open PROBE_FLOWS connections.
        assert_eq!(ops(&out, "syn"), Some(2 * PROBE_FLOWS as u64));
        assert_eq!(
            ops(&out, "est"),
            Some((PROBE_FLOWS * PROBE_ROUNDS * 2) as u64)
        );
        assert!(ops(&out, "rules").unwrap() > 1000);
        assert_eq!(ops(&out, "acl"), Some(PROBE_ACL_PACKETS as u64));
    }
}
