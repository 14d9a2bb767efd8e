//! Beyond the kernel (issue 6, FAQ 3.4): behind MASQUERADE, when the IRC helper had to announce
//! a DCC offer on another port than the client offered (the port was already expected for
//! another client), DCC RESUME from the peer and DCC ACCEPT from the client are translated so
//! the resumed transfer still meets. Offers that kept their port pass untouched, as in the
//! kernel (tests/scenarios/helpers/irc-dcc-resume, recorded on 6.18).

const SCENARIO: &str = r#"
description = "two clients offer DCC port 5000 through one NAT address; the second is moved to another port"
rules = '''
*raw
-A PREROUTING -p tcp --dport 6667 -j CT --helper irc
COMMIT
*nat
-A POSTROUTING -o wan0 -j MASQUERADE
COMMIT
'''
packets = '''
0.00 lan0 tcp 10.0.0.2:40000 > 198.51.100.7:6667 flags=S seq=1000 win=64240
0.01 wan0 tcp 198.51.100.7:6667 > 192.0.2.1:40000 flags=SA seq=5000 ack=1001 win=64240
0.02 lan0 tcp 10.0.0.2:40000 > 198.51.100.7:6667 flags=A seq=1001 ack=5001 win=502
0.03 lan0 tcp 10.0.0.2:40000 > 198.51.100.7:6667 flags=PA seq=1001 ack=5001 win=502 payload="PRIVMSG bob :\x01DCC SEND f.txt 167772162 5000 100\x01\r\n"
0.10 lan0 tcp 10.0.0.3:40001 > 198.51.100.7:6667 flags=S seq=2000 win=64240
0.11 wan0 tcp 198.51.100.7:6667 > 192.0.2.1:40001 flags=SA seq=6000 ack=2001 win=64240
0.12 lan0 tcp 10.0.0.3:40001 > 198.51.100.7:6667 flags=A seq=2001 ack=6001 win=502
0.13 lan0 tcp 10.0.0.3:40001 > 198.51.100.7:6667 flags=PA seq=2001 ack=6001 win=502 payload="PRIVMSG bob :\x01DCC SEND f.txt 167772163 5000 100\x01\r\n"
0.14 wan0 tcp 198.51.100.7:6667 > 192.0.2.1:40001 flags=PA seq=6001 ack=2052 win=509 payload="PRIVMSG al :\x01DCC RESUME f.txt TOLD 4096\x01\r\n"
0.15 lan0 tcp 10.0.0.3:40001 > 198.51.100.7:6667 flags=PA seq=2051 ack=6043 win=502 payload="PRIVMSG bob :\x01DCC ACCEPT f.txt 5000 4096\x01\r\n"
0.16 wan0 tcp 198.51.100.7:6667 > 192.0.2.1:40000 flags=PA seq=5001 ack=1052 win=509 payload="PRIVMSG al :\x01DCC RESUME f.txt 5000 4096\x01\r\n"
'''
[sysctl]
"net.ipv4.ip_forward" = 1

[[interface]]
name = "lan0"
address = "10.0.0.1/24"

[[interface]]
name = "wan0"
address = "192.0.2.1/24"

[[route]]
to = "default"
via = "192.0.2.254"
dev = "wan0"
"#;

fn replay(told: u16) -> String {
    let text = SCENARIO.replace("TOLD", &told.to_string());
    let sc = nfrs_scenario::parse(&text, std::path::Path::new("resume.toml")).unwrap();
    nfrs_engine::replay::run(&sc, false)
        .unwrap()
        .result
        .to_text()
}

fn outs(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("out ") && l.contains("payload="))
        .collect()
}

#[test]
fn resume_and_accept_follow_a_moved_dcc_port() {
    // The port the peer is told for the second offer is drawn at random (as the kernel's
    // nf_nat_exp_find_port does); learn it first, the RESUME then names it.
    let first = replay(1);
    let second_offer = outs(&first)[1];
    let at = second_offer.find("3221225985 ").unwrap() + 11;
    let told: u16 = second_offer[at..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(told, 5000, "{first}");
    let text = replay(told);
    let outs = outs(&text);
    assert_eq!(outs.len(), 5, "{text}");
    // The first offer keeps its port.
    assert!(
        outs[0].contains(r"DCC SEND f.txt 3221225985 5000 100"),
        "{text}"
    );
    // The peer resumes on the port it was told; the client hears of the port it offered.
    assert!(outs[2].starts_with("  out lan0 "), "{text}");
    assert!(outs[2].contains(r"DCC RESUME f.txt 5000 4096"), "{text}");
    // The client accepts on its port; the peer hears of the one it was told.
    assert!(outs[3].starts_with("  out wan0 "), "{text}");
    assert!(
        outs[3].contains(&format!(r"DCC ACCEPT f.txt {told} 4096")),
        "{text}"
    );
    // The first client's port never moved: its RESUME passes as the kernel passes it.
    assert!(outs[4].contains(r"DCC RESUME f.txt 5000 4096"), "{text}");
}
