//! Each fuzz target from its corpus for a short time (2 s; `NFRS_FUZZ_SECONDS` for longer):
//! no panic, no input over the hang limit.

use nfrs_fuzz::driver::show_input;
use nfrs_fuzz::{run, RunOpts, Target};

fn seconds() -> f64 {
    std::env::var("NFRS_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0)
}

fn fuzz(t: Target) {
    let corpus = nfrs_fuzz::seeds::load_corpus(&nfrs_fuzz::seeds::corpus_dir(t));
    assert!(
        corpus.len() >= 50,
        "{}: corpus has {} inputs",
        t.name(),
        corpus.len()
    );
    let opts = RunOpts {
        seconds: seconds(),
        hang: t.hang_limit(),
        seed: std::env::var("NFRS_FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1),
        corpus,
        ..RunOpts::default()
    };
    let r = run(t, &opts);
    eprintln!(
        "{}: {} cases in {:.1} s, {} outcomes, slowest {:?}",
        t.name(),
        r.cases,
        r.elapsed.as_secs_f64(),
        r.signatures,
        r.slowest
    );
    for f in &r.findings {
        eprintln!("{:?}\n  input: {}", f.kind, show_input(t, &f.input));
    }
    assert!(
        r.findings.is_empty(),
        "{}: {} findings",
        t.name(),
        r.findings.len()
    );
    assert!(r.cases >= 20, "{}: only {} cases", t.name(), r.cases);
    assert!(
        r.signatures >= 5,
        "{}: only {} outcomes",
        t.name(),
        r.signatures
    );
}

#[test]
fn fuzz_restore() {
    fuzz(Target::Restore);
}

#[test]
fn fuzz_argv() {
    fuzz(Target::Argv);
}

#[test]
fn fuzz_scenario() {
    fuzz(Target::Scenario);
}

#[test]
fn fuzz_packet() {
    fuzz(Target::Packet);
}

#[test]
fn fuzz_line() {
    fuzz(Target::Line);
}

#[test]
fn fuzz_control() {
    fuzz(Target::Control);
}

/// A message over the size limit is refused (code 2, "longer than") and changes nothing.
#[test]
fn control_oversized_message() {
    let h = nfrs_fuzz::control::Harness::new().unwrap();
    h.oversized().unwrap();
}

/// The control harness's checks can fail: a request the daemon answers with an error must
/// leave the state alone, and one it accepts may change it.
#[test]
fn control_checks_see_changes() {
    let h = nfrs_fuzz::control::Harness::new().unwrap();
    let d = h.daemon();
    let ok = br#"{"op":"tool","tool":"iptables","args":["-A","FORWARD","-j","DROP"]}"#;
    let reply = h.exchange(&d, &[&ok[..], b"\n"].concat());
    assert!(
        reply.starts_with(br#"{"code":0"#),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    let save = br#"{"op":"tool","tool":"iptables-save","args":[]}"#;
    let reply = h.exchange(&d, &[&save[..], b"\n"].concat());
    assert!(
        String::from_utf8_lossy(&reply).contains("-A FORWARD -j DROP"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // Garbage: code 2; a hang-up mid-message: no reply.
    let reply = h.exchange(&d, b"{\"op\":\"tool\"\n");
    assert!(
        reply.starts_with(br#"{"code":2"#),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(h.exchange(&d, br#"{"op":"ping"}"#).is_empty());
    // Whole inputs: a refused change, a change, garbage.
    let input = [
        &br#"{"op":"tool","tool":"iptables","args":["-A","FORWARD","-j","nowhere"]}"#[..],
        b"\n",
        &ok[..],
        b"\n{\"op\":1}\n",
    ]
    .concat();
    h.run(&input);
}

#[test]
fn packet_records_round_trip() {
    let recs = vec![(5u8, vec![1u8, 2, 3]), (0, vec![]), (2, vec![9; 300])];
    let enc = nfrs_fuzz::targets::encode_records(&recs);
    let dec = nfrs_fuzz::targets::packet_records(&enc);
    assert_eq!(dec.len(), 3);
    for ((c, f), (c2, f2)) in recs.iter().zip(dec) {
        assert_eq!((*c, f.as_slice()), (c2, f2));
    }
    // A truncated record takes what is left.
    assert_eq!(
        nfrs_fuzz::targets::packet_records(&[1, 0, 9, 7, 7]),
        vec![(1u8, &[7u8, 7][..])]
    );
}

#[test]
fn targets_name_round_trip() {
    for t in Target::ALL {
        assert_eq!(Target::from_name(t.name()), Some(t));
    }
    assert_eq!(Target::from_name("nope"), None);
}
