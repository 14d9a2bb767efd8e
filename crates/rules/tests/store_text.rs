//! The store text a restore writes when its rule lines were printed beside the parsing
//! (`RestoreOpts::print_store`, `nfrs_rules::store_text`) is byte for byte the text of the
//! restored ruleset formatted again (`save::save_store_to`): every recorded ruleset (plain,
//! `-c`, `-T`, with and without a prelude), a big generated table, and random inputs.

mod common;

use nfrs_rules::restore::{restore, restore_noting_blocks, InputBlocks, RestoreOpts};
use nfrs_rules::save;
use nfrs_rules::Ruleset;
use proptest::prelude::*;

/// Restores `input` after `prelude` with the store lines printed beside; checks the store
/// text written equals the formatted one. Returns how many tables used printed lines.
fn check(prelude: &str, input: &str, opts: &RestoreOpts) -> usize {
    let opts = RestoreOpts {
        print_store: Some(true),
        ..opts.clone()
    };
    let mut rs = Ruleset::default();
    if !prelude.is_empty() {
        restore(&mut rs, prelude, &RestoreOpts::default()).unwrap();
    }
    let mut blocks = InputBlocks::default();
    let result = restore_noting_blocks(&mut rs, input, &opts, &mut String::new(), &mut blocks);
    let mut written = Vec::new();
    save::save_store_after_restore(&rs, input, &blocks, &mut written).unwrap();
    let written = String::from_utf8(written).unwrap();
    assert_eq!(written, save::save_store(&rs), "{input:?} ({result:?})");
    // The same restore without the printing gives the same ruleset.
    let mut again = Ruleset::default();
    if !prelude.is_empty() {
        restore(&mut again, prelude, &RestoreOpts::default()).unwrap();
    }
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
