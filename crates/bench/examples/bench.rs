//! `nfrs bench` without the rest of the binary: `cargo run --release -p nfrs-bench --example
//! bench -- [ARGS]` (handy while other crates are being edited).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(nfrs_bench::main(&args));
}
