//! The kube workload of `nfrs bench --only kube` once, for profilers:
//! `cargo run --release -p nfrs-bench --example kube_probe -- SERVICES CONNECTIONS`.
fn main() {
    let mut a = std::env::args().skip(1);
    let services = a.next().map_or(10_000, |s| s.parse().expect("services"));
    let conns = a.next().map_or(20_000, |s| s.parse().expect("connections"));
    match nfrs_bench::gateway::kube_probe(services, conns) {
        Ok(cps) => println!("{services} services: {:.3} M connections/s", cps / 1e6),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
