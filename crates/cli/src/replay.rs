//! `nfrs replay`: run a scenario or a capture through the engine.

pub fn main(_args: &[String]) -> i32 {
    eprintln!("nfrs replay: not yet built");
    1
}
