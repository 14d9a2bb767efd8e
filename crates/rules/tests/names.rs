//! `-L` without `-n`: names as iptables 1.8.9 prints them, compared with
//! tests/recorded/names (recorded with `names/hosts` as /etc/hosts, Debian's /etc/networks and
//! no reachable DNS). Host names in `-s`/`-d` resolve through the same hosts file.

use nfrs_rules::list::{self, ListFormat, Resolver};
use nfrs_rules::ops;
use nfrs_rules::parse::parse_command;
use nfrs_rules::save;
use nfrs_rules::{Ruleset, TableKind};
use std::path::PathBuf;

fn unesc(s: &str) -> String {
    s.replace("\\n", "\n")
        .replace("\\t", "\t")
        .replace("\\\\", "\\")
}

fn shell_split(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

#[test]
fn test_recorded_names() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/recorded/names");
    let Ok(text) = std::fs::read_to_string(dir.join("listings.tsv")) else {
        eprintln!("skipped: tests/recorded/names absent");
        return;
    };
    // The recording machine's /etc/networks (Debian netbase 6.4).
    let networks = std::env::temp_dir().join(format!("nfrs-networks-{}", std::process::id()));
    std::fs::write(
        &networks,
        "default\t\t0.0.0.0\nloopback\t127.0.0.0\nlink-local\t169.254.0.0\n",
    )
    .unwrap();
    std::env::set_var("NFRS_HOSTS", dir.join("hosts"));
    std::env::set_var("NFRS_NETWORKS", &networks);
    let resolver = Resolver::from_system();
    let named = ListFormat::default();
    let numeric = ListFormat {
        numeric: true,
        ..Default::default()
    };
    let verbose = ListFormat {
        verbose: true,
        ..Default::default()
    };
    let body = |s: String| s.lines().skip(2).collect::<Vec<_>>().join("\n");
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let mut failures = Vec::new();
    let mut unsupported = 0;
    let mut all = Ruleset::default();
    let mut passed = 0;
    for line in lines {
        let cells: Vec<String> = line.split('\t').map(unesc).collect();
        let get = |k: &str| cells[head.iter().position(|h| *h == k).unwrap()].clone();
        let table = TableKind::from_name(&get("table")).unwrap();
        let chain = get("chain");
        let mut args = vec!["-A".to_string(), chain.clone()];
        args.extend(shell_split(&get("args")));
        let mut rs = Ruleset::default();
        let res = parse_command(&args, false, Some(table)).and_then(|c| {
            ops::execute(&mut rs, &c)?;
            if table == TableKind::Filter && chain == "INPUT" {
                ops::execute(&mut all, &c)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            if e.is_unsupported() {
                unsupported += 1;
            } else {
                failures.push(format!("{}: refused: {}", get("args"), e.msg));
            }
            continue;
        }
        let t = rs.table(table).unwrap();
        let s: Vec<String> = save::list_rules(t, Some(&chain), 0, false)
            .lines()
            .filter(|l| l.starts_with("-A "))
            .map(str::to_string)
            .collect();
        let checks = [
            ("S", s.join("\n"), get("S_line")),
            (
                "L",
                body(list::list(t, Some(&chain), 0, named, &resolver)),
                get("L_line"),
            ),
            (
                "L -n",
                body(list::list(t, Some(&chain), 0, numeric, &resolver)),
                get("L_n_line"),
            ),
            (
                "L -v",
                body(list::list(t, Some(&chain), 0, verbose, &resolver)),
                get("L_v_line"),
            ),
        ];
        let mut ok = true;
        for (what, got, want) in checks {
            if got != want {
                ok = false;
                failures.push(format!(
                    "{}: {what}\n   got  {got:?}\n   want {want:?}",
                    get("args")
                ));
            }
        }
        if ok {
            passed += 1;
        }
    }
    let t = all.table(TableKind::Filter).unwrap();
    for (file, f) in [
        ("input-all.L.txt", named),
        ("input-all.L-n.txt", numeric),
        ("input-all.L-v.txt", verbose),
        (
            "input-all.L-line-numbers.txt",
            ListFormat {
                line_numbers: true,
                ..Default::default()
            },
        ),
    ] {
        let want = std::fs::read_to_string(dir.join(file)).unwrap();
        let got = list::list(t, Some("INPUT"), 0, f, &resolver);
        if got != want {
            failures.push(format!("{file} differs"));
        }
    }
    let want = std::fs::read_to_string(dir.join("input-all.S.txt")).unwrap();
    let got = save::list_rules(t, Some("INPUT"), 0, false);
    if unsupported == 0 && got != want {
        failures.push("input-all.S.txt differs".to_string());
    }
    let _ = std::fs::remove_file(&networks);
    eprintln!(
        "names: {passed} passed, {} failed, {unsupported} unsupported",
        failures.len()
    );
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(failures.is_empty());
}

/// A restore block whose rules needed a host name does not use the store lines printed beside
/// the restore (that thread looks the name up again, and the hosts file may answer otherwise
/// by then); its table is formatted from the rules committed. A numeric block uses them.
#[test]
fn test_store_does_not_use_printed_lines_of_a_block_that_looked_up_a_name() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/recorded/names");
    if !dir.join("hosts").exists() {
        eprintln!("skipped: tests/recorded/names absent");
        return;
    }
    // The same value test_recorded_names sets (tests of this file share the environment).
    std::env::set_var("NFRS_HOSTS", dir.join("hosts"));
    let kept = |input: &str| {
        let mut rs = Ruleset::default();
        let mut blocks = nfrs_rules::restore::InputBlocks::default();
        nfrs_rules::restore::restore_noting_blocks(
            &mut rs,
            input,
            &nfrs_rules::restore::RestoreOpts {
                print_store: Some(true),
                ..Default::default()
            },
            &mut String::new(),
            &mut blocks,
        )
        .unwrap();
        blocks.printed_tables().contains(&TableKind::Filter)
    };
    let numeric = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s 10.9.9.8/32 -j DROP\nCOMMIT\n";
    assert!(kept(numeric));
    let named = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -s dual -j DROP\nCOMMIT\n";
    assert!(!kept(named));
    // Named in one table, numeric in the next: only the named table is refused.
    let both = format!("{}{}", named.replace("filter", "mangle"), numeric);
    assert!(kept(&both));
    // Names looked up on other threads meanwhile (the printing thread, a listing, the other
    // test of this file) do not make a numeric block look as if it had needed one.
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = nfrs_rules::hosts::lookup("dual");
            }
        });
        let refused = (0..50).filter(|_| !kept(numeric)).count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(
            refused, 0,
            "numeric block refused while another thread looked names up"
        );
    });
}
