//! `nfrs-fuzz <target> [--seconds N] [--seed S]`: runs one fuzz target (restore, argv,
//! scenario, packet, line, control) from its corpus directory; crashes go to `crates/fuzz/crashes/`.
//! `nfrs-fuzz seed-corpus` rebuilds the corpus directories from the repository's real inputs.
//! `nfrs-fuzz repro <target> <file>` runs one saved input.

use nfrs_fuzz::driver::{exec_caught, show_input};
use nfrs_fuzz::seeds;
use nfrs_fuzz::targets::State;
use nfrs_fuzz::{run, FindingKind, RunOpts, Target};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!(
        "usage: nfrs-fuzz <target> [--seconds N] [--seed S] [--save-new]\n       \
         nfrs-fuzz seed-corpus\n       nfrs-fuzz repro <target> <file>\n\
         targets: restore argv scenario packet line control"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(first) = args.first() else {
        return usage();
    };
    if first == "seed-corpus" {
        let root = nfrs_fuzz::workspace_root();
        for t in Target::ALL {
            let dir = seeds::corpus_dir(t);
            let s = seeds::seeds(t, &root);
            for input in &s {
                if let Err(e) = seeds::save_input(&dir, input) {
                    eprintln!("nfrs-fuzz: {}: {e}", dir.display());
                    return ExitCode::from(1);
                }
            }
            println!("{}: {} seeds in {}", t.name(), s.len(), dir.display());
        }
        return ExitCode::SUCCESS;
    }
    if first == "repro" {
        let (Some(t), Some(file)) = (args.get(1).and_then(|n| Target::from_name(n)), args.get(2))
        else {
            return usage();
        };
        let input = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("nfrs-fuzz: {file}: {e}");
                return ExitCode::from(1);
            }
        };
        let st = State::new();
        let t0 = std::time::Instant::now();
        let r = exec_caught(t, &st, &input);
        println!("took {:?}", t0.elapsed());
        return match r {
            Ok(sig) => {
                println!("no crash (outcome {sig:016x})");
                ExitCode::SUCCESS
            }
            Err(m) => {
                println!("crash: {m}\ninput: {}", show_input(t, &input));
                ExitCode::from(1)
            }
        };
    }
    let Some(target) = Target::from_name(first) else {
        eprintln!("nfrs-fuzz: unknown target `{first}`");
        return usage();
    };
    let mut opts = RunOpts {
        seconds: 60.0,
        crash_dir: Some(nfrs_fuzz::crate_dir().join("crashes")),
        hang: target.hang_limit(),
        ..RunOpts::default()
    };
    let mut it = args[1..].iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => match it.next().and_then(|v| v.parse::<f64>().ok()) {
                Some(v) => opts.seconds = v,
                None => return usage(),
            },
            "--seed" => match it.next().and_then(|v| v.parse::<u64>().ok()) {
                Some(v) => opts.seed = v,
                None => return usage(),
            },
            "--save-new" => opts.save_new = Some(seeds::corpus_dir(target)),
            _ => return usage(),
        }
    }
    if target == Target::Control {
        // Before fuzzing: the tools' binary is there, and a message over the size limit is
        // refused without changing anything (16 MiB: once per run, not per input).
        let pre = nfrs_fuzz::control::Harness::new().and_then(|h| h.oversized());
        match pre {
            Ok(()) => println!("nfrs-fuzz control: oversized message refused, state kept"),
            Err(e) => {
                eprintln!("nfrs-fuzz control: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let r = run(target, &opts);
    println!(
        "nfrs-fuzz {}: {} cases in {:.1} s ({:.0}/s), seed {}, corpus {}, {} outcomes, slowest {:?}, {} findings",
        target.name(),
        r.cases,
        r.elapsed.as_secs_f64(),
        r.cases as f64 / r.elapsed.as_secs_f64().max(1e-9),
        opts.seed,
        r.corpus,
        r.signatures,
        r.slowest,
        r.findings.len()
    );
    for f in &r.findings {
        match &f.kind {
            FindingKind::Panic(m) => println!("CRASH: {m}"),
            FindingKind::Hang(d) => println!("HANG: took {d:?}"),
        }
        if let Some(p) = &f.file {
            println!("  saved: {}", p.display());
        }
        let shown = show_input(target, &f.input);
        let cut: String = shown.chars().take(4000).collect();
        println!("  input: {cut}");
    }
    if r.findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
