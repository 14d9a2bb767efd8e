//! `nfrs bench [--quick] [--json] [--only NAME] [--no-kernel] [--runs N] [--services N]` and
//! `nfrs bench --emit kube-proxy|acl [N]`.

use std::io::Write;

use crate::figures::{self, Config, GROUPS};
use crate::gen;
use crate::machine::Machine;

/// The help text.
pub fn usage() -> String {
    let mut s = String::from(
        "usage: nfrs bench [--quick] [--json] [--only NAME] [--no-kernel] [--runs N] [--services N]\n                  [--instructions]\n       nfrs bench --emit kube-proxy|acl [N]\n\n  --quick        small sizes (a smoke run of seconds)\n  --json         one JSON object a line: {\"name\",\"value\",\"unit\",\"anchor\",\"anchor_value\",\"ratio\"}\n                 (machine line, notes and warnings go to stderr)\n  --only NAME    only the figure groups whose key contains NAME\n  --no-kernel    do not run the kernel anchor (anchors print n/a)\n  --runs N       samples a figure (default 5, quick 3); the median is reported\n  --services N   kube-proxy services (default 10000, quick 100)\n  --instructions also count instructions of the hot paths under valgrind's callgrind\n  --emit W [N]   print the generated workload (kube-proxy: N services, acl: N rules) and exit\n\nfigure groups:\n",
    );
    for g in GROUPS {
        s.push_str(&format!("  {:<10} {}\n", g.key, g.about));
    }
    s
}

fn number(args: &[String], i: usize, flag: &str) -> Result<usize, String> {
    args.get(i)
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{flag} needs a positive number"))
}

/// Runs `nfrs bench` with `args` (after the command name), writing to `out` and `err`.
/// Exit status: 0, 1 when a warning was printed (equivalence failure, nfrs or anchor error),
/// 2 for bad arguments.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    run_with(args, out, err, false)
}

fn run_with(args: &[String], out: &mut dyn Write, err: &mut dyn Write, progress: bool) -> i32 {
    let mut cfg = Config {
        kernel: true,
        progress,
        ..Config::default()
    };
    let mut json = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let r = match a {
            "--quick" => {
                cfg.quick = true;
                Ok(())
            }
            "--json" => {
                json = true;
                Ok(())
            }
            "--no-kernel" => {
                cfg.kernel = false;
                Ok(())
            }
            "--instructions" => {
                cfg.instructions = true;
                Ok(())
            }
            "--probe" => {
                // Internal: the workload `--instructions` counts under callgrind.
                return match crate::instr::probe() {
                    Ok(line) => {
                        let _ = writeln!(out, "{line}");
                        0
                    }
                    Err(e) => {
                        let _ = writeln!(err, "nfrs bench --probe: {e}");
                        1
                    }
                };
            }
            "--blast" => {
                // Internal: the lab's packet generator, run inside its namespace.
                return match crate::lab::blast(&args[i + 1..]) {
                    Ok(line) => {
                        let _ = writeln!(out, "{line}");
                        0
                    }
                    Err(e) => {
                        let _ = writeln!(err, "nfrs bench --blast: {e}");
                        1
                    }
                };
            }
            "--only" => {
                i += 1;
                match args.get(i) {
                    Some(v) => {
                        cfg.only = Some(v.clone());
                        Ok(())
                    }
                    None => Err("--only needs a NAME".to_string()),
                }
            }
            "--runs" => {
                i += 1;
                number(args, i, a).map(|n| cfg.runs = Some(n))
            }
            "--services" => {
                i += 1;
                number(args, i, a).map(|n| cfg.services = Some(n))
            }
            "--emit" => return emit(&args[i + 1..], out, err),
            "-h" | "--help" => {
                let _ = out.write_all(usage().as_bytes());
                return 0;
            }
            _ => Err(format!("unknown option `{a}`")),
        };
        if let Err(e) = r {
            let _ = writeln!(err, "nfrs bench: {e}\n{}", usage());
            return 2;
        }
        i += 1;
    }
    if let Some(o) = &cfg.only {
        if !GROUPS.iter().any(|g| g.key.contains(o.as_str())) {
            let keys: Vec<&str> = GROUPS.iter().map(|g| g.key).collect();
            let _ = writeln!(
                err,
                "nfrs bench: --only {o}: no figure group matches (groups: {})",
                keys.join(", ")
            );
            return 2;
        }
    }

    let machine = Machine::detect();
    let report = figures::run(&cfg);
    if json {
        let _ = out.write_all(report.json_lines().as_bytes());
        let _ = writeln!(err, "nfrs bench — machine: {machine}");
        for f in &report.figures {
            for n in &f.notes {
                let _ = writeln!(err, "note [{}]: {n}", f.key);
            }
        }
        for w in &report.warnings {
            let _ = writeln!(err, "WARNING: {w}");
        }
    } else {
        let _ = out.write_all(report.table(&machine).as_bytes());
    }
    if report.warnings.is_empty() {
        0
    } else {
        1
    }
}

fn emit(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let n = match args.get(1).map(|v| v.parse::<usize>()) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => {
            let _ = writeln!(err, "nfrs bench: --emit: N must be a positive number");
            return 2;
        }
    };
    let g = match args.first().map(String::as_str) {
        Some("kube-proxy") => gen::kube_proxy(n.unwrap_or(10_000)),
        Some("acl") => gen::acl(n.unwrap_or(10_000), 1),
        _ => {
            let _ = writeln!(err, "nfrs bench: --emit needs kube-proxy or acl");
            return 2;
        }
    };
    let _ = out.write_all(g.text.as_bytes());
    0
}

/// Entry point for the `nfrs` binary (progress lines on stderr when it is a terminal).
pub fn main(args: &[String]) -> i32 {
    use std::io::IsTerminal;
    let progress = std::io::stderr().is_terminal();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_with(args, &mut out, &mut err, progress);
    let _ = std::io::stdout().write_all(&out);
    let _ = std::io::stderr().write_all(&err);
    code
}
