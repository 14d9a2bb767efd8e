//! Times restore and save of a ruleset file (for profiling): `speed FILE [ROUNDS]`;
//! `SPEED_RESTORE_ONLY=1` skips the save; `SPEED_AHEAD=1` lets a second thread parse ahead;
//! `SPEED_STORE=DIR` also times writing the store to DIR (as `nfrs iptables-restore` does:
//! the rule lines printed beside the restore where it did, written to the store's file as
//! they are printed; `SPEED_UNSTREAMED=1` keeps them in memory until the store write;
//! `SPEED_FORMAT_STORE=1` formats them all; `SPEED_PRINT=0|1` turns that printing off or
//! on).

use nfrs_rules::restore::{restore_noting_blocks, InputBlocks, RestoreOpts};
use nfrs_rules::Ruleset;
use std::time::Instant;

/// This thread's CPU time so far in ms (the scheduler's own count, first field of
/// /proc/thread-self/schedstat): steadier than wall time on a machine shared with other
/// work, where the process waits for a core. NaN where unavailable.
fn cpu_ms() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |ns| ns / 1e6)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: speed FILE [ROUNDS]");
    let rounds: usize = args.next().map_or(5, |r| r.parse().expect("ROUNDS"));
    // Each round reads the file as `nfrs iptables-restore FILE` does (inside the restore's
    // time); `SPEED_READ_STRING=1`: with std::fs::read_to_string instead.
    let read = || -> Box<dyn std::ops::Deref<Target = str>> {
        if std::env::var_os("SPEED_READ_STRING").is_some() {
            Box::new(std::fs::read_to_string(&path).expect("read"))
        } else {
            Box::new(nfrs_rules::restore::read_input_file(path.as_ref()).expect("read"))
        }
    };
    // `SPEED_KEEP=1` (with SPEED_RESTORE_ONLY): the previous round's ruleset stays alive
    // during the next restore (measured: 25-35 % slower; the bench drops it first).
    let mut kept = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let c = cpu_ms();
        // `SPEED_PRINT=0|1`: the store text printed beside the restore off / on (default:
        // the restore's own choice).
        let mut opts = RestoreOpts {
            parse_ahead: std::env::var_os("SPEED_AHEAD").is_some(),
            print_store: std::env::var("SPEED_PRINT").ok().map(|v| v == "1"),
            ..Default::default()
        };
        // With SPEED_STORE (and not SPEED_FORMAT_STORE / SPEED_STORE_SINK / SPEED_UNSTREAMED):
        // as `nfrs iptables-restore`, the store's file begun before the restore, the printed
        // lines written to it while it runs (inside the restore's time).
        let store_dir = std::env::var_os("SPEED_STORE");
        let begun = store_dir
            .as_ref()
            .filter(|_| {
                ["SPEED_FORMAT_STORE", "SPEED_STORE_SINK", "SPEED_UNSTREAMED"]
                    .iter()
                    .all(|v| std::env::var_os(v).is_none())
            })
            .map(|d| {
                let w = nfrs_rules::store::Store::at(d)
                    .begin_write()
                    .expect("store");
                opts.print_sink = Some(w.sink());
                w
            });
        let text = read();
        let mut rs = Ruleset::default();
        let mut blocks = InputBlocks::default();
        restore_noting_blocks(&mut rs, &text, &opts, &mut String::new(), &mut blocks)
            .expect("restore");
        let r = t.elapsed();
        let rc = cpu_ms() - c;
        if std::env::var_os("SPEED_RESTORE_ONLY").is_some() {
            println!("restore {:.1} ms (cpu {rc:.1})", r.as_secs_f64() * 1e3);
            // `SPEED_LEAK=1`: keep the ruleset (profiles then show the restore alone).
            if std::env::var_os("SPEED_LEAK").is_some() {
                std::mem::forget(rs);
            } else if std::env::var_os("SPEED_KEEP").is_some() {
                drop(kept.replace(rs));
            }
            continue;
        }
        if let Some(dir) = store_dir {
            let t = Instant::now();
            let c = cpu_ms();
            let store = nfrs_rules::store::Store::at(dir);
            // `SPEED_FORMAT_STORE=1`: every table formatted (no lines printed beside the
            // restore); `SPEED_STORE_SINK=1`: the store text only, written nowhere;
            // `SPEED_UNSTREAMED=1`: the printed lines kept in memory, written at the store
            // write.
            if let Some(w) = begun {
                w.finish_after_restore(&rs, &blocks).expect("store");
            } else if std::env::var_os("SPEED_STORE_SINK").is_some() {
                nfrs_rules::save::save_store_after_restore(
                    &rs,
                    &text,
                    &blocks,
                    &mut std::io::sink(),
                )
                .expect("text");
            } else if std::env::var_os("SPEED_FORMAT_STORE").is_some() {
                store.save(&rs).expect("store");
            } else {
                store
                    .save_after_restore(&rs, &text, &blocks)
                    .expect("store");
            }
            println!(
                "store {:.1} ms (cpu {:.1})",
                t.elapsed().as_secs_f64() * 1e3,
                cpu_ms() - c
            );
        }
        // `SPEED_SAVE_ROUNDS=N`: the save N times (the fastest is printed).
        let save_rounds: usize = std::env::var("SPEED_SAVE_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut s = std::time::Duration::MAX;
        let mut sc = f64::INFINITY;
        let mut out = String::new();
        for _ in 0..save_rounds.max(1) {
            let t = Instant::now();
            let c = cpu_ms();
            if std::env::var_os("SPEED_SAVE_PIPE").is_some() {
                // `SPEED_SAVE_PIPE=1`: streamed to a pipe another thread drains, as
                // `nfrs iptables-save` writes to its stdout (and the bench measures).
                let (mut rx, mut tx) = std::io::pipe().expect("pipe");
                let reader = std::thread::spawn(move || {
                    let mut buf = vec![0u8; 1 << 16];
                    let mut n = 0;
                    while let Ok(k @ 1..) = std::io::Read::read(&mut rx, &mut buf) {
                        n += k;
                    }
                    n
                });
                for t in &rs.tables {
                    nfrs_rules::save::save_table_to(t, false, &mut tx).expect("write");
                }
                drop(tx);
                out = " ".repeat(reader.join().expect("reader"));
            } else {
                out = nfrs_rules::save::save(&rs, None, false);
            }
            s = s.min(t.elapsed());
            sc = sc.min(cpu_ms() - c);
        }
        println!(
            "restore {:.1} ms (cpu {rc:.1})  save {:.1} ms (cpu {sc:.1})  ({} bytes)",
            r.as_secs_f64() * 1e3,
            s.as_secs_f64() * 1e3,
            out.len()
        );
    }
}
