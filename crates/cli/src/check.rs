//! `nfrs check [--store DIR] [--host FILE] PACKET`: what a packet in the scenario packet syntax
//! (`lan0 tcp 10.0.0.2:40000 > 198.51.100.7:80 flags=S`) would meet right now — verdict, NAT,
//! rule path, effect on the connection table — changing nothing. Asks the `nfrs run` daemon of
//! the store; with no daemon, checks against the store's ruleset and saved table, on the host
//! the store keeps (`host.toml`, left by `nfrs replay --store`) or `--host FILE`.

use crate::ctl;
use nfrs_dataplane::check::{self, State};
use nfrs_dataplane::proto::Request;
use nfrs_rules::store::Store;

/// The host file a store keeps for offline checks.
pub const HOST_FILE: &str = "host.toml";

const USAGE: &str =
    "usage: nfrs check [--store DIR] [--host HOST.toml] DEV PROTO SRC > DST [fields]";

/// Entry point.
pub fn main(args: &[String]) -> i32 {
    let (explicit, args) = ctl::take_store(args);
    let mut host_file = None;
    let mut words = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--host" => match it.next() {
                Some(h) => host_file = Some(h.clone()),
                None => {
                    eprintln!("nfrs check: --host needs a file\n{USAGE}");
                    return 2;
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            w => words.push(w.to_string()),
        }
    }
    if words.is_empty() {
        eprintln!("{USAGE}");
        return 2;
    }
    let packet = words.join(" ");
    let store = Store::locate(explicit.as_deref());
    if host_file.is_none() {
        if let Some(r) = ctl::try_daemon(
            &store.dir,
            Request::Check {
                packet: packet.clone(),
            },
        ) {
            return ctl::print(&r);
        }
    }
    match offline(&store, host_file.as_deref(), &packet) {
        Ok(text) => {
            print!("{text}");
            0
        }
        Err((code, e)) => {
            eprintln!("{e}");
            code
        }
    }
}

fn offline(store: &Store, host_file: Option<&str>, packet: &str) -> Result<String, (i32, String)> {
    let path = host_file
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| store.dir.join(HOST_FILE));
    if host_file.is_none() && !path.exists() {
        return Err((
            1,
            format!(
                "nfrs check: no nfrs run daemon answers on {} and the store keeps no host (give --host HOST.toml, or fill the store with nfrs replay --store)",
                store.dir.display()
            ),
        ));
    }
    let host = nfrs_dataplane::hostfile::load(&path)
        .map_err(|e| (1, e))?
        .host;
    let ruleset = store.load().map_err(|e| (4, format!("nfrs: {e}")))?;
    let snap = store.dir.join(nfrs_dataplane::ctsave::FILE);
    let table = match std::fs::read_to_string(&snap) {
        Ok(t) => Some((t, None, None)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err((4, format!("nfrs: {}: {e}", snap.display()))),
    };
    let state = State {
        ruleset,
        table,
        now: 0,
        external_stack: false,
        // A stored ruleset keeps no match state: limits and lists start fresh.
        matches: None,
    };
    check::check(&state, &host, packet).map_err(|e| (2, e))
}
