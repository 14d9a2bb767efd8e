use super::*;

const GOLDEN: &str = "# two LAN hosts
# note: NAT port rand1: chosen at random by the kernel for udp 10.0.0.3:5000 -> 192.0.2.1 (source port clash or --random); its value is masked
0.00 lan0 udp 10.0.0.2:5000 > 203.0.113.9:5000 len=8
  out wan0 udp 192.0.2.1:5000 > 203.0.113.9:5000 ttl=63 tos=0x00 id=1 len=8
0.01 lan0 udp 10.0.0.3:5000 > 203.0.113.9:5000 len=8
  out wan0 udp 192.0.2.1:rand1 > 203.0.113.9:5000 ttl=63 tos=0x00 id=2 len=8
0.03 lan0 udp 10.0.0.2:5001 > 203.0.113.9:33434 ttl=1 len=8
  out lan0 icmp 10.0.0.1 > 10.0.0.2 ttl=64 tos=0xc0 ipid=* type=11 code=0 inner=\"udp 10.0.0.2:5001 > 203.0.113.9:33434 ttl=1 tos=0x00 id=4 len=8\"
  log fw: IN=lan0 OUT= ID=* 
0.04 lan0 tcp 10.0.0.2:1 > 10.0.0.1:2 flags=S
  (dropped)
== conntrack
ipv4     2 udp      17 src=10.0.0.3 dst=203.0.113.9 sport=5000 dport=5000 [UNREPLIED] src=203.0.113.9 dst=192.0.2.1 sport=5000 dport=rand1 mark=0 use=1
== expect
== iptables-save -c
*nat
COMMIT
";

#[test]
fn parse_and_print_roundtrip() {
    let r = RunResult::parse(GOLDEN).unwrap();
    assert_eq!(r.description, "two LAN hosts");
    assert_eq!(r.notes.len(), 1);
    assert_eq!(r.packets.len(), 4);
    assert_eq!(r.packets[2].events.len(), 2);
    assert_eq!(
        r.packets[2].events[1],
        Event::Log("fw: IN=lan0 OUT= ID=* ".into())
    );
    assert_eq!(r.packets[3].events, vec![Event::Dropped]);
    assert_eq!(r.conntrack.len(), 1);
    assert_eq!(r.iptables_save, vec!["*nat", "COMMIT"]);
    assert_eq!(r.to_text(), GOLDEN);
}

#[test]
fn the_shared_examples_roundtrip() {
    let dir = match std::env::var_os("NFRS_SHARED") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
    .join("examples");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        eprintln!("skipped: ../shared/examples absent");
        return;
    };
    let mut n = 0;
    for e in rd {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with(".kernel.txt") {
            let t = std::fs::read_to_string(&p).unwrap();
            let r = RunResult::parse(&t).unwrap();
            assert_eq!(r.to_text(), t, "{}", p.display());
            assert!(compare(&r, &r).is_ok());
            n += 1;
        }
    }
    assert!(n >= 3);
}

#[test]
fn parse_errors_name_the_line() {
    let e = RunResult::parse("# d\n  out lan0 x\n== conntrack\n== expect\n== iptables-save -c\n")
        .unwrap_err();
    assert_eq!(e.line, 2);
    let e = RunResult::parse(
        "# d\n0.0 lan0 x\n  bogus\n== conntrack\n== expect\n== iptables-save -c\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 3);
    assert!(RunResult::parse("# d\n0.0 lan0 x\n").is_err());
    assert!(RunResult::parse("").is_err());
}

fn with(text: &str, from: &str, to: &str) -> RunResult {
    RunResult::parse(&text.replace(from, to)).unwrap()
}

#[test]
fn placeholders_match_real_values_consistently() {
    let exp = RunResult::parse(GOLDEN).unwrap();
    // An unmasked actual result with the same random port everywhere matches.
    let act = with(GOLDEN, "rand1", "43210");
    compare(&exp, &act).unwrap();
    // The IP id mask matches any number.
    let act2 = with(&GOLDEN.replace("rand1", "43210"), "ipid=*", "ipid=999");
    compare(&exp, &act2).unwrap();
    let act3 = with(GOLDEN, "ID=* ", "ID=77 ");
    compare(&exp, &act3).unwrap();
    // Different values for one placeholder do not.
    let bad = RunResult::parse(
        &GOLDEN
            .replacen("rand1", "43210", 2)
            .replace("dport=rand1", "dport=43211"),
    )
    .unwrap();
    let m = compare(&exp, &bad).unwrap_err();
    assert!(m.report.contains("conntrack"), "{m}");
    // A placeholder does not match a non-number.
    let bad2 = with(GOLDEN, "192.0.2.1:rand1", "192.0.2.1:http");
    assert!(compare(&exp, &bad2).is_err());
}

#[test]
fn two_placeholders_may_not_share_a_value() {
    let t = "# d\n0 a x\n  out a udp 1.1.1.1:rand1 > 2.2.2.2:1\n  out a udp 1.1.1.1:rand2 > 2.2.2.2:1\n== conntrack\n== expect\n== iptables-save -c\n";
    let exp = RunResult::parse(t).unwrap();
    let same = RunResult::parse(&t.replace("rand1", "5000").replace("rand2", "5000")).unwrap();
    assert!(compare(&exp, &same).is_err());
    let diff = RunResult::parse(&t.replace("rand1", "5000").replace("rand2", "5001")).unwrap();
    compare(&exp, &diff).unwrap();
    // Masked on both sides with names swapped consistently is fine too.
    let swapped = RunResult::parse(
        &t.replace("rand1", "randX")
            .replace("rand2", "rand1")
            .replace("randX", "rand2"),
    )
    .unwrap();
    compare(&exp, &swapped).unwrap();
}

#[test]
fn mismatch_report_shows_the_first_divergent_packet() {
    let exp = RunResult::parse(GOLDEN).unwrap();
    let act = with(
        GOLDEN,
        "  (dropped)",
        "  out lan0 tcp 10.0.0.1:2 > 10.0.0.2:1 flags=RA",
    );
    let m = compare(&exp, &act).unwrap_err();
    assert!(m.report.contains("first divergent packet: #4"), "{m}");
    assert!(
        m.report
            .contains("0.04 lan0 tcp 10.0.0.2:1 > 10.0.0.1:2 flags=S"),
        "{m}"
    );
    assert!(m.report.contains("expected:\n    (dropped)"), "{m}");
    assert!(m.report.contains("actual:\n    out lan0 tcp"), "{m}");
    let act = with(GOLDEN, "*nat\n", "*filter\n");
    let m = compare(&exp, &act).unwrap_err();
    assert!(m.report.contains("iptables-save -c"), "{m}");
    let act = with(
        GOLDEN,
        "0.04 lan0 tcp 10.0.0.2:1 > 10.0.0.1:2 flags=S\n  (dropped)\n",
        "",
    );
    assert!(compare(&exp, &act)
        .unwrap_err()
        .report
        .contains("packet count"));
}

#[test]
fn finish_orders_events_canonically() {
    let mut p = PacketResult {
        input: "x".into(),
        events: vec![
            Event::Log("l1".into()),
            Event::Out {
                dev: "wan0".into(),
                packet: "p2".into(),
            },
            Event::Local("loc".into()),
            Event::Out {
                dev: "lan0".into(),
                packet: "p1".into(),
            },
            Event::Late(Box::new(Event::Log("late".into()))),
            Event::Out {
                dev: "wan0".into(),
                packet: "p3".into(),
            },
        ],
    };
    p.finish(&["lan0", "wan0"], false);
    let s: Vec<String> = p.events.iter().map(|e| e.to_string()).collect();
    assert_eq!(
        s,
        vec![
            "out lan0 p1",
            "out wan0 p2",
            "out wan0 p3",
            "local loc",
            "log l1",
            "late log late"
        ]
    );
    let mut q = PacketResult {
        input: "y".into(),
        events: vec![Event::Late(Box::new(Event::Local("z".into())))],
    };
    q.finish(&[], true);
    assert_eq!(q.events[0], Event::Queued);
    let mut r = PacketResult::default();
    r.finish(&[], false);
    assert_eq!(r.events, vec![Event::Dropped]);
    // A log line alone: logged, then dropped.
    let mut l = PacketResult {
        input: "z".into(),
        events: vec![Event::Log("fwd drop: ".into())],
    };
    l.finish(&[], false);
    assert_eq!(
        l.events,
        vec![Event::Log("fwd drop: ".into()), Event::Dropped]
    );
}

#[test]
fn a_bare_star_matches_a_number_but_star_words_are_literal() {
    let t = "# d\n0 a x\n  log nf_conntrack: nf_conntrack: table full in netns *, dropping packet\n== conntrack\n== expect\n== iptables-save -c\n*nat\nCOMMIT\n";
    let exp = RunResult::parse(t).unwrap();
    compare(
        &exp,
        &RunResult::parse(&t.replace("netns *,", "netns 4026532384,")).unwrap(),
    )
    .unwrap();
    assert!(compare(
        &exp,
        &RunResult::parse(&t.replace("*nat", "*filter")).unwrap()
    )
    .is_err());
    assert!(compare(&exp, &RunResult::parse(&t.replace("*nat", "7nat")).unwrap()).is_err());
}
