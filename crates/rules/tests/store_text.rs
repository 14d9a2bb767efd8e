//! The store a restore writes when its rule lines were printed beside the parsing
//! (`RestoreOpts::print_store`, `nfrs_rules::store_text`) holds, table by table, byte for
//! byte the text of the restored ruleset formatted again (`save::save_store_to`), whether
//! the printed lines were kept in memory (`save::save_store_after_restore`) or written to
//! the store's file while the restore ran (`Store::begin_write`, `RestoreOpts::print_sink`,
//! format 3: lines in input order, an index of ranges); it loads as that ruleset and
//! `iptables-save` copies the same text from it: every recorded ruleset (plain, `-c`,
//! `-T`, with and without a prelude), a big generated table, and random inputs.

mod common;

use nfrs_rules::restore::{restore, restore_noting_blocks, InputBlocks, RestoreOpts};
use nfrs_rules::save;
use nfrs_rules::store::{stored_blocks, Store};
use nfrs_rules::Ruleset;
use proptest::prelude::*;

fn temp_store() -> Store {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "nfrs-store-text-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Store::at(dir)
}

/// The `iptables-save` output (`-c` or not) copied from the store file, without the comment
/// lines (None: it cannot be copied).
fn copied_save(store: &Store, counters: bool) -> Option<String> {
    let args: Vec<String> = if counters { vec!["-c".into()] } else { vec![] };
    let p = nfrs_rules::tool::prepare("iptables-save", &args).unwrap();
    let mut out = Vec::new();
    let a = p.save_from_store(store, &mut out)?;
    assert_eq!((a.code, a.stderr.as_str()), (0, ""));
    let text = String::from_utf8(out).unwrap();
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect(),
    )
}

/// Restores `input` after `prelude` with the store lines printed beside, kept in memory
/// and streamed to the store's file; checks both store files hold the formatted text's
/// blocks, load back as the ruleset and save as it. Returns how many tables used printed
/// lines.
fn check(prelude: &str, input: &str, opts: &RestoreOpts) -> usize {
    let opts = RestoreOpts {
        print_store: Some(true),
        ..opts.clone()
    };
    let start = || {
        let mut rs = Ruleset::default();
        if !prelude.is_empty() {
            restore(&mut rs, prelude, &RestoreOpts::default()).unwrap();
        }
        rs
    };
    let mut rs = start();
    let mut blocks = InputBlocks::default();
    let result = restore_noting_blocks(&mut rs, input, &opts, &mut String::new(), &mut blocks);
    let mut written = Vec::new();
    save::save_store_after_restore(&rs, input, &blocks, &mut written).unwrap();
    let formatted = save::save_store(&rs);
    let want = stored_blocks(formatted.as_bytes()).unwrap();
    assert_eq!(
        stored_blocks(&written).as_ref(),
        Some(&want),
        "{input:?} ({result:?})"
    );
    // Streamed to the store's file while the restore runs.
    let store = temp_store();
    let begun = store.begin_write().unwrap();
    let streamed_opts = RestoreOpts {
        print_sink: Some(begun.sink()),
        ..opts.clone()
    };
    let mut streamed = start();
    let mut sblocks = InputBlocks::default();
    let r3 = restore_noting_blocks(
        &mut streamed,
        input,
        &streamed_opts,
        &mut String::new(),
        &mut sblocks,
    );
    assert_eq!(r3, result);
    assert_eq!(streamed, rs);
    assert_eq!(sblocks.printed_tables(), blocks.printed_tables());
    begun.finish_after_restore(&streamed, &sblocks).unwrap();
    let file = std::fs::read(store.dir.join("ruleset.rules")).unwrap();
    assert_eq!(stored_blocks(&file).as_ref(), Some(&want), "{input:?}");
    assert_eq!(
        file.starts_with(save::STORE_HEAD3.as_bytes()),
        !blocks.printed_tables().is_empty()
    );
    assert_eq!(store.load().unwrap(), rs);
    let names: Vec<_> = std::fs::read_dir(&store.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp.")), "{names:?}");
    for counters in [false, true] {
        if want.iter().all(|b| b.1) {
            let mut saved = String::new();
            for t in &rs.tables {
                save::save_table(t, counters, &mut saved);
            }
            assert_eq!(copied_save(&store, counters), Some(saved), "{input:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&store.dir);
    // The same restore without the printing gives the same ruleset.
    let mut again = start();
    let plain = RestoreOpts {
        print_store: Some(false),
        ..opts.clone()
    };
    let mut none = InputBlocks::default();
    let r2 = restore_noting_blocks(&mut again, input, &plain, &mut String::new(), &mut none);
    assert_eq!(result, r2);
    assert_eq!(again, rs);
    assert!(none.printed_tables().is_empty());
    blocks.printed_tables().len()
}

#[test]
fn recorded_rulesets_store_text_printed_beside_equals_formatted() {
    let Some(recorded) = common::recorded_inputs() else {
        return;
    };
    let (mut sets, mut printed) = (0, 0);
    for (prelude, input) in &recorded {
        for opts in [
            RestoreOpts::default(),
            RestoreOpts {
                counters: true,
                ..Default::default()
            },
            RestoreOpts {
                only_table: Some("nat".into()),
                ..Default::default()
            },
        ] {
            sets += 1;
            printed += check(prelude, input, &opts);
            printed += check("", input, &opts);
        }
    }
    assert!(sets > 500, "{sets}");
    assert!(printed > sets, "{printed} of {sets}");
}

#[test]
fn a_big_table_and_what_is_not_printed() {
    // Runs of lines of one chain interleaved with others, several rules from one line,
    // counters, a chain name the store quotes, a newline in a comment.
    let mut text = String::from("*nat\n:KUBE-SVC - [0:0]\n:a'b - [0:0]\n");
    for i in 0..6000 {
        text.push_str(&format!(
            "[{i}:{}] -A KUBE-SVC -d 10.0.{}.{}/32 -p tcp -m tcp --dport {} -j KUBE-SEP-{}\n",
            i * 3,
            i / 256,
            i % 256,
            1 + i % 60000,
            i % 7
        ));
        if i % 5 == 0 {
            text.push_str(&format!(":KUBE-SEP-{i}x - [0:0]\n-A KUBE-SEP-{i}x -s 1.1.1.1,2.2.2.{} -j MARK --set-xmark 0x4000/0x4000\n", i % 200));
        }
        if i % 1000 == 0 {
            text.push_str("-A PREROUTING -m comment --comment \"x y\" -j KUBE-SVC\n");
        }
    }
    for k in 0..7 {
        text = text.replacen(":KUBE-SVC", &format!(":KUBE-SEP-{k} - [0:0]\n:KUBE-SVC"), 1);
    }
    text.push_str("-A a'b -j RETURN\nCOMMIT\n*filter\n-A INPUT -j ACCEPT\nCOMMIT\n");
    for counters in [false, true] {
        let opts = RestoreOpts {
            counters,
            ..Default::default()
        };
        let n = check("", &text, &opts);
        assert_eq!(n, 2, "{counters}");
        // Other commands in a block: that table formatted, the other printed.
        let other = text.replacen("-A PREROUTING", "-I PREROUTING", 1);
        assert_eq!(check("", &other, &opts), n - 1);
        let nl = text.replacen("\"x y\"", "\"x\ny", 1);
        check("", &nl, &opts);
        // A failing line: the tables committed before it are stored.
        let bad = format!("{text}*raw\n-A OUTPUT -j NOPE\nCOMMIT\n");
        check("", &bad, &opts);
    }
    // Not with --noflush, --test, -v.
    for opts in [
        RestoreOpts {
            noflush: true,
            ..Default::default()
        },
        RestoreOpts {
            test: true,
            ..Default::default()
        },
        RestoreOpts {
            verbose: true,
            ..Default::default()
        },
    ] {
        assert_eq!(check("", &text, &opts), 0, "{opts:?}");
    }
}

/// Pieces of restore lines.
const PIECES: &[&str] = &[
    "-A INPUT",
    "-A OUTPUT",
    "-A PREROUTING",
    "-A POSTROUTING",
    "-A foo",
    "-A bar",
    "-A \"foo\"",
    "-N bar",
    "-I INPUT",
    "-D INPUT",
    "-j ACCEPT",
    "-j foo",
    "-g bar",
    "-j RETURN",
    "-s 1.2.3.4",
    "-s 1.1.1.1,2.2.2.2",
    "-d 3.3.3.0/24,4.4.4.4",
    "-i eth+",
    "-p tcp",
    "--dport 22",
    "! --sport 0:65535",
    "-m comment --comment",
    "\"x y\"",
    "\"a\\nb\"",
    "\"",
    "-m mark --mark 0x1",
    "-j MASQUERADE",
    "-j MARK --set-mark 1",
    "[1:2]",
    "[0:0]",
    ":foo - [0:0]",
    ":bar - [0:0]",
    ":INPUT DROP [3:4]",
    "#",
    "COMMIT",
    "*filter",
    "*nat",
    "*mangle",
    "*raw",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn random_inputs_store_text_printed_beside_equals_formatted(
        blocks in prop::collection::vec(
            (0..4usize, prop::collection::vec(prop::collection::vec(prop::sample::select(PIECES), 0..6), 0..10)),
            0..5),
        counters in any::<bool>(),
        prelude in any::<bool>(),
    ) {
        let input = common::blocks_input(&blocks, &["foo", "bar"]);
        let prelude = if prelude { "*filter\n:foo - [0:0]\n-A foo -j DROP\nCOMMIT\n*nat\nCOMMIT\n" } else { "" };
        check(prelude, &input, &RestoreOpts { counters, ..Default::default() });
    }
}

#[test]
fn a_store_write_uses_only_lines_printed_to_its_own_file() {
    let mut text = String::from("*filter\n:X - [0:0]\n");
    for i in 0..300 {
        text.push_str(&format!(
            "-A X -s 10.0.{}.{}/32 -j ACCEPT\n",
            i / 256,
            i % 256
        ));
    }
    text.push_str("-A INPUT -j X\nCOMMIT\n");
    let (a, b) = (temp_store(), temp_store());
    let begun_a = a.begin_write().unwrap();
    let begun_b = b.begin_write().unwrap();
    let opts = RestoreOpts {
        print_store: Some(true),
        print_sink: Some(begun_a.sink()),
        ..Default::default()
    };
    let mut rs = Ruleset::default();
    let mut blocks = InputBlocks::default();
    restore_noting_blocks(&mut rs, &text, &opts, &mut String::new(), &mut blocks).unwrap();
    assert_eq!(blocks.printed_tables().len(), 1);
    // Finished by the other write: its file does not hold the lines, it is formatted.
    begun_b.finish_after_restore(&rs, &blocks).unwrap();
    let file = std::fs::read(b.dir.join("ruleset.rules")).unwrap();
    assert!(file.starts_with(save::STORE_HEAD.as_bytes()));
    assert_eq!(b.load().unwrap(), rs);
    // Its own write uses them; dropped unfinished, a write leaves no file behind.
    begun_a.finish_after_restore(&rs, &blocks).unwrap();
    let file = std::fs::read(a.dir.join("ruleset.rules")).unwrap();
    assert!(file.starts_with(save::STORE_HEAD3.as_bytes()));
    assert_eq!(a.load().unwrap(), rs);
    drop(a.begin_write().unwrap());
    let names: Vec<_> = std::fs::read_dir(&a.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, ["ruleset.rules"], "{names:?}");
    assert_eq!(a.load().unwrap(), rs);
    // A temporary file of a process that is gone (kill -9) is removed by the next write.
    let stale = a.dir.join(".ruleset.rules.tmp.4000000");
    std::fs::write(&stale, "half a ruleset").unwrap();
    let mut again = Ruleset::default();
    let mut none = InputBlocks::default();
    let w = a.begin_write().unwrap();
    assert!(!stale.exists());
    restore_noting_blocks(
        &mut again,
        &text,
        &RestoreOpts::default(),
        &mut String::new(),
        &mut none,
    )
    .unwrap();
    w.finish_after_restore(&again, &none).unwrap();
    assert_eq!(a.load().unwrap(), rs);
    for s in [a, b] {
        let _ = std::fs::remove_dir_all(&s.dir);
    }
}
