//! Incremental checks (`ops::execute` changing a committed table in place and checking only
//! what a command changed) against the whole-table check (copy the table, change the copy,
//! canonicalize, `validate_table`, replace): on random small tables and command sequences —
//! jumps, gotos, loops, jumps into built-in chains, hook-restricted targets and matches
//! (DNAT, SNAT, MASQUERADE, REDIRECT, REJECT, mac, owner), -o in INPUT — both accept and
//! refuse exactly the same commands, with the same error and output, and leave the same
//! rulesets. `NFRS_FUZZ_CASES=N` for longer runs.

use nfrs_rules::error::Error;
use nfrs_rules::model::{Counters, Ruleset};
use nfrs_rules::ops;
use nfrs_rules::parse::{parse_command, Cmd, Command};
use proptest::prelude::*;

/// `ops::execute` as it was before the incremental checks: the whole table checked on a copy.
fn whole_table(rs: &mut Ruleset, c: &Command) -> Result<String, Error> {
    let mut table = rs.table_mut(c.table).clone();
    let out = ops::apply(&mut table, c)?;
    if matches!(c.cmd, Cmd::Check | Cmd::ListRules) {
        if c.zero_too {
            *rs.table_mut(c.table) = table;
        }
        return Ok(out.output);
    }
    table.canonicalize();
    ops::validate_table(&table)?;
    for ch in table.chains.iter_mut().filter(|ch| ch.is_builtin()) {
        if !(c.cmd == Cmd::Policy && ch.name == c.chain && c.counters.is_some()) {
            ch.counters = Counters::default();
        }
    }
    *rs.table_mut(c.table) = table;
    Ok(out.output)
}

const USER: [&str; 4] = ["U0", "U1", "U2", "U3"];

fn chain(table: &'static str) -> impl Strategy<Value = String> {
    let builtins: &'static [&'static str] = match table {
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        _ => &["INPUT", "FORWARD", "OUTPUT"],
    };
    prop_oneof![
        3 => prop::sample::select(USER.to_vec()).prop_map(str::to_string),
        2 => prop::sample::select(builtins.to_vec()).prop_map(str::to_string),
    ]
}

/// A rule's matches and target (after `-A CHAIN`).
fn rule(table: &'static str) -> impl Strategy<Value = Vec<String>> {
    let matches = prop::sample::select(vec![
        "",
        "-p tcp",
        "-p udp --dport 53",
        "-o eth0",
        "-i eth1",
        "-s 10.0.0.1,10.0.0.2",
        "-m mac --mac-source 00:11:22:33:44:55",
        "-m owner --uid-owner 0",
        "-m comment --comment x",
    ]);
    let targets = prop_oneof![
        4 => prop::sample::select(USER.to_vec()).prop_map(|u| format!("-j {u}")),
        2 => prop::sample::select(USER.to_vec()).prop_map(|u| format!("-g {u}")),
        1 => chain(table).prop_map(|c| format!("-j {c}")),
        4 => prop::sample::select(vec![
            "",
            "-j ACCEPT",
            "-j DROP",
            "-j RETURN",
            "-j DNAT --to-destination 10.9.9.9",
            "-j SNAT --to-source 10.8.8.8",
            "-j MASQUERADE",
            "-p tcp -j REDIRECT --to-ports 8080",
            "-j REJECT",
            "-j LOG",
            "-j MARK --set-mark 1",
        ])
        .prop_map(str::to_string),
    ];
    (matches, targets).prop_map(|(m, t)| {
        format!("{m} {t}")
            .split_whitespace()
            .map(str::to_string)
            .collect()
    })
}

/// One command's arguments (without `-t TABLE`).
fn command(table: &'static str) -> impl Strategy<Value = Vec<String>> {
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    prop_oneof![
        10 => (chain(table), rule(table)).prop_map(move |(c, r)| [words(&format!("-A {c}")), r].concat()),
        3 => (chain(table), 1..4u32, rule(table))
            .prop_map(move |(c, n, r)| [words(&format!("-I {c} {n}")), r].concat()),
        3 => (chain(table), 1..4u32, rule(table))
            .prop_map(move |(c, n, r)| [words(&format!("-R {c} {n}")), r].concat()),
        3 => (chain(table), rule(table)).prop_map(move |(c, r)| [words(&format!("-D {c}")), r].concat()),
        3 => (chain(table), 1..4u32).prop_map(move |(c, n)| words(&format!("-D {c} {n}"))),
        1 => (chain(table), rule(table)).prop_map(move |(c, r)| [words(&format!("-C {c}")), r].concat()),
        3 => prop::sample::select(USER.to_vec()).prop_map(move |u| words(&format!("-N {u}"))),
        1 => prop::sample::select(USER.to_vec()).prop_map(move |u| words(&format!("-X {u}"))),
        1 => Just(words("-X")),
        1 => chain(table).prop_map(move |c| words(&format!("-F {c}"))),
        1 => Just(words("-F")),
        1 => (prop::sample::select(USER.to_vec()), prop::sample::select(USER.to_vec()))
            .prop_map(move |(a, b)| words(&format!("-E {a} {b}"))),
        1 => (chain(table), prop::bool::ANY).prop_map(move |(c, d)| {
            words(&format!("-P {c} {}", if d { "DROP" } else { "ACCEPT" }))
        }),
        1 => Just(words("-Z")),
        1 => chain(table).prop_map(move |c| words(&format!("-S {c}"))),
    ]
}

fn table_and_commands() -> impl Strategy<Value = (&'static str, Vec<Vec<String>>)> {
    prop::sample::select(vec!["filter", "nat", "mangle"])
        .prop_flat_map(|t| (Just(t), prop::collection::vec(command(t), 1..40)))
}

fn cases() -> u32 {
    std::env::var("NFRS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn incremental_checks_agree_with_the_whole_table((table, cmds) in table_and_commands()) {
        let mut inc = Ruleset::default();
        let mut whole = Ruleset::default();
        for args in cmds {
            let mut argv = vec!["-t".to_string(), table.to_string()];
            argv.extend(args);
            let Ok(c) = parse_command(&argv, false, None) else { continue };
            let a = ops::execute(&mut inc, &c);
            let b = whole_table(&mut whole, &c);
            prop_assert_eq!(&a, &b, "{}", argv.join(" "));
            prop_assert_eq!(&inc, &whole, "{}", argv.join(" "));
            let t = inc.table(c.table).unwrap();
            if let Some(m) = t.check_cache().masks() {
                prop_assert_eq!(m, &ops::hook_masks(t).unwrap()[..], "{}", argv.join(" "));
            }
        }
    }
}

/// The cases the proptest is there for, spelled out: each command's exit status and first
/// stderr line as recorded from iptables-legacy 1.8.9 on Linux 6.18 (one namespace, the
/// commands in this order), both paths giving them, and the table unchanged after a refusal.
#[test]
fn loops_hooks_and_builtin_jumps_refused_as_iptables_does() {
    const INVAL: &str = "iptables: Invalid argument. Run `dmesg' for more information.";
    const LOOP: &str = "iptables: Too many levels of symbolic links.";
    let script: &[(&str, i32, &str)] = &[
        ("-t nat -N A", 0, ""),
        ("-t nat -N B", 0, ""),
        ("-t nat -A A -j B", 0, ""),
        ("-t nat -A B -j DNAT --to-destination 10.0.0.1", 0, ""),
        // B becomes reachable from POSTROUTING, where DNAT is not allowed.
        ("-t nat -A POSTROUTING -j A", 1, INVAL),
        ("-t nat -A PREROUTING -j A", 0, ""),
        // A loop through a chain a hook reaches.
        ("-t nat -A B -j A", 1, LOOP),
        ("-t nat -A B -g A", 1, LOOP),
        // A cycle no hook reaches is allowed; reaching it is a loop.
        ("-t nat -N C", 0, ""),
        ("-t nat -N D", 0, ""),
        ("-t nat -A C -j D", 0, ""),
        ("-t nat -A D -j C", 0, ""),
        ("-t nat -A OUTPUT -j C", 1, LOOP),
        ("-t nat -I B 1 -j C", 1, LOOP),
        // Into a built-in chain.
        ("-t nat -A A -j OUTPUT", 1, INVAL),
        // The jump to B replaced: B unreachable, POSTROUTING may jump to A now.
        ("-t nat -R A 1 -j RETURN", 0, ""),
        ("-t nat -A POSTROUTING -j A", 0, ""),
        ("-t nat -D POSTROUTING 1", 0, ""),
        ("-t nat -A POSTROUTING -j MASQUERADE", 0, ""),
        ("-t nat -A PREROUTING -j MASQUERADE", 1, INVAL),
        ("-t filter -N F", 0, ""),
        ("-t filter -A F -o eth0 -j REJECT", 0, ""),
        ("-t filter -A INPUT -j F", 0, ""),
        ("-t filter -A OUTPUT -j F", 0, ""),
        // mac is for PREROUTING, INPUT and FORWARD; OUTPUT reaches F.
        (
            "-t filter -A F -m mac --mac-source 00:11:22:33:44:55",
            1,
            INVAL,
        ),
        (
            "-t filter -A INPUT -o eth0",
            2,
            "iptables v1.8.9 (legacy): Can't use -o with INPUT",
        ),
    ];
    let mut inc = Ruleset::default();
    let mut whole = Ruleset::default();
    for &(line, code, stderr) in script {
        let argv: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let before = inc.clone();
        let a = parse_command(&argv, false, None).and_then(|c| ops::execute(&mut inc, &c));
        let b = parse_command(&argv, false, None).and_then(|c| whole_table(&mut whole, &c));
        assert_eq!(a, b, "{line}");
        assert_eq!(inc, whole, "{line}");
        match a {
            Ok(_) => assert_eq!(code, 0, "{line}: accepted"),
            Err(e) => {
                assert_eq!(e.exit_code(), code, "{line}");
                assert_eq!(e.render("iptables").lines().next(), Some(stderr), "{line}");
                assert_eq!(inc, before, "{line}: the table changed");
            }
        }
    }
}
