//! The classifier workload of `nfrs bench --only classify` once, for profilers:
//! `cargo run --release -p nfrs-bench --example classify_probe -- RULES PACKETS`.
fn main() {
    let mut a = std::env::args().skip(1);
    let rules = a.next().map_or(10_000, |s| s.parse().expect("rules"));
    let packets = a.next().map_or(20_000, |s| s.parse().expect("packets"));
    match nfrs_bench::gateway::classify_probe(rules, packets) {
        Ok(pps) => println!("{rules} rules: {:.3} Mpps", pps / 1e6),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
