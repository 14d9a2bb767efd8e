//! Times one rule command on a loaded ruleset (for profiling the incremental checks):
//! `append FILE [ROUNDS]`. Prints the whole-table check's parts and each command's time.

use nfrs_rules::model::TableKind;
use nfrs_rules::ops;
use nfrs_rules::parse::parse_command;
use nfrs_rules::restore::{restore_new, RestoreOpts};
use std::time::Instant;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: append FILE [ROUNDS]");
    let rounds: usize = args.next().map_or(5, |r| r.parse().expect("ROUNDS"));
    // `APPEND_STORE=DIR`: only time loading the store DIR (trusted, as every command does).
    if let Some(dir) = std::env::var_os("APPEND_STORE") {
        let store = nfrs_rules::store::Store::at(dir);
        for _ in 0..rounds {
            let t = Instant::now();
            let rs = store.load().expect("load");
            let l = ms(t);
            let masks = rs
                .tables
                .iter()
                .filter(|t| t.check_cache().masks().is_some());
            println!("store load {l:.1} ms ({} tables with masks)", masks.count());
        }
        return;
    }
    let text = std::fs::read_to_string(&path).expect("read");
    let mut rs = restore_new(&text, &RestoreOpts::default()).expect("restore");
    for _ in 0..rounds {
        let table = rs.table(TableKind::Nat).expect("nat table");
        let t = Instant::now();
        let masks = ops::hook_masks(table).expect("masks");
        let hm = ms(t);
        let t = Instant::now();
        ops::validate_table(table).expect("valid");
        let all = ms(t);
        let t = Instant::now();
        let copy = std::hint::black_box(table.clone());
        let cl = ms(t);
        drop(copy);
        println!(
            "hook_masks {hm:.2} ms  validate_table {all:.2} ms  clone {cl:.2} ms  ({} chains)",
            masks.len()
        );
    }
    let cmds: &[&[&str]] = &[
        &[
            "-t",
            "nat",
            "-A",
            "KUBE-SERVICES",
            "-d",
            "172.31.255.1/32",
            "-p",
            "tcp",
            "-m",
            "tcp",
            "--dport",
            "80",
            "-j",
            "KUBE-MARK-MASQ",
        ],
        &[
            "-t",
            "nat",
            "-I",
            "KUBE-SERVICES",
            "1",
            "-d",
            "172.31.255.2/32",
            "-j",
            "KUBE-MARK-MASQ",
        ],
        &["-t", "nat", "-D", "KUBE-SERVICES", "1"],
        &[
            "-t",
            "nat",
            "-R",
            "KUBE-SERVICES",
            "1",
            "-d",
            "172.31.255.3/32",
            "-j",
            "RETURN",
        ],
        &["-t", "nat", "-A", "OUTPUT", "-j", "KUBE-SERVICES"],
        &["-t", "nat", "-N", "KUBE-SVC-APPENDTEST"],
        &["-t", "nat", "-X", "KUBE-SVC-APPENDTEST"],
    ];
    for c in cmds {
        for _ in 0..rounds {
            let args: Vec<String> = c.iter().map(|s| s.to_string()).collect();
            let t = Instant::now();
            let cmd = parse_command(&args, false, None).expect("parse");
            let r = ops::execute(&mut rs, &cmd);
            println!(
                "{:>8.3} ms  {}  {:?}",
                ms(t),
                c[2..4].join(" "),
                r.err().map(|e| e.msg)
            );
        }
    }
}
