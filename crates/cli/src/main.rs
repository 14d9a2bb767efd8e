//! The `nfrs` binary: one multi-call entry point. `nfrs <command> ...`, or invoked through a link
//! named like the tool it stands in for (`iptables`, `iptables-save`, `iptables-restore`, ...).
//! Each command lives in its own module with `pub fn main(args: &[String]) -> i32`.

mod bench;
mod check;
mod conntrack_cmd;
mod ctl;
mod iptables;
mod kernel_run;
mod replay;
mod run;
mod storect;
mod sysctl_cmd;

use std::process::ExitCode;

fn usage() -> i32 {
    eprintln!(
        "usage: nfrs <command> [args]\n\ncommands:\n  replay SCENARIO       run a scenario or capture through the engine\n  kernel-run SCENARIO   run a scenario through the real Linux kernel (root)\n  iptables ARGS         the iptables command line\n  iptables-save ARGS    print the ruleset as iptables-save does\n  iptables-restore ARGS load a ruleset as iptables-restore does\n  proc PATH             print a /proc file (net/ip_tables_names, net/nf_conntrack)\n  run --host HOST.toml  the live gateway daemon [--metrics ADDR:PORT] (crates/dataplane/README.md)\n  conntrack ARGS        the connection table (-L [expect], -D, -F, -C) of the daemon or the store; -E events\n  check PACKET          what a packet would meet now (verdict, NAT, rule path), changing nothing\n  sysctl [-w] NAME[=V]  the daemon's sysctls\n  bench [--quick]       benchmarks beside the kernel and the real tools (see crates/bench/README.md)"
    );
    2
}

/// Runs the tool named `tool` with `args` (the arguments after the tool name).
fn dispatch(tool: &str, args: &[String]) -> Option<i32> {
    Some(match tool {
        // While `nfrs run` owns the store, the store tools go through its control socket.
        "iptables" | "iptables-legacy" => {
            ctl::forward_tool("iptables", args).unwrap_or_else(|| iptables::iptables_main(args))
        }
        "iptables-save" | "iptables-legacy-save" => {
            ctl::forward_tool("iptables-save", args).unwrap_or_else(|| iptables::save_main(args))
        }
        "iptables-restore" | "iptables-legacy-restore" => {
            ctl::forward_tool("iptables-restore", args)
                .unwrap_or_else(|| iptables::restore_main(args))
        }
        "proc" => ctl::forward_tool("proc", args).unwrap_or_else(|| iptables::proc_main(args)),
        "replay" => replay::main(args),
        "kernel-run" => kernel_run::main(args),
        "bench" => bench::main(args),
        "run" => run::main(args),
        "conntrack" => conntrack_cmd::main(args),
        "sysctl" => sysctl_cmd::main(args),
        "check" => check::main(args),
        _ => return None,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let argv0 = args
        .first()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string())
        .unwrap_or_default();
    let code = match dispatch(&argv0, args.get(1..).unwrap_or(&[])) {
        Some(code) => code,
        None => match args.get(1) {
            Some(cmd) if cmd == "-h" || cmd == "--help" || cmd == "help" => {
                usage();
                0
            }
            Some(cmd) => dispatch(cmd, &args[2..]).unwrap_or_else(|| {
                eprintln!("nfrs: unknown command `{cmd}`");
                usage()
            }),
            None => usage(),
        },
    };
    ExitCode::from(code.clamp(0, 255) as u8)
}
