//! Times restore and save of a ruleset file (for profiling): `speed FILE [ROUNDS]`;
//! `SPEED_RESTORE_ONLY=1` skips the save; `SPEED_AHEAD=1` lets a second thread parse ahead;
//! `SPEED_STORE=DIR` also times writing the store to DIR.

use nfrs_rules::restore::{restore_new, RestoreOpts};
use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: speed FILE [ROUNDS]");
    let rounds: usize = args.next().map_or(5, |r| r.parse().expect("ROUNDS"));
    let text = std::fs::read_to_string(&path).expect("read");
    // `SPEED_KEEP=1` (with SPEED_RESTORE_ONLY): the previous round's ruleset stays alive
    // during the next restore (measured: 25-35 % slower; the bench drops it first).
    let mut kept = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let opts = RestoreOpts {
            parse_ahead: std::env::var_os("SPEED_AHEAD").is_some(),
            ..Default::default()
        };
        let rs = restore_new(&text, &opts).expect("restore");
        let r = t.elapsed();
        if std::env::var_os("SPEED_RESTORE_ONLY").is_some() {
            println!("restore {:.1} ms", r.as_secs_f64() * 1e3);
            // `SPEED_LEAK=1`: keep the ruleset (profiles then show the restore alone).
            if std::env::var_os("SPEED_LEAK").is_some() {
                std::mem::forget(rs);
            } else if std::env::var_os("SPEED_KEEP").is_some() {
                drop(kept.replace(rs));
            }
            continue;
        }
        if let Some(dir) = std::env::var_os("SPEED_STORE") {
            let t = Instant::now();
            nfrs_rules::store::Store::at(dir).save(&rs).expect("store");
            println!("store {:.1} ms", t.elapsed().as_secs_f64() * 1e3);
        }
        // `SPEED_SAVE_ROUNDS=N`: the save N times (the fastest is printed).
        let save_rounds: usize = std::env::var("SPEED_SAVE_ROUNDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        let mut s = std::time::Duration::MAX;
        let mut out = String::new();
        for _ in 0..save_rounds.max(1) {
            let t = Instant::now();
            out = nfrs_rules::save::save(&rs, None, false);
            s = s.min(t.elapsed());
        }
        println!(
            "restore {:.1} ms  save {:.1} ms  ({} bytes)",
            r.as_secs_f64() * 1e3,
            s.as_secs_f64() * 1e3,
            out.len()
        );
    }
}
