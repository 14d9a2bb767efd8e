//! `nfrs bench`: the benchmark figures, side by side with the kernel (see crates/bench).

pub fn main(args: &[String]) -> i32 {
    nfrs_bench::main(args)
}
