//! Every recorded real ruleset (tests/recorded/rulesets, recorded from iptables-legacy 1.8.9 by
//! the recorder's scripts) restores and prints back byte for byte: iptables-save (with and
//! without -c), /proc/net/ip_tables_names, and each table's -S; failing restores fail with the
//! same message and exit code.

use nfrs_rules::list::{self, ListFormat, Resolver};
use nfrs_rules::restore::{restore, RestoreOpts};
use nfrs_rules::save;
use nfrs_rules::{Ruleset, TableKind};
use std::path::PathBuf;

fn recorded() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/recorded/rulesets");
    p.is_dir().then_some(p)
}

fn opts(flags: &str) -> RestoreOpts {
    let mut o = RestoreOpts::default();
    for f in flags.split_whitespace() {
        match f {
            "-c" => o.counters = true,
            "--noflush" | "-n" => o.noflush = true,
            _ => panic!("unknown flag {f}"),
        }
    }
    o
}

#[test]
fn test_recorded_rulesets_round_trip() {
    let Some(dir) = recorded() else {
        eprintln!("skipped: tests/recorded/rulesets absent");
        return;
    };
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    let mut failures = Vec::new();
    let mut passed = 0;
    let mut unsupported = Vec::new();
    for name in &names {
        let d = dir.join(name);
        let read = |f: &str| std::fs::read_to_string(d.join(f)).ok();
        let Some(input) = read("input.rules") else {
            continue;
        };
        let flags = read("flags").unwrap_or_default();
        let mut rs = Ruleset::default();
        if let Some(prelude) = read("prelude.rules") {
            if let Err(e) = restore(&mut rs, &prelude, &RestoreOpts::default()) {
                failures.push(format!("{name}: prelude failed: {}", e.message));
                continue;
            }
        }
        let result = restore(&mut rs, &input, &opts(flags.trim()));
        if let Some(rc) = read("restore.rc") {
            let want_rc: i32 = rc.trim().parse().unwrap();
            let want_err = read("restore.err").unwrap_or_default();
            match result {
                Ok(()) => {
                    failures.push(format!("{name}: restore succeeded, expected rc {want_rc}"))
                }
                Err(e) => {
                    if e.exit_code != want_rc || e.message != want_err {
                        failures.push(format!(
                            "{name}: error mismatch\n  want rc {want_rc}: {want_err:?}\n  got  rc {}: {:?}",
                            e.exit_code, e.message
                        ));
                    } else {
                        passed += 1;
                    }
                }
            }
            continue;
        }
        if let Err(e) = result {
            if e.message.contains("is not yet supported by nfrs") {
                unsupported.push(format!(
                    "{name}: {}",
                    e.message.lines().next().unwrap_or("")
                ));
            } else {
                failures.push(format!("{name}: restore failed: {}", e.message));
            }
            continue;
        }
        let mut ok = true;
        let mut cmp = |what: &str, got: String, want: Option<String>| {
            if let Some(want) = want {
                if got != want {
                    ok = false;
                    let diff: Vec<String> = want
                        .lines()
                        .zip(got.lines())
                        .filter(|(a, b)| a != b)
                        .take(3)
                        .map(|(a, b)| format!("    want: {a}\n    got:  {b}"))
                        .collect();
                    failures.push(format!("{name}: {what} differs\n{}", diff.join("\n")));
                }
            }
        };
        cmp("save", save::save(&rs, None, false), read("save.txt"));
        cmp("save -c", save::save(&rs, None, true), read("save-c.txt"));
        cmp(
            "ip_tables_names",
            rs.table_names().iter().map(|n| format!("{n}\n")).collect(),
            read("ip_tables_names.txt"),
        );
        for t in TableKind::ALL {
            if let Some(table) = rs.table(t) {
                cmp(
                    &format!("{} -S", t.name()),
                    save::list_rules(table, None, 0, false),
                    read(&format!("{}.S.txt", t.name())),
                );
                let r = Resolver::default();
                for (suffix, f) in [
                    (
                        "L-n",
                        ListFormat {
                            numeric: true,
                            ..Default::default()
                        },
                    ),
                    (
                        "L-nv",
                        ListFormat {
                            numeric: true,
                            verbose: true,
                            ..Default::default()
                        },
                    ),
                    (
                        "L-nvx-lines",
                        ListFormat {
                            numeric: true,
                            verbose: true,
                            exact: true,
                            line_numbers: true,
                        },
                    ),
                ] {
                    cmp(
                        &format!("{} -{suffix}", t.name()),
                        list::list(table, None, 0, f, &r),
                        read(&format!("{}.{suffix}.txt", t.name())),
                    );
                }
            }
        }
        if ok {
            passed += 1;
        }
    }
    eprintln!(
        "rulesets: {passed} passed, {} failed, {} unsupported",
        failures.len(),
        unsupported.len()
    );
    for u in &unsupported {
        eprintln!("unsupported: {u}");
    }
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} ruleset checks failed",
        failures.len()
    );
}
