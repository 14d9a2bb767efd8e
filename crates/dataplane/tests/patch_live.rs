//! Rule commands through the daemon (`daemon::Dispatcher`, the control socket's own
//! handler): `-I`/`-A`/`-R`/`-D` are patched into the engine in force and take effect on
//! the next packet, the other rules' counters and the connections stay, and the store
//! follows: written behind the answer (as `nfrs run` does) or before it (the dispatcher's
//! default; a write behind keeps its own copy of the ruleset up to date with each change).
//! A change the engine cannot take in place (no spare room, conntrack that would stop) is
//! compiled in full, with the live counters carried over.

use nfrs_dataplane::daemon::Dispatcher;
use nfrs_dataplane::proto::{Request, Response};
use nfrs_engine::engine::Ev;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RULES: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
    -A FORWARD -m conntrack --ctstate ESTABLISHED -j ACCEPT\n\
    -A FORWARD -p udp -m udp --dport 53 -j ACCEPT\n\
    -A FORWARD -p udp -m udp --dport 9 -j DROP\nCOMMIT\n";

fn work(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nfrs-patch-live-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn daemon(dir: &Path) -> Dispatcher {
    let store = nfrs_rules::store::Store::at(dir.join("store"));
    let rs = nfrs_rules::restore::restore_new(RULES, &Default::default()).unwrap();
    store.save(&rs).unwrap();
    let h = nfrs_dataplane::hostfile::parse(
        "[[interface]]\nname = \"a\"\naddress = \"10.0.0.1/24\"\n[[interface]]\nname = \"b\"\naddress = \"10.0.1.1/24\"\n[sysctl]\n\"net.ipv4.ip_forward\" = \"1\"\n",
        Path::new("t.toml"),
    )
    .unwrap();
    Dispatcher::new(&store.dir, h.host).unwrap()
}

fn iptables(d: &Dispatcher, args: &str) -> Response {
    d.handle(Request::Tool {
        tool: "iptables".into(),
        args: args.split(' ').map(String::from).collect(),
        stdin: String::new(),
    })
}

/// A UDP packet from 10.0.0.2:`sport` to 10.0.1.2:`dport` in on interface a: forwarded?
fn forwarded(d: &Dispatcher, sport: u16, dport: u16, now: u64) -> bool {
    let line = format!("0 a udp 10.0.0.2:{sport} > 10.0.1.2:{dport}");
    let l = nfrs_wire::line::parse_input_line(&line).unwrap();
    let ip = nfrs_wire::build::build_ipv4(&l.spec, &Default::default()).unwrap();
    d.with_live(move |l| {
        l.engine.events.clear();
        l.engine
            .receive(0, ip, [2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 1, 8, 0], now);
        l.engine
            .events
            .iter()
            .any(|e| matches!(e, Ev::Out { dev: 1, .. }))
    })
    .unwrap()
}

/// `iptables -S FORWARD -v`-like lines with counters, from the engine in force.
fn counters(d: &Dispatcher) -> Vec<String> {
    let r = iptables(d, "-v -x -n -L FORWARD");
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

fn stored(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("store/ruleset.rules")).unwrap()
}

/// Waits (at most 5 s) for the store to hold every change.
fn settled(d: &Dispatcher) {
    let t0 = Instant::now();
    while d.store_state() != (true, None) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{:?}",
            d.store_state()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn rule_commands_take_effect_on_the_next_packet_and_the_store_follows() {
    let dir = work("behind");
    let d = daemon(&dir);
    d.write_behind().unwrap();
    // A connection (sport 1000 -> 9) is dropped by rule 3; DNS goes through.
    assert!(!forwarded(&d, 1000, 9, 1_000_000));
    assert!(forwarded(&d, 1001, 53, 2_000_000));
    assert!(forwarded(&d, 1002, 53, 3_000_000));
    assert_eq!(counters(&d), ["0 0 ACCEPT", "2 56 ACCEPT", "1 28 DROP"]);
    // -I: DNS from 10.0.0.2 dropped from the next packet on.
    let r = iptables(&d, "-I FORWARD 2 -s 10.0.0.2 -p udp --dport 53 -j DROP");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert!(!forwarded(&d, 1003, 53, 4_000_000));
    // Rules before and after it kept their counters; the new one counts from zero.
    assert_eq!(
        counters(&d),
        ["0 0 ACCEPT", "1 28 DROP", "2 56 ACCEPT", "1 28 DROP"]
    );
    settled(&d);
    assert!(stored(&dir).contains("-A FORWARD -s 10.0.0.2/32 -p udp -m udp --dport 53 -j DROP"));
    // -R: port 9 accepted now; -A: a rule after it that never sees those packets.
    assert_eq!(
        iptables(&d, "-R FORWARD 4 -p udp --dport 9 -j ACCEPT").code,
        0
    );
    assert_eq!(iptables(&d, "-A FORWARD -p udp --dport 9 -j DROP").code, 0);
    assert!(forwarded(&d, 1004, 9, 5_000_000));
    assert_eq!(
        counters(&d),
        [
            "0 0 ACCEPT",
            "1 28 DROP",
            "2 56 ACCEPT",
            "1 28 ACCEPT",
            "0 0 DROP"
        ]
    );
    // -D by rule and by number: DNS goes through again.
    assert_eq!(
        iptables(&d, "-D FORWARD -s 10.0.0.2 -p udp --dport 53 -j DROP").code,
        0
    );
    assert_eq!(iptables(&d, "-D FORWARD 4").code, 0);
    assert!(forwarded(&d, 1005, 53, 6_000_000));
    assert_eq!(counters(&d), ["0 0 ACCEPT", "3 84 ACCEPT", "1 28 ACCEPT"]);
    // The -A found the chain's spare room (one record for a short chain) used by the -I:
    // compiled in full, which gave the chain new room; the rest patched.
    assert_eq!(d.patched(), 4);
    // The connection DNS packet 1001 made survived every change: its reply is ESTABLISHED.
    let l = nfrs_wire::line::parse_input_line("1 b udp 10.0.1.2:53 > 10.0.0.2:1001").unwrap();
    let ip = nfrs_wire::build::build_ipv4(&l.spec, &Default::default()).unwrap();
    let back = d
        .with_live(move |l| {
            l.engine.events.clear();
            l.engine
                .receive(1, ip, [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 1, 2, 8, 0], 8_000_000);
            l.engine
                .events
                .iter()
                .any(|e| matches!(e, Ev::Out { dev: 0, .. }))
        })
        .unwrap();
    assert!(back);
    assert_eq!(counters(&d)[0], "1 28 ACCEPT");
    settled(&d);
    let s = stored(&dir);
    assert!(!s.contains("10.0.0.2"), "{s}");
    assert_eq!(s.matches("--dport 9 -j ACCEPT").count(), 1, "{s}");
    // A jump to a chain made since: -N compiled in full, the rest patched.
    assert_eq!(iptables(&d, "-N logged").code, 0);
    assert_eq!(iptables(&d, "-A logged -j ACCEPT").code, 0);
    assert_eq!(iptables(&d, "-I FORWARD 1 -p tcp -j logged").code, 0);
    assert_eq!(
        counters(&d),
        ["0 0 logged", "1 28 ACCEPT", "3 84 ACCEPT", "1 28 ACCEPT"]
    );
    assert_eq!(d.patched(), 6);
    settled(&d);
    assert!(stored(&dir).contains("-A FORWARD -p tcp -j logged"));
    // Deleting the one rule that needs conntrack would stop it: compiled in full, the live
    // counters carried over.
    assert_eq!(iptables(&d, "-D FORWARD 2").code, 0);
    assert_eq!(d.patched(), 6);
    assert_eq!(counters(&d), ["0 0 logged", "3 84 ACCEPT", "1 28 ACCEPT"]);
    assert!(forwarded(&d, 1007, 53, 9_000_000));
    assert_eq!(counters(&d)[1], "4 112 ACCEPT");
    settled(&d);
    assert!(!stored(&dir).contains("ESTABLISHED"));
    // Changes after a write follow into the store one by one (the writer keeps its own
    // copy of the ruleset up to date with them).
    assert_eq!(
        iptables(&d, "-R FORWARD 3 -p udp --dport 5353 -j ACCEPT").code,
        0
    );
    settled(&d);
    assert!(stored(&dir).contains("-A FORWARD -p udp -m udp --dport 5353 -j ACCEPT"));
    assert_eq!(iptables(&d, "-D FORWARD 1").code, 0);
    assert_eq!(iptables(&d, "-D FORWARD 2").code, 0);
    settled(&d);
    let s = stored(&dir);
    assert!(!s.contains("5353") && !s.contains("-j logged"), "{s}");
    assert!(s.contains("--dport 53 -j ACCEPT"), "{s}");
    assert_eq!(d.patched(), 9);
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn without_write_behind_the_store_is_written_before_the_answer() {
    let dir = work("before");
    let d = daemon(&dir);
    assert!(forwarded(&d, 1000, 53, 1_000_000));
    assert_eq!(iptables(&d, "-A FORWARD -p udp --dport 54 -j DROP").code, 0);
    // No waiting: the file holds it when the answer comes.
    assert!(stored(&dir).contains("-A FORWARD -p udp -m udp --dport 54 -j DROP"));
    assert!(!forwarded(&d, 1001, 54, 2_000_000));
    assert_eq!(
        iptables(&d, "-I FORWARD 1 -p udp --dport 53 -j DROP").code,
        0
    );
    assert!(stored(&dir).contains("-A FORWARD -p udp -m udp --dport 53 -j DROP"));
    assert!(!forwarded(&d, 1002, 53, 3_000_000));
    // The -I found the chain's one spare record taken: compiled in full.
    assert_eq!(d.patched(), 1);
    assert_eq!(
        counters(&d),
        [
            "1 28 DROP",
            "0 0 ACCEPT",
            "1 28 ACCEPT",
            "0 0 DROP",
            "1 28 DROP"
        ]
    );
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
