//! `nfrs-kernel-run`: the same as `nfrs kernel-run`, built without the rest of nfrs (CI and
//! golden recording use it).

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::ExitCode::from(nfrs_oracle::cli::main(&args).clamp(0, 255) as u8)
}
