//! The `security` table (iptable_security): chains INPUT, FORWARD, OUTPUT; what the kernel
//! accepts there and how iptables-legacy 1.8.9 prints it. Expected texts and refusals were
//! measured with `ip netns exec X iptables-legacy -t security ...` on Linux 6.18.

use nfrs_rules::ops::execute;
use nfrs_rules::parse::parse_command_strs;
use nfrs_rules::{Ruleset, TableKind};

fn run(rs: &mut Ruleset, rule: &str) -> Result<String, String> {
    let mut args = vec!["-t", "security"];
    args.extend(rule.split(' '));
    let c = parse_command_strs(&args, false, None, false)
        .0
        .map_err(|e| e.msg.clone())?;
    execute(rs, &c).map_err(|e| e.to_string())
}

#[test]
fn accepted_rules_save_and_list_as_iptables_legacy() {
    let mut rs = Ruleset::default();
    for r in [
        "-A INPUT -j LOG",
        "-A INPUT -j DROP",
        "-A INPUT -p tcp --tcp-flags SYN SYN -j TCPMSS --set-mss 1000",
        "-A INPUT -m mac --mac-source 00:11:22:33:44:55",
        "-A FORWARD -j MARK --set-mark 1",
        "-A OUTPUT -j CONNMARK --set-mark 1",
        "-A OUTPUT -m owner --uid-owner 0",
    ] {
        run(&mut rs, r).unwrap_or_else(|e| panic!("{r}: {e}"));
    }
    let saved = nfrs_rules::save::save(&rs, Some(TableKind::Security), false);
    let body: Vec<&str> = saved.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        body,
        [
            "*security",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            "-A INPUT -j LOG",
            "-A INPUT -j DROP",
            "-A INPUT -p tcp -m tcp --tcp-flags SYN SYN -j TCPMSS --set-mss 1000",
            "-A INPUT -m mac --mac-source 00:11:22:33:44:55",
            "-A FORWARD -j MARK --set-xmark 0x1/0xffffffff",
            "-A OUTPUT -j CONNMARK --set-xmark 0x1/0xffffffff",
            "-A OUTPUT -m owner --uid-owner 0",
            "COMMIT",
        ]
    );
    let s = run(&mut rs, "-S").unwrap();
    assert!(
        s.starts_with("-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n-A INPUT -j LOG\n"),
        "{s}"
    );
}

#[test]
fn refused_as_the_kernel_refuses() {
    // Measured: filter-only REJECT, mangle-only, raw-only and nat-only targets are refused
    // with EINVAL; there is no PREROUTING chain.
    for r in [
        "-A INPUT -j REJECT",
        "-A INPUT -p tcp -j REJECT --reject-with tcp-reset",
        "-A INPUT -j TTL --ttl-set 3",
        "-A INPUT -j CT --notrack",
        "-A INPUT -j TOS --set-tos 0x10",
        "-A INPUT -j DSCP --set-dscp 1",
        "-A INPUT -j TRACE",
        "-A INPUT -j CHECKSUM --checksum-fill",
        "-A INPUT -j DNAT --to 1.2.3.4",
        "-A INPUT -j MASQUERADE",
        "-A INPUT -j NOTRACK",
        "-A INPUT -p tcp --tcp-flags SYN SYN -j TCPMSS --clamp-mss-to-pmtu",
    ] {
        let mut rs = Ruleset::default();
        let e = run(&mut rs, r).expect_err(r);
        assert!(e.contains("Invalid argument"), "{r}: {e}");
    }
    let mut rs = Ruleset::default();
    let e = run(&mut rs, "-A PREROUTING -j LOG").unwrap_err();
    assert!(e.contains("No chain/target/match by that name"), "{e}");
}

#[test]
fn restored_first_lists_after_filter() {
    // Measured (tests/recorded/errors/table-order.tsv): tables list newest first.
    let rs = nfrs_rules::restore::restore_new(
        "*security\nCOMMIT\n*filter\nCOMMIT\n",
        &Default::default(),
    )
    .unwrap();
    assert_eq!(rs.table_names(), ["filter", "security"]);
    let saved = nfrs_rules::save::save(&rs, None, false);
    let body: Vec<&str> = saved.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(
        body,
        [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            "COMMIT",
            "*security",
            ":INPUT ACCEPT [0:0]",
            ":FORWARD ACCEPT [0:0]",
            ":OUTPUT ACCEPT [0:0]",
            "COMMIT",
        ]
    );
}
