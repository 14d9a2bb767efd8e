//! `nfrs kernel-run`: run a scenario through the real Linux kernel (the logic lives in
//! `nfrs-oracle`, which also builds it as the standalone `nfrs-kernel-run`).

pub fn main(args: &[String]) -> i32 {
    nfrs_oracle::cli::main(args)
}
