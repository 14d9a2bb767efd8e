//! End-to-end: `nfrs replay SCENARIO --store DIR` leaves the final ruleset, connection table
//! and expectations in the store; with no daemon, `conntrack -L -o extended`,
//! `conntrack -L expect`, `proc net/nf_conntrack` and `iptables-save -c` on that store print
//! what the kernel printed at the end of the same scenario (the recorded `NAME.kernel.txt`,
//! whose listings were taken from the kernel with the timeout column removed). `nfrs check`
//! against the store changes nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Out {
    rc: i32,
    stdout: String,
    stderr: String,
}

fn nfrs(store: &Path, args: &[&str]) -> Out {
    let o = Command::new(env!("CARGO_BIN_EXE_nfrs"))
        .args(args)
        .arg("--store")
        .arg(store)
        .env("NFRS_NO_DAEMON", "1")
        .output()
        .unwrap();
    Out {
        rc: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// The lines of section `name` (`== conntrack`, `== expect`, `== iptables-save -c`).
fn section(text: &str, name: &str) -> Vec<String> {
    let mut on = false;
    let mut v = Vec::new();
    for l in text.lines() {
        if let Some(h) = l.strip_prefix("== ") {
            on = h == name;
            continue;
        }
        if on {
            v.push(l.to_string());
        }
    }
    v
}

/// A `conntrack -L` line without its timeout (the fifth field of the extended form).
fn strip_timeout(line: &str) -> String {
    let f: Vec<&str> = line.split(' ').filter(|x| !x.is_empty()).collect();
    let at = if f[0] == "ipv4" { 4 } else { 2 };
    // Re-create the padded columns: "ipv4     2 tcp      6 ".
    let mut out = String::new();
    let mut i = 0;
    let mut rest = line;
    while i < f.len() {
        let t = rest.trim_start_matches(' ');
        let lead = &rest[..rest.len() - t.len()];
        let end = t.find(' ').unwrap_or(t.len());
        if i == at && f[i].bytes().all(|b| b.is_ascii_digit()) {
            rest = t[end..].strip_prefix(' ').unwrap_or(&t[end..]);
            out.push_str(lead);
            i += 1;
            // The next field follows the single space left before the timeout.
            let t2 = rest;
            let end2 = t2.find(' ').unwrap_or(t2.len());
            out.push_str(&t2[..end2]);
            rest = &t2[end2..];
            i += 1;
            continue;
        }
        out.push_str(lead);
        out.push_str(&t[..end]);
        rest = &t[end..];
        i += 1;
    }
    out
}

fn scenarios() -> Vec<(PathBuf, PathBuf)> {
    let mut v = Vec::new();
    let mut dirs = vec![root().join("tests/scenarios")];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if let Some(n) = p.to_str().and_then(|s| s.strip_suffix(".kernel.txt")) {
                let toml = PathBuf::from(format!("{n}.toml"));
                if toml.exists() {
                    v.push((toml, p));
                }
            }
        }
    }
    v.sort();
    v
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nfrs-store-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn listings_after_replay_match_the_kernel() {
    let mut compared = 0;
    let mut with_expect = 0;
    let mut skipped = Vec::new();
    for (sc, golden) in scenarios() {
        let want = std::fs::read_to_string(&golden).unwrap();
        let store = tmp("golden");
        let rep = nfrs(&store, &["replay", sc.to_str().unwrap()]);
        if rep.rc != 0 {
            // A scenario replay refuses (an unsupported match): nothing to compare.
            skipped.push(sc.display().to_string());
            continue;
        }
        let kct = section(&want, "conntrack");
        let kex = section(&want, "expect");
        let ksave = section(&want, "iptables-save -c");
        // Only where replay itself agrees with the kernel and no random choice is masked.
        let agrees = section(&rep.stdout, "conntrack") == kct
            && section(&rep.stdout, "expect") == kex
            && section(&rep.stdout, "iptables-save -c") == ksave;
        let masked = kct
            .iter()
            .chain(&kex)
            .any(|l| l.contains('*') || l.contains("=rand"));
        if !agrees || masked {
            skipped.push(sc.display().to_string());
            let _ = std::fs::remove_dir_all(&store);
            continue;
        }
        let l = nfrs(&store, &["conntrack", "-L", "-o", "extended"]);
        assert_eq!(l.rc, 0, "{}", l.stderr);
        let mut got: Vec<String> = l.stdout.lines().map(strip_timeout).collect();
        got.sort();
        let mut k = kct.clone();
        k.sort();
        assert_eq!(got, k, "{}: conntrack -L -o extended", sc.display());
        assert_eq!(
            l.stderr,
            format!(
                "conntrack v1.4.7 (conntrack-tools): {} flow entries have been shown.\n",
                kct.len()
            )
        );
        // The plain form is the extended one without the layer-3 columns.
        let plain = nfrs(&store, &["conntrack", "-L"]);
        let mut p: Vec<String> = plain.stdout.lines().map(strip_timeout).collect();
        p.sort();
        let mut e: Vec<String> = k.iter().map(|x| x[11..].to_string()).collect();
        e.sort();
        assert_eq!(p, e, "{}: conntrack -L", sc.display());
        // /proc: zone= always, use= one more (the reader's reference).
        let pr = nfrs(&store, &["proc", "net/nf_conntrack"]);
        assert_eq!(pr.rc, 0);
        assert_eq!(pr.stdout.lines().count(), kct.len());
        assert!(pr.stdout.lines().all(|x| x.contains(" zone=")));
        let ex = nfrs(&store, &["conntrack", "-L", "expect"]);
        let mut got: Vec<String> = ex
            .stdout
            .lines()
            .map(|x| x.split_once(' ').unwrap().1.to_string())
            .collect();
        got.sort();
        let mut k = kex.clone();
        k.sort();
        assert_eq!(got, k, "{}: conntrack -L expect", sc.display());
        assert_eq!(
            ex.stderr,
            format!(
                "conntrack v1.4.7 (conntrack-tools): {} expectations have been shown.\n",
                kex.len()
            )
        );
        let pe = nfrs(&store, &["proc", "net/nf_conntrack_expect"]);
        assert_eq!(pe.stdout.lines().count(), kex.len());
        with_expect += usize::from(!kex.is_empty());
        let save = nfrs(&store, &["iptables-save", "-c"]);
        let got: Vec<String> = save
            .stdout
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        assert_eq!(got, ksave, "{}: iptables-save -c", sc.display());
        compared += 1;
        let _ = std::fs::remove_dir_all(&store);
    }
    println!(
        "{compared} scenarios compared ({with_expect} with expectations); skipped: {skipped:#?}"
    );
    assert!(compared >= 150, "only {compared} compared");
    assert!(with_expect >= 3, "only {with_expect} with expectations");
}

#[test]
fn timeouts_count_from_the_scenarios_last_packet() {
    // CONNMARK scenario: a UDP flow answered at 0.01 s holds nf_conntrack_udp_timeout (30 s)
    // from then on; the listing is taken at the last packet's time.
    let store = tmp("timeout");
    let sc = root().join("tests/scenarios/conntrack/connmark.toml");
    assert_eq!(nfrs(&store, &["replay", sc.to_str().unwrap()]).rc, 0);
    let l = nfrs(&store, &["conntrack", "-L"]);
    assert!(
        l.stdout.starts_with("udp      17 30 src=10.0.0.2 "),
        "{}",
        l.stdout
    );
    // -D on the stored table: deleted there, for good.
    let d = nfrs(&store, &["conntrack", "-D", "-p", "udp"]);
    assert_eq!(d.rc, 0, "{}", d.stderr);
    assert!(d.stderr.ends_with("1 flow entries have been deleted.\n"));
    assert_eq!(nfrs(&store, &["conntrack", "-C"]).stdout, "0\n");
    let d = nfrs(&store, &["conntrack", "-D", "-p", "udp"]);
    assert_eq!(d.rc, 1);
    let _ = std::fs::remove_dir_all(&store);
}

#[test]
fn check_against_a_store_changes_nothing() {
    let store = tmp("check");
    let sc = root().join("tests/scenarios/conntrack/tcp-loose-midstream-nat.toml");
    assert_eq!(nfrs(&store, &["replay", sc.to_str().unwrap()]).rc, 0);
    let files = |d: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = files(&store);
    let ct_before = nfrs(&store, &["conntrack", "-L"]).stdout;
    // A new connection: MASQUERADE, counted by the nat rule, a SYN_SENT entry — all would-be.
    let c = nfrs(
        &store,
        &[
            "check",
            "lan0",
            "tcp",
            "10.0.0.2:40001",
            ">",
            "198.51.100.7:80",
            "flags=S",
        ],
    );
    assert_eq!(c.rc, 0, "{}", c.stderr);
    let out = &c.stdout;
    assert!(
        out.starts_with("lan0 tcp 10.0.0.2:40001 > 198.51.100.7:80 flags=S\n"),
        "{out}"
    );
    assert!(
        out.contains("\n  out wan0 tcp 192.0.2.1:40001 > 198.51.100.7:80 "),
        "{out}"
    );
    assert!(out.contains("    | conntrack: New\n"), "{out}");
    assert!(
        out.contains("    |   accepted by nat/POSTROUTING rule 1\n"),
        "{out}"
    );
    assert!(
        out.contains("  conntrack would hold: tcp      6 120 SYN_SENT src=10.0.0.2 dst=198.51.100.7 sport=40001 dport=80 [UNREPLIED] "),
        "{out}"
    );
    // The stored connection's reply: ESTABLISHED reply direction, de-NATed back to the client.
    let r = nfrs(
        &store,
        &[
            "check",
            "wan0",
            "tcp",
            "198.51.100.7:80",
            ">",
            "192.0.2.1:40000",
            "flags=A",
        ],
    );
    assert!(
        r.stdout.contains("    | conntrack: EstablishedReply\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("  out lan0 tcp 198.51.100.7:80 > 10.0.0.2:40000 "),
        "{}",
        r.stdout
    );
    // Nothing changed: the store's files byte for byte, and the listing.
    assert_eq!(files(&store), before);
    assert_eq!(nfrs(&store, &["conntrack", "-L"]).stdout, ct_before);
    // A bad line is an error with the reason.
    let bad = nfrs(&store, &["check", "lan0", "tcp", "10.0.0.2:1", ">"]);
    assert_eq!(bad.rc, 2);
    assert!(!bad.stderr.is_empty());
    let nohost = nfrs(
        &tmp("nohost"),
        &["check", "lan0", "udp", "1.2.3.4:1", ">", "5.6.7.8:2"],
    );
    assert_eq!(nohost.rc, 1);
    assert!(nohost.stderr.contains("--host"), "{}", nohost.stderr);
    let _ = std::fs::remove_dir_all(&store);
}
