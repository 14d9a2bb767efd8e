//! The `kernel-run` command line (shared by `nfrs kernel-run` and the standalone
//! `nfrs-kernel-run` binary of this crate).
//!
//! `nfrs kernel-run SCENARIO... [--backend legacy|nft] [--record] [--check] [--trace]`: run
//! scenarios through the real Linux kernel (root) and print the canonical result text.
//! `--record` writes `NAME.kernel.txt` beside each `NAME.toml`; `--check` compares with it
//! instead and fails on drift, showing the first divergent packet.

use crate::{Backend, Options};

fn usage() -> i32 {
    eprintln!(
        "usage: nfrs kernel-run SCENARIO.toml... [--backend legacy|nft] [--record | --check] [--trace]\n\
         \x20      nfrs kernel-run --cleanup   (delete namespaces left by killed runs)\n\
         Runs each scenario in throwaway network namespaces of the real kernel (root only) and\n\
         prints its canonical result. --record writes NAME.kernel.txt beside NAME.toml; --check\n\
         compares with it and fails on drift; --trace prints the rules each packet met (counter\n\
         deltas) to stderr."
    );
    2
}

/// Runs the command with `args` (after `kernel-run`); returns the exit status.
pub fn main(args: &[String]) -> i32 {
    let mut opts = Options::default();
    let mut record = false;
    let mut check = false;
    let mut files = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--backend" => match it.next().map(String::as_str) {
                Some("legacy") => opts.backend = Backend::Legacy,
                Some("nft") => opts.backend = Backend::Nft,
                other => {
                    eprintln!(
                        "nfrs kernel-run: --backend takes `legacy` or `nft`, not `{}`",
                        other.unwrap_or("")
                    );
                    return 2;
                }
            },
            "--record" => record = true,
            "--check" => check = true,
            "--trace" => opts.trace = true,
            "--cleanup" => {
                for n in crate::lab::cleanup_stale() {
                    say(&format!("cleanup: {n}\n"));
                }
                return 0;
            }
            "-h" | "--help" => {
                usage();
                return 0;
            }
            s if s.starts_with('-') => {
                eprintln!("nfrs kernel-run: unknown option `{s}`");
                return usage();
            }
            s => files.push(s.to_string()),
        }
    }
    if files.is_empty() || (record && check) {
        return usage();
    }
    let mut status = 0;
    for f in &files {
        let sc = match nfrs_scenario::load(std::path::Path::new(f)) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("nfrs kernel-run: {e}");
                status = 1;
                continue;
            }
        };
        // A capture from ../shared that is not there: nothing to check (said, not failed).
        if let nfrs_scenario::Input::Pcap { path, .. } = &sc.input {
            if !path.exists() && check {
                say(&format!("skipped {f}: capture {} absent\n", path.display()));
                continue;
            }
        }
        let result = match crate::run(&sc, &opts) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("nfrs kernel-run: {f}: {e}");
                status = 1;
                if crate::signals::interrupted() {
                    return 130;
                }
                continue;
            }
        };
        let text = result.to_text();
        let golden = sc.golden_path();
        if record {
            if let Err(e) = std::fs::write(&golden, &text) {
                eprintln!("nfrs kernel-run: writing {}: {e}", golden.display());
                status = 1;
            } else {
                say(&format!("recorded {}\n", golden.display()));
            }
        } else if check {
            let want = match std::fs::read_to_string(&golden) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("nfrs kernel-run: {}: {e}", golden.display());
                    status = 1;
                    continue;
                }
            };
            match nfrs_scenario::compare_text(&want, &text) {
                Ok(()) => say(&format!("ok {f}\n")),
                Err(m) => {
                    say(&format!(
                        "DRIFT {f}: the kernel no longer gives {}\n{m}",
                        golden.display()
                    ));
                    status = 1;
                }
            }
        } else {
            print!("{text}");
        }
    }
    status
}

/// One whole line (or block) to stderr in a single write, so that parallel runs sharing a
/// terminal or log file do not interleave inside a line.
fn say(s: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(s.as_bytes());
}
