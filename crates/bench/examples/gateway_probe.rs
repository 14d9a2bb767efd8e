//! The gateway workload of `nfrs bench --only gateway` once, for profilers:
//! `cargo run --release -p nfrs-bench --example gateway_probe -- FLOWS ROUNDS [BATCH]`
//! (callgrind: `--toggle-collect=*established_loop*` or `*syn_loop*`; with BATCH > 0 the
//! established packets go through `Engine::receive_batch`, `*established_batch_loop*`).
fn main() {
    let mut a = std::env::args().skip(1);
    let flows = a.next().map_or(10_000, |s| s.parse().expect("flows"));
    let rounds = a.next().map_or(20, |s| s.parse().expect("rounds"));
    let batch = a.next().map_or(0, |s| s.parse().expect("batch"));
    match nfrs_bench::gateway::gateway_probe_batch(flows, rounds, batch) {
        Ok((new, pps, cpu)) => println!(
            "{flows} flows: new {:.3} M/s, established {:.3} Mpps ({:.3} Mpps of CPU time)",
            new / 1e6,
            pps / 1e6,
            cpu / 1e6
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
