//! The stages of one rule command sent to `nfrs run` (crates/dataplane/src/daemon.rs,
//! `Shared::tool` then `Shared::reload`), timed one by one on a store holding a big ruleset:
//! `cargo run --release -p nfrs-bench --example live_update -- STORE NFRS [ROUNDS]`
//! (STORE: a store directory, e.g. filled with `NFRS_NO_DAEMON=1 nfrs iptables-restore
//! --store STORE < kube.rules`; NFRS: the `nfrs` binary the daemon would run). Each round
//! appends one rule to nat KUBE-SERVICES. The store is changed.

use nfrs_engine::engine::Engine;
use nfrs_engine::host::HostNet;
use nfrs_rules::store::Store;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const HOST: &str = "description = \"live update stages\"\nrules = '''\n'''\npackets = '''\n'''\n\n[sysctl]\n\"net.ipv4.ip_forward\" = 1\n\n[[interface]]\nname = \"lan0\"\naddress = \"10.0.1.1/24\"\n\n[[interface]]\nname = \"wan0\"\naddress = \"198.51.100.2/24\"\n";

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn main() {
    let mut a = std::env::args().skip(1);
    let dir = a.next().expect("usage: live_update STORE NFRS [ROUNDS]");
    let exe = a.next().expect("usage: live_update STORE NFRS [ROUNDS]");
    let rounds: usize = a.next().map_or(3, |r| r.parse().expect("ROUNDS"));
    let store = Store::at(&dir);
    let sc = nfrs_scenario::parse(HOST, Path::new("<live_update>")).expect("host");
    let sysctls = sc.host.effective_sysctls();
    let engine = |rs| Engine::new(HostNet::new(&sc.host).expect("host"), rs, &sysctls);
    // The daemon's engine at start.
    let mut live = engine(store.load().expect("load")).expect("compile");
    let rules = Path::new(&dir).join("ruleset.rules");
    for round in 0..rounds {
        let total = Instant::now();
        // Shared::sync_counters: the counters copied out on the packet thread, then the
        // whole store written under its lock.
        let (rs, copy) = timed(|| live.ruleset_with_counters());
        let (_, sync) = timed(|| {
            let _lock = store.lock(Duration::from_secs(10)).expect("lock");
            store.save(&rs).expect("save");
        });
        drop(rs);
        let (before, read1) = timed(|| std::fs::read(&rules).ok());
        // run_tool: `nfrs iptables --store DIR ...` as a child process (loads the store,
        // runs the command, writes the store).
        let dst = format!("172.31.{}.{}/32", 200 + round / 250, 1 + round % 250);
        let (status, tool) = timed(|| {
            Command::new(&exe)
                .args([
                    "iptables",
                    "--store",
                    &dir,
                    "-t",
                    "nat",
                    "-A",
                    "KUBE-SERVICES",
                ])
                .args(["-d", &dst, "-p", "tcp", "-m", "tcp", "--dport", "80"])
                .args(["-j", "KUBE-MARK-MASQ"])
                .env("NFRS_NO_DAEMON", "1")
                .status()
                .expect("spawn")
        });
        assert!(status.success(), "nfrs iptables failed");
        let (changed, read2) = timed(|| std::fs::read(&rules).ok() != before);
        assert!(changed);
        // Shared::reload: the store loaded again, a new engine compiled, swapped in on the
        // packet thread (where the old engine is dropped).
        let (rs, load) = timed(|| store.load().expect("load"));
        let (new, compile) = timed(|| engine(rs).expect("compile"));
        let (_, swap) = timed(|| live = new);
        // Inside the tool, the same steps in this process: load, the command, store write.
        let (mut rs, tool_load) = timed(|| store.load().expect("load"));
        let args: Vec<String> = ["-t", "nat", "-A", "KUBE-SERVICES", "-d", "172.31.199.1/32"]
            .iter()
            .map(|s| s.to_string())
            .chain(["-j", "KUBE-MARK-MASQ"].iter().map(|s| s.to_string()))
            .collect();
        let (_, op) = timed(|| {
            let c = nfrs_rules::parse::parse_command(&args, false, None).expect("parse");
            nfrs_rules::ops::execute(&mut rs, &c).expect("append")
        });
        let (_, op2) = timed(|| {
            let c = nfrs_rules::parse::parse_command(&args, false, None).expect("parse");
            nfrs_rules::ops::execute(&mut rs, &c).expect("append")
        });
        drop(rs);
        println!(
            "round {round}: stages in the daemon: counters copy {} + store write {} + read {} + tool {} + read {} + load {} + compile {} + swap (drop old) {} = {} ms; the tool's own parts: load {} + -A {} (a second -A {}) ms",
            ms(copy), ms(sync), ms(read1), ms(tool), ms(read2), ms(load), ms(compile), ms(swap),
            ms(total.elapsed() - tool_load - op - op2),
            ms(tool_load), ms(op), ms(op2),
        );
    }
}
