//! The stages of one store tool sent to `nfrs run` (crates/dataplane/src/daemon.rs,
//! `Shared::tool` then `Shared::put_in_force`), timed one by one in this process on a store
//! holding a big ruleset: `cargo run --release -p nfrs-bench --example live_update -- STORE
//! [ROUNDS]` (STORE: a store directory, e.g. filled with `NFRS_NO_DAEMON=1 nfrs
//! iptables-restore --store STORE < kube.rules`). Each round appends one rule to nat
//! KUBE-SERVICES (the store is changed), then lists one chain and saves the whole ruleset
//! as the daemon answers them.

use nfrs_engine::engine::Engine;
use nfrs_engine::host::HostNet;
use nfrs_rules::store::{write_atomic, Store};
use nfrs_rules::tool;
use std::path::Path;
use std::time::{Duration, Instant};

const HOST: &str = "description = \"live update stages\"\nrules = '''\n'''\npackets = '''\n'''\n\n[sysctl]\n\"net.ipv4.ip_forward\" = 1\n\n[[interface]]\nname = \"lan0\"\naddress = \"10.0.1.1/24\"\n\n[[interface]]\nname = \"wan0\"\naddress = \"198.51.100.2/24\"\n";

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn main() {
    let mut a = std::env::args().skip(1);
    let dir = a.next().expect("usage: live_update STORE [ROUNDS]");
    let rounds: usize = a.next().map_or(3, |r| r.parse().expect("ROUNDS"));
    let store = Store::at(&dir);
    let sc = nfrs_scenario::parse(HOST, Path::new("<live_update>")).expect("host");
    let sysctls = sc.host.effective_sysctls();
    let engine = |rs| Engine::new(HostNet::new(&sc.host).expect("host"), rs, &sysctls);
    // The daemon's engine at start.
    let mut live = engine(store.load().expect("load")).expect("compile");
    // The copy of the ruleset in force the daemon keeps between tools (the first tool copies
    // it from the engine).
    let mut kept = live.ruleset_with_counters();
    for round in 0..rounds {
        let total = Instant::now();
        let dst = format!("172.31.{}.{}/32", 200 + round / 250, 1 + round % 250);
        let args = strings(&["-t", "nat", "-A", "KUBE-SERVICES", "-d", &dst]);
        let args = [args, strings(&["-p", "tcp", "-m", "tcp", "--dport", "80"])].concat();
        let args = [args, strings(&["-j", "KUBE-MARK-MASQ"])].concat();
        // Shared::tool: the arguments read, the live counters written into the kept ruleset
        // (on the packet thread), the tool applied to it.
        let (p, prep) = timed(|| tool::prepare("iptables", &args).expect("arguments"));
        let (_, copy) = timed(|| assert!(live.write_counters_into(&mut kept)));
        let (out, op) = timed(|| p.apply(&mut kept, "", &mut Vec::new()));
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.changed);
        // Shared::put_in_force: the store text made and written (atomically, under its lock)
        // on one thread while a copy of the ruleset is compiled on this one; then the swap
        // (the old engine is freed on another thread: not timed here).
        let ((written, (new, compile)), both) = timed(|| {
            std::thread::scope(|s| {
                let w = s.spawn(|| {
                    timed(|| {
                        let mut t = Vec::new();
                        nfrs_rules::save::save_store_to(&kept, &mut t).expect("text");
                        let _lock = store.lock(Duration::from_secs(10)).expect("lock");
                        write_atomic(Path::new(&dir), "ruleset.rules", &t).expect("write");
                        t
                    })
                });
                let c = timed(|| engine(kept.clone()).expect("compile"));
                (w.join().expect("store"), c)
            })
        });
        let (text, write) = written;
        let old = std::mem::replace(&mut live, new);
        let all = total.elapsed();
        std::thread::spawn(move || drop((old, text)));
        // A listing of one chain and a whole iptables-save, as the daemon answers them.
        let (_, copy2) = timed(|| assert!(live.write_counters_into(&mut kept)));
        let rs = &mut kept;
        let p = tool::prepare("iptables", &strings(&["-t", "nat", "-S", "KUBE-MARK-MASQ"]))
            .expect("arguments");
        let (_, list) = timed(|| p.apply(rs, "", &mut Vec::new()));
        let p = tool::prepare("iptables-save", &strings(&["-c"])).expect("arguments");
        let (saved, save) = timed(|| {
            let mut v = Vec::new();
            p.apply(rs, "", &mut v);
            v
        });
        std::thread::spawn(move || drop(saved));
        println!(
            "round {round}: -A: arguments {} + counters {} + -A {} + (store text and write {} | copy and compile {}: {}) = {} ms; listing: counters {} + -S one chain {} ms; iptables-save -c {} ms",
            ms(prep), ms(copy), ms(op), ms(write), ms(compile), ms(both), ms(all),
            ms(copy2), ms(list), ms(save),
        );
    }
}
