//! The gateway workload of `nfrs bench --only gateway` once, for profilers:
//! `cargo run --release -p nfrs-bench --example gateway_probe -- FLOWS ROUNDS`
//! (callgrind: `--toggle-collect=*established_loop*` or `*syn_loop*`).
fn main() {
    let mut a = std::env::args().skip(1);
    let flows = a.next().map_or(10_000, |s| s.parse().expect("flows"));
    let rounds = a.next().map_or(20, |s| s.parse().expect("rounds"));
    match nfrs_bench::gateway::gateway_probe(flows, rounds) {
        Ok((new, pps)) => println!(
            "{flows} flows: new {:.3} M/s, established {:.3} Mpps",
            new / 1e6,
            pps / 1e6
        ),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
