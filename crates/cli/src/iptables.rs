//! The iptables front ends: `iptables`, `iptables-save`, `iptables-restore`, `proc`.

fn not_built(what: &str) -> i32 {
    eprintln!("nfrs {what}: not yet built");
    1
}

pub fn iptables_main(_args: &[String]) -> i32 {
    not_built("iptables")
}

pub fn save_main(_args: &[String]) -> i32 {
    not_built("iptables-save")
}

pub fn restore_main(_args: &[String]) -> i32 {
    not_built("iptables-restore")
}

pub fn proc_main(_args: &[String]) -> i32 {
    not_built("proc")
}
