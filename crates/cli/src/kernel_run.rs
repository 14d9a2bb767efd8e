//! `nfrs kernel-run`: run a scenario through the real Linux kernel.

pub fn main(_args: &[String]) -> i32 {
    eprintln!("nfrs kernel-run: not yet built");
    1
}
