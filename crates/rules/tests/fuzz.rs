//! Fuzz targets on stable Rust (proptest): the restore parser fed arbitrary bytes and
//! restore-shaped text, and the argv grammar fed token sequences built from iptables'
//! vocabulary. Property: no panic, and an error always has a message and a sane exit code.
//! Default runs are short; `NFRS_FUZZ_CASES=100000 cargo test -p nfrs-rules --test fuzz
//! --release` runs longer.

use nfrs_rules::ops;
use nfrs_rules::parse::parse_command;
use nfrs_rules::restore::{restore, RestoreOpts};
use nfrs_rules::{save, Ruleset, TableKind};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("NFRS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Words iptables rules are made of (options of the core and of several extensions, values).
const WORDS: &[&str] = &[
    "-A",
    "-I",
    "-D",
    "-R",
    "-C",
    "-L",
    "-S",
    "-F",
    "-Z",
    "-N",
    "-X",
    "-P",
    "-E",
    "-t",
    "nat",
    "filter",
    "mangle",
    "raw",
    "INPUT",
    "OUTPUT",
    "FORWARD",
    "PREROUTING",
    "POSTROUTING",
    "foo",
    "1",
    "2",
    "0",
    "-s",
    "-d",
    "10.0.0.0/8",
    "1.2.3.4",
    "1.2.3.4/33",
    "-i",
    "-o",
    "eth0",
    "eth+",
    "+",
    "-p",
    "tcp",
    "udp",
    "icmp",
    "all",
    "47",
    "!",
    "-f",
    "-j",
    "-g",
    "ACCEPT",
    "DROP",
    "RETURN",
    "LOG",
    "REJECT",
    "DNAT",
    "SNAT",
    "MASQUERADE",
    "MARK",
    "-m",
    "tcp",
    "state",
    "conntrack",
    "multiport",
    "comment",
    "mark",
    "limit",
    "addrtype",
    "--dport",
    "--sport",
    "--dports",
    "--syn",
    "--tcp-flags",
    "SYN,ACK",
    "SYN",
    "--state",
    "NEW,ESTABLISHED",
    "--ctstate",
    "--comment",
    "\"x y\"",
    "--log-prefix",
    "--reject-with",
    "tcp-reset",
    "--to-destination",
    "1.2.3.4:80",
    "--to-source",
    "--set-xmark",
    "0x1/0xff",
    "--mark",
    "--icmp-type",
    "echo-request",
    "-c",
    "5",
    "-v",
    "-n",
    "-x",
    "--line-numbers",
    "-w",
    "--",
    "-ptcp",
    "--protocol=tcp",
    "--dp",
    "80",
    "22:",
    ":",
    "ssh",
    "--limit",
    "3/min",
    "-Q",
];

fn words() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(prop::sample::select(WORDS).prop_map(str::to_string), 0..14)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn fuzz_restore_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        let mut rs = Ruleset::default();
        if let Err(e) = restore(&mut rs, &text, &RestoreOpts::default()) {
            prop_assert!(!e.message.is_empty());
            prop_assert!(e.exit_code == 1 || e.exit_code == 2);
        }
    }

    #[test]
    fn fuzz_restore_shaped(lines in prop::collection::vec(words(), 0..8), table in 0usize..4) {
        let t = TableKind::ALL[table].name();
        let mut text = format!("*{t}\n:foo - [0:0]\n");
        for l in &lines {
            // Mostly rule lines, so that many inputs load and the round trip is exercised.
            if l.len() % 4 != 0 {
                text.push_str("-A foo ");
            }
            text.push_str(&l.join(" "));
            text.push('\n');
        }
        text.push_str("COMMIT\n");
        let mut rs = Ruleset::default();
        let opts = RestoreOpts { counters: true, ..Default::default() };
        if restore(&mut rs, &text, &opts).is_ok() {
            // iptables-save's own text is not always restorable (1.8.9 prints `-i a b`
            // unquoted), but when it is, saving again gives the same text.
            let again = save::save(&rs, None, true);
            let mut rs2 = Ruleset::default();
            if restore(&mut rs2, &again, &opts).is_ok() {
                prop_assert_eq!(save::save(&rs2, None, true), again);
            }
            // The store form loads back to an equal ruleset (nothing lost).
            let stored = save::save_store(&rs);
            let mut rs3 = Ruleset::default();
            let sopts = RestoreOpts { counters: true, store_escapes: true, trusted: true, ..Default::default() };
            restore(&mut rs3, &stored, &sopts).map_err(|e| TestCaseError::fail(e.message))?;
            rs3.tables.reverse();
            prop_assert_eq!(rs3, rs);
        }
    }

    #[test]
    fn fuzz_argv(args in words()) {
        let mut rs = Ruleset::default();
        match parse_command(&args, false, None) {
            Ok(c) => {
                if c.cmd != nfrs_rules::parse::Cmd::List {
                    let _ = ops::execute(&mut rs, &c);
                }
            }
            Err(e) => prop_assert!(!e.msg.is_empty()),
        }
    }
}
