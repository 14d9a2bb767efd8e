//! The management commands' way to a running `nfrs run`: when `STORE/control.sock` accepts a
//! connection, a command is sent there and the daemon's answer printed; otherwise the commands
//! act on the store as before (the daemon runs the store tools in process, on the ruleset in
//! force: nfrs_rules::tool). `NFRS_NO_DAEMON=1` skips the daemon (the store is then changed
//! behind it: for scripts and tests that look at a store).

use nfrs_dataplane::control;
use nfrs_dataplane::proto::{Request, Response};
use nfrs_rules::store::Store;
use std::io::Read;
use std::path::Path;

/// Splits `--store DIR` / `--store=DIR` off `args` (the last one given wins).
pub fn take_store(args: &[String]) -> (Option<String>, Vec<String>) {
    let mut store = None;
    let mut rest = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if args[i] == "--store" && i + 1 < args.len() {
            store = Some(args[i + 1].clone());
            i += 2;
        } else if let Some(v) = args[i].strip_prefix("--store=") {
            store = Some(v.to_string());
            i += 1;
        } else {
            rest.push(args[i].clone());
            i += 1;
        }
    }
    (store, rest)
}

fn bypassed() -> bool {
    std::env::var_os("NFRS_NO_DAEMON").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Whether a daemon accepts connections on the store's control socket.
pub fn daemon_running(store: &Path) -> bool {
    !bypassed()
        && match std::os::unix::net::UnixStream::connect(control::socket_path(store)) {
            Ok(_) => true,
            // A daemon this user may not reach still owns the store: do not bypass it.
            Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied,
        }
}

/// Sends `req` to the daemon of `store`: `None` when none runs there (or `NFRS_NO_DAEMON`),
/// else its answer (a transport failure becomes an error answer with exit code 4).
pub fn try_daemon(store: &Path, req: Request) -> Option<Response> {
    if bypassed() {
        return None;
    }
    control::request(store, &req)
        .map(|r| r.unwrap_or_else(|e| Response::error(4, format!("nfrs: control socket: {e}"))))
}

/// Prints a daemon's answer and returns its exit code.
pub fn print(r: &Response) -> i32 {
    use std::io::Write;
    let _ = std::io::stdout().write_all(r.stdout.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().write_all(r.stderr.as_bytes());
    r.code
}

/// iptables-restore's arguments minus a file argument, and that file's path.
fn restore_file(args: &[String]) -> (Vec<String>, Option<String>) {
    let mut rest = Vec::new();
    let mut file = None;
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        rest.push(a.clone());
        match a.as_str() {
            "-T" | "--table" | "-M" | "--modprobe" | "-W" | "--wait-interval" => {
                if let Some(v) = it.next() {
                    rest.push(v.clone());
                }
            }
            "-w" | "--wait" if it.peek().is_some_and(|v| v.parse::<u32>().is_ok()) => {
                if let Some(v) = it.next() {
                    rest.push(v.clone());
                }
            }
            s if !s.starts_with('-') && file.is_none() => {
                rest.pop();
                file = Some(s.to_string());
            }
            _ => {}
        }
    }
    (rest, file)
}

/// Runs store tool `tool` (`iptables`, `iptables-save`, `iptables-restore`, `proc`) through the
/// daemon when one runs on the store named by `args` (`--store`, `$NFRS_STORE`, default);
/// `None` means no daemon: act on the store directly.
pub fn forward_tool(tool: &str, args: &[String]) -> Option<i32> {
    let (explicit, args) = take_store(args);
    let store = Store::locate(explicit.as_deref());
    if !daemon_running(&store.dir) {
        return None;
    }
    let (args, stdin) = if tool.contains("restore") {
        let (args, file) = restore_file(&args);
        let mut text = String::new();
        let r = match &file {
            Some(f) => std::fs::read_to_string(f).map(|t| text = t),
            None => std::io::stdin().read_to_string(&mut text).map(|_| ()),
        };
        if let Err(e) = r {
            eprintln!("{tool}: {}: {e}", file.as_deref().unwrap_or("stdin"));
            return Some(1);
        }
        (args, text)
    } else {
        (args, String::new())
    };
    let req = Request::Tool {
        tool: tool.to_string(),
        args,
        stdin,
    };
    try_daemon(&store.dir, req).map(|r| print(&r))
}

/// `conntrack`/`sysctl` front ends: the request goes to the daemon, or `what` explains that
/// this state lives only in a running daemon.
pub fn daemon_only(prog: &str, args: &[String], make: fn(Vec<String>) -> Request) -> i32 {
    let (explicit, args) = take_store(args);
    let store = Store::locate(explicit.as_deref());
    match try_daemon(&store.dir, make(args)) {
        Some(r) => print(&r),
        None => {
            eprintln!(
                "{prog}: no nfrs run daemon answers on {} (start one with `nfrs run --store {} --host HOST.toml`)",
                control::socket_path(&store.dir).display(),
                store.dir.display()
            );
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn store_option_is_split_off() {
        let (s, rest) = take_store(&v(&["-L", "--store", "/x", "-n", "--store=/y"]));
        assert_eq!(s.as_deref(), Some("/y"));
        assert_eq!(rest, v(&["-L", "-n"]));
    }

    #[test]
    fn restore_file_argument() {
        assert_eq!(
            restore_file(&v(&["-n", "-T", "filter", "rules.txt"])),
            (v(&["-n", "-T", "filter"]), Some("rules.txt".into()))
        );
        assert_eq!(
            restore_file(&v(&["-w", "5", "-c"])),
            (v(&["-w", "5", "-c"]), None)
        );
    }

    #[test]
    fn no_daemon_means_none() {
        let d = std::env::temp_dir().join(format!("nfrs-ctl-none-{}", std::process::id()));
        assert!(try_daemon(&d, Request::Ping {}).is_none());
        assert!(!daemon_running(&d));
    }
}
